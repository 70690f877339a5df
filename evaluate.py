"""Evaluate a trained run or a reference policy, or tabulate many runs.

    python evaluate.py runs/<name>                      # latest checkpoint of the run
    python evaluate.py runs/<name> --checkpoint runs/<name>/checkpoints/step_000100000.pt --episodes 10
    python evaluate.py runs/<name> --video              # also one GIF per task in runs/<name>/videos
    python evaluate.py --policy expert --protocol mt10  # Meta-World's scripted experts (should score high)
    python evaluate.py --policy random                  # uniform random actions (should score near zero)
    python evaluate.py runs/sweeps/mt10_cpu             # a directory of runs: the results table
    python evaluate.py runs/a runs/b runs/c --out runs/table
    python evaluate.py runs/sweeps/a runs/sweeps/b --at-step 50000  # every run scored at step 50,000
    python evaluate.py runs/sweeps/a runs/sweeps/b --at-minutes 35  # ... at its last evaluation within 35 minutes

One run: prints a per-task table and writes it as evaluation.json and evaluation.md (in the run directory, or
in --out for reference policies). Several runs, or a directory of runs: reads each run's final logged
evaluation (or, with --at-step, its evaluation at that step; with --at-minutes, its last evaluation within that
wall clock) and writes results.md, results.json, curves.png and heatmap.png (into --out, by default the directory
of runs, or runs/results; with --at-step or --at-minutes, its at_step_<N> or at_minutes_<M> folder).
"""

# spawn starts each of the collector's worker processes by importing this file, which they need nothing from:
# the command is imported only when the file runs, so that a worker does not load torch and the training code
if __name__ == "__main__":
    import os
    import sys

    if "--video" in sys.argv:  # offscreen rendering; MuJoCo reads this when it is first imported, below
        os.environ.setdefault("MUJOCO_GL", "egl")
    from mtrl.apps.evaluate import main
    from mtrl.cli import run_main

    run_main(main)
