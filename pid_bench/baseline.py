"""Regression baselines: what a trusted run scored, stored to compare later runs with.

A baseline (`make_baseline`, `write_baseline`, `pid-bench baseline`) stores, per learner x
task x probe x capture metric at the final epoch, the mean, std and number of seeds, plus the
generator, the run's parameters and the git sha it came from. `pid_bench.check` compares a
new run with it. Input that cannot be baselined or compared raises `CheckInputError`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from generators.io import write_atomic
from pid_bench.results import CAPTURE_METRICS, coerce, read_runs, summarise

BASELINE_FORMAT = "pid-bench-baseline"
BASELINE_VERSION = 1

# Rounding keeps baseline files short and their diffs readable; 1e-6 is far below any
# tolerance that makes sense for accuracies or bits.
_DIGITS = 6


class CheckInputError(ValueError):
    """The results and the baseline cannot be compared (not a regression)."""


def make_baseline(df: pd.DataFrame) -> dict[str, Any]:
    """The baseline of a results table: final-epoch capture metrics per learner x task x probe.

    `results[learner][task][probe][metric] = {"mean", "std", "n"}` for the metrics in
    `CAPTURE_METRICS` (std over seeds, ddof=1, 0 for one seed), plus the generator, its
    parameters, each run's parameters (by run id), seeds, final epochs per learner, git sha,
    device, versions and run ids. Raises CheckInputError for sweep tables, several
    generators, or non-finite values.
    """
    df = prepare_table(df)
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
        str(k): parse_json(v)
        for k, v in df.drop_duplicates("run_id").set_index("run_id")["params"].items()
    }
    gen_params = [generator_params_of(p) for p in run_params.values()]
    return {
        "format": BASELINE_FORMAT,
        "version": BASELINE_VERSION,
        "generator": str(df["generator"].iloc[0]),
        "generator_params": next((g for g in gen_params if g is not None), None),
        "params": run_params,
        "seeds": sorted(int(s) for s in df["seed"].unique()),
        "final_epoch": {str(k): int(v) for k, v in df.groupby("learner")["epoch"].max().items()},
        "git_sha": one_or_list(df["git_sha"]),
        "device": one_or_list(df["device"]),
        "versions": _merged_versions(df["versions"]),
        "run_ids": sorted(str(r) for r in df["run_id"].unique()),
        "results": results,
    }


def write_baseline(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `make_baseline(df)` as JSON with sorted keys (diff-friendly); return the path."""
    baseline = make_baseline(df)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(p, json.dumps(baseline, indent=2, sort_keys=True) + "\n")
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
        text = p.read_text(encoding="utf-8")
        if not text.strip():
            raise CheckInputError(f"{p}: empty file; expected a pid-bench baseline (JSON)")
        baseline = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckInputError(f"{p} is not a pid-bench baseline: invalid JSON ({e})") from None
    validate_baseline(baseline, str(p))
    return baseline


def validate_baseline(baseline: Any, where: str = "baseline") -> None:
    """CheckInputError unless `baseline` is a baseline this pid-bench reads, with numbers
    `mean`, `std` and `n` in every cell; `where` names it in the message."""
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
                    _check_figures(cell, f"{where}: results/{learner}/{task}/{probe}/{metric}")


def _check_figures(cell: dict[str, Any], where: str) -> None:
    """CheckInputError unless a baseline cell's figures can be compared with: a finite mean,
    a finite std >= 0, a whole n >= 1 (JSON lets NaN and Infinity through)."""
    mean, std, n = cell["mean"], cell["std"], cell["n"]
    for field, value, ok in (
        ("mean", mean, math.isfinite(mean)),
        ("std", std, math.isfinite(std) and std >= 0),
        ("n", n, not isinstance(n, bool) and float(n).is_integer() and n >= 1),
    ):
        if not ok:
            raise CheckInputError(
                f"{where}: {field} is {value!r}; a baseline holds a finite mean, a finite std "
                ">= 0 and a whole number of seeds n >= 1 (re-create it with pid-bench baseline)"
            )


def _items(value: Any, where: str) -> list[tuple[str, Any]]:
    if not isinstance(value, dict):
        raise CheckInputError(f"{where} must be a JSON object")
    return list(value.items())


def baseline_from_runs(run_dirs: Sequence[str | Path], path: str | Path) -> Path:
    """`pid-bench baseline`: read run folders and write their baseline to `path`."""
    try:
        df = read_runs(run_dirs)
    except ValueError as e:  # missing folder, no results.csv, empty table
        raise CheckInputError(str(e)) from None
    return write_baseline(df, path)


def prepare_table(df: pd.DataFrame) -> pd.DataFrame:
    """`df` checked and coerced for a baseline or a check: one generator, no sweep, rows."""
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


def parse_json(text: Any) -> Any:
    """A JSON cell of the results table (`params`, `versions`), `{}` when empty."""
    if not isinstance(text, str) or not text:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"raw": text}


def generator_params_of(params: Any) -> Any:
    """The generator's parameters inside a row's params JSON, wherever the runner put them."""
    if not isinstance(params, dict):
        return None
    for key in ("generator_params", "generator"):
        value = params.get(key)
        if isinstance(value, dict):
            inner = value.get("params")
            return inner if isinstance(inner, dict) and "name" in value else value
    return None


def one_or_list(col: pd.Series) -> str | list[str]:
    """The one value of a column (as text), or its sorted values when they differ."""
    values = sorted({str(v) for v in col.unique()})
    return values[0] if len(values) == 1 else values


def _merged_versions(col: pd.Series) -> dict[str, str]:
    merged: dict[str, set[str]] = {}
    for text in col.astype(str).unique():
        parsed = parse_json(text)
        if isinstance(parsed, dict):
            for k, v in parsed.items():
                merged.setdefault(str(k), set()).add(str(v))
    return {k: " / ".join(sorted(v)) for k, v in sorted(merged.items())}
