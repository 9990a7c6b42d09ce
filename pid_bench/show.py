"""A picture of an image dataset: sample pairs with their task labels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from generators.base import TASKS, BimodalDataset, Split
from generators.io import open_atomic

_TASK_SHORT = dict(zip(TASKS, ("R", "U1", "U2", "S"), strict=True))


def show_dataset(
    ds: BimodalDataset, out: str | Path, n: int = 8, split: str = "test", seed: int = 0
) -> Path:
    """Write a PNG grid of `n` random pairs (image 1 | image 2) of `split`, titled by labels.

    For vector data (`bits`, `gaussian`) it draws instead how the two synergy factors s1, s2
    co-occur in `train`, in each pretraining split and in `split` (`_show_synergy_pairs`).

    Titles give every task's label (R, U1, U2, S), by name where the generator lists names in
    `ds.params["label_names"]`, and the named latents (`ds.params["latent_names"]`) that no
    label already shows, such as colours. Needs an image generator: both modalities
    (n, C, H, W) with C = 1 or 3 and values in [0, 1]. Returns the path written.
    """
    if split not in ("train", "test") and split not in ds.pretrain:
        raise ValueError(
            f"unknown split {split!r}; accepted: train, test"
            + "".join(f", {k}" for k in ds.pretrain)
            + " (pretraining splits by task)"
        )
    if ds.modality_kinds == ("vector", "vector"):
        return _show_synergy_pairs(ds, out, split)
    if ds.modality_kinds == ("vector",) * 3:
        return _show_synergy_groups3(ds, out, split)
    if ds.modality_kinds != ("image", "image"):
        raise ValueError(
            f"show_dataset needs an image generator (both modalities (n, C, H, W)) or a vector "
            f"one; dataset {ds.name!r} has modalities of kind {ds.modality_kinds}"
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
    return _save(fig, out)


def factor_classes(latent: np.ndarray) -> np.ndarray:
    """Class index per sample of a vector generator's latent factor: the integer code of a
    0/1 bit group (bit 0 least significant, as `bits` labels it), or the sign bit [mean > 0]
    of a Gaussian latent (as `gaussian` labels it)."""
    lat = np.asarray(latent)
    if np.issubdtype(lat.dtype, np.integer):
        return lat @ (np.int64(1) << np.arange(lat.shape[1], dtype=np.int64))
    return (lat.mean(axis=1) > 0).astype(np.int64)


def _show_synergy_pairs(ds: BimodalDataset, out: str | Path, split: str) -> Path:
    """Heatmaps of the (s1, s2) class counts per split: uniform where the pairs are unbiased,
    a permutation matrix on a synergy pretraining split (s2 = pi(s1))."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(["train", *ds.pretrain, split]))
    splits = {n: ({"train": ds.train, "test": ds.test}.get(n) or ds.pretrain[n]) for n in names}
    for name, data in splits.items():
        if not {"s1", "s2"} <= set(data.latents):
            raise ValueError(
                f"show for vector data draws the synergy factors s1, s2; split {name!r} of "
                f"{ds.name!r} has latents {sorted(data.latents)}"
            )
    classes = {
        n: (factor_classes(d.latents["s1"]), factor_classes(d.latents["s2"]))
        for n, d in splits.items()
    }
    k = 1 + max(int(c.max()) for pair in classes.values() for c in pair)
    fig, axes = plt.subplots(1, len(names), figsize=(2.4 * len(names), 2.6), squeeze=False)
    for ax, (name, data) in zip(axes[0], splits.items(), strict=True):
        counts = np.zeros((k, k), dtype=np.int64)
        np.add.at(counts, classes[name], 1)
        ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1))
        if k <= 8:  # the counts themselves, so that unbiased cells do not read as a pattern
            for (i, j), c in np.ndenumerate(counts):
                dark = c > 0.6 * counts.max()
                ax.text(
                    j,
                    i,
                    str(c),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if dark else "black",
                )
        title = name if name in ("train", "test") else f"pretrain[{name!r}]"
        ax.set_title(f"{title}\nn = {len(data)}", fontsize=8)
        ax.set_xlabel("s2 class", fontsize=8)
        ax.set_ylabel("s1 class", fontsize=8)
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{ds.name}: how often each (s1, s2) pair occurs", fontsize=9)
    return _save(fig, out)


def _show_synergy_groups3(ds: BimodalDataset, out: str | Path, split: str) -> Path:
    """Three modalities: per synergy task (row), heatmaps of how its groups co-occur in
    `train`, in the task's pretraining split and in `split`: a pair's two groups (uniform when
    unbiased, a permutation matrix when tied), or the triple's (t1, t2) against t3."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from generators.bits import LABELS3

    tasks = [t for t in ds.tasks if t.startswith("synergy")]
    cols = list(dict.fromkeys(["train", *(["pretrain"] if ds.pretrain else []), split]))
    fig, axes = plt.subplots(
        len(tasks), len(cols), figsize=(2.4 * len(cols), 2.3 * len(tasks)), squeeze=False
    )
    for row, task in zip(axes, tasks, strict=True):
        factors = LABELS3[task][1:]
        for ax, col in zip(row, cols, strict=True):
            name = task if col == "pretrain" else col
            data = {"train": ds.train, "test": ds.test}.get(name) or ds.pretrain.get(name)
            if data is None:  # no pretraining split (synergy_pretrain="none")
                ax.axis("off")
                continue
            c = [factor_classes(data.latents[f]) for f in factors]
            k = 1 + max(int(v.max()) for v in c)
            rows_code = c[0] if len(c) == 2 else c[0] * k + c[1]
            counts = np.zeros((k if len(c) == 2 else k * k, k), dtype=np.int64)
            np.add.at(counts, (rows_code, c[-1]), 1)
            ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1), aspect="auto")
            title = name if name in ("train", "test") else f"pretrain[{name!r}]"
            ax.set_title(f"{task}: {title}\nn = {len(data)}", fontsize=7)
            ax.set_xlabel(f"{factors[-1]} class", fontsize=7)
            ax.set_ylabel(" x ".join(factors[:-1]) + " class", fontsize=7)
            ax.set_xticks(range(k))
            ax.set_yticks(range(0, counts.shape[0], max(1, counts.shape[0] // 8)))
            ax.tick_params(labelsize=6)
    fig.suptitle(
        f"{ds.name}, three modalities: how each synergy task's groups co-occur", fontsize=9
    )
    return _save(fig, out)


def _save(fig: Any, out: str | Path) -> Path:
    """Write `fig` as a PNG at `out` (creating its folder) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open_atomic(out) as f:
        fig.savefig(f, dpi=120, format=out.suffix.lstrip(".").lower() or "png")
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
