"""Which code produced a number: the git commit of this checkout, so that every benchmark section and every
logged evaluation names the code it measured."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The short commit of the checkout this package runs from, `+changes` appended where tracked files other
    than the documentation (Markdown files, `docs/`, which benchmarks and runs write into) differ from it.
    Outside a git checkout (an installed copy, a copy of the tree sent to a cluster node) the environment
    variable MTRL_CODE_VERSION names the code, if set; otherwise it is 'unknown'."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=CHECKOUT, check=True,
                                capture_output=True, text=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                  ":(exclude)*.md", ":(exclude)docs"],  # what the benchmarks and runs write
                                 cwd=CHECKOUT, check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("MTRL_CODE_VERSION", "unknown")
    return f"{commit}+changes" if changed else commit
