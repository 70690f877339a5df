"""The results table of many runs: per method, mean success +- standard error over seeds, per task, with the
learning curves and a method x task heatmap next to it.

    python evaluate.py runs/sweeps/mt10_cpu           # a sweep directory
    python evaluate.py runs/mtsac_s1_... runs/mtsac_s2_...
    python evaluate.py runs/sweeps/a runs/sweeps/b --at-step 50000    # runs of different lengths, equal steps
    python evaluate.py runs/sweeps/a runs/sweeps/b --at-minutes 35    # equal wall clock, on one machine

A run's result is its final logged evaluation (the protocol's deterministic evaluation at the last step, in
`evaluations.jsonl`), and beside it the mean of its last three evaluations, which flickers less; with a `Cut`, every
run is first cut at its evaluation at a step, so runs of different lengths are compared at equal environment steps,
or at its last evaluation within a number of minutes of wall clock, so runs on one machine are compared at equal
time. Runs whose configs differ only in the seed form one row; rows are labelled by the method and by
whatever else of their config differs between rows. Over the runs of a row the table gives the mean +- standard
error, and, from each run's per-task scores (the mean of its last three evaluations), the interquartile mean over
seeds of each run's mean over the tasks with a bootstrap confidence interval, and the probability of improvement
over a reference row with its stratified-bootstrap interval (`mtrl.stats`, after Agarwal et al. 2021), at 95%
unless another level is asked for (a higher one holds across several comparisons with one reference).
Below the rows, every run is listed on its own: its scores, the tasks it solved at the end, its wall clock and its
code.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from mtrl.config import flatten, from_dict
from mtrl.errors import ConfigError, RunError
from mtrl.stats import confidence_interval, improvement_interval, iqm_over_runs, probability_of_improvement

# Published MT10 success rates (Meta-World v1, 2M steps, 10 seeds, as reported in the methods' papers): a
# different protocol and simulator version from ours, shown for orientation only.
PUBLISHED_V1: dict[str, tuple[str, float, float]] = {
    "stl": ("one SAC per task", 0.90, 0.03),
    "mtsac": ("MTSAC", 0.49, 0.07),  # one fully shared network
    "mtsac_heads": ("multi-head SAC", 0.61, 0.04),  # a shared encoder with task-specific output heads
    "pcgrad": ("PCGrad", 0.72, 0.02),
    "cagrad": ("CAGrad", 0.83, 0.05),
    "famo": ("FAMO", 0.83, 0.05),
    "fairgrad": ("FairGrad", 0.84, 0.07),
    "nashmtl": ("Nash-MTL", 0.91, 0.03),
    "aligned_mtl": ("Aligned-MTL", 0.97, 0.05),
    "ntkmtl": ("NTKMTL", 0.96, 0.03),
}
# config keys that do not change what a run learns, so runs differing only in them share a row
_NOT_A_SETTING = {"seed", "device", "train.threads", "train.log_every", "train.checkpoint_every",
                  "train.keep_checkpoints", "train.checkpoint_replay", "train.max_nonfinite_in_a_row"}


LAST_EVALUATIONS = 3  # a run's score beside its final evaluation: the mean of its last three
SOLVED = 0.5  # a task counts as solved by a run where its final success reaches this


@dataclass
class Run:
    """One run's final evaluation and its learning curve."""

    path: Path
    settings: dict[str, object]  # the flattened config without seed and bookkeeping keys
    seed: int
    steps: int
    protocol: str
    episodes: int
    success: dict[str, float]  # per task, final evaluation
    curve_steps: np.ndarray  # [E] steps of every evaluation
    task_curve: np.ndarray  # [E, tasks] each task's success at each evaluation
    wall_seconds: float | None = None  # the training loop's wall clock up to the final evaluation, if logged
    recent_task_success: dict[str, float] | None = None  # per task, the mean of the last evaluations
    code: tuple[str, ...] = ()  # the commits its evaluations were logged on (several if resumed on newer code)
    machine: tuple[str, ...] = ()  # the machines its evaluations were logged on (several if resumed elsewhere)

    @property
    def curve(self) -> np.ndarray:
        """`[E]` mean success over tasks at each evaluation."""
        return self.task_curve.mean(axis=1)

    def recent_success(self, evaluations: int = LAST_EVALUATIONS) -> float:
        """Mean success over tasks, averaged over the last `evaluations` evaluations."""
        return float(self.curve[-evaluations:].mean())

    @property
    def method(self) -> str:
        return str(self.settings["method"])

    def final_success(self) -> float:
        """Mean success over tasks at the final evaluation."""
        return float(np.mean(list(self.success.values())))

    def minutes(self) -> float | None:
        """The training loop's wall clock up to the final evaluation in minutes, if logged."""
        return None if self.wall_seconds is None else self.wall_seconds / 60

    def solved(self, threshold: float = SOLVED) -> list[str]:
        """The tasks whose final success reaches `threshold`, short names (without the version suffix)."""
        return [short_task_name(task) for task, value in self.success.items() if value >= threshold]


def short_task_name(task: str) -> str:
    """A task's name without its Meta-World version suffix (`reach-v3` -> `reach`), for tables and figures."""
    return task.rsplit("-v", 1)[0]


def evaluations_log(run_dir: Path) -> Path:
    """A run's record of its periodic evaluations: one JSON object per line, oldest first."""
    return Path(run_dir) / "evaluations.jsonl"


def read_evaluations(run_dir: Path) -> list[dict]:
    """The records of a run's periodic evaluations, oldest first; none where it has not evaluated yet."""
    log = evaluations_log(run_dir)
    return [json.loads(line) for line in log.read_text().splitlines() if line] if log.is_file() else []


@dataclass(frozen=True)
class Cut:
    """Where every run of a table is scored instead of at its last evaluation: at its evaluation at `step` (equal
    environment steps, for runs of different lengths), or at its last evaluation within `minutes` of its training
    loop's wall clock (equal wall clock: which configuration makes the best use of a time budget on one machine)."""

    step: int | None = None
    minutes: float | None = None

    def __post_init__(self) -> None:
        if (self.step is None) == (self.minutes is None):
            raise ValueError("a cut is at a step or at a number of minutes, one of the two; got "
                             f"step={self.step}, minutes={self.minutes}")
        if self.step is not None and self.step < 1:
            raise ValueError(f"--at-step must be a step the runs evaluated at (at least 1), got {self.step}")
        if self.minutes is not None and not 0 < self.minutes < math.inf:  # also refuses nan
            raise ValueError(f"--at-minutes must be a positive, finite number of minutes, got {self.minutes:g}")

    def __str__(self) -> str:
        if self.step is not None:
            return f"at step {self.step:,}"
        return f"within {self.minutes:g} minute{'' if self.minutes == 1 else 's'}"

    @property
    def folder(self) -> str:
        """The table's folder beside the final one: `at_step_<N>` or `at_minutes_<M>`."""
        return f"at_step_{self.step}" if self.step is not None else f"at_minutes_{self.minutes:g}"

    def describe(self) -> str:
        """The sentence that heads a cut table."""
        if self.step is not None:
            return (f"Every run is scored at its evaluation at step {self.step:,}, at equal environment steps, "
                    "whatever it ran to: below, its final evaluation is that one and its last evaluations end there.")
        return (f"Every run is scored at its last evaluation {self} of its training loop's wall clock, at equal "
                "wall clock, whatever it ran to: below, its final evaluation is that one, its last evaluations end "
                "there, and its steps are how far it got. Minutes compare only between runs on one machine (listed "
                "at the end).")

    def records(self, run_dir: Path, records: list[dict]) -> list[dict]:
        """A run's evaluation records up to the cut; FileNotFoundError where it has no evaluation there."""
        if self.step is not None:
            steps = [r["step"] for r in records]
            if self.step not in steps:
                raise FileNotFoundError(f"run '{run_dir}' has no evaluation at step {self.step:,} (it evaluated at "
                                        f"{_step_list(steps)})")
            return records[:steps.index(self.step) + 1]
        untimed = sum(r.get("wall_seconds") is None for r in records)
        if untimed:
            raise FileNotFoundError(f"run '{run_dir}': {untimed} of its {len(records)} evaluations logged no wall "
                                    f"clock, so it cannot be scored {self}")
        within = list(itertools.takewhile(lambda r: r["wall_seconds"] <= 60 * self.minutes, records))
        if not within:
            raise FileNotFoundError(f"run '{run_dir}' has no evaluation {self} (its first came at "
                                    f"{records[0]['wall_seconds'] / 60:.1f} minutes)")
        return within


def load_run(run_dir: Path, cut: Cut | None = None) -> Run:
    """A run as its evaluations show it: up to its last one, or, given a `cut`, up to its evaluation there (so
    that runs are compared at equal environment steps or at equal wall clock)."""
    config, records = run_dir / "config.yaml", read_evaluations(run_dir)
    if not config.is_file():
        raise FileNotFoundError(f"'{run_dir}' is not a run directory (no config.yaml)")
    if not records:
        raise FileNotFoundError(f"run '{run_dir}' has no evaluations yet ({evaluations_log(run_dir).name} is "
                                "empty or missing)")
    if cut is not None:
        records = cut.records(run_dir, records)
    try:
        data = yaml.safe_load(config.read_text())
        if not isinstance(data, dict):
            raise ConfigError(f"a mapping of sections was expected, got {type(data).__name__}")
        cfg = from_dict(data)
    except (ConfigError, yaml.YAMLError) as error:  # another version's keys, or a damaged file: name the run
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"run '{run_dir}': its config.yaml does not load ({message})") from None
    settings = {k: v for k, v in flatten(cfg).items() if k not in _NOT_A_SETTING}
    if cut is not None and cut.step is not None:  # a run is the same computation up to the cut whatever its length
        del settings["train.steps"]                # (a shorter run retraces the start of a longer one)
    last = records[-1]
    task_curve = np.array([[r["success"][t] for t in last["success"]] for r in records])
    return Run(run_dir, settings, cfg.seed, last["step"], last["protocol"], last["episodes"], last["success"],
               np.array([r["step"] for r in records]), task_curve, last.get("wall_seconds"),
               {t: float(np.mean([r["success"][t] for r in records[-LAST_EVALUATIONS:]])) for t in last["success"]},
               tuple(dict.fromkeys(r.get("code", "not recorded") for r in records)),
               tuple(dict.fromkeys(r.get("machine", "not recorded") for r in records)))


def _step_list(steps: list[int]) -> str:
    """Evaluation steps for a message: all of a few, else the first, the second and the last."""
    shown = [f"{step:,}" for step in steps]
    return ", ".join(shown) if len(shown) <= 4 else f"{shown[0]}, {shown[1]}, ..., {shown[-1]}"


def _merge_network_keys(runs: list[Run]) -> list[dict]:
    """Each run's settings for labels: where the actor and the critic agree in every run, `net.actor.X` and
    `net.critic.X` become one `net.X`, so labels stay short."""
    names = [k.removeprefix("net.actor.") for k in runs[0].settings if k.startswith("net.actor.")]
    same = [n for n in names if all(r.settings[f"net.actor.{n}"] == r.settings[f"net.critic.{n}"] for r in runs)]
    merged = []
    for run in runs:
        settings = dict(run.settings)
        for name in same:
            settings[f"net.{name}"] = settings.pop(f"net.actor.{name}")
            del settings[f"net.critic.{name}"]
        merged.append(settings)
    return merged


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories among `paths`: each path is a run (has config.yaml) or holds runs one level down."""
    runs = []
    for path in paths:
        if (path / "config.yaml").is_file():
            runs.append(path)
        elif path.is_dir():
            runs.extend(sorted(p for p in path.iterdir() if (p / "config.yaml").is_file()))
        else:
            raise FileNotFoundError(f"'{path}' is neither a run directory nor a directory of runs")
    if not runs:
        raise FileNotFoundError(f"no run directories (with config.yaml) in {', '.join(map(str, paths))}")
    return runs


def mean_and_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample standard deviation / sqrt(n)); NaN error for one value."""
    x = np.asarray(values, dtype=float)
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")
    return float(x.mean()), se


@dataclass
class Row:
    """Runs that differ only in their seed."""

    label: str
    runs: list[Run]

    @property
    def method(self) -> str:
        return self.runs[0].method

    @property
    def published_key(self) -> str:
        """Which published row this one corresponds to: equal weighting is MTSAC, multi-head SAC or one SAC
        per task depending on how much of the network is task-specific."""
        s = self.runs[0].settings
        head_layers = s["net.critic.head_layers"]
        if self.method != "mtsac" or head_layers == 0:
            return self.method
        return "stl" if head_layers == s["net.critic.hidden_layers"] + 1 else "mtsac_heads"

    def success(self) -> tuple[float, float]:
        return mean_and_se([r.final_success() for r in self.runs])

    def recent_success(self) -> tuple[float, float]:
        return mean_and_se([r.recent_success() for r in self.runs])

    def scores(self) -> np.ndarray:
        """`[runs, tasks]`: each run's score on each task, the mean of its last evaluations."""
        return np.array([list(r.recent_task_success.values()) for r in self.runs])

    def iqm(self, level: float = 0.95) -> tuple[float, float, float]:
        """Interquartile mean over the runs of their mean task scores, and its bootstrap interval at `level`."""
        return (iqm_over_runs(self.scores()), *confidence_interval(self.scores(), iqm_over_runs, level=level))

    def improvement_over(self, reference: "Row", level: float = 0.95) -> tuple[float, float, float]:
        """Probability that this row's runs score above the reference row's on a task, with its interval."""
        x, y = self.scores(), reference.scores()
        return (probability_of_improvement(x, y), *improvement_interval(x, y, level=level))

    def minutes(self) -> float:
        """Mean wall clock of the runs in minutes (NaN where runs did not log it)."""
        seconds = [r.wall_seconds for r in self.runs if r.wall_seconds is not None]
        return float(np.mean(seconds)) / 60 if len(seconds) == len(self.runs) else float("nan")

    def code(self) -> list[str]:
        """The commits the row's evaluations were logged on, in order of first appearance."""
        return list(dict.fromkeys(version for run in self.runs for version in run.code))

    def task_success(self, task: str) -> tuple[float, float]:
        """Success on `task` at the final evaluation, mean and standard error over the runs."""
        return mean_and_se([r.success[task] for r in self.runs])

    def task_score(self, task: str) -> tuple[float, float]:
        """Each run's score on `task` (its mean over the last evaluations), mean and standard error over the
        runs: with one episode per task a final evaluation flips a task between 0 and 1, this reads steadier."""
        return mean_and_se([r.recent_task_success[task] for r in self.runs])

    def common_steps(self) -> np.ndarray:
        """The steps evaluated by every run of the row."""
        common = set(self.runs[0].curve_steps.tolist())
        for run in self.runs[1:]:
            common &= set(run.curve_steps.tolist())
        return np.array(sorted(common))

    def iqm_curve(self, reps: int = 1000,
                  level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Steps evaluated by every run, and there the interquartile mean over the runs of their mean success
        over the tasks, with its bootstrap interval at `level` (low, high): the table's statistic, step by step."""
        steps = self.common_steps()
        scores = np.stack([run.task_curve[np.isin(run.curve_steps, steps)] for run in self.runs], axis=1)
        middle = np.array([iqm_over_runs(at_evaluation) for at_evaluation in scores])
        low, high = np.array([confidence_interval(at_evaluation, iqm_over_runs, reps, level)
                              for at_evaluation in scores]).T
        return steps, middle, low, high


def group(runs: list[Run]) -> list[Row]:
    """One row per distinct setting, labelled by the method and the keys in which rows differ."""
    groups: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        groups.setdefault(tuple(sorted(run.settings.items())), []).append(i)
    shown = _merge_network_keys(runs)
    keys = sorted({k for s in shown for k in s} - {"method", "label"})  # an unnamed row is labelled by its keys
    varying = [k for k in keys if len({repr(shown[g[0]].get(k)) for g in groups.values()}) > 1]
    rows = []
    for indices in groups.values():
        s, members = shown[indices[0]], [runs[i] for i in indices]
        named = s.get("label")  # a named setting (an ablation's variant) stands for its keys
        parts = [named] if named else [f"{k}={s.get(k)}" for k in varying]
        label = " ".join([str(s["method"]), *parts])
        rows.append(Row(label, sorted(members, key=lambda r: r.seed)))
    return sorted(rows, key=lambda r: r.label)


def _fmt(mean: float, se: float) -> str:
    return f"{mean:.2f}" if math.isnan(se) else f"{mean:.2f} +- {se:.2f}"


def _interval(value: float, low: float, high: float) -> str:
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def percent(level: float) -> str:
    """A confidence level as the tables and figures print it: 0.95 -> '95%', 0.9833 -> '98.33%'."""
    return f"{100 * level:.4g}%"


def find_reference(rows: list[Row], label: str) -> Row | None:
    return next((row for row in rows if row.label == label), None)


def to_markdown(rows: list[Row], reference: str = "mtsac", cut: Cut | None = None, level: float = 0.95) -> str:
    """The table, per task and per run; `cut`: where `load_run` cut every run, if anywhere; `level`: of the
    intervals (above 0.95 to hold, say, across several comparisons with one reference)."""
    base = find_reference(rows, reference)
    lines = [] if cut is None else [cut.describe(), ""]
    lines += [f"| method | seeds | steps | protocol | success (mean +- s.e.) | last {LAST_EVALUATIONS} evaluations | "
             f"IQM [{percent(level)} CI] | P(better than {reference}) [{percent(level)} CI] | minutes per run | "
             "published, v1 protocol, 2M steps |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        steps = sorted({r.steps for r in row.runs})
        published = PUBLISHED_V1.get(row.published_key)
        ref = f"{published[0]}: {published[1]:.2f} +- {published[2]:.2f}" if published else "not reported"
        improvement = _interval(*row.improvement_over(base, level)) if base is not None and row is not base else "-"
        lines.append(f"| {row.label} | {len(row.runs)} | {'/'.join(f'{s:,}' for s in steps)} | "
                     f"{row.runs[0].protocol} | **{_fmt(*row.success())}** | {_fmt(*row.recent_success())} | "
                     f"{_interval(*row.iqm(level))} | {improvement} | {row.minutes():.0f} | {ref} |")
    tasks = list(rows[0].runs[0].success)
    recent_title = (f"Per task over each run's last {LAST_EVALUATIONS} evaluations (the scores that IQM and "
                    "P(better) use, mean +- s.e. over seeds):")
    for title, per_task in (("Per task at the final evaluation (success, mean +- s.e. over seeds):", Row.task_success),
                            (recent_title, Row.task_score)):
        lines += ["", title, "", "| task | " + " | ".join(r.label for r in rows) + " |",
                  "|---" * (len(rows) + 1) + "|"]
        for task in tasks:
            lines.append(f"| {task} | " + " | ".join(_fmt(*per_task(r, task)) for r in rows) + " |")
    header = (f"| run | row | seed | steps | final success | last {LAST_EVALUATIONS} evaluations | "
              f"solved at the end (>= {SOLVED}) | minutes | code |")
    lines += ["", "Per run:", "", header, "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for run in row.runs:
            minutes = "-" if run.minutes() is None else f"{run.minutes():.1f}"
            lines.append(f"| {run.path.name} | {row.label} | {run.seed} | {run.steps:,} | {run.final_success():.2f} | "
                         f"{run.recent_success():.2f} | {', '.join(run.solved()) or 'none'} | {minutes} | "
                         f"{', '.join(run.code)} |")
    lines += ["", "Code (the commits each row's evaluations were logged on): "
              + "; ".join(f"{row.label}: {', '.join(row.code())}" for row in rows) + "."]
    runs_on: dict[str, list[str]] = {}
    for row in rows:
        for run in row.runs:
            for name in run.machine:
                runs_on.setdefault(name, []).append(run.path.name)
    lines += ["", "Machines (minutes compare only between runs on one machine): "
              + "; ".join(f"{name}: {', '.join(runs)}" for name, runs in runs_on.items()) + "."]
    lines += ["", "Success is the final evaluation's mean over tasks; the column beside it averages each run's last "
              f"{LAST_EVALUATIONS} evaluations first. Standard error = sample standard deviation over seeds / "
              "sqrt(seeds). IQM: the interquartile mean over seeds of each run's score (its mean over the tasks of "
              f"each task's mean over its last {LAST_EVALUATIONS} evaluations; with fewer than four seeds no run "
              f"is trimmed and it is their mean), with a {percent(level)} bootstrap interval (2,000 resamples of "
              "whole runs); "
              "P(better): the chance that a run of the row scores above a run of the reference row on a task, "
              "ties counted half, with its stratified-bootstrap interval (the runs resampled within each task). "
              "Minutes: the training loop's wall clock per run. The published column is Meta-World v1 at 2M steps: "
              "a different protocol, simulator version and budget, not comparable."]
    return "\n".join(lines) + "\n"


def to_json(rows: list[Row], reference: str = "mtsac", cut: Cut | None = None, level: float = 0.95) -> str:
    def number(x: float) -> float | None:
        return None if math.isnan(x) else round(x, 6)

    def interval(value: float, low: float, high: float) -> dict[str, float | None]:
        return {"value": number(value), "low": number(low), "high": number(high)}

    base = find_reference(rows, reference)
    data = []
    for row in rows:
        mean, se = row.success()
        published = PUBLISHED_V1.get(row.published_key)
        improvement = row.improvement_over(base, level) if base is not None and row is not base else None
        data.append({
            "label": row.label, "method": row.method, "protocol": row.runs[0].protocol,
            "steps": sorted({r.steps for r in row.runs}), "episodes": row.runs[0].episodes,
            "seeds": [r.seed for r in row.runs], "success_mean": number(mean), "success_se": number(se),
            "recent_success_mean": number(row.recent_success()[0]),
            "recent_success_se": number(row.recent_success()[1]),
            "iqm": interval(*row.iqm(level)),
            "improvement_over": None if improvement is None else {"reference": reference, **interval(*improvement)},
            "minutes_per_run": number(row.minutes()),
            "code": row.code(),
            "per_task": {t: dict(zip(("mean", "se"), map(number, row.task_success(t)))) for t in row.runs[0].success},
            "per_task_recent": {t: dict(zip(("mean", "se"), map(number, row.task_score(t))))
                                for t in row.runs[0].success},
            "runs": [{"path": str(r.path), "seed": r.seed, "steps": r.steps, "success_mean": number(r.final_success()),
                      "recent_success_mean": number(r.recent_success()), "solved": r.solved(),
                      "minutes": None if r.minutes() is None else number(r.minutes()), "code": list(r.code),
                      "machine": list(r.machine)}
                     for r in row.runs],
            "published_v1": None if published is None else
            {"name": published[0], "mean": published[1], "se": published[2]},
        })
    at_step, at_minutes = (None, None) if cut is None else (cut.step, cut.minutes)
    return json.dumps({"at_step": at_step, "at_minutes": at_minutes, "confidence": level, "rows": data}, indent=2)


def load_evaluated_runs(run_dirs: list[Path], cut: Cut | None = None,
                        note: Callable[[str], None] = print) -> list[Run]:
    """The runs among `run_dirs` that have an evaluation (at `cut`, if given); each other one is named through
    `note` as skipped, so that a sweep under way can be read while some of its runs have not evaluated yet."""
    runs = []
    for run_dir in run_dirs:
        try:
            runs.append(load_run(run_dir, cut))
        except FileNotFoundError as error:
            note(f"skipping: {error}")
    return runs


def write_report(run_dirs: list[Path], out_dir: Path, reference: str | None = None,
                 cut: Cut | None = None, level: float = 0.95) -> list[Path]:
    """Write results.md, results.json, curves.png and heatmap.png for these runs into `out_dir`, each row
    compared with the row labelled `reference` (None: `mtsac`, where there is such a row); `cut`: score every
    run there instead of at its last evaluation, skipping runs without an evaluation there; `level`: the
    confidence level of every interval and band."""
    from mtrl.plots import plot_heatmap, plot_method_curves

    runs = load_evaluated_runs(run_dirs, cut)
    if not runs:
        raise FileNotFoundError("none of the runs has an evaluation to report" + ("" if cut is None else f" {cut}"))
    rows = group(runs)
    if reference is not None and find_reference(rows, reference) is None:
        raise RunError(f"no row is labelled '{reference}' to compare the others with; the rows: "
                       f"{', '.join(repr(row.label) for row in rows)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in ("results.md", "results.json", "curves.png", "heatmap.png")]
    paths[0].write_text(to_markdown(rows, reference or "mtsac", cut, level))
    paths[1].write_text(to_json(rows, reference or "mtsac", cut, level))
    plot_method_curves(rows, paths[2], level)
    plot_heatmap(rows, paths[3])
    return paths
