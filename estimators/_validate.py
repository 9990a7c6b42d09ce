"""Input checks shared by the estimators.

Every check raises `ValueError` with a message that names the argument, says what was wrong
and what is accepted, so that bad input never surfaces as a traceback from deep inside numpy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

#: How far a joint distribution's total may be from 1 (absolute) before it is rejected.
SUM_TOL = 1e-6
#: Negative entries this small are treated as round-off from upstream arithmetic and set to 0.
NEG_TOL = 1e-12


def _as_float_array(x: object, name: str) -> np.ndarray:
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be a numeric array; could not convert it to floats ({err})"
        ) from None


def check_joint(p: object, name: str = "p", sources: int = 2) -> np.ndarray:
    """A validated copy of a joint distribution p[x1, ..., y] as float64, normalised exactly.

    Accepts any (`sources` + 1)-D array of finite, non-negative numbers summing to 1 within
    `SUM_TOL` (`sources` = 2: p[x1, x2, y]; 3: p[x1, x2, x3, y]). Zero cells are normal.
    """
    axes = ", ".join([f"x{i + 1}" for i in range(sources)] + ["y"])
    arr = _as_float_array(p, name)
    if arr.ndim != sources + 1:
        raise ValueError(
            f"{name} must be a {sources + 1}-D array p[{axes}] (one axis per variable"
            + (
                "; three sources: a 4-D p[x1, x2, x3, y] with measure='imin'"
                if sources == 2
                else ""
            )
            + f"); got a {arr.ndim}-D array of shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(
            f"{name} is empty (shape {arr.shape}); every axis of p[{axes}] needs at least one value"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite entries (NaN or inf); "
            "probabilities must be finite numbers >= 0"
        )
    low = float(arr.min())
    if low < -NEG_TOL:
        raise ValueError(
            f"{name} has negative entries (smallest {low:.3g}); probabilities must be >= 0"
        )
    arr = np.clip(arr, 0.0, None)
    total = float(arr.sum())
    if total <= 0.0:
        raise ValueError(
            f"{name} is degenerate: all its mass is zero; pass a probability distribution "
            f"p[{axes}] that sums to 1"
        )
    if abs(total - 1.0) > SUM_TOL:
        raise ValueError(
            f"{name} sums to {total:.9g}, not 1 (tolerance {SUM_TOL:g}); pass a normalised "
            "joint, e.g. p / p.sum()"
        )
    return arr / total


def check_measure(measure: object, valid: Sequence[str]) -> str:
    """`measure` if it is one of `valid` (case-insensitive), else a ValueError listing them."""
    if isinstance(measure, str) and measure.lower() in valid:
        return measure.lower()
    raise ValueError(f"unknown PID measure {measure!r}; valid measures: {', '.join(valid)}")


def _check_integer_values(arr: np.ndarray, name: str) -> np.ndarray:
    """`arr` as int64 if it holds integers (integral floats are accepted), else ValueError."""
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64, copy=False)
    if np.issubdtype(arr.dtype, np.floating):
        if np.isnan(arr).any():
            raise ValueError(f"{name} contains NaN; it must hold integer codes")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains infinite values; it must hold integer codes")
        frac = arr != np.round(arr)
        if frac.any():
            example = arr[frac].flat[0]
            raise ValueError(
                f"{name} must hold integer codes; got non-integer values such as {example!r} "
                "(for continuous data use ClusteredPID)"
            )
        return arr.astype(np.int64)
    raise ValueError(
        f"{name} must hold integer codes (an integer array); got dtype {arr.dtype} "
        "(encode categories as integers first, e.g. with np.unique(..., return_inverse=True))"
    )


def _check_rows(arr: np.ndarray, name: str) -> None:
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty; need at least one sample")


def check_labels(y: object, name: str = "y") -> np.ndarray:
    """Integer labels (n,) -> codes 0..K-1 (int64). A (n, 1) column is accepted."""
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of integer labels, shape (n,); got shape {arr.shape}"
        )
    _check_rows(arr, name)
    arr = _check_integer_values(arr, name)
    return np.unique(arr, return_inverse=True)[1].reshape(-1).astype(np.int64)


def check_discrete(x: object, name: str) -> np.ndarray:
    """Discrete observations -> codes 0..K-1 (int64).

    Accepts 1-D integer codes (n,) or a 2-D integer array (n, d) whose rows are tuples of
    codes; each distinct row becomes one code.
    """
    arr = np.asarray(x)
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"{name} must be 1-D integer codes (n,) or a 2-D integer array (n, d); "
            f"got shape {arr.shape}"
        )
    _check_rows(arr, name)
    arr = _check_integer_values(arr, name)
    if arr.ndim == 1:
        return np.unique(arr, return_inverse=True)[1].reshape(-1).astype(np.int64)
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no columns (shape {arr.shape}); need at least one")
    return np.unique(arr, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def check_continuous(x: object, name: str) -> np.ndarray:
    """Continuous features -> float64 (n, d). A 1-D array is one feature."""
    arr = _as_float_array(x, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (n samples, d features) or 1-D (n,); got shape {arr.shape}"
        )
    _check_rows(arr, name)
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {arr.shape}); need at least one")
    nan = np.isnan(arr)
    if nan.any():
        raise ValueError(f"{name} contains {int(nan.sum())} NaN values; drop or impute them first")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains infinite values; features must be finite")
    return arr


def check_same_length(**arrays: np.ndarray) -> int:
    """The common number of samples, or a ValueError naming every count."""
    counts = {name: int(a.shape[0]) for name, a in arrays.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in counts.items())
        raise ValueError(f"mismatched sample counts: {listed}; all need the same number of rows")
    return next(iter(counts.values()))


def check_positive_int(value: object, name: str, allow_none: bool = False) -> int | None:
    """A positive int parameter (or None where allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        accepted = "a positive integer or None" if allow_none else "a positive integer"
        raise ValueError(f"{name} must be {accepted}; got {value!r}")
    return int(value)


def check_choice(value: object, name: str, valid: Sequence[str]) -> str:
    """`value` if it is one of the strings `valid` (case-insensitive), else a ValueError."""
    if isinstance(value, str) and value.lower() in valid:
        return value.lower()
    raise ValueError(f"unknown {name} {value!r}; valid values: {', '.join(map(repr, valid))}")


def check_random_state_param(value: object, name: str = "random_state") -> None:
    """None, an int seed in [0, 2**32 - 1] or a `np.random.RandomState`, as scikit-learn takes."""
    if value is None or isinstance(value, np.random.RandomState):
        return
    if (
        not isinstance(value, bool)
        and isinstance(value, int | np.integer)
        and 0 <= value <= np.iinfo(np.uint32).max
    ):
        return
    raise ValueError(
        f"{name} must be None, an int seed in [0, 2**32 - 1] or a numpy.random.RandomState; "
        f"got {value!r}"
    )


#: Memory needs (bytes) below which `check_memory` does not look at the available memory.
MEMORY_CHECK_FLOOR = 256 * 2**20


class InsufficientMemoryError(ValueError):
    """A computation on valid input would need more memory than the machine has available."""


def available_memory() -> int | None:
    """Bytes of memory available to new allocations, or None when it cannot be told.

    psutil's `virtual_memory().available` when psutil is installed, else MemAvailable from
    /proc/meminfo (Linux).
    """
    try:
        import psutil
    except ImportError:
        pass
    else:
        return int(psutil.virtual_memory().available)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _bytes(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_memory(needed: int, what: str) -> None:
    """Raise `InsufficientMemoryError` if `needed` bytes exceed the available memory.

    Needs below `MEMORY_CHECK_FLOOR` are not checked (reading the available memory costs more
    than a small solve), nor is anything where the available memory cannot be told
    (`available_memory` None). Set PID_BENCH_SKIP_MEMORY_CHECK=1 to skip the check.
    """
    if needed < MEMORY_CHECK_FLOOR or os.environ.get("PID_BENCH_SKIP_MEMORY_CHECK") == "1":
        return
    avail = available_memory()
    if avail is not None and needed > avail:
        raise InsufficientMemoryError(
            f"{what} needs about {_bytes(needed)} of memory but only {_bytes(avail)} is available; "
            "reduce the number of values of x1, x2 or y (e.g. merge rare ones)"
        )


# ------------------------------------------------------------------ estimator parameters
# Each estimator names a check per parameter (`PIDEstimator._parameter_checks`); `fit` runs them
# all through `PIDEstimator._validated_params`, never `__init__` or `set_params`, as in
# scikit-learn. A check takes (value, name) and returns the value to use or raises ValueError.

#: A parameter check: (value, name) -> the value to use, or ValueError naming the parameter.
ParamCheck = Callable[[object, str], object]


def positive_int(allow_none: bool = False) -> ParamCheck:
    """A positive int ("must be a positive integer"), or None where allowed."""
    return lambda value, name: check_positive_int(value, name, allow_none=allow_none)


def int_at_least(low: int, allow_none: bool = False) -> ParamCheck:
    """An int >= `low` ("must be an integer >= low"), or None where allowed."""

    def check(value: object, name: str) -> int | None:
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
        return int(value)

    return check


def number_in(low: float, high: float, closed: str = "neither") -> ParamCheck:
    """A real number in the interval from `low` to `high`, `closed` "neither" (open), "left"
    or "both"; `high` may be inf ("must be a number in (low, high)")."""
    left = "[" if closed in ("left", "both") else "("
    right = "]" if closed == "both" else ")"

    def check(value: object, name: str) -> object:
        ok = not isinstance(value, bool) and isinstance(value, float | int | np.floating)
        if ok:
            above = value >= low if left == "[" else value > low
            below = value <= high if right == "]" else value < high
            ok = bool(above and below)
        if not ok:
            interval = f"{left}{low}, {high}{right}"
            raise ValueError(f"{name} must be a number in {interval}; got {value!r}")
        return value

    return check


def number_at_least(low: float) -> ParamCheck:
    """A real number >= `low` ("must be a number >= low")."""

    def check(value: object, name: str) -> object:
        if isinstance(value, bool) or not isinstance(value, float | int | np.floating):
            raise ValueError(f"{name} must be a number >= {low}; got {value!r}")
        if not value >= low:
            raise ValueError(f"{name} must be a number >= {low}; got {value!r}")
        return value

    return check


def boolean(value: object, name: str) -> bool:
    """True or False (numpy's bool too)."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def one_of(valid: Sequence[str]) -> ParamCheck:
    """One of the strings `valid`, case-insensitive, as lower case (`check_choice`)."""
    return lambda value, name: check_choice(value, name, valid)


def measure_of(valid: Sequence[str]) -> ParamCheck:
    """A PID measure among `valid` (`check_measure`), as lower case."""
    return lambda value, name: check_measure(value, valid)


def random_state_like(value: object, name: str) -> object:
    """A scikit-learn random_state (`check_random_state_param`), unchanged."""
    check_random_state_param(value, name)
    return value
