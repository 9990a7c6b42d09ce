"""GaussianPID: exact answers (MMI, additivity, rotation invariance), samples, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

from estimators import GaussianPID, gaussian_pid, get_estimator
from estimators.gaussian import _objective, mi_bias_bits

ATOMS = ("redundancy", "unique1", "unique2", "synergy", "mutual_info")


def atoms(r) -> np.ndarray:
    return np.array([getattr(r, a) for a in ATOMS])


def random_system(dm: int, dx: int, dy: int, rng: np.random.Generator) -> np.ndarray:
    """Covariance of M, X = A M + Nx, Y = B M + Ny with correlated, non-white noises."""
    lm = rng.normal(size=(dm, dm))
    cm = lm @ lm.T + 0.1 * np.eye(dm)
    a = rng.normal(size=(dx, dm))
    b = rng.normal(size=(dy, dm))
    ln = rng.normal(size=(dx + dy, dx + dy))
    cn = ln @ ln.T + 0.1 * np.eye(dx + dy)  # correlated noise of X and Y
    h = np.vstack([a, b])
    top = np.hstack([cm, cm @ h.T])
    bottom = np.hstack([h @ cm, h @ cm @ h.T + cn])
    return np.vstack([top, bottom])


def mi_bits(c: np.ndarray, i: slice, j: slice) -> float:
    idx = np.r_[np.arange(c.shape[0])[i], np.arange(c.shape[0])[j]]
    sub = c[np.ix_(idx, idx)]
    ni = len(np.arange(c.shape[0])[i])
    return (
        0.5
        * (
            np.linalg.slogdet(sub[:ni, :ni])[1]
            + np.linalg.slogdet(sub[ni:, ni:])[1]
            - np.linalg.slogdet(sub)[1]
        )
        / np.log(2)
    )


@pytest.mark.parametrize("seed", range(12))
def test_scalar_target_equals_mmi(seed: int) -> None:
    rng = np.random.default_rng(seed)
    dx, dy = (int(v) for v in rng.integers(1, 9, size=2))
    c = random_system(1, dx, dy, rng)
    r = gaussian_pid(c, (1, dx, dy))
    m, x, y = slice(0, 1), slice(1, 1 + dx), slice(1 + dx, None)
    ix, iy = mi_bits(c, m, x), mi_bits(c, m, y)
    ixy = mi_bits(c, m, slice(1, None))
    assert r.redundancy == pytest.approx(min(ix, iy), abs=1e-4)
    assert r.unique1 == pytest.approx(ix - min(ix, iy), abs=1e-4)
    assert r.unique2 == pytest.approx(iy - min(ix, iy), abs=1e-4)
    assert r.mutual_info == pytest.approx(ixy, abs=1e-9)
    assert r.synergy == pytest.approx(ixy - max(ix, iy), abs=1e-4)


def test_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(3)
    hx, hy = rng.normal(size=(3, 3)), rng.normal(size=(4, 3))
    base = np.eye(3) + hy.T @ hy
    sig = 0.2 * rng.normal(size=(3, 4))
    f, g = _objective(sig, hx, hy, base)
    num = np.zeros_like(sig)
    for idx in np.ndindex(sig.shape):
        d = np.zeros_like(sig)
        d[idx] = 1e-6
        num[idx] = (
            _objective(sig + d, hx, hy, base)[0] - _objective(sig - d, hx, hy, base)[0]
        ) / 2e-6
    np.testing.assert_allclose(g, num, atol=1e-7)
    assert _objective(np.eye(3, 4) * 1.01, hx, hy, base) is None  # outside ||Sigma|| < 1


def block_diag_system(parts: list[tuple[np.ndarray, tuple[int, int, int]]]) -> tuple:
    """Covariance of independent subsystems stacked block-wise in (M, X, Y) order."""
    blocks = {k: [] for k in range(3)}
    for _, (dm, dx, dy) in parts:
        cuts = np.cumsum([0, dm, dx, dy])
        for k in range(3):
            blocks[k].append(np.arange(cuts[k], cuts[k + 1]))
    full = scipy.linalg.block_diag(*[c for c, _ in parts])
    offsets = np.cumsum([0] + [sum(d) for _, d in parts])
    order = []
    for k in range(3):
        for p, _ in enumerate(parts):
            order.extend(offsets[p] + blocks[k][p])
    out = full[np.ix_(order, order)]
    dims = tuple(sum(d[k] for _, d in parts) for k in range(3))
    return out, dims


@pytest.mark.parametrize("seed", range(4))
def test_additive_over_independent_blocks(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    parts = []
    for _ in range(3):
        d = tuple(int(v) for v in rng.integers(1, 4, size=3))
        parts.append((random_system(*d, rng), d))
    c, dims = block_diag_system(parts)
    whole = atoms(gaussian_pid(c, dims))
    summed = sum(atoms(gaussian_pid(ci, di)) for ci, di in parts)
    np.testing.assert_allclose(whole, summed, atol=1e-4)


def random_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


@pytest.mark.parametrize("seed", range(4))
def test_invariant_under_rotations_and_scalings(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    dims = (3, 4, 2)
    c = random_system(*dims, rng)
    t = scipy.linalg.block_diag(
        *[random_rotation(d, rng) * rng.uniform(0.5, 2.0, size=d) for d in dims]
    )
    np.testing.assert_allclose(
        atoms(gaussian_pid(c, dims)), atoms(gaussian_pid(t @ c @ t.T, dims)), atol=1e-5
    )


def test_redundant_copy_and_independent_sources() -> None:
    # X = Y = M + one shared noise: all information is redundant
    c = np.array([[1.0, 1.0, 1.0], [1.0, 1.5, 1.5], [1.0, 1.5, 1.5]])
    c[1:, 1:] += np.eye(2) * 1e-9  # regularise the identical copies
    r = gaussian_pid(c, (1, 1, 1))
    assert r.redundancy == pytest.approx(r.mutual_info, abs=1e-4)
    assert r.synergy == pytest.approx(0.0, abs=1e-4)
    # X independent of M: only Y's information, unique to Y
    c = np.array([[1.0, 0.0, 0.8], [0.0, 1.0, 0.0], [0.8, 0.0, 1.0]])
    r = gaussian_pid(c, (1, 1, 1))
    assert r.unique2 == pytest.approx(r.mutual_info, abs=1e-9)
    assert r.redundancy == pytest.approx(0.0, abs=1e-9)


def test_doubling_example_is_exact_at_moderate_size() -> None:
    d = 32
    k = d // 2
    hx = np.kron(np.eye(k), np.diag([2.0, 1.0]))
    hy = np.kron(np.eye(k), np.diag([1.0, np.sqrt(2.0)]))
    eye = np.eye(d)
    c = np.block(
        [[eye, hx.T, hy.T], [hx, hx @ hx.T + eye, hx @ hy.T], [hy, hy @ hx.T, hy @ hy.T + eye]]
    )
    rng = np.random.default_rng(0)
    t = scipy.linalg.block_diag(*[random_rotation(d, rng) for _ in range(3)])
    r = gaussian_pid(t @ c @ t.T, (d, d, d))
    expected = np.zeros(4)
    for a, b in ((2.0, 1.0), (1.0, np.sqrt(2.0))):
        ix, iy = 0.5 * np.log2(1 + a * a), 0.5 * np.log2(1 + b * b)
        red = min(ix, iy)
        expected += [red, ix - red, iy - red, 0.5 * np.log2(1 + a * a + b * b) - ix - iy + red]
    np.testing.assert_allclose(atoms(r)[:4], k * expected, atol=1e-5)


GPID = Path(__file__).parent / "fixtures" / "fidelity" / "gpid"


def _gpid_systems() -> list[tuple[np.ndarray, tuple[int, int, int], dict[str, float]]]:
    with np.load(GPID.with_suffix(".npz")) as z:
        fields = [str(f) for f in z["fields"]]
        return [
            (cov[: sum(d), : sum(d)], tuple(int(v) for v in d), dict(zip(fields, out, strict=True)))
            for cov, d, out in zip(z["cov"], z["dims"], z["outputs"], strict=True)
        ]


def test_gpid_fixture_names_the_authors_repository_and_commit() -> None:
    meta = json.loads(GPID.with_suffix(".json").read_text())
    assert meta["repository"] == "praveenv253/gpid"
    assert len(meta["commit"]) == 40 and int(meta["commit"], 16) >= 0
    assert len(_gpid_systems()) == meta["systems"] >= 8


@pytest.mark.parametrize("case", range(8))
def test_vector_target_matches_the_authors_code(case: int) -> None:
    """Vector M, neither source a degraded copy: the union information needs the optimiser.

    Reference: `exact_gauss_tilde_pid` of praveenv253/gpid, run by
    tools/fidelity/make_fixtures_gpid.py. There the union information exceeds the larger
    single-source MI (the scalar-M closed form) by at least 0.04 bits.
    """
    cov, dims, ref = _gpid_systems()[case]
    assert ref["union"] - max(ref["imx"], ref["imy"]) >= 0.04  # the fixture's premise
    r = gaussian_pid(cov, dims)
    expected = [ref["ri"], ref["uix"], ref["uiy"], ref["si"], ref["imxy"]]
    np.testing.assert_allclose(atoms(r), expected, atol=1e-4)
    # a minimum: ours may only be lower than the authors' (their solver stops earlier)
    union = r.redundancy + r.unique1 + r.unique2
    assert union <= ref["union"] + 1e-6


def test_samples_with_bias_correction_approach_the_truth() -> None:
    rng = np.random.default_rng(7)
    dims = (2, 6, 6)
    c = random_system(*dims, rng)
    truth = atoms(gaussian_pid(c, dims))
    data = rng.multivariate_normal(np.zeros(sum(dims)), c, size=400)
    m, x, y = np.split(data, np.cumsum(dims)[:2], axis=1)
    raw = atoms(GaussianPID(bias_correction=False).fit(m, x, y).pid_)
    est = GaussianPID(n_bootstrap=30, random_state=0).fit(m, x, y)
    corrected = atoms(est.pid_)
    # the plug-in overestimates I(M; X, Y); the correction removes most of it
    assert raw[4] > truth[4]
    assert abs(corrected[4] - truth[4]) < abs(raw[4] - truth[4])
    assert raw[4] - corrected[4] == pytest.approx(mi_bias_bits(2, 12, 400), rel=1e-9)
    lo, hi = est.ci_["mutual_info"]
    assert lo < corrected[4] < hi
    assert est.pid_.ci is not None and est.pid_.n_samples == 400
    again = GaussianPID(n_bootstrap=30, random_state=0).fit(m, x, y)
    assert again.ci_ == est.ci_


def test_fit_covariance_matches_function_and_registry() -> None:
    rng = np.random.default_rng(1)
    c = random_system(2, 3, 3, rng)
    est = get_estimator("gaussian")().fit_covariance(c, dims=(2, 3, 3))
    assert est is not None and est.ci_ is None
    np.testing.assert_allclose(atoms(est.pid_), atoms(gaussian_pid(c, (2, 3, 3))))
    assert est.synergy_ == est.pid_.synergy and est.pid_.measure == "gaussian"


@pytest.mark.parametrize(
    ("cov", "dims", "match"),
    [
        (np.eye(4), (1, 1, 1), "add up to 3 but the covariance is 4 x 4"),
        (np.eye(3), (1, 2), "three positive integers"),
        (np.eye(3), (0, 2, 1), "three positive integers"),
        (np.eye(3), (1.5, 1, 1), "three positive integers"),
        (np.diag([1.0, -1.0, 1.0]), (1, 1, 1), "not positive semi-definite"),
        (np.array([[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]]), (1, 1, 1), "not symmetric"),
        (np.ones((3, 2)), (1, 1, 1), "square"),
        (np.full((3, 3), np.nan), (1, 1, 1), "NaN"),
        (np.array([[1.0, 1.0, 0], [1.0, 1.0, 0], [0, 0, 1]]), (1, 1, 1), "singular"),
    ],
)
def test_bad_covariances(cov, dims, match) -> None:
    with pytest.raises(ValueError, match=match):
        GaussianPID().fit_covariance(cov, dims)


def test_psd_check_tolerance() -> None:
    """The Cholesky-based check accepts PSD (even singular) covariances and round-off below
    its tolerance, and rejects a negative eigenvalue beyond it, naming it."""
    from estimators.gaussian import check_covariance

    for low in (0.0, -1e-12):
        c, _ = check_covariance(np.diag([1.0, low, 1.0]), (1, 1, 1))
        assert c[1, 1] == low
    rot = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    with pytest.raises(ValueError, match="smallest eigenvalue -0.001"):
        check_covariance(rot @ np.diag([1.0, -1e-3, 2.0]) @ rot.T, (1, 1, 1))


def test_bad_samples_and_parameters() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="needs more samples than dimensions: 10 samples"):
        GaussianPID().fit(
            rng.normal(size=(10, 2)), rng.normal(size=(10, 4)), rng.normal(size=(10, 4))
        )
    with pytest.raises(ValueError, match="mismatched sample counts"):
        GaussianPID().fit(rng.normal(size=50), rng.normal(size=50), rng.normal(size=49))
    with pytest.raises(ValueError, match="n_bootstrap must be an integer >= 0"):
        GaussianPID(n_bootstrap=-1).fit_covariance(np.eye(3), (1, 1, 1))
    with pytest.raises(ValueError, match="ci_level"):
        GaussianPID(ci_level=1.5).fit_covariance(np.eye(3), (1, 1, 1))


def test_gaussian_generator_latent_truth_matches_samples() -> None:
    import generators

    ds = generators.make("gaussian", latent_dim=2, proj_dim=3, noise=0.7, n_train=20000, seed=1)
    truth = ds.latent_gaussian_pid
    assert set(truth) == {"r", "u1", "u2", "s1", "s2"}
    # structure: z_r is seen by both, the others by one modality only
    assert truth["r"].redundancy > 0.5
    assert truth["u1"].unique1 == pytest.approx(truth["u1"].mutual_info, abs=1e-9)
    assert truth["s2"].unique2 == pytest.approx(truth["s2"].mutual_info, abs=1e-9)
    tr = ds.train
    for f, exact in truth.items():
        est = GaussianPID().fit(tr.latents[f], tr.x1, tr.x2).pid_
        np.testing.assert_allclose(atoms(est), atoms(exact), atol=0.05, err_msg=f)
    assert generators.make("gaussian", noise=0.0, n_train=10, n_test=10).latent_gaussian_pid == {}


def test_latent_truth_survives_save_and_load(tmp_path) -> None:
    import generators
    from generators.io import load_npz, save_npz

    ds = generators.make("gaussian", latent_dim=2, proj_dim=3, n_train=50, n_test=20)
    back = load_npz(save_npz(ds, tmp_path / "g.npz"))
    assert back.latent_gaussian_pid["r"].redundancy == pytest.approx(
        ds.latent_gaussian_pid["r"].redundancy
    )
