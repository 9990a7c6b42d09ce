"""Bimodal Trifeature: rendering, labels, combination split, biased pretraining, exact PID."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

import generators
from estimators import pid
from generators import trifeature as tf

LOG10 = math.log2(10)


def _h(p: float) -> float:
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def _mutual_info(pxy: np.ndarray) -> float:
    """I(X; Y) in bits of a joint table p[x, y]."""
    px = pxy.sum(1, keepdims=True)
    py = pxy.sum(0, keepdims=True)
    nz = pxy > 0
    return float((pxy[nz] * np.log2(pxy[nz] / (px @ py)[nz])).sum())


@pytest.fixture(scope="module")
def ds() -> generators.BimodalDataset:
    return generators.make("trifeature", size=32, n_train=600, n_test=300, seed=3)


def test_registered_and_parameters() -> None:
    assert "trifeature" in generators.GENERATORS
    params = generators.parameters("trifeature")
    assert params["size"] == 32 and params["n_train"] == 10000 and params["n_test"] == 4096
    with pytest.raises(ValueError, match="size"):
        tf.trifeature(size=8, n_train=4, n_test=4)


def test_images_shape_dtype_range(ds: generators.BimodalDataset) -> None:
    small = tf.trifeature(size=64, n_train=20, n_test=10, seed=1)
    for d, size in ((ds, 32), (small, 64)):
        for split in (d.train, d.test, d.pretrain["synergy"]):
            for x in (split.x1, split.x2):
                assert x.dtype == np.float32 and x.shape == (len(split), 3, size, size)
                assert x.min() >= 0.0 and x.max() <= 1.0
                # The grey background fills a good part of every image.
                grey = np.all(x == np.float32(tf.BACKGROUND), axis=1).mean(axis=(1, 2))
                assert grey.min() > 0.2
    assert ds.modality_kinds == ("image", "image")
    assert ds.n_classes == {"redundancy": 10, "unique1": 10, "unique2": 10, "synergy": 2}
    assert len(ds.train) == 600 and len(ds.test) == 300 and len(ds.pretrain["synergy"]) == 600


def test_deterministic() -> None:
    a = tf.trifeature(size=32, n_train=40, n_test=20, seed=5)
    b = tf.trifeature(size=32, n_train=40, n_test=20, seed=5)
    c = tf.trifeature(size=32, n_train=40, n_test=20, seed=6)
    for sa, sb in (
        (a.train, b.train),
        (a.test, b.test),
        (a.pretrain["synergy"], b.pretrain["synergy"]),
    ):
        np.testing.assert_array_equal(sa.x1, sb.x1)
        np.testing.assert_array_equal(sa.x2, sb.x2)
        for k in sa.labels:
            np.testing.assert_array_equal(sa.labels[k], sb.labels[k])
        for k in sa.latents:
            np.testing.assert_array_equal(sa.latents[k], sb.latents[k])
    assert not np.array_equal(a.train.x1, c.train.x1)


def test_same_scenes_at_every_size() -> None:
    a = tf.trifeature(size=32, n_train=30, n_test=10, seed=2)
    b = tf.trifeature(size=48, n_train=30, n_test=10, seed=2)
    for k in a.train.latents:
        np.testing.assert_array_equal(a.train.latents[k], b.train.latents[k])


def test_labels_are_functions_of_latents(ds: generators.BimodalDataset) -> None:
    m = np.asarray(ds.params["synergy_map"])
    assert sorted(m.tolist()) == list(range(10))  # one-to-one
    for split in (ds.train, ds.test, ds.pretrain["synergy"]):
        lat, lab = split.latents, split.labels
        np.testing.assert_array_equal(lab["redundancy"], lat["shape"])
        np.testing.assert_array_equal(lab["unique1"], lat["texture1"])
        np.testing.assert_array_equal(lab["unique2"], lat["texture2"])
        np.testing.assert_array_equal(lab["synergy"], lat["colour2"] == m[lat["texture1"]])
        assert all(v.dtype == np.int64 for v in lab.values())


def test_images_are_rendered_from_latents(ds: generators.BimodalDataset) -> None:
    lat = ds.test.latents
    for i, x in ((1, ds.test.x1), (2, ds.test.x2)):
        again = tf.render(
            lat["shape"],
            lat[f"texture{i}"],
            lat[f"colour{i}"],
            lat[f"rotation{i}"],
            lat[f"position{i}"],
            lat[f"texture_rotation{i}"],
            lat[f"texture_phase{i}"],
            size=32,
        )
        np.testing.assert_array_equal(again, x)


def test_combination_split_is_balanced_and_respected(ds: generators.BimodalDataset) -> None:
    train = tf.combination_split(ds.params["split_seed"])
    assert train.sum() == 800
    # Per shape, every texture and every colour keeps 8 train and 2 test combinations.
    assert np.all(train.sum(axis=2) == 8) and np.all(train.sum(axis=1) == 8)
    for split, allowed in ((ds.train, train), (ds.pretrain["synergy"], train), (ds.test, ~train)):
        lat = split.latents
        for i in (1, 2):
            assert allowed[lat["shape"], lat[f"texture{i}"], lat[f"colour{i}"]].all()
    # The test split does see every shape, texture and colour, only in new combinations.
    for k in ("shape", "texture1", "colour2"):
        assert len(np.unique(ds.test.latents[k])) == 10


def test_synergy_pretraining_is_biased_probing_is_not(ds: generators.BimodalDataset) -> None:
    m = np.asarray(ds.params["synergy_map"])
    pre = ds.pretrain["synergy"]
    np.testing.assert_array_equal(pre.latents["colour2"], m[pre.latents["texture1"]])
    assert np.all(pre.labels["synergy"] == 1)
    assert ds.pretrain_split("redundancy") is ds.train
    for split in (ds.train, ds.test):
        assert 0.05 < split.labels["synergy"].mean() < 0.16


def test_synergy_label_uninformative_from_one_image() -> None:
    image1 = ("shape", "texture1", "colour1")
    image2 = ("shape", "texture2", "colour2")
    for split in ("train", "test"):
        # Exactly, from the enumerated latent distribution of the split.
        p1 = tf.latent_joint("synergy", image1, ("shape",), split=split).sum(axis=1)
        p2 = tf.latent_joint("synergy", ("shape",), image2, split=split).sum(axis=0)
        assert abs(_mutual_info(p1)) < 1e-12 and abs(_mutual_info(p2)) < 1e-12
        assert p1.sum(0)[1] == pytest.approx(0.1, abs=1e-12)
    # And with the exact estimator: (texture, colour) of either image tells nothing about y.
    for x1, x2 in ((("texture1",), ("colour1",)), (("texture2",), ("colour2",))):
        r = pid(tf.latent_joint("synergy", x1, x2), measure="broja")
        assert abs(r.mutual_info) < 1e-6
        assert max(abs(r.redundancy), abs(r.unique1), abs(r.unique2), abs(r.synergy)) < 1e-6


def test_true_pid_textbook_values(ds: generators.BimodalDataset) -> None:
    expected = {
        "redundancy": (LOG10, 0, 0, 0),
        "unique1": (0, LOG10, 0, 0),
        "unique2": (0, 0, LOG10, 0),
        "synergy": (0, 0, 0, _h(0.1)),
    }
    for task, atoms in expected.items():
        r = ds.true_pid[task]
        got = (r.redundancy, r.unique1, r.unique2, r.synergy)
        np.testing.assert_allclose(got, atoms, atol=1e-6, err_msg=task)
        assert r.mutual_info == pytest.approx(sum(atoms), abs=1e-6)


def test_true_pid_same_on_test_distribution() -> None:
    # The synergy statistics were checked sufficient on the training distribution; the
    # held-out distribution gives the same atoms.
    for task in ("unique1", "synergy"):
        t1, t2 = tf._statistics(task, 0, 0)
        r = pid(tf.latent_joint(task, t1, t2, split="test"), measure="broja")
        want = tf.true_pid_from_split(task, 0, 0)
        np.testing.assert_allclose(
            [r.redundancy, r.unique1, r.unique2, r.synergy],
            [want.redundancy, want.unique1, want.unique2, want.synergy],
            atol=1e-6,
        )


def test_latent_joint_rejects_bad_names() -> None:
    with pytest.raises(ValueError, match="unknown factor"):
        tf.latent_joint("synergy", ("colour",), ("shape",))
    with pytest.raises(ValueError, match="unknown task"):
        tf.latent_joint("xor", ("shape",), ("shape",))


def test_shapes_stay_in_frame_and_textures_differ() -> None:
    size, n = 64, len(tf.SHAPES)
    k = np.arange(n)
    zeros = np.zeros(n)
    white = np.full(n, tf.COLOURS.index("white"))
    solid = np.zeros(n, dtype=np.int64)
    centred = tf.render(k, solid, white, zeros, np.zeros((n, 2)), zeros, np.zeros((n, 2)), size)
    corner = np.full((n, 2), tf.MAX_OFFSET)
    worst = tf.render(k, solid, white, np.full(n, 45.0), corner, zeros, np.zeros((n, 2)), size)
    area = (centred[:, 0] - tf.BACKGROUND).sum(axis=(1, 2))
    assert np.all(area / size**2 > 0.05)  # every shape is a sizeable part of the image
    assert np.all((worst[:, 0] - tf.BACKGROUND).sum(axis=(1, 2)) > 0.9 * area)
    # Every shape and every texture looks different from every other.
    square = np.full(n, tf.SHAPES.index("square"))
    tex = tf.render(square, k, white, zeros, np.zeros((n, 2)), zeros, np.zeros((n, 2)), size)
    for imgs in (centred, tex):
        diff = np.abs(imgs[:, None] - imgs[None]).mean(axis=(2, 3, 4))
        assert diff[~np.eye(n, dtype=bool)].min() > 0.01


def test_render_rejects_bad_input() -> None:
    one = np.zeros(1)
    with pytest.raises(ValueError, match="shape \\(n, 2\\)"):
        tf.render([0], [0], [0], one, one, one, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="texture indices"):
        tf.render([0], [10], [0], one, np.zeros((1, 2)), one, np.zeros((1, 2)))


#: sha256 of every image (train, test, pretrain; x1 then x2) made on main before
#: `texture_period` existed: the default must keep every default dataset to the last bit.
DEFAULT_IMAGES_SHA256 = {
    (32, 64, 32, 3): "52269d323585f4fd9721978e689f5c7dc42cc7af3b934fea30eb0b812694a709",
    (64, 16, 8, 1): "bcd06c82c746b404c5812607c5f17ba13a0057e07ce2d6e0b9366a20ce367749",
}


def _images_sha256(d: generators.BimodalDataset) -> str:
    h = hashlib.sha256()
    for split in (d.train, d.test, d.pretrain["synergy"]):
        for x in (split.x1, split.x2):
            h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("key", list(DEFAULT_IMAGES_SHA256))
def test_default_texture_period_keeps_the_images(key) -> None:
    size, n_train, n_test, seed = key
    kw = {"size": size, "n_train": n_train, "n_test": n_test, "seed": seed}
    d = tf.trifeature(**kw)
    assert _images_sha256(d) == DEFAULT_IMAGES_SHA256[key]
    assert d.params["texture_period"] == tf.TEXTURE_PERIOD == 0.4
    assert _images_sha256(tf.trifeature(**kw, texture_period=0.4)) == DEFAULT_IMAGES_SHA256[key]


def _stripe_edges(size: int, period: float) -> int:
    """Light/dark changes along the vertical centre line of a white, unrotated square with
    horizontal stripes."""
    one = np.ones(1)
    img = tf.render(
        one.astype(int) * tf.SHAPES.index("square"),
        one.astype(int) * tf.TEXTURES.index("stripes"),
        one.astype(int) * tf.COLOURS.index("white"),
        np.zeros(1),
        np.zeros((1, 2)),
        np.zeros(1),
        np.full((1, 2), 0.1),
        size,
        texture_period=period,
    )[0, 0]
    column = img[:, size // 2]
    inside = column[np.abs(column - tf.BACKGROUND) > 1e-6]
    light = inside > (1.0 + tf.DARK) / 2
    return int(np.count_nonzero(light[1:] != light[:-1]))


def test_smaller_texture_period_draws_more_periods() -> None:
    side = 2 * 0.7 * tf.SHAPE_SCALE  # the square template's side, in half image widths
    for period in (tf.TEXTURE_PERIOD, 0.2, tf.AUTHORS_TEXTURE_PERIOD):
        edges = _stripe_edges(224, period)
        # two edges per period across the square, give or take the partial periods at its ends
        assert abs(edges - 2 * side / period) <= 2, (period, edges)
    assert _stripe_edges(64, tf.AUTHORS_TEXTURE_PERIOD) > 3 * _stripe_edges(64, 0.4)


def test_authors_texture_period_from_their_constants() -> None:
    # CoMM's dataset/trifeatures.py: TEXTURE_SCALE = 10 px in RENDER_SIZE = 224 px images
    assert math.isclose(tf.AUTHORS_TEXTURE_PERIOD * 224 / 2, 10.0)
    # The docstring's reason that this also keeps their periods per shape: our shapes' mean
    # square root of area is 0.879 half widths, 44.0% of the width as theirs (98.5 of 224 px).
    n, size = len(tf.SHAPES), 448
    zeros, white = np.zeros(n), np.full(n, tf.COLOURS.index("white"))
    solid = np.zeros(n, dtype=np.int64)
    img = tf.render(np.arange(n), solid, white, zeros, np.zeros((n, 2)), zeros, np.zeros((n, 2)),
                    size)[:, 0]  # fmt: skip
    area = (img - tf.BACKGROUND).sum(axis=(1, 2)) / (1 - tf.BACKGROUND)
    assert abs(np.sqrt(area).mean() / size - 98.5 / 224) < 0.002
    d = tf.trifeature(size=64, n_train=8, n_test=8, texture_period=tf.AUTHORS_TEXTURE_PERIOD)
    assert d.params["texture_period"] == 10 / 112
    base = tf.trifeature(size=64, n_train=8, n_test=8)
    # only the pixels change: same scenes and labels
    for k in d.train.latents:
        np.testing.assert_array_equal(d.train.latents[k], base.train.latents[k])
    assert not np.array_equal(d.train.x1, base.train.x1)


@pytest.mark.parametrize(
    "period, size, match",
    [
        (0.0, 32, "finer than a 2-pixel grid"),
        (-0.1, 32, "texture_period must be a finite number"),
        (float("nan"), 32, "texture_period must be a finite number"),
        (2.5, 32, "texture_period must be a finite number in \\[0.0, 2.0\\]"),
        ("0.2", 32, "texture_period must be a finite number"),
        (tf.AUTHORS_TEXTURE_PERIOD, 32, "1.4 pixels at size 32.*use size >= 45"),
    ],
)
def test_bad_texture_period_refused(period, size, match) -> None:
    with pytest.raises(ValueError, match=match):
        tf.trifeature(size=size, n_train=4, n_test=4, texture_period=period)
    with pytest.raises(ValueError, match=match):
        tf.render([0], [0], [0], np.zeros(1), np.zeros((1, 2)), np.zeros(1), np.zeros((1, 2)),
                  size, texture_period=period)  # fmt: skip


def test_texture_period_from_the_command_line(tmp_path, capsys) -> None:
    from generators.io import load_npz
    from pid_bench.cli import main

    f = tmp_path / "t.npz"
    argv = ["generate", "--generator", "trifeature", "--out", str(f)]
    sets = ["--set", "size=64", "--set", "n_train=8", "--set", "n_test=8"]
    assert main([*argv, *sets, "--set", "texture_period=0.0893"]) == 0
    assert load_npz(f).params["texture_period"] == 0.0893
    capsys.readouterr()
    assert main([*argv, "--set", "size=32", "--set", "texture_period=0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "texture_period=0.1 half image widths" in err


def test_texture_period_reaches_a_run() -> None:
    """`pid-bench run --set texture_period=...`: coerced from the command line's string, kept
    in the run's config, and the run's dataset is drawn with it."""
    from pid_bench.runner import dataset_for_seed, resolve_config

    strings = {"texture_period": "0.2", "size": "32", "n_train": "8", "n_test": "8"}
    params = generators.coerce_params("trifeature", strings)
    cfg = resolve_config(generator="trifeature", generator_params=params, learners=["cross"])
    assert cfg.generator_params["texture_period"] == 0.2
    assert dataset_for_seed(cfg, 0).params["texture_period"] == 0.2
