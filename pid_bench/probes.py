"""Probes on frozen embeddings: linear and MLP classifiers, MI lower bounds, clustered and
BATCH PID."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from estimators import entropy_bits
from pid_bench.config import ProbeConfig

PROBES: tuple[str, ...] = ("linear", "mlp", "pid_clustered", "pid_batch")


def _score(proba: np.ndarray, y: np.ndarray, prior: np.ndarray, n_classes: int) -> dict[str, float]:
    """Balanced accuracy and MI lower bound from predicted class probabilities.

    Decisions use argmax p(y|z) / p_train(y), the rule that maximises balanced accuracy for a
    calibrated model, so an imbalanced task (Trifeature's synergy, ~10% positive) is not
    scored as chance merely because the majority class wins every argmax.
    The MI bound is H(Y) - CE(test) in bits, floored at 0 (a valid lower bound on I(Z; Y)
    up to the finite-sample error of the test estimate).
    """
    eps = 1e-12
    pred = np.argmax(np.log(proba + eps) - np.log(prior + eps), axis=1)
    ce_bits = float(-np.mean(np.log2(proba[np.arange(len(y)), y] + eps)))
    h = entropy_bits(np.bincount(y, minlength=n_classes) / len(y))
    return {
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "mi_bits": max(0.0, h - ce_bits),
        "chance": 1.0 / n_classes,
    }


def _full_proba(model, z: np.ndarray, n_classes: int) -> np.ndarray:
    """predict_proba with columns for every class, also those absent from probe training."""
    p = np.zeros((len(z), n_classes))
    p[:, model.classes_] = model.predict_proba(z)
    return p


def _split_val(n: int, frac: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    n_val = max(1, int(round(frac * n)))
    return perm[n_val:], perm[:n_val]


def linear_probe(
    z_train: np.ndarray,
    y_train: np.ndarray,
    z_test: np.ndarray,
    y_test: np.ndarray,
    n_classes: int,
    cfg: ProbeConfig = ProbeConfig(),
    seed: int = 0,
) -> dict[str, float]:
    """Multinomial logistic regression; C chosen on a validation split by balanced accuracy."""
    _check_probe_input(z_train, y_train, z_test, y_test, n_classes)
    rng = np.random.default_rng(seed)
    scaler = StandardScaler().fit(z_train)
    ztr, zte = scaler.transform(z_train), scaler.transform(z_test)
    prior = np.bincount(y_train, minlength=n_classes) / len(y_train)
    fit_idx, val_idx = _split_val(len(ztr), cfg.val_fraction, rng)
    best_c, best = cfg.c_grid[0], -1.0
    for c in cfg.c_grid:
        m = _fit_quietly(_logreg(c), ztr[fit_idx], y_train[fit_idx])
        s = _score(_full_proba(m, ztr[val_idx], n_classes), y_train[val_idx], prior, n_classes)
        if s["balanced_accuracy"] > best + 1e-9:
            best_c, best = c, s["balanced_accuracy"]
    m = _fit_quietly(_logreg(best_c), ztr, y_train)
    out = _score(_full_proba(m, zte, n_classes), y_test, prior, n_classes)
    out["C"] = best_c
    return out


def _fit_quietly(model, z: np.ndarray, y: np.ndarray):
    # lbfgs stops at max_iter on linearly separable embeddings (the weights keep growing while
    # the predictions no longer change); the warning says nothing about the probe's result.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(z, y)


def _logreg(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=300, tol=1e-4)


def mlp_probe(
    z_train: np.ndarray,
    y_train: np.ndarray,
    z_test: np.ndarray,
    y_test: np.ndarray,
    n_classes: int,
    cfg: ProbeConfig = ProbeConfig(),
    seed: int = 0,
) -> dict[str, float]:
    """One-hidden-layer MLP probe (the nonlinear view), early-stopped on a validation split."""
    _check_probe_input(z_train, y_train, z_test, y_test, n_classes)
    scaler = StandardScaler().fit(z_train)
    prior = np.bincount(y_train, minlength=n_classes) / len(y_train)
    m = MLPClassifier(
        hidden_layer_sizes=(cfg.mlp_hidden,),
        early_stopping=True,
        validation_fraction=cfg.val_fraction,
        max_iter=cfg.mlp_max_iter,
        random_state=seed,
    )
    _fit_quietly(m, scaler.transform(z_train), y_train)
    return _score(_full_proba(m, scaler.transform(z_test), n_classes), y_test, prior, n_classes)


def clustered_pid(
    z1: np.ndarray, z2: np.ndarray, y: np.ndarray, cfg: ProbeConfig = ProbeConfig(), seed: int = 0
) -> dict[str, float]:
    """Clustered (CVX-style) PID of (z1, z2; y) in bits, and the mean samples per occupied
    (cluster1, cluster2, y) cell: below `estimators.clustered.MIN_SAMPLES_PER_CELL` the
    plug-in atoms are biased upward, and the report says so."""
    from estimators import ClusteredPID, SmallSampleWarning

    with warnings.catch_warnings():
        # recorded as the samples_per_cell row instead of a warning per cell of a run
        warnings.simplefilter("ignore", SmallSampleWarning)
        est = ClusteredPID(n_clusters=cfg.pid_clusters, random_state=seed).fit(z1, z2, y)
    return {
        "redundancy": est.redundancy_,
        "unique1": est.unique1_,
        "unique2": est.unique2_,
        "synergy": est.synergy_,
        "mutual_info": est.mutual_info_,
        "samples_per_cell": est.samples_per_cell_,
    }


def batch_pid(
    z1: np.ndarray, z2: np.ndarray, y: np.ndarray, seed: int = 0, device: str = "cpu"
) -> dict[str, float]:
    """BATCH PID of (z1, z2; y) in bits, trained on 75% of the rows and estimated on the rest
    (the rows clustered_pid reads), with the held-out accuracy of its three classifiers: a
    low accuracy12 marks an estimate that rests on an under-trained classifier."""
    from estimators import BatchPID

    # the default batch of 256 pairs, smaller when the rows cannot fill two of them
    batch_size = max(2, min(256, int(0.75 * len(y)) // 2))
    est = BatchPID(random_state=seed, device=device, batch_size=batch_size).fit(z1, z2, y)
    r = est.pid_
    return {
        "redundancy": r.redundancy,
        "unique1": r.unique1,
        "unique2": r.unique2,
        "synergy": r.synergy,
        "mutual_info": r.mutual_info,
        "accuracy1": r.accuracy1,
        "accuracy2": r.accuracy2,
        "accuracy12": r.accuracy12,
        "seconds": r.seconds,
    }


def _check_probe_input(z_train, y_train, z_test, y_test, n_classes: int) -> None:
    for name, z, y in (("train", z_train, y_train), ("test", z_test, y_test)):
        if z.ndim != 2 or len(z) != len(y) or len(z) == 0:
            raise ValueError(
                f"probe {name} set: embeddings must be (n, d) with n = len(labels) > 0, "
                f"got {z.shape} and {len(y)} labels"
            )
        if not np.isfinite(z).all():
            raise ValueError(f"probe {name} embeddings contain NaN or inf")
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"probe {name} labels must lie in 0..{n_classes - 1}")
