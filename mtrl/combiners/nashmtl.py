"""Nash-MTL (Navon et al. 2022, "Multi-Task Learning as a Bargaining Game").

Weights from the Nash bargaining solution: the positive `alpha` solving `(G G^T) alpha = 1 / alpha`, step
along `alpha @ G`. The weights can be refreshed only every `update_every` updates; in between, the cached
weights make the update one weighted backward pass, with no per-task gradients at all.
"""

from __future__ import annotations

import torch

from mtrl.combiners.base import GradientCombiner, MultiTaskNet, weighted_backward
from mtrl.combiners.solvers import alpha_fair_weights


class NashMTL(GradientCombiner):
    name = "nashmtl"

    def __init__(self, num_tasks: int, update_every: int = 1, iterations: int = 20):
        super().__init__(num_tasks)
        self.update_every, self.iterations = update_every, iterations
        self.updates = 0
        self.cached_weights: torch.Tensor | None = None

    def weigh(self, grads: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        g = grads[:, 0]
        return alpha_fair_weights(g @ g.T, 1.0, self.iterations)[0], {}

    def backward(self, task_losses: torch.Tensor, net: MultiTaskNet) -> dict[str, torch.Tensor]:
        refresh = self.cached_weights is None or self.updates % self.update_every == 0
        self.updates += 1
        if refresh:
            stats = super().backward(task_losses, net)
            self.cached_weights = stats["weight"].detach()
            return stats
        weights = self.cached_weights.to(task_losses.device)
        weighted_backward(task_losses, net, weights)
        return {"weight": weights}

    def state_dict(self) -> dict:
        return {"updates": self.updates, "cached_weights": self.cached_weights}

    def load_state_dict(self, state: dict) -> None:
        self.updates, self.cached_weights = state["updates"], state["cached_weights"]
