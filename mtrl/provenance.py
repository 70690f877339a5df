"""Which code produced a number: the git commit of this checkout, so that every benchmark section and every
logged evaluation names the code it measured."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def short_commit(ref: str, root: Path = CHECKOUT) -> str:
    """The short hash of git revision `ref` in the checkout at `root`."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "--verify", f"{ref}^{{commit}}"], cwd=root,
                              check=True, capture_output=True, text=True).stdout.strip()
    except OSError as error:
        raise ValueError(f"cannot run git to name commit '{ref}': {error}") from None
    except subprocess.CalledProcessError as error:
        why = (error.stderr.strip().splitlines() or ["unknown revision"])[0]
        raise ValueError(f"git knows no commit '{ref}' in {root} ({why}); give a commit hash, branch or "
                         "tag") from None


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The short commit of the checkout this package runs from, `+changes` appended where tracked files other
    than the documentation (Markdown files, `docs/`, which benchmarks and runs write into) differ from it.
    Outside a git checkout (an installed copy, a copy of the tree sent to a cluster node) the environment
    variable MTRL_CODE_VERSION names the code, if set; otherwise it is 'unknown'."""
    try:
        commit = short_commit("HEAD", CHECKOUT)
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                  ":(exclude)*.md", ":(exclude)docs"],  # what the benchmarks and runs write
                                 cwd=CHECKOUT, check=True, capture_output=True, text=True).stdout.strip()
    except (ValueError, subprocess.CalledProcessError):
        return os.environ.get("MTRL_CODE_VERSION") or "unknown"
    return f"{commit}+changes" if changed else commit
