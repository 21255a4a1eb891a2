"""The one registry of named parameters.

Every parameter a user can set, in a config file, a sweep axis, a phase-diagram axis or a keyword
argument, is defined here exactly once: its config path (``init.a0``), short name and aliases
(``a0``; ``c3`` is ``model.target.3``), type and allowed range, default, a one-line description,
an axis label with units, whether it can be a sweep axis, and how it applies to a
:class:`~fastslow.Model`. The config (:mod:`fastslow.config`), sweeps, the phase diagram and the
figures all read it; :meth:`Param.check` validates a value (``TypeError`` for a wrong type,
``ValueError`` for a bad value, both naming the field and the allowed range).

>>> from fastslow import params
>>> params.lookup("c3").path
'model.target.3'
>>> params.lookup("a0").label
'a0, initial second-layer weight'
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import _validate as V

__all__ = ["Param", "PARAMS", "lookup", "label", "suggest", "config_params", "model_changes", "MAX_HERMITE_ORDER"]

#: Highest Hermite order a coefficient parameter (``c<k>``, ``s<k>``) may name.
MAX_HERMITE_ORDER = 1000

_KIND_TEXT = {"float": "a finite number", "int": "an integer", "bool": "true or false", "str": "a string",
              "ints": "a list of integers", "floats": "a list of numbers", "strs": "a list of strings",
              "activation": "a name or a list of Hermite coefficients", "target": "a name or a table {k = c_k}",
              "range": "a list [start, stop]", "param": "a parameter name"}


@dataclass(frozen=True)
class Param:
    """One named parameter.

    Attributes
    ----------
    path : str
        Its config path, ``section.field`` (``"init.a0"``, ``"model.target.3"``).
    kind : str
        ``"float"``, ``"int"``, ``"bool"``, ``"str"``, ``"ints"``, ``"floats"``, ``"strs"``, ``"range"``,
        ``"activation"``, ``"target"`` or ``"param"`` (the name of another parameter).
    default : object
        The default value (``None`` for parameters derived from others, such as ``eps``).
    desc : str
        One line for ``fastslow config --example`` and the documentation.
    lo, hi, lo_open, hi_open : number or None, bool
        The allowed range (of each element, for list kinds).
    choices : tuple of str or None
        The allowed strings.
    short : str or None
        The short name (``"a0"``); ``aliases`` are further accepted names.
    label : str
        An axis label, with units where the quantity has any.
    axis : str or None
        None when the parameter can be a sweep axis, else the reason it cannot.
    in_config : bool
        A field of the TOML config (False for ``eps``, ``seed``, the Hermite coefficients and the
        solver settings that only keyword arguments take).
    series, order : str or None, int or None
        For a Hermite coefficient: ``"target"`` or ``"activation"`` and its order.
    """

    path: str
    kind: str
    default: Any
    desc: str
    lo: Any = None
    hi: Any = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[str, ...] | None = None
    short: str | None = None
    aliases: tuple[str, ...] = ()
    label: str = ""
    axis: str | None = None
    in_config: bool = True
    series: str | None = None
    order: int | None = None

    @property
    def name(self) -> str:
        """The short name if it has one, else the path."""
        return self.short or self.path

    @property
    def section(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def field(self) -> str:
        """The last part of the path (the attribute of its config section)."""
        return self.path.rsplit(".", 1)[-1]

    @property
    def applies_to(self) -> str:
        """``"model"`` (a new :class:`~fastslow.Model`), ``"init"`` (the initial condition) or the
        section whose setting it is (``"ode"``, ``"sgd"``, ``"analysis"``, ``"output"``)."""
        return self.section

    def allowed(self) -> str:
        """What the parameter accepts, in words (``"a finite number > 0"``)."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return _KIND_TEXT[self.kind] + V.allowed(self.lo, self.hi, self.lo_open, self.hi_open)

    def check(self, value: Any, field: str | None = None) -> Any:
        """``value`` validated and normalised (floats as ``float``, lists as lists).

        Raises ``TypeError`` for a value of the wrong type and ``ValueError`` for one out of range;
        the message names ``field`` (default: the path) and what is allowed.
        """
        f = field or self.path
        k = self.kind
        if k == "float":
            return V.real(value, f, lo=self.lo, hi=self.hi, lo_open=self.lo_open, hi_open=self.hi_open)
        if k == "int":
            return V.integer(value, f, lo=self.lo, hi=self.hi)
        if k == "bool":
            return V.flag(value, f)
        if k == "str":
            if self.choices:
                return V.choice(value, f, self.choices)
            if not isinstance(value, str):
                raise TypeError(f"{f}: must be a string, got {V.show(value)}")
            if "\x00" in value:
                raise ValueError(f"{f}: must not contain a NUL character")
            return value
        if k == "param":
            if not isinstance(value, str):
                raise TypeError(f"{f}: must be a parameter name, got {V.show(value)}")
            lookup(value, field=f)
            return value
        if k in ("ints", "floats", "strs", "range"):
            if not isinstance(value, (list, tuple)):
                raise TypeError(f"{f}: must be {self.allowed()}, got {V.show(value)}")
            if not value:
                raise ValueError(f"{f}: must be a non-empty list")
            sub = Param(self.path, {"ints": "int", "floats": "float", "strs": "str", "range": "float"}[k], None,
                        self.desc, self.lo, self.hi, self.lo_open, self.hi_open, self.choices)
            out = [sub.check(v, f"{f}[{i}]") for i, v in enumerate(value)]
            if k == "range" and (len(out) != 2 or not out[0] < out[1]):
                raise ValueError(f"{f}: must be [start, stop] with start < stop, got {list(value)!r}")
            if k == "ints" and len(set(out)) != len(out):
                raise ValueError(f"{f}: must hold distinct values, got {list(value)!r}")
            return out
        if k == "activation":
            if isinstance(value, str):
                return value
            if isinstance(value, (list, tuple)) and value:
                return [V.real(v, f"{f}[{i}]", lo=-1e6, hi=1e6) for i, v in enumerate(value)]
            raise TypeError(f"{f}: must be {self.allowed()}, got {V.show(value)}")
        if k == "target":
            if isinstance(value, str):
                return value
            if isinstance(value, Mapping) and value:
                out_t: dict[int, float] = {}
                for key, v in value.items():
                    order = _order_key(key, f)
                    out_t[order] = V.real(v, f"{f}.{key}", lo=-1e6, hi=1e6)
                return out_t
            raise TypeError(f"{f}: must be {self.allowed()}, got {V.show(value)}")
        raise AssertionError(k)  # pragma: no cover


def _order_key(key: Any, field: str) -> int:
    """A Hermite order given as an int or a string of ASCII digits (TOML keys are strings)."""
    if isinstance(key, (bool,)) or not isinstance(key, (int, str)):
        raise TypeError(f"{field}: a Hermite order must be a non-negative integer, got {V.show(key)}")
    if isinstance(key, str):
        if not re.fullmatch(r"[0-9]{1,4}", key):
            raise ValueError(f"{field}.{key}: a Hermite order must be a non-negative integer "
                             f"(ASCII digits, such as 1 or 3), got {key!r}")
        key = int(key)
    if not 0 <= key <= MAX_HERMITE_ORDER:
        raise ValueError(f"{field}: a Hermite order must be an integer from 0 to {MAX_HERMITE_ORDER}, got {key}")
    return int(key)


_NOT_AXIS_LH = "a setting of the long-horizon study (a run, not a sweep task)"
_NOT_AXIS_T = "the trajectories share the time coordinate t; sweep over analysis.classify_t_max or run several sweeps"

PARAMS: dict[str, Param] = {p.path: p for p in [
    # -- the model ----------------------------------------------------------------------------
    Param("model.activation", "activation", "tanh", "student activation: tanh, erf, relu, gelu, sigmoid, quadratic, "
          "linear, or Hermite coefficients [s0, s1, ...]", short="activation", label="activation"),
    Param("model.centred", "bool", False, "remove the activation's constant Hermite coefficient s_0", short="centred",
          label="centred activation"),
    Param("model.target", "target", {1: 1.0, 3: 0.3}, "target: Hermite coefficients as a table {1 = 1.0, 3 = 0.3}, "
          "or a name", axis="sweep over single coefficients, c<k> (model.target.<k>)"),
    Param("model.lr_w", "float", 1.0, "first-layer learning rate", lo=0.0, lo_open=True, hi=1e6, short="lr_w",
          label="lr_w, first-layer learning rate"),
    Param("model.lr_a", "float", 0.01, "second-layer learning rate (eps = lr_a / lr_w)", lo=0.0, lo_open=True,
          hi=1e6, short="lr_a", label="lr_a, second-layer learning rate"),
    Param("model.noise", "float", 0.0, "label-noise variance", lo=0.0, hi=1e6, short="noise",
          label="label-noise variance"),
    Param("model.eps", "float", None, "time-scale ratio lr_a / lr_w (sets lr_a = eps lr_w)", lo=0.0, lo_open=True,
          hi=1e6, short="eps", label="eps = lr_a / lr_w", in_config=False),
    Param("model.max_order", "int", 128, "highest Hermite order computed", lo=1, hi=MAX_HERMITE_ORDER,
          short="max_order", in_config=False, axis="a truncation setting, not a parameter of the model"),
    Param("model.tol", "float", 1e-12, "truncate a series where its neglected squared tail falls below this",
          lo=0.0, lo_open=True, hi=1.0, short="tol", in_config=False,
          axis="a truncation setting, not a parameter of the model"),
    # -- the initial condition -----------------------------------------------------------------
    Param("init.a0", "float", 1.0, "initial second-layer weight", lo=-1e6, hi=1e6, short="a0",
          label="a0, initial second-layer weight"),
    Param("init.m0", "float", 0.0, "initial alignment with the teacher", lo=-1.0, hi=1.0, lo_open=True,
          hi_open=True, short="m0", label="m0, initial alignment"),
    Param("init.a_dist", "str", "constant", "law of the second layer: constant (a_i = a0), normal (a_i ~ "
          "N(a0, a_sigma^2)) or signs (+a0 for a fraction a_positive of the neurons, -a0 for the others)",
          choices=("constant", "normal", "signs"), short="a_dist", label="law of the second layer"),
    Param("init.a_sigma", "float", 0.0, "spread of a normal second layer (a_dist = normal)", lo=0.0, hi=1e6,
          short="a_sigma", label="a_sigma, spread of the initial second layer"),
    Param("init.a_positive", "float", 0.5, "fraction of neurons at +a0 (a_dist = signs)", lo=0.0, hi=1.0,
          short="a_positive", label="fraction of positive second-layer weights"),
    Param("init.m_dist", "str", "fixed", "law of the first layer: fixed (every w_i at alignment m0) or sphere "
          "(w_i uniform on the sphere of dimension sgd.d; m0 ignored)", choices=("fixed", "sphere"),
          short="m_dist", label="law of the first layer"),
    # -- the particle limit --------------------------------------------------------------------
    Param("particles.n", "int", 64, "particles representing the initial law in the particle limit (at most; "
          "a law of two signs needs two)", lo=1, hi=10_000_000, short="n_particles",
          label="particles of the particle limit"),
    Param("particles.draw", "str", "quadrature", "how particles represent the law: quadrature (Gauss nodes "
          "and weights) or sample (independent draws, equal weights)", choices=("quadrature", "sample"),
          short="draw", label="particle draw"),
    Param("particles.seed", "int", 0, "seed of the draws (particles.draw = sample)", lo=0, hi=2**63 - 1,
          label="particle seed"),
    # -- the limit ODE -------------------------------------------------------------------------
    Param("ode.t_max", "float", 1e7, "horizon of the limit ODE (ODE time)", lo=0.0, lo_open=True, hi=1e15,
          short="t_max", label="t_max (ODE time)", axis=_NOT_AXIS_T),
    Param("ode.points", "int", 200, "log-spaced save points", lo=2, hi=100_000, axis=_NOT_AXIS_T),
    Param("ode.rtol", "float", 1e-8, "relative tolerance", lo=1e-14, hi=0.1, short="rtol", label="rtol"),
    Param("ode.atol", "float", 1e-10, "absolute tolerance", lo=0.0, lo_open=True, hi=1.0, short="atol",
          label="atol"),
    Param("ode.max_steps", "int", 1_000_000, "give up after this many accepted steps", lo=1, hi=2**62,
          short="max_steps", in_config=False, axis="a solver limit"),
    Param("ode.first_step", "float", 0.0, "initial step (0: automatic)", lo=0.0, hi=1e15, short="first_step",
          in_config=False, axis="a solver setting"),
    Param("ode.max_step", "float", math.inf, "largest step", lo=0.0, lo_open=True, short="max_step",
          in_config=False, axis="a solver setting"),
    Param("ode.half_fraction", "float", 0.5, "the half-life event fires when m falls to this fraction of its peak",
          lo=0.0, hi=1.0, lo_open=True, hi_open=True, short="half_fraction", in_config=False,
          axis="a setting of the event"),
    # -- SGD -----------------------------------------------------------------------------------
    Param("sgd.enabled", "bool", True, "train the finite network by large-batch SGD",
          axis="what runs is set by compute"),
    Param("sgd.d", "int", 256, "input dimension", lo=2, hi=2**31 - 1, short="d", label="d, input dimension"),
    Param("sgd.n", "int", 256, "width (neurons)", lo=1, hi=2**31 - 1, short="n", label="n, width (neurons)"),
    Param("sgd.batch", "int", 2048, "batch size", lo=1, hi=2**31 - 1, short="batch", aliases=("B",),
          label="B, batch size"),
    Param("sgd.dt", "float", 0.05, "step in ODE time", lo=0.0, lo_open=True, hi=10.0, short="dt",
          label="dt, SGD step (ODE time)"),
    Param("sgd.steps", "int", 200, "number of SGD steps", lo=1, hi=2**32 - 1, short="steps", label="SGD steps"),
    Param("sgd.seeds", "ints", [0, 1], "seeds of the independent runs", lo=0, hi=2**63 - 1,
          axis="sweep over sgd.seed (alias seed): one seed per cell"),
    Param("sgd.seed", "int", 0, "seed of one run", lo=0, hi=2**63 - 1, short="seed", label="seed",
          in_config=False),
    Param("sgd.dtype", "str", "float32", "floating-point type", choices=("float32", "float64"), short="dtype",
          label="dtype"),
    Param("sgd.sampler", "str", "auto", "how a step samples its batch, exactly in distribution either way: direct "
          "(draws X, B x d), projected (draws its projection on span [W; theta] and the remainder: d / n times "
          "cheaper for B >> n), auto (the cheaper by the flop counts of fastslow.samplers)",
          choices=("direct", "projected", "auto"), short="sampler", label="SGD sampler"),
    Param("sgd.record", "int", 41, "record points (linear in steps)", lo=2, hi=100_000,
          axis="the SGD runs share the record dimension"),
    # -- the long-horizon study ------------------------------------------------------------------
    Param("long_horizon.enabled", "bool", False, "train SGD past two half-lives of the limit, over seeds, against "
          "the ODE, the slow flow, the law and the effective dynamics", axis=_NOT_AXIS_LH),
    Param("long_horizon.d", "int", 128, "input dimension", lo=2, hi=2**31 - 1, axis=_NOT_AXIS_LH),
    Param("long_horizon.n", "int", 128, "width (neurons)", lo=1, hi=2**31 - 1, axis=_NOT_AXIS_LH),
    Param("long_horizon.batch", "int", 1024, "batch size", lo=1, hi=2**31 - 1, axis=_NOT_AXIS_LH),
    Param("long_horizon.dt", "float", 0.05, "step in ODE time", lo=0.0, lo_open=True, hi=10.0, axis=_NOT_AXIS_LH),
    Param("long_horizon.t_max", "float", 2000.0, "horizon (ODE time; steps = t_max / dt)", lo=0.0, lo_open=True,
          hi=1e9, axis=_NOT_AXIS_LH),
    Param("long_horizon.seeds", "ints", [0, 1, 2], "seeds of the independent runs", lo=0, hi=2**63 - 1,
          axis=_NOT_AXIS_LH),
    Param("long_horizon.dtype", "str", "float32", "floating-point type", choices=("float32", "float64"),
          axis=_NOT_AXIS_LH),
    Param("long_horizon.record", "int", 80, "record points (log-spaced in steps)", lo=2, hi=100_000,
          axis=_NOT_AXIS_LH),
    Param("long_horizon.schedule", "str", "constant", "steps: constant dt, or stable (dt_k <= dt shrinking with the "
          "fast rate; ODE time is the sum of the steps)", choices=("constant", "stable"), axis=_NOT_AXIS_LH),
    Param("long_horizon.effective", "bool", True, "also the effective dynamics of the finite network",
          axis=_NOT_AXIS_LH),
    # -- the analysis --------------------------------------------------------------------------
    Param("analysis.enabled", "bool", True, "critical manifold, equilibria, slow flow, asymptotic law, "
          "classification", axis="what runs is set by compute"),
    Param("analysis.classify_t_max", "float", 1e9, "horizon for the classification", lo=0.0, lo_open=True,
          hi=1e15, short="classify_t_max", label="classification horizon (ODE time)"),
    Param("analysis.phase.enabled", "bool", False, "compute a phase diagram", axis="a setting of the run"),
    Param("analysis.phase.x", "param", "c3", "first parameter: a0, m0, lr_a, lr_w, eps, noise, c<k> or s<k>",
          axis="a setting of the run"),
    Param("analysis.phase.x_range", "range", [-0.5, 0.5], "[start, stop] of the first parameter",
          axis="a setting of the run"),
    Param("analysis.phase.x_num", "int", 41, "values of the first parameter", lo=2, hi=1000,
          axis="a setting of the run"),
    Param("analysis.phase.y", "param", "a0", "second parameter (as x)", axis="a setting of the run"),
    Param("analysis.phase.y_range", "range", [0.25, 4.0], "[start, stop] of the second parameter",
          axis="a setting of the run"),
    Param("analysis.phase.y_num", "int", 41, "values of the second parameter", lo=2, hi=1000,
          axis="a setting of the run"),
    Param("analysis.phase.y_log", "bool", True, "log-spaced values of the second parameter",
          axis="a setting of the run"),
    Param("analysis.phase.t_max", "float", 1e7, "horizon of each trajectory", lo=0.0, lo_open=True, hi=1e15,
          axis="a setting of the run"),
    # -- output --------------------------------------------------------------------------------
    Param("output.dir", "str", "results/run", "output directory (the command's --out overrides it)",
          axis="where results go"),
    Param("output.formats", "strs", ["png", "svg"], "figure formats", choices=("png", "svg", "pdf"),
          axis="where results go"),
    Param("output.dpi", "int", 120, "resolution of raster figures", lo=30, hi=1200, axis="where results go"),
]}

_BY_NAME: dict[str, Param] = {}
for _p in PARAMS.values():
    for _n in (_p.short, *_p.aliases):
        if _n:
            if _n in _BY_NAME:  # pragma: no cover - a registry error
                raise AssertionError(f"params: the name {_n!r} is defined twice")
            _BY_NAME[_n] = _p
_COEF = re.compile(r"(?:(?P<short>[cs])(?P<k1>[0-9]+)|model\.(?P<series>target|activation)\.(?P<k2>[0-9]+))")


def _coefficient(series: str, order: int) -> Param:
    letter = "c" if series == "target" else "s"
    whose = "target's" if series == "target" else "activation's"
    return Param(f"model.{series}.{order}", "float", None, f"the {whose} Hermite coefficient of order {order}",
                 lo=-1e6, hi=1e6, short=f"{letter}{order}", label=f"{letter}{order}, {whose} Hermite coefficient "
                 f"of order {order}", in_config=False, series=series, order=order)


def lookup(name: str, field: str = "parameter") -> Param:
    """The parameter called ``name``: a config path, a short name or alias, or a Hermite
    coefficient ``c<k>`` / ``s<k>`` (also ``model.target.<k>``, ``model.activation.<k>``).

    Raises ``TypeError`` if ``name`` is not a string, ``ValueError`` (naming ``field``, with a
    suggestion) if no parameter has that name.
    """
    if not isinstance(name, str):
        raise TypeError(f"{field}: a parameter name must be a string, got {V.show(name)}")
    p = PARAMS.get(name) or _BY_NAME.get(name)
    if p is not None:
        return p
    m = _COEF.fullmatch(name)
    if m:
        series = m["series"] or ("target" if m["short"] == "c" else "activation")
        k = int(m["k1"] or m["k2"])
        if k > MAX_HERMITE_ORDER:
            raise ValueError(f"{field}: {name}: the Hermite order must be an integer from 0 to {MAX_HERMITE_ORDER}")
        return _coefficient(series, k)
    hint = suggest(name)
    raise ValueError(f"{field}: unknown parameter {name!r}{'; did you mean ' + hint + '?' if hint else ''} "
                     f"(short names: {', '.join(sorted(_BY_NAME))}, c<k>, s<k>; or a config path such as init.a0)")


def suggest(name: str, options: Iterable[str] | None = None) -> str:
    """The closest known name to ``name`` (``''`` if none is close): for "did you mean" hints."""
    pool = list(options) if options is not None else [*_BY_NAME, *PARAMS]
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return repr(close[0]) if close else ""


def label(name: str) -> str:
    """An axis label for the parameter ``name`` (the name itself if it is unknown)."""
    try:
        p = lookup(name)
    except (TypeError, ValueError):
        return str(name)
    return p.label or p.name


def config_params(section: str) -> list[Param]:
    """The config fields of ``section`` (``"init"``, ``"analysis.phase"``), in registry order."""
    depth = section.count(".") + 1
    return [p for p in PARAMS.values()
            if p.in_config and p.path.startswith(section + ".") and p.path.count(".") == depth]


def model_changes(model: Any, changes: Mapping[Param, Any]) -> Any:
    """A copy of ``model`` with the model parameters ``changes`` applied (one new
    :class:`~fastslow.Model`): Hermite coefficients (``c<k>``, ``s<k>``), ``lr_w``, ``lr_a``, ``noise``,
    ``activation``, ``centred``, and ``eps`` (``lr_a = eps * lr_w``, applied after ``lr_w``).

    Raises ``ValueError`` if a parameter does not apply to a model, or if ``eps`` and ``lr_a``
    are both given.
    """
    import numpy as np

    if not changes:
        return model
    kw: dict[str, Any] = {}
    coef: dict[str, dict[int, float]] = {"target": {}, "activation": {}}
    eps = None
    names = {p.path for p in changes}
    if "model.eps" in names and "model.lr_a" in names:
        raise ValueError("eps and lr_a: eps sets lr_a = eps * lr_w; give one of them")
    for p, v in changes.items():
        if p.section != "model":
            raise ValueError(f"{p.name}: does not apply to a model (it is a setting of {p.section})")
        if p.series is not None:
            assert p.order is not None, p.path  # a coefficient has both its series and its order
            coef[p.series][p.order] = float(v)
        elif p.path == "model.eps":
            eps = float(v)
        else:
            kw[p.field] = v
    for series, orders in coef.items():
        if not orders:
            continue
        base = np.array(model.c if series == "target" else model.s, dtype=float)
        top = max(orders)
        if top >= base.size:
            base = np.concatenate([base, np.zeros(top + 1 - base.size)])
        for k, v in orders.items():
            base[k] = v
        kw[series] = {"hermite": base.tolist()}
        if series == "activation":
            kw["centred"] = False  # the coefficients given are the activation's, s_0 included
    if eps is not None:
        kw["lr_a"] = eps * float(kw.get("lr_w", model.lr_w))
    return model.replace(**kw)
