"""FAMO (Liu et al. 2023, "FAMO: Fast Adaptive Multitask Optimization").

Keeps task logits xi; with z = softmax(xi) it steps along `sum_i c z_i / l_i * g_i`, with
`c = 1 / sum_i (z_i / l_i)` so the weights sum to one: the gradient of `c sum_i z_i log l_i`, which makes the
log-losses fall at rates balanced by z. After each step the logits move along the observed log-loss decrease
`delta_i = log l_i(before) - log l_i(after)`: `xi.grad = (dz/dxi)^T delta`, an Adam step with weight decay.
O(1) extra cost: no per-task gradients.

Two choices, stated: the decrease is measured between consecutive updates, each on its own batch, rather
than by re-evaluating the batch after the step (which would cost a forward pass); and FAMO needs positive
losses, so, as in the authors' MT10 agent, it weighs the critic losses while the actor loss (which can be
negative) keeps equal weighting.
"""

from __future__ import annotations

import torch

from mtrl.combiners.base import Combiner, MultiTaskNet, plain_backward, weighted_backward

_EPS = 1e-8


class FAMO(Combiner):
    name = "famo"

    def __init__(self, num_tasks: int, lr: float = 0.025, decay: float = 1e-3, role: str = "critic"):
        super().__init__(num_tasks)
        self.lr, self.decay, self.active = lr, decay, role == "critic"
        self.logits = torch.zeros(num_tasks, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.logits], lr=lr, weight_decay=decay)
        self.previous_losses: torch.Tensor | None = None

    def backward(self, task_losses: torch.Tensor, net: MultiTaskNet) -> dict[str, torch.Tensor]:
        if not self.active:
            return plain_backward(task_losses)
        self._to(task_losses.device)
        losses = task_losses.detach().clamp_min(0) + _EPS
        if self.previous_losses is not None:
            decrease = self.previous_losses.log() - losses.log()
            self._update_logits(torch.nan_to_num(decrease, nan=0.0, posinf=0.0, neginf=0.0))
        self.previous_losses = losses
        with torch.no_grad():
            z = torch.softmax(self.logits, dim=0)
            weights = z / losses / (z / losses).sum()
        weighted_backward(task_losses, net, weights)
        return {"weight": weights, "logit": self.logits.detach().clone()}

    def _update_logits(self, delta: torch.Tensor) -> None:
        with torch.enable_grad():
            z = torch.softmax(self.logits, dim=0)
            (grad,) = torch.autograd.grad(z, self.logits, grad_outputs=delta)
        self.logits.grad = grad
        self.optimizer.step()

    def _to(self, device: torch.device) -> None:
        if self.logits.device != device:
            state = self.state_dict()
            self.logits = torch.zeros(self.num_tasks, device=device, requires_grad=True)
            self.optimizer = torch.optim.Adam([self.logits], lr=self.lr, weight_decay=self.decay)
            self.load_state_dict(state)

    def state_dict(self) -> dict:
        return {"logits": self.logits.detach().clone(), "optimizer": self.optimizer.state_dict(),
                "previous_losses": self.previous_losses}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.logits.copy_(state["logits"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.previous_losses = state["previous_losses"]
