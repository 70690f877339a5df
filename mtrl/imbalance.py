"""`python -m mtrl.imbalance`: the command of the application `mtrl.apps.imbalance`."""

from mtrl.apps.imbalance import main
from mtrl.cli import run_main

if __name__ == "__main__":
    run_main(main)
