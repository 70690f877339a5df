"""CAGrad (Liu et al. 2021, "Conflict-Averse Gradient Descent for Multi-task Learning").

Step along the direction that maximises the worst task's improvement within a ball of radius `c * ||g0||`
around the mean gradient g0. Its dual picks simplex weights
`w* = argmin_{w in simplex} g_w . g0 + c ||g0|| ||g_w||` (g_w = w @ G), and the update is
`d = (g0 + c ||g0|| / ||g_w*|| * g_w*) / (1 + c^2)` (the authors' default rescaling). With c = 0 it is the
mean gradient. The weights are found on the device by projected gradient steps on the normalised Gram
matrix: `iterations` steps from uniform weights at the first update (50 come within about 1e-3 * ||g0||^2 of
the optimal objective), then `warm_iterations` steps from the previous update's solution, which tracks the
optimum as the gradients drift.
"""

from __future__ import annotations

import torch

from mtrl.combiners.base import GradientCombiner
from mtrl.combiners.solvers import normalised_gram, simplex_projected_gradient


def cagrad_objective(w: torch.Tensor, gram: torch.Tensor, c: float) -> torch.Tensor:
    """`g_w . g0 + c ||g0|| ||g_w||` from the Gram matrix (g0 the mean gradient)."""
    mean = torch.full_like(w, 1.0 / w.shape[0])
    g0_norm = (mean @ gram @ mean).clamp_min(0).sqrt()
    return w @ gram @ mean + c * g0_norm * (w @ gram @ w).clamp_min(0).sqrt()


class CAGrad(GradientCombiner):
    name = "cagrad"

    def __init__(self, num_tasks: int, c: float = 0.5, iterations: int = 20, warm_iterations: int = 5):
        super().__init__(num_tasks)
        self.c, self.iterations, self.warm_iterations = c, iterations, warm_iterations
        self.previous: torch.Tensor | None = None  # last solution: tasks' gradients change slowly, so start there

    def weigh(self, grads: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        g = grads[:, 0]
        k = g.shape[0]
        gram, _ = normalised_gram(g @ g.T)
        mean = torch.full((k,), 1.0 / k, device=g.device, dtype=g.dtype)
        g0_norm = (mean @ gram @ mean).clamp_min(0).sqrt()
        tiny = torch.finfo(g.dtype).eps

        def objective_grad(w: torch.Tensor) -> torch.Tensor:
            gw_norm = (w @ gram @ w).clamp_min(tiny).sqrt()
            return gram @ mean + self.c * g0_norm * (gram @ w) / gw_norm

        start, iterations = mean, self.iterations
        if self.previous is not None and self.previous.shape == (k,):  # unless the last solve went bad
            start = torch.where(torch.isfinite(self.previous).all(), self.previous.to(g.dtype), mean)
            iterations = self.warm_iterations
        w = simplex_projected_gradient(objective_grad, start, iterations)
        self.previous = w
        gw_norm = (w @ gram @ w).clamp_min(0).sqrt()
        lam = self.c * g0_norm / (gw_norm + tiny)
        return (mean + lam * w) / (1 + self.c**2), {}

    def state_dict(self) -> dict:
        return {"previous": self.previous}

    def load_state_dict(self, state: dict) -> None:
        self.previous = state["previous"]
