"""The fast-slow analysis of a few particle groups against the 2-D analysis and the particle system."""

from __future__ import annotations

import numpy as np
import pytest

import fastslow as fs
from fastslow.analysis import critical_manifold
from fastslow.analysis import groups as G

MODEL = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.001)
GELU = fs.Model("gelu", {1: 1.0, 2: 0.4}, lr_a=0.001, centred=True)


@pytest.mark.parametrize("a", [1.5, 3.0, 6.0])
def test_one_group_is_the_2d_manifold(a):
    cm = critical_manifold(MODEL, np.array([a]))
    want = cm.m[0][cm.attracting[0]]
    pts = [p for p in G.group_critical_points(MODEL, [1.0], [a]) if p.stability == "attracting"]
    assert len(pts) == len(want) >= 1
    np.testing.assert_allclose(sorted(p.m[0] for p in pts), sorted(want), atol=1e-9)


def test_equal_groups_hold_the_2d_point_and_split_ones():
    m2 = critical_manifold(MODEL, np.array([3.0])).m[0]
    m2 = m2[np.isfinite(m2)][0]
    pts = G.group_critical_points(MODEL, [0.5, 0.5], [3.0, 3.0])
    same = [p for p in pts if abs(p.m[0] - p.m[1]) < 1e-9 and abs(p.m[0] - m2) < 1e-8]
    assert len(same) == 1 and same[0].stability == "attracting"
    for p in pts:  # every point is a zero of the fast field, and the fast Jacobian is its derivative
        np.testing.assert_allclose(G.group_fast_field(MODEL, [0.5, 0.5], p.m, p.a), 0.0, atol=1e-9)
        h = 1e-6
        fd = np.array([(G.group_fast_field(MODEL, [0.5, 0.5], p.m + h * e, p.a)
                        - G.group_fast_field(MODEL, [0.5, 0.5], p.m - h * e, p.a)) / (2 * h) for e in np.eye(2)]).T
        np.testing.assert_allclose(G.group_fast_jacobian(MODEL, [0.5, 0.5], p.m, p.a), fd, rtol=1e-5, atol=1e-7)
        ev = np.linalg.eigvals(fd).real
        assert p.stability == ("attracting" if ev.max() < 0 else "repelling" if ev.min() > 0 else "saddle")


@pytest.mark.parametrize("mdl, a0, frac", [(MODEL, [0.8, -0.4], [0.7, 0.3]), (MODEL, [2.0, 0.5, 1.0], [0.2, 0.5, 0.3]),
                                           (GELU, [1.0, 0.4], [0.5, 0.5])])
def test_slow_flow_follows_the_particle_system(mdl, a0, frac):
    """Fenichel: away from the fast layer and the jumps the particle system stays O(eps) close to the
    slow flow (a jump is instantaneous in the slow flow; the particles take a while to leave a
    marginal pole or fold, so right after a jump they lag by up to ~15% in a)."""
    t = np.geomspace(10.0, 1e6, 25)
    sf = G.solve_group_slow_flow(mdl, t, a0=a0, m0=0.1, weights=frac)
    assert sf.trajectory.status == 0, sf.trajectory.message
    p = fs.solve_particles(mdl, t, a0=a0, m0=0.1, weights=frac)
    late = t > 1e5  # well after the fast layer and the jumps off the poles
    np.testing.assert_allclose(sf.trajectory.particles["a"][:, late], p.particles["a"][:, late], rtol=1e-2)
    np.testing.assert_allclose(sf.trajectory.particles["m"][:, late], p.particles["m"][:, late], atol=1e-2)
    assert len(sf.verdict) == len(a0)


def test_verdict_on_the_tanh_case():
    sf = G.solve_group_slow_flow(MODEL, np.geomspace(1.0, 1e7, 30), a0=[0.8, -0.4], m0=0.1, weights=[0.7, 0.3])
    assert sf.verdict == ("unlearns", "unlearns")
    assert 1e2 < sf.fold_time < 1e4  # the poles lose stability, then the groups ride the sheet down
    assert np.all(np.abs(sf.m_start) == 1.0)


def test_group_checks():
    with pytest.raises(ValueError, match="at most 3"):
        G.group_critical_points(MODEL, np.ones(4), np.ones(4))
    with pytest.raises(ValueError, match="a_g != 0"):
        G.group_critical_points(MODEL, [0.5, 0.5], [1.0, 0.0])
    with pytest.raises(ValueError, match=r"a: one value per group \(2\)"):
        G.group_critical_points(MODEL, [0.5, 0.5], [1.0])
    with pytest.raises(ValueError, match="weights"):
        G.solve_group_slow_flow(MODEL, [1.0, 2.0], a0=[1.0, 2.0], m0=0.1, weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="m0"):
        G.solve_group_slow_flow(MODEL, [1.0, 2.0], a0=[1.0, 2.0], m0=1.0, weights=[1.0, 1.0])
