"""The grid of (seed, learner, task group) cells behind `pid-bench run`."""

from __future__ import annotations

import inspect
import json
import os
import re
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

import generators
from generators.base import TASK_ATOM, VIEW_BUILDERS, BimodalDataset, Split
from generators.io import fingerprint, load_npz
from pid_bench import envinfo, probes
from pid_bench.config import (
    AugConfig,
    ModelConfig,
    ProbeConfig,
    TrainConfig,
    apply_settings,
    get_profile,
    override,
)
from pid_bench.learners import Learner, check_hyperparams
from pid_bench.learners.base import LearnerError, failed
from pid_bench.learners.plugins import learner_class, resolve
from pid_bench.results import COLUMNS
from pid_bench.seeding import derive_seed
from pid_bench.training import ViewFn, embed, resolve_device, train

INTERACTIONS: dict[str, tuple[str, ...]] = {
    "redundancy": ("redundancy",),
    "uniqueness": ("unique1", "unique2"),
    "synergy": ("synergy",),
    "all": ("redundancy", "unique1", "unique2", "synergy"),
}


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's numbers (written to `config.json`)."""

    generator: str = "content_style"
    generator_params: dict[str, Any] = field(default_factory=dict)
    learners: tuple[str, ...] = (
        "comm",
        "cross",
        "cross_self",
        "factorcl",
        "shared_private",
        "supervised",
        "random",
        "random_fusion",
    )
    seeds: tuple[int, ...] = (0,)
    interaction: str = "synergy"
    profile: str = "quick"
    train: TrainConfig = TrainConfig()
    model: ModelConfig = ModelConfig()
    aug: AugConfig = AugConfig()
    probe: ProbeConfig = ProbeConfig()
    learner_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    sweep_param: str = ""
    sweep_value: str = ""
    #: plug-in learner name -> where its class is imported from (`module:Class`, `file.py:Class`)
    plugins: dict[str, str] = field(default_factory=dict)
    #: a dataset file (`pid-bench generate`) used for every seed instead of generating one
    data: str = ""
    #: fingerprint of `data` when the run started (checked wherever the file is read again)
    data_fingerprint: str = ""
    #: embeddings file scored by `pid-bench score` (nothing trained; learners = its name)
    embeddings: str = ""

    @property
    def tasks(self) -> tuple[str, ...]:
        return INTERACTIONS[self.interaction]


class RunFailed(LearnerError):
    """Some cells of a run failed; the finished ones are in `results` (not a complete table)."""

    def __init__(
        self,
        message: str,
        results: pd.DataFrame | None = None,
        failures: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        #: the rows of the cells that finished (None when none did)
        self.results = results
        #: one dict per failed cell: learner, seed, tasks, training_split, error
        self.failures = failures or []


def interaction_tasks(name: str) -> tuple[str, ...]:
    """Tasks of an interaction name; ValueError listing valid names otherwise."""
    try:
        return INTERACTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown interaction {name!r}; accepted: {', '.join(INTERACTIONS)}"
        ) from None


def resolve_config(
    *,
    generator: str = "content_style",
    generator_params: dict[str, Any] | None = None,
    learners: list[str] | tuple[str, ...] | None = None,
    seeds: list[int] | tuple[int, ...] | None = None,
    interaction: str = "synergy",
    profile: str = "quick",
    train_overrides: dict[str, Any] | None = None,
    probe_overrides: dict[str, Any] | None = None,
    sweep: tuple[str, str] | None = None,
    learner_params: dict[str, dict[str, Any]] | None = None,
    settings: dict[str, Any] | None = None,
    data: str | Path | None = None,
) -> RunConfig:
    """Merge profile defaults and user overrides into a validated RunConfig.

    `learners` are built-in names, plug-in entry-point names, or `module:Class` /
    `path/to/file.py:Class` specs; the config holds their names (and `plugins`, where each
    plug-in comes from). With `data` (a dataset file), the generator and its parameters are
    the file's and every seed uses its rows.
    """
    prof = get_profile(profile)
    interaction_tasks(interaction)
    data_fp = ""
    file_views = False
    if data:
        if generator_params:
            raise ValueError(
                "--data takes the generator and its parameters from the dataset file; "
                "drop --set (or generate the file with them)"
            )
        ds, data_fp = _dataset_file_fp(data)
        generator, params = ds.name, dict(ds.params)
        file_views = ds.views is not None
    else:
        if generator not in generators.GENERATORS:
            generators.get(generator)  # raises with the list of names
        params = dict(prof.generator_params.get(generator, {}))
        params.update(generator_params or {})
        unknown = set(params) - set(generators.parameters(generator))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {sorted(unknown)} for generator {generator!r}; accepted: "
                f"{', '.join(generators.parameters(generator))}"
            )
    specs = tuple(learners) if learners else RunConfig.learners
    resolved = [resolve(spec) for spec in specs]
    names = tuple(name for name, _, _ in resolved)
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        given = [spec for spec, name in zip(specs, names, strict=True) if name in twice]
        raise ValueError(
            f"learners listed twice: {', '.join(twice)} (from {', '.join(given)}); list each "
            "once, or give plug-ins distinct `name` class attributes"
        )
    plugins = {name: source for name, _, source in resolved if source}
    classes = {name: cls for name, cls, _ in resolved}
    lp = {}
    for name, values in (learner_params or {}).items():
        if name not in names:
            raise ValueError(
                f"--learner-set names learner {name!r}, which is not in this run "
                f"(learners: {', '.join(names)})"
            )
        lp[name] = check_hyperparams(classes[name], values, name)
    seeds = tuple(int(s) for s in seeds) if seeds is not None else prof.seeds
    if not seeds:
        raise ValueError("at least one seed is needed")
    # Profile, then the profile's settings for this generator, then explicit flags, then the
    # user's dotted settings: the most specific wins.
    sections = {"train": prof.train, "model": prof.model, "aug": prof.aug, "probe": prof.probe}
    sections = apply_settings(sections, prof.generator_settings.get(generator, {}))
    tr = override(sections["train"], **(train_overrides or {}))
    pr = override(sections["probe"], **(probe_overrides or {}))
    sections = apply_settings({**sections, "train": tr, "probe": pr}, settings or {})
    tr, pr = sections["train"], sections["probe"]
    if tr.epochs < 0 or tr.batch_size < 2 or tr.lr <= 0 or tr.probe_every < 0:
        raise ValueError(
            "training needs epochs >= 0, batch_size >= 2, lr > 0 and probe_every >= 0, "
            f"got epochs={tr.epochs}, batch_size={tr.batch_size}, lr={tr.lr}, "
            f"probe_every={tr.probe_every}"
        )
    resolve_device(tr.device)
    aug = _resolve_views(sections["aug"], generator, file_views)
    sp, sv = sweep if sweep else ("", "")
    return RunConfig(
        generator=generator,
        generator_params=params,
        learners=names,
        seeds=seeds,
        interaction=interaction,
        profile=profile,
        train=tr,
        model=sections["model"],
        aug=aug,
        probe=pr,
        learner_params=lp,
        sweep_param=sp,
        sweep_value=sv,
        plugins=plugins,
        data=str(data) if data else "",
        data_fingerprint=data_fp,
    )


def _resolve_views(aug: AugConfig, generator: str, file_has_views: bool) -> AugConfig:
    """`aug` with `views` resolved: `auto` -> `generator` where the data have a view source."""
    has = file_has_views or generator in VIEW_BUILDERS
    if aug.views == "generator" and not has:
        with_views = ", ".join(sorted(VIEW_BUILDERS)) or "none"
        raise ValueError(
            f"aug.views=generator: generator {generator!r} draws no views (generators that do: "
            f"{with_views}); use aug.views=tensor or auto"
        )
    if aug.views == "auto":
        return replace(aug, views="generator" if has else "tensor")
    return aug


def learner_cls(cfg: RunConfig, name: str) -> type[Learner]:
    """The class of learner `name` of `cfg` (built-in, or a plug-in from `cfg.plugins`)."""
    return learner_class(name, cfg.plugins.get(name, ""))


@lru_cache(maxsize=4)
def _dataset(generator: str, params_json: str) -> BimodalDataset:
    return generators.make(generator, **json.loads(params_json))


@lru_cache(maxsize=2)
def _dataset_file(path: str, mtime_ns: int) -> tuple[BimodalDataset, str]:
    ds = load_npz(path)
    return ds, fingerprint(ds)


def load_dataset_file(path: str | Path) -> BimodalDataset:
    """A dataset file written by `pid-bench generate` (cached while the file is unchanged)."""
    return _dataset_file_fp(path)[0]


def _dataset_file_fp(path: str | Path) -> tuple[BimodalDataset, str]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"no such dataset file: {p} (write one with pid-bench generate)")
    return _dataset_file(str(p.resolve()), p.stat().st_mtime_ns)


def dataset_for_seed(cfg: RunConfig, seed: int) -> BimodalDataset:
    """The dataset of one repetition: data seed derived from the run seed unless set, or the
    rows of `cfg.data` for every seed."""
    if cfg.data:
        ds, fp = _dataset_file_fp(cfg.data)
        if cfg.data_fingerprint and fp != cfg.data_fingerprint:
            raise ValueError(
                f"{cfg.data} changed during the run (fingerprint {fp}, was {cfg.data_fingerprint})"
            )
        return ds
    params = dict(cfg.generator_params)
    params.setdefault("seed", derive_seed(seed, "data", cfg.generator))
    return _dataset(cfg.generator, json.dumps(params, sort_keys=True))


@dataclass(frozen=True)
class Cell:
    """One unit of work: train one learner for one seed and probe it on some tasks."""

    seed: int
    learner: str
    tasks: tuple[str, ...]
    train_task: str  # task whose labels/pretrain split the model is trained on ("" = default)


def plan_cells(cfg: RunConfig) -> list[Cell]:
    """Self-supervised learners: one model per seed for the tasks sharing the default training
    split, one per task with its own pretraining split. Supervised learners: one per task."""
    probe_ds = dataset_for_seed(cfg, cfg.seeds[0])
    cells = []
    for seed in cfg.seeds:
        for name in cfg.learners:
            cls = learner_cls(cfg, name)
            if cls.supervised:
                cells += [Cell(seed, name, (t,), t) for t in cfg.tasks]
                continue
            shared = tuple(t for t in cfg.tasks if t not in probe_ds.pretrain)
            if shared:
                cells.append(Cell(seed, name, shared, ""))
            cells += [Cell(seed, name, (t,), t) for t in cfg.tasks if t in probe_ds.pretrain]
    return cells


def training_split(ds: BimodalDataset, cls: type[Learner], task: str) -> Split:
    """The split a learner trains on for `task` ("" = the tasks without a pretraining split).

    A pretraining split (`ds.pretrain[task]`, e.g. synergy pairs biased to satisfy the map) is
    a device for self-supervised learners, which see no labels; a label-trained learner
    (`supervised`) always trains on the unbiased `train` split, where the task's label means
    what the probes score (on a biased split the synergy label can be constant).
    """
    if cls.supervised or not task:
        return ds.train
    return ds.pretrain_split(task)


def split_views(ds: BimodalDataset, split: Split) -> ViewFn:
    """`views(rows, rng)` for the training loop: new views of rows of `split`."""
    if ds.views is None:
        raise ValueError(f"aug.views=generator, but this {ds.name!r} dataset has no view source")
    source = ds.views

    def views(rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return source.draw({f: v[rows] for f, v in split.latents.items()}, rng)

    return views


def _probe_subset(ds: BimodalDataset, cell: Cell, max_train: int) -> np.ndarray:
    """Sorted rows of `train` the probes are fitted on (drawn per seed and learner)."""
    rng = np.random.default_rng(derive_seed(cell.seed, "probe-subset", cell.learner))
    n_tr = len(ds.train)
    return np.sort(rng.choice(n_tr, size=min(max_train, n_tr), replace=False))


def _probe_rows(
    cfg: RunConfig,
    ds: BimodalDataset,
    learner,
    cell: Cell,
    device,
    epoch: int,
    final: bool,
    keep: dict[str, np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Embed with `learner` and probe; with `keep`, also store the final embeddings of every
    train and test row there (the layout of `pid_bench.embeddings`)."""
    sub = _probe_subset(ds, cell, cfg.probe.max_train)
    if keep is not None:
        # One pass over every train row; the probes read its subset rows, so that scoring the
        # saved file gives exactly this cell's numbers.
        z_all = embed(learner, ds.train.x1, ds.train.x2, device)
        z_tr = z_all[sub]
    else:
        tr = ds.train.subset(sub)
        z_tr = embed(learner, tr.x1, tr.x2, device)
    z_te = embed(learner, ds.test.x1, ds.test.x2, device)
    uni = (
        embed(learner, ds.test.x1, ds.test.x2, device, unimodal=True)
        if (final and learner.has_unimodal)
        else None
    )
    if keep is not None:
        keep.update(z_train=z_all, z_test=z_te)
        if uni is not None:
            keep.update(z1_test=uni[0], z2_test=uni[1])
    return probe_embeddings(cfg, ds, cell, sub, z_tr, z_te, uni, epoch, final)


def probe_embeddings(
    cfg: RunConfig,
    ds: BimodalDataset,
    cell: Cell,
    sub: np.ndarray,
    z_tr: np.ndarray,
    z_te: np.ndarray,
    uni: tuple[np.ndarray, np.ndarray] | None,
    epoch: int,
    final: bool,
) -> list[dict[str, Any]]:
    """Result rows of `cell`'s tasks from embeddings of the train rows `sub` and of `test`.

    The one probing code behind `run`, `score` and `evaluate`.
    """
    rows = []
    for task in cell.tasks:
        k = ds.n_classes[task]
        atom = TASK_ATOM[task]
        true_bits = ds.true_pid[task].atom(atom)
        pseed = derive_seed(cell.seed, "probe", cell.learner, task)
        y_tr = ds.train.labels[task][sub]
        args = (z_tr, y_tr, z_te, ds.test.labels[task], k, cfg.probe, pseed)
        results = {"linear": probes.linear_probe(*args)}
        if final and cfg.probe.mlp:
            results["mlp"] = probes.mlp_probe(*args)
        for probe, res in results.items():
            for metric in ("balanced_accuracy", "chance", "mi_bits"):
                rows.append(_row(cell, task, probe, metric, res[metric], epoch, atom, true_bits))
            if true_bits > 0:
                cap = res["mi_bits"] / true_bits
                rows.append(_row(cell, task, probe, "capture", cap, epoch, atom, true_bits))
        if uni is not None:
            pid = probes.clustered_pid(uni[0], uni[1], ds.test.labels[task], cfg.probe, pseed)
            for metric, v in pid.items():
                rows.append(_row(cell, task, "pid_clustered", metric, v, epoch, atom, true_bits))
    return rows


def _row(cell: Cell, task, probe, metric, value, epoch, atom, true_bits) -> dict[str, Any]:
    return {
        "learner": cell.learner,
        "seed": cell.seed,
        "task": task,
        "probe": probe,
        "metric": metric,
        "value": float(value),
        "epoch": epoch,
        "true_atom": atom,
        "true_bits": float(true_bits),
    }


def _group(cell: Cell) -> str:
    return cell.train_task or "ssl"


def run_cell(
    cfg: RunConfig,
    cell: Cell,
    log_dir: Path | None,
    progress: bool,
    threads: int | None = None,
    emb_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Train and probe one cell; returns its result rows (without run-level columns).

    With `emb_dir`, the final embeddings are also written there (one part file per cell,
    merged by `run`). A learner that fails raises LearnerError naming it and the cell.
    """
    if threads:
        torch.set_num_threads(threads)
        # sklearn's probes use BLAS/OpenMP pools outside torch's control; parallel cells that
        # each spin up one thread per core oversubscribe the machine badly.
        with threadpool_limits(limits=threads):
            return run_cell(cfg, cell, log_dir, progress, None, emb_dir)
    try:
        return _run_cell(cfg, cell, log_dir, progress, emb_dir)
    except LearnerError as e:
        tasks = ", ".join(cell.tasks)
        raise LearnerError(f"{e} (seed {cell.seed}, tasks {tasks})") from None


def _run_cell(
    cfg: RunConfig, cell: Cell, log_dir: Path | None, progress: bool, emb_dir: Path | None
) -> list[dict[str, Any]]:
    t0 = time.perf_counter()
    device = resolve_device(cfg.train.device)
    ds = dataset_for_seed(cfg, cell.seed)
    cls = learner_cls(cfg, cell.learner)
    split = training_split(ds, cls, cell.train_task)
    group = _group(cell)
    torch.manual_seed(derive_seed(cell.seed, "init", cell.learner, group))
    y = None
    n_classes = None
    if cls.supervised:
        y = split.labels[cell.train_task]
        n_classes = ds.n_classes[cell.train_task]
    try:
        learner = cls(
            ds.modality_kinds, ds.modality_shapes, cfg.model, cfg.aug, n_classes=n_classes
        )
    except Exception as e:  # the learner's own code, whatever it raises
        raise failed(cell.learner, "__init__", e) from e
    if getattr(learner, "name", "") != cell.learner:
        learner.name = cell.learner  # a plug-in's name comes from how it was loaded
    for key, value in cfg.learner_params.get(cell.learner, {}).items():
        setattr(learner, key, value)
    rows: list[dict[str, Any]] = []

    def on_epoch(epoch: int) -> None:
        rows.extend(_probe_rows(cfg, ds, learner, cell, device, epoch, final=False))

    log_path = log_dir / f"{cell.learner}_seed{cell.seed}_{group}.csv" if log_dir else None
    train(
        learner,
        split.x1,
        split.x2,
        y,
        cfg.train,
        device=device,
        seed=derive_seed(cell.seed, "train", cell.learner, group),
        log_path=log_path,
        progress=progress,
        desc=f"{cell.learner} s{cell.seed} {group}",
        on_epoch=on_epoch,
        views=split_views(ds, split) if cfg.aug.views == "generator" else None,
    )
    keep: dict[str, np.ndarray] | None = {} if emb_dir is not None else None
    rows.extend(_probe_rows(cfg, ds, learner, cell, device, cfg.train.epochs, True, keep))
    if emb_dir is not None and keep:
        suffix = f"_{cell.train_task}" if cell.train_task else ""
        emb_dir.mkdir(parents=True, exist_ok=True)
        with open(emb_dir / _part_name(cell), "wb") as f:
            np.savez(f, **{k + suffix: v for k, v in keep.items()})
    elapsed = time.perf_counter() - t0
    for r in rows:
        r["elapsed_s"] = elapsed
        r["device"] = device.type
    return rows


def _part_name(cell: Cell) -> str:
    return f".part-{cell.learner}_seed{cell.seed}_{_group(cell)}.npz"


def config_dict(cfg: RunConfig) -> dict[str, Any]:
    """JSON-ready resolved config (a `score` run trained nothing: no train/model/aug)."""
    d = asdict(cfg)
    d["tasks"] = list(cfg.tasks)
    if cfg.embeddings:
        d.update(train=None, model=None, aug=None)
    return d


def _open_run_folder(
    cfg: RunConfig, out: Path | str | None, force: bool, ds0: BimodalDataset
) -> tuple[str, Path, dict[str, Any]]:
    """Create the run folder with config.json, environment.json and true_pid.json."""
    run_id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    out = Path(out) if out else Path("runs") / run_id
    if out.exists() and (out / "results.csv").exists() and not force:
        raise ValueError(f"{out} already holds results.csv; choose another --out or pass --force")
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("results.csv", "results.csv.partial", "failures.json"):
        (out / stale).unlink(missing_ok=True)
    env = _environment(cfg, run_id)
    (out / "config.json").write_text(json.dumps(config_dict(cfg), indent=2, default=str))
    (out / "environment.json").write_text(json.dumps(env, indent=2))
    (out / "true_pid.json").write_text(
        json.dumps({t: ds0.true_pid[t].as_dict() for t in ds0.tasks}, indent=2)
    )
    return run_id, out, env


def _environment(cfg: RunConfig, run_id: str) -> dict[str, Any]:
    env = {
        "versions": envinfo.versions(),
        "git_sha": envinfo.git_sha(),
        # a score run trains nothing; its probes (scikit-learn) run on the CPU
        "device": "cpu" if cfg.embeddings else resolve_device(cfg.train.device).type,
        "torch_threads": torch.get_num_threads(),
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


def _source_file(cls: type) -> str:
    try:
        return inspect.getfile(cls)
    except (TypeError, OSError):  # defined in a notebook or an interactive session
        return "unknown"


def _run_cells(
    cfg: RunConfig,
    cells: list[Cell],
    log_dir: Path | None,
    emb_dir: Path | None,
    jobs: int,
    quiet: bool,
) -> tuple[list[dict[str, Any]], list[tuple[Cell, str]]]:
    """Rows of the cells that finished, and (cell, message) of those whose learner failed."""
    rows: list[dict[str, Any]] = []
    failures: list[tuple[Cell, str]] = []
    bar = tqdm(total=len(cells), desc="cells", disable=quiet)
    if jobs <= 1:
        for cell in cells:
            try:
                rows += run_cell(cfg, cell, log_dir, not quiet, None, emb_dir)
            except LearnerError as e:
                failures.append((cell, str(e)))
            bar.update()
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        # Longest first, so no core idles at the end waiting for one expensive cell.
        order = sorted(cells, key=lambda c: -learner_cls(cfg, c.learner).relative_cost)
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futs = {
                pool.submit(run_cell, cfg, c, log_dir, False, threads, emb_dir): c for c in order
            }
            for f in as_completed(futs):
                try:
                    rows += f.result()
                except LearnerError as e:
                    failures.append((futs[f], str(e)))
                bar.update()
    bar.close()
    return rows, failures


def _table(
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


def _write_table(
    df: pd.DataFrame, out: Path, failures: list[tuple[Cell, str]], n_cells: int
) -> None:
    """Write `results.csv`, or, when cells failed, the finished ones to `results.csv.partial`
    with `failures.json` beside it, and raise RunFailed."""
    partial = out / "results.csv.partial"
    if not failures or not df.empty:
        df.to_csv(partial, index=False)
    if not failures:
        partial.replace(out / "results.csv")
        return
    records = _failure_records(failures)
    (out / "failures.json").write_text(json.dumps(records, indent=2))
    done = n_cells - len(failures)
    kept = (
        f"the {done} cells that finished are in {partial}, not results.csv (the run is incomplete)"
        if done
        else "no cell finished"
    )
    raise RunFailed(
        f"{_failure_text(failures)}; {kept}; details in {out / 'failures.json'}",
        df if done else None,
        records,
    )


def _failure_records(failures: list[tuple[Cell, str]]) -> list[dict[str, Any]]:
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


def _failure_text(failures: list[tuple[Cell, str]]) -> str:
    more = f" (and {len(failures) - 1} more failed cells)" if len(failures) > 1 else ""
    return failures[0][1] + more


def _merge_embeddings(cfg: RunConfig, emb_dir: Path, cells: list[Cell]) -> None:
    """One `<learner>_seed<seed>.npz` per learner and seed from the cells' part files."""
    for seed in cfg.seeds:
        fp = cfg.data_fingerprint or fingerprint(dataset_for_seed(cfg, seed))
        for name in cfg.learners:
            parts = [emb_dir / _part_name(c) for c in cells if (c.learner, c.seed) == (name, seed)]
            parts = [p for p in parts if p.is_file()]
            if not parts:
                continue
            entries: dict[str, np.ndarray] = {}
            for part in parts:
                with np.load(part) as z:
                    entries.update({k: z[k] for k in z.files})
                part.unlink()
            entries["fingerprint"] = np.array(fp)
            entries["epoch"] = np.array(cfg.train.epochs)
            with open(emb_dir / f"{name}_seed{seed}.npz", "wb") as f:
                np.savez(f, **entries)


def run(
    cfg: RunConfig,
    out: Path | None = None,
    *,
    jobs: int = 1,
    quiet: bool = False,
    force: bool = False,
    save_embeddings: bool = False,
) -> tuple[pd.DataFrame, Path]:
    """Run the grid, write `results.csv`, `config.json`, `environment.json` and per-epoch logs.

    The table is first written as `results.csv.partial` and renamed only when every cell has
    finished, so a results.csv is always complete. A learner that fails (LearnerError) fails
    its cells only: the others still run, their rows stay in `results.csv.partial`, the
    failures are listed in `failures.json`, and RunFailed is raised at the end.
    With `save_embeddings`, `embeddings/<learner>_seed<seed>.npz` holds each model's final
    embeddings in the layout `pid-bench score` reads (scoring them gives the same numbers).
    """
    ds0 = dataset_for_seed(cfg, cfg.seeds[0])
    run_id, out, env = _open_run_folder(cfg, out, force, ds0)
    cells = plan_cells(cfg)
    emb_dir = out / "embeddings" if save_embeddings else None
    rows, failures = _run_cells(cfg, cells, out / "logs", emb_dir, jobs, quiet)
    if emb_dir is not None:
        _merge_embeddings(cfg, emb_dir, cells)
    df = _table(rows, cfg, env, run_id)
    _write_table(df, out, failures, len(cells))
    return df, out


def run_in_memory(cfg: RunConfig, *, quiet: bool = True) -> pd.DataFrame:
    """The results table of `cfg` without writing anything (RunFailed if a learner fails)."""
    run_id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    env = _environment(cfg, run_id)
    cells = plan_cells(cfg)
    rows, failures = _run_cells(cfg, cells, None, None, 1, quiet)
    df = _table(rows, cfg, env, run_id)
    if failures:
        raise RunFailed(_failure_text(failures), df if rows else None, _failure_records(failures))
    return df


def score(
    data: str | Path,
    embeddings: str | Path,
    name: str,
    *,
    seed: int = 0,
    interaction: str = "all",
    profile: str = "quick",
    probe_overrides: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    out: Path | str | None = None,
    force: bool = False,
) -> tuple[pd.DataFrame, Path]:
    """`pid-bench score`: probe embeddings computed elsewhere and write an ordinary run folder.

    `data` is the dataset file the embeddings were computed on, `embeddings` an `.npz` in the
    layout of `pid_bench.embeddings`; `name` and `seed` file the results (and derive the probe
    seeds, as in a run of a learner of that name). ValueError for any bad input.
    """
    from pid_bench.embeddings import load_embeddings

    name = str(name).strip()
    if not _SCORE_NAME.match(name):
        raise ValueError(
            f"--name {name!r} must start with a letter or _ and hold only letters, digits, _ and -"
        )
    bad = [k for k in (settings or {}) if not str(k).startswith("probe.")]
    if bad:
        raise ValueError(
            f"score trains nothing: --config-set takes probe.FIELD=VALUE only, got {bad}"
        )
    cfg = resolve_config(
        learners=["random"],  # validated below under the user's name; nothing is trained
        seeds=[seed],
        interaction=interaction,
        profile=profile,
        probe_overrides=probe_overrides,
        settings=settings,
        data=data,
    )
    cfg = replace(cfg, learners=(name,), embeddings=str(embeddings))
    ds = dataset_for_seed(cfg, seed)
    tasks = tuple(t for t in cfg.tasks if t in ds.tasks)
    arrays, epoch = load_embeddings(embeddings, ds, tasks, data_name=str(data))
    run_id, out, env = _open_run_folder(cfg, out, force, ds)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for task in tasks:
        cell = Cell(int(seed), name, (task,), "")
        sub = _probe_subset(ds, cell, cfg.probe.max_train)
        a = arrays[task]
        rows += probe_embeddings(
            cfg, ds, cell, sub, a.z_train[sub], a.z_test, a.unimodal, epoch, True
        )
    elapsed = time.perf_counter() - t0
    for r in rows:
        r["elapsed_s"] = elapsed
        r["device"] = "cpu"  # probes are scikit-learn: CPU whatever made the embeddings
    df = _table(rows, cfg, env, run_id)
    _write_table(df, out, [], len(tasks))
    return df, out


_SCORE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
