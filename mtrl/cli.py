"""Command-line plumbing shared by train.py and evaluate.py: one-line errors and non-zero exits."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from mtrl.checkpoint import CheckpointError
from mtrl.errors import ConfigError, RunError
from mtrl.runtime import known_device


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag gets one line (what was wrong, and where `--help` lists what is accepted), and
    flags count only when written in full: an abbreviation would slip past a look at `sys.argv` made before
    parsing (evaluate.py's `--video`, which must set up offscreen rendering before MuJoCo is imported)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    """An argparse type for counts and sizes: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer of at least 1, got {text!r}")
    return value


def device_arg(text: str) -> str:
    """An argparse type for `--device`: auto, cpu, cuda or cuda:N, as the config's `device` accepts."""
    if not known_device(text):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


USER_ERRORS = (ConfigError, RunError, CheckpointError, FileNotFoundError, FileExistsError)


def run_main(main: Callable[[], None]) -> None:
    """Run `main`, turning errors caused by the user's input into one line on stderr and exit code 2."""
    try:
        main()
    except USER_ERRORS as error:
        fail(str(error).splitlines()[0] if str(error) else type(error).__name__)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
