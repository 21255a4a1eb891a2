"""Fast-slow analysis: manifold, folds, equilibria, slow flow, asymptotic law, classification."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastslow as fs

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
            tr = fs.solve_ode(model, e.a + da, m0, [0.0, t_end], rtol=1e-10, atol=1e-12)
            dists.append(math.hypot(tr.m[-1] - e.m, tr.a[-1] - e.a) / math.hypot(m0 - e.m, da))
        if e.stable:
            assert max(dists) < 1e-3, (e, dists)
        else:
            assert max(dists) > 10, (e, dists)


def test_learning_equilibrium_of_model_md():
    e = [e for e in fs.equilibria(gelu_h2(0.4)) if e.stable and e.kind == "interior" and e.m > 0]
    assert len(e) == 1
    assert abs(e[0].m - 0.646) < 1e-3 and abs(e[0].a - 3.106) < 1e-3  # MODEL.md section 4


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
        sf = fs.solve_slow_flow(model, 2.0, 0.0, t)
        assert sf.status == 0
        tr = fs.solve_ode(model, 2.0, 0.0, t, rtol=1e-10, atol=1e-12)
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
    sf = fs.solve_slow_flow(model, 1.0, 0.0, t)
    assert sf.status == 1 and sf.events[0].kind == "pole-unstable"
    assert abs(sf.events[0].a - alpha1) < 1e-9
    assert np.all(sf.m[sf.branch >= 0] == 1.0)
    sfj = fs.solve_slow_flow(model, 1.0, 0.0, t, jump=True)
    assert sfj.status == 0 and [e.kind for e in sfj.events] == ["pole-unstable", "jump"]
    tr = fs.solve_ode(model, 1.0, 0.0, t)
    assert abs(sfj.a[-1] / tr.a[-1] - 1) < 1e-4 and abs(sfj.m[-1] / tr.m[-1] - 1) < 1e-4


def test_slow_flow_bad_input():
    model = tanh_h3()
    with pytest.raises(ValueError, match="a0"):
        fs.solve_slow_flow(model, 0.0, 0.0, [0.0, 1.0])
    with pytest.raises(ValueError, match="m0"):
        fs.solve_slow_flow(model, 1.0, 1.0, [0.0, 1.0])
    with pytest.raises(ValueError, match="t_eval"):
        fs.solve_slow_flow(model, 1.0, 0.0, [1.0, 0.5])


# ---------------------------------------------------------------------------------------------
# asymptotic law
# ---------------------------------------------------------------------------------------------
LAW_CASES = [  # (label, model, verdict, kind, power)
    ("tanh h1 (MODEL.md)", lambda: fs.Model("tanh", {1: 1.0}, lr_a=LR_A), "unlearning", "self", 5),
    ("tanh h1+0.3h3 (MODEL.md)", lambda: tanh_h3(0.3), "unlearning", "cross", 3),
    ("gelu h1-0.4h2 (MODEL.md)", lambda: gelu_h2(-0.4), "unlearning", "cross", 2),
    ("gelu h1+0.4h2 (MODEL.md)", lambda: gelu_h2(0.4), "learning", "cross", 2),
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
    tr = fs.solve_ode(model, 1.0, 0.0, t)
    err = np.abs(law.predict_a(t[1:], 1.0) / tr.a[1:] - 1)
    assert np.all(err < 0.01), (label, err)


def test_law_values_of_model_md_table():
    expected = {"tanh h1 (MODEL.md)": 9.011, "tanh h1+0.3h3 (MODEL.md)": 20.010, "gelu h1-0.4h2 (MODEL.md)": 52.37}
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
    c = fs.classify(model, 1.0, 0.0, t_max=1e10)
    assert c.outcome[0] == "unlearning"
    assert abs(c.exponent[0] - 1 / (q + 1)) < 0.01, c.exponent


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
        late.append(fs.solve_ode(model, 1.0, 0.0, t).m[1:])
    D = np.array(D)
    assert np.allclose(D / kappas, D[0] / kappas[0], rtol=1e-12)
    late = np.array(late)
    assert np.all(np.diff(late, axis=0) < 0), late  # larger |kappa|: smaller alignment, at every t
    # learning side: a kept feature whose equilibrium alignment grows with |kappa|
    m_eq = []
    for k in kappas:
        model = make(-unlearn_side * k)
        assert fs.asymptotic_law(model).verdict == "learning"
        c = fs.classify(model, 1.0, 0.0, t_max=1e10)  # small |kappa| settles slowly (rate ~ kappa)
        assert c.outcome[0] == "learning" and c.equilibrium[0] is not None and c.equilibrium[0].stable
        m_eq.append(c.m_final[0])
    assert np.all(np.diff(m_eq) > 0), m_eq


def test_larger_a0_delays_unlearning():
    model = tanh_h3(0.3)
    t = np.array([0.0, 1e8])
    half = {}
    peak = {}
    for a0 in (0.25, 0.5, 1.0, 2.0, 4.0):
        tr = fs.solve_ode(model, a0, 0.0, t)
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
    cb = fs.classify_batch(model, a0, 0.0, t_max=1e8, threads=2)
    for i, a in enumerate(a0):
        c = fs.classify(model, a, 0.0, t_max=1e8)
        assert c.outcome[0] == cb.outcome[i] == "unlearning"
        assert c.exponent[0] == cb.exponent[i] and c.t_half[0] == cb.t_half[i]


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
    c = fs.classify(model.replace(target={"hermite": [0, 1, 0, 0.1]}), 2.0, 0.0, t_max=1e8)
    assert c.exponent[0] == pytest.approx(pd.exponent[1, 2], rel=1e-12)


def test_phase_diagram_bad_input():
    model = tanh_h3(0.3)
    with pytest.raises(ValueError, match="unknown parameter 'kappa'"):
        fs.phase_diagram(model, ("kappa", [0.1]), ("a0", [1.0]))
    with pytest.raises(ValueError, match="must be different"):
        fs.phase_diagram(model, ("a0", [0.1]), ("a0", [1.0]))
    with pytest.raises(ValueError, match="non-empty"):
        fs.phase_diagram(model, ("c3", []), ("a0", [1.0]))
