"""Fast-slow analysis (``fastslow.analysis``): manifold, folds, equilibria, slow flow, asymptotic law,
classification, phase diagrams; the result types (short reprs, plain data, xarray).
"""

from __future__ import annotations

import importlib
import json
import math

import numpy as np
import pytest
from scipy.optimize import brentq

import fastslow as fs
from fastslow import _persist, analysis

LR_A = 0.01


def tanh_h3(kappa: float = 0.3, lr_a: float = LR_A) -> fs.Model:
    return fs.Model("tanh", {1: 1.0, 3: kappa}, lr_a=lr_a)


def gelu_h2(kappa: float, lr_a: float = LR_A) -> fs.Model:
    return fs.Model("gelu", {1: 1.0, 2: kappa}, lr_a=lr_a, centred=True)


# A polynomial student whose manifold has a fold (a piece of a = alpha(m) turns back).
FOLD_MODEL = dict(activation={"hermite": [0.0, 1.0, 0.5, 1.0]}, target={1: -1.0, 2: 0.5, 3: 0.5})

MANIFOLD_MODELS = [
    ("tanh h1+0.3h3", lambda: tanh_h3(0.3)),
    ("tanh h1-0.3h3", lambda: tanh_h3(-0.3)),
    ("gelu h1+0.4h2", lambda: gelu_h2(0.4)),
    ("relu h1-0.4h2", lambda: fs.Model("relu", {1: 1.0, 2: -0.4}, centred=True)),
    ("poly with fold", lambda: fs.Model(**FOLD_MODEL)),
    ("erf, c1 = 0", lambda: fs.Model("erf", {3: 1.0})),
]


# ---------------------------------------------------------------------------------------------
# critical manifold
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,make", MANIFOLD_MODELS, ids=[n for n, _ in MANIFOLD_MODELS])
def test_manifold_points_are_roots_and_none_is_missed(name, make):
    model = make()
    a = np.concatenate([np.linspace(-6, 6, 97), [0.2231, 0.2240, 0.22408]])
    a = a[a != 0]
    cm = fs.critical_manifold(model, a)
    assert np.nanmax(cm.residual) < 1e-10
    # dense sign-change scan of dL/dm on a fine grid: every sign change holds a reported point
    grid = np.linspace(-1 + 1e-9, 1 - 1e-9, 40001)
    for i, ai in enumerate(a):
        g = model.grad(grid, ai)[:, 0]
        changes = np.nonzero(np.sign(g[:-1]) * np.sign(g[1:]) < 0)[0]
        found = cm.m[i][np.isfinite(cm.m[i])]
        for j in changes:
            assert np.any((found >= grid[j] - 1e-12) & (found <= grid[j + 1] + 1e-12)), (name, ai, grid[j])
        # and each reported point sits where the scan sees a sign change or a double root
        assert len(found) >= len(changes)


@pytest.mark.parametrize("name,make", MANIFOLD_MODELS, ids=[n for n, _ in MANIFOLD_MODELS])
def test_stability_labels_match_the_second_derivative(name, make):
    model = make()
    cm = fs.critical_manifold(model, np.linspace(0.1, 5, 50))
    ok = np.isfinite(cm.m)
    H = model.hessian(cm.m[ok], np.broadcast_to(cm.a[:, None], cm.m.shape)[ok])
    assert np.array_equal(cm.attracting[ok], H[:, 0, 0] > 0)
    for br in cm.branches:  # one stability per branch, away from a = 0
        if br.kind == "interior":
            col = ok[:, br.index]
            if col.any():
                assert np.all(cm.attracting[col, br.index] == br.attracting)


def test_branches_are_continuous_in_a():
    model = tanh_h3(0.3)
    a = np.linspace(1.1, 40, 4000)
    cm = fs.critical_manifold(model, a)
    m = cm.m[:, 1]
    assert np.all(np.isfinite(m))
    assert np.max(np.abs(np.diff(m))) < 5e-3
    assert np.all(np.diff(m) < 0)  # the lazy branch: m decreases as a grows
    mu = model.c[1] / model.s[1]  # the lazy end: a m -> c_1 / s_1
    gap = np.abs(a * m - mu)
    assert np.all(np.diff(gap[len(a) // 2:]) < 0) and gap[-1] / mu < 0.02


def test_fold_located_to_1e10():
    model = fs.Model(**FOLD_MODEL)
    st = fs.manifold_structure(model)
    assert len(st.folds) == 1
    f = st.folds[0]
    g = model.grad(f.m, f.a)
    H = model.hessian(f.m, f.a)
    assert abs(g[0]) < 1e-10 and abs(H[0, 0]) < 1e-10
    # the fold is the extremum of a = alpha(m) = 2 B'/A': compare with a fine scan
    mm = np.linspace(f.m - 1e-3, f.m + 1e-3, 200001)
    S = model.core.series(mm)
    alpha = 2 * S[4] / S[1]
    i = np.argmax(alpha) if alpha[len(mm) // 2] > alpha[0] else np.argmin(alpha)
    assert abs(mm[i] - f.m) < 2e-8 and abs(alpha[i] - f.a) < 1e-12
    # one attracting and one repelling branch meet there
    b1, b2 = (st.branches[i] for i in f.branches)
    assert b1.attracting != b2.attracting


def test_manifold_on_10000_values():
    model = tanh_h3(0.3)
    cm = fs.critical_manifold(model, np.linspace(-20, 20, 10_000))
    assert cm.m.shape == (10_000, len(cm.branches))
    assert np.nanmax(cm.residual) < 1e-10
    pts = cm.points()
    assert set(pts) == {"a", "m", "branch", "attracting"}


def test_trivial_branch_when_s1c1_is_zero():
    model = fs.Model("erf", {3: 1.0})
    st = fs.manifold_structure(model)
    assert st.trivial and st.branches[-1].kind == "trivial"
    cm = fs.critical_manifold(model, [0.5, 2.0])
    assert np.all(cm.m[:, -1] == 0.0)


def test_manifold_bad_input():
    model = tanh_h3()
    with pytest.raises(ValueError, match="a: every value must be finite"):
        fs.critical_manifold(model, [1.0, np.nan])
    with pytest.raises(ValueError, match="a: must contain"):
        fs.critical_manifold(model, [])
    with pytest.raises(TypeError, match="model"):
        fs.critical_manifold("tanh", [1.0])
    cm = fs.critical_manifold(model, [0.0, 1.5])
    assert cm.degenerate.tolist() == [True, False] and np.all(np.isnan(cm.m[0]))


# ---------------------------------------------------------------------------------------------
# equilibria
# ---------------------------------------------------------------------------------------------
EQ_MODELS = [
    ("gelu h1+0.4h2", lambda: gelu_h2(0.4)),
    ("tanh h1-0.3h3", lambda: tanh_h3(-0.3)),
    ("gelu (not centred) h1-0.4h2", lambda: fs.Model("gelu", {1: 1.0, 2: -0.4})),
    ("poly with fold", lambda: fs.Model(**FOLD_MODEL, lr_a=LR_A)),
]


@pytest.mark.parametrize("name,make", EQ_MODELS, ids=[n for n, _ in EQ_MODELS])
def test_equilibria_are_fixed_points_with_the_right_stability(name, make):
    model = make()
    eqs = fs.equilibria(model)
    assert any(e.kind == "pole" for e in eqs) and len([e for e in eqs if e.kind == "pole"]) == 2
    rng = np.random.default_rng(0)
    for e in eqs:
        assert max(abs(e.gradient[0]), abs(e.gradient[1])) < 1e-10, e
        assert math.isclose(e.loss, float(model.loss(e.m, e.a)), rel_tol=1e-12)
        if e.kind == "a=0" or e.stability == "non-hyperbolic":
            continue
        # stability against a short integration from nearby
        rate = min(abs(ev.real) for ev in e.eigenvalues)
        t_end = 30.0 / rate
        dists = []
        for _ in range(6):
            dm, da = rng.normal(size=2) * 1e-4
            m0 = e.m + dm
            if abs(m0) >= 1:
                m0 = e.m - math.copysign(abs(dm), e.m)
            tr = fs.solve_ode(model, [0.0, t_end], a0=e.a + da, m0=m0, rtol=1e-10, atol=1e-12)
            dists.append(math.hypot(tr.m[-1] - e.m, tr.a[-1] - e.a) / math.hypot(m0 - e.m, da))
        if e.stable:
            assert max(dists) < 1e-3, (e, dists)
        else:
            assert max(dists) > 10, (e, dists)


def test_learning_equilibrium_of_model_md():
    e = [e for e in fs.equilibria(gelu_h2(0.4)) if e.stable and e.kind == "interior" and e.m > 0]
    assert len(e) == 1
    assert abs(e[0].m - 0.646) < 1e-3 and abs(e[0].a - 3.106) < 1e-3  # theory page section 4


# ---------------------------------------------------------------------------------------------
# slow flow
# ---------------------------------------------------------------------------------------------
def test_fenichel_deviation_is_order_eps():
    """After the fast layer, the full ODE stays within O(eps) of the slow flow: slope ~ 1."""
    epss = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    dev_m, dev_a = [], []
    for eps in epss:
        model = tanh_h3(0.3, lr_a=eps)
        t = np.concatenate([[0.0], np.geomspace(0.5, 50, 40) / eps])  # a fixed window of slow time
        sf = fs.solve_slow_flow(model, t, a0=2.0, m0=0.0)
        assert sf.status == fs.Status.SUCCESS and sf.level == "slow_flow"
        tr = fs.solve_ode(model, t, a0=2.0, m0=0.0, rtol=1e-10, atol=1e-12)
        dev_m.append(np.max(np.abs(tr.m[1:] - sf.m[1:])))
        dev_a.append(np.max(np.abs(tr.a[1:] - sf.a[1:])))
    slope_m = np.polyfit(np.log10(epss), np.log10(dev_m), 1)[0]
    slope_a = np.polyfit(np.log10(epss), np.log10(dev_a), 1)[0]
    assert 0.85 < slope_m < 1.15 and 0.85 < slope_a < 1.15, (slope_m, slope_a, dev_m, dev_a)
    assert dev_m[-1] < 1e-5


def test_slow_flow_stops_where_the_pole_loses_stability_and_jumps_on_request():
    model = tanh_h3(0.3)
    t = fs.log_times(1e7, 60)
    alpha1 = fs.manifold_structure(model).branches[1].a_lo  # where the branch leaves the pole m = 1
    sf = fs.solve_slow_flow(model, t, a0=1.0, m0=0.0)
    assert sf.status == fs.Status.STOPPED and sf.events[0].kind == "pole-unstable"
    assert abs(sf.events[0].a - alpha1) < 1e-9
    assert np.all(sf.m[sf.branch >= 0] == 1.0)
    sfj = fs.solve_slow_flow(model, t, a0=1.0, m0=0.0, jump=True)
    assert sfj.status == fs.Status.SUCCESS and [e.kind for e in sfj.events] == ["pole-unstable", "jump"]
    tr = fs.solve_ode(model, t, a0=1.0, m0=0.0)
    assert abs(sfj.a[-1] / tr.a[-1] - 1) < 1e-4 and abs(sfj.m[-1] / tr.m[-1] - 1) < 1e-4


def test_slow_flow_bad_input():
    model = tanh_h3()
    with pytest.raises(ValueError, match="a0"):
        fs.solve_slow_flow(model, [0.0, 1.0], a0=0.0, m0=0.0)
    with pytest.raises(ValueError, match="m0"):
        fs.solve_slow_flow(model, [0.0, 1.0], a0=1.0, m0=1.0)
    with pytest.raises(ValueError, match="t_eval"):
        fs.solve_slow_flow(model, [1.0, 0.5], a0=1.0, m0=0.0)


# ---------------------------------------------------------------------------------------------
# asymptotic law
# ---------------------------------------------------------------------------------------------
LAW_CASES = [  # (label, model, verdict, kind, power)
    ("tanh h1 (theory page)", lambda: fs.Model("tanh", {1: 1.0}, lr_a=LR_A), "unlearning", "self", 5),
    ("tanh h1+0.3h3 (theory page)", lambda: tanh_h3(0.3), "unlearning", "cross", 3),
    ("gelu h1-0.4h2 (theory page)", lambda: gelu_h2(-0.4), "unlearning", "cross", 2),
    ("gelu h1+0.4h2 (theory page)", lambda: gelu_h2(0.4), "learning", "cross", 2),
    ("erf h1+0.3h3", lambda: fs.Model("erf", {1: 1.0, 3: 0.3}, lr_a=LR_A), "unlearning", "cross", 3),
    ("relu h1-0.4h2", lambda: fs.Model("relu", {1: 1.0, 2: -0.4}, lr_a=LR_A, centred=True), "unlearning", "cross", 2),
    ("poly student, c2 and c3", lambda: fs.Model({"hermite": [0, 1, 0.5, -0.2]}, {1: 1, 2: -0.6, 3: 0.3}, lr_a=LR_A),
     "unlearning", "cross", 2),
    ("gelu s0 != 0", lambda: fs.Model("gelu", {1: 1.0, 2: -0.4}, lr_a=LR_A), "pinned", "pinned", 0),
    ("tanh h1+0.3h5: cross and self tie", lambda: fs.Model("tanh", {1: 1.0, 5: 0.3}, lr_a=LR_A), "learning",
     "cross+self", 5),
]


@pytest.mark.parametrize("label,make,verdict,kind,power", LAW_CASES, ids=[c[0] for c in LAW_CASES])
def test_asymptotic_law_against_the_ode(label, make, verdict, kind, power):
    model = make()
    law = fs.asymptotic_law(model)
    assert (law.verdict, law.kind, law.power) == (verdict, kind, power)
    t = np.array([0.0, 1e7, 1e8, 1e9])
    tr = fs.solve_ode(model, t, a0=1.0, m0=0.0)
    err = np.abs(law.predict_a(t[1:], 1.0) / tr.a[1:] - 1)
    assert np.all(err < 0.01), (label, err)


def test_law_values_of_model_md_table():
    expected = {"tanh h1 (theory page)": 9.011, "tanh h1+0.3h3 (theory page)": 20.010, "gelu h1-0.4h2 (theory page)": 52.37}
    for label, make, *_ in LAW_CASES:
        if label in expected:
            assert abs(fs.asymptotic_law(make()).predict_a(1e7, 1.0) - expected[label]) < 0.01


def test_law_coefficient_of_the_cross_term():
    model = tanh_h3(0.3)
    law = fs.asymptotic_law(model)
    s, c = model.s, model.c
    mu = c[1] / s[1]
    assert math.isclose(law.mu, mu) and math.isclose(law.D, -2 * s[3] * c[3] * mu ** 3, rel_tol=1e-14)
    assert law.exponent == 0.25


def test_law_undetermined_and_its_errors():
    law = fs.asymptotic_law(fs.Model("tanh", {3: 1.0}))
    assert law.verdict == "undetermined" and "s_1 c_1 = 0" in law.reason
    with pytest.raises(ValueError, match="undetermined"):
        law.predict_a(1e7, 1.0)
    law = fs.asymptotic_law(fs.Model("linear", {1: 1.0}))
    assert law.verdict == "undetermined" and "neutral" in law.reason


@pytest.mark.parametrize("make,q", [(lambda: fs.Model("tanh", {1: 1.0}, lr_a=LR_A), 5), (lambda: tanh_h3(0.3), 3),
                                    (lambda: gelu_h2(-0.4), 2)])
def test_measured_exponent_over_the_last_decade(make, q):
    model = make()
    c = fs.classify(model, a0=1.0, m0=0.0, t_max=1e10)
    assert c.outcome == "unlearning"
    assert abs(c.exponent - 1 / (q + 1)) < 0.01, c.exponent


# ---------------------------------------------------------------------------------------------
# the two insights
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["gelu-h2", "tanh-h3"])
def test_sign_decides_and_strength_sets_the_rate(family):
    make = (lambda k: gelu_h2(k)) if family == "gelu-h2" else (lambda k: tanh_h3(k))
    unlearn_side = -1 if family == "gelu-h2" else 1  # gelu: s2 > 0; tanh: s3 < 0
    kappas = np.array([0.1, 0.2, 0.4])
    # unlearning side: D proportional to |kappa|, late alignment smaller for larger |kappa|
    D, late = [], []
    t = np.array([0.0, 1e6, 1e7, 1e8])
    for k in kappas:
        model = make(unlearn_side * k)
        law = fs.asymptotic_law(model)
        assert law.verdict == "unlearning"
        D.append(law.D)
        late.append(fs.solve_ode(model, t, a0=1.0, m0=0.0).m[1:])
    D = np.array(D)
    assert np.allclose(D / kappas, D[0] / kappas[0], rtol=1e-12)
    late = np.array(late)
    assert np.all(np.diff(late, axis=0) < 0), late  # larger |kappa|: smaller alignment, at every t
    # learning side: a kept feature whose equilibrium alignment grows with |kappa|
    m_eq = []
    for k in kappas:
        model = make(-unlearn_side * k)
        assert fs.asymptotic_law(model).verdict == "learning"
        c = fs.classify(model, a0=1.0, m0=0.0, t_max=1e10)  # small |kappa| settles slowly (rate ~ kappa)
        assert c.outcome == "learning" and c.equilibrium is not None and c.equilibrium.stable
        m_eq.append(c.m_final)
    assert np.all(np.diff(m_eq) > 0), m_eq


def test_larger_a0_delays_unlearning():
    model = tanh_h3(0.3)
    t = np.array([0.0, 1e8])
    half = {}
    peak = {}
    for a0 in (0.25, 0.5, 1.0, 2.0, 4.0):
        tr = fs.solve_ode(model, t, a0=a0, m0=0.0)
        half[a0], peak[a0] = tr.t_half, tr.m_peak
    # from a0 = 1 to 4 the half-life grows by more than an order of magnitude (seen: 7e3, 3e4, 3e5)
    assert half[1.0] < half[2.0] < half[4.0]
    assert 5e3 < half[1.0] < 1e4 and 2e4 < half[2.0] < 4e4 and 2e5 < half[4.0] < 4e5
    # below a0 = 1 the alignment saturates near the pole and the half-life hardly moves
    assert peak[0.25] > 0.999 and peak[0.5] > 0.999
    assert abs(half[0.25] / half[1.0] - 1) < 0.1 and abs(half[0.5] / half[1.0] - 1) < 0.1


# ---------------------------------------------------------------------------------------------
# classification and phase diagrams
# ---------------------------------------------------------------------------------------------
def test_classify_batch_equals_single_runs():
    model = tanh_h3(0.3)
    a0 = np.array([0.5, 1.0, 2.0])
    cb = fs.classify_batch(model, a0=a0, m0=0.0, t_max=1e8, threads=2)
    assert cb.shape == (3,) and cb.equilibrium is None
    for i, a in enumerate(a0):
        c = fs.classify(model, a0=a, m0=0.0, t_max=1e8)
        assert c.outcome == cb.outcome[i] == "unlearning"
        assert c.exponent == cb.exponent[i] and c.t_half == cb.t_half[i]


def test_phase_diagram_separates_the_two_sides():
    model = tanh_h3(0.3)
    c3 = np.array([-0.3, -0.1, 0.1, 0.3])
    a0 = np.array([1.0, 2.0, 3.0])
    pd = fs.phase_diagram(model, ("c3", c3), ("a0", a0), t_max=1e8)
    assert pd.outcome.shape == (3, 4)
    assert np.all(pd.outcome[:, c3 < 0] == "learning") and np.all(pd.law[:, c3 < 0] == "learning")
    assert np.all(pd.outcome[:, c3 > 0] == "unlearning") and np.all(pd.law[:, c3 > 0] == "unlearning")
    # the half-life grows with a0 on the unlearning side
    assert np.all(np.diff(pd.t_half[:, c3 > 0], axis=0) > 0)
    # the cells agree with single classifications
    c = fs.classify(model.replace(target={"hermite": [0, 1, 0, 0.1]}), a0=2.0, m0=0.0, t_max=1e8)
    assert c.exponent == pytest.approx(pd.exponent[1, 2], rel=1e-12)


def test_phase_diagram_bad_input():
    model = tanh_h3(0.3)
    with pytest.raises(ValueError, match="unknown parameter 'kappa'"):
        fs.phase_diagram(model, ("kappa", [0.1]), ("a0", [1.0]))
    with pytest.raises(ValueError, match="must be different"):
        fs.phase_diagram(model, ("a0", [0.1]), ("a0", [1.0]))
    with pytest.raises(ValueError, match="non-empty"):
        fs.phase_diagram(model, ("c3", []), ("a0", [1.0]))


# ---------------------------------------------------------------------------------------------
# the one branch solver
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,make", MANIFOLD_MODELS, ids=[n for n, _ in MANIFOLD_MODELS])
def test_branch_solver_matches_a_dense_root_search(name, make):
    model = make()
    st = fs.manifold_structure(model)
    rng = np.random.default_rng(1)
    a = np.concatenate([rng.uniform(-6, 6, 40), [0.5, 1.5, 3.0]])
    for br in st.branches:
        if br.kind != "interior":
            continue
        got = analysis.branch_points(model, br, a)
        for ai, mi in zip(a, got):
            # dense scan of h(m) = a A'/2 - B' over the branch's interval, then brentq
            grid = np.linspace(br.m_lo, br.m_hi, 4001)[1:-1]
            S = model.core.series(grid)
            h = 0.5 * ai * S[1] - S[4]
            ch = np.nonzero(np.sign(h[:-1]) * np.sign(h[1:]) < 0)[0]
            assert len(ch) <= 1, (name, br, ai)  # a branch holds at most one point at each a
            if not ch.size:
                assert np.isnan(mi) or abs(model.grad(mi, ai)[0]) < 1e-10, (name, br.index, ai, mi)
                continue

            def hf(x: float, ai: float = ai) -> float:
                Sx = model.core.series(np.array([x]))
                return float(0.5 * ai * Sx[1, 0] - Sx[4, 0])

            ref = brentq(hf, grid[ch[0]], grid[ch[0] + 1], xtol=1e-15, rtol=1e-15)
            assert abs(mi - ref) <= 1e-12 * max(1.0, abs(ref)), (name, br.index, ai, mi, ref)


def test_the_manifold_and_the_slow_flow_share_the_branch_solver(monkeypatch):
    model = tanh_h3(0.3)
    calls = {"manifold": 0, "slow_flow": 0}
    for mod_name in calls:
        mod = importlib.import_module(f"fastslow.analysis.{mod_name}")
        original = analysis.branch_points

        def counting(*args, _m=mod_name, _f=original, **kw):
            calls[_m] += 1
            return _f(*args, **kw)

        monkeypatch.setattr(mod, "branch_points", counting)
    t = fs.log_times(1e6, 30)
    sf = fs.solve_slow_flow(model, t, a0=2.0, m0=0.0)
    assert calls["slow_flow"] > 0 and calls["manifold"] > 0
    # and the slow flow's points are the solver's points at its values of a
    on = sf.branch == 1
    direct = analysis.branch_points(model, fs.manifold_structure(model).branches[1], sf.a[on])
    np.testing.assert_allclose(sf.m[on], direct, rtol=1e-13, atol=0)


# ---------------------------------------------------------------------------------------------
# the new API: scalars, trajectories, thresholds
# ---------------------------------------------------------------------------------------------
def test_classify_returns_scalars():
    c = fs.classify(tanh_h3(0.3), a0=1.0, t_max=1e8)
    assert isinstance(c.outcome, str) and c.outcome == "unlearning" and c.shape == ()
    for k in ("exponent", "m_final", "a_final", "m_peak", "t_peak", "t_half", "t_max"):
        assert type(getattr(c, k)) is float, k
    assert c.equilibrium is None  # unlearning settles nowhere
    c = fs.classify(gelu_h2(0.4), a0=1.0, t_max=1e9)
    assert c.outcome == "learning" and isinstance(c.equilibrium, fs.Equilibrium)
    assert math.isnan(c.exponent) and abs(c.m_final - c.equilibrium.m) < 1e-4
    # a batch of arrays, shaped as solve_ode_batch broadcasts them
    cb = fs.classify_batch([tanh_h3(0.3), gelu_h2(0.4)], a0=np.array([[1.0], [2.0]]), t_max=1e9)
    assert cb.shape == (2, 2) and cb.m_final.shape == (2, 2)
    assert cb.outcome.tolist() == [["unlearning", "learning"], ["unlearning", "learning"]]
    c0 = fs.classify_batch(tanh_h3(0.3), a0=1.0, t_max=1e8)
    assert c0.shape == () and isinstance(c0.outcome, np.ndarray)


def test_thresholds_are_defined_once_and_used():
    assert fs.Thresholds() == analysis.DEFAULT_THRESHOLDS == analysis.Thresholds(1e-6, 1e-3, 0.02)
    model = tanh_h3(0.3)
    c = fs.classify(model, a0=1.0, t_max=1e8)
    assert c.thresholds is analysis.DEFAULT_THRESHOLDS
    # unlearning needs slopes steeper than slope_tol: with a huge slope_tol nothing unlearns
    strict = fs.classify(model, a0=1.0, t_max=1e8, thresholds=fs.Thresholds(slope_tol=0.5))
    assert strict.outcome == "undetermined" and strict.m_final == c.m_final
    loose = fs.classify_batch(model, a0=[1.0], t_max=1e8, thresholds=fs.Thresholds(settle_tol=1.0))
    assert loose.outcome.tolist() == ["learning"]  # "settled" when anything within 1 counts as still
    pd = fs.phase_diagram(model, ("c3", [0.3]), ("a0", [1.0]), t_max=1e8, thresholds=fs.Thresholds(slope_tol=0.5))
    assert pd.outcome.tolist() == [["undetermined"]]
    with pytest.raises(ValueError, match="thresholds.m_tol"):
        fs.Thresholds(m_tol=-1.0)
    with pytest.raises(TypeError, match="thresholds"):
        fs.classify(model, a0=1.0, thresholds={"slope_tol": 0.5})
    # the verdict from any ODE batch whose last two save times span the decade
    bt = fs.solve_ode_batch(model, [0.0, 1e7, 1e8], a0=[1.0, 2.0])
    cb = fs.classify_batch(model, a0=[1.0, 2.0], t_max=1e8)
    ct = analysis.classify_trajectory(bt)
    np.testing.assert_array_equal(ct.exponent, cb.exponent)
    assert ct.outcome.tolist() == cb.outcome.tolist()


def test_classify_bad_input():
    model = tanh_h3(0.3)
    with pytest.raises(ValueError, match="t_max"):
        fs.classify(model, a0=1.0, t_max=0.0)
    with pytest.raises(ValueError, match="m0"):
        fs.classify(model, a0=1.0, m0=1.0)
    with pytest.raises(TypeError, match="a0"):
        fs.classify(model, a0="1")
    with pytest.raises(TypeError):
        fs.classify(model, 1.0)  # initial conditions are keyword-only
    with pytest.raises(TypeError, match="model"):
        fs.classify("tanh", a0=1.0)


def test_law_trajectory_against_the_ode_at_long_times():
    # theory page section 4: tanh, h1 + 0.3 h3, lr_a = 0.01, a0 = 1: law a(1e7) = 20.010, ODE 20.018
    model = tanh_h3(0.3)
    law = fs.asymptotic_law(model)
    t = fs.log_times(1e7, 60)
    lt = law.trajectory(t, a0=1.0, model=model)
    ode = fs.solve_ode(model, t, a0=1.0, m0=0.0)
    assert isinstance(lt, fs.Trajectory) and lt.level == "law" and lt.status == fs.Status.SUCCESS
    assert abs(lt.a[-1] - 20.010) < 1e-3 and abs(ode.a[-1] - 20.018) < 1e-3
    np.testing.assert_array_equal(lt.a, law.predict_a(t, 1.0))
    np.testing.assert_allclose(lt.m, law.mu / lt.a, rtol=1e-15)
    cmp = fs.compare(lt, ode)
    assert cmp.levels == ("law", "ode")
    late = t >= 1e6
    assert np.all(np.abs(cmp.da[late] / ode.a[late]) < 1e-3), cmp.da[late] / ode.a[late]
    assert np.all(np.abs(cmp.dm[late] / ode.m[late]) < 6e-3), cmp.dm[late] / ode.m[late]
    assert np.all(np.abs(cmp.dloss[late] / ode.loss[late]) < 1e-3)
    # m = mu / a exceeds 1 early (an asymptotic statement): no loss there
    assert np.all(np.isnan(lt.loss[np.abs(lt.m) > 1])) and np.all(np.isfinite(lt.loss[np.abs(lt.m) <= 1]))
    np.testing.assert_allclose(lt.loss[late], model.loss(lt.m[late], lt.a[late]), rtol=1e-15)
    assert lt.params["verdict"] == "unlearning" and lt.params["exponent"] == 0.25
    # learning: the limit; undetermined: refused; another model: refused
    g = gelu_h2(0.4)
    lg = fs.asymptotic_law(g).trajectory([0.0, 1e9], a0=1.0, model=g)
    assert np.all(lg.a == fs.asymptotic_law(g).a_limit) and abs(lg.m[-1] - 0.646) < 1e-3
    with pytest.raises(ValueError, match="undetermined"):
        fs.asymptotic_law(fs.Model("tanh", {3: 1.0})).trajectory([0.0, 1.0], a0=1.0, model=fs.Model("tanh", {3: 1.0}))
    with pytest.raises(ValueError, match="lr_a"):
        law.trajectory(t, a0=1.0, model=tanh_h3(0.3, lr_a=0.1))
    with pytest.raises(ValueError, match="t_eval"):
        law.trajectory([1.0, 0.5], a0=1.0, model=model)


def test_slow_flow_is_a_trajectory():
    model = tanh_h3(0.3)
    t = fs.log_times(1e6, 20)
    sf = fs.solve_slow_flow(model, t, a0=1.0, m0=0.0)  # stops where the pole m = 1 loses stability
    assert isinstance(sf, fs.Trajectory) and sf.status is fs.Status.STOPPED and "stopped" in sf.message
    assert sf.params["branch_names"][sf.branch[0]] == "pole m=+1"
    after = sf.branch < 0
    assert after.any() and np.all(np.isnan(sf.m[after])) and np.all(np.isnan(sf.loss[after]))
    ok = ~after
    np.testing.assert_allclose(sf.loss[ok], model.loss(sf.m[ok], sf.a[ok]), rtol=1e-15)
    assert all(isinstance(e, fs.SlowFlowEvent) for e in sf.events)
    with pytest.raises(TypeError, match="t_eval"):
        fs.solve_slow_flow(model, None, a0=1.0)
    with pytest.raises(TypeError, match="jump"):
        fs.solve_slow_flow(model, t, a0=1.0, jump=1)
    with pytest.raises(ValueError, match="max_jumps"):
        fs.solve_slow_flow(model, t, a0=1.0, max_jumps=-1)


# ---------------------------------------------------------------------------------------------
# result types: short reprs, plain data, xarray
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def results():
    fold = fs.Model(**FOLD_MODEL, lr_a=LR_A)
    model = tanh_h3(0.3)
    many_terms = fs.Model("relu", {1: 1.0, 2: -0.4}, lr_a=LR_A, centred=True)  # dozens of lazy-end terms
    st = fs.manifold_structure(fold)
    sf = fs.solve_slow_flow(model, fs.log_times(1e6, 10), a0=1.0, jump=True)
    return {
        "AsymptoticLaw": fs.asymptotic_law(many_terms),
        "AsymptoticLaw (learning)": fs.asymptotic_law(gelu_h2(0.4)),
        "AsymptoticLaw (undetermined)": fs.asymptotic_law(fs.Model("tanh", {3: 1.0})),
        "CriticalManifold": fs.critical_manifold(fold, np.linspace(-5, 5, 200)),
        "ManifoldStructure": st,
        "Branch": st.branches[0],
        "Fold": st.folds[0],
        "Equilibrium": fs.equilibria(gelu_h2(0.4))[0],
        "SlowFlowEvent": sf.events[-1],
        "Classification": fs.classify(model, a0=1.0, t_max=1e8),
        "Classification (batch)": fs.classify_batch(model, a0=np.linspace(0.5, 2, 30), t_max=1e8),
        "PhaseDiagram": fs.phase_diagram(model, ("c3", np.linspace(-0.3, 0.3, 7)), ("a0", [1.0, 2.0]), t_max=1e8),
    }


def test_reprs_are_short_summaries(results):
    res = results
    assert len(res["AsymptoticLaw"].terms) > 40
    for name, obj in res.items():
        r = repr(obj)
        assert r.startswith(type(obj).__name__ + "("), (name, r)
        assert len(r) < 160 and "\n" not in r and "array" not in r and "{" not in r, (name, r)
    assert repr(res["AsymptoticLaw (learning)"]).startswith("AsymptoticLaw(learning: cross term of order 2")
    assert repr(fs.asymptotic_law(tanh_h3(0.3))) == ("AsymptoticLaw(unlearning: cross term of order 3, a ~ t^(1/4), "
                                                     "D = 0.4008, mu = 1.651)")
    assert repr(res["CriticalManifold"]) == ("CriticalManifold(200 values of a in [-5, 5], 4 branches "
                                             "(3 attracting), 1 fold)")
    r = repr(res["PhaseDiagram"])
    assert r.startswith("PhaseDiagram(c3 x a0: 7 x 2 cells, ") and "unlearning" in r and "t_max = 1e+08" in r


def test_results_are_plain_data_that_round_trip(results):
    for name, obj in results.items():
        d = obj.to_dict()
        assert isinstance(d, dict) and d, name
        arrays: dict[str, np.ndarray] = {}
        tree = json.loads(json.dumps(_persist.dump(obj, arrays), allow_nan=False))
        back = _persist.restore(tree, arrays)
        assert type(back) is type(obj) and repr(back) == repr(obj), name
        for k, v in d.items():
            w = back.to_dict()[k]
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(w, v, err_msg=f"{name}.{k}")
            else:
                assert w == v or (isinstance(v, float) and math.isnan(v) and math.isnan(w)), (name, k)


def test_to_xarray(results):
    pytest.importorskip("xarray")
    res = results
    ds = res["CriticalManifold"].to_xarray()
    assert ds["m"].dims == ("a", "branch") and ds.sizes["branch"] == 4
    ds = res["Classification (batch)"].to_xarray()
    assert ds["outcome"].shape == (30,) and ds.attrs["t_max"] == 1e8 and ds.attrs["slope_tol"] == 0.02
    pd = res["PhaseDiagram"]
    ds = pd.to_xarray()
    assert ds["outcome"].dims == ("a0", "c3") and ds["c3"].attrs["long_name"] == fs.params.label("c3")
    np.testing.assert_array_equal(ds["t_half"].values, pd.t_half)
    assert pd.x_label == fs.params.label("c3") and pd.y_label == fs.params.label("a0")


# ---------------------------------------------------------------------------------------------
# phase diagrams on any named parameter
# ---------------------------------------------------------------------------------------------
def test_phase_diagram_on_any_registered_parameter():
    model = tanh_h3(0.3)
    pd = fs.phase_diagram(model, ("eps", [1e-3, 1e-2]), ("s3", [-0.2, 0.2]), t_max=1e8)
    assert pd.outcome.shape == (2, 2)
    # s3 < 0 with c3 > 0 is the unlearning side; s3 > 0 keeps the feature, at every eps
    assert np.all(pd.outcome[0] == "unlearning") and np.all(pd.outcome[1] == "learning")
    assert np.all(pd.law[0] == "unlearning") and np.all(pd.law[1] == "learning")
    # a cell is the classification of the model params.model_changes builds
    cell = fs.params.model_changes(model, {fs.params.lookup("eps"): 1e-2, fs.params.lookup("s3"): 0.2})
    c = fs.classify(cell, a0=1.0, t_max=1e8)
    assert c.exponent == pytest.approx(pd.exponent[1, 1], nan_ok=True) and c.m_final == pd.m_final[1, 1]
    # the initial conditions by their config paths and aliases too
    pd2 = fs.phase_diagram(model, ("init.m0", [0.0, 0.5]), ("a0", [1.0]), t_max=1e8)
    assert pd2.outcome.shape == (1, 2) and pd2.x_name == "init.m0"


def test_phase_diagram_refuses_bad_axes_before_integrating(monkeypatch):
    model = tanh_h3(0.3)
    phase_mod = importlib.import_module("fastslow.analysis.phase")

    def boom(*_a, **_k):
        raise AssertionError("integrated before the axes were checked")

    monkeypatch.setattr(phase_mod, "classify_batch", boom)
    cases = [
        (("d", [1.0]), ("a0", [1.0]), ValueError, "x: 'd' is not a number of the model"),
        (("c3", [0.1]), ("t_max", [1.0]), ValueError, "y: 't_max' is not a number"),
        (("c3", [0.1]), ("tol", [1e-3]), ValueError, "y: 'tol' is not a number"),
        (("lr_a", [0.1, -0.1]), ("a0", [1.0]), ValueError, r"x: lr_a\[1\]: must be"),
        (("c3", [0.1]), ("m0", [0.5, 1.0]), ValueError, r"y: m0\[1\]: must be"),
        (("c3", [0.1, np.nan]), ("a0", [1.0]), ValueError, "x"),
        (("c3", [[0.1], [0.2]]), ("a0", [1.0]), ValueError, "x: the values of 'c3' must be a non-empty 1-D"),
        (("eps", [0.1]), ("lr_a", [0.1]), ValueError, "x and y: eps sets lr_a"),
        (("a0", [1.0]), ("init.a0", [2.0]), ValueError, "must be different"),
        (("c3", ["a"]), ("a0", [1.0]), TypeError, "x"),
        ("c3", ("a0", [1.0]), TypeError, "x: must be a"),
        ((3, [1.0]), ("a0", [1.0]), TypeError, "x"),
        (("c1001", [1.0]), ("a0", [1.0]), ValueError, "x: c1001: the Hermite order"),
    ]
    for x, y, exc, match in cases:
        with pytest.raises(exc, match=match):
            fs.phase_diagram(model, x, y)
    with pytest.raises(ValueError, match="a0"):
        fs.phase_diagram(model, ("c3", [0.1]), ("lr_a", [0.1]), a0=2e6)
    with pytest.raises(ValueError, match="t_max"):
        fs.phase_diagram(model, ("c3", [0.1]), ("lr_a", [0.1]), t_max=-1.0)


# ---------------------------------------------------------------------------------------------
# Hermite orders up to the registry's limit (issue 16 item 11)
# ---------------------------------------------------------------------------------------------
def test_high_hermite_order_models_are_analysed():
    """``max_order=1000``: polynomials of degree 2000 whose lazy-end terms overflow a float. Before
    the fix asymptotic_law raised OverflowError and equilibria/classify LinAlgError."""
    pinned = fs.Model("relu", {1: 1, 3: 0.3}, max_order=1000)
    assert pinned.s.size == 1001
    law = fs.asymptotic_law(pinned)
    assert law.verdict == "pinned"
    coef = np.array([d["coefficient"] for d in law.terms])
    assert np.any(np.isinf(coef)) and not np.any(np.isnan(coef))  # mu = 2: 2^2000 is past the float range
    eqs = fs.equilibria(pinned)
    assert len([e for e in eqs if e.kind == "pole"]) == 2
    for e in eqs:
        assert max(abs(e.gradient[0]), abs(e.gradient[1])) < 1e-10, e
    c = fs.classify(pinned, a0=1.0, t_max=1e8)
    assert c.outcome == "learning" and c.equilibrium is not None and c.equilibrium.kind == "pole"
    # centred: the law is decided at order 2 and does not move with the truncation; the fixed
    # points and the manifold agree with a lower truncation to the size of the tail
    hi = fs.Model("relu", {1: 1, 3: 0.3}, max_order=1000, centred=True)
    lo = fs.Model("relu", {1: 1, 3: 0.3}, max_order=128, centred=True)
    lh, ll = fs.asymptotic_law(hi), fs.asymptotic_law(lo)
    assert (lh.verdict, lh.kind, lh.order, lh.power) == ("unlearning", "self", 2, 3)
    assert lh.D == ll.D == pytest.approx(hi.s[2] ** 2 * lh.mu ** 4, rel=1e-14)
    eh = [(e.kind, e.stability) for e in fs.equilibria(hi)]
    assert eh == [(e.kind, e.stability) for e in fs.equilibria(lo)]
    for e_hi, e_lo in zip(fs.equilibria(hi), fs.equilibria(lo)):
        assert abs(e_hi.m - e_lo.m) < 1e-3 and abs(e_hi.a - e_lo.a) < 1e-3 * max(1.0, abs(e_lo.a))
    cm = fs.critical_manifold(hi, np.linspace(1.5, 20, 50))
    assert np.nanmax(cm.residual) < 1e-10 and len(cm.branches) == len(fs.manifold_structure(lo).branches)
    assert fs.classify(hi, a0=1.0, t_max=1e8).outcome == "unlearning"


def test_root_finder_on_a_degree_2000_polynomial():
    from fastslow.analysis import _polynomials as poly

    # (m - r_i) for a few roots, times a slowly decaying series of degree 2000 with no real roots
    roots = np.array([-0.9, -0.3, 0.05, 0.5, 0.97])
    k = np.arange(1001)
    base = np.zeros(2001)
    base[::2] = 1.0 / (1.0 + k) ** 2.5  # sum of positive even powers: > 0 on [-1, 1]
    coef = base
    for r in roots:
        coef = np.polynomial.polynomial.polymul(coef, [-r, 1.0])
    got = np.concatenate([poly.real_roots(coef, -1.0, 0.0), poly.real_roots(coef, 0.0, 1.0)])
    np.testing.assert_allclose(got, roots, atol=1e-12)
