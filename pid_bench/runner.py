"""The grid of (seed, learner, task group) cells behind `pid-bench run`."""

from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
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
from generators.base import TASK_ATOM, BimodalDataset, Split
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
from pid_bench.learners import Learner, check_hyperparams, get_learner
from pid_bench.results import COLUMNS, summarise
from pid_bench.seeding import derive_seed
from pid_bench.training import embed, resolve_device, train

INTERACTIONS: dict[str, tuple[str, ...]] = {
    "redundancy": ("redundancy",),
    "uniqueness": ("unique1", "unique2"),
    "synergy": ("synergy",),
    "all": ("redundancy", "unique1", "unique2", "synergy"),
}


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's numbers (written to `config.json`)."""

    generator: str = "bits"
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

    @property
    def tasks(self) -> tuple[str, ...]:
        return INTERACTIONS[self.interaction]


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
    generator: str = "bits",
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
) -> RunConfig:
    """Merge profile defaults and user overrides into a validated RunConfig."""
    prof = get_profile(profile)
    interaction_tasks(interaction)
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
    learners = tuple(learners) if learners else RunConfig.learners
    for name in learners:
        get_learner(name)
    if len(set(learners)) != len(learners):
        raise ValueError(f"learners listed twice: {list(learners)}")
    lp = {}
    for name, values in (learner_params or {}).items():
        if name not in learners:
            raise ValueError(f"--learner-set names learner {name!r}, which is not in this run")
        lp[name] = check_hyperparams(get_learner(name), values)
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
    sp, sv = sweep if sweep else ("", "")
    return RunConfig(
        generator=generator,
        generator_params=params,
        learners=learners,
        seeds=seeds,
        interaction=interaction,
        profile=profile,
        train=tr,
        model=sections["model"],
        aug=sections["aug"],
        probe=pr,
        learner_params=lp,
        sweep_param=sp,
        sweep_value=sv,
    )


@lru_cache(maxsize=4)
def _dataset(generator: str, params_json: str) -> BimodalDataset:
    return generators.make(generator, **json.loads(params_json))


def dataset_for_seed(cfg: RunConfig, seed: int) -> BimodalDataset:
    """The dataset of one repetition: data seed derived from the run seed unless set."""
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
            cls = get_learner(name)
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


def _probe_rows(
    cfg: RunConfig, ds: BimodalDataset, learner, cell: Cell, device, epoch: int, final: bool
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(derive_seed(cell.seed, "probe-subset", cell.learner))
    n_tr = len(ds.train)
    sub = np.sort(rng.choice(n_tr, size=min(cfg.probe.max_train, n_tr), replace=False))
    tr = ds.train.subset(sub)
    z_tr = embed(learner, tr.x1, tr.x2, device)
    z_te = embed(learner, ds.test.x1, ds.test.x2, device)
    uni = (
        embed(learner, ds.test.x1, ds.test.x2, device, unimodal=True)
        if (final and learner.has_unimodal)
        else None
    )
    rows = []
    for task in cell.tasks:
        k = ds.n_classes[task]
        atom = TASK_ATOM[task]
        true_bits = ds.true_pid[task].atom(atom)
        pseed = derive_seed(cell.seed, "probe", cell.learner, task)
        args = (z_tr, tr.labels[task], z_te, ds.test.labels[task], k, cfg.probe, pseed)
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


def run_cell(
    cfg: RunConfig, cell: Cell, log_dir: Path | None, progress: bool, threads: int | None = None
) -> list[dict[str, Any]]:
    """Train and probe one cell; returns its result rows (without run-level columns)."""
    if threads:
        torch.set_num_threads(threads)
        # sklearn's probes use BLAS/OpenMP pools outside torch's control; parallel cells that
        # each spin up one thread per core oversubscribe the machine badly.
        with threadpool_limits(limits=threads):
            return run_cell(cfg, cell, log_dir, progress, None)
    t0 = time.perf_counter()
    device = resolve_device(cfg.train.device)
    ds = dataset_for_seed(cfg, cell.seed)
    cls = get_learner(cell.learner)
    split = training_split(ds, cls, cell.train_task)
    group = cell.train_task or "ssl"
    torch.manual_seed(derive_seed(cell.seed, "init", cell.learner, group))
    y = None
    n_classes = None
    if cls.supervised:
        y = split.labels[cell.train_task]
        n_classes = ds.n_classes[cell.train_task]
    learner = cls(ds.modality_kinds, ds.modality_shapes, cfg.model, cfg.aug, n_classes=n_classes)
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
    )
    rows.extend(_probe_rows(cfg, ds, learner, cell, device, cfg.train.epochs, final=True))
    elapsed = time.perf_counter() - t0
    for r in rows:
        r["elapsed_s"] = elapsed
        r["device"] = device.type
    return rows


def config_dict(cfg: RunConfig) -> dict[str, Any]:
    """JSON-ready resolved config."""
    d = asdict(cfg)
    d["tasks"] = list(cfg.tasks)
    return d


def run(
    cfg: RunConfig,
    out: Path | None = None,
    *,
    jobs: int = 1,
    quiet: bool = False,
    force: bool = False,
) -> tuple[pd.DataFrame, Path]:
    """Run the grid, write `results.csv`, `config.json`, `environment.json` and per-epoch logs.

    The table is first written as `results.csv.partial` and renamed only when every cell has
    finished, so a results.csv is always complete.
    """
    run_id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    out = Path(out) if out else Path("runs") / run_id
    if out.exists() and (out / "results.csv").exists() and not force:
        raise ValueError(f"{out} already holds results.csv; choose another --out or pass --force")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.csv").unlink(missing_ok=True)
    cells = plan_cells(cfg)
    ds0 = dataset_for_seed(cfg, cfg.seeds[0])
    env = {
        "versions": envinfo.versions(),
        "git_sha": envinfo.git_sha(),
        "device": resolve_device(cfg.train.device).type,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "run_id": run_id,
        "started": run_id[:15],
    }
    (out / "config.json").write_text(json.dumps(config_dict(cfg), indent=2, default=str))
    (out / "environment.json").write_text(json.dumps(env, indent=2))
    (out / "true_pid.json").write_text(
        json.dumps({t: ds0.true_pid[t].as_dict() for t in ds0.tasks}, indent=2)
    )
    log_dir = out / "logs"
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(cells), desc="cells", disable=quiet)
    if jobs <= 1:
        for cell in cells:
            rows += run_cell(cfg, cell, log_dir, progress=not quiet)
            bar.update()
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        # Longest first, so no core idles at the end waiting for one expensive cell.
        order = sorted(cells, key=lambda c: -get_learner(c.learner).relative_cost)
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futs = [pool.submit(run_cell, cfg, c, log_dir, False, threads) for c in order]
            for f in as_completed(futs):
                rows += f.result()
                bar.update()
    bar.close()
    df = pd.DataFrame(rows)
    df["run_id"] = run_id
    df["generator"] = cfg.generator
    df["sweep_param"] = cfg.sweep_param
    df["sweep_value"] = cfg.sweep_value
    df["params"] = json.dumps(config_dict(cfg), sort_keys=True, default=str)
    df["versions"] = json.dumps(env["versions"], sort_keys=True)
    df["git_sha"] = env["git_sha"]
    df = (
        df[list(COLUMNS)]
        .sort_values(["learner", "seed", "task", "probe", "metric", "epoch"], kind="stable")
        .reset_index(drop=True)
    )
    partial = out / "results.csv.partial"
    df.to_csv(partial, index=False)
    partial.replace(out / "results.csv")
    return df, out


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Learner x task at the final epoch: linear-probe balanced accuracy mean/std, bits, capture."""
    stats = summarise(df, probes=("linear",))
    wide = stats.pivot_table(
        index=["learner", "task"], columns="metric", values=["mean", "std", "n"], aggfunc="first"
    )

    def col(kind: str, metric: str) -> pd.Series:
        # capture is absent when a task's true atom is 0 (nothing to capture)
        key = (kind, metric)
        return wide[key] if key in wide.columns else pd.Series(np.nan, index=wide.index)

    out = pd.DataFrame(
        {
            "acc_mean": col("mean", "balanced_accuracy"),
            "acc_std": col("std", "balanced_accuracy"),
            "chance": col("mean", "chance"),
            "bits": col("mean", "mi_bits"),
            "capture": col("mean", "capture"),
            "n_seeds": col("n", "balanced_accuracy"),
        }
    )
    return out.reset_index()


def format_summary(df: pd.DataFrame, learners: tuple[str, ...] | None = None) -> str:
    """The printed summary: one row per learner, one column per task."""
    s = summary_table(df)
    tasks = [t for t in INTERACTIONS["all"] if t in set(s["task"])]
    order = list(learners) if learners else sorted(s["learner"].unique())
    head = f"{'learner':<15}" + "".join(f"{t:>30}" for t in tasks)
    lines = [
        "linear probe: balanced accuracy mean +- std over seeds | MI lower bound (bits) | capture",
        head,
        "-" * len(head),
    ]
    for name in order:
        cells = []
        for t in tasks:
            r = s[(s["learner"] == name) & (s["task"] == t)]
            if r.empty:
                cells.append(f"{'-':>30}")
                continue
            r = r.iloc[0]
            std = 0.0 if pd.isna(r["acc_std"]) else r["acc_std"]
            cells.append(
                f"{r['acc_mean']:.3f}+-{std:.3f} | {r['bits']:.2f}b | {r['capture']:.2f}".rjust(30)
            )
        lines.append(f"{name:<15}" + "".join(cells))
    chance = {t: s[s["task"] == t]["chance"].iloc[0] for t in tasks}
    lines.append("chance: " + ", ".join(f"{t} {c:.3f}" for t, c in chance.items()))
    return "\n".join(lines)
