"""Statistics for comparing RL methods over few runs, after Agarwal et al. 2021 ("Deep Reinforcement Learning
at the Edge of the Statistical Precipice", the `rliable` library): the interquartile mean, bootstrap confidence
intervals, and the probability of improvement. rliable itself would bring pandas, seaborn and arch with it for
these few functions.

Scores come as a `[runs, tasks]` array per method: each run's score on each task. One departure from rliable:
on Meta-World a run's score on a task is a success rate that is mostly 0 or 1, so rliable's IQM of all run x task
scores is 0 (or 1) whenever three quarters of them are. The IQM here is taken over runs, of each run's mean over
the tasks (`iqm_over_runs`), and its interval resamples whole runs, since a run's tasks share one network. The
probability of improvement compares runs task by task, and its interval resamples the runs within each task
(stratified by task), as rliable does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all scores: the mean of the middle half, after dropping the lowest and the
    highest quarter (`floor(n / 4)` values each, as scipy's `trim_mean(x, 0.25)`)."""
    values = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    cut = int(0.25 * len(values))
    return float(values[cut: len(values) - cut].mean())


def iqm_over_runs(scores: np.ndarray) -> float:
    """Interquartile mean over runs of each run's mean score over the tasks (`scores [runs, tasks]`); with fewer
    than four runs none is trimmed and it is their mean."""
    return iqm(np.asarray(scores, dtype=np.float64).mean(axis=1))


def run_bootstrap(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """`reps` resamplings of `scores [runs, tasks]`, `[reps, runs, tasks]`: whole runs drawn with replacement,
    each keeping its scores on every task."""
    picks = rng.integers(0, scores.shape[0], size=(reps, scores.shape[0]))
    return scores[picks]


def stratified_bootstrap(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """`reps` resamplings of `scores [runs, tasks]`, `[reps, runs, tasks]`: each task's runs drawn with
    replacement, independently of the other tasks' (stratified by task)."""
    runs, tasks = scores.shape
    picks = rng.integers(0, runs, size=(reps, runs, tasks))
    return scores[picks, np.arange(tasks)]


def confidence_interval(scores: np.ndarray, statistic: Callable[[np.ndarray], float], reps: int = 2000,
                        level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of `statistic` over bootstrap resamples of the runs of `scores [runs, tasks]`."""
    samples = run_bootstrap(np.asarray(scores, dtype=np.float64), reps, np.random.default_rng(seed))
    return _percentile_interval(np.array([statistic(sample) for sample in samples]), level)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y): for each task, the chance that a random run of X scores above a random run of Y (ties count
    half, the Mann-Whitney statistic over all pairs), averaged over tasks. `x [n, tasks]`, `y [m, tasks]`."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    above = (x[:, None, :] > y[None, :, :]).mean(axis=(0, 1))
    ties = (x[:, None, :] == y[None, :, :]).mean(axis=(0, 1))
    return float((above + 0.5 * ties).mean())


def improvement_interval(x: np.ndarray, y: np.ndarray, reps: int = 2000, level: float = 0.95,
                         seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the probability of improvement, both methods' runs resampled by task."""
    rng = np.random.default_rng(seed)
    xs = stratified_bootstrap(np.asarray(x, dtype=np.float64), reps, rng)
    ys = stratified_bootstrap(np.asarray(y, dtype=np.float64), reps, rng)
    return _percentile_interval(np.array([probability_of_improvement(a, b) for a, b in zip(xs, ys)]), level)


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central `level` share of bootstrap values."""
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
