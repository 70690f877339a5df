"""Learning curves of one run from its evaluations.jsonl.

    python -m mtrl.plots runs/<name>          # writes runs/<name>/curves.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def read_evaluations(run_dir: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Steps `[E]` and per-task success `{task: [E]}` of every periodic evaluation of a run."""
    records = [json.loads(line) for line in (run_dir / "evaluations.jsonl").read_text().splitlines() if line]
    steps = np.array([r["step"] for r in records])
    tasks = list(records[0]["success"])
    return steps, {t: np.array([r["success"][t] for r in records]) for t in tasks}


def _title(run_dir: Path) -> str:
    config = run_dir / "config.yaml"
    if not config.is_file():
        return run_dir.name
    import yaml

    cfg = yaml.safe_load(config.read_text())
    return f"{cfg['method']}, seed {cfg['seed']}, protocol {cfg['env']['protocol']}"


def plot_curves(run_dir: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, success = read_evaluations(run_dir)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for task, values in success.items():
        ax.plot(steps, values, alpha=0.6, lw=1, label=task)
    ax.plot(steps, np.mean(list(success.values()), axis=0), color="black", lw=2.5, label="mean")
    ax.set_xlabel("environment steps (one transition per task)")
    ax.set_ylabel("evaluation success rate")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title(_title(run_dir))
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description="Plot a run's evaluation success over training.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, help="default: <run_dir>/curves.png")
    args = parser.parse_args()
    out = args.out or args.run_dir / "curves.png"
    plot_curves(args.run_dir, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
