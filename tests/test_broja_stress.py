"""BROJA on the 2000 seeded hard joints of `estimators.testing` (slow: about a minute)."""

from __future__ import annotations

import numpy as np
import pytest

from estimators import joint_infos_bits, pid
from estimators.testing import STRESS_COUNT, STRESS_SEED, stress_joints

TOL = 1e-9  # bits


def atoms(res) -> np.ndarray:
    return np.array([res.redundancy, res.unique1, res.unique2, res.synergy])


@pytest.mark.slow
def test_broja_stress_set() -> None:
    """No exception, no negative atom, x1/x2 symmetry and the marginal identities to 1e-9 bits."""
    bad: list[str] = []
    for i, p in enumerate(stress_joints(STRESS_SEED, STRESS_COUNT)):
        try:
            a = atoms(pid(p))
            b = atoms(pid(p.transpose(1, 0, 2)))[[0, 2, 1, 3]]
        except Exception as err:  # noqa: BLE001 (every failure is collected and reported)
            bad.append(f"joint {i} {p.shape}: {type(err).__name__}: {err}")
            continue
        i1, i2, i12 = joint_infos_bits(p)
        checks = {
            "negative atom": -min(a.min(), b.min()),
            "symmetry": np.abs(a - b).max(),
            "R + U1 = I(X1;Y)": max(abs(x[0] + x[1] - i1) for x in (a, b)),
            "R + U2 = I(X2;Y)": max(abs(x[0] + x[2] - i2) for x in (a, b)),
            "R + U1 + U2 + S = I(X1,X2;Y)": max(abs(x.sum() - i12) for x in (a, b)),
        }
        bad += [
            f"joint {i} {p.shape}: {k} off by {v:.3g} bits" for k, v in checks.items() if v > TOL
        ]
    assert not bad, f"{len(bad)} failures:\n" + "\n".join(bad[:20])
