"""The torch half of BATCH (`estimators.batch`): the networks, their training, Sinkhorn scaling
and the held-out estimate.

`BatchPID.fit` imports this module, so that `import estimators` never loads torch. `estimate`
runs the whole fit in four steps: train the three classifiers (early-stopped on a validation
share), calibrate them, train the alignment network, then read the atoms off held-out batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812 (torch's own spelling)

LN2 = math.log(2.0)


@dataclass(frozen=True)
class Sinkhorn:
    """How the batch couplings are scaled (`BatchPID`'s sinkhorn_* parameters)."""

    iters: int
    tol: float
    grad_steps: int


@dataclass(frozen=True)
class Split:
    """One split on the device: standardised features (float32) and label codes (int64)."""

    x1: Tensor
    x2: Tensor
    y: Tensor


def estimate(
    *,
    params: dict[str, Any],
    seed: int,
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray, np.ndarray],
    n_classes: int,
) -> dict[str, Any]:
    """BATCH on `train` (x1, x2, y codes), the atoms read on `test`, with the validated
    parameters of a `BatchPID`; the networks are seeded with `seed`. Returns the atoms (bits),
    the held-out accuracies, the worst marginal gap, the temperatures and the device used.

    The global torch RNG is restored afterwards, and the thread count too."""
    device = _device(params["device"])
    old_threads = torch.get_num_threads()
    if params["n_threads"] is not None:
        torch.set_num_threads(params["n_threads"])
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return _estimate(params, seed, train, test, n_classes, device)
    finally:
        torch.set_num_threads(old_threads)


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch finds no CUDA device; use 'cpu' or 'auto'")
    return name


def _estimate(
    p: dict[str, Any],
    seed: int,
    train_arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
    test_arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
    k: int,
    device: str,
) -> dict[str, Any]:
    train, test = _splits(train_arrays, test_arrays, device)
    d1, d2 = train.x1.shape[1], train.x2.shape[1]
    gen = torch.Generator().manual_seed(seed)
    sinkhorn = Sinkhorn(p["sinkhorn_iters"], p["sinkhorn_tol"], p["sinkhorn_grad_steps"])
    shape = {"hidden": p["hidden"], "layers": p["layers"]}

    nets = _classifiers(d1=d1, d2=d2, k=k, joint=p["joint"], device=device, **shape)
    val = _train_classifiers(
        nets,
        train,
        gen=gen,
        epochs=p["classifier_epochs"],
        batch_size=p["batch_size"],
        lr=p["lr"],
        val_fraction=p["val_fraction"],
    )
    temps = [1.0, 1.0, 1.0]
    with torch.no_grad():
        if len(val) and p["calibrate"]:
            temps = [
                _temperature(c(x(val)), train.y[val])
                for c, x in zip(nets, _inputs(train), strict=True)
            ]
        c1, c2, c12 = nets
        lp1, lp2 = (
            F.log_softmax(c1(train.x1) / temps[0], 1),
            F.log_softmax(c2(train.x2) / temps[1], 1),
        )
        el1, el2 = (
            F.log_softmax(c1(test.x1) / temps[0], 1),
            F.log_softmax(c2(test.x2) / temps[1], 1),
        )
        el12 = F.log_softmax(c12(torch.cat([test.x1, test.x2], 1)) / temps[2], 1)
        acc = [float((lp.argmax(1) == test.y).float().mean()) for lp in (el1, el2, el12)]

    aligner = Aligner(d1=d1, d2=d2, k=k, embed_dim=p["embed_dim"], **shape).to(device)
    _train_alignment(
        aligner,
        train,
        (lp1, lp2),
        gen=gen,
        epochs=p["align_epochs"],
        batch_size=p["batch_size"],
        lr=p["lr"],
        sinkhorn=sinkhorn,
    )
    atoms, worst = _held_out_atoms(
        aligner, test, (el1, el2, el12), batch_size=p["batch_size"], sinkhorn=sinkhorn
    )
    return {
        "atoms": atoms,
        "acc1": acc[0],
        "acc2": acc[1],
        "acc12": acc[2],
        "marginal_error": worst,
        "temperatures": tuple(temps),
        "device": device,
    }


def _splits(
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray, np.ndarray],
    device: str,
) -> tuple[Split, Split]:
    """Both splits on the device, each modality standardised with the training statistics."""
    x1, t1 = _standardise(train[0], test[0])
    x2, t2 = _standardise(train[1], test[1])
    tx1, tx2 = torch.from_numpy(x1).to(device), torch.from_numpy(x2).to(device)
    ty = torch.from_numpy(train[2]).to(device)
    ex1, ex2 = torch.from_numpy(t1).to(device), torch.from_numpy(t2).to(device)
    ey = torch.from_numpy(test[2]).to(device)
    return Split(tx1, tx2, ty), Split(ex1, ex2, ey)


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = train.mean(axis=0), train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return [((a - mu) / sd).astype(np.float32) for a in (train, *others)]


# ---------------------------------------------------------------- classifiers


def _mlp(d_in: int, hidden: int, d_out: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = [nn.Linear(d_in, hidden), nn.ReLU()]
    for _ in range(layers):
        mods += [nn.Linear(hidden, hidden), nn.ReLU()]
    mods.append(nn.Linear(hidden, d_out))
    return nn.Sequential(*mods)


class LateFusion(nn.Module):
    """Joint classifier on [x1, x2]: a tower per modality, a head on their concatenation."""

    def __init__(self, d1: int, d2: int, hidden: int, d_out: int, layers: int) -> None:
        super().__init__()
        self.d1 = d1
        self.t1, self.t2 = self._tower(d1, hidden, layers), self._tower(d2, hidden, layers)
        self.head = nn.Sequential(
            nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, d_out)
        )

    @staticmethod
    def _tower(d_in: int, hidden: int, layers: int) -> nn.Sequential:
        mods: list[nn.Module] = [nn.Linear(d_in, hidden), nn.ReLU()]
        for _ in range(layers - 1):
            mods += [nn.Linear(hidden, hidden), nn.ReLU()]
        return nn.Sequential(*mods)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.cat([self.t1(x[:, : self.d1]), self.t2(x[:, self.d1 :])], 1))


def _classifiers(
    *, d1: int, d2: int, k: int, hidden: int, layers: int, joint: str, device: str
) -> nn.ModuleList:
    """The classifiers of y from x1, from x2 and from (x1, x2), in that order."""
    c1 = _mlp(d1, hidden, k, layers).to(device)
    c2 = _mlp(d2, hidden, k, layers).to(device)
    if joint == "late":
        c12: nn.Module = LateFusion(d1, d2, hidden, k, layers).to(device)
    else:
        c12 = _mlp(d1 + d2, hidden, k, layers).to(device)
    return nn.ModuleList([c1, c2, c12])


def _inputs(split: Split) -> list[Callable[[Tensor], Tensor]]:
    """Row indices -> the input of each classifier: x1, x2, [x1, x2]."""
    return [
        lambda r: split.x1[r],
        lambda r: split.x2[r],
        lambda r: torch.cat([split.x1[r], split.x2[r]], 1),
    ]


def _train_classifiers(
    nets: nn.ModuleList,
    train: Split,
    *,
    gen: torch.Generator,
    epochs: int,
    batch_size: int,
    lr: float,
    val_fraction: float,
) -> Tensor:
    """Train the three classifiers in one loop (summed losses of independent networks, full
    minibatches only, as the published code), each kept at the epoch of its lowest
    cross-entropy on a validation share of the rows; returns those rows, in eval mode.

    The MI terms are the classifiers' own beliefs, so an over-fitted classifier of an
    uninformative modality would report information it does not have (measured: 0.03-0.09 bits
    of spurious redundancy on the unique tasks without early stopping).
    """
    device = train.y.device
    opt = torch.optim.Adam(nets.parameters(), lr=lr)
    n = len(train.y)
    n_val = int(round(val_fraction * n))
    perm = torch.randperm(n, generator=gen).to(device)
    val, fit_rows = perm[:n_val], perm[n_val:]
    inputs = _inputs(train)
    best = [math.inf] * 3
    states = [{k: v.clone() for k, v in c.state_dict().items()} for c in nets]
    n_fit = len(fit_rows)
    for _ in range(epochs):
        nets.train()
        order = fit_rows[torch.randperm(n_fit, generator=gen).to(device)]
        for i in range(0, n_fit - batch_size + 1, batch_size):
            idx = order[i : i + batch_size]
            yy = train.y[idx]
            loss = sum(F.cross_entropy(c(x(idx)), yy) for c, x in zip(nets, inputs, strict=True))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if n_val:
            with torch.no_grad():
                for j, (c, x) in enumerate(zip(nets, inputs, strict=True)):
                    ce = float(F.cross_entropy(c(x(val)), train.y[val]))
                    if ce < best[j]:
                        best[j] = ce
                        states[j] = {k: v.clone() for k, v in c.state_dict().items()}
    if n_val:
        for c, st in zip(nets, states, strict=True):
            c.load_state_dict(st)
    nets.eval()
    return val


def _temperature(logits: Tensor, y: Tensor) -> float:
    """The T in [e^-3, e^3] (grid, log-spaced) of least cross-entropy of logits / T against y."""
    ts = torch.exp(torch.linspace(-3.0, 3.0, 241, device=logits.device, dtype=logits.dtype))
    lp = torch.log_softmax(logits[None] / ts[:, None, None], 2)  # (T, n, K)
    ce = -lp.gather(2, y[None, :, None].expand(len(ts), -1, 1)).mean((1, 2))
    return float(ts[int(ce.argmin())])


# ---------------------------------------------------------------- alignment


class Aligner(nn.Module):
    """Per-label embeddings of each modality, f1(x1)_y and f2(x2)_y, and the coupling q of a
    batch they give after Sinkhorn scaling onto the classifiers' marginals."""

    def __init__(
        self, *, d1: int, d2: int, k: int, embed_dim: int, hidden: int, layers: int
    ) -> None:
        super().__init__()
        self.k, self.e = k, embed_dim
        self.g1 = _mlp(d1, hidden, k * embed_dim, layers)
        self.g2 = _mlp(d2, hidden, k * embed_dim, layers)

    def couple(
        self, a: Tensor, b: Tensor, la: Tensor, lb: Tensor, *, sinkhorn: Sinkhorn, grad: bool
    ) -> tuple[Tensor, Tensor, float]:
        """q[y, a, b] (log) over the batch, log r[y, a] and the marginal gap, from the batch's
        inputs a (x1) and b (x2) and their log p(y | .) la, lb."""
        z1 = _embed(self.g1(a), self.k, self.e)
        z2 = _embed(self.g2(b), self.k, self.e)
        logits = torch.einsum("ayd,byd->yab", z1, z2) / math.sqrt(self.e)
        log_r = la.T - math.log(len(a))  # (K, B): p(y|x1_a) / B
        log_c = lb.T - math.log(len(b))
        # rescale the column marginal per label to the row marginal's total (Sinkhorn needs
        # equal totals; the classifiers' label marginals differ by their errors)
        log_c = log_c - torch.logsumexp(log_c, 1, keepdim=True) + torch.logsumexp(log_r, 1, True)
        log_q, gap = _sinkhorn(logits, log_r, log_c, sinkhorn, grad)
        return log_q, log_r, gap


def _embed(z: Tensor, k: int, e: int) -> Tensor:
    """(B, K * e) -> (B, K, e), each label's embedding standardised over its coordinates."""
    z = z.unflatten(1, (k, e))
    return (z - z.mean(2, keepdim=True)) / (z.var(2, keepdim=True) + 1e-8).sqrt()


def _train_alignment(
    aligner: Aligner,
    train: Split,
    log_p: tuple[Tensor, Tensor],
    *,
    gen: torch.Generator,
    epochs: int,
    batch_size: int,
    lr: float,
    sinkhorn: Sinkhorn,
) -> None:
    """Train the alignment network to minimise the union information I_q(X1, X2; Y) of the
    training minibatches; `log_p` holds the classifiers' log p(y | x1), log p(y | x2)."""
    lp1, lp2 = log_p
    opt = torch.optim.Adam(aligner.parameters(), lr=lr)
    n = len(train.y)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).to(train.y.device)
        for i in range(0, n - batch_size + 1, batch_size):
            idx = order[i : i + batch_size]
            log_q, log_r, _ = aligner.couple(
                train.x1[idx], train.x2[idx], lp1[idx], lp2[idx], sinkhorn=sinkhorn, grad=True
            )
            loss = _union_info(log_q, log_r)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def _held_out_atoms(
    aligner: Aligner,
    test: Split,
    log_p: tuple[Tensor, Tensor, Tensor],
    *,
    batch_size: int,
    sinkhorn: Sinkhorn,
) -> tuple[list[float], float]:
    """(R, U1, U2, S, I) in bits averaged over held-out batches, and the worst marginal gap;
    `log_p` holds the classifiers' log p(y | .) of the held-out rows (x1, x2, (x1, x2))."""
    el1, el2, el12 = log_p
    aligner.eval()
    m = len(test.y)
    n_batches = max(1, m // batch_size)
    totals = np.zeros(5)
    worst = 0.0
    with torch.no_grad():
        for idx in torch.arange(m, device=test.y.device).tensor_split(n_batches):
            log_q, log_r, gap = aligner.couple(
                test.x1[idx], test.x2[idx], el1[idx], el2[idx], sinkhorn=sinkhorn, grad=False
            )
            worst = max(worst, gap)
            log_py = torch.logsumexp(log_r, 1)  # (K,), sums to 1
            i1 = _mean_kl(el1[idx], log_py)
            i2 = _mean_kl(el2[idx], log_py)
            i12 = _mean_kl(el12[idx], log_py)
            iq = float(_union_info(log_q, log_r)) + i1  # I_q = I1 + I_q(Y; X2 | X1)
            atoms = [i1 + i2 - iq, iq - i2, iq - i1, i12 - iq, i12]
            totals += np.asarray(atoms) * len(idx)
    return [float(v) / m / LN2 for v in totals], worst


def _sinkhorn(
    logits: Tensor, log_r: Tensor, log_c: Tensor, s: Sinkhorn, grad: bool
) -> tuple[Tensor, float]:
    """Log-domain Sinkhorn of every label at once; (log q, relative marginal gap)."""
    u = torch.zeros_like(log_r)
    v = torch.zeros_like(log_c)
    total = float(log_r.exp().sum())
    gap = math.inf
    with torch.no_grad():
        lg = logits.detach()
        for it in range(s.iters):
            u = log_r - torch.logsumexp(lg + v[:, None, :], 2)
            v = log_c - torch.logsumexp(lg + u[:, :, None], 1)
            if it % 5 == 4 or it == s.iters - 1:
                # after the column step the columns are exact; the rows carry the gap
                rows = torch.logsumexp(lg + u[:, :, None] + v[:, None, :], 2)
                gap = float((rows.exp() - log_r.exp()).abs().sum()) / total
                if gap < s.tol:
                    break
    if grad:
        # truncated differentiation: a few steps from the converged scalings
        u, v = u.detach(), v.detach()
        for _ in range(s.grad_steps):
            u = log_r - torch.logsumexp(logits + v[:, None, :], 2)
            v = log_c - torch.logsumexp(logits + u[:, :, None], 1)
    return logits + u[:, :, None] + v[:, None, :], gap


def _union_info(log_q: Tensor, log_r: Tensor) -> Tensor:
    """I_q(Y; X2 | X1) in nats over the batch: sum q log(q(b | a, y) / q(b | a))."""
    # q(b | a, y) = q[y, a, b] / r[y, a];  q(b | a) = sum_y q[y, a, b] / sum_y r[y, a]
    cond = log_q - log_r[:, :, None]
    marg = torch.logsumexp(log_q, 0) - torch.logsumexp(log_r, 0)[:, None]
    return (log_q.exp() * (cond - marg[None])).sum()


def _mean_kl(log_p: Tensor, log_py: Tensor) -> float:
    """Mean over rows of KL(p(y|.) || p(y)), nats."""
    return float((log_p.exp() * (log_p - log_py[None])).sum(1).mean())
