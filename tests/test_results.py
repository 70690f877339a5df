"""The results table: known per-seed numbers must give the right means and standard errors, rows must group
runs that differ only in their seed, and evaluate.py must write the table and both figures."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from mtrl.config import load_config, save_config
from mtrl.envs import TASK_NAMES
from mtrl.errors import ConfigError
from mtrl.results import Cut, evaluations_log, find_runs, group, load_run, mean_and_se, to_json, to_markdown

ROOT = Path(__file__).resolve().parents[1]


def fake_run(directory: Path, method: str, seed: int, final: list[float], *overrides: str,
             code: tuple[str | None, ...] = (None, None, None), machine: str | None = None,
             seconds_per_step: float | None = 0.1) -> Path:
    """A run directory with a config and three logged evaluations whose last one has per-task `final`, each
    logged on the commit in `code` and on `machine` (None: a record from before evaluations named them), at a
    wall clock of `seconds_per_step` per step (None: a record from before evaluations logged the clock)."""
    directory.mkdir(parents=True)
    save_config(load_config(ROOT / "configs/mt10_cpu.yaml", list(overrides), method=method, seed=seed),
                directory / "config.yaml")
    with open(directory / "evaluations.jsonl", "w") as log:
        for (step, scale), version in zip(((1000, 0.0), (2000, 0.5), (3000, 1.0)), code):
            success = {t: scale * v for t, v in zip(TASK_NAMES, final)}
            record = {"step": step, "success": success, "mean_return": {t: 0.0 for t in TASK_NAMES},
                      "episodes": 1, "protocol": "mt10-fixed"}
            record |= {} if seconds_per_step is None else {"wall_seconds": step * seconds_per_step}
            record |= {} if version is None else {"code": version}
            record |= {} if machine is None else {"machine": machine}
            log.write(json.dumps(record) + "\n")
    return directory


def test_mean_and_standard_error_of_known_numbers():
    mean, se = mean_and_se([0.2, 0.4, 0.9])
    assert mean == pytest.approx(0.5)
    assert se == pytest.approx(math.sqrt(0.13) / math.sqrt(3))  # deviations -.3, -.1, .4: variance .26 / 2
    assert math.isnan(mean_and_se([0.7])[1])


@pytest.fixture
def sweep_dir(tmp_path) -> Path:
    per_seed = {1: 0.2, 2: 0.4, 3: 0.9}  # mtsac's mean success per seed; ntkmtl_sr is always 1.0 on reach only
    for seed, value in per_seed.items():
        fake_run(tmp_path / f"mtsac_s{seed}", "mtsac", seed, [value] * 10)
        fake_run(tmp_path / f"ntkmtl_sr_s{seed}", "ntkmtl_sr", seed, [1.0] + [0.0] * 9)
    return tmp_path


def test_rows_group_seeds_and_report_means_and_standard_errors(sweep_dir):
    rows = group([load_run(p) for p in find_runs([sweep_dir])])
    assert [r.label for r in rows] == ["mtsac", "ntkmtl_sr"]
    data = {r["label"]: r for r in json.loads(to_json(rows))["rows"]}
    assert data["mtsac"]["seeds"] == [1, 2, 3] and data["mtsac"]["steps"] == [3000]
    assert data["mtsac"]["success_mean"] == pytest.approx(0.5)
    assert data["mtsac"]["success_se"] == pytest.approx(math.sqrt(0.13 / 3), abs=1e-6)
    assert data["mtsac"]["per_task"]["push-v3"]["mean"] == pytest.approx(0.5)
    assert data["ntkmtl_sr"]["success_mean"] == pytest.approx(0.1) and data["ntkmtl_sr"]["success_se"] == 0.0
    assert data["ntkmtl_sr"]["per_task"]["reach-v3"] == {"mean": 1.0, "se": 0.0}
    # the last three evaluations are 0, 0.5 and 1 times the final one: each task's score is half of it
    assert data["mtsac"]["per_task_recent"]["push-v3"]["mean"] == pytest.approx(0.25)
    assert data["ntkmtl_sr"]["per_task_recent"]["reach-v3"] == {"mean": 0.5, "se": 0.0}
    assert data["mtsac"]["published_v1"] == {"name": "multi-head SAC", "mean": 0.61, "se": 0.04}  # heads
    assert data["ntkmtl_sr"]["published_v1"] is None
    # the table's statistics, also in the JSON: IQM 0.25 (below), P(better) of ntkmtl_sr 0.1 exactly
    assert data["mtsac"]["iqm"]["value"] == pytest.approx(0.25) and data["mtsac"]["improvement_over"] is None
    assert data["ntkmtl_sr"]["improvement_over"] == {"reference": "mtsac", "value": 0.1, "low": 0.1, "high": 0.1}
    table = to_markdown(rows)
    # the mean of the last three evaluations is half the final one here (0, 0.5 and 1 times it); 300 s per run
    # IQM over the seeds' scores 0.1, 0.2 and 0.45 (each seed's mean over the tasks of their last three
    # evaluations): three runs trim none, (0.1 + 0.2 + 0.45) / 3 = 0.25
    line = next(line for line in table.splitlines() if line.startswith("| mtsac |"))
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells[:6] == ["mtsac", "3", "3,000", "mt10-fixed", "**0.50 +- 0.21**", "0.25 +- 0.10"]
    value, low, high = map(float, cells[6].replace("[", "").replace("]", "").replace(",", "").split())
    assert value == pytest.approx(0.25) and 0.1 <= low < value < high <= 0.45
    assert cells[7:] == ["-", "5", "multi-head SAC: 0.61 +- 0.04"]
    # ntkmtl_sr against mtsac: on reach its runs (0.5) beat mtsac's (0.1, 0.2 and 0.45) always; elsewhere
    # (0.0) never: P(better) = 1 / 10
    assert ("| ntkmtl_sr | 3 | 3,000 | mt10-fixed | **0.10 +- 0.00** | 0.05 +- 0.00 | 0.05 [0.05, 0.05] | "
            "0.10 [0.10, 0.10] |") in table
    final_table, recent_table = table.split("Per task over each run's last 3 evaluations")
    assert "| reach-v3 | 0.50 +- 0.21 | 1.00 +- 0.00 |" in final_table
    assert "| reach-v3 | 0.25 +- 0.10 | 0.50 +- 0.00 |" in recent_table.split("Per run:")[0]
    # the curve's IQM at the last evaluation: the seeds' mean successes 0.2, 0.4 and 0.9, of which three runs
    # trim none; half of it one evaluation before
    steps, middle, low, high = rows[0].iqm_curve(reps=200)
    assert steps.tolist() == [1000, 2000, 3000] and middle == pytest.approx([0.0, 0.25, 0.5])
    assert (low <= middle).all() and (middle <= high).all() and high[0] == 0.0 and low[-1] < middle[-1]


def test_rows_name_the_commits_their_evaluations_were_logged_on(tmp_path):
    fake_run(tmp_path / "mtsac_s1", "mtsac", 1, [0.5] * 10, code=("aaaaaaa", "aaaaaaa", "bbbbbbb"))  # resumed
    fake_run(tmp_path / "mtsac_s2", "mtsac", 2, [0.5] * 10, code=("bbbbbbb",) * 3)
    fake_run(tmp_path / "ntkmtl_sr_s1", "ntkmtl_sr", 1, [0.5] * 10)
    rows = group([load_run(p) for p in find_runs([tmp_path])])
    assert [row.code() for row in rows] == [["aaaaaaa", "bbbbbbb"], ["not recorded"]]
    assert json.loads(to_json(rows))["rows"][0]["code"] == ["aaaaaaa", "bbbbbbb"]
    assert "mtsac: aaaaaaa, bbbbbbb; ntkmtl_sr: not recorded." in to_markdown(rows)


def test_the_table_names_the_machine_of_each_run(tmp_path):
    fake_run(tmp_path / "mtsac_s1", "mtsac", 1, [0.5] * 10, machine="CPU A")
    fake_run(tmp_path / "mtsac_s2", "mtsac", 2, [0.5] * 10, machine="CPU B")
    fake_run(tmp_path / "ntkmtl_sr_s1", "ntkmtl_sr", 1, [0.5] * 10, machine="CPU A")
    fake_run(tmp_path / "ntkmtl_sr_s2", "ntkmtl_sr", 2, [0.5] * 10)
    rows = group([load_run(p) for p in find_runs([tmp_path])])
    assert ("CPU A: mtsac_s1, ntkmtl_sr_s1; CPU B: mtsac_s2; not recorded: ntkmtl_sr_s2."
            in to_markdown(rows))
    assert [run["machine"] for run in json.loads(to_json(rows))["rows"][0]["runs"]] == [["CPU A"], ["CPU B"]]


def test_every_run_is_listed_with_its_scores_solved_tasks_wall_clock_and_code(tmp_path):
    fake_run(tmp_path / "mtsac_s1", "mtsac", 1, [1.0, 0.4] + [0.0] * 8, code=("aaaaaaa", "aaaaaaa", "bbbbbbb"))
    fake_run(tmp_path / "mtsac_s2", "mtsac", 2, [0.0] * 10)
    rows = group([load_run(p) for p in find_runs([tmp_path])])
    table = to_markdown(rows)
    # final 1.4 / 10; the last three evaluations scale it by 0, 0.5 and 1; 3,000 steps logged at 300 s
    reach, push = (t.rsplit("-v", 1)[0] for t in TASK_NAMES[:2])
    assert f"| mtsac_s1 | mtsac | 1 | 3,000 | 0.14 | 0.07 | {reach} | 5.0 | aaaaaaa, bbbbbbb |" in table
    assert push not in table.split("| mtsac_s1 |")[1].splitlines()[0]  # 0.4 is below the threshold
    assert "| mtsac_s2 | mtsac | 2 | 3,000 | 0.00 | 0.00 | none | 5.0 | not recorded |" in table
    listed = json.loads(to_json(rows))["rows"][0]["runs"][0]
    assert listed["solved"] == [reach] and listed["minutes"] == 5.0 and listed["code"] == ["aaaaaaa", "bbbbbbb"]
    assert listed["recent_success_mean"] == pytest.approx(0.07)


def test_rows_are_labelled_by_the_settings_that_differ(tmp_path):
    fake_run(tmp_path / "a", "mtsac", 1, [0.0] * 10, "sac.batch_size=640")
    fake_run(tmp_path / "b", "mtsac", 1, [1.0] * 10, "sac.batch_size=1280")
    fake_run(tmp_path / "c", "mtsac", 2, [0.0] * 10, "net.head_layers=3")  # one network per task
    fake_run(tmp_path / "d", "mtsac", 3, [0.0] * 10, "net.head_layers=0")  # one fully shared network
    # a run whose critic alone differs keeps the actor's and the critic's keys apart in every label
    fake_run(tmp_path / "e", "mtsac", 1, [0.0] * 10, "net.critic.head_layers=0")  # the critic alone differs
    rows = group([load_run(p) for p in find_runs([tmp_path])])
    published = {r.label: r.published_key for r in rows}
    assert published == {
        "mtsac net.actor.head_layers=1 net.critic.head_layers=1 sac.batch_size=1280": "mtsac_heads",
        "mtsac net.actor.head_layers=1 net.critic.head_layers=1 sac.batch_size=640": "mtsac_heads",
        "mtsac net.actor.head_layers=3 net.critic.head_layers=3 sac.batch_size=640": "stl",
        "mtsac net.actor.head_layers=0 net.critic.head_layers=0 sac.batch_size=640": "mtsac",
        "mtsac net.actor.head_layers=1 net.critic.head_layers=0 sac.batch_size=640": "mtsac"}


def test_named_settings_label_their_rows(tmp_path):
    fake_run(tmp_path / "a", "mtsac", 1, [0.0] * 10, "label=wide critic", "net.critic.hidden_dim=512")
    fake_run(tmp_path / "b", "mtsac", 2, [1.0] * 10, "label=wide critic", "net.critic.hidden_dim=512")
    fake_run(tmp_path / "c", "mtsac", 1, [0.0] * 10, "label=default")
    rows = group([load_run(p) for p in find_runs([tmp_path])])
    assert [(r.label, len(r.runs)) for r in rows] == [("mtsac default", 1), ("mtsac wide critic", 2)]


def test_an_unnamed_row_beside_named_ones_is_labelled_by_the_settings_that_differ(tmp_path):
    fake_run(tmp_path / "a", "mtsac", 1, [0.0] * 10, "train.overlap=true")
    fake_run(tmp_path / "b", "mtsac", 1, [1.0] * 10, "label=sequential", "train.overlap=false")
    rows = group([load_run(p) for p in find_runs([tmp_path])])
    assert [r.label for r in rows] == ["mtsac sequential", "mtsac train.overlap=True"]


def test_evaluate_writes_the_table_and_both_figures(sweep_dir, tmp_path):
    out = tmp_path / "table"
    done = subprocess.run([sys.executable, "evaluate.py", str(sweep_dir), "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("results.md", "results.json", "curves.png", "heatmap.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "**0.50 +- 0.21**" in done.stdout


def test_a_higher_confidence_level_widens_the_intervals_and_is_named_in_the_table(tmp_path):
    """Comparing several rows with one reference at 95% each holds at less than 95% for all of them together;
    a higher level (Bonferroni's 1 - 0.05 / comparisons) must give intervals that contain the 95% ones."""
    for seed in range(1, 7):
        fake_run(tmp_path / f"mtsac_s{seed}", "mtsac", seed, [0.1 * seed] * 10)
        fake_run(tmp_path / f"famo_s{seed}", "famo", seed, [0.1 * seed + 0.05 * (seed % 2)] * 10)
    famo, mtsac = group([load_run(p) for p in find_runs([tmp_path])])
    _, low, high = mtsac.iqm()
    _, iqm_low_99, iqm_high_99 = mtsac.iqm(0.99)
    assert iqm_low_99 < low < high < iqm_high_99  # six distinct run scores: the tails reach further out
    _, low, high = famo.improvement_over(mtsac)
    _, low_99, high_99 = famo.improvement_over(mtsac, 0.99)
    assert low_99 <= low < high <= high_99 and high_99 - low_99 > high - low
    rows = [famo, mtsac]
    table = to_markdown(rows, level=0.99)
    assert "| IQM [99% CI] | P(better than mtsac) [99% CI] |" in table and "with a 99% bootstrap interval" in table
    assert "| IQM [98.33% CI] |" in to_markdown(rows, level=1 - 0.05 / 3)
    data = json.loads(to_json(rows, level=0.99))
    assert data["confidence"] == 0.99
    assert data["rows"][1]["iqm"]["low"] == pytest.approx(iqm_low_99, abs=1e-6)
    assert data["rows"][0]["improvement_over"]["high"] == pytest.approx(high_99, abs=1e-6)


def test_evaluate_takes_a_confidence_level_and_refuses_one_outside_zero_to_one(sweep_dir, tmp_path):
    out = tmp_path / "table"
    done = subprocess.run([sys.executable, "evaluate.py", str(sweep_dir), "--confidence", "0.99", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "IQM [99% CI]" in (out / "results.md").read_text()
    assert json.loads((out / "results.json").read_text())["confidence"] == 0.99
    for level in ("1.5", "0"):
        bad = subprocess.run([sys.executable, "evaluate.py", str(sweep_dir), "--confidence", level, "--out",
                              str(tmp_path / "bad")], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
        assert f"--confidence is a level between 0 and 1 (e.g. 0.95), got {float(level)}" in bad.stderr
    assert not (tmp_path / "bad").exists()


def test_a_run_cut_at_a_step_is_scored_there_and_a_run_without_that_step_is_refused(tmp_path):
    run = fake_run(tmp_path / "mtsac_s1", "mtsac", 1, [1.0] * 5 + [0.0] * 5)  # 0.5 at the end, 0.25 at 2,000
    cut = load_run(run, Cut(step=2000))
    assert cut.steps == 2000 and cut.final_success() == pytest.approx(0.25)
    assert cut.curve_steps.tolist() == [1000, 2000] and cut.recent_success() == pytest.approx(0.125)
    assert cut.minutes() == pytest.approx(200 / 60)  # the wall clock up to that evaluation
    assert load_run(run).final_success() == pytest.approx(0.5)
    with pytest.raises(FileNotFoundError, match=r"no evaluation at step 2,500 \(it evaluated at 1,000, 2,000, 3,000"):
        load_run(run, Cut(step=2500))


def test_runs_cut_at_a_step_share_a_row_whatever_length_they_ran_to(tmp_path):
    """Up to the cut, runs that differ only in `train.steps` are the same computation, so one row holds them."""
    fake_run(tmp_path / "mtsac_s1", "mtsac", 1, [1.0] * 10, "train.steps=70000")
    fake_run(tmp_path / "mtsac_s2", "mtsac", 2, [0.0] * 10, "train.steps=60000")
    runs = find_runs([tmp_path])
    assert [row.label for row in group([load_run(p, Cut(step=2000)) for p in runs])] == ["mtsac"]
    assert [row.label for row in group([load_run(p) for p in runs])] == ["mtsac train.steps=60000",
                                                                           "mtsac train.steps=70000"]
    within = group([load_run(p, Cut(minutes=60)) for p in runs])  # equal wall clock: a longer run got further
    assert len(within) == 2


def test_runs_cut_at_equal_wall_clock_are_scored_at_their_last_evaluation_within_it(tmp_path):
    fast = fake_run(tmp_path / "fast", "mtsac", 1, [1.0] * 10, seconds_per_step=0.1)  # evaluations at 100, 200, 300 s
    slow = fake_run(tmp_path / "slow", "mtsac", 2, [1.0] * 10, seconds_per_step=0.2)  # at 200, 400, 600 s
    four_minutes = Cut(minutes=4)
    assert load_run(fast, four_minutes).steps == 2000 and load_run(slow, four_minutes).steps == 1000
    assert load_run(fast, four_minutes).final_success() == pytest.approx(0.5)
    assert load_run(fast, four_minutes).minutes() == pytest.approx(200 / 60)  # its clock at that evaluation
    assert load_run(fast, Cut(minutes=5)).steps == 3000  # an evaluation at exactly the limit counts
    assert load_run(fast, Cut(minutes=60)).steps == 3000  # a run that ended earlier is scored at its end
    with pytest.raises(FileNotFoundError, match=r"no evaluation within 3 minutes \(its first came at 3.3 minutes\)"):
        load_run(slow, Cut(minutes=3))
    untimed = fake_run(tmp_path / "untimed", "mtsac", 3, [1.0] * 10, seconds_per_step=None)
    with pytest.raises(FileNotFoundError, match="3 of its 3 evaluations logged no wall clock"):
        load_run(untimed, four_minutes)
    log = evaluations_log(fast)  # an older record without a clock, as a run resumed on newer code has
    records = [json.loads(line) for line in log.read_text().splitlines()]
    del records[0]["wall_seconds"]
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    with pytest.raises(FileNotFoundError, match="1 of its 3 evaluations logged no wall clock"):
        load_run(fast, four_minutes)
    with pytest.raises(ValueError, match="one of the two"):
        Cut(step=1000, minutes=4)
    for minutes in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="positive, finite number of minutes"):
            Cut(minutes=minutes)


def test_evaluate_at_a_step_or_at_minutes_writes_its_own_table_beside_the_final_one(sweep_dir):
    def evaluate(*options: str) -> None:
        done = subprocess.run([sys.executable, "evaluate.py", str(sweep_dir), *options], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]

    evaluate()
    final = (sweep_dir / "results.md").read_text()
    evaluate("--at-step", "2000")
    table = (sweep_dir / "at_step_2000" / "results.md").read_text()
    assert table.startswith("Every run is scored at its evaluation at step 2,000")
    assert "**0.25 +- 0.10**" in table  # mtsac's seeds at half their final scores: 0.1, 0.2, 0.45
    assert json.loads((sweep_dir / "at_step_2000" / "results.json").read_text())["at_step"] == 2000
    assert (sweep_dir / "results.md").read_text() == final and "**0.50 +- 0.21**" in final  # left as it was
    evaluate("--at-minutes", "4")  # every fake run logs 0.1 s per step: its evaluation at step 2,000 again
    timed = (sweep_dir / "at_minutes_4" / "results.md").read_text()
    assert timed.startswith("Every run is scored at its last evaluation within 4 minutes")
    assert "**0.25 +- 0.10**" in timed
    cut = json.loads((sweep_dir / "at_minutes_4" / "results.json").read_text())
    assert cut["at_minutes"] == 4 and cut["at_step"] is None


def test_a_path_that_holds_no_runs_is_a_one_line_error(tmp_path):
    done = subprocess.run([sys.executable, "evaluate.py", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no run directories" in done.stderr


def test_a_reference_that_names_no_row_is_a_one_line_error_and_writes_nothing(sweep_dir, tmp_path):
    out = tmp_path / "table"
    done = subprocess.run([sys.executable, "evaluate.py", str(sweep_dir), "--reference", "mtsca", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "no row is labelled 'mtsca'" in done.stderr and "'mtsac', 'ntkmtl_sr'" in done.stderr
    assert not out.exists()


def test_a_run_whose_config_does_not_load_is_named(tmp_path):
    run = fake_run(tmp_path / "old_s1", "mtsac", 1, [0.0] * 10)
    (run / "config.yaml").write_text((run / "config.yaml").read_text() + "retired_option: 3\n")
    with pytest.raises(ConfigError, match=r"run '.*old_s1': its config.yaml does not load \(unknown config key"):
        load_run(run)
    (run / "config.yaml").write_text("")  # a write cut short
    with pytest.raises(ConfigError, match=r"run '.*old_s1': its config.yaml does not load \(a mapping"):
        load_run(run)
