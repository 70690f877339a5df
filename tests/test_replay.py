import numpy as np
import pytest
import torch

import mtrl.replay as replay_module
from mtrl.replay import CUTS_PER_SPAN, MultiTaskReplay

K, STATE, ACT = 10, 39, 4
EPISODE = 5  # steps per episode in these tests


def _fill(buffer: MultiTaskReplay, steps: int) -> None:
    """Transition t of task k carries the value 1000*k + t in its observation, action and reward. Episodes last
    EPISODE steps; an episode's final observation is its last observation + 0.5, and the next episode starts
    from the next value, so a sampled next observation says whether it came from the right place."""
    for t in range(steps):
        value = (1000 * np.arange(K) + t).astype(np.float32)
        obs = np.repeat(value[:, None], STATE + K, axis=1)
        end = np.full(K, (t + 1) % EPISODE == 0)
        next_obs = np.where(end[:, None], obs + 0.5, obs + 1.0)
        buffer.add(obs, np.repeat(value[:, None], ACT, 1), value, next_obs, np.zeros(K, bool), end)


def _expected_next(reward: torch.Tensor) -> torch.Tensor:
    t = reward.remainder(1000)
    return torch.where((t + 1) % EPISODE == 0, reward + 0.5, reward + 1.0)


def test_sample_layout_balance_and_next_observations():
    buffer = MultiTaskReplay(K, capacity_per_task=100, state_dim=STATE, action_dim=ACT, min_episode_length=EPISODE)
    _fill(buffer, 50)
    batch = buffer.sample(per_task=256, generator=torch.Generator().manual_seed(0))
    assert batch.obs.shape == batch.next_obs.shape == (K, 256, STATE + K) and batch.action.shape == (K, 256, ACT)
    assert batch.reward.shape == batch.terminal.shape == (K, 256) and batch.terminal.dtype == torch.float32
    task_of_row = torch.div(batch.reward, 1000, rounding_mode="floor")
    assert torch.equal(task_of_row, torch.arange(K).float()[:, None].expand(K, 256))  # task k's rows from task k
    torch.testing.assert_close(batch.obs[..., :STATE], batch.reward[..., None].expand(-1, -1, STATE))
    torch.testing.assert_close(batch.next_obs[..., :STATE], _expected_next(batch.reward)[..., None].expand(-1, -1, STATE))
    torch.testing.assert_close(batch.obs[..., STATE:], torch.eye(K)[:, None, :].expand(K, 256, K))
    steps = batch.reward.remainder(1000)
    assert steps.max() == 48 and steps.min() == 0  # the newest transition waits for its next observation
    assert ((steps + 1) % EPISODE == 0).any()  # episode ends are sampled too


def test_wraps_around_when_full_and_keeps_next_observations_right():
    buffer = MultiTaskReplay(K, capacity_per_task=23, state_dim=STATE, action_dim=ACT, min_episode_length=EPISODE)
    _fill(buffer, 61)
    assert buffer.size == 23 and buffer.position == 61 % 23
    steps = buffer.reward.remainder(1000)
    assert steps.min() == 61 - 23 and steps.max() == 60  # only the newest 23 remain
    batch = buffer.sample(per_task=512, generator=torch.Generator().manual_seed(1))
    sampled = batch.reward.remainder(1000)
    assert sampled.min() == 61 - 23 and sampled.max() == 59
    torch.testing.assert_close(batch.next_obs[..., 0], _expected_next(batch.reward))


def test_terminal_flags_are_kept():
    buffer = MultiTaskReplay(K, capacity_per_task=10, state_dim=STATE, action_dim=ACT)
    obs = np.zeros((K, STATE), np.float32)
    terminal = np.arange(K) % 2 == 0
    buffer.add(obs, np.zeros((K, ACT)), np.zeros(K), obs + 1, terminal, terminal)
    buffer.add(obs + 2, np.zeros((K, ACT)), np.zeros(K), obs + 3, np.zeros(K, bool), np.zeros(K, bool))
    batch = buffer.sample(per_task=4)
    assert torch.equal(batch.terminal, torch.as_tensor(terminal, dtype=torch.float32)[:, None].expand(K, 4))
    torch.testing.assert_close(batch.next_obs[..., 0], torch.where(torch.as_tensor(terminal), 1.0, 2.0)[:, None]
                               .expand(K, 4))


def test_storage_is_within_a_tenth_of_the_raw_fields():
    buffer = MultiTaskReplay(K, capacity_per_task=60_000, state_dim=STATE, action_dim=ACT, min_episode_length=150)
    raw = 4 * (STATE + ACT + 1) + 1
    assert buffer.bytes_per_transition() <= 1.1 * raw


def test_too_short_episodes_are_refused():
    buffer = MultiTaskReplay(K, capacity_per_task=50, state_dim=STATE, action_dim=ACT, min_episode_length=EPISODE + 1)
    with pytest.raises(ValueError, match=f"ended after {EPISODE} steps.*at least {EPISODE + 1}"):
        _fill(buffer, EPISODE)


def test_state_dict_round_trip():
    buffer = MultiTaskReplay(K, capacity_per_task=30, state_dim=STATE, action_dim=ACT, min_episode_length=EPISODE)
    _fill(buffer, 12)
    copy = MultiTaskReplay(K, capacity_per_task=30, state_dim=STATE, action_dim=ACT, min_episode_length=EPISODE)
    copy.load_state_dict(buffer.state_dict())
    assert copy.size == 12 and copy.position == 12
    for name in ("obs", "reward", "final_ref", "final_obs"):
        assert torch.equal(getattr(copy, name), getattr(buffer, name))
    _fill(copy, 3), _fill(buffer, 3)  # the episode in progress continues where it was
    generator = lambda: torch.Generator().manual_seed(2)  # noqa: E731
    torch.testing.assert_close(copy.sample(64, generator()).next_obs, buffer.sample(64, generator()).next_obs)


def test_ending_the_episodes_in_progress_keeps_the_newest_next_observation():
    """A resumed run's environments start new episodes: the newest transition before the resume must keep its
    own next observation, not take the first observation of the next episode."""
    buffer = MultiTaskReplay(K, capacity_per_task=40, state_dim=STATE, action_dim=ACT, min_episode_length=EPISODE)
    _fill(buffer, 12)  # two episodes and two steps of the third: the newest is step 11, next observation 12
    copy = MultiTaskReplay(K, capacity_per_task=40, state_dim=STATE, action_dim=ACT, min_episode_length=EPISODE)
    copy.load_state_dict(buffer.state_dict())
    copy.end_episodes()
    restart = np.full((K, STATE), -7.0, np.float32)  # a new episode's first observation
    copy.add(restart, np.zeros((K, ACT)), np.full(K, -7.0), restart + 1, np.zeros(K, bool), np.zeros(K, bool))
    copy.add(restart + 1, np.zeros((K, ACT)), np.full(K, -6.0), restart + 2, np.zeros(K, bool), np.zeros(K, bool))
    batch = copy.sample(per_task=512, generator=torch.Generator().manual_seed(3))
    before = batch.reward >= 0
    assert (batch.reward.remainder(1000) == 11).any()
    torch.testing.assert_close(batch.next_obs[..., 0][before], _expected_next(batch.reward)[before])
    torch.testing.assert_close(batch.next_obs[..., 0][~before], batch.reward[~before] + 1)
    assert copy.episode_length.tolist() == [2] * K  # the new episode counts from its own start


def test_a_buffer_resumed_too_often_within_its_span_leaves_further_episodes_open():
    buffer = MultiTaskReplay(K, capacity_per_task=1000, state_dim=STATE, action_dim=ACT, min_episode_length=EPISODE)
    obs = np.zeros((K, STATE), np.float32)
    ended = []
    for _ in range(CUTS_PER_SPAN + 1):
        buffer.add(obs, np.zeros((K, ACT)), np.zeros(K), obs, np.zeros(K, bool), np.zeros(K, bool))
        ended.append(buffer.end_episodes())
    assert ended == [True] * CUTS_PER_SPAN + [False]


def _add(buffer: MultiTaskReplay, ident: float, following: float, end: bool) -> None:
    """One step whose observation and reward are `ident` (plus 1000 k for task k) and whose next observation
    is `following`."""
    offset = 1000 * np.arange(K)
    obs = np.repeat((offset + ident)[:, None], STATE, 1).astype(np.float32)
    next_obs = np.repeat((offset + following)[:, None], STATE, 1).astype(np.float32)
    buffer.add(obs, np.zeros((K, ACT)), offset + ident, next_obs, np.zeros(K, bool), np.full(K, end))


def test_an_older_smaller_table_of_episode_ends_keeps_every_live_row(monkeypatch):
    """A checkpoint written before the table kept room for cuts holds a full ring of episode ends; loaded into
    today's larger table and then cut at resumes, it must not overwrite an end a stored transition points to."""
    monkeypatch.setattr(replay_module, "CUTS_PER_SPAN", 0)
    old = MultiTaskReplay(K, capacity_per_task=20, state_dim=STATE, action_dim=ACT, min_episode_length=EPISODE)
    monkeypatch.undo()
    expected = {}
    for t in range(45):  # nine episodes: the ring of 6 rows has wrapped, and its newest 4 rows are live
        end = (t + 1) % EPISODE == 0
        expected[t] = t + 0.5 if end else t + 1.0
        _add(old, t, expected[t], end)
    state = {k: v for k, v in old.state_dict().items() if k not in ("added", "newest_next_obs", "cuts")}
    for cut in range(3):  # three resumes, each after one step of a new episode
        buffer = MultiTaskReplay(K, capacity_per_task=20, state_dim=STATE, action_dim=ACT, min_episode_length=EPISODE)
        buffer.load_state_dict(state)
        assert buffer.end_episodes()
        ident = 100.0 + cut
        expected[ident] = ident + 0.25
        _add(buffer, ident, expected[ident], end=False)
        state = buffer.state_dict()
    buffer = MultiTaskReplay(K, capacity_per_task=20, state_dim=STATE, action_dim=ACT, min_episode_length=EPISODE)
    buffer.load_state_dict(state)
    buffer.end_episodes()
    batch = buffer.sample(per_task=512, generator=torch.Generator().manual_seed(4))
    own = batch.reward - 1000 * torch.arange(K)[:, None]
    assert (own == 29).any()  # the oldest live end of the old table is among the samples
    want = torch.tensor([[expected[float(i)] for i in row] for row in own.tolist()]) + 1000 * torch.arange(K)[:, None]
    torch.testing.assert_close(batch.next_obs[..., 0], want)
