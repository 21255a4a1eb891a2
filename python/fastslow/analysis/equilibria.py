"""Fixed points of the full system in ``(m, a)`` and the Jacobian that classifies them.

``dm/dt = -lr_w (1 - m^2) dL/dm``, ``da/dt = -lr_a dL/da``. With ``L = a^2 A / 2 - a B + C0``,
``dL/da = 0`` gives ``a = B / A`` and then ``dL/dm = 0`` (for ``a != 0``) gives
``P = B A' - 2 A B' = 0``: the interior fixed points are the roots of one polynomial in ``m``. On the
degenerate line ``a = 0`` they are the zeros of ``B``; at the poles ``m = +-1``, ``a = B / A`` there.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
from numpy.polynomial import polynomial as P

from .._validate import real_array
from ..model import Model, as_model
from ._polynomials import ROOT_DEDUP, coef_A, coef_B, derivative, polyval, real_roots, series

__all__ = ["Equilibrium", "jacobian", "equilibria", "KINDS", "STABILITIES"]

KINDS: tuple[str, ...] = ("interior", "pole", "a=0")
STABILITIES: tuple[str, ...] = ("stable", "unstable", "saddle", "non-hyperbolic")


@dataclass(frozen=True)
class Equilibrium:
    """A fixed point of the full system in ``(m, a)``.

    Attributes
    ----------
    m, a : float
    kind : str
        ``"interior"`` (``|m| < 1``, ``a != 0``), ``"pole"`` (``m = +-1``) or ``"a=0"`` (on the
        degenerate line ``a = 0``).
    loss : float
        ``L(m, a)``.
    eigenvalues : tuple of complex
        Of the Jacobian of ``(dm/dt, da/dt)`` (:func:`jacobian`).
    stability : str
        ``"stable"``, ``"unstable"``, ``"saddle"`` or ``"non-hyperbolic"`` (an eigenvalue with a real
        part at round-off level).
    gradient : tuple of float
        ``(dm/dt, da/dt)`` at the point: round-off, a check of the root.
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
        """``stability == "stable"``."""
        return self.stability == "stable"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the eigenvalues as complex numbers)."""
        return {"m": self.m, "a": self.a, "kind": self.kind, "loss": self.loss,
                "eigenvalues": [complex(e) for e in self.eigenvalues], "stability": self.stability,
                "gradient": list(self.gradient)}

    def __repr__(self) -> str:
        return f"Equilibrium({self.stability} {self.kind}: m = {self.m:.6g}, a = {self.a:.6g}, loss = {self.loss:.4g})"


def jacobian(model: Model, m: Any, a: Any) -> np.ndarray:
    """Jacobian of ``(dm/dt, da/dt)`` in ``(m, a)``.

    Parameters
    ----------
    model : Model
    m, a : array_like
        Broadcast together (``|m| <= 1``).

    Returns
    -------
    ndarray, shape ``broadcast(m, a).shape + (2, 2)``
    """
    model = as_model(model)
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


def _make(model: Model, m: float, a: float, kind: str) -> Equilibrium:
    J = jacobian(model, m, a)
    ev = np.linalg.eigvals(J)
    scale = float(np.max(np.abs(J))) if np.all(np.isfinite(J)) else 1.0
    g = model.grad(m, a)
    fm = -model.lr_w * (1 - m * m) * g[0]
    fa = -model.lr_a * g[1]
    return Equilibrium(m=float(m), a=float(a), kind=kind, loss=float(model.loss(m, a)),
                       eigenvalues=(complex(ev[0]), complex(ev[1])), stability=_stability(ev, scale),
                       gradient=(float(fm), float(fa)))


_EQUILIBRIA: WeakKeyDictionary[Model, tuple[Equilibrium, ...]] = WeakKeyDictionary()


def equilibria(model: Model) -> tuple[Equilibrium, ...]:
    """All fixed points of ``dm/dt = -lr_w (1 - m^2) dL/dm``, ``da/dt = -lr_a dL/da``, poles included.

    Interior points solve ``B A' - 2 A B' = 0`` with ``a = B / A``; on ``a = 0`` they are the zeros of
    ``B``; at the poles ``m = +-1``, ``a = B(+-1) / A(+-1)``. Computed once per model.

    Parameters
    ----------
    model : Model

    Returns
    -------
    tuple of Equilibrium
        Sorted by kind (interior, pole, ``a = 0``), then ``m``; each with the loss, the Jacobian's
        eigenvalues and the stability. If ``s_1 c_1 = 0`` and ``s_0 = 0``, the whole line ``m = 0`` is
        made of fixed points; it is not listed (a ``RuntimeWarning`` says so).
    """
    model = as_model(model)
    cached = _EQUILIBRIA.get(model)
    if cached is not None:
        return cached
    A, B = coef_A(model), coef_B(model)
    A1, B1 = derivative(A), derivative(B)
    Pc = P.polysub(P.polymul(B, A1), 2.0 * P.polymul(A, B1))
    s0 = float(model.s[0])
    s1c1 = float(B[1]) if len(B) > 1 else 0.0
    out: list[Equilibrium] = []
    roots = np.concatenate([real_roots(Pc, -1.0, 0.0), real_roots(Pc, 0.0, 1.0)])
    if s0 != 0.0 and abs(float(polyval(Pc, 0.0))) <= 1e-300:
        roots = np.append(roots, 0.0)
    for r in np.sort(roots):
        S = series(model, [r])
        if S[0, 0] <= 0:
            continue
        a = float(S[3, 0] / S[0, 0])
        if a == 0.0:
            continue  # found below as an a = 0 point
        out.append(_make(model, float(r), a, "interior"))
    if s0 == 0.0 and s1c1 == 0.0:
        warnings.warn("equilibria: s_0 = 0 and s_1 c_1 = 0, so every point of the line m = 0 is a fixed point; "
                      "that line is not listed", RuntimeWarning, stacklevel=2)
    has_b = bool(np.any(B != 0))
    bz = real_roots(B, -1.0, 1.0) if has_b else np.empty(0)
    if has_b and float(B[0]) == 0.0 and not np.any(np.abs(bz) < ROOT_DEDUP):
        bz = np.sort(np.append(bz, 0.0))
    for r in bz:
        out.append(_make(model, float(r), 0.0, "a=0"))
    for pole in (-1.0, 1.0):
        S = series(model, [pole])
        out.append(_make(model, pole, float(S[3, 0] / S[0, 0]), "pole"))
    order = {k: i for i, k in enumerate(KINDS)}
    res = tuple(sorted(out, key=lambda e: (order[e.kind], e.m)))
    _EQUILIBRIA[model] = res
    return res
