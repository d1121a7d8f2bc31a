"""The console end to end as an administrator uses it over SSH: `photoflow admin` in an 80x24 tmux pane
(TERM=xterm-256color, no mouse), typed into with send-keys and read back with capture-pane, while the web
server serves the same SQLite database and a command-line import writes to it. What the console did is
then checked from the web side."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, Web, free_port, make_config, make_jpegs, run_cli, wait_up, web_as

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (make test-deps)"),
    pytest.mark.slow,
]


class Pane:
    """One tmux session on a private server socket, so a person's own tmux is never touched."""

    def __init__(self, socket: str, command: list[str], env: dict[str, str]) -> None:
        self.tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
        line = shlex.join(["env", *(f"{k}={v}" for k, v in env.items()), *command])
        subprocess.run(
            [*self.tmux, "new-session", "-d", "-s", "pf", "-x", "80", "-y", "24", line],
            check=True,
            env={**os.environ, "TERM": "xterm-256color"},
        )

    def screen(self) -> str:
        answer = subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", "pf"], capture_output=True, text=True
        )
        return answer.stdout

    def alive(self) -> bool:
        return subprocess.run([*self.tmux, "has-session", "-t", "pf"], capture_output=True).returncode == 0

    def keys(self, *keys: str) -> None:
        """Named keys (Enter, Tab, C-s, or single characters), one at a time as fingers press them."""
        for key in keys:
            subprocess.run([*self.tmux, "send-keys", "-t", "pf", key], check=True)
            time.sleep(0.05)

    def type(self, text: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "pf", "-l", text], check=True)
        time.sleep(0.1)

    def wait_for(self, *texts: str, timeout: float = 60) -> str:
        """The screen, once every text is on it."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if all(text in shown for text in texts):
                return shown
            if time.monotonic() > deadline or not self.alive():
                raise AssertionError(f"never saw {texts} on the screen:\n{shown}")
            time.sleep(0.1)

    def kill(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


@pytest.fixture
def world(tmp_path: Path, samples: Path) -> Iterator[tuple[object, str]]:
    """A migrated library with an admin and a private album "Trips" of one photo (made by the CLI), and
    the web server running on it."""
    config = make_config(tmp_path)
    assert run_cli(config, "db", "upgrade").returncode == 0
    made = run_cli(config, "create-user", "admin", "--admin", "--password-stdin", input="correct horse\n")
    assert made.returncode == 0, made.stderr
    first = run_cli(config, "import-image", str(samples / "jpeg/cameras/Nikon D90.jpg"), "--album", "Trips")
    assert first.returncode == 0, first.stderr
    port = free_port()
    env = {**os.environ, **config.env(), "PORT": str(port), "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [sys.executable, "-m", "photoflow", "serve"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base, server)
        yield config, base
    finally:
        server.send_signal(signal.SIGTERM)
        _out, err = server.communicate(timeout=30)
        assert "locked" not in err, err


def test_over_ssh_create_a_user_publish_an_album_and_import_beside_the_web_and_the_cli(world, tmp_path):
    config, base = world
    console_batch = make_jpegs(tmp_path / "from-console", 12, size=(1600, 1200))
    cli_batch = make_jpegs(tmp_path / "from-cli", 12, size=(1600, 1200), start=100)
    assert Web(base).get("/api/timeline").json()["days"] == []  # Trips is private: visitors see nothing

    env = {**config.env(), "PYTHONPATH": str(REPO), "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    pane = Pane(f"photoflow-test-{os.getpid()}", [sys.executable, "-m", "photoflow", "admin"], env)
    try:
        pane.wait_for("1 Overview", "Recent imports")

        # Users: n opens the form; name, the password twice, Enter.
        pane.keys("2")
        pane.wait_for("admin")
        pane.keys("n")
        pane.wait_for("OK (Enter)")  # the form's own button ("Password" is also the footer's p key)
        pane.type("carol")
        pane.wait_for("carol")
        pane.keys("Tab")
        pane.type("carol's secret")
        pane.keys("Tab")
        pane.type("carol's secret")
        pane.keys("Enter")
        pane.wait_for("carol", "member")

        # Albums: Trips is the only one, under the cursor; v makes it public.
        pane.keys("3")
        pane.wait_for("Trips", "private")
        pane.keys("v")
        pane.wait_for("public")

        # Import: from the tree, Tab reaches the path; clear it, type the folder, an album, Ctrl+S.
        pane.keys("5")
        # The footer's ^s shows once the section has the keyboard (its form can be drawn before).
        pane.wait_for("File or folder on this server", "Start import")
        pane.keys("Tab", "C-a", "C-k")
        pane.type(str(console_batch[0].parent))
        pane.wait_for("from-console")
        pane.keys("Tab")
        pane.type("Trips")
        # A command-line import writes to the same database at the same time.
        cli = subprocess.Popen(
            [sys.executable, "-m", "photoflow", "import-image", str(cli_batch[0].parent)],
            env={**os.environ, **config.env(), "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        pane.keys("C-s")
        shown = pane.wait_for("Done: imported 12", timeout=180)
        assert "failed    " not in shown
        out, err = cli.communicate(timeout=180)
        assert cli.returncode == 0 and "imported 12" in out, (out, err)
        assert "locked" not in out + err

        # The overview, reloaded, counts all of it: 1 + 12 from the console + 12 from the CLI.
        pane.keys("1", "r")
        pane.wait_for("Photos                 25")
        pane.keys("q")
        deadline = time.monotonic() + 30
        while pane.alive():
            assert time.monotonic() < deadline, pane.screen()
            time.sleep(0.1)
    finally:
        pane.kill()

    # The web side: Trips is public with its 13 photos, and carol can log in.
    visitor = Web(base)
    days = visitor.get("/api/timeline").json()["days"]
    assert sum(n for _day, n in days) == 13
    albums = visitor.get("/albums").text
    assert "Trips" in albums
    carol = web_as(base, "carol", "carol's secret")
    assert carol.get("/upload").status_code == 200
