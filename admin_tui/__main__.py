"""`python -m admin_tui [--help]`: the same as `photoflow admin`."""

import sys

from photoflow.cli import app

if __name__ == "__main__":
    app(["admin", *sys.argv[1:]], prog_name="python -m admin_tui")
