"""Which code and machine produced a number: the git commit of this checkout and the processor it ran on, so
that every benchmark section and every logged evaluation names both. Two CPU generations can run different vector
kernels, so the same seed can take a different path on each, and their minutes do not compare."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path

import torch

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


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name, its family and model numbers where Linux reports them (a name such as "AMD EPYC"
    covers several generations), the widest vector instructions torch uses on it, and the logical cores."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:  # not Linux
        pass
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']} model {fields['model']})"
    return f"{name}, {torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} logical cores"


def machine(device: torch.device) -> str:
    """The machine a number was measured on: the GPU's name if `device` is one, and the CPU."""
    gpu = f"{torch.cuda.get_device_name(device)}; " if device.type == "cuda" else ""
    return gpu + cpu_name()
