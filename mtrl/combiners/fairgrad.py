"""FairGrad (Ban & Ji 2024, "Fair Resource Allocation in Multi-Task Learning").

Weights from alpha-fair utility maximisation: the positive `w` solving `(G G^T) w = w ** (-1 / alpha)`, step
along `w @ G`. alpha = 2 is the MT10 setting; alpha = 1 gives Nash-MTL's bargaining solution.
"""

from __future__ import annotations

import torch

from mtrl.combiners.base import GradientCombiner
from mtrl.combiners.solvers import alpha_fair_weights


class FairGrad(GradientCombiner):
    name = "fairgrad"

    def __init__(self, num_tasks: int, alpha: float = 2.0, iterations: int = 20):
        super().__init__(num_tasks)
        self.alpha, self.iterations = alpha, iterations

    def weigh(self, grads: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        g = grads[:, 0]
        return alpha_fair_weights(g @ g.T, self.alpha, self.iterations), {}
