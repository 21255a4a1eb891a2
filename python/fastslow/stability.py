"""Stiffness of the limit ODE and the stable steps of explicit SGD.

SGD is an explicit method on a stiff system: near the lazy manifold the fast rate of the limit ODE
is about ``lr_w a^2 s_1^2`` and grows with ``a``, so a fixed step ``dt`` that is stable early can
become unstable late. One explicit step multiplies a perturbation along a mode of rate ``lambda``
by ``1 + dt lambda + O(dt^2)``, so it is stable while ``|1 + dt lambda| <= 1``, i.e.
``dt <= -2 Re(lambda) / |lambda|^2`` (``2 / |lambda|`` for a real one). Two modes set the bound:

* the fast eigenvalue ``lambda_f`` (smallest real part) of the Jacobian of ``(dm/dt, da/dt)`` of
  the limit ODE, :func:`fast_eigenvalue`;
* the collective mode of the finite network, all rows displaced together along one direction
  orthogonal to the teacher and to themselves (what ``q_perp`` measures), which the gradient
  restores at the rate ``lambda_c = -lr_w [a^2 K1(m^2) (1 - m^2) + a m C1(m)]``
  (:func:`collective_rate`; ``-lr_w a^2 K1(m^2)`` on the critical manifold). Near the lazy end both
  rates approach ``-lr_w a^2 s_1^2``; once ``m`` has grown the collective one is the faster on the
  trajectories measured (docs/theory/finite_size.md), so it goes unstable first: SGD then builds a
  growing ``q_perp``. The limit ODE and the limit map do not have it (their ``q_perp`` is 0).

:func:`stability` evaluates both along the limit ODE trajectory of a run (and the first ``t`` where
a given ``dt`` stops being stable), and :func:`stable_schedule` builds a :class:`StepSchedule`
``dt_k`` that keeps ``1 + dt_k lambda >= -safety`` for both (ODE time is the sum of the steps),
which :func:`fastslow.train_sgd` and :func:`fastslow.solve_effective` accept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _validate as V
from .model import Model, as_model
from .params import lookup

__all__ = ["fast_eigenvalue", "collective_rate", "stable_step", "Stability", "stability", "StepSchedule", "stable_schedule"]


def fast_eigenvalue(model: Model, m: Any, a: Any) -> np.ndarray | complex:
    """The fast eigenvalue ``lambda_f`` (smallest real part; complex dtype) of the Jacobian of the
    limit ODE ``dm/dt = -lr_w (1 - m^2) dL/dm``, ``da/dt = -lr_a dL/da`` at ``(m, a)`` (broadcast):

        J = [[-lr_w ((1 - m^2) L_mm - 2 m L_m), -lr_w (1 - m^2) L_ma],
             [-lr_a L_ma,                       -lr_a L_aa]].
    """
    model = as_model(model)
    m_arr, a_arr = np.broadcast_arrays(V.real_array(m, "m"), V.real_array(a, "a"))
    g = model.grad(m_arr, a_arr)
    h = model.hessian(m_arr, a_arr)
    om = 1.0 - m_arr**2
    J00 = -model.lr_w * (om * h[..., 0, 0] - 2.0 * m_arr * g[..., 0])
    J01 = -model.lr_w * om * h[..., 0, 1]
    J10 = -model.lr_a * h[..., 0, 1]
    J11 = -model.lr_a * h[..., 1, 1]
    half_tr = 0.5 * (J00 + J11)
    disc = np.sqrt((0.25 * (J00 - J11) ** 2 + J01 * J10).astype(complex))
    return half_tr - disc if np.ndim(half_tr) else complex(half_tr - disc)


def collective_rate(model: Model, m: Any, a: Any) -> np.ndarray | float:
    """The rate ``lambda_c = -lr_w [a^2 K1(m^2) (1 - m^2) + a m C1(m)]`` at which the gradient flow of
    the wide symmetric network restores a common displacement of all rows orthogonal to the teacher
    and to the rows (linearised at ``q_perp = 0``; ``K1(Q) = sum_k k s_k^2 Q^(k-1)``,
    ``C1(m) = sum_k k s_k c_k m^(k-1)``). Broadcast over ``m`` and ``a``; real."""
    model = as_model(model)
    m_arr, a_arr = np.broadcast_arrays(V.real_array(m, "m"), V.real_array(a, "a"))
    s, c = np.asarray(model.s, float), np.asarray(model.c, float)
    L = min(s.size, c.size)
    k = np.arange(1, s.size)
    K1 = np.polynomial.polynomial.polyval(m_arr**2, k * s[1:] ** 2)
    kc = np.arange(1, L)
    C1 = np.polynomial.polynomial.polyval(m_arr, kc * s[1:L] * c[1:L]) if L > 1 else np.zeros_like(m_arr)
    out = -model.lr_w * (a_arr**2 * K1 * (1.0 - m_arr**2) + a_arr * m_arr * C1)
    return out if out.ndim else float(out)


def stable_step(lam: Any, safety: float = 1.0) -> np.ndarray:
    """The largest ``dt`` with ``|1 + dt lambda| <= safety`` (``safety`` in (0, 1]) for eigenvalues
    ``lambda``: ``[-Re + sqrt(Re^2 - |lambda|^2 (1 - safety^2))] / |lambda|^2``, which is
    ``(1 + safety) / |lambda|`` for a real negative one; where the ray ``1 + dt lambda`` never
    enters that disc, the ``dt`` that comes closest, ``-Re / |lambda|^2``; ``inf`` where
    ``Re(lambda) >= 0`` (no explicit-step limit from this eigenvalue)."""
    lam = np.asarray(lam, dtype=complex)
    re, ab2 = lam.real, np.abs(lam) ** 2
    disc = re**2 - ab2 * (1.0 - safety**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.where(disc >= 0, (-re + np.sqrt(np.maximum(disc, 0.0))) / ab2, -re / ab2)
    return np.where(re < 0, root, np.inf)


@dataclass(frozen=True)
class Stability:
    """The fast eigenvalue along a limit trajectory and where a step ``dt`` stops being stable.

    Attributes
    ----------
    t, m, a : ndarray
        The limit ODE trajectory (ODE time).
    lambda_fast : ndarray of complex
        The fast eigenvalue of the limit ODE there.
    lambda_collective : ndarray
        The collective mode's rate there (:func:`collective_rate`).
    dt_max : ndarray
        The stable bound there, the smaller of ``-2 Re(lambda) / |lambda|^2`` for the two.
    dt : float
        The step checked.
    t_unstable : float
        The first ``t`` at which ``dt > dt_max`` (NaN if ``dt`` stays stable to the horizon).
    mode : str
        The mode that goes unstable there, ``"collective"`` or ``"fast"`` (``""`` if none).
    dt_bound : float
        ``dt_max`` at the horizon (its smallest value: it falls as ``a`` grows): the step a run
        must stay below to be stable to the end.
    """

    t: np.ndarray
    m: np.ndarray
    a: np.ndarray
    lambda_fast: np.ndarray
    lambda_collective: np.ndarray
    dt_max: np.ndarray
    dt: float
    t_unstable: float
    dt_bound: float
    mode: str

    @property
    def stable(self) -> bool:
        """``dt`` stays stable over the whole horizon."""
        return math.isnan(self.t_unstable)

    def __repr__(self) -> str:
        head = f"Stability(dt = {self.dt:g} over t <= {float(self.t[-1]):.4g}: "
        if self.stable:
            return head + f"stable; bound at the horizon {self.dt_bound:.4g})"
        return head + f"unstable from t = {self.t_unstable:.6g} ({self.mode} mode); bound at the horizon {self.dt_bound:.4g})"


def _bounds(model: Model, m: Any, a: Any, safety: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The stable steps of the fast mode and of the collective mode."""
    return (np.asarray(stable_step(fast_eigenvalue(model, m, a), safety), dtype=float),
            np.asarray(stable_step(collective_rate(model, m, a), safety), dtype=float))


def _bound(model: Model, m: Any, a: Any) -> float:
    hf, hc = _bounds(model, m, a)
    return float(np.minimum(hf, hc))


def stability(model: Model, *, a0: float, m0: float = 0.0, dt: float, t_max: float, points: int = 400) -> Stability:
    """The fast eigenvalue along the limit ODE trajectory from ``(m0, a0)`` to ``t_max`` (``points``
    save times, linear then logarithmic) and the first ``t`` where the step ``dt`` exceeds the stable
    bound (located to a relative ``1e-6`` by bisection on the dense output)."""
    from .ode import solve_ode

    model = as_model(model)
    a0 = lookup("a0").check(a0, "a0")
    m0 = V.real(m0, "m0", lo=-1.0, hi=1.0, lo_open=True, hi_open=True)
    dt = lookup("dt").check(dt, "dt")
    t_max = V.real(t_max, "t_max", lo=0.0, lo_open=True)
    points = V.integer(points, "points", lo=4, hi=1_000_000)
    t_lin = min(t_max, 10.0)
    t = np.unique(np.concatenate([np.linspace(0.0, t_lin, points // 2),
                                  np.geomspace(t_lin, t_max, points - points // 2) if t_max > t_lin else []]))
    tr = solve_ode(model, t, a0=a0, m0=m0)
    m, a = tr.m, tr.a
    ok = np.isfinite(m) & np.isfinite(a)
    lam = np.full(t.shape, np.nan, dtype=complex)
    lam[ok] = fast_eigenvalue(model, m[ok], a[ok])
    lam_c = np.full(t.shape, np.nan)
    lam_c[ok] = collective_rate(model, m[ok], a[ok])
    dmax = np.full(t.shape, np.nan)
    dmax[ok] = np.minimum(stable_step(lam[ok], 1.0), stable_step(lam_c[ok], 1.0))
    bad = np.flatnonzero(ok & (dt > dmax))
    t_un = math.nan
    dt_b = float(np.nanmin(dmax)) if np.any(ok) else math.nan
    if bad.size:
        j = int(bad[0])
        if j == 0 or tr.sol is None:
            t_un = float(t[j])
        else:
            lo, hi = float(t[j - 1]), float(t[j])
            while hi - lo > 1e-6 * hi:
                mid = 0.5 * (lo + hi)
                mm, aa = tr.sol(mid)
                if dt > _bound(model, mm, aa):
                    hi = mid
                else:
                    lo = mid
            t_un = hi
    mode = ""
    if bad.size:
        mm, aa = (tr.sol(t_un) if tr.sol is not None else (m[bad[0]], a[bad[0]]))
        hf, hc = _bounds(model, mm, aa)
        mode = "collective" if hc <= hf else "fast"
    return Stability(t=t, m=m, a=a, lambda_fast=lam, lambda_collective=lam_c, dt_max=dmax, dt=dt, t_unstable=t_un,
                     dt_bound=dt_b, mode=mode)


@dataclass(frozen=True)
class StepSchedule:
    """Steps ``dt_0, dt_1, ...`` in ODE time; the step times are their partial sums.

    Attributes
    ----------
    dts : ndarray
        The steps (each finite and > 0).
    times : ndarray
        ``0`` and the partial sums: ``times[k]`` is the ODE time after ``k`` steps.
    """

    dts: np.ndarray
    times: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        d = V.real_array(self.dts, "dts", ndim=1, nonempty=True)
        if np.any(d <= 0) or np.any(d > lookup("dt").hi):
            raise ValueError(f"dts: every step must be > 0 and <= {lookup('dt').hi:g}")
        d = np.ascontiguousarray(d)
        d.setflags(write=False)
        object.__setattr__(self, "dts", d)
        tt = np.concatenate([[0.0], np.cumsum(d)])
        tt.setflags(write=False)
        object.__setattr__(self, "times", tt)

    @property
    def steps(self) -> int:
        return int(self.dts.size)

    @property
    def t_end(self) -> float:
        return float(self.times[-1])

    def steps_to(self, t: float) -> int:
        """The number of steps needed to reach ODE time ``t`` (the first step time ``>= t``)."""
        k = int(np.searchsorted(self.times, t * (1 - 1e-12), side="left"))
        if k > self.steps:
            raise ValueError(f"t: the schedule reaches {self.t_end:g}, not {t:g}")
        return k

    def __len__(self) -> int:
        return self.steps

    def __repr__(self) -> str:
        return (f"StepSchedule({self.steps} steps to t = {self.t_end:g}; dt from {self.dts.min():.4g} "
                f"to {self.dts.max():.4g})")


def stable_schedule(model: Model, t_max: float, *, a0: float, m0: float = 0.0, dt: float, safety: float = 0.5,
                    points: int = 2000, max_steps: int = 100_000_000) -> StepSchedule:
    """Steps that stay stable along the limit trajectory: ``dt_k = min(dt, h(t))`` with ``h`` the
    largest step with ``|1 + h lambda| <= safety`` for the fast and the collective mode
    (:func:`stable_step`).

    ``h`` is evaluated along the limit ODE trajectory (``points`` save times). For a real rate it is
    ``(1 + safety) / |lambda|``: the multiplier ``1 + dt_k lambda`` of each mode stays in
    ``[-safety, 1)``. While ``h`` exceeds ``dt`` the steps are exactly ``dt`` (step times
    ``k dt``, as a fixed-step run's); from the save time before the first where ``h < dt`` the steps
    follow ``h(t)`` (interpolated linearly between save times), shortened evenly so that the last
    step ends at ``t_max``. A schedule of more than ``max_steps`` steps is refused (``ValueError``).
    """
    model = as_model(model)
    dt = lookup("dt").check(dt, "dt")
    safety = V.real(safety, "safety", lo=0.0, hi=1.0, lo_open=True)
    max_steps = V.integer(max_steps, "max_steps", lo=1, hi=2**62)
    st = stability(model, a0=a0, m0=m0, dt=dt, t_max=t_max, points=points)
    ok = np.isfinite(st.m)
    h = np.full(st.t.shape, np.inf)
    h[ok] = np.minimum(stable_step(st.lambda_fast[ok], safety), stable_step(st.lambda_collective[ok], safety))
    h = np.minimum(h, dt)
    if not np.all(ok):
        raise ValueError("t_max: the limit ODE failed before it; no schedule can be built from it")
    below = np.flatnonzero(h < dt)
    if below.size == 0:
        if t_max / dt > max_steps:
            raise ValueError(f"t_max: {t_max / dt:.4g} steps of dt = {dt:g}, more than max_steps = {max_steps:,}")
        return StepSchedule(np.full(int(math.ceil(t_max / dt - 1e-9)), dt))
    j = int(below[0])
    k0 = int(math.floor(st.t[max(j - 1, 0)] / dt + 1e-9))
    t0 = k0 * dt
    # from t0 on, the steps follow h(t): the step count N(t) = integral of dt' / h(t') (trapezoids on
    # the save times), and the step times are where N passes equally spaced values, K steps to t_max
    grid = np.concatenate([[t0], st.t[st.t > t0]])
    inv_h = 1.0 / np.interp(grid, st.t, h)
    N = np.concatenate([[0.0], np.cumsum(0.5 * (inv_h[1:] + inv_h[:-1]) * np.diff(grid))])
    K = max(1, int(math.ceil(N[-1] - 1e-9)))
    if k0 + K > max_steps:
        raise ValueError(f"t_max: the stable schedule from a0 = {a0:g}, m0 = {m0:g} takes {k0 + K:,} steps to "
                         f"t = {t_max:g}, more than max_steps = {max_steps:,} (the fast rate grows with a0^2: a shorter "
                         "t_max, a smaller a0 or a larger max_steps)")
    times = np.interp(np.linspace(0.0, N[-1], K + 1), N, grid)
    return StepSchedule(np.concatenate([np.full(k0, dt), np.diff(times)]))
