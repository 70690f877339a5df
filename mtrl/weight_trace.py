"""`python -m mtrl.weight_trace`: the command of the application `mtrl.apps.weight_trace`."""

from mtrl.apps.weight_trace import main
from mtrl.cli import run_main

if __name__ == "__main__":
    run_main(main)
