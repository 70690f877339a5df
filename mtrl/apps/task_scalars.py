"""How a per-task quantity that runs logged to TensorBoard moved along training, per row of runs, beside the
tasks each row solved.

    python -m mtrl.task_scalars runs/sweeps/cpu_preset_methods       # the critic's task weights
    python -m mtrl.task_scalars runs/sweeps/cpu_preset_methods --name train/mean_abs_reward --windows 0 30000 60000

Runs are grouped into rows as `evaluate.py` groups them (runs that differ only in their seed). Each task's
logged values `<name>/<task>` are averaged over each window of steps (`start < step <= end`) in every run, and
those averages over the row's runs. Beside them: in how many of the row's runs the task was solved at the end
(final success at least 0.5, as in the results table). It makes a combiner's weighting readable beside what the
agent learned, e.g. whether NTKMTL's critic weights go to the tasks the runs end up failing; `--name eval/success`
gives each window's success. Runs without evaluations yet, and rows whose runs did not log the name (`mtsac` logs
no NTK lambda), are skipped with a note.
"""

from __future__ import annotations

import argparse
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np

from mtrl.cli import ArgumentParser
from mtrl.errors import RunError
from mtrl.results import SOLVED, Row, find_runs, group, load_evaluated_runs, short_task_name


class MissingName(RunError):
    """A run did not log the asked-for per-task name (for every task)."""


def read_task_scalar(run_dir: Path, name: str, tasks: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each task's logged `<name>/<task>` in the run's TensorBoard log: `(steps [N], values [N])`, one value per
    step (a resumed run's log is read as TensorBoard shows it: what the resume purged is gone)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir = run_dir / "tensorboard"
    if not log_dir.is_dir():
        raise RunError(f"run '{run_dir}' has no TensorBoard log (no {log_dir.name}/ directory; records copied "
                       "without it, as in docs/runs/, have none: give the run's own directory)")
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})  # 0: keep every value
    events.Reload()
    logged = set(events.Tags()["scalars"])
    missing = [task for task in tasks if f"{name}/{task}" not in logged]
    if missing:
        task_suffixes = tuple(f"/{task}" for task in tasks)
        per_task = sorted({tag.rsplit("/", 1)[0] for tag in logged if tag.endswith(task_suffixes)})
        which = "any task" if len(missing) == len(tasks) else ", ".join(missing)
        raise MissingName(f"run '{run_dir}' logged no '{name}/<task>' for {which}; its per-task names (for "
                          f"--name): {', '.join(per_task) or '(none)'}")
    series = {}
    for task in tasks:
        by_step = {event.step: event.value for event in events.Scalars(f"{name}/{task}")}  # the last value per step
        steps = np.array(sorted(by_step), dtype=np.int64)
        series[task] = steps, np.array([by_step[s] for s in steps], dtype=float)
    return series


def window_means(steps: np.ndarray, values: np.ndarray, edges: list[int]) -> np.ndarray:
    """The mean of `values` over each window `edges[j] < step <= edges[j + 1]`: `[len(edges) - 1]`, NaN for a
    window without values."""
    means = np.full(len(edges) - 1, np.nan)
    for j, (start, end) in enumerate(pairwise(edges)):
        inside = (steps > start) & (steps <= end)
        if inside.any():
            means[j] = values[inside].mean()
    return means


def _cells(values: np.ndarray) -> str:
    return " | ".join("-" if np.isnan(value) else f"{value:.3g}" for value in values)


def row_table(row: Row, name: str, edges: list[int]) -> str:
    """A Markdown table of one row: per task, the mean over its runs of each window's mean, and how many of its
    runs solved the task; last, each window's mean over the tasks."""
    tasks = list(row.runs[0].success)
    series = [read_task_scalar(run.path, name, tasks) for run in row.runs]
    windowed = np.array([[window_means(*logged[task], edges) for task in tasks] for logged in series])  # [runs, K, W]
    counts = (~np.isnan(windowed)).sum(axis=0)  # the runs with values in each window (a shorter run has fewer)
    means = np.where(counts > 0, np.nansum(windowed, axis=0) / np.maximum(counts, 1), np.nan)
    runs_per_window = counts.min(axis=0)  # every task is logged at the same steps
    windows = [f"{start:,}-{end:,}" for start, end in pairwise(edges)]
    runs = f"{len(row.runs)} run" + ("s" if len(row.runs) > 1 else "")
    lines = [f"**{row.label}** ({runs}): `{name}`, mean over each window of steps, then over runs",
             "", "| task | " + " | ".join(windows) + " | solved at the end |",
             "|---|" + "---:|" * len(windows) + "---:|"]
    for task, task_means in zip(tasks, means):
        solved = sum(run.success[task] >= SOLVED for run in row.runs)
        lines.append(f"| {short_task_name(task)} | {_cells(task_means)} | {solved}/{len(row.runs)} |")
    lines.append(f"| mean over tasks | {_cells(means.mean(axis=0))} | |")  # NaN where a task has no value
    if (runs_per_window < len(row.runs)).any():  # some run has not reached a window: say over how many runs
        lines.append(f"| runs with values | {' | '.join(str(n) for n in runs_per_window)} | |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = ArgumentParser(description="A per-task quantity logged to TensorBoard, averaged over windows of steps "
                                        "per row of runs, beside the tasks each row solved.")
    parser.add_argument("runs", nargs="+", type=Path, help="run directories or directories of runs")
    parser.add_argument("--name", default="combiner/critic/weight", help="the per-task TensorBoard name (logged as "
                        "<name>/<task>; default: combiner/critic/weight)")
    parser.add_argument("--windows", type=int, nargs="+", metavar="STEP", help="window edges in steps, at least "
                        "two, increasing (default: thirds of the longest run)")
    args = parser.parse_args()
    if args.windows is not None and (len(args.windows) < 2 or any(b <= a for a, b in pairwise(args.windows))):
        parser.error(f"--windows takes at least two increasing steps, got {' '.join(map(str, args.windows))}")
    return args


def main() -> None:
    args = parse_args()
    runs = load_evaluated_runs(find_runs(args.runs), note=lambda message: print(message, file=sys.stderr))
    if not runs:
        raise FileNotFoundError("none of the runs has an evaluation yet")
    last = max(run.steps for run in runs)
    edges = args.windows or sorted({0, last // 3, 2 * last // 3, last})
    tables = []
    for row in group(runs):
        try:
            tables.append(row_table(row, args.name, edges))
        except MissingName as error:
            print(f"skipping row '{row.label}': {error}", file=sys.stderr)
    if not tables:
        raise RunError(f"no row of runs logged '{args.name}/<task>' (see the notes above)")
    print("\n\n".join(tables))
