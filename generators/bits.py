"""`bits`: groups of uniform bits seen through a fixed random nonlinear embedding per modality.

Latent bit groups, each `bits` independent uniform bits: r (held by both modalities), u1, s1
(modality 1 only), u2, s2 (modality 2 only). Modality 1 holds (r, u1, s1), modality 2 holds
(r, u2, s2). A group's class index is sum_k bit_k 2**k (bit 0 least significant).

Labels (2**bits classes each): redundancy = r, unique1 = u1, unique2 = u2,
synergy = s1 XOR s2 (bitwise), so each task isolates one PID atom of H(Y) = `bits` bits.

Each modality maps its held bits, as +-1, through a fixed random two-layer tanh network to
`dim` features, standardised over the uniform distribution of its inputs, plus Gaussian noise
of std `noise`. Every held bit stays readable by a nonlinear probe, but because each feature
depends on one modality's bits only, the cross-modal XOR cannot be read linearly from
concat(x1, x2).

Synergy pretraining split (`synergy_pretrain="permutation"`, the default): `pretrain["synergy"]`
holds pairs drawn as the training split is, except that s2 := pi(s1) for a fixed random
permutation pi of the 2**bits classes (drawn from `seed`). This is the device of CoMM's own
Trifeature synergy run (see `trifeature`): a self-supervised learner sees no labels, so the only
way its pretraining data can carry the cross-modal dependency that the synergy label reads is in
the pairs themselves. On the unbiased split s1 and s2 are independent, and a contrastive
objective has nothing that ties them; on the biased split, matching s1 with s2 is what tells a
pair from the other pairs of a batch. The probes still read the unbiased `train`/`test` splits,
where the label is purely synergistic, and the true PID is computed on that unbiased latent
distribution. Label-trained learners train on `train` (on the biased split the synergy label
s1 XOR pi(s1) is a function of x1 alone). `synergy_pretrain="none"` drops the split, so that
self-supervised learners pretrain on `train` for every task, as before.

Three modalities (`modalities=3`): groups r (held by all three), u1, u2, u3 (one modality
each), a pair of groups per pair of modalities (p12_1 held by modality 1 and p12_2 by modality
2; p13_1, p13_3; p23_2, p23_3) and one group per modality for the triple (t1, t2, t3). Modality i
holds r, u_i, its two pair groups and t_i, five groups. Tasks (`TASKS3`), each one node of the
Williams-Beer lattice: redundancy = r ("1|2|3"), unique_i = u_i ("i"), synergy12 = p12_1 XOR
p12_2 ("12"), synergy13, synergy23, synergy123 = t1 XOR t2 XOR t3 ("123"). The true PID of each
is the exact I_min lattice PID of the latent joint (`estimators.lattice`). Pretraining splits,
one per synergy task: the pair's second group a fixed permutation of its first (p12_2 :=
pi12(p12_1), ...), and for synergy123 t3 := g(t1, t2) for a fixed map g: a random Latin
square (`triple_map="latin"`, the default: t3 independent of t1 and of t2, determined by both,
the pairwise-independent case of Symile's XOR data) or a random table (`triple_map="table"`,
the only map before git 2c0a693: it leaves t3 pairwise dependent on t1 and on t2, so pairwise
objectives can learn the groups from pairs; reports/three_modalities/). `bits` is at most
`MAX_BITS3` (5 groups of `bits` bits per modality are tabulated). Two modalities (the default)
draw exactly what they drew before the option existed.

Measured (`pid-bench run --generator bits --interaction synergy --seeds 0 1 2`, quick
profile, linear probe, synergy, chance 0.25): CoMM 0.353 +- 0.025 without the split against
0.619 +- 0.090 with it, its untrained architecture (`random_fusion`) 0.368 / 0.380; at the
paper profile CoMM 0.967 against 0.712. The README ("Reading synergy results"), reports/bits/
and reports/bits_curves/ hold the tables and learning curves.
"""

from __future__ import annotations

import numpy as np

from ._params import check_choice, check_float, check_int, check_sizes, stream
from ._truth import (
    FACTORS,
    X1_FACTORS,
    X2_FACTORS,
    Label,
    LatentStructure,
    apply_label,
    exact_pid,
    n_label_classes,
)
from .base import SYNERGY_PRETRAIN, TASKS, TASKS3, BimodalDataset, Split, register

LABELS: dict[str, Label] = {
    "redundancy": ("copy", "r"),
    "unique1": ("copy", "u1"),
    "unique2": ("copy", "u2"),
    "synergy": ("xor", "s1", "s2"),
}

#: Upper bound on `bits`: the synergy task's ground truth is a BROJA program on a (2**bits)**3
#: joint, about 1 s at bits=5 and about a minute at bits=6.
MAX_BITS = 5
#: Upper bound on `bits` with three modalities: each modality's embedding is tabulated on its
#: 5 * bits input bits (32,768 rows at 3).
MAX_BITS3 = 3
#: The triple's pretraining map (`triple_map`): "latin" (the default), a random Latin square
#: (each row and column a permutation), under which t3 is independent of t1 and of t2 and a
#: function of both; "table", a random table of (t1, t2), which leaves t3 pairwise dependent on
#: t1 and on t2.
TRIPLE_MAPS: tuple[str, ...] = ("latin", "table")
TRIPLE_MAP = "latin"

#: Three modalities: the groups each modality holds, and the labels (module docstring).
X3_FACTORS: tuple[tuple[str, ...], ...] = (
    ("r", "u1", "p12_1", "p13_1", "t1"),
    ("r", "u2", "p12_2", "p23_2", "t2"),
    ("r", "u3", "p13_3", "p23_3", "t3"),
)
FACTORS3: tuple[str, ...] = tuple(dict.fromkeys(f for m in X3_FACTORS for f in m))
LABELS3: dict[str, Label] = {
    "redundancy": ("copy", "r"),
    "unique1": ("copy", "u1"),
    "unique2": ("copy", "u2"),
    "unique3": ("copy", "u3"),
    "synergy12": ("xor", "p12_1", "p12_2"),
    "synergy13": ("xor", "p13_1", "p13_3"),
    "synergy23": ("xor", "p23_2", "p23_3"),
    "synergy123": ("xor", "t1", "t2", "t3"),
}


class _Embedding:
    """A fixed random two-layer tanh network on +-1 bits, standardised over uniform inputs.

    With at most 3 * MAX_BITS = 15 input bits, the network is tabulated once on every input
    pattern: the standardisation is exact over the uniform inputs, and sampling is a lookup.
    """

    def __init__(self, n_in: int, dim: int, rng: np.random.Generator) -> None:
        hidden = max(64, dim)
        # Gain 2 drives tanh into its saturating range, so features are genuinely nonlinear in
        # the bits (products of a modality's own bits appear) while staying injective.
        w1 = rng.standard_normal((n_in, hidden)) * (2.0 / np.sqrt(n_in))
        b1 = rng.standard_normal(hidden) * 0.5
        w2 = rng.standard_normal((hidden, dim)) / np.sqrt(hidden)
        # Row k is the pattern whose bit j is (k >> j) & 1, matching `_codes`.
        patterns = (np.arange(1 << n_in)[:, None] >> np.arange(n_in)) & 1
        raw = np.tanh((2.0 * patterns - 1.0) @ w1 + b1) @ w2
        # A constant feature (possible only in degenerate draws) is left unscaled rather than
        # divided by zero.
        std = raw.std(axis=0)
        self.table = ((raw - raw.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)).astype(np.float32)

    def __call__(self, bits01: np.ndarray) -> np.ndarray:
        """Standardised float32 features of 0/1 bit rows, shape (n, n_in) -> (n, dim)."""
        return self.table[_codes(bits01)]


def _codes(group: np.ndarray) -> np.ndarray:
    return group @ (np.int64(1) << np.arange(group.shape[1], dtype=np.int64))


def _bits_of(codes: np.ndarray, bits: int) -> np.ndarray:
    """0/1 bit rows (bit 0 first) of integer class codes; the inverse of `_codes`."""
    return (codes[:, None] >> np.arange(bits)) & 1


def draw_latents(
    n: int, bits: int, rng: np.random.Generator, synergy_map: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """`n` rows of uniform bit groups (factor -> (n, bits) 0/1 int64, C-contiguous); with
    `synergy_map` (a permutation pi of the s-group classes), s2 := pi(s1)."""
    all_bits = rng.integers(0, 2, size=(n, len(FACTORS) * bits), dtype=np.int64)
    latents = {f: all_bits[:, i * bits : (i + 1) * bits] for i, f in enumerate(FACTORS)}
    if synergy_map is not None:
        latents["s2"] = _bits_of(synergy_map[_codes(latents["s1"])], bits)
    return {f: np.ascontiguousarray(g) for f, g in latents.items()}


def _sample(
    n: int,
    bits: int,
    noise: float,
    emb1: _Embedding,
    emb2: _Embedding,
    rng: np.random.Generator,
    synergy_map: np.ndarray | None = None,
) -> Split:
    """`n` pairs; with `synergy_map` (a permutation pi of the s-group classes), s2 := pi(s1)."""
    # Latents are drawn before the noise, so the same seed gives the same latents and labels
    # whatever `noise` and `dim` are.
    latents = draw_latents(n, bits, rng, synergy_map)
    codes = {f: _codes(g) for f, g in latents.items()}
    x1 = emb1(np.concatenate([latents[f] for f in X1_FACTORS], axis=1))
    x2 = emb2(np.concatenate([latents[f] for f in X2_FACTORS], axis=1))
    x1 += np.float32(noise) * rng.standard_normal(x1.shape, dtype=np.float32)
    x2 += np.float32(noise) * rng.standard_normal(x2.shape, dtype=np.float32)
    labels = {t: apply_label(LABELS[t], codes) for t in TASKS}
    return Split(
        x1=x1,
        x2=x2,
        labels=labels,
        latents=latents,
    )


def synergy_permutation(bits: int, seed: int) -> np.ndarray:
    """The permutation pi of the 2**bits s-group classes used by the synergy pretraining split."""
    return stream(seed, "bits", "synergy_map").permutation(1 << bits)


def structure(bits: int) -> LatentStructure:
    """The latent structure the ground truth is computed on."""
    return LatentStructure(
        cards=tuple((f, 1 << bits) for f in FACTORS), x1=X1_FACTORS, x2=X2_FACTORS
    )


@register("bits")
def generate(
    bits: int = 2,
    dim: int = 32,
    noise: float = 0.1,
    n_train: int = 10000,
    n_test: int = 2000,
    seed: int = 0,
    synergy_pretrain: str = "permutation",
    modalities: int = 2,
    triple_map: str = TRIPLE_MAP,
) -> BimodalDataset:
    """Bit-group data: `bits` bits per latent group, `dim` features per modality.

    `noise` is the std of Gaussian noise added to the standardised features. The embedding
    depends only on (`seed`, `bits`, `dim`), the test set only on (`seed`, `bits`, `dim`,
    `noise`, `n_test`). `synergy_pretrain` ("permutation" or "none") adds or drops the biased
    synergy pretraining split (module docstring); `train` and `test` are the same arrays
    either way. `modalities`: 2, or 3 (module docstring; `bits` at most `MAX_BITS3`).
    `triple_map` (three modalities): the synergy123 pretraining map, "latin" or "table"
    (`TRIPLE_MAPS`).
    """
    g = "bits"
    modalities = check_int(g, "modalities", modalities, low=2, high=3)
    triple_map = check_triple_map(g, triple_map, modalities)
    if modalities == 3:
        return _generate3(bits, dim, noise, n_train, n_test, seed, synergy_pretrain, triple_map)
    bits = check_int(g, "bits", bits, low=1, high=MAX_BITS)
    dim = check_int(g, "dim", dim, low=1)
    noise = check_float(g, "noise", noise, low=0.0)
    n_train, n_test, seed = check_sizes(g, n_train, n_test, seed)
    synergy_pretrain = check_choice(g, "synergy_pretrain", synergy_pretrain, SYNERGY_PRETRAIN)

    n_in = len(X1_FACTORS) * bits
    emb1 = _Embedding(n_in, dim, stream(seed, g, "embed1"))
    emb2 = _Embedding(n_in, dim, stream(seed, g, "embed2"))
    train = _sample(n_train, bits, noise, emb1, emb2, stream(seed, g, "train"))
    test = _sample(n_test, bits, noise, emb1, emb2, stream(seed, g, "test"))
    pretrain = {}
    extra: dict = {}
    if synergy_pretrain == "permutation":
        pi = synergy_permutation(bits, seed)
        pretrain["synergy"] = _sample(
            n_train, bits, noise, emb1, emb2, stream(seed, g, "pretrain_synergy"), pi
        )
        extra["synergy_map"] = [int(c) for c in pi]

    st = structure(bits)
    return BimodalDataset(
        name=g,
        params={
            "bits": bits,
            "dim": dim,
            "noise": noise,
            "n_train": n_train,
            "n_test": n_test,
            "seed": seed,
            "synergy_pretrain": synergy_pretrain,
            **extra,
        },
        train=train,
        test=test,
        # Computed on the unbiased latent distribution that `train` and `test` follow.
        true_pid={t: exact_pid(st, LABELS[t]) for t in TASKS},
        n_classes={t: n_label_classes(st, LABELS[t]) for t in TASKS},
        pretrain=pretrain,
    )


def draw_latents3(
    n: int, bits: int, rng: np.random.Generator, bias: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """`n` rows of the three-modality groups; `bias` (one synergy task's map) ties its groups:
    {"p12_2": pi over p12_1} (likewise p13_3, p23_3) or {"t3": g over (t1, t2), a (K*K,) table}."""
    all_bits = rng.integers(0, 2, size=(n, len(FACTORS3) * bits), dtype=np.int64)
    lat = {f: all_bits[:, i * bits : (i + 1) * bits] for i, f in enumerate(FACTORS3)}
    k = 1 << bits
    for target, table in (bias or {}).items():
        if target == "t3":
            code = _codes(lat["t1"]) * k + _codes(lat["t2"])
        else:
            code = _codes(lat[_BIAS_SOURCE3[target]])
        lat[target] = _bits_of(table[code], bits)
    return {f: np.ascontiguousarray(v) for f, v in lat.items()}


#: A pair's second group, tied by its pretraining map to the first.
_BIAS_SOURCE3: dict[str, str] = {"p12_2": "p12_1", "p13_3": "p13_1", "p23_3": "p23_2"}
#: The group each synergy task's pretraining split ties to the others (its map's target).
BIAS_TARGET3: dict[str, str] = {
    "synergy12": "p12_2",
    "synergy13": "p13_3",
    "synergy23": "p23_3",
    "synergy123": "t3",
}


def structure3(bits: int) -> LatentStructure:
    """The three-modality latent structure the ground truth is computed on."""
    return LatentStructure(
        cards=tuple((f, 1 << bits) for f in FACTORS3),
        x1=X3_FACTORS[0],
        x2=X3_FACTORS[1],
        x3=X3_FACTORS[2],
    )


def bias_maps3(
    bits: int, seed: int, generator: str = "bits", triple_map: str = TRIPLE_MAP
) -> dict[str, np.ndarray]:
    """Each synergy task's fixed map: a permutation of the K = 2**bits classes for a pair, a
    (K * K,) table of classes (t1, t2) -> t3 for the triple (drawn from `generator`'s streams;
    `triple_map` one of `TRIPLE_MAPS`)."""
    k = 1 << bits
    maps = {}
    for task, target in BIAS_TARGET3.items():
        if target != "t3":
            maps[task] = stream(seed, generator, f"synergy_map_{task}").permutation(k)
        elif triple_map == "table":
            maps[task] = stream(seed, generator, f"synergy_map_{task}").integers(0, k, size=k * k)
        else:
            # The XOR table with its rows, columns and symbols permuted: a Latin square.
            rng = stream(seed, generator, f"synergy_map_{task}_latin")
            rows, cols, symbols = (rng.permutation(k) for _ in range(3))
            maps[task] = symbols[rows[:, None] ^ cols[None, :]].ravel()
    return maps


def _sample3(
    n: int,
    bits: int,
    noise: float,
    embs: tuple[_Embedding, ...],
    rng: np.random.Generator,
    bias: dict[str, np.ndarray] | None = None,
) -> Split:
    latents = draw_latents3(n, bits, rng, bias)
    codes = {f: _codes(v) for f, v in latents.items()}
    xs = []
    for emb, held in zip(embs, X3_FACTORS, strict=True):
        x = emb(np.concatenate([latents[f] for f in held], axis=1))
        x += np.float32(noise) * rng.standard_normal(x.shape, dtype=np.float32)
        xs.append(x)
    labels = {t: apply_label(LABELS3[t], codes) for t in TASKS3}
    return Split(x1=xs[0], x2=xs[1], x3=xs[2], labels=labels, latents=latents)


def check_triple_map(generator: str, triple_map: object, modalities: int) -> str:
    """`triple_map` checked: one of `TRIPLE_MAPS`, and the default unless there are 3
    modalities."""
    triple_map = check_choice(generator, "triple_map", triple_map, TRIPLE_MAPS)
    if modalities == 2 and triple_map != TRIPLE_MAP:
        raise ValueError(
            f"generator {generator!r}: triple_map applies to modalities=3 only (the synergy123 "
            f"pretraining map), got triple_map={triple_map!r} with 2 modalities"
        )
    return triple_map


def _generate3(
    bits: int,
    dim: int,
    noise: float,
    n_train: int,
    n_test: int,
    seed: int,
    synergy_pretrain: str,
    triple_map: str,
) -> BimodalDataset:
    g = "bits"
    bits = check_int(g, "bits", bits, low=1, high=MAX_BITS3)
    dim = check_int(g, "dim", dim, low=1)
    noise = check_float(g, "noise", noise, low=0.0)
    n_train, n_test, seed = check_sizes(g, n_train, n_test, seed)
    synergy_pretrain = check_choice(g, "synergy_pretrain", synergy_pretrain, SYNERGY_PRETRAIN)
    n_in = len(X3_FACTORS[0]) * bits
    embs = tuple(_Embedding(n_in, dim, stream(seed, g, f"m3_embed{i}")) for i in (1, 2, 3))
    train = _sample3(n_train, bits, noise, embs, stream(seed, g, "m3_train"))
    test = _sample3(n_test, bits, noise, embs, stream(seed, g, "m3_test"))
    pretrain, extra = {}, {}
    if synergy_pretrain == "permutation":
        maps = bias_maps3(bits, seed, g, triple_map)
        for task, table in maps.items():
            pretrain[task] = _sample3(
                n_train, bits, noise, embs, stream(seed, g, f"m3_pretrain_{task}"),
                {BIAS_TARGET3[task]: table},
            )  # fmt: skip
        extra["synergy_maps"] = {t: [int(c) for c in m] for t, m in maps.items()}
    st = structure3(bits)
    return BimodalDataset(
        name=g,
        params={
            "bits": bits,
            "dim": dim,
            "noise": noise,
            "n_train": n_train,
            "n_test": n_test,
            "seed": seed,
            "synergy_pretrain": synergy_pretrain,
            "modalities": 3,
            "triple_map": triple_map,
            **extra,
        },
        train=train,
        test=test,
        true_pid={t: exact_pid(st, LABELS3[t]) for t in TASKS3},
        n_classes={t: n_label_classes(st, LABELS3[t]) for t in TASKS3},
        pretrain=pretrain,
    )
