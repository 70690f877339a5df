"""Per-task reward normalisation (as BRC): each task's rewards are divided by a running estimate of the scale
of its returns, so that a task whose rewards are small is not drowned by one whose rewards are large, and so
that soft returns fit a categorical critic's fixed support.

At the end of each episode the task's discounted returns-to-go are computed from its rewards (a truncated
episode is continued by its mean reward forever, a terminated one by zero), and the running maximum of their
magnitudes, G, is kept. A sampled reward is divided by

    (G + alpha * |target_entropy| / (2 (1 - gamma))) / v_max,

the second term allowing for the entropy bonus in the soft return, so that soft returns stay within about
[-v_max, v_max]. A task with no finished episode yet keeps its rewards as they are.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from mtrl.replay import Batch


class RewardNormaliser:
    def __init__(self, num_tasks: int, gamma: float, target_entropy: float, v_max: float,
                 device: torch.device | str = "cpu"):
        self.gamma, self.v_max = gamma, v_max
        self.entropy_term = abs(target_entropy) / (2 * (1 - gamma))
        self.device = torch.device(device)
        self.episode_rewards: list[list[float]] = [[] for _ in range(num_tasks)]
        self.return_scale = np.zeros(num_tasks)  # G per task; 0 until its first episode ends
        self._scale_on_device = torch.zeros(num_tasks, device=self.device)

    def observe(self, reward: np.ndarray, terminated: np.ndarray, episode_end: np.ndarray) -> None:
        """One environment step of every task."""
        for task, rewards in enumerate(self.episode_rewards):
            rewards.append(float(reward[task]))
            if episode_end[task]:
                self._end_episode(task, bool(terminated[task]))

    def end_episodes(self) -> None:
        """End the episodes in progress as truncations: a resumed run's environments start new ones."""
        for task, rewards in enumerate(self.episode_rewards):
            if rewards:
                self._end_episode(task, terminated=False)

    def _end_episode(self, task: int, terminated: bool) -> None:
        returns = discounted_returns(np.asarray(self.episode_rewards[task]), self.gamma, terminated)
        self.return_scale[task] = max(self.return_scale[task], float(np.abs(returns).max()))
        self.episode_rewards[task].clear()
        self._scale_on_device = torch.as_tensor(self.return_scale, dtype=torch.float32, device=self.device)

    def divisors(self, alpha: torch.Tensor) -> torch.Tensor:
        """What each task's rewards are divided by, `[K]`, given its temperature `alpha [K]` (on the device)."""
        seen = self._scale_on_device > 0
        divisor = (self._scale_on_device + alpha * self.entropy_term) / self.v_max
        return torch.where(seen, divisor, torch.ones_like(divisor))

    def state_dict(self) -> dict:
        return {"episode_rewards": [list(r) for r in self.episode_rewards], "return_scale": self.return_scale.copy()}

    def load_state_dict(self, state: dict) -> None:
        self.episode_rewards = [list(r) for r in state["episode_rewards"]]
        self.return_scale = np.asarray(state["return_scale"], dtype=np.float64).copy()
        self._scale_on_device = torch.as_tensor(self.return_scale, dtype=torch.float32, device=self.device)


def scaled_batch(batch: Batch, normaliser: RewardNormaliser | None, alpha: torch.Tensor) -> Batch:
    """The batch with each task's rewards divided by its divisor (as it is, without a normaliser)."""
    if normaliser is None:
        return batch
    return replace(batch, reward=batch.reward / normaliser.divisors(alpha)[:, None])


def discounted_returns(rewards: np.ndarray, gamma: float, terminated: bool) -> np.ndarray:
    """Returns-to-go `G_t = r_t + gamma G_{t+1}` of one episode; after a truncation the episode is continued
    by its mean reward forever (`G_T = mean(r) / (1 - gamma)`), after a termination by nothing."""
    returns = np.empty_like(rewards, dtype=np.float64)
    following = 0.0 if terminated else float(rewards.mean()) / (1 - gamma)
    for t in range(len(rewards) - 1, -1, -1):
        following = rewards[t] + gamma * following
        returns[t] = following
    return returns
