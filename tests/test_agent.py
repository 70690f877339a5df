import copy

import numpy as np
import pytest
import torch

from agents.mtsac import MTSAC
from mtrl.combiners import COMBINERS
from mtrl.config import load_config
from mtrl.mtl_backward import multitask_backward
from mtrl.replay import MultiTaskReplay

K, STATE, ACT = 10, 39, 4


def _small_agent(method: str = "mtsac", overrides: tuple[str, ...] = ()) -> MTSAC:
    cfg = load_config(None, ["net.hidden_dim=32", "net.hidden_layers=2", *overrides], method=method)
    return MTSAC(cfg, STATE + K, ACT, K, torch.device("cpu"))


def _batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    buffer = MultiTaskReplay(K, 64, STATE, ACT)
    for _ in range(64):
        obs = rng.normal(size=(K, STATE + K)).astype(np.float32)
        buffer.add(obs, rng.uniform(-1, 1, (K, ACT)), rng.normal(size=K), obs + 0.01, np.zeros(K, bool), np.zeros(K, bool))
    return buffer.sample(16, generator=torch.Generator().manual_seed(seed))


OPTIONS = {  # each network and loss option, and all of them together
    "plain": (),
    "layer_norm": ("net.layer_norm=true",),
    "residual": ("net.residual=true", "net.hidden_layers=3"),
    "critic_wider_than_actor": ("net.critic.hidden_dim=48", "net.actor.hidden_layers=1"),
    "categorical": ("sac.critic_loss=categorical", "sac.bins=21"),
    "grad_clip": ("sac.actor_grad_clip=0.1", "sac.critic_grad_clip=0.1"),
    "actor_update_every": ("sac.actor_update_every=2",),
    "all": ("net.critic.residual=true", "net.actor.layer_norm=true", "sac.critic_loss=categorical",
            "sac.critic_grad_clip=1.0", "sac.actor_update_every=2"),
}


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("method", sorted(COMBINERS))
def test_update_returns_finite_per_task_metrics(method, option):
    """Every combiner route with every network and loss option: a few updates on a tiny batch."""
    torch.manual_seed(0)
    agent = _small_agent(method, OPTIONS[option])
    before = [p.detach().clone() for p in agent.critic.parameters()]
    for _ in range(3):
        metrics = agent.update(_batch())
    for name in ("loss/critic", "loss/actor", "loss/temperature", "temperature", "combiner/actor/weight", "q"):
        assert metrics[name].shape == (K,) and torch.isfinite(metrics[name]).all()
    assert all(not torch.equal(a, b) for a, b in zip(before, agent.critic.parameters()))  # every parameter moved


def test_gradient_clipping_bounds_the_step():
    """The critic's gradients that the optimizer stepped with have the clipped global norm."""
    torch.manual_seed(0)
    agent = _small_agent("mtsac", ("sac.critic_grad_clip=0.001",))
    agent.update(_batch())
    grads = [p.grad for p in agent.critic.parameters()]
    total = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
    assert total == pytest.approx(0.001, rel=1e-3)


def test_updates_lower_the_critic_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    agent, batch = _small_agent(), _batch()
    with torch.no_grad():
        target = batch.reward  # a fixed regression target to measure the critic against

        def loss() -> float:
            return (agent.q_values.values(agent.critic(batch.obs, batch.action)) - target).pow(2).mean().item()

    before = loss()
    agent.cfg.sac.gamma = 0.0  # the update then regresses on the reward alone, the same target as above
    for _ in range(20):
        agent.update(batch)
    assert loss() < 0.8 * before


def test_heads_get_only_their_own_task_gradient():
    """With equal weighting, zeroing task 3's critic loss leaves task 3's critic head without gradient."""
    torch.manual_seed(0)
    agent, batch = _small_agent(), _batch()
    q, record = agent.critic.forward_recorded(batch.obs, batch.action)
    losses = q.squeeze(-1).pow(2).mean(dim=-1).sum(dim=0) * torch.tensor([1.0] * 3 + [0.0] + [1.0] * 6)
    multitask_backward(losses, agent.critic.net, record, agent.critic_combiner)
    head_grad = agent.critic.net.task_parameters()[0].grad
    assert head_grad[:, 3].abs().max() == 0 and head_grad[:, 4].abs().max() > 0


def test_act_shapes_and_determinism():
    agent = _small_agent()
    obs = np.random.default_rng(0).normal(size=(K, STATE + K)).astype(np.float32)
    a1, a2 = agent.act(obs, deterministic=True), agent.act(obs, deterministic=True)
    assert a1.shape == (K, ACT) and np.array_equal(a1, a2) and np.abs(a1).max() <= 1
    assert not np.array_equal(agent.act(obs, deterministic=False), agent.act(obs, deterministic=False))


def test_act_on_several_observations_per_task_acts_on_each_alone():
    agent = _small_agent()
    obs = np.random.default_rng(0).normal(size=(K, 3, STATE + K)).astype(np.float32)
    actions = agent.act(obs, deterministic=True)
    assert actions.shape == (K, 3, ACT)
    for n in range(3):
        np.testing.assert_allclose(actions[:, n], agent.act(obs[:, n], deterministic=True), atol=1e-6)


def test_a_non_finite_loss_skips_the_update_and_is_counted():
    torch.manual_seed(0)
    agent, batch = _small_agent(), _batch()
    batch.reward[3, 0] = float("nan")  # poisons task 3's critic loss
    critic_before = [p.detach().clone() for p in agent.critic.parameters()]
    actor_before = [p.detach().clone() for p in agent.actor.parameters()]
    metrics = agent.update(batch)
    assert metrics["train/nonfinite_updates"] == 1 and agent.nonfinite_in_a_row == 1
    restored = _small_agent()
    restored.load_state_dict(agent.state_dict())  # a resumed run keeps counting the bad updates in a row
    assert restored.nonfinite_in_a_row == 1 and restored.nonfinite_updates == 1
    for before, after in zip(critic_before, agent.critic.parameters()):
        assert torch.equal(before, after)  # nothing applied
    assert any(not torch.equal(b, a) for b, a in zip(actor_before, agent.actor.parameters()))
    agent.update(_batch(1))
    assert agent.nonfinite_in_a_row == 0 and agent.nonfinite_updates == 1
    assert all(torch.isfinite(p).all() for p in agent.critic.parameters())


def test_same_seed_same_losses():
    def losses(seed: int) -> list[float]:
        torch.manual_seed(seed)
        agent, batch = _small_agent("ntkmtl_sr"), _batch()
        return [agent.update(batch)["loss/critic"].sum().item() for _ in range(3)]

    assert losses(0) == losses(0)
    assert losses(0) != losses(1)


@pytest.mark.parametrize("method", ["famo", "nashmtl", "cagrad"])  # the methods that keep state
def test_a_restored_agent_continues_with_the_same_numbers(method):
    torch.manual_seed(0)
    agent, batch = _small_agent(method), _batch()
    for _ in range(3):
        agent.update(batch)
    state, rng = copy.deepcopy(agent.state_dict()), torch.get_rng_state()
    uninterrupted = [agent.update(batch)["loss/critic"].tolist() for _ in range(3)]

    restored = _small_agent(method)
    restored.load_state_dict(state)
    torch.set_rng_state(rng)
    assert [restored.update(batch)["loss/critic"].tolist() for _ in range(3)] == uninterrupted


def test_actor_update_every_steps_the_actor_on_every_nth_update_and_the_rest_on_every_one():
    torch.manual_seed(0)
    agent, batch = _small_agent("mtsac", ("sac.actor_update_every=3",)), _batch()

    def snapshot(module_or_tensor) -> list[torch.Tensor]:
        tensors = [module_or_tensor] if isinstance(module_or_tensor, torch.Tensor) else module_or_tensor.parameters()
        return [t.detach().clone() for t in tensors]

    actor_moved, alpha_moved, critic_moved, actor_losses = [], [], [], []
    for _ in range(6):
        actor, alpha, critic = snapshot(agent.actor), snapshot(agent.log_alpha), snapshot(agent.critic)
        metrics = agent.update(batch)
        actor_moved.append(not all(torch.equal(a, b) for a, b in zip(actor, agent.actor.parameters())))
        alpha_moved.append(not torch.equal(alpha[0], agent.log_alpha))
        critic_moved.append(not all(torch.equal(a, b) for a, b in zip(critic, agent.critic.parameters())))
        actor_losses.append(metrics["loss/actor"].tolist())
    assert actor_moved == [True, False, False, True, False, False]
    assert all(critic_moved) and all(alpha_moved)  # the temperatures keep their pace, from the target's actions
    # between the actor's steps the metrics carry its last losses
    assert actor_losses[0] == actor_losses[1] == actor_losses[2] != actor_losses[3] == actor_losses[5]


def test_a_restored_agent_keeps_its_place_in_the_actor_update_cycle():
    torch.manual_seed(0)
    agent, batch = _small_agent("mtsac", ("sac.actor_update_every=2",)), _batch()
    agent.update(batch)
    restored = _small_agent("mtsac", ("sac.actor_update_every=2",))
    restored.load_state_dict(copy.deepcopy(agent.state_dict()))
    actor = [p.detach().clone() for p in restored.actor.parameters()]
    restored.update(batch)  # the second update of the cycle: the critic's alone
    assert all(torch.equal(a, b) for a, b in zip(actor, restored.actor.parameters()))
    restored.update(batch)
    assert not all(torch.equal(a, b) for a, b in zip(actor, restored.actor.parameters()))


def test_the_run_stops_after_too_many_non_finite_updates_in_a_row(tmp_path):
    from mtrl.errors import RunError
    from mtrl.trainer import Trainer

    agent, batch = _small_agent(), _batch()
    batch.reward[:] = float("nan")
    trainer = Trainer.__new__(Trainer)  # the check alone, without building environments
    trainer.agent, trainer.cfg, trainer.step, trainer.run_dir = agent, agent.cfg, 1234, tmp_path
    agent.cfg.train.max_nonfinite_in_a_row = 3
    for _ in range(2):
        metrics = agent.update(batch)
    trainer._check_finite(metrics)  # two in a row: still running
    metrics = agent.update(batch)
    with pytest.raises(RunError, match=r"3 updates in a row up to step 1234 had a non-finite loss"):
        trainer._check_finite(metrics)
