"""The worked example (examples/my_learner), as README "Benchmark your own model" runs it.

A learner in a file outside the repository (a copy of the example in a temporary folder) runs
through `--learners path.py:Class`, through the entry point of its installed package, through
`score` of its saved embeddings and through `evaluate`; all four give the same numbers for the
same seed. Then baseline and check: the same numbers pass, a planted regression fails (exit 1).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pid_bench.cli import main
from pid_bench.results import read

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "my_learner"
COLS = ["learner", "seed", "task", "probe", "metric", "epoch", "value"]
# small enough for CPU tests; the probes see every training row (max_train > n_train)
SETTINGS = ["--epochs", "2", "--batch-size", "64", "--no-mlp", "--quiet"]
SETTINGS += ["--config-set", "probe.pid_clusters=4", "--interaction", "all"]


@pytest.fixture(scope="module")
def user(tmp_path_factory) -> dict[str, Path]:
    """The user's folder: a copy of the example, its installed package, a dataset file."""
    root = tmp_path_factory.mktemp("user")
    code = root / "my_learner"
    shutil.copytree(EXAMPLE, code, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = root / "site"
    # A real install of the example package (its dist-info declares the entry point), into a
    # folder of its own so the test environment is left as it was; offline, about a second.
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        + ["--no-build-isolation", "--target", str(site), str(code)],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr
    data = root / "bits.npz"
    gen = ["--generator", "bits", "--set", "n_train=512", "--set", "n_test=256", "--set", "seed=11"]
    assert main(["generate", *gen, "--out", str(data)]) == 0
    return {"root": root, "code": code, "site": site, "data": data}


@pytest.fixture(scope="module")
def plugin_run(user) -> Path:
    """`pid-bench run --learners path/to/my_learner.py:TinyFusion --save-embeddings`."""
    out = user["root"] / "runs" / "path"
    spec = f"{user['code'] / 'my_learner.py'}:TinyFusion"
    argv = ["run", "--data", str(user["data"]), "--learners", spec, *SETTINGS]
    assert main([*argv, "--save-embeddings", "--out", str(out)]) == 0
    return out


def _values(df: pd.DataFrame) -> pd.DataFrame:
    return df[COLS].sort_values(COLS[:-1]).reset_index(drop=True)


def test_four_ways_same_numbers(user, plugin_run, monkeypatch, capsys):
    import pid_bench

    ref = _values(read(plugin_run))
    assert set(ref["learner"]) == {"tiny_fusion"}
    assert set(ref["task"]) == {"redundancy", "unique1", "unique2", "synergy"}
    assert {"linear", "pid_clustered"} <= set(ref["probe"])

    # the entry point of the installed package: listed, and runs under the same name
    monkeypatch.syspath_prepend(str(user["site"]))
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "tiny_fusion" in listed and "pid-bench-example-learner 0.1.0" in listed
    out = user["root"] / "runs" / "entry_point"
    argv = ["run", "--data", str(user["data"]), "--learners", "tiny_fusion", *SETTINGS]
    assert main([*argv, "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(_values(read(out)), ref)

    # score of the embeddings the plug-in run saved
    emb = plugin_run / "embeddings" / "tiny_fusion_seed0.npz"
    argv = ["score", "--data", str(user["data"]), "--embeddings", str(emb)]
    argv += ["--name", "tiny_fusion", "--no-mlp", "--config-set", "probe.pid_clusters=4"]
    assert main([*argv, "--out", str(user["root"] / "runs" / "score")]) == 0
    pd.testing.assert_frame_equal(_values(read(user["root"] / "runs" / "score")), ref)

    # evaluate with the class, as a notebook would import it
    from my_learner import TinyFusion

    df = pid_bench.evaluate(
        TinyFusion,
        data=user["data"],
        epochs=2,
        batch_size=64,
        mlp=False,
        settings={"probe.pid_clusters": "4"},
        quiet=True,
    )
    pd.testing.assert_frame_equal(_values(df), ref)


def test_baseline_check_and_planted_regression(user, plugin_run, capsys):
    root = user["root"]
    assert main(["report", str(plugin_run), "--out", str(root / "report")]) == 0
    assert (root / "report" / "summary.md").is_file()
    base = root / "baseline.json"
    assert main(["baseline", str(plugin_run), "--out", str(base)]) == 0
    spec = f"{user['code'] / 'my_learner.py'}:TinyFusion"
    again = ["run", "--data", str(user["data"]), "--learners", spec, *SETTINGS]
    assert main([*again, "--out", str(root / "runs" / "again")]) == 0
    capsys.readouterr()
    assert main(["check", str(root / "runs" / "again"), "--baseline", str(base)]) == 0
    assert "PASS: all 4 checks" in capsys.readouterr().out
    # planted regression: the probes read the concatenation of the unimodal embeddings
    planted = [*again, "--learner-set", "tiny_fusion.fused=false"]
    assert main([*planted, "--out", str(root / "runs" / "planted")]) == 0
    capsys.readouterr()
    assert main(["check", str(root / "runs" / "planted"), "--baseline", str(base)]) == 1
    text = capsys.readouterr().out
    fail = [ln for ln in text.splitlines() if ln.endswith("FAIL")]
    assert len(fail) == 1 and fail[0].startswith("tiny_fusion  synergy"), text


def test_own_training_code_then_score_and_evaluate(user, monkeypatch, capsys):
    """examples/my_learner/train_and_save.py trains with its own loop and saves embeddings;
    `score` of that file and `evaluate` of the same model's embed give the same numbers."""
    import pid_bench

    monkeypatch.syspath_prepend(str(user["code"]))
    import train_and_save

    mine = user["root"] / "mine.npz"
    train_and_save.main(["--data", str(user["data"]), "--out", str(mine), "--epochs", "1"])
    assert "fingerprint" in capsys.readouterr().out
    argv = ["score", "--data", str(user["data"]), "--embeddings", str(mine), "--name", "mymodel"]
    argv += ["--no-mlp", "--config-set", "probe.pid_clusters=4"]
    assert main([*argv, "--out", str(user["root"] / "runs" / "mine")]) == 0
    scored = _values(read(user["root"] / "runs" / "mine"))

    data = train_and_save.load(str(user["data"]))
    model = train_and_save.train(data, epochs=1)  # the same seed: the same model

    def embed(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return model.embed(torch.as_tensor(x1), torch.as_tensor(x2)).numpy()

    def unimodal(x1: np.ndarray, x2: np.ndarray):
        import torch

        with torch.no_grad():
            return [
                z.numpy() for z in model.embed_unimodal(torch.as_tensor(x1), torch.as_tensor(x2))
            ]

    folder = user["root"] / "runs" / "evaluated"
    df = pid_bench.evaluate(
        embed,
        data=user["data"],
        name="mymodel",
        embed_unimodal=unimodal,
        mlp=False,
        settings={"probe.pid_clusters": "4"},
        out=folder,
        quiet=True,
    )
    got = _values(df)
    assert got[COLS[:-1]].equals(scored[COLS[:-1]])
    # float32 rows embedded in other batches may differ in the last bit on some BLAS builds
    np.testing.assert_allclose(got["value"], scored["value"], rtol=0, atol=1e-6)
    pd.testing.assert_frame_equal(_values(read(folder)), got)  # out= writes a run folder
    # a trained Learner instance is probed through its own embed and embed_unimodal
    inst = pid_bench.evaluate(
        model, data=user["data"], name="mymodel", mlp=False, settings={"probe.pid_clusters": "4"}
    )
    np.testing.assert_allclose(_values(inst)["value"], scored["value"], rtol=0, atol=1e-6)
