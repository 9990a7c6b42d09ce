"""The HTML report in a real browser (headless Chromium): every figure loads, and nothing is
wider than a 1280-pixel window, folded parts unfolded.

Chromium loads a copy of the page with a script added that, once the page (and its images)
has loaded, opens every <details>, measures the page and writes what it found into the page;
`--dump-dom` prints the page, and the test reads the script's findings from it. Skipped where
no Chromium is installed (`.ci/run` installs Debian's `chromium`).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pid_bench import plotstyle
from pid_bench.report import make_report

#: The window width the page must fit, CSS pixels.
WIDTH = 1280
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((b for b in map(shutil.which, BROWSERS) if b), None)

pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason=f"no Chromium found (looked for {', '.join(BROWSERS)}); "
    "install it (Debian: apt-get install chromium) to check the HTML report in a browser",
)

#: Runs in the page once it has loaded (images included): opens the folded parts, measures.
CHECK = """<script>
window.addEventListener("load", () => {
  for (const d of document.querySelectorAll("details")) d.open = true;
  const root = document.documentElement;
  // an element past the window's edge, or whose content spills out of it unclipped
  const over = (e) => e.getBoundingClientRect().right > root.clientWidth + 0.5
    || (getComputedStyle(e).overflowX === "visible" && e.scrollWidth > e.clientWidth + 1);
  const wide = [...document.body.querySelectorAll("*")]
    .filter((e) => over(e) && ![...e.children].some(over))  // the innermost ones
    .slice(0, 5)
    .map((e) => e.tagName.toLowerCase() + ": " + (e.textContent || "").slice(0, 80));
  const images = [...document.images].map((i) => ({
    alt: i.alt, complete: i.complete, naturalWidth: i.naturalWidth,
  }));
  const out = document.createElement("pre");
  out.id = "browser-check";
  out.textContent = JSON.stringify({
    innerWidth, scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, wide, images,
  });
  document.body.append(out);
});
</script>"""


def browser_check(page: Path, work: Path) -> dict[str, Any]:
    """What `CHECK` finds in `page` in headless Chromium with a WIDTH-pixel window."""
    assert BROWSER is not None
    probe = work / "probe.html"
    text = page.read_text(encoding="utf-8")
    probe.write_text(text.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    cmd = [
        BROWSER,
        "--headless",
        # the sandbox needs kernel features containers and root lack; the page is our own file
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={work / 'profile'}",
        f"--window-size={WIDTH},900",
        # run the page's timers and load events before dumping it
        "--virtual-time-budget=10000",
        "--dump-dom",
        probe.as_uri(),
    ]
    done = subprocess.run(
        cmd, capture_output=True, encoding="utf-8", errors="replace", timeout=120, check=False
    )
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no result from the page (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def _problems(result: dict[str, Any]) -> list[str]:
    out = []
    if result["innerWidth"] != WIDTH:
        out.append(f"window is {result['innerWidth']} px wide, not {WIDTH}")
    if result["scrollWidth"] > result["clientWidth"]:
        out.append(
            f"page is {result['scrollWidth']} px wide in a {result['clientWidth']} px window; "
            f"wider elements: {result['wide']}"
        )
    for img in result["images"]:
        if not (img["complete"] and img["naturalWidth"] > 0):
            out.append(f"image {img['alt']!r} did not load")
    return out


def test_report_page_loads_every_figure_and_fits_the_window(write_fixture_run, tmp_path) -> None:
    """A report with every learner, a plug-in, learning curves, a sweep, two generators and
    long run parameters: every figure loads, and the page (unfolded) fits 1280 pixels."""
    learners = (*plotstyle.LEARNER_ORDER, "a_plug_in_learner_with_a_long_name")
    curves = write_fixture_run(
        tmp_path / "curves", learners=learners, seeds=(0, 1, 2), epochs=(0, 10, 20)
    )
    sweep = write_fixture_run(
        tmp_path / "sweep",
        learners=("cross", "comm"),
        seeds=(0, 1),
        generator="content_style",
        sweep=("noise", [0.0, 0.25, 0.5, 1.0]),
    )
    out = tmp_path / "report"
    paths = make_report([curves, sweep], out, formats=("png",))
    result = browser_check(out / "summary.html", tmp_path)
    pngs = [p for p in paths if p.suffix == ".png"]
    assert len(result["images"]) == len(pngs) == 5
    assert not _problems(result), _problems(result)


def test_the_check_sees_overflow_and_broken_figures(tmp_path) -> None:
    """The browser check is not vacuous: a wide unwrapped <pre> and an image that does not
    decode are both reported."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><pre>" + "x" * 400 + "</pre>"
        '<img alt="broken" src="data:image/png;base64,AAAA"></body></html>',
        encoding="utf-8",
    )
    problems = _problems(browser_check(page, tmp_path))
    assert any("px wide in a" in p for p in problems), problems
    assert any("'broken' did not load" in p for p in problems), problems
