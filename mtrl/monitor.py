"""TensorBoard logging with one naming rule for per-task quantities.

A per-task metric `X` (a `[K]` tensor or array) is written as `X/<task>` for every task and `X_mean` for
their mean; a scalar metric is written as `X`. See the README for the full list of names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from mtrl.envs import TASK_NAMES


class Monitor:
    """TensorBoard scalars of a run: `[K]` tensors are logged per task and as their mean."""

    def __init__(self, run_dir: Path, purge_step: int | None = None):
        # purge_step drops events at or after it, so a resumed run's curves continue without overlap
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=purge_step)

    def log(self, step: int, metrics: dict[str, object]) -> None:
        for name, value in metrics.items():
            values = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            if values.ndim == 0:
                self.writer.add_scalar(name, float(values), step)
            else:
                for task, v in zip(TASK_NAMES, values):
                    self.writer.add_scalar(f"{name}/{task}", float(v), step)
                self.writer.add_scalar(f"{name}_mean", float(values.mean()), step)

    def close(self) -> None:
        self.writer.close()
