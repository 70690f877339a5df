"""Multi-task soft actor-critic with a per-task temperature.

The update follows the usual SAC recipe (twin critics with target copies, a reparameterised tanh-Gaussian
actor, automatic entropy tuning), with every loss kept per task as a `[K]` vector. Each network's training
forward returns a record of itself (the shared representation z and the shared layers' inputs and outputs);
`multitask_backward` turns the per-task losses, that record and the method's combiner into `.grad` (heads:
their own task's gradient; shared encoder: the combiner's weighted sum). The agent knows no method by name.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from mtrl.combiners import Combiner, make_combiner
from mtrl.config import Config
from mtrl.cuda_graph import GraphedUpdate
from mtrl.errors import RunError
from mtrl.mtl_backward import clip_grad_norm_, multitask_backward
from mtrl.nets import Actor, TwinCritic, frozen
from mtrl.q_values import make_q_values
from mtrl.replay import Batch


class MTSAC:
    """Multi-task SAC: a task-conditioned actor, a twin critic with its target, one temperature per task, and
    a combiner per network that weighs the tasks' gradients on the shared encoder (`cfg.method`)."""

    def __init__(self, cfg: Config, obs_dim: int, action_dim: int, num_tasks: int, device: torch.device):
        self.cfg, self.device = cfg, device
        sac = cfg.sac
        self.q_values = make_q_values(sac.critic_loss, sac.bins, sac.v_min, sac.v_max, device)
        self.actor = Actor(obs_dim, action_dim, num_tasks, **asdict(cfg.net.actor), log_std_min=sac.log_std_min,
                           log_std_max=sac.log_std_max).to(device)
        self.critic = TwinCritic(obs_dim, action_dim, num_tasks, **asdict(cfg.net.critic),
                                 outputs=self.q_values.outputs).to(device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.full((num_tasks,), float(np.log(sac.init_temperature)), device=device,
                                    requires_grad=True)
        if sac.cuda_graph and device.type != "cuda":
            raise RunError(f"sac.cuda_graph needs a CUDA device, got {device}")
        # fused Adam is the fastest kernel and can skip a step on the device (`found_inf`), without a host sync;
        # captured in a CUDA graph it must keep its step counts on the device (`capturable`)
        adam = {"fused": True, "capturable": sac.cuda_graph}
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=sac.actor_lr, **adam)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=sac.critic_lr, **adam)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=sac.alpha_lr, **adam)
        # updates whose loss or gradient was not finite (their optimizer step is skipped), on the device
        self.nonfinite_updates = torch.zeros((), device=device)
        self.nonfinite_in_a_row = torch.zeros((), device=device)
        self.actor_combiner: Combiner = make_combiner(cfg.method, num_tasks, cfg.method_options(), role="actor")
        self.critic_combiner: Combiner = make_combiner(cfg.method, num_tasks, cfg.method_options(), role="critic")
        self._critic_params = list(self.critic.parameters())
        steps = (self.soft_target, self.critic_loss, self.actor_loss, self.policy_loss)
        # with torch.compile alone, CUDA graphs replay each compiled function (under sac.cuda_graph, the whole update)
        self.compiled_graphs = sac.compile and device.type == "cuda" and not sac.cuda_graph
        if sac.compile:
            steps = tuple(torch.compile(f, mode="reduce-overhead" if self.compiled_graphs else None) for f in steps)
        self.steps = _Steps(*steps)
        # under sac.cuda_graph, one graph for the update with the actor's step and one for the critic's alone
        self._graphed = self._graph_updates() if sac.cuda_graph else None
        self.updates_done = 0  # decides which updates step the actor (`sac.actor_update_every`)
        self._last_actor_update_metrics: dict[str, torch.Tensor] = {}
        self._target_params = list(self.critic_target.parameters())

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One SAC update on a `[K, b, ...]` batch: the critic and the temperatures always, the actor on every
        `sac.actor_update_every`-th call. Returns per-task `[K]` metrics, still on the device; between actor
        updates the actor's metrics are those of the last one."""
        with_actor = self.updates_done % self.cfg.sac.actor_update_every == 0
        self.updates_done += 1
        if self._graphed is not None:
            metrics = self._graphed[with_actor](batch)
        else:
            metrics = self._update(batch, with_actor)
        if with_actor:  # its actor's entries stand in for the next updates', which have none
            self._last_actor_update_metrics = metrics
        return {**self._last_actor_update_metrics, **metrics}

    def _update(self, batch: Batch, with_actor: bool) -> dict[str, torch.Tensor]:
        """The update itself, eager (captured in a CUDA graph under `sac.cuda_graph`, one graph per branch)."""
        sac, steps = self.cfg.sac, self.steps
        if self.compiled_graphs:  # the compiled functions' outputs of the last update may now be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        alpha = self.log_alpha.detach().exp()

        # Critic: fit both members to the soft Bellman target; truncation bootstraps, termination does not.
        with torch.no_grad():
            target, next_log_prob = steps.soft_target(batch.next_obs, batch.reward, batch.terminal, alpha)
        if self.critic_combiner.needs_record:
            out, critic_record = self.critic.forward_recorded(batch.obs, batch.action)
            critic_losses = self.q_values.loss(out, target)
        else:
            (critic_losses, out), critic_record = steps.critic_loss(batch.obs, batch.action, target), None
        critic_stats = multitask_backward(critic_losses, self.critic.net, critic_record, self.critic_combiner)
        bad = _guarded_step(self.critic_opt, critic_losses, sac.critic_grad_clip)
        if self.critic_combiner.needs_losses_after_step:  # FAMO: how far this step moved each task's loss
            with torch.no_grad():
                self.critic_combiner.after_step(self.critic_loss(batch.obs, batch.action, target)[0])
        metrics = {  # copies: under CUDA graphs the compiled functions' outputs are overwritten at their next call
            "loss/critic": critic_losses.detach().clone(),
            "temperature": alpha,
            "q": self.q_values.values(out.detach()).mean(dim=(0, 2)),
            **{f"combiner/critic/{k}": v for k, v in critic_stats.items()},
        }
        if with_actor:
            actor_bad, log_prob, actor_metrics = self._actor_update(batch, alpha)
            bad = torch.maximum(bad, actor_bad)
            metrics.update(actor_metrics)
        else:  # the policy's entropy at the target's fresh next actions, so the temperatures keep their pace
            log_prob = next_log_prob
        # Temperatures: one per task, each driving its task's policy entropy towards the target.
        entropy_gap = (log_prob.detach() + sac.target_entropy).mean(dim=-1)
        alpha_losses = -self.log_alpha * entropy_gap
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_losses.sum().backward()
        bad = torch.maximum(bad, _guarded_step(self.alpha_opt, alpha_losses))
        metrics["loss/temperature"] = alpha_losses.detach()
        self.nonfinite_updates += bad
        self.nonfinite_in_a_row.add_(1).mul_(bad)  # in place, as everything a CUDA graph's replay must update

        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._critic_params, sac.tau)
        return {**metrics, "train/nonfinite_updates": self.nonfinite_updates.clone()}

    def _actor_update(self, batch: Batch, alpha: torch.Tensor,
                      ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The actor's step. Returns 1.0 if it was skipped (non-finite), the log-probabilities of its sampled
        actions `[K, b]`, and its metrics."""
        sac, steps = self.cfg.sac, self.steps
        # Actor: maximise soft Q under the current policy; the critic's weights get no gradient here.
        with frozen(self.critic):
            if self.actor_combiner.needs_record:
                action, log_prob, actor_record = self.actor.sample_recorded(batch.obs)
                actor_losses = steps.policy_loss(batch.obs, action, log_prob, alpha)
            else:
                (actor_losses, log_prob), actor_record = steps.actor_loss(batch.obs, alpha), None
        actor_stats = multitask_backward(actor_losses, self.actor.net, actor_record, self.actor_combiner)
        actor_bad = _guarded_step(self.actor_opt, actor_losses, sac.actor_grad_clip)
        return actor_bad, log_prob, {
            "loss/actor": actor_losses.detach().clone(),
            "entropy": -log_prob.detach().mean(dim=-1),
            **{f"combiner/actor/{k}": v for k, v in actor_stats.items()},
        }

    # The update's forward-and-loss steps. `sac.compile` compiles the ones without a record (`__init__`).
    def soft_target(self, next_obs: torch.Tensor, reward: torch.Tensor, terminal: torch.Tensor,
                    alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The critic's regression target from the target critics at a fresh next action, and that action's
        log-probability `[K, b]`."""
        next_action, next_log_prob = self.actor.sample(next_obs)
        continuation = self.cfg.sac.gamma * (1.0 - terminal)
        return self.q_values.target(self.critic_target(next_obs, next_action), reward, continuation, alpha,
                                    next_log_prob), next_log_prob

    def critic_loss(self, obs: torch.Tensor, action: torch.Tensor, target: torch.Tensor,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-task critic losses `[K]` and the critic's raw outputs."""
        out = self.critic(obs, action)
        return self.q_values.loss(out, target), out

    def actor_loss(self, obs: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-task actor losses `[K]` and the sampled actions' log-probabilities `[K, b]`."""
        action, log_prob = self.actor.sample(obs)
        return self.policy_loss(obs, action, log_prob, alpha), log_prob

    def policy_loss(self, obs: torch.Tensor, action: torch.Tensor, log_prob: torch.Tensor,
                    alpha: torch.Tensor) -> torch.Tensor:
        """Per-task actor losses `[K]` of actions already sampled: the entropy-regularised negative soft Q."""
        q_pi = self.q_values.policy_value(self.critic(obs, action))
        return (alpha[:, None] * log_prob - q_pi).mean(dim=-1)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """Actions in (-1, 1) for one observation per task, `obs [K, obs_dim]` -> `[K, act_dim]`, or for n
        observations per task, `[K, n, obs_dim]` -> `[K, n, act_dim]`."""
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        one_per_task = obs_t.ndim == 2
        if one_per_task:
            obs_t = obs_t.unsqueeze(1)
        action = self.actor.deterministic(obs_t) if deterministic else self.actor.sample(obs_t)[0]
        return (action.squeeze(1) if one_per_task else action).cpu().numpy()

    def state_dict(self) -> dict:
        """Everything an update changes, for a checkpoint."""
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "alpha_opt": self.alpha_opt.state_dict(),
            "nonfinite_updates": self.nonfinite_updates.clone(),
            "nonfinite_in_a_row": self.nonfinite_in_a_row.clone(),
            "updates_done": self.updates_done,
            "actor_combiner": self.actor_combiner.state_dict(),
            "critic_combiner": self.critic_combiner.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a `state_dict`; the networks' shapes must match this agent's config."""
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
        self.nonfinite_updates.copy_(state["nonfinite_updates"])
        self.nonfinite_in_a_row.copy_(state.get("nonfinite_in_a_row", torch.zeros(())))
        self.actor_combiner.load_state_dict(state["actor_combiner"])
        self.critic_combiner.load_state_dict(state["critic_combiner"])
        self.updates_done = int(state.get("updates_done", 0))
        if self._graphed is not None:  # the optimizers' state tensors are new: record the update again
            self._graphed = self._graph_updates()

    def _graph_updates(self) -> dict[bool, GraphedUpdate]:
        """A CUDA-graphed update for each branch that `sac.actor_update_every` takes (keyed by `with_actor`)."""
        branches = (True, False) if self.cfg.sac.actor_update_every > 1 else (True,)
        return {with_actor: GraphedUpdate(functools.partial(self._update, with_actor=with_actor))
                for with_actor in branches}


@dataclass(frozen=True)
class _Steps:
    """The update's forward-and-loss functions, eager or compiled."""

    soft_target: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    critic_loss: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    actor_loss: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    policy_loss: Callable[..., torch.Tensor]


def _guarded_step(optimizer: torch.optim.Optimizer, losses: torch.Tensor, max_grad_norm: float = 0.0) -> torch.Tensor:
    """Step `optimizer` unless a loss or a gradient is not finite; returns 1.0 if the step was skipped. With
    `max_grad_norm > 0` the gradients are first scaled down to that global norm if they exceed it. The check,
    the clipping and the skip all happen on the device (fused Adam's `found_inf`), so nothing waits for them."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    norms = torch.stack(torch._foreach_norm(grads))
    finite = torch.isfinite(losses).all() & torch.isfinite(norms).all()
    if max_grad_norm > 0:
        clip_grad_norm_(grads, max_grad_norm, norms)
    optimizer.found_inf = (~finite).float()
    optimizer.step()
    return optimizer.found_inf
