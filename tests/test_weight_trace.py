"""The weight trace: NTKMTL's options traced from one agent state on the same batches, and its summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mtrl.apps.weight_trace import summary, weight_traces
from mtrl.config import load_config, to_dict
from mtrl.envs import ACTION_DIM, NUM_TASKS, STATE_DIM
from mtrl.errors import RunError
from mtrl.sac import MTSAC
from mtrl.trainer import run_replay

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def imbalanced_state() -> dict:
    """A checkpoint's state whose replay gives task 0 rewards 100 times larger than the others' and task 1
    none at all (and a temperature too small for the entropy bonus to matter), so that the paper's rule
    spreads the tasks' weights far apart. The rewards stay raw (no per-task normalisation), since their
    imbalance is the point."""
    torch.manual_seed(0)
    cfg = load_config(ROOT / "configs/mt10_cpu.yaml", ["net.hidden_dim=16", "sac.batch_size=80",
                                                       "train.buffer_capacity=3000", "sac.init_temperature=0.001",
                                                       "sac.normalise_rewards=false", "device=cpu"])
    agent = MTSAC(cfg, STATE_DIM + NUM_TASKS, ACTION_DIM, NUM_TASKS, torch.device("cpu"))
    replay = run_replay(cfg, torch.device("cpu"))
    rng = np.random.default_rng(0)
    scale = np.ones(NUM_TASKS)
    scale[0], scale[1] = 100.0, 0.0
    obs = rng.normal(size=(NUM_TASKS, STATE_DIM)).astype(np.float32)
    for _ in range(200):
        next_obs = rng.normal(size=(NUM_TASKS, STATE_DIM)).astype(np.float32)
        replay.add(obs, rng.uniform(-1, 1, (NUM_TASKS, ACTION_DIM)), scale * rng.uniform(0, 1, NUM_TASKS),
                   next_obs, np.zeros(NUM_TASKS, bool), np.zeros(NUM_TASKS, bool))
        obs = next_obs
    return {"config": to_dict(cfg), "agent": agent.state_dict(), "replay": replay.state_dict(),
            "reward_normaliser": None, "step": 200}


def test_options_bound_and_smooth_the_weights(imbalanced_state):
    traces = {setting: weight_traces(imbalanced_state, "ntkmtl_sr", setting, updates=12)["critic"]
              for setting in ("", "ema=0.99", "lambda_floor=0.1")}
    # the same agent state and the same first batch: the running average starts at the first eigenvalues
    np.testing.assert_allclose(traces[""][0], traces["ema=0.99"][0], rtol=1e-5)
    paper, smoothed, floored = (summary(traces[s]) for s in ("", "ema=0.99", "lambda_floor=0.1"))
    assert paper["spread"] > 10
    # every lambda at least 0.1 of the mean raises the mean by at most 10%: weights at most sqrt(11)
    assert floored["largest"] <= 11 ** 0.5 + 1e-4 < paper["largest"]
    assert smoothed["swing"] < paper["swing"]


def test_summary_of_a_known_trace():
    weights = np.array([[1.0, 2.0], [2.0, 2.0], [1.0, 2.0], [1.0, 8.0]])
    s = summary(weights)
    assert s["spread"] == 2.0 and s["largest"] == 8.0
    assert s["swing"] == 2.0  # the steps' largest factors are 2, 2 and 4
    assert s["swing_p90"] == pytest.approx(3.6)


def test_a_checkpoint_without_replay_is_refused(imbalanced_state):
    with pytest.raises(RunError, match="no replay buffer"):
        weight_traces({**imbalanced_state, "replay": None}, "ntkmtl_sr", "", updates=2)


def test_the_report_names_each_setting_and_task():
    from mtrl.apps.weight_trace import render
    from mtrl.envs import TASK_NAMES

    trace = {"critic": np.ones((3, NUM_TASKS)), "actor": np.full((3, NUM_TASKS), 2.0)}
    text = "\n".join(render("ntkmtl_sr", Path("step_000000010.pt"), 10, 3, {"": trace, "ema=0.99": trace}))
    assert "| the paper's rule | 1.0 | 1.0 | 1.00x | 1.00x |" in text and "| ema=0.99 | 1.0 | 1.0 |" in text
    assert f"| {TASK_NAMES[3]} | 2.00 | 2.00 |" in text  # the actor's mean weights
