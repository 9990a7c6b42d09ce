"""Our CoMM and Cross+Self against the authors' released code (Duplums/CoMM).

The fixtures under tests/fixtures/fidelity/ were made by running the authors' modules
(`tools/fidelity/make_fixtures_comm.py`; comm.json names the commit). Here our modules,
configured to the authors' architecture by the opt-in `ModelConfig` options and
`cross_self` hyperparameters, are loaded with the same weights and must give the same fusion
outputs (every modality mask, CLS pooling), head outputs, losses, loss terms and gradients,
within float32 tolerance. reports/fidelity/README.md lists what still differs and why.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from pid_bench.config import AugConfig, ModelConfig
from pid_bench.learners import get_learner
from pid_bench.learners.comm import MASKS_ALL
from pid_bench.learners.losses import comm_loss, nt_xent

FIXTURES = Path(__file__).parent / "fixtures" / "fidelity"
META = json.loads((FIXTURES / "comm.json").read_text())
SIZES = META["sizes"]
#: float32 tolerances: the two implementations sum in different orders (their
#: nn.MultiheadAttention against our own projections, their loss over a 2N x 2N matrix with
#: -1e8 on the diagonal against ours with -inf).
TOL = {"rtol": 1e-4, "atol": 1e-5}

#: Our CoMM, configured as the authors' fusion and head at the fixtures' sizes.
AUTHORS = ModelConfig(
    d_model=SIZES["width"],
    fusion_heads=SIZES["heads"],
    fusion_layers=SIZES["layers"],
    proj_dim=SIZES["head_out"],
    head_hidden=SIZES["head_hidden"],
    temperature=SIZES["temperature"],
    n_tokens=2,
    hidden=8,
    fusion_ff_mult=4,
    fusion_activation="quick_gelu",
    fusion_init="comm",
    modality_embedding=False,
    head="comm_bn",
)


def load(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / name) as f:
        return {k: f[k] for k in f.files}


def t(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(a, requires_grad=grad)


def close(ours: torch.Tensor, theirs: np.ndarray, what: str) -> None:
    torch.testing.assert_close(ours.detach(), torch.from_numpy(np.asarray(theirs)), **TOL, msg=what)


def fusion_name(theirs: str) -> str | None:
    """Our Fusion's parameter name for one of their FusionTransformer's (None: not fusion)."""
    prefix = "encoder.fusion_transformer."
    if not theirs.startswith(prefix):
        return None
    name = theirs[len(prefix) :]
    if name == "cls_token":
        return "cls"
    m = re.fullmatch(r"resblocks\.(\d+)\.(.+)", name)
    if m is None:
        return name  # the final norm
    rest = m.group(2)
    for a, b in (
        ("attn.", "self_attn."),
        ("ln_1.", "norm1."),
        ("ln_2.", "norm2."),
        ("mlp.c_fc.", "linear1."),
        ("mlp.c_proj.", "linear2."),
    ):
        rest = rest.replace(a, b)
    return f"blocks.layers.{m.group(1)}.{rest}"


#: Their _build_mlp's layer names -> indices in our nn.Sequential head.
HEAD_INDEX = {"layer1": 0, "bn1": 1, "layer2": 3, "bn2": 4, "layer3": 6}


def head_name(theirs: str, prefix: str = "head.") -> str | None:
    """Our head's parameter or buffer name for one of their `_build_mlp` head's."""
    if not theirs.startswith(prefix):
        return None
    layer, rest = theirs[len(prefix) :].split(".", 1)
    return f"{HEAD_INDEX[layer]}.{rest}"


def their_name(module: str, ours: str) -> str:
    """Their name for one of our CoMM learner's fusion or head parameters or buffers."""
    if module == "head":
        i, rest = ours.split(".", 1)
        layer = {v: k for k, v in HEAD_INDEX.items()}[int(i)]
        return f"head.{layer}.{rest}"
    for theirs in COMM_FIX:
        if theirs.startswith("w/") and fusion_name(theirs[2:]) == ours:
            return theirs[2:]
    raise KeyError(ours)


COMM_FIX = load("comm_fusion_head.npz")
LOSS_FIX = load("comm_losses.npz")


def comm_like_authors() -> torch.nn.Module:
    """Our CoMM learner with the authors' architecture and their fixture weights."""
    torch.manual_seed(0)
    m = get_learner("comm")(("vector", "vector"), ((4,), (4,)), AUTHORS, AugConfig())
    w = {k[2:]: torch.from_numpy(v) for k, v in COMM_FIX.items() if k.startswith("w/")}
    m.fusion.load_state_dict({fusion_name(k): v for k, v in w.items() if fusion_name(k)})
    m.head.load_state_dict({head_name(k): v for k, v in w.items() if head_name(k)})
    return m.train()


def tokens() -> dict[str, torch.Tensor]:
    return {k[3:]: t(v, grad=True) for k, v in COMM_FIX.items() if k.startswith("in/")}


def test_metadata_names_repository_and_commit():
    assert META["repository"] == "Duplums/CoMM"
    assert re.fullmatch(r"[0-9a-f]{40}", META["commit"])
    assert META["torch"] and "make_fixtures_comm.py" in META["command"]
    assert META["checkout_modified"] is False


def test_fixture_weights_cover_our_modules_exactly():
    """Every parameter of our fusion and head has a counterpart in theirs and vice versa
    (load_state_dict is strict): with `modality_embedding=False`, `fusion_ff_mult=4` and the
    `comm_bn` head, our modules hold exactly the authors' parameters."""
    m = comm_like_authors()
    ours = {f"fusion.{k}" for k in m.fusion.state_dict()} | {
        f"head.{k}" for k in m.head.state_dict()
    }
    theirs = {k for k in COMM_FIX if k.startswith("w/")}
    assert len(ours) == len(theirs)
    assert not any("modality" in k for k in ours)


@pytest.mark.parametrize("view", ["a", "b"])
def test_fusion_outputs_for_every_mask(view):
    """CLS output of the fusion for [x1 only], [x2 only], [both] (their mask list: masked
    tokens dropped) and over the full sequence (their padding-mask path)."""
    m = comm_like_authors()
    tok = tokens()
    with torch.no_grad():
        z = m.fusion(tok[f"tok1_{view}"], tok[f"tok2_{view}"], MASKS_ALL)
    assert [tuple(mask) for mask in SIZES["masks"]] == MASKS_ALL
    for k, zk in enumerate(z):
        close(zk, COMM_FIX[f"fusion/{view}/{k}"], f"fusion, mask {MASKS_ALL[k]}")
    close(z[2], COMM_FIX[f"fusion/{view}/full"], "fusion, full sequence")


def comm_pass():
    """Our CoMM learner's head outputs, loss and terms on the fixture's two views of tokens,
    through `project_views` (the code path of `CoMM.loss` after the encoders)."""
    m = comm_like_authors()
    tok = tokens()
    n = SIZES["batch"]
    t1 = torch.cat([tok["tok1_a"], tok["tok1_b"]])
    t2 = torch.cat([tok["tok2_a"], tok["tok2_b"]])
    va, vb = m.project_views(t1, t2, n)
    loss, terms = comm_loss(va, vb, m.model_cfg.temperature, fused_term=m.fused_term)
    loss.backward()
    return m, tok, va, vb, loss, terms


def test_head_outputs_per_view_and_mask():
    """The BatchNorm head (training mode) normalises each view's and mask's batch on its own."""
    _, _, va, vb, _, _ = comm_pass()
    for view, hs in (("a", va), ("b", vb)):
        for k, h in enumerate(hs):
            close(h, COMM_FIX[f"head/{view}/{k}"], f"head output, view {view}, mask {k}")


def test_comm_loss_and_each_term():
    _, _, _, _, loss, terms = comm_pass()
    close(loss, COMM_FIX["loss"], "loss")
    # their ssl_loss_k pairs Z_k with the fused Z (k = 0, 1) and Z with Z (k = 2)
    for ours, k in (("uni1", 0), ("uni2", 1), ("fused", 2)):
        np.testing.assert_allclose(terms[ours], COMM_FIX[f"term/{k}"], **TOL, err_msg=ours)


def test_comm_gradients_of_every_parameter_and_input():
    m, tok, _, _, _, _ = comm_pass()
    grads = {
        their_name(mod, k): p.grad
        for mod in ("fusion", "head")
        for k, p in getattr(m, mod).named_parameters()
    }
    want = {k[5:]: v for k, v in COMM_FIX.items() if k.startswith("grad/")}
    assert grads.keys() == want.keys()
    for k, g in grads.items():
        close(g, want[k], f"gradient of {k}")
    for k, x in tok.items():
        close(x.grad, COMM_FIX[f"grad_in/{k}"], f"gradient of input {k}")


def test_head_running_statistics_and_eval_mode():
    """Six training-mode head calls in their order update the BatchNorm running statistics
    as theirs; in eval mode the head then gives their outputs."""
    m, _, _, _, _, _ = comm_pass()
    for k, b in m.head.named_buffers():
        close(b, COMM_FIX[f"after/{their_name('head', k)}"], f"buffer {k}")
    m.head.eval()
    with torch.no_grad():
        for k in range(len(MASKS_ALL)):
            h = m.head(torch.from_numpy(COMM_FIX[f"fusion/a/{k}"]))
            close(h, COMM_FIX[f"head_eval/a/{k}"], f"eval-mode head, mask {k}")


@pytest.mark.parametrize("n_mod", [2, 3])
def test_comm_loss_on_given_embeddings(n_mod):
    p = f"comm{n_mod}/"
    za = [t(LOSS_FIX[p + f"in/a/{k}"], grad=True) for k in range(n_mod + 1)]
    zb = [t(LOSS_FIX[p + f"in/b/{k}"], grad=True) for k in range(n_mod + 1)]
    loss, terms = comm_loss(za, zb, SIZES["temperature"])
    loss.backward()
    close(loss, LOSS_FIX[p + "loss"], "loss")
    names = [f"uni{i}" for i in range(1, n_mod + 1)] + ["fused"]
    for k, name in enumerate(names):
        np.testing.assert_allclose(terms[name], LOSS_FIX[p + f"term/{k}"], **TOL, err_msg=name)
    for k in range(n_mod + 1):
        close(za[k].grad, LOSS_FIX[p + f"grad_in/a/{k}"], f"gradient of Z_a[{k}]")
        close(zb[k].grad, LOSS_FIX[p + f"grad_in/b/{k}"], f"gradient of Z_b[{k}]")


def test_nt_xent_is_their_infonce():
    a, b = t(LOSS_FIX["infonce/in/a"], grad=True), t(LOSS_FIX["infonce/in/b"], grad=True)
    loss = nt_xent(a, b, SIZES["temperature"])
    loss.backward()
    close(loss, LOSS_FIX["infonce/loss"], "loss")
    close(a.grad, LOSS_FIX["infonce/grad_in/a"], "gradient of a")
    close(b.grad, LOSS_FIX["infonce/grad_in/b"], "gradient of b")


def test_cross_self_loss_terms_on_given_embeddings():
    """Their CrossSelfLoss = cross + ssl_scale (1) x 0.5 x (mod1 + mod2), every term an
    NT-Xent: our nt_xent per term and our self weight 0.5 give it."""
    p = "cross_self_loss/"
    e = {k[len(p) + 3 :]: t(v, grad=True) for k, v in LOSS_FIX.items() if k.startswith(p + "in/")}
    tau = SIZES["temperature"]
    terms = {
        "cross": nt_xent(e["mod1_embed"], e["mod2_embed"], tau),
        "mod1": nt_xent(e["mod1_aug1_embed"], e["mod1_aug2_embed"], tau),
        "mod2": nt_xent(e["mod2_aug1_embed"], e["mod2_aug2_embed"], tau),
    }
    loss = terms["cross"] + get_learner("cross_self").self_weight * (terms["mod1"] + terms["mod2"])
    loss.backward()
    close(loss, LOSS_FIX[p + "loss"], "loss")
    for k, v in terms.items():
        close(v, LOSS_FIX[p + f"term/{k}"], k)
    for k, x in e.items():
        close(x.grad, LOSS_FIX[p + f"grad_in/{k}"], f"gradient of {k}")


def cross_self_like_authors():
    """Our Cross+Self with the authors' recipe (NT-Xent cross term through the self heads on
    the clean inputs, BatchNorm heads) and their fixture head weights."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        d_model=SIZES["width"],
        proj_dim=SIZES["head_out"],
        head_hidden=SIZES["head_hidden"],
        head="comm_bn",
        temperature=SIZES["temperature"],
        n_tokens=2,
        hidden=8,
    )
    m = get_learner("cross_self")(("vector", "vector"), ((4,), (4,)), cfg, AugConfig())
    m.cross_loss, m.cross_heads, m.cross_views = "nt_xent", True, "clean"
    w = {k: torch.from_numpy(v) for k, v in LOSS_FIX.items() if k.startswith("cross_self/w/")}
    for ours, theirs in (("self1", "head1."), ("self2", "head2.")):
        getattr(m, ours).load_state_dict(
            {head_name(k[13:], theirs): v for k, v in w.items() if head_name(k[13:], theirs)}
        )
    return m.train()


def test_cross_self_learner_matches_authors():
    """Loss, terms, every head gradient, the gradient of every input embedding and the heads'
    running statistics of our Cross+Self (authors' options) on their inputs."""
    m = cross_self_like_authors()
    p = "cross_self/"
    x = {k[len(p) + 3 :]: t(v, grad=True) for k, v in LOSS_FIX.items() if k.startswith(p + "in/")}
    loss, terms = m.embedding_loss(
        (x["mod1_aug1"], x["mod1_aug2"]), (x["mod2_aug1"], x["mod2_aug2"]), (x["mod1"], x["mod2"])
    )
    loss.backward()
    close(loss, LOSS_FIX[p + "loss"], "loss")
    np.testing.assert_allclose(terms["cross"], LOSS_FIX[p + "term/cross"], **TOL)
    their_self = LOSS_FIX[p + "term/mod1"] + LOSS_FIX[p + "term/mod2"]
    np.testing.assert_allclose(terms["self"], their_self, **TOL)
    for k, v in x.items():
        close(v.grad, LOSS_FIX[p + f"grad_in/{k}"], f"gradient of input {k}")
    for ours, theirs in (("self1", "head1"), ("self2", "head2")):
        for k, q in getattr(m, ours).named_parameters():
            i, rest = k.split(".", 1)
            layer = {v: k for k, v in HEAD_INDEX.items()}[int(i)]
            close(q.grad, LOSS_FIX[f"{p}grad/{theirs}.{layer}.{rest}"], f"gradient of {ours}.{k}")
        for k, b in getattr(m, ours).named_buffers():
            i, rest = k.split(".", 1)
            layer = {v: k for k, v in HEAD_INDEX.items()}[int(i)]
            close(b, LOSS_FIX[f"{p}after/{theirs}.{layer}.{rest}"], f"buffer {ours}.{k}")


def test_cross_self_heads_match_their_head_outputs():
    """Each head's training-mode output on each of their inputs (one batch per call)."""
    m = cross_self_like_authors()
    p = "cross_self/"
    for head, mod in ((m.self1, "mod1"), (m.self2, "mod2")):
        for k in (mod, f"{mod}_aug1", f"{mod}_aug2"):
            with torch.no_grad():
                h = head(torch.from_numpy(LOSS_FIX[f"{p}in/{k}"]))
            close(h, LOSS_FIX[f"{p}head_out/{k}_embed"], f"head output on {k}")
