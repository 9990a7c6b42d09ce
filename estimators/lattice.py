"""The Williams-Beer redundancy lattice of two or three sources, and the exact I_min PID on it.

A node of the lattice is an antichain: a collection of source sets none of which contains
another, e.g. {{1, 2}, {3}}, written `"3|12"` (the sources of a set joined, sets separated by
`|`, smaller sets first). Three sources give 18 nodes, from `"1|2|3"` (what every source
carries: the triple redundancy) to `"123"` (what only the three together carry: the triple
synergy); two sources give the 4 of the bivariate PID (`"1|2"`, `"1"`, `"2"`, `"12"`). Node
alpha lies below beta when every set of beta contains a set of alpha.

Each node's redundancy is Williams and Beer's (2010) I_min,

    I_cap(alpha) = sum_y p(y) min_{A in alpha} I(Y = y; X_A),
    I(Y = y; X_A) = sum_{x_A} p(x_A | y) log2(p(y | x_A) / p(y)),

and the partial information of each node (its atom) comes by Moebius inversion,
Pi(alpha) = I_cap(alpha) - sum_{beta < alpha} Pi(beta). The atoms sum to I(Y; X1, X2, X3), and
those below the node {S} sum to I(Y; X_S) for every source set S. Williams and Beer prove them
non-negative for I_min.

I_min's known limit: it compares the *amount* of specific information each source gives about
an outcome, not whether it is the same information. Two sources that each determine a
different half of Y (Y = (X1, X2), X1 and X2 independent bits) get 1 bit of redundancy from
I_min, where BROJA finds none (`estimators.pid(p, "broja")` on two sources). Its values on the
gates the three-modality generators build (copies of one group seen by all, XORs of groups
seen by two or three) are the textbook ones; the tests check them.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from scipy.special import xlogy

from estimators._validate import check_joint

#: Atoms this close to zero (negative by round-off) are reported as exactly 0.
_ZERO_TOL = 1e-9
#: Slack (bits) of the non-negativity that Williams and Beer prove; further below is a bug.
_NEG_TOL = 1e-7

Node = tuple[tuple[int, ...], ...]


def node_name(node: Node) -> str:
    """`"12|13|23"` of ((1, 2), (1, 3), (2, 3))."""
    return "|".join("".join(str(s) for s in part) for part in node)


def _canonical(parts: list[tuple[int, ...]]) -> Node:
    return tuple(sorted((tuple(sorted(p)) for p in parts), key=lambda p: (len(p), p)))


@cache
def lattice_nodes(n_sources: int) -> tuple[Node, ...]:
    """Every antichain of non-empty subsets of {1..n_sources}, from bottom to top (a node
    comes after every node below it)."""
    if n_sources not in (2, 3):
        raise ValueError(f"the lattice is built for 2 or 3 sources, got {n_sources}")
    subsets = [
        c
        for k in range(1, n_sources + 1)
        for c in itertools.combinations(range(1, n_sources + 1), k)
    ]
    nodes = []
    for k in range(1, len(subsets) + 1):
        for family in itertools.combinations(subsets, k):
            sets = [set(f) for f in family]
            if any(a < b or b < a for a, b in itertools.combinations(sets, 2)):
                continue
            nodes.append(_canonical(list(family)))
    # a node's down-set is strictly larger than any node's below it: sort by its size
    return tuple(sorted(nodes, key=lambda a: (sum(below(b, a) for b in nodes), node_name(a))))


def below(a: Node, b: Node) -> bool:
    """Whether node `a` lies below or at `b`: every set of `b` contains a set of `a`."""
    return all(any(set(x) <= set(y) for x in a) for y in b)


def parse_node(name: str, n_sources: int = 3) -> Node:
    """The node of a name such as `"12|3"` or `"3|12"` (order within and between sets free)."""
    if not isinstance(name, str) or not re.fullmatch(r"[1-9]+(\|[1-9]+)*", name):
        raise ValueError(
            f"bad lattice node {name!r}: expected source sets such as '1|2|3', '12|13|23' or "
            "'123' (digits of the sources in a set, sets separated by '|')"
        )
    node = _canonical([tuple(int(c) for c in part) for part in name.split("|")])
    if node not in lattice_nodes(n_sources):
        valid = ", ".join(node_name(a) for a in lattice_nodes(n_sources))
        raise ValueError(
            f"{name!r} is not a node of the {n_sources}-source lattice (a source repeated in a "
            f"set, a set inside another, or a source above {n_sources}); nodes: {valid}"
        )
    return node


@dataclass(frozen=True)
class LatticePIDResult:
    """The PID of I(Y; X1, ..., Xn) over the redundancy lattice, every value in bits.

    atoms: node name -> partial information (`lattice_nodes` order, bottom to top);
    redundancies: node name -> I_cap of the node; mutual_info: I(Y; X1, ..., Xn).
    """

    atoms: Mapping[str, float]
    mutual_info: float
    measure: str = "imin"
    n_sources: int = 3
    redundancies: Mapping[str, float] = field(default_factory=dict, repr=False)

    def atom(self, name: str) -> float:
        """The atom of a node given by name (`"1|2|3"`, `"3|12"`, `"123"`; order free)."""
        return float(self.atoms[node_name(parse_node(name, self.n_sources))])

    def information(self, sources: str) -> float:
        """I(Y; X_S) for the source set S given as digits (`"13"`): the atoms below {S}."""
        top = parse_node(sources, self.n_sources)
        if len(top) != 1:
            raise ValueError(f"expected one source set such as '13', got {sources!r}")
        return float(
            sum(v for k, v in self.atoms.items() if below(parse_node(k, self.n_sources), top))
        )

    def as_dict(self) -> dict[str, object]:
        """Plain dict (JSON-serialisable)."""
        return {
            "atoms": dict(self.atoms),
            "mutual_info": self.mutual_info,
            "measure": self.measure,
            "n_sources": self.n_sources,
            "redundancies": dict(self.redundancies),
        }


def _specific_informations(p: np.ndarray) -> dict[tuple[int, ...], np.ndarray]:
    """I(Y = y; X_A) in bits, for every source set A (1-based), as an array over y."""
    n = p.ndim - 1
    py = p.sum(axis=tuple(range(n)))
    out = {}
    for k in range(1, n + 1):
        for a in itertools.combinations(range(1, n + 1), k):
            drop = tuple(i - 1 for i in range(1, n + 1) if i not in a)
            pay = p.sum(axis=drop).reshape(-1, len(py))  # p(x_A, y)
            pa = pay.sum(axis=1, keepdims=True)  # p(x_A)
            # sum_x p(x, y) log2(p(x, y) / (p(x) p(y))) / p(y), zero where p(x, y) = 0
            ratio = np.divide(pay, pa * py, out=np.ones_like(pay), where=pay > 0)
            spec = xlogy(pay, ratio).sum(axis=0) / math.log(2.0)
            out[a] = np.divide(spec, py, out=np.zeros_like(py), where=py > 0)
    return out


def lattice_pid(p: object) -> LatticePIDResult:
    """Exact I_min PID of a joint p[x1, x2, y] or p[x1, x2, x3, y] over its redundancy lattice.

    p: a 3-D or 4-D array of non-negative numbers summing to 1 (zero cells are fine).
    """
    n = 3 if np.ndim(p) == 4 else 2
    joint = check_joint(p, sources=n)
    py = joint.sum(axis=tuple(range(n)))
    spec = _specific_informations(joint)
    nodes = lattice_nodes(n)
    red = {a: float((py * np.min([spec[s] for s in a], axis=0)).sum()) for a in nodes}
    atoms: dict[Node, float] = {}
    for a in nodes:  # bottom to top: every node below `a` is done
        atoms[a] = red[a] - sum(atoms[b] for b in atoms if b != a and below(b, a))
    top = _canonical([tuple(range(1, n + 1))])
    mi = red[top]
    worst = min(atoms.values())
    if worst < -_NEG_TOL:
        raise RuntimeError(
            f"I_min atom {worst:.12g} bits is negative beyond round-off; Williams and Beer "
            "prove them non-negative: this is a bug, please report it with the joint"
        )
    clean = {
        node_name(a): (0.0 if abs(v) < _ZERO_TOL and v <= 0 else float(v)) for a, v in atoms.items()
    }
    return LatticePIDResult(
        atoms=clean,
        redundancies={node_name(a): v for a, v in red.items()},
        mutual_info=float(mi),
        measure="imin",
        n_sources=n,
    )
