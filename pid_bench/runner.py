"""The grid behind `pid-bench run` and `sweep`: plan the cells, hand them to an executor, and
write each run folder as its cells finish.

The house, in the order a run goes through it (each module imports only those before it):

- `runconfig`: what to run (`RunConfig`, `resolve_config`, `INTERACTIONS`);
- `cell`: the unit of work (`Cell`, `plan_cells`, `run_cell`, the dataset of each seed);
- `executors`: how cells run (local processes or Ray), handed `run_cell` by this module;
- `runfolder`: where results live (cell files, resume, `results.csv` and its manifest);
- `runner` (here): the grid (`run`, `run_grid`, `run_in_memory`); `score` beside it.

The names users import from here (`resolve_config`, `RunConfig`, `RunFailed`, `Cell`, ...)
are re-exported from their modules.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from pid_bench import arguments
from pid_bench.cell import (
    Cell,
    Rows,
    RunFailed,
    check_run_data,
    dataset_for_seed,
    part_name,
    plan_cells,
    probe_embeddings,
    run_cell,
    split_views,
    training_split,
)
from pid_bench.executors import Executor, LocalExecutor, Task, make_executor
from pid_bench.results import read as read_results
from pid_bench.runconfig import (
    INTERACTIONS,
    RunConfig,
    config_dict,
    interaction_tasks,
    learner_cls,
    resolve_config,
)
from pid_bench.runfolder import (
    CELLS_DIR,
    MANIFEST,
    cell_file,
    embeddings_merged,
    environment,
    failure_records,
    failure_text,
    load_cell,
    merge_embeddings,
    new_run_id,
    note_execution,
    prepare_run_folder,
    results_table,
    save_cell,
    write_table,
)

__all__ = [
    "CELLS_DIR",
    "INTERACTIONS",
    "MANIFEST",
    "Cell",
    "RunConfig",
    "RunFailed",
    "RunInterrupted",
    "config_dict",
    "dataset_for_seed",
    "interaction_tasks",
    "learner_cls",
    "plan_cells",
    "probe_embeddings",
    "resolve_config",
    "run",
    "run_cell",
    "run_grid",
    "run_in_memory",
    "split_views",
    "training_split",
]


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C: its finished cells are kept, and the same command resumes it."""


def run(
    cfg: RunConfig,
    out: Path | None = None,
    *,
    jobs: int = 1,
    quiet: bool = False,
    force: bool = False,
    save_embeddings: bool = False,
    executor: str | Executor = "local",
    address: str | None = None,
    retries: int | None = None,
) -> tuple[pd.DataFrame, Path]:
    """Run the grid, write `results.csv`, `config.json`, `environment.json` and per-epoch logs.

    Each cell's rows are written to `cells/` as soon as it finishes. Running again into the
    same folder with the same config resumes: finished cells are kept, the others run (a
    folder holding another config is refused; `force` clears it and starts over). Ctrl-C
    raises RunInterrupted, saying how many cells are done. The table is written as
    `results.csv` (with `manifest.json`) only when every cell has finished, so a results.csv is
    always complete; it is built from the cell files in a fixed order, so a resumed run, or
    one with any `jobs` or executor, gives the table of an uninterrupted serial run. A learner
    that fails (LearnerError) fails its cells only: the others still run, their rows go to
    `results.csv.partial`, the failures to `failures.json`, and RunFailed is raised at the end.
    With `save_embeddings`, `embeddings/<learner>_seed<seed>.npz` holds each model's final
    embeddings in the layout `pid-bench score` reads (scoring them gives the same numbers).

    `executor` is `local` (`jobs` processes of this machine) or `ray` (a Ray cluster at
    `address`, default a new local one; a cell whose worker dies is run again up to `retries`
    times), see `pid_bench.executors`.
    """
    return run_grid(
        [(cfg, out)],
        jobs=jobs,
        quiet=quiet,
        force=force,
        save_embeddings=save_embeddings,
        executor=executor,
        address=address,
        retries=retries,
    )[0]


@dataclass
class _OpenRun:
    """One run folder of a grid, opened (or resumed) and planned."""

    cfg: RunConfig
    out: Path
    env: dict[str, Any]
    cells: list[Cell]
    emb_dir: Path | None
    todo: list[Task]
    finished_before: bool = False  # a finished run written before cell files existed

    @property
    def cells_dir(self) -> Path:
        return self.out / CELLS_DIR

    def is_done(self, cell: Cell) -> bool:
        if not cell_file(self.cells_dir, cell).is_file():
            return False
        emb = self.emb_dir
        return emb is None or (emb / part_name(cell)).is_file() or embeddings_merged(emb, cell)


def run_grid(
    runs: list[tuple[RunConfig, Path | str | None]],
    *,
    jobs: int = 1,
    quiet: bool = False,
    force: bool = False,
    save_embeddings: bool = False,
    executor: str | Executor = "local",
    address: str | None = None,
    retries: int | None = None,
) -> list[tuple[pd.DataFrame, Path]]:
    """Several runs (one per `(cfg, out)`, e.g. the values of a sweep) as one grid: their
    cells go to one executor together, under one progress bar, and each run's folder is
    written as `run` writes it. Returns `(table, folder)` per run; when cells failed, every
    folder is still written and one RunFailed names the failures of all of them."""
    _check_call(runs, jobs=jobs, quiet=quiet, force=force, save_embeddings=save_embeddings)
    # connect first: a missing Ray or an unreachable cluster is refused before any folder
    ex = executor
    if isinstance(executor, str):
        ex = make_executor(executor, jobs=jobs, address=address, retries=retries, quiet=quiet)
    # each folder stays locked (`run_lock`) until its table is written
    with contextlib.ExitStack() as locks:
        return _run_locked(runs, locks, ex, jobs, quiet, force, save_embeddings)


def _run_locked(
    runs: list[tuple[RunConfig, Path | str | None]],
    locks: contextlib.ExitStack,
    ex: Executor,
    jobs: int,
    quiet: bool,
    force: bool,
    save_embeddings: bool,
) -> list[tuple[pd.DataFrame, Path]]:
    try:
        for cfg, _ in runs:  # every run's, before any folder is written
            ex.check(cfg)
            check_run_data(cfg, dataset_for_seed(cfg, cfg.seeds[0]))
        opened = [
            _open_run(cfg, out, force, save_embeddings, ex, jobs, quiet, locks) for cfg, out in runs
        ]
        owner = {id(t): r for r in opened for t in r.todo}
        tasks = [t for r in opened for t in r.todo]
        n_cells = sum(len(r.cells) for r in opened)
        try:
            _, failures = _run_cells(
                tasks,
                ex,
                quiet,
                on_done=lambda t, rows: save_cell(owner[id(t)].cells_dir, t.cell, rows),
                already=n_cells - len(tasks),
            )
        except KeyboardInterrupt:
            n = sum(r.is_done(c) for r in opened for c in r.cells)
            where = opened[0].cells_dir if len(opened) == 1 else "the cells/ folder of each run"
            raise RunInterrupted(
                f"interrupted: {n} of {n_cells} cells are done and kept in {where}; run the "
                "same command again to resume (--force starts over)"
            ) from None
        after = ex.record_after()
    finally:
        ex.close()
    results, errors = [], []
    for r in opened:
        if after:
            note_execution(r.out, after)
        if r.finished_before:
            results.append((read_results(r.out), r.out))
            continue
        mine = [(t.cell, msg) for t, msg in failures if owner[id(t)] is r]
        try:
            results.append((_finish_run(r, mine), r.out))
        except RunFailed as e:
            errors.append(e)
    if len(errors) == 1 and len(opened) == 1:
        raise errors[0]
    if errors:
        records = [rec for e in errors for rec in e.failures]
        raise RunFailed(
            f"{len(records)} cells failed in {len(errors)} of {len(opened)} runs: "
            + "; ".join(str(e) for e in errors),
            None,
            records,
        )
    return results


def _open_run(
    cfg: RunConfig,
    out: Path | str | None,
    force: bool,
    save_embeddings: bool,
    ex: Executor,
    jobs: int,
    quiet: bool,
    locks: contextlib.ExitStack,
) -> _OpenRun:
    ds0 = dataset_for_seed(cfg, cfg.seeds[0])
    out, env, resumed = prepare_run_folder(
        cfg, out, force, ds0, locks=locks, jobs=jobs, executor=ex
    )
    cells = plan_cells(cfg)
    emb_dir = out / "embeddings" if save_embeddings else None
    r = _OpenRun(cfg, out, env, cells, emb_dir, [])
    if resumed and not r.cells_dir.is_dir() and (out / "results.csv").is_file():
        r.finished_before = True
        return r
    for c in cells:  # an edited cell is refused before anything runs
        if r.is_done(c):
            load_cell(cell_file(r.cells_dir, c))
    r.todo = [Task(cfg, c, out / "logs", emb_dir) for c in cells if not r.is_done(c)]
    n_done = len(cells) - len(r.todo)
    if resumed and not quiet:
        print(f"resuming {out}: {n_done} of {len(cells)} cells already done", file=sys.stderr)
    r.cells_dir.mkdir(exist_ok=True)
    return r


def _finish_run(r: _OpenRun, failures: list[tuple[Cell, str]]) -> pd.DataFrame:
    """The table of an opened run from its cell files, written (RunFailed if cells failed)."""
    rows = [row for c in r.cells if r.is_done(c) for row in load_cell(cell_file(r.cells_dir, c))]
    if r.emb_dir is not None and not failures:
        merge_embeddings(r.cfg, r.emb_dir, r.cells)
    df = results_table(rows, r.cfg, r.env, r.env["run_id"])
    write_table(df, r.out, failures, len(r.cells))
    return df


def run_in_memory(cfg: RunConfig, *, quiet: bool = True) -> pd.DataFrame:
    """The results table of `cfg` without writing anything (RunFailed if a learner fails)."""
    _check_call([(cfg, None)], quiet=quiet)
    executor = LocalExecutor(1, quiet=quiet)
    executor.check(cfg)
    check_run_data(cfg, dataset_for_seed(cfg, cfg.seeds[0]))
    run_id = new_run_id()
    env = environment(cfg, run_id)
    tasks = [Task(cfg, c, None, None) for c in plan_cells(cfg)]
    done, failed = _run_cells(tasks, executor, quiet)
    rows = [r for t in tasks if id(t) in done for r in done[id(t)]]
    df = results_table(rows, cfg, env, run_id)
    if failed:
        failures = [(t.cell, msg) for t, msg in failed]
        raise RunFailed(failure_text(failures), df if rows else None, failure_records(failures))
    return df


def _check_call(runs: Any, *, jobs: int = 1, **flags: Any) -> None:
    """The arguments of `run`, `run_grid` and `run_in_memory`, checked as the CLI checks its
    flags (`pid_bench.arguments`): TypeError or ValueError naming the argument."""
    if not isinstance(runs, (list, tuple)):
        raise TypeError(f"runs: expected a list of (RunConfig, folder) pairs, got {runs!r}")
    for cfg, out in runs:
        if not isinstance(cfg, RunConfig):
            raise TypeError(
                f"cfg: expected a RunConfig (from pid_bench.runner.resolve_config), got "
                f"{type(cfg).__name__}"
            )
        arguments.path(out, "out")
    arguments.int_at_least(jobs, 1, "jobs")
    for key, value in flags.items():
        arguments.flag(value, key)


def _run_cells(
    tasks: list[Task],
    executor: Executor,
    quiet: bool,
    on_done: Callable[[Task, Rows], None] | None = None,
    already: int = 0,
) -> tuple[dict[int, Rows], list[tuple[Task, str]]]:
    """Rows of each task that finished (by `id(task)`), and (task, message) of those that
    failed, run by `executor` (`pid_bench.executors`) under one progress bar.

    The executor is handed the function that runs a cell (`cell.run_cell`). `on_done(task,
    rows)` is called in this process as each cell finishes. Whatever the executor, each cell
    runs under the same thread settings (`run_cell`), so the numbers do not depend on it. On
    Ctrl-C the workers are stopped and KeyboardInterrupt is raised; the cells already passed
    to `on_done` stay done.
    """
    done: dict[int, Rows] = {}
    failures: list[tuple[Task, str]] = []
    bar = tqdm(total=len(tasks) + already, initial=already, desc="cells", disable=quiet)

    def finished(task: Task, rows: Rows) -> None:
        done[id(task)] = rows
        if on_done is not None:
            on_done(task, rows)

    def failed(task: Task, message: str) -> None:
        failures.append((task, message))

    try:
        executor.run(run_cell, tasks, finished, failed, bar.update)
    finally:
        bar.close()
    return done, failures
