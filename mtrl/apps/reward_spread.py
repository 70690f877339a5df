"""How far apart the MT10 tasks' rewards are in size under random actions, for each of Meta-World's reward
functions.

    python -m mtrl.reward_spread                          # mt10-fixed, benchmark seed 1, 1,500 steps per task
    python -m mtrl.reward_spread --protocol mt10 --steps 5000

NTKMTL's premise is that tasks converge at different speeds; in MT10 one visible source of that is how
different the tasks' rewards are in size. For the `v1` rewards (those of the published MT10 table) and the
`v2` ones (Meta-World's default), this steps the ten tasks with the same uniformly random actions, so both
versions score the very same trajectories, and prints each task's mean |reward| per step and the spread: the
largest task's mean over the smallest's. The default of 1,500 steps is the CPU presets' random warm-up.
"""

from __future__ import annotations

import numpy as np

from mtrl.cli import ArgumentParser, positive_int
from mtrl.envs import ACTION_DIM, MT10, PROTOCOLS, TASK_NAMES
from mtrl.evaluation import RandomPolicy

REWARD_VERSIONS = ("v1", "v2")


def mean_abs_rewards(protocol: str, reward_version: str, steps: int, seed: int) -> np.ndarray:
    """Each task's mean |reward| per step over `steps` steps of uniformly random actions `[K]`; the actions
    depend on `seed` alone, so every reward version sees the same ones."""
    env = MT10(protocol, seed, reward_version)
    policy = RandomPolicy(ACTION_DIM, seed)
    total = np.zeros(env.num_tasks)
    try:
        obs = env.reset()
        for _ in range(steps):
            step = env.step(policy.act(obs))
            total += np.abs(step.reward)
            obs = step.obs
    finally:
        env.close()
    return total / steps


def spread(scales: np.ndarray) -> float:
    """The largest scale over the smallest (infinite when a task's rewards are all zero)."""
    smallest = scales.min()
    return float(scales.max() / smallest) if smallest > 0 else float("inf")


def report(scales: dict[str, np.ndarray]) -> str:
    """A Markdown table: one row per task, one column per reward version, the spread in the last row."""
    versions = list(scales)
    lines = ["| task | " + " | ".join(f"mean abs reward, {v}" for v in versions) + " |",
             "|---|" + "---|" * len(versions)]
    for i, task in enumerate(TASK_NAMES):
        lines.append(f"| {task} | " + " | ".join(f"{scales[v][i]:.4f}" for v in versions) + " |")
    lines.append("| **spread (largest / smallest)** | " + " | ".join(f"**{spread(scales[v]):.0f}x**" for v in versions)
                 + " |")
    return "\n".join(lines)


def main() -> None:
    parser = ArgumentParser(prog="python -m mtrl.reward_spread", description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="mt10-fixed")
    parser.add_argument("--steps", type=positive_int, default=1500, help="random steps per task")
    parser.add_argument("--seed", type=int, default=1, help="the benchmark's seed (goals) and the actions' seed")
    args = parser.parse_args()
    scales = {v: mean_abs_rewards(args.protocol, v, args.steps, args.seed) for v in REWARD_VERSIONS}
    print(f"protocol {args.protocol}, seed {args.seed}, {args.steps:,} steps of uniformly random actions per task\n")
    print(report(scales))
