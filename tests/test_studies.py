"""The study layer of issue 17: the long-horizon study, SGD against the ODE as dt shrinks, the
validity-map criteria; their config and demo wiring. Small sizes: each test takes seconds."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastslow as fs
from fastslow import plotting
from fastslow.config import ConfigError, parse_config
from fastslow.studies import (ValidityCell, against_levels, deviation_against_dt, long_horizon, validity_cell,
                              validity_criteria)
from fastslow.studies.long_horizon import effective_solver, seed_stderr

MODEL = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=0.1)


@pytest.fixture(scope="module")
def small_lh():
    # t = 60 is before the half-life; what is checked here is the wiring and that SGD tracks the ODE
    return long_horizon(MODEL, d=24, n=24, batch=192, dt=0.2, t_max=60.0, a0=1.0, seeds=(0, 1, 2), record=25,
                        threads=1)


def test_long_horizon_holds_every_level_at_sgd_times(small_lh):
    st = small_lh
    assert st.seeds == [0, 1, 2] and st.sgd.batch_shape == (3,)
    assert st.t[0] == 0 and math.isclose(st.t[-1], 60.0)
    for name in ("ode", "slow_flow", "law"):
        tr = st.levels()[name]
        np.testing.assert_array_equal(tr.t, st.t)
    assert (st.effective is not None) == (effective_solver() is not None)
    # the seed statistics are those of the per-seed arrays
    np.testing.assert_allclose(st.m_mean, st.sgd.m.mean(axis=0))
    np.testing.assert_allclose(st.a_se, np.std(st.sgd.a, axis=0, ddof=1) / math.sqrt(3))
    np.testing.assert_allclose(st.m_neurons, st.sgd.m_std.mean(axis=0))
    np.testing.assert_allclose(st.q_mean, st.sgd.q_perp.mean(axis=0))
    assert np.all(st.m_neurons[1:] > 0) and np.all(st.a_se[1:] > 0)
    # SGD follows the ODE through the rise (to within the finite-size effects of d = n = 24)
    dm, da = st.deviation("ode")
    assert dm < 0.05 and da < 0.05
    # the slow flow starts on the manifold: far from SGD early, close after the fast phase
    dm_late, _ = st.deviation("slow_flow", t_min=30.0)
    assert dm_late < 0.05 < abs(st.slow_flow.m[1] - st.m_mean[1])
    assert st.t_half > 60.0 or math.isnan(st.t_half)  # the horizon ends before the half-life (840)


def test_long_horizon_result_reads_out(small_lh):
    st = small_lh
    r = repr(st)
    assert r.startswith("LongHorizonStudy(d = 24, n = 24, B = 192, dt = 0.2, 3 seed(s)") and "half-lives" in r
    at = st.at(15.0)
    assert at["t"] == pytest.approx(st.t[np.argmin(np.abs(st.t - 15.0))])
    assert set(at) >= {"t", "sgd", "ode", "slow_flow", "law"}
    ds = st.to_xarray()
    for k in ("sgd_m_mean", "sgd_m_se", "sgd_a_neurons", "sgd_q_mean", "ode_m", "slow_flow_a", "law_a"):
        assert k in ds and ds[k].dims == ("t",), k
    assert ds["m"].dims == ("seed", "t")
    fig = plotting.long_horizon(st)
    ln = [x for ax in fig.axes for x in ax.get_lines() if x.get_gid() == "lh-ode-m"][0]
    np.testing.assert_array_equal(ln.get_xdata(), st.t[1:])
    np.testing.assert_array_equal(ln.get_ydata(), st.ode.m[1:])


def test_long_horizon_refuses_bad_input():
    with pytest.raises(ValueError, match="seeds: need at least one seed"):
        long_horizon(MODEL, d=8, n=8, batch=8, dt=0.1, t_max=1.0, a0=1.0, seeds=())
    with pytest.raises(ValueError, match="t_max: must be > 0"):
        long_horizon(MODEL, d=8, n=8, batch=8, dt=0.1, t_max=-1.0, a0=1.0)
    with pytest.raises(ValueError, match="t_max: must be at least one step"):
        long_horizon(MODEL, d=8, n=8, batch=8, dt=0.1, t_max=0.01, a0=1.0)
    ode = fs.solve_ode(MODEL, [0.0, 1.0], a0=1.0)
    with pytest.raises(TypeError, match="sgd: must be an SGD Trajectory stacked along 'seed'"):
        against_levels(MODEL, ode, a0=1.0)
    if effective_solver() is None:
        with pytest.raises(ValueError, match="effective: this build of fastslow has no solve_effective"):
            long_horizon(MODEL, d=8, n=8, batch=8, dt=0.1, t_max=1.0, a0=1.0, effective=True)


def test_seed_stderr():
    assert np.isnan(seed_stderr(np.ones((1, 4)))).all()
    np.testing.assert_allclose(seed_stderr([[0.0, 1.0], [2.0, 1.0]]), [1.0, 0.0])


@pytest.mark.slow
def test_the_deviation_falls_with_dt():
    """The O(dt) bias of SGD: at fixed dt d / B, fourfold smaller steps give a smaller deviation
    from the ODE. (At d = 32 the finite-size floor is near 0.015, so the slope is about 0.4, not the
    0.9 of d = 256 in examples/README.md; tests/test_sgd.py checks the dominance itself.)"""
    model = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
    st = deviation_against_dt(model, dts=(0.2, 0.05), a0=0.5, d=32, noise=0.0125, t_max=5.0, seeds=(0, 1), record=21)
    assert st.varied == "dt" and st.values.tolist() == [0.2, 0.05]
    assert np.all(np.isfinite(st.stderr_dm)) and st.max_dm.shape == (2,)
    assert st.max_dm[1] < 0.8 * st.max_dm[0] and st.slope_dm > 0.15
    assert "DeviationStudy(dt from 0.05 to 0.2" in repr(st)
    with pytest.raises(ValueError, match="dts: every step must be > 0"):
        deviation_against_dt(model, dts=(0.1, 0.0), a0=0.5)


class _Level:
    def __init__(self, m, a):
        self.m, self.a = np.asarray(m), np.asarray(a)


def test_validity_cell_and_criteria():
    t = np.linspace(0, 1, 5)
    rng = np.random.default_rng(0)
    truth_m, truth_a = np.tanh(t), 1 + t
    m = truth_m + 0.01 * rng.standard_normal((6, 5))
    a = truth_a + 0.01 * rng.standard_normal((6, 5))
    m[:, 0], a[:, 0] = 0.0, 1.0  # all seeds start at the initial condition: SE 0 there, not used for z
    good = validity_cell(ratio=1.0, dt=0.1, t=t, m=m, a=a, ode=_Level(truth_m + 0.1, truth_a + 0.1),
                         effective=_Level(truth_m, truth_a))
    assert good.closer and good.required and good.seeds == 6
    assert good.z_m < 5 and math.isfinite(good.z_a)
    far = validity_cell(ratio=16.0, dt=0.025, t=t, m=m, a=a, ode=_Level(truth_m, truth_a),
                        effective=_Level(truth_m + 0.5, truth_a))
    assert not far.closer and not far.required and not far.within_3se and far.z_m > 10
    assert far.eff_dm == pytest.approx(np.max(np.abs(m.mean(0) - truth_m - 0.5)[1:]))
    crit = validity_criteria([good, far])
    assert crit["required"] == 1 and crit["closer_required"] == int(good.closer) and crit["closer_ok"] == good.closer
    assert crit["within_3se"] == int(good.within_3se) and crit["within_ok"] is False
    assert (16.0, 0.025) in crit["not_within"]
    assert ValidityCell(**{k: v for k, v in far.to_dict().items() if k not in ("closer", "within_3se", "required")}) == far
    with pytest.raises(ValueError, match=r"m, a: must both have shape \(seeds, 5\)"):
        validity_cell(ratio=1.0, dt=0.1, t=t, m=m[:, :4], a=a, ode=_Level(truth_m, truth_a),
                      effective=_Level(truth_m, truth_a))


# ---------------------------------------------------------------------------------------------
# the config and the demo
# ---------------------------------------------------------------------------------------------
def test_long_horizon_config_section():
    cfg = parse_config({"long_horizon": {"enabled": True, "d": 16, "t_max": 100.0, "seeds": [3, 4]}})
    assert cfg.long_horizon.enabled and cfg.long_horizon.d == 16 and cfg.long_horizon.seeds == [3, 4]
    assert cfg.long_horizon.batch == 1024 and not fs.Config().long_horizon.enabled
    with pytest.raises(ConfigError, match=r"long_horizon.dt: must be .*> 0"):
        parse_config({"long_horizon": {"dt": 0.0}})
    with pytest.raises(ConfigError, match="long_horizon.recrod: unknown key; did you mean 'record'"):
        parse_config({"long_horizon": {"recrod": 10}})
    assert "[long_horizon]" in fs.example_config()


def test_run_with_the_long_horizon_study(tmp_path):
    data = {"model": {"activation": "tanh", "target": {"1": 1.0, "3": 0.3}, "lr_a": 0.1}, "init": {"a0": 1.0},
            "ode": {"t_max": 1e4, "points": 40}, "sgd": {"enabled": False},
            "long_horizon": {"enabled": True, "d": 16, "n": 16, "batch": 128, "dt": 0.2, "t_max": 20.0,
                             "seeds": [0, 1], "record": 12},
            "analysis": {"enabled": False}}
    res = fs.run(data)
    lh = res.long_horizon
    assert lh is not None and lh.seeds == [0, 1] and lh.sgd.params["d"] == 16
    from fastslow.cli import _write_run

    html = _write_run(res, tmp_path / "o", quiet=True)
    figs = sorted(p.name for p in (tmp_path / "o" / "figures").glob("*.png"))
    assert "long_horizon.png" in figs
    md = (tmp_path / "o" / "report.md").read_text()
    # the report leads with the long-horizon figure, and its caption says what the error bars are
    assert md.index("figures/long_horizon.png") < md.index("figures/phase_portrait.png")
    assert "standard error of that mean over the seeds" in md and "over the neurons" in md
    assert "long horizon" in md and "standard error" in html.read_text()
    back = fs.load(tmp_path / "o")
    assert back == res
    np.testing.assert_array_equal(back.long_horizon.sgd.q_perp, lh.sgd.q_perp)


def test_demo_long_horizon_runs_past_two_half_lives():
    from fastslow.cli import demo_configs

    for quick in (True, False):
        cases = demo_configs(quick)
        name = next(iter(cases))
        assert name == "tanh_long_horizon"  # the demo leads with it
        cfg = parse_config(cases[name])
        lh = cfg.long_horizon
        assert lh.enabled and len(lh.seeds) >= 2
        ode = fs.solve_ode(cfg.make_model(), np.linspace(0, lh.t_max, 201), a0=cfg.init.a0, m0=cfg.init.m0)
        assert lh.t_max > 2 * float(ode.t_half) > 0, (lh.t_max, ode.t_half)
        # its dt stays within the stable bound of the fast and collective modes along the limit ODE
        from fastslow.stability import stability

        st = stability(cfg.make_model(), a0=cfg.init.a0, m0=cfg.init.m0, dt=lh.dt, t_max=lh.t_max)
        assert not np.isfinite(st.t_unstable), st
