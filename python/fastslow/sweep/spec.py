"""The sweep spec: a base config, axes over named parameters, and what to compute per cell.

A spec (:class:`SweepSpec`, from Python or a TOML file) is a complete experiment config (the
``base``, as for ``fastslow run``) plus axes and ``compute``:

* ``"ode"``: the limit ODE at the base's log-spaced save points (``ode.t_max``, ``ode.points``),
  with the peak alignment and the unlearning half-life;
* ``"analysis"``: the classification by ``analysis.classify_t_max`` (learning, lazy, unlearning, ...)
  with its measured exponent, and the asymptotic law's verdict and exponent;
* ``"sgd"``: one SGD run per cell (seeds are an axis), its recorded order parameters, the ODE at the
  same times and the maximal deviations.

An axis is named by any parameter of :mod:`fastslow.params` (a config path, a short name or alias,
``c<k>`` / ``s<k>``) and takes a list, a range or, for several fields set together, a table of
lists (a zipped axis). Everything is checked here, before anything runs: an unknown or fixed
field, a value out of its range, an empty axis, a range whose step misses its stop, an axis name
that collides with a variable of the dataset or names another parameter than the one it sets.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np

from .. import _validate as V
from .. import params
from ..config import Config, ConfigError, parse_config
from ..model import ACTIVATIONS
from .variables import RESERVED

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["COMPUTE", "SweepError", "Axis", "SweepSpec", "load_sweep_spec", "as_spec", "block_shape",
           "MAX_CELLS"]

COMPUTE: tuple[str, ...] = ("ode", "analysis", "sgd")
MAX_CELLS = 50_000_000
_MAX_AXIS = 10_000_000
_RANGE_KEYS = {"start", "stop", "step", "num", "log"}
_SCALAR_KINDS = {"float", "int", "bool", "str", "activation"}


class SweepError(ValueError):
    """A sweep spec or store that cannot be used (the message names the field or the file)."""


@dataclass(frozen=True)
class Axis:
    """One sweep axis: a dimension of the dataset that sets one parameter, or several together.

    Attributes
    ----------
    name : str
        Dimension name in the dataset (as given in the spec).
    fields : tuple of str
        Config paths it sets (``"init.a0"``, ``"model.target.3"``, ``"sgd.seed"``, ...); several for a
        zipped axis such as ``{"sgd.n" = [...], "sgd.d" = [...]}``.
    values : tuple of ndarray
        One array of values per field, all of the axis' length.
    """

    name: str
    fields: tuple[str, ...]
    values: tuple[np.ndarray, ...]

    @property
    def size(self) -> int:
        return int(self.values[0].size)

    @property
    def coord(self) -> np.ndarray:
        """The dimension coordinate's values: those of the field the name stands for, else the
        first field's."""
        try:
            path = params.lookup(self.name).path
        except (TypeError, ValueError):
            return self.values[0]
        return self.values[self.fields.index(path)] if path in self.fields else self.values[0]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fields": list(self.fields), "values": [v.tolist() for v in self.values]}


def _range_values(where: str, r: Mapping[str, Any], kind: str) -> list[Any]:
    unknown = set(r) - _RANGE_KEYS
    if unknown:
        raise SweepError(f"{where}: unknown range key(s) {sorted(map(str, unknown))}; a range is "
                         "{start, stop, step} or {start, stop, num[, log]}")
    for k in ("start", "stop"):
        if k not in r:
            raise SweepError(f"{where}: a range needs {k!r}")
        v = r[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SweepError(f"{where}.{k}: expected a finite number, got {v!r}")
    start, stop = float(r["start"]), float(r["stop"])
    log = r.get("log", False)
    if not isinstance(log, bool):
        raise SweepError(f"{where}.log: expected true or false, got {log!r}")
    if ("step" in r) == ("num" in r):
        raise SweepError(f"{where}: give exactly one of step or num")
    if "step" in r:
        step = r["step"]
        if log:
            raise SweepError(f"{where}: a log range takes num, not step")
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step) or step == 0:
            raise SweepError(f"{where}.step: expected a non-zero finite number, got {step!r}")
        span = (stop - start) / step
        if span < 0:
            raise SweepError(f"{where}.step: {step!r} goes away from stop ({start!r} -> {stop!r}); use {-step!r}")
        n_steps = round(span)
        if abs(span - n_steps) > 1e-9 * max(1.0, abs(span)):
            raise SweepError(f"{where}.step: (stop - start) / step = {span:g} is not a whole number, so the range "
                             f"would not end at stop = {stop!r}")
        if n_steps + 1 > _MAX_AXIS:
            raise SweepError(f"{where}: {n_steps + 1} values; at most {_MAX_AXIS:,}")
        vals = start + step * np.arange(n_steps + 1)
        vals[-1] = stop
    else:
        num = r["num"]
        if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= _MAX_AXIS:
            raise SweepError(f"{where}.num: expected an integer from 1 to {_MAX_AXIS:,}, got {num!r}")
        if num == 1 and start != stop:
            raise SweepError(f"{where}.num: 1 value needs start == stop")
        if log:
            if start <= 0 or stop <= 0:
                raise SweepError(f"{where}: a log range needs start > 0 and stop > 0, got {start!r}, {stop!r}")
            vals = np.geomspace(start, stop, num)
        else:
            vals = np.linspace(start, stop, num)
    if kind == "int":
        ints = np.round(vals)
        if not np.allclose(vals, ints, rtol=1e-9, atol=0):
            raise SweepError(f"{where}: an integer field needs whole-number values, got {vals.tolist()}")
        return [int(v) for v in ints]
    return [float(v) for v in vals]


def _param(where: str, name: Any) -> params.Param:
    """The sweepable parameter ``name``, or a SweepError naming ``where``."""
    try:
        p = params.lookup(name, field=where)
    except TypeError as exc:
        raise SweepError(str(exc)) from None
    except ValueError as exc:
        section, _, rest = name.partition(".")
        if rest and section in {q.section for q in params.PARAMS.values()}:
            allowed = sorted({q.path.split(".")[1] for q in params.PARAMS.values()
                              if q.section == section and q.axis is None})
            if section == "model":
                allowed += ["target.<k>", "activation.<k>"]
            raise SweepError(f"{where}: unknown field {name!r} ({rest!r} is not in {section}; allowed there: "
                             f"{', '.join(allowed)})") from None
        marker = f"unknown parameter {name!r}"
        tail = str(exc).split(marker, 1)[1] if marker in str(exc) else ""
        raise SweepError(f"{where}: unknown field {name!r}{tail}") from None
    if p.axis is not None:
        raise SweepError(f"{where}: {p.path} cannot be an axis ({p.axis})")
    if p.kind not in _SCALAR_KINDS:
        raise SweepError(f"{where}: {p.path} is not a scalar parameter and cannot be an axis")
    return p


def _axis_values(where: str, p: params.Param, raw: Any, distinct: bool = True) -> np.ndarray:
    kind = "str" if p.kind == "activation" else p.kind
    if isinstance(raw, Mapping):
        vals = _range_values(where, raw, kind)
    elif isinstance(raw, np.ndarray):
        if raw.ndim != 1:
            raise SweepError(f"{where}: expected a 1-D array, got shape {raw.shape}")
        vals = raw.tolist()
    elif isinstance(raw, (list, tuple, range)):
        vals = list(raw)
    else:
        raise SweepError(f"{where}: expected a list of values or a range table {{start, stop, step|num}}, "
                         f"got {raw!r}")
    if not vals:
        raise SweepError(f"{where}: the axis is empty")
    if len(vals) > _MAX_AXIS:
        raise SweepError(f"{where}: {len(vals)} values; at most {_MAX_AXIS:,}")
    if kind == "int":  # allow 64.0 from a float array
        vals = [int(v) if isinstance(v, float) and v.is_integer() else v for v in vals]
    checked = []
    for i, v in enumerate(vals):
        v = v.item() if isinstance(v, np.generic) else v
        f = f"{where}[{i}]"
        try:  # an activation axis takes names (a list of Hermite coefficients is not a scalar)
            checked.append(V.choice(v, f, ACTIVATIONS) if p.kind == "activation" else p.check(v, f))
        except (TypeError, ValueError) as exc:
            raise SweepError(str(exc)) from None
    if distinct and len(set(checked)) != len(checked):
        raise SweepError(f"{where}: repeated values {checked}")
    return np.array(checked)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise SweepError(f"axes: bad axis name {name!r} (a non-empty string of at most 200 characters)")
    if any(c in name for c in "/\\\x00") or name.startswith((".", "__")):
        raise SweepError(f"axes: bad axis name {name!r} (no '/', '\\' or NUL, and not starting with '.' or '__')")
    if name in RESERVED:
        raise SweepError(f"axes.{name}: the name {name!r} is taken by {RESERVED[name]}; name the axis otherwise")
    return name


def _parse_axes(raw_axes: Any) -> list[Axis]:
    if not isinstance(raw_axes, Mapping):
        raise SweepError(f"axes: expected a table of axes, got {raw_axes!r}")
    axes: list[Axis] = []
    for name, raw in raw_axes.items():
        name = _check_name(name)
        where = f"axes.{name}"
        if isinstance(raw, Mapping) and raw and not (set(raw) & _RANGE_KEYS):
            # a zipped axis: {field = [values], ...} of equal lengths
            paths, values = [], []
            for key, sub in raw.items():
                p = _param(f"{where}.{key}", key)
                if p.path in paths:
                    raise SweepError(f"{where}.{key}: {p.path} is set twice in this axis")
                paths.append(p.path)
                values.append(_axis_values(f"{where}.{key}", p, sub, distinct=False))
            lengths = {v.size for v in values}
            if len(lengths) != 1:
                raise SweepError(f"{where}: the zipped fields need equal lengths, got "
                                 + ", ".join(f"{k}: {v.size}" for k, v in zip(raw, values)))
            rows = list(zip(*(v.tolist() for v in values)))
            if len(set(rows)) != len(rows):  # a field may repeat a value; the cells may not repeat
                raise SweepError(f"{where}: repeated cells {rows}")
            axes.append(Axis(name, tuple(paths), tuple(values)))
        else:
            p = _param(where, name)
            axes.append(Axis(name, (p.path,), (_axis_values(where, p, raw),)))
    seen: dict[str, str] = {}
    for ax in axes:
        for path in ax.fields:
            if path in seen:
                raise SweepError(f"axes.{ax.name}: {path} is already set by axes.{seen[path]}")
            seen[path] = ax.name
        try:  # a name that is a parameter must be one this axis sets (its coordinate holds it)
            named = params.lookup(ax.name).path
        except (TypeError, ValueError):
            named = None
        if named is not None and named not in ax.fields:
            raise SweepError(f"axes.{ax.name}: the name {ax.name!r} means the parameter {named}, but this axis "
                             f"sets {', '.join(ax.fields)}; name it otherwise")
    if "model.eps" in seen and "model.lr_a" in seen:
        raise SweepError(f"axes.{seen['model.eps']}: model.eps sets model.lr_a, which axes.{seen['model.lr_a']} "
                         "sets too")
    return axes


def _compute(raw: Any) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)) or not all(isinstance(c, str) for c in items):
        raise SweepError(f"sweep.compute: expected a name or a list of names (ode, analysis, sgd, all), got "
                         f"{raw!r} ({type(raw).__name__})")
    comp: list[str] = []
    for c in items:
        if c == "all":
            comp.extend(COMPUTE)
        elif c in COMPUTE:
            comp.append(c)
        else:
            raise SweepError(f"sweep.compute: unknown {c!r}; allowed: ode, analysis, sgd, all")
    if not comp:
        raise SweepError("sweep.compute: empty; give some of ode, analysis, sgd, all")
    return tuple(c for c in COMPUTE if c in comp)


def block_shape(shape: Sequence[int], chunk: int) -> tuple[int, ...]:
    """The block of cells an ODE/analysis task computes: the trailing axes whole while they fit in
    ``chunk`` cells, the next axis split into equal parts of at most ``chunk`` cells, the leading
    axes one value each. A block is then a contiguous range of cells in C order, and a rectangle
    of the grid (one zarr chunk of every variable)."""
    shape = tuple(int(s) for s in shape)
    trailing, k = 1, len(shape) - 1
    while k >= 0 and trailing * shape[k] <= chunk:
        trailing *= shape[k]
        k -= 1
    if k < 0:
        return shape
    per = max(1, chunk // trailing)
    parts = math.ceil(shape[k] / per)
    return (1,) * k + (math.ceil(shape[k] / parts),) + shape[k + 1:]


def _default_chunk(shape: tuple[int, ...]) -> int:
    """About 8 tasks of 64 to 4096 cells (each task costs some Python and a chunk per variable, so
    tasks are large; bigger sweeps get more tasks), rounded so the blocks come out equal."""
    n = int(np.prod(shape))
    target = int(min(4096, max(64, math.ceil(n / 8))))
    trailing, k = 1, len(shape) - 1
    while k >= 0 and trailing * shape[k] <= target:
        trailing *= shape[k]
        k -= 1
    if k < 0:
        return n
    rows = math.ceil(shape[k] / max(1, math.ceil(n / target / int(np.prod(shape[:k], dtype=np.int64)))))
    return trailing * rows if trailing * rows <= 4096 else target


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: base config, axes and what to compute (build with :meth:`create` or
    :func:`load_sweep_spec`).

    Attributes
    ----------
    base : Config
    axes : tuple of Axis
        In dataset order (the first varies slowest).
    compute : tuple of str
        Some of ``"ode"``, ``"analysis"``, ``"sgd"``.
    chunk : int
        At most this many ODE/analysis cells per task (see :func:`block_shape`).
    """

    base: Config
    axes: tuple[Axis, ...]
    compute: tuple[str, ...]
    chunk: int

    @classmethod
    def create(cls, base: Config | Mapping[str, Any] | None = None, axes: Mapping[str, Any] | None = None, *,
               compute: str | Sequence[str] = ("ode", "analysis"), chunk: int | None = None) -> SweepSpec:
        """A sweep spec from Python objects.

        Parameters
        ----------
        base : Config or dict, optional
            The config every cell starts from (as a ``fastslow run`` TOML file; default: all defaults).
        axes : dict
            ``name -> values``. A name is a parameter of :mod:`fastslow.params`: a config path
            (``"init.a0"``, ``"sgd.n"``, ``"model.target.3"``) or a short name (``a0``, ``m0``, ``lr_a``,
            ``lr_w``, ``eps``, ``noise``, ``c<k>``, ``s<k>``, ``n``, ``d``, ``batch``, ``dt``, ``steps``,
            ``seed``, ``dtype``, ...). Values: a list or 1-D array, a range ``{"start", "stop", "step"}``
            (the step must reach stop exactly) or ``{"start", "stop", "num", "log"}``, or, for an axis
            that sets several fields together, ``{field: list, ...}`` of equal lengths (the
            dimension is named by the key, which must not be the name of another parameter).
        compute : str or sequence of str
            ``"ode"``, ``"analysis"``, ``"sgd"`` or ``"all"``.
        chunk : int, optional
            At most this many ODE/analysis cells per task (default: about 8 tasks of 64 to 4096
            cells; sweeps of more than 32,768 cells get more tasks).
        """
        if base is None:
            cfg = Config()
        elif isinstance(base, Config):
            cfg = base
        elif isinstance(base, Mapping):
            try:
                cfg = parse_config(dict(base))
            except ConfigError as exc:
                raise SweepError(f"base.{exc}") from None
        else:
            raise SweepError(f"base: expected a Config or a table, got {type(base).__name__}")
        comp = _compute(compute)
        ax = _parse_axes({} if axes is None else axes)
        if "sgd" in comp and not any("sgd.seed" in a.fields for a in ax):
            # the base's seeds become an axis (one SGD run per cell)
            if any(a.name == "seed" for a in ax):  # pragma: no cover - the name rule catches it first
                raise SweepError("axes.seed: the name 'seed' is taken by an axis that does not set sgd.seed")
            ax.append(Axis("seed", ("sgd.seed",), (np.array(cfg.sgd.seeds, dtype=np.int64),)))
        if not ax:
            raise SweepError("axes: missing; a sweep needs at least one axis")
        shape = tuple(a.size for a in ax)
        ncells = int(np.prod(shape, dtype=np.int64))
        if ncells > MAX_CELLS:
            raise SweepError(f"axes: {ncells:,} cells; at most {MAX_CELLS:,}")
        if chunk is None:
            chunk = _default_chunk(shape)
        elif isinstance(chunk, (bool, np.bool_)) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
            raise SweepError(f"sweep.chunk: expected an integer >= 1, got {chunk!r}")
        return cls(base=cfg, axes=tuple(ax), compute=comp, chunk=int(chunk))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | os.PathLike | None = None) -> SweepSpec:
        """From the parsed TOML of a sweep file: tables ``sweep`` (``compute``, ``chunk``,
        optional ``base_file``), ``base`` and ``axes``."""
        if not isinstance(data, Mapping):
            raise SweepError(f"spec: expected a table, got {data!r}")
        unknown = set(data) - {"sweep", "base", "axes"}
        if unknown:
            raise SweepError(f"{sorted(map(str, unknown))[0]}: unknown table; allowed: sweep, base, axes")
        sw = data.get("sweep", {})
        if not isinstance(sw, Mapping):
            raise SweepError(f"sweep: expected a table, got {sw!r}")
        unknown = set(sw) - {"compute", "chunk", "base_file"}
        if unknown:
            raise SweepError(f"sweep.{sorted(map(str, unknown))[0]}: unknown key; allowed: compute, chunk, base_file")
        base_raw = data.get("base", {})
        if not isinstance(base_raw, Mapping):
            raise SweepError(f"base: expected a table, got {base_raw!r}")
        base: Any = dict(base_raw)
        if "base_file" in sw:
            bf = sw["base_file"]
            if not isinstance(bf, str):
                raise SweepError(f"sweep.base_file: expected a path, got {bf!r}")
            p = Path(base_dir or ".") / bf
            try:
                file_data = tomllib.loads(p.read_text(encoding="utf-8"))
            except OSError as exc:
                raise SweepError(f"sweep.base_file: cannot read {p} ({exc.strerror})") from None
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise SweepError(f"sweep.base_file: {p} is not valid TOML: {exc}") from None
            base = _merge(file_data, base)
        if "axes" not in data:
            raise SweepError("axes: missing; a sweep needs at least one axis")
        return cls.create(base, data["axes"], compute=sw.get("compute", ["ode", "analysis"]), chunk=sw.get("chunk"))

    @classmethod
    def from_record(cls, d: Any) -> SweepSpec:
        """The spec :meth:`to_dict` wrote (as a store keeps it), validated again."""
        if not isinstance(d, Mapping) or not {"base", "axes", "compute", "chunk"} <= set(d):
            raise SweepError(f"spec: expected a table with base, axes, compute, chunk, got {str(d)[:80]!r}")
        axes: dict[str, Any] = {}
        if not isinstance(d["axes"], list):
            raise SweepError("spec.axes: expected a list of axes")
        for a in d["axes"]:
            if not isinstance(a, Mapping) or not {"name", "fields", "values"} <= set(a):
                raise SweepError(f"spec.axes: bad axis {str(a)[:80]!r}")
            try:
                plain = len(a["fields"]) == 1 and params.lookup(a["name"]).path == a["fields"][0]
            except (TypeError, ValueError):
                plain = False
            axes[a["name"]] = a["values"][0] if plain else dict(zip(a["fields"], a["values"]))
        return cls.create(d["base"], axes, compute=d["compute"], chunk=d["chunk"])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes)

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def block(self) -> tuple[int, ...]:
        """The block of cells of one ODE/analysis task (:func:`block_shape`)."""
        return block_shape(self.shape, self.chunk)

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base.to_dict(), "axes": [a.to_dict() for a in self.axes], "compute": list(self.compute),
                "chunk": self.chunk}

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical spec (what a store belongs to)."""
        d = self.to_dict()
        d["base"].pop("output", None)  # where figures go does not change the results
        text = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @functools.cached_property
    def json(self) -> str:
        """``to_dict()`` as JSON (the dataset's ``spec`` attribute)."""
        return json.dumps(self.to_dict())

    def cell_overrides(self, index: int) -> dict[str, Any]:
        """The config paths and values of cell ``index`` (C order over the axes)."""
        out: dict[str, Any] = {}
        for ax, i in zip(self.axes, np.unravel_index(index, self.shape)):
            for p, v in zip(ax.fields, ax.values):
                out[p] = v[i].item()
        return out


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def load_sweep_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and validate a sweep TOML file (see :class:`SweepSpec`; example: ``examples/sweep_phase.toml``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepError(f"{p}: cannot read the file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise SweepError(f"{p}: not UTF-8 text ({exc.reason})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{p}: not valid TOML: {exc}") from None
    return SweepSpec.from_dict(data, base_dir=p.parent)


def as_spec(spec: Any) -> SweepSpec:
    """A :class:`SweepSpec` from a spec, a dict (as a TOML file) or a TOML path."""
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return load_sweep_spec(spec)
    if isinstance(spec, Mapping):
        return SweepSpec.from_dict(spec)
    raise SweepError(f"spec: expected a SweepSpec, a dict or a TOML path, got {type(spec).__name__}")
