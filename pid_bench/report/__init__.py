"""Paper-style figures and summaries drawn from results tables (never by re-running).

`make_report(run_dirs, out)` reads the `results.csv` of one or more run folders, concatenates
them and writes into `out` the figures (`figures.FIGURES`: accuracy_bars, pid_bars,
pid_clustered_bars, pid_batch_bars, learning_curves, sweep; each where the runs have its rows),
`summary.md` (tables + figure links) and a self-contained `summary.html`.

One module per concern, each importing only those before it:

- `data`: the results table as the report reads it (loading, checks, grouping by seed);
- `drawing`: matplotlib helpers the figures share (bars, legends, captions);
- `figures`: the figures of one generator's runs, and writing them to files;
- `tables`: the summary's tables and the order of the page, as blocks;
- `render`: those blocks as markdown and as an HTML page.

Final results are the rows at the largest epoch of each (run_id, learner, seed, task); means
and error bars are over seeds (std, ddof=1).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from generators.base import TASKS
from generators.io import write_atomic
from pid_bench import plotstyle
from pid_bench.report.data import (
    ATOM_SYMBOL,
    INTERACTIONS,
    TASK_INTERACTION,
    load_report_table,
    report_roles,
    slug,
)
from pid_bench.report.figures import (
    FIGURES,
    SUPPORTED_FORMATS,
    Section,
    build_section,
    check_formats,
    write_figure,
)
from pid_bench.report.render import render_html, render_markdown
from pid_bench.report.tables import summary_blocks

__all__ = [
    "ATOM_SYMBOL",
    "FIGURES",
    "INTERACTIONS",
    "SUPPORTED_FORMATS",
    "TASKS",
    "TASK_INTERACTION",
    "build_section",
    "load_report_table",
    "make_report",
    "report_roles",
]


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
    fmts = check_formats(formats)
    df, notes = load_report_table(run_dirs)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)

    generators = sorted(df["generator"].unique())
    styles = plotstyle.learner_styles(df["learner"].unique(), report_roles(df))
    sections: list[Section] = []
    for gen in generators:
        suffix = "" if len(generators) == 1 else f"_{slug(gen)}"
        sections.append(build_section(df[df["generator"] == gen], gen, suffix, styles))

    written: list[Path] = []
    for section in sections:
        for fig in section.figures:
            fig.paths = write_figure(fig, out_dir, fmts)
            written += fig.paths

    blocks = summary_blocks(df, sections, notes, run_dirs)
    md_path = out_dir / "summary.md"
    write_atomic(md_path, render_markdown(blocks))
    html_path = out_dir / "summary.html"
    write_atomic(html_path, render_html(blocks))
    return [*written, md_path, html_path]
