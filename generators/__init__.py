"""Dataset generators with exactly known PID, registered by name.

    from generators import make
    ds = make("bits", bits=2, n_train=5000)
    ds.true_pid["synergy"]  # PIDResult, bits

`parameters(name)` lists a generator's parameters with their defaults; `coerce_params` turns
command-line strings (`--set key=value`) into values of the defaults' types. A parameter whose
default is None and whose annotation is `T | None` (T int, float, bool or str) takes values of
type T, or "none" for the default.
"""

from __future__ import annotations

import ast
import inspect
import math
import numbers
import types
import typing
from collections.abc import Iterable
from typing import Any

import numpy as np

# The generator modules register themselves on import.
from . import bits, content_style, gaussian, trifeature
from .base import (
    GENERATORS,
    TASK_ATOM,
    TASKS,
    BimodalDataset,
    Split,
    ViewSource,
    get,
    register,
)
from .io import fingerprint, load_npz, save_npz

__all__ = [
    "GENERATORS",
    "TASKS",
    "TASK_ATOM",
    "BimodalDataset",
    "Split",
    "ViewSource",
    "bits",
    "coerce_params",
    "content_style",
    "fingerprint",
    "gaussian",
    "get",
    "load_npz",
    "make",
    "parameters",
    "register",
    "save_npz",
    "trifeature",
]


def parameters(name: str) -> dict[str, Any]:
    """The parameters of generator `name` with their defaults, in signature order."""
    sig = inspect.signature(get(name))
    out = {}
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out[p.name] = None if p.default is inspect.Parameter.empty else p.default
    return out


def _accepted(name: str) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in parameters(name).items())


def _type_name(default: Any) -> str:
    if isinstance(default, bool):
        return "a boolean"
    if isinstance(default, numbers.Integral):
        return "an integer"
    if isinstance(default, numbers.Real):
        return "a number"
    if isinstance(default, str):
        return "a string"
    return f"a value like {default!r}"


def _accepted_text(default: Any, optional: bool) -> str:
    """What a parameter accepts: the type of `default`; for an optional parameter (`default`
    an example of its type, its real default None) that type "or none"."""
    if optional:
        return f"{_type_name(default)} or none (default None)"
    return f"{_type_name(default)} (default {default!r})"


def _check_type(name: str, key: str, value: Any, default: Any) -> Any:
    """`value` converted to the type of `default` (of the annotation `T` for an optional
    parameter, `T | None = None`), or a ValueError saying what is accepted."""
    optional = default is None
    if optional:
        default = _typed_example(name, key)
        if default is None or value is None:
            return value
    ok: bool
    if isinstance(default, bool):
        ok = isinstance(value, (bool, np.bool_))
        value = bool(value) if ok else value
    elif isinstance(default, numbers.Integral):
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        value = int(value) if ok else value
    elif isinstance(default, numbers.Real):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise ValueError(
            f"generator {name!r}: parameter {key!r} must be {_accepted_text(default, optional)}, "
            f"got {value!r} of type {type(value).__name__}"
        )
    return value


#: A value of each type an optional parameter (`T | None = None`) may take, to coerce and check.
_EXAMPLES: dict[type, Any] = {bool: False, int: 0, float: 0.0, str: ""}


def _typed_example(name: str, key: str) -> Any:
    """An example value of T for a parameter annotated `T | None`; None otherwise."""
    hint = typing.get_type_hints(get(name)).get(key)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        concrete = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(concrete) == 1 and concrete[0] in _EXAMPLES:
            return _EXAMPLES[concrete[0]]
    return None


def make(name: str, **params: Any) -> BimodalDataset:
    """Generate dataset `name` with `params` overriding its defaults.

    Unknown generators, unknown parameters, wrongly typed or out-of-range values raise a
    ValueError that says what is accepted.
    """
    gen = get(name)
    defaults = _known_parameters(name, params)
    checked = {k: _check_type(name, k, v, defaults[k]) for k, v in params.items()}
    return gen(**checked)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name: str, key: str, text: str, default: Any) -> Any:
    s = text.strip()
    example = _typed_example(name, key) if default is None else None
    optional = example is not None
    if optional:
        # an optional parameter (`T | None = None`): "none" for the default, else a T
        if s.lower() == "none":
            return None
        default = example
    if isinstance(default, bool):
        if s.lower() in _TRUE:
            return True
        if s.lower() in _FALSE:
            return False
    elif isinstance(default, numbers.Integral):
        try:
            return int(s)
        except ValueError:
            # Accept integral floats such as "1e5", which are natural for sample sizes.
            try:
                f = float(s)
            except ValueError:
                pass
            else:
                if math.isfinite(f) and f == int(f):
                    return int(f)
    elif isinstance(default, numbers.Real):
        try:
            return float(s)
        except ValueError:
            pass
    elif default is None or isinstance(default, str):
        return text
    else:
        # Containers (a tuple of sizes, say) are written as Python literals: "(1, 2)".
        try:
            value = ast.literal_eval(s)
        except (ValueError, SyntaxError):
            pass
        else:
            if isinstance(default, (tuple, list)) and isinstance(value, (tuple, list)):
                return type(default)(value)
            if isinstance(value, type(default)):
                return value
    raise ValueError(
        f"generator {name!r}: parameter {key!r} must be {_accepted_text(default, optional)}, "
        f"got {text!r}"
    )


def _known_parameters(name: str, keys: Iterable[str]) -> dict[str, Any]:
    """The defaults of generator `name`; ValueError naming any of `keys` it does not have."""
    defaults = parameters(name)
    unknown = [k for k in keys if k not in defaults]
    if unknown:
        raise ValueError(
            f"generator {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"accepted (with defaults): {_accepted(name)}"
        )
    return defaults


def coerce_params(name: str, strings: dict[str, str]) -> dict[str, Any]:
    """Convert `key -> string` pairs (from `--set key=value`) to the defaults' types."""
    defaults = _known_parameters(name, strings)
    return {k: _coerce(name, k, v, defaults[k]) for k, v in strings.items()}
