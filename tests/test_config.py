"""Configuration from the environment: defaults, the generated secret, and one clear line per bad value."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from photoflow.config import load_config
from photoflow.errors import ConfigError
from tests.conftest import make_config, run_cli


def test_defaults_need_no_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config({})
    assert config.datastore == (tmp_path / "datastore").resolve()
    assert config.database == str(config.datastore / "photoflow.db")
    assert (config.host, config.port, config.url_scheme) == ("127.0.0.1", 8080, "http")
    assert not config.is_postgres


def test_secret_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    first = make_config(tmp_path)
    second = make_config(tmp_path)
    path = first.datastore / "secret"
    assert first.secret == second.secret and len(first.secret) >= 48
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert make_config(tmp_path, SECRET="given").secret == "given"


def test_datastore_may_be_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "disk" / "photos"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    config = load_config({"DATASTORE": str(tmp_path / "link")})
    assert config.datastore == real.resolve()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PORT": "http"}, "PORT='http': not a whole number"),
        ({"PORT": "70000"}, "PORT=70000: must be between 1 and 65535"),
        ({"URL_SCHEME": "ftp"}, "URL_SCHEME='ftp'"),
        ({"DATABASE": "/nonexistent/dir/x.db"}, "DATABASE=/nonexistent/dir/x.db"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(tmp_path, **env)
    assert needle in info.value.reason


def test_unwritable_datastore_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"DATASTORE=.*not a writable folder"):
        load_config({"DATASTORE": str(blocker / "datastore")})


def test_cli_prints_one_line_not_a_traceback(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    bad = config.env() | {"DATASTORE": str(blocker / "sub"), "DATABASE": ""}
    result = run_cli(config, "db", "status", env_override=bad)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("photoflow: DATASTORE=")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    # Port 9 on loopback: nothing listens there, so the connection is refused at once.
    env = config.env() | {"DATABASE": "postgresql://photoflow:secretpw@127.0.0.1:9/photoflow"}
    result = run_cli(config, "db", "upgrade", env_override=env)
    assert result.returncode == 1
    line = result.stderr.strip()
    assert line.startswith(
        "photoflow: DATABASE=postgresql://photoflow:***@127.0.0.1:9/photoflow: cannot connect"
    )
    assert "secretpw" not in line and "Traceback" not in line
