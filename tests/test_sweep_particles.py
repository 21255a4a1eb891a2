"""Sweeps over the initial law (issue 20): a heterogeneous cell integrates the particle limit, an
identical-neuron cell the 2-D ODE (the two agree where the law is identical), SGD cells draw their
network from the law; the (mu, sigma) phase sweep of examples/sweep_particles_phase.toml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("xarray")
pytest.importorskip("zarr")

import fastslow as fs  # noqa: E402
from fastslow.analysis import classify_trajectory  # noqa: E402
from fastslow.particle_study import abs_means, particle_cells  # noqa: E402
from fastslow.study import limit_cells  # noqa: E402
from fastslow.sweep import SweepError, SweepSpec, load_sweep_spec, sweep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TANH = {"activation": "tanh", "target": {"1": 1.0, "3": 0.3}, "lr_a": 0.01}
T_MAX = 300.0


def _base(**init):
    return {"model": TANH, "init": {"m0": 0.1, "a_dist": "normal", **init}, "ode": {"t_max": T_MAX, "points": 25},
            "analysis": {"classify_t_max": T_MAX}, "particles": {"n": 6}}


def test_a_small_phase_sweep_stores_what_direct_particle_solves_give(tmp_path):
    """A 2 x 2 (mu, sigma) grid with a normal second layer: every stored variable against
    solve_particles on the law's particles, and the classification against classify_trajectory
    of |m|, |a| at [T/10, T]."""
    spec = SweepSpec.create(_base(), {"a0": [-0.5, 1.0], "a_sigma": [0.3, 1.0]}, compute=["ode", "analysis"])
    ds = sweep(spec, store=str(tmp_path / "s"), progress=False)
    assert (ds["level"].values == "particles").all() and (ds["particle_count"].values == 6).all()
    assert (ds["error"].values == "").all()
    model = spec.base.make_model()
    t = ds["t"].values
    for i, mu in enumerate([-0.5, 1.0]):
        for j, sigma in enumerate([0.3, 1.0]):
            law = fs.InitialLaw(a0=mu, m0=0.1, a_dist="normal", a_sigma=sigma)
            a, m, w = law.particles(6)
            tr = fs.solve_particles(model, t, a0=a, m0=m, weights=w, dense_output=False)
            cell = ds.isel(a0=i, a_sigma=j)
            np.testing.assert_allclose(cell["ode_m"].values, tr.m, rtol=0, atol=1e-12)
            np.testing.assert_allclose(cell["ode_a"].values, tr.a, rtol=0, atol=1e-12)
            np.testing.assert_allclose(cell["ode_loss"].values, tr.loss, rtol=0, atol=1e-12)
            np.testing.assert_allclose(cell["m_abs"].values, abs_means(tr)[0], rtol=0, atol=1e-12)
            assert float(cell["t_peak"]) == pytest.approx(float(tr.stats["t_peak"]), rel=1e-12)
            assert float(cell["m_final"]) == pytest.approx(float(tr.m[-1]), abs=1e-12)
            t3 = np.array([0.0, T_MAX / 10, T_MAX])
            tr3 = fs.solve_particles(model, t3, a0=a, m0=m, weights=w, dense_output=False)
            ma, aa = abs_means(tr3)
            probe = fs.Trajectory(level="particles", t=t3, m=ma, a=aa, loss=tr3.loss, status=tr3.status)
            c = classify_trajectory(probe)
            assert str(cell["outcome"].values) == c.outcome
            np.testing.assert_allclose(float(cell["exponent"]), c.exponent, rtol=1e-8, equal_nan=True)
    assert (ds["law"].values == fs.analysis.asymptotic_law(model).verdict).all()


def test_the_particle_path_equals_the_ode_where_the_law_is_identical():
    """particle_cells on identical neurons (one particle) against limit_cells (the 2-D ODE): the
    same trajectory, classification and law; and a sweep routes an identical law to the ODE."""
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.01)
    a0s = np.array([-1.0, 0.5, 2.0])
    t = fs.log_times(1e5, 40)
    pc = particle_cells(model, [fs.InitialLaw(a0=a, m0=0.1) for a in a0s], t_eval=t, classify_t_max=1e5)
    lc = limit_cells(model, a0=a0s, m0=0.1, t_eval=t, classify_t_max=1e5)
    assert (pc.n_particles == 1).all()
    np.testing.assert_allclose(pc.m, lc.ode.m, rtol=0, atol=1e-10)
    np.testing.assert_allclose(pc.a, lc.ode.a, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(pc.loss, lc.ode.loss, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pc.m_abs, np.abs(lc.ode.m), rtol=0, atol=1e-10)
    np.testing.assert_allclose(pc.t_peak, lc.ode.t_peak, rtol=1e-8)  # the events, polished on the Radau steps
    np.testing.assert_allclose(pc.m_peak, lc.ode.m_peak, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pc.t_half, lc.ode.t_half, rtol=1e-8, equal_nan=True)
    assert (pc.classification.outcome == lc.classification.outcome).all()
    np.testing.assert_allclose(pc.classification.exponent, lc.classification.exponent, rtol=1e-6, equal_nan=True)
    assert (pc.law == lc.law).all()
    # a sweep: sigma = 0 and a law of signs with no positive neuron are identical neurons (the ODE,
    # the latter from -a0); a categorical a_dist axis
    spec = SweepSpec.create({**_base(), "init": {"m0": 0.1, "a_positive": 0.0}},
                            {"a_dist": ["constant", "signs", "normal"], "a_sigma": [0.0, 0.5]}, compute="ode")
    ds = sweep(spec, store=None, progress=False)
    assert ds["level"].values.tolist() == [["ode", "ode"], ["ode", "ode"], ["ode", "particles"]]
    direct = fs.solve_ode(spec.base.make_model(), ds["t"].values, a0=-1.0, m0=0.1, dense_output=False)
    np.testing.assert_allclose(ds["ode_m"].values[1, 0], direct.m, rtol=0, atol=1e-12)
    ode = fs.solve_ode(spec.base.make_model(), ds["t"].values, a0=1.0, m0=0.1, dense_output=False)
    np.testing.assert_array_equal(ds["ode_m"].values[0, 0], ode.m)


@pytest.mark.parametrize("axes, needle", [
    ({"a_sigma": [0.5, -0.1]}, r"axes.a_sigma\[1\]: must be >= 0"),
    ({"a_positive": [0.5, 1.5]}, r"axes.a_positive\[1\]: must be >= 0 and <= 1"),
    ({"a_dist": ["normal", "cauchy"]}, r"axes.a_dist\[1\]: must be one of 'constant', 'normal', 'signs'"),
    ({"n_particles": [0, 4]}, r"axes.n_particles\[0\]: must be an integer >= 1"),
])
def test_bad_law_axes_are_refused_naming_the_field_and_range(axes, needle):
    with pytest.raises(SweepError, match=needle):
        SweepSpec.create(_base(), axes)


def test_an_sgd_cell_draws_its_network_from_the_law(tmp_path):
    """SGD cells of a heterogeneous law: the network starts with the law's spread of a, the
    stored limit is the particle limit's weighted mean at the records, the cloud distance is
    finite (identical neurons: NaN, as before)."""
    base = {**_base(), "sgd": {"d": 64, "n": 64, "batch": 512, "dt": 0.05, "steps": 20, "record": 5, "seeds": [3]}}
    spec = SweepSpec.create(base, {"a_sigma": [0.0, 0.8]}, compute="sgd")
    ds = sweep(spec, store=None, progress=False)
    assert (ds["error"].values == "").all()
    std0 = ds["sgd_a_std"].values[:, 0, 0]
    assert std0[0] == 0.0 and 0.5 < std0[1] < 1.1  # 64 draws of N(1, 0.8^2)
    cloud = ds["sgd_cloud"].values[:, 0]
    assert np.isnan(cloud[0]).all() and np.isfinite(cloud[1]).all() and cloud[1].max() < 0.5
    model = spec.base.make_model()
    a, m, w = fs.InitialLaw(a0=1.0, m0=0.1, a_dist="normal", a_sigma=0.8).particles(6)
    lim = fs.solve_particles(model, ds["sgd_t"].values[1, 0], a0=a, m0=m, weights=w, dense_output=False)
    np.testing.assert_allclose(ds["sgd_ode_m"].values[1, 0], lim.m, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds["sgd_ode_a"].values[1, 0], lim.a, rtol=0, atol=1e-12)


def test_the_phase_sweep_config_is_the_examples_grid():
    """examples/sweep_particles_phase.toml: the grid, model and horizon of the hand-built grid
    the committed figure came from (examples/figures/particles_phase.json)."""
    import json

    ref = json.loads((ROOT / "examples" / "figures" / "particles_phase.json").read_text())
    spec = load_sweep_spec(ROOT / "examples" / "sweep_particles_phase.toml")
    ax = {a.name: a for a in spec.axes}
    np.testing.assert_allclose(ax["a0"].coord, ref["mu"])
    np.testing.assert_allclose(ax["a_sigma"].coord, ref["sigma"])
    b = spec.base
    assert (b.init.a_dist, b.init.m0, b.particles.n, b.particles.draw) == ("normal", 0.1, ref["particles"], "quadrature")
    assert (b.ode.t_max, b.model.lr_a) == (ref["t_max"], ref["lr_a"])
    # the zipped axis "case" sets the three models of the hand-built grid
    wanted = [fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.01), fs.Model("gelu", {1: 1.0, 2: 0.4}, lr_a=0.01, centred=True),
              fs.Model("gelu", {1: 1.0, 2: -0.4}, lr_a=0.01, centred=True)]
    per_case = spec.n_cells // 3
    for k, want in enumerate(wanted):
        over = {fs.params.lookup(p): v for p, v in spec.cell_overrides(k * per_case).items() if p.startswith("model.")}
        got = fs.params.model_changes(b.make_model(), over)
        for x, y in ((got.s, want.s), (got.c, want.c)):
            n = max(len(x), len(y))
            np.testing.assert_allclose(np.pad(x, (0, n - len(x))), np.pad(y, (0, n - len(y))), rtol=0, atol=1e-14)
        assert (got.lr_w, got.lr_a) == (want.lr_w, want.lr_a)


def test_a_zipped_axis_may_repeat_a_field_value_but_not_a_cell():
    ok = SweepSpec.create(_base(), {"case": {"c2": [0.0, 0.4], "activation": ["gelu", "gelu"]}})
    assert ok.axes[0].values[1].tolist() == ["gelu", "gelu"]
    with pytest.raises(SweepError, match="axes.case: repeated cells"):
        SweepSpec.create(_base(), {"case": {"c2": [0.4, 0.4], "activation": ["gelu", "gelu"]}})
    with pytest.raises(SweepError, match="axes.a0: repeated values"):
        SweepSpec.create(_base(), {"a0": [1.0, 1.0]})


@pytest.mark.slow
def test_the_phase_sweep_reproduces_the_hand_built_grid(tmp_path):
    """The whole sweep of examples/sweep_particles_phase.toml (189 cells, ~7 s on 2 cores): peak,
    final |m|, the verdict and the fitted exponent of every cell against the numbers the example
    computed by hand with solve_particles_batch (examples/figures/particles_phase.json; measured
    agreement 1.4e-15)."""
    import json
    import sys

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import particles_phase as pp
    finally:
        sys.path.pop(0)
    ref = json.loads((ROOT / "examples" / "figures" / "particles_phase.json").read_text())
    ds = sweep(load_sweep_spec(ROOT / "examples" / "sweep_particles_phase.toml"), store=None, progress=False)
    assert (ds["error"].values == "").all()
    assert ((ds["level"].values == "ode") == (ds["a_sigma"].values == 0)[None, :, None]).all()
    for k, name in enumerate(pp.NAMES):
        r, c = pp.summarise(ds, k), ref["cases"][name]
        np.testing.assert_allclose(r["peak"], c["peak"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(r["final"], c["final"], rtol=0, atol=1e-9)
        assert r["unlearns"].tolist() == c["unlearns"]
        u = np.array(c["unlearns"])
        np.testing.assert_allclose(r["exponent"][u], np.array(c["exponent"])[u], rtol=0, atol=1e-7)


def test_particle_batches_are_split_to_bound_memory(monkeypatch):
    """A block of many cells is integrated in batches of bounded size: the same numbers either way."""
    import fastslow.particle_study as ps

    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.01)
    laws = [fs.InitialLaw(a0=0.5, m0=0.1, a_dist="normal", a_sigma=s) for s in (0.1, 0.4, 0.8)]
    laws.append(fs.InitialLaw(a0=0.5, m0=0.1, a_dist="signs", a_positive=0.3))  # two particles: its own batch
    t = fs.log_times(100.0, 12)
    whole = particle_cells(model, laws, n_particles=5, t_eval=t)
    calls = []
    real = ps.solve_particles_batch
    monkeypatch.setattr(ps, "solve_particles_batch", lambda *a, **k: calls.append(np.shape(k["a0"])) or real(*a, **k))
    monkeypatch.setattr(ps, "_BATCH_DOUBLES", 2 * 5 * t.size)
    split = particle_cells(model, laws, n_particles=5, t_eval=t)
    assert sorted(calls) == [(1, 2), (1, 5), (2, 5)]
    for k in ("m", "a", "loss", "m_abs", "t_peak"):
        np.testing.assert_array_equal(getattr(split, k), getattr(whole, k))
    assert split.n_particles.tolist() == [5, 5, 5, 2]


def test_a_store_of_the_version_before_the_law_variables_is_refused(tmp_path):
    import json

    spec = SweepSpec.create(_base(), {"a_sigma": [0.0, 0.5]}, compute="ode")
    store = tmp_path / "s"
    sweep(spec, store=str(store), progress=False)
    claim = json.loads((store / "fastslow.json").read_text())
    assert claim["body"]["version"] == 2
    from fastslow.sweep.store import _digest

    claim["body"]["version"] = 1  # a store written before the law's variables existed
    claim["sha256"] = _digest(claim["body"])
    (store / "fastslow.json").write_text(json.dumps(claim))
    with pytest.raises(SweepError, match="version 1; this fastslow writes version 2"):
        sweep(spec, store=str(store), progress=False)


def _local_exponent(model, mu, sigma, n_part, t_max=1e13):
    """-d log|m| / d log t over the last decade of the particle limit of a_i ~ N(mu, sigma^2)."""
    from scipy import special

    x, w = special.roots_hermitenorm(n_part)
    w = w / w.sum()
    t = np.geomspace(t_max / 10, t_max, 11)
    tr = fs.solve_particles(model, np.concatenate([[1.0], t]), a0=mu + sigma * x, m0=0.1, weights=w)
    assert tr.status == 0
    mabs = np.sum(w[:, None] * np.abs(tr.particles["m"][:, 1:]), axis=0)
    return -np.polyfit(np.log(t), np.log(mabs), 1)[0]


@pytest.mark.slow
def test_the_long_phase_sweep_findings_at_single_cells():
    """What the long sweep (examples/sweep_particles_phase_long.toml) reports, at single cells to
    t = 1e13: tanh keeps p = 1/4 with a random second layer; centred GELU with a spread second layer
    unlearns with p ~ 0.124 or ~ 0.084 (two classes), and 16 particles put (0, 1) in the wrong class."""
    tanh = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.01)
    gelu = fs.Model("gelu", {1: 1.0, 2: 0.4}, lr_a=0.01, centred=True)
    assert abs(_local_exponent(tanh, 0.0, 1.0, 64) - 0.25) < 1e-3
    assert abs(_local_exponent(gelu, -1.0, 1.0, 64) - 0.124) < 3e-3
    assert abs(_local_exponent(gelu, 1.0, 1.0, 64) - 0.084) < 2e-3
    assert abs(_local_exponent(gelu, 0.0, 1.0, 64) - 0.084) < 2e-3
    assert abs(_local_exponent(gelu, 0.0, 1.0, 16) - 0.125) < 3e-3  # too few particles: the other class
    # identical neurons: a0 < 0 unlearns with p = 1/3, a0 > 0 keeps the feature
    t = np.geomspace(1e12, 1e13, 11)
    o = fs.solve_ode_batch(gelu, np.concatenate([[1.0], t]), a0=np.array([-2.0, 1.0]), m0=0.1)
    p = -np.polyfit(np.log(t), np.log(np.abs(o.m[:, 1:])).T, 1)[0]
    assert abs(p[0] - 1 / 3) < 2e-3 and abs(p[1]) < 1e-3 and abs(o.m[1, -1]) > 0.3


def test_the_long_phase_sweep_is_the_first_grid_with_more_particles_and_time():
    short = load_sweep_spec(ROOT / "examples" / "sweep_particles_phase.toml")
    long = load_sweep_spec(ROOT / "examples" / "sweep_particles_phase_long.toml")
    assert [(a.name, a.fields) for a in short.axes] == [(a.name, a.fields) for a in long.axes]
    for a, b in zip(short.axes, long.axes):
        assert np.array_equal(np.asarray(a.values), np.asarray(b.values))
    assert (long.base.particles.n, long.base.ode.t_max, long.base.analysis.classify_t_max) == (64, 1e13, 1e13)
    s, lo = short.base.to_dict(), long.base.to_dict()
    for d in (s, lo):
        d["particles"].pop("n")
        d["ode"].pop("t_max")
        d["ode"].pop("points")
        d["analysis"].pop("classify_t_max")
    assert s == lo
