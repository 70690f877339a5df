"""What every entry point decides the same way before a run: the device, and the number of evaluation
episodes per task."""

from __future__ import annotations

import torch

from mtrl.config import Config
from mtrl.envs import MT10
from mtrl.errors import RunError


def resolve_device(name: str) -> torch.device:
    """`auto` is the GPU where there is one, the CPU otherwise; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RunError(f"device '{name}' was asked for but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)


def eval_episodes(cfg: Config, env: MT10) -> int:
    """The config's episodes per task, or the protocol's own number where the config leaves it at 0."""
    return cfg.env.eval_episodes or env.protocol.eval_episodes
