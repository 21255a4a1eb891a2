"""The asymptotic law at the lazy end of the critical manifold (theory page section 4): learning or unlearning.

Write ``mu = a m``. On the critical manifold, exactly,
``da/dtau = sum_{k>=0} (k - 1) (s_k^2 mu m^(2k-1) - s_k c_k m^k)`` (``tau = lr_a t``). At the lazy end
(``a -> inf``, ``m -> 0``, ``mu -> c_1 / s_1``) the lowest power of ``m = mu / a`` wins: a cross term
of order ``k >= 2`` gives ``-(k-1) s_k c_k mu^k a^-k``, a self term of order ``j >= 2`` gives
``+(j-1) s_j^2 mu^(2j) a^-(2j-1)``. With the winning power ``q`` and coefficient ``D``,
``da/dtau ~ D a^-q``: for ``D > 0`` the network unlearns, ``a^(q+1) ~ (q+1) D lr_a t``.

The law is also a level of description: :meth:`AsymptoticLaw.trajectory` gives its
:class:`~fastslow.Trajectory` (level ``"law"``), comparable with the others by :func:`fastslow.compare`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _validate as V
from .. import params as P
from ..model import Model, as_model
from ..trajectory import Status, Trajectory
from .equilibria import equilibria
from .manifold import Branch, manifold_structure

__all__ = ["AsymptoticLaw", "asymptotic_law", "VERDICTS", "lazy_end_branch", "lazy_end_limit"]

VERDICTS: tuple[str, ...] = ("unlearning", "learning", "pinned", "undetermined")


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
        Every lazy-end term: ``order``, ``kind``, ``power`` and ``coefficient`` (``+-inf`` where it
        exceeds the float range: high orders with ``|mu| > 1``; such terms decide nothing unless
        every lower power cancels).
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
        """The law's ``a(t)``.

        ``(a0^(q+1) + (q+1) D lr_a t)^(1/(q+1))`` (with the sign of ``a0``) when unlearning;
        ``a_limit`` (the ``t -> inf`` value) when learning or pinned.

        Raises
        ------
        ValueError
            When undetermined, or learning/pinned without a stable equilibrium on the lazy-end branch.
        """
        t_arr = V.real_array(t, "t")
        a0 = P.lookup("a0").check(a0, "a0")
        if self.verdict == "unlearning":
            assert self.power is not None  # an unlearning law has its power
            q1 = self.power + 1
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

    def trajectory(self, t_eval: Any, *, a0: float, model: Model) -> Trajectory:
        """The law as a level of description: a :class:`~fastslow.Trajectory` of level ``"law"``.

        Parameters
        ----------
        t_eval : array_like
            Increasing save times ``>= 0`` (ODE time).
        a0 : float
            The initial second-layer weight (the law forgets ``m0``).
        model : Model
            The model the law was computed for (for the loss; its ``lr_a`` must be the law's).

        Returns
        -------
        Trajectory
            ``a`` from :meth:`predict_a`, ``m`` from :meth:`predict_m` (``mu / a``: an asymptotic
            statement, which exceeds 1 at early times when ``|a0| < |mu|``), ``loss = model.loss(m, a)``
            (NaN where ``|m| > 1``). ``params``: the model, ``a0`` and the law's verdict, kind, order,
            power, exponent, ``D``, ``mu``.
        """
        model = as_model(model)
        if not math.isclose(model.lr_a, self.lr_a, rel_tol=1e-15, abs_tol=0.0):
            raise ValueError(f"model: its lr_a = {model.lr_a:g} is not the law's {self.lr_a:g}; "
                             "pass the model the law was computed for")
        t = V.times(t_eval)
        a = np.asarray(self.predict_a(t, a0), dtype=float)
        m = np.asarray(self.predict_m(t, a0), dtype=float)
        ok = np.isfinite(m) & np.isfinite(a) & (np.abs(m) <= 1.0)
        loss = np.full(t.shape, np.nan)
        if ok.any():
            loss[ok] = model.loss(m[ok], a[ok])
        params = {"model": model.to_dict(), "a0": float(a0), "verdict": self.verdict, "kind": self.kind,
                  "order": self.order, "power": self.power, "exponent": self.exponent, "D": self.D, "mu": self.mu}
        return Trajectory(level="law", t=t, m=m, a=a, loss=loss, status=Status.SUCCESS,
                          message=f"The asymptotic law ({self.verdict}).", params=params)

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {k: getattr(self, k) for k in ("verdict", "mu", "order", "kind", "power", "exponent", "D", "lr_a",
                                              "a_limit", "m_limit", "reason")} | {"terms": list(self.terms)}

    def __repr__(self) -> str:
        what = f"{self.kind} term{'s' if self.kind == 'cross+self' else ''} of order {self.order}"
        limit = (f"; a -> {self.a_limit:.4g}, m -> {self.m_limit:.4g}" if math.isfinite(self.a_limit) else "")
        if self.verdict == "unlearning":
            assert self.power is not None  # an unlearning law has its power
            body = f"{what}, a ~ t^(1/{self.power + 1}), D = {self.D:.4g}, mu = {self.mu:.4g}"
        elif self.verdict == "learning":
            body = f"{what}, D = {self.D:.4g} < 0, mu = {self.mu:.4g}{limit}"
        elif self.verdict == "pinned":
            body = f"s_0 != 0 holds a finite{limit}"
        else:
            body = self.reason
        return f"AsymptoticLaw({self.verdict}: {body})"


def _times_power(factor: float, mu: float, p: int) -> float:
    """``factor * mu**p`` as a float: ``+-inf`` past the float range instead of an ``OverflowError``."""
    try:
        return factor * mu ** p
    except OverflowError:
        sign = math.copysign(1.0, factor) * (-1.0 if (mu < 0 and p % 2) else 1.0)
        return sign * math.inf


def asymptotic_law(model: Model, *, zero_tol: float = 1e-14, limits: bool = True) -> AsymptoticLaw:
    """The learning/unlearning verdict at the lazy end of the critical manifold (theory page section 4).

    Parameters
    ----------
    model : Model
    zero_tol : float
        Coefficients below ``zero_tol`` times the largest ``|s_k|`` (``|c_k|``) count as zero.
    limits : bool
        Compute ``a_limit``, ``m_limit`` for learning and pinned verdicts (needs the equilibria;
        ``False`` leaves them NaN, for speed).

    Returns
    -------
    AsymptoticLaw
    """
    model = as_model(model)
    zero_tol = V.real(zero_tol, "zero_tol", lo=0.0)
    limits = V.flag(limits, "limits")
    s, c = np.asarray(model.s, dtype=float), np.asarray(model.c, dtype=float)
    smax = float(np.max(np.abs(s))) if s.size else 0.0
    cmax = float(np.max(np.abs(c))) if c.size else 0.0

    def sz(k: int) -> bool:
        return k >= len(s) or abs(s[k]) <= zero_tol * smax

    def cz(k: int) -> bool:
        return k >= len(c) or abs(c[k]) <= zero_tol * cmax

    nan = math.nan
    if sz(1) or cz(1):
        return AsymptoticLaw("undetermined", nan, None, None, None, nan, nan, (), model.lr_a,
                             reason="s_1 c_1 = 0: the lazy end a m -> c_1 / s_1 does not exist")
    mu = float(c[1] / s[1])
    terms: list[dict[str, Any]] = []
    for k in range(2, min(len(s), len(c))):
        if not (sz(k) or cz(k)):
            terms.append({"order": k, "kind": "cross", "power": k,
                          "coefficient": _times_power(-(k - 1) * float(s[k] * c[k]), mu, k)})
    for j in range(2, len(s)):
        if not sz(j):
            terms.append({"order": j, "kind": "self", "power": 2 * j - 1,
                          "coefficient": _times_power((j - 1) * float(s[j]) ** 2, mu, 2 * j)})
    terms.sort(key=lambda d: (d["power"], d["kind"]))
    if not sz(0):
        lim = lazy_end_limit(model) if limits else (nan, nan)
        return AsymptoticLaw("pinned", mu, 0, "pinned", 0, nan, nan, tuple(terms), model.lr_a, *lim,
                             reason=f"s_0 = {s[0]:.6g} != 0: the term -s_0 (a s_0 - c_0) holds a finite")
    for q in sorted({d["power"] for d in terms}):
        coefs = [d["coefficient"] for d in terms if d["power"] == q]
        at_q = [d for d in terms if d["power"] == q]
        if not all(math.isfinite(x) for x in coefs):
            signs = {math.copysign(1.0, x) for x in coefs if not math.isfinite(x)}
            if len(signs) > 1:
                return AsymptoticLaw("undetermined", mu, None, None, None, nan, nan, tuple(terms), model.lr_a,
                                     reason=f"the lazy-end terms of power {q} overflow a float with both signs")
            D = signs.pop() * math.inf
        else:
            D = math.fsum(coefs)
            if abs(D) <= 1e-12 * max(abs(x) for x in coefs):
                continue  # the terms of this power cancel: the next power decides
        kind = "+".join(sorted({d["kind"] for d in at_q}))
        order = min(d["order"] for d in at_q)
        if D > 0:
            return AsymptoticLaw("unlearning", mu, order, kind, q, 1.0 / (q + 1), D, tuple(terms), model.lr_a,
                                 reason=f"{kind} term of order {order}: da/dtau ~ {D:.6g} a^-{q} > 0")
        lim = lazy_end_limit(model) if limits else (nan, nan)
        return AsymptoticLaw("learning", mu, order, kind, q, nan, D, tuple(terms), model.lr_a, *lim,
                             reason=f"{kind} term of order {order}: da/dtau ~ {D:.6g} a^-{q} < 0")
    return AsymptoticLaw("undetermined", mu, None, None, None, nan, nan, tuple(terms), model.lr_a,
                         reason="every term at the lazy end vanishes: the slow flow there is neutral")


def lazy_end_branch(model: Model) -> Branch | None:
    """The interior branch next to ``m = 0`` along which ``a -> +inf`` (the lazy end for ``a > 0``)."""
    for br in manifold_structure(model).branches:
        if br.kind == "interior" and (br.m_lo == 0.0 or br.m_hi == 0.0) and br.a_hi == math.inf:
            return br
    return None


def lazy_end_limit(model: Model) -> tuple[float, float]:
    """``(a, m)`` of the stable equilibrium on the lazy-end branch (``a > 0``) with the largest ``a``, or NaN."""
    br = lazy_end_branch(model)
    if br is None:
        return math.nan, math.nan
    cands = [e for e in equilibria(model) if e.kind == "interior" and e.stable and br.m_lo < e.m < br.m_hi]
    if not cands:
        return math.nan, math.nan
    best = max(cands, key=lambda e: e.a)
    return best.a, best.m
