"""One training process per run directory: a second holder is refused with one clear line while the first one
lives, and a holder that dies, however it dies, leaves the directory free."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

from mtrl.apps.sweep import load_sweep, train_run
from mtrl.errors import RunError
from mtrl.run_lock import LOCK_FILE, empty_run_dir, holds_run_data, run_dir_lock

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["device=cpu", "train.steps=20", "train.warmup_steps=10", "train.eval_every=20", "net.hidden_dim=16",
         "env.vector=sync", "train.overlap=false"]  # seconds, should the lock ever let the run train


def test_a_held_run_directory_refuses_a_second_holder_until_released(tmp_path):
    run_dir = tmp_path / "run"
    with run_dir_lock(run_dir), pytest.raises(RunError, match=r"another process is training into '.*run'"), \
            run_dir_lock(run_dir):
        pass
    with run_dir_lock(run_dir):  # free again once the first holder is done
        assert (run_dir / LOCK_FILE).is_file()


def test_a_killed_holder_leaves_the_directory_free(tmp_path):
    run_dir = tmp_path / "run"
    hold = ("import time; from pathlib import Path; from mtrl.run_lock import run_dir_lock\n"
            f"with run_dir_lock(Path({str(run_dir)!r})):\n"
            "    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", hold], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunError), run_dir_lock(run_dir):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)  # no chance to release it itself
        holder.wait(timeout=30)
    with run_dir_lock(run_dir):
        pass


def test_a_run_that_cannot_start_leaves_no_directory_it_created(tmp_path):
    new, existing = tmp_path / "new", tmp_path / "existing"
    existing.mkdir()
    for run_dir in (new, existing):
        with pytest.raises(ValueError), run_dir_lock(run_dir):
            raise ValueError("a bad config")
    assert not new.exists()  # the same command can run again once its input is mended
    assert existing.is_dir() and not holds_run_data(existing)  # a lone lock counts as no run data
    with run_dir_lock(new):
        (new / "config.yaml").write_text("method: mtsac\n")
    assert holds_run_data(new)


def test_emptying_a_run_directory_keeps_its_lock(tmp_path):
    run_dir = tmp_path / "run"
    with run_dir_lock(run_dir):
        (run_dir / "checkpoints").mkdir()
        (run_dir / "checkpoints" / "step_000100.pt").write_bytes(b"x")
        (run_dir / "config.yaml").write_text("method: mtsac\n")
        empty_run_dir(run_dir)
        assert [p.name for p in run_dir.iterdir()] == [LOCK_FILE]
        with pytest.raises(RunError), run_dir_lock(run_dir):  # still held: no second process can start here
            pass


def test_a_sweep_run_whose_directory_is_in_use_fails_and_leaves_it_untouched(tmp_path):
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump({"config": str(ROOT / "configs/mt10_cpu.yaml"), "methods": ["mtsac"],
                                          "seeds": [1], "overrides": SHORT, "out": str(tmp_path / "out")}))
    sweep = load_sweep(sweep_file)
    spec = sweep.runs()[0]
    run_dir = sweep.out / spec.name
    with run_dir_lock(run_dir):  # an earlier sweep's worker, still training a run without a checkpoint yet
        (run_dir / "train.log").write_text("step 40 of a run in progress\n")
        with pytest.raises(RunError, match="another process is training into"):
            train_run(sweep, spec)
        assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE, "train.log"]  # a 'new' run, not emptied
        assert (run_dir / "train.log").read_text() == "step 40 of a run in progress\n"


@pytest.mark.parametrize("code,outcome", [(errno.ENOSYS, "trains"), (errno.EACCES, "cannot lock")])
def test_a_file_system_without_locks_trains_with_a_note_and_other_lock_errors_stop(tmp_path, monkeypatch, capsys,
                                                                                   code, outcome):
    def fails(self, *args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(FileLock, "acquire", fails)
    run_dir = tmp_path / "run"
    if outcome == "trains":  # some cluster mounts offer no flock: better a run without a lock than none at all
        with run_dir_lock(run_dir):
            (run_dir / "config.yaml").write_text("method: mtsac\n")
        assert "offers no file locks" in capsys.readouterr().out and holds_run_data(run_dir)
    else:
        with pytest.raises(RunError, match=r"cannot lock '.*run.lock': Permission denied"), run_dir_lock(run_dir):
            pass
