"""What every entry point decides the same way before a run: the device."""

from __future__ import annotations

import re

import torch

from mtrl.errors import RunError


def known_device(name: str) -> bool:
    """Whether `name` is a device this project runs on: auto, cpu, cuda or cuda:N."""
    return re.fullmatch(r"auto|cpu|cuda(:\d+)?", name) is not None


def resolve_device(name: str) -> torch.device:
    """`auto` is the GPU where there is one, the CPU otherwise; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RunError(f"device '{name}' was asked for but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)

