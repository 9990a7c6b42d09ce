"""Drawing helpers the report's figures share: bars, legends, axis limits, captions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from pid_bench import plotstyle

#: Space between the plot and the legend under it, inches.
LEGEND_PAD_IN = 0.06

Styles = dict[str, plotstyle.LearnerStyle]
#: One bar series: means and stds by group, and the keyword arguments of its bars.
Series = tuple[dict[str, float], dict[str, float], dict[str, Any]]


def new_figure(height: float, width: float = plotstyle.COLUMN_WIDTH) -> Figure:
    """A figure `height` inches tall without its legend (`add_legend` adds the legend's)."""
    return Figure(figsize=(width, height), layout="constrained")


def add_legend(fig: Figure, handles: list[Any], title: str | None = None) -> None:
    """The legend under the plot, in as many columns as fit across the figure.

    The figure grows by the legend's height, so that the plot keeps the height `new_figure`
    gave it; where the legend needs more rows than that height holds, the plot grows to the
    legend's height, so that a legend is never taller than its plot.
    """
    plot_height = fig.get_figheight()
    legend = plotstyle.legend_below(fig, handles, title=title)
    height = legend.get_window_extent(fig.canvas.get_renderer()).height / fig.dpi
    # the slack covers the layout's padding around the plot
    fig.set_figheight(max(plot_height, height + 2 * LEGEND_PAD_IN) + height + LEGEND_PAD_IN)


def learner_handles(
    learners: Sequence[str],
    styles: Styles,
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


def zero_handle() -> Line2D:
    """The legend entry of the marker drawn under a bar of about zero."""
    return Line2D(
        [], [], markerfacecolor="white", label="≈ 0 (bar too short to see)", **plotstyle.ZERO_MARKER
    )


def grouped_bars(
    ax: Any, groups: Sequence[str], series: Sequence[Series], top: float
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
    # more than the two-modality figures' three groups: multi-word names on two lines
    ax.set_xticks(x, [g.replace(" ", "\n") if len(groups) > 3 else g for g in groups])
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.set_ylim(0, top)
    ax.tick_params(axis="x", length=0)
    return width, zero_drawn


def few_ticks() -> MaxNLocator:
    """At most about four integer ticks (epochs, integer sweep values)."""
    return MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10], integer=True)


def nice_top(value: float, floor: float = 0.0) -> float:
    """A round upper axis limit a little above `value`."""
    if not math.isfinite(value) or value <= 0:
        return max(floor, 1.0)
    step = 10 ** math.floor(math.log10(value)) / 4
    return max(floor, math.ceil(value * 1.02 / step) * step)


def seed_counts(stats: pd.DataFrame) -> str:
    """ "n = K seeds" (or a range) from the `n` column of `stats`."""
    ns = sorted({int(n) for n in stats["n"]})
    if len(ns) == 1:
        return f"n = {ns[0]} seed{'s' if ns[0] != 1 else ''}"
    return f"n = {ns[0]}-{ns[-1]} seeds"


def seed_legend(stats: pd.DataFrame, band: bool = False) -> tuple[str, dict[str, str]]:
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


def means_stds(
    stats: pd.DataFrame, learner: str, by: str
) -> tuple[dict[str, float], dict[str, float]]:
    """One learner's means and stds keyed by the `by` column."""
    part = stats[stats["learner"] == learner].set_index(by)
    return part["mean"].to_dict(), part["std"].to_dict()


def bar_kw(st: plotstyle.LearnerStyle) -> dict[str, Any]:
    """Keyword arguments of a learner's bars."""
    return {"color": st.color, "edgecolor": "white", "hatch": st.hatch, "label": st.label}


def role_caption(
    learners: Sequence[str],
    styles: Styles,
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
