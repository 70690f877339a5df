"""FairGrad (Ban & Ji 2024, "Fair Resource Allocation in Multi-Task Learning").

Weights from alpha-fair utility maximisation: the positive `w` solving `(G G^T) w = w ** (-1 / alpha)`, step
along `w @ G`. alpha = 2 is the MT10 setting; alpha = 1 gives Nash-MTL's bargaining solution. The solver
takes `iterations` Newton steps at the first update and `warm_iterations` from the previous update's solution
afterwards (Newton converges quadratically from a nearby start).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mtrl.combiners.base import GramWeighting, Stats
from mtrl.combiners.options import require_positive
from mtrl.combiners.solvers import alpha_fair_weights


@dataclass
class FairGradOptions:
    alpha: float = 2.0  # alpha-fairness; alpha = 1 is the Nash bargaining solution
    iterations: int = 20  # damped Newton steps of the weight solver from its closed-form start (first update)
    warm_iterations: int = 4  # Newton steps from the previous update's solution (every later update)

    def validate(self) -> None:
        require_positive("fairgrad", self, "alpha", "iterations", "warm_iterations")


class FairGrad(GramWeighting):
    """Stateful: `state["previous"]` holds the last solution (in the solver's normalised units), the next
    solve's start."""

    name = "fairgrad"
    Options = FairGradOptions

    def __init__(self, num_tasks: int, options: FairGradOptions | None = None):
        super().__init__(num_tasks)
        self.options = options or FairGradOptions()
        self.state = {"previous": None}

    def weigh(self, gram: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        options, previous = self.options, self.state["previous"]
        warm = previous is not None and previous.shape == (gram.shape[0],)
        weights, self.state["previous"] = alpha_fair_weights(
            gram, options.alpha, options.warm_iterations if warm else options.iterations,
            start=previous if warm else None)
        return weights, {}
