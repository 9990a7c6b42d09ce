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

This module holds the estimator (parameters, input checks, the held-out split); the torch half
(networks, training, Sinkhorn, the estimate) is `estimators._batch_torch`, imported when a
BatchPID is fitted, so that `import estimators` stays light.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from estimators._result import PIDResult
from estimators._validate import (
    boolean,
    check_continuous,
    check_labels,
    check_same_length,
    int_at_least,
    number_in,
    one_of,
    random_state_like,
)
from estimators.base import PIDEstimator, register

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
    time; params: the estimator's settings as (name, value) pairs, random_state as the int seed
    the fit used.
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


def _batch_size(value: object, name: str) -> int:
    """At least 2: q is a coupling of the pairs of a batch."""
    size = int_at_least(1)(value, name)
    if size < 2:  # type: ignore[operator]
        raise ValueError(f"{name} must be at least 2 (pairs); got {value!r}")
    return size  # type: ignore[return-value]


#: The default of `BatchPID(seed=...)`: not given.
_NO_SEED = "deprecated"


def _deprecated_seed(value: object, name: str) -> object:
    """`seed`: "deprecated" (not given) or a random_state."""
    return value if isinstance(value, str) and value == _NO_SEED else random_state_like(value, name)


@register("batch")
class BatchPID(PIDEstimator):
    """BATCH estimator of the PID of continuous x1, x2 and discrete y (see the module doc).

    Parameters
    ----------
    random_state: seeds the split, the networks' initialisation and the minibatch order: an int
        seed (the same seed gives the same numbers on the same machine and device), a
        `np.random.RandomState` (a seed is drawn from it) or None (from numpy's global one), as
        in scikit-learn. Default 0, so that two default fits agree.
    seed: deprecated alias of random_state, kept for one release (warns with FutureWarning).
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

    _parameter_checks = {
        "random_state": random_state_like,
        "seed": _deprecated_seed,
        "hidden": int_at_least(1),
        "layers": int_at_least(0),
        "joint": one_of(JOINTS),
        "calibrate": boolean,
        "embed_dim": int_at_least(1),
        "classifier_epochs": int_at_least(0),
        "align_epochs": int_at_least(0),
        "batch_size": _batch_size,
        "lr": number_in(0, math.inf),
        "sinkhorn_iters": int_at_least(1),
        "sinkhorn_tol": number_in(0, 1),
        "sinkhorn_grad_steps": int_at_least(0),
        "test_fraction": number_in(0, 1),
        "val_fraction": number_in(0, 1, closed="left"),
        "device": one_of(DEVICES),
        "n_threads": int_at_least(1, allow_none=True),
    }

    def __init__(
        self,
        random_state: int | np.random.RandomState | None = 0,
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
        seed: int | np.random.RandomState | None | str = "deprecated",
    ) -> None:
        self.random_state = random_state
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
        self.seed = seed

    def fit(
        self,
        x1: object,
        x2: object,
        y: object,
        held_out: tuple[object, object, object] | None = None,
    ) -> BatchPID:
        """Train the classifiers and the alignment, estimate the PID held out; returns self."""
        p = self._validated_params()
        seed = _seed(p)
        a1, a2 = check_continuous(x1, "x1"), check_continuous(x2, "x2")
        raw_y = np.asarray(y)
        cy = check_labels(y, "y")
        n = check_same_length(x1=a1, x2=a2, y=cy)
        classes = np.unique(raw_y.reshape(-1))
        if held_out is None:
            perm = np.random.default_rng(seed).permutation(n)
            n_test = int(round(p["test_fraction"] * n))
            te, tr = perm[:n_test], perm[n_test:]
            train, test = (a1[tr], a2[tr], cy[tr]), (a1[te], a2[te], cy[te])
        else:
            train, test = (a1, a2, cy), _held_out(held_out, a1, a2, classes)
        n_min = 2 * p["batch_size"] if held_out is None else p["batch_size"]
        n_train, n_test = len(train[2]), len(test[2])
        if n_train < n_min or n_test < 2:
            raise ValueError(
                f"BatchPID needs at least {n_min} training samples (batch_size "
                f"{p['batch_size']}) and 2 held-out ones; got {n_train} and {n_test}: pass "
                "more samples or a smaller batch_size"
            )
        k = len(classes)
        if k < 2:
            raise ValueError("y has a single class: there is no information to decompose")
        self.classes_ = classes

        from estimators import _batch_torch  # torch: loaded when a BatchPID is fitted

        start = time.perf_counter()
        out = _batch_torch.estimate(params=p, seed=seed, train=train, test=test, n_classes=k)
        seconds = time.perf_counter() - start
        self.accuracy_ = {"x1": out["acc1"], "x2": out["acc2"], "x1x2": out["acc12"]}
        settings = {name: v for name, v in p.items() if name != "seed"} | {"random_state": seed}
        result = BatchPIDResult(
            *out["atoms"],
            measure="batch",
            accuracy1=out["acc1"],
            accuracy2=out["acc2"],
            accuracy12=out["acc12"],
            chance=float(np.bincount(test[2], minlength=k).max() / n_test),
            marginal_error=out["marginal_error"],
            temperatures=out["temperatures"],
            seconds=seconds,
            device=out["device"],
            params=tuple(sorted(settings.items())),
        )
        self._set_result(result, None)  # type: ignore[arg-type]
        return self


def _seed(p: dict[str, object]) -> int:
    """The int seed of a fit: random_state (or the deprecated seed) as an int, one drawn from
    a RandomState (or numpy's global one for None), as scikit-learn resolves random_state."""
    state = p["random_state"]
    if not (isinstance(p["seed"], str) and p["seed"] == _NO_SEED):
        if state not in (0, p["seed"]):
            raise ValueError(
                f"BatchPID got random_state={state!r} and its deprecated alias seed="
                f"{p['seed']!r}; pass random_state only"
            )
        warnings.warn(
            "BatchPID(seed=...) is deprecated and will be removed in the next release; "
            "use random_state=... (the same values)",
            FutureWarning,
            stacklevel=3,
        )
        state = p["seed"]
    if isinstance(state, int | np.integer) and not isinstance(state, bool):
        return int(state)
    return int(check_random_state(state).randint(np.iinfo(np.int32).max))


def _held_out(
    held_out: object, a1: np.ndarray, a2: np.ndarray, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The checked held-out set (x1, x2, y codes among `classes`)."""
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
    return t1, t2, np.searchsorted(classes, ty_raw).astype(np.int64)
