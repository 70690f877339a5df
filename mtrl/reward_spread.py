"""`python -m mtrl.reward_spread`: the command of the application `mtrl.apps.reward_spread`."""

from mtrl.apps.reward_spread import main
from mtrl.cli import run_main

if __name__ == "__main__":
    run_main(main)
