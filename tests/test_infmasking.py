"""InfMasking: the masked term against its formula, its masks, and the plug-in route."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from pid_bench.config import AugConfig, ModelConfig, TrainConfig
from pid_bench.contrib.infmasking import InfMasking, masked_term
from pid_bench.learners import get_learner
from pid_bench.training import embed, train

SMALL = ModelConfig(d_model=16, n_tokens=4, hidden=32, proj_dim=8, fusion_heads=2)


def _loop_masked_term(q, k, lam, tau):
    """The masked term computed sample by sample from the formula, in float64 Python."""
    q, k = q.double().tolist(), k.double().tolist()
    n_masks, b = len(k), len(q)

    def dot(u, v):
        return sum(a * c for a, c in zip(u, v, strict=True))

    total_ce, total_quad = 0.0, 0.0
    for i in range(b):
        mu = [sum(k[t][i][e] for t in range(n_masks)) / n_masks for e in range(len(q[i]))]
        quad = sum(dot([k[t][i][e] - mu[e] for e in range(len(mu))], q[i]) ** 2
                   for t in range(n_masks)) / n_masks  # fmt: skip
        pos = dot(q[i], mu) / tau + lam * quad / (2 * tau**2)
        negs = [dot(q[i], k[t][n]) / tau for t in range(n_masks) for n in range(b) if n != i]
        negs += [dot(q[i], q[n]) / tau for n in range(b) if n != i]
        top = max([pos] + negs)
        lse = top + math.log(sum(math.exp(v - top) for v in [pos] + negs))
        total_ce += lse - pos
        total_quad += quad
    return total_ce / b + lam * (total_quad / b) / (2 * tau**2)


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_masked_term_matches_the_formula_loop_by_loop(lam):
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(5, 4, generator=g), dim=-1)
    k = F.normalize(torch.randn(3, 5, 4, generator=g), dim=-1)
    got = masked_term(q, k, lam, 0.1).item()
    assert got == pytest.approx(_loop_masked_term(q, k, lam, 0.1), rel=1e-5)


def test_masked_term_without_lambda_is_infonce_on_the_masked_mean():
    """lambda = 0: cross-entropy with q.mu as the positive, the masked and full embeddings of
    the other samples as negatives: the InfoNCE of q against the mean of its masked views."""
    g = torch.Generator().manual_seed(1)
    q = F.normalize(torch.randn(6, 8, generator=g), dim=-1)
    k = F.normalize(torch.randn(4, 6, 8, generator=g), dim=-1)
    tau = 0.2
    mu = k.mean(0)
    b = q.shape[0]
    off = ~torch.eye(b, dtype=torch.bool)
    logits = torch.cat(
        [
            (q * mu).sum(1, keepdim=True),
            torch.stack([(q @ k[t].T)[off].view(b, b - 1) for t in range(4)], 1).view(b, -1),
            (q @ q.T)[off].view(b, b - 1),
        ],
        1,
    )
    want = F.cross_entropy(logits / tau, torch.zeros(b, dtype=torch.long))
    torch.testing.assert_close(masked_term(q, k, 0.0, tau), want)
    # and a spread among the masked views raises the positive logit and the penalty alike
    assert masked_term(q, k, 1.0, tau) != masked_term(q, k, 0.0, tau)


def _make(kinds=("vector", "vector"), shapes=((6,), (5,)), **hp):
    torch.manual_seed(0)
    m = InfMasking(kinds, shapes, SMALL, AugConfig(noise_std=0.05, mask_max=0.2))
    for key, v in hp.items():
        setattr(m, key, v)
    return m


def test_masks_differ_across_k_and_mask_the_ratio_of_each_modality():
    m = _make(mask_ratio=0.5, n_masks=6)
    keep = m.keep_masks(32, 4, torch.Generator().manual_seed(0), "cpu")
    assert keep.shape == (6, 32, 4)
    assert (keep.sum(-1) == 2).all()  # int(4 * (1 - 0.5)) kept per sample and mask
    # the K masks of one sample are not all the same (over 32 samples, some differ)
    differ = [(keep[:, i] != keep[0, i]).any() for i in range(32)]
    assert sum(bool(d) for d in differ) >= 28
    # the authors' count on Trifeature's 16 tokens at ratio 0.7: 4 kept
    assert (_make(mask_ratio=0.7).keep_masks(3, 16, None, "cpu").sum(-1) == 4).all()


def test_masked_views_replace_tokens_by_the_mask_token_and_keep_cls():
    """Each masked view is the fusion of a sequence built here from the paper's rule, without
    the implementation's mask helpers: of each modality's n tokens, int(n * (1 - ratio)) kept
    and the rest replaced by the learned mask token; the CLS token untouched (prepended by the
    fusion). Every choice of kept positions is tried; exactly one must give each output."""
    m = _make(mask_ratio=0.75, n_masks=3)
    b, n, d = 4, 4, 16
    t1, t2 = torch.randn(b, n, d), torch.randn(b, n, d)
    with torch.no_grad():
        out = m.masked_views(t1, t2, torch.Generator().manual_seed(3))
        assert out.shape == (3, b, d)
        e1, e2 = m.fusion.embed_tokens(t1, t2)
        token = m.mask_token.reshape(d)
        subsets = list(itertools.combinations(range(n), 1))  # int(4 * 0.25) = 1 kept
        choices = list(itertools.product(subsets, subsets))
        found = {}
        for i in range(b):
            seqs = []
            for keep1, keep2 in choices:
                seq = [e1[i, j] if j in keep1 else token for j in range(n)]
                seq += [e2[i, j] if j in keep2 else token for j in range(n)]
                seqs.append(torch.stack(seq))
            cand = m.fusion.cls_output(torch.stack(seqs))  # (len(choices), d)
            for t in range(3):
                hits = [c for c, z in zip(choices, cand, strict=True)
                        if torch.allclose(z, out[t, i], atol=1e-5)]  # fmt: skip
                assert len(hits) == 1, (t, i, hits)
                found[t, i] = hits[0]
    # the masks are drawn per mask and sample: the K choices of a sample are not all the same
    assert any(len({found[t, i] for t in range(3)}) > 1 for i in range(b))
    assert not torch.allclose(out[0], out[1])


def test_lambda_ramps_from_one_over_epochs_to_mask_lambda(tmp_path):
    m = _make(mask_lambda=1.0)
    x1, x2 = np.random.default_rng(0).normal(size=(2, 64, 6)).astype(np.float32)
    x2 = x2[:, :5]
    seen = []
    orig = m.start_epoch

    def spy(epoch, n):
        orig(epoch, n)
        seen.append(m.lam)

    m.start_epoch = spy
    log = train(m, x1, x2, None, TrainConfig(epochs=4, batch_size=16),
                device=torch.device("cpu"), seed=0, progress=False)  # fmt: skip
    assert seen == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert {"mask1", "mask2", "fused", "uni1", "uni2"} <= set(log[-1])
    assert log[-1]["loss"] < log[0]["loss"]
    z = embed(m, x1, x2, torch.device("cpu"))
    assert z.shape == (64, 16) and np.isfinite(z).all()


def test_images_train_and_are_deterministic():
    kinds, shapes = ("image", "image"), ((3, 16, 16), (3, 16, 16))
    x1, x2 = np.random.default_rng(0).random((2, 32, 3, 16, 16), dtype=np.float32)
    outs = []
    for _ in range(2):
        m = _make(kinds, shapes, n_masks=2)
        train(m, x1, x2, None, TrainConfig(epochs=1, batch_size=16),
              device=torch.device("cpu"), seed=1, progress=False)  # fmt: skip
        outs.append(embed(m, x1, x2, torch.device("cpu")))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_found_by_entry_point_and_uses_only_the_public_api():
    cls = get_learner("infmasking")
    assert cls is InfMasking and cls.name == "infmasking"
    src = open(sys.modules[InfMasking.__module__].__file__).read()
    imports = [ln for ln in src.splitlines() if ln.startswith(("from pid_bench", "import pid"))]
    assert imports and all(ln.startswith("from pid_bench.learners import") for ln in imports)
    out = subprocess.run(
        [sys.executable, "-m", "pid_bench.cli", "list"], capture_output=True, text=True
    )
    assert "infmasking" in out.stdout


SMALL_DATA = {
    "bits": {"n_train": 256, "n_test": 128},
    "content_style": {"n_train": 256, "n_test": 128},
    "gaussian": {"n_train": 256, "n_test": 128},
    "trifeature": {"n_train": 64, "n_test": 64},
}


@pytest.mark.parametrize("gen", sorted(SMALL_DATA))
def test_runs_on_every_generator_through_the_python_api(gen):
    from pid_bench import evaluate

    res = evaluate(
        "infmasking",
        generator=gen,
        interaction="synergy",
        generator_params=SMALL_DATA[gen],
        epochs=1,
        batch_size=32,
        mlp=False,
        device="cpu",
        learner_params={"n_masks": 2, "mask_ratio": 0.7},
        settings={"model.d_model": 16, "model.hidden": 32, "model.fusion_heads": 2},
        quiet=True,
    )
    acc = res[(res.probe == "linear") & (res.metric == "balanced_accuracy")]
    assert set(acc.learner) == {"infmasking"} and set(acc.task) == {"synergy"}
    assert np.isfinite(acc.value).all()
    params = res.params.iloc[0]
    assert '"n_masks": 2' in params and '"mask_ratio": 0.7' in params


def test_runs_from_the_command_line_with_its_hyperparameters(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pid_bench.cli", "run", "--generator", "bits",
           "--set", "n_train=256", "--set", "n_test=128", "--learners", "infmasking", "comm",
           "--seeds", "0", "--epochs", "1", "--interaction", "redundancy", "--no-mlp",
           "--learner-set", "infmasking.n_masks=2", "--quiet", "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    res = pd.read_csv(out / "results.csv")
    assert {"infmasking", "comm"} <= set(res.learner)
    bad_cmd = cmd[:-2] + ["--learner-set", "infmasking.n_masks=two", "--out", str(tmp_path / "b")]
    bad = subprocess.run(bad_cmd, capture_output=True, text=True)
    assert bad.returncode != 0 and "n_masks" in bad.stderr and "int" in bad.stderr
    assert "Traceback" not in bad.stderr
