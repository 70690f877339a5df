"""`python -m mtrl.sweep`: the command of the application `mtrl.apps.sweep`."""

from mtrl.apps.sweep import main
from mtrl.cli import run_main

if __name__ == "__main__":
    run_main(main)
