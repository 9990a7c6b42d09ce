"""The floor/ceiling summary: each learner between the task's floor and ceiling, and the
checks on the floor and ceiling themselves."""

from __future__ import annotations

import pytest

from pid_bench.discrimination import floor_ceiling
from pid_bench.report import make_report
from pid_bench.results import read

LEARNERS = ("comm", "cross", "supervised", "random", "random_fusion")


def _acc(fc, learner, task, versus="random"):
    rows = fc.learners
    row = rows[(rows.learner == learner) & (rows.task == task) & (rows.versus == versus)]
    return row.iloc[0]


def test_positions_are_measured_between_floor_and_ceiling(write_fixture_run, tmp_path) -> None:
    df = read(write_fixture_run(tmp_path / "r", learners=LEARNERS) / "results.csv")
    fc = floor_ceiling(df, {"comm": "random_fusion"}, LEARNERS)
    t = fc.tasks.set_index("task")
    assert list(t.index) == ["redundancy", "unique1", "unique2", "synergy"]
    for task in t.index:
        lo, hi = t.at[task, "floor"], t.at[task, "ceiling"]
        assert lo < hi
        row = _acc(fc, "comm", task)
        assert row["position"] == pytest.approx((row["acc"] - lo) / (hi - lo))
    # CoMM is also read against its own untrained architecture; cross is not
    assert set(fc.learners[fc.learners.learner == "comm"].versus) == {"random", "random_fusion"}
    assert set(fc.learners[fc.learners.learner == "cross"].versus) == {"random"}
    # the fixture's ceiling is far above its floor and above every learner
    assert not [n for n in fc.notes if "ceiling" in n]
    text = fc.format()
    assert "comm vs random_fusion" in text and "ceiling" in text


def test_a_ceiling_below_a_learner_it_bounds_is_reported(write_fixture_run, tmp_path) -> None:
    run = write_fixture_run(
        tmp_path / "r", learners=LEARNERS, drop={"supervised": {"synergy": 0.5}}
    )
    fc = floor_ceiling(read(run / "results.csv"), {}, LEARNERS)
    assert any("synergy: comm" in n and "above the ceiling" in n for n in fc.notes)
    assert any("above the ceiling" in n for n in fc.format().splitlines())


def test_a_ceiling_the_mlp_probe_reads_below_a_learner_is_reported(
    write_fixture_run, tmp_path
) -> None:
    """A supervised learner that learnt part of a label (one bit of a two-bit XOR: 0.5) while
    another learner's frozen embeddings hold all of it (the MLP probe reads 1.0) is no ceiling,
    even where the linear probe reads every other learner below it."""
    df = read(write_fixture_run(tmp_path / "r", learners=LEARNERS) / "results.csv")
    assert not [n for n in floor_ceiling(df, {}, LEARNERS).notes if "MLP probe" in n]
    acc = (df["metric"] == "balanced_accuracy") & (df["task"] == "synergy")
    mlp = acc & (df["probe"] == "mlp")
    df.loc[mlp & (df["learner"] == "supervised"), "value"] = 0.5
    df.loc[mlp & (df["learner"] == "cross"), "value"] = 1.0
    notes = floor_ceiling(df, {}, LEARNERS).notes
    assert any(
        n.startswith("synergy: with the MLP probe ")
        and "cross 1.000" in n
        and "read above the ceiling (supervised 0.500)" in n
        for n in notes
    ), notes
    # the linear probe's check is unchanged: no learner reads above the linear ceiling here
    assert not [n for n in notes if "reads above the ceiling" in n]


def test_a_task_that_does_not_discriminate_is_reported(write_fixture_run, tmp_path) -> None:
    # the floor raised to the ceiling on redundancy: every learner reads the same there
    run = write_fixture_run(
        tmp_path / "r", learners=LEARNERS, drop={"supervised": {"redundancy": 0.55}}
    )
    fc = floor_ceiling(read(run / "results.csv"), {}, LEARNERS)
    assert any(n.startswith("redundancy: ceiling - floor") for n in fc.notes)
    # positions in a range that narrow are not numbers
    assert (
        _acc(fc, "cross", "redundancy")["position"] != _acc(fc, "cross", "redundancy")["position"]
    )


def test_a_floor_far_above_chance_is_reported(write_fixture_run, tmp_path) -> None:
    run = write_fixture_run(tmp_path / "r", learners=LEARNERS, drop={"random": {"unique1": -0.3}})
    fc = floor_ceiling(read(run / "results.csv"), {}, LEARNERS)
    assert any(n.startswith("unique1: the floor (random") for n in fc.notes)


def test_a_run_without_floor_or_ceiling_says_so(write_fixture_run, tmp_path) -> None:
    run = write_fixture_run(tmp_path / "r", learners=("comm", "cross"))
    fc = floor_ceiling(read(run / "results.csv"))
    assert fc.tasks.empty
    assert "add random supervised to --learners" in fc.format()


def test_the_report_shows_the_floor_and_ceiling(write_fixture_run, tmp_path) -> None:
    run = write_fixture_run(tmp_path / "r", learners=LEARNERS)
    make_report([run], tmp_path / "out", formats=("png",))
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "Floor and ceiling" in md
    assert "comm vs random_fusion" in md
