"""Distances between clouds of neurons: the empirical measure of the ``(m_i, a_i)`` against another.

The particle limit predicts the law of the neurons' ``(m_i, a_i)``, not only their means; a finite
network's neurons are a sample of it. :func:`sliced_wasserstein` is the sliced 2-Wasserstein distance
between two weighted clouds in the plane,

    SW_2(mu, nu)^2 = (1/pi) int_0^pi W_2(P_phi mu, P_phi nu)^2 dphi,

``P_phi`` the projection on the direction ``(cos phi, sin phi)`` (in coordinates scaled by ``scale``),
each 1-D ``W_2`` exact from the quantile functions, and the integral over directions by the midpoint
rule on equally spaced angles (deterministic). :func:`cloud_distance` applies it at every save time
of two trajectories that follow their particles. Two independent samples of ``n`` points from one
law are at a distance of order ``n^(-1/2)``: the noise floor a comparison has to beat.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validate as V
from .trajectory import Trajectory

__all__ = ["sliced_wasserstein", "cloud_distance", "wasserstein_1d"]


def wasserstein_1d(x: np.ndarray, wx: np.ndarray, y: np.ndarray, wy: np.ndarray) -> float:
    """The 2-Wasserstein distance between two weighted samples on the line (weights summing to 1):
    the L2 distance of their quantile functions, exact."""
    ix, iy = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")
    xs, ys = x[ix], y[iy]
    cx, cy = np.cumsum(wx[ix]), np.cumsum(wy[iy])
    cx[-1] = cy[-1] = 1.0
    u = np.unique(np.concatenate([cx, cy]))
    du = np.diff(np.concatenate([[0.0], u]))
    mid = u - 0.5 * du
    qx = xs[np.minimum(np.searchsorted(cx, mid, side="left"), xs.size - 1)]
    qy = ys[np.minimum(np.searchsorted(cy, mid, side="left"), ys.size - 1)]
    return float(np.sqrt(max(np.sum(du * (qx - qy) ** 2), 0.0)))


def _cloud(points: Any, weights: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    p = V.real_array(points, name)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] == 0:
        raise ValueError(f"{name}: must have shape (N, 2) (columns m, a) with N >= 1, got {p.shape}")
    if weights is None:
        w = np.full(p.shape[0], 1.0 / p.shape[0])
    else:
        w = V.real_array(weights, f"{name} weights", ndim=1)
        if w.size != p.shape[0] or np.any(w < 0) or not w.sum() > 0:
            raise ValueError(f"{name} weights: {p.shape[0]} non-negative weights with a positive sum needed")
        w = w / w.sum()
    return p, w


def sliced_wasserstein(x: Any, y: Any, *, x_weights: Any = None, y_weights: Any = None, projections: int = 64,
                       scale: Any = (1.0, 1.0)) -> float:
    """The sliced 2-Wasserstein distance between two weighted clouds of points ``(m, a)``.

    Parameters
    ----------
    x, y : array_like, shape (N, 2) and (K, 2)
        The clouds (columns ``m`` and ``a``).
    x_weights, y_weights : array_like, optional
        Non-negative weights (normalised; default equal).
    projections : int
        Directions, equally spaced over ``[0, pi)`` (midpoints).
    scale : pair of float
        Divide ``m`` and ``a`` by these before projecting (to weigh the coordinates).
    """
    px, wx = _cloud(x, x_weights, "x")
    py, wy = _cloud(y, y_weights, "y")
    L = V.integer(projections, "projections", lo=1, hi=100_000)
    sc = V.real_array(scale, "scale", ndim=1)
    if sc.size != 2 or np.any(sc <= 0):
        raise ValueError("scale: two positive numbers (for m and a)")
    px, py = px / sc, py / sc
    phi = (np.arange(L) + 0.5) * np.pi / L
    dirs = np.stack([np.cos(phi), np.sin(phi)])
    ux, uy = px @ dirs, py @ dirs
    total = sum(wasserstein_1d(ux[:, k], wx, uy[:, k], wy) ** 2 for k in range(L))
    return float(np.sqrt(total / L))


def cloud_distance(x: Trajectory, y: Trajectory, *, projections: int = 64, scale: Any = (1.0, 1.0)) -> np.ndarray:
    """:func:`sliced_wasserstein` between the particle clouds of two trajectories at every save time
    of ``x``: shape ``x.batch_shape + (T,)``.

    Both must follow their particles (the particle limit; SGD with ``record_neurons=True``). ``y`` is
    read at ``x.t`` when saved there, else through ``y.sol.particles`` (its dense output); ``y`` is a
    single trajectory, ``x`` may be a batch (seeds).
    """
    for name, tr in (("x", x), ("y", y)):
        if not isinstance(tr, Trajectory):
            raise TypeError(f"{name}: expected a fastslow.Trajectory, got {type(tr).__name__}")
        if tr.particle_weights is None:
            raise ValueError(f"{name}: a {tr.level} trajectory that does not follow its particles")
    if y.batch_shape:
        raise ValueError("y: a single trajectory (x may be a batch)")
    if y.t.shape == x.t.shape and np.array_equal(y.t, x.t):
        ym, ya = y.particles["m"], y.particles["a"]
    elif y.sol is not None and hasattr(y.sol, "particles"):
        ym, ya = y.sol.particles(x.t)
    else:
        raise ValueError("y: saved at other times than x and without dense output")
    xm, xa = x.particles["m"], x.particles["a"]
    xw = x.particle_weights
    out = np.empty(x.batch_shape + (x.t.size,))
    for idx in np.ndindex(*x.batch_shape):
        for k in range(x.t.size):
            out[idx + (k,)] = sliced_wasserstein(np.stack([xm[idx][:, k], xa[idx][:, k]], 1),
                                                 np.stack([ym[:, k], ya[:, k]], 1), x_weights=xw[idx],
                                                 y_weights=y.particle_weights, projections=projections, scale=scale)
    return out
