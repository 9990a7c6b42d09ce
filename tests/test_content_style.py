"""`content_style`: content and style latents, and views drawn by the generator itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score

import generators
from generators.base import TASKS
from generators.io import load_npz, save_npz
from pid_bench.config import AugConfig, ModelConfig, TrainConfig
from pid_bench.learners import get_learner
from pid_bench.learners.base import LearnerError
from pid_bench.runner import resolve_config, run_in_memory, split_views
from pid_bench.training import train

SMALL = {"n_train": 300, "n_test": 100}


def _codes(group: np.ndarray) -> np.ndarray:
    return group @ (1 << np.arange(group.shape[1]))


def _unmix(ds, x: np.ndarray, modality: int) -> np.ndarray:
    """[content, style] of noise-free features of one modality, by inverting the mixing as
    the module docstring states it (written here, not taken from the generator): each layer
    is h -> leaky_relu(h, 0.2) @ Q, undone by h @ Q' and the inverse leaky ReLU, the first
    orthogonal map by its transpose."""
    mod = ds.views.modalities[modality]
    h = x.astype(np.float64) * mod.scale
    for q in reversed(mod.mixing[1:]):
        h = h @ q.T
        h = np.where(h > 0, h, h / 0.2)
    return h @ mod.mixing[0].T


def test_labels_follow_the_latents() -> None:
    ds = generators.make("content_style", bits=2, seed=1, **SMALL)
    for split in (ds.train, ds.test, ds.pretrain["synergy"]):
        c = {f: _codes(g) for f, g in split.latents.items()}
        np.testing.assert_array_equal(split.labels["redundancy"], c["r"])
        np.testing.assert_array_equal(split.labels["unique1"], c["u1"])
        np.testing.assert_array_equal(split.labels["unique2"], c["u2"])
        np.testing.assert_array_equal(split.labels["synergy"], c["s1"] ^ c["s2"])


def test_observations_are_the_mixing_of_their_content_and_style() -> None:
    """x_i = Q_i [content_i(latents), style_i] / scale, exactly (depth 0, no noise): content
    is read back from x by the inverse mixing, and the style part is N(0, style_std**2)."""
    ds = generators.make("content_style", style_std=3.0, n_train=4000, n_test=10)
    cd = ds.params["content_dim"]
    for m, factors in enumerate((("r", "u1", "s1"), ("r", "u2", "s2"))):
        x = (ds.train.x1, ds.train.x2)[m]
        z = _unmix(ds, x, m)
        tables = ds.views.modalities[m].tables
        want = np.hstack([tables[f][_codes(ds.train.latents[f])] for f in factors])
        np.testing.assert_allclose(z[:, : 3 * cd], want, atol=1e-4)
        assert z[:, 3 * cd :].std() == pytest.approx(3.0, rel=0.02)
    # the features have unit variance on average
    assert np.mean(ds.train.x1.astype(np.float64) ** 2) == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_views_keep_the_content_and_draw_new_style(depth: int) -> None:
    ds = generators.make("content_style", depth=depth, seed=2, **SMALL)
    assert len(ds.views.modalities[0].mixing) == depth + 1
    lat = ds.train.latents
    rng = np.random.default_rng(0)
    v1, v2 = ds.views.draw(lat, rng)
    w1, w2 = ds.views.draw(lat, rng)
    # a new view is not the sample, and two views differ
    assert not np.allclose(v1, ds.train.x1) and not np.allclose(v1, w1)
    # its content is the sample's exactly, read back through the inverse mixing; its style is
    # drawn anew, independent of the sample's
    cd = 3 * ds.params["content_dim"]
    for m, (x, v) in enumerate(((ds.train.x1, v1), (ds.train.x2, v2))):
        zx, zv = _unmix(ds, x, m), _unmix(ds, v, m)
        np.testing.assert_allclose(zv[:, :cd], zx[:, :cd], atol=2e-3)
        assert zx[:, cd:].std() == pytest.approx(ds.params["style_std"], rel=0.05)
        corr = np.corrcoef(zx[:, cd:].ravel(), zv[:, cd:].ravel())[0, 1]
        assert abs(corr) < 0.05
    # and a view is the generator's rendering of the same latents
    again = ds.views.sample(lat, np.random.default_rng(0))
    np.testing.assert_array_equal(again[0], v1)
    np.testing.assert_array_equal(again[1], v2)


def test_view_keep_changes_the_content_by_the_stated_share() -> None:
    ds = generators.make("content_style", view_keep=0.25, seed=3, n_train=4000, n_test=10)
    lat = ds.train.latents
    new = ds.views.view_latents(lat, np.random.default_rng(0))
    for f in lat:
        kept = np.all(new[f] == lat[f], axis=1).mean()
        # kept with probability 0.25, else drawn uniformly over 4 codes (1/4 land on the same)
        assert kept == pytest.approx(0.25 + 0.75 / 4, abs=0.03), f
    # a shared group changes in both modalities: r is one latent
    assert set(new) == set(lat)
    full = generators.make("content_style", view_keep=1.0, seed=3, **SMALL)
    assert full.views.view_latents(full.train.latents, np.random.default_rng(0)) is (
        full.train.latents
    )


def test_true_pid_is_computed_and_textbook() -> None:
    for bits in (1, 2, 3):
        ds = generators.make("content_style", bits=bits, **SMALL)
        for task in TASKS:
            res = ds.true_pid[task]
            assert res.mutual_info == pytest.approx(bits, abs=1e-6)
            for atom in ("redundancy", "unique1", "unique2", "synergy"):
                want = bits if atom == task else 0.0
                assert res.atom(atom) == pytest.approx(want, abs=1e-6), (task, atom)


def test_determinism_and_independent_streams() -> None:
    a = generators.make("content_style", seed=4, **SMALL)
    b = generators.make("content_style", seed=4, **SMALL)
    assert a.train.x1.tobytes() == b.train.x1.tobytes()
    assert a.pretrain["synergy"].x2.tobytes() == b.pretrain["synergy"].x2.tobytes()
    va = a.views.draw(a.train.latents, np.random.default_rng(1))
    vb = b.views.draw(b.train.latents, np.random.default_rng(1))
    assert va[0].tobytes() == vb[0].tobytes()
    c = generators.make("content_style", seed=5, **SMALL)
    assert not np.array_equal(a.train.x1, c.train.x1)
    # n_train moves neither the test set nor the map; view_keep moves no data at all
    d = generators.make("content_style", seed=4, n_train=50, n_test=100)
    assert a.test.x1.tobytes() == d.test.x1.tobytes()
    e = generators.make("content_style", seed=4, view_keep=0.5, **SMALL)
    assert a.train.x1.tobytes() == e.train.x1.tobytes()


def test_content_is_linearly_readable_and_a_random_projection_is_not() -> None:
    """The content subspace reads every task (bar the XOR) linearly; a random 64-dimensional
    projection of x, as a frozen random encoder sees it, is dominated by style."""
    ds = generators.make("content_style", n_train=3000, n_test=1000, seed=0)
    cd = 3 * ds.params["content_dim"]

    def score(f1, f2, task):
        tr = np.hstack([f1(ds.train.x1, 0), f2(ds.train.x2, 1)])
        te = np.hstack([f1(ds.test.x1, 0), f2(ds.test.x2, 1)])
        clf = LogisticRegression(max_iter=2000).fit(tr, ds.train.labels[task])
        return balanced_accuracy_score(ds.test.labels[task], clf.predict(te))

    def content(x, m):
        return _unmix(ds, x, m)[:, :cd]

    proj = np.random.default_rng(0).standard_normal((216, 64))

    def random(x, m):
        return x @ proj

    for task in ("redundancy", "unique1", "unique2"):
        assert score(content, content, task) > 0.99, task
        assert score(random, random, task) < 0.45, task


def test_bad_values_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="view_keep must be a finite number in"):
        generators.make("content_style", view_keep=1.5, **SMALL)
    with pytest.raises(ValueError, match="synergy_scale must be > 0"):
        generators.make("content_style", synergy_scale=0.0, **SMALL)
    with pytest.raises(ValueError, match="style_dim must be an integer >= 0"):
        generators.make("content_style", style_dim=-1, **SMALL)


def test_npz_round_trip_rebuilds_the_views(tmp_path) -> None:
    ds = generators.make("content_style", seed=6, depth=1, **SMALL)
    back = load_npz(save_npz(ds, tmp_path / "d.npz"))
    assert back.views is not None
    a = ds.views.draw(ds.train.latents, np.random.default_rng(0))
    b = back.views.draw(back.train.latents, np.random.default_rng(0))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


# --- training uses the generator's views ----------------------------------------------------


def _learner(name: str, ds, aug: AugConfig = AugConfig()):
    cls = get_learner(name)
    torch.manual_seed(0)
    return cls(ds.modality_kinds, ds.modality_shapes, ModelConfig(d_model=16, hidden=32), aug)


def test_training_augment_returns_the_generators_views(monkeypatch) -> None:
    ds = generators.make("content_style", seed=7, **SMALL)
    learner = _learner("cross", ds)
    seen: list[tuple[np.ndarray, torch.Tensor, torch.Tensor]] = []
    original = type(learner).loss

    def loss(self, x1, x2, y, idx, generator):
        a1, a2 = self.augment(x1, x2, generator)
        seen.append((idx.numpy().copy(), x1.clone(), a1.clone()))
        return original(self, x1, x2, y, idx, generator)

    monkeypatch.setattr(type(learner), "loss", loss)

    views = split_views(ds, ds.train)
    cfg = TrainConfig(epochs=1, batch_size=100)
    train(
        learner,
        ds.train.x1,
        ds.train.x2,
        None,
        cfg,
        device=torch.device("cpu"),
        seed=0,
        progress=False,
        views=views,
    )
    assert len(seen) == 3
    cd = 3 * ds.params["content_dim"]
    for rows, x1, a1 in seen:
        np.testing.assert_array_equal(x1.numpy(), ds.train.x1[rows])
        # the view has the batch rows' content and new style
        zx, za = _unmix(ds, x1.numpy(), 0), _unmix(ds, a1.numpy(), 0)
        np.testing.assert_allclose(za[:, :cd], zx[:, :cd], atol=1e-4)
        assert not np.allclose(za[:, cd:], zx[:, cd:])
    # after training, augment is the tensor augmentation again
    assert learner._view_draw is None


def test_augment_on_part_of_the_batch_is_a_clear_error() -> None:
    ds = generators.make("content_style", seed=7, **SMALL)
    learner = _learner("cross", ds)
    original = type(learner).loss

    class Half(type(learner)):
        def loss(self, x1, x2, y, idx, generator):
            self.augment(x1[:10], x2[:10], generator)
            return original(self, x1, x2, y, idx, generator)

    bad = Half(
        ds.modality_kinds, ds.modality_shapes, ModelConfig(d_model=16, hidden=32), AugConfig()
    )

    views = split_views(ds, ds.train)
    with pytest.raises(LearnerError, match="augment was called on 10 rows of a batch of 100"):
        train(
            bad,
            ds.train.x1,
            ds.train.x2,
            None,
            TrainConfig(epochs=1, batch_size=100),
            device=torch.device("cpu"),
            seed=0,
            progress=False,
            views=views,
        )


def test_the_config_records_which_augmentation_a_run_used() -> None:
    cfg = resolve_config(generator="content_style", learners=["cross"])
    assert cfg.aug.views == "generator"
    assert resolve_config(generator="bits", learners=["cross"]).aug.views == "tensor"
    forced = resolve_config(
        generator="content_style", learners=["cross"], settings={"aug.views": "tensor"}
    )
    assert forced.aug.views == "tensor"
    with pytest.raises(ValueError, match="generator 'bits' draws no views"):
        resolve_config(generator="bits", learners=["cross"], settings={"aug.views": "generator"})
    with pytest.raises(ValueError, match="must be one of auto, generator, tensor"):
        resolve_config(generator="bits", learners=["cross"], settings={"aug.views": "images"})


def test_a_run_with_generator_views_is_deterministic() -> None:
    cfg = resolve_config(
        generator="content_style",
        generator_params={"n_train": 256, "n_test": 128},
        learners=["cross"],
        interaction="redundancy",
        train_overrides={"epochs": 1, "batch_size": 64},
        probe_overrides={"mlp": False},
    )
    a = run_in_memory(cfg)
    b = run_in_memory(cfg)
    assert a["value"].tolist() == b["value"].tolist()
    assert '"views": "generator"' in a["params"].iloc[0]


def test_synergy_pretraining_split_follows_the_recorded_permutation() -> None:
    ds = generators.make("content_style", seed=8, **SMALL)
    pi = np.asarray(ds.params["synergy_map"])
    z = ds.pretrain["synergy"].latents
    np.testing.assert_array_equal(_codes(z["s2"]), pi[_codes(z["s1"])])
    off = generators.make("content_style", seed=8, synergy_pretrain="none", **SMALL)
    assert off.pretrain == {} and off.train.x1.tobytes() == ds.train.x1.tobytes()


def test_a_run_on_a_dataset_file_draws_the_generators_views(tmp_path) -> None:
    ds = generators.make("content_style", seed=9, **SMALL)
    path = save_npz(ds, tmp_path / "cs.npz")
    cfg = resolve_config(data=path, learners=["cross"])
    assert cfg.generator == "content_style" and cfg.aug.views == "generator"
