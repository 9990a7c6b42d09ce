"""Executors: `--executor local` (the default, no Ray) and `--executor ray` give the same
tables; Ray's failed and dead cells are reported while the others are kept."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from pid_bench.cli import main
from pid_bench.executors import RayExecutor, check_address
from pid_bench.runner import resolve_config

TINY = ["--generator", "bits", "--set", "n_train=256", "--set", "n_test=128"]
FAST = ["--epochs", "2", "--batch-size", "64", "--no-mlp", "--quiet"]
FAST += ["--config-set", "probe.pid_clusters=3", "--config-set", "model.d_model=16"]
GRID = ["--learners", "cross", "cross_self", "--seeds", "0", "1", "--interaction", "synergy"]
#: Columns that legitimately differ between two executions of the same run.
VOLATILE = ["run_id", "elapsed_s"]

CRASH = '''
import os
from pathlib import Path

import torch
from pid_bench.learners import Learner

MODE = Path({mode!r})  # "ok", "raise" (an exception) or "exit" (the worker process dies)
TRIES = Path({tries!r})  # one line per attempt


class Crash(Learner):
    """A frozen linear map whose embedding fails as MODE says."""

    name = "crash"
    trainable = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lin = torch.nn.Linear(self.shapes[0][0] + self.shapes[1][0], 8)

    def embed(self, x1, x2):
        mode = MODE.read_text().strip()
        if mode != "ok":
            with open(TRIES, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
        if mode == "raise":
            raise RuntimeError("planted failure")
        if mode == "exit":
            os._exit(3)
        return torch.tanh(self.lin(torch.cat([x1, x2], 1)))
'''


@pytest.fixture
def crash(tmp_path) -> SimpleNamespace:
    """A plug-in learner file, the file that sets how it fails and the one counting tries."""
    mode, tries = tmp_path / "mode.txt", tmp_path / "tries.txt"
    path = tmp_path / "crash.py"
    path.write_text(textwrap.dedent(CRASH.format(mode=str(mode), tries=str(tries))))
    mode.write_text("raise")

    def set_mode(m: str) -> None:
        mode.write_text(m)

    return SimpleNamespace(spec=f"{path}:Crash", set=set_mode, tries=tries)


def _argv(out: Path, *extra: str) -> list[str]:
    return ["run", *TINY, *FAST, *GRID, "--out", str(out), *extra]


def _table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).drop(columns=VOLATILE)


# -- without Ray --------------------------------------------------------------------------


def test_local_run_imports_no_ray(tmp_path):
    """The default executor runs a grid without importing Ray, installed or not."""
    code = textwrap.dedent(
        f"""
        import sys
        from pid_bench.cli import main
        argv = {["run", *TINY, "--epochs", "1", "--no-mlp", "--quiet", "--learners", "random"]!r}
        assert main(argv + ["--out", {str(tmp_path / "run")!r}]) == 0
        assert (sys.modules.get("ray") is None), "ray was imported"
        print("no ray")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "no ray" in proc.stdout
    env = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert env["executions"][-1]["executor"] == "local" and "ray" not in env["executions"][-1]


def test_executor_ray_without_ray_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    out = tmp_path / "run"
    assert main(_argv(out, "--executor", "ray")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert 'needs Ray, which is not installed: pip install "pid-bench[ray]"' in err
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--address", "auto"], "--address apply to --executor ray"),
        (["--retries", "1"], "--retries apply to --executor ray"),
        (["--executor", "ray", "--jobs", "2"], "drop --jobs"),
        (["--executor", "ray", "--address", "nohost"], "is not a Ray address; accepted: auto"),
    ],
)
def test_bad_executor_options(tmp_path, capsys, extra, match):
    assert main(_argv(tmp_path / "run", *extra)) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_addresses():
    assert check_address(None) is None
    for ok in ("auto", "ray://head:10001", "10.0.0.1:6379", "ray://[::1]:10001"):
        assert check_address(ok) == ok
    for bad in ("", "ray://head", "head:port", "http://x/y:1"):
        with pytest.raises(ValueError, match="not a Ray address"):
            check_address(bad)


def _fake_ray_executor(gpus: float, cpus: float = 4) -> RayExecutor:
    ex = object.__new__(RayExecutor)  # no cluster: only what `resources` reads
    ex._need = {}
    total = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
    ex.ray = SimpleNamespace(
        cluster_resources=lambda: total,
        nodes=lambda: [{"Alive": True, "Resources": total, "NodeManagerHostname": "n"}],
    )
    return ex


@pytest.mark.parametrize(
    "device, gpus, want",
    [("auto", 0, 0.0), ("auto", 2, 1.0), ("cpu", 2, 0.0), ("cuda", 1, 1.0)],
)
def test_each_cell_asks_for_its_threads_and_a_gpu_for_cuda(device, gpus, want):
    cfg = resolve_config(
        generator="bits",
        learners=["cross"],
        train_overrides={"threads": 3, "device": device},
        device_here=False,  # the cluster's GPUs, not this machine's
    )
    ex = _fake_ray_executor(gpus)
    assert ex.resources(cfg) == {"num_cpus": 3.0, "num_gpus": want}
    assert ex.device(cfg) == ("cuda" if want else "cpu")
    ex._check_fits(ex.resources(cfg))
    with pytest.raises(ValueError, match="no node of the Ray cluster has the 3 CPUs"):
        _fake_ray_executor(gpus, cpus=2)._check_fits(ex.resources(cfg))


def test_cuda_on_a_cluster_without_gpus_is_refused():
    cfg = resolve_config(
        generator="bits", learners=["cross"], train_overrides={"device": "cuda"}, device_here=False
    )
    with pytest.raises(ValueError, match="--device cuda, but the Ray cluster has no GPU"):
        _fake_ray_executor(0).resources(cfg)


# -- on a local Ray cluster ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def test_ray_grid_matches_local_and_keeps_other_cells(ray_cluster, crash, tmp_path, capsys):
    """2 learners x 2 seeds, 2 epochs, on Ray and locally: the same table; a plug-in whose
    cells raise is reported the same way by both, and a resumed run (on Ray) finishes it."""
    runs = {}
    for name, extra in (("local", []), ("ray", ["--executor", "ray"])):
        out = tmp_path / name
        assert main([*_argv(out, *extra), "--learners", "cross", "cross_self", crash.spec]) == 2
        err = capsys.readouterr().err
        assert "planted failure" in err and "the 4 cells that finished are in" in err
        runs[name] = out
    pd.testing.assert_frame_equal(
        _table(runs["ray"] / "results.csv.partial"), _table(runs["local"] / "results.csv.partial")
    )
    failures = [json.loads((runs[n] / "failures.json").read_text()) for n in ("local", "ray")]
    assert failures[0] == failures[1] and len(failures[0]) == 2  # crash, seeds 0 and 1
    assert "planted failure" in failures[1][0]["error"]
    assert len(crash.tries.read_text().split()) == 4  # an exception is not retried
    # resume both with the plug-in fixed: only its cells run, the tables are the same
    crash.set("ok")
    for name, extra in (("local", []), ("ray", ["--executor", "ray"])):
        cells = {p.name: p.stat().st_mtime_ns for p in (runs[name] / "cells").glob("*.json")}
        assert len(cells) == 4
        assert (
            main([*_argv(runs[name], *extra), "--learners", "cross", "cross_self", crash.spec]) == 0
        )
        after = {p.name: p.stat().st_mtime_ns for p in (runs[name] / "cells").glob("*.json")}
        assert {k: after[k] for k in cells} == cells and len(after) == 6
    ray_table = _table(runs["ray"] / "results.csv")
    pd.testing.assert_frame_equal(ray_table, _table(runs["local"] / "results.csv"))
    assert set(ray_table["learner"]) == {"cross", "cross_self", "crash"}
    assert set(ray_table["seed"]) == {0, 1}
    assert sorted(p.name for p in (runs["ray"] / "logs").iterdir()) == sorted(
        p.name for p in (runs["local"] / "logs").iterdir()
    )
    env = json.loads((runs["ray"] / "environment.json").read_text())
    first, second = env["executions"]
    assert first["executor"] == "ray" and first["jobs"] is None
    assert first["ray"]["version"] == ray_cluster.__version__
    assert first["ray"]["address"] == "the caller's ray.init"
    assert first["ray"]["resources_per_cell"] == {"CPU": 1.0, "GPU": 0.0}
    assert sum(n["resources"]["CPU"] for n in first["ray"]["nodes"]) == 2
    assert sum(first["ray"]["cells_per_node"].values()) == 4  # the cells that finished
    assert sum(second["ray"]["cells_per_node"].values()) == 2


def test_ray_cell_whose_worker_dies_is_retried_then_reported(ray_cluster, crash, tmp_path):
    crash.set("exit")
    out = tmp_path / "run"
    argv = ["run", *TINY, *FAST, "--learners", "cross", crash.spec, "--seeds", "0"]
    argv += ["--interaction", "synergy", "--out", str(out), "--executor", "ray"]
    assert main([*argv, "--retries", "1"]) == 2
    records = json.loads((out / "failures.json").read_text())
    assert [(r["learner"], r["seed"]) for r in records] == [("crash", 0)]
    assert "the Ray worker running cell crash seed 0 synergy died (2 tries)" in records[0]["error"]
    assert len(crash.tries.read_text().split()) == 2  # the first try and one retry
    kept = pd.read_csv(out / "results.csv.partial")
    assert set(kept["learner"]) == {"cross"}


def test_ray_sweep_is_one_grid(ray_cluster, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", *TINY, *FAST, "--learners", "cross", "--seeds", "0"]
    argv += ["--param", "noise", "--values", "0", "0.1", "--out", str(out)]
    assert main([*argv, "--executor", "ray"]) == 0
    execs = [
        json.loads((out / f"noise={v}" / "environment.json").read_text())["executions"][-1]
        for v in ("0", "0.1")
    ]
    # both values' cells went to Ray together: each folder records the grid's two cells
    assert [sum(e["ray"]["cells_per_node"].values()) for e in execs] == [2, 2]
    assert main([*argv]) == 0  # the same sweep locally resumes the finished folders
    assert "noise = 0.1" in capsys.readouterr().out
