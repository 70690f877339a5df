"""Stopping cleanly on SIGINT and SIGTERM: a long job notes the signal and stops at its next safe point."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Self


class StopOnSignal:
    """While active, the first SIGINT or SIGTERM only sets `signal` (the signal's name); the job checks it at a
    point where stopping loses nothing. A second signal ends the job at once, wherever it is (a user who presses
    Ctrl-C twice does not want to wait for an evaluation to finish). On exit the handlers come back as they were."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Self:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.signal(sig, self._handle)
            self._previous[sig] = signal.SIG_DFL if previous is None else previous  # None: set outside Python
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """Note the first signal and hand both back to their previous handlers for the second. Where a signal was
        ignored before (as in a job a shell started in the background), a second SIGINT raises KeyboardInterrupt
        and a second SIGTERM terminates: otherwise it would do nothing. Not nestable: an outer `StopOnSignal`
        would take the second signal as its first."""
        self.signal = signal.Signals(signum).name
        for sig, handler in self._previous.items():
            if handler == signal.SIG_IGN:
                handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            signal.signal(sig, handler)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
