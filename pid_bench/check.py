"""Regression checks: compare a run's interaction capture with a committed baseline.

A baseline (`make_baseline`, `write_baseline`) stores, per learner x task x probe x capture
metric at the final epoch, the mean, std and number of seeds, plus the generator, the run's
parameters and the git sha it came from. `check` compares a new run with it:

    regression  <=>  current mean < baseline mean - allowed,
    allowed     =    max(tolerance, sigma * baseline std)

`tolerance` is absolute, in the metric's own units (0.05 = 5 points of balanced accuracy, or
0.05 bits for `mi_bits`). Only drops fail: a gain always passes. `sigma` (default 0) widens
the band for cells whose baseline varied across seeds. A non-finite current value fails.

Floor checks: a learner whose untrained architecture is a registered learner
(`Learner.untrained_floor`, e.g. CoMM -> `random_fusion`) and whose baseline mean is more than
`floor_margin` above that floor's (both in the baseline) must stay more than `floor_margin`
above the floor's mean *in the run*. Such a row reads "comm > random_fusion", with the gaps as
its baseline and current values. It catches a learner whose number stays within tolerance
while its training stops adding anything to what the architecture gives untrained.

Input that cannot be compared (no baseline file, a different generator, baseline learners or
tasks absent from the run, nothing in common) raises `CheckInputError`, so a CLI can tell
"the model regressed" (exit 1) from "the check was set up wrong" (exit 2).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pid_bench.results import CAPTURE_METRICS, coerce, final_epoch, read_runs, summarise

BASELINE_FORMAT = "pid-bench-baseline"
BASELINE_VERSION = 1

#: Exit codes a CLI should use: all checks pass / a regression / input that cannot be checked.
EXIT_PASS, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2

# Rounding keeps baseline files short and their diffs readable; 1e-6 is far below any
# tolerance that makes sense for accuracies or bits.
_DIGITS = 6
# Deltas are compared with this slack so that a drop of exactly `allowed` passes despite
# floating-point error in the means.
_EPS = 1e-9


class CheckInputError(ValueError):
    """The results and the baseline cannot be compared (not a regression)."""


# --------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------


def make_baseline(df: pd.DataFrame) -> dict[str, Any]:
    """The baseline of a results table: final-epoch capture metrics per learner x task x probe.

    `results[learner][task][probe][metric] = {"mean", "std", "n"}` for the metrics in
    `CAPTURE_METRICS` (std over seeds, ddof=1, 0 for one seed), plus the generator, its
    parameters, each run's parameters (by run id), seeds, final epochs per learner, git sha,
    device, versions and run ids. Raises CheckInputError for sweep tables, several
    generators, or non-finite values.
    """
    df = _prepare(df)
    stats = summarise(df, metrics=CAPTURE_METRICS)
    if stats.empty:
        raise CheckInputError(
            f"no capture metrics ({', '.join(CAPTURE_METRICS)}) in the results; nothing to baseline"
        )
    bad = stats[~stats["mean"].map(math.isfinite)]
    if not bad.empty:
        cells = ", ".join(
            f"{r.learner}/{r.task}/{r.probe}/{r.metric}" for r in bad.head(8).itertuples()
        )
        raise CheckInputError(f"cannot baseline non-finite results: {cells}")

    results: dict[str, Any] = {}
    for r in stats.itertuples(index=False):
        cell = results.setdefault(r.learner, {}).setdefault(r.task, {}).setdefault(r.probe, {})
        cell[r.metric] = {
            "mean": round(float(r.mean), _DIGITS),
            "std": round(float(r.std), _DIGITS),
            "n": int(r.n),
        }
    # The runner writes one params JSON per run (the resolved run config): keep each once.
    run_params = {
        str(k): _json(v)
        for k, v in df.drop_duplicates("run_id").set_index("run_id")["params"].items()
    }
    gen_params = [_generator_params(p) for p in run_params.values()]
    return {
        "format": BASELINE_FORMAT,
        "version": BASELINE_VERSION,
        "generator": str(df["generator"].iloc[0]),
        "generator_params": next((g for g in gen_params if g is not None), None),
        "params": run_params,
        "seeds": sorted(int(s) for s in df["seed"].unique()),
        "final_epoch": {str(k): int(v) for k, v in df.groupby("learner")["epoch"].max().items()},
        "git_sha": _one_or_list(df["git_sha"]),
        "device": _one_or_list(df["device"]),
        "versions": _merged_versions(df["versions"]),
        "run_ids": sorted(str(r) for r in df["run_id"].unique()),
        "results": results,
    }


def write_baseline(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `make_baseline(df)` as JSON with sorted keys (diff-friendly); return the path."""
    baseline = make_baseline(df)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(baseline, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return p


def load_baseline(path: str | Path) -> dict[str, Any]:
    """Read and validate a baseline JSON; CheckInputError if missing or not a baseline."""
    p = Path(path)
    if not p.is_file():
        raise CheckInputError(
            f"no baseline file at {p}; create one from a trusted run with "
            f"`pid-bench baseline RUN_DIR --out {p}`"
        )
    try:
        baseline = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckInputError(f"{p} is not a pid-bench baseline: invalid JSON ({e})") from None
    _validate_baseline(baseline, str(p))
    return baseline


def _validate_baseline(baseline: Any, where: str = "baseline") -> None:
    if not isinstance(baseline, dict) or baseline.get("format") != BASELINE_FORMAT:
        raise CheckInputError(
            f"{where} is not a pid-bench baseline (expected a JSON object with "
            f'"format": "{BASELINE_FORMAT}", as written by `pid-bench baseline`)'
        )
    version = baseline.get("version")
    if not isinstance(version, int) or version > BASELINE_VERSION:
        raise CheckInputError(
            f"{where} has baseline format version {version!r}; this pid-bench reads versions "
            f"up to {BASELINE_VERSION} (upgrade pid-bench or re-create the baseline)"
        )
    results = baseline.get("results")
    if not isinstance(results, dict) or not results:
        raise CheckInputError(f"{where} has no results to compare against")
    for learner, tasks in results.items():
        for task, probes in _items(tasks, f"{where}: results[{learner!r}]"):
            for probe, metrics in _items(probes, f"{where}: results[{learner!r}][{task!r}]"):
                for metric, cell in _items(metrics, f"{where}: results/{learner}/{task}/{probe}"):
                    ok = isinstance(cell, dict) and all(
                        isinstance(cell.get(k), (int, float)) for k in ("mean", "std", "n")
                    )
                    if not ok:
                        raise CheckInputError(
                            f"{where}: results/{learner}/{task}/{probe}/{metric} must hold "
                            'numbers "mean", "std" and "n"'
                        )


def _items(value: Any, where: str) -> list[tuple[str, Any]]:
    if not isinstance(value, dict):
        raise CheckInputError(f"{where} must be a JSON object")
    return list(value.items())


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


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


def check(
    df: pd.DataFrame,
    baseline: dict[str, Any],
    tolerance: float = 0.05,
    metrics: Sequence[str] = ("balanced_accuracy",),
    *,
    sigma: float = 0.0,
    probes: Sequence[str] = ("linear",),
    floor_margin: float | None = None,
) -> CheckReport:
    """Compare the final-epoch means of `df` with `baseline`, per learner x task x probe x metric.

    A row fails when current mean < baseline mean - max(tolerance, sigma * baseline std)
    (absolute, in the metric's units; gains pass). Every baseline learner and task must be in
    the run; learners or tasks only in the run are listed in the notes and not checked.
    Floor rows (module docstring) use `floor_margin`, by default `tolerance`.
    Raises CheckInputError when the inputs cannot be compared.
    """
    _validate_baseline(baseline)
    floor_margin = tolerance if floor_margin is None else floor_margin
    if not (math.isfinite(floor_margin) and floor_margin >= 0):
        raise CheckInputError(f"floor margin must be a finite number >= 0, got {floor_margin!r}")
    if isinstance(metrics, str):
        metrics = (metrics,)
    if isinstance(probes, str):
        probes = (probes,)
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise CheckInputError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    if not (math.isfinite(sigma) and sigma >= 0):
        raise CheckInputError(f"sigma must be a finite number >= 0, got {sigma!r}")
    unknown = [m for m in metrics if m not in CAPTURE_METRICS]
    if unknown or not metrics:
        raise CheckInputError(
            f"cannot check metric(s) {unknown or '(none given)'}; "
            f"accepted: {', '.join(CAPTURE_METRICS)}"
        )

    df = _prepare(df)
    generator = str(df["generator"].iloc[0])
    if generator != baseline.get("generator"):
        raise CheckInputError(
            f"the baseline is for generator {baseline.get('generator')!r} but the run used "
            f"{generator!r}; compare runs of the same generator or re-create the baseline"
        )

    wanted = {
        (learner, task, probe, metric): cell
        for learner, tasks in baseline["results"].items()
        for task, per_probe in tasks.items()
        for probe, per_metric in per_probe.items()
        for metric, cell in per_metric.items()
        if metric in metrics and probe in probes
    }
    if not wanted:
        raise CheckInputError(
            f"the baseline has no {'/'.join(metrics)} entries for probe(s) "
            f"{', '.join(probes)}; it holds probes {_baseline_probes(baseline)}"
        )
    stats = summarise(df, probes=probes, metrics=metrics).set_index(
        ["learner", "task", "probe", "metric"]
    )
    have = set(stats.index)
    overlap = [k for k in wanted if k in have]
    run_learners = sorted(df["learner"].unique())
    run_tasks = sorted(df["task"].unique())
    base_learners = sorted({k[0] for k in wanted})
    base_tasks = sorted({k[1] for k in wanted})
    if not overlap:
        raise CheckInputError(
            "no overlapping rows between the run and the baseline "
            f"(baseline: learners {base_learners}, tasks {base_tasks}, probes {sorted(probes)}, "
            f"metrics {sorted(metrics)}; run: learners {run_learners}, tasks {run_tasks}, "
            f"probes {sorted(df['probe'].unique())})"
        )
    missing_learners = [n for n in base_learners if n not in run_learners]
    missing_cells = sorted(k for k in wanted if k not in have and k[0] not in missing_learners)
    if missing_learners or missing_cells:
        parts = []
        if missing_learners:
            parts.append(f"learner(s) {', '.join(missing_learners)} are missing from the run")
        if missing_cells:
            missing_tasks = sorted({(k[0], k[1]) for k in missing_cells})
            parts.append(
                "learner/task pair(s) missing from the run: "
                + ", ".join(f"{a}/{b}" for a, b in missing_tasks)
                + f" (probe {'/'.join(sorted({k[2] for k in missing_cells}))}, "
                f"metric {'/'.join(sorted({k[3] for k in missing_cells}))})"
            )
        raise CheckInputError(
            "the run does not cover the baseline: "
            + "; ".join(parts)
            + ". Run the same learners and --interaction as the baseline, or re-create it."
        )

    # A seed whose value is NaN/inf would vanish from the mean; a regression gate must fail it.
    final = final_epoch(df)
    final = final[final["probe"].isin(list(probes)) & final["metric"].isin(list(metrics))]
    broken = final[~final["value"].map(math.isfinite)]
    nonfinite = set(broken.set_index(["learner", "task", "probe", "metric"]).index)

    rows = []
    for key in sorted(wanted, key=_row_order):
        cell = wanted[key]
        cur = stats.loc[key]
        base_mean, base_std = float(cell["mean"]), float(cell["std"])
        current = float(cur["mean"])
        delta = current - base_mean
        allowed = max(tolerance, sigma * base_std)
        ok = math.isfinite(current) and key not in nonfinite and delta >= -allowed - _EPS
        rows.append(
            CheckRow(
                learner=key[0],
                task=key[1],
                probe=key[2],
                metric=key[3],
                baseline=base_mean,
                current=current,
                delta=delta,
                allowed=allowed,
                status="PASS" if ok else "FAIL",
                baseline_std=base_std,
                baseline_n=int(cell["n"]),
                current_std=float(cur["std"]),
                current_n=int(cur["n"]),
            )
        )
    rows += _floor_rows(wanted, stats, floor_margin, run_plugins(df))
    notes = _notes(df, baseline, wanted, run_learners, run_tasks)
    if nonfinite:
        cells = ", ".join("/".join(k) for k in sorted(nonfinite))
        notes.append(f"non-finite values in the run (counted as FAIL): {cells}")
    return CheckReport(rows, float(tolerance), float(sigma), generator, notes, float(floor_margin))


def untrained_floors(
    learners: Sequence[str], plugins: dict[str, str] | None = None
) -> dict[str, str]:
    """learner -> its untrained architecture (`Learner.untrained_floor`), for the learners that
    name one; `plugins` maps plug-in names to where their class is imported from."""
    from pid_bench.learners.plugins import learner_class  # torch-heavy; only needed here

    out = {}
    for name in learners:
        try:
            cls = learner_class(name, (plugins or {}).get(name, ""))
        except ValueError:  # scored embeddings, or a plug-in not importable from here
            continue
        floor = getattr(cls, "untrained_floor", None)
        if floor:
            out[name] = floor
    return out


def run_plugins(df: pd.DataFrame) -> dict[str, str]:
    """Plug-in name -> source, as the runs' configs recorded them."""
    out: dict[str, str] = {}
    for text in df.drop_duplicates("run_id")["params"]:
        plugins = _json(text).get("plugins") if isinstance(_json(text), dict) else None
        if isinstance(plugins, dict):
            out.update({str(k): str(v) for k, v in plugins.items()})
    return out


def _floor_rows(
    wanted: dict[tuple[str, str, str, str], Any],
    stats: pd.DataFrame,
    margin: float,
    plugins: dict[str, str],
) -> list[CheckRow]:
    """One row per baseline cell where a learner beat its untrained floor by more than `margin`:
    it fails when the run's gap over the floor is `margin` or less."""
    rows = []
    floors = untrained_floors(sorted({k[0] for k in wanted}), plugins)
    for key in sorted(wanted, key=_row_order):
        learner, rest = key[0], key[1:]
        fkey = (floors.get(learner, ""), *rest)
        if fkey not in wanted:
            continue
        base_gap = float(wanted[key]["mean"]) - float(wanted[fkey]["mean"])
        if base_gap <= margin + _EPS:
            continue  # the baseline claims nothing above the floor here
        cur_gap = float(stats.loc[key]["mean"]) - float(stats.loc[fkey]["mean"])
        ok = math.isfinite(cur_gap) and cur_gap > margin + _EPS
        rows.append(
            CheckRow(
                learner=f"{learner} > {fkey[0]}",
                task=key[1],
                probe=key[2],
                metric=key[3],
                baseline=base_gap,
                current=cur_gap,
                delta=cur_gap - base_gap,
                allowed=base_gap - margin,
                status="PASS" if ok else "FAIL",
                baseline_n=int(wanted[key]["n"]),
                current_n=int(stats.loc[key]["n"]),
            )
        )
    return rows


# --------------------------------------------------------------------------------------------
# Plain entry points for the CLI
# --------------------------------------------------------------------------------------------


def baseline_from_runs(run_dirs: Sequence[str | Path], path: str | Path) -> Path:
    """`pid-bench baseline`: read run folders and write their baseline to `path`."""
    try:
        df = read_runs(run_dirs)
    except ValueError as e:  # missing folder, no results.csv, empty table
        raise CheckInputError(str(e)) from None
    return write_baseline(df, path)


def check_runs(
    run_dirs: Sequence[str | Path],
    baseline_path: str | Path,
    *,
    tolerance: float = 0.05,
    sigma: float = 0.0,
    metrics: Sequence[str] = ("balanced_accuracy",),
    probes: Sequence[str] = ("linear",),
    floor_margin: float | None = None,
) -> CheckReport:
    """`pid-bench check`: read run folders and a baseline file and compare them.

    Every input problem (missing folder or file, unreadable table, mismatch) is raised as
    CheckInputError, so the CLI maps: report.exit_code (0 pass / 1 regression), or
    `EXIT_BAD_INPUT` (2) on CheckInputError.
    """
    baseline = load_baseline(baseline_path)
    try:
        df = read_runs(run_dirs)
    except ValueError as e:  # missing folder, no results.csv, empty table
        raise CheckInputError(str(e)) from None
    return check(
        df, baseline, tolerance, metrics, sigma=sigma, probes=probes, floor_margin=floor_margin
    )


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    try:
        df = coerce(df)
    except ValueError as e:
        raise CheckInputError(str(e)) from None
    if df.empty:
        raise CheckInputError("the results table has no rows")
    sweeps = sorted(set(df.loc[df["sweep_param"] != "", "sweep_param"]))
    if sweeps:
        raise CheckInputError(
            f"the results hold sweep runs (over {', '.join(sweeps)}); baselines and checks "
            "compare plain runs, so check a run made without a sweep"
        )
    generators = sorted(df["generator"].unique())
    if len(generators) > 1:
        raise CheckInputError(
            f"the results mix generators {generators}; baseline and check one generator at a time"
        )
    return df


def _notes(
    df: pd.DataFrame,
    baseline: dict[str, Any],
    wanted: dict[tuple[str, str, str, str], Any],
    run_learners: list[str],
    run_tasks: list[str],
) -> list[str]:
    notes = []
    base_learners = {k[0] for k in wanted}
    extra = [n for n in run_learners if n not in base_learners]
    if extra:
        notes.append(f"not in the baseline, not checked: learner(s) {', '.join(extra)}")
    extra_tasks = [t for t in run_tasks if t not in {k[1] for k in wanted}]
    if extra_tasks:
        notes.append(f"not in the baseline, not checked: task(s) {', '.join(extra_tasks)}")
    seeds = sorted(int(s) for s in df["seed"].unique())
    if baseline.get("seeds") is not None and seeds != baseline.get("seeds"):
        notes.append(f"seeds differ: baseline {baseline.get('seeds')}, run {seeds}")
    params = df.drop_duplicates("run_id")["params"]
    gen = next((g for g in map(_generator_params, map(_json, params)) if g is not None), None)
    if baseline.get("generator_params") is not None and gen != baseline["generator_params"]:
        notes.append(
            "generator parameters differ from the baseline's: "
            f"baseline {json.dumps(baseline['generator_params'], sort_keys=True)}, "
            f"run {json.dumps(gen, sort_keys=True)}"
        )
    epochs = {str(k): int(v) for k, v in df.groupby("learner")["epoch"].max().items()}
    base_epochs = baseline.get("final_epoch") or {}
    diff = [
        f"{n} {base_epochs[n]}->{epochs[n]}"
        for n in sorted(base_epochs)
        if n in epochs and n in base_learners and base_epochs[n] != epochs[n]
    ]
    if diff:
        notes.append(f"final epoch differs from the baseline's: {', '.join(diff)}")
    sha = _one_or_list(df["git_sha"])
    if baseline.get("git_sha") is not None and sha != baseline.get("git_sha"):
        notes.append(f"baseline made at git {baseline['git_sha']}, run at {sha}")
    return notes


def _row_order(key: tuple[str, str, str, str]) -> tuple[Any, ...]:
    from pid_bench.plotstyle import LEARNER_ORDER

    task_order = ("redundancy", "unique1", "unique2", "synergy")
    learner, task, probe, metric = key
    li = LEARNER_ORDER.index(learner) if learner in LEARNER_ORDER else len(LEARNER_ORDER)
    ti = task_order.index(task) if task in task_order else len(task_order)
    return (li, learner, ti, task, probe, CAPTURE_METRICS.index(metric), metric)


def _baseline_probes(baseline: dict[str, Any]) -> str:
    probes = {
        f"{p} ({', '.join(sorted(ms))})"
        for tasks in baseline["results"].values()
        for per_probe in tasks.values()
        for p, ms in per_probe.items()
    }
    return ", ".join(sorted(probes)) or "(none)"


def _json(text: Any) -> Any:
    if not isinstance(text, str) or not text:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"raw": text}


def _generator_params(params: Any) -> Any:
    """The generator's parameters inside a row's params JSON, wherever the runner put them."""
    if not isinstance(params, dict):
        return None
    for key in ("generator_params", "generator"):
        value = params.get(key)
        if isinstance(value, dict):
            inner = value.get("params")
            return inner if isinstance(inner, dict) and "name" in value else value
    return None


def _one_or_list(col: pd.Series) -> str | list[str]:
    values = sorted({str(v) for v in col.unique()})
    return values[0] if len(values) == 1 else values


def _merged_versions(col: pd.Series) -> dict[str, str]:
    merged: dict[str, set[str]] = {}
    for text in col.astype(str).unique():
        parsed = _json(text)
        if isinstance(parsed, dict):
            for k, v in parsed.items():
                merged.setdefault(str(k), set()).add(str(v))
    return {k: " / ".join(sorted(v)) for k, v in sorted(merged.items())}


def _signed(x: float) -> str:
    # round(...) + 0.0 turns -0.0 into 0.0, so a tiny negative shows as +0.000, not -0.000.
    return "nan" if not math.isfinite(x) else f"{round(x, 3) + 0.0:+.3f}"


def _pm(mean: float, std: float, n: int) -> str:
    if not math.isfinite(mean):
        return "nan"
    return f"{mean:.3f}" if n <= 1 else f"{mean:.3f}+/-{std:.3f}"
