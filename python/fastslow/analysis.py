"""Fast-slow analysis of the limit ODE: critical manifold, equilibria, slow flow, asymptotic law.

With ``L(m, a) = a^2 A(m) / 2 - a B(m) + C0`` (``A = sum s_k^2 m^(2k)``, ``B = sum s_k c_k m^k``, see
``../shared/MODEL.md``), the fast equation ``dm/dt = -lr_w (1 - m^2) dL/dm`` has, for ``a != 0``, the
critical manifold

    dL/dm = a (a A'(m) / 2 - B'(m)) = 0   <=>   a = alpha(m) = 2 B'(m) / A'(m),

a graph over ``m`` (``A'(m)`` has the sign of ``m`` and vanishes only at ``m = 0``). Everything below
rests on that graph:

* the manifold splits into *pieces*: open intervals of ``m`` between ``-1``, ``0``, ``1``, the folds
  (zeros of ``alpha'``, i.e. of ``N = B'' A' - B' A''``) and the zeros of ``B'`` (where
  ``alpha = 0``). On a piece ``alpha`` is monotone and has one sign, so for every ``a`` a piece holds at
  most one point of the manifold, and it holds one exactly when ``a`` lies in the piece's range. So
  no root can be missed, and the pieces are the branches (joined continuously across ``a``);
* on a piece ``d2L/dm2 = -a A'(m) alpha'(m) / 2`` keeps its sign: attracting where positive;
* folds are the common end points of two pieces where ``alpha'`` changes sign.

The polynomials ``N`` (folds) and ``B A' - 2 A B'`` (equilibria) are solved once per model with a
Chebyshev colleague-matrix root finder, united with a sign-change scan on a fine grid, polished by
Newton's method and kept only when their residual is at round-off level. The series values come from
the C++ model (``LimitModel.series``); the polynomial coefficients from ``s`` and ``c``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence
from weakref import WeakKeyDictionary

import numpy as np
from numpy.polynomial import chebyshev as _cheb
from numpy.polynomial import polynomial as _poly
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

from ._validate import real_array
from .model import Model
from .ode import solve_ode_batch

__all__ = [
    "Branch", "Fold", "ManifoldStructure", "CriticalManifold", "Equilibrium", "SlowFlow", "SlowFlowEvent",
    "AsymptoticLaw", "Classification", "PhaseDiagram",
    "manifold_structure", "critical_manifold", "equilibria", "solve_slow_flow", "asymptotic_law",
    "classify", "classify_batch", "phase_diagram",
]

_SCAN_POINTS = 4097          # grid of the sign-change scan that backs up the colleague matrix
_ROOT_DEDUP = 1e-9           # roots closer than this are one root
_RESIDUAL_TOL = 1e-9         # relative residual (to the sum of |terms|) for a polynomial root
_END_INSET = 1e-10           # branch ends are probed this fraction of the branch's width inside


def _check_model(model: Any) -> Model:
    if not isinstance(model, Model):
        raise TypeError(f"model: expected a fastslow.Model, got {type(model).__name__}")
    return model


def _finite_float(value: Any, field_name: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field_name}: must be a real number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{field_name}: must be finite, got {value!r}")
    return x


# ---------------------------------------------------------------------------------------------
# Polynomials of the model
# ---------------------------------------------------------------------------------------------
def _coef_A(model: Model) -> np.ndarray:
    s = np.asarray(model.s, dtype=float)
    A = np.zeros(2 * len(s) - 1)
    A[::2] = s * s
    return A


def _coef_B(model: Model) -> np.ndarray:
    s, c = np.asarray(model.s, dtype=float), np.asarray(model.c, dtype=float)
    k = min(len(s), len(c))
    B = s[:k] * c[:k]
    return B if len(B) else np.zeros(1)


def _series(model: Model, m: np.ndarray) -> np.ndarray:
    """Rows A, A', A'', B, B', B'' at ``m`` (C++)."""
    m = np.ascontiguousarray(np.asarray(m, dtype=float).ravel())
    return model.core.series(m)


def _poly_real_roots(coef: np.ndarray, lo: float, hi: float, exclude: Sequence[float] = ()) -> np.ndarray:
    """Real roots of the power-basis polynomial ``coef`` in the open interval ``(lo, hi)``.

    Colleague-matrix roots of its Chebyshev form on [-1, 1] (the change of basis from monomials is
    well conditioned there), united with brackets from a sign-change scan, each polished by Newton's
    method (bisection-safeguarded where bracketed) and kept when ``|p(r)|`` is at round-off level
    relative to ``sum |c_k r^k|``.
    """
    coef = np.trim_zeros(np.asarray(coef, dtype=float), "b")
    if coef.size <= 1:
        return np.empty(0)
    d1 = _poly.polyder(coef)
    abs_coef = np.abs(coef)

    def p(x: Any) -> Any:
        return _poly.polyval(x, coef)

    def scale(x: Any) -> Any:
        return _poly.polyval(np.abs(x), abs_coef)

    candidates: list[float] = []
    # 1. colleague matrix (Chebyshev form on [-1, 1])
    cc = _cheb.poly2cheb(coef)
    cc = np.trim_zeros(cc, "b")
    if cc.size > 1:
        with np.errstate(all="ignore"):
            r = _cheb.chebroots(cc)
        r = r[np.abs(r.imag) < 1e-6]
        candidates.extend(float(x) for x in r.real if lo - 1e-9 < x < hi + 1e-9)
    # 2. sign-change scan on a Chebyshev-spaced grid of (lo, hi)
    th = np.linspace(0.0, np.pi, _SCAN_POINTS)[1:-1]
    grid = 0.5 * (lo + hi) - 0.5 * (hi - lo) * np.cos(th)
    vals = p(grid)
    for i in np.nonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0)[0]:
        candidates.append(float(brentq(p, grid[i], grid[i + 1], xtol=1e-16, rtol=1e-15, maxiter=200)))
    candidates.extend(float(x) for x in grid[vals == 0.0])
    # polish, filter, dedupe
    out: list[float] = []
    for x in sorted(candidates):
        x = min(max(x, lo), hi)
        for _ in range(30):
            fx, dx = p(x), _poly.polyval(x, d1)
            if dx == 0.0 or not np.isfinite(dx):
                break
            xn = x - fx / dx
            if not (lo <= xn <= hi):
                break
            done = abs(xn - x) <= 1e-16 * max(1.0, abs(x))
            x = xn
            if done:
                break
        if not (lo < x < hi):
            continue
        if abs(p(x)) > _RESIDUAL_TOL * max(scale(x), 1e-300):
            continue
        if any(abs(x - e) < _ROOT_DEDUP for e in exclude):
            continue
        if out and abs(x - out[-1]) < _ROOT_DEDUP:
            continue
        out.append(x)
    return np.asarray(out)


# ---------------------------------------------------------------------------------------------
# Critical manifold
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fold:
    """A fold of the critical manifold: ``dL/dm = d2L/dm2 = 0``; two branches meet there."""

    m: float
    a: float
    branches: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {"m": self.m, "a": self.a, "branches": list(self.branches)}


@dataclass(frozen=True)
class Branch:
    """One branch of the critical manifold: ``m`` in the open interval ``(m_lo, m_hi)`` where
    ``a = alpha(m)`` is monotone, with ``a`` ranging over ``(a_lo, a_hi)`` (possibly infinite).

    ``kind`` is ``"interior"`` (a piece of ``a = alpha(m)``) or ``"trivial"`` (``m = 0`` for every
    ``a``, present when ``s_1 c_1 = 0``).
    """

    index: int
    m_lo: float
    m_hi: float
    a_lo: float
    a_hi: float
    attracting: bool
    kind: str = "interior"

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("index", "m_lo", "m_hi", "a_lo", "a_hi", "attracting", "kind")}


@dataclass(frozen=True)
class ManifoldStructure:
    """The model-wide shape of the critical manifold (independent of ``a``): its branches and folds."""

    branches: tuple[Branch, ...]
    folds: tuple[Fold, ...]
    breakpoints: np.ndarray
    trivial: bool

    def to_dict(self) -> dict[str, Any]:
        return {"branches": [b.to_dict() for b in self.branches], "folds": [f.to_dict() for f in self.folds],
                "breakpoints": self.breakpoints.tolist(), "trivial": self.trivial}


_STRUCTURES: "WeakKeyDictionary[Model, ManifoldStructure]" = WeakKeyDictionary()


def _alpha(model: Model, m: np.ndarray) -> np.ndarray:
    S = _series(model, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * S[4] / S[1]


def manifold_structure(model: Model) -> ManifoldStructure:
    """Branches and folds of the critical manifold of ``model`` (computed once per model).

    Parameters
    ----------
    model : Model

    Returns
    -------
    ManifoldStructure
    """
    model = _check_model(model)
    cached = _STRUCTURES.get(model)
    if cached is not None:
        return cached
    A, B = _coef_A(model), _coef_B(model)
    if not np.any(A[1:] != 0):
        raise ValueError("model: the activation has no Hermite coefficient s_k != 0 with k >= 1, so L does not "
                         "depend on m and there is no fast-slow structure")
    A1, A2 = _poly.polyder(A), _poly.polyder(A, 2)
    B1 = _poly.polyder(B) if len(B) > 1 else np.zeros(1)
    B2 = _poly.polyder(B, 2) if len(B) > 2 else np.zeros(1)
    N = _poly.polysub(_poly.polymul(B2, A1), _poly.polymul(B1, A2))
    s1c1 = float(B[1]) if len(B) > 1 else 0.0
    trivial = s1c1 == 0.0
    # zeros of alpha' (candidate folds) and of B' (alpha = 0), away from m = 0
    fold_m = np.concatenate([_poly_real_roots(N, -1.0, 0.0), _poly_real_roots(N, 0.0, 1.0)])
    zero_m = (np.concatenate([_poly_real_roots(B1, -1.0, 0.0), _poly_real_roots(B1, 0.0, 1.0)])
              if np.any(B1 != 0) else np.empty(0))
    cuts = np.unique(np.concatenate([[-1.0, 0.0, 1.0], fold_m, zero_m]))
    keep = [cuts[0]]
    for x in cuts[1:]:
        if x - keep[-1] > _ROOT_DEDUP:
            keep.append(x)
    cuts = np.asarray(keep)
    branches: list[Branch] = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        if not np.any(B1 != 0):
            break  # B' = 0: alpha = 0, no interior manifold at a != 0
        w = hi - lo
        inner = np.array([lo + 1e-12 * w, lo + 0.5 * w, hi - 1e-12 * w])
        al = _alpha(model, inner)
        mid = float(inner[1])
        # limits at the ends: +-inf at m = 0 when B'(0) != 0
        ends = []
        for x_end, x_in in ((lo, inner[0]), (hi, inner[2])):
            if x_end != 0.0:
                ends.append(float(_alpha(model, np.array([x_end]))[0]))
            elif trivial:  # B'(0) = 0: alpha has a finite limit at m = 0
                ends.append(float(_alpha(model, np.array([x_in]))[0]))
            else:  # B'(0) != 0: alpha has a pole at m = 0
                ends.append(math.copysign(math.inf, float(_alpha(model, np.array([x_in]))[0])))
        a_lo, a_hi = min(ends), max(ends)
        d = model.core.derivs(np.array([mid]), np.array([float(al[1])]))
        attracting = bool(d[3][0] > 0)
        branches.append(Branch(len(branches), float(lo), float(hi), a_lo, a_hi, attracting))
    if trivial:
        # m = 0 solves dL/dm = 0 for every a; its stability depends on a: d2L/dm2 = a^2 s1^2 - 2 a s2 c2
        branches.append(Branch(len(branches), 0.0, 0.0, -math.inf, math.inf, True, "trivial"))
    folds: list[Fold] = []
    interior = [b for b in branches if b.kind == "interior"]
    for left, right in zip(interior[:-1], interior[1:]):
        x = left.m_hi
        if x != right.m_lo or x in (-1.0, 0.0, 1.0) or not np.any(np.abs(fold_m - x) < _ROOT_DEDUP):
            continue
        if left.attracting == right.attracting:
            continue  # alpha' touches zero without a change of stability: not a fold
        folds.append(Fold(float(x), float(_alpha(model, np.array([x]))[0]), (left.index, right.index)))
    st = ManifoldStructure(tuple(branches), tuple(folds), cuts, trivial)
    _STRUCTURES[model] = st
    return st


def _branch_roots(model: Model, br: Branch, a: np.ndarray) -> np.ndarray:
    """For each ``a``, the point of interior branch ``br`` (NaN where ``a`` is outside its range).

    Vectorised safeguarded Newton on ``h(m) = a A'(m) / 2 - B'(m)`` inside ``(m_lo, m_hi)``, where ``h``
    changes sign exactly when the branch has a point at ``a``.
    """
    n = a.size
    out = np.full(n, np.nan)
    # the sign test just inside the ends: at an end that is itself a root for every a (m = 0 when
    # s_1 c_1 = 0) or a fold, h vanishes on the end point
    inset = _END_INSET * (br.m_hi - br.m_lo)
    lo = np.full(n, br.m_lo + inset)
    hi = np.full(n, br.m_hi - inset)
    S_lo, S_hi = _series(model, lo[:1]), _series(model, hi[:1])
    h_lo = 0.5 * a * S_lo[1, 0] - S_lo[4, 0]
    h_hi = 0.5 * a * S_hi[1, 0] - S_hi[4, 0]
    act = (np.sign(h_lo) * np.sign(h_hi) < 0) & (a != 0)
    idx = np.nonzero(act)[0]
    if idx.size == 0:
        return out
    aa, xl, xh, fl = a[idx], lo[idx], hi[idx], h_lo[idx]
    x = 0.5 * (xl + xh)
    for _ in range(200):
        S = _series(model, x)
        h = 0.5 * aa * S[1] - S[4]
        dh = 0.5 * aa * S[2] - S[5]
        same = np.sign(h) == np.sign(fl)
        xl = np.where(same, x, xl)
        fl = np.where(same, h, fl)
        xh = np.where(same, xh, x)
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = x - h / dh
        bad = ~np.isfinite(xn) | (xn <= xl) | (xn >= xh)
        xn = np.where(bad, 0.5 * (xl + xh), xn)
        step = np.abs(xn - x)
        x = xn
        if np.all((step <= 4e-16 * np.maximum(np.abs(x), 1e-300)) | (h == 0) | (xh - xl <= 4e-16)):
            break
    out[idx] = x
    return out


@dataclass(frozen=True)
class CriticalManifold:
    """The critical manifold ``dL/dm = 0, |m| < 1`` over an array of ``a``.

    Attributes
    ----------
    a : ndarray, shape (N,)
    m : ndarray, shape (N, n_branches)
        The point of each branch at each ``a`` (NaN where the branch has none).
    attracting : ndarray of bool, shape (N, n_branches)
        ``d2L/dm2 > 0`` at the point (False where NaN).
    d2L : ndarray, shape (N, n_branches)
        ``d2L/dm2`` at the point.
    residual : ndarray, shape (N, n_branches)
        ``|dL/dm|`` at the point.
    degenerate : ndarray of bool, shape (N,)
        ``a = 0``: every ``m`` is critical (the fast equation vanishes), no isolated points.
    structure : ManifoldStructure
        Branches and folds.
    """

    a: np.ndarray
    m: np.ndarray
    attracting: np.ndarray
    d2L: np.ndarray
    residual: np.ndarray
    degenerate: np.ndarray
    structure: ManifoldStructure

    @property
    def branches(self) -> tuple[Branch, ...]:
        return self.structure.branches

    @property
    def folds(self) -> tuple[Fold, ...]:
        return self.structure.folds

    def points(self) -> dict[str, np.ndarray]:
        """All points as flat arrays ``a, m, branch, attracting``."""
        ok = np.isfinite(self.m)
        ii, bb = np.nonzero(ok)
        return {"a": self.a[ii], "m": self.m[ii, bb], "branch": bb, "attracting": self.attracting[ii, bb]}

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "m": self.m, "attracting": self.attracting, "d2L": self.d2L,
                "residual": self.residual, "degenerate": self.degenerate, "structure": self.structure.to_dict()}

    def to_xarray(self) -> Any:
        import xarray as xr  # optional dependency

        return xr.Dataset(
            {"m": (("a", "branch"), self.m), "attracting": (("a", "branch"), self.attracting),
             "d2L": (("a", "branch"), self.d2L), "residual": (("a", "branch"), self.residual)},
            coords={"a": self.a, "branch": np.arange(self.m.shape[1])})


def critical_manifold(model: Model, a: Any) -> CriticalManifold:
    """Every point of the critical manifold ``dL/dm = 0`` in ``|m| < 1`` at each ``a``.

    Parameters
    ----------
    model : Model
    a : array_like
        Values of the second-layer weight (finite; ``a = 0`` is reported as degenerate).

    Returns
    -------
    CriticalManifold
        Points per branch (joined continuously across ``a``), their stability, ``|dL/dm|`` and the folds.
    """
    model = _check_model(model)
    a_arr = np.atleast_1d(real_array(a, "a")).ravel()
    if a_arr.size == 0:
        raise ValueError("a: must contain at least one value")
    if not np.all(np.isfinite(a_arr)):
        bad = int(np.nonzero(~np.isfinite(a_arr))[0][0])
        raise ValueError(f"a: every value must be finite (entry {bad} is {a_arr[bad]!r})")
    st = manifold_structure(model)
    nb = len(st.branches)
    m = np.full((a_arr.size, nb), np.nan)
    for br in st.branches:
        if br.kind == "trivial":
            m[:, br.index] = np.where(a_arr != 0, 0.0, np.nan)
        else:
            m[:, br.index] = _branch_roots(model, br, a_arr)
    ok = np.isfinite(m)
    d2 = np.full_like(m, np.nan)
    res = np.full_like(m, np.nan)
    if ok.any():
        ii, bb = np.nonzero(ok)
        d = model.core.derivs(np.ascontiguousarray(m[ii, bb]), np.ascontiguousarray(a_arr[ii]))
        d2[ii, bb] = d[3]
        res[ii, bb] = np.abs(d[1])
    return CriticalManifold(a=a_arr, m=m, attracting=ok & (d2 > 0), d2L=d2, residual=res,
                            degenerate=a_arr == 0, structure=st)


# ---------------------------------------------------------------------------------------------
# Equilibria
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Equilibrium:
    """A fixed point of the full system in ``(m, a)``.

    ``kind``: ``"interior"`` (``|m| < 1``, ``a != 0``), ``"pole"`` (``m = +-1``) or ``"a=0"`` (on the
    degenerate line ``a = 0``). ``stability``: ``"stable"``, ``"unstable"``, ``"saddle"`` or
    ``"non-hyperbolic"`` from the eigenvalues of the Jacobian of ``(dm/dt, da/dt)``.
    """

    m: float
    a: float
    kind: str
    loss: float
    eigenvalues: tuple[complex, complex]
    stability: str
    gradient: tuple[float, float]

    @property
    def stable(self) -> bool:
        return self.stability == "stable"

    def to_dict(self) -> dict[str, Any]:
        return {"m": self.m, "a": self.a, "kind": self.kind, "loss": self.loss,
                "eigenvalues": [complex(e) for e in self.eigenvalues], "stability": self.stability,
                "gradient": list(self.gradient)}


def jacobian(model: Model, m: Any, a: Any) -> np.ndarray:
    """Jacobian of ``(dm/dt, da/dt)`` in ``(m, a)``, shape ``broadcast(m, a).shape + (2, 2)``."""
    model = _check_model(model)
    g = model.grad(m, a)
    H = model.hessian(m, a)
    m_arr = np.broadcast_to(real_array(m, "m"), g.shape[:-1])
    J = np.empty(g.shape[:-1] + (2, 2))
    J[..., 0, 0] = -model.lr_w * ((1 - m_arr ** 2) * H[..., 0, 0] - 2 * m_arr * g[..., 0])
    J[..., 0, 1] = -model.lr_w * (1 - m_arr ** 2) * H[..., 0, 1]
    J[..., 1, 0] = -model.lr_a * H[..., 1, 0]
    J[..., 1, 1] = -model.lr_a * H[..., 1, 1]
    return J


def _stability(ev: np.ndarray, scale: float) -> str:
    re = ev.real
    tol = 1e-9 * max(scale, 1e-300)
    if np.any(np.abs(re) <= tol):
        return "non-hyperbolic"
    if np.all(re < 0):
        return "stable"
    if np.all(re > 0):
        return "unstable"
    return "saddle"


def _make_equilibrium(model: Model, m: float, a: float, kind: str) -> Equilibrium:
    J = jacobian(model, m, a)
    ev = np.linalg.eigvals(J)
    scale = float(np.max(np.abs(J))) if np.all(np.isfinite(J)) else 1.0
    g = model.grad(m, a)
    fm = -model.lr_w * (1 - m * m) * g[0]
    fa = -model.lr_a * g[1]
    return Equilibrium(m=float(m), a=float(a), kind=kind, loss=float(model.loss(m, a)),
                       eigenvalues=(complex(ev[0]), complex(ev[1])), stability=_stability(ev, scale),
                       gradient=(float(fm), float(fa)))


_EQUILIBRIA: "WeakKeyDictionary[Model, tuple[Equilibrium, ...]]" = WeakKeyDictionary()


def equilibria(model: Model) -> tuple[Equilibrium, ...]:
    """All fixed points of ``dm/dt = -lr_w (1 - m^2) dL/dm``, ``da/dt = -lr_a dL/da``, poles included.

    Interior points solve ``B A' - 2 A B' = 0`` with ``a = B / A``; on ``a = 0`` they are the zeros of
    ``B``; at the poles ``m = +-1``, ``a = B(+-1) / A(+-1)``. Sorted by kind, then ``m``.

    Returns
    -------
    tuple of Equilibrium
        Each with the loss, the Jacobian's eigenvalues and the stability. If ``s_1 c_1 = 0`` and
        ``s_0 = 0``, the whole line ``m = 0`` is made of fixed points; it is not listed (a warning
        says so).
    """
    model = _check_model(model)
    cached = _EQUILIBRIA.get(model)
    if cached is not None:
        return cached
    A, B = _coef_A(model), _coef_B(model)
    A1 = _poly.polyder(A)
    B1 = _poly.polyder(B) if len(B) > 1 else np.zeros(1)
    P = _poly.polysub(_poly.polymul(B, A1), 2.0 * _poly.polymul(A, B1))
    s0 = float(model.s[0])
    s1c1 = float(B[1]) if len(B) > 1 else 0.0
    out: list[Equilibrium] = []
    roots = np.concatenate([_poly_real_roots(P, -1.0, 0.0), _poly_real_roots(P, 0.0, 1.0)])
    if s0 != 0.0 and abs(float(_poly.polyval(0.0, P))) <= 1e-300:
        roots = np.append(roots, 0.0)
    for r in np.sort(roots):
        S = _series(model, np.array([r]))
        if S[0, 0] <= 0:
            continue
        a = float(S[3, 0] / S[0, 0])
        if a == 0.0:
            continue  # found below as an a = 0 point
        out.append(_make_equilibrium(model, float(r), a, "interior"))
    if s0 == 0.0 and s1c1 == 0.0:
        warnings.warn("equilibria: s_0 = 0 and s_1 c_1 = 0, so every point of the line m = 0 is a fixed point; "
                      "that line is not listed", RuntimeWarning, stacklevel=2)
    bz = _poly_real_roots(B, -1.0, 1.0) if np.any(B != 0) else np.empty(0)
    if np.any(B != 0) and float(B[0]) == 0.0 and not np.any(np.abs(bz) < _ROOT_DEDUP):
        bz = np.sort(np.append(bz, 0.0))
    for r in bz:
        out.append(_make_equilibrium(model, float(r), 0.0, "a=0"))
    for pole in (-1.0, 1.0):
        S = _series(model, np.array([pole]))
        out.append(_make_equilibrium(model, pole, float(S[3, 0] / S[0, 0]), "pole"))
    order = {"interior": 0, "pole": 1, "a=0": 2}
    res = tuple(sorted(out, key=lambda e: (order[e.kind], e.m)))
    _EQUILIBRIA[model] = res
    return res


# ---------------------------------------------------------------------------------------------
# Asymptotic law at the lazy end
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AsymptoticLaw:
    """The verdict at the lazy end of the critical manifold (``a -> inf``, ``m -> 0``, ``a m -> mu``).

    Attributes
    ----------
    verdict : str
        ``"unlearning"`` (``D > 0``: ``a ~ t^(1/(q+1))`` grows, ``m ~ mu / a`` decays),
        ``"learning"`` (``D < 0``: the drift points back to finite ``a``), ``"pinned"`` (``s_0 != 0``:
        the term ``-s_0 (a s_0 - c_0)`` holds ``a`` finite) or ``"undetermined"`` (``s_1 c_1 = 0``, or
        every term at the lazy end vanishes).
    mu : float
        ``c_1 / s_1`` (NaN when undetermined).
    order : int or None
        The winning Hermite order (``k`` of a cross term, ``j`` of a self term).
    kind : str or None
        ``"cross"``, ``"self"`` or ``"cross+self"`` (equal powers: their coefficients add).
    power : int or None
        ``q``: ``da/dtau ~ D a^(-q)`` (``m^k`` for a cross term, ``m^(2j-1)`` for a self term).
    exponent : float
        ``1 / (q + 1)``: ``a ~ t^exponent`` and ``m ~ t^-exponent`` when unlearning (NaN otherwise).
    D : float
        The drift coefficient (NaN when undetermined or pinned).
    terms : tuple of dict
        Every lazy-end term: order, kind, power and coefficient.
    lr_a : float
    a_limit, m_limit : float
        For ``"learning"`` and ``"pinned"``: the stable equilibrium on the lazy-end branch with the
        largest ``a`` (where the slow flow coming down from the lazy end settles); NaN if none.
    reason : str
    """

    verdict: str
    mu: float
    order: int | None
    kind: str | None
    power: int | None
    exponent: float
    D: float
    terms: tuple[dict[str, Any], ...]
    lr_a: float
    a_limit: float = math.nan
    m_limit: float = math.nan
    reason: str = ""

    def predict_a(self, t: Any, a0: float) -> np.ndarray:
        """``a(t)``: ``(a0^(q+1) + (q+1) D lr_a t)^(1/(q+1))`` when unlearning; ``a_limit`` when learning
        or pinned (the ``t -> inf`` value); ``ValueError`` when undetermined."""
        t_arr = real_array(t, "t")
        if self.verdict == "unlearning":
            q1 = self.power + 1
            a0 = _finite_float(a0, "a0")
            sign = 1.0 if a0 >= 0 else -1.0
            return sign * (abs(a0) ** q1 + q1 * self.D * self.lr_a * t_arr) ** (1.0 / q1)
        if self.verdict in ("learning", "pinned"):
            if not math.isfinite(self.a_limit):
                raise ValueError(f"predict_a: the law is {self.verdict!r} but no stable equilibrium was found on the "
                                 "lazy-end branch")
            return np.full(t_arr.shape, self.a_limit)
        raise ValueError(f"predict_a: the asymptotic law is undetermined ({self.reason})")

    def predict_m(self, t: Any, a0: float) -> np.ndarray:
        """``m(t) = mu / a(t)`` when unlearning; ``m_limit`` when learning or pinned."""
        a = self.predict_a(t, a0)
        if self.verdict == "unlearning":
            return self.mu / a
        return np.full(np.shape(a), self.m_limit)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("verdict", "mu", "order", "kind", "power", "exponent", "D", "lr_a",
                                              "a_limit", "m_limit", "reason")} | {"terms": list(self.terms)}


def asymptotic_law(model: Model, *, zero_tol: float = 1e-14, limits: bool = True) -> AsymptoticLaw:
    """The learning/unlearning verdict at the lazy end of the critical manifold (MODEL.md section 4).

    On the manifold, exactly, ``da/dtau = sum_k (k - 1)(s_k^2 mu m^(2k-1) - s_k c_k m^k)`` with
    ``mu = a m``; at the lazy end ``mu -> c_1 / s_1`` and the lowest power of ``m`` wins: a cross term
    of order ``k >= 2`` gives ``-(k-1) s_k c_k mu^k m^k``, a self term of order ``j >= 2`` gives
    ``+(j-1) s_j^2 mu^(2j) m^(2j-1)``... in powers of ``1/a``. Coefficients below ``zero_tol`` (relative
    to the largest ``|s_k|``, ``|c_k|``) count as zero.

    Parameters
    ----------
    model : Model
    zero_tol : float
    limits : bool
        Compute ``a_limit``, ``m_limit`` for learning and pinned verdicts (needs the equilibria;
        ``False`` leaves them NaN, for speed).

    Returns
    -------
    AsymptoticLaw
    """
    model = _check_model(model)
    s, c = np.asarray(model.s, dtype=float), np.asarray(model.c, dtype=float)
    smax = float(np.max(np.abs(s))) if s.size else 0.0
    cmax = float(np.max(np.abs(c))) if c.size else 0.0
    sz = lambda k: k >= len(s) or abs(s[k]) <= zero_tol * smax  # noqa: E731
    cz = lambda k: k >= len(c) or abs(c[k]) <= zero_tol * cmax  # noqa: E731
    nan = math.nan
    if sz(1) or cz(1):
        return AsymptoticLaw("undetermined", nan, None, None, None, nan, nan, (), model.lr_a,
                             reason="s_1 c_1 = 0: the lazy end a m -> c_1 / s_1 does not exist")
    mu = float(c[1] / s[1])
    terms: list[dict[str, Any]] = []
    for k in range(2, min(len(s), len(c))):
        if not (sz(k) or cz(k)):
            terms.append({"order": k, "kind": "cross", "power": k, "coefficient": -(k - 1) * s[k] * c[k] * mu ** k})
    for j in range(2, len(s)):
        if not sz(j):
            terms.append({"order": j, "kind": "self", "power": 2 * j - 1,
                          "coefficient": (j - 1) * s[j] ** 2 * mu ** (2 * j)})
    terms.sort(key=lambda d: (d["power"], d["kind"]))
    if not sz(0):
        law = _lazy_end_limit(model) if limits else (nan, nan)
        return AsymptoticLaw("pinned", mu, 0, "pinned", 0, nan, nan, tuple(terms), model.lr_a, *law,
                             reason=f"s_0 = {s[0]:.6g} != 0: the term -s_0 (a s_0 - c_0) holds a finite")
    powers = sorted({d["power"] for d in terms})
    for q in powers:
        at_q = [d for d in terms if d["power"] == q]
        D = float(sum(d["coefficient"] for d in at_q))
        scale = max(abs(d["coefficient"]) for d in at_q)
        if abs(D) <= 1e-12 * scale:
            continue  # the terms of this power cancel: the next power decides
        kinds = sorted({d["kind"] for d in at_q})
        kind = "+".join(kinds)
        order = min(d["order"] for d in at_q)
        if D > 0:
            return AsymptoticLaw("unlearning", mu, order, kind, q, 1.0 / (q + 1), D, tuple(terms), model.lr_a,
                                 reason=f"{kind} term of order {order}: da/dtau ~ {D:.6g} a^-{q} > 0")
        law_kw = dict(zip(("a_limit", "m_limit"), _lazy_end_limit(model) if limits else (nan, nan)))
        return AsymptoticLaw("learning", mu, order, kind, q, nan, D, tuple(terms), model.lr_a, **law_kw,
                             reason=f"{kind} term of order {order}: da/dtau ~ {D:.6g} a^-{q} < 0")
    return AsymptoticLaw("undetermined", mu, None, None, None, nan, nan, tuple(terms), model.lr_a,
                         reason="every term at the lazy end vanishes: the slow flow there is neutral")


def _lazy_end_branch(model: Model) -> Branch | None:
    """The interior branch next to ``m = 0`` along which ``a -> +inf`` (the lazy end for ``a > 0``)."""
    for br in manifold_structure(model).branches:
        if br.kind == "interior" and (br.m_lo == 0.0 or br.m_hi == 0.0) and br.a_hi == math.inf:
            return br
    return None


def _lazy_end_limit(model: Model) -> tuple[float, float]:
    """``(a, m)`` of the stable equilibrium on the lazy-end branch (``a > 0``) with the largest ``a``, or NaN."""
    br = _lazy_end_branch(model)
    if br is None:
        return math.nan, math.nan
    cands = [e for e in equilibria(model) if e.kind == "interior" and e.stable and br.m_lo < e.m < br.m_hi]
    if not cands:
        return math.nan, math.nan
    best = max(cands, key=lambda e: e.a)
    return best.a, best.m


# ---------------------------------------------------------------------------------------------
# The reduced (slow) flow
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlowFlowEvent:
    """Something the slow flow met.

    ``kind``: ``"fold"`` (the branch ends in a fold at ``(m, a)``), ``"pole-unstable"`` (the pole it
    follows loses stability at ``a``), ``"branch-end"`` (the branch reaches the pole or ``a = 0``) or
    ``"jump"`` (a fast fibre from ``(m, a)`` to ``(m_to, a)``, from branch ``branch`` to ``branch_to``).
    """

    kind: str
    t: float
    m: float
    a: float
    branch: int
    m_to: float = math.nan
    branch_to: int = -1

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("kind", "t", "m", "a", "branch", "m_to", "branch_to")}


@dataclass(frozen=True)
class SlowFlow:
    """A solution of the reduced flow ``da/dt = -lr_a dL/da(m*(a), a)`` on attracting branches.

    Attributes
    ----------
    t, a, m : ndarray
        Save times and the state on the manifold (NaN after the flow stopped).
    branch : ndarray of int
        The branch followed at each save time: an index into ``branch_names`` (-1 after a stop).
    branch_names : tuple of str
        ``"branch k"`` for the manifold's branches, then ``"pole m=-1"``, ``"pole m=+1"``.
    events : tuple of SlowFlowEvent
    status : int
        0: reached ``t_eval[-1]``; 1: stopped at a fold or a loss of stability (``jump=False``);
        -1: failed (``message`` says why).
    message : str
    """

    t: np.ndarray
    a: np.ndarray
    m: np.ndarray
    branch: np.ndarray
    branch_names: tuple[str, ...]
    events: tuple[SlowFlowEvent, ...]
    status: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t, "a": self.a, "m": self.m, "branch": self.branch, "branch_names": list(self.branch_names),
                "events": [e.to_dict() for e in self.events], "status": self.status, "message": self.message}


def _branch_point(model: Model, br: Branch, a: float, guess: float | None = None) -> float:
    """The point of interior branch ``br`` at ``a`` (NaN if none): safeguarded Newton."""
    inset = _END_INSET * (br.m_hi - br.m_lo)
    lo, hi = br.m_lo + inset, br.m_hi - inset
    S = _series(model, np.array([lo, hi]))
    h_lo, h_hi = 0.5 * a * S[1, 0] - S[4, 0], 0.5 * a * S[1, 1] - S[4, 1]
    if a == 0.0 or not (np.sign(h_lo) * np.sign(h_hi) < 0):
        return math.nan
    x = guess if (guess is not None and lo < guess < hi) else 0.5 * (lo + hi)
    for _ in range(200):
        S = _series(model, np.array([x]))
        h, dh = 0.5 * a * S[1, 0] - S[4, 0], 0.5 * a * S[2, 0] - S[5, 0]
        if h == 0.0:
            return x
        if np.sign(h) == np.sign(h_lo):
            lo, h_lo = x, h
        else:
            hi = x
        xn = x - h / dh if dh != 0.0 else math.nan
        if not (lo < xn < hi):
            xn = 0.5 * (lo + hi)
        if abs(xn - x) <= 4e-16 * max(abs(x), 1e-300) or hi - lo <= 4e-16:
            return xn
        x = xn
    return x


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
            for m, b, att in _roots_at(model, a):
                if abs(m - m0) < 1e-9:
                    return m, b
            direction = 1.0
        else:
            direction = -math.copysign(1.0, g)
    ahead = [(m, b) for m, b, _ in _roots_at(model, a) if (m - m0) * direction > 1e-12]
    if not ahead:
        return (1.0, nb + 1) if direction > 0 else (-1.0, nb)
    return min(ahead, key=lambda mb: abs(mb[0] - m0))


def solve_slow_flow(model: Model, a0: float, m0: float = 0.0, t_eval: Any = None, *, jump: bool = False,
                    rtol: float = 1e-10, atol: float = 1e-12, max_jumps: int = 20) -> SlowFlow:
    """The reduced flow on the attracting branch that the fast fibre from ``(m0, a0)`` falls onto.

    The slow flow is the index-1 DAE ``da/dt = -lr_a dL/da(m, a)``, ``0 = dL/dm(m, a)``: SciPy's Radau
    (implicit) integrates ``a`` with ``m = m*(a)`` found by safeguarded Newton on the branch at every
    evaluation, and the analytic Jacobian ``-lr_a (L_aa - L_am^2 / L_mm)``. On a pole (``m = +-1``,
    where the fast fibre ends when no manifold point lies ahead) it follows ``m = +-1``.

    Parameters
    ----------
    model : Model
    a0, m0 : float
        Initial condition of the full system (``a0 != 0``, ``|m0| < 1``); ``m`` first relaxes along the
        fast fibre at fixed ``a0``.
    t_eval : array_like
        Increasing save times ``>= 0`` (ODE time ``t``, not ``tau = lr_a t``).
    jump : bool
        At a fold (or where a pole loses stability) jump along the fast fibre to the next attracting
        branch and continue; otherwise stop there (``status = 1``).
    rtol, atol : float
        Radau tolerances on ``a``.
    max_jumps : int

    Returns
    -------
    SlowFlow
    """
    model = _check_model(model)
    a0 = _finite_float(a0, "a0")
    m0 = _finite_float(m0, "m0")
    if a0 == 0.0:
        raise ValueError("a0: must be != 0 (at a = 0 every m is critical and the fast fibre is not defined)")
    if not abs(m0) < 1:
        raise ValueError(f"m0: must satisfy |m0| < 1, got {m0!r}")
    if t_eval is None:
        raise ValueError("t_eval: the save times are required")
    try:
        t = np.atleast_1d(real_array(t_eval, "t_eval"))
    except ValueError:
        raise ValueError(f"t_eval: must be an array of real times, got {t_eval!r}") from None
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or t[0] < 0 or np.any(np.diff(t) <= 0):
        raise ValueError("t_eval: must be a non-empty, strictly increasing array of finite times >= 0")
    from ._validate import real

    rtol = real(rtol, "rtol", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    atol = real(atol, "atol", lo=0.0, lo_open=True)
    st = manifold_structure(model)
    nb = len(st.branches)
    names = tuple(f"branch {b.index}" for b in st.branches) + ("pole m=-1", "pole m=+1")
    fold_at = {}
    for f in st.folds:
        for b in f.branches:
            fold_at.setdefault(b, []).append(f)

    a_out = np.full(t.size, np.nan)
    m_out = np.full(t.size, np.nan)
    b_out = np.full(t.size, -1, dtype=int)
    events: list[SlowFlowEvent] = []
    m_start, bid = _fast_destination(model, m0, a0)
    a_cur, t_cur = a0, 0.0
    at0 = t <= 0.0  # t = 0: where the fast fibre lands (also when t_eval holds nothing else)
    a_out[at0], m_out[at0], b_out[at0] = a0, m_start, bid
    status, message = 0, "The slow flow reached the end of t_eval."
    lr_a = model.lr_a

    def m_of(bid: int, a: float, guess: float | None) -> float:
        if bid >= nb:
            return -1.0 if bid == nb else 1.0
        br = st.branches[bid]
        if br.kind == "trivial":
            return 0.0
        x = _branch_point(model, br, a, guess)
        if not math.isfinite(x):  # past the end of the branch: its end point (an event stops us there)
            ends = [(br.a_lo, br.m_lo if _alpha_inc(br) else br.m_hi), (br.a_hi, br.m_hi if _alpha_inc(br) else br.m_lo)]
            x = min(ends, key=lambda e: abs(e[0] - a))[1]
            x = min(max(x, -1.0), 1.0)
        return x

    def _alpha_inc(br: Branch) -> bool:
        al = _alpha(model, np.array([br.m_lo + 0.25 * (br.m_hi - br.m_lo), br.m_lo + 0.75 * (br.m_hi - br.m_lo)]))
        return bool(al[1] > al[0])

    for _ in range(max_jumps + 1):
        if t_cur >= t[-1]:
            break
        guess = [m_start]

        def rhs(_t: float, y: np.ndarray) -> np.ndarray:
            m = m_of(bid, float(y[0]), guess[0])
            guess[0] = m
            return np.array([-lr_a * float(model.grad(m, y[0])[1])])

        def jac(_t: float, y: np.ndarray) -> np.ndarray:
            m = m_of(bid, float(y[0]), guess[0])
            H = model.hessian(m, y[0])
            if bid < nb and st.branches[bid].kind == "interior" and H[0, 0] != 0:
                return np.array([[-lr_a * (H[1, 1] - H[0, 1] ** 2 / H[0, 0])]])
            return np.array([[-lr_a * H[1, 1]]])

        # events: the ends of this branch (folds, pole, a = 0), or the loss of stability of a pole
        ev_specs: list[tuple[float, str]] = []
        if bid < nb and st.branches[bid].kind == "interior":
            br = st.branches[bid]
            for a_end in (br.a_lo, br.a_hi):
                if math.isfinite(a_end):
                    is_fold = any(abs(f.a - a_end) <= 1e-9 * max(1.0, abs(a_end)) for f in fold_at.get(bid, []))
                    ev_specs.append((a_end, "fold" if is_fold else "branch-end"))
        elif bid >= nb:
            pole = -1.0 if bid == nb else 1.0
            S = _series(model, np.array([pole]))
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
        except Exception as exc:  # pragma: no cover - reported, not raised
            status, message = -1, f"The slow flow failed at t = {t_cur:g}: {exc}"
            break
        if sol.status == -1:
            status, message = -1, f"The slow flow failed at t = {t_cur:g}: {sol.message}"
        t_end = float(sol.t[-1])
        sel = (t >= t_cur) & (t <= t_end)
        if sel.any():
            av = sol.sol(t[sel])[0]
            a_out[sel] = av
            g0 = m_start
            ms = []
            for ai in av:
                g0 = m_of(bid, float(ai), g0)
                ms.append(g0)
            m_out[sel] = ms
            b_out[sel] = bid
        if status == -1 or sol.status == 0:
            break
        # a terminal event
        fired = [i for i, te in enumerate(sol.t_events) if len(te)]
        i_ev = min(fired, key=lambda i: sol.t_events[i][0])
        t_ev = float(sol.t_events[i_ev][0])
        a_ev, kind = ev_specs[i_ev]
        m_ev = m_of(bid, a_ev, guess[0]) if bid < nb else (-1.0 if bid == nb else 1.0)
        events.append(SlowFlowEvent(kind, t_ev, m_ev, a_ev, bid))
        if not jump:
            status, message = 1, f"The slow flow stopped at a {kind} at t = {t_ev:.6g} (m = {m_ev:.6g}, a = {a_ev:.6g})."
            break
        # jump: past the event the point is gone (fold) or unstable (pole); follow the fast fibre
        da = float(rhs(t_ev, np.array([a_ev]))[0])
        a_past = a_ev + math.copysign(1e-9 * max(1.0, abs(a_ev)), da if da != 0 else 1.0)
        g = float(model.grad(m_ev, a_past)[0])
        direction = -math.copysign(1.0, g) if g != 0 else (-1.0 if m_ev > 0 else 1.0)
        start = m_ev - 1e-7 * direction if abs(m_ev) == 1.0 else m_ev
        m_new, b_new = _fast_destination(model, start, a_past, direction)
        if b_new == bid and abs(m_new - m_ev) < 1e-6:
            status, message = 1, f"The slow flow stopped at a {kind} at t = {t_ev:.6g}: no fast fibre leaves it."
            break
        events.append(SlowFlowEvent("jump", t_ev, m_ev, a_past, bid, m_new, b_new))
        bid, m_start, a_cur, t_cur = b_new, m_new, a_past, t_ev
    else:
        status, message = 1, f"Stopped after max_jumps = {max_jumps} jumps."
    return SlowFlow(t=t, a=a_out, m=m_out, branch=b_out, branch_names=names, events=tuple(events),
                    status=status, message=message)


# ---------------------------------------------------------------------------------------------
# What a trajectory does
# ---------------------------------------------------------------------------------------------
OUTCOMES = ("learning", "lazy", "unlearning", "undetermined", "failed")


@dataclass(frozen=True)
class Classification:
    """What trajectories of the full ODE do by ``t_max`` (arrays, one entry per trajectory).

    ``outcome``: ``"learning"`` (settled, over the last decade, at a state with ``|m| >= m_tol``: a
    kept feature, pole or interior), ``"lazy"`` (settled with ``|m| < m_tol``), ``"unlearning"``
    (``|m|`` decays and ``|a|`` grows as powers of ``t`` over the last decade; ``exponent`` is the
    measured ``-d log|m| / d log t``), ``"undetermined"`` (neither by ``t_max``), ``"failed"``.
    """

    outcome: np.ndarray
    exponent: np.ndarray
    m_final: np.ndarray
    a_final: np.ndarray
    m_peak: np.ndarray
    t_peak: np.ndarray
    t_half: np.ndarray
    t_max: float
    equilibrium: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("outcome", "exponent", "m_final", "a_final", "m_peak", "t_peak", "t_half",
                                           "t_max")}
        d["equilibrium"] = [e.to_dict() if e is not None else None for e in self.equilibrium]
        return d


def _classify_arrays(m: np.ndarray, a: np.ndarray, t: np.ndarray, status: np.ndarray, settle_tol: float,
                     m_tol: float, slope_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Outcome and exponent from the states at ``t_max / 10`` (column -2) and ``t_max`` (column -1)."""
    m1, m2, a1, a2 = m[:, -2], m[:, -1], a[:, -2], a[:, -1]
    dec = math.log10(t[-1] / t[-2])
    with np.errstate(divide="ignore", invalid="ignore"):
        slope_m = np.log10(np.abs(m2) / np.abs(m1)) / dec
        slope_a = np.log10(np.abs(a2) / np.abs(a1)) / dec
    settled = (np.abs(m2 - m1) <= settle_tol) & (np.abs(a2 - a1) <= settle_tol * np.maximum(1.0, np.abs(a2)))
    unlearn = ~settled & (slope_m < -slope_tol) & (slope_a > slope_tol)
    out = np.full(m.shape[0], "undetermined", dtype=object)
    out[settled & (np.abs(m2) >= m_tol)] = "learning"
    out[settled & (np.abs(m2) < m_tol)] = "lazy"
    out[unlearn] = "unlearning"
    out[status != 0] = "failed"
    return out.astype(str), np.where(unlearn, -slope_m, np.nan)


def classify_batch(models: Model | Sequence[Model], a0: Any, m0: Any = 0.0, *, t_max: float = 1e9,
                   rtol: float = 1e-8, threads: int | None = None, settle_tol: float = 1e-6,
                   m_tol: float = 1e-3, slope_tol: float = 0.02) -> Classification:
    """Classify many trajectories (a grid of initial conditions or of models) by ``t_max``.

    Parameters
    ----------
    models : Model or sequence of Model
        One model, or one per trajectory.
    a0, m0 : array_like
        Initial conditions (broadcast together).
    t_max : float
        Horizon; the verdict looks at the last decade ``[t_max / 10, t_max]``.
    rtol : float
    threads : int, optional
    settle_tol : float
        Settled when ``m`` and ``a`` (relative) moved less than this over the last decade.
    m_tol : float
        A settled state with ``|m|`` below this has no feature (``"lazy"``).
    slope_tol : float
        Unlearning needs ``d log|m| / d log t < -slope_tol`` and ``d log|a| / d log t > slope_tol``.

    Returns
    -------
    Classification
    """
    t_max = _finite_float(t_max, "t_max")
    if t_max <= 0:
        raise ValueError(f"t_max: must be > 0, got {t_max!r}")
    t_eval = np.array([0.0, t_max / 10.0, t_max])
    bt = solve_ode_batch(models, a0, m0, t_eval, rtol=rtol, threads=threads)
    outcome, exponent = _classify_arrays(bt.m, bt.a, t_eval, np.asarray(bt.status), settle_tol, m_tol, slope_tol)
    return Classification(outcome=outcome, exponent=exponent, m_final=bt.m[:, -1].copy(), a_final=bt.a[:, -1].copy(),
                          m_peak=np.asarray(bt.m_peak), t_peak=np.asarray(bt.t_peak), t_half=np.asarray(bt.t_half),
                          t_max=t_max)


def classify(model: Model, a0: float, m0: float = 0.0, *, t_max: float = 1e9, rtol: float = 1e-8,
             **kw: Any) -> Classification:
    """What the trajectory from ``(m0, a0)`` does by ``t_max`` (see :func:`classify_batch`), and which
    equilibrium it settles at (``equilibrium[0]``, an :class:`Equilibrium` or None)."""
    model = _check_model(model)
    c = classify_batch(model, [_finite_float(a0, "a0")], [_finite_float(m0, "m0")], t_max=t_max, rtol=rtol,
                       threads=1, **kw)
    eq = None
    if c.outcome[0] in ("learning", "lazy"):
        m_f, a_f = c.m_final[0], c.a_final[0]
        near = [e for e in equilibria(model)
                if abs(e.m - m_f) <= 1e-4 and abs(e.a - a_f) <= 1e-4 * max(1.0, abs(e.a))]
        eq = min(near, key=lambda e: abs(e.m - m_f) + abs(e.a - a_f)) if near else None
    return Classification(**{k: getattr(c, k) for k in ("outcome", "exponent", "m_final", "a_final", "m_peak",
                                                         "t_peak", "t_half", "t_max")}, equilibrium=(eq,))


# ---------------------------------------------------------------------------------------------
# Phase diagrams
# ---------------------------------------------------------------------------------------------
_INITIAL = ("a0", "m0")
_RATES = ("lr_a", "lr_w", "eps", "noise")


def _param_kind(name: str) -> tuple[str, int]:
    if name in _INITIAL or name in _RATES:
        return name, -1
    if len(name) >= 2 and name[0] in "cs" and name[1:].isdigit():
        return name[0], int(name[1:])
    raise ValueError(f"phase_diagram: unknown parameter {name!r}; allowed: a0, m0, lr_a, lr_w, eps, noise, "
                     "c<k> (target coefficient of order k), s<k> (activation coefficient of order k)")


def _with_param(model: Model, name: str, value: float) -> Model:
    kind, k = _param_kind(name)
    if kind in ("lr_a", "lr_w", "noise"):
        return model.replace(**{kind: value})
    if kind == "eps":
        return model.replace(lr_a=value * model.lr_w)
    coef = np.array(model.c if kind == "c" else model.s, dtype=float)
    if k >= len(coef):
        coef = np.concatenate([coef, np.zeros(k + 1 - len(coef))])
    coef[k] = value
    if kind == "c":
        return model.replace(target={"hermite": coef.tolist()})
    return model.replace(activation={"hermite": coef.tolist()}, centred=False)


@dataclass(frozen=True)
class PhaseDiagram:
    """Outcome, peak alignment, half-life and more over a grid of two parameters.

    Arrays have shape ``(len(y), len(x))``; ``law`` is the asymptotic verdict of each cell's model.
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

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def to_xarray(self) -> Any:
        import xarray as xr  # optional dependency

        dims = (self.y_name, self.x_name)
        return xr.Dataset({k: (dims, getattr(self, k)) for k in ("outcome", "law", "exponent", "m_peak", "t_peak",
                                                                 "t_half", "m_final", "a_final")},
                          coords={self.x_name: self.x, self.y_name: self.y}, attrs={"t_max": self.t_max})


def phase_diagram(model: Model, x: tuple[str, Any], y: tuple[str, Any], *, a0: float = 1.0, m0: float = 0.0,
                  t_max: float = 1e7, rtol: float = 1e-8, threads: int | None = None, **classify_kw: Any) -> PhaseDiagram:
    """Classify the full ODE over a grid of any two parameters, with one :func:`solve_ode_batch` call.

    Parameters
    ----------
    model : Model
        The base model; each cell changes two parameters of it.
    x, y : (str, array_like)
        Parameter name and values. Names: ``"a0"``, ``"m0"`` (initial condition), ``"lr_a"``, ``"lr_w"``,
        ``"eps"`` (sets ``lr_a = eps lr_w``), ``"noise"``, ``"c<k>"`` (the target's Hermite coefficient of
        order ``k``, e.g. ``"c3"``), ``"s<k>"`` (the activation's).
    a0, m0 : float
        Initial condition where not an axis.
    t_max : float
    rtol : float
    threads : int, optional
    **classify_kw
        Passed to the classification (see :func:`classify_batch`).

    Returns
    -------
    PhaseDiagram
    """
    import time

    model = _check_model(model)
    axes = []
    for label, spec in (("x", x), ("y", y)):
        if not (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str)):
            raise ValueError(f"{label}: must be a (name, values) pair, got {spec!r}")
        _param_kind(spec[0])
        vals = np.atleast_1d(np.asarray(spec[1], dtype=float))
        if vals.ndim != 1 or vals.size == 0 or not np.all(np.isfinite(vals)):
            raise ValueError(f"{label}: the values of {spec[0]!r} must be a non-empty 1-D array of finite numbers")
        axes.append((spec[0], vals))
    (xn, xv), (yn, yv) = axes
    if xn == yn:
        raise ValueError(f"x and y: must be different parameters, both are {xn!r}")
    start = time.perf_counter()
    X, Y = np.meshgrid(xv, yv)
    a0_grid = np.full(X.shape, _finite_float(a0, "a0"))
    m0_grid = np.full(X.shape, _finite_float(m0, "m0"))
    for name, grid in ((xn, X), (yn, Y)):
        if name == "a0":
            a0_grid = grid.copy()
        elif name == "m0":
            m0_grid = grid.copy()
    model_axes = [(n, v, g) for n, v, g in ((xn, xv, X), (yn, yv, Y)) if n not in _INITIAL]
    cache: dict[tuple[float, ...], Model] = {}
    cell_models: list[Model] = []
    for idx in np.ndindex(X.shape):
        key = tuple(float(g[idx]) for _, _, g in model_axes)
        mdl = cache.get(key)
        if mdl is None:
            mdl = model
            for (n, _, _), val in zip(model_axes, key):
                mdl = _with_param(mdl, n, val)
            cache[key] = mdl
        cell_models.append(mdl)
    laws = {id(mdl): asymptotic_law(mdl, limits=False).verdict for mdl in cache.values()} if cache else {}
    base_law = asymptotic_law(model, limits=False).verdict
    law = np.array([laws.get(id(mdl), base_law) for mdl in cell_models]).reshape(X.shape)
    models_arg: Model | list[Model] = cell_models if cache else model
    c = classify_batch(models_arg, a0_grid.ravel(), m0_grid.ravel(), t_max=t_max, rtol=rtol, threads=threads,
                       **classify_kw)
    sh = X.shape
    return PhaseDiagram(x_name=xn, x=xv, y_name=yn, y=yv, outcome=c.outcome.reshape(sh), law=law,
                        exponent=c.exponent.reshape(sh), m_peak=c.m_peak.reshape(sh), t_peak=c.t_peak.reshape(sh),
                        t_half=c.t_half.reshape(sh), m_final=c.m_final.reshape(sh), a_final=c.a_final.reshape(sh),
                        t_max=t_max, seconds=time.perf_counter() - start)
