"""Training-loop options on a real MT10 run of a few steps: updates per environment step, reward normalisation
statistics that survive a checkpoint, with the episodes in progress ended on resuming, and the official
protocol's evaluation copies and goal sampling, the code version a run records, what `train` returns when a
signal stops it, and that `train.steps` only says where a run stops."""

import json
import os
import signal
from pathlib import Path

import numpy as np
import torch

from mtrl.checkpoint import load_latest
from mtrl.config import load_config
from mtrl.envs import MT10
from mtrl.results import read_evaluations
from mtrl.reward_scale import discounted_returns
from mtrl.trainer import Trainer, describe_loop_time, milliseconds_per_step

ROOT = Path(__file__).resolve().parents[1]
TINY = ["train.steps=160", "train.warmup_steps=150", "train.eval_every=1000", "train.checkpoint_every=1000",
        "train.log_every=10", "train.buffer_capacity=5000", "sac.batch_size=40", "net.hidden_dim=16",
        "train.threads=1", "device=cpu", "env.vector=sync", "train.overlap=false"]  # the options, not the loop


def test_a_run_names_the_code_it_started_with_when_the_checkout_changes_during_it(tmp_path, monkeypatch):
    checkout = {"version": "abc1234"}
    monkeypatch.setattr("mtrl.trainer.code_version", lambda: checkout["version"])
    trainer = Trainer(load_config(ROOT / "configs/mt10_cpu.yaml", [*TINY, "train.eval_every=160",
                                                                    "env.eval_episodes=1"]), tmp_path / "run")
    checkout["version"] = "def5678+changes"  # edited while the run goes on, with the old code loaded
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "run" / "evaluations.jsonl").read_text().splitlines()]
    assert [(r["step"], r["code"]) for r in records] == [(160, "abc1234")]


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
    # the resumed run's environments start new episodes: the 10 steps in progress end there, as a truncation,
    # in the reward statistics and in the replay buffer
    partial = [np.abs(discounted_returns(np.asarray(r), cfg.sac.gamma, terminated=False)).max()
               for r in normaliser.episode_rewards]
    np.testing.assert_allclose(resumed.reward_normaliser.return_scale, np.maximum(normaliser.return_scale, partial))
    assert resumed.reward_normaliser.episode_rewards == [[] for _ in range(10)]
    newest = (resumed.replay.position - 1) % resumed.replay.capacity
    rows = resumed.replay.final_ref[:, newest].long()
    assert (rows >= 0).all()
    np.testing.assert_array_equal(resumed.replay.final_obs[torch.arange(10), rows].numpy(),
                                  trainer.replay.newest_next_obs)
    resumed.env.close()


def test_official_protocol_evaluation_on_copies_and_goal_sampling_through_a_checkpoint(tmp_path):
    overrides = ["env.protocol=mt10", "env.eval_episodes=2", "env.eval_copies=2", "train.steps=10",
                 "train.warmup_steps=10", "train.eval_every=10"]
    trainer = Trainer(load_config(ROOT / "configs/mt10_cpu.yaml", TINY + overrides), tmp_path / "run")
    result = trainer.train().result
    assert [env.protocol.name for env in trainer.eval_envs] == ["mt10", "mt10"]
    assert result.episodes == 2 and all(rate in (0, 0.5, 1) for rate in result.success.values())
    assert all(env.pool is None and env.envs.closed for env in trainer.eval_envs)  # closed with the run

    # the resumed run's environments go on drawing goals where the run stopped, not from the seed again
    saved = load_latest(tmp_path / "run")[1]["goal_sampler"]
    resumed = Trainer(load_config(tmp_path / "run" / "config.yaml"), tmp_path / "run", resume=True)
    fresh = MT10("mt10", seed=resumed.cfg.seed)
    try:
        assert resumed.env.goal_sampler_state() == saved != fresh.goal_sampler_state()
    finally:
        resumed.env.close()
        fresh.close()


def test_a_run_resumed_without_its_replay_buffer_fills_it_again_before_updating(tmp_path):
    cfg = load_config(ROOT / "configs/mt10_cpu.yaml", TINY + ["train.checkpoint_replay=false"])
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.train()
    trainer.env.close()
    head = trainer.agent.critic.net.heads[0].weight
    updates_before = int(trainer.agent.critic_opt.state[head]["step"])

    more = load_config(tmp_path / "run" / "config.yaml", ["train.steps=170", "train.warmup_steps=5"])
    resumed = Trainer(more, tmp_path / "run", resume=True)
    assert resumed.replay.size == 0
    resumed.train()
    resumed.env.close()
    # steps 160-163 refill the buffer; steps 164-169 update, once each
    resumed_head = resumed.agent.critic.net.heads[0].weight
    assert int(resumed.agent.critic_opt.state[resumed_head]["step"]) == updates_before + 6
    assert load_config(tmp_path / "run" / "config.yaml").train.steps == 170  # the override is recorded


def test_a_signal_ends_train_with_an_outcome_naming_it_and_the_checkpointed_step(tmp_path, monkeypatch):
    trainer = Trainer(load_config(ROOT / "configs/mt10_cpu.yaml", TINY), tmp_path / "run")
    update = trainer.agent.update

    def update_then_signal(batch):
        metrics = update(batch)
        if trainer.step == 154:  # the update of the sixth step after the warm-up
            os.kill(os.getpid(), signal.SIGINT)
        return metrics

    monkeypatch.setattr(trainer.agent, "update", update_then_signal)
    outcome = trainer.train()
    assert (outcome.stopped_by, outcome.step, outcome.result) == ("SIGINT", 155, None)
    assert load_latest(tmp_path / "run")[1]["step"] == 155


def test_the_loop_time_per_step_splits_the_wall_clock_into_its_parts_and_the_rest():
    earlier = {"env": 1.0, "act": 0.0, "store": 0.0, "update": 1.0, "evaluation": 0.0, "total": 2.0}
    now = {"env": 3.0, "act": 1.0, "store": 0.5, "update": 5.0, "evaluation": 1.0, "total": 12.0}
    split = milliseconds_per_step(now, earlier, elapsed=10.0, steps=1000)
    assert split == {"env": 2.0, "act": 1.0, "store": 0.5, "update": 4.0, "evaluation": 1.0, "other": 1.5}
    assert sum(split.values()) == 10.0  # the wall clock per step
    assert describe_loop_time(now) == ("loop time: 0.2 min, env 25%, act 8%, store 4%, update 42%, evaluation 8%, "
                                       "other 12%")


def test_a_shorter_run_retraces_the_start_of_a_longer_one(tmp_path):
    """`train.steps` only says where a run stops: a shorter run's evaluations are those of a longer run of the
    same seed up to its end, so a record read at an earlier step (`evaluate.py --at-step`) scores what a run of
    that length would (the preset's loop: the overlapped collector, BRC's critic, reward normalisation)."""
    tiny = [*TINY, "env.vector=workers", "train.overlap=true", "train.warmup_steps=100", "train.eval_every=100",
            "env.eval_episodes=1", "sac.normalise_rewards=true", "sac.critic_loss=categorical"]
    records = {}
    for steps in (200, 300):
        Trainer(load_config(ROOT / "configs/mt10_cpu.yaml", [*tiny, f"train.steps={steps}"]),
                tmp_path / str(steps)).train()
        records[steps] = [{k: v for k, v in record.items() if k != "wall_seconds"}
                          for record in read_evaluations(tmp_path / str(steps))]
    assert [r["step"] for r in records[300]] == [100, 200, 300]
    assert records[200] == records[300][:2]
