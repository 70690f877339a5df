"""The training loop: collect one transition per task, store it, update, and now and then log, evaluate and
checkpoint. Everything a run produces goes into its run directory:

    runs/<name>/config.yaml          the resolved configuration
    runs/<name>/tensorboard/         TensorBoard events
    runs/<name>/checkpoints/         step_<N>.pt, the newest few
    runs/<name>/evaluations.jsonl    one line per periodic evaluation
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from mtrl.checkpoint import load_latest, restore_into, save_checkpoint
from mtrl.collector import CollectorError
from mtrl.config import Config, save_config, to_dict
from mtrl.envs import ACTION_DIM, MT10, NUM_TASKS, PROTOCOLS, STATE_DIM, benchmark_copies
from mtrl.errors import RunError
from mtrl.evaluation import EvalResult, evaluate
from mtrl.monitor import Monitor
from mtrl.provenance import code_version, machine
from mtrl.replay import CUTS_PER_SPAN, Batch, MultiTaskReplay
from mtrl.results import evaluations_log, read_evaluations
from mtrl.reward_scale import RewardNormaliser, scaled_batch
from mtrl.run_lock import empty_run_dir
from mtrl.runtime import resolve_device
from mtrl.sac import MTSAC
from mtrl.signals import StopOnSignal


def resident_mib() -> float:
    """This process's resident memory in MiB (Linux /proc; NaN where that is not available)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


LOOP_PARTS = ("env", "act", "store", "update", "evaluation")  # the parts of the loop that `Trainer` times


def loop_split(spent: dict[str, float], elapsed: float) -> dict[str, float]:
    """Seconds in each timed part of the loop (`spent`, keyed by `LOOP_PARTS`) and in `other`, the rest of
    `elapsed` (logging, checkpoints, bookkeeping): the parts add up to `elapsed`."""
    parts = {part: spent[part] for part in LOOP_PARTS}
    return {**parts, "other": elapsed - sum(parts.values())}


def milliseconds_per_step(seconds: dict[str, float], earlier: dict[str, float], elapsed: float,
                          steps: int) -> dict[str, float]:
    """Where the loop's wall clock went over `steps` steps that took `elapsed` seconds, in milliseconds per step
    (`seconds` less `earlier`: the parts' totals at the end and at the start)."""
    split = loop_split({part: seconds[part] - earlier[part] for part in LOOP_PARTS}, elapsed)
    return {part: 1e3 * spent / steps for part, spent in split.items()}


def describe_loop_time(seconds: dict[str, float]) -> str:
    """One line on where this process's loop spent its wall clock, e.g. to say what bounds a run's speed."""
    total = seconds["total"]
    if total <= 0:
        return "loop time: none"
    shares = ", ".join(f"{part} {spent / total:.0%}" for part, spent in loop_split(seconds, total).items())
    return f"loop time: {total / 60:.1f} min, {shares}"


def run_replay(cfg: Config, device: torch.device) -> MultiTaskReplay:
    """A run's empty replay buffer, its capacity split evenly over the tasks. Training episodes end only at
    the time limit, which sizes the buffer's table of final observations."""
    return MultiTaskReplay(NUM_TASKS, max(2, cfg.train.buffer_capacity // NUM_TASKS), STATE_DIM, ACTION_DIM,
                           device, min_episode_length=PROTOCOLS[cfg.env.protocol].max_episode_steps)


def run_reward_normaliser(cfg: Config, device: torch.device) -> RewardNormaliser | None:
    """A run's per-task reward normaliser, if its config asks for one."""
    if not cfg.sac.normalise_rewards:
        return None
    return RewardNormaliser(NUM_TASKS, cfg.sac.gamma, cfg.sac.target_entropy, cfg.sac.v_max, device)


@dataclass(frozen=True)
class TrainOutcome:
    """How a call of `Trainer.train` ended: at `train.steps` with its last evaluation (`result`), or stopped by a
    signal (`stopped_by` names it, `result` is None) after `step`, whose checkpoint has been written."""

    step: int
    result: EvalResult | None
    stopped_by: str | None = None
    loop_seconds: dict[str, float] = field(default_factory=dict)  # this process's loop, by part (`Trainer.seconds`)


class Trainer:
    """One training run: collects steps from the ten tasks, updates the agent, evaluates, logs and checkpoints
    into `run_dir` (or resumes from its newest checkpoint), and stops cleanly on SIGINT or SIGTERM. Whoever
    trains it holds `run_dir_lock(run_dir)` (`train.py` and the sweep do), so that no other process writes there."""

    def __init__(self, cfg: Config, run_dir: Path, resume: bool = False, overwrite: bool = False):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        # the code this process runs, read as it starts: a commit made while the run goes on is not its code
        self.code = code_version()
        self.device = resolve_device(cfg.device)
        self.machine = machine(self.device)  # another CPU generation can take another path from one seed
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)

        k = NUM_TASKS
        self.per_task_batch = cfg.sac.batch_size // k
        self.agent = MTSAC(cfg, STATE_DIM + k, ACTION_DIM, k, self.device)  # observations end in a one-hot task id
        self.replay = run_replay(cfg, self.device)
        self.reward_normaliser = run_reward_normaliser(cfg, self.device)
        self.step = 0
        self.last_success: float | None = None
        self.last_result: EvalResult | None = None
        # wall-clock seconds of this process's loop: waiting for env steps, choosing actions, storing steps in the
        # replay, in updates (CPU timing: on a GPU the update is asynchronous and its time lands wherever the host
        # next waits for the GPU: storing the step when overlapped, choosing actions otherwise), in evaluations,
        # and in total
        self.seconds = {"env": 0.0, "act": 0.0, "store": 0.0, "update": 0.0, "evaluation": 0.0, "total": 0.0}
        self.earlier_seconds = 0.0  # the loop's wall clock in earlier processes of this run (before a resume)
        goal_sampler = None
        if resume:
            goal_sampler = self._restore()
            save_config(cfg, self.run_dir / "config.yaml")  # with the overrides given on resuming
        else:
            if overwrite and self.run_dir.exists():  # only now that everything else has been checked
                empty_run_dir(self.run_dir)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.run_dir / "config.yaml")
        # the environments last, once a checkpoint has been found to fit: a run that cannot start leaves no
        # collector worker behind
        self.env = MT10(cfg.env.protocol, cfg.seed, cfg.env.reward_version, cfg.env.vector,
                        workers=cfg.env.workers)
        if goal_sampler is not None:
            self.env.restore_goal_sampler(goal_sampler)
        self.eval_envs: list[MT10] = []  # built at the first evaluation
        self.monitor = Monitor(self.run_dir, purge_step=self.step if resume else None)

    # ----------------------------------------------------------------------------------------------- state
    def _state(self) -> dict:
        return {
            "config": to_dict(self.cfg),
            "agent": self.agent.state_dict(),
            "replay": self.replay.state_dict() if self.cfg.train.checkpoint_replay else None,
            "rng": {"torch": torch.get_rng_state(), "numpy": self.rng.bit_generator.state,
                    "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None},
            "last_success": self.last_success,
            "reward_normaliser": self.reward_normaliser.state_dict() if self.reward_normaliser else None,
            "wall_seconds": self.wall_seconds(),
            "goal_sampler": self.env.goal_sampler_state(),
        }

    def save(self) -> Path:
        return save_checkpoint(self.run_dir, self.step, self._state(), self.cfg.train.keep_checkpoints)

    def _restore(self) -> list | None:
        """Load the newest checkpoint into the agent, replay and generators; returns the training environments'
        goal sampler state, for the environments built after it."""
        path, state = load_latest(self.run_dir)
        restore_into(self.agent.load_state_dict, state["agent"], path)
        if state["replay"] is not None:
            restore_into(self.replay.load_state_dict, state["replay"], path)
            if not self.replay.end_episodes():  # the environments start new episodes
                print(f"note: {path.name} cannot end its episodes in progress (an older checkpoint, or more than "
                      f"{CUTS_PER_SPAN} resumes among the transitions it holds): each task's newest transition takes "
                      "the next episode's first observation for its own")
        else:
            print(f"note: {path.name} holds no replay buffer; training resumes with an empty one and updates again "
                  f"once it holds train.warmup_steps={self.cfg.train.warmup_steps} steps")
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.rng.bit_generator.state = state["rng"]["numpy"]
        self.step, self.last_success = state["step"], state["last_success"]
        self.earlier_seconds = state.get("wall_seconds", 0.0)
        if self.reward_normaliser is not None:
            if state.get("reward_normaliser") is None:
                raise RunError(f"{path} holds no reward-normalisation statistics: resume with "
                               "sac.normalise_rewards=false, as the run was trained")
            self.reward_normaliser.load_state_dict(state["reward_normaliser"])
            self.reward_normaliser.end_episodes()
        self._forget_evaluations_after(self.step)
        print(f"resuming {self.run_dir} from {path.name} (step {self.step})")
        goal_sampler = state.get("goal_sampler")
        if goal_sampler is None and not PROTOCOLS[self.cfg.env.protocol].fixed_goals:
            print(f"note: {path.name} holds no goal sampler state (an older checkpoint): the tasks draw their "
                  "goals from the seed again")
        return goal_sampler

    def _forget_evaluations_after(self, step: int) -> None:
        """Evaluations logged after the checkpoint belong to the lost stretch of the run: drop them, so the
        resumed run's evaluations continue the file without duplicates."""
        log = evaluations_log(self.run_dir)
        if log.is_file():
            kept = [record for record in read_evaluations(self.run_dir) if record["step"] <= step]
            tmp = log.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(record) + "\n" for record in kept))
            tmp.replace(log)

    # -------------------------------------------------------------------------------------------- the loop
    def evaluate(self) -> EvalResult:
        if not self.eval_envs:  # same seed: under the fixed-goal protocol, the same goals as training
            env = self.cfg.env
            self.eval_envs = benchmark_copies(env.protocol, self.cfg.seed, env.eval_copies, env.reward_version,
                                              vector=env.vector, workers=env.workers)
        labels = {"method": self.cfg.method, "seed": self.cfg.seed, "steps": self.step}
        return evaluate(self.agent, self.eval_envs, self.cfg.env.episodes_per_evaluation(), labels)

    def wall_seconds(self) -> float:
        """The training loop's wall clock over the whole run, resumes included."""
        return self.earlier_seconds + self.seconds["total"]

    def _log_evaluation(self, result: EvalResult) -> None:
        self.last_result, self.last_success = result, result.success_mean
        self.monitor.log(self.step, {"eval/success": list(result.success.values()),
                                     "eval/return": list(result.mean_return.values())})
        with open(evaluations_log(self.run_dir), "a") as f:
            f.write(json.dumps({"step": self.step, "success": result.success,
                                "mean_return": result.mean_return, "episodes": result.episodes,
                                "protocol": result.protocol, "wall_seconds": round(self.wall_seconds(), 1),
                                "code": self.code, "machine": self.machine}) + "\n")

    def train(self, stop: StopOnSignal | None = None) -> TrainOutcome:
        """Run to `train.steps`, or until SIGINT or SIGTERM stops the run at the last finished step, which is
        then checkpointed. Signals count from the call on, or from wherever `stop` was entered (`train.py` and a
        sweep's run enter it before the trainer is built: a signal while the run starts stops it before its first
        step)."""
        try:
            with StopOnSignal() if stop is None else contextlib.nullcontext(stop) as signals:
                result = self._loop(signals)
            if signals.signal is not None:
                self.save()
                self.monitor.close()
        finally:  # worker processes of the collector end with the run, also in a long-lived sweep worker
            self.env.close()
            for env in self.eval_envs:
                env.close()
        return TrainOutcome(self.step, result, signals.signal, dict(self.seconds))

    def _sample(self) -> Batch:
        """A task-balanced batch, its rewards divided by each task's return scale if rewards are normalised."""
        return scaled_batch(self.replay.sample(self.per_task_batch), self.reward_normaliser,
                            self.agent.log_alpha.detach().exp())

    def _check_finite(self, metrics: dict[str, torch.Tensor]) -> None:
        in_a_row = int(self.agent.nonfinite_in_a_row)
        if in_a_row >= self.cfg.train.max_nonfinite_in_a_row:
            losses = {k: [round(v, 3) for v in metrics[f"loss/{k}"].tolist()] for k in ("critic", "actor")}
            raise RunError(f"{in_a_row} updates in a row up to step {self.step} had a non-finite loss or gradient "
                           f"(last per-task losses: {losses}); they were skipped, and the newest checkpoint in "
                           f"{self.run_dir / 'checkpoints'} is intact")

    def _timed(self, part: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`function(*args, **kwargs)`, its wall clock added to `self.seconds[part]`."""
        started = time.perf_counter()
        result = function(*args, **kwargs)
        self.seconds[part] += time.perf_counter() - started
        return result

    def _updates(self, metrics: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`train.updates_per_step` SAC updates once the warm-up is over and the replay buffer holds as many
        steps as it takes (after a resume without the buffer, it fills again first); the last one's metrics."""
        warmup = self.cfg.train.warmup_steps
        if self.step >= warmup and self.replay.size >= max(2, min(warmup, self.replay.capacity)):
            for _ in range(self.cfg.train.updates_per_step):
                metrics = self.agent.update(self._sample())
        return metrics

    def _loop(self, stop: StopOnSignal) -> EvalResult | None:
        if stop.signal is not None:  # it came while the run was starting
            return None
        cfg, k = self.cfg.train, self.env.num_tasks
        obs = self.env.reset()
        episode_return, episode_success = np.zeros(k), np.zeros(k, dtype=bool)
        abs_reward = np.zeros(k)  # each task's reward scale since the last log
        metrics: dict[str, torch.Tensor] = {}
        last_log_time, last_log_step, last_log_seconds = time.perf_counter(), self.step, dict(self.seconds)
        loop_started = time.perf_counter()

        def read_clock() -> None:  # the loop's wall clock so far, which evaluation records and checkpoints carry
            self.seconds["total"] = time.perf_counter() - loop_started

        bar = tqdm(total=cfg.steps, initial=self.step, unit="step", dynamic_ncols=True, smoothing=0.05,
                   mininterval=1.0)
        while self.step < cfg.steps:
            if self.step < cfg.warmup_steps:
                action = self.rng.uniform(-1.0, 1.0, (k, self.env.action_dim)).astype(np.float32)
            else:
                action = self._timed("act", self.agent.act, obs, deterministic=False)
            try:
                # overlapped, the update runs while the workers step the envs, on the replay without this step
                self._timed("env", self.env.step_async, action)
                if cfg.overlap:
                    metrics = self._timed("update", self._updates, metrics)
                step = self._timed("env", self.env.step_wait)
            except CollectorError:
                if stop.signal is None or cfg.overlap:  # overlapped, this step's update is already done
                    raise
                bar.close()  # the signal reached the collector's workers too: stop at the last finished step
                return None
            self._timed("store", self.replay.add, obs, action, step.reward, step.next_obs, step.terminated, step.done)
            if self.reward_normaliser is not None:
                self.reward_normaliser.observe(step.reward, step.terminated, step.done)
            obs = step.obs
            episode_return += step.reward
            abs_reward += np.abs(step.reward)
            episode_success |= step.success > 0
            if step.done.all():  # MT10 episodes share one length, so they end together
                self.monitor.log(self.step, {"train/episode_return": episode_return,
                                             "train/success": episode_success.astype(np.float32)})
                episode_return[:], episode_success[:] = 0.0, False
            if not cfg.overlap:
                metrics = self._timed("update", self._updates, metrics)
            self.step += 1
            bar.update(1)

            if self.step % cfg.log_every == 0:
                self._check_finite(metrics)
                now, steps = time.perf_counter(), self.step - last_log_step
                perf = {"perf/steps_per_second": steps / (now - last_log_time), "perf/resident_mib": resident_mib(),
                        **{f"perf/ms_per_step/{part}": ms for part, ms in milliseconds_per_step(
                            self.seconds, last_log_seconds, now - last_log_time, steps).items()}}
                scales = {"train/mean_abs_reward": abs_reward / steps}
                if self.reward_normaliser is not None:
                    scales["train/reward_divisor"] = self.reward_normaliser.divisors(self.agent.log_alpha.detach().exp())
                last_log_time, last_log_step, last_log_seconds = now, self.step, dict(self.seconds)
                abs_reward[:] = 0.0
                self.monitor.log(self.step, {**metrics, **scales, **perf})
            if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                read_clock()  # the record's clock stops where its evaluation starts
                self._log_evaluation(self._timed("evaluation", self.evaluate))
                bar.set_postfix(success=f"{self.last_success:.2f}")
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                read_clock()  # the clock a resume continues from, the evaluation above included
                self.save()
            read_clock()
            if stop.signal is not None:
                bar.close()
                return None
        bar.close()
        self.monitor.close()
        return self.last_result or self.evaluate()
