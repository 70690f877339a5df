"""`python -m mtrl.weight_trace`: the command of the application `mtrl.apps.weight_trace`, imported only when run (the
collector's worker processes import this module too; see train.py)."""

if __name__ == "__main__":
    from mtrl.apps.weight_trace import main
    from mtrl.cli import run_main

    run_main(main)
