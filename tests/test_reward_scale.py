"""Per-task reward normalisation: the return scale of finished episodes, and what rewards are divided by."""

import numpy as np
import pytest
import torch

from mtrl.reward_scale import RewardNormaliser, discounted_returns


def test_discounted_returns_of_terminated_and_truncated_episodes():
    rewards = np.array([1.0, 0.0, 2.0])
    np.testing.assert_allclose(discounted_returns(rewards, 0.5, terminated=True), [1.5, 1.0, 2.0])
    # truncated: continued by the mean reward 1.0 forever, worth 1 / (1 - 0.5) = 2 after the last step
    np.testing.assert_allclose(discounted_returns(rewards, 0.5, terminated=False), [1.75, 1.5, 3.0])


def test_each_task_is_scaled_by_its_own_returns():
    normaliser = RewardNormaliser(num_tasks=2, gamma=0.5, target_entropy=-4.0, v_max=10.0)
    alpha = torch.tensor([0.0, 0.0])
    torch.testing.assert_close(normaliser.divisors(alpha), torch.ones(2))  # nothing seen yet
    for reward in ([1.0, 100.0], [0.0, 0.0], [2.0, 200.0]):
        normaliser.observe(np.array(reward), np.ones(2, bool), np.array([reward[0] == 2.0] * 2))
    torch.testing.assert_close(normaliser.divisors(alpha), torch.tensor([0.2, 20.0]))  # G = 2 and 200, / 10
    # the entropy bonus's share: alpha |H| / (2 (1 - gamma)) = alpha * 4
    torch.testing.assert_close(normaliser.divisors(torch.tensor([0.5, 0.0])), torch.tensor([0.4, 20.0]))


def test_state_round_trip_keeps_the_unfinished_episode():
    normaliser = RewardNormaliser(num_tasks=1, gamma=0.9, target_entropy=-2.0, v_max=10.0)
    normaliser.observe(np.array([3.0]), np.array([True]), np.array([True]))
    normaliser.observe(np.array([5.0]), np.array([False]), np.array([False]))
    restored = RewardNormaliser(num_tasks=1, gamma=0.9, target_entropy=-2.0, v_max=10.0)
    restored.load_state_dict(normaliser.state_dict())
    for n in (normaliser, restored):
        n.observe(np.array([7.0]), np.array([True]), np.array([True]))
    assert restored.return_scale == pytest.approx(normaliser.return_scale)
    assert restored.return_scale[0] == pytest.approx(5.0 + 0.9 * 7.0)
