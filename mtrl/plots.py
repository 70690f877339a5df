"""Figures: the learning curves of one run (from its evaluations.jsonl), and for a results table of many runs,
the interquartile mean of success per method with its confidence band (95% unless asked otherwise) and a
method x task heatmap.

    python -m mtrl.plots runs/<name>          # writes runs/<name>/curves.png
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mtrl.cli import ArgumentParser, run_main
from mtrl.results import evaluations_log, percent, read_evaluations, short_task_name

if TYPE_CHECKING:
    from mtrl.results import Row


def success_curves(run_dir: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Steps `[E]` and per-task success `{task: [E]}` of every periodic evaluation of a run."""
    records = read_evaluations(run_dir)
    if not records:
        raise FileNotFoundError(f"run '{run_dir}' has no evaluations yet (no {evaluations_log(run_dir).name})")
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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(run_dir: Path, out: Path) -> None:
    plt = _pyplot()
    steps, success = success_curves(run_dir)
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
    plt.close(fig)


def plot_method_curves(rows: list["Row"], out: Path, level: float = 0.95) -> None:
    """Success vs environment steps, the results table's statistics step by step: per row the interquartile
    mean over the runs of their mean success over the tasks, and its bootstrap interval at `level` as a band."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for row in rows:
        steps, middle, low, high = row.iqm_curve(level=level)
        (line,) = ax.plot(steps, middle, lw=2, label=f"{row.label} ({len(row.runs)} seeds)")
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("environment steps (one transition per task)")
    ax.set_ylabel("mean success over tasks, IQM over runs")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"MT10, protocol {rows[0].runs[0].protocol}: IQM over runs with {percent(level)} bootstrap band")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_heatmap(rows: list["Row"], out: Path) -> None:
    """Final success of every row (method) in every task, averaged over seeds."""
    plt = _pyplot()
    tasks = list(rows[0].runs[0].success)
    values = np.array([[row.task_success(t)[0] for t in tasks] for row in rows])
    fig, ax = plt.subplots(figsize=(0.8 * len(tasks) + 3, 0.45 * len(rows) + 2.6))
    image = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(tasks)), [short_task_name(t) for t in tasks], rotation=40, ha="right")
    ax.set_yticks(range(len(rows)), [f"{r.label} ({len(r.runs)})" for r in rows])
    for i, j in np.ndindex(values.shape):
        ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=8,
                color="black" if values[i, j] > 0.6 else "white")
    fig.colorbar(image, ax=ax, label="success")
    ax.set_title("final success per task, mean over seeds (number of seeds in brackets)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = ArgumentParser(description="Plot a run's evaluation success over training.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, help="default: <run_dir>/curves.png")
    args = parser.parse_args()
    out = args.out or args.run_dir / "curves.png"
    plot_curves(args.run_dir, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    run_main(main)
