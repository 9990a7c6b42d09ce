"""Entropy and mutual information of discrete distributions, in bits."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import xlogy

from estimators._validate import check_joint

LN2 = math.log(2.0)


def _entropy_nats(p: np.ndarray) -> float:
    # xlogy gives 0 log 0 = 0 without warnings.
    return float(-xlogy(p, p).sum())


def _check_distribution(p: object, name: str) -> np.ndarray:
    try:
        arr = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array ({err})") from None
    if arr.size == 0:
        raise ValueError(f"{name} is empty; need a probability distribution")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{name} must hold finite, non-negative probabilities")
    total = float(arr.sum())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"{name} sums to {total:.9g}, not 1 (tolerance 1e-06)")
    return arr


def entropy_bits(p: object) -> float:
    """Shannon entropy H(P) in bits of a distribution given as an array of any shape.

    The array is one joint distribution over all its axes (entries must sum to 1).
    """
    return _entropy_nats(_check_distribution(p, "p")) / LN2


def mutual_info_bits(p_xy: object) -> float:
    """I(X; Y) in bits of a 2-D joint p[x, y]."""
    arr = _check_distribution(p_xy, "p_xy")
    if arr.ndim != 2:
        raise ValueError(f"p_xy must be a 2-D joint p[x, y]; got shape {arr.shape}")
    return max(0.0, _mi_nats(arr) / LN2)


def _mi_nats(p_xy: np.ndarray) -> float:
    return _entropy_nats(p_xy.sum(1)) + _entropy_nats(p_xy.sum(0)) - _entropy_nats(p_xy)


def source_infos_bits(p: np.ndarray) -> tuple[float, float, float]:
    """(I(Y; X1), I(Y; X2), I(Y; X1, X2)) in bits of a valid joint p[x1, x2, y].

    No validation: callers pass an array that went through `check_joint`.
    """
    n1, n2, ny = p.shape
    i1 = _mi_nats(p.sum(1))
    i2 = _mi_nats(p.sum(0))
    i12 = _mi_nats(p.reshape(n1 * n2, ny))
    # Exact zeros can come out as -1e-17 from cancellation.
    return tuple(max(0.0, v / LN2) for v in (i1, i2, i12))  # type: ignore[return-value]


def joint_infos_bits(p: object) -> tuple[float, float, float]:
    """(I(Y; X1), I(Y; X2), I(Y; X1, X2)) in bits of a joint p[x1, x2, y] (validated)."""
    return source_infos_bits(check_joint(p))
