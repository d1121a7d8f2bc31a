"""`python serve.py run`: serve Photoflow with cheroot on HOST:PORT (same as `photoflow serve`)."""

import sys

from photoflow.cli import app

if __name__ == "__main__":
    if sys.argv[1:2] != ["run"]:
        sys.exit("usage: python serve.py run")
    app(["serve"])
