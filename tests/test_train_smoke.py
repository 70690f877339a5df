"""A tiny end-to-end run through the real entry points: train.py writes TensorBoard events and checkpoints,
and evaluate.py reads the checkpoint back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mtrl.checkpoint import load_checkpoint
from mtrl.provenance import code_version, machine

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--device", "cpu", "train.steps=200", "train.warmup_steps=100", "train.eval_every=200",
        "train.checkpoint_every=100", "train.log_every=50", "train.buffer_capacity=5000", "sac.batch_size=40",
        "net.hidden_dim=16", "train.threads=1"]


def test_train_then_evaluate(tmp_path):
    run_dir = tmp_path / "smoke"
    train = subprocess.run([sys.executable, "train.py", "--config", "configs/mt10_cpu.yaml", "--run-dir",
                            str(run_dir), *TINY], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stderr[-2000:]
    assert (run_dir / "config.yaml").is_file()
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step_000000100.pt",
                                                                          "step_000000200.pt"]

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for tag in ("eval/success/reach-v3", "eval/success_mean", "eval/return_mean", "loss/critic_mean",
                "loss/actor/push-v3", "loss/temperature_mean", "temperature/window-close-v3",
                "train/episode_return_mean", "perf/steps_per_second", "perf/resident_mib",
                "train/nonfinite_updates", "combiner/critic/weight/reach-v3"):
        assert tag in tags, f"{tag} missing from {sorted(tags)}"
    assert [e.step for e in events.Scalars("eval/success_mean")] == [200]
    # where the loop's time went: no update before the warm-up ends at step 100 (only the check whether to
    # update, microseconds), updates after it
    update_ms = {e.step: e.value for e in events.Scalars("perf/ms_per_step/update")}
    assert max(update_ms[50], update_ms[100]) < 0.01 < update_ms[150], update_ms
    assert all(f"perf/ms_per_step/{part}" in tags for part in ("env", "act", "store", "evaluation", "other"))
    assert "loop time: " in train.stdout and "update " in train.stdout
    records = [json.loads(line) for line in (run_dir / "evaluations.jsonl").read_text().splitlines()]
    # the code and the machine it was measured on
    assert [(r["step"], r["code"], r["machine"]) for r in records] == [(200, code_version(),
                                                                          machine(torch.device("cpu")))]
    # the last checkpoint's clock, which a resume continues from, holds the evaluation logged before it (an
    # evaluation of ten 150-step episodes takes well over 0.1 s)
    final = load_checkpoint(run_dir / "checkpoints" / "step_000000200.pt")
    assert final["wall_seconds"] >= records[-1]["wall_seconds"] + 0.1

    evaluate = subprocess.run([sys.executable, "evaluate.py", str(run_dir), "--device", "cpu"], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
    assert evaluate.returncode == 0, evaluate.stderr[-2000:]
    report = json.loads((run_dir / "evaluation.json").read_text())
    assert report["labels"] == {"method": "mtsac", "seed": 1, "steps": 200, "checkpoint": "step_000000200.pt"}
    assert report["protocol"] == "mt10-fixed" and len(report["success"]) == 10
    assert "| **mean** |" in (run_dir / "evaluation.md").read_text()
