"""The model's polynomials ``A``, ``B`` and the real-root finders the analysis rests on.

With ``L(m, a) = a^2 A(m) / 2 - a B(m) + C0``, ``A = sum s_k^2 m^(2k)`` and ``B = sum s_k c_k m^k``
(``docs/theory/index.md``). Their values and derivatives come from the C++ model
(``LimitModel.series``); their power-basis coefficients, from ``s`` and ``c``, feed the polynomials
whose roots are the folds and the equilibria.

Two root finders live here:

* :func:`real_roots`: every real root of a power-basis polynomial in an interval. The polynomial is
  interpolated at Chebyshev points of the interval with an adaptive number of points (the
  coefficients of the interpolant are chopped where they fall to round-off), the colleague matrix
  of that interpolant gives candidates, a sign-change scan on a fine grid gives brackets, and every
  candidate is polished by Newton's method on the exact polynomial and kept only when its residual
  is at round-off level. Working with the interpolant, never with the Chebyshev form of monomials
  of high degree, keeps models of Hermite order up to :data:`fastslow.params.MAX_HERMITE_ORDER`
  (polynomials of degree 2000) finite and fast: their interpolants need a few hundred points.
* :func:`bracketed_newton`: vectorised, bisection-safeguarded Newton for many bracketed roots at
  once (the branch solver of :mod:`fastslow.analysis.manifold` is built on it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.fft
from numpy.polynomial import chebyshev as _cheb
from numpy.polynomial import polynomial as _poly

from ..model import Model

__all__ = ["coef_A", "coef_B", "derivative", "series", "polyval", "real_roots", "bracketed_newton",
           "ROOT_DEDUP", "RESIDUAL_TOL"]

_EPS = float(np.finfo(float).eps)
SCAN_POINTS = 4097
"""Points of the sign-change scan that backs up the colleague matrix."""
ROOT_DEDUP = 1e-9
"""Roots closer than this are one root."""
RESIDUAL_TOL = 1e-9
"""A root's residual ``|p(r)|`` relative to ``sum |c_k r^k|`` must be below this."""
_IMAG_TOL = 1e-6        # a colleague-matrix eigenvalue is real when |Im| is below this (in [-1, 1] units)
_FIRST_POINTS = 32      # interpolation points of the first attempt (doubled until the tail is round-off)


def coef_A(model: Model) -> np.ndarray:
    """Power-basis coefficients of ``A(m) = sum_k s_k^2 m^(2k)``."""
    s = np.asarray(model.s, dtype=float)
    A = np.zeros(2 * len(s) - 1)
    A[::2] = s * s
    return A


def coef_B(model: Model) -> np.ndarray:
    """Power-basis coefficients of ``B(m) = sum_k s_k c_k m^k``."""
    s, c = np.asarray(model.s, dtype=float), np.asarray(model.c, dtype=float)
    k = min(len(s), len(c))
    B = s[:k] * c[:k]
    return B if len(B) else np.zeros(1)


def derivative(coef: np.ndarray, n: int = 1) -> np.ndarray:
    """The ``n``-th derivative of a power-basis polynomial (``[0.]`` when it vanishes)."""
    coef = np.asarray(coef, dtype=float)
    return _poly.polyder(coef, n) if coef.size > n else np.zeros(1)


def series(model: Model, m: Any) -> np.ndarray:
    """Rows ``A, A', A'', B, B', B''`` at ``m`` (flattened), from the C++ model."""
    m = np.ascontiguousarray(np.asarray(m, dtype=float).ravel())
    return model.core.series(m)


def polyval(coef: np.ndarray, x: Any) -> Any:
    """``sum_k coef[k] x^k`` (Horner; vectorised over ``x``)."""
    return _poly.polyval(x, coef)


def bracketed_newton(fun: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]], lo: np.ndarray,
                     hi: np.ndarray, f_lo: np.ndarray, x0: np.ndarray | None = None,
                     maxiter: int = 200) -> np.ndarray:
    """Many bracketed roots at once: vectorised Newton, safeguarded by bisection.

    Parameters
    ----------
    fun : callable
        ``fun(x, idx) -> (f, df)``: the function of entry ``idx[i]`` and its derivative at ``x[i]``
        (only the entries still iterating are asked for).
    lo, hi : ndarray, shape (n,)
        Brackets: ``f`` changes sign between ``lo`` and ``hi``.
    f_lo : ndarray, shape (n,)
        ``f`` at ``lo`` (only its sign is used).
    x0 : ndarray, shape (n,), optional
        Starting points (the midpoint where missing, NaN or outside the bracket).
    maxiter : int

    Returns
    -------
    ndarray, shape (n,)
        The roots, to about one unit in the last place (or the last iterate after ``maxiter``).
    """
    lo = np.array(lo, dtype=float, copy=True).ravel()
    hi = np.array(hi, dtype=float, copy=True).ravel()
    s_lo = np.sign(np.asarray(f_lo, dtype=float).ravel())
    mid = 0.5 * (lo + hi)
    if x0 is None:
        x = mid
    else:
        x0 = np.broadcast_to(np.asarray(x0, dtype=float), lo.shape)
        x = np.where(np.isfinite(x0) & (x0 > lo) & (x0 < hi), x0, mid)
    active = np.arange(lo.size)
    for _ in range(maxiter):
        if active.size == 0:
            break
        xa, la, ha = x[active], lo[active], hi[active]
        f, df = fun(xa, active)
        same = np.sign(f) == s_lo[active]
        la = np.where(same, xa, la)
        ha = np.where(same, ha, xa)
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = xa - f / df
        bad = ~np.isfinite(xn) | (xn <= la) | (xn >= ha)
        xn = np.where(bad, 0.5 * (la + ha), xn)
        root = f == 0
        xn = np.where(root, xa, xn)
        done = (root | (np.abs(xn - xa) <= 4 * _EPS * np.maximum(np.abs(xn), 1e-300))
                | (ha - la <= 2 * _EPS * np.maximum(np.abs(la), np.abs(ha))))
        x[active], lo[active], hi[active] = xn, la, ha
        active = active[~done]
    return x


def _interpolant(coef: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Chebyshev coefficients (on ``[lo, hi]`` mapped to ``[-1, 1]``) of the polynomial ``coef``,
    chopped where they reach round-off: sampled at ``N`` Chebyshev points of the first kind, ``N``
    doubling from 32 until the tail is negligible (at most ``degree + 1`` points, which is exact)."""
    deg = coef.size - 1
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    abs_coef = np.abs(coef)
    n = _FIRST_POINTS
    while True:
        N = min(n, deg + 1)
        y = np.cos(np.pi * (np.arange(N) + 0.5) / N)
        x = mid + half * y
        f = polyval(coef, x)
        c = scipy.fft.dct(f, type=2) / N
        c[0] *= 0.5
        # what rounding in the samples alone puts into the coefficients, and what is negligible
        noise = 8 * _EPS * float(np.max(polyval(abs_coef, np.abs(x))))
        tol = max(4 * _EPS * float(np.max(np.abs(c))), noise)
        tail = max(8, N // 8)
        if N == deg + 1 or np.all(np.abs(c[-tail:]) <= tol):
            big = np.nonzero(np.abs(c) > tol)[0]
            return c[: big[-1] + 1] if big.size else np.zeros(1)
        n *= 2


def real_roots(coef: Any, lo: float, hi: float, exclude: Sequence[float] = ()) -> np.ndarray:
    """Every real root of the power-basis polynomial ``coef`` in the open interval ``(lo, hi)``.

    Candidates come from the colleague matrix of the polynomial's Chebyshev interpolant on
    ``[lo, hi]`` and from the brackets of a sign-change scan on a Chebyshev-spaced grid of 4095
    points; each is polished by Newton's method on the exact polynomial and kept when
    ``|p(r)| <= 1e-9 sum_k |c_k r^k|``. Roots closer than ``1e-9`` to each other or to a value of
    ``exclude`` are dropped.

    Returns
    -------
    ndarray
        The roots, sorted.
    """
    coef = np.trim_zeros(np.asarray(coef, dtype=float), "b")
    if coef.size <= 1:
        return np.empty(0)
    d1 = _poly.polyder(coef)
    abs_coef = np.abs(coef)
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    candidates: list[np.ndarray] = []
    # 1. the colleague matrix of the interpolant
    cc = _interpolant(coef, lo, hi)
    if cc.size > 1:
        with np.errstate(all="ignore"):
            r = _cheb.chebroots(cc)
        r = r[np.isfinite(r) & (np.abs(r.imag) < _IMAG_TOL)].real
        r = r[(r > -1 - 1e-9) & (r < 1 + 1e-9)]
        candidates.append(mid + half * r)
    # 2. brackets of a sign-change scan, solved by bracketed Newton
    th = np.linspace(0.0, np.pi, SCAN_POINTS)[1:-1]
    grid = mid - half * np.cos(th)
    vals = polyval(coef, grid)
    i = np.nonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0)[0]
    if i.size:
        def fun(x: np.ndarray, _idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return polyval(coef, x), polyval(d1, x)
        candidates.append(bracketed_newton(fun, grid[i], grid[i + 1], vals[i]))
    candidates.append(grid[vals == 0.0])
    x = np.sort(np.clip(np.concatenate(candidates), lo, hi)) if candidates else np.empty(0)
    # 3. polish (unbracketed Newton: a double root has no sign change), filter, dedupe
    act = np.arange(x.size)
    for _ in range(30):
        if act.size == 0:
            break
        xa = x[act]
        fx, dx = polyval(coef, xa), polyval(d1, xa)
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = xa - fx / dx
        move = (dx != 0) & np.isfinite(xn) & (xn >= lo) & (xn <= hi)
        x[act[move]] = xn[move]
        done = ~move | (np.abs(xn - xa) <= 1e-16 * np.maximum(1.0, np.abs(xa)))
        act = act[~done]
    x = np.sort(x[(x > lo) & (x < hi)])
    if x.size:
        res = np.abs(polyval(coef, x))
        x = x[res <= RESIDUAL_TOL * np.maximum(polyval(abs_coef, np.abs(x)), 1e-300)]
    out: list[float] = []
    for v in x:
        if any(abs(v - e) < ROOT_DEDUP for e in exclude):
            continue
        if out and abs(v - out[-1]) < ROOT_DEDUP:
            continue
        out.append(float(v))
    return np.asarray(out)
