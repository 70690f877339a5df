"""`python -m mtrl.reward_spread`: the command of the application `mtrl.apps.reward_spread`, imported only when run (the
collector's worker processes import this module too; see train.py)."""

if __name__ == "__main__":
    from mtrl.apps.reward_spread import main
    from mtrl.cli import run_main

    run_main(main)
