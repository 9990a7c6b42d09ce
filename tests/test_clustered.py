"""ClusteredPID: CVX-style PID of continuous modalities through k-means clusters."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone

from estimators import (
    ClusteredPID,
    ClusteredPIDResult,
    PIDResult,
    SmallSampleWarning,
    entropy_bits,
    get_estimator,
    joint_infos_bits,
)

ATOMS = ("redundancy", "unique1", "unique2", "synergy", "mutual_info")


def test_fit_returns_self_and_sets_attributes(latent_data) -> None:
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
def test_recovers_the_dominant_atom(latent_data, label: str, atom: str) -> None:
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
    with pytest.warns(SmallSampleWarning):  # 30 samples over 18 cells
        est = ClusteredPID(n_clusters=20, random_state=0).fit(x1, x2, y)
    assert est.joint_.shape[:2] == (3, 2)
    assert np.isfinite(est.synergy_)
    with pytest.warns(SmallSampleWarning):
        one = ClusteredPID(n_clusters=5).fit(np.ones((4, 3)), np.ones(4), [0, 1, 0, 1])
    assert one.mutual_info_ == pytest.approx(0.0, abs=1e-12)


def test_one_dimensional_inputs_and_single_sample() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    est = ClusteredPID(n_clusters=3, random_state=1).fit(x, -x, (x > 0).astype(int))
    assert est.redundancy_ == pytest.approx(est.mutual_info_, abs=1e-6)
    with pytest.warns(SmallSampleWarning, match="1 sample over 1 occupied"):
        single = ClusteredPID().fit([[1.0, 2.0]], [[3.0]], [4])
    assert single.mutual_info_ == 0.0


def test_random_state_reproducible(latent_data) -> None:
    x1, x2, y = latent_data(300, "synergy", seed=3)
    x1 = x1 + np.random.default_rng(9).normal(size=x1.shape)  # make k-means depend on seeds
    a = ClusteredPID(n_clusters=6, random_state=42).fit(x1, x2, y)
    b = ClusteredPID(n_clusters=6, random_state=42).fit(x1, x2, y)
    assert a.pid_ == b.pid_
    c = ClusteredPID(n_clusters=6, random_state=np.random.RandomState(42)).fit(x1, x2, y)
    assert c.pid_ == a.pid_


def test_measures(latent_data) -> None:
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


# ---------------------------------------------------------------- small samples


def random_labels(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two 2-D Gaussian modalities and labels independent of both: every true atom is 0."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)), rng.normal(size=(n, 2)), rng.integers(0, 2, n)


def test_small_sample_warns_and_flags() -> None:
    # The case: 10 samples, 50 clusters, so each sample is its own cluster and
    # I(Y; X1) = I(Y; X2) = H(Y) reads as redundancy.
    x1, x2, y = random_labels(10)
    text = "10 samples over 10 occupied (cluster1, cluster2, y) cells, 1.0 per cell (fewer than 5)"
    with pytest.warns(SmallSampleWarning, match=re.escape(text)) as record:
        est = ClusteredPID(n_clusters=50, random_state=0).fit(x1, x2, y)
    assert "bias_correction='shuffle'" in str(record[0].message)
    assert record[0].filename == __file__  # points at the caller's fit
    assert issubclass(SmallSampleWarning, UserWarning)
    assert est.small_sample_ is True
    assert est.samples_per_cell_ == 1.0
    assert est.redundancy_ == pytest.approx(entropy_bits(np.bincount(y) / 10), abs=1e-6)
    assert est.redundancy_ > 0.8  # the plug-in answer is still reported, flagged
    assert isinstance(est.pid_, ClusteredPIDResult) and isinstance(est.pid_, PIDResult)
    assert est.pid_.small_sample is True and est.pid_.samples_per_cell == 1.0
    assert "small_sample=True" in repr(est.pid_)
    assert est.raw_ is est.pid_ and est.null_ is None
    assert est.pid_.bias_correction == "none"


def test_large_sample_is_not_flagged(latent_data) -> None:
    x1, x2, y = latent_data(800, "redundancy")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallSampleWarning)
        est = ClusteredPID(n_clusters=4, random_state=0).fit(x1, x2, y)
    assert est.small_sample_ is False and est.pid_.small_sample is False
    # y = s is fixed by either modality's cluster: about 8 occupied cells for 800 samples.
    assert est.samples_per_cell_ == pytest.approx(800 / np.count_nonzero(est.joint_))
    assert est.samples_per_cell_ > 50


def test_threshold_is_mean_samples_per_occupied_cell() -> None:
    # Two distinct points per modality, y a copy of x1: 4 occupied cells.
    x1 = np.repeat([0.0, 1.0], 10)
    x2 = np.tile([0.0, 1.0], 10)
    y = (x1 > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallSampleWarning)
        est = ClusteredPID(n_clusters=2).fit(x1, x2, y)  # 20 / 4 = 5 per cell: not small
    assert est.samples_per_cell_ == 5.0 and not est.small_sample_
    with pytest.warns(SmallSampleWarning, match=r"4\.5 per cell"):
        est.fit(x1[1:-1], x2[1:-1], y[1:-1])  # 18 / 4 = 4.5
    assert est.small_sample_


def test_shuffle_correction_removes_the_null_bias_of_the_small_sample() -> None:
    x1, x2, y = random_labels(10)
    with pytest.warns(SmallSampleWarning, match="shuffle-corrected") as record:
        est = ClusteredPID(n_clusters=50, random_state=0, bias_correction="shuffle")
        est.fit(x1, x2, y)
    assert "raw_" in str(record[0].message)
    assert est.raw_.redundancy > 0.8
    assert est.redundancy_ == pytest.approx(0.0, abs=0.05)
    assert est.mutual_info_ == pytest.approx(0.0, abs=0.05)
    for atom in ATOMS:
        raw, null, corrected = (getattr(r, atom) for r in (est.raw_, est.null_, est.pid_))
        assert corrected == pytest.approx(raw - null, abs=1e-9)
    assert isinstance(est.null_, PIDResult) and est.null_.measure == "broja"
    assert est.pid_.bias_correction == "shuffle" and est.raw_.bias_correction == "none"
    assert est.pid_.small_sample and est.raw_.small_sample
    assert est.redundancy_ == est.pid_.redundancy


def test_shuffle_correction_is_unbiased_under_independence() -> None:
    # 60 samples, 8 clusters per modality: plug-in I(Y; X1, X2) is about 0.4 bit of noise,
    # most of it synergy; the corrected values average about 0 over data sets.
    raw, corrected = [], []
    for seed in range(5):
        with pytest.warns(SmallSampleWarning):
            est = ClusteredPID(n_clusters=8, random_state=seed, bias_correction="shuffle")
            est.fit(*random_labels(60, seed))
        raw.append([getattr(est.raw_, a) for a in ATOMS])
        corrected.append([getattr(est.pid_, a) for a in ATOMS])
    raw_mean, corrected_mean = np.mean(raw, axis=0), np.mean(corrected, axis=0)
    assert raw_mean[-1] > 0.2 and raw_mean[3] > 0.1  # mutual information, synergy
    assert np.abs(corrected_mean).max() < 0.05
    # Not clipped at 0: some corrected atoms are negative, and they still sum to the
    # corrected mutual information.
    assert np.min(corrected) < 0
    for row in corrected:
        assert sum(row[:4]) == pytest.approx(row[4], abs=1e-9)


def test_shuffle_correction_is_small_on_large_clean_data(latent_data) -> None:
    # XOR of two well-separated clusters per modality: S = 1 bit, the rest 0.
    x1, x2, y = latent_data(800, "synergy")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallSampleWarning)
        est = ClusteredPID(n_clusters=4, random_state=0, bias_correction="shuffle")
        est.fit(x1, x2, y)
    assert not est.small_sample_
    assert est.synergy_ == pytest.approx(1.0, abs=0.05)
    for atom in ATOMS:
        assert abs(getattr(est.null_, atom)) < 0.03
        assert getattr(est.raw_, atom) - getattr(est.pid_, atom) == pytest.approx(
            getattr(est.null_, atom), abs=1e-9
        )
    for atom in ("redundancy", "unique1", "unique2"):
        assert getattr(est, atom + "_") == pytest.approx(0.0, abs=0.03)


def test_shuffle_reproducible_and_clusters_unchanged(latent_data) -> None:
    x1, x2, y = latent_data(200, "unique1", seed=4)
    x1 = x1 + np.random.default_rng(2).normal(size=x1.shape)

    def fit(**kw: object) -> ClusteredPID:
        return ClusteredPID(n_clusters=6, random_state=7, **kw).fit(x1, x2, y)

    plain, a, b = fit(), fit(bias_correction="shuffle"), fit(bias_correction="shuffle")
    assert a.pid_ == b.pid_ and a.null_ == b.null_
    # The permutations are drawn after the clustering seeds: the raw estimate is the same.
    assert np.array_equal(a.labels1_, plain.labels1_) and a.raw_ == plain.pid_
    c = fit(bias_correction="shuffle", n_shuffles=3)
    assert c.raw_ == a.raw_ and c.null_ != a.null_


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_clusters": 0}, "n_clusters must be a positive integer; got 0"),
        ({"n_clusters": -3}, "n_clusters must be a positive integer; got -3"),
        ({"n_clusters": 2.5}, "n_clusters must be a positive integer; got 2.5"),
        ({"n_clusters": "8"}, "n_clusters must be a positive integer; got '8'"),
        ({"n_clusters": True}, "n_clusters must be a positive integer; got True"),
        ({"n_components": 0}, "n_components must be a positive integer or None; got 0"),
        ({"measure": "x"}, "unknown PID measure 'x'; valid measures: broja, mmi, imin"),
        ({"n_init": 0}, "n_init must be a positive integer; got 0"),
        (
            {"bias_correction": "bootstrap"},
            "unknown bias_correction 'bootstrap'; valid values: 'none', 'shuffle'",
        ),
        ({"bias_correction": None}, "unknown bias_correction None"),
        ({"n_shuffles": 0}, "n_shuffles must be a positive integer; got 0"),
        ({"random_state": -1}, "random_state must be None, an int seed in [0, 2**32 - 1]"),
        ({"random_state": "0"}, "numpy.random.RandomState; got '0'"),
    ],
)
def test_invalid_parameters_are_stored_and_refused_by_fit(kwargs: dict, message: str) -> None:
    """As in scikit-learn: construction and set_params store any value; fit checks them all
    before touching the data."""
    data = (np.zeros((4, 2)), np.zeros((4, 2)), [0, 1, 0, 1])
    est = ClusteredPID(**kwargs)
    assert est.get_params()[next(iter(kwargs))] is next(iter(kwargs.values()))
    with pytest.raises(ValueError, match=re.escape(message)):
        est.fit(*data)
    est = ClusteredPID(n_clusters=3).set_params(**kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        est.fit(*data)


def test_valid_parameters_are_stored_unchanged(latent_data) -> None:
    rs = np.random.RandomState(3)
    est = ClusteredPID(measure="MMI", bias_correction="Shuffle", random_state=rs, n_shuffles=5)
    assert est.measure == "MMI" and est.bias_correction == "Shuffle"  # as given
    assert est.random_state is rs
    assert ClusteredPID(random_state=np.int64(2**32 - 1)).random_state == 2**32 - 1
    assert est.set_params(n_clusters=np.int32(4)) is est and est.n_clusters == 4
    x1, x2, y = latent_data(200, "unique1")
    est.fit(x1, x2, y)
    assert est.pid_.measure == "mmi" and est.pid_.bias_correction == "shuffle"


def test_clone_round_trip(latent_data) -> None:
    est = ClusteredPID(
        n_clusters=5, n_components=2, measure="imin", random_state=1, n_init=2,
        bias_correction="shuffle", n_shuffles=4,
    )  # fmt: skip
    params = est.get_params()
    assert params["bias_correction"] == "shuffle" and params["n_shuffles"] == 4
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    x1, x2, y = latent_data(200, "synergy")
    est.fit(x1, x2, y)
    fresh = clone(est)
    assert not hasattr(fresh, "pid_") and not hasattr(fresh, "small_sample_")
    assert fresh.fit(x1, x2, y).pid_ == est.pid_ and fresh.null_ == est.null_
    assert clone(est).set_params(bias_correction="none").fit(x1, x2, y).pid_ == est.raw_
