"""CAGrad (Liu et al. 2021, "Conflict-Averse Gradient Descent for Multi-task Learning").

Step along the direction that maximises the worst task's improvement within a ball of radius `c * ||g0||`
around the mean gradient g0. Its dual picks simplex weights
`w* = argmin_{w in simplex} g_w . g0 + c ||g0|| ||g_w||` (g_w = w @ G), and the update is
`d = (g0 + c ||g0|| / ||g_w*|| * g_w*) / (1 + c^2)` (the authors' default rescaling). With c = 0 it is the
mean gradient. The weights are found on the device by pairwise Frank-Wolfe steps with exact line search on
the normalised Gram matrix (`solvers.cagrad_dual`): `iterations` steps from uniform weights at the first
update, then `warm_iterations` steps from the previous update's solution, which tracks the optimum as the
gradients drift. (Fixed-step projected gradient, used before, left the direction up to 25 degrees off the
optimum after 20 steps on ill-conditioned problems.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mtrl.combiners.base import GramWeighting, Stats
from mtrl.combiners.options import require_non_negative, require_positive
from mtrl.combiners.solvers import cagrad_dual, normalised_gram


@dataclass
class CAGradOptions:
    c: float = 0.5  # radius of the ball around the mean gradient, relative to its norm
    iterations: int = 50  # pairwise Frank-Wolfe steps of the weight solver from uniform weights (first update)
    warm_iterations: int = 10  # steps from the previous update's solution (every later update)

    def validate(self) -> None:
        require_positive("cagrad", self, "iterations", "warm_iterations")
        require_non_negative("cagrad", self, "c")


def cagrad_objective(w: torch.Tensor, gram: torch.Tensor, c: float) -> torch.Tensor:
    """`g_w . g0 + c ||g0|| ||g_w||` from the Gram matrix (g0 the mean gradient)."""
    mean = torch.full_like(w, 1.0 / w.shape[0])
    g0_norm = (mean @ gram @ mean).clamp_min(0).sqrt()
    return w @ gram @ mean + c * g0_norm * (w @ gram @ w).clamp_min(0).sqrt()


class CAGrad(GramWeighting):
    """Stateful: `state["previous"]` holds the last solution on the simplex, the next solve's start."""

    name = "cagrad"
    Options = CAGradOptions

    def __init__(self, num_tasks: int, options: CAGradOptions | None = None):
        super().__init__(num_tasks)
        self.options = options or CAGradOptions()
        self.state = {"previous": None}  # tasks' gradients change slowly, so the next solve starts there

    def weigh(self, gram: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        c, previous = self.options.c, self.state["previous"]
        k = gram.shape[0]
        gram, _ = normalised_gram(gram)
        mean = torch.full((k,), 1.0 / k, device=gram.device, dtype=gram.dtype)
        g0_norm = (mean @ gram @ mean).clamp_min(0).sqrt()
        tiny = torch.finfo(gram.dtype).eps
        start, iterations = mean, self.options.iterations
        if previous is not None and previous.shape == (k,):  # unless the last solve went bad
            start = torch.where(torch.isfinite(previous).all(), previous.to(gram.dtype), mean)
            iterations = self.options.warm_iterations
        w = cagrad_dual(gram, c, iterations, start)
        self.state["previous"] = w
        gw_norm = (w @ gram @ w).clamp_min(0).sqrt()
        lam = c * g0_norm / (gw_norm + tiny)
        return (mean + lam * w) / (1 + c**2), {}
