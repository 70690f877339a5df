"""The evaluator checked against reference policies (scripted experts succeed, random actions do not) and
against scripted episodes whose outcome is known, alone and spread over several copies of the benchmark."""

import threading

import numpy as np
import pytest

from mtrl import envs
from mtrl.envs import MT10, NUM_TASKS, PROTOCOLS, TASK_NAMES, Step, benchmark_copies
from mtrl.evaluation import ExpertPolicy, RandomPolicy, evaluate


def test_scripted_experts_score_high(official_env):
    result = evaluate(ExpertPolicy(), official_env, episodes=3)
    assert list(result.success) == list(TASK_NAMES)
    assert result.success_mean >= 0.9, result.to_markdown()
    assert result.protocol == "mt10" and result.episodes == 3


def test_random_actions_score_near_zero(fixed_env):
    result = evaluate(RandomPolicy(action_dim=4, seed=0), fixed_env, episodes=2)
    assert result.success_mean <= 0.2, result.to_markdown()


def test_reports_carry_their_labels(fixed_env, tmp_path):
    result = evaluate(RandomPolicy(action_dim=4, seed=1), fixed_env, episodes=1, labels={"method": "x"})
    json_path, md_path = result.save(tmp_path)
    text = md_path.read_text()
    assert "protocol mt10-fixed" in text and "method x" in text and "| reach-v3 |" in text
    assert '"success_mean"' in json_path.read_text()


class ScriptedCopy:
    """Stands in for one copy of MT10: task i's episodes last i + 1 steps with reward 1 per step, and all of
    this copy's episodes succeed (at their last step) or none do."""

    def __init__(self, succeeds: bool):
        self.num_tasks, self.protocol, self.succeeds = NUM_TASKS, PROTOCOLS["mt10"], succeeds
        self.t = np.zeros(NUM_TASKS, dtype=int)
        self.actions: list[np.ndarray] = []

    def set_terminate_on_success(self, on: bool) -> None:
        pass

    def reset(self) -> np.ndarray:
        self.t[:] = 0
        return np.zeros((NUM_TASKS, 1), dtype=np.float32)

    def step_async(self, actions: np.ndarray) -> None:
        self.actions.append(actions)

    def step_wait(self) -> Step:
        self.t += 1
        end = self.t == np.arange(1, NUM_TASKS + 1)
        self.t[end] = 0
        obs = np.zeros((NUM_TASKS, 1), dtype=np.float32)
        return Step(obs, obs, np.ones(NUM_TASKS, dtype=np.float32), end & self.succeeds, end & ~self.succeeds,
                    (end & self.succeeds).astype(np.float32))


@pytest.mark.parametrize("episodes", [1, 5, 6])
def test_copies_share_out_the_episodes(episodes):
    succeeding, failing = ScriptedCopy(succeeds=True), ScriptedCopy(succeeds=False)
    result = evaluate(RandomPolicy(action_dim=4), [succeeding, failing], episodes)
    # copy 0 runs episodes 0, 2, 4, ...: ceil(episodes / 2) of them, all successes
    assert all(rate == pytest.approx(-(-episodes // 2) / episodes) for rate in result.success.values())
    assert list(result.mean_return.values()) == pytest.approx(np.arange(1, NUM_TASKS + 1))
    assert result.episodes == episodes
    # each copy got its own column of one policy call, and stepped until the slowest task's share was done
    assert len(succeeding.actions) == len(failing.actions) == NUM_TASKS * -(-episodes // 2)
    assert succeeding.actions[0].shape == (NUM_TASKS, 4)


def test_a_copy_draws_its_own_goals_from_the_same_benchmark(official_env):
    other = MT10("mt10", seed=7, copy=1)
    try:
        for env in (official_env, other):
            env.reset()
        assert [len(t) for t in official_env.call("tasks")] == [50] * NUM_TASKS
        assert official_env.call("tasks") == other.call("tasks")
        goals = [np.stack(env.call("_target_pos")) for env in (official_env, other)]
        assert (np.abs(goals[0] - goals[1]).max(axis=1) > 1e-6).sum() >= NUM_TASKS - 2
        result = evaluate(ExpertPolicy(), [official_env, other], episodes=2)
        assert result.success_mean >= 0.9, result.to_markdown()
    finally:
        other.close()


class CopyUnderConstruction:
    """Stands in for `MT10` in `benchmark_copies`: waits at `barrier` until every copy is being built, so that
    copies built one after another never get past it; copy `fails` raises."""

    barrier: threading.Barrier
    fails: int | None = None

    def __init__(self, protocol, seed, reward_version, copy=0, **options):
        self.copy, self.closed = copy, False
        self.barrier.wait(timeout=10)
        if copy == self.fails:
            raise RuntimeError(f"copy {copy} failed to start")
        built.append(self)

    def close(self):
        self.closed = True


built: list[CopyUnderConstruction] = []


@pytest.fixture
def copies_under_construction(monkeypatch):
    built.clear()
    CopyUnderConstruction.barrier, CopyUnderConstruction.fails = threading.Barrier(3), None
    monkeypatch.setattr(envs, "MT10", CopyUnderConstruction)
    monkeypatch.setattr(envs, "_benchmark", lambda seed: None)
    return CopyUnderConstruction


def test_copies_of_the_benchmark_are_built_side_by_side(copies_under_construction):
    copies = benchmark_copies("mt10", 1, 3, vector="workers")
    assert [c.copy for c in copies] == [0, 1, 2]  # in copy order, whichever finished first


def test_a_copy_that_fails_closes_the_others(copies_under_construction):
    copies_under_construction.fails = 1
    with pytest.raises(RuntimeError, match="copy 1 failed to start"):
        benchmark_copies("mt10", 1, 3, vector="workers")
    assert sorted(c.copy for c in built) == [0, 2] and all(c.closed for c in built)
