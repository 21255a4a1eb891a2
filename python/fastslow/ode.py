"""The limit ODE: one trajectory or many, integrated by the C++ Radau IIA (5) solver.

The state is integrated in ``v = artanh(m)`` (``dv/dt = -lr_w dL/dm``, ``da/dt = -lr_a dL/da``),
so no step can leave ``|m| < 1`` and the poles ``m = +-1`` stay invariant.

Method ``"radau5"``: Radau IIA, 3 stages, order 5 (stage order 3), L-stable, with an embedded
order-3 error estimate and a predictive step-size controller (Hairer & Wanner's RADAU5). Choose
it for the stiff, strongly fast-slow regime (``lr_a / lr_w`` down to 1e-6 and below) and for long
horizons, where the step grows with the slowing dynamics so that the step count grows only
logarithmically with ``t_max``. The Jacobian is analytic. Dense output is quintic Hermite
interpolation (``y``, ``y'`` and ``y'' = J y'`` at each step end), with the method's local order.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _core
from ._validate import real_array
from .model import Model

__all__ = ["Trajectory", "BatchTrajectory", "DenseOutput", "solve_ode", "solve_ode_batch", "log_times", "METHODS"]

METHODS: tuple[str, ...] = ("radau5",)
_STATUS_TEXT = {0: "success", -1: "failed", -2: "interrupted"}


def log_times(t_max: float, num: int = 200, t_min: float = 1e-2) -> np.ndarray:
    """Save points ``0`` plus ``num`` log-spaced times from ``t_min`` to ``t_max``."""
    from ._validate import integer, real

    t_max = real(t_max, "t_max", lo=0.0, lo_open=True)
    num = integer(num, "num", lo=1, hi=10_000_000)
    t_min = real(t_min, "t_min", lo=0.0, lo_open=True)
    t_min = min(t_min, t_max)
    return np.concatenate([[0.0], np.geomspace(t_min, t_max, num)]) if t_min < t_max else np.array([0.0, t_max])


class DenseOutput:
    """Continuous solution: call with times in ``[0, t_reached]`` to get ``(m, a)``.

    Each accepted step carries its Radau IIA collocation polynomial (cubic in time, through the
    step's start, its three stages and its end), so ``sol(t)`` is exact at step ends and has an
    O(h^4) error inside a step (about ``rtol**0.8`` at the default tolerance map). For values that
    carry the full accuracy of the integrator, ask for them in ``t_eval``.

    ``sol(t)`` returns an array of shape ``(2,)`` for a scalar ``t`` and ``(2, len(t))`` for an
    array (rows ``m`` and ``a``), as SciPy's dense output does.
    """

    def __init__(self, segments: np.ndarray) -> None:
        self.segments = np.asarray(segments, dtype=float)
        self.segments.setflags(write=False)
        self.t_min = float(self.segments[0, 0])
        self.t_max = float(self.segments[-1, 0] + self.segments[-1, 1])

    @property
    def ts(self) -> np.ndarray:
        """Times of the step ends, starting with 0."""
        return np.append(self.segments[:, 0], self.t_max)

    def __call__(self, t: Any) -> np.ndarray:
        t_arr = real_array(t, "t")
        flat = np.ascontiguousarray(t_arr.ravel())
        if flat.size and (not np.all(np.isfinite(flat)) or flat.min() < self.t_min or flat.max() > self.t_max):
            raise ValueError(f"t: dense output covers [{self.t_min:g}, {self.t_max:g}]; got values outside it")
        va = _core.dense_evaluate(self.segments, flat)
        out = np.stack([np.tanh(va[:, 0]), va[:, 1]])
        return out.reshape((2,) + t_arr.shape)


@dataclass(frozen=True)
class Trajectory:
    """One solution of the limit ODE (SciPy ``solve_ivp`` conventions where they fit).

    Attributes
    ----------
    t, m, a, loss : ndarray
        Save times and the alignment, second-layer weight and population loss there.
    v : ndarray
        ``artanh(m)``, the integrated coordinate (exact where ``m`` rounds to +-1).
    status : int
        0 success, -1 failure (see ``message``), -2 interrupted. Past a failure the arrays hold NaN.
    message : str
    nfev, njev, nlu, nsteps, nrejected : int
        Right-hand-side and Jacobian evaluations, factorisations, accepted and rejected steps.
    t_peak, m_peak : float
        Time and value of the largest alignment (a local maximum located on the dense output, or
        the initial or final value when ``m`` is monotone there).
    t_half : float
        First time after ``t_peak`` at which ``m`` falls to ``half_fraction * m_peak`` (NaN when that
        does not happen before the horizon, or when ``m_peak <= 0``; see ``half_reached``).
    half_fraction : float
    sol : DenseOutput or None
        Continuous solution over ``[0, t_reached]``.
    params : dict
        The model and solver settings.
    """

    t: np.ndarray
    m: np.ndarray
    a: np.ndarray
    loss: np.ndarray
    v: np.ndarray
    status: int
    message: str
    nfev: int
    njev: int
    nlu: int
    nsteps: int
    nrejected: int
    t_reached: float
    t_peak: float
    m_peak: float
    t_half: float
    half_fraction: float
    sol: DenseOutput | None = field(default=None, repr=False, compare=False)
    params: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def success(self) -> bool:
        return self.status == 0

    @property
    def half_reached(self) -> bool:
        return not math.isnan(self.t_half)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (arrays and scalars), without the dense output."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("sol", "params")}
        d["params"] = _plain_params(self.params)
        return d


@dataclass(frozen=True)
class BatchTrajectory:
    """Many solutions: arrays of shape ``(N, len(t))`` and per-trajectory statistics ``(N,)``.

    ``grid_shape`` is the broadcast shape of the inputs (reshape ``m[:, k]`` to it for a grid).
    Events are NaN where they did not occur (see :class:`Trajectory`).
    """

    t: np.ndarray
    m: np.ndarray
    a: np.ndarray
    loss: np.ndarray
    a0: np.ndarray
    m0: np.ndarray
    status: np.ndarray
    message: list[str]
    nfev: np.ndarray
    njev: np.ndarray
    nlu: np.ndarray
    nsteps: np.ndarray
    nrejected: np.ndarray
    t_peak: np.ndarray
    m_peak: np.ndarray
    t_half: np.ndarray
    half_fraction: float
    grid_shape: tuple[int, ...]
    params: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def success(self) -> np.ndarray:
        return self.status == 0

    def __len__(self) -> int:
        return int(self.status.size)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (arrays, lists and scalars)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "params"}
        d["params"] = _plain_params(self.params)
        return d


def _plain_params(params: dict) -> dict:
    out = dict(params)
    if isinstance(out.get("model"), Model):
        out["model"] = out["model"].to_dict()
    return out


def _check_model(model: Any, field: str = "model") -> Model:
    if not isinstance(model, Model):
        raise ValueError(f"{field}: expected a fastslow.Model, got {type(model).__name__}")
    return model


def _check_times(t_eval: Any, values: bool = True) -> np.ndarray:
    """Shape checks; with ``values``, also finite, >= 0 and increasing (the core checks these too,
    with the same field name, so the single-trajectory path leaves them to it)."""
    if t_eval is None:
        raise ValueError("t_eval: required (an increasing array of times >= 0; see fastslow.log_times)")
    try:
        t = np.atleast_1d(real_array(t_eval, "t_eval"))
    except ValueError:
        raise ValueError("t_eval: must be an array of real times") from None
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"t_eval: must be a non-empty 1-D array of times, got shape {t.shape}")
    if not values:
        return np.ascontiguousarray(t)
    if not np.all(np.isfinite(t)):
        raise ValueError("t_eval: times must be finite")
    if t[0] < 0:
        raise ValueError(f"t_eval: times must be >= 0 (the ODE starts at t = 0), got {t[0]!r}")
    if t.size > 1 and not np.all(np.diff(t) > 0):
        i = int(np.flatnonzero(np.diff(t) <= 0)[0]) + 1
        raise ValueError(f"t_eval: times must be strictly increasing; t_eval[{i}] = {t[i]!r} <= t_eval[{i-1}] = {t[i-1]!r}")
    return np.ascontiguousarray(t)


def _check_settings(rtol: float, atol: float, method: str, max_steps: int, first_step: float | None,
                    max_step: float, half_fraction: float) -> tuple[float, float, int, float, float, float]:
    from ._validate import choice, integer, real

    choice(method, "method", METHODS)
    rtol = real(rtol, "rtol", lo=1e-14, hi=1.0, hi_open=True)
    atol = real(atol, "atol", lo=0.0, lo_open=True)
    max_steps = integer(max_steps, "max_steps", lo=1)
    fs = 0.0 if first_step is None else real(first_step, "first_step", lo=0.0)
    max_step = real(max_step, "max_step", lo=0.0, lo_open=True, finite=False)
    half_fraction = real(half_fraction, "half_fraction", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    return rtol, atol, max_steps, fs, max_step, half_fraction


def _check_initial(m0: np.ndarray, a0: np.ndarray) -> None:
    if not np.all(np.isfinite(a0)):
        raise ValueError("a0: must be finite")
    if not np.all(np.isfinite(m0)):
        raise ValueError("m0: must be finite")
    if np.any(np.abs(m0) >= 1):
        raise ValueError("m0: the initial alignment must satisfy |m0| < 1 (the poles m = +-1 are invariant)")


def _settings_dict(model: Model | None, **kw: Any) -> dict[str, Any]:
    """Solver settings, and the model (converted to plain data by ``to_dict``)."""
    return {"solver": kw, "model": model}


def solve_ode(model: Model, a0: float, m0: float = 0.0, t_eval: Any = None, *, rtol: float = 1e-8,
              atol: float = 1e-10, method: str = "radau5", max_steps: int = 1_000_000,
              first_step: float | None = None, max_step: float = math.inf, dense_output: bool = True,
              half_fraction: float = 0.5, fixed_step: float | None = None) -> Trajectory:
    """Integrate the limit ODE from ``(m0, a0)`` at ``t = 0`` and save at ``t_eval``.

    Parameters
    ----------
    model : Model
    a0, m0 : float
        Initial second-layer weight and alignment (``|m0| < 1``).
    t_eval : array_like
        Strictly increasing save times ``>= 0``; the integration runs to ``t_eval[-1]``.
    rtol, atol : float
        Tolerances on ``(v, a)`` (``rtol`` in ``[1e-14, 1)``, ``atol > 0``).
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
        A failed integration returns ``status = -1`` with a ``message`` (and warns); the arrays are
        NaN only past the time it reached.
    """
    model = _check_model(model)
    t = _check_times(t_eval, values=False)
    rtol, atol, max_steps, fs, max_step, half_fraction = _check_settings(
        rtol, atol, method, max_steps, first_step, max_step, half_fraction)
    try:
        a0 = float(a0)
        m0 = float(m0)
    except (TypeError, ValueError):
        raise ValueError("a0, m0: must be real numbers") from None
    if not math.isfinite(a0):
        raise ValueError(f"a0: must be finite, got {a0!r}")
    if not (math.isfinite(m0) and abs(m0) < 1):
        raise ValueError(f"m0: the initial alignment must satisfy |m0| < 1 (the poles m = +-1 are invariant), got {m0!r}")
    fixed = 0.0 if fixed_step is None else float(fixed_step)
    if not (math.isfinite(fixed) and fixed >= 0):
        raise ValueError(f"fixed_step: must be finite and > 0 (or None for adaptive steps), got {fixed_step!r}")
    r = _core.solve_ode(model.core, m0, a0, t, rtol, atol, max_steps, fs, max_step, half_fraction,
                        bool(dense_output), fixed)
    if r["status"] != 0:
        warnings.warn(f"solve_ode: {r['message']}", RuntimeWarning, stacklevel=2)
    sol = DenseOutput(r["dense"]) if (dense_output and len(r["dense"])) else None
    return Trajectory(t=t, m=r["m"], a=r["a"], loss=r["loss"], v=r["v"], status=int(r["status"]),
                      message=r["message"], nfev=int(r["nfev"]), njev=int(r["njev"]), nlu=int(r["nlu"]),
                      nsteps=int(r["nsteps"]), nrejected=int(r["nrejected"]), t_reached=float(r["t_reached"]),
                      t_peak=float(r["t_peak"]), m_peak=float(r["m_peak"]), t_half=float(r["t_half"]),
                      half_fraction=half_fraction, sol=sol,
                      params=_settings_dict(model, a0=a0, m0=m0, rtol=rtol, atol=atol, method=method))


def default_threads() -> int:
    """Threads for batch work: ``FASTSLOW_NUM_THREADS`` if set, else the usable cores."""
    env = os.environ.get("FASTSLOW_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"FASTSLOW_NUM_THREADS: must be an integer >= 1, got {env!r}") from None
        if n >= 1:
            return n
        raise ValueError(f"FASTSLOW_NUM_THREADS: must be an integer >= 1, got {env!r}")
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def batch_memory_estimate(n: int, n_times: int) -> int:
    """Bytes :func:`solve_ode_batch` allocates for ``n`` trajectories saved at ``n_times`` times: the
    initial conditions and model list, m, a and the loss per save time (the C++ result and its NumPy
    copy), and the per-trajectory statistics and messages."""
    return int(n) * (2 * 8 + 8 + 2 * 3 * 8 * int(n_times) + 12 * 8 + 64)


def _check_batch_memory(n: int, n_times: int) -> None:
    from .sgd import _available_memory

    need = batch_memory_estimate(n, n_times)
    if need < 64 * 2**20:  # too small to matter; skips reading /proc/meminfo (a sweep makes many calls)
        return
    avail = _available_memory()
    if avail is not None and need > 0.8 * avail:
        raise ValueError(f"a0, m0, t_eval: {n:,} trajectories x {n_times:,} save times need about "
                         f"{need / 2**30:.2f} GiB, more than 80 % of the {avail / 2**30:.2f} GiB available; "
                         "fewer trajectories or save times (or several calls)")


def solve_ode_batch(models: Model | Sequence[Model], a0: Any, m0: Any = 0.0, t_eval: Any = None, *,
                    rtol: float = 1e-8, atol: float = 1e-10, method: str = "radau5", max_steps: int = 1_000_000,
                    first_step: float | None = None, max_step: float = math.inf, half_fraction: float = 0.5,
                    threads: int | None = None) -> BatchTrajectory:
    """Integrate many trajectories in parallel (OpenMP threads, GIL released).

    Parameters
    ----------
    models : Model or sequence of Model
        One model for all trajectories, or one per trajectory.
    a0, m0 : array_like
        Initial conditions, broadcast together and with the models (a sequence of models counts
        as a 1-D array, so ``a0[:, None]`` with ``K`` models makes a ``(len(a0), K)`` grid). The
        grid is flattened; ``BatchTrajectory.grid_shape`` keeps its shape.
    t_eval : array_like
        Save times shared by all trajectories.
    threads : int, optional
        OpenMP threads (default: the usable cores, or ``FASTSLOW_NUM_THREADS``). The results do
        not depend on it.

    Other parameters are those of :func:`solve_ode`.
    """
    if isinstance(models, Model):
        model_list = [models]
    else:
        try:
            model_list = list(models)
        except TypeError:
            raise ValueError(f"models: expected a Model or a sequence of Models, got {type(models).__name__}") from None
        if not model_list:
            raise ValueError("models: the sequence of models is empty")
        for i, m in enumerate(model_list):
            _check_model(m, f"models[{i}]")
    t = _check_times(t_eval)
    rtol, atol, max_steps, fs, max_step, half_fraction = _check_settings(
        rtol, atol, method, max_steps, first_step, max_step, half_fraction)
    try:
        arrays = [real_array(a0, "a0"), real_array(m0, "m0")]
    except ValueError as exc:
        raise ValueError(f"a0, m0: must be real numbers or arrays of them ({exc})") from None
    model_index = np.arange(len(model_list))
    if len(model_list) > 1:
        arrays.append(model_index)
    try:
        bshape = np.broadcast_shapes(*(x.shape for x in arrays))
    except ValueError:
        raise ValueError(f"a0, m0 and models: shapes {[x.shape for x in arrays]} do not broadcast together "
                         "(models count as a 1-D array along the last axis)") from None
    _check_batch_memory(int(np.prod(bshape)), t.size)
    a0_b = np.ascontiguousarray(np.broadcast_to(arrays[0], bshape).ravel())
    m0_b = np.ascontiguousarray(np.broadcast_to(arrays[1], bshape).ravel())
    if a0_b.size == 0:
        raise ValueError("a0, m0: no trajectories requested (empty arrays)")
    _check_initial(m0_b, a0_b)
    if threads is None:
        threads = default_threads()
    if not (isinstance(threads, (int, np.integer)) and threads >= 1):
        raise ValueError(f"threads: must be an integer >= 1, got {threads!r}")
    if len(model_list) > 1:
        idx = np.broadcast_to(model_index, bshape).ravel()
        cores = [model_list[i].core for i in idx]
    else:
        cores = [model_list[0].core]
    r = _core.solve_ode_batch(cores, m0_b, a0_b, t, rtol, atol, max_steps, fs, max_step, half_fraction, int(threads))
    status = r["status"]
    nfail = int(np.count_nonzero(status != 0))
    if nfail:
        first = int(np.flatnonzero(status != 0)[0])
        warnings.warn(f"solve_ode_batch: {nfail} of {status.size} trajectories did not succeed; "
                      f"first (index {first}): {r['message'][first]}", RuntimeWarning, stacklevel=2)
    return BatchTrajectory(t=t, m=r["m"], a=r["a"], loss=r["loss"], a0=a0_b, m0=m0_b, status=status,
                           message=list(r["message"]), nfev=r["nfev"], njev=r["njev"], nlu=r["nlu"],
                           nsteps=r["nsteps"], nrejected=r["nrejected"], t_peak=r["t_peak"], m_peak=r["m_peak"],
                           t_half=r["t_half"], half_fraction=half_fraction, grid_shape=tuple(bshape),
                           params=_settings_dict(model_list[0] if len(model_list) == 1 else None, rtol=rtol,
                                                 atol=atol, method=method, n_models=len(model_list)))
