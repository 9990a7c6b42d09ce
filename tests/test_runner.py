"""`pid-bench run`: schema of the results table, determinism, errors."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

from pid_bench.results import COLUMNS, read
from pid_bench.runner import plan_cells, resolve_config, run
from pid_bench.summary import format_summary

TINY = {"n_train": 256, "n_test": 128}


def _cfg(**kw):
    base = dict(
        generator="bits",
        generator_params=TINY,
        learners=["comm", "cross", "supervised"],
        seeds=[0],
        interaction="all",
        train_overrides={"epochs": 2, "batch_size": 64, "device": "cpu"},
        probe_overrides={"max_train": 200, "mlp_max_iter": 20, "pid_clusters": 4},
    )
    base.update(kw)
    return resolve_config(**base)


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    df, path = run(_cfg(), out / "a", quiet=True)
    return df, path


def test_run_writes_schema(two_epoch_run):
    df, path = two_epoch_run
    assert list(df.columns) == list(COLUMNS)
    back = read(path)
    assert len(back) == len(df)
    assert set(df["task"]) == {"redundancy", "unique1", "unique2", "synergy"}
    assert set(df["learner"]) == {"comm", "cross", "supervised"}
    assert {"linear", "mlp", "pid_clustered"} <= set(df["probe"])
    # the clustered PID says how many samples each occupied cell of its joint had
    spc = df[(df["probe"] == "pid_clustered") & (df["metric"] == "samples_per_cell")]
    assert len(spc) == 4 * spc["learner"].nunique() and (spc["value"] > 0).all()
    lin = df[(df["probe"] == "linear") & (df["metric"] == "balanced_accuracy")]
    assert lin["value"].between(0, 1).all()
    assert df["value"].notna().all()
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["train"]["epochs"] == 2 and cfg["generator"] == "bits"
    env = json.loads((path / "environment.json").read_text())
    assert "torch" in env["versions"] and env["git_sha"]
    assert (path / "logs").is_dir() and any((path / "logs").iterdir())
    assert not (path / "results.csv.partial").exists()
    # true atoms come from the generator's exact PID: H(Y) = 2 bits per task at the default bits=2
    assert df["true_bits"].round(6).eq(2.0).all()


def test_same_seed_same_table(two_epoch_run, tmp_path):
    df, _ = two_epoch_run
    df2, _ = run(_cfg(), tmp_path / "b", quiet=True)
    cols = ["learner", "seed", "task", "probe", "metric", "epoch", "value"]
    pd.testing.assert_frame_equal(df[cols], df2[cols])


def test_summary_mentions_every_learner(two_epoch_run):
    df, _ = two_epoch_run
    text = format_summary(df, ("comm", "cross", "supervised"))
    for name in ("comm", "cross", "supervised", "synergy", "chance"):
        assert name in text


def test_cells_supervised_per_task():
    cfg = _cfg(learners=["comm", "supervised"], seeds=[0, 1])
    cells = plan_cells(cfg)
    # per seed: one model for the tasks sharing `train`, one on the synergy pretraining split
    assert sum(c.learner == "comm" for c in cells) == 4
    assert sorted(c.train_task for c in cells if c.learner == "comm" and c.seed == 0) == [
        "",
        "synergy",
    ]
    assert sum(c.learner == "supervised" for c in cells) == 8  # one per task per seed


def test_learning_curve_rows(tmp_path):
    cfg = _cfg(
        learners=["cross"],
        interaction="synergy",
        train_overrides={"epochs": 2, "batch_size": 64, "device": "cpu", "probe_every": 1},
    )
    df, _ = run(cfg, tmp_path / "c", quiet=True)
    assert sorted(df[df["probe"] == "linear"]["epoch"].unique()) == [1, 2]


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"learners": ["nope"]}, "unknown learner 'nope'; available"),
        ({"generator": "nope"}, "unknown generator 'nope'"),
        ({"interaction": "nope"}, "unknown interaction 'nope'"),
        ({"profile": "nope"}, "unknown profile 'nope'"),
        ({"generator_params": {"wrong": 1}}, "unknown parameter"),
        ({"seeds": []}, "at least one seed"),
        ({"learners": ["comm", "comm"]}, "listed twice"),
        ({"train_overrides": {"epochs": -1}}, "epochs: must be at least 0, got -1"),
    ],
)
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        _cfg(**kw)


def test_refuses_to_overwrite_another_config(two_epoch_run):
    _, path = two_epoch_run
    with pytest.raises(ValueError, match=r"another config \(learners: .*; re-run with its"):
        run(_cfg(learners=["comm"]), path, quiet=True)
    # the same config is the same run: nothing to do, the same table
    df, _ = two_epoch_run
    again, _ = run(_cfg(), path, quiet=True)
    pd.testing.assert_frame_equal(again, df)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"seeds": [-1]}, "seeds: must be at least 0, got -1"),
        ({"seeds": [0, 0]}, "seeds: must be distinct integers >= 0, got 0 0"),
        ({"train_overrides": {"threads": 0}}, "threads: must be at least 1, got 0"),
    ],
)
def test_bad_seeds_and_threads(kw, match):
    with pytest.raises(ValueError, match=match):
        _cfg(**kw)


def test_out_that_cannot_be_a_run_folder(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file; give a folder"):
        run(_cfg(), a_file, quiet=True)
    with pytest.raises(ValueError, match="cannot write the run folder .*file.txt/run"):
        run(_cfg(), a_file / "run", quiet=True)
    with pytest.raises(ValueError, match="jobs: must be at least 1, got 0"):
        run(_cfg(), tmp_path / "r", jobs=0, quiet=True)


def test_learner_set_overrides_hyperparameter(tmp_path):
    cfg = _cfg(
        learners=["comm"], interaction="synergy", learner_params={"comm": {"fused_term": "false"}}
    )
    assert cfg.learner_params == {"comm": {"fused_term": False}}
    df, path = run(cfg, tmp_path / "ls", quiet=True)
    assert json.loads((path / "config.json").read_text())["learner_params"] == {
        "comm": {"fused_term": False}
    }
    with pytest.raises(ValueError, match="no hyperparameter 'nope'; accepted: fused_term"):
        _cfg(learners=["comm"], learner_params={"comm": {"nope": "1"}})
    with pytest.raises(ValueError, match="takes a bool"):
        _cfg(learners=["comm"], learner_params={"comm": {"fused_term": "maybe"}})
    with pytest.raises(ValueError, match="not in this run"):
        _cfg(learners=["comm"], learner_params={"cross": {"x": "1"}})


IMAGE_FAST = ["comm", "factorcl", "shared_private"]  # fusion, critics, supervised + ULGM


@pytest.mark.parametrize(
    "learners", [IMAGE_FAST, pytest.param(None, marks=pytest.mark.slow, id="all-learners")]
)
def test_image_modalities(tmp_path, learners):
    """Learners train on Trifeature images; the synergy task gets its own biased
    pretraining split for self-supervised learners."""
    from pid_bench.learners import LEARNERS

    learners = learners or sorted(LEARNERS)
    cfg = resolve_config(
        generator="trifeature",
        generator_params={"n_train": 96, "n_test": 64, "size": 32},
        learners=learners,
        seeds=[0],
        interaction="all",
        train_overrides={"epochs": 1, "batch_size": 32, "device": "cpu"},
        probe_overrides={"max_train": 96, "mlp": False, "pid_clusters": 3},
    )
    cells = plan_cells(cfg)
    comm_cells = [c for c in cells if c.learner == "comm"]
    assert [c.train_task for c in comm_cells] == ["", "synergy"]
    df, _ = run(cfg, tmp_path / "img", quiet=True)
    assert set(df["learner"]) == set(learners)
    assert set(df["task"]) == {"redundancy", "unique1", "unique2", "synergy"}
    assert df["value"].notna().all()


def test_settings_reach_the_config_and_config_json(tmp_path):
    cfg = _cfg(
        learners=["cross"],
        settings={"model.d_model": "16", "aug.image.crop_scale": "0.5,1"},
    )
    assert cfg.model.d_model == 16 and cfg.aug.image.crop_scale == (0.5, 1.0)
    # explicit settings win over flags, which win over the profile
    cfg = _cfg(train_overrides={"epochs": 3}, settings={"train.epochs": "4"})
    assert cfg.train.epochs == 4
    _, path = run(
        _cfg(learners=["cross"], settings={"model.d_model": "16"}), tmp_path / "s", quiet=True
    )
    written = json.loads((path / "config.json").read_text())
    assert written["model"]["d_model"] == 16
    assert written["aug"]["image"]["crop_scale"] == [0.08, 1.0]
    with pytest.raises(ValueError, match="ModelConfig has no field"):
        _cfg(settings={"model.nope": "1"})


def test_profile_settings_apply_per_generator():
    from pid_bench.config import PROFILES

    prof = PROFILES["quick"]
    tri = resolve_config(generator="trifeature", profile="quick", learners=["cross"])
    bits = resolve_config(generator="bits", profile="quick", learners=["cross"])
    # the profile's aug with `views` resolved for the generator (bits draws no views)
    assert bits.train == prof.train and bits.aug == replace(prof.aug, views="tensor")
    assert tri.train.batch_size == 128 and tri.aug.image.crop_scale == (0.3, 1.0)
    assert tri.train.epochs == prof.train.epochs
    # an explicit flag still wins over the profile's per-generator setting
    tri = resolve_config(
        generator="trifeature", learners=["cross"], train_overrides={"batch_size": 32}
    )
    assert tri.train.batch_size == 32


def test_report_flags_small_sample_clustered_pid(two_epoch_run, tmp_path):
    """128 test rows over up to 4 x 4 x 4 cells: the clustered PID table says the plug-in
    atoms rest on few samples per cell."""
    from pid_bench.report import make_report

    _, path = two_epoch_run
    make_report([path], tmp_path / "rep", formats=("png",))
    text = (tmp_path / "rep" / "summary.md").read_text()
    assert "samples/cell" in text and "(few)" in text
    assert "plug-in atoms are biased upward" in text
