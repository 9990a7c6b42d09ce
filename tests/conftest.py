"""Fixtures shared by the test modules (each test module imports no other).

- `write_fixture_run`: writes a small synthetic, schema-valid run folder (results.csv and
  config.json, what `pid-bench run` writes) with plausible numbers: each learner captures a
  known fraction of each task's atom (CLIP-style `cross` keeps redundancy only, `comm` also
  uniqueness and most synergy, ...), plus small seeded noise. Nothing is trained, so it takes
  milliseconds. For reports, summaries and regression checks.
- `latent_data`: two 3-D modalities holding well-separated latent bits and a label, on which
  every estimator has a known PID. For the estimators.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from generators.base import TASKS
from pid_bench.results import COLUMNS, validate
from pid_bench.seeding import derive_seed

DEFAULT_LEARNERS: tuple[str, ...] = ("cross", "cross_self", "comm", "supervised", "random")

#: Fraction of each task's atom a learner's representation keeps at the end of training.
SKILL: dict[str, dict[str, float]] = {
    "cross": {"redundancy": 0.95, "unique1": 0.10, "unique2": 0.08, "synergy": 0.02},
    "cross_self": {"redundancy": 0.94, "unique1": 0.80, "unique2": 0.78, "synergy": 0.05},
    "factorcl": {"redundancy": 0.93, "unique1": 0.60, "unique2": 0.58, "synergy": 0.02},
    "shared_private": {"redundancy": 0.90, "unique1": 0.70, "unique2": 0.70, "synergy": 0.20},
    "comm": {"redundancy": 0.95, "unique1": 0.85, "unique2": 0.83, "synergy": 0.60},
    "supervised": {"redundancy": 0.98, "unique1": 0.97, "unique2": 0.97, "synergy": 0.95},
    "random": {"redundancy": 0.15, "unique1": 0.12, "unique2": 0.12, "synergy": 0.01},
    # CoMM's architecture untrained: reads the easy tasks, little synergy
    "random_fusion": {"redundancy": 0.95, "unique1": 0.84, "unique2": 0.83, "synergy": 0.15},
}
#: Learners that have unimodal embeddings, hence a clustered PID estimate.
UNIMODAL = {"cross", "cross_self", "factorcl", "shared_private", "comm"}


def _skill(learner: str, task: str) -> float:
    if learner in SKILL:
        return SKILL[learner][task]
    # An unknown learner gets a stable, mid-range skill so new names still make a sane table.
    return 0.3 + 0.6 * (derive_seed(0, "fixture-skill", learner, task) % 1000) / 1000


def _write_fixture_run(
    dir: str | Path,
    *,
    learners: Sequence[str] = DEFAULT_LEARNERS,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int | Sequence[int] = 20,
    sweep: tuple[str, float | str | Iterable[float | str]] | None = None,
    drop: Mapping[str, Mapping[str, float]] | None = None,
    tasks: Sequence[str] = TASKS,
    generator: str = "bits",
    n_classes: Mapping[str, int] | None = None,
    probes: Sequence[str] = ("linear", "mlp", "pid_clustered"),
    run_id: str | None = None,
) -> Path:
    """Write a synthetic run folder (`results.csv`, `config.json`) into `dir` and return it.

    epochs: the final epoch (int), or the epochs probed (a learning curve).
    sweep: (parameter, value or values); each value becomes one sweep point with its own
        run_id (in a real sweep each point is its own folder; after concatenation it is the
        same table). Larger values make every task harder.
    drop: learner -> task -> amount subtracted from balanced accuracy (and the same fraction
        of the atom from the bits) at every epoch: a planted regression.
    n_classes: task -> number of classes (default 4 for every task, as `bits` with bits=2).
    """
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    epoch_list = (
        [int(epochs)] if isinstance(epochs, (int, np.integer)) else [int(e) for e in epochs]
    )
    final_epoch = max(epoch_list)
    classes = {t: 4 for t in TASKS} | dict(n_classes or {})
    drop = drop or {}
    run_id = run_id or f"fixture-{out.name}"
    if sweep is None:
        points: list[tuple[str, str, float]] = [("", "", 0.0)]
    else:
        param, values = sweep
        if isinstance(values, (str, int, float)):
            values = [values]
        points = [(param, str(v), _as_float(v)) for v in values]

    rows: list[dict[str, object]] = []
    for param, value_str, value in points:
        rid = f"{run_id}-{param}{value_str}" if param else run_id
        gen_params = {"bits": 2, "dim": 32, "noise": 0.1, "n_train": 2000, "n_test": 1000}
        if param:
            gen_params[param] = value_str if _as_float(value_str) != value else value
        # The shape of the runner's resolved config (`pid_bench.runner.config_dict`).
        config = {
            "generator": generator,
            "generator_params": gen_params,
            "learners": list(learners),
            "seeds": [int(s) for s in seeds],
            "interaction": "all" if tuple(tasks) == TASKS else ",".join(tasks),
            "profile": "fixture",
            "train": {
                "epochs": final_epoch,
                "batch_size": 256,
                "probe_every": _probe_every(epoch_list),
                "device": "cpu",
            },
            "sweep_param": param,
            "sweep_value": value_str,
            "tasks": list(tasks),
        }
        params = json.dumps(config, sort_keys=True)
        # Harder data at larger sweep values, so sweep lines slope down visibly.
        hardness = 1.0 / (1.0 + 0.8 * max(value, 0.0)) if param else 1.0
        for learner in learners:
            for seed in seeds:
                # One wall time per (learner, seed) cell, repeated on its rows, as the runner does.
                elapsed = round(5 + derive_seed(int(seed), "fixture-time", learner) % 1000 / 100, 3)
                for task in tasks:
                    k = classes[task]
                    true_bits = math.log2(k)
                    chance = 1.0 / k
                    # Noise depends on the seed and cell, not the folder: same seed, same numbers.
                    rng = np.random.default_rng(
                        derive_seed(int(seed), "fixture", param, value_str, learner, task)
                    )
                    for epoch in epoch_list:
                        # Saturating learning curve towards the final skill.
                        progress = 1.0 - math.exp(-4.0 * epoch / max(final_epoch, 1))
                        progress /= 1.0 - math.exp(-4.0)
                        skill = _skill(learner, task) * hardness * progress
                        skill = float(np.clip(skill + rng.normal(0, 0.015), 0.0, 1.0))
                        d = drop.get(learner, {}).get(task, 0.0)
                        acc = chance + (1 - chance) * skill - d
                        acc = float(np.clip(acc + rng.normal(0, 0.005), 0.0, 1.0))
                        bits = max(0.0, true_bits * (skill - d / (1 - chance)))
                        bits = float(bits + abs(rng.normal(0, 0.01)))
                        common = {
                            "run_id": rid,
                            "generator": generator,
                            "learner": learner,
                            "seed": int(seed),
                            "task": task,
                            "epoch": epoch,
                            "true_atom": task,
                            "true_bits": true_bits,
                            "sweep_param": param,
                            "sweep_value": value_str,
                            "params": params,
                            "versions": json.dumps(
                                {"python": "3.11.2", "numpy": "2.4.6", "torch": "2.13.0+cpu"},
                                sort_keys=True,
                            ),
                            "git_sha": "0123abc",
                            "device": "cpu",
                            "elapsed_s": elapsed,
                        }
                        values: list[tuple[str, str, float]] = []
                        if "linear" in probes:
                            values += [
                                ("linear", "balanced_accuracy", acc),
                                ("linear", "chance", chance),
                                ("linear", "mi_bits", bits),
                                ("linear", "capture", bits / true_bits),
                            ]
                        if "mlp" in probes:
                            mlp_acc = float(min(1.0, acc + 0.02))
                            mlp_bits = min(true_bits, bits * 1.03)
                            values += [
                                ("mlp", "balanced_accuracy", mlp_acc),
                                ("mlp", "chance", chance),
                                ("mlp", "mi_bits", mlp_bits),
                                ("mlp", "capture", mlp_bits / true_bits),
                            ]
                        if "pid_clustered" in probes and learner in UNIMODAL:
                            atoms = {a: abs(float(rng.normal(0, 0.02))) for a in TASKS}
                            atoms[task] = bits * 0.9
                            atoms["mutual_info"] = sum(atoms.values())
                            values += [("pid_clustered", a, v) for a, v in atoms.items()]
                        for probe, metric, v in values:
                            rows.append(common | {"probe": probe, "metric": metric, "value": v})

    df = pd.DataFrame(rows, columns=list(COLUMNS))
    validate(df)
    df.to_csv(out / "results.csv", index=False)
    # A real sweep writes one folder per point; here config.json describes the last point.
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return out


def _as_float(v: float | str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def _probe_every(epochs: list[int]) -> int:
    return 0 if len(epochs) < 2 else int(np.diff(sorted(epochs)).min())


@pytest.fixture(scope="session")
def write_fixture_run() -> Callable[..., Path]:
    """`_write_fixture_run`: a synthetic run folder in the directory given."""
    return _write_fixture_run


def _latent_data(n: int, label: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two 3-D modalities holding well-separated discrete factors, plus one label.

    x1 holds (s, u), x2 holds (s, v): s shared, u and v private, all uniform bits, each
    encoded as a +-3 offset on one coordinate plus unit noise and one pure-noise coordinate.
    `label`: "redundancy" (y = s, 1 bit of R), "unique1" (y = u, 1 bit of U1) or "synergy"
    (y = u xor v, 1 bit of S).
    """
    rng = np.random.default_rng(seed)
    s, u, v = (rng.integers(0, 2, n) for _ in range(3))
    noise = rng.normal(scale=0.3, size=(2, n, 3))
    x1 = np.stack([6.0 * s, 6.0 * u, np.zeros(n)], axis=1) + noise[0]
    x2 = np.stack([6.0 * s, 6.0 * v, np.zeros(n)], axis=1) + noise[1]
    y = {"redundancy": s, "unique1": u, "synergy": u ^ v}[label]
    return x1, x2, y


@pytest.fixture(scope="session")
def latent_data() -> Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`_latent_data`: (x1, x2, y) with one bit of the atom the label names."""
    return _latent_data


#: A learner plug-in (a file, as users write one) that hangs in `embed` while PIDB_TEST_HANG
#: is set: the runs that tests interrupt, kill or lock out (test_resume, test_lock).
HANG_PLUGIN = '''
import os
import time

import torch
from pid_bench.learners import Learner


class Hang(Learner):
    """A frozen linear map that never finishes embedding while PIDB_TEST_HANG is set."""

    name = "hang"
    trainable = False
    relative_cost = 0.01  # --jobs runs the cheapest cells last: cross's and random's first

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lin = torch.nn.Linear(self.shapes[0][0] + self.shapes[1][0], 8)

    def embed(self, x1, x2):
        if os.environ.get("PIDB_TEST_HANG"):
            time.sleep(600)
        return torch.tanh(self.lin(torch.cat([x1, x2], 1)))
'''


@pytest.fixture(scope="session")
def hang_file(tmp_path_factory) -> Path:
    """The `HANG_PLUGIN` file; pass it to --learners as f"{hang_file}:Hang"."""
    path = tmp_path_factory.mktemp("plug") / "hang.py"
    path.write_text(textwrap.dedent(HANG_PLUGIN))
    return path
