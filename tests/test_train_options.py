"""Training-loop options on a real MT10 run of a few steps: updates per environment step, and reward
normalisation statistics that survive a checkpoint."""

from pathlib import Path

import numpy as np

from mtrl.config import load_config
from mtrl.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
TINY = ["train.steps=160", "train.warmup_steps=150", "train.eval_every=1000", "train.checkpoint_every=1000",
        "train.log_every=10", "train.buffer_capacity=5000", "sac.batch_size=40", "net.hidden_dim=16",
        "train.threads=1", "device=cpu"]


def test_updates_per_step_and_reward_statistics_through_a_checkpoint(tmp_path):
    cfg = load_config(ROOT / "configs/mt10_cpu.yaml", TINY + ["train.updates_per_step=3", "sac.normalise_rewards=true"])
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.train()
    steps_taken = trainer.agent.critic_opt.state[trainer.agent.critic.net.heads[0].weight]["step"]
    assert int(steps_taken) == 3 * (160 - 150)  # three optimizer steps after each environment step
    normaliser = trainer.reward_normaliser
    assert (normaliser.return_scale > 0).all()  # the first 150-step episode has ended in every task
    assert all(len(r) == 10 for r in normaliser.episode_rewards)  # the second one is 10 steps in

    resumed = Trainer(load_config(tmp_path / "run" / "config.yaml"), tmp_path / "run", resume=True)
    np.testing.assert_array_equal(resumed.reward_normaliser.return_scale, normaliser.return_scale)
    assert resumed.reward_normaliser.episode_rewards == normaliser.episode_rewards
    resumed.env.close()


def test_evaluation_on_copies_of_the_benchmark(tmp_path):
    overrides = ["env.protocol=mt10", "env.eval_episodes=2", "env.eval_copies=2", "train.steps=10",
                 "train.warmup_steps=10", "train.eval_every=10"]
    trainer = Trainer(load_config(ROOT / "configs/mt10_cpu.yaml", TINY + overrides), tmp_path / "run")
    result = trainer.train()
    assert [env.protocol.name for env in trainer.eval_envs] == ["mt10", "mt10"]
    assert result.episodes == 2 and all(rate in (0, 0.5, 1) for rate in result.success.values())
    assert all(env.pool is None and env.envs.closed for env in trainer.eval_envs)  # closed with the run
