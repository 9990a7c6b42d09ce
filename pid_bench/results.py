"""The tidy results table: one row per measured number.

Every figure, summary, baseline and regression check is drawn from this table only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: Columns of the results table, in order.
COLUMNS: tuple[str, ...] = (
    "run_id",  # one id per `pid-bench run` invocation
    "generator",  # generator name, e.g. "bits"
    "learner",  # learner name, e.g. "comm"
    "seed",  # repetition seed (int)
    "task",  # redundancy | unique1 | unique2 | synergy
    "probe",  # linear | mlp | pid_clustered
    "metric",  # balanced_accuracy | mi_bits | capture | chance | redundancy | unique1 | ...
    "value",  # float
    "epoch",  # epoch the representation was read at (final epoch for final results)
    "true_atom",  # the PID atom the task isolates (redundancy|unique1|unique2|synergy)
    "true_bits",  # exact value of that atom for the task, bits
    "sweep_param",  # generator parameter swept (empty when not a sweep)
    "sweep_value",  # its value for this row (string; empty when not a sweep)
    "params",  # JSON: generator params, learner config, training config
    "versions",  # JSON: package versions
    "git_sha",  # git commit of the suite, or "unknown"
    "device",  # cpu | cuda
    "elapsed_s",  # wall seconds of the (learner, seed, task-group) cell
)

#: Metrics that measure interaction capture (what regression checks compare).
CAPTURE_METRICS: tuple[str, ...] = ("balanced_accuracy", "mi_bits", "capture")


def validate(df: pd.DataFrame) -> pd.DataFrame:
    """Check that `df` has the results schema; raise ValueError naming missing columns."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"not a pid-bench results table: missing columns {missing}; expected {list(COLUMNS)}"
        )
    return df


def read(path: str | Path) -> pd.DataFrame:
    """Read a results CSV (a file, or a run folder holding `results.csv`)."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.csv"
    if not p.is_file():
        raise ValueError(f"no results table at {p}: expected a run folder or a results.csv file")
    df = pd.read_csv(p, dtype={"sweep_param": str, "sweep_value": str}, keep_default_na=False)
    validate(df)
    df["value"] = pd.to_numeric(df["value"], errors="raise")
    return df
