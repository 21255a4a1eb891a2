"""The model: activation and target as Hermite series, learning rates, and the population loss.

Coefficients are in the normalised probabilists' Hermite basis ``h_k = He_k / sqrt(k!)``, so that
``E[h_j(z) h_k(z)] = delta_jk`` for ``z ~ N(0, 1)``. The loss ``L(m, a)`` and its derivatives are
evaluated by the C++ core (``fastslow._core.LimitModel``).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core
from ._validate import real_array
from .params import lookup

__all__ = ["Model", "HermiteSeries", "hermite_series", "ACTIVATIONS", "DEFAULT_MAX_ORDER", "DEFAULT_TAIL_TOL"]

#: Named activations/targets. ``erf`` is ``erf(z / sqrt 2)``, ``gelu`` the exact ``z Phi(z)``,
#: ``quadratic`` is ``z**2``.
ACTIVATIONS: tuple[str, ...] = tuple(_core.hermite.activation_names())
#: Highest Hermite order kept. Smooth activations are truncated far below it (tanh needs 87 for a
#: squared tail below 1e-12); non-smooth ones such as ReLU, whose coefficients decay only as a
#: power of k (ReLU: s_k^2 ~ k^(-5/2)), are capped here and report their tail.
DEFAULT_MAX_ORDER = 128
#: Truncate a series where the neglected squared tail sum_{k > K} s_k^2 falls below this.
DEFAULT_TAIL_TOL = 1e-12
#: Quadrature round-off: coefficients smaller than this in magnitude are set to zero exactly
#: (so that, e.g., tanh has s_0 = 0 and GELU s_3 = 0, as they must).
ZERO_TOL = 1e-14
_NONSMOOTH = {"relu"}

Spec = str | Mapping[Any, Any] | Sequence[float] | Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class HermiteSeries:
    """A function as a truncated normalised Hermite series.

    Attributes
    ----------
    coefficients : ndarray
        ``coefficients[k] = E[f(z) h_k(z)]`` for ``k = 0 .. order``.
    order : int
        Highest order kept.
    tail : float
        Neglected squared tail ``E[f^2] - sum_k coefficients[k]^2`` (0 for polynomials).
    source : str
        How the coefficients were obtained: ``"closed form"``, ``"quadrature (N nodes)"``,
        ``"polynomial"``.
    quadrature_error : float
        Estimated error of the coefficients (difference between successive quadrature rules;
        0 for closed forms and polynomials).
    description : str
        A readable name of the function.
    """

    coefficients: np.ndarray
    order: int
    tail: float
    source: str
    quadrature_error: float
    description: str

    def __repr__(self) -> str:
        c = self.coefficients
        big = np.argsort(-np.abs(c))[:3]
        lead = ", ".join(f"s{int(k)} = {c[k]:.4g}" for k in sorted(big) if c[k] != 0)
        return (f"HermiteSeries({self.description!r}: order {self.order}, tail {self.tail:.1e}, {self.source}; "
                f"largest: {lead or 'all zero'})")


def _as_float_array(values: Any, field: str) -> np.ndarray:
    arr = real_array(values, field)  # a ValueError naming the field for complex or non-numeric input
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{field}: must be a non-empty 1-D list of coefficients, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{field}: coefficient {int(bad[0])} is {arr[bad[0]]}; all coefficients must be finite")
    return arr


def _truncate(coef: np.ndarray, second_moment: float, tol: float) -> tuple[np.ndarray, float]:
    """Cut the series at the smallest order whose neglected squared tail is below ``tol``."""
    sq = coef**2
    residual = max(second_moment - float(np.sum(sq)), 0.0)  # beyond the computed orders
    tails = np.cumsum(sq[::-1])[::-1]  # tails[k] = sum_{j >= k} sq[j]
    tail_after = np.append(tails[1:], 0.0) + residual  # neglected if we keep 0..k
    ok = np.flatnonzero(tail_after <= tol)
    K = int(ok[0]) if ok.size else coef.size - 1
    return coef[: K + 1].copy(), float(tail_after[K])


def _evaluate(func: Callable[[Any], Any], x: np.ndarray, field: str) -> np.ndarray:
    """``func`` at the nodes ``x``, vectorised if it can be, else point by point; complex values are
    refused (casting would drop their imaginary parts with only a warning)."""
    try:
        raw = np.asarray(func(x))
        if raw.shape != x.shape or raw.dtype.kind not in "fiub":
            raise ValueError("not a real array of the nodes' shape")
        vals = raw.astype(float)
    except Exception:
        try:
            out = []
            for xi in x:
                v = func(float(xi))
                if isinstance(v, (complex, np.complexfloating)) and v.imag != 0:
                    raise TypeError(f"{field}: the callable returned a complex value ({v!r} at z = {xi:.6g}); "
                                    "activations and targets must be real")
                out.append(float(np.real(v)))
            vals = np.array(out)
        except TypeError as exc:
            if str(exc).startswith(f"{field}:"):
                raise
            raise ValueError(f"{field}: the callable could not be evaluated at real points ({exc!r})") from None
        except Exception as exc:
            raise ValueError(f"{field}: the callable could not be evaluated at real points ({exc!r})") from None
    return vals


def _quadrature(func: Callable[[np.ndarray], Any], max_order: int, field: str) -> tuple[np.ndarray, float, float, int]:
    """Coefficients by Gauss-Hermite quadrature, doubling the rule until two agree."""
    prev = None
    err = math.inf
    for n in (256, 512, 1024, 2048, 4096):
        x, w = _core.hermite.gauss_hermite(n)
        vals = _evaluate(func, x, field)
        live = w > 0
        if not np.all(np.isfinite(vals[live])):
            i = int(np.flatnonzero(live & ~np.isfinite(vals))[0])
            raise ValueError(f"{field}: the function is not finite at z = {x[i]:.6g}")
        coef = _core.hermite.project(vals, x, w, max_order)
        m2 = float(np.dot(w[live], vals[live] ** 2))
        if prev is not None:
            err = float(np.max(np.abs(coef - prev)))
            if err <= 1e-14 * max(1.0, math.sqrt(m2)):
                return coef, m2, err, n
        prev = coef
    return coef, m2, err, n


@functools.lru_cache(maxsize=128)
def _named_series(name: str, field: str, centred: bool, max_order: int, tol: float) -> HermiteSeries:
    return _hermite_series(name, field=field, centred=centred, max_order=max_order, tol=tol)


def hermite_series(spec: Spec, *, field: str = "activation", centred: bool = False,
                   max_order: int = DEFAULT_MAX_ORDER, tol: float = DEFAULT_TAIL_TOL) -> HermiteSeries:
    """Hermite coefficients of a function given by name, coefficients or callable.

    Parameters
    ----------
    spec : str, dict, sequence or callable
        A name from :data:`ACTIVATIONS`; ``{"hermite": [c0, c1, ...]}`` or a plain sequence for the
        polynomial with those coefficients; a mapping ``{k: c_k}`` (keys are orders, ints or digit
        strings); or a vectorised callable ``f(z)`` (coefficients by quadrature).
    field : str
        Name used in error messages.
    centred : bool
        Remove the constant coefficient (``c_0 = 0``).
    max_order : int
        Highest order computed (non-smooth functions are capped here and report their tail).
    tol : float
        Truncate where the neglected squared tail falls below ``tol``.
    """
    if isinstance(spec, str) and isinstance(max_order, (int, np.integer)) and isinstance(tol, (int, float)):
        return _named_series(spec.strip().lower(), field, bool(centred), int(max_order), float(tol))
    return _hermite_series(spec, field=field, centred=centred, max_order=max_order, tol=tol)


def _hermite_series(spec: Spec, *, field: str, centred: bool, max_order: int, tol: float) -> HermiteSeries:
    max_order = lookup("max_order").check(max_order, "max_order")
    tol = lookup("tol").check(tol, "tol")
    qerr = 0.0
    if isinstance(spec, str):
        name = spec.strip().lower()
        if name not in ACTIVATIONS:
            raise ValueError(f"{field}: unknown name {spec!r}; allowed: {', '.join(ACTIVATIONS)}, "
                             "a dict of Hermite coefficients, or a callable")
        closed = _core.hermite.closed_form_coefficients(name, max_order)
        if closed is not None:
            m2_closed = _core.hermite.closed_form_second_moment(name)
            if m2_closed is None:  # the core has both for the same names
                raise RuntimeError(f"{field}: {name!r} has closed-form coefficients but no closed-form second moment")
            m2, coef, source = m2_closed, closed, "closed form"
        else:
            coef, m2, qerr, n = _quadrature(lambda z: _core.hermite.activation(name, z), max_order, field)
            coef = np.where(np.abs(coef) < ZERO_TOL, 0.0, coef)
            source = f"quadrature ({n} nodes)"
        description = name
    elif callable(spec):
        coef, m2, qerr, n = _quadrature(spec, max_order, field)
        coef = np.where(np.abs(coef) < ZERO_TOL, 0.0, coef)
        source = f"quadrature ({n} nodes)"
        description = getattr(spec, "__name__", "callable")
        if qerr > 1e-12:
            warnings.warn(f"{field}: quadrature converged only to {qerr:.1e} (a non-smooth function?); "
                          "coefficients carry that error", RuntimeWarning, stacklevel=3)
    elif isinstance(spec, Mapping):
        if set(spec.keys()) == {"hermite"}:
            coef = _as_float_array(spec["hermite"], f"{field}.hermite")
        else:
            orders = {}
            for key, value in spec.items():
                try:
                    k = int(key)
                except (TypeError, ValueError):
                    raise ValueError(f"{field}: keys must be Hermite orders (integers >= 0) or 'hermite', got {key!r}") from None
                if k < 0 or k > 1000 or str(k) != str(key).strip():
                    raise ValueError(f"{field}: Hermite order must be an integer in [0, 1000], got {key!r}")
                orders[k] = value
            if not orders:
                raise ValueError(f"{field}: the mapping of Hermite coefficients is empty")
            coef = np.zeros(max(orders) + 1)
            for k, value in orders.items():
                coef[k] = _as_float_array([value], f"{field}[{k}]")[0]
        m2 = float(np.sum(coef**2))
        source, description = "polynomial", "hermite"
    elif isinstance(spec, (Sequence, np.ndarray)):
        coef = _as_float_array(spec, field)
        m2 = float(np.sum(coef**2))
        source, description = "polynomial", "hermite"
    else:
        raise TypeError(f"{field}: expected a name ({', '.join(ACTIVATIONS)}), a dict of Hermite "
                        f"coefficients, a sequence of them or a callable, got {type(spec).__name__}")
    coef = np.array(coef, dtype=float)
    if centred:
        m2 -= coef[0] ** 2
        coef[0] = 0.0
        description += " (centred)"
    if source == "polynomial":
        nz = np.flatnonzero(coef)
        coef = coef[: (int(nz[-1]) + 1 if nz.size else 1)]
        tail = 0.0
    else:
        coef, tail = _truncate(coef, m2, tol)
        if tail > tol and description.split(" ")[0] not in _NONSMOOTH:
            warnings.warn(f"{field}: neglected squared tail {tail:.2e} exceeds tol={tol:g} at max_order={max_order}",
                          RuntimeWarning, stacklevel=3)
    coef.setflags(write=False)
    return HermiteSeries(coef, coef.size - 1, tail, source, qerr, description)


def as_model(x: Any, name: str = "model") -> Model:
    """``x`` if it is a :class:`Model`, else a ``TypeError`` naming ``name`` (the one check of the
    model argument that every entry point uses)."""
    if not isinstance(x, Model):
        raise TypeError(f"{name}: expected a fastslow.Model, got {type(x).__name__}")
    return x


class Model:
    """A two-layer network's limit model: activation, target, learning rates and label noise.

    Parameters
    ----------
    activation : str, dict, sequence or callable
        The student's activation ``sigma``: a name (``"tanh"``, ``"erf"`` = erf(z/sqrt 2),
        ``"relu"``, ``"gelu"`` = z Phi(z), ``"sigmoid"``, ``"quadratic"`` = z^2, ``"linear"``),
        ``{"hermite": [s0, s1, ...]}``, or a callable (coefficients by Gauss-Hermite quadrature).
    target : str, dict, sequence or callable
        The target ``g``: ``{k: c_k}`` (e.g. ``{1: 1.0, 3: 0.3}``), ``{"hermite": [...]}``, a name or
        a callable, the same way.
    lr_w, lr_a : float
        Learning rates of the first and second layer (> 0). ``eps = lr_a / lr_w``.
    noise : float
        Variance of the label noise (>= 0); adds ``noise / 2`` to the loss.
    centred : bool
        Remove the activation's constant Hermite coefficient (``s_0 = 0``).
    max_order, tol : int, float
        Hermite truncation: the highest order and the squared-tail tolerance.

    Attributes
    ----------
    s, c : ndarray
        Activation and target coefficients in the basis ``h_k = He_k / sqrt(k!)``.
    activation_series, target_series : HermiteSeries
        Their orders, tails and how they were computed.
    """

    def __init__(self, activation: Spec = "tanh", target: Spec | None = None, lr_w: float = 1.0, lr_a: float = 0.01,
                 noise: float = 0.0, *, centred: bool = False, max_order: int = DEFAULT_MAX_ORDER,
                 tol: float = DEFAULT_TAIL_TOL) -> None:
        if target is None:
            target = {1: 1.0}
        self.lr_w = lookup("lr_w").check(lr_w, "lr_w")
        self.lr_a = lookup("lr_a").check(lr_a, "lr_a")
        self.noise = lookup("noise").check(noise, "noise")
        self.centred = lookup("centred").check(centred, "centred")
        max_order = lookup("max_order").check(max_order, "max_order")
        tol = lookup("tol").check(tol, "tol")
        self.activation_series = hermite_series(activation, field="activation", centred=self.centred,
                                                max_order=max_order, tol=tol)
        self.target_series = hermite_series(target, field="target", max_order=max_order, tol=tol)
        self._spec: dict[str, Any] = {"activation": activation, "target": target, "max_order": max_order, "tol": tol}
        extra = 0.5 * self.target_series.tail + 0.5 * self.noise
        self._core = _core.model.LimitModel(self.s, self.c, self.lr_w, self.lr_a, extra)

    # -- coefficients -------------------------------------------------------------------------
    @property
    def s(self) -> np.ndarray:
        """Activation coefficients ``s_k``."""
        return self.activation_series.coefficients

    @property
    def c(self) -> np.ndarray:
        """Target coefficients ``c_k``."""
        return self.target_series.coefficients

    @property
    def eps(self) -> float:
        """Time-scale ratio ``lr_a / lr_w`` (small: ``m`` fast, ``a`` slow)."""
        return self.lr_a / self.lr_w

    @property
    def core(self) -> _core.model.LimitModel:
        """The C++ model (for the integrator)."""
        return self._core

    def simulator_spec(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """How the SGD simulator evaluates the activation and the target, as plain data:
        ``{"kind": "named", "name", "offset"}`` (a named function, evaluated exactly, minus ``offset``:
        ``s_0`` for a centred activation) or ``{"kind": "hermite", "coefficients"}`` (coefficient
        lists and callables, through their Hermite series)."""
        act = self._spec["activation"]
        if isinstance(act, str):
            name = act.strip().lower()
            offset = float(hermite_series(name, max_order=self._spec["max_order"]).coefficients[0]) if self.centred else 0.0
            act_spec = {"kind": "named", "name": name, "offset": offset}
        else:
            act_spec = {"kind": "hermite", "coefficients": np.asarray(self.s, dtype=float)}
        tgt = self._spec["target"]
        if isinstance(tgt, str):
            tgt_spec = {"kind": "named", "name": tgt.strip().lower(), "offset": 0.0}
        else:
            tgt_spec = {"kind": "hermite", "coefficients": np.asarray(self.c, dtype=float)}
        return act_spec, tgt_spec

    def simulator_functions(self) -> tuple[Any, Any]:
        """The activation and the target as the C++ simulator's ``Function`` objects (see
        :meth:`simulator_spec`)."""
        def make(spec: dict[str, Any], field: str) -> Any:
            if spec["kind"] == "named":
                return _core.sgd.Function.named(spec["name"], spec["offset"])
            return _core.sgd.Function.hermite(spec["coefficients"], field)

        act, tgt = self.simulator_spec()
        return make(act, "activation"), make(tgt, "target")

    def replace(self, **changes: Any) -> Model:
        """A copy with some constructor arguments changed (``lr_a=...``, ``target=...``)."""
        kw = dict(activation=self._spec["activation"], target=self._spec["target"], lr_w=self.lr_w,
                  lr_a=self.lr_a, noise=self.noise, centred=self.centred, max_order=self._spec["max_order"],
                  tol=self._spec["tol"])
        kw.update(changes)
        return Model(**kw)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data description (coefficients included); a new dict each call."""
        cached = self.__dict__.get("_as_dict")
        if cached is None:  # a Model does not change after construction: describe it once
            cached = self.__dict__["_as_dict"] = self._describe()
        return {k: (list(v) if isinstance(v, list) else v) for k, v in cached.items()}

    def _describe(self) -> dict[str, Any]:
        return {
            "activation": self.activation_series.description,
            "target": self.target_series.description,
            "s": self.s.tolist(), "c": self.c.tolist(),
            "activation_order": self.activation_series.order, "activation_tail": self.activation_series.tail,
            "target_order": self.target_series.order, "target_tail": self.target_series.tail,
            "lr_w": self.lr_w, "lr_a": self.lr_a, "noise": self.noise, "centred": self.centred,
        }

    def __repr__(self) -> str:
        return (f"Model(activation={self.activation_series.description!r} [order {self.activation_series.order}, "
                f"tail {self.activation_series.tail:.1e}], target={self.target_series.description!r} "
                f"[order {self.target_series.order}], lr_w={self.lr_w:g}, lr_a={self.lr_a:g}, noise={self.noise:g})")

    # -- the loss ---------------------------------------------------------------------------
    def _derivs(self, m: Any, a: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        m_arr, a_arr = np.broadcast_arrays(real_array(m, "m"), real_array(a, "a"))
        if not np.all(np.isfinite(m_arr)):
            raise ValueError("m: must be finite")
        if np.any(np.abs(m_arr) > 1):
            raise ValueError("m: the alignment must lie in [-1, 1]")
        if not np.all(np.isfinite(a_arr)):
            raise ValueError("a: must be finite")
        shape = m_arr.shape
        d = self._core.derivs(np.ascontiguousarray(m_arr.ravel()), np.ascontiguousarray(a_arr.ravel()))
        if not np.all(np.isfinite(d)):  # |a| so large that L or a derivative overflows a float
            bad = int(np.flatnonzero(~np.all(np.isfinite(d), axis=0))[0])
            raise ValueError(f"a: |a| = {abs(float(a_arr.ravel()[bad])):.3g} is too large: the loss or its "
                             "derivatives overflow a float there (L grows as a^2)")
        return d, shape

    def loss(self, m: Any, a: Any) -> np.ndarray:
        """Population loss ``L(m, a)`` (broadcast over ``m`` and ``a``)."""
        d, shape = self._derivs(m, a)
        return d[0].reshape(shape)

    def grad(self, m: Any, a: Any) -> np.ndarray:
        """Gradient ``(dL/dm, dL/da)``, shape ``broadcast(m, a).shape + (2,)``."""
        d, shape = self._derivs(m, a)
        return np.stack([d[1], d[2]], axis=-1).reshape(shape + (2,))

    def hessian(self, m: Any, a: Any) -> np.ndarray:
        """Hessian ``[[L_mm, L_ma], [L_ma, L_aa]]``, shape ``broadcast(m, a).shape + (2, 2)``."""
        d, shape = self._derivs(m, a)
        h = np.stack([np.stack([d[3], d[4]], -1), np.stack([d[4], d[5]], -1)], -2)
        return h.reshape(shape + (2, 2))
