"""Break one step at a time and list which CoMM / Cross+Self fidelity tests fail.

    python tools/fidelity/mutations_comm.py

Each mutation edits one source file of a clean checkout, runs tests/test_fidelity_comm.py
(and the init test of tests/test_learners.py), prints the failing tests, and restores the
file with `git checkout`. A mutation that no test notices is reported as SURVIVED. Run it on
a clean working tree only.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = [
    "tests/test_fidelity_comm.py",
    "tests/test_learners.py::test_comm_fusion_init_draws_the_authors_scales",
]

#: (name, file, old text, new text)
MUTATIONS: list[tuple[str, str, str, str]] = [
    (
        "fusion activation back to ReLU",
        "pid_bench/learners/comm.py",
        'activation=quick_gelu if activation == "quick_gelu" else F.relu,',
        "activation=F.relu,",
    ),
    (
        "fusion MLP width ignores fusion_ff_mult",
        "pid_bench/learners/comm.py",
        "dim_feedforward=ff_mult * d_model,",
        "dim_feedforward=2 * d_model,",
    ),
    (
        "modality embedding always created",
        "pid_bench/learners/comm.py",
        "if modality_embedding else None",
        "if True else None",
    ),
    (
        "no final LayerNorm on the CLS output",
        "pid_bench/learners/comm.py",
        "return self.norm(x[:, 0])",
        "return x[:, 0]",
    ),
    (
        "masked modality's tokens kept",
        "pid_bench/learners/comm.py",
        "torch.cat([p for p, on in zip(parts, m, strict=True) if on] or [t1[:, :0]], 1)",
        "torch.cat(list(parts), 1)",
    ),
    (
        "authors' init: residual projections at std d^-1/2 (no depth scaling)",
        "pid_bench/learners/comm.py",
        "proj_std = d**-0.5 * (2 * n_layers) ** -0.5",
        "proj_std = d**-0.5",
    ),
    (
        "head without BatchNorm",
        "pid_bench/learners/encoders.py",
        "nn.BatchNorm1d(d_hidden),\n        nn.ReLU(),\n        nn.Linear(d_hidden, d_hidden),",
        "nn.Identity(),\n        nn.ReLU(),\n        nn.Linear(d_hidden, d_hidden),",
    ),
    (
        "BatchNorm head on all views and masks in one batch",
        "pid_bench/learners/comm.py",
        "        if batch_independent(self.head):\n",
        "        if True:\n",
    ),
    (
        "BatchNorm head called mask by mask instead of view by view",
        "pid_bench/learners/comm.py",
        "return [self.head(zk[:n]) for zk in z], [self.head(zk[n:]) for zk in z]",
        "hs = [(self.head(zk[:n]), self.head(zk[n:])) for zk in z]\n"
        "        return [a for a, _ in hs], [b for _, b in hs]",
    ),
    (
        "CoMM loss drops the fused term",
        "pid_bench/learners/losses.py",
        'terms = {"fused": nt_xent(view1[-1], view2[-1], temperature)} if fused_term else {}',
        "terms = {}",
    ),
    (
        "CoMM loss: unimodal term one-sided",
        "pid_bench/learners/losses.py",
        "nt_xent(z1, view2[-1], temperature) + nt_xent(z2, view1[-1], temperature)",
        "nt_xent(z1, view2[-1], temperature) + nt_xent(z1, view2[-1], temperature)",
    ),
    (
        "NT-Xent without same-view negatives",
        "pid_bench/learners/losses.py",
        'sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))',
        "sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), "
        'float("-inf"))\n    sim[:n, :n] = sim[n:, n:] = float("-inf")',
    ),
    (
        "Cross+Self cross term always CLIP InfoNCE",
        "pid_bench/learners/contrastive.py",
        'cross_fn = nt_xent if self.cross_loss == "nt_xent" else info_nce',
        "cross_fn = info_nce",
    ),
    (
        "Cross+Self cross term not through the heads",
        "pid_bench/learners/contrastive.py",
        "                c1, c2 = self.self1(c1), self.self2(c2)\n",
        "                pass\n",
    ),
    (
        "Cross+Self drops modality 2's self term",
        "pid_bench/learners/contrastive.py",
        "self_ = nt_xent(ha1, hb1, t) + nt_xent(ha2, hb2, t)",
        "self_ = nt_xent(ha1, hb1, t)",
    ),
    (
        "Cross+Self self weight 1 instead of 0.5",
        "pid_bench/learners/contrastive.py",
        "self_weight = 0.5\n",
        "self_weight = 1.0\n",
    ),
]


def main() -> int:
    if subprocess.run(["git", "diff", "--quiet"], cwd=ROOT).returncode:
        sys.exit("the working tree has changes: commit or stash them first")
    survived = 0
    for name, rel, old, new in MUTATIONS:
        path = ROOT / rel
        text = path.read_text()
        if text.count(old) != 1:
            sys.exit(f"mutation {name!r}: the text to replace is not found once in {rel}")
        path.write_text(text.replace(old, new))
        try:
            run = subprocess.run(
                [sys.executable, "-m", "pytest", "-rfE", "-p", "no:warnings", "--tb=no", *TESTS],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
        finally:
            subprocess.run(["git", "checkout", "--", rel], cwd=ROOT, check=True)
        failed = re.findall(r"^(?:FAILED|ERROR) \S+::(\S+)", run.stdout, flags=re.M)
        counts = re.findall(r"^\d+ (?:failed|passed).*$", run.stdout, flags=re.M)
        summary = counts[-1] if counts else run.stdout.strip()[-200:]
        print(f"{name}: {summary}")
        for f in failed:
            print(f"    {f}")
        if not failed:
            survived += 1
            print("    SURVIVED")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
