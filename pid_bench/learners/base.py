"""The learner interface every method implements, and the learner registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from pid_bench.config import AugConfig, ModelConfig, coerce_value
from pid_bench.learners.augment import build_augment


class LearnerError(RuntimeError):
    """A learner failed (raised in its own code, or returned something outside the contract).

    The message is one line that names the learner and what went wrong; the CLI prints it and
    exits with status 2.
    """


def one_line(e: BaseException) -> str:
    """`Type: first line of the message` of an exception (with file and line for a syntax
    error), for one-line error messages about a learner's own code."""
    text = str(e).strip().splitlines()
    msg = f"{type(e).__name__}: {text[0]}" if text else type(e).__name__
    if isinstance(e, SyntaxError) and e.lineno:
        msg += f" ({Path(e.filename or '?').name}, line {e.lineno})"
    return msg


def failed(name: str, stage: str, e: BaseException) -> LearnerError:
    """One-line LearnerError: learner `name` raised `e` in `stage` (e.g. "loss")."""
    return LearnerError(f"learner {name!r} failed in {stage}: {one_line(e)}")


class Learner(nn.Module):
    """A multimodal representation learner: the contract every learner follows.

    The built-in learners and plug-ins (`--learners my_pkg.models:MyLearner`,
    `--learners path/to/file.py:MyLearner`, or a name registered under the entry-point group
    `pid_bench.learners`) implement the same interface.

    Construction. pid-bench builds one instance per (seed, learner, training split) as
    `cls(kinds, shapes, model, aug, n_classes=...)`: `kinds` is `("vector" | "image", ...)`
    for (x1, x2), `shapes` their per-sample shapes (`(d,)` or `(C, H, W)`), `model` and `aug`
    the run's `ModelConfig` and `AugConfig` (`model.d_model` is the suggested representation
    width), `n_classes` the number of classes of the task a supervised learner is trained on
    (None otherwise). Call `super().__init__(...)` first; raise ValueError for modalities the
    learner cannot read. Before construction `torch.manual_seed` is set from the run seed and
    the learner's name, so the same seed gives the same initial weights.

    Training. `pid_bench.training.train` runs AdamW over all `parameters()` (lr, weight decay,
    batch size and epochs from the run's `TrainConfig`) and calls, per batch,
    `loss(x1, x2, y, idx, generator) -> (loss, terms)`:

    - `x1`, `x2`: float32 tensors on the run's device, `(B, d)` or `(B, C, H, W)`;
    - `y`: int64 `(B,)` class indices of the training task when `supervised`, else None;
    - `idx`: int64 `(B,)` row indices of the batch in the training split (per-sample state);
    - `generator`: the `torch.Generator` to draw augmentations from (`self.augment(x1, x2,
      generator)` gives one independently augmented view of each modality; where the run
      uses generator views (`AugConfig.views`), it returns a new view of the batch's rows
      drawn by the dataset's generative process instead, so call it on the whole batch);
    - returns a scalar tensor with a gradient, and a dict of named float terms for the log.

    Before the first epoch the loop sets `self.total_epochs` and then calls
    `start_epoch(epoch, n_train)` before each epoch (1-based), so a learner can schedule a
    term over training.

    Self-supervised learners train on `ds.pretrain_split(task)` for tasks with a pretraining
    split (one model per such task) and on `train` for the others (one shared model);
    `supervised` learners train on `train`, one model per task. A non-finite loss stops the
    cell with a LearnerError.

    Representation. The probes read `embed(x1, x2) -> z`, a float tensor `(B, D)` computed in
    eval mode without gradients, in batches of up to 1024 rows; the same rows must give the
    same z whatever the batch. Where `has_unimodal`, `embed_unimodal(x1, x2) -> (z1, z2)`,
    each `(B, D_i)` and a function of one modality only, feeds the clustered PID estimate.
    Embeddings must be finite.

    Class attributes (flags):

    - `name`: the name results are filed under. `register` sets it for built-ins; a plug-in
      may set it in its class body (letters, digits, `_`, `-`), else its class name is used.
      Every seed a learner uses is derived from the run seed and this name, so the same name
      and seed give the same numbers whichever way the learner is loaded;
    - `supervised`: trained on the task label (needs `n_classes`), one model per task;
    - `trainable`: False for frozen encoders (no optimisation at all; `loss` is not called);
    - `has_unimodal`: implements `embed_unimodal`;
    - `hyperparams`: names of class attributes a user may override per run with
      `--learner-set NAME.KEY=VALUE` (values are coerced to the type of the class default and
      set on the instance after construction);
    - `untrained_floor`, `relative_cost`: below.

    Three modalities. A learner that takes three sets `modalities = (2, 3)` (the default
    `(2,)` makes a three-modality run refuse it in one line). With three, `kinds` and
    `shapes` have three entries and the third modality comes as the keyword argument `x3`:
    `loss(x1, x2, y, idx, generator, x3=x3)`, `embed(x1, x2, x3=x3)`,
    `embed_unimodal(x1, x2, x3=x3) -> (z1, z2, z3)`, and `self.augment(x1, x2, generator,
    x3=x3)` returns three views. Two-modality runs call every method as above, without `x3`.

    Errors raised in `__init__`, `loss`, `embed`, `embed_unimodal` or `start_epoch`, and
    outputs outside this contract, become one-line LearnerErrors naming the learner; the
    run's other cells still finish (see `pid_bench.runner.run`).
    """

    #: the name results are filed under (set by `register`; a plug-in may set it)
    name: str = ""
    #: trained on the task label, so one model is trained per task
    supervised: bool = False
    #: False for frozen encoders (no optimisation at all)
    trainable: bool = True
    #: exposes `embed_unimodal`
    has_unimodal: bool = False
    #: the numbers of modalities the learner takes (three: see "Three modalities" above)
    modalities: tuple[int, ...] = (2,)
    #: class attributes a user may override per run (`--learner-set NAME.KEY=VALUE`)
    hyperparams: tuple[str, ...] = ()
    #: the registered learner that is this learner's architecture left untrained (its floor);
    #: `pid-bench check` fails a learner that falls back to it where the baseline was above it
    untrained_floor: str | None = None
    #: rough cost of a training step relative to Cross (benchmarks/bench_training.py); only
    #: orders parallel work longest first, never changes results
    relative_cost: float = 1.0
    #: the number of epochs of the current training, set by the training loop before the
    #: first epoch (for schedules over training, e.g. a loss weight ramped per epoch)
    total_epochs: int = 0
    #: set by the training loop for each batch when the run draws views from the generator
    _view_draw: Callable[..., tuple[Tensor, ...]] | None = None

    def __init__(
        self,
        kinds: tuple[str, ...],
        shapes: tuple[tuple[int, ...], ...],
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
        if len(kinds) not in self.modalities:
            raise ValueError(
                f"{type(self).__name__} takes {' or '.join(map(str, self.modalities))} "
                f"modalities, got {len(kinds)}"
            )
        self.aug1 = build_augment(kinds[0], aug)
        self.aug2 = build_augment(kinds[1], aug)
        if len(kinds) == 3:
            self.aug3 = build_augment(kinds[2], aug)

    def augment(
        self,
        x1: Tensor,
        x2: Tensor,
        generator: torch.Generator | None,
        x3: Tensor | None = None,
    ) -> tuple[Tensor, ...]:
        """One augmented view of the pair (of the triple, with `x3`).

        With generator views (during training, where the dataset has a view source and
        `AugConfig.views` is not `tensor`): a new view of the batch's rows drawn from the
        generative process (same content, new style). Otherwise each modality is augmented
        independently by the tensor augmentations.
        """
        xs = (x1, x2) if x3 is None else (x1, x2, x3)
        if self._view_draw is not None:
            return self._view_draw(*xs)
        augs = (self.aug1, self.aug2, getattr(self, "aug3", None))
        return tuple(a(x, generator) for a, x in zip(augs, xs, strict=False))

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


def check_hyperparams(
    cls: type[Learner], values: dict[str, str | float | int | bool], name: str | None = None
) -> dict:
    """Validate and coerce `--learner-set` overrides to the types of the class defaults.

    `name` is the learner's name in messages (default: `cls.name`).
    """
    name = name or cls.name or cls.__name__
    out = {}
    for key, raw in values.items():
        if key not in cls.hyperparams:
            accepted = ", ".join(f"{k}={getattr(cls, k)!r}" for k in cls.hyperparams) or "none"
            raise ValueError(
                f"learner {name!r} has no hyperparameter {key!r}; accepted: {accepted}"
            )
        default = getattr(cls, key)
        try:
            out[key] = coerce_value(raw, default)
        except ValueError as e:
            kind = "finite float" if "finite" in str(e) else type(default).__name__
            raise ValueError(
                f"learner {name!r} hyperparameter {key!r} takes a {kind}, got {raw!r}"
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
