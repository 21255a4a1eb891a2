"""The mean-field particle limit: the core's system and integrator against the 2-D limit ODE, the
NumPy/SciPy reference and a dense linear solve; the particle trajectory's fields; input checks."""

from __future__ import annotations

import numpy as np
import pytest

import fastslow as fs
from fastslow import _core
from fastslow import reference as ref
from fastslow.particles import particle_system

T = np.geomspace(1e-2, 1e5, 30)


@pytest.fixture(scope="module")
def tanh13():
    return fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.01)


@pytest.fixture(scope="module")
def gelu12():
    return fs.Model("gelu", {1: 1.0, 2: 0.4}, lr_a=0.01, centred=True)


def _state(rng, N):
    y = np.empty(2 * N)
    y[0::2] = rng.uniform(-1.5, 1.5, N)
    y[1::2] = rng.normal(0.3, 0.8, N)
    return y


# -- equal particles are the 2-D limit ODE ----------------------------------------------------
@pytest.mark.parametrize("a0, m0", [(0.5, 0.1), (2.0, -0.3), (0.05, 0.6)])
def test_equal_particles_reproduce_solve_ode(tanh13, a0, m0):
    o = fs.solve_ode(tanh13, T, a0=a0, m0=m0)
    p = fs.solve_particles(tanh13, T, a0=np.full(4, a0), m0=m0, weights=[1, 2, 3, 4])
    assert p.status == 0 and p.level == "particles"
    # Same method, same controller, same tolerance map: the same steps, to rounding.
    assert p.stats["nsteps"] == o.stats["nsteps"]
    np.testing.assert_allclose(p.m, o.m, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.a, o.a, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.loss, o.loss, rtol=1e-10, atol=1e-14)
    assert np.all(np.ptp(p.particles["m"], axis=0) < 1e-14)
    assert np.all(p.series["m_std"] < 1e-12)
    # both drivers polish their events on exact Radau steps from the step's start (on the
    # collocation polynomial alone t_peak agreed to 2e-5 only: a flat maximum); t_peak is the root
    # of a rate that vanishes quadratically in m, so it is the loosest of the three
    np.testing.assert_allclose(p.stats["m_peak"], o.stats["m_peak"], rtol=1e-13)
    np.testing.assert_allclose(p.stats["t_peak"], o.stats["t_peak"], rtol=1e-8)
    np.testing.assert_allclose(p.stats["t_half"], o.stats["t_half"], rtol=1e-12)


def test_one_particle_system_is_the_limit_model(tanh13, gelu12):
    rng = np.random.default_rng(3)
    for mdl in (tanh13, gelu12):
        sys1 = particle_system(mdl, np.ones(1))
        for _ in range(5):
            v, a = rng.uniform(-1, 1), rng.normal()
            f = np.asarray(sys1.rhs(np.array([v, a])))
            g = mdl.grad(np.tanh(v), a)
            # dv/dt = (dm/dt) / (1 - m^2) = -lr_w dL/dm
            np.testing.assert_allclose(f, [-mdl.lr_w * g[0], -mdl.lr_a * g[1]], rtol=1e-11, atol=1e-14)
            assert sys1.loss(np.array([v, a])) == pytest.approx(float(mdl.loss(np.tanh(v), a)), rel=1e-12)


# -- against the NumPy reference ----------------------------------------------------------------
@pytest.mark.parametrize("which", ["tanh13", "gelu12"])
def test_rhs_and_jacobian_match_reference(which, request):
    mdl = request.getfixturevalue(which)
    rng = np.random.default_rng(7)
    N = 6
    w = rng.uniform(0.5, 2.0, N)
    w /= w.sum()
    system = particle_system(mdl, w)
    for _ in range(3):
        y = _state(rng, N)
        f = np.asarray(system.rhs(y))
        np.testing.assert_allclose(f, ref.particle_rhs(mdl.s, mdl.c, mdl.lr_w, mdl.lr_a, w, y), rtol=1e-11, atol=1e-13)
        D, U, V = (np.asarray(x) for x in system.jacobian(y))
        J = U.reshape(2 * N, -1) @ V.reshape(2 * N, -1).T
        for i in range(N):
            J[2 * i:2 * i + 2, 2 * i:2 * i + 2] += D.reshape(N, 2, 2)[i]
        Jref = ref.particle_jacobian(mdl.s, mdl.c, mdl.lr_w, mdl.lr_a, w, y)
        np.testing.assert_allclose(J, Jref, rtol=1e-10, atol=1e-12 * np.abs(Jref).max())
        # and the reference Jacobian is the derivative of the reference rhs
        h = 1e-6
        col = np.array([(ref.particle_rhs(mdl.s, mdl.c, mdl.lr_w, mdl.lr_a, w, y + h * e)
                         - ref.particle_rhs(mdl.s, mdl.c, mdl.lr_w, mdl.lr_a, w, y - h * e)) / (2 * h)
                        for e in np.eye(2 * N)]).T
        np.testing.assert_allclose(Jref, col, rtol=1e-5, atol=1e-7 * np.abs(Jref).max())


@pytest.mark.parametrize("which, a0, frac", [("tanh13", (0.8, -0.4), (0.7, 0.3)),
                                             ("gelu12", (0.3, 1.5), (0.5, 0.5))])
def test_two_groups_match_scipy_reference(which, a0, frac, request):
    mdl = request.getfixturevalue(which)
    m0 = (0.05, 0.2)
    p = fs.solve_particles(mdl, T, a0=a0, m0=m0, weights=frac, rtol=1e-10, atol=1e-12)
    m, a, _ = ref.solve_particles(mdl.s, mdl.c, mdl.lr_w, mdl.lr_a, a0, m0, frac, T)
    np.testing.assert_allclose(p.particles["m"], m, rtol=0, atol=2e-7)
    np.testing.assert_allclose(p.particles["a"], a, rtol=0, atol=2e-7)
    w = np.asarray(frac) / np.sum(frac)
    np.testing.assert_allclose(p.m, w @ m, atol=2e-7)
    # the two groups really do differ (the test would not see a lost coupling otherwise)
    assert np.max(np.abs(m[0] - m[1])) > 1e-2


def test_batch_equals_single_runs(tanh13, gelu12):
    rng = np.random.default_rng(11)
    a = rng.normal(0.5, 0.5, (3, 5))
    m = rng.uniform(-0.2, 0.3, (3, 5))
    b = fs.solve_particles_batch([tanh13, gelu12, tanh13], T, a0=a, m0=m, threads=2)
    assert b.batch_shape == (3,) and b.particles["m"].shape == (3, 5, T.size)
    for j, mdl in enumerate((tanh13, gelu12, tanh13)):
        s = fs.solve_particles(mdl, T, a0=a[j], m0=m[j], dense_output=False)
        np.testing.assert_array_equal(b.particles["m"][j], s.particles["m"])
        np.testing.assert_array_equal(b.loss[j], s.loss)
    b1 = fs.solve_particles_batch([tanh13, gelu12, tanh13], T, a0=a, m0=m, threads=1)
    np.testing.assert_array_equal(b1.particles["a"], b.particles["a"])


# -- the structured Newton solve against a dense solve -----------------------------------------
def _dense_newton(D, U, V, H):
    """M = I - (H x I) diag(J_t) in the stage-major layout, J_t = blockdiag(D_t) + U_t V_t^T."""
    S, N = D.shape[:2]
    Js = []
    for t in range(S):
        J = U[t] @ V[t].T
        for i in range(N):
            J[2 * i:2 * i + 2, 2 * i:2 * i + 2] += D[t, i]
        Js.append(J)
    n = 2 * N
    M = np.eye(S * n)
    for s_ in range(S):
        for t in range(S):
            M[s_ * n:(s_ + 1) * n, t * n:(t + 1) * n] -= H[s_, t] * Js[t]
    return M


@pytest.mark.parametrize("S, N, r", [(3, 1, 1), (3, 5, 2), (3, 8, 4), (1, 7, 3)])
def test_structured_solve_matches_dense(S, N, r):
    rng = np.random.default_rng(100 + 10 * S + N)
    D = rng.normal(size=(S, N, 2, 2))
    U = rng.normal(size=(S, 2 * N, r)) * 0.5
    V = rng.normal(size=(S, 2 * N, r)) * 0.5
    H = rng.normal(size=(S, S)) * 0.3 if S > 1 else np.array([[0.7]])
    b = rng.normal(size=2 * S * N)  # layout (particle, stage, component)
    x = np.asarray(_core._testing.structured_solve(D, U, V, H, b))
    M = _dense_newton(D, U, V, H)

    def to_stage_major(z):
        return z.reshape(N, S, 2).transpose(1, 0, 2).reshape(-1)

    xd = np.linalg.solve(M, to_stage_major(b))
    np.testing.assert_allclose(to_stage_major(x), xd, rtol=1e-9, atol=1e-11 * np.abs(xd).max())


def test_structured_solve_on_a_real_jacobian(tanh13):
    """The Newton matrix of an actual step (h A_Radau, stage Jacobians from the system)."""
    rng = np.random.default_rng(5)
    N = 6
    system = particle_system(tanh13, np.ones(N))
    parts = [tuple(np.asarray(x) for x in system.jacobian(_state(rng, N))) for _ in range(3)]
    r = system.rank
    D = np.stack([p[0].reshape(N, 2, 2) for p in parts])
    U = np.stack([p[1].reshape(2 * N, r) for p in parts])
    V = np.stack([p[2].reshape(2 * N, r) for p in parts])
    s6 = np.sqrt(6.0)
    A = np.array([[(88 - 7 * s6) / 360, (296 - 169 * s6) / 1800, (-2 + 3 * s6) / 225],
                  [(296 + 169 * s6) / 1800, (88 + 7 * s6) / 360, (-2 - 3 * s6) / 225],
                  [(16 - s6) / 36, (16 + s6) / 36, 1 / 9]])
    H = 5.0 * A
    b = rng.normal(size=6 * N)
    x = np.asarray(_core._testing.structured_solve(D, U, V, H, b))
    M = _dense_newton(D, U, V, H)
    perm = lambda z: z.reshape(N, 3, 2).transpose(1, 0, 2).reshape(-1)  # noqa: E731
    np.testing.assert_allclose(M @ perm(x), perm(b), rtol=0, atol=1e-9 * np.abs(b).max())


def test_structured_solve_checks_shapes():
    D = np.zeros((3, 2, 2, 2))
    U = np.zeros((3, 4, 1))
    with pytest.raises(ValueError, match="D"):
        _core._testing.structured_solve(np.zeros((3, 2, 2)), U, U, np.eye(3), np.zeros(12))
    with pytest.raises(ValueError, match="b"):
        _core._testing.structured_solve(D, U, U, np.eye(3), np.zeros(5))
    with pytest.raises(ValueError, match="S must be 1 or 3"):
        _core._testing.structured_solve(D, U, U, np.eye(2), np.zeros(12))


# -- the trajectory ------------------------------------------------------------------------------
def test_dense_output_and_moments(tanh13):
    law = fs.InitialLaw(a0=0.5, a_dist="normal", a_sigma=0.3, m0=0.1)
    a, m, w = law.particles(8)
    assert a.size == 8 and w.sum() == pytest.approx(1.0)
    assert np.sum(w * a) == pytest.approx(0.5) and np.sum(w * (a - 0.5) ** 2) == pytest.approx(0.09)
    p = fs.solve_particles(tanh13, T, a0=a, m0=m, weights=w)
    np.testing.assert_allclose(p.sol(T), np.stack([p.m, p.a]), atol=1e-6)
    np.testing.assert_allclose(p.sol.particles(T)[0], p.particles["m"], atol=1e-6)  # cubic inside a step
    np.testing.assert_allclose(p.sol.loss(T[[3, 10]]), p.loss[[3, 10]], rtol=1e-8)
    M1 = fs.particles.particle_moments(p, [1])[0]
    np.testing.assert_allclose(M1, np.sum(w[:, None] * p.particles["a"] * p.particles["m"], 0))
    with pytest.raises(ValueError, match="t: dense output covers"):
        p.sol(2e5)
    o = fs.solve_ode(tanh13, T, a0=0.5, m0=0.1)
    with pytest.raises(ValueError, match="does not follow its particles"):
        fs.particles.particle_moments(o, [1])


def test_loss_is_nonincreasing(gelu12):
    a = np.array([1.2, -0.8, 0.4])
    p = fs.solve_particles(gelu12, np.linspace(0, 2e3, 200), a0=a, m0=[0.1, 0.2, -0.1])
    assert np.all(np.diff(p.loss) <= 1e-12)


@pytest.mark.parametrize("kw, match", [
    ({"a0": [0.5, 0.5], "m0": [0.1, 1.0]}, "m0: every particle needs"),
    ({"a0": [0.5, 0.5], "m0": 0.1, "weights": [1.0, -1.0]}, "weights: every weight must be > 0"),
    ({"a0": [0.5, 0.5, 0.5], "m0": [0.1, 0.2]}, "do not broadcast"),
    ({"a0": [], "m0": 0.1}, "no particles"),
    ({"a0": [[0.5, 0.2]], "m0": 0.1}, "solve_particles_batch"),
    ({"a0": [2e6], "m0": 0.1}, "a0: every value"),
    ({"a0": [np.nan], "m0": 0.1}, "a0"),
])
def test_solve_particles_checks_inputs(tanh13, kw, match):
    with pytest.raises(ValueError, match=match):
        fs.solve_particles(tanh13, T, **kw)


def test_solve_particles_type_errors(tanh13):
    with pytest.raises(TypeError):
        fs.solve_particles("tanh", T, a0=[0.5])
    with pytest.raises(ValueError, match="models: give one model or one per system"):
        fs.solve_particles_batch([tanh13, tanh13], T, a0=np.ones((3, 2)))
