"""`python -m photoflow` runs the command line."""

from photoflow.cli import main

main()
