"""The per-task TensorBoard summary: window means on known numbers, rows averaged over their runs beside the
tasks they solved, a resumed run's log read without what the resume purged, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mtrl.apps.task_scalars import read_task_scalar, row_table, window_means
from mtrl.envs import TASK_NAMES
from mtrl.errors import RunError
from mtrl.monitor import Monitor
from mtrl.results import evaluations_log, find_runs, group, load_run
from tests.test_results import fake_run

ROOT = Path(__file__).resolve().parents[1]
NAME = "combiner/critic/weight"


def log_weights(run_dir: Path, weights: dict[int, list[float]], purge_step: int | None = None) -> None:
    """Log per-task `weights` at each step as the trainer does (`Monitor`), in the run's TensorBoard log."""
    monitor = Monitor(run_dir, purge_step=purge_step)
    for step, values in weights.items():
        monitor.log(step, {NAME: np.array(values)})
    monitor.close()


def test_window_means_of_known_numbers():
    steps, values = np.array([1, 2, 3, 4, 5, 6]), np.array([1.0, 3.0, 5.0, 7.0, 9.0, 11.0])
    # windows (0, 2], (2, 4], (4, 6], (6, 8]: the last holds no step
    means = window_means(steps, values, [0, 2, 4, 6, 8])
    np.testing.assert_allclose(means[:3], [2.0, 6.0, 10.0])
    assert np.isnan(means[3])


def test_a_row_averages_each_window_over_its_runs_beside_the_tasks_they_solved(tmp_path):
    # seed 1 solves every task, seed 2 only the first; task 0's weight is 1 then 3 in seed 1, 3 then 5 in seed 2
    for seed, final, offset in ((1, [1.0] * 10, 0.0), (2, [1.0] + [0.0] * 9, 2.0)):
        run = fake_run(tmp_path / f"ntkmtl_sr_s{seed}", "ntkmtl_sr", seed, final)
        log_weights(run, {step: [offset + (1.0 if step <= 1500 else 3.0)] + [0.5] * 9 for step in (500, 1000, 2000)})
    (row,) = group([load_run(p) for p in find_runs([tmp_path])])
    lines = row_table(row, NAME, [0, 1500, 3000, 4500]).splitlines()  # no run logged after step 3000
    assert lines[0].startswith("**ntkmtl_sr** (2 runs)")
    task_lines = {line.split(" | ")[0].removeprefix("| "): line for line in lines[4:]}
    assert task_lines["reach"] == "| reach | 2 | 4 | - | 2/2 |"  # (1 + 3) / 2, then (3 + 5) / 2
    assert task_lines["push"] == "| push | 0.5 | 0.5 | - | 1/2 |"
    assert lines[-2] == "| mean over tasks | 0.65 | 0.85 | - | |"  # (2 + 9 * 0.5) / 10, (4 + 9 * 0.5) / 10
    assert lines[-1] == "| runs with values | 2 | 2 | 0 | |"


def test_a_window_that_only_some_runs_reached_is_averaged_over_those_and_says_so(tmp_path):
    full = fake_run(tmp_path / "ntkmtl_sr_s1", "ntkmtl_sr", 1, [0.0] * 10)
    log_weights(full, {1000: [1.0] * 10, 2000: [3.0] * 10})
    short = fake_run(tmp_path / "ntkmtl_sr_s2", "ntkmtl_sr", 2, [0.0] * 10)  # its log stops before step 2000
    log_weights(short, {1000: [5.0] * 10})
    (row,) = group([load_run(p) for p in find_runs([tmp_path])])
    lines = row_table(row, NAME, [0, 1500, 3000]).splitlines()
    assert "| reach | 3 | 3 | 0/2 |" in lines  # (1 + 5) / 2, then seed 1's 3 alone
    assert lines[-1] == "| runs with values | 2 | 1 | |"


def test_the_command_skips_rows_without_the_name_and_runs_without_evaluations(tmp_path):
    log_weights(fake_run(tmp_path / "ntkmtl_sr_s1", "ntkmtl_sr", 1, [1.0] * 10),
                {step: [step / 1000] * 10 for step in (500, 1000, 1500, 2000, 2500, 3000)})
    mtsac = fake_run(tmp_path / "mtsac_s1", "mtsac", 1, [1.0] * 10)
    monitor = Monitor(mtsac)
    monitor.log(1000, {"loss/critic": np.ones(10)})  # logged per task, but not the name asked for
    monitor.close()
    evaluations_log(fake_run(tmp_path / "famo_s1", "famo", 1, [0.0] * 10)).unlink()  # has not evaluated yet
    result = subprocess.run([sys.executable, "-m", "mtrl.task_scalars", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    # default windows: thirds of the longest run (3,000 steps)
    assert "**ntkmtl_sr** (1 run)" in result.stdout and "| 0-1,000 | 1,000-2,000 | 2,000-3,000 |" in result.stdout
    assert "| reach | 0.75 | 1.75 | 2.75 | 1/1 |" in result.stdout
    assert "mtsac" not in result.stdout
    assert "skipping row 'mtsac'" in result.stderr and "per-task names (for --name): loss/critic" in result.stderr
    assert "skipping: run" in result.stderr and "famo_s1" in result.stderr


def test_a_resumed_run_is_read_without_the_steps_its_resume_purged(tmp_path):
    run = fake_run(tmp_path / "run", "ntkmtl_sr", 1, [0.0] * 10)
    log_weights(run, {1000: [1.0] * 10, 2000: [2.0] * 10, 3000: [3.0] * 10})
    # resumed from step 1000's checkpoint and stopped again before step 3000: the first life's steps 2000 and 3000
    # are gone
    log_weights(run, {2000: [20.0] * 10}, purge_step=2000)
    steps, values = read_task_scalar(run, NAME, list(TASK_NAMES))[TASK_NAMES[0]]
    np.testing.assert_array_equal(steps, [1000, 2000])
    np.testing.assert_allclose(values, [1.0, 20.0])


def test_a_name_the_run_did_not_log_is_refused_with_the_names_it_did(tmp_path):
    run = fake_run(tmp_path / "run", "mtsac", 1, [0.0] * 10)
    log_weights(run, {1000: [1.0] * 10})
    with pytest.raises(RunError, match=r"logged no 'combiner/critic/lambda/<task>' for any task; its per-task "
                                       r"names \(for --name\): combiner/critic/weight$"):
        read_task_scalar(run, "combiner/critic/lambda", list(TASK_NAMES))
    with pytest.raises(RunError, match="no TensorBoard log"):
        read_task_scalar(fake_run(tmp_path / "bare", "mtsac", 1, [0.0] * 10), NAME, list(TASK_NAMES))


@pytest.mark.parametrize("windows", [["5000"], ["0", "5000", "5000"]])
def test_windows_that_are_not_increasing_edges_are_a_one_line_error(tmp_path, windows):
    result = subprocess.run([sys.executable, "-m", "mtrl.task_scalars", str(tmp_path), "--windows", *windows],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "at least two increasing steps" in result.stderr
