"""The comparison statistics on known numbers."""

import numpy as np
import pytest

from mtrl.stats import confidence_interval, improvement_interval, iqm, iqm_over_runs, probability_of_improvement


def test_iqm_drops_the_lowest_and_highest_quarter():
    assert iqm(np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])) == pytest.approx(3.5)  # mean of 2..5
    assert iqm(np.arange(10.0).reshape(5, 2)) == pytest.approx(np.mean([2, 3, 4, 5, 6, 7]))  # 2 cut each side
    assert iqm(np.full((3, 4), 0.7)) == pytest.approx(0.7)


def test_iqm_over_runs_trims_whole_runs_and_sees_success_that_is_all_zeros_and_ones():
    # eight runs of ten tasks, each task solved (1) or not (0): runs solve 0, 1, 1, 2, 2, 2, 2 and 10 tasks
    solved = [0, 1, 1, 2, 2, 2, 2, 10]
    scores = np.array([[1.0] * n + [0.0] * (10 - n) for n in solved])
    assert iqm(scores) == 0.0  # three quarters of the run x task scores are 0: that IQM sees nothing
    # two runs cut at each end (0.0 and 0.1, 0.2 and 1.0): the mean of 0.1, 0.2, 0.2 and 0.2
    assert iqm_over_runs(scores) == pytest.approx(0.175)


def test_the_interval_of_the_iqm_over_runs_stays_between_the_runs_that_exist():
    # two runs whose tasks move together: resampling whole runs can only give their own scores, 0.1 and 0.3
    scores = np.array([[0.0, 0.2, 0.1], [0.4, 0.2, 0.3]])
    low, high = confidence_interval(scores, iqm_over_runs)
    assert (low, high) == (pytest.approx(0.1), pytest.approx(0.3))


def test_bootstrap_interval_contains_the_true_mean_and_narrows_with_runs():
    rng = np.random.default_rng(1)
    few = rng.normal(0.5, 0.1, size=(5, 10))
    many = rng.normal(0.5, 0.1, size=(200, 10))
    low, high = confidence_interval(few, lambda s: float(s.mean()))
    assert low < 0.5 < high
    low_many, high_many = confidence_interval(many, lambda s: float(s.mean()))
    assert low_many < 0.5 < high_many and high_many - low_many < (high - low) / 3


def test_probability_of_improvement_on_constructed_cases():
    better = np.ones((4, 3))
    worse = np.zeros((5, 3))
    assert probability_of_improvement(better, worse) == 1.0
    assert probability_of_improvement(worse, better) == 0.0
    same = np.random.default_rng(0).random((6, 3))
    assert probability_of_improvement(same, same) == pytest.approx(0.5)  # a method against itself
    assert probability_of_improvement(np.full((2, 2), 0.3), np.full((3, 2), 0.3)) == 0.5  # all ties
    low, high = improvement_interval(better, worse)
    assert low == high == 1.0
