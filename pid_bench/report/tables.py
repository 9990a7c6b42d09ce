"""The report's tables and the page they make, as blocks both renderers read.

A block is (kind, payload): ("h1" | "h2" | "h3" | "p", str), ("table", `Table`),
("list", list[str]) or ("figure", `figures.Fig`); `render` turns the same blocks into markdown
and HTML. Cells read mean ± std over seeds (n seeds) of the final-epoch rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from estimators.clustered import MIN_SAMPLES_PER_CELL
from generators.base import TASKS
from pid_bench import plotstyle
from pid_bench.check import run_plugins, untrained_floors
from pid_bench.discrimination import CEILING, FLOOR, floor_ceiling
from pid_bench.published import PUBLISHED
from pid_bench.report.data import (
    ATOM_SYMBOL,
    REPORT_PROBE,
    capture_metric,
    mean_std,
    per_seed,
    select,
    task_order,
)
from pid_bench.report.figures import Section


@dataclass(frozen=True)
class Folded:
    """A long table cell: markdown shows `text`; the HTML page shows `summary` and unfolds
    `full` (wrapped) on a click, so that the cell never widens the page."""

    text: str
    summary: str
    full: str

    def __str__(self) -> str:
        return self.text


@dataclass
class Table:
    """A table of text cells with its caption."""

    columns: list[str]
    rows: list[list[str | Folded]]
    caption: str = ""
    left: int = 1  # the first `left` columns hold text (left-aligned); the rest numbers
    #: columns of long unbroken tokens (run ids, git hashes) the HTML page may break anywhere
    breakable: tuple[int, ...] = ()


#: A block of the page: (kind, payload), as the module docstring lists them.
Block = tuple[str, Any]


def fmt(x: float, digits: int = 3) -> str:
    """`x` with `digits` decimals; a dash for a missing or non-finite value."""
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def cell(mean: float, std: float, n: int, digits: int = 3) -> str:
    """ "mean ± std (n)", or "mean (1)" for a single seed."""
    if n <= 1:
        return f"{fmt(mean, digits)} (1)"
    return f"{fmt(mean, digits)} ± {fmt(std, digits)} ({n})"


def learner_task_table(final: pd.DataFrame, probe: str, metric: str, digits: int = 3) -> Table:
    """One row per learner, one column per task: mean ± std over seeds of `probe`/`metric`."""
    stats = mean_std(per_seed(select(final, probe, metric), "task"), ["learner", "task"])
    tasks = task_order(stats["task"].unique())
    rows = []
    for name in plotstyle.learner_order(stats["learner"].unique()):
        part = stats[stats["learner"] == name].set_index("task")
        row = [name]
        for t in tasks:
            row.append(
                cell(part.at[t, "mean"], part.at[t, "std"], int(part.at[t, "n"]), digits)
                if t in part.index
                else "–"
            )
        rows.append(row)
    return Table(["learner", *tasks], rows)


def summary_blocks(
    df: pd.DataFrame,
    sections: list[Section],
    notes: list[str],
    run_dirs: Sequence[str | Path],
) -> list[Block]:
    """The whole page: the runs, then per generator its figures and tables, then notes."""
    blocks: list[Block] = [("h1", "pid-bench report")]
    generators = ", ".join(f"`{s.generator}`" for s in sections)
    n_runs = df["run_id"].nunique()
    blocks.append(
        (
            "p",
            f"Drawn from {n_runs} run(s) in {len(list(run_dirs))} folder(s); generator "
            f"{generators}. Final results are the rows at each run's last probed epoch; "
            "cells read mean ± std over seeds (n seeds).",
        )
    )
    blocks += _runs_blocks(df)
    for section in sections:
        if len(sections) > 1:
            blocks.append(("h2", f"Generator `{section.generator}`"))
        blocks += section_blocks(section, level="h3" if len(sections) > 1 else "h2")
    if notes:
        blocks.append(("h2", "Notes"))
        blocks.append(("list", notes))
    return blocks


def section_blocks(section: Section, level: str) -> list[Block]:
    """One generator's figures and tables, headed at `level` ("h2" or "h3")."""
    blocks: list[Block] = [(level, "Figures")]
    for fig in section.figures:
        blocks.append(("figure", fig))
    if section.skipped:
        blocks.append(("p", "Not drawn:"))
        blocks.append(("list", section.skipped))

    final = section.plain
    if not final.empty:
        acc = learner_task_table(final, "linear", "balanced_accuracy")
        chance = select(final, "linear", "chance").groupby("task")["value"].mean()
        acc.rows.append(["chance", *[fmt(chance.get(t, np.nan)) for t in acc.columns[1:]]])
        acc.caption = "Linear probe, balanced accuracy (final epoch)."
        blocks += [(level, "Linear probe: balanced accuracy"), ("table", acc)]

        bits = learner_task_table(final, "linear", "mi_bits")
        truth = final.groupby("task")["true_bits"].median()
        bits.rows.append(["true atom", *[fmt(truth.get(t, np.nan)) for t in bits.columns[1:]]])
        bits.caption = "Linear probe, mutual information lower bound (bits)."
        blocks += [(level, "Linear probe: bits captured"), ("table", bits)]

        cap = learner_task_table(final, "linear", "capture")
        if cap.rows:
            cap.caption = "Linear probe, capture = bits / true bits of the task's atom."
            blocks += [(level, "Linear probe: capture"), ("table", cap)]

        mlp = learner_task_table(final, "mlp", "balanced_accuracy")
        if mlp.rows:
            mlp.caption = "MLP probe, balanced accuracy (final epoch)."
            blocks += [(level, "MLP probe: balanced accuracy"), ("table", mlp)]

        blocks += _floor_ceiling_blocks(final, level)
        blocks += _published_blocks(final, section.generator, level)
        blocks += _clustered_pid_blocks(final, level)
        blocks += _batch_pid_blocks(final, level)
        blocks += [(level, "True PID per task"), ("table", _truth_table(final))]

    if not section.sweep.empty:
        blocks += _sweep_blocks(section.sweep, level)
    return blocks


def _floor_ceiling_blocks(final: pd.DataFrame, level: str) -> list[Block]:
    """The task's floor and ceiling, and each learner's position between them."""
    learners = plotstyle.learner_order(final["learner"].unique())
    fc = floor_ceiling(final, untrained_floors(learners, run_plugins(final)), learners)
    blocks: list[Block] = [(level, "Floor and ceiling")]
    if fc.tasks.empty:
        return [*blocks, ("list", fc.notes)]
    table = Table(["", *fc.tasks["task"]], fc.rows())
    table.caption = (
        f"Linear probe, balanced accuracy. Floor: `{FLOOR}` (frozen random encoders); ceiling: "
        f"`{CEILING}`. Learner rows: position = (acc - floor) / (ceiling - floor), 0 at the "
        "floor and 1 at the ceiling; `vs` rows read a fused learner against its own untrained "
        "architecture."
    )
    blocks.append(("table", table))
    if fc.notes:
        blocks.append(("list", fc.notes))
    return blocks


def _published_blocks(final: pd.DataFrame, generator: str, level: str) -> list[Block]:
    """This run next to the published table of its generator, for the learners in both."""
    pub = PUBLISHED.get(generator)
    if pub is None:
        return []
    stats = mean_std(
        per_seed(select(final, "linear", "balanced_accuracy"), "task"), ["learner", "task"]
    ).set_index(["learner", "task"])
    tasks = task_order({t for v in pub.values.values() for t in v})
    rows = []
    for name in plotstyle.learner_order(stats.index.get_level_values(0).unique()):
        if name not in pub.values:
            continue
        row = [name]
        for t in tasks:
            theirs = pub.values[name].get(t, np.nan)
            if (name, t) not in stats.index:
                row.append(f"– (published {fmt(theirs, 1)})")
                continue
            m, sd, n = stats.loc[(name, t), ["mean", "std", "n"]]
            ours = cell(m * pub.scale, sd * pub.scale, int(n), 1)
            row.append(f"{ours} vs {fmt(theirs, 1)} ({m * pub.scale - theirs:+.1f})")
        rows.append(row)
    if not rows:
        return []
    table = Table(
        ["learner", *tasks],
        rows,
        f"This run, mean ± std (seeds), vs published ({pub.metric}), difference in brackets. "
        f"Published: {pub.source}; {pub.setting}.",
    )
    return [(level, "Next to the published numbers"), ("table", table)]


def _clustered_pid_blocks(final: pd.DataFrame, level: str) -> list[Block]:
    rows_df = final[final["probe"] == "pid_clustered"]
    if rows_df.empty:
        return []
    atoms = [a for a in (*TASKS, "mutual_info") if a in set(rows_df["metric"])]
    means = rows_df.groupby(["learner", "task", "metric"])["value"].mean()
    # runs written before the estimator reported it have no samples_per_cell rows
    has_spc = "samples_per_cell" in set(rows_df["metric"])
    rows = []
    few = 0
    for name in plotstyle.learner_order(rows_df["learner"].unique()):
        for task in task_order(rows_df.loc[rows_df["learner"] == name, "task"].unique()):
            row = [name, task, *[fmt(means.get((name, task, a), np.nan)) for a in atoms]]
            if has_spc:
                spc = means.get((name, task, "samples_per_cell"), np.nan)
                flag = spc < MIN_SAMPLES_PER_CELL
                few += bool(flag)
                row.append(f"{spc:.1f}" + (" (few)" if flag else ""))
            rows.append(row)
    heads = [ATOM_SYMBOL.get(a, "I(Y; Z1, Z2)") for a in atoms]
    caption = (
        "Clustered PID estimate of (Z1, Z2; Y) from the unimodal embeddings, bits, mean over seeds."
    )
    if has_spc:
        heads.append("samples/cell")
        caption += (
            " samples/cell: mean samples per occupied (cluster1, cluster2, y) cell of the "
            "estimated joint."
        )
        if few:
            caption += (
                f" {few} row(s) marked (few) have fewer than {MIN_SAMPLES_PER_CELL:g}: their "
                "plug-in atoms are biased upward (synergy and redundancy read high); use more "
                "test samples or fewer probe.pid_clusters."
            )
    table = Table(["learner", "task", *heads], rows, caption, left=2)
    return [(level, "Clustered PID of the unimodal embeddings"), ("table", table)]


def _batch_pid_blocks(final: pd.DataFrame, level: str) -> list[Block]:
    """BATCH estimates of (Z1, Z2; Y) per learner and task, beside the task's true atoms."""
    rows_df = final[final["probe"] == "pid_batch"]
    if rows_df.empty:
        return []
    atoms = [*TASKS, "mutual_info"]
    means = rows_df.groupby(["learner", "task", "metric"])["value"].mean()
    rows = []
    for name in plotstyle.learner_order(rows_df["learner"].unique()):
        for task in task_order(rows_df.loc[rows_df["learner"] == name, "task"].unique()):
            vals = [fmt(means.get((name, task, a), np.nan)) for a in atoms]
            acc = means.get((name, task, "accuracy12"), np.nan)
            rows.append([name, task, *vals, fmt(acc)])
    truth = rows_df.groupby("task")["true_bits"].first()
    atom_of = rows_df.groupby("task")["true_atom"].first()
    for task in task_order(truth.index):
        vals = [fmt(truth[task] if a == atom_of[task] else 0.0) for a in TASKS]
        rows.append(["true", task, *vals, fmt(truth[task]), ""])
    heads = [ATOM_SYMBOL.get(a, "I(Y; Z1, Z2)") for a in atoms]
    caption = (
        "BATCH (neural) PID estimate of (Z1, Z2; Y) from the unimodal embeddings, bits, mean "
        "over seeds; acc12: held-out accuracy of its joint classifier (low: the estimate rests "
        "on an under-trained classifier). Rows 'true': the task's PID of the latents."
    )
    table = Table(["learner", "task", *heads, "acc12"], rows, caption, left=2)
    return [(level, "BATCH PID of the unimodal embeddings"), ("table", table)]


def _truth_table(final: pd.DataFrame) -> Table:
    rows = []
    chance = select(final, "linear", "chance").groupby("task")["value"].mean()
    by_task = final.groupby("task")
    for task in task_order(final["task"].unique()):
        part = by_task.get_group(task)
        atom = ", ".join(sorted({a for a in part["true_atom"] if a})) or "–"
        bits = part["true_bits"].dropna()
        spread = "" if bits.nunique() <= 1 else f" (varies: {bits.min():.3f}-{bits.max():.3f})"
        k = chance.get(task, np.nan)
        classes = str(round(1 / k)) if math.isfinite(k) and k > 0 else "–"
        rows.append([task, atom, fmt(bits.median()) + spread, classes])
    return Table(
        ["task", "isolated atom", "true bits", "classes"],
        rows,
        "The atom each task isolates and its exact value (bits); by construction the task's "
        "other atoms are zero.",
        left=2,
    )


def _sweep_blocks(sweep: pd.DataFrame, level: str) -> list[Block]:
    blocks: list[Block] = []
    metric, _ = capture_metric(sweep[sweep["probe"] == REPORT_PROBE])
    rows_all = select(sweep, "linear", metric)
    for param in sorted(rows_all["sweep_param"].unique()):
        part = rows_all[rows_all["sweep_param"] == param]
        values = list(dict.fromkeys(part["sweep_value"]))
        numeric = pd.to_numeric(pd.Series(values), errors="coerce")
        if numeric.notna().all():
            values = [v for _, v in sorted(zip(numeric, values, strict=True))]
        blocks.append((level, f"Sweep over `{param}`: linear-probe {metric}"))
        for task in task_order(part["task"].unique()):
            tpart = part[part["task"] == task]
            stats = tpart.groupby(["learner", "sweep_value"])["value"].agg(["mean", "std", "count"])
            rows = []
            for name in plotstyle.learner_order(tpart["learner"].unique()):
                row = [name]
                for v in values:
                    if (name, v) in stats.index:
                        s = stats.loc[(name, v)]
                        std = 0.0 if not math.isfinite(s["std"]) else s["std"]
                        row.append(cell(s["mean"], std, int(s["count"]), 2))
                    else:
                        row.append("–")
                rows.append(row)
            blocks.append(
                ("table", Table([f"{task} \\ {param}", *values], rows, f"Task `{task}`."))
            )
    return blocks


def _runs_blocks(df: pd.DataFrame) -> list[Block]:
    """The runs, their parameters and the package versions they ran with."""
    rows = []
    for run_id, part in df.groupby("run_id", sort=False):
        sweep = ""
        if (part["sweep_param"] != "").any():
            sweep = ", ".join(
                sorted(
                    {
                        f"{p}={v}"
                        for p, v in zip(part["sweep_param"], part["sweep_value"], strict=True)
                    }
                )
            )
        # elapsed_s repeats on every row of its (learner, seed, task-group) cell: count each once.
        elapsed = part.drop_duplicates(["learner", "seed", "elapsed_s"])["elapsed_s"]
        rows.append(
            [
                str(run_id),
                ", ".join(sorted(part["generator"].unique())),
                sweep or "–",
                ", ".join(plotstyle.learner_order(part["learner"].unique())),
                ", ".join(sorted(part["git_sha"].astype(str).unique())),
                ", ".join(sorted(part["device"].astype(str).unique())),
                ", ".join(str(s) for s in sorted(part["seed"].unique())),
                str(int(part["epoch"].max())),
                fmt(float(np.nansum(elapsed)), 0) if elapsed.notna().any() else "–",
            ]
        )
    runs = Table(
        ["run", "generator", "sweep", "learners", "git sha", "device", "seeds", "last epoch", "s"],
        rows,
        "Runs in this report (s: summed elapsed seconds of the cells).",
        left=6,
        breakable=(0, 4),
    )
    blocks: list[Block] = [("h2", "Runs"), ("table", runs)]

    params = []
    for run_id, text in df.drop_duplicates("run_id")[["run_id", "params"]].itertuples(index=False):
        params.append([str(run_id), _params_cell(text)])
    blocks.append(
        (
            "table",
            Table(["run", "parameters"], params, "Generator and training parameters.", left=2),
        )
    )

    versions: dict[str, set[str]] = {}
    for text in df["versions"].astype(str).unique():
        for pkg, ver in _json_dict(text).items():
            versions.setdefault(str(pkg), set()).add(str(ver))
    if versions:
        vrows = [[pkg, " / ".join(sorted(v))] for pkg, v in sorted(versions.items())]
        blocks.append(("table", Table(["package", "version"], vrows, "Package versions.", left=2)))
    return blocks


def _json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


#: Characters of a run's parameters the HTML page shows before it folds the rest.
SUMMARY_CHARS = 72


def _params_cell(text: str, limit: int = 400) -> str | Folded:
    """The generator and training parts of a params JSON (all of it if those keys are absent).

    The runner's params JSON is its whole resolved config; model/probe details stay in
    config.json. Markdown shows them on one line, cut at `limit` characters, since the summary
    table would otherwise be unreadably wide; the HTML page folds them, whole and indented.
    """
    params = _json_dict(text)
    wanted = ("generator", "generator_params", "profile", "interaction", "train", "training")
    shown = {k: params[k] for k in wanted if k in params} or params
    digest = json.dumps(shown, sort_keys=True, separators=(", ", ": "))
    if len(digest) > limit:
        digest = digest[: limit - 1] + "…"
    if len(digest) <= SUMMARY_CHARS:
        return f"`{digest}`"
    return Folded(
        text=f"`{digest}`",
        summary=f"`{digest[: SUMMARY_CHARS - 1]}…`",
        full=json.dumps(shown, sort_keys=True, indent=2),
    )
