"""`content_style`: content bit groups mixed with per-sample style; views from the generator.

After the identifiability setting of von Kuegelgen et al. (NeurIPS 2021) and its multimodal
version (Daunhawer et al., ICLR 2023): each observation is a mixing of *content* (what the
labels read) and *style* (a nuisance drawn per sample), and a "view" of a sample keeps its
content and draws new style. The self-supervised learners here rest on exactly that assumption
about their augmentations; this generator makes it true, and can draw the views itself.

Content: the latent bit groups of `bits` (r held by both modalities, u1 and s1 by modality 1,
u2 and s2 by modality 2; `bits` bits each) and the same labels: redundancy = r, unique1 = u1,
unique2 = u2, synergy = s1 XOR s2. Each modality embeds each group it holds with its own fixed
random table (2**bits codes -> `content_dim` features, standardised over the codes); the
synergy groups are scaled by `synergy_scale`, because an XOR buried in heavy style is not
learnt even by a supervised learner otherwise (REFERENCES.md, "Content/style data").

Style: `style_dim` features per modality, i.i.d. N(0, `style_std`**2) per sample, independent
of everything else.

Mixing: modality i is f_i([content_i, style_i]) with f_i a fixed random orthogonal matrix when
`depth` = 0, or `depth` leaky-ReLU (slope 0.2) layers between random orthogonal matrices, scaled
so that the features have unit mean variance; plus observation noise of std `noise`. With
style variance large against content variance, a frozen random encoder's features are mostly
style and read the content poorly; a learner that finds the content subspace reads it exactly.

Views (`views`, a `ContentStyleViews`): a new view of a sample keeps each content group with
probability `view_keep` (else draws it anew, uniformly, in both modalities where the group is
shared) and draws new style and noise. `view_keep=1` gives label-preserving views; lower values
change the content too, down to `view_keep=0`, a view unrelated to its sample. Training uses
these views as its augmentation (`pid_bench.training`); the tensor augmentations of
`AugConfig` are the fallback for generators without views.

Synergy pretraining split (`synergy_pretrain="permutation"`, the default): as in `bits`,
`pretrain["synergy"]` holds pairs with s2 := pi(s1) for a permutation pi drawn from `seed`;
probes, label-trained learners and the true PID use the unbiased splits.

Three modalities (`modalities=3`): the groups, tasks, pretraining splits and lattice ground
truth of `bits` with three modalities (its module docstring), each group a content table as
here; modality i holds 5 groups (5 * `content_dim` + `style_dim` features), the pair and triple
groups scaled by `synergy_scale`, x16 by default (x8 with two). Two modalities (the default)
draw exactly what they drew before the option existed.

Ground truth: the labels are functions of the content groups, which are uniform and
independent, and style and noise are independent of them; the true PID is the exact BROJA
solve on the bit groups, as for `bits`.

Defaults (style std 5 over 192 dimensions, 8 content dimensions per group, synergy groups x8,
linear mixing), measured at the quick profile, seeds 0-2, linear probe, chance 0.25: the frozen
random encoders read 0.326 / 0.297 / 0.281 / 0.249 (R / U1 / U2 / S) and the supervised
ceiling 0.998 / 0.998 / 0.998 / 1.000. At synergy x4 the ceiling read 0.507 on synergy (seed
0), at style std 4 the floor 0.347 +- 0.015 on redundancy (reports/content_style/README.md).
With three modalities (seed 0, same profile) the triple XOR of groups scaled x8 read 0.485 for
the supervised ceiling (1.000 at 60 epochs); at x16, the three-modality default, the ceiling
reads 0.994-1.000 on all eight tasks and the floors 0.247-0.311 (seeds 0-2,
reports/three_modalities/).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._params import check_choice, check_float, check_int, check_sizes, stream
from ._truth import FACTORS, X1_FACTORS, X2_FACTORS, apply_label, exact_pid, n_label_classes
from .base import SYNERGY_PRETRAIN, TASKS, TASKS3, VIEW_BUILDERS, BimodalDataset, Split, register
from .bits import (
    BIAS_TARGET3,
    FACTORS3,
    LABELS,
    LABELS3,
    MAX_BITS,
    MAX_BITS3,
    TRIPLE_MAP,
    X3_FACTORS,
    _codes,
    bias_maps3,
    check_triple_map,
    draw_latents,
    draw_latents3,
    structure,
    structure3,
)

#: Default `synergy_scale` with two modalities, and with three: there a triple XOR of groups
#: scaled x8 reads 0.485 for the supervised ceiling at the quick profile, against 1.000 at x16
#: (module docstring, "Defaults").
SYNERGY_SCALE = 8.0
SYNERGY_SCALE3 = 16.0
#: Leaky-ReLU slope of the nonlinear mixing layers (`depth` > 0).
SLOPE = 0.2
#: Samples used to measure the feature scale of a nonlinear mixing (fixed, from its own stream).
_SCALE_SAMPLES = 4096


def _orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    # The sign fix makes q Haar-distributed rather than biased by the QR convention.
    return q * np.sign(np.diag(r))


@dataclass
class _Modality:
    """One modality's fixed generative map: content tables, mixing matrices, feature scale."""

    factors: tuple[str, ...]
    tables: dict[str, np.ndarray]  # factor -> (2**bits, content_dim), scale included
    mixing: list[np.ndarray]  # depth + 1 orthogonal (d, d) matrices
    scale: float  # divides the mixed features so that their mean variance is 1

    def render(self, codes: dict[str, np.ndarray], style: np.ndarray) -> np.ndarray:
        """Noise-free features (n, d) of content codes and style (n, style_dim)."""
        z = np.concatenate([self.tables[f][codes[f]] for f in self.factors] + [style], axis=1)
        h = z @ self.mixing[0]
        for m in self.mixing[1:]:
            h = np.where(h > 0, h, SLOPE * h) @ m
        return (h / self.scale).astype(np.float32)


@dataclass
class ContentStyleViews:
    """The generative process of a `content_style` dataset, which draws new views of samples.

    `draw(latents, rng)` takes the latents of some rows of a split (factor -> (n, bits) 0/1
    arrays, as `Split.latents` holds them) and returns a new view (x1, x2) of each row: content
    groups kept with probability `view_keep` (else drawn anew), style and noise drawn anew.
    """

    bits: int
    style_dim: int
    style_std: float
    noise: float
    view_keep: float
    modalities: tuple[_Modality, ...]

    def sample(
        self, latents: dict[str, np.ndarray], rng: np.random.Generator
    ) -> tuple[np.ndarray, ...]:
        """Observations (x1, x2) (x3 too with three modalities) of the given content latents,
        with new style and noise."""
        codes = {f: _codes(g) for f, g in latents.items()}
        n = len(next(iter(codes.values())))
        out = []
        for mod in self.modalities:
            style = rng.standard_normal((n, self.style_dim)) * self.style_std
            x = mod.render(codes, style)
            if self.noise > 0:
                x += np.float32(self.noise) * rng.standard_normal(x.shape, dtype=np.float32)
            out.append(x)
        return tuple(out)

    def view_latents(
        self, latents: dict[str, np.ndarray], rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """The content of a new view: each group of each row kept with probability
        `view_keep`, else drawn uniformly (a shared group changes in both modalities)."""
        if self.view_keep >= 1.0:
            return latents
        out = {}
        for f, g in latents.items():
            fresh = rng.integers(0, 2, size=g.shape, dtype=g.dtype)
            keep = rng.random(len(g)) < self.view_keep
            out[f] = np.where(keep[:, None], g, fresh)
        return out

    def draw(
        self, latents: dict[str, np.ndarray], rng: np.random.Generator
    ) -> tuple[np.ndarray, ...]:
        """A new view (x1, x2[, x3]) of each row whose latents are given."""
        return self.sample(self.view_latents(latents, rng), rng)


def _build_views(
    bits: int,
    content_dim: int,
    synergy_scale: float,
    style_dim: int,
    style_std: float,
    depth: int,
    noise: float,
    view_keep: float,
    seed: int,
    modalities: int = 2,
) -> ContentStyleViews:
    g = "content_style"
    k = 1 << bits
    held = (X1_FACTORS, X2_FACTORS) if modalities == 2 else X3_FACTORS
    d = len(held[0]) * content_dim + style_dim
    mods = []
    for m, factors in enumerate(held, start=1):
        rng = stream(seed, g, f"map{m}" if modalities == 2 else f"m3_map{m}")
        tables = {}
        for f in factors:
            t = rng.standard_normal((k, content_dim))
            # Standardised over the uniform codes: each content feature has mean 0, variance 1.
            t = (t - t.mean(axis=0)) / np.maximum(t.std(axis=0), 1e-12)
            tables[f] = t * (synergy_scale if _synergy_group(f) else 1.0)
        mixing = [_orthogonal(d, rng) for _ in range(depth + 1)]
        mods.append(_Modality(factors, tables, mixing, 1.0))
    views = ContentStyleViews(bits, style_dim, style_std, noise, view_keep, tuple(mods))
    for mod in mods:
        if depth == 0:
            # An orthogonal map keeps the total variance of [content, style].
            n_syn = sum(_synergy_group(f) for f in mod.factors)
            total = (
                (len(mod.factors) - n_syn) * content_dim
                + n_syn * content_dim * synergy_scale**2
                + style_dim * style_std**2
            )
            mod.scale = float(np.sqrt(total / d))
        else:
            rng = stream(seed, g, "scale" if modalities == 2 else "m3_scale")
            factors = FACTORS if modalities == 2 else FACTORS3
            lat = {f: rng.integers(0, 2, size=(_SCALE_SAMPLES, bits)) for f in factors}
            style = rng.standard_normal((_SCALE_SAMPLES, style_dim)) * style_std
            x = mod.render({f: _codes(v) for f, v in lat.items()}, style)
            mod.scale = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    return views


def _synergy_group(factor: str) -> bool:
    """A group a synergy label reads (scaled by `synergy_scale`): s1, s2; with three
    modalities the pair groups p.. and the triple groups t1-t3."""
    return factor.startswith(("s", "p", "t"))


def _split3(
    n: int, views: ContentStyleViews, rng: np.random.Generator, bias: dict | None = None
) -> Split:
    """`n` triples; `bias` ties one synergy task's groups (`bits.draw_latents3`)."""
    latents = draw_latents3(n, views.bits, rng, bias)
    xs = views.sample(latents, rng)
    codes = {f: _codes(g) for f, g in latents.items()}
    labels = {t: apply_label(LABELS3[t], codes) for t in TASKS3}
    return Split(x1=xs[0], x2=xs[1], x3=xs[2], labels=labels, latents=latents)


def _split(
    n: int, views: ContentStyleViews, rng: np.random.Generator, synergy_map: np.ndarray | None
) -> Split:
    """`n` pairs; with `synergy_map` (a permutation pi of the s-group classes), s2 := pi(s1)."""
    latents = draw_latents(n, views.bits, rng, synergy_map)
    x1, x2 = views.sample(latents, rng)
    codes = {f: _codes(g) for f, g in latents.items()}
    return Split(
        x1=x1, x2=x2, labels={t: apply_label(LABELS[t], codes) for t in TASKS}, latents=latents
    )


@register("content_style")
def generate(
    bits: int = 2,
    content_dim: int = 8,
    synergy_scale: float | None = None,
    style_dim: int = 192,
    style_std: float = 5.0,
    depth: int = 0,
    noise: float = 0.0,
    view_keep: float = 1.0,
    n_train: int = 10000,
    n_test: int = 2000,
    seed: int = 0,
    synergy_pretrain: str = "permutation",
    modalities: int = 2,
    triple_map: str = TRIPLE_MAP,
) -> BimodalDataset:
    """Content/style data: each modality has 3 * `content_dim` + `style_dim` features.

    `modalities=3`: three modalities holding the groups and tasks of `bits` with three
    modalities (module docstring), 5 * `content_dim` + `style_dim` features each.
    `synergy_scale` None: `SYNERGY_SCALE` (8) with two modalities, `SYNERGY_SCALE3` (16) with
    three. `triple_map` (three modalities): the synergy123 pretraining map, as in `bits`.

    `view_keep` is the probability that a view keeps each content group (1: views keep all the
    content; 0: views are unrelated to their sample). The generative map depends only on
    (`seed`, `bits`, `content_dim`, `synergy_scale`, `style_dim`, `style_std`, `depth`);
    `synergy_pretrain` ("permutation" or "none") adds or drops the biased synergy pretraining
    split, and `train` and `test` are the same arrays either way.
    """
    g = "content_style"
    modalities = check_int(g, "modalities", modalities, low=2, high=3)
    triple_map = check_triple_map(g, triple_map, modalities)
    bits = check_int(g, "bits", bits, low=1, high=MAX_BITS if modalities == 2 else MAX_BITS3)
    content_dim = check_int(g, "content_dim", content_dim, low=1)
    if synergy_scale is None:
        synergy_scale = SYNERGY_SCALE if modalities == 2 else SYNERGY_SCALE3
    synergy_scale = check_float(g, "synergy_scale", synergy_scale, low=0.0)
    style_dim = check_int(g, "style_dim", style_dim, low=0)
    style_std = check_float(g, "style_std", style_std, low=0.0)
    depth = check_int(g, "depth", depth, low=0, high=8)
    noise = check_float(g, "noise", noise, low=0.0)
    view_keep = check_float(g, "view_keep", view_keep, low=0.0, high=1.0)
    n_train, n_test, seed = check_sizes(g, n_train, n_test, seed)
    synergy_pretrain = check_choice(g, "synergy_pretrain", synergy_pretrain, SYNERGY_PRETRAIN)
    if synergy_scale == 0.0:
        raise ValueError(
            f"generator {g!r}: synergy_scale must be > 0 (0 erases s1 and s2 from the data)"
        )

    views = _build_views(
        bits, content_dim, synergy_scale, style_dim, style_std, depth, noise, view_keep, seed,
        modalities,
    )  # fmt: skip
    params = {
        "bits": bits,
        "content_dim": content_dim,
        "synergy_scale": synergy_scale,
        "style_dim": style_dim,
        "style_std": style_std,
        "depth": depth,
        "noise": noise,
        "view_keep": view_keep,
        "n_train": n_train,
        "n_test": n_test,
        "seed": seed,
        "synergy_pretrain": synergy_pretrain,
    }
    if modalities == 3:
        return _generate3(views, {**params, "triple_map": triple_map})
    train = _split(n_train, views, stream(seed, g, "train"), None)
    test = _split(n_test, views, stream(seed, g, "test"), None)
    pretrain = {}
    extra: dict = {}
    if synergy_pretrain == "permutation":
        pi = stream(seed, g, "synergy_map").permutation(1 << bits)
        pretrain["synergy"] = _split(n_train, views, stream(seed, g, "pretrain_synergy"), pi)
        extra["synergy_map"] = [int(c) for c in pi]

    st = structure(bits)
    return BimodalDataset(
        name=g,
        params={
            "bits": bits,
            "content_dim": content_dim,
            "synergy_scale": synergy_scale,
            "style_dim": style_dim,
            "style_std": style_std,
            "depth": depth,
            "noise": noise,
            "view_keep": view_keep,
            "n_train": n_train,
            "n_test": n_test,
            "seed": seed,
            "synergy_pretrain": synergy_pretrain,
            **extra,
        },
        train=train,
        test=test,
        true_pid={t: exact_pid(st, LABELS[t]) for t in TASKS},
        n_classes={t: n_label_classes(st, LABELS[t]) for t in TASKS},
        pretrain=pretrain,
        views=views,
    )


def _generate3(views: ContentStyleViews, params: dict) -> BimodalDataset:
    """The three-modality dataset of `generate` (its parameters checked there)."""
    g, seed, bits, n_train = "content_style", params["seed"], params["bits"], params["n_train"]
    train = _split3(n_train, views, stream(seed, g, "m3_train"))
    test = _split3(params["n_test"], views, stream(seed, g, "m3_test"))
    pretrain, extra = {}, {}
    if params["synergy_pretrain"] == "permutation":
        maps = bias_maps3(bits, seed, g, params["triple_map"])
        for task, table in maps.items():
            rng = stream(seed, g, f"m3_pretrain_{task}")
            pretrain[task] = _split3(n_train, views, rng, {BIAS_TARGET3[task]: table})
        extra["synergy_maps"] = {t: [int(c) for c in m] for t, m in maps.items()}
    st = structure3(bits)
    return BimodalDataset(
        name=g,
        params={**params, "modalities": 3, **extra},
        train=train,
        test=test,
        true_pid={t: exact_pid(st, LABELS3[t]) for t in TASKS3},
        n_classes={t: n_label_classes(st, LABELS3[t]) for t in TASKS3},
        pretrain=pretrain,
        views=views,
    )


def views_from_params(params: dict) -> ContentStyleViews:
    """The view source of a dataset from its recorded parameters (a loaded `.npz` file)."""
    keys = ("bits", "content_dim", "synergy_scale", "style_dim", "style_std", "depth", "noise")
    return _build_views(
        *(params[k] for k in keys),
        params["view_keep"],
        params["seed"],
        int(params.get("modalities", 2)),
    )


VIEW_BUILDERS["content_style"] = views_from_params
