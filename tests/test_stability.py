"""Stiffness of the limit ODE and the stable steps: the fast eigenvalue, the first unstable time of a
fixed step, the stable schedule, and their use in SGD and the effective map."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import fastslow as fs
from fastslow import reference as ref
from fastslow import stability as S


def _rhs(model, m, a):
    g = ref.grad(model.s, model.c, m, a)
    return np.array([-model.lr_w * (1 - m * m) * g[0], -model.lr_a * g[1]])


def test_fast_eigenvalue_is_that_of_the_jacobian():
    """Against central differences of the reference right-hand side in (m, a)."""
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=0.1)
    for m, a in ((0.0, 1.0), (0.5, 1.3), (0.93, 1.2), (0.2, 8.0), (-0.3, 2.0)):
        h = 1e-6
        J = np.column_stack([(_rhs(model, m + h, a) - _rhs(model, m - h, a)) / (2 * h),
                             (_rhs(model, m, a + h) - _rhs(model, m, a - h)) / (2 * h)])
        ev = np.linalg.eigvals(J)
        lam = S.fast_eigenvalue(model, m, a)
        assert lam == pytest.approx(ev[np.argmin(ev.real)], rel=1e-6, abs=1e-8)
    # near the lazy manifold the fast rate is about lr_w a^2 s_1^2
    assert -S.fast_eigenvalue(model, 0.05, 6.0).real == pytest.approx(36 * model.s[1] ** 2, rel=0.05)


def test_stable_step():
    lam = np.array([-2.0, -1.0 + 1.0j, 0.5, -4.0 + 0.1j])
    h = S.stable_step(lam)
    assert h[0] == pytest.approx(1.0) and h[1] == pytest.approx(1.0) and math.isinf(h[2])
    assert abs(1 + h[3] * lam[3]) == pytest.approx(1.0)
    lam = np.array([-2.0, -1.0 + 0.2j, -1.0 + 1.0j])
    hs = S.stable_step(lam, 0.5)
    assert hs[0] == pytest.approx(0.75) and abs(1 + hs[1] * lam[1]) == pytest.approx(0.5)
    assert hs[2] == pytest.approx(0.5)  # the ray 1 + dt lambda never enters the disc: its closest point


def test_first_unstable_time_of_the_long_horizon_configuration():
    """tanh, h1 + 0.3 h3, lr_w = 1, lr_a = 0.1, a0 = 1: dt = 0.05 stops being stable at t ~ 7.39e4
    (a ~ 10.4), by the collective mode; the fast mode of the limit ODE alone at t ~ 7.59e4 (an Euler
    integration of the limit ODE at that dt first grows at t = 75,960); the bound falls to 0.030 by
    t = 2e5."""
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=0.1)
    st = S.stability(model, a0=1.0, dt=0.05, t_max=2e5)
    assert st.t_unstable == pytest.approx(7.392e4, rel=0.002) and st.mode == "collective"
    bf = S.stable_step(st.lambda_fast)
    t_fast = float(st.t[np.flatnonzero(0.05 > bf)[0]])
    assert 7.55e4 < t_fast < 7.9e4  # on the save-time grid
    assert st.dt_bound == pytest.approx(0.0304, rel=0.01)  # at t = 2e5, a ~ 13.4
    assert S.stability(model, a0=1.0, dt=0.05, t_max=5e4).stable


def _model():
    return fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=1.0)


def test_the_map_is_unstable_past_the_bound_and_stable_below():
    """Two limit-map trajectories started 1e-6 apart at a state of the limit ODE past the bound of
    dt: at 1.2 times the bound their distance grows a hundredfold in 40 steps, at 0.8 times it shrinks."""
    model = _model()
    ode = fs.solve_ode(model, [0.0, 40.0], a0=1.0)
    m, a = float(ode.m[-1]), float(ode.a[-1])
    bound = float(S.stable_step(S.fast_eigenvalue(model, m, a)))
    growth = {}
    for f in (1.2, 0.8):
        dt = f * bound
        t = [0.0, 40 * dt]
        x = fs.solve_effective(model, t, a0=a, m0=m, dt=dt, terms="map")
        y = fs.solve_effective(model, t, a0=a, m0=m + 1e-6, dt=dt, terms="map")
        growth[f] = abs(x.m[-1] - y.m[-1]) / 1e-6
    assert growth[1.2] > 100 and growth[0.8] < 1, growth


def test_train_sgd_warns_before_crossing_and_the_schedule_stays_stable():
    """lr_a = 1, a0 = 1: at dt = 1 the collective mode crosses its bound first, at t ~ 22.6 (the fast
    mode of the limit ODE only at t ~ 30). train_sgd warns (naming dt, the t, the mode and the bound);
    the fixed-step run then builds a collective overlap q_perp of 0.07-0.10 (the mode grows), the run on
    the stable schedule keeps it at its noise level (|q_perp| < 0.015) and follows the effective map
    on the same schedule, with ODE time the sum of its steps."""
    model = _model()
    kw = dict(d=64, n=64, batch=1024, a0=1.0, progress=False, threads=1, seed=3)
    with pytest.warns(RuntimeWarning, match=r"dt = 1 stops being stable at t = 22\.\d+.*collective mode.*by t = 80 the "
                      r"stable bound falls to dt <= 0\.50\d+"):
        fixed = fs.train_sgd(model, dt=1.0, steps=80, record=81, spacing="linear", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched = fs.train_sgd(model, dt=1.0, steps=80, record=41, spacing="linear", dt_schedule="stable", **kw)
    schedule = S.stable_schedule(model, 80.0, a0=1.0, dt=1.0)
    assert sched.t[-1] == pytest.approx(80.0) and sched.step[-1] == schedule.steps
    np.testing.assert_array_equal(sched.t, schedule.times[sched.step])
    late_fixed, late_sched = fixed.q_perp[fixed.t > 40], sched.q_perp[sched.t > 40]
    assert late_fixed.max() > 0.04 and np.max(np.abs(late_sched)) < 0.015
    eff = fs.solve_effective(model, sched.t, a0=1.0, dt=1.0, d=64, n=64, batch=1024, schedule=schedule)
    assert np.max(np.abs(sched.m - eff.m)) < 0.05 and np.all(np.isfinite(sched.a))
    # a stable configuration gives no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fs.train_sgd(model, dt=0.5, steps=20, record=3, **kw)


def test_collective_mode_of_the_effective_map():
    """The effective map without noise ("width", n = inf) started with q_perp = 1e-6 at a state of
    the limit ODE: at 1.2 times the collective bound 2 / |lambda_c| q_perp grows (and the ODE's fast
    mode is still stable there), at 0.8 times it decays. At small dt q_perp relaxes at the rate
    2 lr_w a^2 K1(m^2) of the theory."""
    model = _model()
    ode = fs.solve_ode(model, [0.0, 40.0], a0=1.0)
    m, a = float(ode.m[-1]), float(ode.a[-1])
    lam_c = S.collective_rate(model, m, a)
    bound = 2 / abs(lam_c)
    assert bound < float(S.stable_step(S.fast_eigenvalue(model, m, a)))
    q = {}
    for f in (1.2, 0.8):
        x = fs.solve_effective(model, [0.0, 30 * f * bound], a0=a, m0=m, dt=f * bound, d=64, batch=math.inf,
                               n=math.inf, terms="width", q0=1e-6)
        q[f] = x.q_perp[-1] / 1e-6
    assert q[1.2] > 10 and q[0.8] < 0.1, q
    small = fs.solve_effective(model, [0.0, 0.01], a0=a, m0=m, dt=1e-4, d=64, batch=math.inf, n=math.inf,
                               terms="width", q0=1e-3)
    rate = math.log(small.q_perp[-1] / 1e-3) / 0.01
    K1 = float(np.polynomial.polynomial.polyval(m * m, np.arange(1, model.s.size) * model.s[1:] ** 2))
    assert rate == pytest.approx(-2 * model.lr_w * a * a * K1, rel=0.02)


def test_schedule_is_fixed_step_while_stable():
    model = _model()
    sch = S.stable_schedule(model, 80.0, a0=1.0, dt=1.0)
    k = int(np.argmax(sch.dts < 1.0))
    assert k > 10 and np.all(sch.dts[:k] == 1.0) and sch.times[k] < 30.2
    ode = fs.solve_ode(model, sch.times[k:], a0=1.0)
    lam = S.fast_eigenvalue(model, ode.m, ode.a)
    mult = 1 + sch.dts[k:] * lam[:-1].real  # real here: 1 + dt_k lambda stays in [-safety, 1) for both modes
    mult_c = 1 + sch.dts[k:] * S.collective_rate(model, ode.m, ode.a)[:-1]
    assert np.all(np.abs(lam.imag) < 1e-12) and min(mult.min(), mult_c.min()) > -0.52 and mult.max() < 1
    assert np.median(mult_c[len(mult_c) // 2:]) < -0.45  # ... and the steps are as large as that allows
    assert sch.steps_to(40.0) < sch.steps and sch.t_end == pytest.approx(80.0)
    with pytest.raises(ValueError, match="dts"):
        S.StepSchedule(np.array([0.1, -0.1]))
    with pytest.raises(TypeError, match="dt_schedule"):
        fs.train_sgd(model, d=8, n=4, batch=8, dt=0.1, steps=2, a0=1.0, dt_schedule=[0.1, 0.1], progress=False)
    with pytest.raises(ValueError, match="dt_schedule"):
        fs.train_sgd(model, d=8, n=4, batch=8, dt=0.1, steps=2, a0=1.0, dt_schedule="fast", progress=False)
