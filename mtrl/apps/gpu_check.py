"""The GPU check: what one training machine affords, measured in a few minutes, as a `BENCHMARKS.md` section.

    python -m mtrl.bench --gpu-check            # on a GPU machine: the GPU preset, every core for the collector
    python -m mtrl.bench --gpu-check --device cpu --check-steps 300   # the same measurements, smaller, on a CPU

It measures, on the device it is given:
- every method's update cost at the preset, as a ratio to `mtsac`, and `mtsac`'s update with each speed option
  (`sac.compile`; on a GPU `sac.cuda_graph`, alone and with `sac.compile`) against its eager one;
- the update cost of wider critics (layer-normed residual blocks, as BRO and BRC use) at the preset's batch,
  with the fastest update option, against the time the collector needs for one environment step: up to that
  width the update is free once it overlaps with collection;
- the training loop end to end with the project's collector on as many workers as the machine has cores for:
  sequential, overlapped (`train.overlap`), and overlapped with the fastest update option; runs interleaved;
- the time of one round of evaluation episodes, on one copy of the benchmark and on as many copies side by side
  as the cores allow (`env.eval_copies`, where the protocol draws a new goal at each reset), and from these the
  projected wall clock of a full run of the preset.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path

import torch

from mtrl.config import Config, load_config
from mtrl.envs import NUM_TASKS, PROTOCOLS


def collector_workers() -> int:
    """One worker per core, the main process keeping one core; at most one per task."""
    return max(1, min(NUM_TASKS, (os.cpu_count() or 2) - 1))


def timed_loop(preset: Path, device: torch.device, steps: int, workers: int, options: list[str],
               ) -> dict[str, float]:
    """Seconds of a short training run of `preset` with `options` on the collector's workers (updates from step
    100, one single-episode evaluation at the end): waiting for the envs, updating, evaluating, and in total."""
    from mtrl.apps.bench import timed_run

    return timed_run(preset, steps, [f"train.log_every={min(steps, 1000)}", "env.eval_episodes=1",
                                     "env.vector=workers", f"env.workers={workers}", f"device={device}", *options],
                     warmup=100)


def loop_rates(preset: Path, device: torch.device, steps: int, rounds: int, workers: int,
               modes: dict[str, list[str]]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Training steps per second (evaluation left out) of each loop mode (name: its options), `rounds` runs
    each, interleaved; medians, and the seconds of each mode's median run."""
    runs: dict[str, list[tuple[float, dict[str, float]]]] = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode, mode_runs in runs.items():
            seconds = timed_loop(preset, device, steps, workers, modes[mode])
            mode_runs.append((steps / (seconds["total"] - seconds["evaluation"]), seconds))
    medians = {mode: statistics.median(rate for rate, _ in r) for mode, r in runs.items()}
    typical = {mode: sorted(r, key=lambda run: run[0])[len(r) // 2][1] for mode, r in runs.items()}
    return medians, typical


def evaluation_copies(cfg: Config) -> int:
    """Copies of the benchmark an evaluation can step side by side here: two worker processes each, one core
    left for the main process; 1 where the protocol's goals are fixed (every copy would repeat the episodes)."""
    protocol = PROTOCOLS[cfg.env.protocol]
    if protocol.fixed_goals:
        return 1
    return max(1, min((os.cpu_count() or 2) // 2, cfg.env.eval_episodes or protocol.eval_episodes))


def evaluation_round_seconds(preset: Path, device: torch.device, copies: int) -> float:
    """Seconds of one round of evaluation: `copies` copies of the benchmark side by side (each on two worker
    processes), one episode each, acted by an untrained agent, whose episodes run to the time limit."""
    from mtrl.envs import benchmark_copies
    from mtrl.evaluation import evaluate
    from mtrl.sac import MTSAC

    cfg = load_config(preset, [f"device={device}"])
    envs = benchmark_copies(cfg.env.protocol, cfg.seed, copies, cfg.env.reward_version, vector="workers", workers=2)
    try:
        agent = MTSAC(cfg, envs[0].obs_dim, envs[0].action_dim, envs[0].num_tasks, device)
        start = time.perf_counter()
        evaluate(agent, envs, episodes=copies)
        return time.perf_counter() - start
    finally:
        for env in envs:
            env.close()


# Ways to run `mtsac`'s update, timed against eager; CUDA graphs only on a GPU.
UPDATE_OPTIONS = {"sac.compile": ["sac.compile=true"], "sac.cuda_graph": ["sac.cuda_graph=true"],
                  "sac.cuda_graph + sac.compile": ["sac.cuda_graph=true", "sac.compile=true"]}


def update_option_costs(preset: Path, device: torch.device, repeats: int, updates: int,
                        ) -> dict[str, tuple[float, float] | str]:
    """Each update option's (eager, optioned) seconds per update, timed in pairs, interleaved; where an option
    fails on this device, the first line of its error instead."""
    from mtrl.apps.bench import timed_updates

    results: dict[str, tuple[float, float] | str] = {}
    for name, options in UPDATE_OPTIONS.items():
        if device.type != "cuda" and "sac.cuda_graph=true" in options:
            continue
        configs = {"eager": load_config(preset, [f"device={device}"]),
                   name: load_config(preset, [f"device={device}", *options])}
        try:
            costs = timed_updates(configs, device, repeats, updates)
            results[name] = (costs["eager"], costs[name])
        except Exception as error:  # a measurement: say what failed and go on with the others
            results[name] = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"[:300]
        _show({name: results[name]})
    return results


def fastest_update_options(results: dict[str, tuple[float, float] | str]) -> tuple[str, list[str]] | None:
    """The update option that paid most, if any did."""
    paying = {}
    for name, result in results.items():
        if not isinstance(result, str) and result[0] / result[1] > 1.05:
            paying[name] = result[0] / result[1]
    if not paying:
        return None
    best = max(paying, key=paying.get)
    return best, UPDATE_OPTIONS[best]


def _show(result) -> None:
    print(result, flush=True)


WIDTHS = (1024, 2048, 4096)


def width_configs(preset: Path, widths: tuple[int, ...], device: torch.device, options: list[str],
                  ) -> dict[str, Config]:
    """The preset, and its critic made wider with layer-normed residual blocks (actor unchanged)."""
    base = [f"device={device}", *options]
    configs = {"preset": load_config(preset, base)}
    for width in widths:
        configs[f"critic {width} wide, residual"] = load_config(
            preset, [*base, f"net.critic.hidden_dim={width}", "net.critic.residual=true"])
    return configs


def gpu_check_section(preset: Path, device: torch.device, steps: int, rounds: int, repeats: int, updates: int,
                      widths: tuple[int, ...] = WIDTHS) -> list[str]:
    from mtrl.apps.bench import timed_updates, update_costs

    cfg = load_config(preset)
    workers = collector_workers()
    costs = update_costs(preset, device, repeats, updates)
    _show(costs)
    options = update_option_costs(preset, device, repeats, updates)
    fastest = fastest_update_options(options)
    fast_name, fast_options = fastest if fastest else ("eager", [])
    wide = timed_updates(width_configs(preset, widths, device, fast_options), device, repeats, updates)
    _show(wide)
    modes = {"sequential": [], "overlapped": ["train.overlap=true"]}
    if fastest:
        modes[f"overlapped, {fast_name}"] = ["train.overlap=true", *fast_options]
    rates, typical = loop_rates(preset, device, steps, rounds, workers, modes)
    _show(rates)
    rounds_seconds = {c: evaluation_round_seconds(preset, device, c) for c in sorted({1, evaluation_copies(cfg)})}
    _show(rounds_seconds)
    env_per_step = typical["sequential"]["env"] / steps  # waiting for the workers, nothing overlapped

    lines = ["## GPU check", "",
             f"Preset `{preset.relative_to(preset.parents[1])}` ({cfg.env.protocol}, actor "
             f"{cfg.net.actor.hidden_layers} x {cfg.net.actor.hidden_dim}, critic {cfg.net.critic.hidden_layers} x "
             f"{cfg.net.critic.hidden_dim}, batch {cfg.sac.batch_size}) on `{device}`, the collector on {workers} "
             f"worker processes.", "",
             f"Update cost per method, same batch, interleaved, median of {repeats} repeats of {updates} updates:", "",
             "| method | ms per update | ratio to `mtsac` |", "|---|---|---|"]
    lines += [f"| `{m}` | {s * 1e3:.2f} | {s / costs['mtsac']:.2f}x |" for m, s in costs.items()]
    lines += ["", "`mtsac`'s update with each speed option against eager, each pair interleaved (after 3 warm-up "
                  "updates that compile and record):", "",
              "| option | eager ms | with the option ms | speed-up |", "|---|---|---|---|"]
    for name, result in options.items():
        if isinstance(result, str):
            lines.append(f"| `{name}` | | failed here: {result} | |")
        else:
            lines.append(f"| `{name}` | {result[0] * 1e3:.2f} | {result[1] * 1e3:.2f} | "
                         f"{result[0] / result[1]:.2f}x |")
    lines += ["", f"Wider critics (`mtsac`, update: {fast_name}), against the {env_per_step * 1e3:.1f} ms the "
                  "collector takes per environment step: an update below it is hidden entirely by the overlapped "
                  "loop.", "",
              "| critic | ms per update | ratio to the preset | below one env step |", "|---|---|---|---|"]
    lines += [f"| {name} | {s * 1e3:.2f} | {s / wide['preset']:.2f}x | {'yes' if s < env_per_step else 'no'} |"
              for name, s in wide.items()]
    lines += ["", f"Training loop end to end, {steps} steps per run (updates from step 100), {rounds} runs of each "
                  "loop interleaved, medians; evaluation left out:", "",
              "| loop | env-steps/s (x10 tasks) | waiting for envs | update | other |", "|---|---|---|---|---|"]
    for mode, rate in rates.items():
        seconds = typical[mode]
        loop = seconds["total"] - seconds["evaluation"]
        other = loop - seconds["env"] - seconds["update"]
        lines.append(f"| {mode} | {rate:.1f} ({rate * NUM_TASKS:.0f}) | {seconds['env'] / loop:.0%} | "
                     f"{seconds['update'] / loop:.0%} | {other / loop:.0%} |")
    best = max(rates, key=rates.get)
    episodes = cfg.env.eval_episodes or PROTOCOLS[cfg.env.protocol].eval_episodes
    evaluation = {c: math.ceil(episodes / c) * t for c, t in rounds_seconds.items()}  # seconds per evaluation
    copies = min(evaluation, key=evaluation.get)
    lines += ["", f"Evaluation ({episodes} episodes per task), from one round of episodes with the untrained policy, "
                  "whose episodes run to the time limit (an upper bound):", "",
              "| copies of the benchmark side by side | one round s | rounds | s per evaluation |", "|---|---|---|---|"]
    lines += [f"| {c} (`env.eval_copies={c}`, 2 workers each) | {t:.1f} | {math.ceil(episodes / c)} | "
              f"{evaluation[c]:.0f} |" for c, t in rounds_seconds.items()]
    evaluations = cfg.train.steps // cfg.train.eval_every
    train_hours = cfg.train.steps / rates[best] / 3600
    eval_hours = evaluations * evaluation[copies] / 3600
    lines += ["", f"Overlapped against sequential: **{rates['overlapped'] / rates['sequential']:.2f}x**; the "
                  f"fastest loop ({best}) against sequential: **{rates[best] / rates['sequential']:.2f}x**.", "",
              f"Projected wall clock of a full run of the preset ({cfg.train.steps:,} steps, {best} loop, "
              f"`env.eval_copies={copies}`): **{train_hours + eval_hours:.1f} h**: {train_hours:.1f} h of training "
              f"and {eval_hours:.1f} h for {evaluations} evaluations.", ""]
    return lines
