"""The summary `pid-bench run`, `sweep` and `score` print when a run has finished.

One block per probe (the linear probe, then the MLP probe), one row per learner and one column
per task, at the final epoch: balanced accuracy (`+-` the std over seeds where a cell has more
than one seed), the probe's MI lower bound in bits, and capture = bits / true atom. Learners
trained on the task's labels (ceilings) and frozen untrained encoders (floors) are listed in
groups of their own under a line that says what they are (`discrimination.learner_roles`), so
that no ceiling is read as a self-supervised result. Below it: each learner between the
task's floor and ceiling (`format_floor_ceiling`), and where the figures are
(`report_pointer`).
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from generators.base import ALL_TASKS
from pid_bench.discrimination import FLOOR_ROLE, LABELS, floor_ceiling, learner_roles
from pid_bench.results import summarise

if TYPE_CHECKING:
    from pid_bench.runconfig import RunConfig

#: The probes summarised, in order, with the name their block is printed under.
PROBES: dict[str, str] = {"linear": "linear probe", "mlp": "MLP probe"}
#: The line above each group of learners with a role (the others come first, unheaded).
GROUP_HEADINGS: dict[str, str] = {
    LABELS: "-- trained on the task labels: ceilings, not self-supervised results",
    FLOOR_ROLE: "-- frozen untrained encoders: floors",
}


def summary_table(df: pd.DataFrame, probe: str = "linear") -> pd.DataFrame:
    """Learner x task at the final epoch for one probe: balanced accuracy mean and std over
    seeds, chance, bits, capture, the true atom (bits) and the number of seeds."""
    stats = summarise(df, probes=(probe,))
    columns = ["acc_mean", "acc_std", "chance", "bits", "capture", "true_bits", "n_seeds"]
    if stats.empty:
        return pd.DataFrame(columns=["learner", "task", *columns])
    wide = stats.pivot_table(
        index=["learner", "task"], columns="metric", values=["mean", "std", "n"], aggfunc="first"
    )

    def col(kind: str, metric: str) -> pd.Series:
        # capture is absent when a task's true atom is 0 (nothing to capture)
        key = (kind, metric)
        return wide[key] if key in wide.columns else pd.Series(np.nan, index=wide.index)

    final = df[df["probe"] == probe]
    truth = final.groupby("task")["true_bits"].median()
    out = pd.DataFrame(
        {
            "acc_mean": col("mean", "balanced_accuracy"),
            "acc_std": col("std", "balanced_accuracy"),
            "chance": col("mean", "chance"),
            "bits": col("mean", "mi_bits"),
            "capture": col("mean", "capture"),
            "n_seeds": col("n", "balanced_accuracy"),
        }
    ).reset_index()
    out["true_bits"] = out["task"].map(truth).astype(float)
    return out[["learner", "task", *columns]]


def format_summary(
    df: pd.DataFrame,
    learners: Sequence[str] | None = None,
    *,
    plugins: dict[str, str] | None = None,
) -> str:
    """The printed summary: a block per probe, one row per learner, one column per task.

    `learners` is the display order (default: sorted); label-trained learners and floors
    follow the others, each group under a line naming it. `plugins` maps plug-in names to
    where their class is imported from (the run config's `plugins`), so that their roles
    come from their own class attributes.
    """
    tables = {p: summary_table(df, p) for p in PROBES}
    lin = tables["linear"]
    present = set(lin["task"]) | set(tables["mlp"]["task"])
    # columns in the order of `generators.base.ALL_TASKS`; tasks not listed follow, sorted
    tasks = [t for t in ALL_TASKS if t in present] + sorted(present - set(ALL_TASKS))
    names = list(dict.fromkeys(learners)) if learners else sorted(set(df["learner"]))
    roles = learner_roles(names, plugins)
    groups = [
        [n for n in names if n not in roles],
        [n for n in names if roles.get(n) == LABELS],
        [n for n in names if roles.get(n) == FLOOR_ROLE],
    ]
    headings = ["", GROUP_HEADINGS[LABELS], GROUP_HEADINGS[FLOOR_ROLE]]

    # Seeds: one count for the whole table where every cell has it, else per learner.
    counts = pd.concat([t[["learner", "n_seeds"]] for t in tables.values()])
    per_learner = counts.groupby("learner")["n_seeds"].max().astype(int).to_dict()
    seed_ids = sorted({int(s) for s in df["seed"].unique()})
    uniform = len(set(per_learner.values())) <= 1
    n_all = max(per_learner.values(), default=len(seed_ids))

    def label(name: str) -> str:
        if uniform or name not in per_learner:
            return name
        return f"{name} (n={per_learner[name]})"

    cells = {p: _cells(t, names, tasks) for p, t in tables.items() if not t.empty}
    width_task = max(
        [len(t) for t in tasks] + [len(c) for block in cells.values() for c in block.values()]
    )
    width_name = max([len(label(n)) for n in names] + [len(v) for v in PROBES.values()])

    lines = [_seed_line(n_all, seed_ids, uniform)]
    for probe, title in PROBES.items():
        if probe not in cells:
            lines.append(
                f"{title}: not run (the run used --no-mlp, or a profile with probe.mlp=false)"
                if probe == "mlp"
                else f"{title}: no rows in this table"
            )
            continue
        head = f"{title:<{width_name}}" + "".join(f"  {t:>{width_task}}" for t in tasks)
        lines += [head, "-" * len(head)]
        for group, heading in zip(groups, headings, strict=True):
            if not group:
                continue
            if heading:
                lines.append(heading)
            for name in group:
                row = [cells[probe].get((name, t), "-") for t in tasks]
                lines.append(
                    f"{label(name):<{width_name}}" + "".join(f"  {c:>{width_task}}" for c in row)
                )
    lines.append(_reference_line(lin if not lin.empty else tables["mlp"], tasks))
    return "\n".join(lines)


def _cells(table: pd.DataFrame, names: list[str], tasks: list[str]) -> dict[tuple[str, str], str]:
    """(learner, task) -> `acc[+-std] bits capture` text."""
    out = {}
    for r in table.itertuples(index=False):
        if r.learner not in names or r.task not in tasks:
            continue
        acc = _num(r.acc_mean, 3)
        if r.n_seeds > 1 and math.isfinite(r.acc_mean):
            std = 0.0 if not math.isfinite(r.acc_std) else r.acc_std
            acc += f"+-{std:.3f}"
        bits = "-" if not math.isfinite(r.bits) else f"{r.bits:.2f}b"
        out[(r.learner, r.task)] = f"{acc} {bits} {_num(r.capture, 2)}"
    return out


def _num(x: float, digits: int) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _seed_line(n: int, seeds: list[int], uniform: bool) -> str:
    cell = "balanced accuracy | MI lower bound, bits (b) | capture = bits / true atom"
    consecutive = len(seeds) > 3 and seeds == list(range(seeds[0], seeds[-1] + 1))
    ids = f"{seeds[0]}-{seeds[-1]}" if consecutive else " ".join(str(s) for s in seeds)
    if not uniform:
        return (
            f"mean over seeds ({ids}; n per learner after its name), +- std where n > 1; "
            f"cell: {cell}"
        )
    if n <= 1:
        return f"1 seed ({ids}), so no std; cell: {cell}"
    return f"mean +- std over {n} seeds ({ids}); cell: {cell}"


def _reference_line(table: pd.DataFrame, tasks: list[str]) -> str:
    """Chance (balanced accuracy) and the true atom (bits) per task, once if all the same."""
    chance = table.groupby("task")["chance"].mean()
    truth = table.groupby("task")["true_bits"].median()
    c = [_num(chance.get(t, np.nan), 3) for t in tasks]
    b = [_num(truth.get(t, np.nan), 2) for t in tasks]
    if len(tasks) > 1 and len(set(c)) == 1 and len(set(b)) == 1:
        return f"chance {c[0]} and true atom {b[0]} bits on every task"
    return "chance / true atom (bits): " + ", ".join(
        f"{t} {ci} / {bi}" for t, ci, bi in zip(tasks, c, b, strict=True)
    )


def format_floor_ceiling(df: pd.DataFrame, cfg: RunConfig) -> str:
    """Each learner's place between the task's floor and ceiling (`pid_bench.discrimination`)."""
    from pid_bench.check import untrained_floors

    floors = untrained_floors(cfg.learners, cfg.plugins)
    return floor_ceiling(df, floors, cfg.learners).format()


def report_pointer(run_dir: str | Path) -> str:
    """The last line of the printed summary: the command that draws the figures and tables."""
    run_dir = Path(run_dir)
    return (
        f"figures and full tables: pid-bench report {shlex.quote(str(run_dir))} "
        f"--out {shlex.quote(str(run_dir / 'report'))}"
    )
