"""What trajectories of the full ODE do by a horizon ``t_max``: learning, lazy, unlearning.

The verdict looks at the last decade, ``[t_max / 10, t_max]``: *settled* when ``m`` and ``a``
(relative) moved less than ``settle_tol`` over it, with a feature (``"learning"``) when
``|m| >= m_tol`` or without (``"lazy"``); *unlearning* when ``|m|`` decays and ``|a|`` grows as powers
of ``t`` (``d log|m| / d log t < -slope_tol`` and ``d log|a| / d log t > slope_tol``). The thresholds
are defined once, in :class:`Thresholds`; every classification (this module, the phase diagram, the
sweeps) uses them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _validate as V
from .. import params as P
from ..model import Model, as_model
from ..ode import solve_ode_batch
from ..params import lookup
from ..trajectory import Trajectory
from .equilibria import Equilibrium, equilibria

__all__ = ["OUTCOMES", "Thresholds", "DEFAULT_THRESHOLDS", "Classification", "classify", "classify_batch",
           "classify_trajectory"]

OUTCOMES: tuple[str, ...] = ("learning", "lazy", "unlearning", "undetermined", "failed")


@dataclass(frozen=True)
class Thresholds:
    """The thresholds of the classification (the one definition).

    Attributes
    ----------
    settle_tol : float
        Settled when ``m`` and ``a`` (relative to ``max(1, |a|)``) moved less than this over the last decade.
    m_tol : float
        A settled state with ``|m|`` below this has no feature (``"lazy"``).
    slope_tol : float
        Unlearning needs ``d log|m| / d log t < -slope_tol`` and ``d log|a| / d log t > slope_tol``.
    """

    settle_tol: float = 1e-6
    m_tol: float = 1e-3
    slope_tol: float = 0.02

    def __post_init__(self) -> None:
        for k in ("settle_tol", "m_tol", "slope_tol"):
            object.__setattr__(self, k, V.real(getattr(self, k), f"thresholds.{k}", lo=0.0, lo_open=True))

    def to_dict(self) -> dict[str, float]:
        """Plain data."""
        return {"settle_tol": self.settle_tol, "m_tol": self.m_tol, "slope_tol": self.slope_tol}

    @classmethod
    def check(cls, thresholds: Any) -> Thresholds:
        """``thresholds`` if a :class:`Thresholds`, the defaults for None, else a ``TypeError``."""
        if thresholds is None:
            return DEFAULT_THRESHOLDS
        if not isinstance(thresholds, Thresholds):
            raise TypeError(f"thresholds: expected a fastslow.analysis.Thresholds or None, got {V.show(thresholds)}")
        return thresholds


DEFAULT_THRESHOLDS = Thresholds()
"""The thresholds every classification uses unless given others."""


def _arr(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        if x.flags.writeable:
            x = x.copy()
            x.setflags(write=False)
        return x
    return x


@dataclass(frozen=True, eq=False)
class Classification:
    """What trajectories of the full ODE do by ``t_max``.

    For one trajectory (:func:`classify`) every field is a scalar; for a batch
    (:func:`classify_batch`) the per-trajectory fields are arrays of the batch shape.

    Attributes
    ----------
    outcome : str or ndarray of str
        ``"learning"`` (settled at a state with ``|m| >= m_tol``: a kept feature, pole or interior),
        ``"lazy"`` (settled with ``|m| < m_tol``), ``"unlearning"``, ``"undetermined"`` (neither by
        ``t_max``) or ``"failed"`` (the integration failed).
    exponent : float or ndarray
        When unlearning, the measured ``-d log|m| / d log t`` over the last decade (NaN otherwise).
    m_final, a_final : float or ndarray
        The state at ``t_max``.
    m_peak, t_peak : float or ndarray
        The largest alignment and when.
    t_half : float or ndarray
        When ``m`` first falls to half its peak after it (NaN if not by ``t_max``).
    t_max : float
    equilibrium : Equilibrium or None
        For one settled trajectory, the equilibrium it settled at (None otherwise and for a batch).
    thresholds : Thresholds
        The thresholds of the verdict.
    """

    outcome: Any
    exponent: Any
    m_final: Any
    a_final: Any
    m_peak: Any
    t_peak: Any
    t_half: Any
    t_max: float
    equilibrium: Equilibrium | None = None
    thresholds: Thresholds = field(default=DEFAULT_THRESHOLDS)

    def __post_init__(self) -> None:
        for k in ("outcome", "exponent", "m_final", "a_final", "m_peak", "t_peak", "t_half"):
            object.__setattr__(self, k, _arr(getattr(self, k)))

    @property
    def shape(self) -> tuple[int, ...]:
        """``()`` for one trajectory, else the batch shape."""
        return np.shape(self.outcome)

    def counts(self) -> dict[str, int]:
        """How many trajectories had each outcome (only outcomes that occur)."""
        vals, n = np.unique(np.asarray(self.outcome, dtype=str).ravel(), return_counts=True)
        return {str(v): int(c) for v, c in sorted(zip(vals, n), key=lambda vc: OUTCOMES.index(str(vc[0]))
                                                   if str(vc[0]) in OUTCOMES else len(OUTCOMES))}

    def to_dict(self) -> dict[str, Any]:
        """Plain data (arrays for a batch)."""
        d = {k: getattr(self, k) for k in ("outcome", "exponent", "m_final", "a_final", "m_peak", "t_peak", "t_half",
                                           "t_max")}
        d["equilibrium"] = self.equilibrium.to_dict() if self.equilibrium is not None else None
        d["thresholds"] = self.thresholds.to_dict()
        return d

    def to_xarray(self) -> Any:
        """An :class:`xarray.Dataset` of the per-trajectory fields over the batch dimensions
        (``batch_0``, ...); ``t_max`` and the thresholds as attributes."""
        import xarray as xr  # optional dependency

        shape = self.shape
        dims = tuple(f"batch_{i}" for i in range(len(shape)))
        data = {k: (dims, np.asarray(getattr(self, k), dtype=str if k == "outcome" else float))
                for k in ("outcome", "exponent", "m_final", "a_final", "m_peak", "t_peak", "t_half")}
        return xr.Dataset(data, attrs={"t_max": self.t_max, **self.thresholds.to_dict()})

    def __repr__(self) -> str:
        if self.shape == ():
            parts = [f"{self.outcome} by t = {self.t_max:.3g}"]
            if self.outcome == "unlearning":
                parts.append(f"exponent {float(self.exponent):.4g}")
            parts.append(f"m_final = {float(self.m_final):.4g}, a_final = {float(self.a_final):.4g}")
            parts.append(f"m_peak = {float(self.m_peak):.4g} at t = {float(self.t_peak):.4g}")
            if math.isfinite(float(self.t_half)):
                parts.append(f"t_half = {float(self.t_half):.4g}")
            return f"Classification({', '.join(parts)})"
        n = int(np.prod(self.shape))
        shape = " x ".join(map(str, self.shape))
        counts = ", ".join(f"{c} {k}" for k, c in self.counts().items())
        return f"Classification({shape} trajector{'ies' if n != 1 else 'y'} by t = {self.t_max:.3g}: {counts})"


def classify_trajectory(traj: Trajectory, thresholds: Thresholds | None = None) -> Classification:
    """The verdict on ODE trajectories from their last two save times.

    Parameters
    ----------
    traj : Trajectory
        A level ``"ode"`` trajectory or batch with at least two save times; the verdict compares the
        states at ``t[-2]`` and ``t[-1]`` (``[t_max / 10, t_max]`` for :func:`classify_batch`: the rates
        are per decade of ``t``). Its stats ``m_peak``, ``t_peak``, ``t_half`` are carried over.
    thresholds : Thresholds, optional

    Returns
    -------
    Classification
        Scalars for one trajectory, arrays of its batch shape for a batch (``equilibrium`` None).
    """
    if not isinstance(traj, Trajectory):
        raise TypeError(f"traj: expected a fastslow.Trajectory, got {type(traj).__name__}")
    th = Thresholds.check(thresholds)
    t = traj.t
    if t.size < 2 or not t[-2] > 0:
        raise ValueError("traj: needs two save times t[-2] > 0 and t[-1] to compare (e.g. [0, t_max / 10, t_max])")
    m1, m2, a1, a2 = traj.m[..., -2], traj.m[..., -1], traj.a[..., -2], traj.a[..., -1]
    dec = math.log10(t[-1] / t[-2])
    with np.errstate(divide="ignore", invalid="ignore"):
        slope_m = np.log10(np.abs(m2) / np.abs(m1)) / dec
        slope_a = np.log10(np.abs(a2) / np.abs(a1)) / dec
    settled = (np.abs(m2 - m1) <= th.settle_tol) & (np.abs(a2 - a1) <= th.settle_tol * np.maximum(1.0, np.abs(a2)))
    unlearn = ~settled & (slope_m < -th.slope_tol) & (slope_a > th.slope_tol)
    out = np.full(np.shape(m2), "undetermined", dtype=object)
    out[settled & (np.abs(m2) >= th.m_tol)] = "learning"
    out[settled & (np.abs(m2) < th.m_tol)] = "lazy"
    out[unlearn] = "unlearning"
    out[np.asarray(traj.status) != 0] = "failed"
    exponent = np.where(unlearn, -slope_m, np.nan)
    stats = {k: np.asarray(traj.stats[k], dtype=float) if k in traj.stats else np.full(np.shape(m2), np.nan)
             for k in ("m_peak", "t_peak", "t_half")}
    if traj.batch_shape == ():
        return Classification(outcome=str(out[()]), exponent=float(exponent), m_final=float(m2), a_final=float(a2),
                              m_peak=float(stats["m_peak"]), t_peak=float(stats["t_peak"]),
                              t_half=float(stats["t_half"]), t_max=float(t[-1]), thresholds=th)
    return Classification(outcome=out.astype(str), exponent=exponent, m_final=np.array(m2), a_final=np.array(a2),
                          m_peak=stats["m_peak"], t_peak=stats["t_peak"], t_half=stats["t_half"], t_max=float(t[-1]),
                          thresholds=th)


def _save_times(t_max: Any) -> np.ndarray:
    t_max = lookup("classify_t_max").check(t_max, "t_max")
    return np.array([0.0, t_max / 10.0, t_max])


def classify_batch(models: Model | Sequence[Model], *, a0: Any, m0: Any = 0.0, t_max: float = 1e9,
                   rtol: float = 1e-8, threads: int | None = None,
                   thresholds: Thresholds | None = None) -> Classification:
    """Classify many trajectories (a grid of initial conditions or of models) by ``t_max``, with one
    :func:`~fastslow.solve_ode_batch` call.

    Parameters
    ----------
    models : Model or sequence of Model
        One model, or one per trajectory (broadcast with ``a0``, ``m0`` as in
        :func:`~fastslow.solve_ode_batch`: a sequence counts as a 1-D array along the last axis).
    a0, m0 : array_like
        Initial conditions (broadcast together).
    t_max : float
        Horizon (``> 0``, at most ``1e15``); the verdict looks at the last decade ``[t_max / 10, t_max]``.
    rtol : float
    threads : int, optional
    thresholds : Thresholds, optional
        Default :data:`DEFAULT_THRESHOLDS`.

    Returns
    -------
    Classification
        Arrays of the broadcast batch shape; ``equilibrium`` None.
    """
    th = Thresholds.check(thresholds)
    t_eval = _save_times(t_max)
    bt = solve_ode_batch(models, t_eval, a0=a0, m0=m0, rtol=rtol, threads=threads)
    c = classify_trajectory(bt, th)
    if c.shape == ():  # scalar a0, m0 and one model: 0-d arrays, the broadcast shape ()
        names = ("outcome", "exponent", "m_final", "a_final", "m_peak", "t_peak", "t_half")
        arrays: dict[str, Any] = {k: np.asarray(getattr(c, k)) for k in names}  # Any: the fields are not all arrays
        return Classification(**arrays, t_max=c.t_max, thresholds=th)
    return c


def classify(model: Model, *, a0: float, m0: float = 0.0, t_max: float = 1e9, rtol: float = 1e-8,
             thresholds: Thresholds | None = None) -> Classification:
    """What the trajectory from ``(m0, a0)`` does by ``t_max`` (see :func:`classify_batch`), and which
    equilibrium it settles at.

    Parameters
    ----------
    model : Model
    a0, m0 : float
    t_max, rtol, thresholds
        As for :func:`classify_batch`.

    Returns
    -------
    Classification
        Scalar fields; ``equilibrium``: for ``"learning"`` and ``"lazy"``, the :class:`Equilibrium`
        within ``1e-4`` of the final state (None if none is).
    """
    model = as_model(model)
    a0 = P.lookup("a0").check(a0, "a0")
    m0 = V.real(m0, "m0", lo=-1.0, hi=1.0, lo_open=True, hi_open=True)
    th = Thresholds.check(thresholds)
    t_eval = _save_times(t_max)
    bt = solve_ode_batch(model, t_eval, a0=a0, m0=m0, rtol=rtol, threads=1)
    c = classify_trajectory(bt, th)
    if c.outcome not in ("learning", "lazy"):
        return c
    m_f, a_f = c.m_final, c.a_final
    near = [e for e in equilibria(model) if abs(e.m - m_f) <= 1e-4 and abs(e.a - a_f) <= 1e-4 * max(1.0, abs(e.a))]
    eq = min(near, key=lambda e: abs(e.m - m_f) + abs(e.a - a_f)) if near else None
    return Classification(**{k: getattr(c, k) for k in ("outcome", "exponent", "m_final", "a_final", "m_peak",
                                                         "t_peak", "t_half", "t_max")}, equilibrium=eq, thresholds=th)
