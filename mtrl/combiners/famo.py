"""FAMO (Liu et al. 2023, "FAMO: Fast Adaptive Multitask Optimization").

Keeps task logits xi; with z = softmax(xi) it steps along `sum_i c z_i / l_i * g_i`, with
`c = 1 / sum_i (z_i / l_i)` so the weights sum to one: the gradient of `c sum_i z_i log l_i`, which makes the
log-losses fall at rates balanced by z. After each step the logits move along the observed log-loss decrease
`delta_i = log l_i(before) - log l_i(after)`: `xi.grad = (dz/dxi)^T delta`, an Adam step with weight decay.
O(1) extra cost: no per-task gradients.

As in the authors' MT10 agent, the decrease is measured on the update's own batch: the agent evaluates the
batch again after the optimizer step (one extra critic forward) and hands those losses to `after_step`.
(Between consecutive updates, each on its own batch, two batches' log-losses differ by far more than one step
changes them, so the logits would follow sampling noise.) FAMO needs positive losses, so, as in the authors'
agent, it weighs the critic losses while the actor loss (which can be negative) keeps equal weighting.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mtrl.combiners.base import LossWeighting, Stats
from mtrl.combiners.options import require_non_negative, require_positive

_EPS = 1e-8


@dataclass
class FAMOOptions:
    lr: float = 0.025  # step size of the task logits
    decay: float = 1e-3  # weight decay of the task logits

    def validate(self) -> None:
        require_positive("famo", self, "lr")
        require_non_negative("famo", self, "decay")


class FAMO(LossWeighting):
    """Stateful: `state` holds the task logits, their Adam optimizer and this update's losses before its step."""

    name = "famo"
    Options = FAMOOptions
    roles = ("critic",)  # the rule needs positive losses: the actor's are left equally weighted
    needs_losses_after_step = True

    def __init__(self, num_tasks: int, options: FAMOOptions | None = None):
        super().__init__(num_tasks)
        self.options = options or FAMOOptions()
        self.state = self._fresh_state(torch.device("cpu"))

    def _fresh_state(self, device: torch.device) -> dict:
        logits = torch.zeros(self.num_tasks, device=device, requires_grad=True)
        optimizer = torch.optim.Adam([logits], lr=self.options.lr, weight_decay=self.options.decay)
        return {"logits": logits, "optimizer": optimizer, "losses_before": None}

    def weigh(self, losses: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        if self.state["logits"].device != losses.device:
            saved = self.state_dict()
            self.state = self._fresh_state(losses.device)
            self.load_state_dict(saved)
        losses = losses.clamp_min(0) + _EPS
        self.state["losses_before"] = losses
        with torch.no_grad():
            z = torch.softmax(self.state["logits"], dim=0)
            weights = z / losses / (z / losses).sum()
        return weights, {"logit": self.state["logits"].detach().clone()}

    def after_step(self, losses: torch.Tensor) -> None:
        """The same batch's losses after the optimizer step: the logits move along each task's log-loss
        decrease since `weigh`, so tasks whose loss fell least gain weight."""
        before = self.state["losses_before"]
        if before is None:
            return
        decrease = before.log() - (losses.detach().clamp_min(0) + _EPS).log()
        self._update_logits(torch.nan_to_num(decrease, nan=0.0, posinf=0.0, neginf=0.0))
        self.state["losses_before"] = None

    def _update_logits(self, delta: torch.Tensor) -> None:
        logits = self.state["logits"]
        with torch.enable_grad():
            z = torch.softmax(logits, dim=0)
            (grad,) = torch.autograd.grad(z, logits, grad_outputs=delta)
        logits.grad = grad
        self.state["optimizer"].step()

    def state_dict(self) -> dict:
        return {"logits": self.state["logits"].detach().clone(), "optimizer": self.state["optimizer"].state_dict(),
                "losses_before": self.state["losses_before"]}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.state["logits"].copy_(state["logits"])
        self.state["optimizer"].load_state_dict(state["optimizer"])
        self.state["losses_before"] = state["losses_before"]
