"""Bad input through the real command line: a non-zero exit, one line naming what was wrong, no traceback,
and existing run data untouched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mtrl.run_lock import run_dir_lock

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture()
def existing_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "old_run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("method: mtsac\n")
    (run_dir / "notes.txt").write_text("precious")
    return run_dir


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


CASES = [
    # (arguments, fragments the one-line message must contain)
    (["train.py", "--method", "nope"], ["invalid choice: 'nope'", "mtsac"]),
    (["train.py", "sac.batchsize=64"], ["unknown config key 'sac.batchsize'", "did you mean 'sac.batch_size'"]),
    (["train.py", "net.hidden_dims=64"], ["did you mean 'net.hidden_dim'", "net.actor, net.critic, net.hidden_dim"]),
    (["train.py", "sac.batch_size=lots"], ["'sac.batch_size' expects int", "'lots'"]),
    (["train.py", "sac.gamma=1.5"], ["'sac.gamma' must be in [0, 1]"]),
    (["train.py", "env.protocol=mt50"], ["'env.protocol' got 'mt50'", "mt10-fixed"]),
    (["train.py", "device=tpu"], ["unknown device 'tpu'", "auto, cpu, cuda"]),
    (["train.py", "--device", "tpu"], ["--device: must be auto, cpu, cuda or cuda:N, got 'tpu'"]),
    (["train.py", "method=ntkmtl-sr"], ["unknown method 'ntkmtl-sr'", "did you mean 'ntkmtl_sr'", "pcgrad"]),
    (["train.py", "batch_size"], ["not of the form section.key=value"]),
    (["train.py", "--config", "missing.yaml"], ["config file 'missing.yaml' does not exist"]),
    (["train.py", "--bogus"], ["unrecognized arguments: --bogus"]),
    (["evaluate.py", "no/such/run"], ["'no/such/run' is neither a run directory nor a directory of runs"]),
    (["evaluate.py", "runs/a", "runs/b", "--video"], ["several runs or a directory of runs make a results table",
                                                      "--video take one run"]),
    (["-m", "mtrl.sweep", "missing.yaml"], ["sweep file 'missing.yaml' does not exist"]),
    (["-m", "mtrl.sweep", "configs/mt10_cpu.yaml"], ["has unknown key(s)", "accepted: ['config'"]),
    (["evaluate.py", "--episodes", "0", "--policy", "random"], ["--episodes must be at least 1"]),
    (["evaluate.py", "--policy", "random", "--vid"], ["unrecognized arguments: --vid"]),  # flags in full only
    (["evaluate.py", "--policy", "random", "--at-step", "5"], ["--at-step scores the runs of a results table"]),
    (["evaluate.py", "runs/a", "runs/b", "--at-step", "0"], ["--at-step must be a step the runs evaluated at",
                                                            "got 0"]),
    (["evaluate.py", "--policy", "random", "--at-minutes", "5"], ["--at-minutes scores the runs of a results table"]),
    (["evaluate.py", "runs/a", "runs/b", "--at-minutes", "0"], ["--at-minutes must be a positive, finite number",
                                                               "got 0"]),
    (["evaluate.py", "runs/a", "runs/b", "--at-minutes", "inf"], ["--at-minutes must be a positive, finite number",
                                                                 "got inf"]),
    (["evaluate.py", "runs/a", "runs/b", "--at-step", "5", "--at-minutes", "3"],
     ["argument --at-minutes: not allowed with argument --at-step"]),
    (["-m", "mtrl.bench", "--repeats", "0"], ["--repeats: must be an integer of at least 1, got '0'"]),
    (["-m", "mtrl.bench", "--device", "gpu"], ["--device: must be auto, cpu, cuda or cuda:N, got 'gpu'"]),
    (["-m", "mtrl.imbalance", "--seeds", "2", "--plot-seed", "2"], ["--plot-seed must be one of the seeds summarised"]),
    (["-m", "mtrl.reward_spread", "--protocol", "mt50"], ["--protocol: invalid choice: 'mt50'", "mt10-fixed"]),
]


@pytest.mark.parametrize("args,fragments", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_gets_one_clear_line(args, fragments):
    result = run(*args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:1"])
def test_every_device_the_config_accepts_is_a_valid_flag(name):
    from mtrl.cli import device_arg

    assert device_arg(name) == name


def test_existing_run_directory_is_refused_and_untouched(existing_run):
    before = snapshot(existing_run)
    result = run("train.py", "--run-dir", str(existing_run))
    assert result.returncode != 0 and "exists; use --resume" in result.stderr
    assert snapshot(existing_run) == before


@pytest.mark.parametrize("change,fragment", [(["--method", "pcgrad"], "its own method and seed (mtsac, seed 1)"),
                                             (["seed=2"], "got mtsac, seed 2"),
                                             (["--overwrite"], "drop --config/--run-dir/--overwrite")])
def test_a_resumed_run_keeps_its_method_seed_and_data(existing_run, change, fragment):
    before = snapshot(existing_run)
    result = run("train.py", "--resume", str(existing_run), *change)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and fragment in lines[0], result.stderr
    assert snapshot(existing_run) == before


@pytest.mark.parametrize("how", [["--resume"], ["--overwrite", "--run-dir"]])
def test_a_run_directory_another_process_trains_into_is_refused_and_untouched(existing_run, how):
    short = ["train.steps=20", "train.warmup_steps=10", "net.hidden_dim=16", "env.vector=sync", "train.overlap=false"]
    with run_dir_lock(existing_run):
        before = snapshot(existing_run)
        result = run("train.py", *how, str(existing_run), *([] if how == ["--resume"] else short))
        assert snapshot(existing_run) == before
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "another process is training into" in lines[0], \
        result.stderr


def test_run_without_checkpoints_is_refused_and_untouched(existing_run):
    before = snapshot(existing_run)
    result = run("evaluate.py", str(existing_run))
    assert result.returncode != 0 and "has no checkpoints" in result.stderr.strip().splitlines()[-1]
    assert snapshot(existing_run) == before
