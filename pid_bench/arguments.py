"""What a user may give: one check and one message per kind of argument, shared by the command
line (`cli`'s argparse types) and the Python API (`evaluate`, `resolve_config`, `run`).

Each check returns the value, or raises TypeError (a value of the wrong kind: `epochs=1.5`,
`seeds="12"`) or ValueError (the right kind, out of range: `epochs=0`) whose message names the
argument (when given `name`) and what is accepted, e.g. "epochs: must be at least 1, got 0"; the
command line prints the same words after "argument --epochs: ". Imports nothing of pid_bench.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from os import PathLike
from typing import Any

import numpy as np

#: The smallest value of each training flag (`--epochs`, ...) and `evaluate` argument.
TRAINING_MINIMUM: dict[str, int] = {"epochs": 1, "batch_size": 2, "probe_every": 0, "threads": 1}
#: ... and of the config's fields (`resolve_config`): a config may train 0 epochs (a model
#: trained elsewhere, probed as it is), which no flag asks for.
CONFIG_MINIMUM: dict[str, int] = {**TRAINING_MINIMUM, "epochs": 0}

#: What a name that becomes a file name or a table key may be (learners, `score --name`).
NAME_RULE = "one line starting with a letter or _ and holding only letters, digits, _ and -"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _where(name: str) -> str:
    return f"{name}: " if name else ""


def is_integer(value: Any) -> bool:
    """An int (or numpy integer), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def int_at_least(value: Any, low: int, name: str = "", given: str | None = None) -> int:
    """`value` as an int >= `low` (`given`: the value as the user typed it, for the message)."""
    if not is_integer(value):
        raise TypeError(f"{_where(name)}expected an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{_where(name)}must be at least {low}, got {given or value}")
    return int(value)


def finite_number(value: Any, *, zero: bool, name: str = "", given: str | None = None) -> float:
    """`value` as a finite float > 0 (>= 0 with `zero`)."""
    need = "a finite number >= 0" if zero else "a positive finite number"
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{_where(name)}expected a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or not (v >= 0 if zero else v > 0):
        raise ValueError(f"{_where(name)}must be {need}, got {given or value}")
    return v


def flag(value: Any, name: str) -> bool:
    """`value` if it is True or False (`mlp="no"` is not silently true)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return value


def one_of(value: Any, accepted: Sequence[str], name: str) -> str:
    """`value` if it is one of the strings `accepted`."""
    if not isinstance(value, str) or value not in accepted:
        raise ValueError(f"{name}: expected one of {', '.join(accepted)}, got {value!r}")
    return value


def seeds(value: Any, name: str = "seeds") -> tuple[int, ...]:
    """Distinct integers >= 0, at least one: a list or tuple (not one int, not a string, whose
    characters would be taken one by one as seeds), or a 1-d numpy array."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name}: expected a list of integers >= 0 (e.g. [0, 1, 2]), got {value!r}")
    out = tuple(int_at_least(s, 0, name) for s in value)
    if not out:
        raise ValueError(f"{name}: at least one seed is needed")
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: must be distinct integers >= 0, got {' '.join(map(str, out))}")
    return out


def training(key: str, value: Any, *, config: bool = False) -> Any:
    """A training setting given by flag or argument (`epochs`, `batch_size`, `lr`,
    `probe_every`, `threads`), checked as `--epochs` etc. check it (`config`: as a config's
    field, `CONFIG_MINIMUM`); other keys are returned as they are."""
    if key == "lr":
        return finite_number(value, zero=False, name=key)
    low = (CONFIG_MINIMUM if config else TRAINING_MINIMUM).get(key)
    return value if low is None else int_at_least(value, low, key)


def identifier(name: Any, what: str) -> str:
    """`name` if it is a single-line identifier (`NAME_RULE`): a name that becomes a file name
    or a table key. `what` says whose name it is ("--name", "learner 'x': name"). A trailing
    newline or any other control character is refused, not stripped."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, got {name!r}")
    if not _NAME.fullmatch(name):
        raise ValueError(f"{what} {name!r} must be {NAME_RULE}")
    return name


def mapping(value: Any, name: str) -> dict[str, Any]:
    """`value` as a dict ({} for None): settings, parameters by name."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{name}: expected a dict of name -> value, got {value!r}")
    return value


def path(value: Any, name: str) -> Any:
    """`value` if it is None, a str or an os.PathLike (a file or folder to read or write)."""
    if value is not None and not isinstance(value, (str, PathLike)):
        raise TypeError(f"{name}: expected a path (str or pathlib.Path), got {value!r}")
    return value
