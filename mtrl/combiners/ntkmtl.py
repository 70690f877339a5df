"""NTKMTL (exact): weigh tasks so that the largest eigenvalues of their NTK blocks become equal.

Task i's NTK block over n sub-batches is `K_ii = J_i J_i^T` (`J_i [n, P]`, row u the gradient of task i's loss
on sub-batch u); `lambda_i` is its largest eigenvalue. Weighting a loss by w_i scales its block by w_i^2, so
`w_i = (mean_j lambda_j / lambda_i) ** p` with p = 0.5 equalises the eigenvalues, i.e. the tasks' convergence
speeds. With n = 1, `lambda_i = ||g_i||^2` and the direction is the sum of unit task gradients (times a
common factor). Normalising by the mean (the authors' code uses the sum, a constant factor K^p) makes equal
eigenvalues give weight 1, the same as equal weighting.
"""

from __future__ import annotations

import torch

from mtrl.combiners.base import GradientCombiner, MultiTaskNet
from mtrl.task_grads import layer_task_grads, shared_output_grads, supports_grouping


def ntk_weights(lambdas: torch.Tensor, p: float, eps: float) -> torch.Tensor:
    """`(mean(lambda) / lambda_i) ** p`, with a relative floor so zero or tiny eigenvalues stay finite."""
    lambdas = lambdas.clamp_min(0)
    floor = eps * lambdas.mean() + torch.finfo(lambdas.dtype).tiny
    return ((lambdas.mean() + floor) / (lambdas + floor)).pow(p)


def largest_eigenvalues(jacobians: torch.Tensor) -> torch.Tensor:
    """`J [K, n, P]` -> largest eigenvalue of each `J_i J_i^T` (n x n), as `[K]`."""
    if jacobians.shape[1] == 1:
        return jacobians.squeeze(1).pow(2).sum(dim=-1)
    kernels = jacobians @ jacobians.transpose(1, 2)
    return torch.linalg.eigvalsh(kernels)[:, -1]


class NTKMTL(GradientCombiner):
    name = "ntkmtl"

    def __init__(self, num_tasks: int, p: float = 0.5, subbatches: int = 1, eps: float = 1e-12):
        super().__init__(num_tasks)
        self.p, self.subbatches, self.eps = p, subbatches, eps

    def weigh(self, grads: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        lambdas = largest_eigenvalues(grads)
        return ntk_weights(lambdas, self.p, self.eps), {"lambda": lambdas}

    def backward(self, task_losses: torch.Tensor, net: MultiTaskNet) -> dict[str, torch.Tensor]:
        """With n = 1 only squared norms are needed, layer by layer: the full `[K, P]` matrix is never
        assembled, and each layer's weighted sum goes straight into its parameters' `.grad`."""
        if self.subbatches != 1 or not net.shared_parameters() or not supports_grouping(net):
            return super().backward(task_losses, net)
        per_layer = [(layer, layer_task_grads(layer, grad_out))
                     for layer, grad_out in shared_output_grads(task_losses, net)]
        with torch.no_grad():
            lambdas = sum(torch.linalg.vector_norm(block.squeeze(1), dim=-1).square()
                          for _, blocks in per_layer for block in blocks)
            weights = ntk_weights(lambdas, self.p, self.eps)
            for layer, (weight_grads, bias_grads) in per_layer:
                layer.weight.grad = (weights @ weight_grads.squeeze(1)).view_as(layer.weight)
                layer.bias.grad = (weights @ bias_grads.squeeze(1)).view_as(layer.bias)
        return {"weight": weights, "lambda": lambdas}
