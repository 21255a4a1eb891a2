"""The limit ODE (level ``"ode"``): one trajectory or a batch, integrated by the C++ Radau IIA (5) solver.

The state is integrated in ``v = artanh(m)`` (``dv/dt = -lr_w dL/dm``, ``da/dt = -lr_a dL/da``),
so no step can leave ``|m| < 1`` and the poles ``m = +-1`` stay invariant.

Method ``"radau5"``: Radau IIA, 3 stages, order 5 (stage order 3), L-stable, with an embedded
order-3 error estimate and a predictive step-size controller (Hairer & Wanner's RADAU5), full
Newton on the stage system with the stage Jacobians. Choose it for the stiff, strongly fast-slow
regime (``lr_a / lr_w`` down to 1e-6 and below) and for long horizons, where the step grows with
the slowing dynamics so that the step count grows only logarithmically with ``t_max``. Values at
``t_eval`` are exact Radau steps; the dense output is the collocation polynomial of each step.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core
from . import _validate as V
from ._runtime import check_memory, resolve_threads
from .model import Model, as_model
from .params import lookup
from .trajectory import Trajectory

__all__ = ["DenseOutput", "solve_ode", "solve_ode_batch", "log_times", "METHODS", "batch_memory_estimate"]

METHODS: tuple[str, ...] = ("radau5",)
_ODE_STATS = ("nfev", "njev", "nlu", "nsteps", "nrejected", "t_peak", "m_peak", "t_half")


def log_times(t_max: float, num: int = 200, t_min: float = 1e-2) -> np.ndarray:
    """Save points: ``0`` and ``num`` log-spaced times from ``t_min`` to ``t_max``."""
    t_max = V.real(t_max, "t_max", lo=0.0, lo_open=True)
    num = V.integer(num, "num", lo=1, hi=10_000_000)
    t_min = V.real(t_min, "t_min", lo=0.0, lo_open=True)
    t_min = min(t_min, t_max)
    return np.concatenate([[0.0], np.geomspace(t_min, t_max, num)]) if t_min < t_max else np.array([0.0, t_max])


class DenseOutput:
    """Continuous solution of one trajectory: call with times in ``[0, t_reached]`` for ``(m, a)``.

    Each accepted step carries its Radau IIA collocation polynomial (cubic in time, through the
    step's start, its three stages and its end), so ``sol(t)`` is exact at step ends and has an
    O(h^4) error inside a step (about ``rtol**0.8`` at the default tolerance map). For values that
    carry the full accuracy of the integrator, ask for them in ``t_eval``.

    ``sol(t)`` returns an array of shape ``(2,)`` for a scalar ``t`` and ``(2,) + t.shape`` for an
    array (rows ``m`` and ``a``), as SciPy's dense output does; ``sol.loss(t)`` the loss there.
    """

    def __init__(self, segments: np.ndarray, model: Model | None = None) -> None:
        self.segments = np.asarray(segments, dtype=float)
        self.segments.setflags(write=False)
        self.t_min = float(self.segments[0, 0])
        self.t_max = float(self.segments[-1, 0] + self.segments[-1, 1])
        self._model = model

    @property
    def ts(self) -> np.ndarray:
        """Times of the step ends, starting with 0."""
        return np.append(self.segments[:, 0], self.t_max)

    def __call__(self, t: Any) -> np.ndarray:
        t_arr = V.real_array(t, "t", finite=False)
        flat = np.ascontiguousarray(t_arr.ravel())
        if flat.size and (not np.all(np.isfinite(flat)) or flat.min() < self.t_min or flat.max() > self.t_max):
            raise ValueError(f"t: dense output covers [{self.t_min:g}, {self.t_max:g}]; got values outside it")
        va = _core.ode.dense_evaluate(self.segments, flat)
        out = np.stack([np.tanh(va[:, 0]), va[:, 1]])
        return out.reshape((2,) + t_arr.shape)

    def loss(self, t: Any) -> np.ndarray:
        """The population loss ``L(m(t), a(t))``."""
        if self._model is None:
            raise ValueError("loss: this dense output was made without its model")
        m, a = self(t)
        return self._model.loss(m, a)

    def __repr__(self) -> str:
        return f"DenseOutput({self.segments.shape[0]} steps over [{self.t_min:g}, {self.t_max:g}])"


def _settings(rtol: Any, atol: Any, method: Any, max_steps: Any, first_step: Any, max_step: Any,
              half_fraction: Any) -> dict[str, Any]:
    key = (rtol, atol, method, max_steps, first_step, max_step, half_fraction)
    if all(type(k) in (float, int, str, type(None)) for k in key):  # plain values: checked once
        return dict(_checked_settings(*key))
    return _check_settings(*key)


@functools.lru_cache(maxsize=64)
def _checked_settings(*key: Any) -> tuple[tuple[str, Any], ...]:
    return tuple(_check_settings(*key).items())


def _check_settings(rtol: Any, atol: Any, method: Any, max_steps: Any, first_step: Any, max_step: Any,
                    half_fraction: Any) -> dict[str, Any]:
    V.choice(method, "method", METHODS)
    return {"rtol": V.real(rtol, "rtol", lo=1e-14, hi=1.0, hi_open=True),
            "atol": V.real(atol, "atol", lo=0.0, lo_open=True, hi=1e15),
            "max_steps": lookup("max_steps").check(max_steps, "max_steps"),
            "first_step": 0.0 if first_step is None else lookup("first_step").check(first_step, "first_step"),
            "max_step": V.real(max_step, "max_step", lo=0.0, lo_open=True, finite=False),
            "half_fraction": lookup("half_fraction").check(half_fraction, "half_fraction"),
            "method": method}


@functools.lru_cache(maxsize=64)
def _options_for(rtol: float, atol: float, max_steps: int, first_step: float, max_step: float, fixed_step: float,
                 half_fraction: float, store_dense: bool) -> Any:
    return _core.ode.Options(rtol=rtol, atol=atol, max_steps=max_steps, first_step=first_step, max_step=max_step,
                             fixed_step=fixed_step, half_fraction=half_fraction, store_dense=store_dense)


def _options(opt: dict[str, Any], fixed_step: float, store_dense: bool) -> Any:
    """The core's settings object (one per distinct setting: the core only reads it)."""
    return _options_for(opt["rtol"], opt["atol"], opt["max_steps"], opt["first_step"], opt["max_step"],
                        float(fixed_step), opt["half_fraction"], bool(store_dense))


def _initial(a0: Any, m0: Any) -> tuple[float, float]:
    a0 = lookup("a0").check(a0, "a0")
    m0 = V.real(m0, "m0", lo=-1.0, hi=1.0, lo_open=True, hi_open=True)  # the poles m = +-1 are invariant
    return a0, m0


def solve_ode(model: Model, t_eval: Any, *, a0: float, m0: float = 0.0, rtol: float = 1e-8, atol: float = 1e-10,
              method: str = "radau5", max_steps: int = 1_000_000, first_step: float | None = None,
              max_step: float = math.inf, dense_output: bool = True, half_fraction: float = 0.5,
              fixed_step: float | None = None) -> Trajectory:
    """Integrate the limit ODE from ``(m0, a0)`` at ``t = 0`` and save at ``t_eval``.

    Parameters
    ----------
    model : Model
    t_eval : array_like
        Strictly increasing save times ``>= 0``; the integration runs to ``t_eval[-1]``.
    a0, m0 : float
        Initial second-layer weight and alignment (``|m0| < 1``: the poles are invariant).
    rtol, atol : float
        Tolerances on ``(v, a)`` (``rtol`` in ``[1e-14, 1)``, ``atol > 0``), mapped as in RADAU5.
    method : str
        ``"radau5"`` (see the module documentation).
    max_steps : int
        Give up (status -1) after this many accepted steps.
    first_step, max_step : float
        Initial step (default automatic) and largest step.
    dense_output : bool
        Keep every step for ``Trajectory.sol``.
    half_fraction : float
        The half-life event fires when ``m`` falls to this fraction of its peak.
    fixed_step : float, optional
        Constant step without error control (for convergence-order studies only).

    Returns
    -------
    Trajectory
        Level ``"ode"``; ``series``: ``v = artanh(m)``; ``stats``: ``nfev``, ``njev``, ``nlu``,
        ``nsteps``, ``nrejected``, ``t_reached``, ``t_peak``, ``m_peak`` (the largest alignment, on
        the dense output) and ``t_half`` (the first time after the peak at which ``m`` falls to
        ``half_fraction * m_peak``; NaN if not before the horizon). A failed integration has
        ``status = -1`` with a ``message`` (and warns); its arrays are NaN past the time reached.
    """
    model = as_model(model)
    t = V.times(t_eval)
    opt = _settings(rtol, atol, method, max_steps, first_step, max_step, half_fraction)
    a0, m0 = _initial(a0, m0)
    dense = V.flag(dense_output, "dense_output")
    fixed = 0.0 if fixed_step is None else V.real(fixed_step, "fixed_step", lo=0.0, lo_open=True)
    r = _core.ode.solve(model.core, m0, a0, t, _options(opt, fixed, dense))
    if r.status != 0:
        warnings.warn(f"solve_ode: {r.message}", RuntimeWarning, stacklevel=2)
    segments = r.dense if dense else None
    sol = DenseOutput(segments, model) if (segments is not None and len(segments)) else None
    stats = {k: getattr(r, k) for k in _ODE_STATS}
    stats["t_reached"] = r.t_reached
    return Trajectory._trusted("ode", t, r.m, r.a, r.loss, r.status, r.message, {"v": r.v}, stats,
                               {"model": model, "a0": a0, "m0": m0, "half_fraction": opt["half_fraction"],
                                **{k: opt[k] for k in ("rtol", "atol", "method")}}, sol)


def batch_memory_estimate(n: int, n_times: int, threads: int = 1) -> int:
    """Bytes :func:`solve_ode_batch` allocates for ``n`` trajectories saved at ``n_times`` times on
    ``threads`` threads: the initial conditions and the model list, m, a and the loss per save time
    (the C++ result, viewed without a copy, and the reshaped arrays), the per-trajectory statistics
    and messages, the core's copy of the save times, and each thread's working solution (v, m, a and
    the loss at every save time)."""
    n, n_times = int(n), int(n_times)
    return (n * (2 * 8 + 8 + 2 * 3 * 8 * n_times + 12 * 8 + 64)
            + 8 * n_times * (1 + 4 * min(int(threads), n)))


def solve_ode_batch(models: Model | Sequence[Model], t_eval: Any, *, a0: Any, m0: Any = 0.0, rtol: float = 1e-8,
                    atol: float = 1e-10, method: str = "radau5", max_steps: int = 1_000_000,
                    first_step: float | None = None, max_step: float = math.inf, half_fraction: float = 0.5,
                    threads: int | None = None) -> Trajectory:
    """Integrate many trajectories in parallel (OpenMP threads, GIL released).

    Parameters
    ----------
    models : Model or sequence of Model
        One model for all trajectories, or one per trajectory.
    t_eval : array_like
        Save times shared by all trajectories.
    a0, m0 : array_like
        Initial conditions, broadcast together and with the models (a sequence of models counts
        as a 1-D array along the last axis, so ``a0[:, None]`` with ``K`` models makes a
        ``(len(a0), K)`` grid).
    threads : int, optional
        OpenMP threads, from 1 to the usable cores (default: all of them, or
        ``FASTSLOW_NUM_THREADS``). The results do not depend on it.

    Other parameters are those of :func:`solve_ode`.

    Returns
    -------
    Trajectory
        Level ``"ode"`` with the broadcast shape of the inputs as its batch shape
        (``m.shape == batch_shape + t_eval.shape``); ``stats`` as for :func:`solve_ode` plus ``a0``
        and ``m0``, per trajectory.
    """
    model_list: list[Model] | None
    if isinstance(models, Model):
        model_list = [models]
    else:
        try:
            model_list = list(models) if not isinstance(models, (str, bytes)) else None
        except TypeError:
            model_list = None
        if model_list is None:
            raise TypeError(f"models: expected a Model or a sequence of Models, got {type(models).__name__}")
        if not model_list:
            raise ValueError("models: the sequence of models is empty")
        for i, m in enumerate(model_list):
            as_model(m, f"models[{i}]")
    t = V.times(t_eval)
    opt = _settings(rtol, atol, method, max_steps, first_step, max_step, half_fraction)
    arrays = [V.real_array(a0, "a0"), V.real_array(m0, "m0")]
    model_index = np.arange(len(model_list))
    if len(model_list) > 1:
        arrays.append(model_index)
    try:
        bshape = np.broadcast_shapes(*(x.shape for x in arrays))
    except ValueError:
        raise ValueError(f"a0, m0 and models: shapes {[x.shape for x in arrays]} do not broadcast together "
                         "(models count as a 1-D array along the last axis)") from None
    n = int(np.prod(bshape))
    if n == 0:
        raise ValueError("a0, m0: no trajectories requested (empty arrays)")
    nthreads = resolve_threads(threads)
    need = batch_memory_estimate(n, t.size, nthreads)
    hint = "fewer trajectories or save times (or several calls)"
    check_memory(need, "a0, m0, t_eval", f"{n:,} trajectories x {t.size:,} save times", hint=hint)
    # the values are checked once the sizes are known to fit (a broadcast view of 1e10 values
    # would otherwise make 10 GB temporaries here)
    pa = lookup("a0")
    if np.any((arrays[0] < pa.lo) | (arrays[0] > pa.hi)):
        bad = float(arrays[0].ravel()[np.flatnonzero((arrays[0].ravel() < pa.lo) | (arrays[0].ravel() > pa.hi))[0]])
        raise ValueError(f"a0: every value must be{V.allowed(pa.lo, pa.hi)}, got {bad!r}")
    if np.any(np.abs(arrays[1]) >= 1):
        raise ValueError("m0: the initial alignment must satisfy |m0| < 1 (the poles m = +-1 are invariant)")
    a0_b = np.ascontiguousarray(np.broadcast_to(arrays[0], bshape).ravel())
    m0_b = np.ascontiguousarray(np.broadcast_to(arrays[1], bshape).ravel())
    if len(model_list) > 1:
        idx = np.broadcast_to(model_index, bshape).ravel()
        cores = [model_list[i].core for i in idx]
    else:
        cores = [model_list[0].core]
    options = _options(opt, 0.0, False)
    try:
        r = _core.ode.solve_batch(cores, m0_b, a0_b, t, options, nthreads)
    except MemoryError:
        raise ValueError(f"a0, m0, t_eval: out of memory for {n:,} trajectories x {t.size:,} save times (estimated "
                         f"{need / 2**30:.2f} GiB; the limit is the least of MemAvailable, ulimit -v and the "
                         f"cgroup's); {hint}") from None
    status = np.asarray(r.status)
    nfail = int(np.count_nonzero(status != 0))
    if nfail:
        first = int(np.flatnonzero(status != 0)[0])
        warnings.warn(f"solve_ode_batch: {nfail} of {status.size} trajectories did not succeed; "
                      f"first (index {first}): {r.message[first]}", RuntimeWarning, stacklevel=2)
    shape = tuple(bshape)

    def grid(x: Any) -> np.ndarray:
        return np.asarray(x).reshape(shape + np.shape(x)[1:])

    stats = {k: grid(getattr(r, k)) for k in _ODE_STATS}
    stats["a0"], stats["m0"] = grid(a0_b), grid(m0_b)
    params: dict[str, Any] = {"half_fraction": opt["half_fraction"], "n_models": len(model_list),
                              **{k: opt[k] for k in ("rtol", "atol", "method")}}
    if len(model_list) == 1:
        params["model"] = model_list[0]
    message = np.where(status == 0, "", np.array(r.message, dtype=object)).astype(str)
    return Trajectory(level="ode", t=t, m=grid(r.m), a=grid(r.a), loss=grid(r.loss),
                      status=grid(status), message=grid(message), stats=stats, params=params)

