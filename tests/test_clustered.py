"""ClusteredPID: CVX-style PID of continuous modalities through k-means clusters."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from estimators import ClusteredPID, get_estimator, joint_infos_bits


def latent_data(n: int, label: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two 3-D modalities holding well-separated discrete factors, plus one label.

    x1 holds (s, u), x2 holds (s, v): s shared, u and v private, all uniform bits, each
    encoded as a +-3 offset on one coordinate plus unit noise and one pure-noise coordinate.
    """
    rng = np.random.default_rng(seed)
    s, u, v = (rng.integers(0, 2, n) for _ in range(3))
    noise = rng.normal(scale=0.3, size=(2, n, 3))
    x1 = np.stack([6.0 * s, 6.0 * u, np.zeros(n)], axis=1) + noise[0]
    x2 = np.stack([6.0 * s, 6.0 * v, np.zeros(n)], axis=1) + noise[1]
    y = {"redundancy": s, "unique1": u, "synergy": u ^ v}[label]
    return x1, x2, y


def test_fit_returns_self_and_sets_attributes() -> None:
    x1, x2, y = latent_data(400, "redundancy")
    est = ClusteredPID(n_clusters=4, random_state=0)
    assert est.fit(x1, x2, y) is est
    for name in ("redundancy_", "unique1_", "unique2_", "synergy_", "mutual_info_"):
        assert np.isfinite(getattr(est, name))
    atoms = [est.redundancy_, est.unique1_, est.unique2_, est.synergy_]
    assert min(atoms) >= -1e-9
    assert sum(atoms) == pytest.approx(est.mutual_info_, abs=1e-9)
    assert est.mutual_info_ == pytest.approx(joint_infos_bits(est.joint_)[2], abs=1e-12)
    assert est.pid_.measure == "broja"
    assert est.labels1_.shape == (400,)
    assert est.joint_.shape[0] <= 4


@pytest.mark.parametrize(
    ("label", "atom"),
    [("redundancy", "redundancy_"), ("unique1", "unique1_"), ("synergy", "synergy_")],
)
def test_recovers_the_dominant_atom(label: str, atom: str) -> None:
    x1, x2, y = latent_data(800, label)
    est = ClusteredPID(n_clusters=4, random_state=0).fit(x1, x2, y)
    # One bit of label entropy, all of it in the expected atom (plug-in bias is small here).
    assert getattr(est, atom) == pytest.approx(1.0, abs=0.05)
    assert est.mutual_info_ == pytest.approx(1.0, abs=0.05)


def test_pca_path() -> None:
    # The shared factor is copied on three coordinates, the private one on one: after
    # standardising, two principal components keep both and drop the noise.
    rng = np.random.default_rng(0)
    s, u, v = (rng.integers(0, 2, 400) for _ in range(3))

    def modality(private: np.ndarray) -> np.ndarray:
        clean = np.stack([s, s, s, private, np.zeros(400)], axis=1) * 6.0
        return clean + rng.normal(scale=0.3, size=clean.shape)

    est = ClusteredPID(n_clusters=4, n_components=2, random_state=0)
    est.fit(modality(u), modality(v), s)
    assert est.redundancy_ == pytest.approx(1.0, abs=0.05)


def test_fewer_distinct_points_than_clusters() -> None:
    x1 = np.repeat([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], 10, axis=0)
    x2 = np.repeat([[5.0], [6.0]], 15, axis=0)
    y = np.tile([0, 1, 2], 10)
    est = ClusteredPID(n_clusters=20, random_state=0).fit(x1, x2, y)
    assert est.joint_.shape[:2] == (3, 2)
    assert np.isfinite(est.synergy_)
    one = ClusteredPID(n_clusters=5).fit(np.ones((4, 3)), np.ones(4), [0, 1, 0, 1])
    assert one.mutual_info_ == pytest.approx(0.0, abs=1e-12)


def test_one_dimensional_inputs_and_single_sample() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    est = ClusteredPID(n_clusters=3, random_state=1).fit(x, -x, (x > 0).astype(int))
    assert est.redundancy_ == pytest.approx(est.mutual_info_, abs=1e-6)
    single = ClusteredPID().fit([[1.0, 2.0]], [[3.0]], [4])
    assert single.mutual_info_ == 0.0


def test_random_state_reproducible() -> None:
    x1, x2, y = latent_data(300, "synergy", seed=3)
    x1 = x1 + np.random.default_rng(9).normal(size=x1.shape)  # make k-means depend on seeds
    a = ClusteredPID(n_clusters=6, random_state=42).fit(x1, x2, y)
    b = ClusteredPID(n_clusters=6, random_state=42).fit(x1, x2, y)
    assert a.pid_ == b.pid_
    c = ClusteredPID(n_clusters=6, random_state=np.random.RandomState(42)).fit(x1, x2, y)
    assert c.pid_ == a.pid_


def test_measures() -> None:
    x1, x2, y = latent_data(400, "unique1")
    for measure in ("mmi", "imin"):
        est = ClusteredPID(n_clusters=4, measure=measure, random_state=0).fit(x1, x2, y)
        assert est.pid_.measure == measure
        assert est.unique1_ == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(
    ("kwargs", "args", "message"),
    [
        ({}, ([[np.nan, 1.0]], [[1.0]], [0]), "x1 contains 1 NaN"),
        ({}, ([[1.0]], [[np.inf]], [0]), "x2 contains infinite"),
        ({}, (np.zeros((3, 2)), np.zeros((4, 2)), [0, 1, 0]), "mismatched sample counts"),
        ({}, (np.zeros((0, 2)), np.zeros((0, 2)), []), "x1 is empty"),
        ({}, (np.zeros((2, 2)), np.zeros((2, 2)), [0.5, 1.0]), "y must hold integer codes"),
        ({}, (np.zeros((2, 2, 2)), np.zeros((2, 2)), [0, 1]), "x1 must be a 2-D array"),
        ({"n_clusters": 0}, (np.zeros((2, 2)), np.zeros((2, 2)), [0, 1]), "n_clusters must be"),
        ({"n_components": 1.5}, (np.zeros((2, 2)), np.zeros((2, 2)), [0, 1]), "n_components"),
        ({"measure": "x"}, (np.zeros((2, 2)), np.zeros((2, 2)), [0, 1]), "valid measures"),
    ],
)
def test_validation(kwargs: dict, args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClusteredPID(**kwargs).fit(*args)


def test_sklearn_conventions() -> None:
    est = ClusteredPID(n_clusters=7, n_components=3, measure="mmi", random_state=5)
    params = est.get_params()
    assert params["n_clusters"] == 7 and params["n_components"] == 3
    assert clone(est).get_params() == params
    assert get_estimator("clustered") is ClusteredPID
