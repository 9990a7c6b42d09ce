"""Reports: figures, summaries and input errors, from small synthetic results tables."""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from pid_bench import plotstyle  # noqa: E402
from pid_bench.report import (  # noqa: E402
    build_section,
    load_report_table,
    make_report,
    report_roles,
)
from pid_bench.results import COLUMNS  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LEARNERS = ("cross", "comm", "supervised")


def _figure_files(paths: list[Path]) -> list[Path]:
    return [p for p in paths if p.suffix in (".png", ".pdf", ".svg")]


def _stems(paths: list[Path]) -> set[str]:
    return {p.stem for p in _figure_files(paths)}


def _assert_valid_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    img = mpimg.imread(path)
    # 3.3 in at 300 dpi: roughly 1000 px wide, never a blank or tiny image.
    assert img.ndim == 3 and 800 <= img.shape[1] <= 1100 and img.shape[0] > 300, img.shape
    assert img[..., :3].std() > 0.05


def _assert_valid_pdf(path: Path) -> None:
    data = path.read_bytes()
    assert data[:5] == b"%PDF-", path
    assert data.rstrip().endswith(b"%%EOF"), path


@pytest.fixture(scope="module")
def plain_report(
    write_fixture_run, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[Path]]:
    """One folder, one probed epoch, no sweep."""
    root = tmp_path_factory.mktemp("plain")
    run = write_fixture_run(root / "run", learners=LEARNERS, seeds=(0, 1, 2), epochs=20)
    out = root / "report"
    return out, make_report([run], out)


@pytest.fixture(scope="module")
def full_report(
    write_fixture_run, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[Path]]:
    """Learning curves (several epochs) plus a sweep folder, every learner."""
    root = tmp_path_factory.mktemp("full")
    curves = write_fixture_run(
        root / "curves",
        learners=tuple(plotstyle.LEARNER_ORDER),
        seeds=(0, 1),
        epochs=(0, 10, 20),
        n_classes={"synergy": 2},
    )
    sweep = write_fixture_run(
        root / "sweep", learners=("cross", "comm"), seeds=(0, 1), sweep=("noise", [0.0, 0.5, 1.0])
    )
    out = root / "report"
    return out, make_report([curves, sweep], out)


def test_plain_report_draws_bars_only(plain_report: tuple[Path, list[Path]]) -> None:
    out, paths = plain_report
    assert all(p.is_file() and p.parent == out for p in paths)
    figures = _figure_files(paths)
    assert len(figures) == 6  # accuracy_bars, pid_bars, pid_clustered_bars; PNG and PDF
    assert _stems(paths) == {"accuracy_bars", "pid_bars", "pid_clustered_bars"}
    for p in figures:
        (_assert_valid_png if p.suffix == ".png" else _assert_valid_pdf)(p)
    assert {p.name for p in paths} >= {"summary.md", "summary.html"}


def test_full_report_adds_learning_curves_and_sweep(full_report: tuple[Path, list[Path]]) -> None:
    _, paths = full_report
    assert len(_figure_files(paths)) == 10
    assert _stems(paths) == {
        "accuracy_bars",
        "pid_bars",
        "pid_clustered_bars",
        "learning_curves",
        "sweep",
    }
    for p in _figure_files(paths):
        (_assert_valid_png if p.suffix == ".png" else _assert_valid_pdf)(p)


def test_summary_markdown_tables_and_links(plain_report: tuple[Path, list[Path]]) -> None:
    out, _ = plain_report
    md = (out / "summary.md").read_text()
    for link in re.findall(r"\]\(([^)]+)\)", md):
        assert (out / link).is_file(), link
    assert "## Linear probe: balanced accuracy" in md
    assert "| learner | redundancy | unique1 | unique2 | synergy |" in md
    assert "per interaction (uniqueness averages the unique1 and unique2 tasks)." in md
    # Skipped figures are explained, not silently missing.
    assert "learning_curves: the runs were probed at one epoch only" in md
    assert "sweep: no sweep runs" in md
    assert "0123abc" in md and "cpu" in md and "torch" in md  # git sha, device, versions

    # The comm/synergy cell is the mean ± std over seeds of the final linear-probe rows.
    df = pd.read_csv(out.parent / "run" / "results.csv")
    sel = df[
        (df.learner == "comm")
        & (df.task == "synergy")
        & (df.probe == "linear")
        & (df.metric == "balanced_accuracy")
    ]["value"]
    assert f"{sel.mean():.3f} ± {sel.std():.3f} (3)" in md


def test_summary_html_is_self_contained(full_report: tuple[Path, list[Path]]) -> None:
    out, paths = full_report
    text = (out / "summary.html").read_text()
    assert text.startswith("<!DOCTYPE html>")
    srcs = re.findall(r"""src\s*=\s*["']([^"']*)""", text)
    assert len(srcs) == len([p for p in paths if p.suffix == ".png"])
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    # each figure embedded whole: the bytes of its PNG file
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in srcs}
    assert embedded == {p.read_bytes() for p in paths if p.suffix == ".png"}
    assert "href=" not in text and "url(" not in text and "@import" not in text
    assert "<table>" in text and "Sweep over" in text


def test_sweep_only_report_skips_bars(write_fixture_run, tmp_path: Path) -> None:
    run = write_fixture_run(tmp_path / "s", learners=("comm",), seeds=(0,), sweep=("dim", [8, 16]))
    paths = make_report([run], tmp_path / "out", formats=("png",))
    assert _stems(paths) == {"sweep"}
    assert len(_figure_files(paths)) == 1
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "every run is a sweep point" in md


def test_several_generators_get_suffixed_figures(write_fixture_run, tmp_path: Path) -> None:
    a = write_fixture_run(tmp_path / "a", learners=("comm",), seeds=(0,), generator="bits")
    b = write_fixture_run(tmp_path / "b", learners=("comm",), seeds=(0,), generator="gaussian")
    paths = make_report([a, b], tmp_path / "out", formats=("png",))
    assert _stems(paths) == {
        f"{fig}_{gen}"
        for fig in ("accuracy_bars", "pid_bars", "pid_clustered_bars")
        for gen in ("bits", "gaussian")
    }


def test_non_finite_rows_are_left_out_and_noted(write_fixture_run, tmp_path: Path) -> None:
    run = write_fixture_run(tmp_path / "r", learners=("comm",), seeds=(0, 1), tasks=("synergy",))
    df = pd.read_csv(run / "results.csv", keep_default_na=False)
    df.loc[(df.seed == 1) & (df.metric == "mi_bits") & (df.probe == "linear"), "value"] = float(
        "nan"
    )
    df.to_csv(run / "results.csv", index=False)
    paths = make_report([run], tmp_path / "out", formats=("png",))
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "1 row(s) with a non-finite value were left out" in md
    assert "comm/synergy/linear/mi_bits" in md
    assert "nan" not in md.split("## Notes")[0].lower().replace("mi_bits", "")
    assert len(_figure_files(paths)) == 3  # accuracy, pid and clustered-PID bars


def test_pdf_output_is_reproducible(write_fixture_run, tmp_path: Path) -> None:
    run = write_fixture_run(tmp_path / "r", learners=("comm",), seeds=(0,), tasks=("redundancy",))
    first = make_report([run], tmp_path / "a", formats=("pdf",))
    second = make_report([run], tmp_path / "b", formats=("pdf",))
    for p, q in zip(_figure_files(first), _figure_files(second), strict=True):
        assert p.read_bytes() == q.read_bytes(), p.name


# --- input errors ------------------------------------------------------------------------


def test_error_no_run_folders(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no run folders"):
        make_report([], tmp_path / "out")


def test_error_folder_without_results(tmp_path: Path) -> None:
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(ValueError, match="no results table"):
        make_report([tmp_path / "empty_run"], tmp_path / "out")


def test_error_empty_table(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.csv").write_text(",".join(COLUMNS) + "\n")
    with pytest.raises(ValueError, match="has no rows"):
        make_report([run], tmp_path / "out")


def test_error_no_linear_probe_rows(write_fixture_run, tmp_path: Path) -> None:
    mlp_only = write_fixture_run(tmp_path / "mlp", learners=("comm",), seeds=(0,), probes=("mlp",))
    # A run always probes linearly: its config makes the table incomplete ...
    with pytest.raises(ValueError, match="lacks results its config.json lists"):
        make_report([mlp_only], tmp_path / "out")
    # ... and a table made by hand, without a config, has nothing to draw from.
    (mlp_only / "config.json").unlink()
    with pytest.raises(ValueError, match="no linear-probe rows"):
        make_report([mlp_only], tmp_path / "out")
    normal = write_fixture_run(tmp_path / "ok", learners=("cross",), seeds=(0,))
    with pytest.raises(ValueError, match=r"mlp.*no linear-probe rows"):
        make_report([normal, mlp_only], tmp_path / "out")


def test_error_unknown_format(write_fixture_run, tmp_path: Path) -> None:
    run = write_fixture_run(tmp_path / "r", learners=("comm",), seeds=(0,))
    with pytest.raises(ValueError, match="unsupported figure format"):
        make_report([run], tmp_path / "out", formats=("jpg",))


# --- style -------------------------------------------------------------------------------


def test_learner_styles_are_stable_and_distinct() -> None:
    styles = plotstyle.learner_styles(["zeta", "comm", "alpha", "cross"])
    assert list(styles) == ["cross", "comm", "alpha", "zeta"]
    assert styles["comm"].color == plotstyle.LEARNER_COLOURS["comm"]
    assert styles["comm"].label == "CoMM"
    every = plotstyle.learner_styles([*plotstyle.LEARNER_ORDER, "x", "y"])
    colours = [s.color for s in every.values()]
    assert len(set(colours)) == len(colours)
    # The same learner keeps its colour whichever other learners are present.
    assert plotstyle.learner_styles(["comm"])["comm"] == styles["comm"]


def test_style_fonts_are_readable_at_column_width() -> None:
    rc = plotstyle.rc_params()
    for key in ("font.size", "axes.labelsize", "xtick.labelsize", "legend.fontsize"):
        assert rc[key] >= 8
    assert rc["font.family"] == "sans-serif"
    assert math.isclose(plotstyle.COLUMN_WIDTH, 3.3)


def test_published_numbers_are_set_beside_the_run(write_fixture_run, tmp_path: Path) -> None:
    """A Trifeature run gets the published table next to its own numbers, with the difference
    computed from the run; a generator without published numbers gets no such section."""
    from pid_bench.published import PUBLISHED

    run = write_fixture_run(
        tmp_path / "t", learners=("cross", "comm", "random"), seeds=(0, 1), generator="trifeature"
    )
    make_report([run], tmp_path / "out", formats=("png",))
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "Next to the published numbers" in md
    df = pd.read_csv(run / "results.csv")
    sel = df[
        (df["learner"] == "comm")
        & (df["task"] == "synergy")
        & (df["probe"] == "linear")
        & (df["metric"] == "balanced_accuracy")
    ]
    ours = 100 * sel.groupby("seed")["value"].mean().mean()
    theirs = PUBLISHED["trifeature"].values["comm"]["synergy"]
    row = next(line for line in md.splitlines() if line.startswith("| comm |") and " vs " in line)
    assert f"{ours:.1f}" in row and f"vs {theirs:.1f} ({ours - theirs:+.1f})" in row
    # learners without a published number are not in that table
    assert not any(line.startswith("| random |") and " vs " in line for line in md.splitlines())
    bits = write_fixture_run(tmp_path / "b", learners=("comm",), seeds=(0,), generator="bits")
    make_report([bits], tmp_path / "out_bits", formats=("png",))
    assert "published" not in (tmp_path / "out_bits" / "summary.md").read_text()


# --- what the figures tell: ceilings and floors, zero bars, seeds --------------------------


def _figures(run_dirs: list[Path]) -> dict[str, object]:
    """name -> matplotlib Figure of every figure of the report of `run_dirs` (not saved)."""
    df, _ = load_report_table(run_dirs)
    styles = plotstyle.learner_styles(df["learner"].unique(), report_roles(df))
    section = build_section(df, str(df["generator"].iloc[0]), "", styles)
    return {f.name: f.figure for f in section.figures}


def _legend(fig) -> tuple[str, list[str]]:
    legend = fig.legends[0]
    return legend.get_title().get_text(), [t.get_text() for t in legend.get_texts()]


def test_bars_mark_label_trained_learners_and_floors(write_fixture_run, tmp_path: Path) -> None:
    from matplotlib.patches import Rectangle

    learners = ("cross", "comm", "shared_private", "supervised", "random", "random_fusion")
    run = write_fixture_run(tmp_path / "r", learners=learners, seeds=(0, 1, 2))
    colours = {n: s.color for n, s in plotstyle.learner_styles(learners).items()}
    for name in ("accuracy_bars", "pid_bars"):
        fig = _figures([run])[name]
        bars = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
        hatch = {}
        for p in bars:
            colour = matplotlib.colors.to_hex(p.get_facecolor())
            hatch.setdefault(colour, set()).add(p.get_hatch())
        for learner, want in [
            ("supervised", plotstyle.ROLE_HATCH["labels"]),
            ("shared_private", plotstyle.ROLE_HATCH["labels"]),
            ("random", plotstyle.ROLE_HATCH["floor"]),
            ("random_fusion", plotstyle.ROLE_HATCH["floor"]),
            ("comm", None),
            ("cross", None),
        ]:
            assert hatch[colours[learner].lower()] == {want}, (name, learner)
        _, labels = _legend(fig)
        assert plotstyle.ROLE_LABELS["labels"] in labels
        assert plotstyle.ROLE_LABELS["floor"] in labels


def test_plain_learners_get_no_role_legend(write_fixture_run, tmp_path: Path) -> None:
    run = write_fixture_run(tmp_path / "r", learners=("cross", "comm"), seeds=(0,))
    _, labels = _legend(_figures([run])["accuracy_bars"])
    assert not set(plotstyle.ROLE_LABELS.values()) & set(labels)


def test_zero_bars_get_a_visible_marker(write_fixture_run, tmp_path: Path) -> None:
    run = write_fixture_run(tmp_path / "r", learners=("cross", "comm"), seeds=(0, 1))
    df = pd.read_csv(run / "results.csv", keep_default_na=False)
    zero = (df.learner == "cross") & (df.task == "synergy") & (df.metric == "mi_bits")
    df.loc[zero, "value"] = 0.0
    df.to_csv(run / "results.csv", index=False)
    fig = _figures([run])["pid_bars"]
    ax = fig.axes[0]
    markers = [line for line in ax.lines if line.get_gid() == "zero-marker"]
    assert len(markers) == 1
    (m,) = markers
    cross = plotstyle.learner_styles(["cross"])["cross"].color
    assert matplotlib.colors.to_hex(m.get_markerfacecolor()) == cross.lower()
    assert list(m.get_ydata()) == [0.0] and m.get_marker() and not m.get_clip_on()
    # it sits under the synergy group (the last), where the cross bar would be
    assert 2.5 < float(m.get_xdata()[0]) < 3.5
    _, labels = _legend(fig)
    assert any(label.startswith("≈ 0") for label in labels)
    # no marker where no bar is that short
    assert not [line for line in _figures([run])["accuracy_bars"].axes[0].lines if line.get_gid()]


def test_every_figure_states_the_number_of_seeds(write_fixture_run, tmp_path: Path) -> None:
    curves = write_fixture_run(
        tmp_path / "c", learners=("cross", "supervised"), seeds=(0, 1, 2), epochs=(0, 10, 20)
    )
    for name, fig in _figures([curves]).items():
        title, _ = _legend(fig)
        assert title == "mean ± std over n = 3 seeds", name
    sweep = write_fixture_run(
        tmp_path / "s", learners=("comm",), seeds=(0,), sweep=("noise", [0.0, 1.0])
    )
    title, _ = _legend(_figures([sweep])["sweep"])
    assert title == "n = 1 seed: no error bars"
    uneven = write_fixture_run(tmp_path / "u", learners=("cross", "comm"), seeds=(0, 1, 2))
    df = pd.read_csv(uneven / "results.csv", keep_default_na=False)
    df[~((df.learner == "comm") & (df.seed == 2))].to_csv(uneven / "results.csv", index=False)
    (uneven / "config.json").unlink()  # a table edited by hand: no run config to complete
    title, labels = _legend(_figures([uneven])["accuracy_bars"])
    assert title == "mean ± std over seeds (n per learner)"
    assert "CoMM (n=2)" in labels and "Cross (n=3)" in labels


def test_curves_mark_label_trained_learners_with_dashes(write_fixture_run, tmp_path: Path) -> None:
    run = write_fixture_run(
        tmp_path / "c", learners=("comm", "supervised", "random"), seeds=(0,), epochs=(0, 20)
    )
    fig = _figures([run])["learning_curves"]
    styles = plotstyle.learner_styles(["comm", "supervised", "random"])
    by_colour = {
        matplotlib.colors.to_hex(line.get_color()): line.get_linestyle()
        for line in fig.axes[0].lines
        if line.get_label() in {s.label for s in styles.values()}
    }
    # custom dash patterns all read "--"; the two roles' patterns differ (plotstyle)
    assert by_colour[styles["comm"].color.lower()] == "-"
    assert by_colour[styles["supervised"].color.lower()] == "--"
    assert by_colour[styles["random"].color.lower()] == "--"
    assert plotstyle.ROLE_LINESTYLE["labels"] != plotstyle.ROLE_LINESTYLE["floor"]
    _, labels = _legend(fig)
    assert plotstyle.ROLE_LABELS["labels"] in labels and plotstyle.ROLE_LABELS["floor"] in labels


def test_legends_sit_under_their_plots_and_are_never_taller(write_fixture_run, tmp_path) -> None:
    """Every legend lies under its plot (the axes with their labels) and is no taller than it,
    even with every learner, per-learner seed counts and both role entries."""
    from matplotlib.transforms import Bbox

    learners = (*plotstyle.LEARNER_ORDER, "my_plugin_learner")
    curves = write_fixture_run(tmp_path / "c", learners=learners, seeds=(0, 1), epochs=(0, 10))
    df = pd.read_csv(curves / "results.csv", keep_default_na=False)
    df[~((df.learner == "comm") & (df.seed == 1))].to_csv(curves / "results.csv", index=False)
    (curves / "config.json").unlink()  # a table edited by hand: no run config to complete
    sweep = write_fixture_run(
        tmp_path / "s", learners=learners, seeds=(0,), sweep=("noise", [0.0, 1.0])
    )
    figures = {**_figures([curves]), **_figures([sweep])}
    assert {"accuracy_bars", "pid_bars", "learning_curves", "sweep"} <= set(figures)
    for name, fig in figures.items():
        with plotstyle.style():
            fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        (legend,) = fig.legends
        box = legend.get_window_extent(renderer)
        plot = Bbox.union([ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()])
        assert box.y1 <= plot.y0 + 1, (name, box, plot)  # under the plot (pixels, y up)
        assert box.height <= plot.height, (name, box.height, plot.height)
        assert box.x0 >= 0 and box.x1 <= fig.bbox.width + 1, name  # within the figure
