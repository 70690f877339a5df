"""StopOnSignal: the first SIGINT or SIGTERM is noted, a second one ends the job, and leaving restores the handlers."""

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


def test_a_second_sigint_interrupts_even_where_it_was_ignored(ignored_sigint):
    with StopOnSignal() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert stop.signal == "SIGINT"


def test_a_sigterm_then_a_sigint_interrupts():
    with StopOnSignal() as stop, pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signal == "SIGTERM"
        os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("signalled", [False, True])
def test_leaving_restores_the_handlers_as_they_were(ignored_sigint, signalled):
    sigterm = signal.getsignal(signal.SIGTERM)
    with StopOnSignal():
        if signalled:
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) == sigterm
