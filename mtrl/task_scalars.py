"""`python -m mtrl.task_scalars`: the command of the application `mtrl.apps.task_scalars`, imported only when run (the
collector's worker processes import this module too; see train.py)."""

if __name__ == "__main__":
    from mtrl.apps.task_scalars import main
    from mtrl.cli import run_main

    run_main(main)
