"""A supervised demonstration of task imbalance, small enough to run in seconds on a CPU.

Two regression tasks share a small MLP encoder, each with its own linear head, on the same inputs
x in [-pi, pi]. The "fast" task fits a large target (`sin x`), the "slow" task a small one of another shape
(`0.01 cos 2x`), so its loss, gradients and NTK eigenvalue are orders of magnitude smaller. Under equal
weighting the fast task's gradient owns the shared encoder and the slow task stalls; NTKMTL and NTKMTL-SR
weigh the tasks so that both converge. Losses are reported relative to each target's variance (1.0 is the
error of predicting zero).

    python -m mtrl.imbalance --out docs/imbalance.png     # per-task loss curves of each method, as a PNG
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from mtrl.cli import ArgumentParser, positive_int
from mtrl.combiners import make_combiner
from mtrl.mtl_backward import multitask_backward
from mtrl.nets import MultiTaskMLP

TASKS = ("fast: sin x", "slow: 0.01 cos 2x")
METHODS = ("mtsac", "ntkmtl", "ntkmtl_sr")


def targets(x: torch.Tensor) -> torch.Tensor:
    """`x [b, 1]` -> `[2, b, 1]`: both tasks' targets at the same inputs."""
    return torch.stack([torch.sin(x), 0.01 * torch.cos(2 * x)])


def run(method: str, steps: int = 1000, seed: int = 0, hidden_dim: int = 8, lr: float = 3e-3) -> torch.Tensor:
    """Full-batch Adam on 64 grid points with `method`; returns each task's relative loss per step,
    `[steps, 2]`."""
    torch.manual_seed(seed)
    net = MultiTaskMLP(1, 1, hidden_dim=hidden_dim, hidden_layers=2, head_layers=1, num_tasks=2)
    combiner = make_combiner(method, num_tasks=2)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    x = torch.linspace(-math.pi, math.pi, 64).unsqueeze(-1)
    y = targets(x)
    inputs = x.expand(2, -1, -1).unsqueeze(0)  # [1 member, 2 tasks, b, 1]
    variance = y.pow(2).mean(dim=(1, 2))
    history = torch.empty(steps, 2)
    for step in range(steps):
        outputs, record = net.forward_recorded(inputs)
        losses = (outputs[0] - y).pow(2).mean(dim=(1, 2))
        multitask_backward(losses, net, record, combiner)
        optimizer.step()
        history[step] = losses.detach() / variance
    return history


def final_loss(history: torch.Tensor) -> torch.Tensor:
    """Each task's relative loss averaged over the last tenth of training: `[2]`."""
    return history[-max(1, len(history) // 10):].mean(dim=0)


def plot(curves: dict[str, torch.Tensor], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
    for ax, (task_index, task) in zip(axes, enumerate(TASKS)):
        for method, history in curves.items():
            ax.semilogy(history[:, task_index], label=method)
        ax.set_title(f"task {task}")
        ax.set_xlabel("update")
        ax.set_ylabel("loss / target variance")
        ax.grid(alpha=0.3)
    axes[1].legend()
    fig.suptitle("Task imbalance on a shared encoder: the slow task's NTK eigenvalue is orders of magnitude smaller")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    torch.set_num_threads(1)  # the networks are tiny: more threads only add overhead
    parser = ArgumentParser(prog="python -m mtrl.imbalance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/imbalance.png"))
    parser.add_argument("--steps", type=positive_int, default=1000)
    parser.add_argument("--seeds", type=positive_int, default=6, help="seeds to summarise")
    parser.add_argument("--plot-seed", type=int, default=2, help="the seed whose curves are drawn")
    args = parser.parse_args()
    if not 0 <= args.plot_seed < args.seeds:
        parser.error(f"--plot-seed must be one of the seeds summarised, 0 to {args.seeds - 1}, got {args.plot_seed}")
    print(f"final relative loss of the slow task (mean of the last {args.steps // 10} updates)")
    print("seed  " + "  ".join(f"{m:>10s}" for m in METHODS) + "   mtsac/ntkmtl  mtsac/ntkmtl_sr")
    for seed in range(args.seeds):
        curves = {method: run(method, args.steps, seed) for method in METHODS}
        slow = {m: final_loss(h)[1].item() for m, h in curves.items()}
        print(f"{seed:4d}  " + "  ".join(f"{slow[m]:10.2e}" for m in METHODS)
              + f"   {slow['mtsac'] / slow['ntkmtl']:12.1f}  {slow['mtsac'] / slow['ntkmtl_sr']:15.1f}")
        if seed == args.plot_seed:
            plot(curves, args.out)
    print(f"wrote {args.out}")
