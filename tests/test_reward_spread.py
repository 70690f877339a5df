"""The reward-spread report: both reward versions score the same random trajectories, and the spread is the
largest task's mean |reward| over the smallest's."""

import numpy as np

from mtrl.apps.reward_spread import mean_abs_rewards, report, spread
from mtrl.envs import NUM_TASKS, TASK_NAMES


def test_both_versions_score_the_same_random_steps_and_repeat_exactly():
    v1, v2 = (mean_abs_rewards("mt10-fixed", version, steps=4, seed=3) for version in ("v1", "v2"))
    assert v1.shape == v2.shape == (NUM_TASKS,)
    assert np.isfinite(v1).all() and (v1 >= 0).all() and (v2 >= 0).all()
    assert not np.allclose(v1, v2)  # two reward functions on one trajectory
    np.testing.assert_array_equal(v2, mean_abs_rewards("mt10-fixed", "v2", steps=4, seed=3))


def test_spread_is_largest_over_smallest_and_infinite_for_a_silent_task():
    assert spread(np.array([0.02, 2.0, 0.5])) == 100.0
    assert spread(np.array([0.0, 1.0])) == float("inf")


def test_report_has_a_row_per_task_and_the_spread_per_version():
    scales = {"v1": np.linspace(0.1, 1.0, NUM_TASKS), "v2": np.linspace(0.01, 1.0, NUM_TASKS)}
    table = report(scales)
    assert all(f"| {task} |" in table for task in TASK_NAMES)
    assert table.splitlines()[-1] == "| **spread (largest / smallest)** | **10x** | **100x** |"
