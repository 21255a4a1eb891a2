"""The effective dynamics of the finite network: the C++ map against the NumPy reference, its limits
(the exact limit map, the ODE as dt -> 0), its agreement with SGD where the ODE is off, and its
validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastslow as fs
from fastslow import _core
from fastslow import reference as ref
from fastslow.effective import TERMS, effective_map

from conftest import TIME_SCALE

STATES = [(0.0, 0.5, 0.0), (0.3, 0.8, 0.09 + 0.91 * 0.04), (0.7, 1.2, 0.5), (0.5, 1.0, 0.2), (0.9, 2.0, 0.8),
          (-0.4, 1.5, 0.16 - 0.84 * 0.005)]
SWITCHES = {"all": {}, "shrink": {"collective": False}, "no_feedback": {"feedback": False},
            "width": {"noise": False}}


def _model(activation="tanh"):
    return fs.Model(activation, {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=0.7, noise=0.01)


def _reference(model):
    act, _ = model.simulator_spec()
    pair = ref.named_function(act["name"]) if act["kind"] == "named" else ref.hermite_function(model.s)
    return ref.EffectiveReference(model.s, model.c, s_tail=model.activation_series.tail,
                                  c_tail=model.target_series.tail, act=pair, lr_w=model.lr_w, lr_a=model.lr_a,
                                  noise=model.noise)


def _close(x, y, tol=1e-12):
    x, y = np.asarray(x, float), np.asarray(y, float)
    assert np.all(np.abs(x - y) <= tol * np.maximum(1.0, np.abs(y))), (x, y)


@pytest.mark.parametrize("activation", ["tanh", "erf", [0.0, 1.0, 0.0, 0.3, 0.0, -0.05]])
def test_core_map_matches_reference(activation):
    """Series, noise expectations, one step of every variant and the loss: C++ == NumPy to 1e-12."""
    model = _model(activation)
    mp, R = effective_map(model), _reference(model)
    for x in (0.0, 0.3, -0.6, 0.95, 1.0):
        _close(mp.series(x), R.series(x))
    for m, a, Q in STATES:
        for n in (256.0, 7.0, math.inf):
            _close(mp.noise_terms(m, a, Q, n), R.noise_terms(m, a, Q, n))
            for sw in SWITCHES.values():
                terms = _core.effective.Terms(**sw)
                for dt, ratio in ((0.1, 4.0), (0.05, 0.25), (0.3, 0.0)):
                    _close(mp.step(m, a, Q, dt, ratio, n, terms), R.step(m, a, Q, dt=dt, ratio=ratio, n=n, **sw))
            _close(mp.loss(m, a, Q, n, _core.effective.Terms()), R.loss(m, a, Q, n))


def test_trajectory_matches_reference():
    """The iteration and its reading at save times between steps (linear interpolation)."""
    model = _model()
    t = np.array([0.0, 0.05, 0.3, 0.75, 1.0, 1.55, 2.0])
    eff = fs.solve_effective(model, t, a0=0.5, m0=0.05, dt=0.1, d=64, batch=16, n=32)
    m, a, loss, q = _reference(model).trajectory(t, a0=0.5, m0=0.05, dt=0.1, ratio=4.0, n=32.0)
    for x, y in ((eff.m, m), (eff.a, a), (eff.loss, loss), (eff.q_perp, q)):
        _close(x, y)
    assert eff.level == "effective" and eff.steps == 20 and eff.dt == 0.1 and eff.t_end == pytest.approx(2.0)
    assert eff.sol is not None and eff.sol(1.0)[0] == eff.m[4]


def test_map_terms_is_the_exact_limit_map():
    """terms="map" is the limit map of the reference (its own formula in the teacher-row plane), and
    terms="all" with n = B = inf equals it (q_perp stays 0)."""
    model = _model()
    t = np.arange(0, 31) * 0.2
    mp = fs.solve_effective(model, t, a0=0.8, m0=0.1, dt=0.2, terms="map")
    m, a = 0.1, 0.8
    ms = [m]
    for _ in range(30):
        m, a = ref.limit_map(model.s, model.c, model.lr_w, model.lr_a, m, a, 0.2)
        ms.append(m)
    _close(mp.m, ms, 1e-11)
    inf = fs.solve_effective(model, t, a0=0.8, m0=0.1, dt=0.2, d=256, batch=math.inf, n=math.inf)
    _close(inf.m, mp.m, 1e-10)
    _close(inf.a, mp.a, 1e-10)
    assert np.max(np.abs(inf.q_perp)) < 1e-12
    _close(mp.loss, model.loss(mp.m, mp.a), 1e-12)


def test_map_converges_to_the_ode_at_first_order():
    """The limit map at step dt differs from the limit ODE by O(dt): halving dt halves the deviation."""
    model = _model()
    t = np.linspace(0, 6, 13)
    ode = fs.solve_ode(model, t, a0=0.5, rtol=1e-11, atol=1e-13)
    dev = [np.max(np.abs(fs.solve_effective(model, t, a0=0.5, dt=dt, terms="map").m - ode.m))
           for dt in (0.04, 0.02, 0.01)]
    ratios = np.array(dev[:-1]) / np.array(dev[1:])  # first order: each halving of dt halves the deviation
    np.testing.assert_allclose(ratios, 2.0, atol=0.2, err_msg=f"deviations {dev}")
    assert dev[2] < 5e-3


def _sgd_seed_means(model, *, d, n, batch, dt, T, seeds):
    steps = int(round(T / dt))
    runs = [fs.train_sgd(model, d=d, n=n, batch=batch, dt=dt, steps=steps, a0=0.5, seed=s, record=steps + 1,
                         spacing="linear", progress=False, threads=1) for s in seeds]
    return runs[0].t, {k: np.mean([getattr(r, k) for r in runs], axis=0) for k in ("m", "a", "q_perp")}


def test_map_removes_most_of_the_dt_bias_at_large_batch():
    """At B = 16 d the SGD seed mean sits O(dt) away from the ODE; the exact limit map at SGD's dt
    removes at least half of that bias in m and in a (time-averaged |deviation|; measured: m 0.0045
    -> 0.0008, a 0.0155 -> 0.0018 with four seeds at dt = 0.2)."""
    model = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
    t, sgd = _sgd_seed_means(model, d=128, n=128, batch=2048, dt=0.2, T=6.0, seeds=range(4))
    ode = fs.solve_ode(model, t, a0=0.5)
    mp = fs.solve_effective(model, t, a0=0.5, dt=0.2, terms="map")
    for k in ("m", "a"):
        bias_ode = np.mean(np.abs(sgd[k] - getattr(ode, k)))
        bias_map = np.mean(np.abs(sgd[k] - getattr(mp, k)))
        assert bias_map <= 0.5 * bias_ode, (k, bias_map, bias_ode)


def test_effective_beats_the_ode_at_small_batch():
    """At B = d / 4 (dt d / B = 0.8) the batch noise and the collective mode matter: the effective
    dynamics is closer to the SGD seed mean than the ODE in m and in a (by half in a), and predicts
    the collective overlap q_perp that SGD builds (peak about 0.13) to within 0.03."""
    model = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
    t, sgd = _sgd_seed_means(model, d=128, n=128, batch=32, dt=0.2, T=6.0, seeds=range(8))
    ode = fs.solve_ode(model, t, a0=0.5)
    eff = fs.solve_effective(model, t, a0=0.5, dt=0.2, d=128, batch=32, n=128)
    dev = {k: (np.mean(np.abs(sgd[k] - getattr(eff, k))), np.mean(np.abs(sgd[k] - getattr(ode, k))))
           for k in ("m", "a")}
    assert dev["m"][0] < dev["m"][1] and dev["a"][0] < 0.5 * dev["a"][1], dev
    assert sgd["q_perp"].max() > 0.08 and eff.q_perp.max() > 0.08
    assert np.max(np.abs(sgd["q_perp"] - eff.q_perp)) < 0.03
    c = fs.compare(fs.Trajectory("sgd", t, sgd["m"], sgd["a"], np.zeros_like(t)), eff)
    assert c.levels == ("sgd", "effective") and c.max_dm == pytest.approx(np.max(np.abs(sgd["m"] - eff.m)))


def test_predicted_q_perp_grows_with_dt_d_over_b():
    """The effective map's q_perp at t = 3 grows with dt d / B and relaxes to about -1/(n-1) without noise."""
    model = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
    q = [float(fs.solve_effective(model, [0.0, 3.0], a0=0.5, dt=0.1, d=256, batch=B, n=256).q_perp[-1])
         for B in (4096, 1024, 256, 64)]
    assert q[0] < q[1] < q[2] < q[3] and q[3] > 0.03, q
    w = fs.solve_effective(model, [0.0, 40.0], a0=0.5, dt=0.1, d=256, batch=64, n=256, terms="width")
    assert w.q_perp[-1] == pytest.approx(-1 / 255, rel=0.05)


def test_terms_order_the_ablations():
    """Every variant runs and they differ; "no_feedback" moves m and a exactly as "shrink" does (q_perp
    evolves but is seen by neither), and only it has q_perp > 0; "width" at n = inf is the limit map."""
    model = _model()
    t = np.linspace(0, 3, 7)
    out = {k: fs.solve_effective(model, t, a0=0.5, dt=0.1, d=128, batch=32, n=128, terms=k) for k in TERMS}
    assert all(o.success for o in out.values())
    assert len({(round(float(o.m[-1]), 10), round(float(o.q_perp[-1]), 10)) for o in out.values()}) == len(TERMS)
    np.testing.assert_array_equal(out["no_feedback"].m, out["shrink"].m)
    assert out["no_feedback"].q_perp[-1] > 0.01 and abs(out["shrink"].q_perp[-1]) < 1e-12
    wide = fs.solve_effective(model, t, a0=0.5, dt=0.1, d=128, batch=32, n=math.inf, terms="width")
    _close(wide.m, out["map"].m, 1e-10)


def test_batch_equals_single_runs():
    model = _model()
    t = np.linspace(0, 2, 5)
    dts, Bs = np.array([[0.2], [0.1]]), np.array([32, 256, math.inf])
    b = fs.solve_effective_batch(model, t, a0=0.5, dt=dts, d=128, batch=Bs, n=128)
    assert b.batch_shape == (2, 3) and b.q_perp.shape == (2, 3, 5)
    for i in range(2):
        for j in range(3):
            one = fs.solve_effective(model, t, a0=0.5, dt=float(dts[i, 0]), d=128, batch=float(Bs[j]) if j == 2
                                     else int(Bs[j]), n=128, dense_output=False)
            np.testing.assert_array_equal(b.m[i, j], one.m)
            np.testing.assert_array_equal(b.q_perp[i, j], one.q_perp)
    b1 = fs.solve_effective_batch(model, t, a0=0.5, dt=dts, d=128, batch=Bs, n=128, threads=1)
    np.testing.assert_array_equal(b.a, b1.a)


def test_step_schedule_is_accepted():
    model = _model()
    from fastslow.stability import StepSchedule

    sch = StepSchedule(np.r_[np.full(10, 0.1), np.full(20, 0.05)])
    eff = fs.solve_effective(model, sch.times, a0=0.5, dt=0.1, d=128, batch=256, n=128, schedule=sch)
    assert eff.steps == 30 and eff.t_end == pytest.approx(2.0)
    fixed = fs.solve_effective(model, np.arange(11) * 0.1, a0=0.5, dt=0.1, d=128, batch=256, n=128)
    np.testing.assert_array_equal(eff.m[:11], fixed.m)
    stable = fs.solve_effective(model, [0.0, 2.0], a0=0.5, dt=0.1, terms="map", schedule="stable")
    assert stable.success


@pytest.mark.parametrize("kw, err, words", [
    ({"terms": "everything"}, ValueError, "terms"),
    ({"n": 1}, ValueError, "n: must be an integer >= 2"),
    ({"n": None}, TypeError, "n: required"),
    ({"batch": "64"}, TypeError, "batch"),
    ({"batch": 0}, ValueError, "batch"),
    ({"d": math.inf}, ValueError, "d: an infinite input dimension"),
    ({"dt": 0.0}, ValueError, "dt"),
    ({"dt": 11.0}, ValueError, "dt"),
    ({"a0": float("nan")}, ValueError, "a0"),
    ({"m0": 1.0}, ValueError, "m0"),
    ({"schedule": [0.1, 0.1]}, TypeError, "schedule"),
    ({"schedule": "fast"}, ValueError, "schedule"),
    ({"nodes": 1}, ValueError, "nodes"),
    ({"dense_output": 1}, TypeError, "dense_output"),
])
def test_bad_input(kw, err, words):
    args = dict(a0=0.5, m0=0.0, dt=0.1, d=64, batch=16, n=32)
    args.update(kw)
    with pytest.raises(err, match=words):
        fs.solve_effective(_model(), [0.0, 1.0], **args)
    with pytest.raises(ValueError, match="t_eval"):
        fs.solve_effective(_model(), [1.0, 0.5], a0=0.5, dt=0.1, terms="map")


def test_ctrl_c_stops_a_long_iteration(interrupt_subprocess):
    """The core polls for Ctrl-C with the GIL released: a run of 10^7 steps stops within a second."""
    code = (
        "import fastslow as fs, sys\n"
        "m = fs.Model('tanh', {1: 1.0, 3: 0.2}, lr_a=1.0)\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    fs.solve_effective(m, [0.0, 1e6], a0=0.5, dt=0.1, d=256, batch=64, n=256, dense_output=False)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    rc, out, waited = interrupt_subprocess(code, delay=1.0)
    assert rc == 0 and "interrupted" in out, out
    assert waited < 2.0 * TIME_SCALE
