"""The combiner contract: a combiner decides only the task weights `w [K]` of the shared parameters' update.

Everything else, the backward passes and writing `.grad`, is `mtrl.mtl_backward`'s job: task heads always get
their own task's plain gradient, and the shared parameters get `sum_i w_i g_i` by the cheapest route the
method allows. What a method weighs from is its kind, one abstract class each (the split of TorchJD's
`Weighting`: a small rule from one well-defined input to weights):

| kind                       | `weigh` receives                                                | methods            |
|----------------------------|-----------------------------------------------------------------|--------------------|
| `EqualWeighting`           | nothing: `w = 1`                                                | mtsac              |
| `LossWeighting`            | the per-task losses `[K]`                                       | famo               |
| `RepresentationWeighting`  | the gradient of `sum_i l_i` at the shared representation z      | ntkmtl_sr          |
| `KernelWeighting`          | each task's kernel `J_i J_i^T [K, n, n]` on the shared parameters | ntkmtl           |
| `GramWeighting`            | the Gram matrix `G G^T [K, K]` of the task gradients            | pcgrad, cagrad, nashmtl, fairgrad, aligned_mtl |

`weigh` returns the weights and extra `[K]` statistics for logging; everything stays on the device. A rule
that carries something from one update to the next (a warm start, FAMO's logits, Nash-MTL's cached weights)
keeps it in `self.state`, a dict that `state_dict` returns and `load_state_dict` restores; every other rule
is a pure function of its input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

Stats = dict[str, torch.Tensor]


class Combiner(ABC):
    """Base class of every method: a name, the per-task sub-batches it reads, and its state."""

    name: ClassVar[str] = ""
    Options: ClassVar[type | None] = None  # the dataclass of the method's options, if it has any
    roles: ClassVar[tuple[str, ...]] = ("actor", "critic")  # the losses the rule applies to
    subbatches: int = 1  # rows n of each task's Jacobian (sub-batches of its rows) the rule looks at
    max_shared_grad_norm: float = 0.0  # the combined shared gradient is scaled down to this norm; 0: off

    def __init__(self, num_tasks: int):
        self.num_tasks = num_tasks
        self.state: dict[str, Any] = {}

    needs_losses_after_step: ClassVar[bool] = False  # whether `after_step` wants the batch re-evaluated
    needs_record: ClassVar[bool] = True  # whether the backward reads the record of the forward
    # whether an update with this rule can be captured in a CUDA graph: no host round trip, and no state kept
    # between updates in newly allocated tensors (a replay would read the tensors of the recording)
    graph_capturable: ClassVar[bool] = False

    def after_step(self, losses: torch.Tensor) -> None:
        """The same batch's per-task losses after the optimizer step, for rules that learn from how the
        losses moved (FAMO); called only where `needs_losses_after_step`."""

    def begin_update(self) -> torch.Tensor | None:
        """Start an update (called once per update, before anything is computed; rules that count updates
        count it here): the weights to use again for it, or None to compute fresh ones. Only rules that
        refresh their weights now and then return any."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return dict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != set(self.state):
            raise ValueError(f"combiner '{self.name}' keeps state {sorted(self.state)}, got {sorted(state)}")
        self.state.update(state)


class EqualWeighting(Combiner):
    """Equal weighting (MTSAC): `w = 1`, the gradient of the plain sum of task losses."""

    name = "mtsac"
    needs_record = False
    graph_capturable = True

    @staticmethod
    def aggregate(grads: torch.Tensor) -> torch.Tensor:
        """Per-task gradient matrix `G [K, P]` -> combined direction `[P]`."""
        return grads.sum(dim=0)


class LossWeighting(Combiner):
    """Weights from the per-task losses alone: no per-task gradients are formed."""

    @abstractmethod
    def weigh(self, losses: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        """Per-task losses `[K]` (detached) -> weights `[K]` and statistics."""


class RepresentationWeighting(Combiner):
    """Weights from the gradient at the shared representation: one backward pass in all."""

    @abstractmethod
    def weigh(self, grad_z: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        """`dL/dz [M, K, b, d]` of `L = sum_i l_i` -> weights `[K]` and statistics."""


class KernelWeighting(Combiner):
    """Weights from each task's own kernel on the shared parameters (no cross-task products)."""

    @abstractmethod
    def weigh(self, kernels: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        """`J_i J_i^T [K, n, n]`, row u of `J_i` the gradient of task i's loss on its sub-batch u ->
        weights `[K]` and statistics."""

    def aggregate(self, grads: torch.Tensor) -> torch.Tensor:
        """The pure rule on a per-task gradient matrix `G [K, P]` (n = 1) -> combined direction `[P]`."""
        jacobians = grads.unsqueeze(1)
        weights, _ = self.weigh(jacobians @ jacobians.transpose(1, 2))
        return weights @ grads


class GramWeighting(Combiner):
    """Weights from the Gram matrix of the task gradients on the shared parameters."""

    @abstractmethod
    def weigh(self, gram: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        """`G G^T [K, K]` -> weights `[K]` (the direction is `w @ G`) and statistics."""

    def aggregate(self, grads: torch.Tensor) -> torch.Tensor:
        """The pure rule on a per-task gradient matrix `G [K, P]` -> combined direction `[P]`."""
        weights, _ = self.weigh(grads @ grads.T)
        return weights @ grads
