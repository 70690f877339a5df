"""Meta-World MT10 through Gymnasium's vector API, for one of two evaluation protocols.

`MT10` wraps the vector env so the rest of the code never sees Gymnasium's autoreset details: every step
returns the true next observation of the transition (read from `final_obs` when an episode just ended), the
observation to act on next, and terminal and truncation flags kept apart, because a time-limit truncation is
not a terminal state and the critic must bootstrap through it.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import gymnasium as gym
import metaworld
import numpy as np

from mtrl.collector import WorkerPool

TASK_NAMES: tuple[str, ...] = (
    "reach-v3",
    "push-v3",
    "pick-place-v3",
    "door-open-v3",
    "drawer-open-v3",
    "drawer-close-v3",
    "button-press-topdown-v3",
    "peg-insert-side-v3",
    "window-open-v3",
    "window-close-v3",
)
NUM_TASKS = len(TASK_NAMES)
STATE_DIM = 39  # Meta-World's observation without the one-hot task id
ACTION_DIM = 4


@dataclass(frozen=True)
class Protocol:
    """How episodes run and how a policy is scored; stamped on every result, since numbers from different
    protocols are not comparable."""

    name: str
    max_episode_steps: int
    fixed_goals: bool  # one goal per task for the whole run, instead of a new one (out of 50) at each reset
    eval_episodes: int  # deterministic evaluation episodes per task


PROTOCOLS: dict[str, Protocol] = {
    "mt10": Protocol("mt10", max_episode_steps=500, fixed_goals=False, eval_episodes=50),
    "mt10-fixed": Protocol("mt10-fixed", max_episode_steps=150, fixed_goals=True, eval_episodes=1),
}


@dataclass
class Step:
    """One vector step. Arrays have a leading task axis of length NUM_TASKS."""

    obs: np.ndarray  # what to act on next (the reset observation where an episode ended)
    next_obs: np.ndarray  # the transition's true next observation (for the replay buffer)
    reward: np.ndarray
    terminated: np.ndarray  # a true terminal state: no bootstrapping
    truncated: np.ndarray  # the time limit: bootstrap through it
    success: np.ndarray  # info["success"] of this very step, wherever Gymnasium put it

    @property
    def done(self) -> np.ndarray:
        return self.terminated | self.truncated


def _masked(info: dict, key: str, num_envs: int) -> np.ndarray:
    """Values of `key` in a vector info dict, 0 where the env did not report it."""
    if key not in info:
        return np.zeros(num_envs)
    return np.where(info[f"_{key}"], info[key], 0)


_SETUP_LOCK = threading.Lock()


@lru_cache(maxsize=4)
def _benchmark(seed: int) -> metaworld.MT10:
    """Meta-World's MT10 benchmark of `seed`, built once per process: building it samples each task's 50 goals
    by constructing the environments, about 10 seconds, and a run builds its training and evaluation
    environments from the same one."""
    return metaworld.MT10(seed=seed)


def task_env_fns(protocol: Protocol, seed: int, reward_version: str = "v2", copy: int = 0, **render: Any,
                 ) -> list[Callable[[], gym.Env]]:
    """One constructor per MT10 task, in `TASK_NAMES` order: exactly the environments (seeding, goals,
    wrappers) that `gym.make_vec("Meta-World/MT10", ...)` builds, for any vectoriser to call.

    `copy` > 0 builds another copy of the same benchmark (the same 50 goals per task) whose environments are
    seeded apart from copy 0's, so that it draws its own sequence of goals from them."""
    benchmark = _benchmark(seed)
    env_seed = seed if copy == 0 else int(np.random.SeedSequence((seed, copy)).generate_state(1)[0])
    return [
        partial(metaworld._init_each_env, env_cls=env_cls,  # the pinned Meta-World's own constructor
                tasks=[t for t in benchmark.train_tasks if t.env_name == name], seed=env_seed, env_id=env_id,
                num_tasks=NUM_TASKS, use_one_hot=True, max_episode_steps=protocol.max_episode_steps,
                reward_function_version=reward_version, **render)
        for env_id, (name, env_cls) in enumerate(benchmark.train_classes.items())
    ]


class MT10:
    """The ten MT10 tasks as one vector env, task i in slot i, observations with the one-hot task id.

    `vector` picks who steps the ten environments: "sync" (Gymnasium, in this process), "async" (Gymnasium,
    one process per task) or "workers" (`mtrl.collector.WorkerPool`, `workers` processes sharing memory).
    `copy` > 0 is another copy of the benchmark drawing its own goals (see `task_env_fns`), for evaluation.
    """

    def __init__(self, protocol: str | Protocol, seed: int, reward_version: str = "v2", vector: str = "sync",
                 render_mode: str | None = None, width: int = 480, height: int = 480, workers: int = 2,
                 copy: int = 0):
        self.protocol = PROTOCOLS[protocol] if isinstance(protocol, str) else protocol
        render = {"render_mode": render_mode, "width": width, "height": height}
        # one copy at a time through the setup (warnings' filters are process-wide); the wait for the workers
        # below, where a copy's construction spends its time, runs side by side in `benchmark_copies`
        with _SETUP_LOCK, warnings.catch_warnings():  # Meta-World's float64 bounds make Gymnasium warn
            warnings.simplefilter("ignore", UserWarning)
            env_fns = task_env_fns(self.protocol, seed, reward_version, copy, **render)
            if vector == "workers":
                if render_mode is not None:
                    raise ValueError("rendering needs vector='sync' or 'async'")
                self.envs = None
                self.pool = WorkerPool(env_fns, obs_dim=STATE_DIM + NUM_TASKS, action_dim=ACTION_DIM,
                                       num_workers=workers)
            else:
                vectoriser = {"sync": gym.vector.SyncVectorEnv, "async": gym.vector.AsyncVectorEnv}[vector]
                self.envs = vectoriser(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
                self.pool = None
        try:  # the first call waits for the environments to be built
            names = [_class_to_task(c) for c in self.call("task_name")]
        except BaseException:
            self.close()
            raise
        if tuple(names) != TASK_NAMES:
            self.close()
            raise RuntimeError(f"Meta-World returned tasks {names}, expected {list(TASK_NAMES)}")
        self.num_tasks = NUM_TASKS
        self.obs_dim = STATE_DIM + NUM_TASKS
        self.action_dim = ACTION_DIM
        self._goals_frozen = False
        self._pending_actions: np.ndarray | None = None  # the Gymnasium vectorisers' step, between async and wait

    def call(self, name: str, *args: Any) -> tuple[Any, ...]:
        """Call a method of (or read an attribute of) every task's environment."""
        if self.pool is not None:
            return self.pool.call(name, *args)
        return tuple(self.envs.call(name, *args))

    def reset(self) -> np.ndarray:
        """Start new episodes in every task. Under a fixed-goal protocol the first reset draws each task's
        goal from the seed and freezes it; later resets keep it."""
        obs = self.pool.reset() if self.pool is not None else self.envs.reset()[0]
        if self.protocol.fixed_goals and not self._goals_frozen:
            self.call("toggle_sample_tasks_on_reset", False)
            self._goals_frozen = True
        return obs.astype(np.float32)

    def step(self, actions: np.ndarray) -> Step:
        self.step_async(actions)
        return self.step_wait()

    def step_async(self, actions: np.ndarray) -> None:
        """Start a step. With `vector="workers"` the workers step while this process goes on until
        `step_wait`; the Gymnasium vectorisers step in `step_wait`."""
        if self.pool is not None:
            self.pool.step_async(actions)
        else:
            self._pending_actions = actions

    def step_wait(self) -> Step:
        """The step that `step_async` started."""
        if self.pool is not None:
            out = self.pool.step_wait()
            return Step(out["obs"], out["next_obs"], out["reward"], out["terminated"], out["truncated"],
                        out["success"])
        obs, reward, terminated, truncated, info = self.envs.step(self._pending_actions)
        obs = obs.astype(np.float32)
        next_obs = obs.copy()
        success = _masked(info, "success", self.num_tasks)
        if "final_obs" in info:  # episodes ended in some envs: their `obs` is already the next reset's
            ended = info["_final_obs"]
            next_obs[ended] = np.stack(info["final_obs"][ended]).astype(np.float32)
            success = np.maximum(success, _masked(info["final_info"], "success", self.num_tasks))
        return Step(obs, next_obs, reward.astype(np.float32), terminated, truncated, success.astype(np.float32))

    def goal_sampler_state(self) -> list[tuple[str, dict]]:
        """Each task's goal sampler: Meta-World's own checkpoint of its goals and random generators."""
        return list(self.call("get_checkpoint"))

    def restore_goal_sampler(self, state: list[tuple[str, dict]]) -> None:
        """Go on drawing goals where `state` left off, so that a resumed run does not draw its goals from the seed
        again. Call before the first reset. Under a fixed-goal protocol the seed alone sets each task's goal, and
        the state is not needed."""
        if not self.protocol.fixed_goals:
            self.call("load_checkpoint", state)

    def set_terminate_on_success(self, on: bool) -> None:
        """End an episode at its first success (the official evaluation does, so success-at-any-step is
        success-at-the-last-step)."""
        self.call("toggle_terminate_on_success", on)

    def render(self) -> tuple[np.ndarray, ...]:
        return self.envs.render()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        else:
            self.envs.close()


def benchmark_copies(protocol: str | Protocol, seed: int, copies: int, reward_version: str = "v2",
                     **options: Any) -> list[MT10]:
    """`copies` copies of the benchmark for an evaluation (copy 0 is `MT10(protocol, seed, ...)` itself).

    Copies on worker processes (`vector="workers"`) are built side by side, each in a thread of its own: such a
    copy spends its construction waiting for its workers to import Meta-World and build their environments,
    about ten seconds each copy took one after another. If one copy fails, the others are closed and its error
    raised."""
    def build(copy: int) -> MT10:
        return MT10(protocol, seed, reward_version, copy=copy, **options)

    if copies == 1 or options.get("vector") != "workers":  # nothing to wait for side by side
        return [build(c) for c in range(copies)]
    _benchmark(seed)  # built once in this process, before the threads share it
    # every copy's workers live side by side through the evaluation anyway: no fewer threads than copies
    with ThreadPoolExecutor(max_workers=copies) as threads:
        futures = [threads.submit(build, c) for c in range(copies)]
    errors = [error for error in (future.exception() for future in futures) if error is not None]
    if errors:
        for future in futures:
            if future.exception() is None:
                future.result().close()
        raise errors[0]
    return [future.result() for future in futures]


def _class_to_task(class_name: str) -> str:
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    by_class = {cls.__name__: name for name, cls in ALL_V3_ENVIRONMENTS.items()}
    return by_class[class_name]
