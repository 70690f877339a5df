"""Per-task gradients on the shared parameters, without one backward pass per task.

Rows of different tasks never interact in our networks, so one backward pass of the summed loss already
holds every task's gradient, mixed: a shared layer's weight gradient is `sum_rows x_row^T dy_row`, and
grouping that sum by task gives each task's own gradient. `grouped_task_grads` does exactly that: it asks
autograd only for the gradients at the shared layers' outputs (never for their weights, which would be wasted
work) and forms the per-task weight gradients with one batched matmul per layer.

`batched_task_grads` is the generic fallback for any module: one vectorised `autograd.grad` call over the K
one-hot output gradients.

Both return `G` as a `[K, n, P]` tensor: the gradient of each task's loss on each of `n` equal sub-batches of
its rows (n = 1: the task's whole loss), flattened over the shared parameters in `shared_parameters()` order.
"""

from __future__ import annotations

import torch
from torch import nn

from mtrl.nets import MultiTaskMLP, SharedLinear


def supports_grouping(net: nn.Module) -> bool:
    """Whether the net's shared part is made of SharedLinear layers that recorded their last forward."""
    return isinstance(net, MultiTaskMLP) and all(
        layer.last_input is not None for layer in net.encoder if isinstance(layer, SharedLinear)
    )


def shared_output_grads(task_losses: torch.Tensor, net: MultiTaskMLP,
                        head_grads: bool = True) -> list[tuple[SharedLinear, torch.Tensor]]:
    """One backward pass of `sum_i l_i`, stopped at the shared layers' outputs: each SharedLinear with the
    gradient at its output `[M, K, b, out]`. With `head_grads`, the task heads' `.grad` receive the plain
    gradient of `sum_i l_i` (each head sees only its own task's rows, so that is its own task's gradient)."""
    layers = [m for m in net.encoder if isinstance(m, SharedLinear)]
    outputs = [layer.last_output for layer in layers]
    heads = net.task_parameters() if head_grads else []
    grads = torch.autograd.grad(task_losses.sum(), outputs + heads)
    for param, grad in zip(heads, grads[len(outputs):]):
        param.grad = grad if param.grad is None else param.grad + grad
    return list(zip(layers, grads[: len(outputs)]))


@torch.no_grad()  # plain tensors: nothing here is differentiated again
def layer_task_grads(layer: SharedLinear, grad_out: torch.Tensor, subbatches: int = 1,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-(task, sub-batch) gradients of one shared layer: weight `[K, n, M * in * out]` (laid out as the
    weight `[M, in, out]`) and bias `[K, n, M * out]`. Per-task losses must be means over their task's rows, so
    that the loss on sub-batch u is `n` times the rows' share of it."""
    n = subbatches
    x = layer.last_input  # [M, K, b, in]
    m, k, b, _ = x.shape
    x = x.reshape(m, k, n, b // n, -1)
    g = grad_out.reshape(m, k, n, b // n, -1)
    if n > 1:
        g = g * n
    weight = torch.einsum("mkurj,mkuro->kumjo", x, g)  # per (task, sub-batch) x^T dy
    bias = g.sum(dim=3).permute(1, 2, 0, 3)  # [K, n, M, out]
    return weight.reshape(k, n, -1), bias.reshape(k, n, -1)


def grouped_task_grads(task_losses: torch.Tensor, net: MultiTaskMLP, subbatches: int = 1,
                       head_grads: bool = True) -> torch.Tensor:
    """Per-(task, sub-batch) gradients `[K, n, P]` on the shared parameters from one backward pass through
    `net` (see `shared_output_grads` for the heads)."""
    blocks = []
    for layer, grad_out in shared_output_grads(task_losses, net, head_grads):
        blocks += layer_task_grads(layer, grad_out, subbatches)
    return torch.cat(blocks, dim=-1)


def batched_task_grads(task_losses: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    """Per-task gradients `[K, 1, P]` of any differentiable `task_losses [K]` with respect to `params`."""
    k = task_losses.shape[0]
    eye = torch.eye(k, device=task_losses.device, dtype=task_losses.dtype)
    grads = torch.autograd.grad(task_losses, params, grad_outputs=eye, is_grads_batched=True,
                                retain_graph=True, allow_unused=True)
    flat = [torch.zeros(k, p.numel(), device=p.device) if g is None else g.reshape(k, -1)
            for g, p in zip(grads, params)]
    return torch.cat(flat, dim=-1).unsqueeze(1)


def write_flat_grad(params: list[nn.Parameter], flat: torch.Tensor) -> None:
    """Store the flat vector `flat [P]` as the `.grad` of `params`, in order."""
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset: offset + n].view_as(p)  # a view: `flat` is not used again
        offset += n
