"""Stopping cleanly on SIGINT and SIGTERM: a long job notes the signal and stops at its next safe point."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Self


class StopOnSignal:
    """While active, SIGINT and SIGTERM only set `signal` (the signal's name); the job checks it at a point
    where stopping loses nothing. On exit, or at `release()`, the previous handlers come back, so that a
    second signal acts as it did before (Ctrl-C raises KeyboardInterrupt again)."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signal.Signals(signum).name

    def __enter__(self) -> Self:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def release(self) -> None:
        """Put the previous handlers back now (the job has seen the signal and is stopping)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __exit__(self, *exc: object) -> None:
        self.release()
