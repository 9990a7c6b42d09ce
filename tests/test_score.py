"""`pid-bench score`: embeddings computed elsewhere, the dataset fingerprint, and every bad
input as one line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import generators
from pid_bench.cli import main

GEN = ["--generator", "bits", "--set", "n_train=200", "--set", "n_test=100", "--set", "seed=5"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "bits.npz"
    assert main(["generate", *GEN, "--out", str(path)]) == 0
    return path


def _features(ds, split: str) -> np.ndarray:
    """A representation every task reads linearly: the labels, one-hot (16 columns)."""
    s = getattr(ds, split)
    return np.concatenate([np.eye(4)[s.labels[t]] for t in ds.tasks], 1)


def _good(ds) -> dict[str, np.ndarray]:
    return {
        "fingerprint": np.array(generators.fingerprint(ds)),
        "z_train": _features(ds, "train"),
        "z_test": _features(ds, "test"),
    }


def test_generate_records_the_fingerprint(data, tmp_path, capsys):
    ds = generators.load_npz(data)
    with np.load(data) as f:
        meta = json.loads(str(f["meta"]))
    assert meta["fingerprint"] == generators.fingerprint(ds) and len(meta["fingerprint"]) == 16
    # other generator settings, other fingerprint; the same settings, the same one
    other = generators.make("bits", n_train=200, n_test=100, seed=6)
    same = generators.make("bits", n_train=200, n_test=100, seed=5)
    assert generators.fingerprint(other) != meta["fingerprint"]
    assert generators.fingerprint(same) == meta["fingerprint"]
    # a dataset file changed after it was written is refused on load
    with np.load(data) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["test_x1"] = arrays["test_x1"] + 1.0
    tampered = tmp_path / "tampered.npz"
    np.savez(tampered, **arrays)
    with pytest.raises(ValueError, match="do not match the fingerprint .* recorded"):
        generators.load_npz(tampered)


def test_score_writes_an_ordinary_run_folder(data, tmp_path, capsys):
    ds = generators.load_npz(data)
    emb = tmp_path / "mine.npz"
    z1, z2 = ds.test.latents["s1"] * 1.0, ds.test.latents["s2"] * 1.0  # the synergy bits
    np.savez(emb, **_good(ds), z1_test=z1, z2_test=z2, epoch=np.array(7))
    out = tmp_path / "run"
    argv = ["score", "--data", str(data), "--embeddings", str(emb), "--name", "mymodel"]
    assert main([*argv, "--no-mlp", "--out", str(out)]) == 0
    assert "mymodel" in capsys.readouterr().out
    for f in ("results.csv", "config.json", "environment.json", "true_pid.json"):
        assert (out / f).is_file(), f
    from pid_bench.results import read

    df = read(out)
    assert set(df["learner"]) == {"mymodel"} and set(df["epoch"]) == {7}
    assert set(df["task"]) == {"redundancy", "unique1", "unique2", "synergy"}
    acc = df[(df["probe"] == "linear") & (df["metric"] == "balanced_accuracy")]
    assert (acc["value"] > 0.9).all()  # the one-hot latents read every task
    assert "pid_clustered" in set(df["probe"])  # unimodal embeddings were given
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["embeddings"] == str(emb) and cfg["train"] is None
    assert cfg["data_fingerprint"] == generators.fingerprint(ds)
    # report, baseline and check take it like any run folder
    base = tmp_path / "base.json"
    assert main(["baseline", str(out), "--out", str(base)]) == 0
    assert main(["check", str(out), "--baseline", str(base)]) == 0
    # per-task entries replace the shared ones for their task
    shuffled = {**_good(ds), "z_train_synergy": np.random.default_rng(0).normal(size=(200, 3))}
    shuffled["z_test_synergy"] = np.random.default_rng(1).normal(size=(100, 3))
    np.savez(emb, **shuffled)
    assert main([*argv, "--no-mlp", "--out", str(tmp_path / "r2")]) == 0
    df2 = read(tmp_path / "r2")
    acc2 = df2[(df2["probe"] == "linear") & (df2["metric"] == "balanced_accuracy")]
    assert acc2.set_index("task")["value"]["synergy"] < 0.6  # noise reads no synergy
    assert acc2.set_index("task")["value"]["redundancy"] > 0.9


def _bad(ds, other_fp: str) -> list[tuple[str, dict, str]]:
    good = _good(ds)
    return [
        ("no fingerprint", {k: v for k, v in good.items() if k != "fingerprint"},
         "has no 'fingerprint' entry"),
        ("other data", {**good, "fingerprint": np.array(other_fp)},
         f"was computed on other data: its fingerprint {other_fp} is not the one of"),
        ("rows", {**good, "z_train": good["z_train"][:-1]},
         "z_train has 199 rows but the train split of"),
        ("test rows", {**good, "z_test": np.vstack([good["z_test"]] * 2)},
         "z_test has 200 rows but the test split of"),
        ("nan", {**good, "z_test": np.where(np.eye(100, 16) > 0, np.nan, good["z_test"])},
         "z_test holds 16 NaN or inf values"),
        ("1-d", {**good, "z_train": good["z_train"][:, 0]},
         "z_train must be a 2-D array (rows, dims), got shape (200,)"),
        ("text", {**good, "z_test": good["z_test"].astype(str)}, "z_test has dtype <U"),
        ("columns", {**good, "z_test": good["z_test"][:, :3]},
         "z_train has 16 columns but z_test has 3"),
        ("typo", {**good, "z_tset": good["z_test"]}, "unknown entries ['z_tset']; accepted"),
        ("missing", {k: v for k, v in good.items() if k != "z_test"},
         "has z_train but no z_test (or z_test_redundancy) for task 'redundancy'"),
        ("none", {"fingerprint": good["fingerprint"]},
         "has no embeddings for task 'redundancy': expected z_train and z_test"),
        ("one unimodal", {**good, "z1_test": good["z_test"]},
         "has z1_test but no z2_test: give both unimodal embeddings or none"),
        ("epoch", {**good, "epoch": np.array(1.5)}, "'epoch' must be one integer >= 0"),
    ]  # fmt: skip


def test_bad_embeddings_are_one_line_exit_2(data, tmp_path, capsys):
    ds = generators.load_npz(data)
    other_fp = generators.fingerprint(generators.make("bits", n_train=200, n_test=100, seed=6))
    for label, entries, match in _bad(ds, other_fp):
        emb = tmp_path / f"{label.replace(' ', '_')}.npz"
        np.savez(emb, **entries)
        out = tmp_path / f"out_{emb.stem}"
        argv = ["score", "--data", str(data), "--embeddings", str(emb), "--name", "m"]
        assert main([*argv, "--out", str(out)]) == 2, label
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, (label, err)
        assert err.startswith("pid-bench score: error: ") and match in err, (label, err)
        assert not out.exists(), label  # nothing written for bad input


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--embeddings", "{emb}", "--data", "/nonexistent.npz"], "no such dataset file"),
        (["--embeddings", "/nonexistent.npz", "--data", "{data}"], "no such embeddings file"),
        (["--embeddings", "{data}", "--data", "{emb}"], "not a pid-bench dataset"),
        (["--embeddings", "{emb}", "--data", "{data}", "--name", "my model"], "--name 'my model'"),
        # a name becomes file names and table keys: one line, refused rather than stripped
        (["--embeddings", "{emb}", "--data", "{data}", "--name", "m\n"],
         "--name 'm\\n' must be one line starting with a letter or _ and holding only letters"),
        (["--embeddings", "{emb}", "--data", "{data}", "--name", "m\x1b[31m"], "--name 'm\\x1b"),
        (["--embeddings", "{emb}", "--data", "{data}", "--name", " m"], "--name ' m' must be"),
        (["--embeddings", "{emb}", "--data", "{data}", "--config-set", "train.epochs=3"],
         "score trains nothing: --config-set takes probe.FIELD=VALUE only"),
        (["--embeddings", "{npy}", "--data", "{data}"], "not an .npz file but a .npy file"),
    ],
)  # fmt: skip
def test_bad_score_arguments(argv, match, data, tmp_path, capsys):
    emb = tmp_path / "e.npz"
    np.savez(emb, **_good(generators.load_npz(data)))
    npy = tmp_path / "e.npy"
    np.save(npy, np.zeros((3, 2)))
    argv = [a.format(emb=emb, data=data, npy=npy) for a in argv]
    if "--name" not in argv:
        argv += ["--name", "m"]
    assert main(["score", *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_run_data_flag_conflicts_with_set(data, tmp_path, capsys):
    argv = ["run", "--data", str(data), "--set", "noise=0.3", "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    assert "--data takes the generator and its parameters from the dataset file" in (
        capsys.readouterr().err
    )


def test_score_probes_run_at_one_blas_thread(data, tmp_path, monkeypatch):
    """As a run's cells: unlimited BLAS threads made `score` 100x slower on a loaded machine."""
    import pid_bench.score as score_mod

    seen: list[int] = []
    real = score_mod.threadpool_limits

    def recording(limits=None, **kw):
        seen.append(limits)
        return real(limits=limits, **kw)

    monkeypatch.setattr(score_mod, "threadpool_limits", recording)
    ds = generators.load_npz(data)
    emb = tmp_path / "mine.npz"
    np.savez(emb, **_good(ds))
    argv = ["score", "--data", str(data), "--embeddings", str(emb), "--name", "m", "--no-mlp"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    assert seen == [1]
