"""The outcome of `pid_bench.check`: one `CheckRow` per compared cell, gathered in a
`CheckReport` that prints as a plain-text table (`pid-bench check`), as GitHub markdown, or
as JSON, and gives the exit code (0 pass, 1 regression; 2 is for input that cannot be
checked, `CheckInputError`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Exit codes a CLI should use: all checks pass / a regression / input that cannot be checked.
EXIT_PASS, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2

# Deltas are compared with this slack so that a drop of exactly `allowed` passes despite
# floating-point error in the means.
EPS = 1e-9


@dataclass(frozen=True)
class CheckRow:
    """One compared cell. `allowed` is the largest drop that still passes (>= 0)."""

    learner: str
    task: str
    probe: str
    metric: str
    baseline: float
    current: float
    delta: float  # current - baseline
    allowed: float
    status: str  # PASS | FAIL
    baseline_std: float = 0.0
    baseline_n: int = 0
    current_std: float = 0.0
    current_n: int = 0


@dataclass
class CheckReport:
    """The outcome of `check`: one row per compared cell, plus notes about the inputs."""

    rows: list[CheckRow]
    tolerance: float
    sigma: float
    generator: str
    notes: list[str] = field(default_factory=list)
    floor_margin: float | None = None

    @property
    def passed(self) -> bool:
        """True when there was something to compare and no row failed."""
        return bool(self.rows) and all(r.status == "PASS" for r in self.rows)

    @property
    def failures(self) -> list[CheckRow]:
        return [r for r in self.rows if r.status != "PASS"]

    @property
    def exit_code(self) -> int:
        """`EXIT_PASS` (0) when every row passes, `EXIT_REGRESSION` (1) otherwise."""
        return EXIT_PASS if self.passed else EXIT_REGRESSION

    def verdict(self) -> str:
        """One line: PASS/FAIL with counts and the worst regressions."""
        n = len(self.rows)
        if self.passed:
            return f"PASS: all {n} checks within the allowed drop"
        worst = sorted(self.failures, key=lambda r: r.delta)[:5]
        listed = "; ".join(
            f"{r.learner}/{r.task} {r.metric} {_signed(r.delta)} (allowed -{r.allowed:.3f})"
            for r in worst
        )
        more = "" if len(self.failures) <= 5 else f"; and {len(self.failures) - 5} more"
        return f"FAIL: {len(self.failures)} of {n} checks regressed: {listed}{more}"

    def _floor_text(self) -> str:
        if not any(" > " in r.learner for r in self.rows):
            return ""
        return (
            f"; 'A > B' rows: learner A must stay more than {self.floor_margin:g} above its "
            "untrained architecture B"
        )

    def format_table(self) -> str:
        """A plain-text pass/fail table with the deltas, then notes and the verdict."""
        head = ["learner", "task", "probe", "metric", "baseline", "current", "delta", "allowed"]
        lines = [
            [
                r.learner,
                r.task,
                r.probe,
                r.metric,
                _pm(r.baseline, r.baseline_std, r.baseline_n),
                _pm(r.current, r.current_std, r.current_n),
                _signed(r.delta),
                f">= -{r.allowed:.3f}",
                r.status,
            ]
            for r in self.rows
        ]
        cols = [*head, "status"]
        widths = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(cols)]
        right = {4, 5, 6, 7}

        def fmt(cells: Sequence[str]) -> str:
            return "  ".join(
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        out = [
            f"pid-bench check: generator {self.generator}; regression = drop below baseline "
            f"mean by more than max({self.tolerance:g}, {self.sigma:g} x baseline std)"
            + self._floor_text(),
            fmt(cols),
            fmt(["-" * w for w in widths]),
            *(fmt(line) for line in lines),
        ]
        if self.notes:
            out += ["", *(f"note: {n}" for n in self.notes)]
        out += ["", self.verdict()]
        return "\n".join(out)

    def format_markdown(self) -> str:
        """The same table in GitHub markdown (e.g. for `$GITHUB_STEP_SUMMARY`)."""
        out = [
            f"### pid-bench check: {'PASS' if self.passed else 'FAIL'}",
            "",
            f"Generator `{self.generator}`; allowed drop = max({self.tolerance:g}, "
            f"{self.sigma:g} x baseline std){self._floor_text()}.",
            "",
            "| learner | task | probe | metric | baseline | current | delta | allowed | status |",
            "|---|---|---|---|---:|---:|---:|---:|---|",
        ]
        for r in self.rows:
            status = "PASS" if r.status == "PASS" else "**FAIL**"
            out.append(
                f"| {r.learner} | {r.task} | {r.probe} | {r.metric} | "
                f"{_pm(r.baseline, r.baseline_std, r.baseline_n)} | "
                f"{_pm(r.current, r.current_std, r.current_n)} | {_signed(r.delta)} | "
                f"-{r.allowed:.3f} | {status} |"
            )
        out += ["", *(f"- {n}" for n in self.notes), "", self.verdict(), ""]
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (rows as dicts)."""
        return {
            "passed": self.passed,
            "generator": self.generator,
            "tolerance": self.tolerance,
            "sigma": self.sigma,
            "floor_margin": self.floor_margin,
            "notes": list(self.notes),
            "rows": [asdict(r) for r in self.rows],
        }


def _signed(x: float) -> str:
    # round(...) + 0.0 turns -0.0 into 0.0, so a tiny negative shows as +0.000, not -0.000.
    return "nan" if not math.isfinite(x) else f"{round(x, 3) + 0.0:+.3f}"


def _pm(mean: float, std: float, n: int) -> str:
    if not math.isfinite(mean):
        return "nan"
    return f"{mean:.3f}" if n <= 1 else f"{mean:.3f}+/-{std:.3f}"
