"""Every method's update cost in CPU instructions, this tree against a git commit, counted by valgrind's callgrind.

    python -m mtrl.bench --only instructions --baseline REF

Wall-clock comparisons drift by more than a few percent between rounds on a shared machine; instruction counts
do not depend on whatever else runs. Each tree runs in its own interpreter under callgrind with collection off.
Each method's updates run inside one foreign-function call (ctypes calls libc's `qsort`, whose comparator runs
them); callgrind collects only inside libffi's `ffi_call` and writes a profile after each such call. The
profiles that went through `qsort` are ours, in method order (libraries make a few ctypes calls of their own
while they load, before any update runs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mtrl.errors import RunError
from mtrl.provenance import short_commit

# Run in a tree's own interpreter (older commits too, hence the fallbacks): builds every method's agent at one
# preset, warms it up, then runs `updates` updates of each method inside one ctypes call per method.
_UPDATES_IN_QSORT = """
import ctypes, json, sys, torch
try:
    from mtrl.apps.bench import PRESETS, _filled_replay
except ImportError:  # commits from before the applications moved into mtrl/apps
    from mtrl.bench import PRESETS, _filled_replay
from agents.mtsac import MTSAC
from mtrl.combiners import COMBINERS
from mtrl.config import load_config
from mtrl.envs import NUM_TASKS, STATE_DIM
torch.set_num_threads(1)
preset, updates = sys.argv[1], int(sys.argv[2])
device = torch.device("cpu")
agents = {}
for method in COMBINERS:
    cfg = load_config(PRESETS[preset], method=method)
    torch.manual_seed(0)
    agents[method] = MTSAC(cfg, STATE_DIM + NUM_TASKS, 4, NUM_TASKS, device)
batch = _filled_replay(device).sample(cfg.sac.batch_size // NUM_TASKS)
for agent in agents.values():
    agent.update(batch)  # the first update allocates the optimizers' state; later ones are alike
compare = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
pair = (ctypes.c_int * 2)(0, 1)
for agent in agents.values():
    done = []
    def run_updates(a, b, agent=agent, done=done):
        if not done:
            for _ in range(updates):
                agent.update(batch)
            done.append(True)
        return 0
    ctypes.CDLL(None).qsort(pair, 2, ctypes.sizeof(ctypes.c_int), compare(run_updates))
print(json.dumps(list(agents)))
"""


def count_instructions(tree: Path, preset: str, updates: int) -> dict[str, float]:
    """Instructions per update of every method at `preset`, running the code of `tree`."""
    if shutil.which("valgrind") is None:
        raise RunError("the instruction count needs valgrind on the PATH (e.g. `apt-get install valgrind`)")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", "--compress-strings=no", "--collect-atstart=no",
                   "--toggle-collect=ffi_call", "--dump-after=ffi_call", f"--callgrind-out-file={out}",
                   sys.executable, "-c", _UPDATES_IN_QSORT, preset, str(updates)]
        result = subprocess.run(command, cwd=tree, capture_output=True, text=True, check=True,
                                env={**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"})
        methods = json.loads(result.stdout.strip().splitlines()[-1])
        dumps = sorted(Path(scratch).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        ours = [text for text in (p.read_text() for p in dumps) if re.search(r"^c?fn=qsort(_r)?$", text, re.M)]
        if len(ours) != len(methods):
            raise RuntimeError(f"expected one profile through qsort per method ({len(methods)}), found {len(ours)}")
        totals = [int(re.search(r"^summary: (\d+)", text, re.M).group(1)) for text in ours]
    return {method: total / updates for method, total in zip(methods, totals)}


# Valgrind runs the matrix products' vector code some thousand times slower than the machine: the CPU preset
# only. Its update is the one where the per-operation overhead that a restructuring can change weighs most;
# the paper size adds larger matrix products, the same in every tree.
PRESET = "cpu preset (2x256, batch 640)"


def instructions_section(baseline: str, candidate: str | None, root: Path, updates: int) -> list[str]:
    """Every method's instructions per update on `candidate`'s code (None: this working tree) against
    `baseline`'s, at the CPU preset."""

    counts: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        trees = {"baseline": short_commit(baseline, root),
                 "candidate": short_commit(candidate, root) if candidate else None}
        paths = {}
        for role, commit in trees.items():
            if commit is None:
                paths[role] = root
                continue
            paths[role] = Path(scratch) / role
            subprocess.run(["git", "worktree", "add", "--detach", str(paths[role]), commit], cwd=root, check=True,
                           capture_output=True)
        try:  # the two trees side by side, one core each
            with ThreadPoolExecutor(max_workers=2) as pool:
                futures = {role: pool.submit(count_instructions, path, PRESET, updates) for role, path in paths.items()}
                counts = {role: future.result() for role, future in futures.items()}
        finally:
            for role, commit in trees.items():
                if commit is not None:
                    subprocess.run(["git", "worktree", "remove", "--force", str(paths[role])], cwd=root,
                                   check=False, capture_output=True)
    candidate_name = f"commit {trees['candidate']}" if trees["candidate"] else "this tree"
    lines = ["## Update cost in instructions against a baseline commit", "",
             f"Instructions per update (valgrind's callgrind; one thread) of every method at the {PRESET} on "
             f"{candidate_name} against commit {trees['baseline']}, {updates} update(s) per method after one "
             "warm-up update, on the same batch. Unlike wall-clock times, these counts do not depend on what else the "
             "machine runs.", "",
             f"| method | {trees['baseline']} | {candidate_name} | ratio |", "|---|---|---|---|"]
    for method, old in counts["baseline"].items():
        new = counts["candidate"][method]
        lines.append(f"| `{method}` | {old / 1e6:.1f} M | {new / 1e6:.1f} M | {new / old:.4f}x |")
    return lines + [""]
