"""Small solvers on the K x K Gram matrix of task gradients, with a fixed number of steps and no
data-dependent control flow.

Each is written once over an array namespace `xp` (the Array API idiom: the same code runs on NumPy arrays
and on torch tensors). A solve is a few hundred operations on K-element arrays, so its cost is per-operation
overhead: on the CPU they run in NumPy, whose overhead is several times below torch's (`python -m mtrl.bench
--only baseline` times the updates against a commit from before); on a GPU they run in torch on the device, with no host round trip,
so that a CUDA graph can capture them. `backend="torch"` forces the device code on the CPU (for tests).
"""

from __future__ import annotations

from types import ModuleType
from typing import Literal

import numpy as np
import torch

Backend = Literal["auto", "numpy", "torch"]


def normalised_gram(gram: torch.Tensor, ridge: float = 0.0, floor: float = 1e-20) -> tuple[torch.Tensor, torch.Tensor]:
    """`gram / s` with `s` its mean diagonal (so entries are O(1)), plus `ridge * I`; returns it and `s`.
    `s` is at least `floor`, so that an all-zero Gram matrix stays zero instead of dividing by zero."""
    scale = gram.diagonal().mean().clamp_min(floor)
    eye = torch.eye(gram.shape[0], device=gram.device, dtype=gram.dtype)
    return gram / scale + ridge * eye, scale


def _namespace(like: torch.Tensor, backend: Backend) -> ModuleType:
    """NumPy for a CPU tensor (unless told otherwise), torch for one on an accelerator."""
    if backend == "auto":
        backend = "numpy" if like.device.type == "cpu" else "torch"
    return np if backend == "numpy" else torch


def _to(xp: ModuleType, tensor: torch.Tensor) -> np.ndarray | torch.Tensor:
    """`tensor` in float64 as the namespace's array (a CPU tensor's NumPy view costs no copy)."""
    tensor = tensor.detach().double()
    return tensor.numpy() if xp is np else tensor


def _back(array: np.ndarray | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A solver's result as a tensor on `like`'s device, in float64."""
    return torch.as_tensor(array, dtype=torch.float64, device=like.device)


@np.errstate(divide="ignore", invalid="ignore")  # in NumPy, the steps' guarded divisions by zero
def alpha_fair_weights(gram: torch.Tensor, alpha: float, iterations: int, ridge: float = 1e-10,
                       start: torch.Tensor | None = None,
                       backend: Backend = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Positive `w` with `gram @ w = w ** (-1 / alpha)`, and the normalised solution `v` to warm-start the
    next solve with (`start`; a non-finite or non-positive one is replaced by the closed-form start).

    It is the minimiser of the strictly convex `f(w) = w^T M w / 2 - sum_i u(w_i)` with `u' = w^(-1/alpha)`
    (u = log for alpha = 1), found by damped Newton steps that never leave w > 0. The problem is solved on the
    Gram matrix scaled to unit mean diagonal (plus a tiny ridge, so a task without gradient still gets a
    finite weight), then the solution is scaled back: if `(M/s) v = v^(-1/a)` then `w = v * s^(-a/(1+a))`.
    """
    xp = _namespace(gram, backend)
    m, scale = normalised_gram(gram.double(), ridge)
    m = _to(xp, m)
    power = -1.0 / alpha
    w = m.diagonal() ** (-alpha / (1 + alpha))  # the exact answer when the gradients are orthogonal
    if start is not None:
        start = _to(xp, start)
        w = xp.where((xp.isfinite(start) & (start > 0)).all(), start, w)
    for _ in range(iterations):
        grad = m @ w - w**power
        hess = m + xp.diag(-power * w ** (power - 1))
        step = xp.linalg.solve(hess, grad)
        to_boundary = xp.where(step > 0, w / xp.where(step > 0, step, 1.0), xp.inf).min()
        w = w - xp.clip(0.95 * to_boundary, None, 1.0) * step
    w = _back(w, gram)
    return (w * scale.pow(-alpha / (1 + alpha))).to(gram.dtype), w


@np.errstate(divide="ignore", invalid="ignore")
def cagrad_dual(gram: torch.Tensor, c: float, iterations: int, start: torch.Tensor,
                backend: Backend = "auto") -> torch.Tensor:
    """Simplex weights `w` minimising CAGrad's dual `F(w) = w^T A m + beta ||g_w||` (A the Gram matrix, m the
    uniform weights, `||g_w|| = sqrt(w^T A w)`, `beta = c sqrt(m^T A m)`), by pairwise Frank-Wolfe steps from
    `start`: each step moves weight from the task in the support with the largest partial derivative to the task
    with the smallest, by the exactly optimal amount. Along a step `w + s d` the objective is
    `F = F0 + s a.d + beta sqrt(q0 + 2 s q1 + s^2 q2)`, whose stationary points solve a quadratic equation; the
    best of them and the segment's ends is taken. Weight only ever moves between two tasks, so `w` stays on the
    simplex; on problems of 10 tasks whose gradient norms spread over three orders of magnitude, 50 steps from
    uniform weights give a direction within cosine 0.999 of the exact optimum's (tests check it against scipy)."""
    xp = _namespace(gram, backend)
    a_gram, w = _to(xp, gram), _to(xp, start)
    k = gram.shape[0]
    tasks = xp.arange(k, device=w.device)
    a = a_gram @ (xp.ones_like(w) / k)
    beta = c * xp.sqrt(xp.clip(a.mean(), 0.0, None))  # sqrt(m^T A m)
    for _ in range(iterations):
        aw = a_gram @ w
        grad = a + beta * aw / xp.sqrt(xp.clip(w @ aw, 1e-300, None))
        toward, away = grad.argmin(), xp.where(w > 0, grad, -xp.inf).argmax()
        longest = w[away]
        # along d = e_toward - e_away: q0 = w.Aw, q1 = d.Aw, q2 = d.Ad, slope = a.d
        q0, q1, slope = w @ aw, aw[toward] - aw[away], a[toward] - a[away]
        q2 = a_gram[toward, toward] - 2 * a_gram[toward, away] + a_gram[away, away]
        # beta (q1 + s q2) / sqrt(q0 + 2 s q1 + s^2 q2) = -slope, squared: quadratic2 s^2 + quadratic1 s + quadratic0 = 0
        quadratic2 = beta**2 * q2**2 - slope**2 * q2
        quadratic1 = 2 * q1 * q2 * beta**2 - 2 * slope**2 * q1
        quadratic0 = beta**2 * q1**2 - slope**2 * q0
        root = xp.sqrt(xp.clip(quadratic1**2 - 4 * quadratic2 * quadratic0, 0.0, None))
        steps = xp.stack([(-quadratic1 + root) / (2 * quadratic2), (-quadratic1 - root) / (2 * quadratic2),
                          0 * longest, longest])
        steps = xp.minimum(xp.clip(xp.nan_to_num(steps, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None), longest)
        values = steps * slope + beta * xp.sqrt(xp.clip(q0 + 2 * steps * q1 + steps**2 * q2, 0.0, None))  # F - F0
        step = steps[values.argmin()]
        w = w + step * ((tasks == toward) * 1.0 - (tasks == away) * 1.0)
    return _back(w, gram).to(gram.dtype)
