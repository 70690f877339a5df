"""Checkpoints written atomically and read defensively.

A checkpoint is written to a temporary file, flushed to disk and renamed into place, so a crash at any moment
leaves either the old set of checkpoints or the new one, never half a file. The newest few are kept. Reading
walks from the newest back and skips files that do not load, saying so.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1
_NAME = re.compile(r"^step_(\d+)\.pt$")


class CheckpointError(RuntimeError):
    """No usable checkpoint; the message is one line meant for the user."""


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: Path, step: int) -> Path:
    """Where a run's checkpoint of `step` is written: names that sort by step."""
    return checkpoint_dir(run_dir) / f"step_{step:09d}.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoint files of a run, oldest first."""
    directory = checkpoint_dir(run_dir)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write `state` as the checkpoint of `step` atomically, then delete all but the newest `keep`."""
    directory = checkpoint_dir(run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(run_dir, step)
    tmp = path.with_suffix(".pt.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format_version": FORMAT_VERSION, "step": step, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk, or a second Ctrl-C: no half-written file left beside the checkpoints
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink()
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint file, raising CheckpointError with a one-line reason if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # truncated or corrupted: torch raises several kinds
        raise CheckpointError(f"checkpoint '{path}' is unreadable ({type(error).__name__})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint '{path}' is not a checkpoint of format {FORMAT_VERSION}")
    return state


def load_latest(run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint of a run that loads; damaged newer ones are reported and skipped."""
    candidates = list_checkpoints(run_dir)
    if not candidates:
        raise CheckpointError(f"run directory '{run_dir}' has no checkpoints")
    for path in reversed(candidates):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as error:
            print(f"warning: {error}; trying the previous one", file=sys.stderr)
    raise CheckpointError(f"no readable checkpoint in '{checkpoint_dir(run_dir)}'")


def restore_into(loader: Callable[[dict], Any], state: dict, path: Path) -> None:
    """Call `loader(state)` (a `load_state_dict`), turning a shape or key mismatch into one clear line."""
    try:
        loader(state)
    except KeyError as error:
        raise CheckpointError(f"checkpoint '{path}' does not fit this configuration: missing key {error}") from None
    except (RuntimeError, ValueError) as error:
        # torch heads its list of mismatches with "Error(s) in loading state_dict for <module>:"; name the first
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = next((line for line in lines if not line.startswith("Error(s) in loading")), None)
        reason = reason or (lines[0] if lines else type(error).__name__)
        raise CheckpointError(f"checkpoint '{path}' does not fit this configuration: {reason}") from None
