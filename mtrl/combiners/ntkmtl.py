"""NTKMTL (exact): weigh tasks so that the largest eigenvalues of their NTK blocks become equal.

Task i's NTK block over n sub-batches is `K_ii = J_i J_i^T` (`J_i [n, P]`, row u the gradient of task i's loss
on sub-batch u); `lambda_i` is its largest eigenvalue. Weighting a loss by w_i scales its block by w_i^2, so
`w_i = (mean_j lambda_j / lambda_i) ** p` with p = 0.5 equalises the eigenvalues, i.e. the tasks' convergence
speeds. With n = 1, `lambda_i = ||g_i||^2` and the direction is the sum of unit task gradients (times a
common factor). Normalising by the mean (the authors' code uses the sum, a constant factor K^p) makes equal
eigenvalues give weight 1, the same as equal weighting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mtrl.combiners.base import KernelWeighting, Stats
from mtrl.combiners.options import require_non_negative, require_positive
from mtrl.errors import ConfigError


@dataclass
class NTKMTLOptions:
    method: ClassVar[str] = "ntkmtl"
    p: float = 0.5  # weights (mean_j lambda_j / lambda_i) ** p; 0.5 equalises the largest NTK eigenvalues
    subbatches: int = 1  # n: rows of each task's Jacobian (n = 1: lambda_i = ||g_i||^2)
    eps: float = 1e-12  # relative floor on lambda_i, so a task with no gradient gets a finite weight
    # Options for RL losses, all off by default (the paper's rule); see `smoothed_lambdas`:
    ema: float = 0.0  # weigh by a running average of lambda with this decay per update (e.g. 0.99)
    lambda_floor: float = 0.0  # lambda_i at least this fraction of the mean: weights at most lambda_floor^-p
    max_grad_norm: float = 0.0  # scale the shared gradient down to this norm (the authors' clipping, 1.0)

    def validate(self) -> None:
        require_positive(self.method, self, "subbatches", "eps")
        require_non_negative(self.method, self, "p", "ema", "lambda_floor", "max_grad_norm")
        if not self.ema < 1:
            raise ConfigError(f"config key 'methods.{self.method}.ema' must be below 1, got {self.ema!r}")


def ntk_weights(lambdas: torch.Tensor, p: float, eps: float) -> torch.Tensor:
    """`(mean(lambda) / lambda_i) ** p`, with a relative floor so zero or tiny eigenvalues stay finite."""
    lambdas = lambdas.clamp_min(0)
    floor = eps * lambdas.mean() + torch.finfo(lambdas.dtype).tiny
    return ((lambdas.mean() + floor) / (lambdas + floor)).pow(p)


def smoothed_lambdas(lambdas: torch.Tensor, options: NTKMTLOptions, state: dict[str, Any]) -> torch.Tensor:
    """The eigenvalues the weights are computed from. On RL losses a task's lambda grows with the square of its
    TD error, so a task without reward signal yet can get weights in the hundreds that swing between updates;
    two options keep the weights meaningful there: `ema`, a running average over updates (kept in
    `state["lambda_average"]`), and `lambda_floor`, which raises every lambda_i to at least that fraction of
    the mean, bounding each weight by `lambda_floor ** -p` times the weight of an average task."""
    if options.ema > 0:
        average = state["lambda_average"]
        average = lambdas if average is None else options.ema * average + (1 - options.ema) * lambdas
        state["lambda_average"] = average
        lambdas = average
    if options.lambda_floor > 0:
        lambdas = lambdas.clamp_min(options.lambda_floor * lambdas.mean())
    return lambdas


def largest_eigenvalues(kernels: torch.Tensor) -> torch.Tensor:
    """`[K, n, n]` symmetric kernels -> the largest eigenvalue of each, `[K]`."""
    if kernels.shape[1] == 1:
        return kernels[:, 0, 0]
    return torch.linalg.eigvalsh(kernels)[:, -1]


class NTKMTL(KernelWeighting):
    name = "ntkmtl"
    Options = NTKMTLOptions

    def __init__(self, num_tasks: int, options: NTKMTLOptions | None = None):
        super().__init__(num_tasks)
        self.options = options or NTKMTLOptions()
        self.subbatches, self.max_shared_grad_norm = self.options.subbatches, self.options.max_grad_norm
        self.state = {"lambda_average": None}

    def weigh(self, kernels: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        lambdas = largest_eigenvalues(kernels)
        used = smoothed_lambdas(lambdas, self.options, self.state)
        return ntk_weights(used, self.options.p, self.options.eps), {"lambda": lambdas}
