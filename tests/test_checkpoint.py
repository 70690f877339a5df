import pytest
import torch

from mtrl.checkpoint import CheckpointError, list_checkpoints, load_latest, restore_into, save_checkpoint


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


def test_a_write_cut_short_leaves_no_file_behind(tmp_path, monkeypatch):
    """A second Ctrl-C (or a full disk) while a checkpoint is written: the earlier checkpoints stay as they were,
    and no half-written temporary file is left beside them."""
    save_checkpoint(tmp_path, 10, {"weights": torch.ones(100)}, keep=3)

    def interrupted(obj, f):
        f.write(b"part of a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 20, {"weights": torch.ones(100)}, keep=3)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_000000010.pt"]


def test_no_checkpoints_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="has no checkpoints"):
        load_latest(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step_000000001.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no readable checkpoint"):
        load_latest(tmp_path)


def test_a_checkpoint_that_does_not_fit_names_the_first_mismatch(tmp_path):
    """torch heads its mismatches with a line naming only the module; the error names the mismatch itself."""
    narrow, wide = torch.nn.Linear(2, 3), torch.nn.Linear(2, 4)
    with pytest.raises(CheckpointError, match=r"does not fit this configuration: size mismatch for weight"):
        restore_into(narrow.load_state_dict, wide.state_dict(), tmp_path / "step.pt")

    def load_famo(state: dict) -> None:
        state["logits"]  # a state saved by a method that keeps none

    with pytest.raises(CheckpointError, match=r"does not fit this configuration: missing key 'logits'"):
        restore_into(load_famo, {}, tmp_path / "step.pt")
