"""Multi-task replay buffer: preallocated tensors on the update device, one slice per task.

Every environment step adds one transition per task, so all slices fill at the same rate; sampling draws
the same number of transitions from each task and returns them in the `[K, b, ...]` layout the networks and
combiners work in. The one-hot task id is not stored (it is the slice index); it is appended on sampling.

Each observation is stored once. A transition's next observation is the observation of the following slot,
except at the end of an episode, where the following slot holds the next episode's reset observation: the
true final observation then goes into a small side table (`final_obs`, one row per episode end) that the slot
points to. Episodes must last at least `min_episode_length` steps, which sizes that table.
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
    _SLOT_FIELDS = ("obs", "action", "reward", "terminal", "final_ref")

    def __init__(self, num_tasks: int, capacity_per_task: int, state_dim: int, action_dim: int,
                 device: torch.device | str = "cpu", min_episode_length: int = 1):
        self.num_tasks, self.capacity, self.state_dim = num_tasks, capacity_per_task, state_dim
        self.min_episode_length = min_episode_length
        self.device = torch.device(device)
        shape = (num_tasks, capacity_per_task)
        self.obs = torch.zeros(*shape, state_dim, device=self.device)
        self.action = torch.zeros(*shape, action_dim, device=self.device)
        self.reward = torch.zeros(*shape, device=self.device)
        self.terminal = torch.zeros(*shape, dtype=torch.bool, device=self.device)
        # -1: the next observation is in the following slot; otherwise its row in final_obs
        self.final_ref = torch.full(shape, -1, dtype=torch.int32, device=self.device)
        # ends that slots can still point to: at most one per min_episode_length slots, plus the newest
        self.final_capacity = capacity_per_task // min_episode_length + 2
        self.final_obs = torch.zeros(num_tasks, self.final_capacity, state_dim, device=self.device)
        self.final_position = np.zeros(num_tasks, dtype=np.int64)
        self.episode_length = np.zeros(num_tasks, dtype=np.int64)
        self.one_hot = torch.eye(num_tasks, device=self.device)
        self.tasks = torch.arange(num_tasks, device=self.device)[:, None]
        self.position = 0  # next slot to write, the same in every task's slice
        self.size = 0

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminal: np.ndarray, episode_end: np.ndarray) -> None:
        """Store one transition per task; `obs` and `next_obs` may carry the one-hot id (it is dropped).

        `next_obs` is kept only where `episode_end` (terminated or truncated) is set; elsewhere it must be the
        `obs` of the next call, as it is when transitions are added in the order they happen.
        """
        p = self.position
        self.obs[:, p] = torch.as_tensor(obs[:, : self.state_dim], device=self.device)
        self.action[:, p] = torch.as_tensor(action, device=self.device)
        self.reward[:, p] = torch.as_tensor(reward, device=self.device)
        self.terminal[:, p] = torch.as_tensor(terminal, dtype=torch.bool, device=self.device)
        self.episode_length += 1
        ended = np.flatnonzero(episode_end)
        if len(ended) and self.episode_length[ended].min() < self.min_episode_length:
            raise ValueError(f"an episode ended after {self.episode_length[ended].min()} steps; this replay buffer "
                             f"was built for episodes of at least {self.min_episode_length}")
        self.final_ref[:, p] = -1
        if len(ended):
            rows = self.final_position[ended]
            tasks = torch.as_tensor(ended, device=self.device)
            self.final_ref[tasks, p] = torch.as_tensor(rows, dtype=torch.int32, device=self.device)
            index = (tasks, torch.as_tensor(rows, device=self.device))
            self.final_obs[index] = torch.as_tensor(next_obs[ended, : self.state_dim], device=self.device)
            self.final_position[ended] = (rows + 1) % self.final_capacity
            self.episode_length[ended] = 0
        self.position = (p + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, per_task: int, generator: torch.Generator | None = None) -> Batch:
        """`per_task` transitions from each task's slice, uniformly with replacement, among all but the newest
        (whose next observation arrives with the next step)."""
        if self.size < 2:
            raise RuntimeError("the replay buffer needs at least two steps before it can be sampled")
        oldest = (self.position - self.size) % self.capacity
        offset = torch.randint(0, self.size - 1, (self.num_tasks, per_task), device=self.device, generator=generator)
        slot = (oldest + offset) % self.capacity
        following = self.obs[self.tasks, (slot + 1) % self.capacity]
        ref = self.final_ref[self.tasks, slot]
        final = self.final_obs[self.tasks, ref.clamp(min=0).long()]
        next_obs = torch.where((ref >= 0)[..., None], final, following)
        task_id = self.one_hot[:, None, :].expand(-1, per_task, -1)
        return Batch(
            obs=torch.cat([self.obs[self.tasks, slot], task_id], dim=-1),
            action=self.action[self.tasks, slot],
            reward=self.reward[self.tasks, slot],
            next_obs=torch.cat([next_obs, task_id], dim=-1),
            terminal=self.terminal[self.tasks, slot].float(),
        )

    def bytes_per_transition(self) -> float:
        """Bytes of storage per transition (all tasks' slots and the side table, divided by the slots)."""
        tensors = [getattr(self, name) for name in (*self._SLOT_FIELDS, "final_obs")]
        return sum(t.element_size() * t.numel() for t in tensors) / (self.num_tasks * self.capacity)

    def state_dict(self) -> dict:
        n = self.size  # only the filled part, to keep checkpoints of young runs small
        return {**{name: getattr(self, name)[:, :n].cpu() for name in self._SLOT_FIELDS},
                "final_obs": self.final_obs.cpu(), "final_position": self.final_position.copy(),
                "episode_length": self.episode_length.copy(), "position": self.position, "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        if "final_ref" not in state:
            raise ValueError("the replay state has an older layout (observations stored twice); resume it with "
                             "the version that wrote it, or start the run afresh")
        n = state["size"]
        if n > self.capacity or state["obs"].shape[0] != self.num_tasks:
            raise ValueError(
                f"replay state holds {state['obs'].shape[0]} tasks x {n} transitions; this buffer takes "
                f"{self.num_tasks} tasks x {self.capacity}"
            )
        if state["final_obs"].shape != self.final_obs.shape:
            raise ValueError(f"replay state has {state['final_obs'].shape[1]} episode-end rows; this buffer, "
                             f"built for episodes of at least {self.min_episode_length} steps, has "
                             f"{self.final_capacity}")
        for name in self._SLOT_FIELDS:
            getattr(self, name)[:, :n] = state[name].to(self.device)
        self.final_obs.copy_(state["final_obs"])
        self.final_position[:] = state["final_position"]
        self.episode_length[:] = state["episode_length"]
        self.position, self.size = state["position"], n
