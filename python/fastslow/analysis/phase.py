"""Phase diagrams: the classification of the full ODE over a grid of any two parameters.

Axes are named parameters of :mod:`fastslow.params` (``a0``, ``m0``, ``lr_a``, ``lr_w``, ``eps``,
``noise``, ``c<k>``, ``s<k>``); each cell's model is built by :func:`fastslow.params.model_changes`,
and every cell is integrated by one :func:`~fastslow.solve_ode_batch` call.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _validate as V
from .. import params as P
from .._runtime import resolve_threads
from ..model import Model, as_model
from .classify import Thresholds, classify_batch
from .law import asymptotic_law

__all__ = ["PhaseDiagram", "phase_diagram", "AXIS_NAMES"]

AXIS_NAMES = "a0, m0, lr_a, lr_w, eps, noise, c<k> (target coefficient of order k), s<k> (activation coefficient)"
_INIT = ("init.a0", "init.m0")
_FIELDS = ("outcome", "law", "exponent", "m_peak", "t_peak", "t_half", "m_final", "a_final")


def _ro(x: Any) -> np.ndarray:
    a = np.array(x)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class PhaseDiagram:
    """Outcome, peak alignment, half-life and more over a grid of two parameters.

    Attributes
    ----------
    x_name, y_name : str
        The parameters (as given: ``"c3"``, ``"a0"``).
    x, y : ndarray
        Their values.
    outcome : ndarray of str, shape (len(y), len(x))
        The classification of each cell's trajectory (see :class:`~fastslow.analysis.Classification`).
    law : ndarray of str, shape (len(y), len(x))
        The asymptotic law's verdict for each cell's model.
    exponent, m_peak, t_peak, t_half, m_final, a_final : ndarray, shape (len(y), len(x))
        As in :class:`~fastslow.analysis.Classification`.
    t_max : float
    seconds : float
        Wall time of the computation (not compared).
    """

    x_name: str
    x: np.ndarray
    y_name: str
    y: np.ndarray
    outcome: np.ndarray
    law: np.ndarray
    exponent: np.ndarray
    m_peak: np.ndarray
    t_peak: np.ndarray
    t_half: np.ndarray
    m_final: np.ndarray
    a_final: np.ndarray
    t_max: float
    seconds: float = field(default=math.nan, compare=False)

    def __post_init__(self) -> None:
        for k in ("x", "y", *_FIELDS):
            object.__setattr__(self, k, _ro(getattr(self, k)))

    @property
    def x_label(self) -> str:
        """The axis label of ``x`` (:func:`fastslow.params.label`)."""
        return P.label(self.x_name)

    @property
    def y_label(self) -> str:
        """The axis label of ``y``."""
        return P.label(self.y_name)

    @property
    def shape(self) -> tuple[int, int]:
        """``(len(y), len(x))``."""
        return (self.y.size, self.x.size)

    def counts(self) -> dict[str, int]:
        """How many cells had each outcome (only outcomes that occur, most frequent first)."""
        vals, n = np.unique(self.outcome.astype(str).ravel(), return_counts=True)
        return {str(v): int(c) for v, c in sorted(zip(vals, n), key=lambda vc: -vc[1])}

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def to_xarray(self) -> Any:
        """An :class:`xarray.Dataset` over ``(y_name, x_name)`` with labelled coordinates."""
        import xarray as xr  # optional dependency

        dims = (self.y_name, self.x_name)
        coords = {self.x_name: (self.x_name, self.x, {"long_name": self.x_label}),
                  self.y_name: (self.y_name, self.y, {"long_name": self.y_label})}
        return xr.Dataset({k: (dims, getattr(self, k)) for k in _FIELDS}, coords=coords,
                          attrs={"t_max": self.t_max, "seconds": self.seconds})

    def __repr__(self) -> str:
        counts = ", ".join(f"{c} {k}" for k, c in self.counts().items())
        secs = f", {self.seconds:.2g} s" if math.isfinite(self.seconds) else ""
        return (f"PhaseDiagram({self.x_name} x {self.y_name}: {self.x.size} x {self.y.size} cells, {counts}; "
                f"t_max = {self.t_max:.3g}{secs})")


def _axis(spec: Any, which: str) -> tuple[str, P.Param, np.ndarray]:
    """``(name, Param, values)`` of an axis, every value checked against the parameter's range."""
    if not (isinstance(spec, (tuple, list)) and len(spec) == 2):
        raise TypeError(f"{which}: must be a (name, values) pair such as ('c3', [0.1, 0.2]), got {V.show(spec)}")
    name, values = spec
    p = P.lookup(name, field=which)
    if not (p.axis is None and (p.path in _INIT or (p.section == "model" and p.kind == "float"))):
        raise ValueError(f"{which}: {name!r} is not a number of the model or of the initial condition; allowed: "
                         f"{AXIS_NAMES}")
    vals = np.atleast_1d(V.real_array(values, f"{which} ({name})"))
    if vals.ndim != 1 or vals.size == 0:
        raise ValueError(f"{which}: the values of {name!r} must be a non-empty 1-D array, got shape {vals.shape}")
    for i, v in enumerate(vals):
        p.check(float(v), f"{which}: {name}[{i}]")
    return name, p, vals


def phase_diagram(model: Model, x: tuple[str, Any], y: tuple[str, Any], *, a0: float = 1.0, m0: float = 0.0,
                  t_max: float = 1e7, rtol: float = 1e-8, threads: int | None = None,
                  thresholds: Thresholds | None = None) -> PhaseDiagram:
    """Classify the full ODE over a grid of any two parameters, with one :func:`~fastslow.solve_ode_batch` call.

    Parameters
    ----------
    model : Model
        The base model; each cell changes one or two parameters of it.
    x, y : (str, array_like)
        Parameter name (any name :func:`fastslow.params.lookup` knows that is a number of the model
        or of the initial condition: ``"a0"``, ``"m0"``, ``"lr_a"``, ``"lr_w"``, ``"eps"`` (sets
        ``lr_a = eps lr_w``), ``"noise"``, ``"c<k>"`` (the target's Hermite coefficient of order ``k``),
        ``"s<k>"`` (the activation's)) and its values, each checked against the parameter's range.
    a0, m0 : float
        Initial condition where not an axis.
    t_max : float
    rtol : float
    threads : int, optional
    thresholds : Thresholds, optional
        Of the classification (see :func:`~fastslow.analysis.classify_batch`).

    Returns
    -------
    PhaseDiagram
        Arrays of shape ``(len(y), len(x))``.

    Raises
    ------
    TypeError, ValueError
        For a bad name or value (naming ``x`` or ``y``), before anything is integrated.
    """
    model = as_model(model)
    xn, xp, xv = _axis(x, "x")
    yn, yp, yv = _axis(y, "y")
    if xp.path == yp.path:
        raise ValueError(f"x and y: must be different parameters, both are {xp.name!r}")
    if {xp.path, yp.path} == {"model.eps", "model.lr_a"}:
        raise ValueError("x and y: eps sets lr_a = eps * lr_w; give one of them")
    a0 = P.lookup("a0").check(a0, "a0")
    m0 = P.lookup("m0").check(m0, "m0")
    t_max = P.lookup("classify_t_max").check(t_max, "t_max")
    th = Thresholds.check(thresholds)
    threads = resolve_threads(threads)
    start = time.perf_counter()
    X, Y = np.meshgrid(xv, yv)
    init = {"init.a0": np.full(X.shape, a0), "init.m0": np.full(X.shape, m0)}
    model_axes = []
    for p, grid in ((xp, X), (yp, Y)):
        if p.path in _INIT:
            init[p.path] = grid.copy()
        else:
            model_axes.append((p, grid))
    cache: dict[tuple[float, ...], Model] = {}
    cell_models: list[Model] = []
    for idx in np.ndindex(X.shape):
        key = tuple(float(g[idx]) for _, g in model_axes)
        mdl = cache.get(key)
        if mdl is None:
            mdl = cache[key] = P.model_changes(model, {p: v for (p, _), v in zip(model_axes, key)})
        cell_models.append(mdl)
    verdicts = {id(m): asymptotic_law(m, limits=False).verdict for m in cache.values()}
    law = np.array([verdicts[id(m)] for m in cell_models]).reshape(X.shape)
    models_arg: Model | list[Model] = cell_models if model_axes else model
    c = classify_batch(models_arg, a0=init["init.a0"].ravel(), m0=init["init.m0"].ravel(), t_max=t_max, rtol=rtol,
                       threads=threads, thresholds=th)
    sh = X.shape
    return PhaseDiagram(x_name=xn, x=xv, y_name=yn, y=yv, outcome=c.outcome.reshape(sh), law=law,
                        exponent=c.exponent.reshape(sh), m_peak=c.m_peak.reshape(sh), t_peak=c.t_peak.reshape(sh),
                        t_half=c.t_half.reshape(sh), m_final=c.m_final.reshape(sh), a_final=c.a_final.reshape(sh),
                        t_max=t_max, seconds=time.perf_counter() - start)
