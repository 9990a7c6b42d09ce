"""The grid of (seed, learner, task group) cells behind `pid-bench run`."""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import platform
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
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
    PROFILES,
    AugConfig,
    ModelConfig,
    ProbeConfig,
    TrainConfig,
    apply_settings,
    get_profile,
    override,
)
from pid_bench.executors import Executor, LocalExecutor, Task, make_executor
from pid_bench.learners import Learner, check_hyperparams
from pid_bench.learners.base import LearnerError, failed
from pid_bench.learners.plugins import learner_class, resolve
from pid_bench.results import COLUMNS
from pid_bench.results import read as read_results
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
    device_here: bool = True,
) -> RunConfig:
    """Merge profile defaults and user overrides into a validated RunConfig.

    `learners` are built-in names, plug-in entry-point names, or `module:Class` /
    `path/to/file.py:Class` specs; the config holds their names (and `plugins`, where each
    plug-in comes from). With `data` (a dataset file), the generator and its parameters are
    the file's and every seed uses its rows. `device_here=False` checks the device's name
    only, not that this machine has it (cells that run elsewhere: `--executor ray`).
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
    _check_profile_generator(profile, generator)
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
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(
            f"seeds must be distinct non-negative integers, got {' '.join(map(str, seeds))}"
        )
    # Profile, then the profile's settings for this generator, then explicit flags, then the
    # user's dotted settings: the most specific wins.
    sections = {"train": prof.train, "model": prof.model, "aug": prof.aug, "probe": prof.probe}
    sections = apply_settings(sections, prof.generator_settings.get(generator, {}))
    tr = override(sections["train"], **(train_overrides or {}))
    pr = override(sections["probe"], **(probe_overrides or {}))
    sections = apply_settings({**sections, "train": tr, "probe": pr}, settings or {})
    tr, pr = sections["train"], sections["probe"]
    if tr.epochs < 0 or tr.batch_size < 2 or not tr.lr > 0 or tr.probe_every < 0 or tr.threads < 1:
        raise ValueError(
            "training needs epochs >= 0, batch_size >= 2, lr > 0, probe_every >= 0 and "
            f"threads >= 1, got epochs={tr.epochs}, batch_size={tr.batch_size}, lr={tr.lr}, "
            f"probe_every={tr.probe_every}, threads={tr.threads}"
        )
    if device_here:
        resolve_device(tr.device)
    elif tr.device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown device {tr.device!r}; accepted: auto, cpu, cuda")
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


def _check_profile_generator(profile: str, generator: str) -> None:
    """ValueError unless profile `profile` is defined for `generator`."""
    only = get_profile(profile).only_generators
    if only and generator not in only:
        others = [name for name, p in PROFILES.items() if not p.only_generators]
        raise ValueError(
            f"profile {profile!r} is defined for generator {' and '.join(only)} only (run it "
            f"with --generator {only[0]}), not for {generator!r}; profiles for "
            f"{generator!r}: {', '.join(others)}"
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
            if cfg.probe.pid_batch:
                pid = probes.batch_pid(uni[0], uni[1], ds.test.labels[task], pseed)
                for metric, v in pid.items():
                    rows.append(_row(cell, task, "pid_batch", metric, v, epoch, atom, true_bits))
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
    emb_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Train and probe one cell; returns its result rows (without run-level columns).

    The cell runs on `cfg.train.threads` CPU threads (torch, and the BLAS/OpenMP pools of
    scikit-learn's probes), whatever process runs it, so its numbers do not depend on how
    many cells run side by side. With `emb_dir`, the final embeddings are also written there
    (one part file per cell, merged by `run`). A learner that fails raises LearnerError naming
    it and the cell.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(cfg.train.threads)
    try:
        with threadpool_limits(limits=cfg.train.threads):
            return _run_cell(cfg, cell, log_dir, progress, emb_dir)
    except LearnerError as e:
        tasks = ", ".join(cell.tasks)
        raise LearnerError(f"{e} (seed {cell.seed}, tasks {tasks})") from None
    finally:
        torch.set_num_threads(before)


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


#: Folder of a run folder holding one JSON file of result rows per finished cell.
CELLS_DIR = "cells"
#: Written with results.csv: its row count and checksum, so that a cut or edited table is
#: refused by `report` and `check` instead of being drawn as if complete.
MANIFEST = "manifest.json"
_STALE = ("results.csv", "results.csv.partial", "failures.json", MANIFEST)


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C: its finished cells are kept, and the same command resumes it."""


def _new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def _cell_file(cells_dir: Path, cell: Cell) -> Path:
    return cells_dir / f"{cell.learner}_seed{cell.seed}_{_group(cell)}.json"


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(f"cannot write {type(o).__name__} to a results file")


def _write_atomic(path: Path, data: str | bytes) -> None:
    """Write `path` so that it is either absent or whole, even if the process is killed."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _save_cell(cells_dir: Path, cell: Cell, rows: list[dict[str, Any]]) -> None:
    text = json.dumps({"cell": asdict(cell), "rows": rows}, default=_json_default)
    _write_atomic(_cell_file(cells_dir, cell), text)


def _load_cell(path: Path) -> list[dict[str, Any]]:
    try:
        return json.loads(path.read_text())["rows"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"{path} is not a cell file written by pid-bench run; delete it to re-run that "
            "cell, or pass --force to start the run over"
        ) from None


def _config_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two JSON configs differ, as `key: old -> new`."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            out += _config_diff(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [f"{prefix[:-1]}: {old!r} -> {new!r}"]


def _prepare_run_folder(
    cfg: RunConfig,
    out: Path | str | None,
    force: bool,
    ds0: BimodalDataset,
    *,
    resumable: bool = True,
    jobs: int = 1,
    executor: Executor | None = None,
) -> tuple[Path, dict[str, Any], bool]:
    """Create or reopen the run folder: (folder, environment, whether it resumes a run).

    A folder holding a run of the same config (and code) is resumed; one holding another
    run is refused unless `force`, which clears it first. The folder gets config.json,
    environment.json (one entry per execution in `executions`) and true_pid.json.
    """
    run_id = _new_run_id()
    out = Path(out) if out else Path("runs") / run_id
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder (created if missing)")
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
        out.mkdir(parents=True, exist_ok=True)
        if resume:
            env = json.loads((out / "environment.json").read_text())
            for stale in _STALE[1:]:  # a resumed run rewrites what its last try left
                (out / stale).unlink(missing_ok=True)
        else:
            env = _environment(cfg, run_id, executor)
            _write_atomic(out / "config.json", json.dumps(new_cfg, indent=2))
            true_pid = {t: ds0.true_pid[t].as_dict() for t in ds0.tasks}
            if ds0.latent_gaussian_pid:  # continuous truth, per latent factor (`gaussian`)
                true_pid["latent_gaussian"] = {
                    f: {k: v for k, v in r.as_dict().items() if not isinstance(v, tuple | list)}
                    for f, r in ds0.latent_gaussian_pid.items()
                }
            _write_atomic(out / "true_pid.json", json.dumps(true_pid, indent=2))
        env.setdefault("executions", []).append(_execution(cfg, jobs, executor))
        _write_atomic(out / "environment.json", json.dumps(env, indent=2))
    except OSError as e:
        raise ValueError(
            f"cannot write the run folder {out}: {e.strerror or e}; choose a writable --out"
        ) from None
    return out, env, resume


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
        old_cfg = json.loads((out / "config.json").read_text())
        old_env = json.loads((out / "environment.json").read_text())
    except (OSError, ValueError):
        raise ValueError(
            f"{out} holds a run whose config.json or environment.json cannot be read; "
            "choose another --out or pass --force to start over"
        ) from None
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


def _environment(cfg: RunConfig, run_id: str, executor: Executor | None = None) -> dict[str, Any]:
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


def _run_cells(
    tasks: list[Task],
    executor: Executor,
    quiet: bool,
    on_done: Callable[[Task, list[dict[str, Any]]], None] | None = None,
    already: int = 0,
) -> tuple[dict[int, list[dict[str, Any]]], list[tuple[Task, str]]]:
    """Rows of each task that finished (by `id(task)`), and (task, message) of those that
    failed, run by `executor` (`pid_bench.executors`) under one progress bar.

    `on_done(task, rows)` is called in this process as each cell finishes. Whatever the
    executor, each cell runs under the same thread settings (`run_cell`), so the numbers do
    not depend on it. On Ctrl-C the workers are stopped and KeyboardInterrupt is raised; the
    cells already passed to `on_done` stay done.
    """
    done: dict[int, list[dict[str, Any]]] = {}
    failures: list[tuple[Task, str]] = []
    bar = tqdm(total=len(tasks) + already, initial=already, desc="cells", disable=quiet)

    def finished(task: Task, rows: list[dict[str, Any]]) -> None:
        done[id(task)] = rows
        if on_done is not None:
            on_done(task, rows)

    try:
        executor.run(tasks, finished, lambda t, msg: failures.append((t, msg)), bar.update)
    finally:
        bar.close()
    return done, failures


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
    """Write `results.csv` and its manifest, or, when cells failed, the finished ones to
    `results.csv.partial` with `failures.json` beside it, and raise RunFailed."""
    partial = out / "results.csv.partial"
    data = df.to_csv(index=False).encode()
    if not failures:
        _write_atomic(partial, data)
        manifest = {
            "rows": len(df),
            "cells": n_cells,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        _write_atomic(out / MANIFEST, json.dumps(manifest, indent=2))
        partial.replace(out / "results.csv")
        return
    if not df.empty:
        _write_atomic(partial, data)
    records = _failure_records(failures)
    (out / "failures.json").write_text(json.dumps(records, indent=2))
    done = n_cells - len(failures)
    kept = (
        f"the {done} cells that finished are in {partial}, not results.csv (the run is "
        "incomplete; run the same command again to retry the failed cells)"
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
            entries["fingerprint"] = np.array(fp)
            entries["epoch"] = np.array(cfg.train.epochs)
            buf = io.BytesIO()
            np.savez(buf, **entries)
            _write_atomic(emb_dir / f"{name}_seed{seed}.npz", buf.getvalue())
            for part in parts:
                part.unlink()


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
        if not _cell_file(self.cells_dir, cell).is_file():
            return False
        emb = self.emb_dir
        return emb is None or (emb / _part_name(cell)).is_file() or _merged(emb, cell)


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
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    # connect first: a missing Ray or an unreachable cluster is refused before any folder
    ex = executor
    if isinstance(executor, str):
        ex = make_executor(executor, jobs=jobs, address=address, retries=retries, quiet=quiet)
    try:
        opened = [_open_run(cfg, out, force, save_embeddings, ex, jobs, quiet) for cfg, out in runs]
        owner = {id(t): r for r in opened for t in r.todo}
        tasks = [t for r in opened for t in r.todo]
        n_cells = sum(len(r.cells) for r in opened)
        try:
            _, failures = _run_cells(
                tasks,
                ex,
                quiet,
                on_done=lambda t, rows: _save_cell(owner[id(t)].cells_dir, t.cell, rows),
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
            _note_execution(r.out, after)
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
) -> _OpenRun:
    ds0 = dataset_for_seed(cfg, cfg.seeds[0])
    out, env, resumed = _prepare_run_folder(cfg, out, force, ds0, jobs=jobs, executor=ex)
    cells = plan_cells(cfg)
    emb_dir = out / "embeddings" if save_embeddings else None
    r = _OpenRun(cfg, out, env, cells, emb_dir, [])
    if resumed and not r.cells_dir.is_dir() and (out / "results.csv").is_file():
        r.finished_before = True
        return r
    r.todo = [Task(cfg, c, out / "logs", emb_dir) for c in cells if not r.is_done(c)]
    n_done = len(cells) - len(r.todo)
    if resumed and not quiet:
        print(f"resuming {out}: {n_done} of {len(cells)} cells already done", file=sys.stderr)
    r.cells_dir.mkdir(exist_ok=True)
    return r


def _finish_run(r: _OpenRun, failures: list[tuple[Cell, str]]) -> pd.DataFrame:
    """The table of an opened run from its cell files, written (RunFailed if cells failed)."""
    rows = [row for c in r.cells if r.is_done(c) for row in _load_cell(_cell_file(r.cells_dir, c))]
    if r.emb_dir is not None and not failures:
        _merge_embeddings(r.cfg, r.emb_dir, r.cells)
    df = _table(rows, r.cfg, r.env, r.env["run_id"])
    _write_table(df, r.out, failures, len(r.cells))
    return df


def _note_execution(out: Path, extra: dict[str, Any]) -> None:
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
    _write_atomic(path, json.dumps(env, indent=2))


def _merged(emb_dir: Path, cell: Cell) -> bool:
    """Whether `cell`'s embeddings are already in its learner's merged file."""
    return (emb_dir / f"{cell.learner}_seed{cell.seed}.npz").is_file()


def run_in_memory(cfg: RunConfig, *, quiet: bool = True) -> pd.DataFrame:
    """The results table of `cfg` without writing anything (RunFailed if a learner fails)."""
    run_id = _new_run_id()
    env = _environment(cfg, run_id)
    tasks = [Task(cfg, c, None, None) for c in plan_cells(cfg)]
    done, failed = _run_cells(tasks, LocalExecutor(1, quiet=quiet), quiet)
    rows = [r for t in tasks if id(t) in done for r in done[id(t)]]
    df = _table(rows, cfg, env, run_id)
    if failed:
        failures = [(t.cell, msg) for t, msg in failed]
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
    out, env, _ = _prepare_run_folder(cfg, out, force, ds, resumable=False)
    run_id = env["run_id"]
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
