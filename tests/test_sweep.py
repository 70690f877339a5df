"""Sweeps through a local Ray instance: a grid of very short runs, one per method, killed part-way through
and run again, must skip the finished run, resume the interrupted one from its checkpoint, and end with the
results table and both figures; one stopped by a signal must checkpoint its running run and start no other."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mtrl.apps.sweep import load_sweep, run_state
from mtrl.checkpoint import list_checkpoints
from mtrl.config import ConfigError, flatten

ROOT = Path(__file__).resolve().parents[1]
TINY = ["device=cpu", "train.steps=300", "train.warmup_steps=100", "train.eval_every=100",
        "train.checkpoint_every=100", "train.log_every=50", "train.buffer_capacity=5000", "sac.batch_size=40",
        "net.hidden_dim=16", "env.vector=sync", "train.overlap=false"]  # the sweep, not the loop


def write_sweep(tmp_path: Path, **changes) -> Path:
    sweep = {"config": str(ROOT / "configs/mt10_cpu.yaml"), "methods": ["mtsac", "ntkmtl_sr"], "seeds": [1, 2],
             "overrides": TINY, "resources": {"cpus": 1}, "out": str(tmp_path / "out"), **changes}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_grid_names_and_overrides(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, grid={"sac.batch_size": [40, 80]}))
    names = [s.name for s in sweep.runs()]
    assert len(names) == 8 and names[:2] == ["mtsac_s1_sac.batch_size=40", "mtsac_s1_sac.batch_size=80"]
    assert sweep.runs()[1].overrides[-1] == "sac.batch_size=80"
    # seed before method: stopped part-way, a sweep has run every method on the same seeds
    in_order = [s.name for s in load_sweep(write_sweep(tmp_path)).runs()]
    assert in_order == ["mtsac_s1", "ntkmtl_sr_s1", "mtsac_s2", "ntkmtl_sr_s2"]


def test_a_run_whose_evaluations_reached_the_end_is_finished_without_checkpoints(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    assert run_state(run, 300) == "new"
    (run / "evaluations.jsonl").write_text(json.dumps({"step": 200}) + "\n")
    assert run_state(run, 300) == "new"  # part-way, and no checkpoint to resume from
    (run / "evaluations.jsonl").write_text(json.dumps({"step": 200}) + "\n" + json.dumps({"step": 300}) + "\n")
    assert run_state(run, 300) == "finished"


def test_variants_name_their_runs_and_label_their_configs(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, methods=["mtsac"], variants={"default": [], "wide": ["net.hidden_dim=32"]}))
    specs = {s.name: s for s in sweep.runs()}
    assert sorted(specs) == ["mtsac_s1_default", "mtsac_s1_wide", "mtsac_s2_default", "mtsac_s2_wide"]
    from mtrl.apps.sweep import run_config

    cfg = run_config(sweep, specs["mtsac_s2_wide"])
    assert (cfg.label, cfg.seed, cfg.net.critic.hidden_dim) == ("wide", 2, 32)


@pytest.mark.parametrize("changes, message", [
    ({"method": "mtsac"}, "unknown key(s) ['method']"),
    ({"methods": ["mtsac", "ntkmtl-sr"]}, "unknown method 'ntkmtl-sr'"),
    ({"overrides": ["sac.batchsize=3"]}, "sac.batchsize"),
    ({"resources": {"cpus": 1, "memory": 2}}, "resources accepts a mapping of cpus and gpus"),
    ({"resources": 2}, "resources accepts a mapping of cpus and gpus"),
    ({"resources": {"cpus": "two"}}, "cpus and gpus must be numbers"),
    ({"grid": {"sac.batch_size": []}}, "non-empty list"),
    ({"grid": ["sac.batch_size"]}, "grid must map section.key names"),
    ({"methods": "mtsac"}, "'methods' and 'seeds' must be non-empty lists"),
    ({"seeds": 3}, "'methods' and 'seeds' must be non-empty lists"),
    ({"seeds": ["a"]}, "'methods' and 'seeds' must be non-empty lists"),
    ({"out": 5}, "'out' must be a path"),
    ({"overrides": "train.steps=300"}, "overrides must be a list of section.key=value strings"),
    # 2 transitions per task cannot be split into ntkmtl_sr's 4 sub-batches: refused before any run starts
    ({"grid": {"sac.batch_size": [20]}}, "'methods.ntkmtl_sr.subbatches' must divide each task's share"),
])
def test_bad_sweep_files_fail_before_anything_runs(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_sweep(write_sweep(tmp_path, **changes))


def _sweep(path: Path, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mtrl.sweep", str(path), *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)


def test_killed_sweep_resumes_unfinished_runs_and_skips_finished_ones(tmp_path):
    out = tmp_path / "out"
    path = write_sweep(tmp_path, seeds=[1])  # one run per method: the first finishes, the second is cut short
    names = ["mtsac_s1", "ntkmtl_sr_s1"]

    # one run at a time, killed (driver, Ray and its workers) once a run is finished and another is part-way
    first = _sweep(path, "--num-cpus", "1")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        states = {n: run_state(out / n, 300) for n in names}
        if "finished" in states.values() and "resumable" in states.values():
            break
        assert first.poll() is None, first.stdout.read()[-3000:]
        time.sleep(0.3)
    else:
        pytest.fail(f"the sweep did not get part-way in time: {states}")
    # the run's worker first: Ray's workers are not in the driver's process group, and one that outlives its
    # raylet by a moment could finish a run this small before the second sweep starts it
    workers = {n: _processes(out / n)[0] for n in names}
    for pid in workers.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    states = {n: run_state(out / n, 300) for n in names}  # as the killed sweep left them
    assert sorted(states.values()) == ["finished", "resumable"], states
    finished = {n: list_checkpoints(out / n)[-1].stat().st_mtime_ns for n, s in states.items() if s == "finished"}
    # each run in a process of its own, which loads the code as it is when the run starts
    assert len(set(workers.values())) == 2
    interrupted = [n for n, s in states.items() if s == "resumable"]

    second = _sweep(path, "--num-cpus", "2")
    log, _ = second.communicate(timeout=400)
    assert second.returncode == 0, log[-3000:]
    assert f"{len(finished)} already finished" in log
    for name, mtime in finished.items():  # skipped: its files untouched
        assert list_checkpoints(out / name)[-1].stat().st_mtime_ns == mtime
    for name in interrupted:
        assert f"{name}: resumed" in log
        train_log = (out / name / "train.log").read_text()
        assert "resuming" in train_log
        assert "loop time: " in train_log  # where the resumed process's loop went
        assert len(set(_processes(out / name))) == 2  # started by the first sweep, resumed by the second
        steps = [json.loads(line)["step"] for line in (out / name / "evaluations.jsonl").read_text().splitlines()]
        assert steps == [100, 200, 300]
    assert all(run_state(out / n, 300) == "finished" for n in names)
    progress = [line for line in log.splitlines() if line.startswith("[")]
    assert progress[-1].endswith(f"done {len(names) - len(finished)}, running 0, queued 0, failed 0")

    table = json.loads((out / "results.json").read_text())["rows"]
    assert [(r["label"], r["seeds"]) for r in table] == [("mtsac", [1]), ("ntkmtl_sr", [1])]
    for name in ("results.md", "curves.png", "heatmap.png"):
        assert (out / name).stat().st_size > 0

    third = _sweep(path)
    log, _ = third.communicate(timeout=120)
    assert third.returncode == 0 and f"{len(names)} already finished, 0 to run" in log


def test_a_signalled_sweep_checkpoints_its_running_run_and_starts_no_other(tmp_path):
    out = tmp_path / "out"
    path = write_sweep(tmp_path, seeds=[1], overrides=[*TINY, "train.steps=5000"])  # long: stopped part-way
    sweep = _sweep(path, "--num-cpus", "1")
    deadline = time.monotonic() + 240
    while not list_checkpoints(out / "mtsac_s1"):
        assert sweep.poll() is None, sweep.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "the first run wrote no checkpoint in time"
        time.sleep(0.3)
    os.kill(sweep.pid, signal.SIGINT)  # the driver alone, as `kill -INT` would
    log, _ = sweep.communicate(timeout=120)

    assert sweep.returncode != 0 and "sweep stopped by SIGINT; run the same command to resume it" in log, log[-3000:]
    last = list_checkpoints(out / "mtsac_s1")[-1]
    assert "mtsac_s1: stopped, checkpoint " + last.name in log
    stopped_at = int(last.stem.split("_")[-1])
    assert 100 <= stopped_at < 5000
    # the trainer's own clean stop, its checkpoint of the step it stopped at
    assert f"SIGINT: stopped after step {stopped_at}" in (out / "mtsac_s1" / "train.log").read_text()
    assert not (out / "ntkmtl_sr_s1").exists() and "1 queued run(s) not started" in log  # never started
    assert "FAILED" not in log


def test_a_sweep_started_in_the_background_stops_a_run_that_is_still_starting(tmp_path):
    """A shell that starts `python -m mtrl.sweep ... &` leaves SIGINT ignored in the sweep, Ray and its workers, and
    Ray cancels a running task by calling the SIGINT handler: a cancel that comes before the trainer handles the
    signal must not be lost (the run would go on to its end). The run stops short of its end, checkpointed."""
    out = tmp_path / "out"
    path = write_sweep(tmp_path, seeds=[1], overrides=[*TINY, "train.steps=5000"])
    sweep = subprocess.Popen(["sh", "-c", 'trap "" INT; exec "$@"', "sh", sys.executable, "-m", "mtrl.sweep",
                              str(path), "--num-cpus", "1"], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)
    train_log = out / "mtsac_s1" / "train.log"
    deadline = time.monotonic() + 240
    while not (train_log.exists() and "starting" in train_log.read_text()):  # building its environments now
        assert sweep.poll() is None, sweep.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "the first run did not start in time"
        time.sleep(0.1)
    os.kill(sweep.pid, signal.SIGINT)
    log, _ = sweep.communicate(timeout=180)

    assert sweep.returncode != 0 and "sweep stopped by SIGINT; run the same command to resume it" in log, log[-3000:]
    (last,) = list_checkpoints(out / "mtsac_s1")  # not its end: the run stopped where the cancel reached it
    stopped_at = int(last.stem.split("_")[-1])
    assert stopped_at < 5000 and f"SIGINT: stopped after step {stopped_at}" in train_log.read_text()


@pytest.mark.parametrize("sweep_file", sorted((ROOT / "configs/sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_sweep_file_gives_valid_run_configs(sweep_file: Path, monkeypatch):
    from mtrl.apps.sweep import run_config

    monkeypatch.chdir(ROOT)  # sweep files name their base config relative to the repository
    sweep = load_sweep(sweep_file)
    names = [spec.name for spec in sweep.runs()]
    assert len(names) == len(set(names)) > 0
    for spec in sweep.runs():
        run_config(sweep, spec)  # raises ConfigError on anything invalid


def _flat(tree: dict, prefix: str = "") -> dict[str, object]:
    """A record's raw YAML as dotted keys (not loaded through the config, which would fill in absent keys)."""
    flat = {}
    for key, value in tree.items():
        flat.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


RECORDED = sorted(p for p in (ROOT / "configs/sweeps").glob("*.yaml")
                  if (ROOT / "docs/runs" / yaml.safe_load(p.read_text())["out"].split("/")[-1]).is_dir())


@pytest.mark.parametrize("sweep_file", RECORDED, ids=lambda p: p.name)
def test_each_sweep_file_still_composes_the_configs_of_its_documented_runs(sweep_file: Path, monkeypatch):
    """The results documents rebuild their tables from `docs/runs/<sweep>/` and name the sweep file that made
    them; a preset changed after the runs must not change what that file runs. Every key a record stores must
    match, but for the settings of methods the run did not use (the other combiners' options) and keys added
    since (absent from older records; their defaults keep the earlier behaviour)."""
    from mtrl.apps.sweep import run_config

    monkeypatch.chdir(ROOT)
    sweep = load_sweep(sweep_file)
    records = ROOT / "docs/runs" / sweep.out.name
    specs = {spec.name: spec for spec in sweep.runs()}
    assert {p.name for p in records.iterdir()} <= set(specs)  # every record is a run of the file
    for run_dir in sorted(records.iterdir()):
        spec = specs[run_dir.name]
        composed = flatten(run_config(sweep, spec))
        recorded = _flat(yaml.safe_load((run_dir / "config.yaml").read_text()))
        other_methods = {key for key in composed
                         if key.startswith("methods.") and not key.startswith(f"methods.{spec.method}.")}
        differ = {key: (composed.get(key), value) for key, value in recorded.items()
                  if key not in other_methods and composed.get(key) != value}
        assert not differ, f"{sweep_file.name}, {run_dir.name}: (composed, recorded) {differ}"


def _processes(run_dir: Path) -> list[str]:
    """The process ids of the sweep workers that ran (or resumed) the run, from its train.log."""
    return re.findall(r"in process (\d+), code of ", (run_dir / "train.log").read_text())
