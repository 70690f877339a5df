"""Benchmarks, measured side by side in one process; writes BENCHMARKS.md.

    python -m mtrl.bench                    # everything, on this machine's default device
    python -m mtrl.bench --only update --repeats 15

- update: every method's full SAC update (critic, actor, temperature) on the same batch, for the paper's
  network size and for the CPU preset, interleaved round-robin so that drifts of the machine hit every method
  alike; medians over repeats, as a ratio to `mtsac`.
- options: the update cost of each variant of an ablation sweep (network and loss options), per update and
  per environment step, as a ratio to the first variant.
- baseline (with --baseline REF): every method's update cost on this tree against the code of git commit
  REF, in alternating subprocesses, as a ratio to REF's.
- compile: the update with `sac.compile=true` against eager, at both presets, and the share of matrix products.
- instructions (with --baseline REF): every method's update in CPU instructions (valgrind), this tree or
  --candidate REF against REF: a comparison that does not drift with the machine's load
  (`mtrl/apps/instruction_count.py`).
- collection: env-steps/s of each task's env alone (their combination is the one-core limit) and of
  Gymnasium's sync and async vector envs.
- end-to-end: where the training loop's wall clock goes at the CPU preset, and peak memory.
- memory: replay buffer bytes per transition.
- soak (with --soak-run): resident memory over a long training run, from its TensorBoard events.
- gpu-check (also --gpu-check): on the device, every method's update cost at the GPU preset, wider critics,
  the training loop sequential and overlapped, and a full run's projected wall clock (`mtrl/apps/gpu_check.py`).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mtrl.apps.gpu_check import WIDTHS, FiguresFileError, gpu_check_section, open_figures
from mtrl.apps.instruction_count import instructions_section
from mtrl.cli import ArgumentParser, device_arg, positive_int
from mtrl.combiners import COMBINERS
from mtrl.config import Config, load_config
from mtrl.envs import ACTION_DIM, NUM_TASKS, PROTOCOLS, STATE_DIM
from mtrl.provenance import code_version, machine, short_commit
from mtrl.replay import Batch, MultiTaskReplay
from mtrl.runtime import resolve_device
from mtrl.sac import MTSAC
from mtrl.trainer import run_replay

ROOT = Path(__file__).resolve().parents[2]  # the repository: mtrl/apps/bench.py -> ../../
PRESETS = {"paper (3x400, batch 1280)": ROOT / "configs/mt10.yaml",
           "cpu preset (2x256, batch 640)": ROOT / "configs/mt10_cpu.yaml"}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _filled_replay(device: torch.device, transitions: int = 2000) -> MultiTaskReplay:
    rng = np.random.default_rng(0)
    replay = MultiTaskReplay(NUM_TASKS, transitions, STATE_DIM, ACTION_DIM, device)
    for _ in range(transitions):
        obs = rng.normal(size=(NUM_TASKS, STATE_DIM)).astype(np.float32)
        replay.add(obs, rng.uniform(-1, 1, (NUM_TASKS, ACTION_DIM)), rng.normal(size=NUM_TASKS), obs,
                   np.zeros(NUM_TASKS, bool), np.zeros(NUM_TASKS, bool))
    return replay


def update_costs(config_path: Path, device: torch.device, repeats: int, updates: int,
                 overrides: Sequence[str] = ()) -> dict[str, float]:
    """Median seconds per update for every method on one fixed batch."""
    configs = {method: load_config(config_path, list(overrides), method=method) for method in COMBINERS}
    return timed_updates(configs, device, repeats, updates)


def warmed_up_agents(configs: dict[str, Config], device: torch.device) -> tuple[dict[str, MTSAC], dict[str, Batch]]:
    """An agent per config (same seed) and its batch, after 3 updates each on it (allocator, lazy
    initialisation, compilation, first-call overheads). Configs of one batch size share one batch."""
    replay = _filled_replay(device)
    by_size: dict[int, Batch] = {}
    agents, batches = {}, {}
    for name, cfg in configs.items():
        torch.manual_seed(0)
        agents[name] = MTSAC(cfg, STATE_DIM + NUM_TASKS, ACTION_DIM, NUM_TASKS, device)
        per_task = cfg.sac.batch_size // NUM_TASKS
        if per_task not in by_size:
            by_size[per_task] = replay.sample(per_task)
        batches[name] = by_size[per_task]
    for name, agent in agents.items():
        for _ in range(3):
            agent.update(batches[name])
    return agents, batches


def timed_updates(configs: dict[str, Config], device: torch.device, repeats: int, updates: int) -> dict[str, float]:
    """Median seconds per update of an agent built from each config, interleaved round-robin, each on its
    batch (one batch per batch size)."""
    agents, batches = warmed_up_agents(configs, device)
    samples: dict[str, list[float]] = {m: [] for m in agents}
    for _ in range(repeats):
        for method, agent in agents.items():
            _sync(device)
            start = time.perf_counter()
            for _ in range(updates):
                agent.update(batches[method])
            _sync(device)
            samples[method].append((time.perf_counter() - start) / updates)
    return {m: statistics.median(s) for m, s in samples.items()}


TARGETS = {"mtsac": 1.0, "ntkmtl_sr": 1.10, "famo": 1.10, "ntkmtl": 1.30, "pcgrad": 1.5, "cagrad": 1.5,
           "fairgrad": 1.5, "aligned_mtl": 1.5, "nashmtl": 2.0}


def update_section(device: torch.device, repeats: int, updates: int) -> list[str]:
    lines = ["## Update cost per method", "",
             "One full SAC update (critic + actor + temperature) on the same batch, every method interleaved "
             f"round-robin, median of {repeats} repeats of {updates} updates each; ratio to `mtsac`.", ""]
    header = "| method | target |"
    rows: dict[str, str] = {m: f"| `{m}` | <= {TARGETS[m]:.2f}x |" for m in COMBINERS}
    for name, path in PRESETS.items():
        costs = update_costs(path, device, repeats, updates)
        header += f" {name}: ms | ratio |"
        for method, seconds in costs.items():
            ratio = seconds / costs["mtsac"]
            verdict = "" if ratio <= TARGETS[method] + 1e-9 else " (missed)"
            rows[method] += f" {seconds * 1e3:.2f} | {ratio:.2f}x{verdict} |"
        print(f"{name}: " + ", ".join(f"{m} {costs[m] / costs['mtsac']:.2f}x" for m in costs))
    lines += [header, "|" + "---|" * (header.count("|") - 1)] + list(rows.values())
    return lines + [""]


# Run in a tree's own interpreter: that tree's update costs as JSON, {preset: {method: seconds}}.
_COSTS_OF_A_TREE = """
import json, sys, torch
try:
    from mtrl.apps.bench import PRESETS, update_costs
except ImportError:  # commits from before the applications moved into mtrl/apps
    from mtrl.bench import PRESETS, update_costs
device, threads, repeats, updates = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if threads:
    torch.set_num_threads(threads)
print(json.dumps({name: update_costs(path, torch.device(device), repeats, updates) for name, path in PRESETS.items()}))
"""


def baseline_section(ref: str, device: torch.device, rounds: int, repeats: int, updates: int,
                     threads: int) -> list[str]:
    """Each method's update cost on this tree against commit `ref`'s code: the two trees are measured in
    alternating subprocesses, `rounds` times each, so that drifts of the machine hit both alike."""
    commit = short_commit(ref, ROOT)
    with tempfile.TemporaryDirectory() as scratch:
        baseline_tree = Path(scratch) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(baseline_tree), commit], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            samples: dict[str, list[dict]] = {"baseline": [], "this tree": []}
            for round_ in range(rounds):
                for label, tree in (("baseline", baseline_tree), ("this tree", ROOT)):
                    out = subprocess.run([sys.executable, "-c", _COSTS_OF_A_TREE, device.type, str(threads),
                                          str(repeats), str(updates)], cwd=tree, check=True, capture_output=True,
                                         text=True, env={**os.environ, "PYTHONPATH": str(tree)}).stdout
                    samples[label].append(json.loads(out.strip().splitlines()[-1]))
                print(f"baseline round {round_ + 1}/{rounds} done")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline_tree)], cwd=ROOT, check=False,
                           capture_output=True)
    lines = ["## Update cost against a baseline commit", "",
             f"Every method's full SAC update on this tree against the code of commit {commit}, each tree in its "
             f"own process, alternating, {rounds} rounds of {repeats} repeats of {updates} updates; medians over "
             "rounds of each round's median.", ""]
    header = "| method |"
    rows = {m: f"| `{m}` |" for m in samples["baseline"][0][next(iter(PRESETS))]}
    for preset in PRESETS:
        header += f" {preset}: {commit} ms | this tree ms | ratio |"
        for method in rows:
            old = statistics.median(r[preset][method] for r in samples["baseline"])
            new = statistics.median(r[preset][method] for r in samples["this tree"])
            rows[method] += f" {old * 1e3:.2f} | {new * 1e3:.2f} | {new / old:.3f}x |"
    lines += [header, "|" + "---|" * (header.count("|") - 1)] + list(rows.values())
    print("\n".join(lines))
    return lines + [""]


def options_section(sweep_file: Path, device: torch.device, repeats: int, updates: int) -> list[str]:
    """The cost of each variant of an ablation sweep: one update, and the updates of one environment step
    (`train.updates_per_step` of them), relative to the sweep's first variant, or, where no variant leaves the
    sweep's configuration as it is, to that configuration (`base`)."""
    from mtrl.apps.sweep import RunSpec, load_sweep, run_config

    sweep = load_sweep(sweep_file)
    method, seed = sweep.methods[0], sweep.seeds[0]
    first_runs = [spec for spec in sweep.runs() if spec.seed == seed and spec.method == method]
    if sweep.variants and all(sweep.variants.values()):  # each variant changes something: time the sweep as it is
        first_runs.insert(0, RunSpec("base", method, seed, tuple(sweep.overrides)))
    configs = {cfg.label or spec.name: cfg for spec in first_runs for cfg in [run_config(sweep, spec)]}
    costs = timed_updates(configs, device, repeats, updates)
    first = next(iter(costs))
    per_step = {name: seconds * configs[name].train.updates_per_step for name, seconds in costs.items()}
    lines = [f"## Update cost of the options in `{sweep_file.name}`", "",
             f"Each variant's SAC update (`{method}`), each on a batch of its batch size (variants of one size share "
             f"it), interleaved round-robin, median of {repeats} repeats of {updates} updates; per environment step, "
             "times `train.updates_per_step`; "
             f"ratios to `{first}`" + (" (the sweep's configuration without a variant)" if first == "base" else "")
             + ".", "",
             "| variant | ms per update | ratio | ms per environment step | ratio |", "|---|---|---|---|---|"]
    for name, seconds in costs.items():
        lines.append(f"| `{name}` | {seconds * 1e3:.2f} | {seconds / costs[first]:.2f}x | {per_step[name] * 1e3:.2f} | "
                     f"{per_step[name] / per_step[first]:.2f}x |")
    print("\n".join(lines))
    return lines + [""]


MATMULS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def profiled_split(cfg: Config, device: torch.device, updates: int = 10) -> tuple[float, float]:
    """Profiled CPU seconds per update in matrix products and in everything else: a compiler can shorten only
    the second."""
    from torch.profiler import profile

    agents, batches = warmed_up_agents({"profiled": cfg}, device)
    with profile() as prof:
        for _ in range(updates):
            agents["profiled"].update(batches["profiled"])
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e6 / updates
    matmuls = sum(e.self_cpu_time_total for e in events if e.key in MATMULS) / 1e6 / updates
    return matmuls, total - matmuls


def compile_section(device: torch.device, repeats: int, updates: int) -> list[str]:
    """The compiled update (`sac.compile=true`) against the eager one, `mtsac` at both presets."""
    lines = ["## Compiled update", "",
             f"`mtsac`'s update eager and with `sac.compile=true` (torch.compile of its forward-and-loss functions; "
             f"CUDA graphs on a GPU), interleaved on the same batch, median of {repeats} repeats of {updates} updates "
             "after 3 warm-up updates (compilation excluded). On the CPU each update is also profiled, eager and "
             "compiled: the time in matrix products, which no compiler removes, bounds what compiling the rest can "
             "gain, and the time in everything else shows what compiling did to it (profiled times run above the "
             "timed ones).", "",
             "| preset | eager ms | compiled ms | speed-up | matrix products, eager / compiled ms | everything else, "
             "eager / compiled ms | bound on the speed-up |", "|---|---|---|---|---|---|---|"]
    for name, path in PRESETS.items():
        configs = {"eager": load_config(path), "compiled": load_config(path, ["sac.compile=true"])}
        costs = timed_updates(configs, device, repeats, updates)
        split = "n/a (profiled on the CPU only) | n/a | n/a"
        if device.type == "cpu":
            (mm_eager, rest_eager), (mm_compiled, rest_compiled) = (profiled_split(configs[k], device)
                                                                    for k in ("eager", "compiled"))
            split = (f"{mm_eager * 1e3:.1f} / {mm_compiled * 1e3:.1f} | {rest_eager * 1e3:.1f} / "
                     f"{rest_compiled * 1e3:.1f} | {(mm_eager + rest_eager) / mm_eager:.2f}x")
        lines.append(f"| {name} | {costs['eager'] * 1e3:.2f} | {costs['compiled'] * 1e3:.2f} | "
                     f"{costs['eager'] / costs['compiled']:.2f}x | {split} |")
    print("\n".join(lines))
    return lines + [""]


def replay_section() -> list[str]:
    cfg = load_config(PRESETS["cpu preset (2x256, batch 640)"])
    episode = PROTOCOLS[cfg.env.protocol].max_episode_steps
    per_transition = run_replay(cfg, torch.device("cpu")).bytes_per_transition()
    raw = 4 * (STATE_DIM + ACTION_DIM + 1) + 1  # float32 observation, action, reward; a one-byte terminal flag
    ratio = per_transition / raw
    return ["## Replay memory", "",
            f"{per_transition:.1f} bytes per transition at the CPU preset ({cfg.env.protocol}: {episode}-step "
            f"episodes), against {raw} raw bytes of the stored fields (float32 observation, action and reward, a "
            f"one-byte terminal flag): **{ratio:.2f}x**, {_verdict(ratio <= 1.1)} the 1.10x target. Each observation "
            f"is stored once; the rest is a 4-byte pointer per slot to the episode-end table, which holds one final "
            f"observation per episode. The CPU preset's buffer of {cfg.train.buffer_capacity:,} transitions takes "
            f"{per_transition * cfg.train.buffer_capacity / 2**20:.0f} MiB.", ""]


def _steps_per_second(step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return n / (time.perf_counter() - start)


def collection_section(steps: int, repeats: int = 5) -> list[str]:
    """Env-steps/s: each task's own env alone, the ten as Gymnasium sync and async vector envs, and the
    project's collector on one and two worker processes; contenders interleaved, medians of `repeats`."""
    from mtrl.envs import MT10, TASK_NAMES, task_env_fns

    # one sequence of random actions for every contender: how much an env step costs depends on the contacts
    # the arm makes, so all must drive the arms the same way
    chunk = max(1, steps // repeats)
    sequence = np.random.default_rng(0).uniform(-1, 1, (chunk * repeats, NUM_TASKS, ACTION_DIM)).astype(np.float32)
    singles = [make_env() for make_env in task_env_fns(PROTOCOLS["mt10-fixed"], seed=0)]  # MT10's own envs
    contenders = {  # id: (label, MT10 options)
        "sync": ("Gymnasium sync vector env (`env.vector=sync`)", {"vector": "sync"}),
        "async": ("Gymnasium async vector env (`env.vector=async`)", {"vector": "async"}),
        "1 worker": ("project collector, 1 worker process (`env.vector=workers env.workers=1`)",
                     {"vector": "workers", "workers": 1}),
        "2 workers": ("project collector, 2 worker processes (`env.vector=workers`)",
                      {"vector": "workers", "workers": 2}),
    }
    vectors = {key: MT10("mt10-fixed", seed=0, **options) for key, (_, options) in contenders.items()}
    for env in [*singles, *vectors.values()]:
        env.reset()

    def step_single(env, action) -> None:
        *_, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()

    single_rates: dict[str, list[float]] = {t: [] for t in TASK_NAMES}
    vector_rates: dict[str, list[float]] = {key: [] for key in contenders}
    for r in range(repeats):
        actions = sequence[r * chunk: (r + 1) * chunk]
        for i, (task, env) in enumerate(zip(TASK_NAMES, singles)):
            rows = iter(actions[:, i])
            single_rates[task].append(_steps_per_second(lambda: step_single(env, next(rows)), chunk))
        for key, env in vectors.items():
            rows = iter(actions)
            vector_rates[key].append(NUM_TASKS * _steps_per_second(lambda: env.step(next(rows)), chunk))
    for env in [*singles, *vectors.values()]:
        env.close()
    rates = {t: statistics.median(v) for t, v in single_rates.items()}
    medians = {key: statistics.median(v) for key, v in vector_rates.items()}
    one_core = NUM_TASKS / sum(1 / r for r in rates.values())  # all ten stepped in turn on one core
    sync, one_worker, two_workers = medians["sync"], medians["1 worker"], medians["2 workers"]
    lines = ["## Environment collection", "",
             f"Env-steps per second, every collector driving the arms with the same random actions: {repeats} "
             f"repeats of {chunk} steps (of all ten tasks for the vector envs), contenders interleaved, medians.", "",
             "| collector | env-steps/s | ratio to one-core limit | ratio to Gymnasium sync |", "|---|---|---|---|"]
    lines.append(f"| one-core limit: each of the ten tasks' own envs stepped alone | {one_core:.0f} | 1.00x | "
                 f"{one_core / sync:.2f}x |")
    for key, rate in medians.items():
        lines.append(f"| {contenders[key][0]} | {rate:.0f} | {rate / one_core:.2f}x | {rate / sync:.2f}x |")
    lines += ["", f"Targets: the collector on one worker reaches {one_worker / one_core:.2f}x of the one-core limit "
              f"({_verdict(one_worker / one_core >= 0.85)} >= 0.85x); on two workers {two_workers / sync:.2f}x "
              f"Gymnasium sync ({_verdict(two_workers / sync >= 1.5)} >= 1.5x).", "",
              "Each task alone: " + ", ".join(f"{t} {r:.0f}" for t, r in rates.items()) + " steps/s.", ""]
    return lines


def _verdict(met: bool) -> str:
    return "meets" if met else "MISSES"


def timed_run(preset: Path, steps: int, options: list[str], warmup: int = 200) -> dict[str, float]:
    """Seconds of env stepping, update, evaluation and total of a short training run of `preset` with
    `options`: updates from step `warmup`, one evaluation and one checkpoint at the end, the evaluation env
    built before the loop starts."""
    from mtrl.trainer import Trainer

    overrides = [f"train.steps={steps}", f"train.warmup_steps={warmup}", f"train.eval_every={steps}",
                 f"train.checkpoint_every={steps}", *options]
    cfg = load_config(preset, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run")
        trainer.evaluate()  # builds the evaluation env outside the measured loop
        trainer.train()
    return dict(trainer.seconds)


# each loop set in full, whatever the preset sets: label -> (env.vector, train.overlap, train.threads); the last
# gives the environment workers a core of their own while the update runs, at the price of one of its two threads
LOOP_THREADS = 2
LOOPS = {"`env.vector=sync`": ("sync", False, LOOP_THREADS),
         "`env.vector=workers`": ("workers", False, LOOP_THREADS),
         "`env.vector=workers train.overlap=true`": ("workers", True, LOOP_THREADS),
         "`env.vector=workers train.overlap=true train.threads=1`": ("workers", True, 1)}


def loop_options(vector: str, overlap: bool, threads: int | None = None) -> list[str]:
    """Overrides for one training loop; `threads` None keeps the preset's torch threads."""
    options = [f"env.vector={vector}", f"train.overlap={str(overlap).lower()}"]
    return options if threads is None else [*options, f"train.threads={threads}"]


def end_to_end_section(steps: int, rounds: int = 2) -> list[str]:
    """Where the training loop's time goes at the CPU preset, in steady state (after the first evaluation
    env is built): with Gymnasium's sync vector env, the project's collector, and the collector overlapped
    with the update on the preset's torch threads and on one; runs interleaved, the median run of each shown;
    and the process's peak resident memory."""
    import resource

    preset = PRESETS["cpu preset (2x256, batch 640)"]
    cfg = load_config(preset)
    runs: dict[str, list[dict[str, float]]] = {loop: [] for loop in LOOPS}
    for _ in range(rounds):
        for loop, setting in LOOPS.items():
            runs[loop].append(timed_run(preset, steps, loop_options(*setting)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = ["## Training loop end to end", "",
             f"CPU preset, {steps} steps per run (updates from step 200; one evaluation and one checkpoint, as the "
             f"preset does every {cfg.train.eval_every:,} and {cfg.train.checkpoint_every:,} steps; "
             f"{LOOP_THREADS} torch threads where the loop's label names no other number), {rounds} runs "
             "of each loop interleaved; the run with the median total is shown:", "",
             "| loop | env stepping (waiting for it) | SAC update | everything else (acting, replay, logging, "
             "evaluation, checkpoint) | total | steps/s |", "|---|---|---|---|---|---|"]
    median = {loop: sorted(r, key=lambda seconds: seconds["total"])[len(r) // 2] for loop, r in runs.items()}
    for loop, seconds in median.items():
        total = seconds["total"]
        other = total - seconds["env"] - seconds["update"]
        lines.append(f"| {loop} | {seconds['env']:.1f} s ({seconds['env'] / total:.0%}) | "
                     f"{seconds['update']:.1f} s ({seconds['update'] / total:.0%}) | {other:.1f} s "
                     f"({other / total:.0%}, {_verdict(other / total < 0.10)} < 10%) | {total:.1f} s | "
                     f"{steps / total:.1f} |")
    sequential, overlapped = median["`env.vector=workers`"], median["`env.vector=workers train.overlap=true`"]
    one_thread = median["`env.vector=workers train.overlap=true train.threads=1`"]
    bound = sequential["total"] / (sequential["total"] - min(sequential["env"], sequential["update"]))
    lines += ["", f"Overlapped against the sequential loop on the same collector: "
                  f"**{sequential['total'] / overlapped['total']:.2f}x**. The bound, were env stepping hidden "
                  f"entirely behind the update at no cost to it: {bound:.2f}x (the sequential loop's total over its "
                  "total less the shorter of the two). Overlapped with one torch thread, the other core left to the "
                  "workers: "
                  f"**{sequential['total'] / one_thread['total']:.2f}x** the sequential loop.", ""]
    return lines + [f"Peak resident memory of the benchmark process: {peak:.0f} MiB.", ""]


def soak_section(run_dir: Path) -> list[str]:
    """Resident memory over a long run, from the `perf/resident_mib` curve its TensorBoard events hold. The
    replay buffer is allocated and zeroed when the run starts, so a flat curve means nothing grows."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    points = events.Scalars("perf/resident_mib")
    start = points[0].wall_time
    rows = points[:: max(1, len(points) // 12)]
    rows += [] if rows[-1] is points[-1] else [points[-1]]
    lines = ["## Memory over a long run", "",
             f"Resident memory (`perf/resident_mib`, logged by `train.py`) of the CPU-preset run in `{run_dir}`, read "
             "from its TensorBoard events. The replay buffer is preallocated and zeroed at the start, so it is "
             "resident from the first step; any growth would be a leak.", "",
             "| minutes | step | resident MiB |", "|---|---|---|"]
    lines += [f"| {(p.wall_time - start) / 60:.1f} | {p.step} | {p.value:.0f} |" for p in rows]
    settled = [p.value for p in points[len(points) // 10:]]
    lines += ["", f"After the first tenth of the run, resident memory stays within {min(settled):.0f}-"
                  f"{max(settled):.0f} MiB over {(points[-1].wall_time - start) / 60:.0f} minutes and "
                  f"{points[-1].step:,} steps.", ""]
    return lines


SECTIONS = ("update", "options", "compile", "collection", "end-to-end", "memory", "soak", "baseline", "instructions",
            "gpu-check")


def _read_sections(path: Path) -> dict[str, list[str]]:
    """The `## ` sections of an existing BENCHMARKS.md, so that a partial run replaces only its own."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines() if path.is_file() else []:
        if line.startswith("## "):
            current = line
            sections[current] = []
        if current is not None:
            sections[current].append(line)
    return sections


def render_benchmarks(sections: dict[str, list[str]]) -> str:
    """BENCHMARKS.md: its header, then the sections in order, one blank line between them."""
    intro = ("Each section names the command, date and machine that measured it. Absolute times on a shared machine "
             "drift from one day to the next; the ratios, measured side by side within one section's run, are what "
             "compare.")
    lines = ["# Benchmarks", "", intro, ""]
    for block in sections.values():
        end = len(block)
        while end and not block[end - 1].strip():
            end -= 1
        lines += [*block[:end], ""]
    return "\n".join(lines)


def main() -> None:
    parser = ArgumentParser(prog="python -m mtrl.bench", description="Measure update cost and memory; write "
                                                                    "BENCHMARKS.md.")
    parser.add_argument("--device", type=device_arg, default="auto",
                        help="auto (the GPU where there is one, the CPU otherwise), cpu, cuda or cuda:N")
    parser.add_argument("--repeats", type=positive_int, default=9)
    parser.add_argument("--updates", type=positive_int, default=10, help="updates per timed repeat")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--env-steps", type=positive_int, default=3000, help="env steps per collection measurement")
    parser.add_argument("--loop-steps", type=positive_int, default=3000, help="training steps of each end-to-end run")
    parser.add_argument("--loop-rounds", type=positive_int, default=3,
                        help="runs of each loop in the end-to-end section")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections")
    parser.add_argument("--soak-run", type=Path, help="a finished long run, for the soak section")
    parser.add_argument("--baseline", metavar="REF", help="git commit whose update cost this tree's is compared "
                                                          "with (section 'baseline')")
    parser.add_argument("--rounds", type=positive_int, default=4, help="alternations of the two trees for --baseline")
    parser.add_argument("--candidate", metavar="REF", help="for 'instructions': the commit measured against "
                                                           "--baseline (default: this working tree)")
    parser.add_argument("--sweep", type=Path, default=ROOT / "configs/sweeps/ablation_cpu.yaml",
                        help="the ablation sweep whose variants the 'options' section times")
    parser.add_argument("--gpu-check", action="store_true", help="only the 'gpu-check' section: on a GPU the GPU "
                                                                     "preset, on a CPU the CPU preset")
    parser.add_argument("--check-steps", type=int, default=800, help="training steps per loop run of the GPU check")
    parser.add_argument("--check-rounds", type=positive_int, default=1,
                        help="full-length runs of each loop in the GPU check")
    parser.add_argument("--check-preset", type=Path,
                        help="the preset the GPU check measures (default: configs/mt10_gpu.yaml on a GPU, "
                             "configs/mt10_cpu.yaml on a CPU)")
    parser.add_argument("--check-widths", type=int, nargs="+", help="wider critics the GPU check times (default: "
                                                                    "768 1024 on a GPU, 512 on a CPU)")
    parser.add_argument("--check-figures", type=Path, metavar="JSON",
                        help="keep the GPU check's figures in this file as they are measured; a check stopped "
                             "part-way, run again with the same file, measures only what is missing")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    on_demand = {"soak": args.soak_run, "baseline": args.baseline, "instructions": False, "gpu-check": False}
    sections = ["gpu-check"] if args.gpu_check else args.only or [s for s in SECTIONS if on_demand.get(s, True)]
    if "gpu-check" in sections and args.check_steps <= 100:
        parser.error(f"--check-steps must be above 100 (the first 100 steps collect without updating), "
                     f"got {args.check_steps}")
    if "soak" in sections and not args.soak_run:
        parser.error("--only soak needs --soak-run RUN_DIR (a long run of train.py)")
    for section in ("baseline", "instructions"):
        if section in sections and not args.baseline:
            parser.error(f"--only {section} needs --baseline REF (a git commit to compare with)")
    for ref in (args.baseline, args.candidate):
        if ref is not None:
            try:
                short_commit(ref, ROOT)
            except ValueError as error:
                parser.error(str(error))
    command = " ".join(["python -m mtrl.bench", *sys.argv[1:]])
    provenance = (f"Measured {time.strftime('%Y-%m-%d')} with `{command}` on {device.type} ({machine(device)}; "
                  f"{torch.get_num_threads()} torch threads), torch {torch.__version__}, Python "
                  f"{platform.python_version()}, code of commit {code_version()}.")
    check_preset = (args.check_preset or ROOT / ("configs/mt10_gpu.yaml" if device.type == "cuda"
                                                 else "configs/mt10_cpu.yaml")).resolve()
    check_widths = tuple(args.check_widths or (WIDTHS if device.type == "cuda" else (512,)))
    check_figures = None
    if "gpu-check" in sections:  # a figures file that cannot be resumed is refused before anything is measured
        try:
            check_figures = open_figures(args.check_figures, check_preset, device, args.check_steps,
                                         args.check_rounds, args.repeats, args.updates, check_widths)
        except FiguresFileError as error:
            parser.error(str(error))
    builders = {"update": lambda: update_section(device, args.repeats, args.updates),
                "collection": lambda: collection_section(args.env_steps),
                "end-to-end": lambda: end_to_end_section(args.loop_steps, args.loop_rounds),
                "memory": replay_section,
                "soak": lambda: soak_section(args.soak_run),
                "compile": lambda: compile_section(device, args.repeats, args.updates),
                "options": lambda: options_section(args.sweep, device, args.repeats, args.updates),
                "baseline": lambda: baseline_section(args.baseline, device, args.rounds, args.repeats, args.updates,
                                                     args.threads),
                "instructions": lambda: instructions_section(args.baseline, args.candidate, ROOT, args.updates),
                "gpu-check": lambda: gpu_check_section(check_preset, device, check_figures)}
    existing = _read_sections(args.out)
    for section in sections:
        heading, *body = builders[section]()
        existing[heading] = [heading, "", provenance, "", *body[1:]]
    args.out.write_text(render_benchmarks(existing))
    print(f"wrote {args.out}")
