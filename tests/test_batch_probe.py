"""The BATCH probe in runs: rows tagged pid_batch, the option, and the report's table."""

from __future__ import annotations

import pytest

from pid_bench.config import PROFILES, ProbeConfig
from pid_bench.report import make_report
from pid_bench.runner import resolve_config, run

pytest.importorskip("torch")


def test_option_is_off_in_quick_and_on_in_paper() -> None:
    assert ProbeConfig().pid_batch is False
    assert PROFILES["quick"].probe.pid_batch is False
    assert PROFILES["paper"].probe.pid_batch is True


def test_run_scores_embeddings_with_batch_and_reports_them(tmp_path) -> None:
    cfg = resolve_config(
        generator="bits",
        generator_params={"n_train": 256, "n_test": 200},
        learners=["cross"],
        seeds=[0],
        interaction="synergy",
        train_overrides={"epochs": 1, "batch_size": 64, "device": "cpu"},
        probe_overrides={"max_train": 200, "mlp": False, "pid_clusters": 4, "pid_batch": True},
    )
    df, path = run(cfg, tmp_path / "run", quiet=True)
    rows = df[df["probe"] == "pid_batch"]
    metrics = set(rows["metric"])
    assert {"redundancy", "unique1", "unique2", "synergy", "mutual_info", "accuracy12"} <= metrics
    assert set(rows["task"]) == {"synergy"} and rows["value"].notna().all()
    clustered = df[df["probe"] == "pid_clustered"]
    assert set(clustered["learner"]) == set(rows["learner"])  # wherever clustered scores
    acc = rows[rows["metric"] == "accuracy12"]["value"]
    assert acc.between(0, 1).all()
    out = tmp_path / "report"
    make_report([path], out)
    text = "\n".join(p.read_text() for p in out.rglob("*.md"))
    assert "BATCH PID of the unimodal embeddings" in text
