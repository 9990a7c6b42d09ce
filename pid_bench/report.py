"""Paper-style figures and summaries drawn from results tables (never by re-running).

`make_report(run_dirs, out)` reads the `results.csv` of one or more run folders, concatenates
them and writes into `out`:

- `accuracy_bars`: linear-probe balanced accuracy per learner and interaction, chance marked;
- `pid_bars`: bits each learner's representation holds about R, U1, U2, S beside the truth;
- `pid_clustered_bars`, `pid_batch_bars`: each atom as the clustered or the BATCH PID
  estimator reads it from the unimodal embeddings, beside the truth (where the run has them);
- `learning_curves`: capture against epoch (only when the runs probed several epochs);
- `sweep`: capture against a swept generator parameter (only for sweep runs);
- `summary.md` (tables + figure links) and a self-contained `summary.html`.

Final results are the rows at the largest epoch of each (run_id, learner, seed, task); means
and error bars are over seeds (std, ddof=1). Sweep rows feed only the sweep figure: pooling
different parameter values into one bar would mix different datasets.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from pid_bench import plotstyle
from pid_bench.discrimination import CEILING, FLOOR, floor_ceiling, learner_roles
from pid_bench.results import final_epoch, read_runs

#: Task order of tables and figures (as `generators.base.TASKS`; not imported, because importing
#: `generators` loads every generator, which a report never needs).
TASKS: tuple[str, ...] = ("redundancy", "unique1", "unique2", "synergy")
#: Figure names, in the order they appear in the summary.
FIGURES: tuple[str, ...] = (
    "accuracy_bars",
    "pid_bars",
    "pid_clustered_bars",
    "pid_batch_bars",
    "learning_curves",
    "sweep",
)
#: Interactions as the figures group tasks: uniqueness averages unique1 and unique2 per seed.
INTERACTIONS: tuple[str, ...] = ("redundancy", "uniqueness", "synergy")
TASK_INTERACTION: dict[str, str] = {
    "redundancy": "redundancy",
    "unique1": "uniqueness",
    "unique2": "uniqueness",
    "synergy": "synergy",
}
ATOM_SYMBOL: dict[str, str] = {"redundancy": "R", "unique1": "U1", "unique2": "U2", "synergy": "S"}
SUPPORTED_FORMATS: tuple[str, ...] = ("png", "pdf", "svg")

_ACC_LABEL = "balanced accuracy (linear probe)"
_CAPTURE_LABEL = "capture (bits / true bits)"
_REPORT_PROBE = "linear"


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def make_report(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    formats: Sequence[str] = ("png", "pdf"),
) -> list[Path]:
    """Draw every figure and summary for the runs in `run_dirs` into `out`; return the files.

    Each figure is written once per format in `formats` (png, pdf, svg). `summary.md` links
    the figures; `summary.html` embeds them as base64 PNG and needs no other file. Raises
    ValueError for no run folders, a folder without results.csv, an empty table, or runs
    without linear-probe rows (the figures are drawn from the linear probe).
    """
    fmts = _check_formats(formats)
    df, notes = load_report_table(run_dirs)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)

    generators = sorted(df["generator"].unique())
    styles = plotstyle.learner_styles(df["learner"].unique(), report_roles(df))
    sections: list[_Section] = []
    for gen in generators:
        suffix = "" if len(generators) == 1 else f"_{_slug(gen)}"
        sections.append(_build_section(df[df["generator"] == gen], gen, suffix, styles))

    written: list[Path] = []
    for section in sections:
        for fig in section.figures:
            fig.paths = _write_figure(fig, out_dir, fmts)
            written += fig.paths

    blocks = _summary_blocks(df, sections, notes, run_dirs)
    md_path = out_dir / "summary.md"
    md_path.write_text(_render_markdown(blocks), encoding="utf-8")
    html_path = out_dir / "summary.html"
    html_path.write_text(_render_html(blocks), encoding="utf-8")
    return [*written, md_path, html_path]


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
    from pid_bench.check import run_plugins

    return learner_roles(plotstyle.learner_order(df["learner"].unique()), run_plugins(df))


# --------------------------------------------------------------------------------------------
# Data preparation
# --------------------------------------------------------------------------------------------


def _interaction(task: str) -> str:
    return TASK_INTERACTION.get(task, task)


def _task_order(tasks: Sequence[str]) -> list[str]:
    present = set(tasks)
    return [t for t in TASKS if t in present] + sorted(present - set(TASKS))


def _interaction_order(names: Sequence[str]) -> list[str]:
    present = set(names)
    return [i for i in INTERACTIONS if i in present] + sorted(present - set(INTERACTIONS))


def _select(df: pd.DataFrame, probe: str, metric: str) -> pd.DataFrame:
    return df[(df["probe"] == probe) & (df["metric"] == metric)]


def _per_seed(df: pd.DataFrame, by: str, extra: Sequence[str] = ()) -> pd.DataFrame:
    """One value per (learner, run, seed, `by`, *extra); tasks of one interaction averaged."""
    df = df.assign(interaction=df["task"].map(_interaction))
    keys = ["learner", "run_id", "seed", by, *extra]
    return df.groupby(keys, as_index=False, sort=False)["value"].mean()


def _mean_std(df: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    out = (
        df.groupby(list(keys), as_index=False, sort=False)["value"]
        .agg(mean="mean", std="std", n="count")
        .reset_index(drop=True)
    )
    out["std"] = out["std"].fillna(0.0)
    return out


def _capture_metric(df: pd.DataFrame) -> tuple[str, str]:
    """`capture` when the table has it, else balanced accuracy; with its axis label."""
    if (df["metric"] == "capture").any():
        return "capture", _CAPTURE_LABEL
    return "balanced_accuracy", _ACC_LABEL


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


@dataclass
class _Fig:
    name: str  # file stem
    title: str
    caption: str
    png: bytes = b""
    paths: list[Path] = field(default_factory=list)
    figure: Figure | None = None


@dataclass
class _Section:
    generator: str
    figures: list[_Fig]
    skipped: list[str]
    plain: pd.DataFrame  # final-epoch, non-sweep rows
    sweep: pd.DataFrame  # final-epoch sweep rows


def _build_section(
    df: pd.DataFrame, generator: str, suffix: str, styles: dict[str, plotstyle.LearnerStyle]
) -> _Section:
    is_sweep = df["sweep_param"] != ""
    plain_all = df[~is_sweep]
    plain = final_epoch(plain_all)
    sweep = final_epoch(df[is_sweep])
    figs: list[_Fig] = []
    skipped: list[str] = []
    with plotstyle.style():
        if plain.empty:
            skipped.append(
                "accuracy_bars, pid_bars: every run is a sweep point; see the sweep figure"
            )
        else:
            figs.append(_accuracy_bars(plain, styles, suffix))
            pid = _pid_bars(plain, styles, suffix)
            if pid is None:
                skipped.append("pid_bars: no linear-probe `mi_bits` rows with true bits")
            else:
                figs.append(pid)
            for probe in _ESTIMATOR_PROBES:
                est = _pid_bars(plain, styles, suffix, probe)
                if est is not None:
                    figs.append(est)
            if plain_all["epoch"].nunique() > 1:
                figs.append(_learning_curves(plain_all, styles, suffix))
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
                stem = "sweep" if len(params) == 1 else f"sweep_{_slug(param)}"
                figs.append(
                    _sweep(sweep[sweep["sweep_param"] == param], param, styles, stem + suffix)
                )
    return _Section(generator, figs, skipped, plain, sweep)


def _new_figure(height: float, width: float = plotstyle.COLUMN_WIDTH) -> Figure:
    """A figure `height` inches tall without its legend (`_top_legend` adds the legend's)."""
    return Figure(figsize=(width, height), layout="constrained")


def _learner_handles(
    learners: Sequence[str],
    styles: dict[str, plotstyle.LearnerStyle],
    kind: str,
    suffixes: dict[str, str] | None = None,
) -> list[Any]:
    """One legend entry per learner (hatched or dashed as its bars or lines are), then one per
    role present saying what the hatch or dash means. `suffixes` are appended to labels."""
    suffixes = suffixes or {}
    handles: list[Any] = []
    for n in learners:
        st = styles[n]
        label = st.label + suffixes.get(n, "")
        if kind == "bar":
            handles.append(
                Patch(facecolor=st.color, edgecolor="white", hatch=st.hatch, label=label)
            )
        else:
            handles.append(
                Line2D(
                    [], [], color=st.color, marker=st.marker, linestyle=st.linestyle, label=label
                )
            )
    for role in plotstyle.ROLE_HATCH:
        if not any(styles[n].role == role for n in learners):
            continue
        text = plotstyle.ROLE_LABELS[role]
        if kind == "bar":
            handles.append(
                Patch(
                    facecolor="white",
                    edgecolor="#444444",
                    hatch=plotstyle.ROLE_HATCH[role],
                    label=text,
                )
            )
        else:
            handles.append(
                Line2D(
                    [], [], color="#555555", linestyle=plotstyle.ROLE_LINESTYLE[role], label=text
                )
            )
    return handles


def _zero_handle() -> Line2D:
    return Line2D(
        [], [], markerfacecolor="white", label="≈ 0 (bar too short to see)", **plotstyle.ZERO_MARKER
    )


def _top_legend(fig: Figure, handles: list[Any], title: str | None = None) -> None:
    """The legend above the axes; the figure grows by the legend's height, so that the axes
    keep the height `_new_figure` gave them however many rows the legend needs."""
    legend = plotstyle.top_legend(fig, handles, title=title)
    height = legend.get_window_extent(fig.canvas.get_renderer()).height / fig.dpi
    fig.set_figheight(fig.get_figheight() + height + _LEGEND_PAD_IN)


#: Space between the legend and the axes, inches.
_LEGEND_PAD_IN = 0.06


def _grouped_bars(
    ax: Any,
    groups: Sequence[str],
    series: Sequence[tuple[dict[str, float], dict[str, float], dict[str, Any]]],
    top: float,
) -> tuple[float, bool]:
    """Draw bar series side by side within each group, the y axis from 0 to `top`; return the
    width of one bar and whether any bar was too short to see.

    A bar shorter than `plotstyle.ZERO_FRACTION * top` gets a marker in its colour on the
    baseline, so that a value of (about) zero does not look like a missing bar.
    """
    zero_drawn = False
    n = max(len(series), 1)
    # Few bars per group would otherwise become slabs; cap each at a fifth of the spacing.
    width = min(0.82 / n, 0.2)
    x = np.arange(len(groups), dtype=float)
    for i, (means, stds, kw) in enumerate(series):
        pos = x + (i - (n - 1) / 2) * width
        m = np.array([means.get(g, np.nan) for g in groups], dtype=float)
        s = np.array([stds.get(g, 0.0) for g in groups], dtype=float)
        keep = np.isfinite(m)
        if not keep.any():
            continue
        ax.bar(
            pos[keep],
            m[keep],
            width * 0.92,
            yerr=s[keep] if np.any(s[keep] > 0) else None,
            error_kw={"elinewidth": 0.6, "ecolor": "#222222", "capthick": 0.6},
            linewidth=0.4,
            **kw,
        )
        tiny = keep & (np.abs(np.nan_to_num(m)) < plotstyle.ZERO_FRACTION * top)
        if tiny.any():
            colour = kw.get("color", kw.get("facecolor", "white"))
            ax.plot(
                pos[tiny],
                np.zeros(int(tiny.sum())),
                markerfacecolor=colour,
                clip_on=False,
                zorder=5,
                gid="zero-marker",
                **plotstyle.ZERO_MARKER,
            )
            zero_drawn = True
    ax.set_xticks(x, list(groups))
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.set_ylim(0, top)
    ax.tick_params(axis="x", length=0)
    return width, zero_drawn


def _accuracy_bars(
    final: pd.DataFrame, styles: dict[str, plotstyle.LearnerStyle], suffix: str
) -> _Fig:
    stats = _mean_std(
        _per_seed(_select(final, "linear", "balanced_accuracy"), "interaction"),
        ["learner", "interaction"],
    )
    chance_rows = _select(final, "linear", "chance").assign(
        interaction=lambda d: d["task"].map(_interaction)
    )
    chance = chance_rows.groupby("interaction")["value"].mean().to_dict()
    groups = _interaction_order(stats["interaction"].unique())
    learners = plotstyle.learner_order(stats["learner"].unique())

    fig = _new_figure(2.0)
    ax = fig.add_subplot()
    series = [
        (*_means_stds(stats, name, "interaction"), _bar_kw(styles[name])) for name in learners
    ]
    bar, zero = _grouped_bars(ax, groups, series, 1.0)
    half = len(series) * bar / 2 + 0.04  # the chance line spans its group's bars
    title, suffixes = _seed_legend(stats)
    handles = _learner_handles(learners, styles, "bar", suffixes)
    drawn_chance = False
    for i, g in enumerate(groups):
        if g in chance:
            ax.hlines(chance[g], i - half, i + half, zorder=3, **plotstyle.REFERENCE_LINE)
            drawn_chance = True
    if drawn_chance:
        handles.append(Line2D([], [], label="chance", **plotstyle.REFERENCE_LINE))
    if zero:
        handles.append(_zero_handle())
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel(_ACC_LABEL)
    _top_legend(fig, handles, title)

    caption = (
        "Linear-probe balanced accuracy on frozen representations, per interaction "
        "(uniqueness averages the unique1 and unique2 tasks). Bars: mean over seeds; "
        f"error bars: std over seeds ({_seed_counts(stats)}). Dashed lines: chance (1/K). "
        + _role_caption(learners, styles, "bar", zero)
    ).strip()
    return _Fig("accuracy_bars" + suffix, "Balanced accuracy per interaction", caption, figure=fig)


#: PID estimators of the unimodal embeddings that runs score with, and their figure's wording
_ESTIMATOR_PROBES = {
    "pid_clustered": "the clustered PID estimate (k-means per modality, exact PID of the joint)",
    "pid_batch": "the BATCH (neural) PID estimate",
}


def _pid_bars(
    final: pd.DataFrame,
    styles: dict[str, plotstyle.LearnerStyle],
    suffix: str,
    probe: str = "linear",
) -> _Fig | None:
    """Bits per atom beside the true atom: the linear probe's MI bound on each task, or with
    `probe` an estimator's (`pid_clustered`, `pid_batch`) estimate of the atom the task
    isolates, from the unimodal embeddings (Z1, Z2)."""
    if probe == "linear":
        bits = _select(final, "linear", "mi_bits")
    else:
        part = final[final["probe"] == probe]
        bits = part[part["metric"] == part["true_atom"]]
    if bits.empty or bits["true_bits"].isna().all():
        return None
    stats = _mean_std(_per_seed(bits, "task"), ["learner", "task"])
    truth = bits.groupby("task")["true_bits"].median().dropna().to_dict()
    tasks = _task_order([t for t in stats["task"].unique() if t in truth])
    learners = plotstyle.learner_order(stats["learner"].unique())
    groups = [ATOM_SYMBOL.get(t, t) for t in tasks]

    fig = _new_figure(2.0)
    ax = fig.add_subplot()
    true_kw = dict(plotstyle.TRUE_BAR, label="true atom")
    series: list[tuple[dict[str, float], dict[str, float], dict[str, Any]]] = [
        ({ATOM_SYMBOL.get(t, t): truth[t] for t in tasks}, {}, true_kw)
    ]
    stats = stats[stats["task"].isin(tasks)]
    for name in learners:
        means, stds = _means_stds(stats, name, "task")
        series.append(
            (
                {ATOM_SYMBOL.get(t, t): v for t, v in means.items()},
                {ATOM_SYMBOL.get(t, t): v for t, v in stds.items()},
                _bar_kw(styles[name]),
            )
        )
    top = _nice_top(max([*truth.values(), *(stats["mean"] + stats["std"])]))
    _, zero = _grouped_bars(ax, groups, series, top)
    ax.set_xticks(
        range(len(tasks)), [f"{ATOM_SYMBOL.get(t, t)}\n({t})" for t in tasks], linespacing=1.1
    )
    ax.set_ylabel("information (bits)")
    title, suffixes = _seed_legend(stats)
    handles = [Patch(label="true atom", **plotstyle.TRUE_BAR)]
    handles += _learner_handles(learners, styles, "bar", suffixes)
    if zero:
        handles.append(_zero_handle())
    _top_legend(fig, handles, title)
    if probe == "linear":
        lead = (
            "Bits about each PID atom held by the representation: the linear probe's mutual "
            "information lower bound on the task that isolates the atom"
        )
        name, title = "pid_bars", "Information captured per PID atom"
    else:
        lead = (
            f"Each PID atom as {_ESTIMATOR_PROBES[probe]} of (Z1, Z2; Y) reads it from the "
            "unimodal embeddings, on the task that isolates the atom"
        )
        name, title = f"{probe}_bars", f"PID atoms estimated by {probe}"
    caption = (
        f"{lead} (mean and std over seeds, {_seed_counts(stats)}), beside the exact atom of "
        "the generator (white, hatched). " + _role_caption(learners, styles, "bar", zero)
    ).strip()
    return _Fig(name + suffix, title, caption, figure=fig)


def _learning_curves(
    df: pd.DataFrame, styles: dict[str, plotstyle.LearnerStyle], suffix: str
) -> _Fig:
    metric, ylabel = _capture_metric(df[df["probe"] == _REPORT_PROBE])
    rows = _select(df, "linear", metric)
    stats = _mean_std(
        _per_seed(rows, "interaction", extra=("epoch",)), ["learner", "interaction", "epoch"]
    )
    groups = _interaction_order(stats["interaction"].unique())
    learners = plotstyle.learner_order(stats["learner"].unique())

    fig = _new_figure(1.5)
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
        ax.xaxis.set_major_locator(_few_ticks())
    if len(axes) == 1:
        axes[0].set_xlabel("epoch")
    else:
        fig.supxlabel("epoch", fontsize=plotstyle.FONT_SIZE)
    axes[0].set_ylabel(ylabel)
    lo = min(0.0, float((stats["mean"] - stats["std"]).min()))
    axes[0].set_ylim(lo, _nice_top(float((stats["mean"] + stats["std"]).max()), floor=1.05))
    title, suffixes = _seed_legend(stats, band=True)
    _top_legend(fig, _learner_handles(learners, styles, "line", suffixes), title)
    caption = (
        f"Linear-probe {metric.replace('_', ' ')} against training epoch, per interaction; "
        f"line: mean over seeds, band: std over seeds ({_seed_counts(stats)})"
        + ("; dotted: the whole atom. " if metric == "capture" else ". ")
        + _role_caption(learners, styles, "line")
    ).strip()
    return _Fig("learning_curves" + suffix, "Learning curves", caption, figure=fig)


def _sweep(
    final: pd.DataFrame, param: str, styles: dict[str, plotstyle.LearnerStyle], stem: str
) -> _Fig:
    metric, ylabel = _capture_metric(final[final["probe"] == _REPORT_PROBE])
    rows = _select(final, "linear", metric)
    numeric = pd.to_numeric(rows["sweep_value"], errors="coerce")
    is_numeric = bool(numeric.notna().all())
    if is_numeric:
        rows = rows.assign(x=numeric)
    else:
        # Categorical values keep the order the runs were given in.
        order = {v: i for i, v in enumerate(dict.fromkeys(rows["sweep_value"]))}
        rows = rows.assign(x=rows["sweep_value"].map(order).astype(float))
    per_seed = rows.groupby(["learner", "run_id", "seed", "task", "x"], as_index=False)[
        "value"
    ].mean()
    stats = _mean_std(per_seed, ["learner", "task", "x"])
    tasks = _task_order(stats["task"].unique())
    learners = plotstyle.learner_order(stats["learner"].unique())

    ncols = 2 if len(tasks) == 4 else len(tasks)
    nrows = math.ceil(len(tasks) / ncols)
    fig = _new_figure(0.1 + 1.3 * nrows)
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
            ax.xaxis.set_major_locator(_few_ticks())
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
    axes[0].set_ylim(lo, _nice_top(float((stats["mean"] + stats["std"]).max()), floor=1.05))
    title, suffixes = _seed_legend(stats)
    _top_legend(fig, _learner_handles(learners, styles, "line", suffixes), title)
    caption = (
        f"Linear-probe {metric.replace('_', ' ')} at the final epoch against the generator "
        f"parameter `{param}`, per task; mean and std over seeds ({_seed_counts(stats)})."
        + (" Capture = bits / true bits. " if metric == "capture" else " ")
        + _role_caption(learners, styles, "line")
    ).strip()
    return _Fig(stem, f"Sweep over {param}", caption, figure=fig)


def _few_ticks() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10], integer=True)


def _nice_top(value: float, floor: float = 0.0) -> float:
    """A round upper axis limit a little above `value`."""
    if not math.isfinite(value) or value <= 0:
        return max(floor, 1.0)
    step = 10 ** math.floor(math.log10(value)) / 4
    return max(floor, math.ceil(value * 1.02 / step) * step)


def _seed_counts(stats: pd.DataFrame) -> str:
    ns = sorted({int(n) for n in stats["n"]})
    if len(ns) == 1:
        return f"n = {ns[0]} seed{'s' if ns[0] != 1 else ''}"
    return f"n = {ns[0]}-{ns[-1]} seeds"


def _seed_legend(stats: pd.DataFrame, band: bool = False) -> tuple[str, dict[str, str]]:
    """The legend title stating the number of seeds, and label suffixes `(n=K)` per learner
    where learners have different numbers of seeds."""
    spread = "band" if band else "error bars"
    per = stats.groupby("learner")["n"].agg(["min", "max"]).astype(int)
    if len(per.drop_duplicates()) <= 1:
        lo, hi = (int(per["min"].min()), int(per["max"].max())) if len(per) else (0, 0)
        n = str(lo) if lo == hi else f"{lo}-{hi}"
        if hi <= 1:
            return f"n = {n} seed: no {spread}", {}
        return f"mean ± std over n = {n} seeds", {}
    suffixes = {
        name: f" (n={r['min']})" if r["min"] == r["max"] else f" (n={r['min']}-{r['max']})"
        for name, r in per.iterrows()
    }
    return "mean ± std over seeds (n per learner)", suffixes


def _means_stds(
    stats: pd.DataFrame, learner: str, by: str
) -> tuple[dict[str, float], dict[str, float]]:
    part = stats[stats["learner"] == learner].set_index(by)
    return part["mean"].to_dict(), part["std"].to_dict()


def _bar_kw(st: plotstyle.LearnerStyle) -> dict[str, Any]:
    return {"color": st.color, "edgecolor": "white", "hatch": st.hatch, "label": st.label}


def _role_caption(
    learners: Sequence[str],
    styles: dict[str, plotstyle.LearnerStyle],
    kind: str,
    zero: bool = False,
) -> str:
    """What the hatches (bars) or dash patterns (lines) of the roles present mean, and the
    zero markers where drawn."""
    roles = {styles[n].role for n in learners}
    mark = {"bar": ("Cross-hatched bars", "dotted bars"), "line": ("Dashed lines", "dash-dotted")}
    first, second = mark[kind]
    parts = []
    if "labels" in roles:
        parts.append(
            f"{first}: learners trained on the task labels (ceilings, not self-supervised results)"
        )
    if "floor" in roles:
        parts.append(
            f"{second if parts else second.capitalize()}: frozen untrained encoders (floors)"
        )
    text = "; ".join(parts) + ("." if parts else "")
    if zero:
        text += " A marker on the baseline: a bar of about zero (too short to see)."
    return text.strip()


def _write_figure(fig: _Fig, out_dir: Path, formats: Sequence[str]) -> list[Path]:
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
                path.write_bytes(fig.png)
            else:
                meta = {"CreationDate": None} if fmt == "pdf" else {"Date": None}
                fig.figure.savefig(path, format=fmt, metadata=meta)
            paths.append(path)
    fig.figure = None  # free the figure; only the PNG bytes are needed from here on
    return paths


def _check_formats(formats: Sequence[str]) -> list[str]:
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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "x"


# --------------------------------------------------------------------------------------------
# Summary (markdown and self-contained HTML from the same blocks)
# --------------------------------------------------------------------------------------------


@dataclass
class _Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    left: int = 1  # the first `left` columns hold text (left-aligned); the rest numbers


# A block is (kind, payload): ("h1"|"h2"|"h3"|"p", str), ("table", _Table),
# ("list", list[str]), ("figure", _Fig).
_Block = tuple[str, Any]


def _fmt(x: float, digits: int = 3) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _cell(mean: float, std: float, n: int, digits: int = 3) -> str:
    if n <= 1:
        return f"{_fmt(mean, digits)} (1)"
    return f"{_fmt(mean, digits)} ± {_fmt(std, digits)} ({n})"


def _learner_task_table(final: pd.DataFrame, probe: str, metric: str, digits: int = 3) -> _Table:
    stats = _mean_std(_per_seed(_select(final, probe, metric), "task"), ["learner", "task"])
    tasks = _task_order(stats["task"].unique())
    rows = []
    for name in plotstyle.learner_order(stats["learner"].unique()):
        part = stats[stats["learner"] == name].set_index("task")
        row = [name]
        for t in tasks:
            row.append(
                _cell(part.at[t, "mean"], part.at[t, "std"], int(part.at[t, "n"]), digits)
                if t in part.index
                else "–"
            )
        rows.append(row)
    return _Table(["learner", *tasks], rows)


def _summary_blocks(
    df: pd.DataFrame,
    sections: list[_Section],
    notes: list[str],
    run_dirs: Sequence[str | Path],
) -> list[_Block]:
    blocks: list[_Block] = [("h1", "pid-bench report")]
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
        blocks += _section_blocks(section, level="h3" if len(sections) > 1 else "h2")
    if notes:
        blocks.append(("h2", "Notes"))
        blocks.append(("list", notes))
    return blocks


def _section_blocks(section: _Section, level: str) -> list[_Block]:
    blocks: list[_Block] = [(level, "Figures")]
    for fig in section.figures:
        blocks.append(("figure", fig))
    if section.skipped:
        blocks.append(("p", "Not drawn:"))
        blocks.append(("list", section.skipped))

    final = section.plain
    if not final.empty:
        acc = _learner_task_table(final, "linear", "balanced_accuracy")
        chance = _select(final, "linear", "chance").groupby("task")["value"].mean()
        acc.rows.append(["chance", *[_fmt(chance.get(t, np.nan)) for t in acc.columns[1:]]])
        acc.caption = "Linear probe, balanced accuracy (final epoch)."
        blocks += [(level, "Linear probe: balanced accuracy"), ("table", acc)]

        bits = _learner_task_table(final, "linear", "mi_bits")
        truth = final.groupby("task")["true_bits"].median()
        bits.rows.append(["true atom", *[_fmt(truth.get(t, np.nan)) for t in bits.columns[1:]]])
        bits.caption = "Linear probe, mutual information lower bound (bits)."
        blocks += [(level, "Linear probe: bits captured"), ("table", bits)]

        cap = _learner_task_table(final, "linear", "capture")
        if cap.rows:
            cap.caption = "Linear probe, capture = bits / true bits of the task's atom."
            blocks += [(level, "Linear probe: capture"), ("table", cap)]

        mlp = _learner_task_table(final, "mlp", "balanced_accuracy")
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


def _floor_ceiling_blocks(final: pd.DataFrame, level: str) -> list[_Block]:
    """The task's floor and ceiling, and each learner's position between them."""
    from pid_bench.check import run_plugins, untrained_floors

    learners = plotstyle.learner_order(final["learner"].unique())
    fc = floor_ceiling(final, untrained_floors(learners, run_plugins(final)), learners)
    blocks: list[_Block] = [(level, "Floor and ceiling")]
    if fc.tasks.empty:
        return [*blocks, ("list", fc.notes)]
    table = _Table(["", *fc.tasks["task"]], fc.rows())
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


def _published_blocks(final: pd.DataFrame, generator: str, level: str) -> list[_Block]:
    """This run next to the published table of its generator, for the learners in both."""
    from pid_bench.published import PUBLISHED

    pub = PUBLISHED.get(generator)
    if pub is None:
        return []
    stats = _mean_std(
        _per_seed(_select(final, "linear", "balanced_accuracy"), "task"), ["learner", "task"]
    ).set_index(["learner", "task"])
    tasks = _task_order({t for v in pub.values.values() for t in v})
    rows = []
    for name in plotstyle.learner_order(stats.index.get_level_values(0).unique()):
        if name not in pub.values:
            continue
        row = [name]
        for t in tasks:
            theirs = pub.values[name].get(t, np.nan)
            if (name, t) not in stats.index:
                row.append(f"– (published {_fmt(theirs, 1)})")
                continue
            m, sd, n = stats.loc[(name, t), ["mean", "std", "n"]]
            ours = _cell(m * pub.scale, sd * pub.scale, int(n), 1)
            row.append(f"{ours} vs {_fmt(theirs, 1)} ({m * pub.scale - theirs:+.1f})")
        rows.append(row)
    if not rows:
        return []
    table = _Table(
        ["learner", *tasks],
        rows,
        f"This run, mean ± std (seeds), vs published ({pub.metric}), difference in brackets. "
        f"Published: {pub.source}; {pub.setting}.",
    )
    return [(level, "Next to the published numbers"), ("table", table)]


def _clustered_pid_blocks(final: pd.DataFrame, level: str) -> list[_Block]:
    rows_df = final[final["probe"] == "pid_clustered"]
    if rows_df.empty:
        return []
    from estimators.clustered import MIN_SAMPLES_PER_CELL

    atoms = [a for a in (*TASKS, "mutual_info") if a in set(rows_df["metric"])]
    means = rows_df.groupby(["learner", "task", "metric"])["value"].mean()
    # runs written before the estimator reported it have no samples_per_cell rows
    has_spc = "samples_per_cell" in set(rows_df["metric"])
    rows = []
    few = 0
    for name in plotstyle.learner_order(rows_df["learner"].unique()):
        for task in _task_order(rows_df.loc[rows_df["learner"] == name, "task"].unique()):
            row = [name, task, *[_fmt(means.get((name, task, a), np.nan)) for a in atoms]]
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
    table = _Table(["learner", "task", *heads], rows, caption, left=2)
    return [(level, "Clustered PID of the unimodal embeddings"), ("table", table)]


def _batch_pid_blocks(final: pd.DataFrame, level: str) -> list[_Block]:
    """BATCH estimates of (Z1, Z2; Y) per learner and task, beside the task's true atoms."""
    rows_df = final[final["probe"] == "pid_batch"]
    if rows_df.empty:
        return []
    atoms = [*TASKS, "mutual_info"]
    means = rows_df.groupby(["learner", "task", "metric"])["value"].mean()
    rows = []
    for name in plotstyle.learner_order(rows_df["learner"].unique()):
        for task in _task_order(rows_df.loc[rows_df["learner"] == name, "task"].unique()):
            vals = [_fmt(means.get((name, task, a), np.nan)) for a in atoms]
            acc = means.get((name, task, "accuracy12"), np.nan)
            rows.append([name, task, *vals, _fmt(acc)])
    truth = rows_df.groupby("task")["true_bits"].first()
    atom_of = rows_df.groupby("task")["true_atom"].first()
    for task in _task_order(truth.index):
        vals = [_fmt(truth[task] if a == atom_of[task] else 0.0) for a in TASKS]
        rows.append(["true", task, *vals, _fmt(truth[task]), ""])
    heads = [ATOM_SYMBOL.get(a, "I(Y; Z1, Z2)") for a in atoms]
    caption = (
        "BATCH (neural) PID estimate of (Z1, Z2; Y) from the unimodal embeddings, bits, mean "
        "over seeds; acc12: held-out accuracy of its joint classifier (low: the estimate rests "
        "on an under-trained classifier). Rows 'true': the task's PID of the latents."
    )
    table = _Table(["learner", "task", *heads, "acc12"], rows, caption, left=2)
    return [(level, "BATCH PID of the unimodal embeddings"), ("table", table)]


def _truth_table(final: pd.DataFrame) -> _Table:
    rows = []
    chance = _select(final, "linear", "chance").groupby("task")["value"].mean()
    by_task = final.groupby("task")
    for task in _task_order(final["task"].unique()):
        part = by_task.get_group(task)
        atom = ", ".join(sorted({a for a in part["true_atom"] if a})) or "–"
        bits = part["true_bits"].dropna()
        spread = "" if bits.nunique() <= 1 else f" (varies: {bits.min():.3f}-{bits.max():.3f})"
        k = chance.get(task, np.nan)
        classes = str(round(1 / k)) if math.isfinite(k) and k > 0 else "–"
        rows.append([task, atom, _fmt(bits.median()) + spread, classes])
    return _Table(
        ["task", "isolated atom", "true bits", "classes"],
        rows,
        "The atom each task isolates and its exact value (bits); by construction the task's "
        "other atoms are zero.",
        left=2,
    )


def _sweep_blocks(sweep: pd.DataFrame, level: str) -> list[_Block]:
    blocks: list[_Block] = []
    metric, _ = _capture_metric(sweep[sweep["probe"] == _REPORT_PROBE])
    rows_all = _select(sweep, "linear", metric)
    for param in sorted(rows_all["sweep_param"].unique()):
        part = rows_all[rows_all["sweep_param"] == param]
        values = list(dict.fromkeys(part["sweep_value"]))
        numeric = pd.to_numeric(pd.Series(values), errors="coerce")
        if numeric.notna().all():
            values = [v for _, v in sorted(zip(numeric, values, strict=True))]
        blocks.append((level, f"Sweep over `{param}`: linear-probe {metric}"))
        for task in _task_order(part["task"].unique()):
            tpart = part[part["task"] == task]
            stats = tpart.groupby(["learner", "sweep_value"])["value"].agg(["mean", "std", "count"])
            rows = []
            for name in plotstyle.learner_order(tpart["learner"].unique()):
                row = [name]
                for v in values:
                    if (name, v) in stats.index:
                        s = stats.loc[(name, v)]
                        std = 0.0 if not math.isfinite(s["std"]) else s["std"]
                        row.append(_cell(s["mean"], std, int(s["count"]), 2))
                    else:
                        row.append("–")
                rows.append(row)
            blocks.append(
                ("table", _Table([f"{task} \\ {param}", *values], rows, f"Task `{task}`."))
            )
    return blocks


def _runs_blocks(df: pd.DataFrame) -> list[_Block]:
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
                _fmt(float(np.nansum(elapsed)), 0) if elapsed.notna().any() else "–",
            ]
        )
    runs = _Table(
        ["run", "generator", "sweep", "learners", "git sha", "device", "seeds", "last epoch", "s"],
        rows,
        "Runs in this report (s: summed elapsed seconds of the cells).",
        left=6,
    )
    blocks: list[_Block] = [("h2", "Runs"), ("table", runs)]

    params = []
    for run_id, text in df.drop_duplicates("run_id")[["run_id", "params"]].itertuples(index=False):
        params.append([str(run_id), f"`{_params_digest(text)}`"])
    blocks.append(
        (
            "table",
            _Table(["run", "parameters"], params, "Generator and training parameters.", left=2),
        )
    )

    versions: dict[str, set[str]] = {}
    for text in df["versions"].astype(str).unique():
        for pkg, ver in _json_dict(text).items():
            versions.setdefault(str(pkg), set()).add(str(ver))
    if versions:
        vrows = [[pkg, " / ".join(sorted(v))] for pkg, v in sorted(versions.items())]
        blocks.append(("table", _Table(["package", "version"], vrows, "Package versions.", left=2)))
    return blocks


def _json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _params_digest(text: str, limit: int = 400) -> str:
    """The generator and training parts of a params JSON (all of it if those keys are absent).

    The runner's params JSON is its whole resolved config; model/probe details stay in
    config.json, since the summary table would otherwise be unreadably wide.
    """
    params = _json_dict(text)
    wanted = ("generator", "generator_params", "profile", "interaction", "train", "training")
    keep = {k: params[k] for k in wanted if k in params}
    digest = json.dumps(keep or params, sort_keys=True, separators=(", ", ": "))
    return digest if len(digest) <= limit else digest[: limit - 1] + "…"


def _render_markdown(blocks: list[_Block]) -> str:
    out: list[str] = []
    for kind, payload in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append(f"{'#' * int(kind[1])} {payload}\n")
        elif kind == "p":
            out.append(f"{payload}\n")
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in payload) + "\n")
        elif kind == "figure":
            links = " · ".join(f"[{p.suffix[1:].upper()}]({p.name})" for p in payload.paths)
            img = next((p for p in payload.paths if p.suffix == ".png"), None)
            shown = f"![{payload.title}]({img.name})\n\n" if img else ""
            out.append(f"**{payload.title}** ({links})\n\n{shown}*{payload.caption}*\n")
        elif kind == "table":
            out.append(_table_markdown(payload))
    return "\n".join(out)


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def _table_markdown(table: _Table) -> str:
    lines = [
        "| " + " | ".join(_md_escape(c) for c in table.columns) + " |",
        "|"
        + "|".join("---" if i < table.left else "---:" for i in range(len(table.columns)))
        + "|",
    ]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in table.rows]
    caption = f"\n*{table.caption}*\n" if table.caption else ""
    return "\n".join(lines) + "\n" + caption


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:60rem;
margin:2rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
h3{font-size:1.05rem;margin-top:1.5rem}
table{border-collapse:collapse;margin:.5rem 0 .25rem;font-size:.85rem}
th,td{padding:.2rem .6rem;border-bottom:1px solid #e5e5e5;text-align:right;white-space:nowrap}
th.l,td.l{text-align:left}th{background:#f5f5f5}
figure{margin:1rem 0 1.5rem}figure img{width:100%;max-width:34rem;display:block}
figcaption,.caption{font-size:.85rem;color:#444;margin-top:.25rem}
code{background:#f3f3f3;padding:0 .2rem;border-radius:3px;font-size:.85em}
"""


def _inline_html(text: str) -> str:
    escaped = html.escape(str(text))
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def _render_html(blocks: list[_Block]) -> str:
    body: list[str] = []
    for kind, payload in blocks:
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_inline_html(payload)}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(payload)}</p>")
        elif kind == "list":
            items = "".join(f"<li>{_inline_html(i)}</li>" for i in payload)
            body.append(f"<ul>{items}</ul>")
        elif kind == "figure":
            data = base64.b64encode(payload.png).decode("ascii")
            body.append(
                f'<figure><img alt="{html.escape(payload.title)}" '
                f'src="data:image/png;base64,{data}">'
                f"<figcaption><b>{_inline_html(payload.title)}.</b> "
                f"{_inline_html(payload.caption)}</figcaption></figure>"
            )
        elif kind == "table":
            left = payload.left

            def cls(i: int, left: int = left) -> str:
                return ' class="l"' if i < left else ""

            head = "".join(
                f"<th{cls(i)}>{_inline_html(c)}</th>" for i, c in enumerate(payload.columns)
            )
            rows = "".join(
                "<tr>"
                + "".join(f"<td{cls(i)}>{_inline_html(c)}</td>" for i, c in enumerate(row))
                + "</tr>"
                for row in payload.rows
            )
            caption = (
                f'<div class="caption">{_inline_html(payload.caption)}</div>'
                if payload.caption
                else ""
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            body.append(caption)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>pid-bench report</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
