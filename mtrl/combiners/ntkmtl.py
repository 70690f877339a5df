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

import torch

from mtrl.combiners.base import KernelWeighting, Stats
from mtrl.combiners.options import require_non_negative, require_positive


@dataclass
class NTKMTLOptions:
    p: float = 0.5  # weights (mean_j lambda_j / lambda_i) ** p; 0.5 equalises the largest NTK eigenvalues
    subbatches: int = 1  # n: rows of each task's Jacobian (n = 1: lambda_i = ||g_i||^2)
    eps: float = 1e-12  # relative floor on lambda_i, so a task with no gradient gets a finite weight

    def validate(self) -> None:
        require_positive("ntkmtl", self, "subbatches", "eps")
        require_non_negative("ntkmtl", self, "p")


def ntk_weights(lambdas: torch.Tensor, p: float, eps: float) -> torch.Tensor:
    """`(mean(lambda) / lambda_i) ** p`, with a relative floor so zero or tiny eigenvalues stay finite."""
    lambdas = lambdas.clamp_min(0)
    floor = eps * lambdas.mean() + torch.finfo(lambdas.dtype).tiny
    return ((lambdas.mean() + floor) / (lambdas + floor)).pow(p)


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
        self.subbatches = self.options.subbatches

    def weigh(self, kernels: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        lambdas = largest_eigenvalues(kernels)
        return ntk_weights(lambdas, self.options.p, self.options.eps), {"lambda": lambdas}
