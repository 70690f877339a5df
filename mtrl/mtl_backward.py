"""The multi-task backward pass: per-task losses `l [K]` and the record of their forward in, `.grad` out.

Task heads get their own task's plain gradient (a head only ever sees its own task's rows, so the gradient
of `sum_i l_i` on head i is `dl_i/dhead_i`), the shared parameters get `sum_i w_i g_i` with the combiner's
weights. `multitask_backward` picks the cheapest route the combiner's kind allows:

| route              | for                                   | cost                                              |
|--------------------|---------------------------------------|---------------------------------------------------|
| plain              | `EqualWeighting`; no shared parameters | one backward pass of `sum_i l_i`                  |
| weighted           | `LossWeighting`, `RepresentationWeighting`, cached weights | backward through the heads to z, then `w_i dL/dz` through the encoder once |
| Gram diagonal      | `KernelWeighting` with n = 1          | one backward pass, per-task gradients reduced layer by layer to squared norms |
| full matrix        | `GramWeighting`, `KernelWeighting` with n > 1 | one backward pass and the per-task gradient matrix `G [K, n, P]` |

Per-task gradients come from one backward pass: rows of different tasks never interact in a network built
from row-wise layers, so each shared layer's weight gradient `sum_rows x_row^T dy_row` splits by task into
the tasks' own gradients (`grouped_task_grads`). Networks without such a record get the generic fallback, one
vectorised `autograd.grad` over the K tasks (`batched_task_grads`). Every route assigns `.grad` (it never
accumulates), so the caller needs no particular order of calls.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from mtrl.combiners.base import (Combiner, EqualWeighting, GramWeighting, KernelWeighting, LossWeighting,
                                 RepresentationWeighting, Stats)
from mtrl.nets import ForwardRecord, LayerTap, SharedLayerNorm, SharedLinear


class MultiTaskNet(Protocol):
    """What the backward pass uses of a network: which parameters are shared and which are task heads."""

    def shared_parameters(self) -> list[nn.Parameter]: ...

    def task_parameters(self) -> list[nn.Parameter]: ...


def multitask_backward(losses: torch.Tensor, net: MultiTaskNet, record: ForwardRecord | None,
                       combiner: Combiner) -> Stats:
    """Set `.grad` of every parameter of `net` from the per-task losses `[K]` of the forward that `record`
    describes (None: a network without one, served by the generic fallback). Returns the weights and the
    combiner's statistics, `[K]` tensors on the device."""
    if not net.shared_parameters() or isinstance(combiner, EqualWeighting):
        plain_backward(losses, net)
        return {"weight": torch.ones_like(losses.detach())}
    cached = combiner.begin_update()
    if cached is not None:
        weights = cached.to(losses.device)
        weighted_backward(losses, net, record, weights)
        return {"weight": weights}
    if isinstance(combiner, LossWeighting):
        weights, stats = combiner.weigh(losses.detach())
        weighted_backward(losses, net, record, weights)
    elif isinstance(combiner, RepresentationWeighting):
        if record is None:
            raise ValueError(f"{combiner.name} needs the record of the forward (its shared representation z)")
        grad_z = head_backward(losses, net, record)
        with torch.no_grad():
            weights, stats = combiner.weigh(grad_z)
        encoder_backward(net, record, grad_z, weights)
    elif isinstance(combiner, KernelWeighting) and combiner.subbatches == 1 and _groupable(net, record):
        weights, stats = gram_diagonal_backward(losses, net, record, combiner)
    elif isinstance(combiner, (KernelWeighting, GramWeighting)):
        grads = task_gradient_matrix(losses, net, record, combiner.subbatches)  # also sets the heads' .grad
        with torch.no_grad():
            if isinstance(combiner, KernelWeighting):
                weights, stats = combiner.weigh(grads @ grads.transpose(1, 2))
            else:
                task_grads = grads[:, 0]
                weights, stats = combiner.weigh(task_grads @ task_grads.T)
            task_grads = grads.squeeze(1) if grads.shape[1] == 1 else grads.mean(dim=1)
            write_flat_grad(net.shared_parameters(), weights @ task_grads)
    else:
        raise TypeError(f"combiner '{combiner.name}' is of no kind that mtrl.mtl_backward knows")
    if combiner.max_shared_grad_norm > 0:
        clip_grad_norm_([p.grad for p in net.shared_parameters()], combiner.max_shared_grad_norm)
    return {"weight": weights, **stats}


# ------------------------------------------------------------------------------------------------- routes
def plain_backward(losses: torch.Tensor, net: MultiTaskNet) -> None:
    """Every parameter gets the gradient of `sum_i l_i`."""
    params = net.shared_parameters() + net.task_parameters()
    _set_grads(params, torch.autograd.grad(losses.sum(), params))


def head_backward(losses: torch.Tensor, net: MultiTaskNet, record: ForwardRecord) -> torch.Tensor:
    """Backward through the task heads only: the heads' `.grad` get their own task's plain gradient, and the
    gradient of `sum_i l_i` at the shared representation z `[M, K, b, d]` is returned."""
    heads = net.task_parameters()
    grad_z, *head_grads = torch.autograd.grad(losses.sum(), [record.representation, *heads])
    _set_grads(heads, head_grads)
    return grad_z


def weighted_backward(losses: torch.Tensor, net: MultiTaskNet, record: ForwardRecord | None,
                      weights: torch.Tensor) -> None:
    """Shared parameters get the gradient of `sum_i w_i l_i`, heads that of `sum_i l_i`, for the cost of one
    backward pass."""
    shared, heads = net.shared_parameters(), net.task_parameters()
    if not heads:
        _set_grads(shared, torch.autograd.grad((weights * losses).sum(), shared))
    elif record is None:  # no representation to stop at: two passes
        _set_grads(heads, torch.autograd.grad(losses.sum(), heads, retain_graph=True))
        _set_grads(shared, torch.autograd.grad((weights * losses).sum(), shared))
    else:
        encoder_backward(net, record, head_backward(losses, net, record), weights)


def encoder_backward(net: MultiTaskNet, record: ForwardRecord, grad_z: torch.Tensor, weights: torch.Tensor) -> None:
    """The shared parameters get the gradient of `sum_i w_i l_i`: `dL/dz [M, K, b, d]` weighted per task and
    sent through the encoder once."""
    shared = net.shared_parameters()
    _set_grads(shared, torch.autograd.grad(record.representation, shared, grad_z * weights.view(1, -1, 1, 1)))


def gram_diagonal_backward(losses: torch.Tensor, net: MultiTaskNet, record: ForwardRecord,
                           combiner: KernelWeighting) -> tuple[torch.Tensor, Stats]:
    """n = 1: the kernels are the squared norms of the task gradients, so each layer's per-task gradients are
    reduced to norms and its weighted sum written straight into `.grad`; `G` is never assembled."""
    per_layer = [(tap.layer, layer_task_grads(tap, grad_out))
                 for tap, grad_out in shared_output_grads(losses, net, record)]
    with torch.no_grad():
        squared_norms = sum(torch.linalg.vector_norm(block.squeeze(1), dim=-1).square()
                            for _, blocks in per_layer for block in blocks)
        weights, stats = combiner.weigh(squared_norms.view(-1, 1, 1))
        for layer, (weight_grads, bias_grads) in per_layer:
            layer.weight.grad = (weights @ weight_grads.squeeze(1)).view_as(layer.weight)
            layer.bias.grad = (weights @ bias_grads.squeeze(1)).view_as(layer.bias)
    return weights, stats


# ------------------------------------------------------------------------------- per-task gradient matrix
def task_gradient_matrix(losses: torch.Tensor, net: MultiTaskNet, record: ForwardRecord | None,
                         subbatches: int = 1) -> torch.Tensor:
    """Per-(task, sub-batch) gradients `G [K, n, P]` on the shared parameters (flattened in
    `shared_parameters()` order); the heads' `.grad` get their own task's plain gradient on the way."""
    if _groupable(net, record):
        return grouped_task_grads(losses, net, record, subbatches)
    if subbatches != 1:
        raise ValueError("per-task gradients on sub-batches need a network that records its forward")
    grads = batched_task_grads(losses, net.shared_parameters())
    heads = net.task_parameters()
    if heads:
        _set_grads(heads, torch.autograd.grad(losses.sum(), heads))
    return grads


def _groupable(net: MultiTaskNet, record: ForwardRecord | None) -> bool:
    """Whether the record's layers hold every shared parameter, so that grouping by task gives all of G."""
    if record is None:
        return False
    tapped = {id(p) for tap in record.taps for p in tap.layer.parameters()}
    return all(isinstance(tap.layer, (SharedLinear, SharedLayerNorm)) for tap in record.taps) and tapped == {
        id(p) for p in net.shared_parameters()}


def shared_output_grads(losses: torch.Tensor, net: MultiTaskNet,
                        record: ForwardRecord) -> list[tuple[LayerTap, torch.Tensor]]:
    """One backward pass of `sum_i l_i`, stopped at the shared layers' outputs: each layer's tap with the
    gradient at its output `[M, K, b, out]`. The heads' `.grad` get the plain gradient on the way."""
    outputs = [tap.output for tap in record.taps]
    heads = net.task_parameters()
    grads = torch.autograd.grad(losses.sum(), outputs + heads)
    _set_grads(heads, grads[len(outputs):])
    return list(zip(record.taps, grads[: len(outputs)]))


@torch.no_grad()  # plain tensors: nothing here is differentiated again
def layer_task_grads(tap: LayerTap, grad_out: torch.Tensor, subbatches: int = 1,
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-(task, sub-batch) gradients of one shared layer's weight and bias, `[K, n, numel]` each, laid out
    as the parameter. A linear layer's weight gradient is `x^T dy` over the rows, a layer norm's gain gradient
    `sum x_hat * dy` (x_hat the normalised input); both biases get `sum dy`. Per-task losses must be means over
    their task's rows, so that the loss on sub-batch u is `n` times the rows' share of it."""
    n = subbatches
    m, k, b, _ = tap.input.shape
    g = grad_out.reshape(m, k, n, b // n, -1)
    if n > 1:
        g = g * n
    if isinstance(tap.layer, SharedLinear):
        x = tap.input.reshape(m, k, n, b // n, -1)
        weight = torch.einsum("mkurj,mkuro->kumjo", x, g)  # per (task, sub-batch) x^T dy
    else:
        x_hat = F.layer_norm(tap.input, tap.input.shape[-1:]).reshape(m, k, n, b // n, -1)
        weight = (x_hat * g).sum(dim=3).permute(1, 2, 0, 3)  # [K, n, M, d]
    bias = g.sum(dim=3).permute(1, 2, 0, 3)  # [K, n, M, out]
    return weight.reshape(k, n, -1), bias.reshape(k, n, -1)


def grouped_task_grads(losses: torch.Tensor, net: MultiTaskNet, record: ForwardRecord,
                       subbatches: int = 1) -> torch.Tensor:
    """`G [K, n, P]` from one backward pass through a network that recorded its forward."""
    blocks = []
    for tap, grad_out in shared_output_grads(losses, net, record):
        blocks += layer_task_grads(tap, grad_out, subbatches)
    return torch.cat(blocks, dim=-1)


def batched_task_grads(losses: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    """The generic fallback: per-task gradients `[K, 1, P]` of any differentiable `losses [K]` with respect to
    `params`, from one vectorised `autograd.grad` call over the K one-hot output gradients."""
    k = losses.shape[0]
    eye = torch.eye(k, device=losses.device, dtype=losses.dtype)
    grads = torch.autograd.grad(losses, params, grad_outputs=eye, is_grads_batched=True, retain_graph=True,
                                allow_unused=True)
    flat = [torch.zeros(k, p.numel(), device=p.device) if g is None else g.reshape(k, -1)
            for g, p in zip(grads, params)]
    return torch.cat(flat, dim=-1).unsqueeze(1)


# ------------------------------------------------------------------------------------------ writing .grad
def write_flat_grad(params: list[nn.Parameter], flat: torch.Tensor) -> None:
    """Store the flat vector `flat [P]` as the `.grad` of `params`, in order."""
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset: offset + n].view_as(p)  # a view: `flat` is not used again
        offset += n


@torch.no_grad()
def clip_grad_norm_(grads: list[torch.Tensor], max_norm: float, norms: torch.Tensor | None = None) -> None:
    """Scale `grads` down to global norm `max_norm` if it is larger (no host round trip); `norms`, each
    gradient's own norm, where the caller has them already."""
    if norms is None:
        norms = torch.stack(torch._foreach_norm(grads))
    torch._foreach_mul_(grads, (max_norm / (torch.linalg.vector_norm(norms) + 1e-6)).clamp(max=1.0))


def _set_grads(params: list[nn.Parameter], grads) -> None:
    for param, grad in zip(params, grads):
        param.grad = grad
