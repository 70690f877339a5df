"""The combiner contract: per-task losses in, gradients on the network's parameters out.

A combiner owns one decision, how the tasks' gradients are merged on the *shared* parameters. Task heads
always receive their own task's plain gradient (a head only sees its own task's rows, so the gradient of the
weighted sum on a head is that task's weight times its gradient; combiners that weight tasks restore the head
gradients where the method asks for it). Method-specific state lives in the combiner and in its state_dict.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn


class MultiTaskNet(Protocol):
    """What a combiner may use of a network: its shared and task-specific parameters."""

    def shared_parameters(self) -> list[nn.Parameter]: ...

    def task_parameters(self) -> list[nn.Parameter]: ...


class Combiner:
    """Base class: subclasses implement `backward`, which fills `.grad` of the network's parameters."""

    name: str = ""

    def __init__(self, num_tasks: int):
        self.num_tasks = num_tasks

    def backward(self, task_losses: torch.Tensor, net: MultiTaskNet) -> dict[str, torch.Tensor]:
        """Accumulate gradients of `task_losses [K]` into `net`'s parameters.

        Returns per-task statistics for logging as `[K]` tensors (at least "weight"); they stay on the
        device, so calling this never synchronises with the host.
        """
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Stateless combiners accept only an empty state."""
        if state:
            raise ValueError(f"combiner '{self.name}' keeps no state, got keys {sorted(state)}")
