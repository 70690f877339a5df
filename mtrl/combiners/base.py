"""The combiner contract: per-task losses in, gradients on the network's parameters out.

A combiner owns one decision, how the tasks' gradients are merged on the *shared* parameters. Task heads
always receive their own task's plain gradient: a head only sees its own task's rows, so the gradient of
`sum_i l_i` on head i is exactly `dl_i/dhead_i`. Method-specific state lives in the combiner and in its
`state_dict`. Per-task statistics come back as `[K]` tensors that stay on the device, so a combiner never
synchronises with the host.

Most methods are *gradient combiners*: from the per-task gradient matrix `G [K, P]` on the shared parameters
they choose task weights `w [K]` and step along `d = w @ G`. They subclass `GradientCombiner` and implement
`weigh`; their pure rule `aggregate(G) -> d` (the aggregator convention of TorchJD) comes with it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

import torch
from torch import nn

from mtrl.task_grads import batched_task_grads, grouped_task_grads, supports_grouping, write_flat_grad


class MultiTaskNet(Protocol):
    """What a combiner may use of a network: its shared and task-specific parameters, and the shared
    representation z `[M, K, b, d]` of its last training forward."""

    representation: torch.Tensor | None

    def shared_parameters(self) -> list[nn.Parameter]: ...

    def task_parameters(self) -> list[nn.Parameter]: ...


class Combiner(ABC):
    """Base class: subclasses implement `backward`, which fills `.grad` of the network's parameters."""

    name: str = ""

    def __init__(self, num_tasks: int):
        self.num_tasks = num_tasks

    @abstractmethod
    def backward(self, task_losses: torch.Tensor, net: MultiTaskNet) -> dict[str, torch.Tensor]:
        """Accumulate gradients of `task_losses [K]` into `net`'s parameters; return `[K]` statistics,
        at least the per-task "weight"."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Stateless combiners accept only an empty state."""
        if state:
            raise ValueError(f"combiner '{self.name}' keeps no state, got keys {sorted(state)}")


def plain_backward(task_losses: torch.Tensor) -> dict[str, torch.Tensor]:
    """Equal weighting: the gradient of the plain sum of task losses."""
    task_losses.sum().backward()
    return {"weight": torch.ones_like(task_losses.detach())}


def head_backward(task_losses: torch.Tensor, net: MultiTaskNet) -> torch.Tensor:
    """Backward through the task heads only: the heads' `.grad` get their own task's plain gradient, and the
    gradient of `sum_i l_i` at the shared representation z (`[M, K, b, d]`) is returned, to be sent on
    through the encoder, weighted per task, with `z.backward(...)`."""
    z = net.representation
    heads = net.task_parameters()
    grad_z, *head_grads = torch.autograd.grad(task_losses.sum(), [z, *heads])
    for param, grad in zip(heads, head_grads):
        param.grad = grad if param.grad is None else param.grad + grad
    return grad_z


def weighted_backward(task_losses: torch.Tensor, net: MultiTaskNet, weights: torch.Tensor) -> None:
    """The shared parameters get the gradient of `sum_i w_i l_i`, the heads that of `sum_i l_i`, for the cost
    of one backward pass."""
    if not net.shared_parameters():
        task_losses.sum().backward()
    elif not net.task_parameters():
        (weights * task_losses).sum().backward()
    else:
        grad_z = head_backward(task_losses, net)
        net.representation.backward(grad_z * weights.view(1, -1, 1, 1))


class GradientCombiner(Combiner):
    """A method that weighs tasks from their gradients on the shared parameters."""

    subbatches: int = 1  # rows of each task's Jacobian that `weigh` receives

    @abstractmethod
    def weigh(self, grads: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-(task, sub-batch) gradients `[K, n, P]` -> task weights `w [K]` and extra statistics."""

    def aggregate(self, grads: torch.Tensor) -> torch.Tensor:
        """The pure rule: per-task gradient matrix `G [K, P]` -> combined direction `[P]`."""
        weights, _ = self.weigh(grads.unsqueeze(1))
        return weights @ grads

    @torch.no_grad()
    def _direction(self, grads: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        weights, stats = self.weigh(grads)
        task_grads = grads.squeeze(1) if grads.shape[1] == 1 else grads.mean(dim=1)
        return weights @ task_grads, {"weight": weights, **stats}

    def backward(self, task_losses: torch.Tensor, net: MultiTaskNet) -> dict[str, torch.Tensor]:
        shared = net.shared_parameters()
        if not shared:  # one network per task: nothing to combine
            return plain_backward(task_losses)
        if supports_grouping(net):
            grads = grouped_task_grads(task_losses, net, self.subbatches)  # also fills the heads' .grad
        else:
            if self.subbatches != 1:
                raise ValueError(f"'{self.name}' with sub-batches needs a MultiTaskMLP encoder")
            grads = batched_task_grads(task_losses, shared)
            heads = net.task_parameters()
            for param, grad in zip(heads, torch.autograd.grad(task_losses.sum(), heads) if heads else []):
                param.grad = grad
        direction, stats = self._direction(grads)
        write_flat_grad(shared, direction)
        return stats
