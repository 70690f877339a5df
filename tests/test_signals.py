"""StopOnSignal: the first SIGINT or SIGTERM is noted, and after `release()` a second one ends the job."""

import os
import signal

import pytest

from mtrl.signals import StopOnSignal


@pytest.fixture
def ignored_sigint():
    """SIGINT ignored, as in a job that a non-interactive shell started in the background (`cmd &`)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGINT, previous)


def test_the_first_signal_is_noted_even_where_it_was_ignored(ignored_sigint):
    with StopOnSignal() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signal == "SIGINT"


def test_after_release_a_second_sigint_interrupts_even_where_it_was_ignored(ignored_sigint):
    with StopOnSignal() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        stop.release()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def test_leaving_without_a_signal_restores_the_handlers_as_they_were(ignored_sigint):
    sigterm = signal.getsignal(signal.SIGTERM)
    with StopOnSignal():
        pass
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) == sigterm
