"""Grids of runs (methods x seeds x config overrides) as Ray tasks, then one results table for the grid.

    python -m mtrl.sweep configs/sweeps/mt10_cpu.yaml                 # a local Ray instance on this machine
    python -m mtrl.sweep configs/sweeps/mt10.yaml --address auto      # an existing Ray cluster

Every run gets its own directory `<out>/<method>_s<seed>[_<variant>][_<key>=<value>...]`, so the sweep can be run again at
any time: finished runs are skipped, runs with a checkpoint are resumed from it (also when Ray retries a task
whose worker died), the rest start. SIGINT or SIGTERM stops it cleanly: each running run writes a checkpoint
and stops, and the queued ones wait for the next time. When all are done, the table, learning curves and heatmap of
`mtrl.results` are written to `<out>`. Ray is an optional extra: `pip install -e ".[sweep]"`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mtrl.checkpoint import checkpoint_path, list_checkpoints
from mtrl.cli import ArgumentParser
from mtrl.config import load_config
from mtrl.errors import ConfigError, RunError
from mtrl.provenance import code_version
from mtrl.results import read_evaluations
from mtrl.run_lock import empty_run_dir, run_dir_lock
from mtrl.signals import StopOnSignal

SWEEP_KEYS = {"config", "methods", "seeds", "grid", "variants", "overrides", "resources", "out"}


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid: which method and seed, and the overrides that make it differ from the base."""

    name: str
    method: str
    seed: int
    overrides: tuple[str, ...] = ()


@dataclass
class Sweep:
    config: Path
    methods: list[str]
    seeds: list[int]
    out: Path
    grid: dict[str, list[Any]] = field(default_factory=dict)
    # named sets of overrides (an ablation's variants): each is combined with every method, seed and grid point
    variants: dict[str, list[str]] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    cpus: float = 1.0
    gpus: float = 0.0

    def runs(self) -> list[RunSpec]:
        """Every combination of variant, seed, method and grid values, in the order they run: seed before
        method, so that a sweep stopped part-way has run every method on the same seeds."""
        keys = sorted(self.grid)
        variants = self.variants or {"": []}
        specs = []
        for variant, seed, method, *values in itertools.product(variants, self.seeds, self.methods,
                                                                 *(self.grid[k] for k in keys)):
            grid_overrides = tuple(f"{k}={v}" for k, v in zip(keys, values))
            name = "_".join([f"{method}_s{seed}", *([variant] if variant else []), *grid_overrides])
            variant_overrides = (*variants[variant], f"label={variant}") if variant else ()
            specs.append(RunSpec(name, method, seed, (*self.overrides, *variant_overrides, *grid_overrides)))
        return specs


def load_sweep(path: Path) -> Sweep:
    """Read and check a sweep file; every run's config is built once here, so a bad key fails before Ray starts."""
    if not path.is_file():
        raise ConfigError(f"sweep file '{path}' does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"sweep file '{path}' must hold a mapping")
    unknown = set(data) - SWEEP_KEYS
    if unknown:
        raise ConfigError(f"sweep file '{path}' has unknown key(s) {sorted(unknown)}; accepted: {sorted(SWEEP_KEYS)}")
    for key in ("config", "methods", "seeds", "out"):
        if key not in data:
            raise ConfigError(f"sweep file '{path}' needs '{key}'")
    for key in ("config", "out"):
        if not isinstance(data[key], str):
            raise ConfigError(f"sweep file '{path}': '{key}' must be a path, got {data[key]!r}")
    if not _list_of(data["methods"], str) or not _list_of(data["seeds"], int):
        raise ConfigError(f"sweep file '{path}': 'methods' and 'seeds' must be non-empty lists of method names "
                          f"and of integers, got {data['methods']!r} and {data['seeds']!r}")
    resources = data.get("resources") or {}
    if not isinstance(resources, dict) or set(resources) - {"cpus", "gpus"}:
        raise ConfigError(f"sweep file '{path}': resources accepts a mapping of cpus and gpus, got {resources!r}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in resources.values()):
        raise ConfigError(f"sweep file '{path}': resources' cpus and gpus must be numbers, got {resources!r}")
    grid = data.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"sweep file '{path}': grid must map section.key names to non-empty lists of values, "
                          f"got {grid!r}")
    overrides = data.get("overrides") or []
    if not isinstance(overrides, list):
        raise ConfigError(f"sweep file '{path}': overrides must be a list of section.key=value strings, "
                          f"got {overrides!r}")
    variants = data.get("variants") or {}
    if not isinstance(variants, dict) or not all(isinstance(v, list) for v in variants.values()):
        raise ConfigError(f"sweep file '{path}': variants must map names to lists of section.key=value overrides")
    # absolute paths: Ray workers on other machines or directories read the same files
    sweep = Sweep(config=Path(data["config"]).resolve(), methods=list(data["methods"]),
                  seeds=list(data["seeds"]), out=Path(data["out"]).resolve(), grid=grid,
                  variants={str(k): [str(o) for o in v] for k, v in variants.items()},
                  overrides=[str(o) for o in overrides],
                  cpus=float(resources.get("cpus", 1)), gpus=float(resources.get("gpus", 0)))
    if sweep.cpus <= 0 or sweep.gpus < 0:
        raise ConfigError(f"sweep file '{path}': resources need cpus > 0 and gpus >= 0")
    for spec in sweep.runs():
        run_config(sweep, spec)
    return sweep


def _list_of(value: Any, kind: type) -> bool:
    """Whether `value` is a non-empty list of `kind` (bools are not integers here)."""
    return (isinstance(value, list) and bool(value)
            and all(isinstance(v, kind) and not isinstance(v, bool) for v in value))


def run_config(sweep: Sweep, spec: RunSpec):
    """The config of one run: the base file, the run's method and seed, one torch thread per requested CPU,
    then the sweep's and the grid's overrides."""
    threads = [f"train.threads={max(1, int(sweep.cpus))}"]
    return load_config(sweep.config, [*threads, *spec.overrides], method=spec.method, seed=spec.seed)


def run_state(run_dir: Path, steps: int) -> str:
    """'finished' (its evaluations reached the last step, or a checkpoint of the last step exists), 'resumable'
    (an earlier checkpoint exists) or 'new'. A finished run needs no checkpoint: its config and evaluations,
    which are small enough to keep with the results, are all the results table reads."""
    records = read_evaluations(run_dir)
    if records and records[-1]["step"] >= steps:
        return "finished"
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        return "new"
    return "finished" if checkpoints[-1] == checkpoint_path(run_dir, steps) else "resumable"


def train_run(sweep: Sweep, spec: RunSpec) -> dict[str, Any]:
    """Train (or resume) one run to its end; runs inside a Ray worker, its output going to `train.log`. Ray cancels
    a running task by calling its SIGINT handler, which does nothing where the sweep's shell left SIGINT ignored (a
    sweep started with `&`): handled from the task's first line on, a cancel while the run starts stops it before
    its first step."""
    with StopOnSignal() as stop:
        return _train_or_resume(sweep, spec, stop)


def _train_or_resume(sweep: Sweep, spec: RunSpec, stop: StopOnSignal) -> dict[str, Any]:
    from mtrl.trainer import Trainer, describe_loop_time

    run_dir = sweep.out / spec.name
    cfg = run_config(sweep, spec)
    with run_dir_lock(run_dir):  # before its state is read: a worker of an earlier sweep may still be writing it
        state = run_state(run_dir, cfg.train.steps)
        if state == "finished":
            return {"name": spec.name, "state": "skipped"}
        if state == "new":  # no checkpoint: nothing in it is worth keeping
            empty_run_dir(run_dir)
        with open(run_dir / "train.log", "a") as log, contextlib.redirect_stdout(log), \
                contextlib.redirect_stderr(log):
            print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {spec.name}: "
                  f"{'resuming' if state == 'resumable' else 'starting'} in process {os.getpid()}, "
                  f"code of {code_version()}", flush=True)
            outcome = Trainer(cfg, run_dir, resume=state == "resumable").train(stop)
            print(describe_loop_time(outcome.loop_seconds))  # where this process's loop spent its time
            if outcome.stopped_by is not None:
                print(f"{outcome.stopped_by}: stopped after step {outcome.step} and wrote a checkpoint")
    if outcome.stopped_by is not None:
        raise RunError(f"run {spec.name} was stopped by {outcome.stopped_by} at step {outcome.step}")
    return {"name": spec.name, "state": "resumed" if state == "resumable" else "trained",
            "success_mean": outcome.result.success_mean}


@dataclass
class LaunchOutcome:
    """What `launch` ended with: the runs that failed, and the signal that stopped the sweep (None if it ran out)."""

    failed: list[str] = field(default_factory=list)
    stopped_by: str | None = None


def launch(sweep: Sweep, address: str | None, num_cpus: int | None, max_retries: int) -> LaunchOutcome:
    """Run every unfinished run of the sweep on Ray and print progress. On SIGINT or SIGTERM the queued runs
    are dropped and each running one is cancelled: Ray raises the cancel as SIGINT in the run's process, so
    the trainer writes a checkpoint of its last finished step and stops, and the sweep resumes it next time."""
    import ray

    specs = sweep.runs()
    todo = [s for s in specs if run_state(sweep.out / s.name, run_config(sweep, s).train.steps) != "finished"]
    print(f"sweep: {len(specs)} runs, {len(specs) - len(todo)} already finished, {len(todo)} to run -> {sweep.out}")
    outcome = LaunchOutcome()
    if not todo:
        return outcome
    ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    capacity = max(1, int(ray.cluster_resources().get("CPU", 1) // sweep.cpus))
    # a new worker process for each run (max_calls=1), so that a run uses the code as it is when the run starts,
    # the code its records name, not that of the commit an earlier run of the same worker started on
    remote = ray.remote(num_cpus=sweep.cpus, num_gpus=sweep.gpus, max_retries=max_retries, max_calls=1)(train_run)
    launched = time.time()
    pending = {remote.remote(sweep, spec): spec for spec in todo}
    done: list[str] = []
    cancelled: list[RunSpec] = []
    started = last_report = time.monotonic()
    with StopOnSignal() as stop:
        while pending:
            if stop.signal is not None and outcome.stopped_by is None:
                outcome.stopped_by = stop.signal
                print(f"sweep: {stop.signal}: each running run writes a checkpoint and stops; queued runs do not "
                      f"start (a second signal ends the sweep at once)", flush=True)
                for ref in pending:
                    ray.cancel(ref)
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=2)  # short: the signal is seen between waits
            for ref in ready:
                spec = pending.pop(ref)
                try:
                    result = ray.get(ref)
                    done.append(spec.name)
                    print(f"  {spec.name}: {result['state']}, final success "
                          f"{result.get('success_mean', float('nan')):.2f}")
                except Exception as error:  # a run that raised, was cancelled, or whose worker died too often
                    if outcome.stopped_by is not None:
                        cancelled.append(spec)
                        continue
                    outcome.failed.append(spec.name)
                    print(f"  {spec.name}: FAILED ({str(error).strip().splitlines()[-1]}); "
                          f"see {sweep.out / spec.name}/train.log")
            # progress on every change, else every 10 minutes, until a stop
            if outcome.stopped_by is None and (ready or time.monotonic() - last_report > 600):
                running = min(len(pending), capacity)
                print(f"[{(time.monotonic() - started) / 60:5.1f} min] done {len(done)}, running {running}, "
                      f"queued {len(pending) - running}, failed {len(outcome.failed)}", flush=True)
                last_report = time.monotonic()
    ray.shutdown()
    if outcome.stopped_by is not None:
        report_stopped_runs([sweep.out / spec.name for spec in cancelled], launched)
    return outcome


def report_stopped_runs(run_dirs: list[Path], launched: float) -> None:
    """Print how the runs cancelled by a stopping sweep were left: those that ran in this launch (their log
    was written since `launched`) with their newest checkpoint, and how many queued runs never started."""
    ran = [d for d in run_dirs if (d / "train.log").is_file() and (d / "train.log").stat().st_mtime >= launched]
    for run_dir in ran:
        checkpoints = list_checkpoints(run_dir)
        print(f"  {run_dir.name}: stopped, " + (f"checkpoint {checkpoints[-1].name} (resumed from it next time)"
                                                 if checkpoints else "before its first checkpoint (starts again)"))
    print(f"  {len(run_dirs) - len(ran)} queued run(s) not started")


def parse_args() -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m mtrl.sweep", description="Run a methods x seeds grid on Ray.")
    parser.add_argument("sweep", type=Path, help="a sweep file, e.g. configs/sweeps/mt10_cpu.yaml")
    parser.add_argument("--address", help="an existing Ray cluster ('auto' or host:port); default: a local one")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--max-retries", type=int, default=3, help="times a run is resumed after its worker dies")
    parser.add_argument("--out", type=Path, help="override the sweep file's output directory")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sweep = load_sweep(args.sweep)
    if args.out:
        sweep.out = args.out.resolve()
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ConfigError("sweeps need Ray: pip install -e \".[sweep]\"") from None
    sweep.out.mkdir(parents=True, exist_ok=True)
    outcome = launch(sweep, args.address, args.num_cpus, args.max_retries)
    if outcome.stopped_by is not None:
        raise SystemExit(f"sweep stopped by {outcome.stopped_by}; run the same command to resume it")
    from mtrl.results import write_report

    written = write_report([sweep.out / s.name for s in sweep.runs() if s.name not in outcome.failed], sweep.out)
    print("wrote " + ", ".join(str(p) for p in written))
    if outcome.failed:
        raise SystemExit(f"error: {len(outcome.failed)} run(s) failed: {', '.join(outcome.failed)}; "
                         f"run the sweep again to resume them")
