"""Multi-task replay buffer: preallocated tensors on the update device, one slice per task.

Every environment step adds one transition per task, so all slices fill at the same rate; sampling draws
the same number of transitions from each task and returns them in the `[K, b, ...]` layout the networks and
combiners work in. The one-hot task id is not stored (it is the slice index); it is appended on sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Batch:
    """Transitions laid out task-major: `obs[k, j]` is task k's j-th sampled observation (with one-hot)."""

    obs: torch.Tensor  # [K, b, state_dim + K]
    action: torch.Tensor  # [K, b, act_dim]
    reward: torch.Tensor  # [K, b]
    next_obs: torch.Tensor  # [K, b, state_dim + K]
    terminal: torch.Tensor  # [K, b], 1.0 where the next state is terminal (not merely truncated)


class MultiTaskReplay:
    def __init__(self, num_tasks: int, capacity_per_task: int, state_dim: int, action_dim: int,
                 device: torch.device | str = "cpu"):
        self.num_tasks, self.capacity, self.state_dim = num_tasks, capacity_per_task, state_dim
        self.device = torch.device(device)
        shape = (num_tasks, capacity_per_task)
        self.obs = torch.zeros(*shape, state_dim, device=self.device)
        self.next_obs = torch.zeros(*shape, state_dim, device=self.device)
        self.action = torch.zeros(*shape, action_dim, device=self.device)
        self.reward = torch.zeros(*shape, device=self.device)
        self.terminal = torch.zeros(*shape, device=self.device)
        self.one_hot = torch.eye(num_tasks, device=self.device)
        self.position = 0  # next slot to write, the same in every task's slice
        self.size = 0

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminal: np.ndarray) -> None:
        """Store one transition per task; `obs` and `next_obs` may carry the one-hot id (it is dropped)."""
        p = self.position
        self.obs[:, p] = torch.as_tensor(obs[:, : self.state_dim], device=self.device)
        self.next_obs[:, p] = torch.as_tensor(next_obs[:, : self.state_dim], device=self.device)
        self.action[:, p] = torch.as_tensor(action, device=self.device)
        self.reward[:, p] = torch.as_tensor(reward, device=self.device)
        self.terminal[:, p] = torch.as_tensor(terminal, dtype=torch.float32, device=self.device)
        self.position = (p + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, per_task: int, generator: torch.Generator | None = None) -> Batch:
        """`per_task` transitions from each task's slice, uniformly with replacement."""
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        idx = torch.randint(0, self.size, (self.num_tasks, per_task), device=self.device, generator=generator)
        rows = torch.arange(self.num_tasks, device=self.device)[:, None]
        task_id = self.one_hot[:, None, :].expand(-1, per_task, -1)
        return Batch(
            obs=torch.cat([self.obs[rows, idx], task_id], dim=-1),
            action=self.action[rows, idx],
            reward=self.reward[rows, idx],
            next_obs=torch.cat([self.next_obs[rows, idx], task_id], dim=-1),
            terminal=self.terminal[rows, idx],
        )

    def state_dict(self) -> dict:
        n = self.size  # only the filled part, to keep checkpoints of young runs small
        return {"obs": self.obs[:, :n].cpu(), "next_obs": self.next_obs[:, :n].cpu(),
                "action": self.action[:, :n].cpu(), "reward": self.reward[:, :n].cpu(),
                "terminal": self.terminal[:, :n].cpu(), "position": self.position, "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        n = state["size"]
        if n > self.capacity or state["obs"].shape[0] != self.num_tasks:
            raise ValueError(
                f"replay state holds {state['obs'].shape[0]} tasks x {n} transitions; this buffer takes "
                f"{self.num_tasks} tasks x {self.capacity}"
            )
        for name in ("obs", "next_obs", "action", "reward", "terminal"):
            getattr(self, name)[:, :n] = state[name].to(self.device)
        self.position, self.size = state["position"], n
