"""Training throughput (samples/s) per learner on `bits`, and CoMM's step time over Cross's.

    python benchmarks/bench_training.py [--steps 30] [--batch-size 256] [--threads N]

Every learner uses the same encoders (ModelConfig defaults); a step is one optimiser step on
one batch including augmentations. The ratio CoMM / Cross is measured in the same run. Last,
the cost of generator views: seconds per epoch of the training loop on `content_style` with
views drawn by the generator against the tensor augmentations, for Cross and CoMM.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import generators
from pid_bench.config import AugConfig, ModelConfig
from pid_bench.learners import LEARNERS


def step_time(name: str, ds, batch: int, steps: int) -> float:
    """Median seconds per optimiser step (after two warm-up steps)."""
    torch.manual_seed(0)
    cls = LEARNERS[name]
    m = cls(ds.modality_kinds, ds.modality_shapes, ModelConfig(), AugConfig(), n_classes=4)
    if not m.trainable:
        return float("nan")
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    m.start_epoch(1, len(ds.train))
    x1 = torch.as_tensor(ds.train.x1[:batch])
    x2 = torch.as_tensor(ds.train.x2[:batch])
    y = torch.as_tensor(ds.train.labels["synergy"][:batch], dtype=torch.long)
    idx = torch.arange(batch)
    g = torch.Generator().manual_seed(0)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        loss, _ = m.loss(x1, x2, y, idx, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def epoch_time(name: str, ds, views: bool, batch: int, epochs: int = 2) -> float:
    """Seconds per epoch of `pid_bench.training.train` on `ds.train`."""
    from pid_bench.config import TrainConfig
    from pid_bench.runner import split_views
    from pid_bench.training import train

    torch.manual_seed(0)
    m = LEARNERS[name](ds.modality_kinds, ds.modality_shapes, ModelConfig(), AugConfig())
    t0 = time.perf_counter()
    cfg = TrainConfig(epochs=epochs, batch_size=batch)
    train(
        m,
        ds.train.x1,
        ds.train.x2,
        None,
        cfg,
        device=torch.device("cpu"),
        seed=0,
        progress=False,
        views=split_views(ds, ds.train) if views else None,
    )
    return (time.perf_counter() - t0) / epochs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = generators.make("bits", n_train=args.batch_size, n_test=16)
    print(f"bits, batch {args.batch_size}, torch threads {torch.get_num_threads()}")
    print(f"{'learner':<16}{'ms/step':>10}{'samples/s':>12}")
    res = {}
    for name in LEARNERS:
        t = step_time(name, ds, args.batch_size, args.steps)
        res[name] = t
        if np.isnan(t):
            print(f"{name:<16}{'(frozen)':>10}{'-':>12}")
        else:
            print(f"{name:<16}{1e3 * t:>10.1f}{args.batch_size / t:>12.0f}")
    print(f"CoMM / Cross step time: {res['comm'] / res['cross']:.2f}x (same encoders, same batch)")

    cs = generators.make("content_style", n_train=3072, n_test=16)
    print("\ncontent_style, 3,072 pairs, batch 128: seconds per epoch of the training loop")
    print(f"{'learner':<16}{'tensor aug':>12}{'gen. views':>12}{'ratio':>8}")
    for name in ("cross", "comm"):
        tensor = epoch_time(name, cs, False, 128)
        views = epoch_time(name, cs, True, 128)
        print(f"{name:<16}{tensor:>12.2f}{views:>12.2f}{views / tensor:>8.2f}")


if __name__ == "__main__":
    main()
