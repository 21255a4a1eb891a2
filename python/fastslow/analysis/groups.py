"""The fast-slow analysis lifted to a few particle groups: each group ``g`` a fraction ``w_g`` of
the neurons at ``(m_g, a_g)`` (two or three values of the second layer, say).

The particle limit with ``G`` groups (:mod:`fastslow.particles`) is, with
``P(x) = sum_k s_k R_k x^k`` and the residuals ``R_k = s_k sum_h w_h a_h m_h^k - c_k`` shared by all,

    dm_g/dt = -lr_w (1 - m_g^2) a_g P'(m_g),      da_g/dt = -lr_a P(m_g).

For small ``eps = lr_a / lr_w`` the alignments are fast and the second layers slow, as in 2-D:

* the **critical manifold** is the set of ``m = (m_1, ..., m_G)`` with ``P'(m_g) = 0`` for every
  group with ``a_g != 0``: ``G`` equations coupled through the ``R_k``, a ``G``-dimensional manifold
  over ``a`` (:func:`group_critical_points` finds all its points at one ``a`` by Newton from a grid
  of starts in ``(-1, 1)^G``, deduplicated);
* its **stability** is that of the fast Jacobian
  ``J_gh = -lr_w (1 - m_g^2) a_g (delta_gh P''(m_g) + sum_k k^2 s_k^2 w_h a_h m_g^(k-1) m_h^(k-1))``:
  attracting when every eigenvalue is negative, repelling when every one is positive, a saddle
  otherwise (the 2-D ``d2L/dm2 > 0`` with one group);
* the **slow flow** on an attracting sheet ``m*(a)`` is ``da_g/dt = -lr_a P(m*_g(a))`` (gradient
  descent of ``L(m*(a), a)`` in the weighted metric), integrated by :func:`solve_group_slow_flow`
  from the end of the fast fibre of ``(m0, a0)``; it stops where the sheet loses stability (a
  fold: the largest fast eigenvalue reaches 0).

With one group, or all groups equal, this is the 2-D analysis of :mod:`fastslow.analysis.manifold`
and :mod:`fastslow.analysis.slow_flow`. Per group, the dichotomy reads off the slow flow: a group
whose alignment the sheet carries towards 0 while its ``|a_g|`` grows unlearns; one that stays at
its alignment has learned (``GroupSlowFlow.verdict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from .. import _validate as V
from ..model import Model, as_model
from ..trajectory import Status, Trajectory

__all__ = ["GroupPoint", "group_fast_field", "group_fast_jacobian", "group_critical_points", "GroupSlowFlow",
           "solve_group_slow_flow"]

_DEDUP = 1e-7


def _groups(weights: Any, a: Any) -> tuple[np.ndarray, np.ndarray]:
    w = V.real_array(weights, "weights", ndim=1, nonempty=True)
    if np.any(w <= 0):
        raise ValueError("weights: every group's fraction must be > 0")
    a = V.real_array(a, "a", ndim=1)
    if a.size != w.size:
        raise ValueError(f"a: one value per group ({w.size}), got {a.size}")
    return w / w.sum(), a


class _Terms:
    """Powers and the polynomial ``P`` of a model at a state of the groups."""

    def __init__(self, model: Model) -> None:
        K = max(len(model.s), len(model.c))
        self.s = np.zeros(K)
        self.c = np.zeros(K)
        self.s[: len(model.s)] = model.s
        self.c[: len(model.c)] = model.c
        self.k = np.arange(K)
        self.lr_w, self.lr_a = model.lr_w, model.lr_a

    def residuals(self, w: np.ndarray, m: np.ndarray, a: np.ndarray) -> np.ndarray:
        return self.s * ((w * a) @ (m[:, None] ** self.k)) - self.c

    def P(self, m: np.ndarray, R: np.ndarray, der: int = 0) -> np.ndarray:
        k = self.k
        if der == 0:
            coef = self.s * R * np.ones_like(m[:, None])
            return np.sum(coef * m[:, None] ** k, axis=1)
        if der == 1:
            return np.sum(k * self.s * R * m[:, None] ** np.maximum(k - 1, 0), axis=1)
        return np.sum(k * (k - 1) * self.s * R * m[:, None] ** np.maximum(k - 2, 0), axis=1)

    def psi(self, m: np.ndarray) -> np.ndarray:
        """``d(s_k m^k)/dm``, shape ``(G, K)``."""
        return self.k * self.s * m[:, None] ** np.maximum(self.k - 1, 0)

    def dG(self, w: np.ndarray, m: np.ndarray, a: np.ndarray, R: np.ndarray) -> np.ndarray:
        """The Jacobian of ``G_g(m) = P'(m_g)`` in ``m``."""
        psi = self.psi(m)
        return np.diag(self.P(m, R, 2)) + psi @ (psi * (w * a)[:, None]).T


def group_fast_field(model: Model, weights: Any, m: Any, a: Any) -> np.ndarray:
    """``dm_g/dt`` of the groups at ``(m, a)``."""
    model = as_model(model)
    w, a = _groups(weights, a)
    m = V.real_array(m, "m", ndim=1)
    tm = _Terms(model)
    R = tm.residuals(w, m, a)
    return -tm.lr_w * (1 - m * m) * a * tm.P(m, R, 1)


def group_fast_jacobian(model: Model, weights: Any, m: Any, a: Any) -> np.ndarray:
    """The fast Jacobian ``d(dm_g/dt)/dm_h`` at a point of the critical manifold (``G x G``)."""
    model = as_model(model)
    w, a = _groups(weights, a)
    m = V.real_array(m, "m", ndim=1)
    tm = _Terms(model)
    R = tm.residuals(w, m, a)
    return -tm.lr_w * ((1 - m * m) * a)[:, None] * tm.dG(w, m, a, R)


@dataclass(frozen=True)
class GroupPoint:
    """A point of the groups' critical manifold at fixed ``a``: the alignments ``m``, the fast
    eigenvalues (sorted, real parts) and ``stability`` (``"attracting"``, ``"repelling"``,
    ``"saddle"``), and the loss ``L = 1/2 sum_k R_k^2`` there (without the constant)."""

    m: np.ndarray
    a: np.ndarray
    eigenvalues: np.ndarray
    stability: str
    loss: float


def _stability(ev: np.ndarray) -> str:
    if np.all(ev < 0):
        return "attracting"
    if np.all(ev > 0):
        return "repelling"
    return "saddle"


def _newton(tm: _Terms, w: np.ndarray, a: np.ndarray, m: np.ndarray, free: np.ndarray | None = None,
            iters: int = 60) -> np.ndarray | None:
    """Newton on ``G(m) = P'(m_g) = 0`` for the ``free`` groups (the others held, at a pole), in
    ``v = artanh m`` (so iterates stay in ``(-1, 1)``)."""
    free = np.ones(m.size, bool) if free is None else free
    m = m.astype(float).copy()
    if not free.any():
        return m
    v = np.arctanh(np.clip(m[free], -0.999999, 0.999999))
    for _ in range(iters):
        m[free] = np.tanh(v)
        R = tm.residuals(w, m, a)
        g = tm.P(m, R, 1)[free]
        J = (tm.dG(w, m, a, R) * (1 - m * m)[None, :])[np.ix_(free, free)]
        try:
            dv = np.linalg.solve(J, -g)
        except np.linalg.LinAlgError:
            return None
        dv = np.clip(dv, -1.0, 1.0)
        v = v + dv
        if not np.all(np.isfinite(v)) or np.max(np.abs(v)) > 12:
            return None
        if np.max(np.abs(dv)) < 1e-13:
            break
    m[free] = np.tanh(v)
    R = tm.residuals(w, m, a)
    scale = max(1.0, float(np.max(np.abs(tm.psi(m)))) * float(np.max(np.abs(R))))
    return m if np.max(np.abs(tm.P(m, R, 1)[free])) < 1e-9 * scale else None


def group_critical_points(model: Model, weights: Any, a: Any, *, starts: int = 9) -> list[GroupPoint]:
    """Every point of the critical manifold at ``a`` found by Newton from ``starts^G`` starting
    points on a grid in ``(-1, 1)^G`` (``G <= 3`` groups, every ``a_g != 0``), sorted by the loss."""
    model = as_model(model)
    w, a = _groups(weights, a)
    if w.size > 3:
        raise ValueError(f"weights: a few groups (at most 3) for the grid of starts, got {w.size}")
    if np.any(a == 0):
        raise ValueError("a: every group needs a_g != 0 (a group with a_g = 0 has no fast dynamics)")
    starts = V.integer(starts, "starts", lo=2, hi=50)
    tm = _Terms(model)
    grid = np.linspace(-0.95, 0.95, starts)
    found: list[np.ndarray] = []
    for start in np.stack(np.meshgrid(*([grid] * w.size), indexing="ij"), -1).reshape(-1, w.size):
        m = _newton(tm, w, a, start)
        if m is not None and not any(np.max(np.abs(m - f)) < _DEDUP for f in found):
            found.append(m)
    out = []
    for m in found:
        R = tm.residuals(w, m, a)
        J = -tm.lr_w * ((1 - m * m) * a)[:, None] * tm.dG(w, m, a, R)
        ev = np.sort(np.linalg.eigvals(J).real)
        out.append(GroupPoint(m=m, a=a.copy(), eigenvalues=ev, stability=_stability(ev), loss=float(0.5 * R @ R)))
    return sorted(out, key=lambda p: p.loss)


@dataclass(frozen=True)
class GroupSlowFlow:
    """The slow flow of a few groups: ``trajectory`` (level ``"slow_flow"``, the groups as its
    particles, the jump times in ``params["jumps"]``), the first fast fibre's end ``m_start``,
    ``fold_time`` (the first jump; NaN without one) and per group ``verdict``: ``"unlearns"`` (the
    alignment falls below half its largest value on the flow while ``|a_g|`` grows), ``"pole"``
    (it ends at ``|m_g| = 1``) or ``"learns"`` (it keeps its alignment)."""

    trajectory: Trajectory
    m_start: np.ndarray
    fold_time: float
    verdict: tuple[str, ...]


def _fast_fibre(tm: _Terms, w: np.ndarray, a: np.ndarray, m0: np.ndarray) -> np.ndarray:
    def f(t: float, v: np.ndarray) -> np.ndarray:
        m = np.tanh(v)
        return -tm.lr_w * a * tm.P(m, tm.residuals(w, m, a), 1)

    r = solve_ivp(f, (0.0, 1e4 / tm.lr_w), np.arctanh(m0), method="Radau", rtol=1e-10, atol=1e-12)
    m = np.tanh(r.y[:, -1])
    return np.where(np.abs(m) > _POLE, np.sign(m), m)


_POLE = 1 - 1e-6  # a fast fibre that ends this close to |m| = 1 ends at the pole
_KICK = 1e-3  # a group that leaves its pole starts its fast fibre this far inside
_PAST = 1e-2  # past a loss of stability, the slow flow goes on for this fraction of the time before the jump


def solve_group_slow_flow(model: Model, t_eval: Any, *, a0: Any, m0: Any, weights: Any,
                          rtol: float = 1e-9, atol: float = 1e-12, max_jumps: int = 8) -> GroupSlowFlow:
    """The reduced flow of ``G`` groups from ``(m0, a0)``: the fast fibre at fixed ``a0`` (the fast
    equation integrated to its end), then ``da_g/dt = -lr_a P(m*_g(a))`` on the sheet it reaches,
    ``m*(a)`` by Newton continued from the previous point. A group whose fibre ends at a pole
    ``m_g = +-1`` stays there (the poles are invariant) while it attracts (``-m_g a_g P'(m_g) > 0``);
    where a pole or the sheet loses stability the groups jump along a new fast fibre (at most
    ``max_jumps`` times), and the flow goes on to ``t_eval[-1]``.

    Parameters
    ----------
    model : Model
    t_eval : array_like
        Save times (ODE time ``t``, increasing, ``>= 0``).
    a0, m0, weights : array_like
        One value per group (``m0`` may be a scalar).
    """
    model = as_model(model)
    t = V.times(t_eval)
    w, a0 = _groups(weights, a0)
    m0 = np.broadcast_to(V.real_array(m0, "m0"), a0.shape).astype(float)
    if np.any(np.abs(m0) >= 1):
        raise ValueError("m0: every group needs |m0| < 1")
    max_jumps = V.integer(max_jumps, "max_jumps", lo=0, hi=100)
    tm = _Terms(model)
    G = w.size
    As, ms = np.full((G, t.size), np.nan), np.full((G, t.size), np.nan)
    status, message, jumps, fold = Status.SUCCESS, "", [], float("nan")
    t_now, a_now, m_start = 0.0, a0.copy(), _fast_fibre(tm, w, a0, m0)
    m_now = m_start.copy()
    ever_pole = np.abs(m_start) == 1
    for _ in range(max_jumps + 1):
        free = np.abs(m_now) < 1
        pole_sign = np.sign(m_now)
        state = {"m": m_now.copy()}

        def sheet(a: np.ndarray, state: dict[str, np.ndarray] = state, free: np.ndarray = free) -> np.ndarray:
            m = _newton(tm, w, a, state["m"], free)
            if m is None:
                raise ArithmeticError("the sheet ended (no manifold point near the previous one)")
            state["m"] = m
            return m

        def stability(_t: float, a: np.ndarray, free: np.ndarray = free, pole_sign: np.ndarray = pole_sign) -> float:
            """Negative while every free group's sheet and every pole attract."""
            m = sheet(a)
            R = tm.residuals(w, m, a)
            vals = []
            if free.any():
                J = -tm.lr_w * ((1 - m * m) * a)[:, None] * tm.dG(w, m, a, R)
                vals.append(np.max(np.linalg.eigvals(J[np.ix_(free, free)]).real))
            if (~free).any():  # dv/dt = -lr_w a P'(m) points outwards at an attracting pole
                vals.append(np.max((pole_sign * tm.lr_w * a * tm.P(m, R, 1))[~free]))
            return float(max(vals))

        stability.terminal = True  # type: ignore[attr-defined]

        def rhs(_t: float, a: np.ndarray) -> np.ndarray:
            m = sheet(a)
            return -tm.lr_a * tm.P(m, tm.residuals(w, m, a), 0)

        sel = t >= t_now
        try:
            sheet(a_now)
            if stability(t_now, a_now) >= 0:
                raise ArithmeticError(f"the fast fibre ends where the sheet does not attract (t = {t_now:.6g})")
            r = solve_ivp(rhs, (t_now, float(t[-1])), a_now, method="LSODA", t_eval=t[sel], rtol=rtol, atol=atol,
                          events=stability)
        except ArithmeticError as exc:
            status, message = Status.FAILED, str(exc)
            break
        idx = np.flatnonzero(sel)[: r.y.shape[1]]
        As[:, idx] = r.y
        for j in idx:
            ms[:, j] = sheet(As[:, j]) if free.any() else m_now
        if not r.t_events[0].size:
            break
        t_now, a_now = float(r.t_events[0][0]), r.y_events[0][0]
        jumps.append(t_now)
        # at the event the pole or the sheet is marginal (a new sheet may be born there): one Euler
        # step of the slow flow, 1% of the time so far, takes the groups past it before they jump
        step = _PAST * t_now
        a_now = a_now + step * rhs(t_now, a_now)
        t_now += step
        m_kick = np.where(free, sheet(a_now), pole_sign * (1 - _KICK))
        m_now = _fast_fibre(tm, w, a_now, m_kick)
        ever_pole |= np.abs(m_now) == 1
    else:
        status, message = Status.FAILED, f"more than {max_jumps} jumps"
    if jumps:
        fold = jumps[0]
    loss = np.array([0.5 * np.sum(tm.residuals(w, ms[:, j], As[:, j]) ** 2) if np.all(np.isfinite(ms[:, j]))
                     else np.nan for j in range(t.size)]) + 0.5 * model.target_series.tail + 0.5 * model.noise
    verdict = []
    for g in range(G):
        ok = np.isfinite(ms[g]) & np.isfinite(As[g])
        mg, ag = np.abs(ms[g][ok]), np.abs(As[g][ok])
        if mg.size > 1 and mg[-1] < 0.5 * mg.max() and ag[-1] > ag[0]:
            verdict.append("unlearns")
        elif mg.size and mg[-1] == 1.0:
            verdict.append("pole")
        else:
            verdict.append("learns")
    traj = Trajectory(level="slow_flow", t=t, m=w @ ms, a=w @ As, loss=loss, status=status, message=message,
                      params={"model": model, "groups": G, "jumps": tuple(jumps)},
                      particles={"m": ms, "a": As}, particle_weights=w)
    return GroupSlowFlow(trajectory=traj, m_start=m_start, fold_time=fold, verdict=tuple(verdict))
