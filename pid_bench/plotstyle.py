"""One matplotlib style for every pid-bench figure.

Figures are sized for a paper column (3.3 in) with 8 pt sans-serif text, so they can be placed
at 100% without rescaling. Colours come from the Okabe-Ito palette (safe for the common forms
of colour blindness), and each learner keeps one colour and one marker in every figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend

#: Width of a single paper column, inches.
COLUMN_WIDTH = 3.3
#: Font size for every text element, points (the smallest size most venues accept).
FONT_SIZE = 8

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO: dict[str, str] = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}

#: Preferred display order: contrastive baselines, the method under study, then the bounds.
LEARNER_ORDER: tuple[str, ...] = (
    "cross",
    "cross_self",
    "factorcl",
    "shared_private",
    "symile",
    "comm",
    "comm_unimodal",
    "supervised",
    "random",
    "random_fusion",
)

LEARNER_LABELS: dict[str, str] = {
    "cross": "Cross",
    "cross_self": "Cross+Self",
    "factorcl": "FactorCL",
    "shared_private": "Shared/private",
    "comm": "CoMM",
    "supervised": "Supervised",
    "random": "Random",
    "random_fusion": "Random fusion",
    "comm_unimodal": "CoMM (no fused term)",
    "symile": "Symile",
}

LEARNER_COLOURS: dict[str, str] = {
    "cross": OKABE_ITO["blue"],
    "cross_self": OKABE_ITO["sky_blue"],
    "factorcl": OKABE_ITO["bluish_green"],
    "shared_private": OKABE_ITO["reddish_purple"],
    "comm": OKABE_ITO["vermillion"],
    "supervised": OKABE_ITO["orange"],
    "random": "#9A9A9A",
    "random_fusion": "#4D4D4D",
    "comm_unimodal": "#F0E442",
    "symile": "#661100",
}

LEARNER_MARKERS: dict[str, str] = {
    "cross": "s",
    "cross_self": "D",
    "factorcl": "^",
    "shared_private": "v",
    "comm": "o",
    "supervised": "P",
    "random": "X",
    "random_fusion": "x",
    "comm_unimodal": "h",
    "symile": "*",
}

# Learners without a preferred colour take these in turn: Paul Tol's "muted" scheme (also
# colour-blind safe) interleaved with the unused Okabe-Ito colours.
_SPARE_COLOURS: tuple[str, ...] = (
    "#332288",
    OKABE_ITO["black"],
    "#44AA99",
    "#882255",
    "#999933",
    "#88CCEE",
    "#CC6677",
    "#117733",
    "#AA4499",
    # Yellow last: too light for thin lines on white.
    OKABE_ITO["yellow"],
)
_SPARE_MARKERS: tuple[str, ...] = ("h", "<", ">", "p", "*", "d", "8")

#: Fill and hatch of the "true value" bars (distinct from every learner colour).
TRUE_BAR: dict[str, Any] = {"facecolor": "white", "edgecolor": "#333333", "hatch": "/////"}
#: Reference lines (chance level, full capture).
REFERENCE_LINE: dict[str, Any] = {"color": "#222222", "linestyle": (0, (3, 2)), "linewidth": 0.8}

#: How a learner with a role (`pid_bench.discrimination.learner_roles`) is set apart from the
#: others: its bars carry a white hatch (cross-hatched: trained on the task labels, a ceiling;
#: dotted: a frozen untrained encoder, a floor), its lines a dash pattern. The "true value"
#: bars' hatch (`TRUE_BAR`: dark diagonal lines on white) is neither.
ROLE_HATCH: dict[str, str] = {"labels": "xxxx", "floor": "...."}
ROLE_LINESTYLE: dict[str, Any] = {"labels": (0, (4, 1.5)), "floor": (0, (4, 1.5, 1, 1.5))}
#: What a role's hatch and dash mean, as the legend says it.
ROLE_LABELS: dict[str, str] = {
    "labels": "trained on labels (ceiling)",
    "floor": "frozen untrained (floor)",
}
#: A bar shorter than this fraction of its axis is drawn invisibly thin, so it gets a marker
#: on the baseline (`ZERO_MARKER`) that says "about zero" rather than "missing".
ZERO_FRACTION = 0.015
ZERO_MARKER: dict[str, Any] = {
    "marker": "o",
    "markersize": 3.2,
    "markeredgecolor": "#222222",
    "markeredgewidth": 0.6,
    "linestyle": "none",
}


@dataclass(frozen=True)
class LearnerStyle:
    """How one learner is drawn."""

    name: str
    label: str
    color: str
    marker: str
    #: "labels", "floor" or "" (`pid_bench.discrimination.learner_roles`)
    role: str = ""

    @property
    def hatch(self) -> str | None:
        """The hatch of this learner's bars (None: plain)."""
        return ROLE_HATCH.get(self.role)

    @property
    def linestyle(self) -> Any:
        """The dash pattern of this learner's lines."""
        return ROLE_LINESTYLE.get(self.role, "-")


def learner_order(names: Iterable[str]) -> list[str]:
    """`names` in display order: known learners in `LEARNER_ORDER`, then others sorted."""
    names = set(names)
    known = [n for n in LEARNER_ORDER if n in names]
    return known + sorted(names - set(LEARNER_ORDER))


def learner_styles(
    names: Iterable[str], roles: dict[str, str] | None = None
) -> dict[str, LearnerStyle]:
    """Colour, marker, label and role for each learner, in display order.

    Known learners always get the same colour; unknown ones get spare colours in sorted order,
    so the mapping is the same for every figure drawn from the same set of learners. `roles`
    (learner -> "labels" | "floor") sets the hatch and dash pattern that mark ceilings and
    floors.
    """
    roles = roles or {}
    styles: dict[str, LearnerStyle] = {}
    spare = 0
    for name in learner_order(names):
        if name in LEARNER_COLOURS:
            color, marker = LEARNER_COLOURS[name], LEARNER_MARKERS[name]
        else:
            color = _SPARE_COLOURS[spare % len(_SPARE_COLOURS)]
            marker = _SPARE_MARKERS[spare % len(_SPARE_MARKERS)]
            spare += 1
        label = LEARNER_LABELS.get(name, name)
        styles[name] = LearnerStyle(name, label, color, marker, roles.get(name, ""))
    return styles


@lru_cache(maxsize=1)
def _sans_serif_fonts() -> list[str]:
    # Prefer the fonts journals ask for when they are installed; DejaVu Sans ships with
    # matplotlib, so the list is never empty and matplotlib never warns about a missing family.
    from matplotlib import font_manager

    available = {f.name for f in font_manager.fontManager.ttflist}
    wanted = ("Arial", "Helvetica", "Liberation Sans", "Nimbus Sans", "DejaVu Sans")
    return [f for f in wanted if f in available] or ["DejaVu Sans"]


def rc_params() -> dict[str, Any]:
    """The rcParams of the pid-bench style."""
    fonts = _sans_serif_fonts()
    return {
        "font.family": "sans-serif",
        "font.sans-serif": fonts,
        "mathtext.fontset": "custom",
        "mathtext.rm": fonts[0],
        "mathtext.it": f"{fonts[0]}:italic",
        "font.size": FONT_SIZE,
        "axes.titlesize": FONT_SIZE,
        "axes.titleweight": "bold",
        "axes.labelsize": FONT_SIZE,
        "xtick.labelsize": FONT_SIZE,
        "ytick.labelsize": FONT_SIZE,
        "legend.fontsize": FONT_SIZE,
        "legend.title_fontsize": FONT_SIZE,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.linewidth": 0.6,
        "axes.edgecolor": "#333333",
        "axes.labelcolor": "#111111",
        "axes.titlepad": 3.0,
        "axes.labelpad": 2.0,
        "axes.grid": True,
        "axes.grid.axis": "y",
        "axes.axisbelow": True,
        "grid.color": "#E3E3E3",
        "grid.linewidth": 0.5,
        "xtick.major.width": 0.6,
        "ytick.major.width": 0.6,
        "xtick.major.size": 2.5,
        "ytick.major.size": 2.5,
        "xtick.major.pad": 2.0,
        "ytick.major.pad": 2.0,
        "lines.linewidth": 1.2,
        "lines.markersize": 3.5,
        "errorbar.capsize": 1.5,
        "hatch.linewidth": 0.5,
        "legend.frameon": False,
        "legend.handlelength": 1.4,
        "legend.handleheight": 0.8,
        "legend.handletextpad": 0.4,
        "legend.columnspacing": 0.9,
        "legend.labelspacing": 0.25,
        "legend.borderaxespad": 0.2,
        "legend.borderpad": 0.1,
        "figure.dpi": 100,
        "figure.constrained_layout.h_pad": 0.02,
        "figure.constrained_layout.w_pad": 0.02,
        "savefig.dpi": 300,
        # Editable text in PDF/SVG; a fixed hash salt keeps SVG output byte-stable.
        "pdf.fonttype": 42,
        "ps.fonttype": 42,
        "svg.fonttype": "none",
        "svg.hashsalt": "pid-bench",
    }


@contextmanager
def style() -> Iterator[None]:
    """Context in which figures are created and saved with the pid-bench style."""
    with mpl.rc_context(rc_params()):
        yield


def legend_below(
    fig: Figure, handles: Sequence[Any], margin_in: float = 0.05, title: str | None = None
) -> Legend:
    """A legend under the axes with as many columns as fit across the figure, under `title`.

    Widths are measured with the renderer (legend columns are as wide as their widest entry),
    so short labels share a row and the legend never spills past the figure's edge.
    """
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)  # attaches itself as fig.canvas; needed to measure text
    renderer = fig.canvas.get_renderer()
    limit = fig.get_figwidth() - margin_in
    for ncol in range(len(handles), 0, -1):
        legend = fig.legend(
            handles=list(handles), loc="outside lower center", ncol=ncol, title=title
        )
        if ncol == 1 or legend.get_window_extent(renderer).width / fig.dpi <= limit:
            return legend
        legend.remove()
    raise AssertionError("unreachable")
