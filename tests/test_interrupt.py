"""Interrupted runs: SIGTERM stops cleanly with a checkpoint, SIGKILL leaves the newest complete checkpoint
intact, and --resume carries either to completion; a signal while the run starts stops it before its first step,
and a second one ends it at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mtrl.checkpoint import list_checkpoints, load_latest
from tests.test_train_smoke import ROOT, TINY

# the checkpoint and resume logic is the loop's own; the collector's workers and the overlapped loop are
# signalled in the process-group test below
SEQUENTIAL = ["env.vector=sync", "train.overlap=false"]


def test_sigterm_writes_a_checkpoint_and_resume_finishes_the_run(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [sys.executable, "train.py", "--config", "configs/mt10_cpu.yaml", "--run-dir", str(run_dir), *TINY,
            "train.steps=1000000", "train.checkpoint_every=100000", "train.eval_every=100000", *SEQUENTIAL]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run_dir / "tensorboard").exists() and time.time() < deadline:  # the loop starts right after
        time.sleep(0.2)
    time.sleep(3)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert f"python train.py --resume {run_dir}" in stderr
    (checkpoint,) = (run_dir / "checkpoints").iterdir()
    stopped_at = torch.load(checkpoint, weights_only=False)["step"]
    assert stopped_at > 0 and checkpoint.name == f"step_{stopped_at:09d}.pt"

    finish = stopped_at + 60
    resumed = subprocess.run([sys.executable, "train.py", "--resume", str(run_dir), f"train.steps={finish}"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"from {checkpoint.name} (step {stopped_at})" in resumed.stdout
    assert (run_dir / "checkpoints" / f"step_{finish:09d}.pt").is_file()

    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    misfit = subprocess.run([sys.executable, "train.py", "--resume", str(run_dir), "net.hidden_dim=8"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert misfit.returncode != 0 and "Traceback" not in misfit.stderr
    assert "does not fit this configuration" in misfit.stderr.strip().splitlines()[-1]
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_sigkill_leaves_an_intact_checkpoint_to_resume_from(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [sys.executable, "train.py", "--config", "configs/mt10_cpu.yaml", "--run-dir", str(run_dir), *TINY,
            "train.steps=1000000", "train.checkpoint_every=40", "train.eval_every=100000", *SEQUENTIAL]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list_checkpoints(run_dir)) < 3 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # let it log past the newest checkpoint, so the resumed run must replace those points
    process.kill()  # SIGKILL: no handler runs, whatever was being written stays half-written
    process.wait(timeout=60)
    path, state = load_latest(run_dir)
    stopped_at = state["step"]
    assert stopped_at >= 120 and state["replay"]["size"] == min(stopped_at, 500)

    finish = stopped_at + 60
    resumed = subprocess.run([sys.executable, "train.py", "--resume", str(run_dir), f"train.steps={finish}",
                              "train.checkpoint_every=100000"], cwd=ROOT, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert list_checkpoints(run_dir)[-1].name == f"step_{finish:09d}.pt"

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    steps = [e.step for e in events.Scalars("loss/critic_mean")]
    assert steps == sorted(set(steps)) and steps[-1] == finish - finish % 50  # no duplicated or overlapping points


@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_whole_process_group_stops_a_run_with_collector_workers(tmp_path: Path, sig, overlap):
    """Ctrl-C in a terminal (or a scheduler's SIGTERM) reaches the collector's workers as well as train.py: the
    run still stops at its last finished step with a checkpoint, and no worker is left behind; the same with
    the update overlapping the workers' step."""
    run_dir = tmp_path / "run"
    args = [sys.executable, "train.py", "--config", "configs/mt10_cpu.yaml", "--run-dir", str(run_dir), *TINY,
            "train.steps=1000000", "train.checkpoint_every=100000", "train.eval_every=100000",
            "env.vector=workers", f"train.overlap={str(overlap).lower()}"]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.time() + 120
    while not (run_dir / "tensorboard").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3)
    os.killpg(process.pid, sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + sig, stderr[-2000:]
    (checkpoint,) = (run_dir / "checkpoints").iterdir()
    state = torch.load(checkpoint, weights_only=False)
    assert state["step"] > 0 and state["replay"]["size"] == min(state["step"], 500)
    assert_no_process_left(process.pid)


def assert_no_process_left(group: int) -> None:
    """Nothing of the process group is left: helpers (e.g. multiprocessing's resource tracker) exit within
    seconds once train.py has."""
    deadline = time.time() + 10
    while time.time() < deadline:
        leftovers = subprocess.run(["ps", "-o", "pid=,args=", "-g", str(group)], capture_output=True,
                                   text=True).stdout.strip()
        if not leftovers:
            return
        time.sleep(0.5)
    raise AssertionError(f"left behind: {leftovers}")


@pytest.mark.parametrize("sigint", ["handled", "ignored"])
def test_a_signal_while_the_workers_start_stops_the_run_before_its_first_step(tmp_path: Path, sigint):
    """Ctrl-C to the process group while the collector's workers are still importing: none of them dies of it,
    and train.py stops before its first step with a checkpoint to resume from. The same where the shell left
    SIGINT ignored (a job started with `&`): a handler installed only when the loop begins would miss it."""
    run_dir = tmp_path / "run"
    process = start_until_a_worker_imports(run_dir, sigint_ignored=sigint == "ignored")
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, stderr[-2000:]
    assert "SIGINT: stopped after step 0" in stderr and "Traceback" not in stderr
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_000000000.pt"]

    resumed = subprocess.run([sys.executable, "train.py", "--resume", str(run_dir)], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert list_checkpoints(run_dir)[-1].name == "step_000000200.pt"


@pytest.mark.parametrize("sigint", ["handled", "ignored"])
def test_a_second_signal_while_the_run_starts_ends_it_at_once(tmp_path: Path, sigint):
    """Ctrl-C twice: the second one does not wait for the run's environments to be built. train.py ends at once
    with one line, before its first step, and leaves no worker behind, also where the shell ignored SIGINT."""
    run_dir = tmp_path / "run"
    process = start_until_a_worker_imports(run_dir, sigint_ignored=sigint == "ignored")
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.5)  # two signals at once would count as one
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr.splitlines()[-1] == "interrupted", stderr[-2000:]
    assert not (run_dir / "tensorboard").exists() and list_checkpoints(run_dir) == []  # it ended while starting
    assert_no_process_left(process.pid)


def start_until_a_worker_imports(run_dir: Path, sigint_ignored: bool) -> subprocess.Popen:
    """train.py on the project's collector, in a process group of its own, returned once a worker has started
    and is still importing: the run is still starting. With `sigint_ignored`, SIGINT is ignored and inherited so,
    as a non-interactive shell starts `cmd &`."""
    args = [sys.executable, "train.py", "--config", "configs/mt10_cpu.yaml", "--run-dir", str(run_dir), *TINY,
            "train.checkpoint_every=100000", "train.eval_every=100000", "env.vector=workers"]
    if sigint_ignored:
        args = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *args]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.time() + 120
    group = ""
    while "spawn_main" not in group and time.time() < deadline:
        group = subprocess.run(["ps", "-ww", "-o", "args=", "-g", str(process.pid)], capture_output=True,
                               text=True).stdout  # -ww: whole command lines, whatever COLUMNS says
        time.sleep(0.05)
    assert "spawn_main" in group, "no collector worker started in time"
    assert not (run_dir / "tensorboard").exists()  # built once the environments are: the run is still starting
    return process
