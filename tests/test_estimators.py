"""Exact discrete PID: canonical values, invariants, the BROJA optimum, validation, API."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from estimators import (
    ESTIMATORS,
    MEASURES,
    ClusteredPID,
    DiscretePID,
    PIDResult,
    entropy_bits,
    get_estimator,
    joint_from_samples,
    joint_infos_bits,
    mutual_info_bits,
    pid,
    register,
    solve_broja,
)
from estimators._broja import neg_cond_entropy, use_structured
from estimators._validate import InsufficientMemoryError
from estimators.testing import stress_joints

ATOMS = ("redundancy", "unique1", "unique2", "synergy")


def table(fn, n1: int = 2, n2: int = 2) -> np.ndarray:
    """Joint of uniform independent x1 in range(n1), x2 in range(n2) and y = fn(x1, x2)."""
    cells = [(a, b, fn(a, b)) for a in range(n1) for b in range(n2)]
    labels = sorted({c[2] for c in cells})
    p = np.zeros((n1, n2, len(labels)))
    for a, b, y in cells:
        p[a, b, labels.index(y)] += 1.0 / len(cells)
    return p


def rdn_xor() -> np.ndarray:
    """x_i = (r, a_i), y = (r, a1 xor a2), with r, a1, a2 uniform bits."""
    p = np.zeros((4, 4, 4))
    for r in range(2):
        for a1 in range(2):
            for a2 in range(2):
                p[2 * r + a1, 2 * r + a2, 2 * r + (a1 ^ a2)] += 1 / 8
    return p


H_AND = 0.8112781244591328  # H(Y) = I(Y; X1, X2) for y = x1 and x2
CANONICAL = {
    "xor": (table(lambda a, b: a ^ b), (0.0, 0.0, 0.0, 1.0)),
    "rdn": (np.array([[[0.5, 0], [0, 0]], [[0, 0], [0, 0.5]]]), (1.0, 0.0, 0.0, 0.0)),
    "unq": (table(lambda a, b: (a, b)), (0.0, 1.0, 1.0, 0.0)),
    "copy": (table(lambda a, b: a), (0.0, 1.0, 0.0, 0.0)),
    "and": (table(lambda a, b: a & b), (H_AND - 0.5, 0.0, 0.0, 0.5)),
    "sum": (table(lambda a, b: a + b), (0.5, 0.0, 0.0, 1.0)),
    "rdn_xor": (rdn_xor(), (1.0, 0.0, 0.0, 1.0)),
}


def atoms(res: PIDResult) -> np.ndarray:
    return np.array([res.redundancy, res.unique1, res.unique2, res.synergy])


def random_joint(rng: np.random.Generator, shape: tuple[int, ...], kind: int) -> np.ndarray:
    """Dense, sparse (exact zeros), Dirichlet (masses over many orders) or count-like joints."""
    if kind == 0:
        p = rng.random(shape)
    elif kind == 1:
        p = rng.random(shape) * (rng.random(shape) < 0.4)
    elif kind == 2:
        p = rng.dirichlet(np.full(int(np.prod(shape)), 0.2)).reshape(shape)
    else:
        p = rng.integers(0, 4, size=shape).astype(float)
    if p.sum() == 0:
        p.flat[0] = 1.0
    return p / p.sum()


def random_joints(seed: int, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        shape = (int(rng.integers(1, 7)), int(rng.integers(1, 7)), int(rng.integers(1, 6)))
        out.append(random_joint(rng, shape, i % 4))
    return out


JOINTS = random_joints(seed=12345, count=120)


# ---------------------------------------------------------------- canonical values


@pytest.mark.parametrize("name", list(CANONICAL))
def test_broja_canonical(name: str) -> None:
    p, expected = CANONICAL[name]
    res = pid(p, "broja")
    assert atoms(res) == pytest.approx(expected, abs=1e-6)
    assert res.mutual_info == pytest.approx(sum(expected), abs=1e-9)
    assert res.measure == "broja"


def test_and_total_is_analytic() -> None:
    res = pid(CANONICAL["and"][0])
    assert res.mutual_info == pytest.approx(H_AND, abs=1e-12)
    assert res.redundancy == pytest.approx(H_AND - 0.5, abs=1e-6)


@pytest.mark.parametrize("measure", ["mmi", "imin"])
@pytest.mark.parametrize("name", ["xor", "rdn", "and"])
def test_mmi_imin_agree_with_broja(measure: str, name: str) -> None:
    p, _ = CANONICAL[name]
    assert atoms(pid(p, measure)) == pytest.approx(atoms(pid(p, "broja")), abs=1e-6)


@pytest.mark.parametrize("measure", ["mmi", "imin"])
def test_mmi_imin_on_unq(measure: str) -> None:
    assert atoms(pid(CANONICAL["unq"][0], measure)) == pytest.approx((1, 0, 0, 1), abs=1e-9)


def test_imin_differs_from_mmi() -> None:
    # y uniform on {0, 1, 2}, x1 = [y == 0], x2 = [y == 1]: each source singles out a different
    # label, so I_min = log2(1.5) < MMI = I(Y; X1) = log2(3) / 3 + 2 log2(1.5) / 3.
    p = np.zeros((2, 2, 3))
    p[1, 0, 0] = p[0, 1, 1] = p[0, 0, 2] = 1 / 3
    assert pid(p, "imin").redundancy == pytest.approx(math.log2(1.5), abs=1e-12)
    mmi = math.log2(3) / 3 + 2 * math.log2(1.5) / 3
    assert pid(p, "mmi").redundancy == pytest.approx(mmi, abs=1e-12)


# ---------------------------------------------------------------- invariants


def check_invariants(p: np.ndarray, measure: str) -> None:
    res = pid(p, measure)
    a = atoms(res)
    i1, i2, i12 = joint_infos_bits(p)
    assert (a >= -1e-9).all(), a
    assert a.sum() == pytest.approx(i12, abs=1e-9)
    assert res.mutual_info == pytest.approx(i12, abs=1e-12)
    assert res.redundancy + res.unique1 == pytest.approx(i1, abs=1e-9)
    assert res.redundancy + res.unique2 == pytest.approx(i2, abs=1e-9)
    swapped = pid(p.transpose(1, 0, 2), measure)
    assert atoms(swapped) == pytest.approx(a[[0, 2, 1, 3]], abs=1e-8)


@pytest.mark.parametrize("measure", MEASURES)
def test_invariants_on_random_joints(measure: str) -> None:
    for p in JOINTS:
        check_invariants(p, measure)


@pytest.mark.parametrize("measure", MEASURES)
def test_permutation_invariance(measure: str) -> None:
    rng = np.random.default_rng(7)
    for p in JOINTS[:40]:
        perm = [rng.permutation(n) for n in p.shape]
        shuffled = p[np.ix_(*perm)]
        assert atoms(pid(shuffled, measure)) == pytest.approx(atoms(pid(p, measure)), abs=1e-8)


joint_shapes = st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5))


@st.composite
def count_joints(draw: st.DrawFn) -> np.ndarray:
    """Joints of small integer counts: zero cells, ties and sparse supports are common."""
    shape = draw(joint_shapes)
    flat = draw(
        st.lists(st.integers(0, 9), min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))
    )
    counts = np.array(flat, dtype=float).reshape(shape)
    if counts.sum() == 0:
        counts.flat[draw(st.integers(0, counts.size - 1))] = 1.0
    return counts / counts.sum()


@st.composite
def float_joints(draw: st.DrawFn) -> np.ndarray:
    """Joints of float weights in [1e-3, 1] or exactly 0."""
    shape = draw(joint_shapes)
    size = int(np.prod(shape))
    weight = st.one_of(st.just(0.0), st.floats(1e-3, 1.0))
    flat = np.array(draw(st.lists(weight, min_size=size, max_size=size))).reshape(shape)
    if flat.sum() == 0:
        flat.flat[0] = 1.0
    return flat / flat.sum()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(count_joints())
def test_invariants_hypothesis_counts(p: np.ndarray) -> None:
    check_invariants(p, "broja")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(float_joints())
def test_invariants_hypothesis_floats(p: np.ndarray) -> None:
    check_invariants(p, "broja")
    check_invariants(p, "imin")


# ---------------------------------------------------------------- the BROJA optimum


def random_direction(rng: np.random.Generator, support: np.ndarray) -> np.ndarray | None:
    """A random combination of 2x2 cycles (+1, -1, +1, -1 on a rectangle of one label's
    support): such directions keep both pairwise marginals and span the null space."""
    d = np.zeros(support.shape)
    for _ in range(3):
        y = int(rng.integers(support.shape[2]))
        rows = np.flatnonzero(support[:, :, y].any(axis=1))
        cols = np.flatnonzero(support[:, :, y].any(axis=0))
        if len(rows) < 2 or len(cols) < 2:
            continue
        r = rng.choice(rows, 2, replace=False)
        c = rng.choice(cols, 2, replace=False)
        w = rng.normal()
        d[r[0], c[0], y] += w
        d[r[1], c[1], y] += w
        d[r[0], c[1], y] -= w
        d[r[1], c[0], y] -= w
    return d if (d < 0).any() else None


def test_broja_optimum_not_beaten_by_feasible_points() -> None:
    rng = np.random.default_rng(3)
    for p in JOINTS[:60]:
        sol = solve_broja(p)
        best = sol.value
        # The optimum is feasible: it has both pairwise marginals of p.
        assert sol.q.sum(axis=1) == pytest.approx(p.sum(axis=1), abs=1e-12)
        assert sol.q.sum(axis=0) == pytest.approx(p.sum(axis=0), abs=1e-12)
        assert (sol.q >= 0).all()
        assert sol.gap < 1e-8
        p1y, p2y = p.sum(axis=1), p.sum(axis=0)
        py = p1y.sum(axis=0)
        ci = p1y[:, None, :] * p2y[None, :, :] / np.where(py > 0, py, 1.0)
        support = (p1y[:, None, :] > 0) & (p2y[None, :, :] > 0)
        for base in (p, ci, sol.q):
            assert neg_cond_entropy(base) >= best - 1e-9
            for _ in range(20):
                d = random_direction(rng, support)
                if d is None:
                    continue
                # Largest step along d that keeps q >= 0, then a random fraction of it.
                neg = d < 0
                room = float((base[neg] / -d[neg]).min())
                q = np.clip(base + rng.uniform(0, 1) * room * d, 0, None)
                assert neg_cond_entropy(q) >= best - 1e-9


def test_independent_variable_appended_to_x1_changes_nothing() -> None:
    rng = np.random.default_rng(11)
    cases = [CANONICAL[name][0] for name in ("xor", "and", "copy", "sum", "rdn_xor")]
    cases += JOINTS[:12]
    for p in cases:
        w = rng.dirichlet(np.ones(3))
        extended = (p[:, None, :, :] * w[None, :, None, None]).reshape(
            p.shape[0] * 3, p.shape[1], p.shape[2]
        )
        assert atoms(pid(extended)) == pytest.approx(atoms(pid(p)), abs=1e-7)
        # And to both modalities at once.
        both = extended[:, :, None, :] * w[None, None, :, None]
        both = both.reshape(extended.shape[0], extended.shape[1] * 3, p.shape[2])
        assert atoms(pid(both)) == pytest.approx(atoms(pid(p)), abs=1e-7)


def test_uncertified_answers_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    # Make both interior-point methods stop at their starting point: the certificate must
    # notice that the duality gap is far from closed and refuse to answer.
    import estimators._broja as broja

    def stuck(prob, *args, **kwargs):
        return prob.weight.copy(), prob.start(), 1, np.ones(prob.weight.shape)

    monkeypatch.setattr(broja, "_mehrotra", stuck)
    monkeypatch.setattr(broja, "_barrier", lambda *args, **kwargs: stuck(*args)[:3])
    with pytest.raises(broja.BrojaSolverError, match="not certified"):
        pid(CANONICAL["and"][0])


def test_no_numpy_warnings_escape() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for p in JOINTS[:40]:
            for measure in MEASURES:
                pid(p, measure)


@pytest.mark.slow
def test_invariants_on_many_random_joints() -> None:
    for p in random_joints(seed=2024, count=2000):
        check_invariants(p, "broja")


# Joints of the stress set (seed 1) on which the solver before issue 9 raised
# BrojaSolverError (gaps up to 1e4 nats) or broke the x1/x2 symmetry by more than 1e-9 bits.
STRESS_REGRESSIONS = (386, 542, 1459, 1811, 1839, 1927)


def test_former_stress_failures() -> None:
    joints = stress_joints(seed=1, count=max(STRESS_REGRESSIONS) + 1)
    for i in STRESS_REGRESSIONS:
        p = joints[i]
        check_invariants(p, "broja")
        a = atoms(pid(p))
        assert atoms(pid(p.transpose(1, 0, 2))) == pytest.approx(a[[0, 2, 1, 3]], abs=1e-9)
        assert solve_broja(p).gap <= 1e-9


# ---------------------------------------------------------------- large joints, memory


def test_structured_path_matches_dense_path() -> None:
    p = np.random.default_rng(40).random((40, 40, 20))
    p /= p.sum()
    assert use_structured(p.shape)  # what pid(p) takes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        structured = solve_broja(p)
    dense = solve_broja(p, method="dense")
    assert structured.gap <= 1e-9
    assert structured.value == pytest.approx(dense.value, abs=1e-9)
    assert structured.q.sum(axis=1) == pytest.approx(p.sum(axis=1), abs=1e-12)
    assert structured.q.sum(axis=0) == pytest.approx(p.sum(axis=0), abs=1e-12)
    assert (structured.q >= 0).all()


@pytest.mark.parametrize("name", list(CANONICAL))
def test_structured_path_canonical_values(name: str) -> None:
    # The canonical joint with independent noise appended to both sources (which changes no
    # atom), solved on the structured path and turned into atoms as `pid` does.
    p, expected = CANONICAL[name]
    w = np.random.default_rng(5).dirichlet(np.ones(6))
    big = p[:, None, :, None, :] * w[None, :, None, None, None] * w[None, None, None, :, None]
    big = big.reshape(p.shape[0] * 6, p.shape[1] * 6, p.shape[2])
    sol = solve_broja(big, method="structured")
    assert sol.gap <= 1e-9
    i1, i2, i12 = joint_infos_bits(big)
    h_y = entropy_bits(big.sum(axis=(0, 1)))
    redundancy = i1 + i2 - (h_y + sol.value / math.log(2))
    assert redundancy == pytest.approx(expected[0], abs=1e-6)
    assert sol.value == pytest.approx(solve_broja(big, method="dense").value, abs=1e-9)


@pytest.mark.parametrize("kind", [1, 2])
def test_structured_path_on_sparse_and_spread_joints(kind: int) -> None:
    p = random_joint(np.random.default_rng(kind), (24, 18, 12), kind)
    sol = solve_broja(p, method="structured")
    assert sol.gap <= 1e-9
    assert sol.value == pytest.approx(solve_broja(p, method="dense").value, abs=1e-9)


def test_unknown_broja_method_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown BROJA method 'qr'.*auto, dense, structured"):
        solve_broja(CANONICAL["xor"][0], method="qr")


def test_joint_too_large_for_memory_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import estimators._validate as validate

    monkeypatch.setattr(validate, "available_memory", lambda: 50 * 2**20)
    p = np.full((60, 60, 60), 1 / 60**3)
    with pytest.raises(InsufficientMemoryError) as err:
        pid(p)
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    assert "\n" not in message
    assert re.search(
        r"shape \(60, 60, 60\) needs about \d+ MiB .* only 50 MiB is available", message
    )
    # Values with no mass are dropped before the estimate, and small joints need too little
    # to be checked at all.
    padded = np.zeros((70, 60, 65))
    padded[5:65, :, 2:62] = p
    with pytest.raises(InsufficientMemoryError, match=r"shape \(60, 60, 60\)"):
        pid(padded)
    assert pid(CANONICAL["and"][0]).measure == "broja"


def test_memory_check_is_skipped_when_memory_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    import estimators._validate as validate

    monkeypatch.setattr(validate, "available_memory", lambda: None)
    monkeypatch.setattr(validate, "MEMORY_CHECK_FLOOR", 0)
    assert atoms(pid(CANONICAL["xor"][0])) == pytest.approx((0, 0, 0, 1), abs=1e-6)


def test_available_memory_is_a_positive_count_or_none() -> None:
    from estimators._validate import available_memory

    avail = available_memory()
    assert avail is None or (isinstance(avail, int) and avail > 0)


def test_empty_values_are_dropped() -> None:
    p, expected = CANONICAL["and"]
    padded = np.zeros((4, 3, 5))
    padded[1:3, :2, 2:4] = p
    assert atoms(pid(padded)) == pytest.approx(expected, abs=1e-6)


def test_degenerate_but_valid_joints() -> None:
    single = np.ones((1, 1, 1))
    assert atoms(pid(single)) == pytest.approx((0, 0, 0, 0))
    constant_y = np.full((3, 2, 1), 1 / 6)
    assert atoms(pid(constant_y)) == pytest.approx((0, 0, 0, 0))
    one_x1 = np.random.default_rng(0).dirichlet(np.ones(12)).reshape(1, 3, 4)
    res = pid(one_x1)
    assert res.redundancy == pytest.approx(0, abs=1e-12)
    assert res.unique2 == pytest.approx(res.mutual_info, abs=1e-12)


def test_tiny_negative_roundoff_is_accepted() -> None:
    p = CANONICAL["xor"][0].copy()
    p[0, 0, 1] = -1e-15
    assert atoms(pid(p)) == pytest.approx((0, 0, 0, 1), abs=1e-6)


# ---------------------------------------------------------------- information helpers


def test_entropy_and_mutual_info() -> None:
    assert entropy_bits([0.5, 0.5]) == pytest.approx(1.0)
    assert entropy_bits(np.full((2, 4), 1 / 8)) == pytest.approx(3.0)
    assert entropy_bits([1.0, 0.0]) == 0.0
    assert mutual_info_bits(np.eye(4) / 4) == pytest.approx(2.0)
    assert mutual_info_bits(np.full((3, 5), 1 / 15)) == pytest.approx(0.0, abs=1e-12)
    assert joint_infos_bits(CANONICAL["xor"][0]) == pytest.approx((0.0, 0.0, 1.0), abs=1e-12)
    with pytest.raises(ValueError, match="sums to"):
        entropy_bits([0.5, 0.2])
    with pytest.raises(ValueError, match="2-D"):
        mutual_info_bits([0.5, 0.5])


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.full((2, 2, 2), 0.125) - np.eye(2)[:, :, None] * 0.25, "negative"),
        (np.where(np.eye(2)[:, :, None] > 0, np.nan, 0.125) * np.ones((2, 2, 2)), "non-finite"),
        (np.full((2, 2, 2), 0.2), "sums to 1.6"),
        (np.full((4, 4), 1 / 16), "3-D array p\\[x1, x2, y\\].*2-D"),
        (np.zeros((0, 2, 2)), "empty"),
        (np.zeros((2, 2, 2)), "degenerate"),
        ([["a"]], "numeric"),
    ],
)
def test_pid_rejects_bad_joints(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pid(bad)


def test_unknown_measure_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown PID measure 'bogus'.*broja, mmi, imin"):
        pid(CANONICAL["xor"][0], "bogus")
    with pytest.raises(ValueError, match="valid measures"):
        DiscretePID(measure="nope").fit([0, 1], [0, 1], [0, 1])


def test_measure_names_are_case_insensitive() -> None:
    assert pid(CANONICAL["xor"][0], "BROJA").measure == "broja"


# ---------------------------------------------------------------- DiscretePID


def test_discrete_pid_fit_matches_pid_of_plugin_joint() -> None:
    rng = np.random.default_rng(0)
    x1 = rng.integers(0, 3, 500)
    x2 = rng.integers(0, 2, 500)
    y = (x1 + x2) % 2
    est = DiscretePID()
    assert est.fit(x1, x2, y) is est
    expected = pid(joint_from_samples(x1, x2, y))
    assert est.pid_ == expected
    assert est.joint_.sum() == pytest.approx(1.0)
    assert est.joint_.shape == (3, 2, 2)
    for name in ATOMS:
        assert getattr(est, name + "_") == getattr(expected, name)
    assert est.mutual_info_ == expected.mutual_info


def test_discrete_pid_exact_on_balanced_xor() -> None:
    x1 = np.repeat([0, 0, 1, 1], 25)
    x2 = np.repeat([0, 1, 0, 1], 25)
    est = DiscretePID().fit(x1, x2, x1 ^ x2)
    assert atoms(est.pid_) == pytest.approx((0, 0, 0, 1), abs=1e-6)


def test_discrete_pid_accepts_tuple_rows() -> None:
    rng = np.random.default_rng(1)
    a, b, c = (rng.integers(0, 2, 400) for _ in range(3))
    x1 = np.stack([a, b], axis=1)  # modality 1 holds (a, b)
    x2 = np.stack([a, c], axis=1)  # modality 2 holds (a, c)
    est = DiscretePID().fit(x1, x2, a)
    assert est.joint_.shape[:2] == (4, 4)
    assert est.redundancy_ == pytest.approx(est.mutual_info_, abs=1e-6)
    assert est.redundancy_ == pytest.approx(entropy_bits(np.bincount(a) / 400), abs=1e-9)


def test_discrete_pid_accepts_integral_floats_and_any_codes() -> None:
    est = DiscretePID(measure="mmi").fit([10.0, -3.0, 10.0, -3.0], [7, 7, 8, 8], [5, 9, 5, 9])
    assert est.pid_.measure == "mmi"
    assert est.redundancy_ == pytest.approx(0.0, abs=1e-12)
    assert est.unique1_ == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([0, 1, 1], [0, 1], [0, 1, 0]), "mismatched sample counts: x1 has 3, x2 has 2, y has 3"),
        (([], [], []), "x1 is empty"),
        (([0.5, 1], [0, 1], [0, 1]), "x1 must hold integer codes.*0.5"),
        (([0, 1], [0, 1], [0, 1.5]), "y must hold integer codes"),
        (([0, 1], [0, 1], ["a", "b"]), "y must hold integer codes.*dtype"),
        (([0, 1], [0, np.nan], [0, 1]), "x2 contains NaN"),
        ((np.zeros((2, 2, 2), int), [0, 1], [0, 1]), "x1 must be 1-D"),
        (([0, 1], [0, 1], [[0, 1], [1, 0]]), "y must be a 1-D array"),
    ],
)
def test_discrete_pid_validation(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DiscretePID().fit(*args)


def test_estimators_are_sklearn_style() -> None:
    est = DiscretePID(measure="imin")
    assert est.get_params() == {"measure": "imin"}
    assert clone(est).measure == "imin"
    assert not hasattr(est, "pid_")
    assert "n_clusters" in ClusteredPID().get_params()


# ---------------------------------------------------------------- registry


def test_registry() -> None:
    assert ESTIMATORS["discrete"] is DiscretePID
    assert ESTIMATORS["clustered"] is ClusteredPID
    assert get_estimator("clustered") is ClusteredPID
    with pytest.raises(
        ValueError, match=re.escape("valid estimators: batch, clustered, discrete, gaussian")
    ):
        get_estimator("neural-ish")
    with pytest.raises(ValueError, match="already registered"):
        register("discrete")(ClusteredPID)
    assert set(MEASURES) == {"broja", "mmi", "imin"}


# ---------------------------------------------------------------- speed (generous bounds)


def test_broja_is_fast_enough() -> None:
    import time

    rng = np.random.default_rng(0)
    p = rng.random((10, 10, 10))
    p /= p.sum()
    pid(p)  # warm up imports and caches
    start = time.perf_counter()
    pid(p)
    # Target 50 ms on an idle machine; the bound leaves room for a busy shared CPU.
    assert time.perf_counter() - start < 2.0
    assert math.isfinite(pid(p).synergy)
