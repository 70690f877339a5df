"""Stopping cleanly on SIGINT and SIGTERM: a long job notes the signal and stops at its next safe point."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Self


class StopOnSignal:
    """While active, SIGINT and SIGTERM only set `signal` (the signal's name); the job checks it at a point
    where stopping loses nothing. On exit the previous handlers come back as they were; at `release()` they come
    back so that a second signal ends the job (Ctrl-C raises KeyboardInterrupt again, also where it was ignored)."""

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
        """Put the previous handlers back now (the job has seen the signal and is stopping), so that a second
        signal ends the job at once. A signal that was ignored before (as in a job a shell started in the
        background) gets its default action instead: otherwise the second one would do nothing."""
        self._restore(ignored_becomes_default=True)

    def _restore(self, ignored_becomes_default: bool) -> None:
        for sig, handler in self._previous.items():
            if ignored_becomes_default and handler == signal.SIG_IGN:
                handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            signal.signal(sig, handler)
        self._previous.clear()

    def __exit__(self, *exc: object) -> None:
        self._restore(ignored_becomes_default=False)
