"""Plug-in learners: classes from outside pid-bench that follow the `Learner` contract.

A learner is named on the command line (`--learners`) or passed to `pid_bench.evaluate` as

- a built-in name (`comm`, ...; `pid-bench list`);
- `module.path:Class`, any importable module (an installed package, or a folder on PYTHONPATH);
- `path/to/file.py:Class`, a Python file (its folder is appended to `sys.path`, so the file can
  import modules beside it);
- the name of an entry point in the group `pid_bench.learners` of an installed distribution:

      [project.entry-points."pid_bench.learners"]
      my_learner = "my_pkg.models:MyLearner"

A plug-in's results are filed under its name: the entry point's name, else the class's own
`name` attribute, else the class name. Seeds derive from that name, so a class loaded by path,
by entry point or through `evaluate` gives the same numbers for the same seed as long as the
name is the same.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pid_bench import arguments
from pid_bench.learners.base import LEARNERS, Learner, one_line

#: The entry-point group installed packages register learners under.
ENTRY_POINT_GROUP = "pid_bench.learners"

# Plug-ins resolved in this process: name -> (class, where it came from). Worker processes
# (`--jobs`) resolve again from the run config's `plugins` entry, which records the source.
_RESOLVED: dict[str, tuple[type[Learner], str]] = {}
_BY_SPEC: dict[str, type[Learner]] = {}


def entry_points() -> dict[str, metadata.EntryPoint]:
    """Entry points of the group `pid_bench.learners`, by name (installed distributions)."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def resolve(spec: str) -> tuple[str, type[Learner], str]:
    """(name, class, source) of a learner given on the command line or to `evaluate`.

    `source` is "" for built-ins, else what the class can be imported from again
    (`module:Class` or `path.py:Class`). ValueError with one line naming the learner and the
    problem when it cannot be found or loaded, or is not a Learner.
    """
    spec = str(spec).strip()
    if spec in LEARNERS:
        return spec, LEARNERS[spec], ""
    if ":" in spec:
        cls = load_spec(spec)
        name = _name_of(cls, spec)
        return name, cls, _remember(name, cls, spec, f"learner {spec!r}")
    if spec in _RESOLVED:
        cls, source = _RESOLVED[spec]
        return spec, cls, source
    eps = entry_points()
    if spec in eps:
        ep = eps[spec]
        where = f"learner {spec!r} (entry point {ep.value!r}"
        dist = getattr(ep, "dist", None)
        where += f" of {dist.name} {dist.version})" if dist is not None else ")"
        try:
            obj = ep.load()
        except Exception as e:  # the plug-in's own import-time error, whatever it is
            raise ValueError(f"{where}: cannot be imported: {one_line(e)}") from None
        cls = check_learner_class(obj, where)
        return spec, cls, _remember(spec, cls, ep.value, where)
    available = sorted(LEARNERS) + sorted(n for n in eps if n not in LEARNERS)
    raise ValueError(
        f"unknown learner {spec!r}; available: {', '.join(available)}; or give a class of your "
        "own as module.path:Class or path/to/file.py:Class"
    )


def get_learner(name: str) -> type[Learner]:
    """The learner class of `name`: a built-in name, a plug-in's entry-point name, or a
    `module:Class` / `path/to/file.py:Class` spec.

    ValueError listing the valid names otherwise, or saying why a plug-in cannot be loaded.
    """
    if name in LEARNERS:
        return LEARNERS[name]
    return resolve(name)[1]


def learner_class(name: str, source: str = "") -> type[Learner]:
    """The class of learner `name` in a run whose config records `source` for it.

    A source is imported again where this process has not loaded it yet (`--jobs` workers).
    """
    if source:
        return load_spec(source)
    if name in LEARNERS:
        return LEARNERS[name]
    return resolve(name)[1]


def register_object(cls: type[Learner], name: str, source: str) -> str:
    """Make `cls` (e.g. handed to `evaluate`) resolvable as `name` and as `source` in this
    process; returns the source to record ("" for a built-in)."""
    if LEARNERS.get(name) is cls:
        return ""
    return _remember(name, cls, source, f"learner {name!r} ({source})")


def load_spec(spec: str) -> type[Learner]:
    """Import `module.path:Class` or `path/to/file.py:Class` and check it is a Learner."""
    if spec in _BY_SPEC:
        return _BY_SPEC[spec]
    where = f"learner {spec!r}"
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ValueError(f"{where}: expected module.path:Class or path/to/file.py:Class")
    if target.endswith(".py") or "/" in target or "\\" in target:
        module = _import_file(Path(target), where)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as e:
            if e.name and target.split(".")[0] == e.name.split(".")[0]:
                raise ValueError(
                    f"{where}: no module named {e.name!r}; install it, put its folder on "
                    "PYTHONPATH, or name the file: path/to/file.py:Class"
                ) from None
            raise ValueError(f"{where}: importing {target!r} failed: {one_line(e)}") from None
        except Exception as e:  # the plug-in's own import-time error, whatever it is
            raise ValueError(f"{where}: importing {target!r} failed: {one_line(e)}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            found = _learners_in(module)
            hint = f" (Learner subclasses in it: {', '.join(found)})" if found else ""
            raise ValueError(f"{where}: {target!r} has no attribute {attr!r}{hint}")
        obj = getattr(obj, part)
    cls = check_learner_class(obj, where)
    _BY_SPEC[spec] = cls
    return cls


def check_learner_class(obj: Any, where: str) -> type[Learner]:
    """`obj` if it is a usable Learner subclass; ValueError saying what is wrong otherwise."""
    if not (inspect.isclass(obj) and issubclass(obj, Learner)):
        kind = "a class" if inspect.isclass(obj) else f"a {type(obj).__name__}"
        raise ValueError(
            f"{where}: is {kind}, not a subclass of pid_bench.learners.Learner "
            "(see the contract in its docstring and the README)"
        )
    if obj is Learner:
        raise ValueError(f"{where}: is the Learner base class itself; give your subclass")
    missing = []
    if obj.embed is Learner.embed:
        missing.append("embed")
    if obj.trainable and obj.loss is Learner.loss:
        missing.append("loss (or set trainable = False)")
    if obj.has_unimodal and obj.embed_unimodal is Learner.embed_unimodal:
        missing.append("embed_unimodal (or set has_unimodal = False)")
    if missing:
        raise ValueError(f"{where}: does not implement {', '.join(missing)}")
    for flag in ("supervised", "trainable", "has_unimodal"):
        if not isinstance(getattr(obj, flag), bool):
            raise ValueError(f"{where}: class attribute {flag} must be True or False")
    hp = obj.hyperparams
    if not isinstance(hp, (tuple, list)) or not all(isinstance(k, str) for k in hp):
        raise ValueError(f"{where}: hyperparams must be a tuple of attribute names")
    absent = [k for k in hp if not hasattr(obj, k)]
    if absent:
        raise ValueError(f"{where}: hyperparams names {absent}, which the class does not define")
    return obj


def embedding_learner(
    embed_fn: Callable[[np.ndarray, np.ndarray], Any],
    embed_unimodal_fn: Callable[[np.ndarray, np.ndarray], Any] | None = None,
    name: str = "embeddings",
) -> type[Learner]:
    """A frozen Learner class whose `embed` calls `embed_fn(x1, x2)` on numpy batches.

    `embed_fn` takes float32 arrays `(B, ...)` of the two modalities and returns `(B, D)`
    (numpy, a torch tensor, or anything `np.asarray` takes); `embed_unimodal_fn` likewise
    returns `(z1, z2)`. Used by `evaluate` for representations trained elsewhere.
    """

    def _tensor(z: Any) -> torch.Tensor:
        if isinstance(z, torch.Tensor):
            return z.detach().cpu()
        return torch.as_tensor(np.asarray(z))

    def _np(x: torch.Tensor) -> np.ndarray:
        return x.detach().cpu().numpy()

    class EmbeddingFunction(Learner):
        trainable = False
        has_unimodal = embed_unimodal_fn is not None

        def embed(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
            return _tensor(embed_fn(_np(x1), _np(x2)))

        def embed_unimodal(self, x1: torch.Tensor, x2: torch.Tensor):
            z1, z2 = embed_unimodal_fn(_np(x1), _np(x2))
            return _tensor(z1), _tensor(z2)

    EmbeddingFunction.__doc__ = f"Embeddings of {getattr(embed_fn, '__qualname__', embed_fn)!r}"
    EmbeddingFunction.__name__ = EmbeddingFunction.__qualname__ = name
    return EmbeddingFunction


def _remember(name: str, cls: type[Learner], source: str, where: str) -> str:
    if LEARNERS.get(name) is cls:  # a built-in named by its module path
        return ""
    _check_name(name, where)
    # the latest wins: a notebook may define a class again under the same name
    _RESOLVED[name] = (cls, source)
    _BY_SPEC[source] = cls
    return source


def _name_of(cls: type[Learner], spec: str) -> str:
    # Only a name set in the class body counts: a subclass of a built-in inherits its name.
    own = cls.__dict__.get("name")
    if own is not None and not isinstance(own, str):
        raise ValueError(f"learner {spec!r}: class attribute name must be a string")
    return own or cls.__name__


def _check_name(name: str, where: str) -> None:
    if name in LEARNERS:
        raise ValueError(
            f"{where}: is named {name!r}, the name of a built-in learner; set another `name` "
            "class attribute"
        )
    arguments.identifier(name, f"{where}: name")


def _import_file(path: Path, where: str):
    if not path.is_file():
        raise ValueError(f"{where}: no such file: {path}")
    path = path.resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    mod_name = f"_pid_bench_plugin_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    if str(path.parent) not in sys.path:
        # appended, so the file can import modules beside it without shadowing installed ones
        sys.path.append(str(path.parent))
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{where}: {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # classes pickle and dataclasses resolve by module name
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the plug-in's own import-time error, whatever it is
        del sys.modules[mod_name]
        raise ValueError(f"{where}: importing {path.name} failed: {one_line(e)}") from None
    return module


def _learners_in(module: Any) -> list[str]:
    return sorted(
        k
        for k, v in vars(module).items()
        if inspect.isclass(v) and issubclass(v, Learner) and v is not Learner
    )
