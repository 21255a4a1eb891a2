"""The initial law of the neurons: what SGD draws its network from, and what the particle limit's
particles represent.

Every neuron starts at ``(m_i, a_i)``. The second layer is

* ``"constant"``: ``a_i = a0`` (the identical neurons of the 2-D limit ODE);
* ``"normal"``: ``a_i ~ N(a0, a_sigma^2)``, independent;
* ``"signs"``: ``+a0`` for a fraction ``a_positive`` of the neurons, ``-a0`` for the others;

and the first layer is ``"fixed"`` (every ``w_i = m0 theta + sqrt(1 - m0^2) u_i`` with a random unit
``u_i`` orthogonal to the teacher) or ``"sphere"`` (``w_i`` uniform on the sphere of dimension ``d``,
so ``m_i = w_i . theta`` has the density ``(1 - m^2)^((d - 3)/2)`` up to a constant: mean 0,
variance ``1/d``). The two layers are independent.

The particle limit represents the law by weighted particles (:meth:`InitialLaw.particles`):
``"quadrature"`` gives deterministic nodes and weights (Gauss-Hermite nodes for a normal second
layer, the two signs exactly, Gauss-Jacobi nodes for the sphere; their tensor product when both
layers vary), ``"sample"`` independent draws with equal weights (the same law as SGD's, other
numbers). The parameters are those of :mod:`fastslow.params` (``init.a_dist``, ...).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from . import _validate as V
from .params import lookup

__all__ = ["InitialLaw", "A_DISTS", "M_DISTS", "DRAWS", "sgd_codes"]

A_DISTS: tuple[str, ...] = lookup("a_dist").choices or ()
M_DISTS: tuple[str, ...] = lookup("m_dist").choices or ()
DRAWS: tuple[str, ...] = lookup("draw").choices or ()


@dataclass(frozen=True)
class InitialLaw:
    """The law of the neurons' initial ``(m_i, a_i)``.

    Parameters
    ----------
    a0 : float
        The second layer's value (``constant``), mean (``normal``) or magnitude (``signs``).
    m0 : float
        The alignment of every neuron (``m_dist = "fixed"``; ``|m0| < 1``).
    a_dist : {"constant", "normal", "signs"}
    a_sigma : float
        The spread of a normal second layer.
    a_positive : float
        The fraction of neurons at ``+a0`` (``signs``).
    m_dist : {"fixed", "sphere"}
    d : int, optional
        The input dimension (required by ``m_dist = "sphere"``).
    """

    a0: float = 1.0
    m0: float = 0.0
    a_dist: str = "constant"
    a_sigma: float = 0.0
    a_positive: float = 0.5
    m_dist: str = "fixed"
    d: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("a0", "m0", "a_dist", "a_sigma", "a_positive", "m_dist"):
            set_(self, name, lookup(name).check(getattr(self, name), name))
        if self.d is not None:
            set_(self, "d", lookup("d").check(self.d, "d"))
        elif self.m_dist == "sphere":
            raise ValueError("d: m_dist = 'sphere' needs the input dimension d")

    @classmethod
    def of(cls, law: InitialLaw | None = None, **fields: Any) -> InitialLaw:
        """``law`` with ``fields`` replaced (a new law from ``fields`` when ``law`` is None)."""
        base = asdict(law) if law is not None else {}
        base.update({k: v for k, v in fields.items() if v is not None})
        return cls(**base)

    @property
    def identical(self) -> bool:
        """Every neuron starts at the same ``(m0, a0)``: the 2-D limit ODE describes the limit."""
        same_a = (self.a_dist == "constant" or (self.a_dist == "normal" and self.a_sigma == 0.0)
                  or (self.a_dist == "signs" and self.a_positive in (0.0, 1.0))
                  or (self.a0 == 0.0 and self.a_dist != "normal"))  # a normal law of mean 0 still spreads
        return same_a and self.m_dist == "fixed"

    @property
    def point(self) -> tuple[float, float]:
        """The ``(a0, m0)`` every neuron starts at, for an :attr:`identical` law (``-a0`` for a law of
        signs with no positive neuron); a ``ValueError`` for a heterogeneous one."""
        if not self.identical:
            raise ValueError(f"law: {self!r} is heterogeneous (its neurons do not share one (a0, m0))")
        a = -self.a0 if self.a_dist == "signs" and self.a_positive == 0.0 else self.a0
        return float(a), float(self.m0)

    def _dim(self) -> int:
        """The input dimension of a law on the sphere (``__post_init__`` requires it there)."""
        if self.d is None:
            raise ValueError("d: m_dist = 'sphere' needs the input dimension d")
        return self.d

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # -- the second and the first layer ----------------------------------------------------
    def _a_nodes(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.a_dist == "normal" and self.a_sigma > 0 and n > 1:
            x, w = _gauss_hermite(n)
            return self.a0 + self.a_sigma * x, w
        if self.a_dist == "signs" and 0.0 < self.a_positive < 1.0 and self.a0 != 0.0:
            return np.array([self.a0, -self.a0]), np.array([self.a_positive, 1.0 - self.a_positive])
        if self.a_dist == "signs" and self.a_positive == 0.0:
            return np.array([-self.a0]), np.ones(1)
        return np.array([self.a0]), np.ones(1)

    def _m_nodes(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.m_dist == "sphere" and n > 1:
            from scipy import special

            al = (self._dim() - 3) / 2.0
            x, w = special.roots_jacobi(n, al, al)
            return x, w / w.sum()
        if self.m_dist == "sphere":
            return np.zeros(1), np.ones(1)
        return np.array([self.m0]), np.ones(1)

    def particles(self, n: int, *, draw: str = "quadrature", seed: int = 0) -> tuple[np.ndarray, np.ndarray,
                                                                                      np.ndarray]:
        """Particles representing the law: ``(a0, m0, weights)``, each of length at most ``n``.

        ``draw = "quadrature"``: deterministic nodes and weights, exact for the laws of finitely
        many values (constant, signs: one or two particles) and of Gauss type otherwise (``n``
        Gauss-Hermite nodes for a normal ``a``; ``n`` Gauss-Jacobi nodes with ``alpha = beta =
        (d - 3)/2`` for ``m`` on the sphere; a tensor product of about ``sqrt(n)`` nodes each when both
        vary). ``draw = "sample"``: ``n`` independent draws (the signs by exact counts, as SGD
        assigns them), equal weights, from ``numpy.random.default_rng(seed)``.
        """
        n = lookup("n_particles").check(n, "n")
        V.choice(draw, "draw", DRAWS)
        seed = V.integer(seed, "seed", lo=0, hi=2**63 - 1)
        if draw == "sample":
            a, m = self.sample(n, seed=seed)
            return a, m, np.full(n, 1.0 / n)
        a_varies = len(self._a_nodes(2)[0]) > 1
        m_varies = self.m_dist == "sphere"
        if a_varies and m_varies:
            if self.a_dist == "signs":
                na, nm = 2, max(1, n // 2)
            else:
                na = nm = max(1, math.isqrt(n))
        else:
            na = nm = n
        a, wa = self._a_nodes(na)
        m, wm = self._m_nodes(nm)
        A, M = np.meshgrid(a, m, indexing="ij")
        W = np.outer(wa, wm)
        keep = W.ravel() > 0
        w = W.ravel()[keep]
        return A.ravel()[keep].copy(), M.ravel()[keep].copy(), w / w.sum()

    def sample(self, n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` independent draws ``(a_i, m_i)`` from the law (the signs by exact counts: the
        first ``round(a_positive n)`` are positive, as in SGD)."""
        rng = np.random.default_rng(seed)
        if self.a_dist == "normal":
            a = self.a0 + self.a_sigma * rng.standard_normal(n)
        elif self.a_dist == "signs":
            plus = int(round(self.a_positive * n))
            a = np.where(np.arange(n) < plus, self.a0, -self.a0).astype(float)
        else:
            a = np.full(n, self.a0)
        if self.m_dist == "sphere":
            # w . theta for w uniform on the sphere: z1 / sqrt(z1^2 + chi2(d - 1))
            z1 = rng.standard_normal(n)
            d = self._dim()
            rest = rng.chisquare(d - 1, n) if d > 1 else np.zeros(n)
            m = z1 / np.sqrt(z1 * z1 + rest)
        else:
            m = np.full(n, self.m0)
        return a, m

    def __repr__(self) -> str:
        if self.a_dist == "normal":
            a = f"a ~ N({self.a0:g}, {self.a_sigma:g}^2)"
        elif self.a_dist == "signs":
            a = f"a = +-{self.a0:g} ({self.a_positive:g} positive)"
        else:
            a = f"a = {self.a0:g}"
        m = f"m = {self.m0:g}" if self.m_dist == "fixed" else f"w uniform on S^{self._dim() - 1}"
        return f"InitialLaw({a}; {m})"


def _gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to 1) of the ``n``-point Gauss rule for ``N(0, 1)``."""
    from scipy import special

    x, w = special.roots_hermitenorm(n)
    return x, w / w.sum()


def sgd_codes(law: InitialLaw) -> dict[str, Any]:
    """The C++ trainer's fields for ``law`` (``TrainerConfig(a_dist=..., ...)``)."""
    return {"a0": law.a0, "m0": law.m0, "a_dist": A_DISTS.index(law.a_dist), "a_sigma": law.a_sigma,
            "a_positive": law.a_positive, "m_dist": M_DISTS.index(law.m_dist)}
