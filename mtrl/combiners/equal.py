"""Equal weighting (MTSAC): the gradient of the plain sum of task losses, g = sum_i g_i."""

from __future__ import annotations

import torch

from mtrl.combiners.base import Combiner, MultiTaskNet, plain_backward


class EqualWeighting(Combiner):
    name = "mtsac"

    def backward(self, task_losses: torch.Tensor, net: MultiTaskNet) -> dict[str, torch.Tensor]:
        return plain_backward(task_losses)

    @staticmethod
    def aggregate(grads: torch.Tensor) -> torch.Tensor:
        """Per-task gradient matrix `G [K, P]` -> combined direction `[P]`."""
        return grads.sum(dim=0)
