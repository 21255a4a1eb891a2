"""The projected sampler (issue 18): one step against its NumPy reference on given draws, the basis
and the factor in degenerate cases, the same law as the direct sampler (one step's gradients and
updated order parameters, and whole trajectories, by two-sample tests with a stated false-alarm
rate and a control that they can fail), reproducibility, checkpoints, the choice of ``auto`` and
bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import fastslow as fs
from fastslow import _core
from fastslow import reference as ref
from fastslow.samplers import choose_sampler, step_cost

from test_sgd import _checkpoint_at, _fields, _reference_functions

T = _core._testing
MODEL = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=0.7, lr_a=0.3, noise=0.1)
NP = {"float32": np.float32, "float64": np.float64}


def _trainer(d, n, B, dtype="float64", sampler="projected", model=MODEL, **kw):
    args = dict(dt=0.1, a0=0.8, m0=0.3, seed=3, threads=1) | kw
    return fs.SGDTrainer(model, d=d, n=n, batch=B, dtype=dtype, sampler=sampler, **args)


# --- one step on given draws against the reference -------------------------------------------------
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-11), ("float32", 3e-4)])
@pytest.mark.parametrize("d,n,B", [(40, 6, 50), (5, 6, 30), (300, 17, 200), (1100, 70, 2500)])
def test_step_matches_reference(d, n, B, dtype, rtol):
    """(1100, 70, 2500): several row, column and neuron blocks; (5, 6, 30): the identity basis."""
    tr = _trainer(d, n, B, dtype, threads=2)
    W0, a0, theta = tr.W.copy(), tr.a.copy(), tr.theta.copy()
    rng = np.random.default_rng(1)
    k = min(d, n + 1)
    Z, Xi, xi = (rng.standard_normal(s).astype(NP[dtype]) for s in ((B, k), (n, d), (B,)))
    T.step_with_draws(tr._raw, Z, Xi, xi)
    G, ga = T.last_gradient(tr._raw)
    act, tgt = _reference_functions(MODEL)
    W1, a1, loss, G1, ga1 = ref.sgd_step_projected(W0, a0, theta, Z, Xi, xi, act, tgt, 0.7, 0.3, 0.1, 0.1)
    assert np.abs(G - G1).max() <= rtol * np.abs(G1).max()
    np.testing.assert_allclose(ga, ga1, rtol=rtol, atol=rtol * np.abs(ga1).max())
    np.testing.assert_allclose(tr.W, W1, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(tr.a, a1, rtol=rtol, atol=rtol)
    assert tr.batch_loss == pytest.approx(loss, rel=rtol * 10)
    assert T.basis(tr._raw)[2] == ("identity" if d <= n + 1 else "cholesky_qr")


def _degenerate(tr, kind):
    """Make [W; theta] ill-conditioned or rank deficient in place."""
    rng = np.random.default_rng(0)
    W, th = tr.W, tr.theta
    if kind == "near":  # two neurons 1e-5 apart and one 1e-5 from the teacher: cond(V) ~ 1e5
        W[1] = W[0] + 1e-5 * rng.standard_normal(W.shape[1])
        W[2] = th + 1e-5 * rng.standard_normal(W.shape[1])
    else:  # equal rows: rank n - 1
        W[1] = W[0]
        W[2] = th
    W /= np.linalg.norm(W, axis=1, keepdims=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind,methods", [("near", ("cholesky_qr2", "householder")), ("equal", ("householder",))])
def test_basis_of_a_degenerate_span(dtype, kind, methods):
    """Neurons near each other and near the teacher need the second Cholesky QR pass (or
    Householder); equal ones Householder. Either way Q^T Q = I and Q R = V to the working precision,
    and the step's G reproduces M^T Z on the span (G Q = M^T Z)."""
    d, n, B = 64, 6, 40
    tr = _trainer(d, n, B, dtype)
    _degenerate(tr, kind)
    V = np.vstack([tr.W, tr.theta]).T.astype(float)
    rng = np.random.default_rng(2)
    Z, Xi, xi = (rng.standard_normal(s).astype(NP[dtype]) for s in ((B, n + 1), (n, d), (B,)))
    a_before = tr.a.astype(float)
    T.step_with_draws(tr._raw, Z, Xi, xi)
    Qt, R, method, _ = T.basis(tr._raw)
    assert method in methods
    eps = np.finfo(NP[dtype]).eps
    assert np.linalg.norm(Qt.astype(float) @ Qt.T - np.eye(n + 1)) < 50 * eps
    assert np.abs(Qt.T.astype(float) @ R - V).max() < 50 * eps
    assert np.all(np.diag(R) >= 0)
    # M from P = Z R, as the reference computes it; G's part on the span is exactly M^T Z
    G, _ = T.last_gradient(tr._raw)
    act, tgt = _reference_functions(MODEL)
    P = Z.astype(float) @ R
    r = act[0](P[:, :n]) @ a_before / n - (tgt[0](P[:, n]) + math.sqrt(0.1) * xi)
    M = act[1](P[:, :n]) * r[:, None] * a_before[None, :] / B
    MZ = M.T @ Z
    np.testing.assert_allclose(G.astype(float) @ Qt.T, MZ, rtol=0, atol=2000 * eps * np.abs(MZ).max())
    if dtype == "float32":
        return  # (float32 resolves the 1e-5 differences to ~1e-2: the basis directions they span, and so
        # a step on the same Z, depend on the method; any orthonormal Q with Q R = V gives the same law)
    forced = _trainer(d, n, B, dtype)
    _degenerate(forced, kind)
    T.set_basis_method(forced._raw, "householder")
    T.step_with_draws(forced._raw, Z, Xi, xi)
    np.testing.assert_allclose(forced.W, tr.W, rtol=0, atol=1e-6)  # eps cond(V)^2 ~ 1e-6


def test_singular_gram_uses_the_pivoted_factor():
    """a_i = 0 makes a column of M zero, so M^T M is singular: the pivoted factor, an exactly zero
    gradient row for that neuron. With B < n, M^T M has rank B: whichever factor LAPACK's Cholesky
    leaves (it may pass on rounding), the remainder G (I - Q Q^T) = L Xi (I - Q Q^T) has B singular
    values above the rounding level."""
    d, n = 30, 5
    for B, zero in ((40, True), (3, False)):
        tr = _trainer(d, n, B)
        if zero:
            tr.a[2] = 0.0
        rng = np.random.default_rng(4)
        Z, Xi, xi = rng.standard_normal((B, n + 1)), rng.standard_normal((n, d)), rng.standard_normal(B)
        T.step_with_draws(tr._raw, Z, Xi, xi)
        G, _ = T.last_gradient(tr._raw)
        assert np.all(np.isfinite(G))
        Qt = T.basis(tr._raw)[0]
        sv = np.linalg.svd(G - (G @ Qt.T) @ Qt, compute_uv=False)
        rank = n - 1 if zero else B
        assert sv[rank - 1] > 1e-3 * sv[0] and np.all(sv[rank:] < 1e-6 * sv[0]), sv
        if zero:
            assert not T.factor_triangular(tr._raw)
            assert np.all(G[2] == 0.0)


# --- the same law as the direct sampler ------------------------------------------------------------
def _one_step_samples(sampler, d, n, B, steps, W0, a0, theta, dtype="float64"):
    """`steps` independent steps from the same (W0, a0): rows of (G, grad a, updated m_i, a_i)."""
    tr = _trainer(d, n, B, dtype, sampler=sampler, seed=5)
    tr.theta[:] = theta
    out = np.empty((steps, n * d + 3 * n))
    for s in range(steps):
        tr.W[:] = W0
        tr.a[:] = a0
        tr._raw.run(1)  # the step counter moves on: fresh streams every time
        G, ga = T.last_gradient(tr._raw)
        out[s] = np.concatenate([G.ravel(), ga, tr.W @ theta, tr.a])
    return out


def _two_sample_z(x, y):
    """Largest |z| of the differences of the means and of the covariances (upper triangle) of two
    samples, with the standard errors estimated from the samples, and the number of statistics."""
    zm = np.abs(x.mean(0) - y.mean(0)) / np.sqrt(x.var(0) / len(x) + y.var(0) / len(y))
    iu = np.triu_indices(x.shape[1])
    px = ((x - x.mean(0))[:, :, None] * (x - x.mean(0))[:, None, :])[:, iu[0], iu[1]]
    py = ((y - y.mean(0))[:, :, None] * (y - y.mean(0))[:, None, :])[:, iu[0], iu[1]]
    zc = np.abs(px.mean(0) - py.mean(0)) / np.sqrt(px.var(0) / len(px) + py.var(0) / len(py))
    return float(zm.max()), float(zc.max()), zm.size + zc.size


@pytest.mark.slow
@pytest.mark.parametrize("d,n,B", [(7, 2, 5), (6, 3, 2)])
def test_one_step_has_the_direct_law(d, n, B):
    """Means and covariances of one step's G and grad a and of the updated (m_i, a_i), from a fixed
    network, agree between the samplers: every |z| below the Bonferroni bound of a 1e-3 false-alarm
    rate over all the statistics. (6, 3, 2): B < n, so M^T M is singular (the pivoted factor).
    Control: the same statistics flag the direct sampler at batch B + 1 (variances 1/B vs 1/(B+1))."""
    base = _trainer(d, n, B, sampler="direct", m0=0.6, seed=8)
    W0, a0, theta = base.W.copy(), base.a.copy(), base.theta.copy()
    a0 *= np.linspace(0.6, 1.4, n)
    N = 12_000
    direct = _one_step_samples("direct", d, n, B, N, W0, a0, theta)
    proj = _one_step_samples("projected", d, n, B, N, W0, a0, theta)
    keep = np.std(direct, 0) > 1e-12  # G rows of a neuron are exactly tangent: drop nothing random
    zm, zc, count = _two_sample_z(direct[:, keep], proj[:, keep])
    bound = stats.norm.isf(1e-3 / 2 / count)
    assert zm < bound and zc < bound, (zm, zc, bound)
    wider = _one_step_samples("direct", d, n, B + 1, N, W0, a0, theta)
    zm2, zc2, _ = _two_sample_z(direct[:, keep], wider[:, keep])
    assert max(zm2, zc2) > bound, (zm2, zc2, bound)


@pytest.mark.slow
def test_trajectories_have_the_direct_law():
    """After 25 steps from the same initial law, m_mean, a_mean and q_perp over 300 seeds per sampler:
    two-sample Kolmogorov-Smirnov p-values all above 1e-3 / 3 (a 1e-3 false-alarm rate). Control: the
    same test rejects the direct sampler at half the step dt."""
    d, n, B, steps = 24, 4, 12, 25
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=1.0, noise=0.05)

    def finals(sampler, seeds, dt=0.2):
        rows = []
        for s in seeds:
            tr = fs.SGDTrainer(model, d=d, n=n, batch=B, dt=dt, a0=0.5, m0=0.2, seed=s, dtype="float64",
                               threads=1, sampler=sampler)
            tr.run(steps)
            op = tr.order_parameters()
            rows.append((op.m_mean, op.a_mean, tr.collective_overlap()))
        return np.array(rows)

    direct = finals("direct", range(300))
    proj = finals("projected", range(1000, 1300))  # other seeds: independent samples
    p = [stats.ks_2samp(direct[:, j], proj[:, j]).pvalue for j in range(3)]
    assert min(p) > 1e-3 / 3, p
    slower = finals("direct", range(2000, 2300), dt=0.1)
    p2 = [stats.ks_2samp(direct[:, j], slower[:, j]).pvalue for j in range(3)]
    assert min(p2) < 1e-3 / 3, p2


# --- reproducibility and checkpoints ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("d, n, B", [(1100, 70, 2500), (300, 40, 333)])
def test_independent_of_thread_count(dtype, d, n, B):
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=1.0, noise=0.01)
    runs = []
    for threads in (1, 2):
        tr = fs.SGDTrainer(model, d=d, n=n, batch=B, dt=0.05, a0=0.5, seed=9, dtype=dtype, threads=threads,
                           sampler="projected")
        tr.run(3)
        runs.append((tr.W.copy(), tr.a.copy(), tr.batch_loss, tr.population_loss()))
    for x, y in zip(*runs):
        np.testing.assert_array_equal(x, y)


def test_seeded_run_is_its_own_realisation():
    """The same seed and sampler give the same run; the other sampler another run (same law)."""
    kw = dict(d=48, n=6, batch=32, dt=0.1, steps=10, a0=0.5, seed=2, record=3, progress=False, dtype="float64")
    r1 = fs.train_sgd(MODEL, **kw, sampler="projected")
    r2 = fs.train_sgd(MODEL, **kw, sampler="projected")
    r3 = fs.train_sgd(MODEL, **kw, sampler="direct")
    np.testing.assert_array_equal(r1.m, r2.m)
    assert not np.array_equal(r1.m, r3.m)
    assert r1.params["sampler"] == "projected" and r3.params["sampler"] == "direct"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_resume_equals_uninterrupted(tmp_path, dtype):
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=1.0, noise=0.01)
    kw = dict(d=96, n=8, batch=64, dt=0.05, steps=40, a0=0.5, seed=11, dtype=dtype, record=9, progress=False,
              sampler="projected")
    full = fs.train_sgd(model, **kw)
    ck = _checkpoint_at(tmp_path / "run.npz", model, kw, full, 23)
    resumed = fs.train_sgd(model, **kw, resume=ck)
    for k, v in _fields(full).items():
        np.testing.assert_array_equal(getattr(resumed, k), v, err_msg=k)
    with pytest.raises(ValueError, match="sampler differs"):
        fs.train_sgd(model, **(kw | {"sampler": "direct"}), resume=ck)


# --- the choice of auto, and bad input -------------------------------------------------------------
def test_auto_picks_by_the_cost_model():
    """Projected where d >> n (the issue's (8d, 16384, 128): over 30 times fewer flop-equivalents),
    direct where d <= n + 1 (the projected step would be the direct one)."""
    assert step_cost("projected", 8 * 16384, 16384, 128).equivalent * 30 < step_cost("direct", 8 * 16384, 16384, 128).equivalent
    assert choose_sampler("auto", 8 * 16384, 16384, 128) == "projected"
    assert choose_sampler("auto", 1024, 128, 128) == "direct"
    assert choose_sampler("direct", 8 * 16384, 16384, 128) == "direct"
    assert _trainer(4096, 16, 1024, sampler="auto").sampler == "projected"
    assert _trainer(16, 16, 64, sampler="auto").sampler == "direct"


@pytest.mark.parametrize("sampler,error", [("exact", ValueError), ("", ValueError), (3, TypeError), (None, TypeError)])
def test_bad_sampler(sampler, error):
    with pytest.raises(error, match="^sampler"):
        fs.train_sgd(MODEL, d=8, n=4, batch=8, dt=0.1, steps=2, a0=1.0, progress=False, sampler=sampler)
    with pytest.raises(ValueError, match="sampler"):
        _core.sgd.TrainerConfig(d=8, n=4, batch=8, dt=0.1, lr_w=1.0, lr_a=1.0, sampler="auto")


def test_bad_draws():
    tr = _trainer(20, 3, 10)
    with pytest.raises(ValueError, match="^Z"):
        T.step_with_draws(tr._raw, np.zeros((10, 3)), np.zeros((3, 20)), np.zeros(10))
    with pytest.raises(ValueError, match="^Xi"):
        T.step_with_draws(tr._raw, np.zeros((10, 4)), np.zeros((20, 3)), np.zeros(10))
    with pytest.raises(ValueError, match="sampler"):
        T.step_with_batch(tr._raw, np.zeros((10, 20)), np.zeros(10))
    with pytest.raises(ValueError, match="sampler"):
        T.step_with_draws(_trainer(20, 3, 10, sampler="direct")._raw, np.zeros((10, 4)), np.zeros((3, 20)), np.zeros(10))


def test_sampler_in_config_and_sweep_settings():
    """sgd.sampler is a config field (default auto) checked by the registry; a sweep cell passes it on."""
    from fastslow.config import ConfigError, parse_config
    from fastslow.sweep.tasks import _settle

    assert parse_config({}).sgd.sampler == "auto"
    cfg = parse_config({"sgd": {"sampler": "projected"}})
    assert cfg.sgd.sampler == "projected"
    with pytest.raises(ConfigError, match="sgd.sampler"):
        parse_config({"sgd": {"sampler": "exact"}})
    assert dict(_settle(cfg, {}).sgd)["sampler"] == "projected"
