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
size. The constraint multipliers are the primal solution: q(x1, x2, y) = lam_k softmax_y(a + b).

Interior-point variants:

- `_mehrotra`: infeasible primal-dual predictor-corrector, 10-25 iterations, used first. Its
  steps are capped so that no a + b moves more than a few log units at once (the
  linearisation of log-sum-exp is poor beyond that; uncapped, nearly flat directions threw
  iterates thousands of units away on joints with masses of 1e-15).
- If that run ends uncertified, `_refine` goes on from its last iterate with smaller steps and
  (dense path) the augmented Newton systems of `_AugmentedPD`, which keep the multipliers of
  the active constraints as unknowns instead of folding them in with weights ~1 / mu that
  bury the curvature of tiny masses.
- `_barrier`: classic barrier path-following with damped Newton steps on a strictly feasible
  dual point. Globally convergent, ~3x slower; the last resort, handing back to `_mehrotra`
  near the optimum.

The Newton matrix, restricted to the free dual variables (one b per label is pinned to remove
the dual's invariance a(., y) += c, b(., y) -= c), is

    H = sum_k lam_k diag(pi_k) (x) E_k + (w_k - lam_k) (pi_k pi_k^T) (x) E_k,

with pi_k = softmax of block k and E_k coupling a(x1, .) and b(x2, .): block-diagonal over x1
and over x2 (ny x ny blocks) plus a coupling per block k. Two ways to solve with it:

- dense (small joints): H is assembled, order (n1 + n2) * ny, and factorised by Cholesky;
  memory and time grow like ((n1 + n2) * ny)^2 and ^3 (100x100x100: 3 GB per copy).
- structured (large joints, `_Structured` and `_PCG`): H is never formed. Products with H cost
  a few passes over the joint. Conjugate gradients are preconditioned by D + the rank-one
  terms of the strong blocks (the active ones near the optimum), where D, the lam_k
  diag(pi_k) part, is per label a bipartite graph between the a(., y) and the b(., y): the
  a(., y) are eliminated and an n2 x n2 Cholesky factor per label is kept (the smaller source
  second), and the strong rank-one terms enter through the Woodbury identity with a dense
  capacitance matrix, one row per strong block. Memory: ~30 arrays the size of the joint, ny *
  n2^2 numbers, and two copies of the capacitance (at most 0.15 times (n1 + n2) * ny strong
  blocks on 100x100x100, 0.43 on 128x128x16, 1.7 on 128x128x4; capped by `strong_cap`).
  100x100x100 solves in about 15 s and 0.4 GB instead of not finishing in 12.8 GB.

`solve_broja` picks the path from the shape (`use_structured`), retries a structured solve that
falls short on the dense path when that is cheap, and refuses before any work, with
`InsufficientMemoryError` (a ValueError), a joint whose estimated need (`memory_needed`)
exceeds the available memory.

Nothing is trusted: q is made exactly feasible (matrix scaling of each label's slice), the
dual point is made exactly feasible (a shift), and f(q) - D(a, b) then bounds the
suboptimality. Answers that cannot be certified raise `BrojaSolverError`.

This module is over the house's 500-line limit on purpose (issue 28 allows it for this kernel):
it is one algorithm, the dual interior-point method, whose pieces call each other both ways
(`_Dual.newton_solver` builds `_Factor`, `_Structured` or `_PCG`, which read the `_Dual` they
were built from; `_mehrotra`, `_refine` and `_barrier` hand iterates to each other), and the
certificate depends on every step. Splitting it would put one solver's halves in two files.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
from scipy.special import xlogy
from threadpoolctl import ThreadpoolController

from estimators import _validate
from estimators._validate import check_joint, check_memory

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
#: Newton solve methods of `solve_broja`; "auto" picks dense for Newton matrices of order
#: (n1 + n2) * ny up to DENSE_MIN_ORDER, and up to DENSE_MAX_ORDER when n1 * n2 >= the order.
METHODS = ("auto", "dense", "structured")
DENSE_MIN_ORDER = 600
DENSE_MAX_ORDER = 1200
#: Largest order at which "auto" retries a structured solve that falls short on the dense path.
DENSE_FALLBACK_ORDER = 3000
#: Fixed overhead (bytes) counted in every memory estimate, on top of what is in use.
BASE_BYTES = 32 * 2**20
#: Structured Newton solves: relative residual (preconditioner norm) and iteration cap of
#: conjugate gradients, and the strength c_k v_k^T D^-1 v_k above which a block's rank-one
#: term goes into the preconditioner.
CG_TOL = 1e-11
CG_MAX_ITER = 500
STRONG = 300.0

# The Newton systems are small (<= ~1000 unknowns). Multi-threaded BLAS gains little on them
# and, on a machine whose cores are busy, spin-waiting threads slow them down 10-100x.
_THREADS = ThreadpoolController()


def strong_cap(shape: tuple[int, int, int]) -> int:
    """Most strong blocks the structured preconditioner keeps (its capacitance is cap^2).

    The strong blocks end up being the active ones; in tests they peaked (mid-way) at 0.15 to
    0.5 times the dual variables (n1 + n2) * ny on joints from 40x40x10 to 100x100x100, and
    at 1.7 times on 128x128x4. Beyond the cap the strongest are kept and conjugate gradients
    take more iterations.
    """
    n1, n2, ny = shape
    return int(min(n1 * n2, (n1 + n2) * ny // 4 + 2000))


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


def solve_broja(
    p: object, *, max_iter: int = 200, tol: float = GAP_TOL, method: str = "auto"
) -> BrojaSolution:
    """Minimise -H_q(Y | X1, X2) over q in Delta_p for a joint p[x1, x2, y].

    p: a joint distribution (validated like `pid` does). max_iter: iteration cap of each
    interior-point phase. tol: duality gap (nats) to aim for. method: how the Newton systems
    are solved: "dense" (Cholesky of the full matrix, fastest on small joints), "structured"
    (conjugate gradients on the factored matrix, for large joints) or "auto" (dense on small
    joints, see `use_structured`).
    Values of x1, x2 or y with zero probability are dropped before solving and get zero mass
    in q. Raises `BrojaSolverError` if the optimum cannot be certified to `GAP_FAIL` nats, and
    `InsufficientMemoryError` (a ValueError), before any work, if the solve would need more
    memory than is available.
    """
    p = check_joint(p)
    if method not in METHODS:
        raise ValueError(f"unknown BROJA method {method!r}; valid methods: {', '.join(METHODS)}")
    keep = [p.sum(axis=tuple(j for j in range(3) if j != i)) > 0 for i in range(3)]
    sub = np.ix_(*keep)
    pr = np.ascontiguousarray(p[sub])
    structured = use_structured(pr.shape, method)
    check_memory(memory_needed(pr.shape, structured), f"BROJA on a joint of shape {pr.shape}")
    with _THREADS.limit(limits=1, user_api="blas"):
        if structured:
            try:
                qr, value, gap, its = _solve_structured(pr, max_iter, tol)
            except BrojaSolverError:
                if not (method == "auto" and _dense_fallback(pr.shape)):
                    raise
                gap = np.inf
            # The dense path has better-conditioned (augmented) Newton systems for the hard
            # joints; take it when the structured one falls short and it fits in memory.
            if gap > 10 * tol and method == "auto" and _dense_fallback(pr.shape):
                qr, value, gap, its = _solve(pr, max_iter, tol)
        else:
            qr, value, gap, its = _solve(pr, max_iter, tol)
    q = np.zeros_like(p)
    q[sub] = qr
    return BrojaSolution(q=q, value=value, gap=gap, iterations=its)


def _solve_structured(
    p: np.ndarray, max_iter: int, tol: float
) -> tuple[np.ndarray, float, float, int]:
    """`_solve` on the structured path, with the smaller source second.

    The structured preconditioner eliminates the a(x1, .) and keeps an n2 x n2 factor per
    label, so the joint is transposed when n2 > n1 (and the answer transposed back).
    """
    if p.shape[1] <= p.shape[0]:
        return _solve(p, max_iter, tol, structured=True)
    q, value, gap, its = _solve(
        np.ascontiguousarray(p.transpose(1, 0, 2)), max_iter, tol, structured=True
    )
    return q.transpose(1, 0, 2), value, gap, its


def _dense_fallback(shape: tuple[int, int, int]) -> bool:
    """Whether a failed structured solve may be retried dense: small enough to take seconds
    (order (n1 + n2) * ny up to DENSE_FALLBACK_ORDER) and its memory estimate available."""
    n1, n2, ny = shape
    if (n1 + n2) * ny > DENSE_FALLBACK_ORDER:
        return False
    avail = _validate.available_memory()
    return avail is None or memory_needed(shape, False) <= avail


def use_structured(shape: tuple[int, int, int], method: str = "auto") -> bool:
    """Whether `solve_broja` takes the structured path for a joint of this (reduced) shape."""
    n1, n2, ny = shape
    if method == "auto":
        order = (n1 + n2) * ny
        # Dense Cholesky wins on small systems, and up to DENSE_MAX_ORDER when blocks are
        # many next to labels (wide joints), where the structured preconditioner holds many
        # strong blocks.
        return order > DENSE_MAX_ORDER or (order > DENSE_MIN_ORDER and n1 * n2 < order)
    return method == "structured"


def memory_needed(shape: tuple[int, int, int], structured: bool) -> int:
    """Bytes a BROJA solve of a joint of this (reduced) shape needs at its peak (an estimate).

    Dense: the Newton matrix of order (n1 + n2) * ny and its copies, and the n1 * n2 * ny^2
    cross terms assembled into it. Structured: about 30 arrays the size of the joint, the n2 x
    n2 factor per label and its companions, and two copies of the capacitance matrix of the
    strong blocks (`strong_cap`). Memory already in use (Python, numpy) is not counted.
    """
    n1, n2, ny = (int(v) for v in shape)
    joint = n1 * n2 * ny
    if not structured:
        order = (n1 + n2) * ny
        return 8 * (6 * order * order + 2 * joint * ny + 30 * joint) + BASE_BYTES
    small, large = min(n1, n2), max(n1, n2)
    per_label = ny * (3 * small * small + 3 * small * large)
    cap = strong_cap(shape)
    return 8 * (30 * joint + per_label + 2 * cap * cap) + BASE_BYTES


class _Dual:
    """The dual program of one joint (no empty values): structure, constraints, Newton matrix.

    Dual variables z = (a, b) are stored padded, a (n1, ny) then b (n2, ny); only the `free`
    entries move. Each label's support is a complete bipartite graph, so the dual is invariant
    under a(., y) += c_y, b(., y) -= c_y and nothing else: pinning one b per label removes it.
    """

    def __init__(self, p: np.ndarray, structured: bool = False) -> None:
        n1, n2, ny = p.shape
        self.shape = p.shape
        self.structured = structured
        self.p1y = p.sum(axis=1)  # p(x1, y)
        self.p2y = p.sum(axis=0)  # p(x2, y)
        self.act1 = self.p1y > 0
        self.act2 = self.p2y > 0
        self.support = self.act1[:, None, :] & self.act2[None, :, :]
        self.kmask = self.support.any(axis=2)
        # The b(x2, y) fixed at 0, one per label: the heaviest, so that the Newton systems with
        # it removed stay well conditioned.
        self.pinned = np.argmax(self.p2y, axis=0)
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

    def newton_solver(self, lam: np.ndarray, w: np.ndarray, pi: np.ndarray) -> _Factor | _PCG:
        """Solver of the Newton matrix of `newton_matrix` (restricted to the free variables)."""
        if self.structured:
            return _PCG(_Structured(self, lam, w, pi))
        return _Factor(self.newton_matrix(lam, w, pi), overwrite=True)

    def hess_vec(self, lam: np.ndarray, c: np.ndarray, pi: np.ndarray, d: np.ndarray) -> np.ndarray:
        """The Newton matrix with w = lam + c times d (padded vectors), without forming it."""
        da, db = self.split(d)
        u = np.where(self.support, da[:, None, :] + db[None, :, :], 0.0)
        t = (pi * u).sum(axis=2)
        hv = pi * (lam[..., None] * u + (c * t)[..., None])
        out = np.concatenate([hv.sum(axis=1).ravel(), hv.sum(axis=0).ravel()])
        out[~self.free] = 0.0
        return out

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

    def __init__(self, mat: np.ndarray, overwrite: bool = False) -> None:
        diag = np.diag(mat).copy()
        if not (np.isfinite(diag).all() and (diag > 0).all()):
            raise BrojaSolverError("BROJA Newton matrix is not positive definite")
        self.scale = 1.0 / np.sqrt(diag)
        scaled = mat if overwrite else mat.copy()
        scaled *= self.scale[:, None]
        scaled *= self.scale[None, :]
        if not np.isfinite(scaled).all():
            raise BrojaSolverError("BROJA Newton matrix is not finite")
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


class _Structured:
    """The Newton matrix of one iteration, kept in its factored form for the large joints.

    With q = lam * softmax and c = w - lam, the matrix is D + sum_k c_k v_k v_k^T, where
    v_k = softmax_k placed on a(x1, .) and b(x2, .) of block k = (x1, x2), and D = sum_k
    lam_k diag(softmax_k) on the same places: per label y a weighted bipartite graph between
    the a(., y) and the b(., y), with edge weights q(x1, x2, y). Products with the matrix cost
    a few passes over the joint. The preconditioner keeps D exactly (per label, the a(., y)
    are eliminated, leaving an n2 x n2 Cholesky factor: n2^2 * ny numbers) and the rank-one
    terms of the strong blocks, those whose c_k v_k v_k^T dominates D on their variables
    (near the optimum: the active blocks, c_k ~ lam_k / s_k), through the Woodbury identity
    with a |strong| x |strong| capacitance matrix. The other rank-one terms change the
    spectrum by a bounded factor, so conjugate gradients converge in tens of iterations even
    when the matrix itself has a condition number of 1e13.
    """

    def __init__(self, prob: _Dual, lam: np.ndarray, w: np.ndarray, pi: np.ndarray) -> None:
        n1, n2, ny = prob.shape
        self.prob, self.lam, self.pi = prob, lam, pi
        self.c = np.where(prob.kmask, w - lam, 0.0)
        self.fa = prob.free[: prob.na].reshape(n1, ny)
        self.fb = prob.free[prob.na :].reshape(n2, ny)
        qt = (lam[..., None] * pi).transpose(2, 0, 1).copy()  # q[y, x1, x2]
        da = qt.sum(axis=2)  # (ny, n1)
        db = qt.sum(axis=1)  # (ny, n2)
        if not (np.isfinite(qt).all() and np.isfinite(self.c).all()):
            raise BrojaSolverError("BROJA Newton matrix is not finite")
        fa_t, fb_t = self.fa.T, self.fb.T
        # An isolated variable (all its cells underflowed) gets a unit diagonal in D.
        self.dainv = np.where(fa_t, 1.0 / np.where(da > 0, da, 1.0), 0.0)
        self.qt = qt
        self.h = qt * self.dainv[:, :, None]  # rows q(x1, ., y) / q(x1, y): D^-1 Q
        schur = -np.matmul(qt.transpose(0, 2, 1), self.h)  # -Q^T Da^-1 Q, (ny, n2, n2)
        ar = np.arange(n2)
        schur[:, ar, ar] += np.where(fb_t & (db > 0), db, 1.0)
        out = ~fb_t
        schur[np.broadcast_to(out[:, :, None], schur.shape)] = 0.0
        schur[np.broadcast_to(out[:, None, :], schur.shape)] = 0.0
        schur[:, ar, ar] = np.where(out, 1.0, schur[:, ar, ar])
        self.sinv = _batched_spd_inverse(schur)
        self.sinv[np.broadcast_to(out[:, :, None], schur.shape)] = 0.0
        self.sinv[np.broadcast_to(out[:, None, :], schur.shape)] = 0.0
        self._strong(da.T, db.T)

    def _strong(self, da: np.ndarray, db: np.ndarray) -> None:
        """Pick the strong blocks and factor the Woodbury capacitance matrix."""
        prob, pi, c = self.prob, self.pi, self.c
        n1, n2, ny = prob.shape
        with np.errstate(divide="ignore"):
            inv = (
                np.where(self.fa, 1.0 / da, 0.0)[:, None, :]
                + np.where(self.fb, 1.0 / db, 0.0)[None, :, :]
            )
        rho = c * (pi * pi * np.where(np.isfinite(inv), inv, 0.0)).sum(axis=2)
        cand = np.flatnonzero((prob.kmask & (c > 0) & (rho > STRONG)).ravel())
        cap = strong_cap(prob.shape)
        if len(cand) > cap:
            cand = cand[np.argsort(rho.ravel()[cand])[-cap:]]
        cand.sort()
        self.n_strong = len(cand)
        if not len(cand):
            return
        x1, x2 = np.divmod(cand, n2)
        ps = pi[x1, x2]  # (S, ny)
        self.x1s, self.x2s, self.ps = x1, x2, ps
        self.psb = ps * self.fb[x2]  # the b-part of v_k (pinned entries dropped)
        ones, ks = np.ones(len(cand)), np.arange(len(cand))
        self.inc1 = scipy.sparse.csr_matrix((ones, (x1, ks)), shape=(n1, len(cand)))
        self.inc2 = scipy.sparse.csr_matrix((ones, (x2, ks)), shape=(n2, len(cand)))
        # K[k, k'] = sum_y pi_k pi_k' [delta_x1x1' / q(x1, y) + (h_x1 - e_x2)^T Sinv (h_x1' -
        # e_x2')]; the terms through e_x2' are gathered per x2', the others per x1'. Every
        # factor is laid out [column group, row variable, y] so that gathers copy rows.
        b_mat = np.matmul(self.sinv, self.h.transpose(0, 2, 1))  # Sinv h_x1, (ny, n2, n1)
        cap_mat = np.zeros((len(cand), len(cand)))
        cap_mat[np.diag_indices(len(cand))] = 1.0 / c.ravel()[cand]
        sinv_t = self.sinv.transpose(1, 2, 0).copy()  # [x2', x2, y] (Sinv is symmetric)
        b_t = b_mat.transpose(1, 2, 0).copy()  # [x2', x1, y]
        order2 = np.argsort(x2, kind="stable")
        bounds2 = np.searchsorted(x2[order2], np.arange(n2 + 1))
        for j in range(n2):
            cols = order2[bounds2[j] : bounds2[j + 1]]
            if len(cols):
                v = sinv_t[j][x2] - b_t[j][x1]
                v *= ps
                cap_mat[cols] += self.psb[cols] @ v.T  # K^T is built: rows scatter fast
        del sinv_t
        b_t = b_mat.transpose(2, 1, 0).copy()  # [x1', x2, y]
        bounds1 = np.searchsorted(x1, np.arange(n1 + 1))  # x1 is sorted
        chunk = max(1, n2)  # h^T Sinv h in column chunks: ny * n1 * chunk numbers at a time
        for start in range(0, n1, chunk):
            stop = min(n1, start + chunk)
            block = np.matmul(self.h, b_mat[:, :, start:stop]).transpose(2, 1, 0).copy()
            for i in range(start, stop):
                cols = np.arange(bounds1[i], bounds1[i + 1])
                if not len(cols):
                    continue
                v = block[i - start][x1] - b_t[i][x2]
                v[cols] += self.dainv[:, i]
                v *= ps
                cap_mat[cols] += ps[cols] @ v.T
        # Symmetric up to round-off; the Cholesky factorisation reads one triangle.
        self.cap = _Factor(cap_mat, overwrite=True)

    def dinv(self, r: np.ndarray) -> np.ndarray:
        """D^-1 r for a padded vector r (zero on fixed entries)."""
        ra, rb = self.prob.split(r)
        t = ra.T * self.dainv  # (ny, n1)
        rhs = rb.T - np.matmul(t[:, None, :], self.qt)[:, 0, :]
        xb = np.matmul(self.sinv, rhs[:, :, None])[:, :, 0]  # (ny, n2)
        xa = (ra.T - np.matmul(self.qt, xb[:, :, None])[:, :, 0]) * self.dainv
        return np.concatenate([xa.T.ravel(), xb.T.ravel()])

    def precondition(self, r: np.ndarray) -> np.ndarray:
        """(D + strong rank-one terms)^-1 r, through the Woodbury identity."""
        x = self.dinv(r)
        if not self.n_strong:
            return x
        xa, xb = self.prob.split(x)
        u = (self.ps * xa[self.x1s]).sum(axis=1) + (self.psb * xb[self.x2s]).sum(axis=1)
        t = self.cap.solve(u)
        fa = self.inc1 @ (self.ps * t[:, None])
        fb = self.inc2 @ (self.psb * t[:, None])
        return x - self.dinv(np.concatenate([fa.ravel(), fb.ravel()]))

    def matvec(self, d: np.ndarray) -> np.ndarray:
        return self.prob.hess_vec(self.lam, self.c, self.pi, d)


def _batched_spd_inverse(mats: np.ndarray) -> np.ndarray:
    """Inverses of a stack of symmetric positive definite matrices, equilibrated first."""
    diag = np.diagonal(mats, axis1=1, axis2=2)
    if not (np.isfinite(mats).all() and (diag > 0).all()):
        raise BrojaSolverError("BROJA Newton matrix is not positive definite")
    sc = 1.0 / np.sqrt(diag)
    scaled = mats * sc[:, :, None] * sc[:, None, :]
    eye = np.eye(mats.shape[1])
    for ridge in (0.0, 1e-14, 1e-12, 1e-10):
        try:
            chol = np.linalg.cholesky(scaled + ridge * eye)
            break
        except np.linalg.LinAlgError:
            continue
    else:
        raise BrojaSolverError("BROJA Newton matrix is not positive definite")
    linv = np.linalg.inv(chol)
    return np.matmul(linv.transpose(0, 2, 1), linv) * sc[:, :, None] * sc[:, None, :]


class _PCG:
    """Conjugate gradients on the free variables, with the `_Structured` preconditioner."""

    def __init__(self, op: _Structured) -> None:
        self.op = op
        self.iterations = 0

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        if rhs.ndim == 2:
            return np.stack([self.solve(col) for col in rhs.T], axis=1)
        prob = self.op.prob
        r = np.zeros(len(prob.pm))
        r[prob.idx] = rhs
        x = np.zeros_like(r)
        z = self.op.precondition(r)
        d = z.copy()
        rz = float(r @ z)
        stop = (CG_TOL**2) * rz
        for _ in range(CG_MAX_ITER):
            if not rz > stop:
                break
            hd = self.op.matvec(d)
            curv = float(d @ hd)
            if not curv > 0:
                break
            alpha = rz / curv
            x += alpha * d
            r -= alpha * hd
            z = self.op.precondition(r)
            rz_new = float(r @ z)
            d = z + (rz_new / rz) * d
            rz = rz_new
            self.iterations += 1
        if not np.isfinite(x).all():
            raise BrojaSolverError("BROJA Newton step is not finite")
        return x[prob.idx]


@dataclass
class _Candidate:
    q: np.ndarray
    value: float
    gap: float


def _solve(
    p: np.ndarray, max_iter: int, tol: float, structured: bool = False
) -> tuple[np.ndarray, float, float, int]:
    prob = _Dual(p, structured)
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
                prob,
                tol,
                min(max_iter, PD_MAX_ITER),
                start=(z, lam, s),
                augmented=not prob.structured,
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
    """The primal-dual method with capped steps (and, on the dense path, augmented systems),
    from the last iterate of a first run.

    Slacks below the constraint values are raised to them; if the run breaks down, the first
    run's iterate is returned with no iterations added.
    """
    lam, z, _, s = last
    g = prob.constraints(z)[0]
    s = np.where(prob.kmask, np.maximum(-g, s), 1.0)
    lam = np.where(prob.kmask, np.maximum(lam, 1e-300), 0.0)
    out = _mehrotra(
        prob, tol, min(max_iter, PD_MAX_ITER), start=(z, lam, s), augmented=not prob.structured
    )
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
    factor: _Factor | _PCG
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
                factor = prob.newton_solver(lam, w, pi)
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
        factor = prob.newton_solver(ws, ws / s, pi)
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
