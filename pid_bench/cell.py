"""The unit of work: a cell trains one learner for one seed and probes it on some tasks.

`plan_cells` splits a run into cells; `run_cell` runs one, in whatever process an executor
(`pid_bench.executors`) gives it, and returns its result rows. Here too: the dataset of each
seed, the split a learner trains on, and the probing code behind `run`, `score` and
`evaluate` (`probe_embeddings`). Imports `runconfig` only, of the run's modules.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

import generators
from generators.base import BimodalDataset, Split
from generators.io import open_atomic
from pid_bench import probes
from pid_bench.learners import Learner
from pid_bench.learners.base import LearnerError, failed
from pid_bench.runconfig import RunConfig, dataset_file, learner_cls
from pid_bench.seeding import derive_seed
from pid_bench.training import ViewFn, embed, resolve_device, train

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Cell:
    """One unit of work: train one learner for one seed and probe it on some tasks."""

    seed: int
    learner: str
    tasks: tuple[str, ...]
    train_task: str  # task whose labels/pretrain split the model is trained on ("" = default)

    @property
    def group(self) -> str:
        """The cell's training group in file names: its training task, or `ssl`."""
        return self.train_task or "ssl"


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


@lru_cache(maxsize=4)
def _dataset(generator: str, params_json: str) -> BimodalDataset:
    return generators.make(generator, **json.loads(params_json))


def dataset_for_seed(cfg: RunConfig, seed: int) -> BimodalDataset:
    """The dataset of one repetition: data seed derived from the run seed unless set, or the
    rows of `cfg.data` for every seed."""
    if cfg.data:
        ds, fp = dataset_file(cfg.data)
        if cfg.data_fingerprint and fp != cfg.data_fingerprint:
            raise ValueError(
                f"{cfg.data} changed during the run (fingerprint {fp}, was {cfg.data_fingerprint})"
            )
        return ds
    params = dict(cfg.generator_params)
    params.setdefault("seed", derive_seed(seed, "data", cfg.generator))
    return _dataset(cfg.generator, json.dumps(params, sort_keys=True))


#: The fewest test rows of each class of a task for its probes to measure anything: balanced
#: accuracy is the mean recall over the task's classes, and a class without a test row has no
#: recall (with `--set n_test=1` a run reported balanced accuracy 0.000 as a result).
MIN_TEST_PER_CLASS = 1


def _finite(x: np.ndarray) -> bool:
    """Whether every value of `x` is finite, 1,024 rows at a time (image data are large)."""
    return all(np.isfinite(x[i : i + 1024]).all() for i in range(0, len(x), 1024))


def check_dataset(ds: BimodalDataset, tasks: tuple[str, ...], where: str = "") -> None:
    """ValueError, blaming the data, unless every split's modalities are finite and the test
    split holds `MIN_TEST_PER_CLASS` rows of every class of each of `tasks` it has (the
    message says the minimum). `where` prefixes the message (the dataset file)."""
    splits = {
        "train": ds.train,
        "test": ds.test,
        **{f"pretrain[{t!r}]": s for t, s in ds.pretrain.items()},
    }
    for split_name, split in splits.items():
        for i, x in enumerate(split.modalities, start=1):
            name, x = f"x{i}", np.asarray(x)
            if np.issubdtype(x.dtype, np.floating) and not _finite(x):
                n_bad = sum(
                    int((~np.isfinite(x[i : i + 1024])).sum()) for i in range(0, len(x), 1024)
                )
                raise ValueError(
                    f"{where}the data hold NaN or inf: {name} of the {split_name} split has "
                    f"{n_bad} NaN or inf values; no learner can be trained or probed on them "
                    "(fix the dataset)"
                )
    for task in tasks:
        if task not in ds.test.labels:
            continue
        n_classes = int(ds.n_classes[task])
        counts = np.bincount(np.asarray(ds.test.labels[task]), minlength=n_classes)
        if counts.min() < MIN_TEST_PER_CLASS:
            short = [c for c in range(n_classes) if counts[c] < MIN_TEST_PER_CLASS]
            raise ValueError(
                f"{where}the test split ({len(ds.test)} rows) has {counts.min()} rows of class "
                f"{short[0]} of task {task!r}; its probes need at least {MIN_TEST_PER_CLASS} "
                f"test row of each of its {n_classes} classes (so n_test >= "
                f"{MIN_TEST_PER_CLASS * n_classes}, more for classes of unequal frequency)"
            )


def check_probe_rows(ds: BimodalDataset, task: str, sub: np.ndarray) -> None:
    """ValueError unless the train rows `sub` a probe is fitted on hold every class of `task`:
    a probe never shown a class cannot predict it, and its balanced accuracy would be capped
    below 1 without saying so."""
    k = int(ds.n_classes[task])
    counts = np.bincount(np.asarray(ds.train.labels[task])[sub], minlength=k)
    if counts.min() < 1:
        c = int(np.argmin(counts))
        raise ValueError(
            f"the probes' {len(sub)} training rows have no row of class {c} of task {task!r} "
            f"({k} classes; the train split has {len(ds.train)} rows): a probe must see every "
            "class; raise n_train (--set n_train=...) or --config-set probe.max_train=..."
        )


def check_run_data(cfg: RunConfig, ds: BimodalDataset) -> None:
    """`check_dataset` for the run's tasks, and every learner of the run takes the dataset's
    number of modalities (before anything is written)."""
    check_dataset(ds, cfg.tasks)
    for name in cfg.learners:
        check_modalities(learner_cls(cfg, name), name, ds.n_modalities)


def check_modalities(cls: type[Learner], name: str, n: int) -> None:
    """ValueError unless learner `cls` (run as `name`) takes `n` modalities."""
    if n not in cls.modalities:
        raise ValueError(
            f"learner {name!r} takes {' or '.join(map(str, cls.modalities))} modalities and "
            f"this dataset has {n} (bimodal by design, or not yet written for {n}; a learner "
            f"that takes {n} lists it in its class attribute `modalities`)"
        )


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


def probe_subset(ds: BimodalDataset, cell: Cell, max_train: int) -> np.ndarray:
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
) -> Rows:
    """Embed with `learner` and probe; with `keep`, also store the final embeddings of every
    train and test row there (the layout of `pid_bench.embeddings`)."""
    sub = probe_subset(ds, cell, cfg.probe.max_train)
    if keep is not None:
        # One pass over every train row; the probes read its subset rows, so that scoring the
        # saved file gives exactly this cell's numbers.
        z_all = embed(learner, ds.train.x1, ds.train.x2, device, x3=ds.train.x3)
        z_tr = z_all[sub]
    else:
        tr = ds.train.subset(sub)
        z_tr = embed(learner, tr.x1, tr.x2, device, x3=tr.x3)
    z_te = embed(learner, ds.test.x1, ds.test.x2, device, x3=ds.test.x3)
    # the clustered and BATCH PID estimates are bivariate: two modalities only
    uni = (
        embed(learner, ds.test.x1, ds.test.x2, device, unimodal=True)
        if (final and learner.has_unimodal and ds.n_modalities == 2)
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
) -> Rows:
    """Result rows of `cell`'s tasks from embeddings of the train rows `sub` and of `test`.

    The one probing code behind `run`, `score` and `evaluate`.
    """
    rows = []
    for task in cell.tasks:
        k = ds.n_classes[task]
        atom = ds.task_atom(task)
        true_bits = ds.true_pid[task].atom(atom)
        pseed = derive_seed(cell.seed, "probe", cell.learner, task)
        check_probe_rows(ds, task, sub)
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


def run_cell(
    cfg: RunConfig,
    cell: Cell,
    log_dir: Path | None,
    progress: bool,
    emb_dir: Path | None = None,
) -> Rows:
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
) -> Rows:
    t0 = time.perf_counter()
    device = resolve_device(cfg.train.device)
    ds = dataset_for_seed(cfg, cell.seed)
    # the run checked the first seed's dataset before starting; each other seed's is checked
    # here, where it is made (the message names the seed)
    if cell.seed != cfg.seeds[0]:
        check_dataset(ds, cell.tasks, f"seed {cell.seed}: ")
    cls = learner_cls(cfg, cell.learner)
    check_modalities(cls, cell.learner, ds.n_modalities)
    split = training_split(ds, cls, cell.train_task)
    group = cell.group
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
        x3=split.x3,
    )
    keep: dict[str, np.ndarray] | None = {} if emb_dir is not None else None
    rows.extend(_probe_rows(cfg, ds, learner, cell, device, cfg.train.epochs, True, keep))
    if emb_dir is not None and keep:
        suffix = f"_{cell.train_task}" if cell.train_task else ""
        emb_dir.mkdir(parents=True, exist_ok=True)
        with open_atomic(emb_dir / part_name(cell)) as f:
            np.savez(f, **{k + suffix: v for k, v in keep.items()})
    elapsed = time.perf_counter() - t0
    for r in rows:
        r["elapsed_s"] = elapsed
        r["device"] = device.type
    return rows


def part_name(cell: Cell) -> str:
    """The file name of `cell`'s embeddings until `runfolder.merge_embeddings` merges them."""
    return f".part-{cell.learner}_seed{cell.seed}_{cell.group}.npz"
