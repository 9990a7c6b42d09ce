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

Measured (`pid-bench run --interaction synergy --seeds 0 1 2`, quick profile, linear probe,
synergy, chance 0.25): CoMM 0.365 +- 0.008 without the split against 0.629 +- 0.096 with it,
its untrained architecture (`random_fusion`) 0.368 / 0.380; at the paper profile CoMM 0.967
against 0.712. The README ("Reading synergy results"), reports/bits/ and reports/bits_curves/
hold the tables and learning curves.
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
from .base import SYNERGY_PRETRAIN, TASKS, BimodalDataset, Split, register

LABELS: dict[str, Label] = {
    "redundancy": ("copy", "r"),
    "unique1": ("copy", "u1"),
    "unique2": ("copy", "u2"),
    "synergy": ("xor", "s1", "s2"),
}

#: Upper bound on `bits`: the synergy task's ground truth is a BROJA program on a (2**bits)**3
#: joint, about 1 s at bits=5 and about a minute at bits=6.
MAX_BITS = 5


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
) -> BimodalDataset:
    """Bit-group data: `bits` bits per latent group, `dim` features per modality.

    `noise` is the std of Gaussian noise added to the standardised features. The embedding
    depends only on (`seed`, `bits`, `dim`), the test set only on (`seed`, `bits`, `dim`,
    `noise`, `n_test`). `synergy_pretrain` ("permutation" or "none") adds or drops the biased
    synergy pretraining split (module docstring); `train` and `test` are the same arrays
    either way.
    """
    g = "bits"
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
