"""`pid-bench score`: probe embeddings computed elsewhere, and file them as an ordinary run.

Nothing is trained: the probes of `cell.probe_embeddings` (the same code as a run's) score
the embeddings of a dataset file's rows, and the results go to a run folder that `report`,
`baseline` and `check` read like any other.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from pid_bench import arguments
from pid_bench.cell import Cell, check_dataset, dataset_for_seed, probe_embeddings, probe_subset
from pid_bench.embeddings import load_embeddings
from pid_bench.runconfig import resolve_config
from pid_bench.runfolder import prepare_run_folder, results_table, write_table

#: BLAS threads of the probes: 1, as in a run's cells at their default `--threads 1`, so that
#: the same embeddings score the same in `run` and `score`. Unlimited, scikit-learn's BLAS took
#: 177-424 s per call on a loaded 2-core machine against 1.6 s at one thread
#: (reports/fidelity/side_by_side/README.md, "Slow scoring").
PROBE_THREADS = 1


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
    arguments.identifier(name, "--name")
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
    check_dataset(ds, tasks, f"{data}: ")
    arrays, epoch = load_embeddings(embeddings, ds, tasks, data_name=str(data))
    with contextlib.ExitStack() as locks:  # the folder is locked until the table is written
        out, env, _ = prepare_run_folder(cfg, out, force, ds, locks=locks, resumable=False)
        run_id = env["run_id"]
        t0 = time.perf_counter()
        rows: list[dict[str, Any]] = []
        with threadpool_limits(limits=PROBE_THREADS):
            for task in tasks:
                cell = Cell(int(seed), name, (task,), "")
                sub = probe_subset(ds, cell, cfg.probe.max_train)
                a = arrays[task]
                # the clustered and BATCH PIDs are bivariate: two modalities only
                uni = a.unimodal if ds.n_modalities == 2 else None
                rows += probe_embeddings(
                    cfg, ds, cell, sub, a.z_train[sub], a.z_test, uni, epoch, True
                )
        elapsed = time.perf_counter() - t0
        for r in rows:
            r["elapsed_s"] = elapsed
            r["device"] = "cpu"  # probes are scikit-learn: CPU whatever made the embeddings
        df = results_table(rows, cfg, env, run_id)
        write_table(df, out, [], len(tasks))
        return df, out
