"""The benchmark's option timing runs on a small sweep file and reports per-step costs."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from mtrl.apps.bench import options_section

ROOT = Path(__file__).resolve().parents[1]


def _small_sweep(tmp_path: Path, variants: dict[str, list[str]]) -> Path:
    """A sweep file of tiny networks with these variants."""
    sweep = {"config": str(ROOT / "configs/mt10_cpu.yaml"), "methods": ["mtsac"], "seeds": [1],
             "overrides": ["net.hidden_dim=16", "sac.batch_size=40"], "out": str(tmp_path / "out"),
             "variants": variants}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_options_section_times_each_variant_per_update_and_per_step(tmp_path):
    path = _small_sweep(tmp_path, {"default": [], "twice": ["train.updates_per_step=2"]})
    rows = [line.split("|")[1:-1] for line in options_section(path, torch.device("cpu"), 1, 2)
            if line.startswith("| `")]
    assert [r[0].strip() for r in rows] == ["`default`", "`twice`"]
    assert rows[0][2].strip() == "1.00x" and rows[0][4].strip() == "1.00x"
    per_update, per_step = float(rows[1][1]), float(rows[1][3])
    assert abs(per_step - 2 * per_update) <= 0.02  # two updates per step (figures rounded to 0.01 ms)


def test_options_section_times_the_sweeps_configuration_when_every_variant_changes_it(tmp_path):
    path = _small_sweep(tmp_path, {"wide": ["net.hidden_dim=32"]})
    lines = options_section(path, torch.device("cpu"), 1, 2)
    rows = [line.split("|")[1:-1] for line in lines if line.startswith("| `")]
    assert [r[0].strip() for r in rows] == ["`base`", "`wide`"]
    assert rows[0][2].strip() == "1.00x"
    assert any("ratios to `base` (the sweep's configuration without a variant)" in line for line in lines)


def test_each_config_is_timed_on_a_batch_of_its_own_size(monkeypatch):
    """A variant that changes the batch size must not be timed on another variant's batch."""
    from mtrl.apps.bench import timed_updates, warmed_up_agents
    from mtrl.config import load_config
    from mtrl.sac import MTSAC

    def config(batch_size: int):
        return load_config(ROOT / "configs/mt10_cpu.yaml", ["net.hidden_dim=16", f"sac.batch_size={batch_size}"])

    configs = {"large": config(40), "small": config(20), "large_again": config(40)}
    _, batches = warmed_up_agents(configs, torch.device("cpu"))
    assert batches["large"].obs.shape[:2] == (10, 4) and batches["small"].obs.shape[:2] == (10, 2)
    assert batches["large_again"] is batches["large"]  # one batch per size, shared

    seen: dict[int, set[int]] = {}  # per-task batch sizes each agent was updated on, by its configured size
    update = MTSAC.update

    def recording_update(agent: MTSAC, batch):
        seen.setdefault(agent.cfg.sac.batch_size, set()).add(batch.obs.shape[1])
        return update(agent, batch)

    monkeypatch.setattr(MTSAC, "update", recording_update)
    timed_updates(configs, torch.device("cpu"), repeats=1, updates=1)
    assert seen == {40: {4}, 20: {2}}


def test_gpu_check_runs_on_the_cpu_and_reports_each_part(tmp_path, monkeypatch):
    """The GPU check, shrunk to a tiny network and a few steps, so that it cannot rot between GPU machines."""
    from mtrl.apps import gpu_check
    from mtrl.combiners import COMBINERS
    from mtrl.config import load_config, save_config

    # `sac.compile` is timed (its row below); the critics and loops after it run eager, as each new network
    # compiles anew, which takes most of a minute on a CPU
    monkeypatch.setattr(gpu_check, "fastest_update_options", lambda results, compiling=True: None)
    preset = tmp_path / "configs" / "tiny.yaml"
    preset.parent.mkdir()
    save_config(load_config(ROOT / "configs/mt10_cpu.yaml", ["net.hidden_dim=16", "sac.batch_size=40",
                                                             "train.buffer_capacity=5000", "train.threads=1"]), preset)
    cpu = torch.device("cpu")
    store = gpu_check.open_figures(None, preset, cpu, steps=200, rounds=1, repeats=1, updates=1, widths=(32,))
    text = "\n".join(gpu_check.gpu_check_section(preset, cpu, store))
    for method in COMBINERS:
        assert f"| `{method}` |" in text
    assert "| `sac.compile` |" in text and "| critic 32 wide, residual |" in text
    rates = {row.split("|")[1].strip(): float(row.split("|")[2].split()[0]) for row in text.splitlines()
             if row.startswith(("| sequential", "| overlapped", "| the preset as configured"))}
    assert "sequential" in rates and any("overlap" in mode for mode in rates)
    assert min(rates.values()) > 0
    assert "| 1 (`env.eval_copies=1`, 2 workers each) |" in text  # fixed goals: one copy only
    steps = load_config(preset).train.steps
    assert f"Projected wall clock of a full run of the preset ({steps:,} steps" in text


def test_the_profiled_split_of_an_update_has_matrix_products_and_the_rest():
    from mtrl.apps.bench import profiled_split
    from mtrl.config import load_config

    cfg = load_config(ROOT / "configs/mt10_cpu.yaml", ["net.hidden_dim=16", "sac.batch_size=40", "train.threads=1"])
    matmuls, rest = profiled_split(cfg, torch.device("cpu"), updates=2)
    assert 0 < matmuls < 1 and 0 < rest < 1  # seconds per update


def test_a_new_section_lands_after_the_others_with_one_blank_line_between(tmp_path):
    from mtrl.apps.bench import _read_sections, render_benchmarks

    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nintro\n\n## First\n\n| a |\n\n\n## Second\n\n| b |")  # no final newline
    sections = _read_sections(path)
    sections["## Third"] = ["## Third", "", "| c |", ""]
    text = render_benchmarks(sections)
    assert "| a |\n\n## Second" in text and "| b |\n\n## Third" in text and text.endswith("| c |\n")
    path.write_text(text)
    assert render_benchmarks(_read_sections(path)) == text  # rewriting an unchanged file changes nothing


def test_the_end_to_end_loops_are_what_their_labels_say_whatever_the_preset_sets():
    from mtrl.apps.bench import LOOP_THREADS, LOOPS, PRESETS, loop_options
    from mtrl.config import load_config

    for label, setting in LOOPS.items():
        for preset in PRESETS.values():
            cfg = load_config(preset, loop_options(*setting))
            assert (cfg.env.vector, cfg.train.overlap, cfg.train.threads) == setting, label
            assert f"env.vector={cfg.env.vector}" in label and ("overlap" in label) == cfg.train.overlap
            assert ("train.threads=" in label) == (cfg.train.threads != LOOP_THREADS), label


def test_a_stopped_gpu_check_keeps_its_figures_and_measures_only_the_rest(tmp_path, monkeypatch):
    """A check stopped part-way by a time limit resumes from its figures file: what is stored is not measured again,
    and each new figure is written to the file as soon as it is measured."""
    from mtrl.apps import gpu_check

    preset = tmp_path / "configs" / "preset.yaml"
    preset.parent.mkdir()
    preset.write_text((ROOT / "configs/mt10_cpu.yaml").read_text())
    cpu = torch.device("cpu")
    setup = gpu_check.check_setup(preset, cpu, 200, 1, 1, 1, (32,), gpu_check.collector_workers())
    figures = tmp_path / "figures.json"

    def reopened(steps: int = 200):
        return gpu_check.open_figures(figures, preset, cpu, steps, 1, 1, 1, (32,))

    figures.write_text(json.dumps({  # what a first check measured before its limit stopped it
        "setup": setup, "method_costs": {"mtsac": 0.010, "famo": 0.013},
        "option_costs": {"sac.compile": [0.010, 0.005]},
        "critics": {"update": "eager", "costs": {"preset": 0.010, "wide": 0.030}},
        "evaluation_rounds": {"1": 2.0}}))

    def measured_again(*args, **kwargs):
        raise AssertionError("a stored figure was measured again")

    for name in ("update_option_costs", "evaluation_round_seconds", "width_configs"):
        monkeypatch.setattr(gpu_check, name, measured_again)
    monkeypatch.setattr("mtrl.apps.bench.update_costs", measured_again)
    looped = []

    def loop_rate(preset, device, steps, rounds, workers, options):
        if len(looped) == 1:
            raise KeyboardInterrupt  # the time limit, during the second loop
        looped.append(options)
        return {"rate": 50.0, "per_step": {"env": 0.005, "act": 0.002, "store": 0.001, "update": 0.01,
                                           "evaluation": 0.0, "total": 0.02, "loop": 0.02}}

    monkeypatch.setattr(gpu_check, "loop_rate", loop_rate)
    with pytest.raises(KeyboardInterrupt):
        gpu_check.gpu_check_section(preset, cpu, reopened())
    assert "loop: sequential" in json.loads(figures.read_text())  # kept although the check was stopped after it

    looped.append("the stop has passed")
    text = "\n".join(gpu_check.gpu_check_section(preset, cpu, reopened()))
    # the sequential loop was not run again; the preset's and the compiled overlapped one (compiling paid) were
    assert len(looped) == 4 and "sac.compile=true" in looped[3]
    assert "Critics (`mtsac`, update: eager)" in text
    assert "| `famo` | 13.00 | 1.30x |" in text and "| wide | 30.00 | 3.00x | no |" in text
    assert "| 1 (`env.eval_copies=1`, 2 workers each) | 2.0 |" in text
    assert "Seconds each part took to measure" in text
    assert "| preset (" in text and "and once for 200 (updates" in text
    assert "| sequential | 50.0 (500) | 25% | 10% | 5% | 50% | 10% |" in text  # env, act, store, update, other
    assert "loop: sequential" in json.loads(figures.read_text())["seconds"]

    with pytest.raises(gpu_check.FiguresFileError, match="another setup .steps 200 there, 400 here"):
        reopened(steps=400)
    preset.write_text(preset.read_text().replace("seed: 1", "seed: 2"))  # the same file name, other settings
    with pytest.raises(gpu_check.FiguresFileError, match="preset_settings"):
        reopened()
    figures.write_text(figures.read_text()[:-20])  # a file cut off while it was written
    with pytest.raises(gpu_check.FiguresFileError, match="is not a figures file"):
        reopened()


def test_the_critics_are_timed_with_the_fastest_update_that_compiles_nothing():
    from mtrl.apps.gpu_check import UPDATE_OPTIONS, fastest_update_options

    results = {"sac.compile": (10.0, 5.0), "sac.cuda_graph": (10.0, 4.0), "sac.cuda_graph + sac.compile": (10.0, 2.0)}
    assert fastest_update_options(results) == ("sac.cuda_graph + sac.compile",
                                               UPDATE_OPTIONS["sac.cuda_graph + sac.compile"])
    assert fastest_update_options(results, compiling=False) == ("sac.cuda_graph", ["sac.cuda_graph=true"])
    assert fastest_update_options({"sac.compile": (10.0, 5.0)}, compiling=False) is None  # eager


def test_the_benchmark_refuses_a_figures_file_it_cannot_resume_before_measuring(tmp_path, monkeypatch, capsys):
    from mtrl.apps import bench

    monkeypatch.setattr("sys.argv", ["bench", "--gpu-check", "--check-figures", str(tmp_path / "no" / "f.json"),
                                     "--out", str(tmp_path / "BENCHMARKS.md")])
    monkeypatch.setattr(bench, "gpu_check_section", lambda *args: pytest.fail("measured before the refusal"))
    with pytest.raises(SystemExit) as stop:
        bench.main()
    assert stop.value.code == 2
    assert "folder" in capsys.readouterr().err and not (tmp_path / "BENCHMARKS.md").exists()
