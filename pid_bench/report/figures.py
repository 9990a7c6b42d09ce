"""The report's figures, drawn from the final-epoch rows of one generator's runs.

- `accuracy_bars`: linear-probe balanced accuracy per learner and interaction, chance marked;
- `pid_bars`: bits each learner's representation holds about R, U1, U2, S beside the truth;
- `pid_clustered_bars`, `pid_batch_bars`: each atom as the clustered or the BATCH PID
  estimator reads it from the unimodal embeddings, beside the truth (where the run has them);
- `learning_curves`: capture against epoch (only when the runs probed several epochs);
- `sweep`: capture against a swept generator parameter (only for sweep runs).

Sweep rows feed only the sweep figure: pooling different parameter values into one bar would
mix different datasets. Each legend sits under its plot and is never taller than it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from generators.io import open_atomic, write_atomic
from pid_bench import plotstyle
from pid_bench.report.data import (
    ACC_LABEL,
    ATOM_SYMBOL,
    REPORT_PROBE,
    capture_metric,
    interaction,
    interaction_order,
    mean_std,
    per_seed,
    select,
    slug,
    task_order,
)
from pid_bench.report.drawing import (
    Series,
    Styles,
    add_legend,
    bar_kw,
    few_ticks,
    grouped_bars,
    learner_handles,
    means_stds,
    new_figure,
    nice_top,
    role_caption,
    seed_counts,
    seed_legend,
    zero_handle,
)
from pid_bench.results import final_epoch

#: Figure names, in the order they appear in the summary.
FIGURES: tuple[str, ...] = (
    "accuracy_bars",
    "pid_bars",
    "pid_clustered_bars",
    "pid_batch_bars",
    "learning_curves",
    "sweep",
)
SUPPORTED_FORMATS: tuple[str, ...] = ("png", "pdf", "svg")
#: PID estimators of the unimodal embeddings that runs score with, and their figure's wording
ESTIMATOR_PROBES = {
    "pid_clustered": "the clustered PID estimate (k-means per modality, exact PID of the joint)",
    "pid_batch": "the BATCH (neural) PID estimate",
}


@dataclass
class Fig:
    """One figure: its file stem, title and caption; the matplotlib figure until it is written,
    then the PNG bytes (for the HTML page) and the files written."""

    name: str
    title: str
    caption: str
    png: bytes = b""
    paths: list[Path] = field(default_factory=list)
    figure: Figure | None = None


@dataclass
class Section:
    """The figures of one generator's runs and the rows the tables of its section read."""

    generator: str
    figures: list[Fig]
    skipped: list[str]
    plain: pd.DataFrame  # final-epoch, non-sweep rows
    sweep: pd.DataFrame  # final-epoch sweep rows


def build_section(df: pd.DataFrame, generator: str, suffix: str, styles: Styles) -> Section:
    """Every figure of the rows `df` of one generator (file stems end in `suffix`), and the
    figures left out with the reason."""
    is_sweep = df["sweep_param"] != ""
    plain_all = df[~is_sweep]
    plain = final_epoch(plain_all)
    sweep = final_epoch(df[is_sweep])
    figs: list[Fig] = []
    skipped: list[str] = []
    with plotstyle.style():
        if plain.empty:
            skipped.append(
                "accuracy_bars, pid_bars: every run is a sweep point; see the sweep figure"
            )
        else:
            figs.append(accuracy_bars(plain, styles, suffix))
            pid = pid_bars(plain, styles, suffix)
            if pid is None:
                skipped.append("pid_bars: no linear-probe `mi_bits` rows with true bits")
            else:
                figs.append(pid)
            for probe in ESTIMATOR_PROBES:
                est = pid_bars(plain, styles, suffix, probe)
                if est is not None:
                    figs.append(est)
            if plain_all["epoch"].nunique() > 1:
                figs.append(learning_curves(plain_all, styles, suffix))
            else:
                skipped.append(
                    "learning_curves: the runs were probed at one epoch only "
                    "(probe every k epochs during training to get curves)"
                )
        if sweep.empty:
            skipped.append("sweep: no sweep runs in these results")
        else:
            params = sorted(sweep["sweep_param"].unique())
            for param in params:
                stem = "sweep" if len(params) == 1 else f"sweep_{slug(param)}"
                figs.append(
                    sweep_figure(sweep[sweep["sweep_param"] == param], param, styles, stem + suffix)
                )
    return Section(generator, figs, skipped, plain, sweep)


def accuracy_bars(final: pd.DataFrame, styles: Styles, suffix: str) -> Fig:
    """Linear-probe balanced accuracy per learner and interaction, chance marked."""
    stats = mean_std(
        per_seed(select(final, "linear", "balanced_accuracy"), "interaction"),
        ["learner", "interaction"],
    )
    chance_rows = select(final, "linear", "chance").assign(
        interaction=lambda d: d["task"].map(interaction)
    )
    chance = chance_rows.groupby("interaction")["value"].mean().to_dict()
    groups = interaction_order(stats["interaction"].unique())
    learners = plotstyle.learner_order(stats["learner"].unique())

    fig = new_figure(2.0)
    ax = fig.add_subplot()
    series = [(*means_stds(stats, name, "interaction"), bar_kw(styles[name])) for name in learners]
    bar, zero = grouped_bars(ax, groups, series, 1.0)
    half = len(series) * bar / 2 + 0.04  # the chance line spans its group's bars
    title, suffixes = seed_legend(stats)
    handles = learner_handles(learners, styles, "bar", suffixes)
    drawn_chance = False
    for i, g in enumerate(groups):
        if g in chance:
            ax.hlines(chance[g], i - half, i + half, zorder=3, **plotstyle.REFERENCE_LINE)
            drawn_chance = True
    if drawn_chance:
        handles.append(Line2D([], [], label="chance", **plotstyle.REFERENCE_LINE))
    if zero:
        handles.append(zero_handle())
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel(ACC_LABEL)
    add_legend(fig, handles, title)

    caption = (
        "Linear-probe balanced accuracy on frozen representations, per interaction"
        f"{_averaged_tasks(final)}. Bars: mean over seeds; "
        f"error bars: std over seeds ({seed_counts(stats)}). Dashed lines: chance (1/K). "
        + role_caption(learners, styles, "bar", zero)
    ).strip()
    return Fig("accuracy_bars" + suffix, "Balanced accuracy per interaction", caption, figure=fig)


def _averaged_tasks(final: pd.DataFrame) -> str:
    """ " (uniqueness averages the unique1 and unique2 tasks)": which tasks each bar of several
    averages, from the tasks present (unique1-3 and the pairwise synergies on three
    modalities)."""
    tasks = task_order(final["task"].unique())
    parts = []
    for name in interaction_order({interaction(t) for t in tasks}):
        members = [t for t in tasks if interaction(t) == name]
        if len(members) > 1:
            listed = ", ".join(members[:-1]) + f" and {members[-1]}"
            parts.append(f"{name} averages the {listed} tasks")
    return f" ({'; '.join(parts)})" if parts else ""


def pid_bars(final: pd.DataFrame, styles: Styles, suffix: str, probe: str = "linear") -> Fig | None:
    """Bits per atom beside the true atom: the linear probe's MI bound on each task, or with
    `probe` an estimator's (`pid_clustered`, `pid_batch`) estimate of the atom the task
    isolates, from the unimodal embeddings (Z1, Z2)."""
    if probe == "linear":
        bits = select(final, "linear", "mi_bits")
    else:
        part = final[final["probe"] == probe]
        bits = part[part["metric"] == part["true_atom"]]
    if bits.empty or bits["true_bits"].isna().all():
        return None
    stats = mean_std(per_seed(bits, "task"), ["learner", "task"])
    truth = bits.groupby("task")["true_bits"].median().dropna().to_dict()
    tasks = task_order([t for t in stats["task"].unique() if t in truth])
    learners = plotstyle.learner_order(stats["learner"].unique())
    groups = [ATOM_SYMBOL.get(t, t) for t in tasks]

    fig = new_figure(2.0)
    ax = fig.add_subplot()
    true_kw = dict(plotstyle.TRUE_BAR, label="true atom")
    series: list[Series] = [({ATOM_SYMBOL.get(t, t): truth[t] for t in tasks}, {}, true_kw)]
    stats = stats[stats["task"].isin(tasks)]
    for name in learners:
        means, stds = means_stds(stats, name, "task")
        series.append(
            (
                {ATOM_SYMBOL.get(t, t): v for t, v in means.items()},
                {ATOM_SYMBOL.get(t, t): v for t, v in stds.items()},
                bar_kw(styles[name]),
            )
        )
    top = nice_top(max([*truth.values(), *(stats["mean"] + stats["std"])]))
    _, zero = grouped_bars(ax, groups, series, top)
    # three modalities' eight tasks: the symbol alone (S12, S123, ...) fits under its bars
    labels = [
        ATOM_SYMBOL.get(t, t) if len(tasks) > 4 else f"{ATOM_SYMBOL.get(t, t)}\n({t})"
        for t in tasks
    ]
    ax.set_xticks(range(len(tasks)), labels, linespacing=1.1)
    ax.set_ylabel("information (bits)")
    title, suffixes = seed_legend(stats)
    handles = [Patch(label="true atom", **plotstyle.TRUE_BAR)]
    handles += learner_handles(learners, styles, "bar", suffixes)
    if zero:
        handles.append(zero_handle())
    add_legend(fig, handles, title)
    if probe == "linear":
        lead = (
            "Bits about each PID atom held by the representation: the linear probe's mutual "
            "information lower bound on the task that isolates the atom"
        )
        name, title = "pid_bars", "Information captured per PID atom"
    else:
        lead = (
            f"Each PID atom as {ESTIMATOR_PROBES[probe]} of (Z1, Z2; Y) reads it from the "
            "unimodal embeddings, on the task that isolates the atom"
        )
        name, title = f"{probe}_bars", f"PID atoms estimated by {probe}"
    caption = (
        f"{lead} (mean and std over seeds, {seed_counts(stats)}), beside the exact atom of "
        "the generator (white, hatched). " + role_caption(learners, styles, "bar", zero)
    ).strip()
    return Fig(name + suffix, title, caption, figure=fig)


def learning_curves(df: pd.DataFrame, styles: Styles, suffix: str) -> Fig:
    """Linear-probe capture (or accuracy) against epoch, one panel per interaction."""
    metric, ylabel = capture_metric(df[df["probe"] == REPORT_PROBE])
    rows = select(df, "linear", metric)
    stats = mean_std(
        per_seed(rows, "interaction", extra=("epoch",)), ["learner", "interaction", "epoch"]
    )
    groups = interaction_order(stats["interaction"].unique())
    learners = plotstyle.learner_order(stats["learner"].unique())

    fig = new_figure(1.5)
    axes = fig.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    for ax, g in zip(axes, groups, strict=True):
        for name in learners:
            part = stats[(stats["learner"] == name) & (stats["interaction"] == g)]
            part = part.sort_values("epoch")
            if part.empty:
                continue
            st = styles[name]
            x, m, s = part["epoch"], part["mean"], part["std"]
            ax.fill_between(x, m - s, m + s, color=st.color, alpha=0.18, linewidth=0)
            ax.plot(
                x,
                m,
                color=st.color,
                marker=st.marker,
                markersize=2.5,
                linestyle=st.linestyle,
                label=st.label,
            )
        if metric == "capture":
            ax.axhline(1.0, color="#999999", linewidth=0.6, linestyle=":", zorder=1)
        ax.set_title(g)
        ax.grid(True, axis="both")
        ax.xaxis.set_major_locator(few_ticks())
    for ax in axes:  # under each panel: a figure-wide label would sit on the legend
        ax.set_xlabel("epoch")
    axes[0].set_ylabel(ylabel)
    lo = min(0.0, float((stats["mean"] - stats["std"]).min()))
    axes[0].set_ylim(lo, nice_top(float((stats["mean"] + stats["std"]).max()), floor=1.05))
    title, suffixes = seed_legend(stats, band=True)
    add_legend(fig, learner_handles(learners, styles, "line", suffixes), title)
    caption = (
        f"Linear-probe {metric.replace('_', ' ')} against training epoch, per interaction; "
        f"line: mean over seeds, band: std over seeds ({seed_counts(stats)})"
        + ("; dotted: the whole atom. " if metric == "capture" else ". ")
        + role_caption(learners, styles, "line")
    ).strip()
    return Fig("learning_curves" + suffix, "Learning curves", caption, figure=fig)


def sweep_figure(final: pd.DataFrame, param: str, styles: Styles, stem: str) -> Fig:
    """Linear-probe capture (or accuracy) against the swept parameter, one panel per task."""
    metric, ylabel = capture_metric(final[final["probe"] == REPORT_PROBE])
    rows = select(final, "linear", metric)
    numeric = pd.to_numeric(rows["sweep_value"], errors="coerce")
    is_numeric = bool(numeric.notna().all())
    if is_numeric:
        rows = rows.assign(x=numeric)
    else:
        # Categorical values keep the order the runs were given in.
        order = {v: i for i, v in enumerate(dict.fromkeys(rows["sweep_value"]))}
        rows = rows.assign(x=rows["sweep_value"].map(order).astype(float))
    seeds = rows.groupby(["learner", "run_id", "seed", "task", "x"], as_index=False)["value"].mean()
    stats = mean_std(seeds, ["learner", "task", "x"])
    tasks = task_order(stats["task"].unique())
    learners = plotstyle.learner_order(stats["learner"].unique())

    ncols = 2 if len(tasks) == 4 else len(tasks)
    nrows = math.ceil(len(tasks) / ncols)
    # one row of panels still needs the height of the y label ("capture (bits / true bits)")
    fig = new_figure(max(0.1 + 1.3 * nrows, 2.0))
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    xs = np.sort(stats["x"].unique())
    log_x = is_numeric and xs.min() > 0 and xs.max() / xs.min() >= 100
    for ax, task in zip(axes, tasks, strict=False):
        for name in learners:
            part = stats[(stats["learner"] == name) & (stats["task"] == task)].sort_values("x")
            if part.empty:
                continue
            st = styles[name]
            ax.errorbar(
                part["x"],
                part["mean"],
                yerr=part["std"] if (part["std"] > 0).any() else None,
                color=st.color,
                marker=st.marker,
                markersize=2.8,
                elinewidth=0.6,
                capsize=1.2,
                linestyle=st.linestyle,
                label=st.label,
            )
        if metric == "capture":
            ax.axhline(1.0, color="#999999", linewidth=0.6, linestyle=":", zorder=1)
        ax.set_title(f"{task} ({ATOM_SYMBOL.get(task, task)})")
        ax.grid(True, axis="both")
        if log_x:
            ax.set_xscale("log")
        elif is_numeric and (rows["x"] == rows["x"].round()).all():
            # an integer parameter (bits, dim, n_train) gets integer ticks only
            ax.xaxis.set_major_locator(few_ticks())
    for ax in axes[len(tasks) :]:
        ax.set_visible(False)
    if not is_numeric:
        labels = list(dict.fromkeys(rows["sweep_value"]))
        for ax in axes:
            ax.set_xticks(range(len(labels)), labels)
    for ax in axes[(nrows - 1) * ncols :]:
        ax.set_xlabel(param)
    if nrows == 1:
        axes[0].set_ylabel(ylabel)
    else:
        fig.supylabel(ylabel, fontsize=plotstyle.FONT_SIZE)
    lo = min(0.0, float((stats["mean"] - stats["std"]).min()))
    axes[0].set_ylim(lo, nice_top(float((stats["mean"] + stats["std"]).max()), floor=1.05))
    title, suffixes = seed_legend(stats)
    add_legend(fig, learner_handles(learners, styles, "line", suffixes), title)
    caption = (
        f"Linear-probe {metric.replace('_', ' ')} at the final epoch against the generator "
        f"parameter `{param}`, per task; mean and std over seeds ({seed_counts(stats)})."
        + (" Capture = bits / true bits. " if metric == "capture" else " ")
        + role_caption(learners, styles, "line")
    ).strip()
    return Fig(stem, f"Sweep over {param}", caption, figure=fig)


def write_figure(fig: Fig, out_dir: Path, formats: Sequence[str]) -> list[Path]:
    """Save `fig` once per format into `out_dir`; keep its PNG bytes and free the figure."""
    assert fig.figure is not None
    paths = []
    with plotstyle.style():
        buf = io.BytesIO()
        # Metadata without dates keeps committed figures byte-stable between identical reports.
        fig.figure.savefig(buf, format="png", metadata={"Software": None})
        fig.png = buf.getvalue()
        for fmt in formats:
            path = out_dir / f"{fig.name}.{fmt}"
            if fmt == "png":
                write_atomic(path, fig.png)
            else:
                meta = {"CreationDate": None} if fmt == "pdf" else {"Date": None}
                with open_atomic(path) as f:
                    fig.figure.savefig(f, format=fmt, metadata=meta)
            paths.append(path)
    fig.figure = None  # free the figure; only the PNG bytes are needed from here on
    return paths


def check_formats(formats: Sequence[str] | str) -> list[str]:
    """The figure formats asked for, lower-case and deduplicated; ValueError for others."""
    if isinstance(formats, str):
        formats = [formats]
    fmts = list(dict.fromkeys(f.lower().lstrip(".") for f in formats))
    bad = [f for f in fmts if f not in SUPPORTED_FORMATS]
    if bad or not fmts:
        raise ValueError(
            f"unsupported figure format(s) {bad or '(none given)'}; "
            f"accepted: {', '.join(SUPPORTED_FORMATS)}"
        )
    return fmts
