"""Exact PID of discrete distributions: the `pid` function and the `DiscretePID` estimator.

Measures (all in bits; for each, U1 = I(Y;X1) - R, U2 = I(Y;X2) - R and
S = I(Y;X1,X2) - R - U1 - U2):

- `broja` (Bertschinger, Rauh, Olbrich, Jost, Ay 2014), the reference: U1 is the minimum of
  I_q(Y; X1 | X2) over joints q with the (X1, Y) and (X2, Y) marginals of p.
- `mmi`: R = min(I(Y; X1), I(Y; X2)).
- `imin` (Williams & Beer 2010): R = sum_y p(y) min_i I(Y = y; X_i), with the specific
  information I(Y = y; X_i) = KL(p(x_i | y) || p(x_i)).
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from estimators._broja import solve_broja
from estimators._info import LN2, _entropy_nats, source_infos_bits
from estimators._result import PIDResult
from estimators._validate import (
    check_discrete,
    check_joint,
    check_labels,
    check_measure,
    check_same_length,
    measure_of,
)
from estimators.base import PIDEstimator, register
from estimators.lattice import LatticePIDResult, lattice_pid

#: Valid values of `measure`.
MEASURES: tuple[str, ...] = ("broja", "mmi", "imin")

# Slack (bits) within which a redundancy outside its admissible interval is taken as
# round-off and clamped; anything further out is a bug and raises.
_CLAMP_TOL = 1e-7
# Atoms this close to zero (negative by round-off) are reported as exactly 0.
_ZERO_TOL = 1e-9


def pid(p: object, measure: str = "broja") -> PIDResult | LatticePIDResult:
    """Partial information decomposition of a joint distribution p[x1, x2, y], in bits.

    p: any 3-D array of non-negative numbers summing to 1 (zero cells are fine).
    measure: one of `MEASURES`.

    Three sources: a 4-D joint p[x1, x2, x3, y] with `measure="imin"` gives the 18 atoms of
    the Williams-Beer lattice (`estimators.lattice.lattice_pid`, a `LatticePIDResult`).
    """
    if np.ndim(p) == 4:
        if check_measure(measure, MEASURES) != "imin":
            raise ValueError(
                f"a 4-D joint p[x1, x2, x3, y] (three sources) takes measure='imin' (the "
                f"Williams-Beer lattice, exact); {measure!r} is defined here for two sources only"
            )
        return lattice_pid(p)
    joint = check_joint(p)
    measure = check_measure(measure, MEASURES)
    i1, i2, i12 = source_infos_bits(joint)
    if measure == "broja":
        redundancy = broja_redundancy(joint)
    elif measure == "mmi":
        redundancy = min(i1, i2)
    else:
        redundancy = imin_redundancy(joint)
    return _from_redundancy(redundancy, i1, i2, i12, measure)


def broja_redundancy(p: np.ndarray) -> float:
    """BROJA redundancy in bits of a validated joint p[x1, x2, y].

    With q* the optimum, I_q*(Y; X1, X2) = H(Y) - H_q*(Y | X1, X2) and
    R = I(Y; X1) + I(Y; X2) - I_q*(Y; X1, X2) (so U1 = I_q*(Y; X1 | X2)).
    """
    sol = solve_broja(p)
    i1, i2, _ = source_infos_bits(p)
    i_q = (_entropy_nats(p.sum(axis=(0, 1))) + sol.value) / LN2
    return i1 + i2 - i_q


def imin_redundancy(p: np.ndarray) -> float:
    """Williams-Beer I_min in bits of a validated joint p[x1, x2, y]."""
    py = p.sum(axis=(0, 1))
    specific = []
    for pxy in (p.sum(axis=1), p.sum(axis=0)):
        px = pxy.sum(axis=1, keepdims=True)
        # I(Y=y; X) = sum_x p(x|y) log(p(x|y) / p(x)) = sum_x p(x,y)/p(y) log(p(x,y)/(p(x)p(y)))
        ratio = np.divide(pxy, px * py, out=np.ones_like(pxy), where=pxy > 0)
        spec = xlogy(pxy, ratio).sum(axis=0)
        specific.append(np.divide(spec, py, out=np.zeros_like(py), where=py > 0))
    return float((py * np.minimum(*specific)).sum() / LN2)


def _from_redundancy(r: float, i1: float, i2: float, i12: float, measure: str) -> PIDResult:
    """The four atoms from R, with R clamped to its admissible interval.

    Every measure here keeps R within [max(0, I1 + I2 - I12), min(I1, I2)], the interval
    that makes all four atoms non-negative; a value outside by more than round-off is a bug.
    """
    hi = min(i1, i2)
    lo = min(max(0.0, i1 + i2 - i12), hi)
    if not (lo - _CLAMP_TOL <= r <= hi + _CLAMP_TOL):
        raise RuntimeError(
            f"{measure} redundancy {r:.12g} bits lies outside its admissible interval "
            f"[{lo:.12g}, {hi:.12g}]; this is a bug, please report it with the joint"
        )
    r = min(max(r, lo), hi)
    atoms = [r, i1 - r, i2 - r, i12 - i1 - i2 + r]
    atoms = [0.0 if abs(a) < _ZERO_TOL and a <= 0 else float(a) for a in atoms]
    return PIDResult(*atoms, mutual_info=float(i12), measure=measure)


def joint_from_samples(x1: object, x2: object, y: object) -> np.ndarray:
    """Plug-in joint p[x1, x2, y] (relative frequencies) of discrete samples.

    x1, x2: integer codes (n,) or integer arrays (n, d) whose rows are tuples of codes;
    y: integer labels (n,). Each distinct value (row) becomes one index, in sorted order.
    """
    c1 = check_discrete(x1, "x1")
    c2 = check_discrete(x2, "x2")
    cy = check_labels(y, "y")
    check_same_length(x1=c1, x2=c2, y=cy)
    return _count_joint(c1, c2, cy)


def _count_joint(c1: np.ndarray, c2: np.ndarray, cy: np.ndarray) -> np.ndarray:
    shape = (int(c1.max()) + 1, int(c2.max()) + 1, int(cy.max()) + 1)
    flat = np.ravel_multi_index((c1, c2, cy), shape)
    counts = np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)
    return counts / counts.sum()


@register("discrete")
class DiscretePID(PIDEstimator):
    """Plug-in PID of discrete samples: relative frequencies, then the exact `pid`.

    fit(x1, x2, y): x1, x2 are integer codes (n,) or integer arrays (n, d) whose rows are
    tuples of codes (each distinct row is one value); y holds integer labels (n,).

    The plug-in estimate is biased upward for small samples: finite-sample fluctuations
    look like dependence, so mutual information (and synergy most) is overestimated when
    the number of cells is not small next to n.
    """

    _parameter_checks = {"measure": measure_of(MEASURES)}

    def __init__(self, measure: str = "broja") -> None:
        self.measure = measure

    def fit(self, x1: object, x2: object, y: object) -> DiscretePID:
        """Estimate the PID of (x1, x2; y); returns self."""
        p = self._validated_params()
        joint = joint_from_samples(x1, x2, y)
        self._set_result(pid(joint, p["measure"]), joint)
        return self
