"""`trifeature`: bimodal Trifeature images (CoMM's version of Hermann & Lampinen 2020).

An image shows one of 10 shapes, filled with one of 10 textures, in one of 10 colours, on a grey
background (`generators._trifeature_render` draws it, and documents the texture scale and how it
compares with the authors' images; its names are importable from here too).

A sample is a pair (image 1, image 2) with the same shape and otherwise independent texture and
colour. Labels: redundancy = shape, unique1 = texture of image 1, unique2 = texture of image 2,
synergy = [colour of image 2 == M(texture of image 1)] for a random one-to-one map M from textures
to colours (drawn from `seed`); about 10% of unbiased pairs are positive.

Split by combination: the 1000 (shape, texture, colour) combinations are split 80/20 with the
fixed `split_seed`, and every image of a split uses only that split's combinations. The split is
*balanced*: for every shape, the 20 held-out (texture, colour) cells are the union of two
disjoint random permutation matrices, so within a shape every texture and every colour appears
in exactly 8 train and 2 test combinations. This keeps each split's latent distribution exactly
as the tasks intend (texture and colour independent of shape, the synergy label independent of
either image alone), so the ground truth holds exactly on the distribution the images are drawn
from, not only on an idealised one. A plain random split would leak a little information about
the synergy label into each single image (see `true_pid_from_split`).

`pretrain["synergy"]` holds training pairs biased to satisfy the map (colour 2 = M(texture 1) for
every pair), as CoMM trains its synergy run; `train` and `test` stay unbiased for probing.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from estimators import pid
from estimators._result import PIDResult

from ._params import check_int, check_sizes, stream
from ._trifeature_render import (
    AUTHORS_TEXTURE_PERIOD,
    BACKGROUND,
    COLOUR_RGB,
    COLOURS,
    DARK,
    MAX_TEXTURE_PERIOD,
    MIN_PERIOD_PIXELS,
    N_FEATURE,
    SHAPE_SCALE,
    SHAPES,
    TEXTURE_PERIOD,
    TEXTURES,
    check_texture_period,
    render,
)
from .base import TASKS, BimodalDataset, Split, register

__all__ = [
    "AUTHORS_TEXTURE_PERIOD",
    "BACKGROUND",
    "COLOURS",
    "COLOUR_RGB",
    "DARK",
    "FACTORS",
    "MAX_OFFSET",
    "MAX_ROTATION",
    "MAX_TEXTURE_PERIOD",
    "MIN_PERIOD_PIXELS",
    "N_FEATURE",
    "SHAPES",
    "SHAPE_SCALE",
    "TEST_PER_ROW",
    "TEXTURES",
    "TEXTURE_PERIOD",
    "check_texture_period",
    "combination_split",
    "latent_joint",
    "render",
    "synergy_map",
    "trifeature",
    "true_pid_from_split",
]

#: Latent factors of a pair, in the order of the enumerated joint (`latent_joint`).
FACTORS: tuple[str, ...] = ("shape", "texture1", "colour1", "texture2", "colour2")
#: Largest offset of the shape centre from the image centre, in half image widths.
MAX_OFFSET = 0.2
MAX_ROTATION = 45.0
#: Held-out (texture, colour) cells per shape and per texture (and per colour): 2 of 10 = 20%.
TEST_PER_ROW = 2


# --------------------------------------------------------------------------- split and sampling


def combination_split(split_seed: int = 0) -> np.ndarray:
    """Boolean (shape, texture, colour) array, True for the 800 training combinations.

    Per shape, the 200 test combinations are the union of TEST_PER_ROW disjoint random
    permutation matrices (texture -> colour), so every texture and every colour keeps the same
    number of combinations in each split.
    """
    rng = stream(split_seed, "trifeature", "combination_split")
    train = np.ones((N_FEATURE,) * 3, dtype=bool)
    rows = np.arange(N_FEATURE)
    for s in range(N_FEATURE):
        used = np.zeros((N_FEATURE, N_FEATURE), dtype=bool)
        for _ in range(TEST_PER_ROW):
            # Rejection sampling of a permutation avoiding the cells already held out: a few
            # tries on average (about e for the second of two).
            while True:
                perm = rng.permutation(N_FEATURE)
                if not used[rows, perm].any():
                    break
            used[rows, perm] = True
        train[s] = ~used
    return train


def synergy_map(seed: int) -> np.ndarray:
    """The one-to-one map M from texture index to colour index, drawn from `seed`."""
    return stream(seed, "trifeature", "synergy_map").permutation(N_FEATURE)


def _sample_cells(
    allowed: np.ndarray, shape: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(texture, colour) uniform over the allowed cells of each image's shape."""
    cells = [np.flatnonzero(allowed[s]) for s in range(N_FEATURE)]
    counts = np.array([len(c) for c in cells])
    table = np.zeros((N_FEATURE, counts.max()), dtype=np.int64)
    for s, c in enumerate(cells):
        table[s, : len(c)] = c
    pick = np.floor(rng.random(len(shape)) * counts[shape]).astype(np.int64)
    flat = table[shape, pick]
    return flat // N_FEATURE, flat % N_FEATURE


def _sample_textures_for_colour(
    allowed: np.ndarray, shape: np.ndarray, colour: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A texture uniform over those allowed with each image's (shape, colour)."""
    ok = allowed.transpose(0, 2, 1)  # [shape, colour, texture]
    counts = ok.sum(axis=2)
    # Rank of the chosen texture among the allowed ones, then its index by cumulative count.
    rank = np.floor(rng.random(len(shape)) * counts[shape, colour]).astype(np.int64)
    cum = np.cumsum(ok[shape, colour], axis=1)
    return (cum <= rank[:, None]).sum(axis=1).astype(np.int64)


def _labels(latents: dict[str, np.ndarray], m: np.ndarray) -> dict[str, np.ndarray]:
    """Every task's label from the latents: the one place labels are defined."""
    return {
        "redundancy": latents["shape"].astype(np.int64),
        "unique1": latents["texture1"].astype(np.int64),
        "unique2": latents["texture2"].astype(np.int64),
        "synergy": (latents["colour2"] == m[latents["texture1"]]).astype(np.int64),
    }


def _sample_split(
    n: int,
    allowed: np.ndarray,
    m: np.ndarray,
    size: int,
    rng: np.random.Generator,
    biased: bool = False,
    texture_period: float = TEXTURE_PERIOD,
) -> Split:
    # Every draw is independent of `size`, so the same seed gives the same scenes (latents,
    # poses, labels) at every image size. The pose latents are kept so that the images can be
    # re-rendered from the latents alone.
    shape = rng.integers(0, N_FEATURE, size=n)
    t1, c1 = _sample_cells(allowed, shape, rng)
    if biased:
        c2 = m[t1]
        t2 = _sample_textures_for_colour(allowed, shape, c2, rng)
    else:
        t2, c2 = _sample_cells(allowed, shape, rng)
    latents: dict[str, np.ndarray] = {
        "shape": shape,
        "texture1": t1,
        "colour1": c1,
        "texture2": t2,
        "colour2": c2,
    }
    images = []
    for i, (t, c) in enumerate(((t1, c1), (t2, c2)), start=1):
        rot = rng.uniform(-MAX_ROTATION, MAX_ROTATION, size=n)
        pos = rng.uniform(-MAX_OFFSET, MAX_OFFSET, size=(n, 2))
        trot = rng.uniform(-MAX_ROTATION, MAX_ROTATION, size=n)
        phase = rng.random((n, 2))
        latents[f"rotation{i}"] = rot
        latents[f"position{i}"] = pos
        latents[f"texture_rotation{i}"] = trot
        latents[f"texture_phase{i}"] = phase
        images.append(
            render(shape, t, c, rot, pos, trot, phase, size, texture_period=texture_period)
        )
    return Split(x1=images[0], x2=images[1], labels=_labels(latents, m), latents=latents)


# --------------------------------------------------------------------------- ground truth


def latent_joint(
    task: str,
    x1: tuple[str, ...],
    x2: tuple[str, ...],
    split_seed: int = 0,
    seed: int = 0,
    split: str = "train",
) -> np.ndarray:
    """Exact p[x1, x2, y] of the factor tuples `x1`, `x2` and task `task`'s label.

    Enumerates the 10**5 pair latents (shape, texture1, colour1, texture2, colour2) with their
    exact probabilities under the generator's sampling from `split` ("train" or "test"): shape
    uniform, then (texture, colour) of each image independently uniform over the split's
    combinations for that shape. A factor tuple is coded row-major (first factor slowest).
    """
    for f in (*x1, *x2):
        if f not in FACTORS:
            raise ValueError(f"unknown factor {f!r}; accepted: {', '.join(FACTORS)}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; accepted: {', '.join(TASKS)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    allowed = combination_split(split_seed)
    if split == "test":
        allowed = ~allowed
    cond = allowed / allowed.sum(axis=(1, 2), keepdims=True)  # p(texture, colour | shape)
    prob = (
        cond[:, :, :, None, None] * cond[:, None, None, :, :] / N_FEATURE
    ).ravel()  # [s, t1, c1, t2, c2]
    codes = dict(zip(FACTORS, np.indices((N_FEATURE,) * 5).reshape(5, -1), strict=True))
    y = _labels(codes, synergy_map(seed))[task]

    def code(factors: tuple[str, ...]) -> np.ndarray:
        out = np.zeros(prob.size, dtype=np.int64)
        for f in factors:
            out = out * N_FEATURE + codes[f]
        return out

    n_y = int(y.max()) + 1
    shape = (N_FEATURE ** len(x1), N_FEATURE ** len(x2), n_y)
    flat = np.ravel_multi_index((code(x1), code(x2), y), shape)
    return np.bincount(flat, weights=prob, minlength=int(np.prod(shape))).reshape(shape)


def _conditional_independent(p_xy: np.ndarray, coarse: np.ndarray, tol: float = 1e-12) -> bool:
    """Whether p(y | x) == p(y | coarse(x)) for every x with p(x) > 0."""
    px = p_xy.sum(axis=1)
    pc = np.zeros((coarse.max() + 1, p_xy.shape[1]))
    np.add.at(pc, coarse, p_xy)
    pcy = pc / np.maximum(pc.sum(axis=1, keepdims=True), 1e-300)
    keep = px > 0
    return bool(np.all(np.abs(p_xy[keep] / px[keep, None] - pcy[coarse[keep]]) <= tol))


def _statistics(task: str, split_seed: int, seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Factor tuples T1, T2 on which the task's PID equals that of the full pair latents."""
    if task == "redundancy":
        return ("shape",), ("shape",)
    if task == "unique1":
        return ("texture1",), ("shape",)
    if task == "unique2":
        return ("shape",), ("texture2",)
    # Synergy: y reads (texture1, colour2), and given the shape each image is independent of
    # the other, so (shape, texture1) and (shape, colour2) are always sufficient. The shape can
    # be dropped as well when y does not depend on it given the texture (colour), which the
    # balanced split guarantees; check it rather than assume it.
    t1, t2 = ("shape", "texture1"), ("shape", "colour2")
    p1 = latent_joint(task, t1, ("shape",), split_seed, seed).sum(axis=1)
    p2 = latent_joint(task, ("shape",), t2, split_seed, seed).sum(axis=0)
    drop = np.arange(N_FEATURE * N_FEATURE) % N_FEATURE
    if _conditional_independent(p1, drop) and _conditional_independent(p2, drop):
        return ("texture1",), ("colour2",)
    return t1, t2


@lru_cache(maxsize=64)
def true_pid_from_split(task: str, split_seed: int = 0, seed: int = 0) -> PIDResult:
    """BROJA PID, in bits, of (image 1's latents, image 2's latents; task label).

    Image i's latents are (shape, texture_i, colour_i) under the exact training distribution
    (`latent_joint`); rotations, positions and texture phases are independent of everything
    else and change nothing. The full joint has 1000 x 1000 x K cells, so it is solved on
    statistics T_i of each modality's latents X_i (`_statistics`), which gives the same atoms:

    If Y is independent of X1 given T1 = f(X1), the BROJA atoms of (X1, X2; Y) and (T1, X2; Y)
    have the same I(Y; X1), and the same minimum of I_q(Y; X1 | X2) over joints q with p's
    (X1, Y) and (X2, Y) marginals: coarsening any feasible q to T1 is feasible and cannot
    increase it, and any feasible r on (T1, X2, Y) extends to q = r(t1, x2, y) p(x1 | t1), which
    is feasible with the same value. With the same for X2, and (T1, T2) sufficient for Y from
    (X1, X2) jointly (so I(Y; X1, X2) is kept and with it the synergy), every atom is kept.
    Every statistic used reads all the factors its label depends on, and holds Y independent
    of the rest of its image's latents (checked for the synergy task, by construction for the
    others: given the shape the two images are independent).
    """
    t1, t2 = _statistics(task, split_seed, seed)
    return pid(latent_joint(task, t1, t2, split_seed, seed), measure="broja")


# --------------------------------------------------------------------------- generator


@register("trifeature")
def trifeature(
    size: int = 32,
    n_train: int = 10000,
    n_test: int = 4096,
    seed: int = 0,
    split_seed: int = 0,
    texture_period: float = TEXTURE_PERIOD,
) -> BimodalDataset:
    """Bimodal Trifeature pairs of `size` x `size` RGB images.

    `seed` draws the synergy map and every sample; `split_seed` fixes the 80/20 combination
    split (kept fixed across seeds, as a benchmark split is). Train, test and the biased
    synergy pretraining split come from independent streams, so `n_train` does not change the
    test set. `texture_period` is in half image widths (AUTHORS_TEXTURE_PERIOD = 10 / 112 is
    the authors' 10 pixels at 224 x 224; module docstring); it changes the pixels only, not
    the scenes or labels.
    """
    g = "trifeature"
    size = check_int(g, "size", size, low=16)
    n_train, n_test, seed = check_sizes(g, n_train, n_test, seed)
    split_seed = check_int(g, "split_seed", split_seed, low=0)
    texture_period = check_texture_period(texture_period, size)

    allowed = combination_split(split_seed)
    m = synergy_map(seed)
    kw = {"texture_period": texture_period}
    train = _sample_split(n_train, allowed, m, size, stream(seed, g, "train"), **kw)
    test = _sample_split(n_test, ~allowed, m, size, stream(seed, g, "test"), **kw)
    pretrain = _sample_split(
        n_train, allowed, m, size, stream(seed, g, "pretrain_synergy"), biased=True, **kw
    )
    return BimodalDataset(
        name=g,
        params={
            "size": size,
            "n_train": n_train,
            "n_test": n_test,
            "seed": seed,
            "split_seed": split_seed,
            "texture_period": texture_period,
            "synergy_map": [int(c) for c in m],
            "label_names": {
                "redundancy": SHAPES,
                "unique1": TEXTURES,
                "unique2": TEXTURES,
                "synergy": ("no", "yes"),
            },
            "latent_names": {
                "shape": SHAPES,
                "texture1": TEXTURES,
                "colour1": COLOURS,
                "texture2": TEXTURES,
                "colour2": COLOURS,
            },
        },
        train=train,
        test=test,
        true_pid={t: true_pid_from_split(t, split_seed, seed) for t in TASKS},
        n_classes={t: 2 if t == "synergy" else N_FEATURE for t in TASKS},
        pretrain={"synergy": pretrain},
    )
