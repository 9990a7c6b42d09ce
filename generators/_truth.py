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
from estimators.lattice import LatticePIDResult

#: A label: ("copy", a) -> y = a; ("xor", a, b, ...) -> y = a XOR b XOR ... (bitwise on the
#: class codes, i.e. groupwise XOR of bit vectors); ("equal", a, b) -> y = [a == b] (XNOR for
#: binary factors).
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
    x3: those of modality 3 of a three-modality dataset; None for two.
    """

    cards: tuple[tuple[str, int], ...]
    x1: tuple[str, ...]
    x2: tuple[str, ...]
    x3: tuple[str, ...] | None = None

    @property
    def sources(self) -> tuple[tuple[str, ...], ...]:
        """The factors of each modality: (x1, x2) or (x1, x2, x3)."""
        return (self.x1, self.x2) if self.x3 is None else (self.x1, self.x2, self.x3)

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
        return np.bitwise_xor.reduce([np.asarray(codes[a]) for a in args]).astype(np.int64)
    if kind == "equal":
        return (np.asarray(codes[args[0]]) == np.asarray(codes[args[1]])).astype(np.int64)
    raise ValueError(f"unknown label kind {kind!r}; expected copy, xor or equal")


def latent_joint(structure: LatentStructure, label: Label) -> np.ndarray:
    """Exact p[x1, x2, y] (p[x1, x2, x3, y] with three modalities) by enumerating every
    configuration of the factors."""
    names = [name for name, _ in structure.cards]
    cards = [c for _, c in structure.cards]
    grid = np.indices(cards).reshape(len(cards), -1)
    codes = dict(zip(names, grid, strict=True))
    xs = [_joint_code(structure, f, codes) for f in structure.sources]
    y = apply_label(label, codes)
    p = np.zeros(
        tuple(structure.n_values(f) for f in structure.sources)
        + (n_label_classes(structure, label),)
    )
    # Every configuration has probability 1 / (number of configurations).
    np.add.at(p, (*xs, y), 1.0 / grid.shape[1])
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
        x3=None if structure.x3 is None else tuple(f for f in structure.x3 if f in keep),
    )


@lru_cache(maxsize=256)
def exact_pid(
    structure: LatentStructure, label: Label, max_full_values: int = MAX_FULL_VALUES
) -> PIDResult | LatticePIDResult:
    """BROJA PID, in bits, of (modality 1's factors, modality 2's factors; label); with three
    modalities the I_min PID over the Williams-Beer lattice (`estimators.lattice`, 18 atoms).

    Solved on the full latent joint when each modality has at most `max_full_values` latent
    values, else on the joint reduced to the factors the label reads (same atoms, see
    `_reduce`; for I_min too: a factor independent of the label and of the others changes no
    specific information). Three modalities are always reduced. Cached by structure, so every
    dataset with the same structure shares one solve.
    """
    if structure.x3 is not None or any(
        structure.n_values(f) > max_full_values for f in structure.sources
    ):
        structure = _reduce(structure, label)
    if structure.x3 is not None:
        return pid(latent_joint(structure, label), measure="imin")
    return pid(latent_joint(structure, label), measure="broja")
