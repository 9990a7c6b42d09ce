"""Synergy pretraining splits: biased pairs for self-supervised learners only.

`bits` and `gaussian` give self-supervised learners a synergy pretraining split whose pairs
carry the cross-modal dependency the synergy label reads (s2 := pi(s1)), as CoMM's Trifeature
synergy run does; probes and label-trained learners use the unbiased splits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import generators
from generators import bits as bits_gen
from generators.io import load_npz, save_npz
from pid_bench.config import AugConfig, ModelConfig, ProbeConfig, TrainConfig
from pid_bench.learners import LEARNERS, get_learner
from pid_bench.runner import Cell, RunConfig, run_cell, training_split

SMALL = {"n_train": 300, "n_test": 50}
# Every generator that has a pretraining split, with parameters that make it small and fast.
PRETRAIN_GENERATORS = {
    "bits": SMALL,
    "gaussian": SMALL,
    "content_style": SMALL,
    "trifeature": {"n_train": 16, "n_test": 8, "size": 16},
}


def _codes(group: np.ndarray) -> np.ndarray:
    return group @ (1 << np.arange(group.shape[1]))


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_bits_biased_split_follows_the_permutation(bits: int) -> None:
    ds = generators.make("bits", bits=bits, seed=3, **SMALL)
    pi = np.asarray(ds.params["synergy_map"])
    assert sorted(pi) == list(range(2**bits))  # a permutation of the s-group classes
    np.testing.assert_array_equal(pi, bits_gen.synergy_permutation(bits, 3))
    z = ds.pretrain["synergy"].latents
    np.testing.assert_array_equal(_codes(z["s2"]), pi[_codes(z["s1"])])
    # the other factors stay uniform and independent draws, not copies of the train split
    assert not np.array_equal(z["r"], ds.train.latents["r"])
    # the pretraining labels still follow the generator's label function
    y = ds.pretrain["synergy"].labels["synergy"]
    np.testing.assert_array_equal(y, _codes(z["s1"]) ^ _codes(z["s2"]))
    # on the unbiased train split s2 is independent of s1: every (s1, s2) pair occurs
    pairs = set(zip(_codes(ds.train.latents["s1"]), _codes(ds.train.latents["s2"]), strict=True))
    assert len(pairs) == 4**bits


def test_gaussian_biased_split_follows_the_permutation() -> None:
    for seed in range(4):
        ds = generators.make("gaussian", seed=seed, **SMALL)
        pi = np.asarray(ds.params["synergy_map"])
        z = ds.pretrain["synergy"].latents
        sign1 = (z["s1"].mean(1) > 0).astype(int)
        sign2 = (z["s2"].mean(1) > 0).astype(int)
        np.testing.assert_array_equal(sign2, pi[sign1])
        y = ds.pretrain["synergy"].labels["synergy"]
        np.testing.assert_array_equal(y, (sign1 == sign2).astype(int))
        # negating z_s2 where needed keeps its scale
        assert z["s2"].std() == pytest.approx(np.sqrt(1.5), rel=0.1)


@pytest.mark.parametrize("name", ["bits", "gaussian", "content_style"])
def test_train_and_test_identical_with_and_without_the_split(name: str) -> None:
    on = generators.make(name, seed=5, **SMALL)
    off = generators.make(name, seed=5, synergy_pretrain="none", **SMALL)
    assert list(on.pretrain) == ["synergy"] and off.pretrain == {}
    assert "synergy_map" not in off.params
    for split in ("train", "test"):
        a, b = getattr(on, split), getattr(off, split)
        assert a.x1.tobytes() == b.x1.tobytes() and a.x2.tobytes() == b.x2.tobytes()
        for task in a.labels:
            np.testing.assert_array_equal(a.labels[task], b.labels[task])
        for f in a.latents:
            np.testing.assert_array_equal(a.latents[f], b.latents[f])
    # the ground truth is the unbiased distribution's either way
    assert on.true_pid == off.true_pid
    assert on.true_pid["synergy"].synergy == pytest.approx(
        1.0 if name == "gaussian" else 2.0, abs=1e-6
    )


@pytest.mark.parametrize("name", ["bits", "gaussian", "content_style"])
def test_permutation_is_deterministic_from_the_seed(name: str) -> None:
    a = generators.make(name, seed=7, **SMALL)
    b = generators.make(name, seed=7, **SMALL)
    assert a.params["synergy_map"] == b.params["synergy_map"]
    pa, pb = a.pretrain["synergy"], b.pretrain["synergy"]
    assert pa.x1.tobytes() == pb.x1.tobytes() and pa.x2.tobytes() == pb.x2.tobytes()
    # n_train and noise do not move the map
    c = generators.make(name, seed=7, n_train=40, n_test=10, noise=0.5)
    assert c.params["synergy_map"] == a.params["synergy_map"]
    maps = {tuple(generators.make(name, seed=s, **SMALL).params["synergy_map"]) for s in range(8)}
    assert len(maps) > 1  # the map is drawn, not fixed


@pytest.mark.parametrize("name", ["bits", "gaussian", "content_style"])
def test_npz_round_trips_the_split(name: str, tmp_path) -> None:
    ds = generators.make(name, seed=2, **SMALL)
    back = load_npz(save_npz(ds, tmp_path / "d.npz"))
    assert list(back.pretrain) == ["synergy"]
    a, b = ds.pretrain["synergy"], back.pretrain["synergy"]
    np.testing.assert_array_equal(a.x1, b.x1)
    np.testing.assert_array_equal(a.x2, b.x2)
    for task in a.labels:
        np.testing.assert_array_equal(a.labels[task], b.labels[task])
    for f in a.latents:
        np.testing.assert_array_equal(a.latents[f], b.latents[f])
    assert back.params["synergy_map"] == ds.params["synergy_map"]


@pytest.mark.parametrize("name", ["bits", "gaussian", "content_style"])
def test_bad_option_is_a_clear_error(name: str) -> None:
    with pytest.raises(ValueError, match="synergy_pretrain must be one of permutation, none"):
        generators.make(name, synergy_pretrain="biased", **SMALL)
    # from the command line the value arrives as a string
    assert generators.coerce_params(name, {"synergy_pretrain": "none"}) == {
        "synergy_pretrain": "none"
    }


@pytest.mark.parametrize("gen", sorted(PRETRAIN_GENERATORS))
def test_label_trained_learners_never_train_on_a_pretraining_split(gen, monkeypatch) -> None:
    """For every generator with a pretraining split: supervised learners get `train`,
    self-supervised ones the pretraining split, through the runner itself."""
    ds = generators.make(gen, **PRETRAIN_GENERATORS[gen])
    assert ds.pretrain, f"{gen} has no pretraining split"
    supervised = sorted(n for n, c in LEARNERS.items() if c.supervised)
    assert {"supervised", "shared_private"} <= set(supervised)
    for task in ds.pretrain:
        for name in supervised:
            assert training_split(ds, get_learner(name), task) is ds.train
        assert training_split(ds, get_learner("comm"), task) is ds.pretrain[task]

    seen: dict[str, np.ndarray] = {}

    def fake_train(learner, x1, x2, y, *args, **kwargs):
        seen[learner.name] = x1
        return []

    monkeypatch.setattr("pid_bench.cell.train", fake_train)
    monkeypatch.setattr("pid_bench.cell.dataset_for_seed", lambda cfg, seed: ds)
    cfg = RunConfig(
        generator=gen,
        learners=("supervised", "shared_private", "comm"),
        interaction="synergy",
        train=TrainConfig(epochs=1, device="cpu"),
        model=ModelConfig(d_model=16, n_tokens=2, hidden=16, proj_dim=16, cnn_width=4),
        probe=ProbeConfig(max_train=64, mlp=False, pid_clusters=2),
    )
    for name in cfg.learners:
        run_cell(cfg, Cell(0, name, ("synergy",), "synergy"), None, progress=False)
    assert seen["supervised"] is ds.train.x1
    assert seen["shared_private"] is ds.train.x1
    assert seen["comm"] is ds.pretrain["synergy"].x1


@pytest.mark.parametrize(
    ("name", "head", "term"),
    [("supervised", "classifier", "ce"), ("shared_private", "head_m", "fused")],
)
def test_supervised_representation_is_what_its_classifier_reads_linearly(name, head, term) -> None:
    """The ceiling's representation is the layer its trained classifier reads with one linear
    map, so a linear probe on it can match the classifier."""
    torch.manual_seed(0)
    cfg = ModelConfig(d_model=16, n_tokens=2, hidden=32, proj_dim=16, fusion_heads=2)
    identity = AugConfig(noise_std=0.0, mask_min=0.0, mask_max=0.0)
    m = get_learner(name)(("vector", "vector"), ((6,), (5,)), cfg, identity, n_classes=4)
    classifier = getattr(m, head)
    assert isinstance(classifier, torch.nn.Linear)
    x1, x2 = torch.randn(8, 6), torch.randn(8, 5)
    y = torch.randint(0, 4, (8,))
    m.start_epoch(1, 8)
    with torch.no_grad():
        _, terms = m.loss(x1, x2, y, torch.arange(8), None)
        z = m.embed(x1, x2)
        direct = torch.nn.functional.cross_entropy(classifier(z), y)
    # the training loss is the cross-entropy of a linear map of exactly the probed embedding
    assert terms[term] == pytest.approx(float(direct), rel=1e-5)


@pytest.mark.parametrize("name", ["bits", "gaussian", "content_style"])
def test_show_draws_the_biased_split(name: str, tmp_path) -> None:
    from pid_bench.show import factor_classes, show_dataset

    ds = generators.make(name, seed=1, **SMALL)
    out = show_dataset(ds, tmp_path / "pairs.png", split="synergy")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the classes it counts are the ones the labels are made of
    for split in (ds.train, ds.pretrain["synergy"]):
        c1, c2 = factor_classes(split.latents["s1"]), factor_classes(split.latents["s2"])
        expected = (c1 == c2).astype(int) if name == "gaussian" else c1 ^ c2
        np.testing.assert_array_equal(split.labels["synergy"], expected)
