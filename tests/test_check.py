"""Regression checks: baselines, pass/fail decisions and input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from generators.base import TASKS
from pid_bench import check as chk
from pid_bench.check import (
    CheckInputError,
    check,
    check_runs,
    load_baseline,
    make_baseline,
    write_baseline,
)
from pid_bench.results import CAPTURE_METRICS, read_runs

LEARNERS = ("cross", "comm", "supervised")


@pytest.fixture(scope="module")
def base_run(write_fixture_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fixture_run(tmp_path_factory.mktemp("base") / "run", learners=LEARNERS)


@pytest.fixture(scope="module")
def base_df(base_run: Path) -> pd.DataFrame:
    return read_runs([base_run])


@pytest.fixture(scope="module")
def baseline(base_df: pd.DataFrame) -> dict:
    return make_baseline(base_df)


def _shift(df: pd.DataFrame, learner: str, task: str, amount: float) -> pd.DataFrame:
    df = df.copy()
    rows = (
        (df.learner == learner)
        & (df.task == task)
        & (df.probe == "linear")
        & (df.metric == "balanced_accuracy")
    )
    df.loc[rows, "value"] += amount
    return df


def test_identical_results_pass(base_df: pd.DataFrame, baseline: dict) -> None:
    report = check(base_df, baseline)
    assert report.passed and report.exit_code == chk.EXIT_PASS
    assert len(report.rows) == len(LEARNERS) * len(TASKS)
    assert {(r.learner, r.task) for r in report.rows} == {(a, b) for a in LEARNERS for b in TASKS}
    assert all(r.status == "PASS" and abs(r.delta) < 1e-5 for r in report.rows)
    assert report.verdict().startswith("PASS")


def test_planted_drop_fails_and_shows_in_table(
    write_fixture_run, tmp_path: Path, baseline: dict
) -> None:
    run = write_fixture_run(tmp_path / "run", learners=LEARNERS, drop={"comm": {"synergy": 0.2}})
    report = check(read_runs([run]), baseline)
    assert not report.passed and report.exit_code == chk.EXIT_REGRESSION
    failed = [(r.learner, r.task) for r in report.failures]
    assert failed == [("comm", "synergy")]
    row = report.failures[0]
    assert row.delta == pytest.approx(-0.2, abs=1e-3) and row.allowed == 0.05
    table = report.format_table()
    line = next(ln for ln in table.splitlines() if ln.startswith("comm") and "synergy" in ln)
    assert "-0.200" in line and line.rstrip().endswith("FAIL")
    assert "FAIL: 1 of 12 checks regressed: comm/synergy" in table
    assert "**FAIL**" in report.format_markdown()


def test_gains_pass_and_boundary(base_df: pd.DataFrame, baseline: dict) -> None:
    assert check(_shift(base_df, "comm", "synergy", +0.3), baseline).passed
    assert check(_shift(base_df, "comm", "synergy", -0.05), baseline, tolerance=0.05).passed
    assert not check(_shift(base_df, "comm", "synergy", -0.06), baseline, tolerance=0.05).passed
    assert check(_shift(base_df, "comm", "synergy", -0.06), baseline, tolerance=0.1).passed


def test_sigma_widens_allowed_drop(base_df: pd.DataFrame, baseline: dict) -> None:
    dropped = _shift(base_df, "comm", "synergy", -0.1)
    assert not check(dropped, baseline, sigma=0.0).passed
    report = check(dropped, baseline, sigma=100.0)
    row = next(r for r in report.rows if (r.learner, r.task) == ("comm", "synergy"))
    assert row.allowed == pytest.approx(max(0.05, 100.0 * row.baseline_std))
    assert report.passed


def test_other_metrics(base_df: pd.DataFrame, baseline: dict) -> None:
    report = check(base_df, baseline, metrics=("mi_bits", "capture"))
    assert report.passed and {r.metric for r in report.rows} == {"mi_bits", "capture"}
    with pytest.raises(CheckInputError, match="cannot check metric"):
        check(base_df, baseline, metrics=("chance",))


def test_non_finite_current_value_fails(base_df: pd.DataFrame, baseline: dict) -> None:
    df = base_df.copy()
    rows = (df.learner == "cross") & (df.task == "redundancy") & (df.seed == 0)
    df.loc[rows & (df.metric == "balanced_accuracy") & (df.probe == "linear"), "value"] = float(
        "nan"
    )
    report = check(df, baseline)
    assert [(r.learner, r.task) for r in report.failures] == [("cross", "redundancy")]
    assert any("non-finite" in n for n in report.notes)


# --- mismatches raise CheckInputError ------------------------------------------------------


def test_missing_learner_is_input_error(write_fixture_run, tmp_path: Path, baseline: dict) -> None:
    run = write_fixture_run(tmp_path / "run", learners=("comm", "cross"))
    with pytest.raises(CheckInputError, match=r"learner\(s\) supervised are missing"):
        check(read_runs([run]), baseline)


def test_missing_task_is_input_error(write_fixture_run, tmp_path: Path, baseline: dict) -> None:
    run = write_fixture_run(tmp_path / "run", learners=LEARNERS, tasks=TASKS[:3])
    with pytest.raises(CheckInputError, match=r"comm/synergy.*cross/synergy"):
        check(read_runs([run]), baseline)


def test_other_generator_is_input_error(write_fixture_run, tmp_path: Path, baseline: dict) -> None:
    run = write_fixture_run(tmp_path / "run", learners=LEARNERS, generator="gaussian")
    with pytest.raises(CheckInputError, match="generator 'bits' but the run used 'gaussian'"):
        check(read_runs([run]), baseline)


def test_no_overlap_is_input_error(write_fixture_run, tmp_path: Path, baseline: dict) -> None:
    run = write_fixture_run(tmp_path / "run", learners=("random",))
    with pytest.raises(CheckInputError, match="no overlapping rows"):
        check(read_runs([run]), baseline)


def test_sweep_results_are_input_error(write_fixture_run, tmp_path: Path) -> None:
    run = write_fixture_run(tmp_path / "run", learners=("comm",), sweep=("noise", [0.1, 0.2]))
    with pytest.raises(CheckInputError, match="sweep"):
        make_baseline(read_runs([run]))


def test_extra_learners_are_noted_not_checked(
    write_fixture_run, tmp_path: Path, baseline: dict
) -> None:
    run = write_fixture_run(tmp_path / "run", learners=(*LEARNERS, "random"), seeds=(0, 1))
    report = check(read_runs([run]), baseline)
    assert "random" not in {r.learner for r in report.rows}
    assert any("learner(s) random" in n for n in report.notes)
    assert any("seeds differ" in n for n in report.notes)


def test_input_error_is_value_error() -> None:
    assert issubclass(CheckInputError, ValueError)


# --- baselines ----------------------------------------------------------------------------


def test_baseline_contents(base_df: pd.DataFrame, baseline: dict) -> None:
    assert baseline["format"] == chk.BASELINE_FORMAT and baseline["generator"] == "bits"
    assert baseline["seeds"] == [0, 1, 2] and baseline["git_sha"] == "0123abc"
    assert baseline["generator_params"]["noise"] == 0.1
    cell = baseline["results"]["comm"]["synergy"]["linear"]
    assert set(cell) == set(CAPTURE_METRICS)
    values = base_df[
        (base_df.learner == "comm")
        & (base_df.task == "synergy")
        & (base_df.probe == "linear")
        & (base_df.metric == "balanced_accuracy")
    ]["value"]
    assert cell["balanced_accuracy"]["mean"] == pytest.approx(values.mean(), abs=1e-6)
    assert cell["balanced_accuracy"]["std"] == pytest.approx(values.std(), abs=1e-6)
    assert cell["balanced_accuracy"]["n"] == 3
    assert "pid_clustered" not in baseline["results"]["comm"]["synergy"]  # not capture metrics


def test_baseline_uses_final_epoch_only(write_fixture_run, tmp_path: Path) -> None:
    run = write_fixture_run(tmp_path / "run", learners=("comm",), seeds=(0, 1), epochs=(0, 5, 10))
    df = read_runs([run])
    base = make_baseline(df)
    final = df[(df.epoch == 10) & (df.task == "unique1") & (df.probe == "linear")]
    expected = final[final.metric == "capture"]["value"].mean()
    assert base["results"]["comm"]["unique1"]["linear"]["capture"]["mean"] == pytest.approx(
        expected, abs=1e-6
    )
    assert base["final_epoch"] == {"comm": 10}


def test_baseline_json_round_trip_is_stable(
    tmp_path: Path, base_df: pd.DataFrame, baseline: dict
) -> None:
    path = write_baseline(base_df, tmp_path / "sub" / "baseline.json")
    text = path.read_text()
    assert load_baseline(path) == json.loads(json.dumps(baseline))
    assert write_baseline(base_df, tmp_path / "again.json").read_text() == text
    keys = list(json.loads(text))
    assert keys == sorted(keys)
    assert check(base_df, load_baseline(path)).passed


def test_load_baseline_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckInputError, match="no baseline file"):
        load_baseline(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CheckInputError, match="invalid JSON"):
        load_baseline(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"results": {}}))
    with pytest.raises(CheckInputError, match="not a pid-bench baseline"):
        load_baseline(other)
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps({"format": chk.BASELINE_FORMAT, "version": 1, "results": {"comm": 3}})
    )
    with pytest.raises(CheckInputError, match="must be a JSON object"):
        load_baseline(broken)


@pytest.mark.parametrize(
    "field, value, shown",
    [
        ("mean", float("nan"), "mean is nan"),
        ("mean", float("inf"), "mean is inf"),
        ("std", -0.1, "std is -0.1"),
        ("std", float("nan"), "std is nan"),
        ("n", 0, "n is 0"),
        ("n", 1.5, "n is 1.5"),
    ],
)
def test_baseline_figures_that_cannot_be_compared_are_refused(
    field, value, shown, tmp_path: Path, base_run: Path, base_df: pd.DataFrame, capsys
) -> None:
    """A NaN mean used to fail as a regression and a negative std to widen nothing: refused
    on loading, one line naming the file and the field (issue 29, item 5)."""
    from pid_bench.cli import main

    path = write_baseline(base_df, tmp_path / "baseline.json")
    data = json.loads(path.read_text())
    data["results"]["comm"]["redundancy"]["linear"]["balanced_accuracy"][field] = value
    path.write_text(json.dumps(data))  # json writes NaN and Infinity, and reads them back
    where = f"{path}: results/comm/redundancy/linear/balanced_accuracy: {shown}; a baseline"
    with pytest.raises(CheckInputError) as e:
        load_baseline(path)
    assert str(e.value).startswith(where), str(e.value)
    assert main(["check", str(base_run), "--baseline", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"pid-bench check: error: {e.value}" and len(err.splitlines()) == 1


def test_check_runs_entry_point(tmp_path: Path, base_run: Path, base_df: pd.DataFrame) -> None:
    path = chk.baseline_from_runs([base_run], tmp_path / "baseline.json")
    assert check_runs([base_run], path).exit_code == chk.EXIT_PASS
    with pytest.raises(CheckInputError, match="no results table"):
        check_runs([tmp_path / "nowhere"], path)
    with pytest.raises(CheckInputError, match="no baseline file"):
        check_runs([base_run], tmp_path / "nope.json")


# --- floor checks: a learner must stay above its untrained architecture -------------------


@pytest.fixture(scope="module")
def floor_df(write_fixture_run, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    run = write_fixture_run(
        tmp_path_factory.mktemp("floor") / "run", learners=("comm", "random_fusion", "cross")
    )
    return read_runs([run])


def _floor_rows(report) -> list:
    return [r for r in report.rows if " > " in r.learner]


def test_floor_rows_only_where_the_baseline_is_above_the_floor(floor_df: pd.DataFrame) -> None:
    report = check(floor_df, make_baseline(floor_df))
    assert report.passed
    rows = _floor_rows(report)
    # comm is 0.45 of the synergy atom above random_fusion in the fixture, and within the
    # tolerance of it on the other tasks: one floor row, for synergy
    assert [(r.learner, r.task) for r in rows] == [("comm > random_fusion", "synergy")]
    assert rows[0].baseline > 0.3 and rows[0].current == pytest.approx(rows[0].baseline)
    assert "untrained architecture" in report.format_table()


def test_falling_back_to_the_untrained_architecture_fails(floor_df: pd.DataFrame) -> None:
    baseline = make_baseline(floor_df)
    gap = _floor_rows(check(floor_df, baseline))[0].baseline
    # comm's synergy drops to the floor's level plus 0.03: more than the tolerance below the
    # baseline, and also a floor failure
    fallen = _shift(floor_df, "comm", "synergy", -(gap - 0.03))
    report = check(fallen, baseline, tolerance=0.05)
    assert {(r.learner, r.task) for r in report.failures} == {
        ("comm", "synergy"),
        ("comm > random_fusion", "synergy"),
    }
    assert report.exit_code == chk.EXIT_REGRESSION
    # a drop the tolerance allows still fails when it leaves comm at its floor's level: here
    # the tolerance is wide, but the floor margin is 0.05
    report = check(fallen, baseline, tolerance=gap, floor_margin=0.05)
    assert [(r.learner, r.task) for r in report.failures] == [("comm > random_fusion", "synergy")]
    assert "comm > random_fusion/synergy" in report.verdict()
    # and the floor rising to comm's level fails the same way
    risen = _shift(floor_df, "random_fusion", "synergy", gap - 0.03)
    report = check(risen, baseline, tolerance=0.05)
    assert [(r.learner, r.task) for r in report.failures] == [("comm > random_fusion", "synergy")]
    # comm a little below its baseline but still well above the floor passes
    assert check(_shift(floor_df, "comm", "synergy", -0.04), baseline).passed


def test_bad_floor_margin_is_input_error(floor_df: pd.DataFrame) -> None:
    with pytest.raises(CheckInputError, match="floor margin"):
        check(floor_df, make_baseline(floor_df), floor_margin=-1.0)


def test_untrained_floor_of_a_plugin_learner(tmp_path: Path) -> None:
    src = tmp_path / "mine.py"
    src.write_text(
        "from pid_bench.learners.comm import CoMM\n\n"
        "class Mine(CoMM):\n"
        "    name = 'mine'\n"
        "    untrained_floor = 'random_fusion'\n"
    )
    floors = chk.untrained_floors(["comm", "cross", "mine", "scored"], {"mine": f"{src}:Mine"})
    # built-ins from the registry, the plug-in from its recorded source; a name that is no
    # learner (scored embeddings) has no floor
    assert floors == {"comm": "random_fusion", "mine": "random_fusion"}
