import pytest
import torch

from mtrl.nets import Actor, MultiTaskMLP, TwinCritic

K, B, IN = 4, 5, 7


@pytest.mark.parametrize("head_layers", [1, 2, 3])  # 3 = hidden_layers + 1: one network per task
@pytest.mark.parametrize("members", [1, 2])
def test_changing_one_head_leaves_other_tasks_unchanged(head_layers, members):
    torch.manual_seed(0)
    net = MultiTaskMLP(IN, 3, hidden_dim=16, hidden_layers=2, head_layers=head_layers, num_tasks=K,
                       members=members)
    x = torch.randn(members, K, B, IN)
    before = net(x)
    with torch.no_grad():
        for p in net.task_parameters():
            p[:, 2] += torch.randn_like(p[:, 2])  # perturb task 2's head only
    after = net(x)
    for k in range(K):
        changed = not torch.allclose(before[:, k], after[:, k])
        assert changed == (k == 2)


def test_fully_shared_network_has_no_heads():
    net = MultiTaskMLP(IN, 3, hidden_dim=16, hidden_layers=2, head_layers=0, num_tasks=K)
    assert net.task_parameters() == [] and len(net.shared_parameters()) == 6
    x = torch.randn(1, K, B, IN)
    x[:, 1] = x[:, 0]
    out = net(x)
    torch.testing.assert_close(out[:, 0], out[:, 1])  # same input, same output, whatever the task slot


def test_rows_of_different_tasks_do_not_interact():
    net = MultiTaskMLP(IN, 3, hidden_dim=16, hidden_layers=2, head_layers=1, num_tasks=K)
    x = torch.randn(1, K, B, IN)
    y = x.clone()
    y[:, 3] = torch.randn(B, IN)
    torch.testing.assert_close(net(x)[:, :3], net(y)[:, :3])


def test_actor_and_critic_shapes_and_bounds():
    torch.manual_seed(0)
    actor = Actor(IN, 4, K, hidden_dim=16, hidden_layers=2, head_layers=1)
    critic = TwinCritic(IN, 4, K, hidden_dim=16, hidden_layers=2, head_layers=1)
    obs = torch.randn(K, B, IN) * 10
    action, log_prob = actor.sample(obs)
    assert action.shape == (K, B, 4) and log_prob.shape == (K, B)
    assert action.abs().max() <= 1 and torch.isfinite(log_prob).all()
    mean, log_std = actor(obs)
    assert log_std.min() >= -20 and log_std.max() <= 2
    assert critic(obs, action).shape == (2, K, B, 1)


def test_tanh_gaussian_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    actor = Actor(IN, 4, K, hidden_dim=16, hidden_layers=2, head_layers=1)
    obs = 0.1 * torch.randn(K, B, IN)  # keep actions away from +-1, where float32 atanh loses precision
    torch.manual_seed(1)
    action, log_prob = actor.sample(obs)
    mean, log_std = actor(obs)
    base = torch.distributions.Normal(mean, log_std.exp())
    dist = torch.distributions.TransformedDistribution(base, [torch.distributions.TanhTransform()])
    torch.testing.assert_close(log_prob, dist.log_prob(action).sum(-1), rtol=1e-4, atol=1e-4)


def test_a_training_forward_leaves_nothing_on_the_modules():
    """The record of a forward is returned to the caller; no module keeps activations as attributes."""
    torch.manual_seed(0)
    critic = TwinCritic(IN, 4, K, hidden_dim=16, hidden_layers=2, head_layers=1)
    q, record = critic.forward_recorded(torch.randn(K, B, IN), torch.randn(K, B, 4))
    q.sum().backward()
    assert record.representation.shape == (2, K, B, 16) and len(record.taps) == 2 and q.shape == (2, K, B, 1)
    for module in critic.modules():
        assert not [name for name, value in vars(module).items() if isinstance(value, torch.Tensor)]


def test_frozen_builds_no_gradient_path_to_the_weights():
    from mtrl.nets import frozen

    critic = TwinCritic(IN, 4, K, hidden_dim=16, hidden_layers=2, head_layers=1)
    action = torch.randn(K, B, 4, requires_grad=True)
    with frozen(critic):
        q = critic(torch.randn(K, B, IN), action)
    assert all(p.requires_grad for p in critic.parameters())  # restored after the block
    q.sum().backward()
    assert action.grad is not None and all(p.grad is None for p in critic.parameters())
