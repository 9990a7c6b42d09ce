"""Learners: shapes, and every loss decreases over a few steps on a tiny batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pid_bench.config import AugConfig, ModelConfig, TrainConfig
from pid_bench.learners import LEARNERS, get_learner
from pid_bench.learners.losses import comm_loss, coral_loss, info_nce, nt_xent
from pid_bench.training import embed, train

SMALL = ModelConfig(d_model=16, n_tokens=2, hidden=32, proj_dim=16, fusion_heads=2)
KINDS = ("vector", "vector")
SHAPES = ((6,), (5,))


def _batch(n: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(n, 6, generator=g)
    x2 = torch.randn(n, 5, generator=g)
    y = (x1[:, 0] > 0).long() + 2 * (x2[:, 0] > 0).long()
    return x1, x2, y


def _make(name: str):
    torch.manual_seed(0)
    cls = get_learner(name)
    return cls(KINDS, SHAPES, SMALL, AugConfig(noise_std=0.05, mask_max=0.2), n_classes=4)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_embed_shapes(name):
    m = _make(name)
    x1, x2, _ = _batch(10)
    z = m.embed(x1, x2)
    assert z.ndim == 2 and z.shape[0] == 10
    if m.has_unimodal:
        z1, z2 = m.embed_unimodal(x1, x2)
        assert z1.shape[0] == z2.shape[0] == 10


@pytest.mark.parametrize("name", sorted(n for n, c in LEARNERS.items() if c.trainable))
def test_loss_decreases(name):
    m = _make(name)
    x1, x2, y = _batch()
    idx = torch.arange(len(x1))
    m.start_epoch(1, len(x1))
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)

    def evaluate() -> float:
        # a fixed augmentation seed so the before/after losses are comparable
        with torch.no_grad():
            return float(m.loss(x1, x2, y, idx, torch.Generator().manual_seed(123))[0])

    before = evaluate()
    g = torch.Generator().manual_seed(1)
    for _ in range(40):
        loss, terms = m.loss(x1, x2, y, idx, g)
        assert torch.isfinite(loss)
        assert all(np.isfinite(v) for v in terms.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = evaluate()
    assert after < before, f"{name}: loss {before:.4f} -> {after:.4f}"


def test_random_learner_is_frozen():
    m = _make("random")
    assert not m.trainable
    assert not any(p.requires_grad for p in m.parameters())


def test_info_nce_prefers_aligned_pairs():
    a = torch.randn(16, 8)
    assert info_nce(a, a, 0.1) < info_nce(a, torch.randn(16, 8), 0.1)
    assert nt_xent(a, a, 0.1) < nt_xent(a, torch.randn(16, 8), 0.1)


def test_comm_loss_averages_terms():
    z = [torch.randn(8, 4) for _ in range(3)]
    w = [torch.randn(8, 4) for _ in range(3)]
    loss, terms = comm_loss(z, w, 0.1)
    assert set(terms) == {"fused", "uni1", "uni2"}
    assert loss.item() == pytest.approx(np.mean(list(terms.values())), rel=1e-5)
    with pytest.raises(ValueError, match="comm_loss needs"):
        comm_loss(z, w[:2])


def test_coral_zero_for_equal_covariance():
    a = torch.randn(64, 5)
    assert coral_loss(a, a).item() == pytest.approx(0.0, abs=1e-7)
    assert coral_loss(a, 3 * a).item() > 0


def test_comm_masks_isolate_modalities():
    m = _make("comm").eval()
    x1, x2, _ = _batch(8)
    z1, z2 = m.embed_unimodal(x1, x2)
    z1b, _ = m.embed_unimodal(x1, torch.randn_like(x2))
    _, z2b = m.embed_unimodal(torch.randn_like(x1), x2)
    # Z1 must not depend on x2 (and Z2 not on x1): the other modality is masked out
    assert torch.allclose(z1, z1b, atol=1e-5)
    assert torch.allclose(z2, z2b, atol=1e-5)
    assert not torch.allclose(m.embed(x1, x2), m.embed(x1, torch.randn_like(x2)))


def _fusion_reference(fusion, t1, t2, masks):
    """The full-sequence fusion with masked tokens excluded by a padding mask (the former
    implementation): every token of every mask is computed, and every layer in full."""
    b, n1, n2 = t1.shape[0], t1.shape[1], t2.shape[1]
    cls = fusion.cls.expand(b, -1, -1)
    seq = torch.cat([cls, t1 + fusion.modality[0], t2 + fusion.modality[1]], 1)
    seq = seq.repeat(len(masks), 1, 1)
    pad = torch.zeros(len(masks), 1 + n1 + n2, dtype=torch.bool)
    for k, (on1, on2) in enumerate(masks):
        pad[k, 1 : 1 + n1] = not on1
        pad[k, 1 + n1 :] = not on2
    pad = pad.repeat_interleave(b, dim=0)
    out = fusion.norm(fusion.blocks(seq, src_key_padding_mask=pad)[:, 0])
    return list(out.split(b, dim=0))


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("n2", [3, 5])
def test_fusion_matches_full_sequence_with_padding_mask(layers, n2):
    from pid_bench.learners.comm import MASKS_ALL, Fusion

    torch.manual_seed(0)
    fusion = Fusion(16, 2, layers)
    t1, t2 = torch.randn(7, 3, 16), torch.randn(7, n2, 16)
    for masks in (MASKS_ALL, [(True, True)], MASKS_ALL[:2], [(False, True), (True, True)]):
        got = fusion(t1, t2, masks)
        want = _fusion_reference(fusion, t1, t2, masks)
        assert len(got) == len(masks)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _comm_loss_reference(m, x1, x2, y, idx, g):
    """CoMM's former loss: view by view through encoders, full-sequence fusion and head."""
    from pid_bench.learners.comm import MASKS_ALL
    from pid_bench.learners.losses import comm_loss as loss_fn

    views = []
    for _ in range(2):
        a1, a2 = m.augment(x1, x2, g)
        views.append(
            [m.head(z) for z in _fusion_reference(m.fusion, m.enc1(a1), m.enc2(a2), MASKS_ALL)]
        )
    return loss_fn(*views, m.model_cfg.temperature, fused_term=m.fused_term)


def _cross_self_loss_reference(m, x1, x2, y, idx, g):
    """Cross+Self's former loss: every encoder and head call view by view."""
    t = m.model_cfg.temperature
    a1, a2 = m.augment(x1, x2, g)
    b1, b2 = m.augment(x1, x2, g)
    za1, za2, zb1, zb2 = m.enc1(a1), m.enc2(a2), m.enc1(b1), m.enc2(b2)
    cross = 0.5 * (info_nce(za1, zb2, t) + info_nce(zb1, za2, t))
    self_ = nt_xent(m.self1(za1), m.self1(zb1), t) + nt_xent(m.self2(za2), m.self2(zb2), t)
    return cross + m.self_weight * self_, {}


REFERENCES = {
    "comm": _comm_loss_reference,
    "comm_unimodal": _comm_loss_reference,
    "cross_self": _cross_self_loss_reference,
    "factorcl": "per_view",  # its heads were always per-sample; the encoders now batch views
}


@pytest.mark.parametrize("kinds", ["vector", "image"])
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_loss_and_gradients_unchanged_by_pruning_and_batching(name, kinds, monkeypatch):
    """A learner's loss and every parameter's gradient on a fixed batch are those of the
    former, view-by-view and full-sequence implementation: pruning masked tokens and the last
    fusion layer's non-CLS rows, and stacking views into one call, remove FLOPs, not terms.
    On images the BatchNorm encoders keep one call per view."""
    import importlib

    if kinds == "vector":
        x1, x2, y = _batch(32)
        kk, shapes = KINDS, SHAPES
    else:
        g0 = torch.Generator().manual_seed(1)
        x1, x2 = torch.rand(16, 3, 16, 16, generator=g0), torch.rand(16, 3, 16, 16, generator=g0)
        y = torch.arange(16) % 4
        kk, shapes = ("image", "image"), ((3, 16, 16), (3, 16, 16))
    n = x1.shape[0]

    def loss_and_grads(reference):
        torch.manual_seed(0)
        m = get_learner(name)(
            kk, shapes, SMALL, AugConfig(noise_std=0.05, mask_max=0.2), n_classes=4
        )
        g = torch.Generator().manual_seed(5)
        if reference is None:
            loss, _ = m.loss(x1, x2, y, torch.arange(n), g)
        else:
            loss, _ = reference(m, x1, x2, y, torch.arange(n), g)
        loss.backward()
        return loss.detach(), {
            k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None
        }

    loss, grads = loss_and_grads(None)
    ref = REFERENCES[name]
    if ref == "per_view":
        module = importlib.import_module(get_learner(name).__module__)
        monkeypatch.setattr(module, "encode_views", lambda enc, *xs: [enc(x) for x in xs])
        ref = None
    ref_loss, ref_grads = loss_and_grads(ref)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    assert grads.keys() == ref_grads.keys() and grads
    for k in grads:
        torch.testing.assert_close(grads[k], ref_grads[k], rtol=1e-4, atol=1e-6, msg=k)


def test_encode_views_batches_only_per_sample_encoders():
    from pid_bench.learners.encoders import batch_independent, build_encoder

    assert batch_independent(build_encoder("vector", (6,), SMALL))
    assert not batch_independent(build_encoder("image", (3, 16, 16), SMALL))


def test_train_loop_logs_and_is_deterministic(tmp_path):
    x1, x2, y = (t.numpy() for t in _batch(64))
    cfg = TrainConfig(epochs=2, batch_size=16)
    outs = []
    for k in range(2):
        m = _make("comm")
        log = train(m, x1, x2, None, cfg, device=torch.device("cpu"), seed=3,
                    log_path=tmp_path / f"log{k}.csv", progress=False)  # fmt: skip
        assert [r["epoch"] for r in log] == [1, 2]
        outs.append(embed(m, x1, x2, torch.device("cpu")))
    assert (tmp_path / "log0.csv").read_text().startswith("epoch,loss")
    np.testing.assert_array_equal(outs[0], outs[1])


def test_supervised_needs_labels():
    x1, x2, _ = (t.numpy() for t in _batch(16))
    with pytest.raises(ValueError, match="supervised"):
        train(
            _make("supervised"),
            x1,
            x2,
            None,
            TrainConfig(epochs=1),
            device=torch.device("cpu"),
            seed=0,
        )
    with pytest.raises(ValueError, match="n_classes"):
        get_learner("supervised")(KINDS, SHAPES, SMALL, AugConfig())


def test_unknown_learner_lists_names():
    with pytest.raises(ValueError, match="available: .*comm"):
        get_learner("nope")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", ["comm", "cross"])
def test_cuda_step_matches_cpu(name):
    """The GPU path: a training step on CUDA gives the CPU's loss and gradients (to float
    tolerance) for the same weights (augmentations off: CUDA draws another random stream)."""
    x1, x2, y = _batch(32)
    out = {}
    for dev in ("cpu", "cuda"):
        torch.manual_seed(0)
        m = get_learner(name)(KINDS, SHAPES, SMALL, AugConfig(noise_std=0.0, mask_max=0.0))
        m.to(dev)
        g = torch.Generator(device=dev).manual_seed(5)
        loss, _ = m.loss(x1.to(dev), x2.to(dev), y.to(dev), torch.arange(32, device=dev), g)
        loss.backward()
        out[dev] = (loss.detach().cpu(), {k: p.grad.cpu() for k, p in m.named_parameters()})
    torch.testing.assert_close(out["cpu"][0], out["cuda"][0], rtol=1e-4, atol=1e-5)
    for k, v in out["cpu"][1].items():
        torch.testing.assert_close(v, out["cuda"][1][k], rtol=1e-3, atol=1e-5, msg=k)


#: The architecture options of CoMM's released code (tests/test_fidelity_comm.py).
AUTHORS_OPTIONS = {
    "fusion_ff_mult": 4,
    "fusion_activation": "quick_gelu",
    "fusion_init": "comm",
    "modality_embedding": False,
    "head": "comm_bn",
    "head_hidden": 24,
}


@pytest.mark.parametrize("kinds", ["vector", "image"])
@pytest.mark.parametrize("name", ["comm", "cross_self", "random_fusion"])
def test_learners_train_with_the_authors_architecture_options(name, kinds):
    """The opt-in options build, train a few steps and embed, on vectors and images."""
    from dataclasses import replace

    cfg = replace(SMALL, cnn_width=4, **AUTHORS_OPTIONS)
    if kinds == "vector":
        x1, x2, y = _batch(16)
        kk, shapes = KINDS, SHAPES
    else:
        g0 = torch.Generator().manual_seed(1)
        x1, x2 = torch.rand(8, 3, 16, 16, generator=g0), torch.rand(8, 3, 16, 16, generator=g0)
        kk, shapes = ("image", "image"), ((3, 16, 16), (3, 16, 16))
    torch.manual_seed(0)
    m = get_learner(name)(kk, shapes, cfg, AugConfig(noise_std=0.05, mask_max=0.2))
    if name == "cross_self":
        m.cross_loss, m.cross_heads, m.cross_views = "nt_xent", True, "clean"
        assert m.self1[1].num_features == 24  # the BatchNorm head at head_hidden width
    if m.trainable:
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(1)
        for _ in range(3):
            loss, _ = m.loss(x1, x2, None, torch.arange(len(x1)), g)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert torch.isfinite(loss)
    m.eval()
    with torch.no_grad():
        assert torch.isfinite(m.embed(x1, x2)).all()
    if name != "cross_self":
        assert m.fusion.modality is None
        assert m.fusion.blocks.layers[0].linear1.out_features == 4 * cfg.d_model


def test_comm_fusion_init_draws_the_authors_scales():
    """`fusion_init="comm"`: CLS token N(0, 1), attention input projection std d^-1/2, MLP
    input std (2d)^-1/2, both residual projections std d^-1/2 (2L)^-1/2 (CoMM's
    FusionTransformer.initialize); the default keeps nn.TransformerEncoderLayer's."""
    from pid_bench.learners.comm import Fusion

    d, n_layers = 64, 2
    torch.manual_seed(0)
    f = Fusion(d, 4, n_layers, ff_mult=4, init="comm")
    proj = d**-0.5 * (2 * n_layers) ** -0.5
    for layer in f.blocks.layers:
        for w, std in (
            (layer.self_attn.in_proj_weight, d**-0.5),
            (layer.self_attn.out_proj.weight, proj),
            (layer.linear1.weight, (2 * d) ** -0.5),
            (layer.linear2.weight, proj),
        ):
            assert abs(float(w.std()) / std - 1) < 0.05
    # every layer its own draw (nn.TransformerEncoder copies one layer)
    a, b = (layer.linear1.weight for layer in f.blocks.layers)
    assert not torch.equal(a, b)
    torch.manual_seed(0)
    default = Fusion(d, 4, n_layers)
    assert float(default.cls.std()) < 0.05 < 0.5 < float(f.cls.std())


def test_cross_self_variant_hyperparameters_are_checked():
    from pid_bench.learners import check_hyperparams

    cls = get_learner("cross_self")
    assert check_hyperparams(cls, {"cross_heads": "true", "cross_loss": "nt_xent"}) == {
        "cross_heads": True,
        "cross_loss": "nt_xent",
    }
    m = _make("cross_self")
    m.cross_loss = "clip"
    x1, x2, y = _batch(8)
    with pytest.raises(ValueError, match="cross_loss must be one of info_nce, nt_xent"):
        m.loss(x1, x2, y, torch.arange(8), None)
