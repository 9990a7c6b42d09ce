"""The learner interface every method implements, and the learner registry."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from pid_bench.config import AugConfig, ModelConfig, coerce_value
from pid_bench.learners.augment import build_augment


class Learner(nn.Module):
    """A multimodal representation learner.

    Subclasses set the class flags, build their modules in `__init__` and implement `loss`
    and `embed`. The one training loop (`pid_bench.training.train`) calls `loss` on batches;
    the probes read `embed` (and `embed_unimodal` where `has_unimodal`).
    """

    #: trained on the task label, so one model is trained per task
    supervised: bool = False
    #: False for frozen encoders (no optimisation at all)
    trainable: bool = True
    #: exposes `embed_unimodal`
    has_unimodal: bool = False
    #: class attributes a user may override per run (`--learner-set NAME.KEY=VALUE`)
    hyperparams: tuple[str, ...] = ()
    #: the registered learner that is this learner's architecture left untrained (its floor);
    #: `pid-bench check` fails a learner that falls back to it where the baseline was above it
    untrained_floor: str | None = None
    #: rough cost of a training step relative to Cross (benchmarks/bench_training.py); only
    #: orders parallel work longest first, never changes results
    relative_cost: float = 1.0

    def __init__(
        self,
        kinds: tuple[str, str],
        shapes: tuple[tuple[int, ...], tuple[int, ...]],
        model: ModelConfig,
        aug: AugConfig,
        n_classes: int | None = None,
    ) -> None:
        super().__init__()
        if self.supervised and not n_classes:
            raise ValueError(f"{type(self).__name__} is supervised and needs n_classes >= 2")
        self.kinds = kinds
        self.shapes = shapes
        self.model_cfg = model
        self.n_classes = n_classes
        self.aug1 = build_augment(kinds[0], aug)
        self.aug2 = build_augment(kinds[1], aug)

    def augment(
        self, x1: Tensor, x2: Tensor, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """One augmented view of the pair; each modality augmented independently."""
        return self.aug1(x1, generator), self.aug2(x2, generator)

    def loss(
        self,
        x1: Tensor,
        x2: Tensor,
        y: Tensor | None,
        idx: Tensor,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, dict[str, float]]:
        """The training loss on a batch and a dict of named terms for the log.

        `idx` holds the batch's row indices in the training split (for per-sample state).
        """
        raise NotImplementedError

    def embed(self, x1: Tensor, x2: Tensor) -> Tensor:
        """The multimodal representation the probes read, (B, D)."""
        raise NotImplementedError

    def embed_unimodal(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        """Single-modality representations (z1, z2), for learners with `has_unimodal`."""
        raise NotImplementedError(f"{type(self).__name__} has no unimodal embeddings")

    def start_epoch(self, epoch: int, n_train: int) -> None:  # noqa: B027 (optional hook)
        """Hook called before each epoch (1-based)."""


def check_hyperparams(cls: type[Learner], values: dict[str, str | float | int | bool]) -> dict:
    """Validate and coerce `--learner-set` overrides to the types of the class defaults."""
    out = {}
    for key, raw in values.items():
        if key not in cls.hyperparams:
            accepted = ", ".join(f"{k}={getattr(cls, k)!r}" for k in cls.hyperparams) or "none"
            raise ValueError(
                f"learner {cls.name!r} has no hyperparameter {key!r}; accepted: {accepted}"
            )
        default = getattr(cls, key)
        try:
            out[key] = coerce_value(raw, default)
        except ValueError:
            raise ValueError(
                f"learner {cls.name!r} hyperparameter {key!r} takes a {type(default).__name__}, "
                f"got {raw!r}"
            ) from None
    return out


LEARNERS: dict[str, type[Learner]] = {}


def register(name: str) -> Callable[[type[Learner]], type[Learner]]:
    """Register a Learner subclass under `name`."""

    def deco(cls: type[Learner]) -> type[Learner]:
        if name in LEARNERS:
            raise ValueError(f"learner {name!r} registered twice")
        cls.name = name
        LEARNERS[name] = cls
        return cls

    return deco


def get_learner(name: str) -> type[Learner]:
    """The registered learner class `name`; ValueError listing the valid names otherwise."""
    try:
        return LEARNERS[name]
    except KeyError:
        raise ValueError(
            f"unknown learner {name!r}; available: {', '.join(sorted(LEARNERS))}"
        ) from None
