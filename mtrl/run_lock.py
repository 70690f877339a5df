"""One training process at a time per run directory. Two processes training into one directory (a sweep started
again while a worker of the first one lives on, `train.py --resume` typed twice) would interleave their checkpoints
and evaluation records; the second one stops instead, with a one-line error, before it writes anything."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from mtrl.errors import RunError

LOCK_FILE = "run.lock"
_NO_LOCKS_HERE = (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP)  # a file system without flock (some cluster mounts)


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir` (created if missing) for the body of the `with`, or raise `RunError` at once if another
    holder has it. Not reentrant: a second `run_dir_lock` on the same directory is refused, also in one process.
    The lock is the operating system's, on `run_dir/run.lock`: it goes with the process however the process ends,
    so a killed run leaves none behind. A directory created here and left holding only the lock (a run that
    could not start) is removed again, so that the same command can be run once its input is mended."""
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    # native locks only: the soft fallback's marker file would outlive a killed process and block the run
    lock: FileLock | None = FileLock(run_dir / LOCK_FILE, timeout=0, preserve_lock_file=True)
    try:
        lock.acquire()
    except Timeout:
        raise RunError(f"another process is training into '{run_dir}' (it holds {run_dir / LOCK_FILE}); let it "
                       "finish or stop it, then run this again") from None
    except OSError as error:
        if error.errno not in _NO_LOCKS_HERE:
            raise RunError(f"cannot lock '{run_dir / LOCK_FILE}': {error.strerror}") from None
        print(f"note: the file system of '{run_dir}' offers no file locks; nothing stops a second process from "
              "training into it")
        lock = None
    try:
        yield
    finally:
        if created and not holds_run_data(run_dir):
            shutil.rmtree(run_dir)  # still held: no other process can have started in it meanwhile
        if lock is not None:
            lock.release()


def holds_run_data(run_dir: Path) -> bool:
    """Whether `run_dir` exists and holds anything but its lock (a lone lock is what a run that could not start
    may leave where the directory already existed)."""
    return run_dir.exists() and (not run_dir.is_dir() or any(entry.name != LOCK_FILE for entry in run_dir.iterdir()))


def empty_run_dir(run_dir: Path) -> None:
    """Delete everything in `run_dir` but its lock, which the caller holds."""
    for entry in run_dir.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
