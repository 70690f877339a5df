"""The critic's two readings: the categorical projection, its loss and targets, against hand-built cases."""

import pytest
import torch

from mtrl.q_values import CategoricalQ, ScalarQ, project_onto_support


def test_projection_keeps_mass_and_mean_inside_the_support():
    torch.manual_seed(0)
    atoms = torch.rand(3, 5, 11) * 16 - 8  # inside [-10, 10]
    probs = torch.softmax(torch.randn(3, 5, 11), dim=-1)
    projected = project_onto_support(atoms, probs, -10.0, 10.0)
    support = torch.linspace(-10, 10, 11)
    torch.testing.assert_close(projected.sum(-1), torch.ones(3, 5))
    torch.testing.assert_close((projected * support).sum(-1), (probs * atoms).sum(-1), rtol=1e-5, atol=1e-5)


def test_projection_of_atoms_on_bins_and_out_of_range():
    support = torch.linspace(-1, 1, 5)  # bins at -1, -0.5, 0, 0.5, 1
    probs = torch.full((5,), 0.2)
    torch.testing.assert_close(project_onto_support(support, probs, -1.0, 1.0), probs)  # already on the bins
    far = torch.tensor([-3.0, -2.0, 0.25, 5.0, 9.0])  # clipped to the ends; 0.25 splits between 0 and 0.5
    expected = torch.tensor([0.4, 0.0, 0.1, 0.1, 0.4])
    torch.testing.assert_close(project_onto_support(far, probs, -1.0, 1.0), expected)


def test_categorical_target_of_a_terminal_transition_is_the_reward():
    values = CategoricalQ(bins=21, v_min=-10.0, v_max=10.0)
    next_out = torch.randn(2, 1, 3, 21)
    reward = torch.tensor([[1.0, -3.0, 2.5]])
    target = values.target(next_out, reward, torch.zeros(1, 3), torch.ones(1), torch.zeros(1, 3))
    torch.testing.assert_close((target * values.support).sum(-1), reward)
    assert ((target > 0).sum(-1) <= 2).all()  # a point mass splits over at most two neighbouring bins


def test_categorical_target_mean_is_the_soft_bellman_backup_of_the_mean():
    torch.manual_seed(1)
    values = CategoricalQ(bins=51, v_min=-10.0, v_max=10.0)
    next_out = torch.randn(2, 2, 4, 51)
    reward, continuation = torch.rand(2, 4), torch.full((2, 4), 0.9)
    alpha, log_prob = torch.tensor([0.1, 0.2]), torch.randn(2, 4)
    target = values.target(next_out, reward, continuation, alpha, log_prob)
    next_mean = (torch.softmax(next_out, -1).mean(0) * values.support).sum(-1)
    expected = reward + continuation * (next_mean - alpha[:, None] * log_prob)
    torch.testing.assert_close((target * values.support).sum(-1), expected, rtol=1e-5, atol=1e-5)


def test_categorical_loss_is_smallest_at_the_target_and_per_task():
    values = CategoricalQ(bins=11, v_min=-1.0, v_max=1.0)
    target = torch.softmax(torch.randn(3, 4, 11), dim=-1)
    matched = target.log().expand(2, -1, -1, -1)
    other = torch.randn(2, 3, 4, 11)
    assert values.loss(matched, target).shape == (3,)
    assert (values.loss(matched, target) < values.loss(other, target)).all()


@pytest.mark.parametrize("values", [ScalarQ(), CategoricalQ(11, -5.0, 5.0)], ids=["scalar", "categorical"])
def test_shapes(values):
    out = torch.randn(2, 3, 4, values.outputs)
    assert values.values(out).shape == (2, 3, 4) and values.policy_value(out).shape == (3, 4)
