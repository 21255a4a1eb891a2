"""The reduced (slow) flow on attracting branches of the critical manifold (level ``"slow_flow"``).

For small ``eps = lr_a / lr_w`` the alignment relaxes fast onto an attracting branch ``m*(a)`` of
the critical manifold and ``a`` then follows ``da/dt = -lr_a dL/da(m*(a), a)``, gradient descent on
``L*(a) = L(m*(a), a)`` (Fenichel: full trajectories stay ``O(eps)`` close after the fast layer).
That is the index-1 DAE ``da/dt = -lr_a dL/da(m, a)``, ``0 = dL/dm(m, a)``, solved here by SciPy's
Radau (implicit) in ``a`` with ``m = m*(a)`` from the branch solver
(:func:`~fastslow.analysis.manifold.branch_points`) at every evaluation, and the analytic Jacobian
``-lr_a (L_aa - L_am^2 / L_mm)``. Where no manifold point lies ahead of the fast fibre it ends at a
pole ``m = +-1`` and the flow follows the pole until it loses stability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from .. import _validate as V
from .. import params as P
from ..model import Model, as_model
from ..trajectory import Status, Trajectory
from .manifold import Branch, alpha, branch_points, critical_manifold, manifold_structure
from ._polynomials import series

__all__ = ["SlowFlowEvent", "solve_slow_flow", "EVENT_KINDS"]

EVENT_KINDS: tuple[str, ...] = ("fold", "pole-unstable", "branch-end", "jump")


@dataclass(frozen=True)
class SlowFlowEvent:
    """Something the slow flow met.

    Attributes
    ----------
    kind : str
        ``"fold"`` (the branch ends in a fold at ``(m, a)``), ``"pole-unstable"`` (the pole it follows
        loses stability at ``a``), ``"branch-end"`` (the branch reaches the pole or ``a = 0``) or
        ``"jump"`` (a fast fibre from ``(m, a)`` to ``(m_to, a)``, from ``branch`` to ``branch_to``).
    t, m, a : float
        Where and when.
    branch : int
        The branch followed (an index into the trajectory's ``params["branch_names"]``).
    m_to, branch_to : float, int
        For a jump: where it lands (NaN and -1 otherwise).
    """

    kind: str
    t: float
    m: float
    a: float
    branch: int
    m_to: float = math.nan
    branch_to: int = -1

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {k: getattr(self, k) for k in ("kind", "t", "m", "a", "branch", "m_to", "branch_to")}

    def __repr__(self) -> str:
        where = f"t = {self.t:.4g}, m = {self.m:.4g}, a = {self.a:.4g}, branch {self.branch}"
        if self.kind == "jump":
            where += f" -> m = {self.m_to:.4g}, branch {self.branch_to}"
        return f"SlowFlowEvent({self.kind} at {where})"


def _roots_at(model: Model, a: float) -> list[tuple[float, int, bool]]:
    """All manifold points ``(m, branch, attracting)`` at ``a``."""
    cm = critical_manifold(model, [a])
    return [(float(cm.m[0, b]), b, bool(cm.attracting[0, b])) for b in range(cm.m.shape[1]) if np.isfinite(cm.m[0, b])]


def _fast_destination(model: Model, m0: float, a: float, direction: float | None = None) -> tuple[float, int]:
    """Where the fast fibre from ``m0`` at fixed ``a`` ends: the next manifold point in the direction
    of ``-dL/dm``, or a pole. Returns ``(m, branch id)`` (pole ids: ``n``, ``n + 1`` for -1, +1)."""
    nb = len(manifold_structure(model).branches)
    if direction is None:
        g = float(model.grad(m0, a)[0])
        if g == 0.0:
            for m, b, _att in _roots_at(model, a):
                if abs(m - m0) < 1e-9:
                    return m, b
            direction = 1.0
        else:
            direction = -math.copysign(1.0, g)
    ahead = [(m, b) for m, b, _ in _roots_at(model, a) if (m - m0) * direction > 1e-12]
    if not ahead:
        return (1.0, nb + 1) if direction > 0 else (-1.0, nb)
    return min(ahead, key=lambda mb: abs(mb[0] - m0))


def _alpha_increasing(model: Model, br: Branch) -> bool:
    w = br.m_hi - br.m_lo
    al = alpha(model, [br.m_lo + 0.25 * w, br.m_lo + 0.75 * w])
    return bool(al[1] > al[0])


def solve_slow_flow(model: Model, t_eval: Any, *, a0: float, m0: float = 0.0, jump: bool = False,
                    rtol: float = 1e-10, atol: float = 1e-12, max_jumps: int = 20) -> Trajectory:
    """The reduced flow on the attracting branch that the fast fibre from ``(m0, a0)`` falls onto.

    Parameters
    ----------
    model : Model
    t_eval : array_like
        Increasing save times ``>= 0`` (ODE time ``t``, not ``tau = lr_a t``).
    a0, m0 : float
        Initial condition of the full system (``a0 != 0``, ``|m0| < 1``); ``m`` first relaxes along the
        fast fibre at fixed ``a0``.
    jump : bool
        At a fold (or where a pole loses stability) jump along the fast fibre to the next attracting
        branch and continue; otherwise stop there (status ``STOPPED``).
    rtol, atol : float
        Radau tolerances on ``a``.
    max_jumps : int

    Returns
    -------
    Trajectory
        Level ``"slow_flow"``: ``m``, ``a`` on the manifold and ``loss = L(m, a)``, NaN after a stop;
        ``status`` ``SUCCESS`` (reached ``t_eval[-1]``), ``STOPPED`` (at a fold or a loss of
        stability, ``jump=False``, or after ``max_jumps``) or ``FAILED`` (``message`` says why);
        ``series["branch"]``: the branch followed at each save time, an index into
        ``params["branch_names"]`` (``"branch k"`` for the manifold's branches, then ``"pole m=-1"``,
        ``"pole m=+1"``; -1 after a stop); ``events``: the :class:`SlowFlowEvent` met.
    """
    model = as_model(model)
    t = V.times(t_eval)
    a0 = P.lookup("a0").check(a0, "a0")
    if a0 == 0.0:
        raise ValueError("a0: must be != 0 (at a = 0 every m is critical and the fast fibre is not defined)")
    m0 = V.real(m0, "m0", lo=-1.0, hi=1.0, lo_open=True, hi_open=True)
    jump = V.flag(jump, "jump")
    rtol = V.real(rtol, "rtol", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    atol = V.real(atol, "atol", lo=0.0, lo_open=True)
    max_jumps = V.integer(max_jumps, "max_jumps", lo=0, hi=10_000)
    st = manifold_structure(model)
    nb = len(st.branches)
    names = tuple(f"branch {b.index}" for b in st.branches) + ("pole m=-1", "pole m=+1")
    fold_at: dict[int, list[Any]] = {}
    for f in st.folds:
        for b in f.branches:
            fold_at.setdefault(b, []).append(f)

    a_out = np.full(t.size, np.nan)
    m_out = np.full(t.size, np.nan)
    b_out = np.full(t.size, -1, dtype=int)
    events: list[SlowFlowEvent] = []
    m_start, bid = _fast_destination(model, m0, a0)
    a_cur, t_cur = a0, 0.0
    at0 = t <= 0.0  # t = 0: where the fast fibre lands
    a_out[at0], m_out[at0], b_out[at0] = a0, m_start, bid
    status, message = Status.SUCCESS, "The slow flow reached the end of t_eval."
    lr_a = model.lr_a

    def m_of(bid: int, a: float, guess: float | None) -> float:
        if bid >= nb:
            return -1.0 if bid == nb else 1.0
        br = st.branches[bid]
        if br.kind == "trivial":
            return 0.0
        x = float(branch_points(model, br, [a], None if guess is None else [guess])[0])
        if not math.isfinite(x):  # past the end of the branch: its end point (an event stops us there)
            inc = _alpha_increasing(model, br)
            ends = [(br.a_lo, br.m_lo if inc else br.m_hi), (br.a_hi, br.m_hi if inc else br.m_lo)]
            x = min(max(min(ends, key=lambda e: abs(e[0] - a))[1], -1.0), 1.0)
        return x

    for _ in range(max_jumps + 1):
        if t_cur >= t[-1]:
            break
        guess = [m_start]
        interior = bid < nb and st.branches[bid].kind == "interior"

        # this iteration's branch and guess bound (the solver calls these only within the iteration)
        def rhs(_t: float, y: np.ndarray, *, bid: int = bid, guess: list[float] = guess) -> np.ndarray:
            m = m_of(bid, float(y[0]), guess[0])
            guess[0] = m
            return np.array([-lr_a * float(model.grad(m, y[0])[1])])

        def jac(_t: float, y: np.ndarray, *, bid: int = bid, guess: list[float] = guess,
                interior: bool = interior) -> np.ndarray:
            H = model.hessian(m_of(bid, float(y[0]), guess[0]), y[0])
            if interior and H[0, 0] != 0:
                return np.array([[-lr_a * (H[1, 1] - H[0, 1] ** 2 / H[0, 0])]])
            return np.array([[-lr_a * H[1, 1]]])

        # events: the ends of this branch (folds, pole, a = 0), or the loss of stability of a pole
        ev_specs: list[tuple[float, str]] = []
        if interior:
            br = st.branches[bid]
            for a_end in (br.a_lo, br.a_hi):
                if math.isfinite(a_end):
                    is_fold = any(abs(f.a - a_end) <= 1e-9 * max(1.0, abs(a_end)) for f in fold_at.get(bid, []))
                    ev_specs.append((a_end, "fold" if is_fold else "branch-end"))
        elif bid >= nb:
            S = series(model, [-1.0 if bid == nb else 1.0])
            if S[1, 0] != 0:
                ev_specs.append((float(2 * S[4, 0] / S[1, 0]), "pole-unstable"))
        ev_specs = [(ae, k) for ae, k in ev_specs if abs(ae - a_cur) > 1e-12 * max(1.0, abs(ae))]
        ev_funcs = []
        for ae, _k in ev_specs:
            def g(_t: float, y: np.ndarray, ae: float = ae) -> float:
                return float(y[0] - ae)
            g.terminal = True  # type: ignore[attr-defined]
            ev_funcs.append(g)
        try:
            sol = solve_ivp(rhs, (t_cur, float(t[-1])), [a_cur], method="Radau", rtol=rtol, atol=atol, jac=jac,
                            dense_output=True, events=ev_funcs or None)
        except (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError) as exc:  # reported, not raised
            status, message = Status.FAILED, f"The slow flow failed at t = {t_cur:g}: {exc}"
            break
        if sol.status == -1:
            status, message = Status.FAILED, f"The slow flow failed at t = {t_cur:g}: {sol.message}"
        t_end = float(sol.t[-1])
        sel = (t >= t_cur) & (t <= t_end)
        if sel.any():
            av = sol.sol(t[sel])[0]
            a_out[sel] = av
            g0: float | None = m_start
            ms = []
            for ai in av:
                g0 = m_of(bid, float(ai), g0)
                ms.append(g0)
            m_out[sel] = ms
            b_out[sel] = bid
        if status == Status.FAILED or sol.status == 0:
            break
        # a terminal event
        fired = [i for i, te in enumerate(sol.t_events) if len(te)]
        i_ev = min(fired, key=lambda i: sol.t_events[i][0])
        t_ev = float(sol.t_events[i_ev][0])
        a_ev, kind = ev_specs[i_ev]
        m_ev = m_of(bid, a_ev, guess[0]) if bid < nb else (-1.0 if bid == nb else 1.0)
        events.append(SlowFlowEvent(kind, t_ev, m_ev, a_ev, bid))
        if not jump:
            status = Status.STOPPED
            message = f"The slow flow stopped at a {kind} at t = {t_ev:.6g} (m = {m_ev:.6g}, a = {a_ev:.6g})."
            break
        # jump: past the event the point is gone (fold) or unstable (pole); follow the fast fibre
        da = float(rhs(t_ev, np.array([a_ev]))[0])
        a_past = a_ev + math.copysign(1e-9 * max(1.0, abs(a_ev)), da if da != 0 else 1.0)
        gm = float(model.grad(m_ev, a_past)[0])
        direction = -math.copysign(1.0, gm) if gm != 0 else (-1.0 if m_ev > 0 else 1.0)
        start = m_ev - 1e-7 * direction if abs(m_ev) == 1.0 else m_ev
        m_new, b_new = _fast_destination(model, start, a_past, direction)
        if b_new == bid and abs(m_new - m_ev) < 1e-6:
            status = Status.STOPPED
            message = f"The slow flow stopped at a {kind} at t = {t_ev:.6g}: no fast fibre leaves it."
            break
        events.append(SlowFlowEvent("jump", t_ev, m_ev, a_past, bid, m_new, b_new))
        bid, m_start, a_cur, t_cur = b_new, m_new, a_past, t_ev
    else:
        status, message = Status.STOPPED, f"Stopped after max_jumps = {max_jumps} jumps."
    loss = np.full(t.size, np.nan)
    ok = np.isfinite(m_out) & np.isfinite(a_out)
    if ok.any():
        loss[ok] = model.loss(m_out[ok], a_out[ok])
    params = {"model": model.to_dict(), "a0": a0, "m0": m0, "jump": jump, "rtol": rtol, "atol": atol,
              "max_jumps": max_jumps, "branch_names": names}
    return Trajectory(level="slow_flow", t=t, m=m_out, a=a_out, loss=loss, status=status, message=message,
                      series={"branch": b_out}, events=tuple(events), params=params)
