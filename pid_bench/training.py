"""The one training loop every learner uses."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from pid_bench.config import TrainConfig
from pid_bench.learners.base import Learner


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
) -> list[dict[str, float]]:
    """Train `learner` with AdamW on (x1, x2[, y]); returns the per-epoch log.

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
    t1 = torch.as_tensor(x1, device=device)
    t2 = torch.as_tensor(x2, device=device)
    ty = torch.as_tensor(y, dtype=torch.long, device=device) if y is not None else None
    order_gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed + 1)
    opt = torch.optim.AdamW(learner.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    bs = min(cfg.batch_size, n)
    n_batches = max(n // bs, 1)  # drop the ragged last batch: contrastive losses want full batches
    bar = tqdm(range(1, cfg.epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        learner.train()
        learner.start_epoch(epoch, n)
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=order_gen).to(device)
        sums: dict[str, float] = {}
        for b in range(n_batches):
            idx = perm[b * bs : (b + 1) * bs]
            yb = ty[idx] if ty is not None else None
            loss, terms = learner.loss(t1[idx], t2[idx], yb, idx, aug_gen)
            if not torch.isfinite(loss):
                raise RuntimeError(
                    f"{learner.name}: loss became {float(loss)} at epoch {epoch}, batch {b}; "
                    "try a lower learning rate (--set lr=...)"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
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
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(dict.fromkeys(k for r in log for k in r))
        with open(log_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(log)
    return log


@torch.no_grad()
def embed(
    learner: Learner,
    x1: np.ndarray,
    x2: np.ndarray,
    device: torch.device,
    unimodal: bool = False,
    batch_size: int = 1024,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Frozen embeddings of (x1, x2) in eval mode, as float64 numpy arrays."""
    learner.eval()
    out: list = []
    for s in range(0, len(x1), batch_size):
        b1 = torch.as_tensor(x1[s : s + batch_size], device=device)
        b2 = torch.as_tensor(x2[s : s + batch_size], device=device)
        out.append(learner.embed_unimodal(b1, b2) if unimodal else learner.embed(b1, b2))
    if unimodal:
        z1 = torch.cat([o[0] for o in out]).double().cpu().numpy()
        z2 = torch.cat([o[1] for o in out]).double().cpu().numpy()
        return z1, z2
    z = torch.cat(out).double().cpu().numpy()
    if not np.isfinite(z).all():
        raise RuntimeError(f"{learner.name}: embeddings contain NaN or inf")
    return z
