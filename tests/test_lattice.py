"""The exact I_min PID over the Williams-Beer lattice (two and three sources): textbook gates,
the lattice's own sums, dit's PID_WB on random joints, bad input."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from estimators import lattice_nodes, lattice_pid, pid
from estimators._info import mutual_info_bits
from estimators.lattice import below, node_name, parse_node

DIT = Path(__file__).parent / "fixtures" / "fidelity" / "dit_imin"


def gate(f, n_values: int = 2) -> np.ndarray:
    """p[x1, x2, x3, y] of three independent uniform inputs and y = f(x1, x2, x3)."""
    outs = {x: f(*x) for x in itertools.product(range(n_values), repeat=3)}
    p = np.zeros((n_values,) * 3 + (max(outs.values()) + 1,))
    for x, y in outs.items():
        p[x + (y,)] += 1 / len(outs)
    return p


def nonzero(r) -> dict[str, float]:
    return {k: round(v, 9) for k, v in r.atoms.items() if abs(v) > 1e-9}


def test_the_lattices_have_18_and_4_nodes_ordered_bottom_to_top() -> None:
    three = [node_name(a) for a in lattice_nodes(3)]
    assert len(three) == len(set(three)) == 18
    assert three[0] == "1|2|3" and three[-1] == "123"
    assert {"12|13|23", "1|23", "12", "3"} <= set(three)
    assert [node_name(a) for a in lattice_nodes(2)] == ["1|2", "1", "2", "12"]
    nodes = lattice_nodes(3)
    for i, a in enumerate(nodes):  # nothing above a node comes before it
        assert not any(below(a, b) and a != b for b in nodes[:i])
    # the order: {1}{23} <= {1} <= {12}; {12} and {3} not comparable
    p = {k: parse_node(k) for k in ("1|23", "1", "12", "3")}
    assert below(p["1|23"], p["1"]) and below(p["1"], p["12"]) and not below(p["1"], p["1|23"])
    assert not below(p["12"], p["3"]) and not below(p["3"], p["12"])


@pytest.mark.parametrize(
    ("name", "f", "expected"),
    [
        ("three-way XOR", lambda a, b, c: a ^ b ^ c, {"123": 1.0}),
        ("pairwise XOR", lambda a, b, c: a ^ b, {"12": 1.0}),
        ("pairwise XOR of 1 and 3", lambda a, b, c: a ^ c, {"13": 1.0}),
        ("one source copied", lambda a, b, c: b, {"2": 1.0}),
        # I_min's limit: three independent bits copied give 1 bit of "redundancy" (each
        # source gives 1 bit about every outcome), where they share nothing
        ("copy of all three", lambda a, b, c: 4 * a + 2 * b + c,
         {"1|2|3": 1.0, "12|13|23": 1.0, "123": 1.0}),
    ],
)  # fmt: skip
def test_textbook_gates(name, f, expected) -> None:
    r = pid(gate(f), measure="imin")
    assert nonzero(r) == pytest.approx(expected, abs=1e-9), name
    assert r.mutual_info == pytest.approx(sum(expected.values()), abs=1e-12)


def test_giant_bit_is_all_triple_redundancy() -> None:
    p = np.zeros((2, 2, 2, 2))
    p[0, 0, 0, 0] = p[1, 1, 1, 1] = 0.5
    assert nonzero(lattice_pid(p)) == {"1|2|3": 1.0}


def test_two_sources_equal_the_bivariate_imin() -> None:
    rng = np.random.default_rng(1)
    for _ in range(5):
        p = rng.dirichlet(np.ones(2 * 3 * 3)).reshape(2, 3, 3)
        r, b = lattice_pid(p), pid(p, measure="imin")
        got = [r.atom("1|2"), r.atom("1"), r.atom("2"), r.atom("12")]
        np.testing.assert_allclose(got, [b.redundancy, b.unique1, b.unique2, b.synergy], atol=1e-12)


def _mi(p: np.ndarray, sources: tuple[int, ...]) -> float:
    """I(Y; X_S) in bits from p[x1, x2, x3, y], S 1-based, computed without the lattice."""
    drop = tuple(i for i in range(3) if i + 1 not in sources)
    m = p.sum(axis=drop)
    return mutual_info_bits(m.reshape(-1, m.shape[-1]))


def test_the_atoms_sum_to_each_sources_information() -> None:
    """Consistency: the atoms below {S} sum to I(Y; X_S) for all 7 source sets, and all 18 to
    I(Y; X1, X2, X3); each node's redundancy is the sum of the atoms below it."""
    rng = np.random.default_rng(2)
    for _ in range(6):
        shape = tuple(int(v) for v in rng.integers(2, 4, 4))
        p = rng.dirichlet(np.full(int(np.prod(shape)), 0.5)).reshape(shape)
        r = lattice_pid(p)
        assert min(r.atoms.values()) >= 0.0
        for k in range(1, 4):
            for s in itertools.combinations((1, 2, 3), k):
                name = "".join(map(str, s))
                assert r.information(name) == pytest.approx(_mi(p, s), abs=1e-10), name
        assert sum(r.atoms.values()) == pytest.approx(_mi(p, (1, 2, 3)), abs=1e-10)
        for a in lattice_nodes(3):
            down = sum(r.atoms[node_name(b)] for b in lattice_nodes(3) if below(b, a))
            assert r.redundancies[node_name(a)] == pytest.approx(down, abs=1e-10)


def test_matches_dit_on_random_joints() -> None:
    """dit's PID_WB (version in the fixture's metadata), 12 trivariate and 4 bivariate joints
    with zero cells, by tools/fidelity/make_fixtures_dit.py."""
    meta = json.loads(DIT.with_suffix(".json").read_text())
    assert meta["package"].startswith("dit") and meta["version"]
    with np.load(DIT.with_suffix(".npz")) as z:
        for n in (3, 2):
            names = [str(v) for v in z[f"nodes{n}"]]
            assert len(names) == {3: 18, 2: 4}[n]
            for joint, shape, pis, reds in zip(
                z[f"joints{n}"], z[f"shapes{n}"], z[f"pi{n}"], z[f"red{n}"], strict=True
            ):
                p = joint[tuple(slice(0, int(s)) for s in shape)]
                r = lattice_pid(p)
                assert sorted(r.atoms) == sorted(names)
                np.testing.assert_allclose([r.atoms[k] for k in names], pis, atol=1e-9)
                np.testing.assert_allclose([r.redundancies[k] for k in names], reds, atol=1e-9)


def test_atom_lookup_by_any_order_and_bad_names() -> None:
    r = pid(gate(lambda a, b, c: a ^ b), measure="imin")
    assert r.atom("21") == r.atom("12") == 1.0 and r.atom("3|12") == r.atom("12|3")
    for bad, match in [
        ("1|12", "not a node of the 3-source lattice"),
        ("4", "not a node"),
        ("1,2", "bad lattice node"),
        ("", "bad lattice node"),
    ]:
        with pytest.raises(ValueError, match=match):
            r.atom(bad)
    assert json.loads(json.dumps(r.as_dict()))["atoms"]["12"] == 1.0


def test_bad_joints_and_measures() -> None:
    p = gate(lambda a, b, c: a ^ b ^ c)
    with pytest.raises(ValueError, match="takes measure='imin'"):
        pid(p)
    with pytest.raises(ValueError, match="takes measure='imin'"):
        pid(p, measure="broja")
    with pytest.raises(ValueError, match="unknown PID measure"):
        pid(p, measure="ccs")
    with pytest.raises(
        ValueError, match="three sources: a 4-D p\\[x1, x2, x3, y\\] with measure='imin'"
    ):
        pid(np.ones((2,) * 5) / 32, measure="imin")
    with pytest.raises(ValueError, match="sums to 2, not 1"):
        lattice_pid(2 * p)
    bad = p.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        lattice_pid(bad)
