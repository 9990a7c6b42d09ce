"""Gaussian PID (~-PID: Venkatesh, Bhattacharyya, Grover, NeurIPS 2023) of jointly Gaussian M, X, Y.

M is the target; X and Y the sources, of any dimensions. The BROJA union information
I_cup(M; X, Y) is the minimum of I_Q(M; X, Y) over joints Q with the (M, X) and (M, Y) marginals
of P; restricted to Gaussian Q (the ~-PID) it is a problem over one matrix. Whiten so that M is
standard and the noises of X | M and Y | M are white: X = Hx M + Nx, Y = Hy M + Ny. The
marginals fix Hx, Hy and leave free only the noise cross-covariance Sigma = Cov(Nx, Ny), feasible
when ||Sigma|| <= 1 (spectral norm), and

    2 ln 2 * I_Q(M; X, Y) = ln det(I + Hy'Hy + B' S^-1 B),
    B = Hx - Sigma Hy,  S = I - Sigma Sigma'.

Its gradient in Sigma is 2 P (G' Sigma - Hy') with G = S^-1 B, P = G W, W the inverse of the
matrix under the determinant. Then R = I(M;X) + I(M;Y) - I_cup, U_X = I_cup - I(M;Y),
U_Y = I_cup - I(M;X), S = I(M;X,Y) - I_cup (BROJA's definitions).

Solving. Only the column spaces of Hx and Hy matter: the components of X outside them are noise
independent of M, and a joint that leaves them independent of everything else is feasible and
costs nothing, so X and Y are first reduced to at most dm dimensions each (dx = 1000, dy = 600,
dm = 1 becomes a 1 x 1 Sigma). The reduced problem is solved by L-BFGS with a backtracking line
search that rejects infeasible steps (Cholesky of S fails), from the better of Sigma = 0 and the
true noise cross-covariance. Iterations hardly depend on the dimension (a rotated,
block-duplicated system has the spectrum of its block), each costs a few d^3 operations.

With a scalar M (or any system where one source is, in the Gaussian sense, a degraded copy of
the other), I_cup = max(I(M;X), I(M;Y)), so the result equals MMI (Barrett 2015).

From samples, each Gaussian mutual information is corrected for its finite-sample bias (Cai,
Liang, Zhou 2015): the plug-in entropy of a d-dimensional Gaussian is biased by
b(d, n) = sum_{k=1..d} ln(1 - k/n) / (2 ln 2) bits, so I(U; V) by b(du) + b(dv) - b(du + dv);
the union information takes the bias of I(M; X, Y), whose dimensions it has.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from sklearn.utils import check_random_state

from estimators._result import PIDResult
from estimators._validate import (
    _as_float_array,
    boolean,
    check_continuous,
    check_same_length,
    int_at_least,
    number_at_least,
    number_in,
    random_state_like,
)
from estimators.base import PIDEstimator, register

LN2 = math.log(2.0)
#: Relative tolerance of symmetry and of negative eigenvalues when checking a covariance.
PSD_TOL = 1e-9
#: Singular values of a whitened gain below this fraction of the largest are dropped.
RANK_TOL = 1e-10


@dataclass(frozen=True)
class GaussianPIDResult(PIDResult):
    """A `PIDResult` of the Gaussian PID, with how it was computed.

    dims: (dm, dx, dy); reduced: sizes of the solved problem (rank of Hx, rank of Hy);
    iterations, converged: of the L-BFGS solve; n_samples: None for a covariance;
    bias_corrected: whether Cai et al.'s correction was applied; ci: per atom (and
    mutual_info) a (low, high) bootstrap percentile interval, None unless asked for.
    """

    dims: tuple[int, int, int] = (0, 0, 0)
    reduced: tuple[int, int] = (0, 0)
    iterations: int = 0
    converged: bool = True
    n_samples: int | None = None
    bias_corrected: bool = False
    ci: tuple[tuple[str, float, float], ...] | None = None


def check_dims(dims: object, size: int | None = None) -> tuple[int, int, int]:
    """(dm, dx, dy) as positive ints adding up to `size` (when given), else ValueError."""
    try:
        out = tuple(int(d) for d in dims)  # type: ignore[union-attr]
        ok = len(out) == 3 and all(
            d >= 1 and d == v
            for d, v in zip(out, dims, strict=True)  # type: ignore[arg-type]
        )
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"dims must be three positive integers (dm, dx, dy), the sizes of the M, X and Y "
            f"blocks of the covariance in that order; got {dims!r}"
        )
    if size is not None and sum(out) != size:
        raise ValueError(
            f"dims {out} add up to {sum(out)} but the covariance is {size} x {size}; the blocks "
            "(dm, dx, dy) must cover it exactly, M first, then X, then Y"
        )
    return out  # type: ignore[return-value]


def check_covariance(cov: object, dims: object) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A validated symmetric PSD covariance of (M, X, Y) and its block sizes."""
    c = _as_float_array(cov, "cov")
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"cov must be a square 2-D covariance matrix; got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("cov contains NaN or infinite entries; a covariance must be finite")
    d = check_dims(dims, c.shape[0])
    scale = max(float(np.abs(c).max()), np.finfo(float).tiny)
    asym = float(np.abs(c - c.T).max())
    if asym > PSD_TOL * scale * 10:
        raise ValueError(
            f"cov is not symmetric (largest |cov - cov.T| = {asym:.3g}); pass a covariance matrix"
        )
    c = (c + c.T) / 2
    shift = PSD_TOL * scale * c.shape[0]
    # c + shift I is positive definite (its Cholesky exists) exactly when the smallest
    # eigenvalue of c exceeds -shift; a Cholesky costs a fraction of an eigendecomposition
    # (3072 x 3072: 0.2 s against 3.5 s), which is left to name the eigenvalue of a failure.
    if _is_pd(c + shift * np.eye(len(c))):
        return c, d
    low = float(np.linalg.eigvalsh(c)[0])
    if low < -shift:
        raise ValueError(
            f"cov is not positive semi-definite (smallest eigenvalue {low:.3g}); a covariance "
            "matrix must have no negative eigenvalues"
        )
    return c, d


def _is_pd(a: np.ndarray) -> bool:
    """Whether symmetric `a` is positive definite (its Cholesky factorisation succeeds)."""
    try:
        scipy.linalg.cho_factor(a, lower=True, check_finite=False)
    except scipy.linalg.LinAlgError:
        return False
    return True


def _whitener(c: np.ndarray, what: str) -> np.ndarray:
    """W with W c W' = I (inverse Cholesky factor); ValueError if c is singular."""
    try:
        low = scipy.linalg.cholesky(c, lower=True)
    except scipy.linalg.LinAlgError:
        low = None
    if low is None or np.diag(low).min() <= 1e-12 * math.sqrt(max(float(np.abs(c).max()), 1e-300)):
        raise ValueError(
            f"the covariance of {what} is singular: some combination of it is determined "
            "exactly, so the mutual information is infinite; add noise or drop the redundant "
            "coordinates"
        )
    return scipy.linalg.solve_triangular(low, np.eye(len(c)), lower=True)


def _logdet(c: np.ndarray) -> float:
    sign, val = np.linalg.slogdet(c)
    if sign <= 0:
        raise ValueError("a covariance block is singular; the mutual information is infinite")
    return float(val)


@dataclass
class _Whitened:
    hx: np.ndarray  # whitened gain of X, (dx, dm)
    hy: np.ndarray  # (dy, dm)
    sigma: np.ndarray  # whitened true noise cross-covariance, (dx, dy)
    i_xy_nats: float  # I(M; X, Y) of the true joint


def _whiten(c: np.ndarray, dims: tuple[int, int, int]) -> _Whitened:
    dm, dx, _ = dims
    m, x, y = slice(0, dm), slice(dm, dm + dx), slice(dm + dx, None)
    wm = _whitener(c[m, m], "M")
    cmm_inv = wm.T @ wm
    cond = c[dm:, dm:] - c[dm:, m] @ cmm_inv @ c[m, dm:]  # Cov((X, Y) | M)
    wx = _whitener(cond[:dx, :dx], "X given M")
    wy = _whitener(cond[dx:, dx:], "Y given M")
    hx = wx @ c[x, m] @ wm.T
    hy = wy @ c[y, m] @ wm.T
    sigma = wx @ cond[:dx, dx:] @ wy.T
    # I(M; X, Y) = (ln det Cov(X, Y) - ln det Cov((X, Y) | M)) / 2 (the Schur complement
    # spares a log-determinant of the whole (dm + dx + dy)-square covariance)
    i_xy = 0.5 * (_logdet(c[dm:, dm:]) - _logdet(cond))
    if not np.isfinite(i_xy):
        raise ValueError("I(M; X, Y) is infinite: (X, Y) determine part of M exactly")
    return _Whitened(hx, hy, sigma, i_xy)


def _reduce(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(basis U of the column space of h, the gain in that basis U'h)."""
    u, s, vt = np.linalg.svd(h, full_matrices=False)
    keep = s > RANK_TOL * max(float(s[0]) if s.size else 0.0, 1e-300)
    return u[:, keep], s[keep, None] * vt[keep]


def _objective(
    sig: np.ndarray, hx: np.ndarray, hy: np.ndarray, base: np.ndarray
) -> tuple[float, np.ndarray] | None:
    """(ln det(I + Hy'Hy + B'S^-1 B), its gradient in Sigma), or None if Sigma is infeasible."""
    s = np.eye(len(sig)) - sig @ sig.T
    try:
        ls = scipy.linalg.cho_factor(s, lower=True, check_finite=False)
    except scipy.linalg.LinAlgError:
        return None
    b = hx - sig @ hy
    g = scipy.linalg.cho_solve(ls, b, check_finite=False)  # S^-1 B
    mat = base + b.T @ g
    try:
        lm = scipy.linalg.cho_factor(mat, lower=True, check_finite=False)
    except scipy.linalg.LinAlgError:
        return None
    f = 2.0 * float(np.log(np.diag(lm[0])).sum())
    p = scipy.linalg.cho_solve(lm, g.T, check_finite=False).T  # G W
    grad = 2.0 * p @ (g.T @ sig - hy.T)
    if not (np.isfinite(f) and np.isfinite(grad).all()):
        return None
    return f, grad


def _lbfgs(
    fun, x0: np.ndarray, max_iter: int, tol: float, memory: int = 20
) -> tuple[np.ndarray, float, int, bool]:
    """Minimise fun (returns (f, grad) or None when infeasible) from a feasible x0.

    L-BFGS with Armijo backtracking; an infeasible trial point counts as a failed decrease.
    Stops when an iteration lowers f by less than tol * (1 + |f|) with a small gradient, or
    when no step of the search direction decreases f (converged to round-off).
    """
    shape = x0.shape
    x = x0.ravel().copy()
    f, g = fun(x.reshape(shape))
    g = g.ravel()
    s_hist: deque[np.ndarray] = deque(maxlen=memory)
    y_hist: deque[np.ndarray] = deque(maxlen=memory)
    stalled = 0
    for it in range(1, max_iter + 1):
        q = g.copy()
        alphas = []
        for s, yv in zip(reversed(s_hist), reversed(y_hist), strict=True):
            a = float(s @ q) / float(yv @ s)
            alphas.append(a)
            q -= a * yv
        if s_hist:
            q *= float(s_hist[-1] @ y_hist[-1]) / float(y_hist[-1] @ y_hist[-1])
        else:
            q *= min(1.0, 1.0 / max(float(np.abs(g).max()), 1e-300))
        for s, yv, a in zip(s_hist, y_hist, reversed(alphas), strict=True):
            q += (a - float(yv @ q) / float(yv @ s)) * s
        d = -q
        slope = float(g @ d)
        if slope >= 0:  # not a descent direction: restart from the gradient
            s_hist.clear()
            y_hist.clear()
            d = -g * min(1.0, 1.0 / max(float(np.abs(g).max()), 1e-300))
            slope = float(g @ d)
        t = 1.0
        while True:
            xn = x + t * d
            r = fun(xn.reshape(shape))
            if r is not None and r[0] <= f + 1e-4 * t * slope:
                break
            t *= 0.5
            if t < 1e-16:
                return x.reshape(shape), f, it, True
        fn, gn = r[0], r[1].ravel()
        sv, yv = xn - x, gn - g
        if float(sv @ yv) > 1e-16 * float(sv @ sv):
            s_hist.append(sv)
            y_hist.append(yv)
        decrease = f - fn
        x, f, g = xn, fn, gn
        small = decrease <= tol * (1.0 + abs(f))
        stalled = stalled + 1 if small else 0
        # an optimum on the boundary ||Sigma|| = 1 keeps a large gradient: there, stop when
        # the value has stopped moving for a while
        if small and (float(np.abs(g).max()) < 1e-6 or stalled >= 20):
            return x.reshape(shape), f, it, True
    return x.reshape(shape), f, max_iter, False


@dataclass
class _Solved:
    i_x: float  # nats
    i_y: float
    i_xy: float
    union: float
    reduced: tuple[int, int]
    iterations: int
    converged: bool


def _solve(c: np.ndarray, dims: tuple[int, int, int], max_iter: int, tol: float) -> _Solved:
    w = _whiten(c, dims)
    dm = dims[0]
    ux, hx = _reduce(w.hx)
    uy, hy = _reduce(w.hy)
    i_x = 0.5 * _logdet(np.eye(dm) + hx.T @ hx)
    i_y = 0.5 * _logdet(np.eye(dm) + hy.T @ hy)
    lo = max(i_x, i_y)
    rx, ry = hx.shape[0], hy.shape[0]
    it, conv = 0, True
    if rx == 0 or ry == 0 or _ordered(hx, hy):
        # One source is a degraded copy of the other (Hx'Hx - Hy'Hy semi-definite, always so
        # for a scalar M, or one says nothing): a joint where M - X - Y (or M - Y - X) is a
        # Markov chain keeps both marginals and has I_Q(M; X, Y) = the larger MI, the least
        # possible. The search would only creep towards ||Sigma|| = 1 there.
        union = lo
    else:
        base = np.eye(dm) + hy.T @ hy
        fun = lambda s: _objective(s, hx, hy, base)  # noqa: E731
        starts = [np.zeros((rx, ry)), ux.T @ w.sigma @ uy]
        vals = [(r[0], s) for s in starts if (r := fun(s)) is not None]
        s0 = min(vals, key=lambda v: v[0])[1]
        _, fmin, it, conv = _lbfgs(fun, s0, max_iter, tol)
        union = 0.5 * fmin
    # I_cup lies in [max(I(M;X), I(M;Y)), I(M;X,Y)] for every feasible joint; what falls
    # outside is round-off of the solve (the true cross-covariance is a starting point).
    union = min(max(union, lo), max(w.i_xy_nats, lo))
    return _Solved(i_x, i_y, max(w.i_xy_nats, lo), union, (rx, ry), it, conv)


def _ordered(hx: np.ndarray, hy: np.ndarray) -> bool:
    """Whether Hx'Hx - Hy'Hy is positive or negative semi-definite (within round-off)."""
    gx, gy = hx.T @ hx, hy.T @ hy
    tol = 1e-10 * max(float(np.abs(gx).max()), float(np.abs(gy).max()), 1.0)
    # smallest eigenvalue of gx - gy > -tol, or largest < tol: two Cholesky attempts, a
    # fraction of the cost of an eigendecomposition at dm = 1024
    shift = tol * np.eye(len(gx))
    return _is_pd(gx - gy + shift) or _is_pd(gy - gx + shift)


def _atoms_bits(i_x: float, i_y: float, i_xy: float, union: float) -> tuple[float, ...]:
    """(R, U_X, U_Y, S, I) in bits from the four informations in nats."""
    r = (i_x + i_y - union) / LN2
    ux = (union - i_y) / LN2
    uy = (union - i_x) / LN2
    s = (i_xy - union) / LN2
    return r, ux, uy, s, i_xy / LN2


def gaussian_pid(
    cov: object, dims: object, max_iter: int = 5000, tol: float = 1e-13
) -> GaussianPIDResult:
    """Gaussian (~-) PID in bits of a covariance of (M, X, Y), blocks `dims` = (dm, dx, dy).

    M is the target: redundancy/unique1/unique2/synergy are R, U_X, U_Y, S of I(M; X, Y).
    """
    c, d = check_covariance(cov, dims)
    sol = _solve(c, d, max_iter, tol)
    return GaussianPIDResult(
        *_atoms_bits(sol.i_x, sol.i_y, sol.i_xy, sol.union),
        measure="gaussian",
        dims=d,
        reduced=sol.reduced,
        iterations=sol.iterations,
        converged=sol.converged,
    )


def mi_bias_bits(du: int, dv: int, n: int) -> float:
    """Cai et al.'s first-order bias of the plug-in Gaussian I(U; V), bits (du, dv dims, n)."""

    def b(d: int) -> float:
        return float(np.log1p(-np.arange(1, d + 1) / n).sum()) / (2 * LN2)

    return b(du) + b(dv) - b(du + dv)


@register("gaussian")
class GaussianPID(PIDEstimator):
    """Gaussian PID of a target M and two sources X, Y (all continuous, any dimensions).

    Parameters
    ----------
    bias_correction: subtract each mutual information's finite-sample bias (Cai et al. 2015)
        when fitting on samples (default True); ignored by `fit_covariance`.
    n_bootstrap: bootstrap resamples for a percentile interval on every atom (0: none).
    ci_level: coverage of that interval (default 0.95).
    max_iter, tol: L-BFGS iteration cap and relative decrease at which it stops.
    random_state: seed of the bootstrap, as in scikit-learn.

    fit(m, x, y): samples (n, dm), (n, dx), (n, dy) (1-D is one feature); M is the target.
    fit_covariance(cov, dims=(dm, dx, dy)): the covariance of (M, X, Y) in that block order.
    Both set `pid_` (a `GaussianPIDResult`, bits; unique1 is X's, unique2 Y's), the atoms, and
    `ci_` (atom -> (low, high), or None). `joint_` is the covariance used.

    Assumes (M, X, Y) jointly Gaussian: on other data it is the PID of the Gaussian with the
    same covariance, which for a discrete or nonlinear target is not the PID of the data.
    """

    _parameter_checks = {
        "bias_correction": boolean,
        "n_bootstrap": int_at_least(0),
        "ci_level": number_in(0, 1),
        "max_iter": int_at_least(1),
        "tol": number_at_least(0),
        "random_state": random_state_like,
    }

    def __init__(
        self,
        bias_correction: bool = True,
        n_bootstrap: int = 0,
        ci_level: float = 0.95,
        max_iter: int = 5000,
        tol: float = 1e-13,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.bias_correction = bias_correction
        self.n_bootstrap = n_bootstrap
        self.ci_level = ci_level
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit_covariance(self, cov: object, dims: object) -> GaussianPID:
        """Gaussian PID of a covariance of (M, X, Y) with blocks `dims` = (dm, dx, dy)."""
        p = self._validated_params()
        c, d = check_covariance(cov, dims)
        result = gaussian_pid(c, d, p["max_iter"], p["tol"])
        self.ci_ = None
        self._set_result(result, c)
        return self

    def fit(self, m: object, x: object, y: object) -> GaussianPID:
        """Gaussian PID of samples of the target m and the sources x, y; returns self."""
        p = self._validated_params()
        am, ax, ay = (check_continuous(a, name) for a, name in ((m, "m"), (x, "x"), (y, "y")))
        n = check_same_length(m=am, x=ax, y=ay)
        dims = (am.shape[1], ax.shape[1], ay.shape[1])
        if n <= sum(dims) + 1:
            raise ValueError(
                f"GaussianPID needs more samples than dimensions: {n} samples of "
                f"dm + dx + dy = {sum(dims)} dimensions; the sample covariance is singular "
                f"below {sum(dims) + 2} samples (and biased well above); pass more samples or "
                "reduce the dimensions (e.g. PCA)"
            )
        data = np.concatenate([am, ax, ay], axis=1)
        c = np.cov(data, rowvar=False)
        values, sol = _from_data(c, dims, n, p)
        result = GaussianPIDResult(
            *values,
            measure="gaussian",
            dims=dims,
            reduced=sol.reduced,
            iterations=sol.iterations,
            converged=sol.converged,
            n_samples=n,
            bias_corrected=p["bias_correction"],
        )
        self.ci_ = None
        if p["n_bootstrap"] > 0:
            rng = check_random_state(p["random_state"])
            boot = []
            for _ in range(p["n_bootstrap"]):
                idx = rng.randint(0, n, size=n)
                boot.append(_from_data(np.cov(data[idx], rowvar=False), dims, n, p)[0])
            arr = np.asarray(boot)
            q = (1 - p["ci_level"]) / 2
            lo, hi = np.quantile(arr, [q, 1 - q], axis=0)
            names = (*PIDResult.ATOMS, "mutual_info")
            self.ci_ = {k: (float(a), float(b)) for k, a, b in zip(names, lo, hi, strict=True)}
            ci = tuple((k, a, b) for k, (a, b) in self.ci_.items())
            result = dataclasses.replace(result, ci=ci)
        self._set_result(result, c)
        return self


def _from_data(
    c: np.ndarray, dims: tuple[int, int, int], n: int, p: dict
) -> tuple[tuple[float, ...], _Solved]:
    """(R, U_X, U_Y, S, I) in bits of a sample covariance of n samples, with the settings `p`
    of a GaussianPID (`max_iter`, `tol`, `bias_correction`), and the solve behind them."""
    try:
        c, _ = check_covariance(c, dims)
        sol = _solve(c, dims, p["max_iter"], p["tol"])
    except ValueError as err:
        raise ValueError(f"GaussianPID on samples: {err}") from None
    i_x, i_y, i_xy, union = sol.i_x, sol.i_y, sol.i_xy, sol.union
    if p["bias_correction"]:
        dm, dx, dy = dims
        bx = mi_bias_bits(dm, dx, n) * LN2
        by = mi_bias_bits(dm, dy, n) * LN2
        bxy = mi_bias_bits(dm, dx + dy, n) * LN2
        i_x, i_y, i_xy, union = i_x - bx, i_y - by, i_xy - bxy, union - bxy
    return _atoms_bits(i_x, i_y, i_xy, union), sol
