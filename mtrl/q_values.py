"""What the critic's outputs mean, and how they are trained: a scalar Q-value per ensemble member (squared
error), or a categorical distribution over a fixed support of values (cross-entropy, as BRC's critic).

Both give one loss per task, a `[K]` vector, so every combiner works with either. Each takes the critic's raw
outputs `[M, K, b, outputs]` (M ensemble members) and provides:

- `values`: the Q-values `[M, K, b]`;
- `policy_value`: the value the actor maximises, `[K, b]`;
- `target`: the soft Bellman target of a batch, from the target critic's outputs at the next state;
- `loss`: the per-task loss of the outputs against that target, `[K]`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class ScalarQ:
    """One Q-value per member; the target takes the smaller of the two (clipped double Q)."""

    outputs = 1

    def values(self, out: torch.Tensor) -> torch.Tensor:
        return out.squeeze(-1)

    def policy_value(self, out: torch.Tensor) -> torch.Tensor:
        return self.values(out).min(dim=0).values

    def target(self, next_out: torch.Tensor, reward: torch.Tensor, continuation: torch.Tensor,
               alpha: torch.Tensor, next_log_prob: torch.Tensor) -> torch.Tensor:
        """`r + continuation * (min_m Q'_m - alpha * log pi(a'|s'))`, `[K, b]`; `continuation` is
        `gamma * (1 - terminal)`."""
        next_q = self.values(next_out).min(dim=0).values
        return reward + continuation * (next_q - alpha[:, None] * next_log_prob)

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (self.values(out) - target).pow(2).mean(dim=-1).sum(dim=0)


class CategoricalQ:
    """A distribution over `bins` values evenly spaced on [v_min, v_max] per member, as logits. The target
    distribution is the two members' mean at the next state, each atom moved by the soft Bellman update and
    projected back onto the support (each moved atom's mass split between its two neighbouring bins, which
    keeps the mean of atoms inside [v_min, v_max]; atoms beyond it go to the end bins); Q is the distribution's
    mean, and the actor maximises the members' mean Q."""

    def __init__(self, bins: int, v_min: float, v_max: float, device: torch.device | str = "cpu"):
        self.outputs, self.v_min, self.v_max = bins, v_min, v_max
        self.support = torch.linspace(v_min, v_max, bins, device=device)

    def values(self, out: torch.Tensor) -> torch.Tensor:
        return (torch.softmax(out, dim=-1) * self.support).sum(dim=-1)

    def policy_value(self, out: torch.Tensor) -> torch.Tensor:
        return (torch.softmax(out, dim=-1).mean(dim=0) * self.support).sum(dim=-1)

    def target(self, next_out: torch.Tensor, reward: torch.Tensor, continuation: torch.Tensor,
               alpha: torch.Tensor, next_log_prob: torch.Tensor) -> torch.Tensor:
        """The projected target distribution `[K, b, bins]`."""
        probs = torch.softmax(next_out, dim=-1).mean(dim=0)
        soft_support = self.support - (alpha[:, None] * next_log_prob)[..., None]
        atoms = reward[..., None] + continuation[..., None] * soft_support
        return project_onto_support(atoms, probs, self.v_min, self.v_max)

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -(target * F.log_softmax(out, dim=-1)).sum(dim=-1).mean(dim=-1).sum(dim=0)


def project_onto_support(atoms: torch.Tensor, probs: torch.Tensor, v_min: float, v_max: float) -> torch.Tensor:
    """The distribution with mass `probs [..., B]` at values `atoms [..., B]`, projected onto B evenly spaced
    values on [v_min, v_max]: atoms are clipped into the range and each one's mass is split between its two
    neighbouring bins in proportion to its distance from them."""
    bins = probs.shape[-1]
    position = (atoms.clamp(v_min, v_max) - v_min) * ((bins - 1) / (v_max - v_min))  # in [0, B - 1]
    lower = position.floor().clamp(max=bins - 2)
    upper_share = position - lower
    projected = torch.zeros_like(probs)
    projected.scatter_add_(-1, lower.long(), probs * (1 - upper_share))
    projected.scatter_add_(-1, lower.long() + 1, probs * upper_share)
    return projected


def make_q_values(kind: str, bins: int, v_min: float, v_max: float, device: torch.device) -> ScalarQ | CategoricalQ:
    """`kind` is the config's `sac.critic_loss`: "mse" or "categorical"."""
    return CategoricalQ(bins, v_min, v_max, device) if kind == "categorical" else ScalarQ()
