"""Parameter checks and random streams shared by the generators."""

from __future__ import annotations

import math
import numbers
import zlib

import numpy as np


def check_int(
    generator: str, name: str, value: object, *, low: int | None = None, high: int | None = None
) -> int:
    """`value` as an int in [low, high]; a ValueError saying what is accepted otherwise."""
    accepted = "an integer" + _range_text(low, high)
    # bool is an int subclass, but `bits=True` is a mistake, not a number.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"generator {generator!r}: {name} must be {accepted}, got {value!r}")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"generator {generator!r}: {name} must be {accepted}, got {v}")
    return v


def check_float(
    generator: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
) -> float:
    """`value` as a finite float in [low, high]; a ValueError saying what is accepted otherwise."""
    accepted = "a finite number" + _range_text(low, high)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"generator {generator!r}: {name} must be {accepted}, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"generator {generator!r}: {name} must be {accepted}, got {v!r}")
    return v


def check_sizes(generator: str, n_train: object, n_test: object, seed: object) -> tuple[int, ...]:
    """The (n_train, n_test, seed) every generator takes, checked."""
    return (
        check_int(generator, "n_train", n_train, low=1),
        check_int(generator, "n_test", n_test, low=1),
        # SeedSequence rejects negative entropy; say so here rather than from inside numpy.
        check_int(generator, "seed", seed, low=0),
    )


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" in [{low}, {high}]"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""


def stream(seed: int, *names: str) -> np.random.Generator:
    """An independent random stream for one purpose, derived from `seed` and its names.

    Each purpose (embedding weights, train samples, test samples) gets its own stream, so that
    changing `n_train` changes neither the embedding nor the test set.
    """
    key = zlib.crc32("/".join(names).encode())
    return np.random.default_rng(np.random.SeedSequence([seed, key]))


def check_choice(generator: str, name: str, value: object, accepted: tuple[str, ...]) -> str:
    """`value` as one of the strings `accepted`; a ValueError listing them otherwise."""
    if not isinstance(value, str) or value not in accepted:
        raise ValueError(
            f"generator {generator!r}: {name} must be one of {', '.join(accepted)}, got {value!r}"
        )
    return value
