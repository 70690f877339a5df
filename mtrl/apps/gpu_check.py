"""The GPU check: what one training machine affords, measured in about 8 minutes, as a `BENCHMARKS.md` section.

    python -m mtrl.bench --gpu-check            # on a GPU machine: the GPU preset, every core for the collector
    python -m mtrl.bench --gpu-check --device cpu --check-steps 300   # the same measurements, smaller, on a CPU

It measures, on the device it is given:
- every method's update cost at the preset, as a ratio to `mtsac`, and `mtsac`'s update with each speed option
  (`sac.compile`; on a GPU `sac.cuda_graph`, alone and with `sac.compile`) against its eager one;
- the update cost of the published critic and of wider critics (layer-normed residual blocks, as BRO and BRC
  use) at the preset's batch, with the fastest update option that compiles nothing (a CUDA graph where it
  pays), against the preset's, and against the time the collector needs for one environment step: up to that
  the update is free once it overlaps with collection;
- the training loop end to end with the project's collector on as many workers as the machine has cores for:
  sequential and eager, the preset as configured, and overlapped with the fastest update option; in steady
  state (a short run's seconds taken from a full run's);
- the time of one round of evaluation episodes, on one copy of the benchmark and on the preset's number of
  copies side by side (`env.eval_copies`), and from these the projected wall clock of a full run of the preset.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from mtrl.config import Config, load_config, to_dict
from mtrl.envs import NUM_TASKS
from mtrl.provenance import code_version


def collector_workers() -> int:
    """One worker per core, the main process keeping one core; at most one per task."""
    return max(1, min(NUM_TASKS, (os.cpu_count() or 2) - 1))


# the update of the published runs: eager, after each environment step
EAGER = ["sac.compile=false", "sac.cuda_graph=false", "train.overlap=false"]


def timed_loop(preset: Path, device: torch.device, steps: int, workers: int, options: list[str],
               ) -> dict[str, float]:
    """Seconds of a short training run of `preset` with `options` on the collector's workers (updates from step
    100, one single-episode evaluation at the end): waiting for the envs, updating, evaluating, and in total."""
    from mtrl.apps.bench import timed_run

    return timed_run(preset, steps, [f"train.log_every={min(steps, 1000)}", "env.eval_episodes=1",
                                     "env.eval_copies=1", "env.vector=workers", f"env.workers={workers}",
                                     f"device={device}", *options], warmup=100)


def short_run_steps(steps: int) -> int:
    """Steps of the short run whose seconds are taken from a full run's: a few updates, enough to compile."""
    return 100 + (steps - 100) // 4


def loop_rate(preset: Path, device: torch.device, steps: int, rounds: int, workers: int, options: list[str],
              ) -> dict:
    """Training steps per second of one loop mode (the preset with `options`) in steady state, and the seconds
    per step of each part of the loop. The mode runs once short and `rounds` times in full; the short run's
    seconds are taken from the median full run's, so that what every run pays once (compiling the update,
    recording its graphs, starting the workers) drops out, and evaluation is left out. A first short run of a
    compiled mode, not counted, fills the compiler's caches, so that every counted run finds them as warm."""
    short = short_run_steps(steps)
    compiled = load_config(preset, options).sac
    if compiled.compile or compiled.cuda_graph:
        timed_loop(preset, device, short, workers, options)
    once = timed_loop(preset, device, short, workers, options)
    runs = [timed_loop(preset, device, steps, workers, options) for _ in range(rounds)]
    median = sorted(runs, key=lambda seconds: seconds["total"])[len(runs) // 2]
    per_step = {key: (median[key] - once[key]) / (steps - short) for key in median}
    per_step["loop"] = per_step["total"] - per_step["evaluation"]
    return {"rate": 1 / per_step["loop"], "per_step": per_step}


class FiguresFileError(ValueError):
    """A figures file that this check cannot resume from: unreadable, or written by another setup."""


def preset_name(preset: Path) -> str:
    """A preset as the check names it: its folder and file name."""
    return str(preset.relative_to(preset.parents[1]))


def device_name(device: torch.device) -> str:
    """The GPU's model, which the figures depend on; "cpu" on a CPU."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def check_setup(preset: Path, device: torch.device, steps: int, rounds: int, repeats: int, updates: int,
                widths: tuple[int, ...], workers: int) -> dict:
    """What the check's figures depend on: figures of another setup (code, preset contents, device, sizes) are
    not mixed into one section."""
    settings = json.dumps(to_dict(load_config(preset)), sort_keys=True, default=str)
    return {"code": code_version(), "preset": preset_name(preset),
            "preset_settings": hashlib.sha256(settings.encode()).hexdigest()[:12], "device": device_name(device),
            "steps": steps, "rounds": rounds, "repeats": repeats, "updates": updates, "widths": list(widths),
            "workers": workers}


class FigureStore:
    """The figures measured so far, each written to a JSON file as soon as it is measured, so that a check
    stopped part-way (a job's time limit, a preemption) keeps them: run again with the same file, it measures
    only what is missing. The file records the check's setup, and refuses a different one."""

    def __init__(self, path: Path | None, setup: dict) -> None:
        self.path, self.figures = path, {"setup": setup, "seconds": {}}
        if path is None:
            return
        if not path.parent.is_dir():
            raise FiguresFileError(f"--check-figures {path}: folder {path.parent} does not exist")
        if path.exists():
            try:
                stored = json.loads(path.read_text())
            except json.JSONDecodeError as error:
                raise FiguresFileError(f"--check-figures {path} is not a figures file ({error})") from None
            if not isinstance(stored, dict) or not isinstance(stored.get("setup"), dict):
                raise FiguresFileError(f"--check-figures {path} is not a figures file (no 'setup' object)")
            differ = [f"{key} {stored['setup'].get(key)!r} there, {value!r} here" for key, value in setup.items()
                      if stored["setup"].get(key) != value]
            if differ:
                raise FiguresFileError(f"--check-figures {path} holds figures of another setup ({'; '.join(differ)}); "
                                       "name a new file or delete this one")
            self.figures = {"seconds": {}, **stored}

    def get(self, key: str, measure: Callable[[], object]):
        """The stored figure `key`, measured (and stored, with the seconds its measurement took) first if it is
        not there yet."""
        if key not in self.figures:
            start = time.perf_counter()
            self.figures[key] = measure()
            self.figures["seconds"][key] = time.perf_counter() - start
            self._write()
        _show({key: self.figures[key]})
        return self.figures[key]

    def _write(self) -> None:
        """Replace the file in one step, so that a check stopped while writing leaves the previous file whole."""
        if self.path is not None:
            partial = self.path.with_name(self.path.name + ".partial")
            partial.write_text(json.dumps(self.figures, indent=1) + "\n")
            os.replace(partial, self.path)

    def seconds(self) -> dict[str, float]:
        """Seconds each stored figure took to measure, in this run or the one that stored it."""
        return dict(self.figures["seconds"])


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
        configs = {"eager": load_config(preset, [f"device={device}", *EAGER]),
                   name: load_config(preset, [f"device={device}", *EAGER, *options])}
        try:
            costs = timed_updates(configs, device, repeats, updates)
            results[name] = (costs["eager"], costs[name])
        except Exception as error:  # a measurement: say what failed and go on with the others
            results[name] = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"[:300]
    return results


def fastest_update_options(results: dict[str, tuple[float, float] | str], compiling: bool = True,
                           ) -> tuple[str, list[str]] | None:
    """The update option that paid most, if any did; with `compiling=False`, among those that compile nothing."""
    paying = {}
    for name, result in results.items():
        if not compiling and "sac.compile=true" in UPDATE_OPTIONS[name]:
            continue
        if not isinstance(result, str) and result[0] / result[1] > 1.05:
            paying[name] = result[0] / result[1]
    if not paying:
        return None
    best = max(paying, key=paying.get)
    return best, UPDATE_OPTIONS[best]


def _show(result) -> None:
    print(result, flush=True)


WIDTHS = (768, 1024)  # the GPU preset's critic is 512 wide


def width_configs(preset: Path, widths: tuple[int, ...], device: torch.device, options: list[str],
                  ) -> dict[str, Config]:
    """The preset; the published critic (3 x 400, plain layers, a scalar Q) in its place; and the preset's critic
    made wider with layer-normed residual blocks (actor unchanged)."""
    base = [f"device={device}", *options]
    configs = {"preset": load_config(preset, base),
               "published critic: 3 x 400, plain, mse": load_config(preset, [
                   *base, "net.critic.hidden_dim=400", "net.critic.hidden_layers=3", "net.critic.residual=false",
                   "net.critic.layer_norm=false", "sac.critic_loss=mse"])}
    for width in widths:
        configs[f"critic {width} wide, residual"] = load_config(
            preset, [*base, f"net.critic.hidden_dim={width}", "net.critic.residual=true"])
    return configs


def _preset_options(cfg: Config) -> str:
    """The speed options a preset sets, as they read in the loop table."""
    options = [name for name, on in (("sac.compile", cfg.sac.compile), ("sac.cuda_graph", cfg.sac.cuda_graph),
                                     ("train.overlap", cfg.train.overlap)) if on]
    return ", ".join(options) or "none"


@dataclass
class CheckFigures:
    """What the GPU check measured: seconds per update, steps per second of the loop modes, seconds of one
    round of evaluation per number of copies."""

    method_costs: dict[str, float]  # eager, per method
    option_costs: dict[str, tuple[float, float] | str]  # (eager, with the option), or why the option failed
    fast_name: str  # the update option that paid most, or "eager"
    critic_update: str  # how the critics' updates ran: the fastest option that compiles nothing, or "eager"
    critic_costs: dict[str, float]  # per critic, updated as `critic_update` says
    loop_rates: dict[str, float]  # per loop mode
    loop_seconds: dict[str, dict[str, float]]  # per loop mode: seconds per step of each part
    preset_loop: str  # the mode that runs as the preset is configured
    evaluation_rounds: dict[int, float]  # copies of the benchmark: seconds of one round
    part_seconds: dict[str, float]  # what measuring each part took


def measure(preset: Path, device: torch.device, steps: int, rounds: int, repeats: int, updates: int,
            widths: tuple[int, ...], workers: int, store: FigureStore) -> CheckFigures:
    """Every figure of the check, measured on `device` at `preset` (see the module's docstring), or taken from
    `store` where an earlier, stopped check measured it."""
    from mtrl.apps.bench import loop_options, timed_updates, update_costs

    cfg = load_config(preset)
    method_costs = store.get("method_costs", lambda: update_costs(preset, device, repeats, updates, EAGER))
    option_costs = store.get("option_costs", lambda: update_option_costs(preset, device, repeats, updates))
    fastest = fastest_update_options(option_costs)
    fast_name, fast_options = fastest if fastest else ("eager", [])
    # the critics compare widths, not update options: a CUDA graph records each network at once, while each
    # new network compiles anew, which would add a compilation per critic to the check's time
    critic_update, critic_options = fastest_update_options(option_costs, compiling=False) or ("eager", [])
    critics = store.get("critics", lambda: {"update": critic_update, "costs": timed_updates(
        width_configs(preset, widths, device, [*EAGER, *critic_options]), device, repeats, updates)})
    copies = sorted({1, cfg.env.eval_copies})
    evaluation_rounds = {int(c): s for c, s in store.get("evaluation_rounds", lambda: {
        c: evaluation_round_seconds(preset, device, c) for c in copies}).items()}
    modes = {"sequential": EAGER}
    preset_loop = "sequential"
    if _preset_options(cfg) != "none":
        preset_loop = f"the preset as configured ({_preset_options(cfg)})"
        modes[preset_loop] = []
    fast_loop = [*EAGER, *loop_options("workers", overlap=True), *fast_options]
    if _preset_options(load_config(preset, fast_loop)) != _preset_options(cfg):
        modes["overlapped" + (f", {fast_name}" if fastest else "")] = fast_loop
    loops = {mode: store.get(f"loop: {mode}", lambda options=options: loop_rate(
        preset, device, steps, rounds, workers, options)) for mode, options in modes.items()}
    return CheckFigures(method_costs, option_costs, fast_name, critics["update"], critics["costs"],
                        {mode: loop["rate"] for mode, loop in loops.items()},
                        {mode: loop["per_step"] for mode, loop in loops.items()}, preset_loop, evaluation_rounds,
                        store.seconds())


def render(figures: CheckFigures, preset: Path, device: torch.device, steps: int, rounds: int, repeats: int,
           updates: int, workers: int) -> list[str]:
    """The `## GPU check` section of `BENCHMARKS.md` from the figures."""
    cfg = load_config(preset)
    costs, critics, rates = figures.method_costs, figures.critic_costs, figures.loop_rates
    env_per_step = figures.loop_seconds["sequential"]["env"]  # waiting for the workers, nothing overlapped
    critic = cfg.net.critic
    critic_shape = f"{critic.hidden_layers} x {critic.hidden_dim}{', residual' if critic.residual else ''}"
    lines = ["## GPU check", "",
             f"Preset `{preset_name(preset)}` ({cfg.env.protocol}, actor "
             f"{cfg.net.actor.hidden_layers} x {cfg.net.actor.hidden_dim}, critic {critic_shape}, "
             f"{cfg.sac.critic_loss} critic loss, batch {cfg.sac.batch_size}) on `{device}`, the collector on "
             f"{workers} worker processes.", "",
             f"Update cost per method (eager), same batch, interleaved, median of {repeats} repeats of {updates} "
             "updates:", "",
             "| method | ms per update | ratio to `mtsac` |", "|---|---|---|"]
    lines += [f"| `{m}` | {s * 1e3:.2f} | {s / costs['mtsac']:.2f}x |" for m, s in costs.items()]
    lines += ["", "`mtsac`'s update with each speed option against eager, each pair interleaved (after 3 warm-up "
                  "updates that compile and record):", "",
              "| option | eager ms | with the option ms | speed-up |", "|---|---|---|---|"]
    for name, result in figures.option_costs.items():
        if isinstance(result, str):
            lines.append(f"| `{name}` | | failed here: {result} | |")
        else:
            lines.append(f"| `{name}` | {result[0] * 1e3:.2f} | {result[1] * 1e3:.2f} | "
                         f"{result[0] / result[1]:.2f}x |")
    lines += ["", f"Critics (`mtsac`, update: {figures.critic_update}), against the preset's and against the "
                  f"{env_per_step * 1e3:.1f} ms the collector takes per environment step: an update below it is "
                  "hidden entirely by the overlapped loop.", "",
              "| critic | ms per update | ratio to the preset | below one env step |", "|---|---|---|---|"]
    preset_critic = f"preset ({critic_shape}, {cfg.sac.critic_loss})"
    lines += [f"| {preset_critic if name == 'preset' else name} | {s * 1e3:.2f} | {s / critics['preset']:.2f}x | "
              f"{'yes' if s < env_per_step else 'no'} |" for name, s in critics.items()]
    lines += ["", f"Training loop end to end: each loop run once for {short_run_steps(steps)} steps (after a run "
                  f"that warms the compiler's caches, where it compiles) and {_times(rounds)} for {steps} (updates "
                  "from step 100); the steps between the two, from the median full run, so that compiling, "
                  "recording and starting the workers drop out; evaluation left out. On a GPU the update column "
                  "is the time to launch it; its kernels are waited for at the host's next wait for the GPU "
                  "(storing the step when overlapped, choosing actions otherwise).", "",
              "| loop | env-steps/s (x10 tasks) | waiting for envs | choosing actions | storing | update | other |",
              "|---|---|---|---|---|---|---|"]
    parts = ("env", "act", "store", "update")
    for mode, rate in rates.items():
        seconds = figures.loop_seconds[mode]
        other = seconds["loop"] - sum(seconds[part] for part in parts)
        lines.append(f"| {mode} | {rate:.1f} ({rate * NUM_TASKS:.0f}) | "
                     + " | ".join(f"{share:.0%}" for share in [*(seconds[p] / seconds["loop"] for p in parts),
                                                                other / seconds["loop"]]) + " |")
    episodes = cfg.env.episodes_per_evaluation()
    evaluation = {c: math.ceil(episodes / c) * t for c, t in figures.evaluation_rounds.items()}  # s per evaluation
    lines += ["", f"Evaluation ({episodes} episodes per task), from one round of episodes with the untrained policy, "
                  "whose episodes run to the time limit (an upper bound):", "",
              "| copies of the benchmark side by side | one round s | rounds | s per evaluation |", "|---|---|---|---|"]
    lines += [f"| {c} (`env.eval_copies={c}`, 2 workers each) | {t:.1f} | {math.ceil(episodes / c)} | "
              f"{evaluation[c]:.0f} |" for c, t in figures.evaluation_rounds.items()]
    evaluations = cfg.train.steps // cfg.train.eval_every

    def projection(loop: str, copies: int) -> str:
        train_hours = cfg.train.steps / rates[loop] / 3600
        eval_hours = evaluations * evaluation[copies] / 3600
        return (f"{loop} loop, `env.eval_copies={copies}`: **{train_hours + eval_hours:.1f} h**, {train_hours:.1f} h "
                f"of training and {eval_hours:.1f} h for {evaluations} evaluations")

    best = max(rates, key=rates.get)
    lines += ["", "; ".join(f"{mode} against sequential: **{rate / rates['sequential']:.2f}x**"
                            for mode, rate in rates.items() if mode != "sequential") + ".", "",
              f"Projected wall clock of a full run of the preset ({cfg.train.steps:,} steps): "
              f"{projection(figures.preset_loop, cfg.env.eval_copies)}; with the fastest settings measured here, "
              f"{projection(best, min(evaluation, key=evaluation.get))}.", "",
              "Seconds each part took to measure (in the run that measured it): " + ", ".join(
                  f"{PART_NAMES.get(part, part)} {seconds:.0f}" for part, seconds in figures.part_seconds.items())
              + f"; {sum(figures.part_seconds.values()):.0f} in all.", ""]
    return lines


# the stored figures' keys as the section names them
PART_NAMES = {"method_costs": "method costs", "option_costs": "update options", "evaluation_rounds": "evaluation"}


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def open_figures(path: Path | None, preset: Path, device: torch.device, steps: int, rounds: int, repeats: int,
                 updates: int, widths: tuple[int, ...] = WIDTHS) -> FigureStore:
    """The check's figures for this setup: kept in the JSON file `path` (taking those it already holds), or only
    in memory when `path` is None. Raises FiguresFileError for a file that cannot be resumed."""
    return FigureStore(path, check_setup(preset, device, steps, rounds, repeats, updates, widths,
                                         collector_workers()))


def gpu_check_section(preset: Path, device: torch.device, store: FigureStore) -> list[str]:
    """Measure what `store` does not hold yet, at the sizes its setup names, then write the section."""
    setup = store.figures["setup"]
    steps, rounds, repeats, updates, workers = (setup[key] for key in ("steps", "rounds", "repeats", "updates",
                                                                        "workers"))
    widths = tuple(setup["widths"])
    measured = measure(preset, device, steps, rounds, repeats, updates, widths, workers, store)
    return render(measured, preset, device, steps, rounds, repeats, updates, workers)
