"""The mean-field particle limit (level ``"particles"``): each neuron its own ``(m_i, a_i)``.

With ``n, d, B -> infinity`` (``dt d / B -> 0``) and neurons whose parts orthogonal to the teacher stay
independent, the network's output is ``f(z) = sum_k s_k M_k h_k(z)`` with the weighted moments
``M_k = sum_i w_i a_i m_i^k``, and each particle follows (``docs/theory/particles.md``)

    dm_i/dt = -lr_w (1 - m_i^2) a_i sum_k k s_k m_i^(k-1) R_k,    da_i/dt = -lr_a sum_k s_k m_i^k R_k,

coupled to all others through the residuals ``R_k = s_k M_k - c_k`` only; the loss is
``L = 1/2 sum_k R_k^2 + const``. With every particle equal it is the 2-D limit ODE exactly.

The C++ core integrates it in ``v_i = artanh m_i`` with the Radau IIA (5) method of the limit ODE
(order 5, L-stable, Newton with stage Jacobians, the same error estimate, controller and tolerance
map), whose linear solves exploit the structure: the Jacobian is block-diagonal (2 x 2 per particle)
plus a coupling of rank ``r``, the number of orders with ``s_k != 0``, so a Newton matrix costs
``O(N r^2)`` to factorise (Woodbury) and ``O(N r)`` to apply, against ``O(N^3)`` dense. Choose it for
a heterogeneous initial law (:class:`~fastslow.InitialLaw`), from two particle groups to ``10^4``
particles and more, over the long horizons where unlearning plays out.

The result is a :class:`~fastslow.Trajectory` of level ``"particles"``: ``m``, ``a`` the weighted means
over particles, ``loss`` the limit's loss; the particles themselves in ``particles`` (``m``, ``a``,
``v``, shape ``batch_shape + (N, T)``) with their weights in ``particle_weights``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core
from . import _validate as V
from ._runtime import check_memory, resolve_threads
from .model import Model, as_model
from .ode import _options, _settings
from .trajectory import Trajectory

__all__ = ["solve_particles", "solve_particles_batch", "ParticleDenseOutput", "particle_moments",
           "memory_estimate", "particle_system"]

_STATS = ("nfev", "njev", "nlu", "nsteps", "nrejected", "t_peak", "m_peak", "t_half")


def particle_system(model: Model, weights: Any) -> Any:
    """The core's particle system of ``model`` with ``weights`` (normalised to sum 1): its ``rhs``,
    ``jacobian`` (``D, U, V`` with ``J = blockdiag(D) + U V^T``), ``residuals`` and ``loss`` at a state
    ``y = (v_0, a_0, v_1, a_1, ...)``."""
    model = as_model(model)
    w = V.real_array(weights, "weights", ndim=1, nonempty=True)
    if np.any(w <= 0):
        raise ValueError("weights: every weight must be > 0")
    return _core.particles.System(model.core, np.ascontiguousarray(w))


def _particle_arrays(a0: Any, m0: Any, weights: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a0``, ``m0`` broadcast to ``shape + (N,)`` and the weights (``(N,)`` or that shape), checked."""
    a = V.real_array(a0, "a0")
    m = V.real_array(m0, "m0")
    try:
        shape = np.broadcast_shapes(np.shape(a), np.shape(m), *(() if weights is None else (np.shape(weights),)))
    except ValueError:
        raise ValueError(f"a0, m0, weights: shapes {np.shape(a)}, {np.shape(m)}"
                         f"{'' if weights is None else ', ' + str(np.shape(weights))} do not broadcast") from None
    if len(shape) == 0:
        shape = (1,)
    if shape[-1] == 0:
        raise ValueError("a0, m0: no particles (empty arrays)")
    if np.any(np.abs(m) >= 1):
        raise ValueError("m0: every particle needs |m0| < 1 (the poles m = +-1 are invariant)")
    if np.any(np.abs(a) > 1e6):
        raise ValueError("a0: every value must be >= -1e+06 and <= 1e+06")
    a = np.broadcast_to(a, shape)
    m = np.broadcast_to(m, shape)
    if weights is None:
        w = np.full(shape[-1], 1.0 / shape[-1])
    else:
        w = V.real_array(weights, "weights")
        if np.any(w <= 0):
            raise ValueError("weights: every weight must be > 0")
        w = np.broadcast_to(w, shape) if w.ndim > 1 else np.broadcast_to(w, shape[-1:])
        w = w / w.sum(axis=-1, keepdims=True)
    return a, m, w


def memory_estimate(N: int, n_times: int, rank: int, systems: int = 1, threads: int = 1,
                    dense_steps: int = 0) -> int:
    """Bytes the integration of ``systems`` systems of ``N`` particles saved at ``n_times`` times
    allocates: per system its per-particle results (v, a, m: ``3 N T``) and means; per thread the
    working set of the integrator (the structured solvers hold ``16 N rank`` doubles); and the dense
    output of ``dense_steps`` steps (``8 N`` doubles each)."""
    work = float(_core.particles.working_bytes(int(N), int(rank)))
    per = 8 * (4 * N * n_times + 4 * n_times + 4 * N)
    return int(systems * per + min(threads, systems) * work + 64 * N * dense_steps)


def _y0(a: np.ndarray, m: np.ndarray) -> np.ndarray:
    y = np.empty(a.shape[:-1] + (2 * a.shape[-1],))
    y[..., 0::2] = np.arctanh(m)
    y[..., 1::2] = a
    return y


def _spreads(mi: np.ndarray, ai: np.ndarray, w: np.ndarray, mm: np.ndarray, am: np.ndarray) -> dict[str, np.ndarray]:
    wt = w[..., :, None]
    m_var = np.sum(wt * (mi - mm[..., None, :]) ** 2, axis=-2)
    a_var = np.sum(wt * (ai - am[..., None, :]) ** 2, axis=-2)
    return {"m_std": np.sqrt(np.maximum(m_var, 0.0)), "a_std": np.sqrt(np.maximum(a_var, 0.0))}


class ParticleDenseOutput:
    """Continuous solution of one particle system: ``sol(t)`` gives the weighted means ``(m, a)``
    (shape ``(2,) + t.shape``, as :class:`~fastslow.DenseOutput`), ``sol.particles(t)`` every
    particle's ``(m_i, a_i)`` (shape ``(2, N) + t.shape``), ``sol.loss(t)`` the loss.

    Each accepted step carries its Radau IIA collocation polynomial (cubic in time, error ``O(h^4)``
    inside a step); the values in ``t_eval`` carry the integrator's full accuracy."""

    def __init__(self, dense: tuple[np.ndarray, ...], weights: np.ndarray, system: Any) -> None:
        t0, h, y0, Q = (np.asarray(x, dtype=float) for x in dense)
        self._t0, self._h, self._y0, self._Q = t0, h, y0, Q
        self._w = weights
        self._system = system
        self.t_min = float(t0[0])
        self.t_max = float(t0[-1] + h[-1])

    @property
    def ts(self) -> np.ndarray:
        """Times of the step ends, starting with 0."""
        return np.append(self._t0, self.t_max)

    def _state(self, t: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        t_arr = V.real_array(t, "t", finite=False)
        flat = t_arr.ravel()
        if flat.size and (not np.all(np.isfinite(flat)) or flat.min() < self.t_min or flat.max() > self.t_max):
            raise ValueError(f"t: dense output covers [{self.t_min:g}, {self.t_max:g}]; got values outside it")
        k = np.clip(np.searchsorted(self._t0, flat, side="right") - 1, 0, self._t0.size - 1)
        x = ((flat - self._t0[k]) / self._h[k])[:, None]
        Q = self._Q[k]
        y = self._y0[k] + x * (Q[..., 0] + x * (Q[..., 1] + x * Q[..., 2]))  # (len(t), 2N)
        return y, t_arr.shape

    def particles(self, t: Any) -> np.ndarray:
        """Every particle's ``(m_i, a_i)`` at ``t``: shape ``(2, N) + t.shape``."""
        y, shape = self._state(t)
        out = np.stack([np.tanh(y[:, 0::2]).T, y[:, 1::2].T])
        return out.reshape((2, self._w.size) + shape)

    def __call__(self, t: Any) -> np.ndarray:
        p = self.particles(t)
        return np.tensordot(self._w, p, axes=(0, 1))

    def loss(self, t: Any) -> np.ndarray:
        """The particle limit's loss at ``t``."""
        y, shape = self._state(t)
        return np.array([self._system.loss(np.ascontiguousarray(row)) for row in y]).reshape(shape)

    def __repr__(self) -> str:
        return f"ParticleDenseOutput({self._t0.size} steps over [{self.t_min:g}, {self.t_max:g}], {self._w.size} particles)"


def solve_particles(model: Model, t_eval: Any, *, a0: Any, m0: Any = 0.0, weights: Any = None, rtol: float = 1e-8,
                    atol: float = 1e-10, method: str = "radau5", max_steps: int = 1_000_000,
                    first_step: float | None = None, max_step: float = math.inf, dense_output: bool = True,
                    half_fraction: float = 0.5, fixed_step: float | None = None) -> Trajectory:
    """Integrate the particle system from ``(m0_i, a0_i)`` at ``t = 0`` and save at ``t_eval``.

    Parameters
    ----------
    model : Model
    t_eval : array_like
        Strictly increasing save times ``>= 0``.
    a0, m0 : array_like
        One value per particle (broadcast together: a scalar ``m0`` for all); ``|m0| < 1``. Draw
        them from a law with :meth:`fastslow.InitialLaw.particles`.
    weights : array_like, optional
        One positive weight per particle (normalised to sum 1; default equal weights).
    rtol, atol, method, max_steps, first_step, max_step, half_fraction, fixed_step
        As for :func:`~fastslow.solve_ode` (tolerances on every ``v_i`` and ``a_i``, in RMS norm).
    dense_output : bool
        Keep every step (``8 N`` doubles each) for ``Trajectory.sol``.

    Returns
    -------
    Trajectory
        Level ``"particles"``: ``m``, ``a`` the weighted means, ``loss`` the limit's loss;
        ``particles``: ``m``, ``a``, ``v`` (shape ``(N, T)``); ``particle_weights``; ``series``:
        ``m_std``, ``a_std`` (the weighted spreads); ``stats`` as for :func:`~fastslow.solve_ode`, the
        events (``m_peak``, ``t_peak``, ``t_half``) of the mean alignment located on the dense
        output. A failed integration has ``status = -1`` (and warns).
    """
    model = as_model(model)
    t = V.times(t_eval)
    opt = _settings(rtol, atol, method, max_steps, first_step, max_step, half_fraction)
    dense = V.flag(dense_output, "dense_output")
    fixed = 0.0 if fixed_step is None else V.real(fixed_step, "fixed_step", lo=0.0, lo_open=True)
    a, m, w = _particle_arrays(a0, m0, weights)
    if a.ndim != 1:
        raise ValueError(f"a0, m0: one value per particle (1-D), got shape {a.shape}; "
                         "see solve_particles_batch for many systems")
    N = a.size
    system = particle_system(model, w)
    check_memory(memory_estimate(N, t.size, system.rank), "a0, m0, t_eval",
                 f"{N:,} particles x {t.size:,} save times", hint="fewer particles or save times")
    r = _core.particles.solve(system, _y0(a, m), t, _options(opt, fixed, dense))
    if r.status != 0:
        warnings.warn(f"solve_particles: {r.message}", RuntimeWarning, stacklevel=2)
    vi, ai = np.array(r.v), np.array(r.a)
    mi = np.tanh(vi)
    mm, am = np.array(r.m_mean), np.array(r.a_mean)
    sol = None
    if dense and r.dense is not None:
        sol = ParticleDenseOutput(r.dense, system.weights, system)
    stats = {k: getattr(r, k) for k in _STATS}
    stats["t_reached"] = r.t_reached
    return Trajectory(level="particles", t=t, m=mm, a=am, loss=np.array(r.loss), status=r.status, message=r.message,
                      series=_spreads(mi, ai, w, mm, am), stats=stats,
                      params={"model": model, "n_particles": N, "half_fraction": opt["half_fraction"],
                              **{k: opt[k] for k in ("rtol", "atol", "method")}},
                      sol=sol, particles={"m": mi, "a": ai, "v": vi}, particle_weights=w)


def solve_particles_batch(models: Model | Sequence[Model], t_eval: Any, *, a0: Any, m0: Any = 0.0,
                          weights: Any = None, rtol: float = 1e-8, atol: float = 1e-10, method: str = "radau5",
                          max_steps: int = 1_000_000, first_step: float | None = None, max_step: float = math.inf,
                          half_fraction: float = 0.5, threads: int | None = None) -> Trajectory:
    """Integrate many particle systems in parallel (OpenMP threads over systems, GIL released).

    Parameters
    ----------
    models : Model or sequence of Model
        One model for all systems or one per system (``len(models) == prod(batch_shape)``).
    a0, m0, weights : array_like
        Shapes broadcasting to ``batch_shape + (N,)``: the last axis runs over the particles of a
        system (weights: ``(N,)`` for all systems, or one row per system).
    threads : int, optional
        OpenMP threads (default: all usable cores); the results do not depend on it.

    Other parameters are those of :func:`solve_particles` (no dense output).

    Returns
    -------
    Trajectory
        Level ``"particles"`` with batch shape ``batch_shape`` and the fields of :func:`solve_particles`.
    """
    model_list = [models] if isinstance(models, Model) else list(models)
    if not model_list:
        raise ValueError("models: the sequence of models is empty")
    for i, mdl in enumerate(model_list):
        as_model(mdl, f"models[{i}]")
    t = V.times(t_eval)
    opt = _settings(rtol, atol, method, max_steps, first_step, max_step, half_fraction)
    a, m, w = _particle_arrays(a0, m0, weights)
    bshape, N = a.shape[:-1], a.shape[-1]
    n = int(np.prod(bshape))
    if len(model_list) not in (1, n):
        raise ValueError(f"models: give one model or one per system ({n}), got {len(model_list)}")
    nthreads = resolve_threads(threads)
    rank = particle_system(model_list[0], np.ones(1)).rank
    check_memory(memory_estimate(N, t.size, rank, n, nthreads), "a0, m0, t_eval",
                 f"{n:,} systems of {N:,} particles x {t.size:,} save times", hint="fewer systems, particles or times")
    wflat = np.ascontiguousarray(w.reshape(-1) if w.ndim == 1 else np.broadcast_to(w, a.shape).reshape(-1))
    y0 = np.ascontiguousarray(_y0(np.reshape(a, (n, N)), np.reshape(m, (n, N))).reshape(-1))
    r = _core.particles.solve_batch([mdl.core for mdl in model_list], wflat, y0, N, t, _options(opt, 0.0, False),
                                    nthreads)
    status = np.asarray(r.status)
    if np.any(status != 0):
        first = int(np.flatnonzero(status != 0)[0])
        warnings.warn(f"solve_particles_batch: {int(np.count_nonzero(status != 0))} of {status.size} systems did not "
                      f"succeed; first (index {first}): {r.message[first]}", RuntimeWarning, stacklevel=2)

    def grid(x: Any, extra: tuple[int, ...] = ()) -> np.ndarray:
        return np.array(x).reshape(bshape + extra)

    vi = grid(r.v, (N, t.size))
    ai = grid(r.a, (N, t.size))
    mi = np.tanh(vi)
    mm, am = grid(r.m_mean, (t.size,)), grid(r.a_mean, (t.size,))
    wb = np.broadcast_to(w, bshape + (N,)).copy()
    message = np.where(status == 0, "", np.array(r.message, dtype=object)).astype(str)
    params: dict[str, Any] = {"n_particles": N, "n_models": len(model_list), "half_fraction": opt["half_fraction"],
                              **{k: opt[k] for k in ("rtol", "atol", "method")}}
    if len(model_list) == 1:
        params["model"] = model_list[0]
    return Trajectory(level="particles", t=t, m=mm, a=am, loss=grid(r.loss, (t.size,)), status=grid(status),
                      message=grid(message), series=_spreads(mi, ai, wb, mm, am),
                      stats={k: grid(getattr(r, k)) for k in _STATS}, params=params,
                      particles={"m": mi, "a": ai, "v": vi}, particle_weights=wb)


def particle_moments(traj: Trajectory, orders: Any) -> np.ndarray:
    """The weighted moments ``M_k(t) = sum_i w_i a_i(t) m_i(t)^k`` of a trajectory that follows its
    particles (the particle limit, or SGD with ``record_neurons=True``), for each ``k`` in ``orders``:
    shape ``batch_shape + (len(orders), T)``."""
    if not isinstance(traj, Trajectory):
        raise TypeError(f"traj: expected a fastslow.Trajectory, got {type(traj).__name__}")
    if traj.particle_weights is None or "m" not in traj.particles or "a" not in traj.particles:
        raise ValueError(f"traj: a {traj.level} trajectory that does not follow its particles "
                         "(solve_particles, or train_sgd(..., record_neurons=True))")
    ks = [V.integer(k, f"orders[{i}]", lo=0, hi=1000) for i, k in enumerate(np.atleast_1d(orders).tolist())]
    mi, ai, w = traj.particles["m"], traj.particles["a"], traj.particle_weights
    return np.stack([np.sum(w[..., :, None] * ai * mi**k, axis=-2) for k in ks], axis=-2)

