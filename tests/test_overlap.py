"""The overlapped loop (`train.overlap`): the update runs while the collector's workers step the envs, and every
transition is still stored with the action that produced it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtrl.config import ConfigError, load_config
from mtrl.envs import MT10
from mtrl.trainer import Trainer

TINY = ["train.steps=320", "train.warmup_steps=100", "train.eval_every=1000", "train.checkpoint_every=1000",
        "train.log_every=50", "train.buffer_capacity=5000", "sac.batch_size=40", "net.hidden_dim=16",
        "train.threads=1", "device=cpu", "env.vector=workers", "train.overlap=true"]


def test_overlapped_loop_stores_each_action_with_its_own_transition(tmp_path):
    """The actions the replay holds, stepped again through a fresh env of the same seed, give exactly the
    stored observations, rewards and final observations, across two episode ends; and every step after the
    warm-up did its update."""
    cfg = load_config("configs/mt10_cpu.yaml", TINY)
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.train()
    replay = trainer.replay
    assert replay.size == cfg.train.steps
    params = list(trainer.agent.critic.parameters())
    assert int(trainer.agent.critic_opt.state[params[0]]["step"]) == cfg.train.steps - cfg.train.warmup_steps

    env = MT10(cfg.env.protocol, cfg.seed, cfg.env.reward_version)
    try:
        obs, ends = env.reset(), 0
        for t in range(cfg.train.steps):
            step = env.step(replay.action[:, t].numpy())
            assert np.array_equal(replay.obs[:, t].numpy(), obs[:, : replay.state_dim]), t
            assert np.array_equal(replay.reward[:, t].numpy(), step.reward), t
            for task in np.flatnonzero(step.done):
                final = replay.final_obs[task, replay.final_ref[task, t]].numpy()
                assert np.array_equal(final, step.next_obs[task, : replay.state_dim]), (t, task)
            ends += int(step.done.all())
            obs = step.obs
        assert ends == 2
    finally:
        env.close()


def test_overlap_needs_the_worker_collector():
    with pytest.raises(ConfigError, match="train.overlap' needs env.vector=workers"):
        load_config("configs/mt10_cpu.yaml", ["train.overlap=true", "env.vector=sync"])


def test_compiled_update_gives_the_eager_numbers():
    """`sac.compile` changes how the update runs, not what it computes (the compiled kernels draw their noise
    through the eager generator here, so both see the same random numbers)."""
    import torch._inductor.config as inductor

    from mtrl.apps.bench import _filled_replay
    from mtrl.envs import NUM_TASKS, STATE_DIM
    from mtrl.sac import MTSAC

    overrides = ["net.hidden_dim=32", "sac.batch_size=80", "device=cpu"]
    agents = []
    for compiled in (False, True):
        torch.manual_seed(0)
        cfg = load_config("configs/mt10_cpu.yaml", [*overrides, f"sac.compile={str(compiled).lower()}"])
        agents.append(MTSAC(cfg, STATE_DIM + NUM_TASKS, 4, NUM_TASKS, torch.device("cpu")))
    batch = _filled_replay(torch.device("cpu"), 300).sample(8)
    previous, inductor.fallback_random = inductor.fallback_random, True
    try:
        for update in range(4):
            metrics = []
            for agent in agents:
                torch.manual_seed(update)
                metrics.append(agent.update(batch))
            for key in ("loss/critic", "loss/actor", "entropy", "q"):
                torch.testing.assert_close(metrics[1][key], metrics[0][key], rtol=1e-4, atol=1e-5)
    finally:
        inductor.fallback_random = previous
    for eager, compiled in zip(agents[0].actor.parameters(), agents[1].actor.parameters()):
        torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-6)
