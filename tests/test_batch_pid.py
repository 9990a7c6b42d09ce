"""BatchPID (BATCH): atoms on data with a known PID, determinism, recorded settings, bad input."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from estimators import BatchPID, BatchPIDResult, get_estimator
from estimators.discrete import pid

pytest.importorskip("torch")


#: Small, fast settings for the default suite (the benchmark runs the full defaults).
FAST = {"classifier_epochs": 15, "align_epochs": 3, "batch_size": 128}


@pytest.mark.parametrize(
    ("label", "atom"),
    [("redundancy", "redundancy"), ("unique1", "unique1"), ("synergy", "synergy")],
)
def test_atoms_on_latent_bits(latent_data, label: str, atom: str) -> None:
    x1, x2, y = latent_data(2000, label)
    est = BatchPID(random_state=0, **FAST).fit(x1, x2, y)
    r = est.pid_
    assert isinstance(r, BatchPIDResult) and r.measure == "batch"
    # one bit, all of it in `atom`
    assert r.atom(atom) == pytest.approx(1.0, abs=0.1)
    for other in r.ATOMS:
        if other != atom:
            assert abs(r.atom(other)) < 0.1, (other, r)
    assert r.accuracy12 > 0.95
    assert r.marginal_error < 1e-3


def _gate(kind: str, n: int = 4000, seed: int = 0):
    """Two uniform bits b1, b2, each on one coordinate of its modality (+-6 offset, noise 0.3,
    one pure-noise coordinate), and y = b1 AND b2 or b1 + b2; with the exact PID of (b1, b2, y).

    The bits are recoverable from (x1, x2), so the PID of (x1, x2, y) is that of the bits. On
    these gates the coupling BATCH starts from is not the optimum: the answer needs alignment.
    """
    rng = np.random.default_rng(seed)
    b1, b2 = rng.integers(0, 2, n), rng.integers(0, 2, n)
    noise = rng.normal(scale=0.3, size=(2, n, 2))
    x1 = np.stack([6.0 * b1, np.zeros(n)], axis=1) + noise[0]
    x2 = np.stack([6.0 * b2, np.zeros(n)], axis=1) + noise[1]
    gate = {"and": np.bitwise_and, "sum": np.add}[kind]
    p = np.zeros((2, 2, 3))
    for a in (0, 1):
        for b in (0, 1):
            p[a, b, gate(a, b)] = 0.25
    truth = pid(p[..., : 2 if kind == "and" else 3])
    return x1, x2, gate(b1, b2), truth


#: Gate settings: more classifier epochs than FAST (the atoms here are 0.3-1.0 bits, the
#: classifiers' MI estimates must be close); 3 alignment epochs.
GATE = {"classifier_epochs": 30, "align_epochs": 3, "batch_size": 128}


def _atom_errors(r, truth) -> np.ndarray:
    keys = ("redundancy", "unique1", "unique2", "synergy")
    return np.array([abs(getattr(r, k) - getattr(truth, k)) for k in keys])


@pytest.mark.parametrize("kind", ["and", "sum"])
def test_atoms_on_gates_where_alignment_matters(kind: str) -> None:
    """AND: R 0.311, S 0.5; SUM: R 0.5, S 1.0 (BROJA, computed). Measured errors of these
    settings, 4 seeds: at most 0.051 bits; without alignment 0.2-0.31 (next test)."""
    x1, x2, y, truth = _gate(kind)
    assert truth.synergy > 0.45 and truth.redundancy > 0.3  # textbook values, not zero atoms
    r = BatchPID(random_state=0, **GATE).fit(x1, x2, y).pid_
    assert r.accuracy12 > 0.99
    errors = _atom_errors(r, truth)
    assert errors.max() < 0.075, (errors, r, truth)


@pytest.mark.parametrize("kind", ["and", "sum"])
def test_without_alignment_the_gates_are_off(kind: str) -> None:
    """The premise of the test above: the starting coupling is far from the optimum here."""
    x1, x2, y, truth = _gate(kind)
    r = BatchPID(random_state=0, **{**GATE, "align_epochs": 0}).fit(x1, x2, y).pid_
    assert _atom_errors(r, truth).max() > 0.15


def test_same_seed_same_numbers_and_settings_recorded(latent_data) -> None:
    x1, x2, y = latent_data(800, "synergy", seed=1)
    kw = {"classifier_epochs": 3, "align_epochs": 1, "batch_size": 100}
    a = BatchPID(random_state=3, **kw).fit(x1, x2, y).pid_
    b = BatchPID(random_state=3, **kw).fit(x1, x2, y).pid_
    c = BatchPID(random_state=4, **kw).fit(x1, x2, y).pid_
    values = [(r.redundancy, r.unique1, r.unique2, r.synergy) for r in (a, b, c)]
    assert values[0] == values[1]
    assert values[0] != values[2]
    params = dict(a.params)
    assert params["align_epochs"] == 1 and params["batch_size"] == 100
    assert params["random_state"] == 3 and "seed" not in params
    assert {"sinkhorn_iters", "sinkhorn_tol", "hidden", "embed_dim"} <= set(params)
    assert params["joint"] == "late"
    assert a.seconds > 0 and a.device == "cpu"


def test_concat_joint_classifier(latent_data) -> None:
    """joint="concat" (one MLP on [x1, x2], as the published code) still finds the synergy."""
    x1, x2, y = latent_data(2000, "synergy")
    r = BatchPID(random_state=0, joint="concat", **FAST).fit(x1, x2, y).pid_
    assert r.synergy == pytest.approx(1.0, abs=0.1) and r.accuracy12 > 0.95
    assert dict(r.params)["joint"] == "concat"


def test_calibration_temperatures(latent_data) -> None:
    """calibrate=True fits one temperature per classifier on the validation share and
    changes the estimate; calibrate=False leaves the logits as trained."""
    x1, x2, y = latent_data(2000, "synergy")
    on = BatchPID(random_state=0, **FAST).fit(x1, x2, y).pid_
    off = BatchPID(random_state=0, calibrate=False, **FAST).fit(x1, x2, y).pid_
    assert off.temperatures == (1.0, 1.0, 1.0)
    # the grid's ends, e^-3 and e^3, in float32
    assert all(0.0497 < t < 20.09 for t in on.temperatures)
    # uninformative x1, x2 alone: flattened; the joint, perfectly separated: sharpened
    assert on.temperatures[0] > 1 and on.temperatures[1] > 1 and on.temperatures[2] < 1
    assert on.synergy != off.synergy
    assert on.synergy == pytest.approx(1.0, abs=0.1)
    assert dict(on.params)["calibrate"] is True


def test_held_out_set_and_label_codes(latent_data) -> None:
    x1, x2, y = latent_data(900, "redundancy", seed=2)
    kw = {"classifier_epochs": 8, "align_epochs": 1, "batch_size": 100}
    est = get_estimator("batch")(random_state=0, **kw)
    est.fit(x1[:600], x2[:600], y[:600] + 5, held_out=(x1[600:], x2[600:], y[600:] + 5))
    assert est.accuracy_["x1"] > 0.9 and est.accuracy_["x2"] > 0.9
    assert list(est.classes_) == [5, 6]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 1}, "batch_size must be at least 2"),
        ({"align_epochs": -1}, "align_epochs must be an integer >= 0"),
        ({"sinkhorn_tol": 0.0}, "sinkhorn_tol must be a number in"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"joint": "early"}, "unknown joint 'early'"),
        ({"calibrate": "yes"}, "calibrate must be True or False"),
        ({"random_state": 1.5}, "random_state must be None, an int seed"),
        ({"seed": -1}, "seed must be None, an int seed"),
        ({"n_threads": 0}, "n_threads must be an integer >= 1"),
    ],
)
def test_bad_parameters(latent_data, kwargs: dict, match: str) -> None:
    x1, x2, y = latent_data(600, "redundancy")
    with pytest.raises(ValueError, match=match):
        BatchPID(**kwargs).fit(x1, x2, y)


def test_bad_inputs(latent_data) -> None:
    x1, x2, y = latent_data(600, "redundancy")
    with pytest.raises(ValueError, match="at least 512 training samples"):
        BatchPID().fit(x1[:300], x2[:300], y[:300])
    with pytest.raises(ValueError, match="mismatched sample counts"):
        BatchPID().fit(x1, x2[:-1], y)
    with pytest.raises(ValueError, match="single class"):
        BatchPID(batch_size=64).fit(x1, x2, np.zeros(600, dtype=int))
    with pytest.raises(ValueError, match="held_out y has labels not in y"):
        BatchPID(batch_size=64).fit(x1, x2, y, held_out=(x1[:10], x2[:10], y[:10] + 7))
    with pytest.raises(ValueError, match="held_out features must match"):
        BatchPID(batch_size=64).fit(x1, x2, y, held_out=(x1[:10, :2], x2[:10], y[:10]))
    with pytest.raises(ValueError, match="NaN"):
        BatchPID().fit(np.full_like(x1, np.nan), x2, y)


def test_seed_is_a_deprecated_alias_of_random_state(latent_data) -> None:
    """`seed` (the old name) still works for one release: it warns and gives the numbers of
    the same random_state; given with a different random_state, it is refused."""
    x1, x2, y = latent_data(600, "synergy", seed=1)
    kw = {"classifier_epochs": 2, "align_epochs": 1, "batch_size": 100}
    with pytest.warns(FutureWarning, match=r"BatchPID\(seed=...\) is deprecated.*random_state"):
        old = BatchPID(seed=5, **kw).fit(x1, x2, y).pid_
    new = BatchPID(random_state=5, **kw).fit(x1, x2, y).pid_
    assert old == dataclasses.replace(new, seconds=old.seconds)
    with pytest.raises(ValueError, match="pass random_state only"):
        BatchPID(random_state=4, seed=5, **kw).fit(x1, x2, y)
    with warnings.catch_warnings():  # no warning without seed
        warnings.simplefilter("error", FutureWarning)
        BatchPID(random_state=5, **kw).fit(x1, x2, y)


def test_random_state_as_scikit_learn_takes_it(latent_data) -> None:
    """An int seed, a RandomState (a seed drawn from it) or None (numpy's global state)."""
    x1, x2, y = latent_data(600, "redundancy")
    kw = {"classifier_epochs": 2, "align_epochs": 1, "batch_size": 100}

    def atoms(state: object) -> tuple[float, ...]:
        r = BatchPID(random_state=state, **kw).fit(x1, x2, y).pid_
        return (r.redundancy, r.unique1, r.unique2, r.synergy)

    assert atoms(np.random.RandomState(7)) == atoms(np.random.RandomState(7))
    seed = int(np.random.RandomState(7).randint(np.iinfo(np.int32).max))
    assert atoms(np.random.RandomState(7)) == atoms(seed)
    saved = np.random.get_state()  # noqa: NPY002 (None draws from the global RandomState)
    try:
        np.random.seed(3)  # noqa: NPY002
        first = atoms(None)
        np.random.seed(3)  # noqa: NPY002
        assert atoms(None) == first
    finally:
        np.random.set_state(saved)  # noqa: NPY002
