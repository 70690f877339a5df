import numpy as np
import torch

from mtrl.replay import MultiTaskReplay

K, STATE, ACT = 10, 39, 4


def _fill(buffer: MultiTaskReplay, steps: int) -> None:
    """Transition t of task k carries the value 1000*k + t everywhere, so a sample tells where it came from."""
    for t in range(steps):
        value = (1000 * np.arange(K) + t).astype(np.float32)
        obs = np.repeat(value[:, None], STATE + K, axis=1)
        buffer.add(obs, np.repeat(value[:, None], ACT, 1), value, obs + 0.5, np.zeros(K, dtype=bool))


def test_sample_layout_and_balance():
    buffer = MultiTaskReplay(K, capacity_per_task=100, state_dim=STATE, action_dim=ACT)
    _fill(buffer, 50)
    batch = buffer.sample(per_task=32, generator=torch.Generator().manual_seed(0))
    assert batch.obs.shape == (K, 32, STATE + K) and batch.action.shape == (K, 32, ACT)
    assert batch.reward.shape == batch.terminal.shape == (K, 32)
    task_of_row = torch.div(batch.reward, 1000, rounding_mode="floor")
    assert torch.equal(task_of_row, torch.arange(K).float()[:, None].expand(K, 32))  # task k's rows from task k
    torch.testing.assert_close(batch.obs[..., :STATE], batch.reward[..., None].expand(-1, -1, STATE))
    torch.testing.assert_close(batch.next_obs[..., :STATE], batch.obs[..., :STATE] + 0.5)
    torch.testing.assert_close(batch.obs[..., STATE:], torch.eye(K)[:, None, :].expand(K, 32, K))
    assert batch.reward.remainder(1000).max() < 50


def test_wraps_around_when_full():
    buffer = MultiTaskReplay(K, capacity_per_task=20, state_dim=STATE, action_dim=ACT)
    _fill(buffer, 35)
    assert buffer.size == 20 and buffer.position == 15
    steps = buffer.reward.remainder(1000)
    assert steps.min() == 15 and steps.max() == 34  # only the newest 20 remain


def test_state_dict_round_trip():
    buffer = MultiTaskReplay(K, capacity_per_task=30, state_dim=STATE, action_dim=ACT)
    _fill(buffer, 12)
    copy = MultiTaskReplay(K, capacity_per_task=30, state_dim=STATE, action_dim=ACT)
    copy.load_state_dict(buffer.state_dict())
    assert copy.size == 12 and copy.position == 12
    assert torch.equal(copy.obs, buffer.obs) and torch.equal(copy.reward, buffer.reward)
