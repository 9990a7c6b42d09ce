"""The tidy results table: one row per measured number.

Every figure, summary, baseline and regression check is drawn from this table only.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Columns of the results table, in order.
COLUMNS: tuple[str, ...] = (
    "run_id",  # one id per `pid-bench run` invocation
    "generator",  # generator name, e.g. "bits"
    "learner",  # learner name, e.g. "comm"
    "seed",  # repetition seed (int)
    "task",  # redundancy | unique1 | unique2 | synergy
    "probe",  # linear | mlp | pid_clustered | pid_batch
    "metric",  # balanced_accuracy | mi_bits | capture | chance | redundancy | samples_per_cell ...
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

#: Columns read as text whatever they hold: a three-modality table of synergy123 alone has
#: true_atom "123" on every row, which would otherwise be read back as the integer 123.
TEXT_COLUMNS: dict[str, type] = {
    c: str
    for c in ("run_id", "generator", "learner", "task", "probe", "metric", "true_atom",
              "sweep_param", "sweep_value", "git_sha", "device")
}  # fmt: skip

#: Metrics that measure interaction capture (what regression checks compare).
CAPTURE_METRICS: tuple[str, ...] = ("balanced_accuracy", "mi_bits", "capture")


class RunFolderWarning(UserWarning):
    """Something of a run folder that could not be verified (cell files without checksum)."""


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(f"cannot write {type(o).__name__} to a results file")


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in `path`; ValueError with one line naming the file and what is wrong
    (unreadable, not UTF-8, empty, not JSON, not an object). `what` names its role."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: the {what} is not text (not UTF-8)") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    if not text.strip():
        raise ValueError(f"{path}: empty file; expected the {what} (JSON)")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: the {what} is not JSON ({e.msg} at line {e.lineno} column {e.colno})"
        ) from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: the {what} must be a JSON object, got {type(obj).__name__}")
    return obj


#: Keys every result row of a cell file has.
_CELL_ROW_KEYS = frozenset({"learner", "seed", "task", "probe", "metric", "value", "epoch"})


def rows_checksum(rows: list[dict[str, Any]]) -> str:
    """SHA-256 of result rows as JSON (sorted keys): what a cell file records of its rows.

    Python's JSON floats round-trip exactly, so rows read back from a cell file give the
    checksum they were written with, unless the file was edited."""
    text = json.dumps(rows, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()


def cell_text(cell: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The content of a cell file: the cell, its result rows and their checksum."""
    doc = {"cell": cell, "rows": rows, "sha256": rows_checksum(rows)}
    return json.dumps(doc, default=_json_default)


def read_cell(path: Path, *, unchecked_ok: bool = False) -> tuple[list[dict[str, Any]], bool]:
    """The result rows of a cell file, and whether they carried a checksum.

    ValueError naming the file when it is not a cell file, when its rows do not match their
    checksum (the file was edited), or when it has no checksum, unless `unchecked_ok`
    (cell files written before cells carried checksums)."""
    fix = "delete it to re-run that cell, or pass --force to start the run over"
    try:
        doc = read_json_object(path, "cell file")
    except ValueError as e:
        raise ValueError(f"{e}; {fix}") from None
    rows = doc.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{path}: not a cell file of pid-bench run (no list of rows); {fix}")
    short = next((r for r in rows if not _CELL_ROW_KEYS <= set(r)), None)
    if short is not None:
        lacks = ", ".join(sorted(_CELL_ROW_KEYS - set(short)))
        raise ValueError(f"{path}: a row of the cell file lacks {lacks}; {fix}")
    recorded = doc.get("sha256")
    if recorded is None:
        if unchecked_ok:
            return rows, False
        raise ValueError(
            f"{path} carries no checksum of its rows (written by an older pid-bench, or by "
            "hand), so they cannot be trusted; delete it to re-run that cell, or pass --force "
            "to start the run over"
        )
    if recorded != rows_checksum(rows):
        raise ValueError(
            f"{path}: its rows do not match the checksum written with them, so the cell file "
            "was edited after the run wrote it; delete it and run the same `pid-bench run` "
            "command into its folder again to re-run that cell"
        )
    return rows, True


def validate(df: pd.DataFrame) -> pd.DataFrame:
    """Check that `df` has the results schema; raise ValueError naming missing columns."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"not a pid-bench results table: missing columns {missing}; expected {list(COLUMNS)}"
        )
    return df


def read(path: str | Path, *, complete: bool = True) -> pd.DataFrame:
    """Read a results CSV (a file, or a run folder holding `results.csv`).

    With `complete` (the default), a table that lacks rows its run folder says it has is
    refused with ValueError: see `check_complete`.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "results.csv"
    if not p.is_file():
        cells = p.with_name("cells")
        if p.with_name("results.csv.partial").is_file() or cells.is_dir():
            n = len(list(cells.glob("*.json"))) if cells.is_dir() else 0
            raise ValueError(
                f"{p.parent} holds an unfinished run ({n} finished cells in cells/, no "
                "results.csv): run the same command again to finish it (failures.json lists "
                "failed cells, if any)"
            )
        raise ValueError(f"no results table at {p}: expected a run folder or a results.csv file")
    try:
        df = pd.read_csv(p, dtype=TEXT_COLUMNS, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise ValueError(f"{p} is not a readable results table: {msg}") from None
    validate(df)
    try:
        df["value"] = pd.to_numeric(df["value"], errors="raise")
    except (ValueError, TypeError):
        raise ValueError(f"{p}: column 'value' holds text where numbers belong") from None
    if complete:
        check_complete(df, p)
    return df


#: Metrics every linear or MLP probe row group has (capture only where the true atom is > 0).
_PROBE_METRICS = frozenset({"balanced_accuracy", "chance", "mi_bits"})


def check_complete(df: pd.DataFrame, path: str | Path) -> None:
    """ValueError if the results table read from `path` lacks rows its run folder lists.

    Two checks, so that a table cut at a row boundary is never drawn as if whole:
    - `manifest.json` (written by `pid-bench run` with results.csv): row count and checksum;
    - `config.json`: every (learner, seed, task) of the config has linear-probe rows (and
      MLP-probe rows unless the config skipped that probe) at its final epoch, and every
      row group has the metrics the same task and probe have elsewhere in the table.
    Files without a manifest or config (made by hand) get the second check only where a config
    is present.
    """
    p = Path(path)
    folder = p.parent
    manifest = folder / "manifest.json"
    if manifest.is_file():
        m = read_json_object(manifest, "manifest")
        try:
            rows, digest = int(m["rows"]), str(m["sha256"])
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                f"{manifest}: not a pid-bench manifest (needs 'rows', a count, and 'sha256')"
            ) from None
        if len(df) != rows:
            raise ValueError(
                f"{p} has {len(df)} rows and the run wrote {rows}: the table was cut or "
                f"edited. Re-run the run command into {folder} to rewrite it (finished cells "
                "are kept), or remove manifest.json to use the file as it is"
            )
        if hashlib.sha256(p.read_bytes()).hexdigest() != digest:
            raise ValueError(
                f"{p} does not match the checksum in {manifest}: the table was edited after "
                f"the run wrote it. Re-run the run command into {folder} to rewrite it "
                "(finished cells are kept), or remove manifest.json to use the file as it is"
            )
    _check_cells(folder / "cells")
    config = folder / "config.json"
    if not config.is_file():
        return
    cfg = read_json_object(config, "run config")
    try:
        learners, seeds, tasks = cfg["learners"], cfg["seeds"], cfg["tasks"]
    except (KeyError, TypeError):
        return  # not a run config: nothing to check against
    probes = ["linear"] + (["mlp"] if (cfg.get("probe") or {}).get("mlp") else [])
    have = df.groupby(["learner", "seed", "task", "probe"]).size()
    have_keys = {(str(a), int(b), str(c), str(d)) for a, b, c, d in have.index}
    missing = [
        f"{name}/seed {seed}/{task}/{probe}"
        for name in learners
        for seed in seeds
        for task in tasks
        for probe in probes
        if (str(name), int(seed), str(task), probe) not in have_keys
    ]
    short = _short_groups(df)
    if missing or short:
        listed = (missing + short)[:4]
        more = len(missing) + len(short) - len(listed)
        raise ValueError(
            f"{p} lacks results its config.json lists ({'; '.join(listed)}"
            f"{f' and {more} more' if more else ''}): the table was cut or the run did not "
            f"finish; run the same command again into {folder} to complete it"
        )


def _check_cells(cells: Path) -> None:
    """ValueError naming the first cell file in `cells` whose rows do not match their
    checksum; a warning for cell files without one (written before cells had checksums)."""
    if not cells.is_dir():
        return
    unchecked = [
        p.name for p in sorted(cells.glob("*.json")) if not read_cell(p, unchecked_ok=True)[1]
    ]
    if unchecked:
        warnings.warn(
            f"{len(unchecked)} cell file(s) in {cells} carry no checksum (written before "
            "pid-bench recorded one), so they were not verified",
            RunFolderWarning,
            stacklevel=2,
        )


def _short_groups(df: pd.DataFrame) -> list[str]:
    """Row groups (learner, seed, task, probe, epoch) missing a metric their task and probe
    have elsewhere, or one every linear/MLP probe writes."""
    keys = ["learner", "seed", "task", "probe", "epoch"]
    metrics = df.groupby(keys)["metric"].agg(frozenset)
    union: dict[tuple[str, str], frozenset] = {}
    for (_, _, task, probe, _), ms in metrics.items():
        union[(task, probe)] = union.get((task, probe), frozenset()) | ms
    out = []
    for (learner, seed, task, probe, epoch), ms in metrics.items():
        need = union[(task, probe)] | (_PROBE_METRICS if probe in ("linear", "mlp") else set())
        lack = need - ms
        if lack:
            out.append(f"{learner}/seed {seed}/{task}/{probe}/epoch {epoch} lacks {min(lack)}")
    return out


# --- Helpers shared by reports and regression checks (additive; added with report/check) ---

#: Keys that identify one measurement cell; the final epoch is the largest epoch per cell.
CELL_KEYS: tuple[str, ...] = ("run_id", "learner", "seed", "task")


def read_runs(paths: Sequence[str | Path], *, with_source: bool = False) -> pd.DataFrame:
    """Read and concatenate the results tables of several run folders (or results.csv files).

    Numeric columns are converted (`seed`, `epoch` to int; `true_bits`, `elapsed_s` to float),
    and `sweep_param`/`sweep_value` stay strings ("" outside sweeps). With `with_source`, a
    `source` column holds the folder each row came from. Raises ValueError for an empty list,
    a folder without results.csv, or a table without rows.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise ValueError("no run folders given: pass one or more folders that hold results.csv")
    seen: set[Path] = set()
    frames = []
    for path in paths:
        key = Path(path).resolve()
        if key in seen:  # the same folder named twice (e.g. by a glob and by hand)
            continue
        seen.add(key)
        df = read(path)
        if df.empty:
            raise ValueError(f"results table in {path} has no rows")
        if with_source:
            df["source"] = str(path)
        frames.append(df)
    return coerce(pd.concat(frames, ignore_index=True))


def coerce(df: pd.DataFrame) -> pd.DataFrame:
    """`df` (validated) with the column types reports and checks rely on.

    `seed`, `epoch` become int (ValueError if blank); `true_bits`, `elapsed_s` float (blank is
    NaN); name columns and `sweep_param`/`sweep_value` strings ("" outside sweeps).
    """
    validate(df)
    df = df.copy()
    for col in ("seed", "epoch"):
        num = pd.to_numeric(df[col], errors="coerce")
        if num.isna().any():
            raise ValueError(
                f"column {col!r} must be an integer in every row; found blanks or text"
            )
        df[col] = num.astype(int)
    for col in ("value", "true_bits", "elapsed_s"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    for col in ("run_id", "generator", "learner", "task", "probe", "metric"):
        df[col] = df[col].astype(str)
    for col in ("sweep_param", "sweep_value"):
        df[col] = df[col].fillna("").astype(str)
    return df


def final_epoch(df: pd.DataFrame) -> pd.DataFrame:
    """The rows at the largest epoch of each (run_id, learner, seed, task): the final results."""
    last = df.groupby(list(CELL_KEYS), sort=False)["epoch"].transform("max")
    return df[df["epoch"] == last]


def summarise(
    df: pd.DataFrame,
    *,
    probes: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Mean, std (over seeds, ddof=1; 0 for one seed) and n seeds of the final-epoch values.

    One row per (generator, sweep_param, sweep_value, learner, task, probe, metric); a seed of
    one run counts once, and the same seed in two runs (folders) counts twice.
    """
    final = final_epoch(df)
    if probes is not None:
        final = final[final["probe"].isin(list(probes))]
    if metrics is not None:
        final = final[final["metric"].isin(list(metrics))]
    keys = ["generator", "sweep_param", "sweep_value", "learner", "task", "probe", "metric"]
    # Average within each (run, seed) first, so n counts seeds even if a cell was probed twice.
    per_seed = final.groupby([*keys, "run_id", "seed"], sort=False)["value"].mean().reset_index()
    out = (
        per_seed.groupby(keys, sort=False)["value"]
        .agg(mean="mean", std="std", n="count")
        .reset_index()
    )
    out["std"] = out["std"].fillna(0.0)
    return out
