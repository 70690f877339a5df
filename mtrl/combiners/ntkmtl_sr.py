"""NTKMTL-SR: NTKMTL's weights read at the shared representation z, for the cost of one backward pass.

The Jacobian of task i is taken with respect to z (the encoder's output) instead of the shared parameters:
row u of `J_i(z)` is the gradient of task i's loss on sub-batch u at z. Task heads act on each sample's own
row of z, so rows for different sub-batches have disjoint support and `J_i J_i^T` is diagonal:
`lambda_i = max_u ||d l_i^(u) / dz||^2`. All of them come from the one gradient of `sum_i l_i` at z (the loss
on sub-batch u is n times its rows' share of the task mean). The weighted gradient then flows through the
encoder once, as `z.backward(w_i * dL/dz)`; the heads keep their own task's plain gradient.
"""

from __future__ import annotations

import torch

from mtrl.combiners.base import Combiner, MultiTaskNet, head_backward, plain_backward
from mtrl.combiners.ntkmtl import ntk_weights


class NTKMTLSR(Combiner):
    name = "ntkmtl_sr"

    def __init__(self, num_tasks: int, p: float = 0.5, subbatches: int = 4, eps: float = 1e-12):
        super().__init__(num_tasks)
        self.p, self.subbatches, self.eps = p, subbatches, eps

    def backward(self, task_losses: torch.Tensor, net: MultiTaskNet) -> dict[str, torch.Tensor]:
        if not net.shared_parameters():  # one network per task: nothing to combine
            return plain_backward(task_losses)
        grad_z = head_backward(task_losses, net)
        with torch.no_grad():
            lambdas = self.representation_lambdas(grad_z)
            weights = ntk_weights(lambdas, self.p, self.eps)
        net.representation.backward(grad_z * weights.view(1, -1, 1, 1))
        return {"weight": weights, "lambda": lambdas}

    def representation_lambdas(self, grad_z: torch.Tensor) -> torch.Tensor:
        """`dL/dz [M, K, b, d]` -> largest eigenvalue of each task's diagonal n x n kernel, `[K]`."""
        m, k, b, d = grad_z.shape
        n = self.subbatches
        rows = grad_z.reshape(m, k, n, b // n, d) * n  # gradient of each sub-batch's own loss
        return rows.pow(2).sum(dim=(0, 3, 4)).amax(dim=1)
