"""The printed summary: roles marked, std only with several seeds, the MLP probe, the pointer."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from pid_bench.cli import main
from pid_bench.discrimination import learner_roles
from pid_bench.results import read_runs
from pid_bench.summary import GROUP_HEADINGS, format_summary, report_pointer

EVERY = ("comm", "cross", "cross_self", "factorcl", "shared_private", "supervised", "random")
EVERY += ("random_fusion",)


@pytest.fixture
def table(tmp_path: Path, write_fixture_run) -> Callable[..., pd.DataFrame]:
    """`table(**kw)`: the results of a fixture run (`write_fixture_run(..., **kw)`)."""
    return lambda **kw: read_runs([write_fixture_run(tmp_path / "run", **kw)])


def _block(text: str, title: str) -> list[str]:
    """The lines of the block headed `title` (up to the next block or the reference line)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].startswith(("MLP probe", "chance"))),
        len(lines),
    )
    return lines[start:end]


def _row(block: list[str], learner: str) -> str:
    return next(line for line in block if line.split()[0] == learner)


def _mean_std(df: pd.DataFrame, learner: str, task: str, probe: str) -> tuple[float, float]:
    sel = df[
        (df["learner"] == learner)
        & (df["task"] == task)
        & (df["probe"] == probe)
        & (df["metric"] == "balanced_accuracy")
    ]
    per_seed = sel.groupby("seed")["value"].mean()
    return per_seed.mean(), per_seed.std()


def test_roles_come_from_the_classes() -> None:
    roles = learner_roles([*EVERY, "comm_unimodal", "not_a_learner"])
    assert roles == {
        "shared_private": "labels",
        "supervised": "labels",
        "random": "floor",
        "random_fusion": "floor",
    }


def test_three_seeds_groups_std_and_mlp(table, tmp_path: Path) -> None:
    df = table(learners=EVERY, seeds=(0, 1, 2))
    text = format_summary(df, EVERY)
    lines = text.splitlines()
    assert lines[0].startswith("mean +- std over 3 seeds (0 1 2)")
    assert all(len(line) <= 120 for line in lines), max(lines, key=len)

    lin = _block(text, "linear probe")
    names = [line.split()[0] for line in lin[2:] if not line.startswith("--")]
    # self-supervised learners first, then the label-trained ones, then the floors, each group
    # under the line that says what it is
    assert names == [*EVERY[:4], "shared_private", "supervised", "random", "random_fusion"]
    labels_at = lin.index(GROUP_HEADINGS["labels"])
    floors_at = lin.index(GROUP_HEADINGS["floor"])
    assert lin.index(_row(lin, "factorcl")) < labels_at < lin.index(_row(lin, "supervised"))
    assert labels_at < lin.index(_row(lin, "shared_private")) < floors_at
    assert floors_at < lin.index(_row(lin, "random")) < lin.index(_row(lin, "random_fusion"))
    assert "ceilings" in GROUP_HEADINGS["labels"] and "floors" in GROUP_HEADINGS["floor"]

    m, sd = _mean_std(df, "comm", "synergy", "linear")
    assert f"{m:.3f}+-{sd:.3f}" in _row(lin, "comm")
    mlp = _block(text, "MLP probe")
    assert mlp[0].split()[2:] == ["redundancy", "unique1", "unique2", "synergy"]
    m, sd = _mean_std(df, "comm", "synergy", "mlp")
    assert f"{m:.3f}+-{sd:.3f}" in _row(mlp, "comm")
    assert GROUP_HEADINGS["labels"] in mlp and GROUP_HEADINGS["floor"] in mlp
    assert lines[-1] == "chance 0.250 and true atom 2.00 bits on every task"


def test_one_seed_has_no_std(table, tmp_path: Path) -> None:
    df = table(learners=("comm", "supervised"), seeds=(4,))
    text = format_summary(df, ("comm", "supervised"))
    assert text.splitlines()[0].startswith("1 seed (4), so no std")
    assert "+-" not in text
    m, _ = _mean_std(df, "comm", "redundancy", "mlp")
    assert f"{m:.3f} " in _row(_block(text, "MLP probe"), "comm")


def test_seed_counts_that_differ_are_shown_per_learner(table, tmp_path: Path) -> None:
    df = table(learners=("comm", "cross"), seeds=(0, 1, 2))
    df = df[~((df["learner"] == "comm") & (df["seed"] == 2))]
    text = format_summary(df, ("comm", "cross"))
    assert "n per learner after its name" in text.splitlines()[0]
    lin = _block(text, "linear probe")
    assert _row(lin, "comm").startswith("comm (n=2)")
    assert _row(lin, "cross").startswith("cross (n=3)")


def test_without_mlp_probe_says_so(table, tmp_path: Path) -> None:
    df = table(learners=("cross",), seeds=(0,), probes=("linear",))
    text = format_summary(df, ("cross",))
    assert "MLP probe: not run" in text and "--no-mlp" in text
    assert "linear probe" in text


def test_plugin_roles_from_class_attributes(table, tmp_path: Path) -> None:
    """A plug-in trained on labels is marked as a ceiling by its `supervised` attribute; a
    frozen plug-in (a pretrained model) is not a floor for being frozen."""
    src = tmp_path / "plugs.py"
    src.write_text(
        textwrap.dedent(
            """
            import torch
            from pid_bench.learners import Learner

            class MySupervised(Learner):
                name = "my_sup"
                supervised = True

                def loss(self, x1, x2, y, idx, generator):
                    raise NotImplementedError

                def embed(self, x1, x2):
                    return torch.cat([x1, x2], 1)

            class MyFrozen(Learner):
                name = "my_frozen"
                trainable = False

                def embed(self, x1, x2):
                    return torch.cat([x1, x2], 1)
            """
        )
    )
    plugins = {"my_sup": f"{src}:MySupervised", "my_frozen": f"{src}:MyFrozen"}
    assert learner_roles(["my_sup", "my_frozen"], plugins) == {"my_sup": "labels"}
    df = table(learners=("my_frozen", "my_sup"), seeds=(0,))
    lin = _block(format_summary(df, ("my_sup", "my_frozen"), plugins=plugins), "linear probe")
    assert lin.index(_row(lin, "my_frozen")) < lin.index(GROUP_HEADINGS["labels"])
    assert lin.index(GROUP_HEADINGS["labels"]) < lin.index(_row(lin, "my_sup"))
    assert GROUP_HEADINGS["floor"] not in lin


def test_report_pointer_quotes_the_path(tmp_path: Path) -> None:
    run = tmp_path / "my run"
    line = report_pointer(run)
    assert line.startswith("figures and full tables: pid-bench report ")
    assert f"'{run}' --out '{run / 'report'}'" in line


@pytest.mark.filterwarnings("ignore")
def test_run_prints_summary_then_pointer(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r"
    argv = ["run", "--generator", "bits", "--learners", "cross", "supervised", "--epochs", "1"]
    argv += ["--set", "n_train=200", "--set", "n_test=100", "--quiet", "--out", str(out)]
    argv += ["--config-set", "probe.mlp_max_iter=20", "--config-set", "probe.pid_clusters=3"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "1 seed (0), so no std" in text and "MLP probe" in text
    assert GROUP_HEADINGS["labels"] in text
    assert text.strip().splitlines()[-1] == report_pointer(out)
