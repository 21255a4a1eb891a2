"""The effective dynamics of the finite network (level ``"effective"``), iterated in the C++ core.

One SGD step of the finite network, averaged over its batch, in the symmetric state ``(m, a, Q)``:
``m`` the mean alignment, ``a`` the mean second-layer weight and ``Q = w_i . w_j`` (``i != j``)
``= m^2 + (1 - m^2) q_perp``, with ``q_perp`` the collective overlap of the neurons' parts
orthogonal to the teacher. The map keeps

* the exact population step at finite ``dt`` with the exact row normalisation (the discrete-time
  limit map, which removes SGD's ``O(dt)`` bias against the limit ODE), exact for the symmetric
  network of any width ``n``;
* the batch noise to order ``dt^2 d / B``: the shrinkage of each row by its own noise and the
  noise common to all rows (every row sees the same batch), which drives ``q_perp``;
* the feedback of ``q_perp`` on ``m`` and ``a``: the self terms of the loss see ``Q``, the cross
  terms see ``m``.

The mathematics, what is exact and what approximated, and the measurements against SGD are on
the theory page ``docs/theory/finite_size.md``. :func:`solve_effective` returns a
:class:`~fastslow.Trajectory` like every other level, so :func:`fastslow.compare` takes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _core
from . import _validate as V
from ._runtime import resolve_threads
from .model import Model, as_model
from .params import lookup
from .trajectory import Trajectory

__all__ = ["TERMS", "EffectiveDense", "solve_effective", "solve_effective_batch", "effective_map"]

#: The choices of ``terms``: which parts of the effective map are kept (noise, collective, feedback,
#: finite width), from the exact limit map alone to everything.
TERMS: Mapping[str, str] = {
    "map": "the exact discrete-time limit map (n, d, B -> infinity at finite dt; q_perp = 0)",
    "width": "the map of the finite-width network without batch noise (q_perp relaxes to -1/(n-1))",
    "shrink": "width + each row's own batch noise (its shrinkage), no collective mode (q_perp = 0)",
    "no_feedback": "all terms, but m and a do not see q_perp (it evolves on its own)",
    "all": "the finite-width map with the batch noise, the collective mode and its feedback",
}
_SWITCHES = {"map": (False, False, False), "width": (False, True, True), "shrink": (True, False, True),
             "no_feedback": (True, True, False), "all": (True, True, True)}


def effective_map(model: Model, nodes: int = 24) -> Any:
    """The core's map for ``model`` (``_core.effective.EffectiveMap``; one per model and rule size)."""
    model = as_model(model)
    nodes = V.integer(nodes, "nodes", lo=2, hi=200)
    cache = model.__dict__.setdefault("_effective_maps", {})
    mp = cache.get(nodes)
    if mp is None:
        act, _ = model.simulator_functions()
        mp = cache[nodes] = _core.effective.EffectiveMap(
            s=np.asarray(model.s, float), c=np.asarray(model.c, float), s_tail=float(model.activation_series.tail),
            c_tail=float(model.target_series.tail), activation=act, lr_w=model.lr_w, lr_a=model.lr_a,
            noise=model.noise, nodes=nodes)
    return mp


def _size(x: Any, name: str, lo: int) -> float:
    """An integer size ``>= lo`` (through the parameter registry) or ``math.inf``."""
    if isinstance(x, float) and math.isinf(x) and x > 0:
        return math.inf
    p = lookup(name)
    v = p.check(x, name)
    if v < lo:
        raise ValueError(f"{name}: must be an integer >= {lo} (or math.inf for the limit), got {v!r}")
    return float(v)


def _sizes(terms: str, d: Any, batch: Any, n: Any) -> tuple[float, float]:
    """(ratio d / B, width n) of a setting; "map" needs none of them."""
    if terms == "map":
        return 0.0, math.inf
    for name, v in (("d", d), ("batch", batch), ("n", n)):
        if v is None:
            raise TypeError(f"{name}: required for terms={terms!r} (an integer, or math.inf for the limit)")
    n_ = _size(n, "n", 2)
    b_ = _size(batch, "batch", 1)
    d_ = _size(d, "d", 2)
    if math.isinf(d_) and not math.isinf(b_):
        raise ValueError("d: an infinite input dimension needs an infinite batch (d / B must stay finite)")
    return (0.0 if math.isinf(b_) else d_ / b_), n_


class EffectiveDense:
    """The iterated map at every step: ``sol(t)`` gives ``(m, a)`` at any ``t`` in ``[0, t_end]``
    by linear interpolation between the step times (exact at a step time), ``sol.loss(t)`` and
    ``sol.q_perp(t)`` likewise. ``ts`` are the step times."""

    def __init__(self, t: np.ndarray, m: np.ndarray, a: np.ndarray, loss: np.ndarray, q: np.ndarray) -> None:
        self.ts, self._m, self._a, self._loss, self._q = (np.array(x, dtype=float) for x in (t, m, a, loss, q))
        self.t_min, self.t_max = float(self.ts[0]), float(self.ts[-1])

    def _at(self, t: Any, y: np.ndarray) -> np.ndarray:
        arr = V.real_array(t, "t", finite=False)
        if arr.size and (not np.all(np.isfinite(arr)) or arr.min() < self.t_min or arr.max() > self.t_max):
            raise ValueError(f"t: dense output covers [{self.t_min:g}, {self.t_max:g}]; got values outside it")
        return np.interp(arr, self.ts, y)

    def __call__(self, t: Any) -> np.ndarray:
        return np.stack([self._at(t, self._m), self._at(t, self._a)])

    def loss(self, t: Any) -> np.ndarray:
        return self._at(t, self._loss)

    def q_perp(self, t: Any) -> np.ndarray:
        return self._at(t, self._q)

    def __repr__(self) -> str:
        return f"EffectiveDense({self.ts.size - 1} steps over [{self.t_min:g}, {self.t_max:g}])"


def solve_effective(model: Model, t_eval: Any, *, a0: float, m0: float = 0.0, dt: float, d: Any = None,
                    batch: Any = None, n: Any = None, terms: str = "all", schedule: Any = None,
                    dense_output: bool = True, nodes: int = 24, q0: float = 0.0,
                    max_steps: int = 10_000_000) -> Trajectory:
    """Iterate the effective map of the finite network from ``(m0, a0)``, ``q_perp = 0``, at ``t = 0``.

    Parameters
    ----------
    model : Model
    t_eval : array_like
        Strictly increasing save times ``>= 0``; the map runs to the first step time ``>= t_eval[-1]``.
        Values at a step time are the step's state; between step times, linear interpolation.
    a0, m0 : float
        Initial second-layer weight and alignment (``|m0| < 1``).
    dt : float
        SGD's step in ODE time (the map's step; with ``schedule``, the largest step).
    d, batch, n : int or math.inf
        Input dimension, batch size and width of the network (``math.inf``: that limit; ``d`` may
        be infinite only with an infinite batch). Not needed for ``terms="map"``.
    terms : str
        Which terms to keep, one of :data:`TERMS`: ``"all"`` (default), ``"map"`` (the exact
        discrete-time limit map only), ``"width"``, ``"shrink"``, ``"no_feedback"`` (ablations).
    schedule : StepSchedule or "stable", optional
        Steps ``dt_k`` instead of the constant ``dt`` (see :mod:`fastslow.stability`); ``"stable"``
        builds :func:`fastslow.stability.stable_schedule` with ``dt`` as its largest step. ODE time
        is the sum of the steps.
    dense_output : bool
        Keep every step for ``Trajectory.sol`` (:class:`EffectiveDense`).
    nodes : int
        Gauss-Hermite nodes per dimension of the noise expectations (2 to 200).
    q0 : float
        Initial collective overlap ``q_perp`` (in (-1, 1); 0 for rows drawn independently; kept only
        by the terms that evolve it, not by ``"map"`` and ``"shrink"``).
    max_steps : int
        Refuse (``ValueError``) a run that needs more steps than this.

    Returns
    -------
    Trajectory
        Level ``"effective"``: ``m``, ``a``, ``loss`` (the population loss of the finite network in
        the state, its self terms at ``Q``); ``series``: ``q_perp``; ``stats``: ``steps`` (the number
        of steps taken), ``dt`` (the constant step, or the largest of the schedule), ``t_end`` (the
        last step time). A map that leaves its domain (a step too large for the fast rate) has
        status -1 and a message; its values are NaN from there.

    Examples
    --------
    >>> import fastslow as fs
    >>> model = fs.Model(activation="tanh", target={1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
    >>> eff = fs.solve_effective(model, [0.0, 5.0], a0=0.5, dt=0.1, d=256, batch=64, n=256)
    >>> bool(eff.q_perp[-1] > 0)
    True
    """
    model = as_model(model)
    t = V.times(t_eval)
    a0 = lookup("a0").check(a0, "a0")
    m0 = V.real(m0, "m0", lo=-1.0, hi=1.0, lo_open=True, hi_open=True)
    dt = lookup("dt").check(dt, "dt")
    V.choice(terms, "terms", tuple(TERMS))
    dense = V.flag(dense_output, "dense_output")
    ratio, width = _sizes(terms, d, batch, n)
    q0 = V.real(q0, "q0", lo=-1.0, hi=1.0, lo_open=True, hi_open=True)
    max_steps = V.integer(max_steps, "max_steps", lo=1, hi=2**62)
    _check_steps(t, dt, max_steps)
    steps = _schedule_steps(schedule, model, t, a0, m0, dt)
    noise, collective, feedback = _SWITCHES[terms]
    mp = effective_map(model, nodes)
    r = _core.effective.iterate(mp, m0, a0, q0, t, dt, steps, ratio, width,
                                _core.effective.Terms(noise=noise, collective=collective, feedback=feedback), dense,
                                max_steps)
    if r.status == -2:
        raise KeyboardInterrupt(r.message)
    if r.status != 0:
        import warnings

        warnings.warn(f"solve_effective: {r.message}", RuntimeWarning, stacklevel=2)
    sol = EffectiveDense(r.t_steps, r.m_steps, r.a_steps, r.loss_steps, r.q_steps) if dense and r.status == 0 else None
    stats = {"steps": np.int64(r.steps), "dt": np.float64(dt if steps.size == 0 else steps.max()),
             "t_end": np.float64(r.t_end)}
    params = {"model": model, "a0": a0, "m0": m0, "dt": dt, "d": d, "batch": batch, "n": n, "terms": terms,
              "nodes": nodes, "q0": q0, "schedule": None if steps.size == 0 else "given"}
    return Trajectory._trusted("effective", t, np.array(r.m), np.array(r.a), np.array(r.loss), r.status, r.message,
                               {"q_perp": np.array(r.q_perp)}, stats, params, sol)


def _check_steps(t: np.ndarray, dt: Any, max_steps: int) -> None:
    need = float(t[-1]) / np.min(dt)
    if need > max_steps:
        raise ValueError(f"t_eval, dt: {need:.4g} steps to t = {t[-1]:g}, more than max_steps = {max_steps:,} "
                         "(a larger dt, a shorter horizon or a larger max_steps)")


def _schedule_steps(schedule: Any, model: Model, t: np.ndarray, a0: float, m0: float, dt: float) -> np.ndarray:
    """The steps of a schedule argument (an empty array for the constant step)."""
    if schedule is None:
        return np.empty(0)
    from .stability import StepSchedule, stable_schedule

    if isinstance(schedule, str):
        V.choice(schedule, "schedule", ("stable",))
        schedule = stable_schedule(model, float(t[-1]), a0=a0, m0=m0, dt=dt)
    if not isinstance(schedule, StepSchedule):
        raise TypeError(f"schedule: must be a fastslow.stability.StepSchedule or 'stable', got {V.show(schedule)}")
    if schedule.t_end < t[-1] * (1 - 1e-12):
        raise ValueError(f"schedule: it reaches t = {schedule.t_end:g}, short of the last save time {t[-1]:g}")
    return np.ascontiguousarray(schedule.dts, dtype=float)


def solve_effective_batch(model: Model, t_eval: Any, *, a0: Any, m0: Any = 0.0, dt: Any, d: Any = None,
                          batch: Any = None, n: Any = None, terms: str = "all", nodes: int = 24,
                          threads: int | None = None, max_steps: int = 10_000_000) -> Trajectory:
    """Many settings of the effective map at once, on OpenMP threads (constant steps).

    ``a0``, ``m0``, ``dt``, ``d``, ``batch`` and ``n`` broadcast together (each an array or a scalar;
    sizes may be ``math.inf``); the result is a batch :class:`~fastslow.Trajectory` of that shape,
    with ``series`` ``q_perp`` and ``stats`` ``steps``. Other parameters as :func:`solve_effective`.
    """
    model = as_model(model)
    t = V.times(t_eval)
    V.choice(terms, "terms", tuple(TERMS))
    arrs = {k: np.asarray(V.real_array(v, k, finite=k not in ("d", "batch", "n")))
            for k, v in (("a0", a0), ("m0", m0), ("dt", dt)) + ((("d", d), ("batch", batch), ("n", n))
                                                                    if terms != "map" else ())}
    try:
        shape = np.broadcast_shapes(*(v.shape for v in arrs.values()))
    except ValueError:
        raise ValueError(f"a0, m0, dt, d, batch, n: shapes {[v.shape for v in arrs.values()]} do not broadcast") from None
    flat = {k: np.broadcast_to(v, shape).ravel() for k, v in arrs.items()}
    size = int(np.prod(shape))
    if size == 0:
        raise ValueError("a0, m0, dt: no settings requested (empty arrays)")
    pa, pdt = lookup("a0"), lookup("dt")
    for i in range(size):  # every setting through the one validator
        pa.check(float(flat["a0"][i]), "a0")
        V.real(float(flat["m0"][i]), "m0", lo=-1.0, hi=1.0, lo_open=True, hi_open=True)
        pdt.check(float(flat["dt"][i]), "dt")
    max_steps = V.integer(max_steps, "max_steps", lo=1, hi=2**62)
    _check_steps(t, flat["dt"], max_steps)
    ratio = np.zeros(size)
    width = np.full(size, math.inf)
    if terms != "map":
        def size_of(k: str, i: int) -> Any:
            v = float(flat[k][i])
            return v if math.isinf(v) else (int(v) if v == int(v) else v)

        for i in range(size):
            ratio[i], width[i] = _sizes(terms, size_of("d", i), size_of("batch", i), size_of("n", i))
    noise, collective, feedback = _SWITCHES[terms]
    r = _core.effective.iterate_batch(effective_map(model, nodes), np.ascontiguousarray(flat["m0"], float),
                                      np.ascontiguousarray(flat["a0"], float), np.ascontiguousarray(flat["dt"], float),
                                      width, ratio, _core.effective.Terms(noise=noise, collective=collective,
                                                                          feedback=feedback), t,
                                      resolve_threads(threads), max_steps)
    if r.interrupted:
        raise KeyboardInterrupt("solve_effective_batch: interrupted")
    status = np.asarray(r.status)
    if np.any(status != 0):
        import warnings

        first = int(np.flatnonzero(status != 0)[0])
        warnings.warn(f"solve_effective_batch: {int(np.sum(status != 0))} of {size} settings failed; first (index "
                      f"{first}): {r.message[first]}", RuntimeWarning, stacklevel=2)

    def grid(x: Any) -> np.ndarray:
        return np.array(x).reshape(tuple(shape) + np.shape(x)[1:])

    message = np.where(status == 0, "", np.array(r.message, dtype=object)).astype(str)
    return Trajectory(level="effective", t=t, m=grid(r.m), a=grid(r.a), loss=grid(r.loss), status=grid(status),
                      message=grid(message), series={"q_perp": grid(r.q_perp)}, stats={"steps": grid(r.steps)},
                      params={"model": model, "terms": terms, "nodes": nodes})
