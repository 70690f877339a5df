"""FairGrad (Ban & Ji 2024, "Fair Resource Allocation in Multi-Task Learning").

Weights from alpha-fair utility maximisation: the positive `w` solving `(G G^T) w = w ** (-1 / alpha)`, step
along `w @ G`. alpha = 2 is the MT10 setting; alpha = 1 gives Nash-MTL's bargaining solution. The solver
takes `iterations` Newton steps at the first update and `warm_iterations` from the previous update's solution
afterwards (Newton converges quadratically from a nearby start).
"""

from __future__ import annotations

import torch

from mtrl.combiners.base import GradientCombiner
from mtrl.combiners.solvers import alpha_fair_weights


class FairGrad(GradientCombiner):
    name = "fairgrad"

    def __init__(self, num_tasks: int, alpha: float = 2.0, iterations: int = 20, warm_iterations: int = 4):
        super().__init__(num_tasks)
        self.alpha, self.iterations, self.warm_iterations = alpha, iterations, warm_iterations
        self.previous: torch.Tensor | None = None  # last solution, in the solver's normalised units

    def weigh(self, grads: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        g = grads[:, 0]
        warm = self.previous is not None and self.previous.shape == (g.shape[0],)
        weights, self.previous = alpha_fair_weights(g @ g.T, self.alpha, self.warm_iterations if warm else
                                                    self.iterations, start=self.previous if warm else None)
        return weights, {}

    def state_dict(self) -> dict:
        return {"previous": self.previous}

    def load_state_dict(self, state: dict) -> None:
        self.previous = state["previous"]
