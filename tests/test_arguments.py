"""The Python API checks its arguments as the command line checks its flags, with the same
words (`pid_bench.arguments`): issue 29, item 2. Every bad call here is refused before
anything trains."""

from __future__ import annotations

import numpy as np
import pytest

import pid_bench
from pid_bench.cli import main
from pid_bench.runner import resolve_config, run, run_in_memory


@pytest.mark.parametrize(
    "kw, error, message",
    [
        (
            {"seeds": 0},
            TypeError,
            "seeds: expected a list of integers >= 0 (e.g. [0, 1, 2]), got 0",
        ),
        # a string would be taken character by character: seeds 1 and 2
        ({"seeds": "12"}, TypeError, "seeds: expected a list of integers >= 0"),
        ({"seeds": [0.5]}, TypeError, "seeds: expected an integer, got 0.5"),
        ({"seeds": [True]}, TypeError, "seeds: expected an integer, got True"),
        ({"seeds": [-1]}, ValueError, "seeds: must be at least 0, got -1"),
        ({"seeds": [1, 1]}, ValueError, "seeds: must be distinct integers >= 0, got 1 1"),
        ({"seeds": []}, ValueError, "seeds: at least one seed is needed"),
        ({"epochs": 1.5}, TypeError, "epochs: expected an integer, got 1.5"),
        ({"epochs": 0}, ValueError, "epochs: must be at least 1, got 0"),
        ({"batch_size": 1}, ValueError, "batch_size: must be at least 2, got 1"),
        ({"lr": float("nan")}, ValueError, "lr: must be a positive finite number, got nan"),
        ({"lr": "0.1"}, TypeError, "lr: expected a number, got '0.1'"),
        ({"device": "gpu"}, ValueError, "device: expected one of auto, cpu, cuda, got 'gpu'"),
        ({"mlp": "no"}, TypeError, "mlp: expected True or False, got 'no'"),
        ({"quiet": 1}, TypeError, "quiet: expected True or False, got 1"),
        ({"interaction": ["all"]}, TypeError, "interaction: expected a name (str), got ['all']"),
        ({"generator_params": "n_train=9"}, TypeError, "generator_params: expected a dict"),
        ({"settings": ["probe.mlp=false"]}, TypeError, "settings: expected a dict"),
        ({"out": 3}, TypeError, "out: expected a path (str or pathlib.Path), got 3"),
    ],
)
def test_evaluate_refuses_what_the_cli_refuses(kw, error, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error) as e:
        pid_bench.evaluate("cross", **kw)
    assert str(e.value).startswith(message), str(e.value)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


@pytest.mark.parametrize(
    "flag, text, kw",
    [
        ("--epochs", "0", {"epochs": 0}),
        ("--batch-size", "1", {"batch_size": 1}),
        ("--lr", "nan", {"lr": float("nan")}),
        ("--lr", "-1", {"lr": -1}),
        ("--seeds", "-1", {"seeds": [-1]}),
    ],
)
def test_cli_and_api_say_the_same(flag, text, kw, capsys):
    """One check behind both: the CLI's line is "argument --FLAG: " + the API's message."""
    with pytest.raises(ValueError) as e:
        pid_bench.evaluate("cross", **kw)
    api = str(e.value)
    with pytest.raises(SystemExit):
        main(["run", flag, text])
    cli = capsys.readouterr().err.strip()
    _, _, core = api.partition(": ")
    assert f"argument {flag}: {core} (see" in cli, (api, cli)


def test_seeds_as_a_numpy_array_and_a_range_are_lists():
    cfg = resolve_config(learners=["cross"], seeds=np.arange(2))
    assert cfg.seeds == (0, 1) and all(type(s) is int for s in cfg.seeds)
    assert resolve_config(learners=["cross"], seeds=range(3)).seeds == (0, 1, 2)


def test_resolve_config_checks_training_overrides():
    """`resolve_config` (what `run` users call) checks types as the flags do; a config may
    train 0 epochs (a model trained elsewhere), which `--epochs` and `evaluate` refuse."""
    with pytest.raises(TypeError, match="epochs: expected an integer, got 1.5"):
        resolve_config(learners=["cross"], train_overrides={"epochs": 1.5})
    with pytest.raises(ValueError, match="lr: must be a positive finite number, got inf"):
        resolve_config(learners=["cross"], train_overrides={"lr": float("inf")})
    assert resolve_config(learners=["cross"], train_overrides={"epochs": 0}).train.epochs == 0


def test_run_and_run_in_memory_check_their_arguments(tmp_path):
    cfg = resolve_config(learners=["cross"], generator="bits")
    with pytest.raises(TypeError, match="cfg: expected a RunConfig .* got dict"):
        run({"learners": ["cross"]}, tmp_path / "a")
    with pytest.raises(TypeError, match="jobs: expected an integer, got 1.5"):
        run(cfg, tmp_path / "a", jobs=1.5)
    with pytest.raises(TypeError, match="force: expected True or False, got 'yes'"):
        run(cfg, tmp_path / "a", force="yes")
    with pytest.raises(TypeError, match="out: expected a path"):
        run(cfg, 7)
    with pytest.raises(TypeError, match="quiet: expected True or False, got 0"):
        run_in_memory(cfg, quiet=0)
    assert list(tmp_path.iterdir()) == []


# --- sizes and counts that cannot give a measurement (issue 29, item 4) ----------------------


@pytest.mark.parametrize(
    "extra, match",
    [
        # one test row: balanced accuracy 0.000 was reported as a result
        (
            ["--set", "n_test=1"],
            "the test split (1 rows) has 0 rows of class 0 of task 'synergy'; its probes need "
            "at least 1 test row of each of its 4 classes (so n_test >= 4,",
        ),
        (["--set", "n_test=3"], "need at least 1 test row of each of its 4 classes"),
        (
            ["--threads", "9999"],
            "threads: 9999 is more than the ",
        ),
    ],
)
def test_run_refuses_sizes_that_measure_nothing(extra, match, tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["run", "--generator", "bits", "--learners", "random", "--set", "n_train=200"]
    assert main([*argv, *extra, "--epochs", "1", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pid-bench run: error: ") and match in err, err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_threads_beyond_the_cpus_refused_for_the_local_executor(monkeypatch, tmp_path):
    """The local executor's limit is this machine's CPUs (os.cpu_count()), for `run`,
    `run_in_memory` and `evaluate` alike; up to it is accepted."""
    import os

    from pid_bench.executors import LocalExecutor

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    cfg = resolve_config(learners=["random"], generator="bits", train_overrides={"threads": 3})
    msg = (
        "threads: 3 is more than the 2 CPUs of this machine (os.cpu_count()); the local "
        "executor accepts 1 to 2 threads per cell"
    )
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        run_in_memory(cfg)
    with pytest.raises(ValueError, match="threads: 3 is more than the 2 CPUs"):
        run(cfg, tmp_path / "r", quiet=True)
    with pytest.raises(ValueError, match="threads: 3 is more than the 2 CPUs"):
        pid_bench.evaluate("random", generator="bits", settings={"train.threads": 3})
    LocalExecutor(1).check(resolve_config(learners=["random"], train_overrides={"threads": 2}))
    assert not (tmp_path / "r").exists()


def test_run_in_memory_refuses_a_test_split_missing_a_class():
    cfg = resolve_config(learners=["random"], generator="bits", generator_params={"n_test": 2})
    with pytest.raises(ValueError, match="need at least 1 test row of each of its 4 classes"):
        run_in_memory(cfg)


def test_a_later_seeds_test_split_missing_a_class_is_refused_naming_the_seed(tmp_path, capsys):
    """The first seed's dataset is checked before the run starts, every other seed's in its
    cell: at n_test=6, seed 0's synergy test rows hold all 4 classes, seed 1's miss class 3."""
    out = tmp_path / "r"
    argv = ["run", "--generator", "bits", "--learners", "random", "--interaction", "synergy"]
    argv += ["--seeds", "0", "1", "--set", "n_train=40", "--set", "n_test=6", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pid-bench run: error: seed 1: the test split (6 rows) has 0 rows of "
                          "class 3 of task 'synergy'"), err  # fmt: skip
    assert len(err.splitlines()) == 1 and not (out / "results.csv").exists()


def test_probe_training_rows_missing_a_class_are_refused(tmp_path, capsys):
    """A probe fitted without a class never predicts it: 3 rows cannot hold 4 classes."""
    out = tmp_path / "r"
    argv = ["run", "--generator", "bits", "--learners", "random", "--interaction", "synergy"]
    argv += ["--seeds", "0", "--set", "n_train=400", "--config-set", "probe.max_train=3"]
    assert main([*argv, "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "the probes' 3 training rows have no row of class" in err, err
    assert "a probe must see every class" in err and len(err.splitlines()) == 1
    # enough rows: the same run measures
    ok = ["--seeds", "0", "--set", "n_train=400", "--config-set", "probe.max_train=200"]
    argv2 = ["run", "--generator", "bits", "--learners", "random", "--interaction", "synergy"]
    assert main([*argv2, *ok, "--quiet", "--out", str(tmp_path / "ok")]) == 0
