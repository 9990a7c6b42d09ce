"""`pid_bench.evaluate`: the benchmark from Python, for notebooks and for your own test suite."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from pid_bench import arguments
from pid_bench.learners.base import Learner
from pid_bench.learners.plugins import (
    check_learner_class,
    embedding_learner,
    register_object,
    resolve,
)


def evaluate(
    model: type[Learner] | Learner | Callable[[np.ndarray, np.ndarray], Any] | str,
    generator: str = "content_style",
    interaction: str = "all",
    seeds: Sequence[int] = (0,),
    *,
    data: str | Path | None = None,
    name: str | None = None,
    embed_unimodal: Callable[[np.ndarray, np.ndarray], Any] | None = None,
    generator_params: dict[str, Any] | None = None,
    profile: str = "quick",
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    device: str = "auto",
    mlp: bool = True,
    settings: dict[str, Any] | None = None,
    learner_params: dict[str, Any] | None = None,
    out: str | Path | None = None,
    force: bool = False,
    quiet: bool = False,
) -> pd.DataFrame:
    """Train (or just embed with) `model` on generated data and return the tidy results table.

    `model` is one of

    - a `Learner` subclass (or a learner name / `module:Class` / `file.py:Class` string):
      pid-bench trains it exactly as `pid-bench run --learners ...` does, so the same name and
      seed give the same numbers as the command line;
    - a trained `Learner` instance, or a function `embed_fn(x1, x2) -> z` taking float32 numpy
      batches `(B, ...)` and returning `(B, D)` (numpy or torch): a representation trained
      elsewhere, probed as it is (epoch 0). `embed_unimodal(x1, x2) -> (z1, z2)` adds the
      clustered PID probe for a function.

    `data` (a file from `pid-bench generate`) replaces `generator`/`generator_params`;
    `name` files the results (default: the learner's name, or the function's name);
    `epochs`, `batch_size`, `lr`, `device`, `settings` (dotted `section.field` keys) and
    `learner_params` (hyperparameter -> value) change the profile's settings as the CLI flags
    do; `mlp=False` skips the MLP probe. With `out`, a run folder is written there (results.csv,
    config.json, environment.json, true_pid.json) that `pid-bench report`, `baseline` and
    `check` read. Arguments are checked as the command line checks its flags
    (`pid_bench.arguments`): a value of the wrong kind raises TypeError, one out of range
    ValueError, each naming the argument and what is accepted. A learner that fails raises
    `pid_bench.runner.RunFailed`, whose `.results` holds the cells that finished.
    """
    from pid_bench.runconfig import resolve_config
    from pid_bench.runner import run, run_in_memory

    train = {
        k: v if v is None else arguments.training(k, v)
        for k, v in {"epochs": epochs, "batch_size": batch_size, "lr": lr}.items()
    }
    train["device"] = arguments.one_of(device, ("auto", "cpu", "cuda"), "device")
    for key, value in (("mlp", mlp), ("force", force), ("quiet", quiet)):
        arguments.flag(value, key)
    for key, value in (
        ("generator", generator),
        ("interaction", interaction),
        ("profile", profile),
    ):
        if not isinstance(value, str):
            raise TypeError(f"{key}: expected a name (str), got {value!r}")
    generator_params = arguments.mapping(generator_params, "generator_params")
    settings = arguments.mapping(settings, "settings")
    learner_params = arguments.mapping(learner_params, "learner_params")
    data, out = arguments.path(data, "data"), arguments.path(out, "out")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {name!r}")
    spec, trained_elsewhere = _learner_spec(model, name, embed_unimodal)
    if trained_elsewhere:
        train["epochs"] = 0  # nothing is trained; rows are filed at epoch 0
    cfg = resolve_config(
        generator=generator,
        generator_params=generator_params,
        learners=[spec],
        seeds=arguments.seeds(seeds),
        interaction=interaction,
        profile=profile,
        train_overrides=train,
        probe_overrides=None if mlp else {"mlp": False},
        settings=settings,
        data=data,
        learner_params={resolve(spec)[0]: dict(learner_params)} if learner_params else None,
    )
    if out is not None:
        df, _ = run(cfg, Path(out), quiet=quiet, force=force)
        return df
    return run_in_memory(cfg, quiet=quiet)


def _learner_spec(
    model: Any, name: str | None, embed_unimodal: Callable | None
) -> tuple[str, bool]:
    """What `resolve_config` takes for `model`, and whether it was trained elsewhere."""
    if isinstance(model, (str, Path)):
        if name:
            raise ValueError("name= is for classes and functions; a named learner keeps its name")
        return str(model), False
    if isinstance(model, type):
        cls = check_learner_class(model, f"learner {getattr(model, '__name__', model)!r}")
        own = cls.__dict__.get("name")
        label = name or (own if isinstance(own, str) and own else cls.__name__)
        register_object(cls, label, f"{cls.__module__}:{cls.__qualname__}")
        return label, False
    if isinstance(model, Learner):
        label = name or getattr(model, "name", "") or type(model).__name__
        fn, uni = _instance_functions(model)
        cls = embedding_learner(fn, uni, label)
        register_object(cls, label, f"trained instance of {type(model).__qualname__}")
        return label, True
    if callable(model):
        label = name or getattr(model, "__name__", "")
        if not label or label == "<lambda>":
            raise ValueError("give evaluate(..., name=...) for an embedding function")
        cls = embedding_learner(model, embed_unimodal, label)
        register_object(cls, label, f"embedding function {getattr(model, '__qualname__', label)}")
        return label, True
    raise ValueError(
        f"evaluate takes a Learner subclass or instance, a learner name, or a function "
        f"embed_fn(x1, x2) -> z; got {type(model).__name__}"
    )


def _instance_functions(model: Learner) -> tuple[Callable, Callable | None]:
    """numpy-in functions calling a trained learner's `embed` (and `embed_unimodal`)."""
    param = next(iter(model.parameters()), None)
    dev = param.device if param is not None else torch.device("cpu")

    def fn(x1: np.ndarray, x2: np.ndarray) -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            return model.embed(torch.as_tensor(x1, device=dev), torch.as_tensor(x2, device=dev))

    def uni(x1: np.ndarray, x2: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        model.eval()
        with torch.no_grad():
            return model.embed_unimodal(
                torch.as_tensor(x1, device=dev), torch.as_tensor(x2, device=dev)
            )

    return fn, (uni if model.has_unimodal else None)
