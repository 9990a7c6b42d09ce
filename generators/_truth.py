"""Exact ground-truth PID of a generator's latent structure.

A generator describes its discrete latent factors (each uniform on its values and independent of
the others), which factors each modality holds, and the label as a small function of factors.
The joint distribution p[x1, x2, y] of (modality 1's factors, modality 2's factors, label) is
built by enumerating every latent configuration with its exact probability (never from samples),
and its PID is computed by the exact discrete BROJA estimator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from estimators import pid
from estimators._result import PIDResult

#: A label: ("copy", a) -> y = a; ("xor", a, b) -> y = a XOR b (bitwise on the class codes, i.e.
#: groupwise XOR of bit vectors); ("equal", a, b) -> y = [a == b] (XNOR for binary factors).
Label = tuple[str, ...]

#: Modalities up to this many latent values are solved on their full latent joint; larger ones
#: are reduced first (see `_reduce`).
MAX_FULL_VALUES = 64


#: The latent factors of the vector generators (bits, gaussian): r shared, u1/u2 unique,
#: s1/s2 the synergistic pair, and which of them each modality holds.
FACTORS: tuple[str, ...] = ("r", "u1", "u2", "s1", "s2")
X1_FACTORS: tuple[str, ...] = ("r", "u1", "s1")
X2_FACTORS: tuple[str, ...] = ("r", "u2", "s2")


@dataclass(frozen=True)
class LatentStructure:
    """Independent uniform discrete factors and which of them each modality holds.

    cards: (factor name, number of values) per factor.
    x1, x2: names of the factors modality 1 and modality 2 hold (a factor may be in both).
    """

    cards: tuple[tuple[str, int], ...]
    x1: tuple[str, ...]
    x2: tuple[str, ...]

    def card(self, name: str) -> int:
        """Number of values of factor `name`."""
        return dict(self.cards)[name]

    def n_values(self, factors: tuple[str, ...]) -> int:
        """Number of joint values of `factors`."""
        return math.prod(self.card(f) for f in factors)


def label_factors(label: Label) -> tuple[str, ...]:
    """The factors a label reads."""
    return tuple(label[1:])


def n_label_classes(structure: LatentStructure, label: Label) -> int:
    """Number of classes the label takes."""
    kind, *args = label
    if kind == "copy":
        return structure.card(args[0])
    if kind == "xor":
        return structure.card(args[0])
    if kind == "equal":
        return 2
    raise ValueError(f"unknown label kind {kind!r}; expected copy, xor or equal")


def apply_label(label: Label, codes: dict[str, np.ndarray]) -> np.ndarray:
    """The label (int64 class indices) from integer factor codes.

    The generators label their samples with this same function that the ground truth is
    enumerated with, so that the two cannot disagree.
    """
    kind, *args = label
    if kind == "copy":
        return np.asarray(codes[args[0]], dtype=np.int64)
    if kind == "xor":
        return np.bitwise_xor(codes[args[0]], codes[args[1]]).astype(np.int64)
    if kind == "equal":
        return (np.asarray(codes[args[0]]) == np.asarray(codes[args[1]])).astype(np.int64)
    raise ValueError(f"unknown label kind {kind!r}; expected copy, xor or equal")


def latent_joint(structure: LatentStructure, label: Label) -> np.ndarray:
    """Exact p[x1, x2, y] by enumerating every configuration of the factors."""
    names = [name for name, _ in structure.cards]
    cards = [c for _, c in structure.cards]
    grid = np.indices(cards).reshape(len(cards), -1)
    codes = dict(zip(names, grid, strict=True))
    x1 = _joint_code(structure, structure.x1, codes)
    x2 = _joint_code(structure, structure.x2, codes)
    y = apply_label(label, codes)
    p = np.zeros(
        (
            structure.n_values(structure.x1),
            structure.n_values(structure.x2),
            n_label_classes(structure, label),
        )
    )
    # Every configuration has probability 1 / (number of configurations).
    np.add.at(p, (x1, x2, y), 1.0 / grid.shape[1])
    return p


def _joint_code(
    structure: LatentStructure, factors: tuple[str, ...], codes: dict[str, np.ndarray]
) -> np.ndarray:
    out = np.zeros_like(next(iter(codes.values())))
    for f in factors:
        out = out * structure.card(f) + codes[f]
    return out


def _reduce(structure: LatentStructure, label: Label) -> LatentStructure:
    """Drop the factors the label does not read.

    Such a factor W is independent of the label and of every other factor. Appending it to one
    modality, or to both, leaves the BROJA atoms unchanged: the mutual informations do not
    change, an optimal q of the reduced problem extended by p(w) (with W copied where both hold
    it) stays feasible with the same I_q(Y; X1 | X2), and any feasible q of the full problem has
    I_q(Y; X1 | X2) >= I_q(Y; A1 | A2) for the reduced variables A1, A2, because H(Y | X2) stays
    the same while H(Y | X1, X2) <= H(Y | A1, A2).
    """
    keep = set(label_factors(label))
    return LatentStructure(
        cards=tuple((n, c) for n, c in structure.cards if n in keep),
        x1=tuple(f for f in structure.x1 if f in keep),
        x2=tuple(f for f in structure.x2 if f in keep),
    )


@lru_cache(maxsize=256)
def exact_pid(
    structure: LatentStructure, label: Label, max_full_values: int = MAX_FULL_VALUES
) -> PIDResult:
    """BROJA PID, in bits, of (modality 1's factors, modality 2's factors; label).

    Solved on the full latent joint when each modality has at most `max_full_values` latent
    values, else on the joint reduced to the factors the label reads (same atoms, see
    `_reduce`). Cached by structure, so every dataset with the same structure shares one solve.
    """
    if (
        structure.n_values(structure.x1) > max_full_values
        or structure.n_values(structure.x2) > max_full_values
    ):
        structure = _reduce(structure, label)
    return pid(latent_joint(structure, label), measure="broja")
