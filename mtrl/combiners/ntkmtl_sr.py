"""NTKMTL-SR: NTKMTL's weights read at the shared representation z, for the cost of one backward pass.

The Jacobian of task i is taken with respect to z (the encoder's output) instead of the shared parameters:
row u of `J_i(z)` is the gradient of task i's loss on sub-batch u at z. Task heads act on each sample's own
row of z, so rows for different sub-batches have disjoint support and `J_i J_i^T` is diagonal:
`lambda_i = max_u ||d l_i^(u) / dz||^2`. All of them come from the one gradient of `sum_i l_i` at z (the loss
on sub-batch u is n times its rows' share of the task mean); the weighted gradient `w_i dL/dz` then flows
through the encoder once (`mtrl.mtl_backward`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from mtrl.combiners.base import RepresentationWeighting, Stats
from mtrl.combiners.ntkmtl import NTKMTLOptions, ntk_weights, smoothed_lambdas


@dataclass
class NTKMTLSROptions(NTKMTLOptions):
    """NTKMTL's options; each task's Jacobian at z has n = 4 rows by default."""

    method: ClassVar[str] = "ntkmtl_sr"
    subbatches: int = 4  # n sub-batches per task, each one row of J_i(z)


def representation_lambdas(grad_z: torch.Tensor, subbatches: int) -> torch.Tensor:
    """`dL/dz [M, K, b, d]` -> the largest eigenvalue of each task's diagonal n x n kernel, `[K]`."""
    m, k, b, d = grad_z.shape
    n = subbatches
    rows = grad_z.reshape(m, k, n, b // n, d) * n  # gradient of each sub-batch's own loss
    return rows.pow(2).sum(dim=(0, 3, 4)).amax(dim=1)


class NTKMTLSR(RepresentationWeighting):
    name = "ntkmtl_sr"
    Options = NTKMTLSROptions

    def __init__(self, num_tasks: int, options: NTKMTLSROptions | None = None):
        super().__init__(num_tasks)
        self.options = options or NTKMTLSROptions()
        self.subbatches, self.max_shared_grad_norm = self.options.subbatches, self.options.max_grad_norm
        self.state = {"lambda_average": None}

    def weigh(self, grad_z: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        lambdas = representation_lambdas(grad_z, self.subbatches)
        used = smoothed_lambdas(lambdas, self.options, self.state)
        return ntk_weights(used, self.options.p, self.options.eps), {"lambda": lambdas}
