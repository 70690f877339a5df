import pytest
import torch

from mtrl.checkpoint import CheckpointError, list_checkpoints, load_latest, save_checkpoint


def test_keeps_the_newest_and_skips_a_truncated_one(tmp_path, capsys):
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, {"weights": torch.full((100,), float(step))}, keep=3)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000000020.pt", "step_000000030.pt",
                                                             "step_000000040.pt"]
    newest = list_checkpoints(tmp_path)[-1]
    newest.write_bytes(newest.read_bytes()[:200])  # a write cut short
    path, state = load_latest(tmp_path)
    assert path.name == "step_000000030.pt" and state["step"] == 30 and state["weights"][0] == 30
    assert "step_000000040.pt' is unreadable" in capsys.readouterr().err


def test_no_checkpoints_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="has no checkpoints"):
        load_latest(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step_000000001.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no readable checkpoint"):
        load_latest(tmp_path)
