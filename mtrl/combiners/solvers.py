"""Small solvers on the K x K Gram matrix of task gradients, run on the device with a fixed number of steps
(no host round trip, no data-dependent control flow)."""

from __future__ import annotations

import torch


def normalised_gram(gram: torch.Tensor, ridge: float = 0.0, floor: float = 1e-20) -> tuple[torch.Tensor, torch.Tensor]:
    """`gram / s` with `s` its mean diagonal (so entries are O(1)), plus `ridge * I`; returns it and `s`.
    `s` is at least `floor`, so that an all-zero Gram matrix stays zero instead of dividing by zero."""
    scale = gram.diagonal().mean().clamp_min(floor)
    eye = torch.eye(gram.shape[0], device=gram.device, dtype=gram.dtype)
    return gram / scale + ridge * eye, scale


def alpha_fair_weights(gram: torch.Tensor, alpha: float, iterations: int, ridge: float = 1e-10,
                       start: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive `w` with `gram @ w = w ** (-1 / alpha)`, and the normalised solution `v` to warm-start the
    next solve with (`start`; a non-finite or non-positive one is replaced by the closed-form start).

    It is the minimiser of the strictly convex `f(w) = w^T M w / 2 - sum_i u(w_i)` with `u' = w^(-1/alpha)`
    (u = log for alpha = 1), found by damped Newton steps that never leave w > 0. The problem is solved on the
    Gram matrix scaled to unit mean diagonal (plus a tiny ridge, so a task without gradient still gets a
    finite weight), then the solution is scaled back: if `(M/s) v = v^(-1/a)` then `w = v * s^(-a/(1+a))`.
    """
    m, scale = normalised_gram(gram.double(), ridge)
    power = -1.0 / alpha
    w = m.diagonal().pow(-alpha / (1 + alpha))  # the exact answer when the gradients are orthogonal
    if start is not None:
        usable = (torch.isfinite(start) & (start > 0)).all()
        w = torch.where(usable, start.to(w.dtype), w)
    for _ in range(iterations):
        grad = m @ w - w.pow(power)
        hess = m + torch.diag(-power * w.pow(power - 1))
        step = torch.linalg.solve(hess, grad)
        to_boundary = torch.where(step > 0, w / step, torch.full_like(w, torch.inf)).amin()
        w = w - (0.95 * to_boundary).clamp(max=1.0) * step
    return (w * scale.pow(-alpha / (1 + alpha))).to(gram.dtype), w


def project_to_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection onto the probability simplex (sort-based, without data-dependent branches)."""
    u, _ = torch.sort(v, descending=True)
    cumulative = u.cumsum(0) - 1
    index = torch.arange(1, v.shape[0] + 1, device=v.device, dtype=v.dtype)
    rho = (u - cumulative / index > 0).sum() - 1  # the condition holds for a prefix of the sorted entries
    theta = cumulative[rho] / (rho + 1)
    return (v - theta).clamp_min(0)


def simplex_projected_gradient(grad_fn, start: torch.Tensor, iterations: int, lr: float = 2.0) -> torch.Tensor:
    """Minimise a convex function over the probability simplex by projected gradient steps from `start`
    (`lr` suits objectives on a Gram matrix normalised to unit mean diagonal)."""
    w = start
    for _ in range(iterations):
        w = project_to_simplex(w - lr * grad_fn(w))
    return w
