"""BATCH: neural PID of continuous (x1, x2) and a discrete label y (Liang et al., NeurIPS 2023).

Three classifiers give p(y|x1), p(y|x2) and p(y|x1,x2). An alignment network embeds each
modality per label (f1(x1)_y, f2(x2)_y, each standardised over its embedding coordinates) and
scores every pair (a, b) of a minibatch, per label: log A[y, a, b] = <f1(x1_a)_y, f2(x2_b)_y>
/ sqrt(d). Sinkhorn scaling projects A, per label, onto the marginals r[y, a] = p(y|x1_a) / B
and c[y, b] = p(y|x2_b) / B (c rescaled per label to the total of r, so that the two agree):
q[y, a, b] is then a joint of (X1, X2, Y) over the batch that keeps both pairwise marginals, the
batch version of BROJA's set Delta_p. The alignment network is trained to minimise
I_q(X1, X2; Y), the union information; on held-out batches

    R = I1 + I2 - I_q,  U1 = I_q - I2,  U2 = I_q - I1,  S = I12 - I_q,

with I1, I2, I12 the classifiers' mutual informations, sum_y p(y|.) log(p(y|.) / p(y)) averaged
over the batch, p(y) the batch's label marginal under q (the mean of p(y|x1)).

Speed (versus the published code, a Python loop of up to 500 Sinkhorn steps per label,
differentiated through): all labels are scaled at once as one (K, B, B) tensor in the log
domain; Sinkhorn runs without autograd until the marginals match within `sinkhorn_tol`
(total variation, relative) or `sinkhorn_iters`, and only the last `sinkhorn_grad_steps`
iterations, restarted from those scalings, are differentiated (truncated differentiation: at a
fixed point the last steps carry the dependence of q on A). The three classifiers train in one
loop on the same minibatches (independent parameters and Adam states, so this is the same as
training them one after another on that batch order).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from estimators._result import PIDResult
from estimators._validate import check_continuous, check_labels, check_same_length
from estimators.base import PIDEstimator, register

LN2 = math.log(2.0)
#: Valid values of `device`.
DEVICES: tuple[str, ...] = ("cpu", "cuda", "auto")
#: Valid values of `joint` (the architecture of the classifier of y from (x1, x2)).
JOINTS: tuple[str, ...] = ("late", "concat")


@dataclass(frozen=True)
class BatchPIDResult(PIDResult):
    """A `PIDResult` of BATCH with what it rests on.

    accuracy1, accuracy2, accuracy12: held-out accuracy of the classifiers of y from x1, x2
    and (x1, x2) (an estimate from an under-trained classifier shows here); chance: that of
    always predicting the most frequent class; marginal_error: largest relative total-variation
    gap of the Sinkhorn marginals over the held-out batches; temperatures: the calibration
    temperature of each classifier (x1, x2, (x1, x2); 1 when not calibrated); seconds: fit
    time; params: the estimator's settings as (name, value) pairs.
    """

    accuracy1: float = math.nan
    accuracy2: float = math.nan
    accuracy12: float = math.nan
    chance: float = math.nan
    marginal_error: float = math.nan
    temperatures: tuple[float, float, float] = (1.0, 1.0, 1.0)
    seconds: float = math.nan
    device: str = "cpu"
    params: tuple[tuple[str, object], ...] = ()


def _positive_int(v: object, name: str, low: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {v!r}")
    return int(v)


@register("batch")
class BatchPID(PIDEstimator):
    """BATCH estimator of the PID of continuous x1, x2 and discrete y (see the module doc).

    Parameters
    ----------
    seed: seeds the split, the networks' initialisation and the minibatch order (the same
        seed gives the same numbers on the same machine and device).
    hidden, layers: width and number of hidden layers after the first of every network.
    joint: architecture of the classifier of y from (x1, x2). "late" (default): one tower
        per modality (the first `layers` hidden layers of an MLP, on that modality alone), their
        outputs concatenated into a head of one hidden layer, as deep as the "concat" MLP;
        "concat": one MLP on the concatenated inputs (as the published code). Late fusion has
        no first-layer weights that mix the modalities' raw features, which an MLP on the
        concatenation must learn to leave at zero: measured on raw `gaussian` (96 + 96
        features, 4,800 fitted pairs, synergy task, seeds 0/1/2, without calibration),
        I(Y; X1, X2) read 0.931/0.926/0.900 with "concat" and 0.936/0.951/0.902 with "late";
        the joint classifier alone, H(Y) - held-out cross-entropy: 0.925/0.928/0.926 against
        0.949/0.946/0.935 bits.
    embed_dim: alignment embedding size per label.
    classifier_epochs, align_epochs: passes over the training data.
    batch_size: minibatch size, also the size of the batches q is formed over.
    lr: Adam learning rate of every network.
    sinkhorn_iters, sinkhorn_tol: cap and tolerance of the Sinkhorn scaling.
    sinkhorn_grad_steps: differentiated Sinkhorn iterations per training step.
    test_fraction: share of the samples held out when `fit` gets no `held_out` set.
    val_fraction: share of the training samples on which each classifier is early-stopped
        (lowest validation cross-entropy over its epochs; 0: no early stopping).
    calibrate: divide each classifier's logits by the temperature of least cross-entropy on
        that validation share (temperature scaling) before any information is read off them.
        The mutual informations are the classifiers' beliefs, KL(p(y|x) || p(y)), so an
        under-confident classifier under-reports them even at Bayes accuracy: measured on raw
        `gaussian`, synergy task, seeds 2/0/1, I(Y; X1, X2) read 0.902/0.936/0.951 without and
        0.924/0.941/0.952 with it (the data's own value, from the generator's covariance, is
        0.954/0.958/0.956 bits).
    device: "cpu", "cuda" or "auto" (CUDA when available).
    n_threads: torch threads during the fit (None: torch's setting).

    fit(x1, x2, y, held_out=None): x1, x2 float (n, d); y integer labels. The networks train on
    these samples and the PID is estimated on `held_out` = (x1, x2, y) when given, else on a
    `test_fraction` of them held out. Sets the atoms (bits), `pid_` (a `BatchPIDResult`) and
    `accuracy_` (classifier -> held-out accuracy). `joint_` is None (no plug-in joint).
    """

    def __init__(
        self,
        seed: int = 0,
        hidden: int = 32,
        layers: int = 2,
        joint: str = "late",
        calibrate: bool = True,
        embed_dim: int = 10,
        classifier_epochs: int = 40,
        align_epochs: int = 10,
        batch_size: int = 256,
        lr: float = 1e-3,
        sinkhorn_iters: int = 100,
        sinkhorn_tol: float = 1e-4,
        sinkhorn_grad_steps: int = 5,
        test_fraction: float = 0.25,
        val_fraction: float = 0.2,
        device: str = "cpu",
        n_threads: int | None = None,
    ) -> None:
        self.seed = seed
        self.hidden = hidden
        self.layers = layers
        self.joint = joint
        self.calibrate = calibrate
        self.embed_dim = embed_dim
        self.classifier_epochs = classifier_epochs
        self.align_epochs = align_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.sinkhorn_iters = sinkhorn_iters
        self.sinkhorn_tol = sinkhorn_tol
        self.sinkhorn_grad_steps = sinkhorn_grad_steps
        self.test_fraction = test_fraction
        self.val_fraction = val_fraction
        self.device = device
        self.n_threads = n_threads

    def _checked(self) -> dict[str, object]:
        p = self.get_params(deep=False)
        _positive_int(p["seed"], "seed", 0)
        for name in ("hidden", "embed_dim", "batch_size", "sinkhorn_iters"):
            _positive_int(p[name], name)
        for name in ("layers", "classifier_epochs", "align_epochs", "sinkhorn_grad_steps"):
            _positive_int(p[name], name, 0)
        if p["batch_size"] < 2:
            raise ValueError(f"batch_size must be at least 2 (pairs); got {p['batch_size']!r}")
        for name, lo, hi in (("lr", 0, math.inf), ("sinkhorn_tol", 0, 1), ("test_fraction", 0, 1)):
            v = p[name]
            if isinstance(v, bool) or not isinstance(v, float | int) or not lo < v < hi:
                raise ValueError(f"{name} must be a number in ({lo}, {hi}); got {v!r}")
        v = p["val_fraction"]
        if isinstance(v, bool) or not isinstance(v, float | int) or not 0 <= v < 1:
            raise ValueError(f"val_fraction must be a number in [0, 1); got {v!r}")
        if not isinstance(p["calibrate"], bool | np.bool_):
            raise ValueError(f"calibrate must be True or False; got {p['calibrate']!r}")
        if p["joint"] not in JOINTS:
            raise ValueError(f"unknown joint {p['joint']!r}; valid: {', '.join(JOINTS)}")
        if p["device"] not in DEVICES:
            raise ValueError(f"unknown device {p['device']!r}; valid: {', '.join(DEVICES)}")
        if p["n_threads"] is not None:
            _positive_int(p["n_threads"], "n_threads")
        return p

    def fit(
        self,
        x1: object,
        x2: object,
        y: object,
        held_out: tuple[object, object, object] | None = None,
    ) -> BatchPID:
        """Train the classifiers and the alignment, estimate the PID held out; returns self."""
        p = self._checked()
        a1, a2 = check_continuous(x1, "x1"), check_continuous(x2, "x2")
        raw_y = np.asarray(y)
        cy = check_labels(y, "y")
        n = check_same_length(x1=a1, x2=a2, y=cy)
        classes = np.unique(raw_y.reshape(-1))
        rng = np.random.default_rng(p["seed"])
        if held_out is None:
            perm = rng.permutation(n)
            n_test = int(round(p["test_fraction"] * n))
            te, tr = perm[:n_test], perm[n_test:]
            t1, t2, ty = a1[te], a2[te], cy[te]
            a1, a2, cy = a1[tr], a2[tr], cy[tr]
        else:
            if not (isinstance(held_out, tuple | list) and len(held_out) == 3):
                raise ValueError("held_out must be a tuple (x1, x2, y) of held-out samples")
            t1 = check_continuous(held_out[0], "held_out x1")
            t2 = check_continuous(held_out[1], "held_out x2")
            ty_raw = np.asarray(held_out[2]).reshape(-1)
            check_same_length(held_out_x1=t1, held_out_x2=t2, held_out_y=ty_raw)
            if t1.shape[1] != a1.shape[1] or t2.shape[1] != a2.shape[1]:
                raise ValueError(
                    f"held_out features must match x1, x2: got {t1.shape[1]} and {t2.shape[1]} "
                    f"columns, expected {a1.shape[1]} and {a2.shape[1]}"
                )
            unknown = np.setdiff1d(ty_raw, classes)
            if unknown.size:
                raise ValueError(
                    f"held_out y has labels not in y: {unknown[:5].tolist()}; the classifiers "
                    "can only score classes seen in training"
                )
            ty = np.searchsorted(classes, ty_raw).astype(np.int64)
        n_min = 2 * p["batch_size"] if held_out is None else p["batch_size"]
        if len(cy) < n_min or len(ty) < 2:
            raise ValueError(
                f"BatchPID needs at least {n_min} training samples (batch_size "
                f"{p['batch_size']}) and 2 held-out ones; got {len(cy)} and {len(ty)}: pass "
                "more samples or a smaller batch_size"
            )
        k = len(classes)
        if k < 2:
            raise ValueError("y has a single class: there is no information to decompose")
        self.classes_ = classes
        start = time.perf_counter()
        out = _fit_torch(p, a1, a2, cy, t1, t2, ty, k)
        seconds = time.perf_counter() - start
        self.accuracy_ = {"x1": out["acc1"], "x2": out["acc2"], "x1x2": out["acc12"]}
        result = BatchPIDResult(
            *out["atoms"],
            measure="batch",
            accuracy1=out["acc1"],
            accuracy2=out["acc2"],
            accuracy12=out["acc12"],
            chance=float(np.bincount(ty, minlength=k).max() / len(ty)),
            marginal_error=out["marginal_error"],
            temperatures=out["temperatures"],
            seconds=seconds,
            device=out["device"],
            params=tuple(sorted(p.items())),
        )
        self._set_result(result, None)  # type: ignore[arg-type]
        return self


def _fit_torch(p, x1, x2, y, t1, t2, ty, k: int) -> dict:
    import torch

    if p["device"] == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    else:
        device = p["device"]
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch finds no CUDA device; use 'cpu' or 'auto'")
    old_threads = torch.get_num_threads()
    if p["n_threads"] is not None:
        torch.set_num_threads(p["n_threads"])
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(p["seed"])
            return _run(torch, p, x1, x2, y, t1, t2, ty, k, device)
    finally:
        torch.set_num_threads(old_threads)


def _mlp(torch, d_in: int, hidden: int, d_out: int, layers: int):
    nn = torch.nn
    mods = [nn.Linear(d_in, hidden), nn.ReLU()]
    for _ in range(layers):
        mods += [nn.Linear(hidden, hidden), nn.ReLU()]
    mods.append(nn.Linear(hidden, d_out))
    return nn.Sequential(*mods)


def _late_fusion(torch, d1: int, d2: int, hidden: int, d_out: int, layers: int):
    """Joint classifier on [x1, x2]: a tower per modality, a head on their concatenation."""
    nn = torch.nn

    def tower(d_in: int):
        mods = [nn.Linear(d_in, hidden), nn.ReLU()]
        for _ in range(layers - 1):
            mods += [nn.Linear(hidden, hidden), nn.ReLU()]
        return nn.Sequential(*mods)

    class LateFusion(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.t1, self.t2 = tower(d1), tower(d2)
            self.head = nn.Sequential(
                nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, d_out)
            )

        def forward(self, x):
            return self.head(torch.cat([self.t1(x[:, :d1]), self.t2(x[:, d1:])], 1))

    return LateFusion()


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = train.mean(axis=0), train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return [((a - mu) / sd).astype(np.float32) for a in (train, *others)]


def _run(torch, p, x1, x2, y, t1, t2, ty, k, device) -> dict:
    nn = torch.nn
    f = torch.nn.functional
    x1, t1 = _standardise(x1, t1)
    x2, t2 = _standardise(x2, t2)
    tx1, tx2 = torch.from_numpy(x1).to(device), torch.from_numpy(x2).to(device)
    tyy = torch.from_numpy(y).to(device)
    ex1, ex2 = torch.from_numpy(t1).to(device), torch.from_numpy(t2).to(device)
    ety = torch.from_numpy(ty).to(device)
    d1, d2, h, nl, bs = x1.shape[1], x2.shape[1], p["hidden"], p["layers"], p["batch_size"]
    gen = torch.Generator().manual_seed(p["seed"])
    n = len(y)

    # -- classifiers: one loop, summed losses of independent networks
    c1 = _mlp(torch, d1, h, k, nl).to(device)
    c2 = _mlp(torch, d2, h, k, nl).to(device)
    if p["joint"] == "late":
        c12 = _late_fusion(torch, d1, d2, h, k, nl).to(device)
    else:
        c12 = _mlp(torch, d1 + d2, h, k, nl).to(device)
    nets = nn.ModuleList([c1, c2, c12])
    opt = torch.optim.Adam(nets.parameters(), lr=p["lr"])
    # Early stopping on a validation share of the training rows: each classifier keeps the
    # epoch of its lowest validation cross-entropy. The MI terms are the classifiers' own
    # beliefs, so an over-fitted classifier of an uninformative modality would report
    # information it does not have (measured: 0.03-0.09 bits of spurious redundancy on
    # the unique tasks without it).
    n_val = int(round(p["val_fraction"] * n))
    perm = torch.randperm(n, generator=gen).to(device)
    val, fit_rows = perm[:n_val], perm[n_val:]
    inputs = [lambda r: tx1[r], lambda r: tx2[r], lambda r: torch.cat([tx1[r], tx2[r]], 1)]
    best = [math.inf] * 3
    states = [{k: v.clone() for k, v in c.state_dict().items()} for c in nets]
    n_fit = len(fit_rows)
    for _ in range(p["classifier_epochs"]):
        nets.train()
        order = fit_rows[torch.randperm(n_fit, generator=gen).to(device)]
        for i in range(0, n_fit - bs + 1, bs):  # full batches only, as the published code
            idx = order[i : i + bs]
            yy = tyy[idx]
            loss = sum(f.cross_entropy(c(x(idx)), yy) for c, x in zip(nets, inputs, strict=True))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if n_val:
            with torch.no_grad():
                for j, (c, x) in enumerate(zip(nets, inputs, strict=True)):
                    ce = float(f.cross_entropy(c(x(val)), tyy[val]))
                    if ce < best[j]:
                        best[j] = ce
                        states[j] = {k: v.clone() for k, v in c.state_dict().items()}
    if n_val:
        for c, st in zip(nets, states, strict=True):
            c.load_state_dict(st)
    nets.eval()
    temps = [1.0, 1.0, 1.0]
    with torch.no_grad():
        if n_val and p["calibrate"]:
            temps = [
                _temperature(torch, c(x(val)), tyy[val]) for c, x in zip(nets, inputs, strict=True)
            ]
        lp1, lp2 = f.log_softmax(c1(tx1) / temps[0], 1), f.log_softmax(c2(tx2) / temps[1], 1)
        el1, el2 = f.log_softmax(c1(ex1) / temps[0], 1), f.log_softmax(c2(ex2) / temps[1], 1)
        el12 = f.log_softmax(c12(torch.cat([ex1, ex2], 1)) / temps[2], 1)
        acc = [float((lp.argmax(1) == ety).float().mean()) for lp in (el1, el2, el12)]

    # -- alignment: per-label embeddings of each modality
    e = p["embed_dim"]
    g1 = _mlp(torch, d1, h, k * e, nl).to(device)
    g2 = _mlp(torch, d2, h, k * e, nl).to(device)
    aligners = nn.ModuleList([g1, g2])
    opt = torch.optim.Adam(aligners.parameters(), lr=p["lr"])

    def couple(a, b, la, lb, grad: bool):
        """q[y, a, b] (log) over the batch, and its marginal gap, from inputs and log p(y|.)."""
        z1 = _embed(g1(a), k, e)
        z2 = _embed(g2(b), k, e)
        logits = torch.einsum("ayd,byd->yab", z1, z2) / math.sqrt(e)
        log_r = la.T - math.log(len(a))  # (K, B): p(y|x1_a) / B
        log_c = lb.T - math.log(len(b))
        # rescale the column marginal per label to the row marginal's total (Sinkhorn needs
        # equal totals; the classifiers' label marginals differ by their errors)
        log_c = log_c - torch.logsumexp(log_c, 1, keepdim=True) + torch.logsumexp(log_r, 1, True)
        log_q, gap = _sinkhorn(torch, logits, log_r, log_c, p, grad)
        return log_q, log_r, gap

    for _ in range(p["align_epochs"]):
        order = torch.randperm(n, generator=gen).to(device)
        for i in range(0, n - bs + 1, bs):
            idx = order[i : i + bs]
            log_q, log_r, _ = couple(tx1[idx], tx2[idx], lp1[idx], lp2[idx], True)
            loss = _union_info(torch, log_q, log_r)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    # -- held-out estimate, batch by batch
    aligners.eval()
    m = len(ty)
    n_batches = max(1, m // bs)
    totals = np.zeros(5)
    worst = 0.0
    with torch.no_grad():
        for idx in torch.arange(m, device=device).tensor_split(n_batches):
            log_q, log_r, gap = couple(ex1[idx], ex2[idx], el1[idx], el2[idx], False)
            worst = max(worst, gap)
            log_py = torch.logsumexp(log_r, 1)  # (K,), sums to 1
            i1 = _mean_kl(torch, el1[idx], log_py)
            i2 = _mean_kl(torch, el2[idx], log_py)
            i12 = _mean_kl(torch, el12[idx], log_py)
            iq = float(_union_info(torch, log_q, log_r)) + i1  # I_q = I1 + I_q(Y; X2 | X1)
            atoms = [i1 + i2 - iq, iq - i2, iq - i1, i12 - iq, i12]
            totals += np.asarray(atoms) * len(idx)
    return {
        "atoms": [float(v) / m / LN2 for v in totals],
        "acc1": acc[0],
        "acc2": acc[1],
        "acc12": acc[2],
        "marginal_error": worst,
        "temperatures": tuple(temps),
        "device": device,
    }


def _temperature(torch, logits, y) -> float:
    """The T in [e^-3, e^3] (grid, log-spaced) of least cross-entropy of logits / T against y."""
    ts = torch.exp(torch.linspace(-3.0, 3.0, 241, device=logits.device, dtype=logits.dtype))
    lp = torch.log_softmax(logits[None] / ts[:, None, None], 2)  # (T, n, K)
    ce = -lp.gather(2, y[None, :, None].expand(len(ts), -1, 1)).mean((1, 2))
    return float(ts[int(ce.argmin())])


def _embed(z, k: int, e: int):
    """(B, K * e) -> (B, K, e), each label's embedding standardised over its coordinates."""
    z = z.unflatten(1, (k, e))
    return (z - z.mean(2, keepdim=True)) / (z.var(2, keepdim=True) + 1e-8).sqrt()


def _sinkhorn(torch, logits, log_r, log_c, p, grad: bool):
    """Log-domain Sinkhorn of every label at once; (log q, relative marginal gap)."""
    u = torch.zeros_like(log_r)
    v = torch.zeros_like(log_c)
    total = float(log_r.exp().sum())
    gap = math.inf
    with torch.no_grad():
        lg = logits.detach()
        for it in range(p["sinkhorn_iters"]):
            u = log_r - torch.logsumexp(lg + v[:, None, :], 2)
            v = log_c - torch.logsumexp(lg + u[:, :, None], 1)
            if it % 5 == 4 or it == p["sinkhorn_iters"] - 1:
                # after the column step the columns are exact; the rows carry the gap
                rows = torch.logsumexp(lg + u[:, :, None] + v[:, None, :], 2)
                gap = float((rows.exp() - log_r.exp()).abs().sum()) / total
                if gap < p["sinkhorn_tol"]:
                    break
    if grad:
        # truncated differentiation: a few steps from the converged scalings
        u, v = u.detach(), v.detach()
        for _ in range(p["sinkhorn_grad_steps"]):
            u = log_r - torch.logsumexp(logits + v[:, None, :], 2)
            v = log_c - torch.logsumexp(logits + u[:, :, None], 1)
    return logits + u[:, :, None] + v[:, None, :], gap


def _union_info(torch, log_q, log_r):
    """I_q(Y; X2 | X1) in nats over the batch: sum q log(q(b | a, y) / q(b | a))."""
    # q(b | a, y) = q[y, a, b] / r[y, a];  q(b | a) = sum_y q[y, a, b] / sum_y r[y, a]
    cond = log_q - log_r[:, :, None]
    marg = torch.logsumexp(log_q, 0) - torch.logsumexp(log_r, 0)[:, None]
    return (log_q.exp() * (cond - marg[None])).sum()


def _mean_kl(torch, log_p, log_py) -> float:
    """Mean over rows of KL(p(y|.) || p(y)), nats."""
    return float((log_p.exp() * (log_p - log_py[None])).sum(1).mean())
