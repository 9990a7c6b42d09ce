"""Regression checks: compare a run's interaction capture with a committed baseline.

A baseline (`pid_bench.baseline`: `make_baseline`, `write_baseline`) stores, per learner x
task x probe x capture metric at the final epoch, the mean, std and number of seeds. `check`
compares a new run with it:

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
"the model regressed" (exit 1) from "the check was set up wrong" (exit 2). The outcome is a
`CheckReport` (`pid_bench.checkreport`), one `CheckRow` per compared cell.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from generators.base import ALL_TASKS
from pid_bench.baseline import (
    BASELINE_FORMAT,
    BASELINE_VERSION,
    CheckInputError,
    baseline_from_runs,
    generator_params_of,
    load_baseline,
    make_baseline,
    one_or_list,
    parse_json,
    prepare_table,
    validate_baseline,
    write_baseline,
)
from pid_bench.checkreport import (
    EPS,
    EXIT_BAD_INPUT,
    EXIT_PASS,
    EXIT_REGRESSION,
    CheckReport,
    CheckRow,
)
from pid_bench.results import CAPTURE_METRICS, final_epoch, read_runs, summarise

__all__ = [
    "BASELINE_FORMAT",
    "BASELINE_VERSION",
    "EXIT_BAD_INPUT",
    "EXIT_PASS",
    "EXIT_REGRESSION",
    "CheckInputError",
    "CheckReport",
    "CheckRow",
    "baseline_from_runs",
    "check",
    "check_runs",
    "load_baseline",
    "make_baseline",
    "run_plugins",
    "untrained_floors",
    "write_baseline",
]

#: One compared cell: (learner, task, probe, metric).
Key = tuple[str, str, str, str]


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
    validate_baseline(baseline)
    floor_margin = tolerance if floor_margin is None else floor_margin
    metrics = (metrics,) if isinstance(metrics, str) else metrics
    probes = (probes,) if isinstance(probes, str) else probes
    _check_settings(tolerance, sigma, floor_margin, metrics)
    df = prepare_table(df)
    generator = str(df["generator"].iloc[0])
    if generator != baseline.get("generator"):
        raise CheckInputError(
            f"the baseline is for generator {baseline.get('generator')!r} but the run used "
            f"{generator!r}; compare runs of the same generator or re-create the baseline"
        )
    wanted = _wanted(baseline, metrics, probes)
    stats = summarise(df, probes=probes, metrics=metrics).set_index(
        ["learner", "task", "probe", "metric"]
    )
    _check_coverage(df, wanted, set(stats.index), probes, metrics)
    nonfinite = _nonfinite(df, probes, metrics)
    rows = [
        _compare(key, wanted[key], stats.loc[key], tolerance, sigma, key not in nonfinite)
        for key in sorted(wanted, key=_row_order)
    ]
    rows += _floor_rows(wanted, stats, floor_margin, run_plugins(df))
    notes = _notes(df, baseline, wanted)
    if nonfinite:
        cells = ", ".join("/".join(k) for k in sorted(nonfinite))
        notes.append(f"non-finite values in the run (counted as FAIL): {cells}")
    return CheckReport(rows, float(tolerance), float(sigma), generator, notes, float(floor_margin))


def _check_settings(
    tolerance: float, sigma: float, floor_margin: float, metrics: Sequence[str]
) -> None:
    """CheckInputError unless the tolerances are finite and >= 0 and the metrics known."""
    for name, value in (("floor margin", floor_margin), ("tolerance", tolerance), ("sigma", sigma)):
        if not (math.isfinite(value) and value >= 0):
            raise CheckInputError(f"{name} must be a finite number >= 0, got {value!r}")
    unknown = [m for m in metrics if m not in CAPTURE_METRICS]
    if unknown or not metrics:
        raise CheckInputError(
            f"cannot check metric(s) {unknown or '(none given)'}; "
            f"accepted: {', '.join(CAPTURE_METRICS)}"
        )


def _wanted(
    baseline: dict[str, Any], metrics: Sequence[str], probes: Sequence[str]
) -> dict[Key, dict[str, Any]]:
    """The baseline's cells of `metrics` and `probes`: key -> {mean, std, n}."""
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
    return wanted


def _check_coverage(
    df: pd.DataFrame,
    wanted: dict[Key, Any],
    have: set[Key],
    probes: Sequence[str],
    metrics: Sequence[str],
) -> None:
    """CheckInputError unless the run (cells `have`) covers every baseline learner and task."""
    run_learners = sorted(df["learner"].unique())
    base_learners = sorted({k[0] for k in wanted})
    if not any(k in have for k in wanted):
        raise CheckInputError(
            "no overlapping rows between the run and the baseline "
            f"(baseline: learners {base_learners}, tasks {sorted({k[1] for k in wanted})}, "
            f"probes {sorted(probes)}, metrics {sorted(metrics)}; run: learners "
            f"{run_learners}, tasks {sorted(df['task'].unique())}, "
            f"probes {sorted(df['probe'].unique())})"
        )
    missing_learners = [n for n in base_learners if n not in run_learners]
    missing_cells = sorted(k for k in wanted if k not in have and k[0] not in missing_learners)
    if not (missing_learners or missing_cells):
        return
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


def _nonfinite(df: pd.DataFrame, probes: Sequence[str], metrics: Sequence[str]) -> set[Key]:
    """Cells with a NaN/inf value at the final epoch: it would vanish from the mean, and a
    regression gate must fail it."""
    final = final_epoch(df)
    final = final[final["probe"].isin(list(probes)) & final["metric"].isin(list(metrics))]
    broken = final[~final["value"].map(math.isfinite)]
    return set(broken.set_index(["learner", "task", "probe", "metric"]).index)


def _compare(
    key: Key, cell: dict[str, Any], cur: pd.Series, tolerance: float, sigma: float, finite: bool
) -> CheckRow:
    """The row of one baseline cell `cell` against the run's statistics `cur`."""
    base_mean, base_std = float(cell["mean"]), float(cell["std"])
    current = float(cur["mean"])
    delta = current - base_mean
    allowed = max(tolerance, sigma * base_std)
    ok = math.isfinite(current) and finite and delta >= -allowed - EPS
    return CheckRow(
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
        params = parse_json(text)
        plugins = params.get("plugins") if isinstance(params, dict) else None
        if isinstance(plugins, dict):
            out.update({str(k): str(v) for k, v in plugins.items()})
    return out


def _floor_rows(
    wanted: dict[Key, Any],
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
        if base_gap <= margin + EPS:
            continue  # the baseline claims nothing above the floor here
        cur_gap = float(stats.loc[key]["mean"]) - float(stats.loc[fkey]["mean"])
        ok = math.isfinite(cur_gap) and cur_gap > margin + EPS
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


def _notes(df: pd.DataFrame, baseline: dict[str, Any], wanted: dict[Key, Any]) -> list[str]:
    """What differs between the run and the baseline without failing the check."""
    run_learners = sorted(df["learner"].unique())
    run_tasks = sorted(df["task"].unique())
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
    gens = (generator_params_of(parse_json(p)) for p in params)
    gen = next((g for g in gens if g is not None), None)
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
    sha = one_or_list(df["git_sha"])
    if baseline.get("git_sha") is not None and sha != baseline.get("git_sha"):
        notes.append(f"baseline made at git {baseline['git_sha']}, run at {sha}")
    return notes


def _row_order(key: Key) -> tuple[Any, ...]:
    """Rows in the learners' display order, then the tasks', probes' and metrics'."""
    from pid_bench.plotstyle import LEARNER_ORDER

    learner, task, probe, metric = key
    li = LEARNER_ORDER.index(learner) if learner in LEARNER_ORDER else len(LEARNER_ORDER)
    ti = ALL_TASKS.index(task) if task in ALL_TASKS else len(ALL_TASKS)
    return (li, learner, ti, task, probe, CAPTURE_METRICS.index(metric), metric)


def _baseline_probes(baseline: dict[str, Any]) -> str:
    probes = {
        f"{p} ({', '.join(sorted(ms))})"
        for tasks in baseline["results"].values()
        for per_probe in tasks.values()
        for p, ms in per_probe.items()
    }
    return ", ".join(sorted(probes)) or "(none)"
