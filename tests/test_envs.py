import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from mtrl.envs import MT10, NUM_TASKS, STATE_DIM, TASK_NAMES


def test_shapes_and_one_hot(fixed_env):
    obs = fixed_env.reset()
    assert obs.shape == (NUM_TASKS, STATE_DIM + NUM_TASKS) and obs.dtype == np.float32
    assert fixed_env.action_dim == 4 and len(TASK_NAMES) == 10
    np.testing.assert_array_equal(obs[:, STATE_DIM:], np.eye(NUM_TASKS))
    step = fixed_env.step(np.zeros((NUM_TASKS, 4), dtype=np.float32))
    for arr in (step.obs, step.next_obs):
        np.testing.assert_array_equal(arr[:, STATE_DIM:], np.eye(NUM_TASKS))
    assert step.reward.shape == step.terminated.shape == step.success.shape == (NUM_TASKS,)


def test_truncation_is_not_termination_and_keeps_true_final_obs(fixed_env):
    """At the 150-step limit every task truncates; the transition's next_obs continues the episode while
    `obs` is already the next episode's first observation, with the same (fixed) goal."""
    first = fixed_env.reset()
    rng = np.random.default_rng(0)
    obs = first
    for t in range(fixed_env.protocol.max_episode_steps):
        step = fixed_env.step(rng.uniform(-1, 1, (NUM_TASKS, 4)).astype(np.float32))
        if t < fixed_env.protocol.max_episode_steps - 1:
            assert not step.done.any()
            np.testing.assert_array_equal(step.obs, step.next_obs)
            obs = step.obs
    assert step.truncated.all() and not step.terminated.any()
    hand_move_final = np.abs(step.next_obs[:, :3] - obs[:, :3]).max()
    hand_move_reset = np.abs(step.obs[:, :3] - obs[:, :3]).max(axis=1)
    assert hand_move_final < 0.05  # one action moves the hand a little
    assert (hand_move_reset > hand_move_final).any()  # the reset puts it back to its start
    np.testing.assert_allclose(step.obs[:, 36:39], first[:, 36:39], atol=1e-5)  # goals stay fixed


def test_official_protocol_draws_new_goals(official_env):
    first = official_env.reset()
    second = official_env.reset()
    assert official_env.protocol.max_episode_steps == 500
    assert not np.allclose(first[:, 36:39], second[:, 36:39])


def test_a_restored_goal_sampler_goes_on_drawing_where_it_stopped():
    """A resumed run's environments, built anew from the seed, draw the goals the saved ones would have drawn
    next, not the seed's first goals again; also through the collector's worker processes."""
    def goals(env: MT10, resets: int) -> np.ndarray:
        return np.stack([env.reset()[:, 36:39] for _ in range(resets)])

    saved = MT10("mt10", seed=3)
    resumed = MT10("mt10", seed=3, vector="workers", workers=2)
    try:
        first = goals(saved, 2)
        state = saved.goal_sampler_state()
        expected = goals(saved, 3)
        resumed.restore_goal_sampler(state)
        np.testing.assert_array_equal(goals(resumed, 3), expected)
        assert not np.allclose(expected[0], first[0])  # built from the seed alone, it would start from `first`
    finally:
        saved.close()
        resumed.close()


def test_worker_collector_steps_exactly_like_the_sync_vector_env():
    """Same seed, same actions: the project's 2-process collector and Gymnasium's sync vector env return the
    same transitions, across an episode end (autoreset), under fixed goals and with terminate-on-success."""
    sync = MT10("mt10-fixed", seed=7)
    pooled = MT10("mt10-fixed", seed=7, vector="workers", workers=2)
    try:
        assert np.array_equal(sync.reset(), pooled.reset())
        rng = np.random.default_rng(0)
        ends = 0
        for t in range(2 * sync.protocol.max_episode_steps + 5):
            if t == sync.protocol.max_episode_steps + 3:
                for env in (sync, pooled):
                    env.set_terminate_on_success(True)
            actions = rng.uniform(-1, 1, (sync.num_tasks, sync.action_dim)).astype(np.float32)
            a, b = sync.step(actions), pooled.step(actions)
            for field in ("obs", "next_obs", "reward", "terminated", "truncated", "success"):
                assert np.array_equal(getattr(a, field), getattr(b, field)), (t, field)
            ends += int(a.done.any())
        assert ends >= 2
    finally:
        sync.close()
        pooled.close()


def test_a_process_that_fails_with_its_collector_open_still_exits(tmp_path: Path):
    """The workers block SIGTERM for life, and multiprocessing's exit hook SIGTERMs a daemonic worker and then
    waits for it: a process that raised between starting its pool and closing it would wait forever. The pool
    closes itself at exit instead."""
    script = tmp_path / "fails.py"
    script.write_text(textwrap.dedent("""
        if __name__ == "__main__":
            from mtrl.envs import MT10
            env = MT10("mt10-fixed", 1, "v2", "workers", workers=2)
            raise RuntimeError("failed with the pool open")
    """))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1 and "failed with the pool open" in result.stderr, result.stderr[-2000:]
