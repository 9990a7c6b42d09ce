"""Exact BROJA optimisation (Bertschinger, Rauh, Olbrich, Jost, Ay 2014).

The primal problem, over joints q[x1, x2, y] in Delta_p (the (X1, Y) and (X2, Y) marginals of p):

    minimise  f(q) = -H_q(Y | X1, X2) = sum_{x1, x2} sum_y q log(q / q(x1, x2)).

f is a sum over blocks k = (x1, x2) of the perspective of negative entropy: convex, positively
homogeneous, with conjugate the indicator of {l : logsumexp_y l_y <= 0}. That gives the dual

    maximise  D(a, b) = sum p(x1, y) a(x1, y) + sum p(x2, y) b(x2, y)
    subject to g_k(a, b) = log sum_{y in Y_k} exp(a(x1, y) + b(x2, y)) <= 0  for every k,

where Y_k holds the labels at which cell (x1, x2, y) may carry mass (p(x1, y) > 0 and
p(x2, y) > 0; every other cell is 0 in every q of Delta_p). The dual is a small geometric
program: (n1 + n2) * ny variables and n1 * n2 smooth convex constraints, while the primal has
n1 * n2 * ny variables and a non-smooth boundary (optimal q can have whole blocks at zero).
Interior-point methods on the dual need a number of Newton steps that hardly grows with the
size, each one a Cholesky solve of order (n1 + n2) * ny assembled from analytic derivatives.
The constraint multipliers are the primal solution: q(x1, x2, y) = lam_k softmax_y(a + b).

Two interior-point variants are used:

- `_mehrotra`: infeasible primal-dual predictor-corrector. 10-25 iterations, used first.
- `_barrier`: classic barrier path-following with damped Newton steps on a strictly feasible
  dual point. Globally convergent, ~3x slower; it takes over (and hands back to `_mehrotra`
  near the optimum) on the rare joints whose masses span many orders of magnitude, where the
  fast variant can stall.

Nothing is trusted: q is made exactly feasible (matrix scaling of each label's slice), the
dual point is made exactly feasible (a shift), and f(q) - D(a, b) then bounds the
suboptimality. Answers that cannot be certified raise `BrojaSolverError`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.special import xlogy
from threadpoolctl import ThreadpoolController

from estimators._validate import check_joint

#: Certified duality gap (nats) the solver aims for; 1e-10 nats is ~1.4e-10 bits.
GAP_TOL = 1e-10
#: Largest certified gap (nats) accepted at all; beyond it the solver raises.
GAP_FAIL = 1e-7
#: Duality gap (nats) the barrier phase of the safe path reaches before handing over.
BARRIER_GAP = 1e-8
#: Largest change of any a(x1, y) + b(x2, y) (log units) in one primal-dual step of the first
#: run, and of the careful runs that follow when it ends uncertified.
FAST_STEP_MAX = 8.0
STEP_MAX = 3.0
#: Iterations without halving the residual after which the primal-dual method stops.
STALL = 30
#: Iteration cap of each primal-dual phase.
PD_MAX_ITER = 120

# The Newton systems are small (<= ~1000 unknowns). Multi-threaded BLAS gains little on them
# and, on a machine whose cores are busy, spin-waiting threads slow them down 10-100x.
_THREADS = ThreadpoolController()


class BrojaSolverError(RuntimeError):
    """The BROJA optimisation did not reach a certified optimum."""


@dataclass(frozen=True)
class BrojaSolution:
    """Optimum of the BROJA program.

    q: an optimal joint in Delta_p (same shape as the input p).
    value: f(q) = -H_q(Y | X1, X2) in nats.
    gap: certified bound on f(q) - min f, in nats (weak duality).
    iterations: interior-point iterations used (0 when Delta_p is a single point).
    """

    q: np.ndarray
    value: float
    gap: float
    iterations: int


def neg_cond_entropy(q: np.ndarray) -> float:
    """f(q) = -H_q(Y | X1, X2) in nats for a joint q[x1, x2, y]."""
    q12 = q.sum(axis=2)
    return float(xlogy(q, q).sum() - xlogy(q12, q12).sum())


def solve_broja(p: object, *, max_iter: int = 200, tol: float = GAP_TOL) -> BrojaSolution:
    """Minimise -H_q(Y | X1, X2) over q in Delta_p for a joint p[x1, x2, y].

    p: a joint distribution (validated like `pid` does). max_iter: iteration cap of each
    interior-point phase. tol: duality gap (nats) to aim for.
    Values of x1, x2 or y with zero probability are dropped before solving and get zero mass
    in q. Raises `BrojaSolverError` if the optimum cannot be certified to `GAP_FAIL` nats.
    """
    p = check_joint(p)
    keep = [p.sum(axis=tuple(j for j in range(3) if j != i)) > 0 for i in range(3)]
    sub = np.ix_(*keep)
    with _THREADS.limit(limits=1, user_api="blas"):
        qr, value, gap, its = _solve(np.ascontiguousarray(p[sub]), max_iter, tol)
    q = np.zeros_like(p)
    q[sub] = qr
    return BrojaSolution(q=q, value=value, gap=gap, iterations=its)


class _Dual:
    """The dual program of one joint (no empty values): structure, constraints, Newton matrix.

    Dual variables z = (a, b) are stored padded, a (n1, ny) then b (n2, ny); only the `free`
    entries move. Each label's support is a complete bipartite graph, so the dual is invariant
    under a(., y) += c_y, b(., y) -= c_y and nothing else: pinning one b per label removes it.
    """

    def __init__(self, p: np.ndarray) -> None:
        n1, n2, ny = p.shape
        self.shape = p.shape
        self.p1y = p.sum(axis=1)  # p(x1, y)
        self.p2y = p.sum(axis=0)  # p(x2, y)
        self.act1 = self.p1y > 0
        self.act2 = self.p2y > 0
        self.support = self.act1[:, None, :] & self.act2[None, :, :]
        self.kmask = self.support.any(axis=2)
        self.pinned = np.argmax(self.act2, axis=0)  # the b(x2, y) fixed at 0, one per label
        free_b = self.act2.copy()
        free_b[self.pinned, np.arange(ny)] = False
        self.free = np.concatenate([self.act1.ravel(), free_b.ravel()])
        self.idx = np.flatnonzero(self.free)
        self.na = n1 * ny
        self.pm = np.concatenate([self.p1y.ravel(), self.p2y.ravel()])
        # Barrier weight of each constraint: the mass of its block under the conditionally
        # independent coupling p(x1, y) p(x2, y) / p(y) (weights sum to 1). Unweighted, a block
        # holding a single label has a linear constraint a + b <= 0 whose barrier pushes the
        # dual variables to ~1 / (t * mass), hopeless for masses of 1e-12; weighted, they stay
        # at the scale of log-probabilities.
        py = self.p1y.sum(axis=0)
        self.ci = self.p1y[:, None, :] * self.p2y[None, :, :] / py[None, None, :]
        self.weight = np.where(self.kmask, self.ci.sum(axis=2), 0.0)

    def split(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n1, n2, ny = self.shape
        return z[: self.na].reshape(n1, ny), z[self.na :].reshape(n2, ny)

    def start(self) -> np.ndarray:
        """A strictly feasible dual point matched to the conditionally independent coupling.

        With a(x1, y) = log p(x1, y) - log p(y) - 1 and b(x2, y) = log p(x2, y), the softmax
        of every block is q(y | x1, x2) of p(x1, y) p(x2, y) / p(y); with lam = weight the start
        is primal feasible too, and the dual variables start at the scale of log-probabilities
        however small some masses are. Every g_k <= -1.
        """
        ny = self.shape[2]
        py = self.p1y.sum(axis=0)
        with np.errstate(divide="ignore"):
            a = np.where(self.act1, np.log(self.p1y) - np.log(py) - 1.0, 0.0)
            b = np.where(self.act2, np.log(self.p2y), 0.0)
        shift = b[self.pinned, np.arange(ny)]  # move the gauge so pinned entries are 0
        a = np.where(self.act1, a + shift, 0.0)
        b = np.where(self.act2, b - shift, 0.0)
        return np.concatenate([a.ravel(), b.ravel()])

    def constraints(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(g, softmax) at z; g_k = 0 and softmax = 0 where there is no constraint."""
        a, b = self.split(z)
        e = np.where(self.support, a[:, None, :] + b[None, :, :], -np.inf)
        m = np.where(self.kmask, e.max(axis=2), 0.0)
        ex = np.exp(e - m[..., None])
        tot = np.where(self.kmask, ex.sum(axis=2), 1.0)
        return np.where(self.kmask, m + np.log(tot), 0.0), ex / tot[..., None]

    def jt(self, v: np.ndarray, pi: np.ndarray) -> np.ndarray:
        """J^T v: per-constraint weights v_k spread onto (a, b) through the softmax."""
        vp = v[..., None] * pi
        return np.concatenate([vp.sum(axis=1).ravel(), vp.sum(axis=0).ravel()])

    def active_jacobian(self, pi: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Gradients of the constraints g_k, k = rows (flat block indices), on the free entries."""
        n1, n2, ny = self.shape
        x1, x2 = np.divmod(rows, n2)
        jac = np.zeros((len(rows), (n1 + n2) * ny))
        r = np.arange(len(rows))[:, None]
        ys = np.arange(ny)[None, :]
        jac[r, x1[:, None] * ny + ys] += pi[x1, x2]
        jac[r, self.na + x2[:, None] * ny + ys] += pi[x1, x2]
        return jac[:, self.idx]

    def max_move(self, d: np.ndarray) -> float:
        """Largest |da(x1, y) + db(x2, y)| over the support."""
        da, db = self.split(d)
        return float(np.abs(da[:, None, :] + db[None, :, :])[self.support].max())

    def jdz(self, d: np.ndarray, pi: np.ndarray) -> np.ndarray:
        """J d: the directional derivative of every g_k."""
        da, db = self.split(d)
        return (pi * (da[:, None, :] + db[None, :, :])).sum(axis=2)

    def newton_matrix(self, lam: np.ndarray, w: np.ndarray, pi: np.ndarray) -> np.ndarray:
        """sum_k lam_k hess g_k + w_k grad g_k grad g_k^T, restricted to the free variables.

        hess g_k = diag(pi_k) - pi_k pi_k^T on both a(x1, .) and b(x2, .) and across them,
        so every block is a diagonal plus a rank-one term.
        """
        n1, n2, ny = self.shape
        na = self.na
        lp = lam[..., None] * pi
        cp = (w - lam)[..., None] * pi
        ar = np.arange(ny)
        haa = np.matmul(cp.transpose(0, 2, 1), pi)
        hbb = np.matmul(cp.transpose(1, 2, 0), pi.transpose(1, 0, 2))
        hab = cp[:, :, :, None] * pi[:, :, None, :]  # (n1, n2, ny, ny)
        haa[:, ar, ar] += lp.sum(axis=1)
        hbb[:, ar, ar] += lp.sum(axis=0)
        hab[:, :, ar, ar] += lp
        nfull = (n1 + n2) * ny
        mat = np.zeros((nfull, nfull))
        mat[:na, :na].reshape(n1, ny, n1, ny)[np.arange(n1), :, np.arange(n1), :] = haa
        mat[na:, na:].reshape(n2, ny, n2, ny)[np.arange(n2), :, np.arange(n2), :] = hbb
        mat[:na, na:] = hab.transpose(0, 2, 1, 3).reshape(na, n2 * ny)
        mat[na:, :na] = mat[:na, na:].T
        return mat[np.ix_(self.idx, self.idx)]


class _Factor:
    """Cholesky solver for a symmetric positive definite Newton matrix.

    The matrix is equilibrated to unit diagonal first: dual variables attached to masses of
    1e-12 have Hessian entries twelve orders below the others, and without the scaling any
    regularisation (or plain round-off) swamps them. Near convergence round-off can still
    spoil positive definiteness; a ridge far below the unit diagonal restores it.
    """

    def __init__(self, mat: np.ndarray) -> None:
        diag = np.diag(mat).copy()
        if not (np.isfinite(mat).all() and (diag > 0).all()):
            raise BrojaSolverError("BROJA Newton matrix is not positive definite")
        self.scale = 1.0 / np.sqrt(diag)
        scaled = mat * self.scale[:, None] * self.scale[None, :]
        for ridge in (0.0, 1e-14, 1e-12, 1e-10):
            if ridge:
                scaled[np.diag_indices_from(scaled)] += ridge
            try:
                self.factor = scipy.linalg.cho_factor(scaled, check_finite=False)
                return
            except np.linalg.LinAlgError:
                continue
        raise BrojaSolverError("BROJA Newton matrix is not positive definite")

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        sc = self.scale if rhs.ndim == 1 else self.scale[:, None]
        return sc * scipy.linalg.cho_solve(self.factor, sc * rhs, check_finite=False)


@dataclass
class _Candidate:
    q: np.ndarray
    value: float
    gap: float


def _solve(p: np.ndarray, max_iter: int, tol: float) -> tuple[np.ndarray, float, float, int]:
    prob = _Dual(p)
    ny = p.shape[2]
    # A label slice with a single row or column in its support is pinned to p; if all are,
    # Delta_p is the single point p.
    if ny == 1 or np.all((prob.act1.sum(axis=0) <= 1) | (prob.act2.sum(axis=0) <= 1)):
        return p.copy(), neg_cond_entropy(p), 0.0, 0
    best: _Candidate | None = None
    its = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        fast = _mehrotra(prob, tol, min(max_iter, PD_MAX_ITER), step_max=FAST_STEP_MAX)
        its += fast[2] if fast is not None else min(max_iter, PD_MAX_ITER)
        if fast is not None:
            best = _better(best, _evaluate(prob, fast[0], fast[1]))
            if best is None or best.gap > tol:
                # Hard joints (near-deterministic, masses over many orders): go on from the
                # last iterate with careful steps and better-conditioned Newton systems.
                fast = _refine(prob, fast, tol, max_iter)
                its += fast[2]
                best = _better(best, _evaluate(prob, fast[0], fast[1]))
        if best is None or best.gap > tol:
            # Safe path: the barrier method to a moderate gap, then the primal-dual method
            # started on the central path, where it converges reliably.
            lam, z, more = _barrier(prob, BARRIER_GAP, max_iter)
            its += more
            best = _better(best, _evaluate(prob, lam, z))
            s = np.where(prob.kmask, -prob.constraints(z)[0], 1.0)
            finish = _mehrotra(
                prob, tol, min(max_iter, PD_MAX_ITER), start=(z, lam, s), augmented=True
            )
            if finish is not None:
                its += finish[2]
                best = _better(best, _evaluate(prob, finish[0], finish[1]))
    if best is None or best.gap > GAP_FAIL:
        gap = "none" if best is None else f"{best.gap:.3g} nats"
        raise BrojaSolverError(
            f"BROJA optimum not certified after {its} iterations: best duality gap {gap} "
            f"(limit {GAP_FAIL:g}); refusing to return an unreliable decomposition. Joints "
            "whose masses span many orders of magnitude (cells below ~1e-12 next to cells near "
            "1) can cause this; setting such negligible cells to 0 usually helps"
        )
    # Two feasible points known in closed form must never beat the optimum: p itself and the
    # conditionally independent coupling. Failing this would mean a bug, not a hard problem.
    baseline = min(neg_cond_entropy(p), neg_cond_entropy(prob.ci))
    if best.value > baseline + 1e-9:
        raise BrojaSolverError(
            f"BROJA optimum {best.value:.12g} is worse than a known feasible point {baseline:.12g}"
        )
    return best.q, best.value, best.gap, its


def _refine(
    prob: _Dual, last: tuple[np.ndarray, np.ndarray, int, np.ndarray], tol: float, max_iter: int
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """The primal-dual method with augmented systems, from the last iterate of a first run.

    The slacks are reset to the constraint values (a consistent start); if the augmented run
    breaks down, the first run's iterate is returned with no iterations added.
    """
    lam, z, _, s = last
    g = prob.constraints(z)[0]
    s = np.where(prob.kmask, np.maximum(-g, s), 1.0)
    lam = np.where(prob.kmask, np.maximum(lam, 1e-300), 0.0)
    out = _mehrotra(prob, tol, min(max_iter, PD_MAX_ITER), start=(z, lam, s), augmented=True)
    return out if out is not None else (*last[:2], 0, last[3])


def _better(a: _Candidate | None, b: _Candidate | None) -> _Candidate | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if b.gap < a.gap else a


def _evaluate(prob: _Dual, lam: np.ndarray, z: np.ndarray) -> _Candidate | None:
    """Exactly feasible q and dual point from an iterate, and the certified gap between them."""
    g, pi = prob.constraints(z)
    if not (np.isfinite(g).all() and np.isfinite(lam).all()):
        return None
    # Lowering every a by the largest constraint violation makes (a, b) feasible and costs
    # exactly that much dual value (the p(x1, y) sum to 1).
    a, b = prob.split(z)
    a = a - max(0.0, float(g[prob.kmask].max()))
    # Any feasible q is an upper bound, so flooring underflowed cells (to let the scaling
    # reach every marginal) is harmless.
    q0 = np.where(prob.support, np.maximum(lam[..., None] * pi, 1e-300), 0.0)
    q = _sinkhorn(q0, prob.p1y, prob.p2y)
    feas = max(np.abs(q.sum(axis=1) - prob.p1y).max(), np.abs(q.sum(axis=0) - prob.p2y).max())
    value = neg_cond_entropy(q)
    dual = float(
        (prob.p1y * np.where(prob.act1, a, 0.0)).sum()
        + (prob.p2y * np.where(prob.act2, b, 0.0)).sum()
    )
    gap = value - dual
    if feas > 1e-12 or not np.isfinite(gap) or gap < -1e-9:
        return None
    return _Candidate(q=q, value=value, gap=max(gap, 0.0))


def _sinkhorn(q: np.ndarray, p1y: np.ndarray, p2y: np.ndarray, iters: int = 50) -> np.ndarray:
    """Scale each label's slice q[:, :, y] to rows p1y[:, y] and columns p2y[:, y].

    A few Sinkhorn sweeps, then Newton's method on the scaling potential of each slice:
    Sinkhorn alone can need thousands of sweeps when a slice's mass is spread over many
    orders of magnitude, Newton gets machine precision in a few steps from a near-feasible q.
    """
    q = q.copy()
    for _ in range(iters):
        r = q.sum(axis=1)
        q *= np.divide(p1y, r, out=np.zeros_like(r), where=r > 0)[:, None, :]
        c = q.sum(axis=0)
        q *= np.divide(p2y, c, out=np.zeros_like(c), where=c > 0)[None, :, :]
        if np.abs(q.sum(axis=1) - p1y).max() < 1e-16:
            return q
    for y in range(q.shape[2]):
        rows = np.flatnonzero(p1y[:, y] > 0)
        cols = np.flatnonzero(p2y[:, y] > 0)
        if len(rows) > 1 and len(cols) > 1:
            block = np.ix_(rows, cols, [y])
            q[block] = _newton_scale(q[block][:, :, 0], p1y[rows, y], p2y[cols, y])[..., None]
    return q


def _newton_scale(k: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """diag(e^u) k diag(e^v) with row sums r and column sums c (k > 0, sum r = sum c).

    Minimises the convex potential F(u, v) = sum k e^(u + v) - r.u - c.v by Newton steps with
    backtracking; v[0] is pinned to remove the shift invariance.
    """
    n1, n2 = k.shape
    u = np.zeros(n1)
    v = np.zeros(n2)
    for _ in range(30):
        m = k * np.exp(u[:, None] + v[None, :])
        gr = np.concatenate([m.sum(axis=1) - r, (m.sum(axis=0) - c)[1:]])
        if np.abs(gr).max() < 1e-17:
            break
        hess = np.zeros((n1 + n2 - 1, n1 + n2 - 1))
        hess[np.arange(n1), np.arange(n1)] = m.sum(axis=1)
        hess[n1:, n1:][np.diag_indices(n2 - 1)] = m.sum(axis=0)[1:]
        hess[:n1, n1:] = m[:, 1:]
        hess[n1:, :n1] = m[:, 1:].T
        try:
            step = -_Factor(hess).solve(gr)
        except BrojaSolverError:
            break
        du, dv = step[:n1], np.concatenate([[0.0], step[n1:]])
        f0 = m.sum() - r @ u - c @ v
        slope = float(gr @ step)
        alpha = 1.0
        for _ in range(30):
            un, vn = u + alpha * du, v + alpha * dv
            f1 = (k * np.exp(un[:, None] + vn[None, :])).sum() - r @ un - c @ vn
            if f1 <= f0 + 1e-4 * alpha * slope or abs(f1 - f0) < 1e-17:
                break
            alpha *= 0.5
        u, v = un, vn
    return k * np.exp(u[:, None] + v[None, :])


def _max_step(v: np.ndarray, dv: np.ndarray, mask: np.ndarray) -> float:
    """Largest step keeping v + step * dv >= 0 on `mask`."""
    neg = mask & (dv < 0)
    return float((-v[neg] / dv[neg]).min()) if neg.any() else np.inf


@dataclass
class _PDSystem:
    """One iteration's Newton system of the perturbed KKT conditions, reduced to z."""

    prob: _Dual
    factor: _Factor
    r_d: np.ndarray
    r_p: np.ndarray
    s: np.ndarray
    w: np.ndarray
    pi: np.ndarray

    def direction(self, r_c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dz, dlam, ds) for complementarity residual r_c."""
        prob, kmask = self.prob, self.prob.kmask
        rhs = -self.r_d - prob.jt(self.w * self.r_p - r_c / self.s, self.pi)
        d = np.zeros(len(rhs))
        d[prob.idx] = self.factor.solve(rhs[prob.idx])
        jd = prob.jdz(d, self.pi)
        dlam = np.where(kmask, self.w * (jd + self.r_p) - r_c / self.s, 0.0)
        return d, dlam, np.where(kmask, -self.r_p - jd, 0.0)


class _AugmentedPD:
    """One iteration's Newton system of the perturbed KKT conditions, in augmented form.

    Eliminating every dlam gives the normal equations (H_L + J^T (lam / s) J) dz = ...,
    whose weights lam / s grow like 1 / mu on the active constraints: near the optimum they
    bury the curvature that tiny masses contribute, and directions with it are lost to
    round-off (the gap then stalls around 1e-9 on near-deterministic joints). Here only the
    inactive constraints (lam_k / w_k <= s_k, small lam / s) are eliminated; the active ones
    keep dlam_k as an unknown with the small entry -s_k / lam_k on the diagonal. The system
    is quasi-definite, so an LU factorisation of its equilibrated form is stable.
    """

    def __init__(
        self,
        prob: _Dual,
        lam: np.ndarray,
        s: np.ndarray,
        pi: np.ndarray,
        r_d: np.ndarray,
        r_p: np.ndarray,
    ) -> None:
        kmask = prob.kmask
        self.prob, self.lam, self.s, self.pi, self.r_d, self.r_p = prob, lam, s, pi, r_d, r_p
        self.w = np.where(kmask, lam / s, 0.0)
        self.act = kmask & (lam > prob.weight * s)
        self.rows = np.flatnonzero(self.act.ravel())
        hess = prob.newton_matrix(lam, np.where(self.act, 0.0, self.w), pi)
        jac = prob.active_jacobian(pi, self.rows)
        corner = -np.diag((s / lam).ravel()[self.rows])
        mat = np.block([[hess, jac.T], [jac, corner]])
        if not np.isfinite(mat).all():
            raise BrojaSolverError("BROJA Newton matrix is not finite")
        # Symmetric equilibration: every row and column to unit max-norm.
        self.scale = np.ones(len(mat))
        for _ in range(6):
            rs = np.sqrt(np.abs(mat).max(axis=1))
            rs[rs == 0] = 1.0
            mat /= rs[:, None] * rs[None, :]
            self.scale /= rs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            self.factor = scipy.linalg.lu_factor(mat, check_finite=False)
        if not np.all(np.abs(np.diag(self.factor[0])) > 1e-300):
            raise BrojaSolverError("BROJA Newton matrix is singular")

    def direction(self, r_c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dz, dlam, ds) for complementarity residual r_c."""
        prob, kmask, act, rows = self.prob, self.prob.kmask, self.act, self.rows
        elim = np.where(kmask & ~act, self.w * self.r_p - r_c / self.s, 0.0)
        rhs = np.concatenate(
            [
                (-self.r_d - prob.jt(elim, self.pi))[prob.idx],
                (r_c / self.lam - self.r_p).ravel()[rows],
            ]
        )
        sol = self.scale * scipy.linalg.lu_solve(self.factor, self.scale * rhs, check_finite=False)
        d = np.zeros(len(self.r_d))
        d[prob.idx] = sol[: len(prob.idx)]
        jd = prob.jdz(d, self.pi)
        dlam = np.where(kmask, self.w * (jd + self.r_p) - r_c / self.s, 0.0)
        dlam.ravel()[rows] = sol[len(prob.idx) :]
        return d, dlam, np.where(kmask, -self.r_p - jd, 0.0)


def _mehrotra(
    prob: _Dual,
    tol: float,
    max_iter: int,
    start: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    augmented: bool = False,
    step_max: float = STEP_MAX,
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray] | None:
    """Infeasible primal-dual interior point (Mehrotra predictor-corrector) on the dual.

    The slacks s_k stand in for -g_k(z) and may disagree with it before convergence, which
    lets full Newton steps through the curved constraints. Returns the last iterate (lam, z,
    iterations, s) when converged or stalled (the caller certifies it), None if it broke down.
    """
    kmask, free, pm, wk = prob.kmask, prob.free, prob.pm, prob.weight
    if start is None:
        z = prob.start()
        g, pi = prob.constraints(z)
        s = np.where(kmask, -g, 1.0)
        lam = wk.copy()
    else:
        z, lam, s = start
        g, pi = prob.constraints(z)
    # Driving mu far below what the tolerance needs only ruins the conditioning of the
    # Newton matrix (lam / s explodes on active constraints) and stalls the residuals.
    mu_floor = 0.1 * tol
    history: list[float] = []
    for it in range(1, max_iter + 1):
        r_d = prob.jt(lam, pi) - pm  # primal infeasibility of q = lam * softmax
        r_d[~free] = 0.0
        r_p = np.where(kmask, g + s, 0.0)
        mu = float((lam * s)[kmask].sum())  # the weights sum to 1
        res = float(np.abs(r_d).sum() + np.abs(r_p).max())
        # `_evaluate` removes what is left of r_d and r_p at a cost the gap accounts for.
        if mu < 0.5 * tol and np.abs(r_p).max() < 1e-12 and np.abs(r_d).sum() < 1e-11:
            return lam, z, it, s
        history.append(mu + res)
        # The residual can jump when a step crosses curved constraints, and capped steps make
        # slow stretches, so judge progress over a window: no halving of the best value in
        # STALL iterations means stalled.
        if len(history) > STALL and min(history[-STALL:]) > 0.5 * min(history[:-STALL]):
            return lam, z, it, s
        try:
            if augmented:
                system = _AugmentedPD(prob, lam, s, pi, r_d, r_p)
            else:
                w = np.where(kmask, lam / s, 0.0)
                factor = _Factor(prob.newton_matrix(lam, w, pi))
                system = _PDSystem(prob, factor, r_d, r_p, s, w, pi)
        except BrojaSolverError:
            return lam, z, it, s
        direction = system.direction

        r_c = np.where(kmask, lam * s, 0.0)
        _, dl_aff, ds_aff = direction(r_c)
        a_aff = min(1.0, _max_step(lam, dl_aff, kmask), _max_step(s, ds_aff, kmask))
        mu_aff = float(((lam + a_aff * dl_aff) * (s + a_aff * ds_aff))[kmask].sum())
        sigma = min(1.0, (mu_aff / mu) ** 3)
        target = max(sigma * mu, mu_floor) * wk  # the weighted central path
        r_c = np.where(kmask, lam * s + dl_aff * ds_aff - target, 0.0)
        d, dlam, ds = direction(r_c)
        alpha = min(1.0, 0.99 * min(_max_step(lam, dlam, kmask), _max_step(s, ds, kmask)))
        # The linearisation of log-sum-exp is only good for moderate moves: cap the change of
        # every a + b at step_max (log units). Without the cap a nearly flat direction (dual
        # variables of masses ~1e-15) can throw the iterate thousands of units away.
        alpha = min(alpha, step_max / max(prob.max_move(d), 1e-300))
        z_new = z + alpha * d
        if not np.isfinite(z_new).all():
            return None
        z = z_new
        lam = np.where(kmask, lam + alpha * dlam, 0.0)
        s = np.where(kmask, s + alpha * ds, 1.0)
        g, pi = prob.constraints(z)
    return lam, z, max_iter, s


def _barrier(prob: _Dual, gap: float, max_iter: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Barrier method: minimise Phi_t(z) = -t D(z) - sum_k w_k log(-g_k(z)) for growing t.

    Damped Newton with backtracking on a convex barrier converges from any strictly feasible
    point. On the central path lam_k = w_k / (t s_k) and the duality gap is sum(w) / t = 1 / t.
    """
    kmask, pm, idx, wk = prob.kmask, prob.pm, prob.idx, prob.weight
    pm_f = pm[idx]
    z = prob.start()
    g, pi = prob.constraints(z)
    t = 1.0  # a gap of about 1 nat, the scale of the answer
    t_final = 1.0 / gap
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        s = np.where(kmask, -g, 1.0)
        ws = np.where(kmask, wk / s, 0.0)
        # The Hessian of Phi_t does not depend on t and its gradient is c - t pm, so one
        # factorisation gives the Newton step for any t.
        factor = _Factor(prob.newton_matrix(ws, ws / s, pi))
        c = prob.jt(ws, pi)[idx]
        uv = factor.solve(np.stack([c, pm_f], axis=1))
        u, v = uv[:, 0], uv[:, 1]
        qa, qb, qc = float(c @ u), float(pm_f @ u), float(pm_f @ v)
        dec = qa - 2 * t * qb + t * t * qc  # squared Newton decrement of Phi_t
        if t >= t_final and dec < 1e-8:
            break
        if dec < 0.5 and t < t_final:
            t = min(t * 20.0, t_final)
            dec = qa - 2 * t * qb + t * t * qc
        dz = np.zeros_like(z)
        dz[idx] = t * v - u
        # Backtracking on Phi_t, its change formed from differences to stay accurate when t
        # is large.
        alpha = 1.0
        for _ in range(60):
            g_new, pi_new = prob.constraints(z + alpha * dz)
            s_new = -g_new[kmask]
            if np.all(s_new > 0):
                change = -t * alpha * float(pm @ dz) - float(
                    (wk[kmask] * np.log(s_new / s[kmask])).sum()
                )
                if change <= -0.25 * alpha * dec:
                    break
            alpha *= 0.5
        else:
            break  # no progress possible at this precision
        z = z + alpha * dz
        g, pi = g_new, pi_new
    s = np.where(kmask, -g, 1.0)
    return np.where(kmask, wk / (t * s), 0.0), z, it
