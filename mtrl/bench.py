"""`python -m mtrl.bench`: the command of the application `mtrl.apps.bench`."""

from mtrl.apps.bench import main
from mtrl.cli import run_main

if __name__ == "__main__":
    run_main(main)
