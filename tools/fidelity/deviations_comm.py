"""Largest deviation between our modules and the authors' fixture outputs, per step.

    PYTHONPATH=. python tools/fidelity/deviations_comm.py

Runs the comparisons of tests/test_fidelity_comm.py and prints, per step, the largest
absolute difference from the authors' outputs (a markdown table for reports/fidelity).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

import test_fidelity_comm as T  # noqa: E402

from pid_bench.learners.comm import MASKS_ALL  # noqa: E402
from pid_bench.learners.losses import comm_loss, nt_xent  # noqa: E402

torch.set_num_threads(1)
dev: dict[str, float] = {}


def record(cat: str, a, b) -> None:
    """Keep the largest |a - b| of step `cat`."""
    a = np.asarray(a.detach() if torch.is_tensor(a) else a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    dev[cat] = max(dev.get(cat, 0.0), float(np.abs(a - b).max()))


m = T.comm_like_authors()
tok = T.tokens()
with torch.no_grad():
    for v in "ab":
        z = m.fusion(tok[f"tok1_{v}"], tok[f"tok2_{v}"], MASKS_ALL)
        for k in range(3):
            record("fusion outputs (3 masks x 2 views)", z[k], T.COMM_FIX[f"fusion/{v}/{k}"])
        record(
            "fusion, full sequence (their padding-mask path)", z[2], T.COMM_FIX[f"fusion/{v}/full"]
        )
m, tok, va, vb, loss, terms = T.comm_pass()
for v, hs in (("a", va), ("b", vb)):
    for k, h in enumerate(hs):
        record("head outputs, training mode", h, T.COMM_FIX[f"head/{v}/{k}"])
record("CoMM loss", loss, T.COMM_FIX["loss"])
for o, k in (("uni1", 0), ("uni2", 1), ("fused", 2)):
    record("CoMM loss terms", terms[o], T.COMM_FIX[f"term/{k}"])
for mod in ("fusion", "head"):
    for k, p in getattr(m, mod).named_parameters():
        record("parameter gradients", p.grad, T.COMM_FIX["grad/" + T.their_name(mod, k)])
for k, x in tok.items():
    record("input-token gradients", x.grad, T.COMM_FIX[f"grad_in/{k}"])
for k, b in m.head.named_buffers():
    record("BatchNorm running statistics", b, T.COMM_FIX["after/" + T.their_name("head", k)])
for n_mod in (2, 3):
    p = f"comm{n_mod}/"
    za = [T.t(T.LOSS_FIX[p + f"in/a/{k}"], grad=True) for k in range(n_mod + 1)]
    zb = [T.t(T.LOSS_FIX[p + f"in/b/{k}"], grad=True) for k in range(n_mod + 1)]
    l, _ = comm_loss(za, zb, 0.1)
    l.backward()
    record("comm_loss on given embeddings (2, 3 modalities)", l, T.LOSS_FIX[p + "loss"])
    for k in range(n_mod + 1):
        record("comm_loss input gradients", za[k].grad, T.LOSS_FIX[p + f"grad_in/a/{k}"])
a, b = T.t(T.LOSS_FIX["infonce/in/a"], grad=True), T.t(T.LOSS_FIX["infonce/in/b"], grad=True)
l = nt_xent(a, b, 0.1)
l.backward()
record("nt_xent against their InfoNCE (loss, input gradients)", l, T.LOSS_FIX["infonce/loss"])
record(
    "nt_xent against their InfoNCE (loss, input gradients)", a.grad, T.LOSS_FIX["infonce/grad_in/a"]
)
record(
    "nt_xent against their InfoNCE (loss, input gradients)", b.grad, T.LOSS_FIX["infonce/grad_in/b"]
)
p = "cross_self_loss/"
e = {k[len(p) + 3 :]: T.t(v, grad=True) for k, v in T.LOSS_FIX.items() if k.startswith(p + "in/")}
tm = {
    "cross": nt_xent(e["mod1_embed"], e["mod2_embed"], 0.1),
    "mod1": nt_xent(e["mod1_aug1_embed"], e["mod1_aug2_embed"], 0.1),
    "mod2": nt_xent(e["mod2_aug1_embed"], e["mod2_aug2_embed"], 0.1),
}
l = tm["cross"] + 0.5 * (tm["mod1"] + tm["mod2"])
l.backward()
cat = "CrossSelfLoss on given embeddings (loss, terms, input gradients)"
record(cat, l, T.LOSS_FIX[p + "loss"])
for k, v in tm.items():
    record(cat, v, T.LOSS_FIX[p + f"term/{k}"])
for k, x in e.items():
    record(cat, x.grad, T.LOSS_FIX[p + f"grad_in/{k}"])
mc = T.cross_self_like_authors()
p = "cross_self/"
x = {k[len(p) + 3 :]: T.t(v, grad=True) for k, v in T.LOSS_FIX.items() if k.startswith(p + "in/")}
l, terms = mc.embedding_loss(
    (x["mod1_aug1"], x["mod1_aug2"]), (x["mod2_aug1"], x["mod2_aug2"]), (x["mod1"], x["mod2"])
)
l.backward()
record("Cross+Self loss (learner, authors' options)", l, T.LOSS_FIX[p + "loss"])
record("Cross+Self cross term", terms["cross"], T.LOSS_FIX[p + "term/cross"])
record(
    "Cross+Self self terms (mod1 + mod2)",
    terms["self"],
    T.LOSS_FIX[p + "term/mod1"] + T.LOSS_FIX[p + "term/mod2"],
)
for k, v in x.items():
    record("Cross+Self input gradients", v.grad, T.LOSS_FIX[p + f"grad_in/{k}"])
for ours, theirs in (("self1", "head1"), ("self2", "head2")):
    for k, q in getattr(mc, ours).named_parameters():
        i, rest = k.split(".", 1)
        layer = {v: k for k, v in T.HEAD_INDEX.items()}[int(i)]
        record("Cross+Self head gradients", q.grad, T.LOSS_FIX[f"{p}grad/{theirs}.{layer}.{rest}"])
for k, v in dev.items():
    print(f"| {k} | {v:.1e} |")
