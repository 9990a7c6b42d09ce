"""Seeded hard joints for the BROJA solver, shared by the stress tests and their benchmark.

Sizes 2..8 per axis, four kinds in turn: dense; sparse (exact zeros); near-deterministic
(y a function of (x1, x2) plus noise between 1e-14 and 1e-3 of the mass); masses spread over
up to 20 orders of magnitude with zeros. On the solver before issue 9 (dual interior point
without step control), seed 1 gave 27 BrojaSolverError and 23 x1/x2 symmetry breaks
above 1e-9 bits among 2000 joints.
"""

from __future__ import annotations

import numpy as np

#: The seed the stress test and `benchmarks/bench_broja_stress.py` use by default.
STRESS_SEED = 1
#: Number of joints in the stress set.
STRESS_COUNT = 2000


def stress_joint(rng: np.random.Generator, kind: int) -> np.ndarray:
    """One random joint p[x1, x2, y] of the given kind (0..3), each axis of size 2..8."""
    shape = tuple(int(rng.integers(2, 9)) for _ in range(3))
    if kind == 0:  # dense
        p = rng.random(shape)
    elif kind == 1:  # sparse
        p = rng.random(shape) * (rng.random(shape) < rng.uniform(0.1, 0.5))
    elif kind == 2:  # near-deterministic: y = f(x1, x2) plus tiny noise
        f = rng.integers(0, shape[2], size=shape[:2])
        p = np.zeros(shape)
        p[np.arange(shape[0])[:, None], np.arange(shape[1])[None, :], f] = rng.random(shape[:2])
        eps = 10.0 ** rng.uniform(-14, -3)
        p += eps * rng.random(shape) * (rng.random(shape) < 0.5)
    else:  # masses over many orders of magnitude, with zeros
        p = 10.0 ** (-rng.uniform(0, rng.uniform(4, 20), size=shape))
        p *= rng.random(shape) < rng.uniform(0.3, 1.0)
    if p.sum() == 0:
        p.flat[0] = 1.0
    return p / p.sum()


def stress_joints(seed: int = STRESS_SEED, count: int = STRESS_COUNT) -> list[np.ndarray]:
    """`count` joints, the kinds in turn, from one seeded generator."""
    rng = np.random.default_rng(seed)
    return [stress_joint(rng, i % 4) for i in range(count)]
