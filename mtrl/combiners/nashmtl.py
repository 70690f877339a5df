"""Nash-MTL (Navon et al. 2022, "Multi-Task Learning as a Bargaining Game").

Weights from the Nash bargaining solution: the positive `alpha` solving `(G G^T) alpha = 1 / alpha`, step
along `alpha @ G`. The weights can be refreshed only every `update_every` updates; in between, the cached
weights make the update one weighted backward pass, with no per-task gradients at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mtrl.combiners.base import GramWeighting, Stats
from mtrl.combiners.options import require_positive
from mtrl.combiners.solvers import alpha_fair_weights


@dataclass
class NashMTLOptions:
    update_every: int = 1  # recompute the weights every this many updates, reuse them in between
    iterations: int = 20  # Newton steps of the bargaining solver

    def validate(self) -> None:
        require_positive("nashmtl", self, "update_every", "iterations")


class NashMTL(GramWeighting):
    """Stateful: `state` counts the updates and caches the last weights for the updates in between."""

    name = "nashmtl"
    Options = NashMTLOptions

    def __init__(self, num_tasks: int, options: NashMTLOptions | None = None):
        super().__init__(num_tasks)
        self.options = options or NashMTLOptions()
        self.state = {"updates": 0, "cached_weights": None}

    def begin_update(self) -> torch.Tensor | None:
        cached, updates = self.state["cached_weights"], self.state["updates"]
        self.state["updates"] = updates + 1
        refresh = cached is None or updates % self.options.update_every == 0
        return None if refresh else cached

    def weigh(self, gram: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        weights = alpha_fair_weights(gram, 1.0, self.options.iterations)[0]
        self.state["cached_weights"] = weights.detach()
        return weights, {}
