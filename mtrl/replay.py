"""Multi-task replay buffer: preallocated tensors on the update device, one slice per task.

Every environment step adds one transition per task, so all slices fill at the same rate; sampling draws
the same number of transitions from each task and returns them in the `[K, b, ...]` layout the networks and
combiners work in. The one-hot task id is not stored (it is the slice index); it is appended on sampling.

Each observation is stored once. A transition's next observation is the observation of the following slot,
except at the end of an episode, where the following slot holds the next episode's reset observation: the
true final observation then goes into a small side table (`final_obs`, one row per episode end) that the slot
points to. Episodes must last at least `min_episode_length` steps, which sizes that table. A resumed run cuts
the episodes in progress short (`end_episodes`); the table keeps room for `CUTS_PER_SPAN` such cuts among
the transitions it holds.
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


CUTS_PER_SPAN = 64  # episodes cut short by a resume, at most, among the transitions a buffer holds


class MultiTaskReplay:
    """One preallocated slice per task on the update device; `add` one step of every task, `sample` a
    task-balanced batch."""

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
        # ends that slots can still point to: at most one per min_episode_length slots, plus the newest, plus
        # the episodes cut short by resumes
        self.final_capacity = capacity_per_task // min_episode_length + 2 + CUTS_PER_SPAN
        self.final_obs = torch.zeros(num_tasks, self.final_capacity, state_dim, device=self.device)
        self.final_position = np.zeros(num_tasks, dtype=np.int64)
        self.episode_length = np.zeros(num_tasks, dtype=np.int64)
        self.one_hot = torch.eye(num_tasks, device=self.device)
        self.tasks = torch.arange(num_tasks, device=self.device)[:, None]
        self.position = 0  # next slot to write, the same in every task's slice
        self.size = 0
        self.added = 0  # steps added since the buffer was made (its first run included)
        self.newest_next_obs: np.ndarray | None = None  # the next observation of the newest slot, `[K, state]`
        self.cuts: list[int] = []  # the value of `added` at each cut of the episodes in progress

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
            self._end_at(p, ended, next_obs[ended, : self.state_dim])
        self.position = (p + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self.added += 1
        self.newest_next_obs = np.array(next_obs[:, : self.state_dim], dtype=np.float32)

    def _end_at(self, slot: int, tasks: np.ndarray, final_obs: np.ndarray) -> None:
        """Mark `slot` of each of `tasks` as the end of its episode, its next observation in `final_obs`."""
        rows = self.final_position[tasks]
        on_device = torch.as_tensor(tasks, device=self.device)
        self.final_ref[on_device, slot] = torch.as_tensor(rows, dtype=torch.int32, device=self.device)
        index = (on_device, torch.as_tensor(rows, device=self.device))
        self.final_obs[index] = torch.as_tensor(final_obs, device=self.device)
        self.final_position[tasks] = (rows + 1) % self.final_capacity
        self.episode_length[tasks] = 0

    def end_episodes(self) -> bool:
        """End each task's episode in progress at the newest transition, as a truncation whose next
        observation is the one the last `add` was given. A resumed run's environments start new episodes: left
        open, the newest transition would take the next episode's first observation for its own. Returns False
        where that cannot be done: a buffer restored from a checkpoint that did not keep that observation, or
        one whose table has no room left for another cut among the transitions it holds (`CUTS_PER_SPAN`)."""
        in_progress = np.flatnonzero(self.episode_length > 0)
        if self.size == 0 or not len(in_progress):
            return True
        self.cuts = [added for added in self.cuts if added > self.added - self.capacity]
        if self.newest_next_obs is None or len(self.cuts) >= CUTS_PER_SPAN:
            return False
        self.cuts.append(self.added)
        self._end_at((self.position - 1) % self.capacity, in_progress, self.newest_next_obs[in_progress])
        return True

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
                "episode_length": self.episode_length.copy(), "position": self.position, "size": self.size,
                "added": self.added, "newest_next_obs": self.newest_next_obs, "cuts": list(self.cuts)}

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
        rows = state["final_obs"].shape[1]
        if not self.final_capacity - CUTS_PER_SPAN <= rows <= self.final_capacity:
            raise ValueError(f"replay state has {rows} episode-end rows; this buffer, built for episodes of at "
                             f"least {self.min_episode_length} steps, has {self.final_capacity}")
        for name in self._SLOT_FIELDS:
            getattr(self, name)[:, :n] = state[name].to(self.device)
        self.final_position[:] = state["final_position"]
        # A table saved without the room for cuts is smaller: its ring order is kept by moving each task's rows
        # from its next write position on (the oldest) to the end, so that every row lives a full ring again.
        old_obs, shift = state["final_obs"].to(self.device), self.final_capacity - rows
        for task, start in enumerate(self.final_position.tolist()):
            self.final_obs[task, :start] = old_obs[task, :start]
            self.final_obs[task, start + shift:] = old_obs[task, start:]
            refs = self.final_ref[task, :n]
            self.final_ref[task, :n] = torch.where(refs >= start, refs + shift, refs)
        self.episode_length[:] = state["episode_length"]
        self.position, self.size = state["position"], n
        self.added, self.cuts = state.get("added", n), list(state.get("cuts", []))
        self.newest_next_obs = state.get("newest_next_obs")
