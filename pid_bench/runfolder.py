"""Where a run's results live: the run folder and every file in it.

`prepare_run_folder` creates a folder or reopens one to resume (refusing a folder that holds
another config or a run made with other code), and writes `config.json`, `environment.json`
and `true_pid.json`. Each finished cell's rows go to `cells/` (`save_cell`); the table is
written from them as `results.csv` with its `manifest.json` only when every cell finished,
else as `results.csv.partial` with `failures.json` (`write_table`). Every file that a
killed process could leave half-written is written atomically (`write_atomic`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import io
import json
import os
import platform
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from generators.base import BimodalDataset
from generators.io import fingerprint, write_atomic
from pid_bench import envinfo
from pid_bench.cell import Cell, Rows, RunFailed, dataset_for_seed, part_name
from pid_bench.results import COLUMNS, cell_text, read_cell, read_json_object
from pid_bench.runconfig import RunConfig, config_dict, learner_cls
from pid_bench.training import resolve_device

if TYPE_CHECKING:  # an executor only describes itself here (`record`, `device`)
    from pid_bench.executors import Executor

#: Folder of a run folder holding one JSON file of result rows per finished cell.
CELLS_DIR = "cells"
#: Written with results.csv: its row count and checksum, so that a cut or edited table is
#: refused by `report` and `check` instead of being drawn as if complete.
MANIFEST = "manifest.json"
_STALE = ("results.csv", "results.csv.partial", "failures.json", MANIFEST)
#: Held while a run writes its folder: one run per folder.
LOCK = "run.lock"


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def cell_file(cells_dir: Path, cell: Cell) -> Path:
    """The file of `cell`'s result rows in the folder `cells/` of a run folder."""
    return cells_dir / f"{cell.learner}_seed{cell.seed}_{cell.group}.json"


def save_cell(cells_dir: Path, cell: Cell, rows: list[dict[str, Any]]) -> None:
    """Write `cell`'s rows with their checksum (`results.cell_text`), atomically."""
    write_atomic(cell_file(cells_dir, cell), cell_text(asdict(cell), rows))


def load_cell(path: Path) -> Rows:
    """`path`'s rows; ValueError naming it when it is not a cell file, was edited (its rows
    do not match their checksum) or has no checksum (`results.read_cell`)."""
    return read_cell(path)[0]


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[Path]:
    """Hold `out/run.lock` while the body writes the folder `out`; ValueError naming the
    holder (pid, host, start) when another live process holds it.

    The lock is an exclusive `flock` on the file, which the kernel releases when its process
    ends however it ends (SIGKILL included), so a lock left by a dead process is stale by
    construction and taken over; the file says who holds it (pid, host, start) for the
    message, and is removed when the body ends.
    """
    path = out / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ValueError(_held_message(out, path)) from None
        except BaseException:
            os.close(fd)
            raise
        try:  # the holder before us may have removed the file between our open and flock
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        me = {
            "pid": os.getpid(),
            "host": platform.node(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        yield path
    finally:
        path.unlink(missing_ok=True)  # before unlocking, so that no one locks a removed file
        os.close(fd)


def _held_message(out: Path, path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        who = f"pid {int(holder['pid'])} on {holder['host']}, since {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        who = "a process that has not yet written its pid"
    return (
        f"{out} is being written by another pid-bench run ({who}; {path}): wait for it to "
        "end or choose another --out"
    )


def _config_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two JSON configs differ, as `key: old -> new`."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            out += _config_diff(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [f"{prefix[:-1]}: {old!r} -> {new!r}"]


def prepare_run_folder(
    cfg: RunConfig,
    out: Path | str | None,
    force: bool,
    ds0: BimodalDataset,
    *,
    locks: contextlib.ExitStack,
    resumable: bool = True,
    jobs: int = 1,
    executor: Executor | None = None,
) -> tuple[Path, dict[str, Any], bool]:
    """Create or reopen the run folder: (folder, environment, whether it resumes a run).

    The folder is locked first (`run_lock`, released when `locks` closes): a folder another
    live run writes is refused. A folder holding a run of the same config (and code) is
    resumed; one holding another run is refused unless `force`, which clears it first. The
    folder gets config.json, environment.json (one entry per execution in `executions`) and
    true_pid.json.
    """
    run_id = new_run_id()
    out = Path(out) if out else Path("runs") / run_id
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder (created if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(
            f"cannot write the run folder {out}: {e.strerror or e}; choose a writable --out"
        ) from None
    locks.enter_context(run_lock(out))
    _remove_temporary_files(out)
    new_cfg = json.loads(json.dumps(config_dict(cfg), default=str))
    resume = False
    if force:
        _clear_run_folder(out)
    elif (out / "config.json").is_file() and resumable:
        _check_resumable(out, new_cfg)
        resume = True
    elif (out / "results.csv").exists():
        raise ValueError(f"{out} already holds results.csv; choose another --out or pass --force")
    try:
        if resume:
            env = read_json_object(out / "environment.json", "run environment")
            for stale in _STALE[1:]:  # a resumed run rewrites what its last try left
                (out / stale).unlink(missing_ok=True)
        else:
            env = environment(cfg, run_id, executor)
            write_atomic(out / "config.json", json.dumps(new_cfg, indent=2))
            true_pid = {t: ds0.true_pid[t].as_dict() for t in ds0.tasks}
            if ds0.latent_gaussian_pid:  # continuous truth, per latent factor (`gaussian`)
                true_pid["latent_gaussian"] = {
                    f: {k: v for k, v in r.as_dict().items() if not isinstance(v, tuple | list)}
                    for f, r in ds0.latent_gaussian_pid.items()
                }
            write_atomic(out / "true_pid.json", json.dumps(true_pid, indent=2))
        env.setdefault("executions", []).append(_execution(cfg, jobs, executor))
        write_atomic(out / "environment.json", json.dumps(env, indent=2))
    except OSError as e:
        raise ValueError(
            f"cannot write the run folder {out}: {e.strerror or e}; choose a writable --out"
        ) from None
    return out, env, resume


def _remove_temporary_files(out: Path) -> None:
    """Remove the temporary files (`generators.io.open_atomic`) that a killed run left in
    `out` and its subfolders; safe under the folder's lock, as no one else writes there."""
    for folder in (out, out / CELLS_DIR, out / "logs", out / "embeddings"):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def _clear_run_folder(out: Path) -> None:
    """Remove what a previous run left in `out` (results, cell files, logs, embeddings)."""
    if not out.is_dir():
        return
    try:
        for name in _STALE:
            (out / name).unlink(missing_ok=True)
        for sub in (CELLS_DIR, "logs", "embeddings"):
            if (out / sub).is_dir():
                shutil.rmtree(out / sub)
    except OSError as e:
        raise ValueError(f"cannot clear {out} for --force: {e.strerror or e}") from None


def _check_resumable(out: Path, new_cfg: dict[str, Any]) -> None:
    """ValueError unless `out` holds a run of `new_cfg` made with the same code."""
    try:
        old_cfg = read_json_object(out / "config.json", "run config")
        old_env = read_json_object(out / "environment.json", "run environment")
    except ValueError as e:
        raise ValueError(f"{e}; choose another --out or pass --force to start over") from None
    diff = _config_diff(old_cfg, new_cfg)
    if diff:
        shown = "; ".join(diff[:4]) + (f" and {len(diff) - 4} more" if len(diff) > 4 else "")
        raise ValueError(
            f"{out} holds a run with another config ({shown}); re-run with its arguments to "
            "resume it, choose another --out, or pass --force to start over"
        )
    now = {"git_sha": envinfo.git_sha(), "versions": envinfo.versions()}
    changed = [k for k in now if old_env.get(k) != now[k]]
    if changed:
        raise ValueError(
            f"{out} holds a run made with other code ({', '.join(changed)} differ: was "
            f"{old_env.get('git_sha')}, now {now['git_sha']}); resuming it would mix code "
            "versions in one table: choose another --out or pass --force to start over"
        )


def environment(cfg: RunConfig, run_id: str, executor: Executor | None = None) -> dict[str, Any]:
    if cfg.embeddings:  # a score run trains nothing; its probes (scikit-learn) run on the CPU
        device = "cpu"
    elif executor is not None:  # where the cells run, not necessarily here
        device = executor.device(cfg)
    else:
        device = resolve_device(cfg.train.device).type
    env = {
        "versions": envinfo.versions(),
        "git_sha": envinfo.git_sha(),
        "device": device,
        "cpu_count": os.cpu_count(),
        "run_id": run_id,
        "started": run_id[:15],
    }
    if cfg.plugins:
        env["plugins"] = {
            name: {"source": src, "file": _source_file(learner_cls(cfg, name))}
            for name, src in cfg.plugins.items()
        }
    return env


def _execution(cfg: RunConfig, jobs: int, executor: Executor | None = None) -> dict[str, Any]:
    """How one invocation ran: what may matter for the numbers besides the config (and
    the executor's own record: `executor`, `jobs`, and for Ray its `ray` section)."""
    return {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "jobs": jobs,
        **(executor.record(cfg) if executor is not None else {}),
        "threads_per_cell": None if cfg.embeddings else cfg.train.threads,
        "host": platform.node(),
        **envinfo.cpu(),
        "git_sha": envinfo.git_sha(),
    }


def _source_file(cls: type) -> str:
    try:
        return inspect.getfile(cls)
    except (TypeError, OSError):  # defined in a notebook or an interactive session
        return "unknown"


def results_table(
    rows: list[dict[str, Any]], cfg: RunConfig, env: dict[str, Any], run_id: str
) -> pd.DataFrame:
    """The tidy results table of `rows`, with the run-level columns, sorted."""
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in _RUN_COLUMNS])
    df["run_id"] = run_id
    df["generator"] = cfg.generator
    df["sweep_param"] = cfg.sweep_param
    df["sweep_value"] = cfg.sweep_value
    df["params"] = json.dumps(config_dict(cfg), sort_keys=True, default=str)
    df["versions"] = json.dumps(env["versions"], sort_keys=True)
    df["git_sha"] = env["git_sha"]
    return (
        df[list(COLUMNS)]
        .sort_values(["learner", "seed", "task", "probe", "metric", "epoch"], kind="stable")
        .reset_index(drop=True)
    )


_RUN_COLUMNS = (
    "run_id",
    "generator",
    "sweep_param",
    "sweep_value",
    "params",
    "versions",
    "git_sha",
)


def write_table(
    df: pd.DataFrame, out: Path, failures: list[tuple[Cell, str]], n_cells: int
) -> None:
    """Write `results.csv` and its manifest, or, when cells failed, the finished ones to
    `results.csv.partial` with `failures.json` beside it, and raise RunFailed."""
    partial = out / "results.csv.partial"
    data = df.to_csv(index=False).encode()
    if not failures:
        write_atomic(partial, data)
        manifest = {
            "rows": len(df),
            "cells": n_cells,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        write_atomic(out / MANIFEST, json.dumps(manifest, indent=2))
        partial.replace(out / "results.csv")
        return
    if not df.empty:
        write_atomic(partial, data)
    records = failure_records(failures)
    write_atomic(out / "failures.json", json.dumps(records, indent=2))
    done = n_cells - len(failures)
    kept = (
        f"the {done} cells that finished are in {partial}, not results.csv (the run is "
        "incomplete; run the same command again to retry the failed cells)"
        if done
        else "no cell finished"
    )
    raise RunFailed(
        f"{failure_text(failures)}; {kept}; details in {out / 'failures.json'}",
        df if done else None,
        records,
    )


def failure_records(failures: list[tuple[Cell, str]]) -> list[dict[str, Any]]:
    return [
        {
            "learner": c.learner,
            "seed": c.seed,
            "tasks": list(c.tasks),
            "training_split": c.train_task or "train",
            "error": msg,
        }
        for c, msg in failures
    ]


def failure_text(failures: list[tuple[Cell, str]]) -> str:
    more = f" (and {len(failures) - 1} more failed cells)" if len(failures) > 1 else ""
    return failures[0][1] + more


def merge_embeddings(cfg: RunConfig, emb_dir: Path, cells: list[Cell]) -> None:
    """One `<learner>_seed<seed>.npz` per learner and seed from the cells' part files."""
    for seed in cfg.seeds:
        fp = cfg.data_fingerprint or fingerprint(dataset_for_seed(cfg, seed))
        for name in cfg.learners:
            parts = [emb_dir / part_name(c) for c in cells if (c.learner, c.seed) == (name, seed)]
            parts = [p for p in parts if p.is_file()]
            if not parts:
                continue
            entries: dict[str, np.ndarray] = {}
            for part in parts:
                with np.load(part) as z:
                    entries.update({k: z[k] for k in z.files})
            entries["fingerprint"] = np.array(fp)
            entries["epoch"] = np.array(cfg.train.epochs)
            buf = io.BytesIO()
            np.savez(buf, **entries)
            write_atomic(emb_dir / f"{name}_seed{seed}.npz", buf.getvalue())
            for part in parts:
                part.unlink()


def note_execution(out: Path, extra: dict[str, Any]) -> None:
    """Add what an executor learnt while running (e.g. Ray's cells per node) to the last
    execution record of `out/environment.json`."""
    path = out / "environment.json"
    env = json.loads(path.read_text())
    last = env["executions"][-1]
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(last.get(key), dict):
            last[key].update(value)
        else:
            last[key] = value
    write_atomic(path, json.dumps(env, indent=2))


def embeddings_merged(emb_dir: Path, cell: Cell) -> bool:
    """Whether `cell`'s embeddings are already in its learner's merged file."""
    return (emb_dir / f"{cell.learner}_seed{cell.seed}.npz").is_file()
