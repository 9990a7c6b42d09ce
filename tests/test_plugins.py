"""Plug-in learners: loading by path, module and entry point; every bad plug-in is one clear
line with exit 2; a learner that fails loses only its own cells."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pid_bench.cli import main

TINY = ["--set", "n_train=160", "--set", "n_test=96"]
FAST = ["--epochs", "1", "--batch-size", "32", "--no-mlp", "--quiet"]
FAST += ["--config-set", "probe.pid_clusters=3", "--config-set", "model.d_model=16"]

PLUGINS = '''
import torch
from pid_bench.learners import Learner


class Good(Learner):
    """A frozen linear map of both modalities."""

    name = "good_plugin"
    trainable = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lin = torch.nn.Linear(self.shapes[0][0] + self.shapes[1][0], 8)

    def embed(self, x1, x2):
        return torch.tanh(self.lin(torch.cat([x1, x2], 1)))


class LossRaises(Good):
    name = "loss_raises"
    trainable = True

    def loss(self, x1, x2, y, idx, generator):
        return 1 / 0


class EmbedRaises(Good):
    name = "embed_raises"

    def embed(self, x1, x2):
        raise KeyError("no such feature")


class EmbedWrongShape(Good):
    name = "wrong_shape"

    def embed(self, x1, x2):
        return super().embed(x1, x2)[:, 0]


class EmbedNaN(Good):
    name = "nan_embed"

    def embed(self, x1, x2):
        return super().embed(x1, x2) * float("nan")


class InitRaises(Good):
    name = "init_raises"

    def __init__(self, *args, **kwargs):
        raise ValueError("needs images")


class NoEmbed(Learner):
    trainable = False


class Clash(Good):
    name = "comm"


class Unnamed(Good):
    name = None


class NewlineName(Good):
    name = "nl_plugin\\n"


class TabName(Good):
    name = "tab\\tplugin"


def not_a_learner():
    return 1
'''


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory) -> Path:
    """A Python file outside the repository holding plug-ins, good and broken."""
    path = tmp_path_factory.mktemp("user_code") / "plugs.py"
    path.write_text(textwrap.dedent(PLUGINS))
    return path


def _run(argv: list[str], out: Path) -> int:
    return main(["run", *argv, *TINY, *FAST, "--interaction", "redundancy", "--out", str(out)])


@pytest.mark.parametrize(
    "spec, match",
    [
        ("nosuch_pkg.models:MyLearner", "no module named 'nosuch_pkg'; install it"),
        ("/nonexistent/dir/model.py:MyLearner", "no such file: /nonexistent/dir/model.py"),
        ("{plugs}:Missing", "has no attribute 'Missing' (Learner subclasses in it: Clash, "),
        ("{plugs}:not_a_learner", "is a function, not a subclass of pid_bench.learners.Learner"),
        ("{plugs}:NoEmbed", "does not implement embed"),
        ("{plugs}:Clash", "is named 'comm', the name of a built-in learner"),
        ("{broken}:Anything", "importing broken.py failed: SyntaxError"),
        ("no_such_learner", "unknown learner 'no_such_learner'; available: comm, "),
        ("{plugs}:", "expected module.path:Class or path/to/file.py:Class"),
        # names become file names and table keys: single-line identifiers only
        ("{plugs}:NewlineName", "name 'nl_plugin\\n' must be one line starting with a letter"),
        ("{plugs}:TabName", "name 'tab\\tplugin' must be one line"),
    ],
)
def test_bad_plugin_is_one_line_exit_2(spec, match, plugin_file, tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("class Oops(:\n")
    spec = spec.format(plugs=plugin_file, broken=broken)
    assert _run(["--learners", "random", spec], tmp_path / "r") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("pid-bench run: error: ") and match in err, err
    assert repr(spec) in err or "no_such_learner" in err  # the line names the learner
    assert not (tmp_path / "r").exists()  # rejected before anything ran


def test_same_name_twice_and_learner_set_of_other_learner(plugin_file, tmp_path, capsys):
    good = f"{plugin_file}:Good"
    copy = tmp_path / "copy.py"
    copy.write_text(plugin_file.read_text())
    assert _run(["--learners", good, f"{copy}:Good"], tmp_path / "a") == 2
    assert "learners listed twice: good_plugin (from " in capsys.readouterr().err
    argv = ["--learners", good, "--learner-set", "tiny.fused=false"]
    assert _run(argv, tmp_path / "b") == 2
    assert "names learner 'tiny', which is not in this run (learners: good_plugin)" in (
        capsys.readouterr().err
    )


def test_failing_learners_lose_only_their_cells(plugin_file, tmp_path, capsys):
    """Exit 2 with one line naming the learner and the problem; the cells that finished are
    kept in results.csv.partial (never results.csv), failures.json says what failed."""
    specs = [
        f"{plugin_file}:{c}"
        for c in ("LossRaises", "EmbedRaises", "EmbedWrongShape", "EmbedNaN", "InitRaises")
    ]
    out = tmp_path / "run"
    assert _run(["--learners", "random", *specs], out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(
        "pid-bench run: error: learner 'loss_raises' failed in loss: "
        "ZeroDivisionError: division by zero (seed 0, tasks redundancy)"
    )
    assert "(and 4 more failed cells)" in err and "results.csv.partial" in err
    assert not (out / "results.csv").exists()
    import pandas as pd

    kept = pd.read_csv(out / "results.csv.partial")
    assert set(kept["learner"]) == {"random"} and kept["value"].notna().all()
    errors = {f["learner"]: f["error"] for f in json.loads((out / "failures.json").read_text())}
    assert set(errors) == {"loss_raises", "embed_raises", "wrong_shape", "nan_embed", "init_raises"}
    assert "failed in embed: KeyError: 'no such feature'" in errors["embed_raises"]
    # the probes embed the 160 training rows first
    assert "embed returned shape (160,) for 160 pairs; expected (160, D)" in errors["wrong_shape"]
    assert "embed returned 1280 NaN or inf values" in errors["nan_embed"]
    assert "failed in __init__: ValueError: needs images" in errors["init_raises"]


def test_plugin_by_path_and_by_module_file_results_and_config(plugin_file, tmp_path, monkeypatch):
    """`path.py:Class` and `module:Class` load the same plug-in; its name files the results and
    config.json/environment.json record where it came from."""
    from pid_bench.results import read

    assert _run(["--learners", f"{plugin_file}:Good"], tmp_path / "p") == 0
    monkeypatch.syspath_prepend(str(plugin_file.parent))
    assert _run(["--learners", "plugs:Good"], tmp_path / "m") == 0
    a, b = read(tmp_path / "p"), read(tmp_path / "m")
    assert set(a["learner"]) == {"good_plugin"}
    cols = ["learner", "seed", "task", "probe", "metric", "epoch", "value"]
    assert a[cols].equals(b[cols])
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["learners"] == ["good_plugin"] and cfg["plugins"] == {"good_plugin": "plugs:Good"}
    env = json.loads((tmp_path / "p" / "environment.json").read_text())
    assert env["plugins"]["good_plugin"]["file"] == str(plugin_file.resolve())


def test_plugin_names(plugin_file):
    from pid_bench.learners.plugins import resolve

    # no name of its own: the class name (not the name inherited from its parent)
    assert resolve(f"{plugin_file}:Unnamed")[0] == "Unnamed"
    name, cls, source = resolve("pid_bench.learners.reference:RandomEncoders")
    assert (name, source) == ("random", "")  # a built-in by module path is the built-in


def test_broken_entry_point_is_one_line(tmp_path, monkeypatch, capsys):
    """An installed entry point whose module does not import names itself and the problem."""
    site = tmp_path / "site"
    info = site / "broken_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pid_bench.learners]\nbroken = no_such_mod:Model\n")
    monkeypatch.syspath_prepend(str(site))
    assert main(["list"]) == 0
    assert "broken" in capsys.readouterr().out  # listed, with why it cannot be used
    assert _run(["--learners", "broken"], tmp_path / "r") == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "pid-bench run: error: learner 'broken' (entry point 'no_such_mod:Model' of "
        "broken-plugin 1.0): cannot be imported: ModuleNotFoundError: No module named "
        "'no_such_mod'"
    )


def test_evaluate_raises_run_failed_with_the_finished_cells(plugin_file):
    import pid_bench
    from pid_bench.runner import RunFailed

    with pytest.raises(RunFailed, match="learner 'loss_raises' failed in loss: ZeroDivision") as e:
        pid_bench.evaluate(
            f"{plugin_file}:LossRaises",
            interaction="redundancy",
            generator_params={"n_train": 160, "n_test": 96},
            epochs=1,
            batch_size=32,
            mlp=False,
            quiet=True,
        )
    assert e.value.results is None  # its only cell failed
    assert [f["learner"] for f in e.value.failures] == ["loss_raises"]


def test_evaluate_rejects_what_it_cannot_score():
    import pid_bench

    with pytest.raises(ValueError, match="give evaluate\\(..., name=...\\) for an embedding"):
        pid_bench.evaluate(lambda x1, x2: x1, interaction="redundancy")
    with pytest.raises(ValueError, match="evaluate takes a Learner subclass or instance"):
        pid_bench.evaluate(42)
    with pytest.raises(ValueError, match="not a subclass of pid_bench.learners.Learner"):
        pid_bench.evaluate(dict)
    with pytest.raises(ValueError, match=r"name 'emb\\n' must be one line starting"):
        pid_bench.evaluate(lambda x1, x2: x1, name="emb\n", interaction="redundancy")


@pytest.mark.slow
def test_plugin_in_parallel_workers(plugin_file, tmp_path):
    """`--jobs 2` workers (spawned processes) import the plug-in again from config's source
    and give the numbers of a serial run."""
    from pid_bench.results import read

    spec = ["--learners", "random", f"{plugin_file}:Good", "--seeds", "0", "1"]
    assert _run(spec, tmp_path / "serial") == 0
    assert _run([*spec, "--jobs", "2"], tmp_path / "parallel") == 0
    cols = ["learner", "seed", "task", "probe", "metric", "epoch", "value"]
    a, b = read(tmp_path / "serial")[cols], read(tmp_path / "parallel")[cols]
    assert set(a["learner"]) == {"random", "good_plugin"}
    pd_sorted = [x.sort_values(cols[:-1]).reset_index(drop=True) for x in (a, b)]
    assert pd_sorted[0].equals(pd_sorted[1])
