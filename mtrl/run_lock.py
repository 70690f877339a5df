"""One training process at a time per run directory. Two processes training into one directory (a sweep started
again while a worker of the first one lives on, `train.py --resume` typed twice) would interleave their checkpoints
and evaluation records; the second one stops instead, with a one-line error, before it writes anything."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from mtrl.errors import RunError

LOCK_FILE = "run.lock"


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir` (created if missing) for the body of the `with`. The lock is the operating system's, on
    `run_dir/run.lock`: it goes with the process however the process ends, so a killed run leaves none behind."""
    run_dir.mkdir(parents=True, exist_ok=True)
    # the file stays after release: unlinking it would let a third process lock a new file beside a held one
    lock = FileLock(run_dir / LOCK_FILE, timeout=0, preserve_lock_file=True)
    try:
        lock.acquire()
    except Timeout:
        raise RunError(f"another process is training into '{run_dir}' (it holds {run_dir / LOCK_FILE}); let it "
                       "finish or stop it, then run this again") from None
    try:
        yield
    finally:
        lock.release()


def empty_run_dir(run_dir: Path) -> None:
    """Delete everything in `run_dir` but its lock, which the caller holds."""
    for entry in run_dir.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
