"""The critical manifold ``dL/dm = 0`` of the fast equation: its branches, folds and points.

For ``a != 0`` the fast equation ``dm/dt = -lr_w (1 - m^2) dL/dm`` has the critical manifold

    dL/dm = a (a A'(m) / 2 - B'(m)) = 0   <=>   a = alpha(m) = 2 B'(m) / A'(m),

a graph over ``m`` (``A'(m)`` has the sign of ``m`` and vanishes only at ``m = 0``). Everything here
rests on that graph:

* the manifold splits into *pieces*: open intervals of ``m`` between ``-1``, ``0``, ``1``, the folds
  (zeros of ``alpha'``, i.e. of ``N = B'' A' - B' A''``) and the zeros of ``B'`` (where
  ``alpha = 0``). On a piece ``alpha`` is monotone and has one sign, so for every ``a`` a piece holds
  at most one point of the manifold, and it holds one exactly when ``a`` lies in the piece's range.
  So no root can be missed, and the pieces are the branches (joined continuously across ``a``);
* on a piece ``d2L/dm2 = -a A'(m) alpha'(m) / 2`` keeps its sign: attracting where positive;
* folds are the common end points of two pieces where ``alpha'`` changes sign.

The point of a branch at given values of ``a`` is found by one solver, :func:`branch_points`
(vectorised safeguarded Newton on ``h(m) = a A'(m) / 2 - B'(m)``), used by
:func:`critical_manifold` and by the slow flow alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
from numpy.polynomial import polynomial as P

from .._validate import real_array
from ..model import Model, as_model
from ._polynomials import ROOT_DEDUP, bracketed_newton, coef_A, coef_B, derivative, real_roots, series

__all__ = ["Branch", "Fold", "ManifoldStructure", "CriticalManifold", "manifold_structure", "critical_manifold",
           "branch_points", "alpha"]

_END_INSET = 1e-10  # branch ends are probed this fraction of the branch's width inside


def _g(x: float) -> str:
    return f"{x:.4g}"


@dataclass(frozen=True)
class Fold:
    """A fold of the critical manifold: ``dL/dm = d2L/dm2 = 0``; two branches meet there.

    Attributes
    ----------
    m, a : float
        Where it is.
    branches : tuple of int
        The indices of the two branches (one attracting, one repelling) that meet there.
    """

    m: float
    a: float
    branches: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {"m": self.m, "a": self.a, "branches": list(self.branches)}

    def __repr__(self) -> str:
        return f"Fold(m = {_g(self.m)}, a = {_g(self.a)}, branches {self.branches[0]} and {self.branches[1]})"


@dataclass(frozen=True)
class Branch:
    """One branch of the critical manifold.

    Attributes
    ----------
    index : int
        Its column in :attr:`CriticalManifold.m`.
    m_lo, m_hi : float
        The open interval of ``m`` where ``a = alpha(m)`` is monotone.
    a_lo, a_hi : float
        The range of ``a`` it covers (possibly infinite).
    attracting : bool
        ``d2L/dm2 > 0`` on it.
    kind : str
        ``"interior"`` (a piece of ``a = alpha(m)``) or ``"trivial"`` (``m = 0`` for every ``a``,
        present when ``s_1 c_1 = 0``).
    """

    index: int
    m_lo: float
    m_hi: float
    a_lo: float
    a_hi: float
    attracting: bool
    kind: str = "interior"

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {k: getattr(self, k) for k in ("index", "m_lo", "m_hi", "a_lo", "a_hi", "attracting", "kind")}

    def __repr__(self) -> str:
        kind = "attracting" if self.attracting else "repelling"
        if self.kind == "trivial":
            return f"Branch({self.index}: trivial, m = 0 for every a)"
        return (f"Branch({self.index}: m in ({_g(self.m_lo)}, {_g(self.m_hi)}), a in ({_g(self.a_lo)}, "
                f"{_g(self.a_hi)}), {kind})")


def _summary(branches: tuple[Branch, ...], folds: tuple[Fold, ...]) -> str:
    n_att = sum(b.attracting for b in branches)
    nf = len(folds)
    return (f"{len(branches)} branch{'es' if len(branches) != 1 else ''} ({n_att} attracting), "
            f"{nf} fold{'s' if nf != 1 else ''}")


def _readonly(x: Any, dtype: Any = float) -> np.ndarray:
    a = np.array(x, dtype=dtype)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class ManifoldStructure:
    """The model-wide shape of the critical manifold (independent of ``a``).

    Attributes
    ----------
    branches : tuple of Branch
    folds : tuple of Fold
    breakpoints : ndarray
        The values of ``m`` that cut ``(-1, 1)`` into the branches' intervals.
    trivial : bool
        ``s_1 c_1 = 0``: ``m = 0`` is critical for every ``a`` (the last branch).
    """

    branches: tuple[Branch, ...]
    folds: tuple[Fold, ...]
    breakpoints: np.ndarray
    trivial: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "breakpoints", _readonly(self.breakpoints))
        object.__setattr__(self, "branches", tuple(self.branches))
        object.__setattr__(self, "folds", tuple(self.folds))

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {"branches": [b.to_dict() for b in self.branches], "folds": [f.to_dict() for f in self.folds],
                "breakpoints": self.breakpoints.tolist(), "trivial": self.trivial}

    def __repr__(self) -> str:
        return f"ManifoldStructure({_summary(self.branches, self.folds)})"


_STRUCTURES: WeakKeyDictionary[Model, ManifoldStructure] = WeakKeyDictionary()
_END_SERIES: WeakKeyDictionary[Model, dict[tuple[int, float, float], tuple[float, float, np.ndarray]]] = \
    WeakKeyDictionary()


def alpha(model: Model, m: Any) -> np.ndarray:
    """``alpha(m) = 2 B'(m) / A'(m)``: the manifold's ``a`` over ``m`` (inf/NaN at ``m = 0``)."""
    S = series(model, m)
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

    Raises
    ------
    ValueError
        If the activation has no coefficient ``s_k != 0`` with ``k >= 1`` (``L`` does not depend on ``m``).
    """
    model = as_model(model)
    cached = _STRUCTURES.get(model)
    if cached is not None:
        return cached
    A, B = coef_A(model), coef_B(model)
    if not np.any(A[1:] != 0):
        raise ValueError("model: the activation has no Hermite coefficient s_k != 0 with k >= 1, so L does not "
                         "depend on m and there is no fast-slow structure")
    A1, A2 = derivative(A), derivative(A, 2)
    B1, B2 = derivative(B), derivative(B, 2)
    N = P.polysub(P.polymul(B2, A1), P.polymul(B1, A2))
    trivial = (float(B[1]) if len(B) > 1 else 0.0) == 0.0
    has_b1 = bool(np.any(B1 != 0))
    # zeros of alpha' (candidate folds) and of B' (alpha = 0), away from m = 0
    fold_m = np.concatenate([real_roots(N, -1.0, 0.0), real_roots(N, 0.0, 1.0)])
    zero_m = np.concatenate([real_roots(B1, -1.0, 0.0), real_roots(B1, 0.0, 1.0)]) if has_b1 else np.empty(0)
    cuts = np.unique(np.concatenate([[-1.0, 0.0, 1.0], fold_m, zero_m]))
    keep = [cuts[0]]
    for x in cuts[1:]:
        if x - keep[-1] > ROOT_DEDUP:
            keep.append(x)
    cuts = np.asarray(keep)
    branches: list[Branch] = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        if not has_b1:
            break  # B' = 0: alpha = 0, no interior manifold at a != 0
        w = hi - lo
        inner = np.array([lo + 1e-12 * w, lo + 0.5 * w, hi - 1e-12 * w])
        al = alpha(model, inner)
        ends = []
        for x_end, x_in in ((lo, inner[0]), (hi, inner[2])):
            if x_end != 0.0:
                ends.append(float(alpha(model, [x_end])[0]))
            elif trivial:  # B'(0) = 0: alpha has a finite limit at m = 0
                ends.append(float(alpha(model, [x_in])[0]))
            else:  # B'(0) != 0: alpha has a pole at m = 0
                ends.append(math.copysign(math.inf, float(alpha(model, [x_in])[0])))
        d = model.core.derivs(np.array([inner[1]]), np.array([float(al[1])]))
        branches.append(Branch(len(branches), float(lo), float(hi), min(ends), max(ends), bool(d[3][0] > 0)))
    if trivial:
        # m = 0 solves dL/dm = 0 for every a; its stability depends on a: d2L/dm2 = a^2 s1^2 - 2 a s2 c2
        branches.append(Branch(len(branches), 0.0, 0.0, -math.inf, math.inf, True, "trivial"))
    folds: list[Fold] = []
    interior = [b for b in branches if b.kind == "interior"]
    for left, right in zip(interior[:-1], interior[1:]):
        x = left.m_hi
        if x != right.m_lo or x in (-1.0, 0.0, 1.0) or not np.any(np.abs(fold_m - x) < ROOT_DEDUP):
            continue
        if left.attracting == right.attracting:
            continue  # alpha' touches zero without a change of stability: not a fold
        folds.append(Fold(float(x), float(alpha(model, [x])[0]), (left.index, right.index)))
    st = ManifoldStructure(tuple(branches), tuple(folds), cuts, trivial)
    _STRUCTURES[model] = st
    return st


def _end_series(model: Model, br: Branch) -> tuple[float, float, np.ndarray]:
    """The probes just inside the ends of ``br`` and the series there (cached per model and branch)."""
    per_model = _END_SERIES.setdefault(model, {})
    key = (br.index, br.m_lo, br.m_hi)
    hit = per_model.get(key)
    if hit is None:
        inset = _END_INSET * (br.m_hi - br.m_lo)
        lo, hi = br.m_lo + inset, br.m_hi - inset
        hit = per_model[key] = (lo, hi, series(model, [lo, hi]))
    return hit


def branch_points(model: Model, br: Branch, a: Any, guess: Any = None) -> np.ndarray:
    """The point of interior branch ``br`` at each ``a``: THE branch solver of the analysis.

    Vectorised safeguarded Newton (:func:`~fastslow.analysis._polynomials.bracketed_newton`) on
    ``h(m) = a A'(m) / 2 - B'(m)`` inside ``(m_lo, m_hi)``, where ``h`` changes sign exactly when the
    branch has a point at ``a`` (the sign is tested just inside the ends: at an end that is a root
    for every ``a``, ``m = 0`` when ``s_1 c_1 = 0``, or a fold, ``h`` vanishes on the end itself).

    Parameters
    ----------
    model : Model
    br : Branch
        An interior branch of ``manifold_structure(model)``.
    a : array_like
        Values of ``a``.
    guess : array_like, optional
        Starting points (broadcast with ``a``), e.g. the previous point along a slow-flow solution;
        ignored where outside the branch.

    Returns
    -------
    ndarray
        ``m`` with the flattened shape of ``a``; NaN where ``a`` is outside the branch's range or 0.
    """
    a = np.asarray(a, dtype=float).ravel()
    out = np.full(a.size, np.nan)
    lo, hi, S = _end_series(model, br)
    h_lo = 0.5 * a * S[1, 0] - S[4, 0]
    h_hi = 0.5 * a * S[1, 1] - S[4, 1]
    idx = np.nonzero((np.sign(h_lo) * np.sign(h_hi) < 0) & (a != 0))[0]
    if idx.size == 0:
        return out
    aa = a[idx]

    def h(x: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Sx = series(model, x)
        return 0.5 * aa[j] * Sx[1] - Sx[4], 0.5 * aa[j] * Sx[2] - Sx[5]

    x0 = None if guess is None else np.broadcast_to(np.asarray(guess, dtype=float).ravel(), a.shape)[idx]
    out[idx] = bracketed_newton(h, np.full(idx.size, lo), np.full(idx.size, hi), h_lo[idx], x0)
    return out


@dataclass(frozen=True, eq=False)
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

    def __post_init__(self) -> None:
        for k in ("a", "m", "d2L", "residual"):
            object.__setattr__(self, k, _readonly(getattr(self, k)))
        for k in ("attracting", "degenerate"):
            object.__setattr__(self, k, _readonly(getattr(self, k), bool))

    @property
    def branches(self) -> tuple[Branch, ...]:
        """The branches (columns of :attr:`m`)."""
        return self.structure.branches

    @property
    def folds(self) -> tuple[Fold, ...]:
        """The folds."""
        return self.structure.folds

    def points(self) -> dict[str, np.ndarray]:
        """All points as flat arrays ``a, m, branch, attracting``."""
        ii, bb = np.nonzero(np.isfinite(self.m))
        return {"a": self.a[ii], "m": self.m[ii, bb], "branch": bb, "attracting": self.attracting[ii, bb]}

    def to_dict(self) -> dict[str, Any]:
        """Plain data (arrays and the structure as a dict)."""
        return {"a": self.a, "m": self.m, "attracting": self.attracting, "d2L": self.d2L,
                "residual": self.residual, "degenerate": self.degenerate, "structure": self.structure.to_dict()}

    def to_xarray(self) -> Any:
        """An :class:`xarray.Dataset` over ``(a, branch)``; the branches' ranges as coordinates."""
        import xarray as xr  # optional dependency

        dims = ("a", "branch")
        br = self.branches
        coords = {"a": self.a, "branch": np.arange(self.m.shape[1]),
                  "branch_attracting": ("branch", np.array([b.attracting for b in br], dtype=bool)),
                  "branch_kind": ("branch", np.array([b.kind for b in br], dtype=str)),
                  "branch_m_lo": ("branch", np.array([b.m_lo for b in br])),
                  "branch_m_hi": ("branch", np.array([b.m_hi for b in br]))}
        return xr.Dataset({"m": (dims, self.m), "attracting": (dims, self.attracting), "d2L": (dims, self.d2L),
                           "residual": (dims, self.residual), "degenerate": ("a", self.degenerate)},
                          coords=coords, attrs={"folds_m": [f.m for f in self.folds],
                                                "folds_a": [f.a for f in self.folds]})

    def __repr__(self) -> str:
        n = self.a.size
        rng = f" in [{_g(float(self.a.min()))}, {_g(float(self.a.max()))}]" if n else ""
        return (f"CriticalManifold({n} value{'s' if n != 1 else ''} of a{rng}, "
                f"{_summary(self.structure.branches, self.structure.folds)})")


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
    model = as_model(model)
    a_arr = np.atleast_1d(real_array(a, "a")).ravel()
    if a_arr.size == 0:
        raise ValueError("a: must contain at least one value")
    st = manifold_structure(model)
    m = np.full((a_arr.size, len(st.branches)), np.nan)
    for br in st.branches:
        if br.kind == "trivial":
            m[:, br.index] = np.where(a_arr != 0, 0.0, np.nan)
        else:
            m[:, br.index] = branch_points(model, br, a_arr)
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
