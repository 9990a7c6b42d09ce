"""Tests of the vector dataset generators: ground truth, labels, determinism, errors, io."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, log_loss
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier

import generators
from generators import (
    GENERATORS,
    TASK_ATOM,
    TASKS,
    BimodalDataset,
    Split,
    coerce_params,
    make,
    parameters,
)
from generators import bits as bits_gen
from generators._truth import LatentStructure, exact_pid, latent_joint
from generators.io import load_npz, save_npz

SMALL = {"n_train": 50, "n_test": 20}
PID_FIELDS = ("redundancy", "unique1", "unique2", "synergy", "mutual_info")

# (generator, params) pairs whose ground truth is checked; bits=3 exercises the reduced joint.
TRUTH_CASES = [
    ("bits", {"bits": 1}),
    ("bits", {"bits": 2}),
    ("bits", {"bits": 3}),
    ("gaussian", {}),
    ("content_style", {}),
]


def _code(groups: list[np.ndarray]) -> np.ndarray:
    """Class index of concatenated bit groups, each bit k of a group weighing 2**k."""
    out = np.zeros(groups[0].shape[0], dtype=np.int64)
    for g in groups:
        for k in reversed(range(g.shape[1])):
            out = out * 2 + g[:, k]
    return out


def _plugin_mi_bits(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in mutual information (bits) of two integer arrays."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(joint, (ai, bi), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log2(joint[nz] / (pa @ pb)[nz])).sum())


# --- registry and parameters -------------------------------------------------------------


def test_registry_and_defaults() -> None:
    assert {"bits", "gaussian", "content_style"} <= set(GENERATORS)
    assert parameters("bits") == {
        "bits": 2,
        "dim": 32,
        "noise": 0.1,
        "n_train": 10000,
        "n_test": 2000,
        "seed": 0,
        "synergy_pretrain": "permutation",
        "modalities": 2,
        "triple_map": "latin",
    }
    assert parameters("gaussian") == {
        "latent_dim": 5,
        "proj_dim": 32,
        "noise": 0.1,
        "n_train": 10000,
        "n_test": 2000,
        "seed": 0,
        "synergy_pretrain": "permutation",
    }
    assert generators.get("bits") is bits_gen.generate
    assert TASKS == ("redundancy", "unique1", "unique2", "synergy")
    assert set(TASK_ATOM) == set(TASKS)


# --- ground truth ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "params"), TRUTH_CASES)
def test_true_pid_is_textbook(name: str, params: dict) -> None:
    ds = make(name, **params, **SMALL)
    for task in TASKS:
        res = ds.true_pid[task]
        h_y = math.log2(ds.n_classes[task])
        assert res.mutual_info == pytest.approx(h_y, abs=1e-6), task
        for atom in ("redundancy", "unique1", "unique2", "synergy"):
            expected = h_y if atom == TASK_ATOM[task] else 0.0
            assert res.atom(atom) == pytest.approx(expected, abs=1e-6), (task, atom)


def test_bits_entropy_scales_with_bits() -> None:
    assert make("bits", bits=3, **SMALL).true_pid["synergy"].synergy == pytest.approx(3, abs=1e-6)


def test_reduced_joint_gives_the_same_pid() -> None:
    # Forcing the reduction (max_full_values=1) must not change any atom.
    st_ = bits_gen.structure(1)
    for task, label in bits_gen.LABELS.items():
        full = exact_pid(st_, label)
        reduced = exact_pid(st_, label, max_full_values=1)
        for atom in ("redundancy", "unique1", "unique2", "synergy", "mutual_info"):
            assert getattr(reduced, atom) == pytest.approx(getattr(full, atom), abs=1e-6), task


def test_latent_joint_is_exact() -> None:
    st_ = LatentStructure(cards=(("a", 2), ("b", 2)), x1=("a",), x2=("b",))
    p = latent_joint(st_, ("xor", "a", "b"))
    expected = np.zeros((2, 2, 2))
    for a in range(2):
        for b in range(2):
            expected[a, b, a ^ b] = 0.25
    np.testing.assert_array_equal(p, expected)
    p = latent_joint(bits_gen.structure(2), bits_gen.LABELS["synergy"])
    assert p.shape == (64, 64, 4)
    assert p.sum() == pytest.approx(1.0)


# --- labels, shapes, dtypes ---------------------------------------------------------------


def test_bits_labels_are_functions_of_latents() -> None:
    ds = make("bits", bits=3, n_train=500, n_test=100, seed=3)
    for split in (ds.train, ds.test):
        z = split.latents
        assert set(z) == {"r", "u1", "u2", "s1", "s2"}
        for g in z.values():
            assert g.shape == (len(split), 3)
            assert np.issubdtype(g.dtype, np.integer)
            assert set(np.unique(g)) <= {0, 1}
        np.testing.assert_array_equal(split.labels["redundancy"], _code([z["r"]]))
        np.testing.assert_array_equal(split.labels["unique1"], _code([z["u1"]]))
        np.testing.assert_array_equal(split.labels["unique2"], _code([z["u2"]]))
        np.testing.assert_array_equal(split.labels["synergy"], _code([z["s1"] ^ z["s2"]]))


def test_gaussian_labels_are_functions_of_latents() -> None:
    ds = make("gaussian", n_train=500, n_test=100, seed=3)
    for split in (ds.train, ds.test):
        z = split.latents
        assert set(z) == {"r", "u1", "u2", "s1", "s2"}
        assert all(v.shape == (len(split), 5) for v in z.values())
        for task, f in (("redundancy", "r"), ("unique1", "u1"), ("unique2", "u2")):
            np.testing.assert_array_equal(split.labels[task], z[f].mean(1) > 0)
        syn = np.sign(z["s1"].mean(1)) * np.sign(z["s2"].mean(1)) > 0
        np.testing.assert_array_equal(split.labels["synergy"], syn)


@pytest.mark.parametrize(
    ("name", "params", "dim"),
    [
        ("bits", {"bits": 2, "dim": 7}, 7),
        ("gaussian", {"latent_dim": 3, "proj_dim": 4}, 12),
    ],
)
def test_shapes_and_dtypes(name: str, params: dict, dim: int) -> None:
    ds = make(name, **params, n_train=30, n_test=11)
    assert isinstance(ds, BimodalDataset)
    assert ds.name == name
    # the synergy map is derived from the seed and recorded beside the parameters
    recorded = {k: v for k, v in ds.params.items() if k != "synergy_map"}
    # `modalities` and `triple_map` are recorded only with 3 modalities: two-modality datasets
    # are described as before
    defaults = {k: v for k, v in parameters(name).items() if k not in ("modalities", "triple_map")}
    assert recorded == {**defaults, **params, "n_train": 30, "n_test": 11}
    assert ds.tasks == TASKS
    assert ds.modality_kinds == ("vector", "vector")
    assert ds.modality_shapes == ((dim,), (dim,))
    assert list(ds.pretrain) == ["synergy"]
    for split, n in ((ds.train, 30), (ds.test, 11), (ds.pretrain["synergy"], 30)):
        assert len(split) == n
        for x in (split.x1, split.x2):
            assert x.shape == (n, dim)
            assert x.dtype == np.float32
            assert np.isfinite(x).all()
        for task in TASKS:
            y = split.labels[task]
            assert y.shape == (n,)
            assert y.dtype == np.int64
            assert 0 <= y.min() and y.max() < ds.n_classes[task]


def test_features_are_standardised() -> None:
    # content_style scales all features by one number (unit mean variance; its own tests)
    for name in ("bits", "gaussian"):
        ds = make(name, noise=0.0, n_train=20000, n_test=10)
        x = np.hstack([ds.train.x1, ds.train.x2])
        assert np.abs(x.mean(0)).max() < 0.1, name
        assert np.abs(x.std(0) - 1).max() < 0.1, name


# --- determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bits", "gaussian", "content_style"])
def test_determinism(name: str) -> None:
    a = make(name, n_train=200, n_test=50, seed=7)
    b = make(name, n_train=200, n_test=50, seed=7)
    c = make(name, n_train=200, n_test=50, seed=8)
    for sa, sb, sc in ((a.train, b.train, c.train), (a.test, b.test, c.test)):
        np.testing.assert_array_equal(sa.x1, sb.x1)
        np.testing.assert_array_equal(sa.x2, sb.x2)
        for t in TASKS:
            np.testing.assert_array_equal(sa.labels[t], sb.labels[t])
        for f in sa.latents:
            np.testing.assert_array_equal(sa.latents[f], sb.latents[f])
        assert not np.array_equal(sa.x1, sc.x1)
        assert not np.array_equal(sa.latents["s1"], sc.latents["s1"])


@pytest.mark.parametrize("name", ["bits", "gaussian", "content_style"])
def test_streams_are_independent(name: str) -> None:
    a = make(name, n_train=100, n_test=50, seed=1)
    # n_train changes neither the test set nor the embedding.
    b = make(name, n_train=300, n_test=50, seed=1)
    np.testing.assert_array_equal(a.test.x1, b.test.x1)
    np.testing.assert_array_equal(a.test.x2, b.test.x2)
    # noise changes the features only, not the latents or labels.
    c = make(name, n_train=100, n_test=50, seed=1, noise=0.5)
    for t in TASKS:
        np.testing.assert_array_equal(a.train.labels[t], c.train.labels[t])
    assert not np.array_equal(a.train.x1, c.train.x1)


# --- the synergy label is synergistic in the data ------------------------------------------


def test_bits_synergy_label_needs_both_modalities_latents() -> None:
    ds = make("bits", bits=2, n_train=20000, n_test=10, seed=2)
    z, y = ds.train.latents, ds.train.labels["synergy"]
    x1_code = _code([z["r"], z["u1"], z["s1"]])
    x2_code = _code([z["r"], z["u2"], z["s2"]])
    # Plug-in MI bias here is about (64 - 1)(4 - 1) / (2 n ln 2) = 0.014 bits.
    assert _plugin_mi_bits(x1_code, y) < 0.04
    assert _plugin_mi_bits(x2_code, y) < 0.04
    # Both together determine it: their MI with y is the sample entropy of y (about 2 bits).
    h_y = _plugin_mi_bits(y, y)
    assert h_y > 1.99
    assert _plugin_mi_bits(x1_code * 64 + x2_code, y) == pytest.approx(h_y, abs=1e-9)


def test_gaussian_synergy_label_needs_both_modalities_latents() -> None:
    ds = make("gaussian", n_train=20000, n_test=10, seed=2)
    z, y = ds.train.latents, ds.train.labels["synergy"]
    signs = {f: (v.mean(1) > 0).astype(np.int64) for f, v in z.items()}
    x1_code = _code([np.stack([signs["r"], signs["u1"], signs["s1"]], 1)])
    x2_code = _code([np.stack([signs["r"], signs["u2"], signs["s2"]], 1)])
    assert _plugin_mi_bits(x1_code, y) < 0.01
    assert _plugin_mi_bits(x2_code, y) < 0.01
    h_y = _plugin_mi_bits(y, y)
    assert h_y > 0.99
    assert _plugin_mi_bits(x1_code * 8 + x2_code, y) == pytest.approx(h_y, abs=1e-9)


def _probe_scores(
    probe: LogisticRegression | MLPClassifier, ds: BimodalDataset, task: str
) -> tuple[float, float]:
    """(balanced accuracy, cross-entropy MI lower bound in bits) of a probe on concat(x1, x2)."""
    cat = [np.hstack([s.x1, s.x2]) for s in (ds.train, ds.test)]
    probe.fit(cat[0], ds.train.labels[task])
    y, k = ds.test.labels[task], ds.n_classes[task]
    bacc = balanced_accuracy_score(y, probe.predict(cat[1]))
    ce = log_loss(y, probe.predict_proba(cat[1]), labels=np.arange(k))
    return float(bacc), float(np.log2(k) - ce / np.log(2))


@pytest.mark.parametrize("name, params", [("bits", {}), ("bits", {"bits": 2}), ("gaussian", {})])
def test_synergy_not_linearly_readable_from_raw_inputs(name: str, params: dict) -> None:
    ds = make(name, n_train=2000, n_test=2000, seed=1, **params)
    chance = 1.0 / ds.n_classes["synergy"]
    bacc, mi = _probe_scores(LogisticRegression(max_iter=300), ds, "synergy")
    # Accuracy alone is a weak witness here: an additive classifier can beat chance on a
    # multi-bit XOR (per bit, OR agrees with XOR on 3 of 4 inputs), so the MI bound is checked
    # too.
    assert bacc < chance + 0.05
    assert mi < 0.02
    # The same probe does read a redundant label, so chance above is not a probe failure.
    bacc, mi = _probe_scores(LogisticRegression(max_iter=300), ds, "redundancy")
    assert bacc > 0.95
    assert mi > 0.9 * math.log2(ds.n_classes["redundancy"])


def test_bits_synergy_readable_by_mlp_on_concat() -> None:
    ds = make("bits", bits=2, n_train=2000, n_test=1000, seed=1)
    mlp = MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0)
    bacc, mi = _probe_scores(mlp, ds, "synergy")
    assert bacc > 0.9
    assert mi > 1.5


def test_bits_every_held_bit_is_recoverable() -> None:
    # A nearest-neighbour probe reads each modality's whole latent code (r, u_i, s_i).
    ds = make("bits", n_train=4000, n_test=1000, seed=4)
    for x, factors in (("x1", ("r", "u1", "s1")), ("x2", ("r", "u2", "s2"))):
        codes = [_code([s.latents[f] for f in factors]) for s in (ds.train, ds.test)]
        knn = KNeighborsClassifier(5).fit(getattr(ds.train, x), codes[0])
        assert knn.score(getattr(ds.test, x), codes[1]) > 0.95, x


# --- errors --------------------------------------------------------------------------------


def test_unknown_generator_lists_names() -> None:
    with pytest.raises(ValueError, match=r"unknown generator 'nope'.*bits.*gaussian"):
        make("nope")


def test_unknown_parameter_lists_accepted() -> None:
    with pytest.raises(ValueError, match=r"no parameter 'bitz'.*bits=2.*noise=0.1"):
        make("bits", bitz=3)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("bits", {"noise": -0.1}, r"noise must be a finite number >= 0"),
        ("bits", {"noise": float("nan")}, r"noise must be a finite number"),
        ("bits", {"n_train": 0}, r"n_train must be an integer >= 1"),
        ("bits", {"n_test": 0}, r"n_test must be an integer >= 1"),
        ("bits", {"bits": 0}, r"bits must be an integer in \[1, 5\]"),
        ("bits", {"bits": 6}, r"bits must be an integer in \[1, 5\]"),
        ("bits", {"dim": 0}, r"dim must be an integer >= 1"),
        ("bits", {"seed": -1}, r"seed must be an integer >= 0"),
        ("bits", {"dim": 2.5}, r"'dim' must be an integer \(default 32\)"),
        ("bits", {"bits": True}, r"'bits' must be an integer"),
        ("bits", {"noise": "0.1"}, r"'noise' must be a number"),
        ("gaussian", {"latent_dim": 0}, r"latent_dim must be an integer >= 1"),
        ("gaussian", {"proj_dim": -3}, r"proj_dim must be an integer >= 1"),
        ("gaussian", {"noise": -1}, r"noise must be a finite number >= 0"),
    ],
)
def test_bad_values_say_what_is_accepted(name: str, params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make(name, **params)


def test_direct_call_validates_too() -> None:
    with pytest.raises(ValueError, match="n_train must be an integer >= 1"):
        generators.get("gaussian")(n_train=-5)


def test_make_accepts_numpy_scalars_and_int_for_float() -> None:
    ds = make("bits", bits=np.int64(1), noise=0, n_train=np.int32(5), n_test=5)
    assert ds.params["bits"] == 1 and type(ds.params["bits"]) is int
    assert ds.params["noise"] == 0.0 and type(ds.params["noise"]) is float


def test_coerce_params() -> None:
    got = coerce_params("bits", {"bits": "3", "noise": "0.25", "n_train": "1e4", "seed": " 5 "})
    assert got == {"bits": 3, "noise": 0.25, "n_train": 10000, "seed": 5}
    assert type(got["n_train"]) is int
    with pytest.raises(ValueError, match=r"'dim' must be an integer \(default 32\), got 'x'"):
        coerce_params("bits", {"dim": "x"})
    with pytest.raises(ValueError, match=r"'n_train' must be an integer.*'1.5'"):
        coerce_params("bits", {"n_train": "1.5"})
    with pytest.raises(ValueError, match=r"no parameter 'foo'.*accepted"):
        coerce_params("gaussian", {"foo": "1"})
    with pytest.raises(ValueError, match="unknown generator"):
        coerce_params("nope", {})


def test_optional_parameters_take_their_annotated_type_or_none() -> None:
    """A `float | None = None` parameter (content_style's synergy_scale) takes numbers from the
    command line and from Python, "none" for its default, and says both in its error."""
    assert coerce_params("content_style", {"synergy_scale": "16"}) == {"synergy_scale": 16.0}
    assert coerce_params("content_style", {"synergy_scale": " None "}) == {"synergy_scale": None}
    with pytest.raises(ValueError, match=r"must be a number or none \(default None\), got 'x'"):
        coerce_params("content_style", {"synergy_scale": "x"})
    kw = {"n_train": 20, "n_test": 10}
    with pytest.raises(ValueError, match=r"must be a number or none.*got True of type bool"):
        make("content_style", synergy_scale=True, **kw)
    assert make("content_style", synergy_scale=np.int64(4), **kw).params["synergy_scale"] == 4.0
    assert make("content_style", synergy_scale=None, **kw).params["synergy_scale"] == 8.0


@settings(max_examples=25, deadline=None)
@given(
    bits=st.integers(1, 3),
    dim=st.integers(1, 8),
    noise=st.floats(0.0, 2.0),
    n=st.integers(1, 20),
    seed=st.integers(0, 2**32),
)
def test_bits_any_valid_parameters(bits: int, dim: int, noise: float, n: int, seed: int) -> None:
    ds = make("bits", bits=bits, dim=dim, noise=noise, n_train=n, n_test=n, seed=seed)
    z = ds.train.latents
    assert ds.train.x1.shape == (n, dim)
    np.testing.assert_array_equal(ds.train.labels["synergy"], _code([z["s1"] ^ z["s2"]]))
    assert np.isfinite(ds.train.x1).all() and np.isfinite(ds.train.x2).all()


# --- io ------------------------------------------------------------------------------------


def _assert_split_equal(a: Split, b: Split) -> None:
    for x, y in ((a.x1, b.x1), (a.x2, b.x2)):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    assert list(a.labels) == list(b.labels)
    for t in a.labels:
        assert a.labels[t].dtype == b.labels[t].dtype
        np.testing.assert_array_equal(a.labels[t], b.labels[t])
    assert list(a.latents) == list(b.latents)
    for f in a.latents:
        assert a.latents[f].dtype == b.latents[f].dtype
        np.testing.assert_array_equal(a.latents[f], b.latents[f])


@pytest.mark.parametrize("name", ["bits", "gaussian", "content_style"])
def test_npz_round_trip(name: str, tmp_path) -> None:
    ds = make(name, n_train=40, n_test=15, seed=3)
    ds.pretrain["synergy"] = ds.train.subset(np.arange(10))
    path = save_npz(ds, tmp_path / "data.bin")
    assert path == tmp_path / "data.bin" and path.exists()

    with np.load(path, allow_pickle=False) as npz:
        for key in ("train_x1", "train_x2", "test_x1", "test_x2", "pretrain_synergy_x1"):
            assert key in npz.files
        for task in TASKS:
            assert f"train_y_{task}" in npz.files and f"test_y_{task}" in npz.files
            np.testing.assert_allclose(
                npz[f"true_pid_{task}"],
                [getattr(ds.true_pid[task], a) for a in PID_FIELDS],
            )
        assert "train_latent_s1" in npz.files
        meta = json.loads(str(npz["meta"]))
        assert meta["params"] == ds.params

    back = load_npz(path)
    assert back.name == ds.name
    assert back.params == ds.params
    assert back.n_classes == ds.n_classes
    assert back.true_pid == ds.true_pid
    _assert_split_equal(back.train, ds.train)
    _assert_split_equal(back.test, ds.test)
    assert list(back.pretrain) == ["synergy"]
    _assert_split_equal(back.pretrain["synergy"], ds.pretrain["synergy"])


def test_load_rejects_other_files(tmp_path) -> None:
    bad = tmp_path / "other.npz"
    np.savez(bad, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a pid-bench dataset"):
        load_npz(bad)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not an .npz file"):
        load_npz(garbage)
