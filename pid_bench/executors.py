"""Executors: how the planned cells of a grid are run, in local processes or on a Ray cluster.

The runner plans the grid (`cell.plan_cells`), decides which cells a resumed run still
needs, and hands them to an executor as `Task`s, with the function that runs one
(`cell.run_cell`, as benchopt's `parallel_run` is handed the function to run); the executor
calls back as each cell finishes or fails, in the runner's process, which writes the cell
files, the progress bar and the table. So `local` and `ray` give the same files and, for the
same seeds, the same numbers. This module imports `cell` and `runconfig`, never the runner.

`ray` is imported only by `RayExecutor`: nothing here needs it otherwise.
"""

from __future__ import annotations

import os
import platform
import signal
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from generators.io import write_atomic
from pid_bench import arguments, envinfo
from pid_bench.cell import Cell, Rows, RunFailed
from pid_bench.learners.base import LearnerError
from pid_bench.runconfig import RunConfig, learner_cls
from pid_bench.training import resolve_device

EXECUTORS = ("local", "ray")
RAY_INSTALL = 'pip install "pid-bench[ray]"'
#: Times Ray runs a cell again after its worker died (killed, out of memory, node lost).
DEFAULT_RETRIES = 2


@dataclass(frozen=True)
class Task:
    """One cell of one run of a grid, and where its logs and embeddings go."""

    cfg: RunConfig
    cell: Cell
    log_dir: Path | None
    emb_dir: Path | None


Finished = Callable[[Task, Rows], None]
Failed = Callable[[Task, str], None]
#: The function that runs a cell: `run_cell(cfg, cell, log_dir, progress, emb_dir) -> rows`.
CellFn = Callable[[RunConfig, Cell, Path | None, bool, Path | None], Rows]


class Executor:
    """Runs each task with `run_cell` and calls `finished(task, rows)` or `failed(task,
    message)` for it, and `advance()` once per task, all in the caller's process."""

    name = ""

    def record(self, cfg: RunConfig) -> dict[str, Any]:
        """This executor's fields of a run's execution record (`environment.json`)."""
        return {"executor": self.name}

    def record_after(self) -> dict[str, Any]:
        """Fields the executor learnt while running, added to that record at the end."""
        return {}

    def device(self, cfg: RunConfig) -> str:
        """The device type `cfg`'s cells train on (`cpu` or `cuda`)."""
        return resolve_device(cfg.train.device).type

    def check(self, cfg: RunConfig) -> None:
        """ValueError when the cells of `cfg` cannot run on this executor."""

    def run(
        self,
        run_cell: CellFn,
        tasks: Sequence[Task],
        finished: Finished,
        failed: Failed,
        advance: Callable[[], Any],
    ) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the executor holds (a Ray cluster it started)."""


def make_executor(
    name: str = "local",
    *,
    jobs: int | None = None,
    address: str | None = None,
    retries: int | None = None,
    quiet: bool = False,
) -> Executor:
    """The executor `name` (`local` or `ray`); ValueError for options it does not take."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; accepted: {', '.join(EXECUTORS)}")
    if name == "local":
        given = [f for f, v in (("--address", address), ("--retries", retries)) if v is not None]
        if given:
            raise ValueError(
                f"{' and '.join(given)} apply to --executor ray; the local executor runs cells "
                "in --jobs processes of this machine"
            )
        jobs = 1 if jobs is None else arguments.int_at_least(jobs, 1, "jobs")
        return LocalExecutor(jobs, quiet=quiet)
    if jobs is not None and jobs != 1:
        raise ValueError(
            "--jobs sets local processes; with --executor ray the cluster's CPUs (and GPUs) "
            "decide how many cells run at once: drop --jobs"
        )
    retries = DEFAULT_RETRIES if retries is None else retries
    if retries < 0:
        raise ValueError(f"retries must be at least 0, got {retries}")
    return RayExecutor(address, retries)


# -- local: in this process, or a pool of spawned processes ----------------------------------


class LocalExecutor(Executor):
    """Today's executor: cells one after another here, or side by side in `jobs` processes."""

    name = "local"

    def __init__(self, jobs: int = 1, *, quiet: bool = False) -> None:
        self.jobs = jobs
        self.quiet = quiet

    def record(self, cfg: RunConfig) -> dict[str, Any]:
        return {"executor": self.name, "jobs": self.jobs}

    def check(self, cfg: RunConfig) -> None:
        """More threads per cell than this machine has CPUs only crawl: refused."""
        cpus = os.cpu_count() or 1
        if cfg.train.threads > cpus:
            raise ValueError(
                f"threads: {cfg.train.threads} is more than the {cpus} CPUs of this machine "
                f"(os.cpu_count()); the local executor accepts 1 to {cpus} threads per cell "
                "(--jobs runs cells side by side)"
            )

    def run(
        self,
        run_cell: CellFn,
        tasks: Sequence[Task],
        finished: Finished,
        failed: Failed,
        advance: Callable[[], Any],
    ) -> None:
        if self.jobs <= 1:
            for t in tasks:
                try:
                    rows = run_cell(t.cfg, t.cell, t.log_dir, not self.quiet, t.emb_dir)
                except LearnerError as e:
                    failed(t, str(e))
                else:
                    finished(t, rows)
                advance()
            return
        pool = ProcessPoolExecutor(
            self.jobs, mp_context=get_context("spawn"), initializer=_ignore_sigint
        )
        try:
            futs = {
                pool.submit(run_cell, t.cfg, t.cell, t.log_dir, False, t.emb_dir): t
                for t in _longest_first(tasks)
            }
            for f in as_completed(futs):
                try:
                    rows = f.result()
                except LearnerError as e:
                    failed(futs[f], str(e))
                else:
                    finished(futs[f], rows)
                advance()
        except BrokenProcessPool:
            _stop(pool)
            raise RunFailed(
                "a worker process of --jobs died (killed, out of memory, or a script that "
                "starts runs without an `if __name__ == '__main__':` guard); finished cells "
                "are kept, run again to resume"
            ) from None
        except BaseException:
            _stop(pool)
            raise
        pool.shutdown()


def _longest_first(tasks: Sequence[Task]) -> list[Task]:
    # Longest first, so no core idles at the end waiting for one expensive cell.
    return sorted(tasks, key=lambda t: -learner_cls(t.cfg, t.cell.learner).relative_cost)


def _ignore_sigint() -> None:
    # Ctrl-C reaches every process of the terminal's group; the parent stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop `pool` now: cancel queued cells and terminate the running ones."""
    # ProcessPoolExecutor has no public way to stop a running call; its workers are in
    # `_processes` on every supported Python.
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


# -- ray ------------------------------------------------------------------------------------


def import_ray() -> Any:
    """The `ray` module, or a one-line ValueError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError(
            f"--executor ray needs Ray, which is not installed: {RAY_INSTALL}"
        ) from None
    return ray


def check_address(address: str | None) -> str | None:
    """`address` if Ray can connect to it: None (start a local cluster), `auto`,
    `ray://host:port` or `host:port`; ValueError otherwise."""
    if address is None:
        return None
    a = address.strip()
    host, sep, port = a.removeprefix("ray://").rpartition(":")
    if a == "auto" or (sep and host and port.isdigit() and "/" not in host):
        return a
    raise ValueError(
        f"--address {address!r} is not a Ray address; accepted: auto (the cluster `ray start "
        "--head` started on this machine), ray://HOST:PORT (Ray Client, port 10001 by "
        "default) or HOST:PORT (the head node's GCS, port 6379 by default)"
    )


class RayExecutor(Executor):
    """Cells as Ray tasks, each asking for `train.threads` CPUs and, when its device is CUDA,
    one GPU. A task whose worker dies is run again up to `retries` times, then reported as
    failed with Ray's error; an exception in the cell is reported as the local executor
    reports it (not retried: it would fail the same way)."""

    name = "ray"

    def __init__(self, address: str | None = None, retries: int = DEFAULT_RETRIES) -> None:
        self.address = check_address(address)
        self.retries = retries
        self.ray = import_ray()
        self._started = False
        self._cells_per_node: Counter[str] = Counter()
        self._need: dict[tuple[int, str], dict[str, float]] = {}
        self._connect()

    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():  # the caller's own connection (a notebook, a test)
            return
        try:
            ray.init(
                address=self.address,
                include_dashboard=False,
                logging_level="WARNING",
                configure_logging=True,
            )
        except ConnectionError as e:
            where = self.address or "a new local cluster"
            raise ValueError(
                f"cannot connect to the Ray cluster at {where}: {_one_line(e)}; start one "
                "with `ray start --head` (then --address auto), or leave --address out to "
                "run on a local cluster of this machine"
            ) from None
        self._started = True

    def _where(self) -> str:
        if not self._started:  # a connection the caller made (`ray.init` before the run)
            return "the caller's ray.init"
        return self.address or "local (started by this run)"

    def resources(self, cfg: RunConfig) -> dict[str, float]:
        """What one cell of `cfg` asks Ray for: its CPU threads, and a GPU for CUDA."""
        key = (cfg.train.threads, cfg.train.device)
        if key not in self._need:  # one look at the cluster per setting, not per cell
            self._need[key] = self._resources(cfg)
        return dict(self._need[key])

    def _resources(self, cfg: RunConfig) -> dict[str, float]:
        total = self.ray.cluster_resources()
        gpus = total.get("GPU", 0)
        device = cfg.train.device
        if device == "cuda" and gpus < 1:
            raise ValueError(
                f"--device cuda, but the Ray cluster has no GPU (its resources: "
                f"{_fmt_resources(total)}); use --device auto or cpu"
            )
        # `auto` means CUDA wherever there is one: Ray shows a task only the GPUs it asked
        # for, so a cell that asked for none would run on the CPU of a GPU node.
        want_gpu = device == "cuda" or (device == "auto" and gpus >= 1)
        need = {"num_cpus": float(cfg.train.threads), "num_gpus": 1.0 if want_gpu else 0.0}
        self._check_fits(need)  # Ray would otherwise wait for such a node forever
        return need

    def _check_fits(self, need: dict[str, float]) -> None:
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        for n in nodes:
            res = n.get("Resources", {})
            if res.get("CPU", 0) >= need["num_cpus"] and res.get("GPU", 0) >= need["num_gpus"]:
                return
        largest = max((n.get("Resources", {}).get("CPU", 0) for n in nodes), default=0)
        raise ValueError(
            f"no node of the Ray cluster has the {need['num_cpus']:g} CPUs"
            + (" and 1 GPU" if need["num_gpus"] else "")
            + f" a cell asks for (largest node: {largest:g} CPUs); lower --threads"
        )

    def device(self, cfg: RunConfig) -> str:
        return "cuda" if self.resources(cfg)["num_gpus"] else "cpu"

    def record(self, cfg: RunConfig) -> dict[str, Any]:
        ray = self.ray
        nodes = [
            {
                "host": n.get("NodeManagerHostname", "?"),
                "alive": bool(n.get("Alive")),
                "resources": {
                    k: v for k, v in n.get("Resources", {}).items() if k in ("CPU", "GPU")
                },
            }
            for n in ray.nodes()
        ]
        need = self.resources(cfg)
        return {
            "executor": self.name,
            "jobs": None,
            "ray": {
                "version": ray.__version__,
                "address": self._where(),
                "nodes": nodes,
                "resources_per_cell": {
                    "CPU": need["num_cpus"],
                    "GPU": need["num_gpus"],
                },
                "max_retries": self.retries,
            },
        }

    def record_after(self) -> dict[str, Any]:
        # counted over the whole grid (all values of a sweep)
        return {"ray": {"cells_per_node": dict(self._cells_per_node)}}

    def run(
        self,
        run_cell: CellFn,
        tasks: Sequence[Task],
        finished: Finished,
        failed: Failed,
        advance: Callable[[], Any],
    ) -> None:
        ray = self.ray
        remote = ray.remote(ray_cell)
        here = _worker_info()
        refs: dict[Any, Task] = {}
        for t in _longest_first(tasks):
            need = self.resources(t.cfg)
            ref = remote.options(
                **need, max_retries=self.retries, retry_exceptions=False, name=_task_name(t)
            ).remote(
                run_cell, _portable(t.cfg), t.cell, t.log_dir is not None, t.emb_dir is not None
            )
            refs[ref] = t
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    t = refs[ref]
                    try:
                        rows, files, info = ray.get(ref)
                    except ray.exceptions.RayTaskError as e:
                        cause = getattr(e, "cause", None)
                        if isinstance(cause, LearnerError):
                            failed(t, str(cause))
                        else:
                            what = f"{type(cause).__name__}: {cause}" if cause else _one_line(e)
                            failed(t, f"{_task_name(t)} raised {_one_line(what)}")
                    except ray.exceptions.RayError as e:
                        tries = self.retries + 1
                        failed(
                            t,
                            f"the Ray worker running {_task_name(t)} died "
                            f"({tries} tr{'y' if tries == 1 else 'ies'}): {_one_line(e)}",
                        )
                    else:
                        other = {k: (info[k], here[k]) for k in ("git_sha", "versions")}
                        other = {k: v for k, v in other.items() if v[0] != v[1]}
                        if other:
                            failed(
                                t,
                                f"{_task_name(t)} ran on {info['host']} with other code "
                                f"({', '.join(other)} differ from this machine's); install "
                                "the same pid-bench and packages on every node",
                            )
                        else:
                            _write_files(t, files)
                            self._cells_per_node[info["host"]] += 1
                            finished(t, rows)
                    advance()
        except BaseException:
            for ref in pending:  # Ctrl-C or an error here: stop what still runs
                ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False


def ray_cell(
    run_cell: CellFn, cfg: RunConfig, cell: Cell, logs: bool, embeddings: bool
) -> tuple[Rows, dict, dict]:
    """Run one cell with `run_cell` on a Ray worker: (rows, {relative path: bytes} of its log
    and embedding files, the worker's host and code versions). The files travel back with the
    rows, so a cluster needs no file system shared with the machine that started the run."""
    with tempfile.TemporaryDirectory(prefix="pid-bench-cell-") as tmp:
        log_dir = Path(tmp) / "logs" if logs else None
        emb_dir = Path(tmp) / "embeddings" if embeddings else None
        rows = run_cell(cfg, cell, log_dir, False, emb_dir)
        files = {
            f"{d.name}/{p.name}": p.read_bytes()
            for d in (log_dir, emb_dir)
            if d is not None and d.is_dir()
            for p in d.iterdir()
            if p.is_file()
        }
    return rows, files, _worker_info()


def _write_files(t: Task, files: dict[str, bytes]) -> None:
    """Write a Ray cell's log and embedding files where the local executor writes them."""
    for rel, data in files.items():
        kind, _, name = rel.partition("/")
        folder = t.log_dir if kind == "logs" else t.emb_dir
        if folder is None:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / name, data)


def _worker_info() -> dict[str, Any]:
    return {"host": platform.node(), "git_sha": envinfo.git_sha(), "versions": envinfo.versions()}


def _portable(cfg: RunConfig) -> RunConfig:
    """`cfg` with its relative file paths (dataset, plug-in files) made absolute: a Ray
    worker does not run in this process's folder. Only what is sent; config.json keeps
    the paths as given."""
    data = str(Path(cfg.data).resolve()) if cfg.data else ""
    plugins = {}
    for name, src in cfg.plugins.items():
        target, _, attr = src.rpartition(":")
        is_file = target.endswith(".py") or "/" in target or "\\" in target
        plugins[name] = f"{Path(target).resolve()}:{attr}" if is_file else src
    return replace(cfg, data=data, plugins=plugins)


def _task_name(t: Task) -> str:
    return f"cell {t.cell.learner} seed {t.cell.seed} {t.cell.train_task or 'ssl'}"


def _fmt_resources(res: dict[str, float]) -> str:
    keep = {k: v for k, v in res.items() if k in ("CPU", "GPU", "memory")}
    return ", ".join(f"{k}={v:g}" for k, v in keep.items()) or "none"


def _one_line(e: object) -> str:
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return lines[0] if lines else type(e).__name__
