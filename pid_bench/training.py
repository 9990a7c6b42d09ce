"""The one training loop every learner uses."""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import ThreadpoolController
from tqdm.auto import tqdm

from generators.io import write_atomic
from pid_bench.config import TrainConfig
from pid_bench.learners.base import Learner, LearnerError, failed

#: `views(rows, rng) -> (x1, x2)`: new views of training rows drawn by the data's generator.
#: `views(rows, rng)`: a new view of each row, one array per modality
ViewFn = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, ...]]


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA when present, else CPU; `cuda` without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                "--device cuda was requested but no CUDA device is available; use auto or cpu"
            )
        return torch.device("cuda")
    raise ValueError(f"unknown device {name!r}; accepted: auto, cpu, cuda")


def _blame(learner: Learner, cfg: TrainConfig, xs: tuple[torch.Tensor, ...], what: str) -> str:
    """Why a loss is not finite, blaming what is at fault: NaN or inf in the batch's data, then
    a hyperparameter or learning rate that is not a finite number, then (only then) the
    learning rate's size."""
    label = learner_label(learner)
    bad = [
        name
        for name, x in ((f"x{i}", x) for i, x in enumerate(xs, start=1))
        if x.is_floating_point() and not bool(torch.isfinite(x).all())
    ]
    if bad:
        return (
            f"{label}: {what}: the batch's {' and '.join(bad)} hold NaN or inf values; the "
            "data are at fault, not the learner (check the dataset)"
        )
    hp = [
        f"{k}={v!r}"
        for k in type(learner).hyperparams
        if isinstance(v := getattr(learner, k, None), float) and not math.isfinite(v)
    ]
    if hp:
        return f"{label}: {what}: hyperparameter {', '.join(hp)} is not a finite number"
    if not math.isfinite(cfg.lr):
        return f"{label}: {what}: the learning rate {cfg.lr!r} is not a finite number"
    return f"{label}: {what}; try a lower learning rate (--lr ...)"


def learner_label(learner: Learner) -> str:
    """The name a learner's messages use."""
    return getattr(learner, "name", "") or type(learner).__name__


def _failed(learner: Learner, stage: str, e: BaseException) -> LearnerError:
    return failed(learner_label(learner), stage, e)


def _check_loss(learner: Learner, out: object) -> tuple[torch.Tensor, dict[str, float]]:
    """The (loss, terms) a learner's `loss` returned, or a LearnerError saying what is wrong."""
    name = learner_label(learner)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise LearnerError(
            f"learner {name!r}: loss must return (loss tensor, dict of terms), "
            f"got {type(out).__name__}"
        )
    loss, terms = out
    if not (isinstance(loss, torch.Tensor) and loss.numel() == 1):
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise LearnerError(f"learner {name!r}: loss must return a scalar tensor, got {shape}")
    if not loss.requires_grad:
        raise LearnerError(
            f"learner {name!r}: its loss has no gradient (computed without the parameters, or "
            "under no_grad); a frozen learner sets trainable = False"
        )
    try:
        terms = {str(k): float(v) for k, v in dict(terms).items()}
    except (TypeError, ValueError):
        raise LearnerError(
            f"learner {name!r}: the second value loss returns must be a dict of numbers"
        ) from None
    return loss, terms


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def _view_drawer(
    learner: Learner,
    views: ViewFn,
    rows: np.ndarray,
    rng: np.random.Generator,
    device: torch.device,
) -> Callable[..., tuple[torch.Tensor, ...]]:
    """`learner.augment` for one batch: new views of its rows from the generator (one per
    modality the learner passes)."""

    def draw(*xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if any(x.shape[0] != len(rows) for x in xs):
            raise LearnerError(
                f"learner {learner_label(learner)!r}: augment was called on {xs[0].shape[0]} "
                f"rows of a batch of {len(rows)}; generator views are drawn for the rows of "
                "the batch, so call it on the whole batch (or run with aug.views=tensor)"
            )
        # numpy's BLAS threads spin while torch's are busy: a draw that takes 1 ms alone took
        # 37 ms inside the loop with both pools at 2 threads (Cross: 4.1 s/epoch, 0.66 s with
        # this limit, 0.61 s with tensor augmentations; benchmarks/bench_training.py).
        with _blas_controller().limit(limits=1, user_api="blas"):
            vs = views(rows, rng)
        return tuple(
            torch.as_tensor(v, dtype=x.dtype, device=device) for v, x in zip(vs, xs, strict=True)
        )

    return draw


def make_optimizer(learner: Learner, cfg: TrainConfig, device: torch.device):
    """AdamW over the learner's parameters; the fused implementation where torch has it for
    the device (CPU from torch 2.4, CUDA): one kernel for all parameters instead of a loop
    over them, a training step about 10% faster on the small vector models
    (benchmarks/bench_training.py --options)."""
    kw = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    params = [p for p in learner.parameters() if p.requires_grad]
    fused_ok = device.type == "cuda" or (
        device.type == "cpu" and tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 4)
    )
    if fused_ok and all(p.is_floating_point() for p in params):
        return torch.optim.AdamW(params, fused=True, **kw)
    return torch.optim.AdamW(params, **kw)


def train(
    learner: Learner,
    x1: np.ndarray,
    x2: np.ndarray,
    y: np.ndarray | None,
    cfg: TrainConfig,
    *,
    device: torch.device,
    seed: int,
    log_path: Path | None = None,
    progress: bool = True,
    desc: str = "train",
    on_epoch: Callable[[int], None] | None = None,
    views: ViewFn | None = None,
    x3: np.ndarray | None = None,
) -> list[dict[str, float]]:
    """Train `learner` with AdamW on (x1, x2[, y]); returns the per-epoch log.

    `x3`: the third modality of a three-modality dataset, passed to `learner.loss` as the
    keyword `x3` (the learner must list 3 in `modalities`).

    `views(rows, rng) -> (x1, x2)`, where given, draws a new view of the training rows `rows`
    from the dataset's generative process; `learner.augment` then returns such views of the
    batch instead of augmenting tensors.

    `on_epoch(epoch)` is called every `cfg.probe_every` epochs before the last (learning
    curves). The log (epoch, mean loss, mean of each named term, seconds) is also written to
    `log_path` as CSV. A non-finite loss stops training with a clear error instead of
    producing NaN embeddings.
    """
    n = len(x1)
    if n == 0:
        raise ValueError("cannot train on an empty dataset")
    if learner.supervised and y is None:
        raise ValueError(f"learner {learner.name!r} is supervised and needs labels")
    learner.to(device)
    log: list[dict[str, float]] = []
    if not learner.trainable or cfg.epochs == 0:
        return log
    if not any(p.requires_grad for p in learner.parameters()):
        raise LearnerError(
            f"learner {learner_label(learner)!r} is trainable but has no parameters that "
            "require a gradient; a frozen learner sets trainable = False"
        )
    t1 = torch.as_tensor(x1, device=device)
    t2 = torch.as_tensor(x2, device=device)
    t3 = torch.as_tensor(x3, device=device) if x3 is not None else None
    ty = torch.as_tensor(y, dtype=torch.long, device=device) if y is not None else None
    order_gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed + 1)
    view_rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    opt = make_optimizer(learner, cfg, device)
    bs = min(cfg.batch_size, n)
    n_batches = max(n // bs, 1)  # drop the ragged last batch: contrastive losses want full batches
    bar = tqdm(range(1, cfg.epochs + 1), desc=desc, disable=not progress, leave=False)
    learner.total_epochs = cfg.epochs
    try:
        for epoch in bar:
            learner.train()
            try:
                learner.start_epoch(epoch, n)
            except Exception as e:  # the learner's own code, whatever it raises
                raise _failed(learner, "start_epoch", e) from e
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=order_gen).to(device)
            sums: dict[str, float] = {}
            for b in range(n_batches):
                idx = perm[b * bs : (b + 1) * bs]
                yb = ty[idx] if ty is not None else None
                if views is not None:
                    learner._view_draw = _view_drawer(
                        learner, views, idx.cpu().numpy(), view_rng, device
                    )
                xs = (t1[idx], t2[idx]) if t3 is None else (t1[idx], t2[idx], t3[idx])
                try:
                    if t3 is None:
                        out = learner.loss(xs[0], xs[1], yb, idx, aug_gen)
                    else:
                        out = learner.loss(xs[0], xs[1], yb, idx, aug_gen, x3=xs[2])
                except Exception as e:  # the learner's own code, whatever it raises
                    raise _failed(learner, "loss", e) from e
                loss, terms = _check_loss(learner, out)
                if not torch.isfinite(loss):
                    where = f"loss became {float(loss)} at epoch {epoch}, batch {b}"
                    raise LearnerError(_blame(learner, cfg, xs, where))
                opt.zero_grad(set_to_none=True)
                try:
                    loss.backward()
                except Exception as e:  # e.g. an in-place change of a tensor the graph needs
                    raise _failed(learner, "loss.backward()", e) from e
                opt.step()
                sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v
            row = {"epoch": epoch, **{k: v / n_batches for k, v in sums.items()}}
            row["seconds"] = time.perf_counter() - t0
            log.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}")
            if (
                on_epoch is not None
                and cfg.probe_every
                and epoch % cfg.probe_every == 0
                and epoch < cfg.epochs
            ):
                on_epoch(epoch)
    finally:
        learner._view_draw = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(dict.fromkeys(k for r in log for k in r))
        text = io.StringIO(newline="")
        w = csv.DictWriter(text, fieldnames=keys)
        w.writeheader()
        w.writerows(log)
        write_atomic(log_path, text.getvalue())
    return log


@torch.no_grad()
def embed(
    learner: Learner,
    x1: np.ndarray,
    x2: np.ndarray,
    device: torch.device,
    unimodal: bool = False,
    batch_size: int = 1024,
    x3: np.ndarray | None = None,
) -> np.ndarray | tuple[np.ndarray, ...]:
    """Frozen embeddings of (x1, x2) (with `x3`: of the triple) in eval mode, as float64 numpy
    arrays; `unimodal`: one array per modality.

    Anything the learner raises, an output that is not a (B, D) tensor per batch, and NaN or
    inf become a LearnerError naming the learner.
    """
    learner.eval()
    stage = "embed_unimodal" if unimodal else "embed"
    n_mod = 2 if x3 is None else 3
    kw = {} if x3 is None else {"x3": None}
    out: list = []
    for s in range(0, len(x1), batch_size):
        b1 = torch.as_tensor(x1[s : s + batch_size], device=device)
        b2 = torch.as_tensor(x2[s : s + batch_size], device=device)
        if x3 is not None:
            kw["x3"] = torch.as_tensor(x3[s : s + batch_size], device=device)
        try:
            z = learner.embed_unimodal(b1, b2, **kw) if unimodal else learner.embed(b1, b2, **kw)
        except Exception as e:  # the learner's own code, whatever it raises
            raise _failed(learner, stage, e) from e
        if unimodal:
            if not (isinstance(z, (tuple, list)) and len(z) == n_mod):
                want = "a pair (z1, z2)" if n_mod == 2 else "a triple (z1, z2, z3)"
                raise LearnerError(
                    f"learner {learner_label(learner)!r}: embed_unimodal must return {want}, "
                    f"got {type(z).__name__}"
                    + (f" of length {len(z)}" if isinstance(z, (tuple, list)) else "")
                )
            out.append(
                tuple(_check_z(learner, f"{stage} z{i + 1}", t, len(b1)) for i, t in enumerate(z))
            )
        else:
            out.append(_check_z(learner, stage, z, len(b1)))
    if unimodal:
        zs = tuple(torch.cat([o[i] for o in out]).double().cpu().numpy() for i in range(n_mod))
        for i, z in enumerate(zs):
            _check_finite(learner, f"{stage} z{i + 1}", z)
        return zs
    z = torch.cat(out).double().cpu().numpy()
    _check_finite(learner, stage, z)
    return z


def _check_z(learner: Learner, stage: str, z: object, rows: int) -> torch.Tensor:
    if not isinstance(z, torch.Tensor):
        raise LearnerError(
            f"learner {learner_label(learner)!r}: {stage} must return a torch.Tensor, "
            f"got {type(z).__name__}"
        )
    if z.ndim != 2 or z.shape[0] != rows or z.shape[1] == 0:
        raise LearnerError(
            f"learner {learner_label(learner)!r}: {stage} returned shape {tuple(z.shape)} for "
            f"{rows} pairs; expected ({rows}, D) with D >= 1"
        )
    if not (z.is_floating_point() or z.dtype in (torch.int32, torch.int64, torch.bool)):
        raise LearnerError(
            f"learner {learner_label(learner)!r}: {stage} returned dtype {z.dtype}; "
            "expected a real (float) tensor"
        )
    return z


def _check_finite(learner: Learner, stage: str, z: np.ndarray) -> None:
    bad = int((~np.isfinite(z)).sum())
    if bad:
        raise LearnerError(
            f"learner {learner_label(learner)!r}: {stage} returned {bad} NaN or inf values "
            f"(of {z.size})"
        )
