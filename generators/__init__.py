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


def _accepted_text(default: Any, shown: Any) -> str:
    """What a parameter accepts: the type of `default`, "or none" where its real default
    (`shown`, given only then) is None."""
    if shown is ...:
        return f"{_type_name(default)} (default {default!r})"
    return f"{_type_name(default)} or none (default {shown!r})"


def _check_type(name: str, key: str, value: Any, default: Any, shown: Any = ...) -> Any:
    """`value` converted to the type of `default`, or a ValueError saying what is accepted
    (naming `shown` as the default where given: an optional parameter's is None)."""
    if default is None:
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
            f"generator {name!r}: parameter {key!r} must be {_accepted_text(default, shown)}, "
            f"got {value!r} of type {type(value).__name__}"
        )
    return value


#: A value of each type an optional parameter (`T | None = None`) may take, to coerce and check.
_EXAMPLES: dict[type, Any] = {bool: False, int: 0, float: 0.0, str: ""}


def _typed_default(name: str, key: str, default: Any) -> Any:
    """`default`, or where it is None and the annotation `T | None`, an example value of T."""
    if default is not None:
        return default
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
    checked = {}
    for k, v in params.items():
        if defaults[k] is not None:
            checked[k] = _check_type(name, k, v, defaults[k])
        elif v is not None:
            # an optional parameter (`T | None = None`) takes a T
            checked[k] = _check_type(name, k, v, _typed_default(name, k, None), None)
        else:
            checked[k] = None
    return gen(**checked)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name: str, key: str, text: str, default: Any, shown: Any = ...) -> Any:
    s = text.strip()
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
        f"generator {name!r}: parameter {key!r} must be {_accepted_text(default, shown)}, "
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
    out = {}
    for k, v in strings.items():
        example = _typed_default(name, k, defaults[k])
        if defaults[k] is None and example is not None and v.strip().lower() == "none":
            out[k] = None
        else:
            out[k] = _coerce(name, k, v, example, ... if defaults[k] is not None else None)
    return out
