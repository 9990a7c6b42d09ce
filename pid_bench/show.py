"""A picture of an image dataset: sample pairs with their task labels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from generators.base import TASKS, BimodalDataset, Split

_TASK_SHORT = {"redundancy": "R", "unique1": "U1", "unique2": "U2", "synergy": "S"}


def show_dataset(
    ds: BimodalDataset, out: str | Path, n: int = 8, split: str = "test", seed: int = 0
) -> Path:
    """Write a PNG grid of `n` random pairs (image 1 | image 2) of `split`, titled by labels.

    Titles give every task's label (R, U1, U2, S), by name where the generator lists names in
    `ds.params["label_names"]`, and the named latents (`ds.params["latent_names"]`) that no
    label already shows, such as colours. Needs an image generator: both modalities
    (n, C, H, W) with C = 1 or 3 and values in [0, 1]. Returns the path written.
    """
    if ds.modality_kinds != ("image", "image"):
        raise ValueError(
            f"show_dataset needs an image generator (both modalities (n, C, H, W)); dataset "
            f"{ds.name!r} has modalities of kind {ds.modality_kinds}"
        )
    if split not in ("train", "test") and split not in ds.pretrain:
        raise ValueError(
            f"unknown split {split!r}; accepted: train, test"
            + "".join(f", {k}" for k in ds.pretrain)
            + " (pretraining splits by task)"
        )
    if n < 1:
        raise ValueError(f"n must be a positive number of pairs, got {n}")
    data = (
        {"train": ds.train, "test": ds.test}[split]
        if split in ("train", "test")
        else ds.pretrain[split]
    )
    if len(data) == 0:
        raise ValueError(f"split {split!r} of dataset {ds.name!r} is empty")
    channels = data.x1.shape[1], data.x2.shape[1]
    if any(c not in (1, 3) for c in channels):
        raise ValueError(f"show_dataset shows 1- or 3-channel images, got channels {channels}")

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(data), size=min(n, len(data)), replace=False))
    label_names: dict[str, Sequence[str]] = ds.params.get("label_names", {})
    latent_names: dict[str, Sequence[str]] = ds.params.get("latent_names", {})
    extra = [k for k in latent_names if k in data.latents and not _shown(k, data)]

    cols = min(4, len(idx))
    rows = math.ceil(len(idx) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 1.75 * rows + 0.3), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), idx, strict=False):
        ax.imshow(_pair(data.x1[i], data.x2[i]), interpolation="nearest")
        tasks = [t for t in TASKS if t in data.labels]
        line1 = "  ".join(
            f"{_TASK_SHORT[t]} {_name(label_names.get(t), data.labels[t][i])}" for t in tasks
        )
        line2 = "  ".join(
            f"{_short(k)} {_name(latent_names[k], data.latents[k][i])}" for k in extra
        )
        ax.set_title(line1 + ("\n" + line2 if line2 else ""), fontsize=7)
    fig.suptitle(f"{ds.name} ({split}): image 1 | image 2", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two (C, H, W) images side by side as one (H, W1 + gap + W2, 3) RGB array."""

    def rgb(x: np.ndarray) -> np.ndarray:
        x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0).transpose(1, 2, 0)
        return np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x

    a, b = rgb(a), rgb(b)
    height = max(a.shape[0], b.shape[0])
    gap = max(1, a.shape[1] // 16)
    canvas = np.ones((height, a.shape[1] + gap + b.shape[1], 3), dtype=np.float32)
    canvas[: a.shape[0], : a.shape[1]] = a
    canvas[: b.shape[0], a.shape[1] + gap :] = b
    return canvas


def _name(names: Sequence[str] | None, value: Any) -> str:
    v = int(np.asarray(value).item()) if np.ndim(value) == 0 else value
    if names is not None and isinstance(v, int) and 0 <= v < len(names):
        return str(names[v])
    return str(v)


def _short(key: str) -> str:
    """`colour2` -> `c2`: first letter and any trailing digits."""
    digits = key[len(key.rstrip("0123456789")) :]
    return key[0] + digits


def _shown(key: str, data: Split) -> bool:
    """Whether a named latent equals some task label (so the title shows it already)."""
    lat = data.latents[key]
    return any(lat.shape == y.shape and np.array_equal(lat, y) for y in data.labels.values())
