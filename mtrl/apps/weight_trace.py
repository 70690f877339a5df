"""How NTKMTL's task weights behave on a trained agent's own replay, under each of its options for RL losses.

    python -m mtrl.weight_trace runs/<run>/checkpoints/step_000030000.pt --method ntkmtl_sr

On RL losses a task's NTK eigenvalue grows with the square of its TD error, so the paper's rule can give a
task without reward signal yet a weight in the hundreds that swings from one update to the next. This
command loads one checkpoint with its replay buffer and, for each setting of the method's options (`ema`,
`lambda_floor`), updates the agent `--updates` times from that same state on the same sequence of batches,
recording the critic's and the actor's task weights at every update. It then summarises them: how far apart
the tasks' weights are, the largest weight, and how much a task's weight moves between consecutive updates.
It measures what the options do to the weights, not what they do to learning (a comparison of runs does).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from mtrl.checkpoint import load_checkpoint, restore_into
from mtrl.cli import ArgumentParser
from mtrl.config import from_dict, with_overrides
from mtrl.envs import ACTION_DIM, NUM_TASKS, STATE_DIM, TASK_NAMES
from mtrl.errors import RunError
from mtrl.reward_scale import scaled_batch
from mtrl.sac import MTSAC
from mtrl.trainer import run_replay, run_reward_normaliser

NTK_METHODS = ("ntkmtl", "ntkmtl_sr")
# each setting: the method's options it sets (`methods.<method>.<option>=<value>`), the paper's rule first
SETTINGS = ["", "ema=0.99", "lambda_floor=0.01", "lambda_floor=0.1", "ema=0.99,lambda_floor=0.01",
            "ema=0.99,lambda_floor=0.1"]
ROLES = ("critic", "actor")
PAPER = "the paper's rule"  # the name of the setting "" in tables


def weight_traces(state: dict, method: str, setting: str, updates: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Per role, the task weights `[updates, K]` of `updates` consecutive updates that continue training the
    agent of the checkpoint `state` on its own replay, with `method` under `setting`."""
    if state.get("replay") is None:
        raise RunError("the checkpoint holds no replay buffer to draw batches from (it was saved with "
                       "train.checkpoint_replay=false)")
    # on this machine's CPU, eager; the method's options at their defaults (the paper's rule, whatever the
    # checkpoint's run used), then the setting's
    cfg = with_overrides(from_dict(state["config"]), ["device=cpu", "sac.compile=false", "sac.cuda_graph=false"],
                         method=method)
    cfg = dataclasses.replace(cfg, methods=dataclasses.replace(cfg.methods, **{method: type(cfg.method_options())()}))
    cfg = with_overrides(cfg, [f"methods.{method}.{option.strip()}" for option in setting.split(",") if option.strip()])
    device = torch.device("cpu")
    agent = MTSAC(cfg, STATE_DIM + NUM_TASKS, ACTION_DIM, NUM_TASKS, device)
    # the trained networks, optimizers and temperatures; the method's own combiners start fresh
    trained = {**state["agent"], "actor_combiner": agent.actor_combiner.state_dict(),
               "critic_combiner": agent.critic_combiner.state_dict()}
    restore_into(agent.load_state_dict, trained, Path("<checkpoint>"))
    replay = run_replay(cfg, device)
    restore_into(replay.load_state_dict, state["replay"], Path("<checkpoint>"))
    normaliser = run_reward_normaliser(cfg, device)
    if normaliser is not None:
        normaliser.load_state_dict(state["reward_normaliser"])
    batches = torch.Generator().manual_seed(seed)  # the same batches for every setting
    torch.manual_seed(seed)  # and the same policy samples
    traces: dict[str, list[np.ndarray]] = {role: [] for role in ROLES}
    for _ in range(updates):
        batch = replay.sample(cfg.sac.batch_size // NUM_TASKS, generator=batches)
        metrics = agent.update(scaled_batch(batch, normaliser, agent.log_alpha.detach().exp()))
        for role in ROLES:
            traces[role].append(metrics[f"combiner/{role}/weight"].numpy().copy())
    return {role: np.stack(weights) for role, weights in traces.items()}


def summary(weights: np.ndarray) -> dict[str, float]:
    """Of a `[updates, K]` weight trace: the median over updates of the largest weight over the smallest
    (`spread`), the largest weight seen (`largest`), and the median and 90th percentile over updates of the
    largest factor by which any task's weight changed since the previous update (`swing`, `swing_p90`)."""
    spread = weights.max(axis=1) / weights.min(axis=1)
    step_factor = np.exp(np.abs(np.diff(np.log(weights), axis=0))).max(axis=1)
    return {"spread": float(np.median(spread)), "largest": float(weights.max()),
            "swing": float(np.median(step_factor)), "swing_p90": float(np.percentile(step_factor, 90))}


def render(method: str, checkpoint: Path, step: int, updates: int,
           traces: dict[str, dict[str, np.ndarray]]) -> list[str]:
    """Markdown: per role, the summary of each setting, then each task's mean weight under each setting."""
    lines = [f"`{method}`'s task weights over {updates} updates from `{checkpoint}` (step {step}), the same "
             "batches for every setting:", ""]
    for role in ROLES:
        lines += [f"{role.capitalize()}:", "",
                  "| setting | spread (max / min weight), median | largest weight | swing between updates, "
                  "median | swing, 90th percentile |", "|---|---|---|---|---|"]
        for setting, by_role in traces.items():
            s = summary(by_role[role])
            lines.append(f"| {setting or PAPER} | {s['spread']:.1f} | {s['largest']:.1f} | "
                         f"{s['swing']:.2f}x | {s['swing_p90']:.2f}x |")
        lines += ["", "Mean weight per task:", "",
                  "| task | " + " | ".join(setting or PAPER for setting in traces) + " |",
                  "|---|" + "---|" * len(traces)]
        for task, name in enumerate(TASK_NAMES):
            means = [by_role[role][:, task].mean() for by_role in traces.values()]
            lines.append(f"| {name} | " + " | ".join(f"{m:.2f}" for m in means) + " |")
        lines.append("")
    return lines


def parse_args() -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="a checkpoint saved with its replay buffer")
    parser.add_argument("--method", choices=NTK_METHODS, default="ntkmtl_sr")
    parser.add_argument("--updates", type=int, default=200, help="updates per setting (default 200)")
    parser.add_argument("--setting", action="append", dest="settings", metavar="OPTION=VALUE[,OPTION=VALUE]",
                        help="options of the method to trace (repeatable; an empty string is the paper's rule); "
                             f"default: {', '.join(repr(s) for s in SETTINGS)}")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    if args.updates < 2:
        parser.error(f"--updates must be at least 2, got {args.updates}")
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    state = load_checkpoint(args.checkpoint)
    traces = {}
    for setting in args.settings or SETTINGS:
        traces[setting] = weight_traces(state, args.method, setting, args.updates)
        print(f"traced {setting or PAPER}", flush=True)
    print("\n".join(render(args.method, args.checkpoint, state["step"], args.updates, traces)))
