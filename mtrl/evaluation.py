"""Deterministic evaluation of any policy on MT10, and the policies that check the evaluator itself.

A policy here is anything with `act(obs [K, ..., obs_dim], deterministic) -> actions [K, ..., act_dim]` (a
leading task axis, then any number of observations per task): the SAC agent, Meta-World's scripted experts, or
uniform random actions. Running all three through the same loop is how we know the loop is right: experts
must score high and random actions near zero.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from mtrl.envs import MT10, STATE_DIM, TASK_NAMES


class Policy(Protocol):
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray: ...


@dataclass
class EvalResult:
    """Per-task success rates and mean returns over `episodes` episodes per task, with its provenance."""

    success: dict[str, float]
    mean_return: dict[str, float]
    episodes: int
    protocol: str
    labels: dict[str, object] = field(default_factory=dict)  # method, seed, steps, checkpoint, ...

    @property
    def success_mean(self) -> float:
        return float(np.mean(list(self.success.values())))

    @property
    def return_mean(self) -> float:
        return float(np.mean(list(self.mean_return.values())))

    def to_json(self) -> str:
        data = asdict(self) | {"success_mean": self.success_mean, "return_mean": self.return_mean}
        return json.dumps(data, indent=2)

    def to_markdown(self) -> str:
        title = ", ".join(f"{k} {v}" for k, v in {"protocol": self.protocol, **self.labels}.items())
        lines = [f"Evaluation: {title}", "", "| task | success rate | mean return | episodes |",
                 "|---|---|---|---|"]
        for task in self.success:
            lines.append(f"| {task} | {self.success[task]:.2f} | {self.mean_return[task]:.1f} | {self.episodes} |")
        lines.append(f"| **mean** | **{self.success_mean:.2f}** | **{self.return_mean:.1f}** | |")
        return "\n".join(lines) + "\n"

    def save(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        json_path, md_path = directory / "evaluation.json", directory / "evaluation.md"
        json_path.write_text(self.to_json())
        md_path.write_text(self.to_markdown())
        return json_path, md_path


def evaluate(policy: Policy, envs: MT10 | Sequence[MT10], episodes: int, labels: dict | None = None) -> EvalResult:
    """Run `episodes` deterministic episodes in every task, all tasks at once.

    `envs` may be several copies of the benchmark (`MT10(..., copy=c)`), each drawing its own goals: they step
    side by side, one policy call acting for all of them, and share the episodes out (copy c runs episodes c,
    c + C, ...), so an evaluation takes about 1/C of the steps in a row. Success means `info["success"]` was 1
    at any step of the episode. Episodes end at their first success, as in Meta-World's official evaluation,
    so a return is the return up to that point.
    """
    envs = [envs] if isinstance(envs, MT10) else list(envs)
    k, copies = envs[0].num_tasks, len(envs)
    quota = np.array([len(range(c, episodes, copies)) for c in range(copies)])[:, None]  # [C, 1]
    done_count = np.zeros((copies, k), dtype=int)
    successes, returns = np.zeros(k), [[] for _ in range(k)]
    episode_return = np.zeros((copies, k))
    episode_success = np.zeros((copies, k), dtype=bool)
    for env in envs:
        env.set_terminate_on_success(True)
    try:
        obs = np.stack([env.reset() for env in envs], axis=1)  # [K, C, obs_dim]
        while (done_count < quota).any():
            actions = policy.act(obs, deterministic=True)
            for c, env in enumerate(envs):
                env.step_async(actions[:, c])
            steps = [env.step_wait() for env in envs]
            for c, step in enumerate(steps):
                episode_return[c] += step.reward
                episode_success[c] |= step.success > 0
                for i in np.flatnonzero(step.done):
                    if done_count[c, i] < quota[c, 0]:
                        successes[i] += float(episode_success[c, i])
                        returns[i].append(float(episode_return[c, i]))
                        done_count[c, i] += 1
                    episode_return[c, i], episode_success[c, i] = 0.0, False
            obs = np.stack([step.obs for step in steps], axis=1)
    finally:
        for env in envs:
            env.set_terminate_on_success(False)
    return EvalResult(
        success={t: successes[i] / episodes for i, t in enumerate(TASK_NAMES)},
        mean_return={t: float(np.mean(returns[i])) for i, t in enumerate(TASK_NAMES)},
        episodes=episodes,
        protocol=envs[0].protocol.name,
        labels=dict(labels or {}),
    )


_EXPERT_CLASSES = {
    "reach-v3": "SawyerReachV3Policy",
    "push-v3": "SawyerPushV3Policy",
    "pick-place-v3": "SawyerPickPlaceV3Policy",
    "door-open-v3": "SawyerDoorOpenV3Policy",
    "drawer-open-v3": "SawyerDrawerOpenV3Policy",
    "drawer-close-v3": "SawyerDrawerCloseV3Policy",
    "button-press-topdown-v3": "SawyerButtonPressTopdownV3Policy",
    "peg-insert-side-v3": "SawyerPegInsertionSideV3Policy",
    "window-open-v3": "SawyerWindowOpenV3Policy",
    "window-close-v3": "SawyerWindowCloseV3Policy",
}


class ExpertPolicy:
    """Meta-World's scripted expert for each task, row i of the observation going to task i's expert."""

    def __init__(self) -> None:
        from metaworld import policies

        self.experts = [getattr(policies, _EXPERT_CLASSES[t])() for t in TASK_NAMES]

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """`obs [K, ..., obs_dim]` -> `[K, ..., 4]`: each task's observations to that task's expert."""
        rows = obs.reshape(len(obs), -1, obs.shape[-1])  # [K, n, obs_dim]
        actions = [[expert.get_action(row[:STATE_DIM]) for row in task_rows]
                   for expert, task_rows in zip(self.experts, rows)]
        return np.clip(np.stack(actions), -1.0, 1.0).astype(np.float32).reshape(*obs.shape[:-1], -1)


class RandomPolicy:
    """Uniform random actions in [-1, 1]."""

    def __init__(self, action_dim: int, seed: int = 0) -> None:
        self.action_dim, self.rng = action_dim, np.random.default_rng(seed)

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, (*obs.shape[:-1], self.action_dim)).astype(np.float32)
