"""The results table as the report reads it: loading, checking, and grouping rows.

Final results are the rows at the largest epoch of each (run_id, learner, seed, task); means
and spreads are over seeds (std, ddof=1); uniqueness averages unique1 and unique2 per seed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from generators.base import ALL_TASKS
from pid_bench import plotstyle
from pid_bench.check import run_plugins
from pid_bench.discrimination import learner_roles
from pid_bench.results import read_runs

#: Interactions as the figures group tasks: uniqueness averages unique1 and unique2 (and
#: unique3) per seed; with three modalities the three pairwise synergies average into one
#: interaction and the triple synergy is its own.
INTERACTIONS: tuple[str, ...] = (
    "redundancy",
    "uniqueness",
    "synergy",
    "pairwise synergy",
    "triple synergy",
)
TASK_INTERACTION: dict[str, str] = {
    "redundancy": "redundancy",
    "unique1": "uniqueness",
    "unique2": "uniqueness",
    "unique3": "uniqueness",
    "synergy": "synergy",
    "synergy12": "pairwise synergy",
    "synergy13": "pairwise synergy",
    "synergy23": "pairwise synergy",
    "synergy123": "triple synergy",
}
ATOM_SYMBOL: dict[str, str] = {
    "redundancy": "R",
    "unique1": "U1",
    "unique2": "U2",
    "unique3": "U3",
    "synergy": "S",
    "synergy12": "S12",
    "synergy13": "S13",
    "synergy23": "S23",
    "synergy123": "S123",
}

ACC_LABEL = "balanced accuracy (linear probe)"
CAPTURE_LABEL = "capture (bits / true bits)"
#: The probe the figures are drawn from.
REPORT_PROBE = "linear"


def load_report_table(run_dirs: Sequence[str | Path]) -> tuple[pd.DataFrame, list[str]]:
    """The concatenated results of `run_dirs`, checked for the report, and notes about it.

    Rows with a non-finite value are left out and listed in the notes rather than drawn as
    gaps without explanation.
    """
    df = read_runs(run_dirs, with_source=True)
    no_linear = [
        src for src, part in df.groupby("source", sort=False) if (part["probe"] != "linear").all()
    ]
    if no_linear:
        found = sorted(df.loc[df["source"].isin(no_linear), "probe"].unique())
        if len(no_linear) == df["source"].nunique():
            raise ValueError(
                f"no linear-probe rows in {', '.join(no_linear)} (probes found: "
                f"{', '.join(found)}); the report is drawn from the linear probe"
            )
        raise ValueError(
            f"run folder(s) {', '.join(no_linear)} have no linear-probe rows (probes found: "
            f"{', '.join(found)}), so their learners would be missing from every figure; "
            "report them separately or re-run them with the linear probe"
        )
    notes: list[str] = []
    bad = ~np.isfinite(df["value"].to_numpy(dtype=float))
    if bad.any():
        cells = df.loc[bad, ["learner", "task", "probe", "metric"]].drop_duplicates()
        shown = "; ".join("/".join(map(str, r)) for r in cells.head(8).itertuples(index=False))
        more = f" and {len(cells) - 8} more" if len(cells) > 8 else ""
        notes.append(
            f"{int(bad.sum())} row(s) with a non-finite value were left out "
            f"(learner/task/probe/metric: {shown}{more})."
        )
        df = df[~bad]
    return df.reset_index(drop=True), notes


def report_roles(df: pd.DataFrame) -> dict[str, str]:
    """learner -> "labels" (trained on the task labels: a ceiling) or "floor" (a frozen
    untrained encoder), from the learners' classes (`discrimination.learner_roles`); plug-ins
    are loaded from where the runs' configs say they came from."""
    return learner_roles(plotstyle.learner_order(df["learner"].unique()), run_plugins(df))


def interaction(task: str) -> str:
    """The interaction a task measures (uniqueness for unique1-3, pairwise synergy for
    synergy12/13/23)."""
    return TASK_INTERACTION.get(task, task)


def task_order(tasks: Sequence[str]) -> list[str]:
    """`tasks` in `ALL_TASKS` order (two modalities' tasks, then three's), then any others
    sorted."""
    present = set(tasks)
    return [t for t in ALL_TASKS if t in present] + sorted(present - set(ALL_TASKS))


def interaction_order(names: Sequence[str]) -> list[str]:
    """`names` in `INTERACTIONS` order, then any others sorted."""
    present = set(names)
    return [i for i in INTERACTIONS if i in present] + sorted(present - set(INTERACTIONS))


def select(df: pd.DataFrame, probe: str, metric: str) -> pd.DataFrame:
    """The rows of one probe and metric."""
    return df[(df["probe"] == probe) & (df["metric"] == metric)]


def per_seed(df: pd.DataFrame, by: str, extra: Sequence[str] = ()) -> pd.DataFrame:
    """One value per (learner, run, seed, `by`, *extra); tasks of one interaction averaged."""
    df = df.assign(interaction=df["task"].map(interaction))
    keys = ["learner", "run_id", "seed", by, *extra]
    return df.groupby(keys, as_index=False, sort=False)["value"].mean()


def mean_std(df: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Mean, std (0 for a single value) and count of `value` per `keys`."""
    out = (
        df.groupby(list(keys), as_index=False, sort=False)["value"]
        .agg(mean="mean", std="std", n="count")
        .reset_index(drop=True)
    )
    out["std"] = out["std"].fillna(0.0)
    return out


def capture_metric(df: pd.DataFrame) -> tuple[str, str]:
    """`capture` when the table has it, else balanced accuracy; with its axis label."""
    if (df["metric"] == "capture").any():
        return "capture", CAPTURE_LABEL
    return "balanced_accuracy", ACC_LABEL


def slug(text: str) -> str:
    """`text` as a file-name part."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "x"
