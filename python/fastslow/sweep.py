"""Sweeps: a base config plus axes, run cell by cell on this machine or on a Dask cluster.

A sweep spec (:class:`SweepSpec`, from Python or a TOML file) is a complete experiment config (the
``base``, as for ``fastslow run``) plus axes over config fields and what to compute per cell:

* ``"ode"``: the limit ODE at the base's log-spaced save points (``ode.t_max``, ``ode.points``),
  with the peak alignment and the unlearning half-life;
* ``"analysis"``: the classification by ``analysis.classify_t_max`` (learning, lazy, unlearning, ...)
  with its measured exponent, and the asymptotic law's verdict and exponent;
* ``"sgd"``: one SGD run per cell (seeds are an axis), its recorded order parameters, the ODE at the
  same times and the maximal deviations.

Cells are grouped into tasks: ODE and analysis cells in chunks that each make one
:func:`~fastslow.solve_ode_batch` call per group of equal solver settings, SGD cells one per task.
Every finished task is written to the store at once as its own shard (``STORE/shards/TASK.shard``:
raw arrays under a JSON header and a CRC-32; temp file, then rename), so
a sweep interrupted at any moment (Ctrl-C, a killed worker, a killed client) and started again with
the same store computes only the tasks that have no shard. The results form an
:class:`xarray.Dataset` with the axes as coordinates (time, ``t``, and SGD record, ``record``, as
further dimensions) and are written to ``STORE/dataset.nc`` (netCDF4), at the end and every
``flush_seconds`` while the sweep runs (with ``done`` marking the finished cells).

Where the work runs:

* ``client=None``, ``workers=None`` or ``1``: in this process, one task computing at a time with
  every core through the C++ core's OpenMP threads (the GIL is released), pipelined: while it
  computes, a second thread prepares the next task and assembles the previous one.
* ``client=None``, ``workers=N > 1``: SGD tasks run ``N`` at a time on threads in this process,
  each with ``cores // N`` OpenMP threads; ODE/analysis tasks still run pipelined with every core.
  Measured on 2 cores (``bench/bench_sweep.py``): for SGD cells of n = d = 128, two at a time are
  1.2 times faster than one at a time with every core (a small network does not scale over cores)
  and faster than 2 Dask worker processes; for ODE cells the pipeline is best (each
  ``solve_ode_batch`` call already spreads its trajectories over every core, and two tasks on one
  core each leave a core idle while the last one finishes). Ctrl-C stops the running tasks
  through a cancel token within about 50 ms.
* ``client="local"``: a local Dask cluster of ``workers`` processes (one thread each).
* ``client=`` a ``distributed.Client``, or its scheduler's address ``"tcp://host:port"``: that
  cluster, unchanged. Each task takes the cores of its host divided by the tasks that can run there
  at once, so threads never oversubscribe.

``bench/bench_sweep.py`` measures these against one direct :func:`~fastslow.solve_ode_batch` call.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import sys
import time
import warnings
import zlib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .config import Config, ConfigError, _check_value, parse_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["SweepSpec", "Axis", "SweepError", "load_sweep_spec", "sweep", "open_sweep", "COMPUTE"]

COMPUTE = ("ode", "analysis", "sgd")

# short names of the fields most often swept
ALIASES = {
    "a0": "init.a0", "m0": "init.m0",
    "lr_w": "model.lr_w", "lr_a": "model.lr_a", "eps": "model.eps", "noise": "model.noise",
    "activation": "model.activation", "centred": "model.centred",
    "d": "sgd.d", "n": "sgd.n", "batch": "sgd.batch", "dt": "sgd.dt", "steps": "sgd.steps",
    "seed": "sgd.seed", "dtype": "sgd.dtype",
    "rtol": "ode.rtol", "atol": "ode.atol", "classify_t_max": "analysis.classify_t_max",
}
# fields that cannot be axes, and why
_FIXED = {
    "ode.t_max": "the trajectories share the time coordinate t; sweep over analysis.classify_t_max or run "
                 "several sweeps",
    "ode.points": "the trajectories share the time coordinate t",
    "sgd.record": "the SGD runs share the record dimension",
    "sgd.seeds": "sweep over sgd.seed (alias seed): one seed per cell",
    "sgd.enabled": "what runs is set by compute",
    "analysis.enabled": "what runs is set by compute",
}
_RANGE_KEYS = {"start", "stop", "step", "num", "log"}
_STORE_VERSION = 2  # 2: shards in the .shard format (1: .npz, still read)


class SweepError(ValueError):
    """A sweep spec or store that cannot be used (the message names the field)."""


# ---------------------------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class Axis:
    """One sweep axis: a dimension of the dataset that sets one config field, or several together.

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

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fields": list(self.fields), "values": [v.tolist() for v in self.values]}


def _field_meta(path: str) -> dict[str, Any]:
    """The metadata (kind, range) of a sweepable config path, or a SweepError naming it."""
    if path in _FIXED:
        raise SweepError(f"axes: {path} cannot be an axis ({_FIXED[path]})")
    parts = path.split(".")
    if parts[0] == "model" and len(parts) == 3 and parts[1] in ("target", "activation"):
        if not parts[2].isdigit() or int(parts[2]) > 200:
            raise SweepError(f"axes: {path}: the Hermite order must be an integer from 0 to 200")
        return {"kind": "float", "lo": -1e6, "hi": 1e6, "lo_open": False, "hi_open": False, "choices": None}
    if path == "model.eps":
        return {"kind": "float", "lo": 0.0, "hi": None, "lo_open": True, "hi_open": False, "choices": None}
    if path == "sgd.seed":
        return {"kind": "int", "lo": 0, "hi": 2**63 - 1, "lo_open": False, "hi_open": False, "choices": None}
    obj: Any = Config()
    for i, p in enumerate(parts):
        known = {f.name: f for f in fields(obj)}
        if p not in known:
            where = ".".join(parts[:i]) or "the config"
            raise SweepError(f"axes: unknown field {path!r} ({p!r} is not in {where}; allowed there: "
                             f"{', '.join(known)}; short names: {', '.join(ALIASES)}, c<k>, s<k>)")
        f = known[p]
        if f.metadata.get("kind") == "section":
            obj = getattr(obj, p)
            if i == len(parts) - 1:
                raise SweepError(f"axes: {path} is a section, not a field")
            continue
        if i != len(parts) - 1:
            raise SweepError(f"axes: unknown field {path!r}")
        meta = dict(f.metadata)
        if meta["kind"] == "activation":  # an axis of activation names
            from .model import ACTIVATIONS

            meta.update(kind="str", choices=tuple(ACTIVATIONS))
        if meta["kind"] not in ("float", "int", "bool", "str"):
            raise SweepError(f"axes: {path} is not a scalar field and cannot be an axis")
        return meta
    raise SweepError(f"axes: unknown field {path!r}")  # pragma: no cover


def _canonical(name: str) -> str:
    if name in ALIASES:
        return ALIASES[name]
    if len(name) >= 2 and name[0] in "cs" and name[1:].isdigit():
        return f"model.{'target' if name[0] == 'c' else 'activation'}.{int(name[1:])}"
    return name


def _range_values(where: str, r: Mapping[str, Any], kind: str) -> list[Any]:
    unknown = set(r) - _RANGE_KEYS
    if unknown:
        raise SweepError(f"{where}: unknown range key(s) {sorted(unknown)}; a range is {{start, stop, step}} or "
                         "{start, stop, num[, log]}")
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
            raise SweepError(f"{where}.step: {step!r} goes away from stop ({start!r} -> {stop!r}); use "
                             f"{-step!r}")
        k = round(span)
        if abs(span - k) > 1e-9 * max(1.0, abs(span)):
            raise SweepError(f"{where}.step: (stop - start) / step = {span:g} is not a whole number, so the "
                             f"range would not end at stop = {stop!r}")
        if k + 1 > 10_000_000:
            raise SweepError(f"{where}: {k + 1} values; at most 10,000,000")
        vals = start + step * np.arange(k + 1)
        vals[-1] = stop
    else:
        num = r["num"]
        if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= 10_000_000:
            raise SweepError(f"{where}.num: expected an integer from 1 to 10,000,000, got {num!r}")
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


def _axis_values(where: str, path: str, raw: Any) -> np.ndarray:
    meta = _field_meta(path)
    kind = meta["kind"]
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
    if kind == "int":  # allow 64.0 from a float array
        vals = [int(v) if isinstance(v, float) and v.is_integer() else v for v in vals]
    checked = []
    for i, v in enumerate(vals):
        v = v.item() if isinstance(v, np.generic) else v
        try:
            checked.append(_check_value(f"{where}[{i}]", v, meta))
        except ConfigError as exc:
            raise SweepError(str(exc)) from None
    if len(set(checked)) != len(checked):
        raise SweepError(f"{where}: repeated values {checked}")
    return np.array(checked)


def _parse_axes(raw_axes: Mapping[str, Any]) -> list[Axis]:
    if not isinstance(raw_axes, Mapping):
        raise SweepError(f"axes: expected a table of axes, got {raw_axes!r}")
    axes: list[Axis] = []
    for name, raw in raw_axes.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise SweepError(f"axes: bad axis name {name!r}")
        where = f"axes.{name}"
        if isinstance(raw, Mapping) and raw and not (set(raw) & _RANGE_KEYS):
            # a zipped axis: {field = [values], ...} of equal lengths
            paths, values = [], []
            for key, sub in raw.items():
                p = _canonical(key)
                paths.append(p)
                values.append(_axis_values(f"{where}.{key}", p, sub))
            lengths = {v.size for v in values}
            if len(lengths) != 1:
                raise SweepError(f"{where}: the zipped fields need equal lengths, got "
                                 + ", ".join(f"{k}: {v.size}" for k, v in zip(raw, values)))
            axes.append(Axis(name, tuple(paths), tuple(values)))
        else:
            p = _canonical(name)
            axes.append(Axis(name, (p,), (_axis_values(where, p, raw),)))
    seen: dict[str, str] = {}
    for ax in axes:
        for p in ax.fields:
            if p in seen:
                raise SweepError(f"axes.{ax.name}: {p} is already set by axes.{seen[p]}")
            seen[p] = ax.name
    if "model.eps" in seen and "model.lr_a" in seen:
        raise SweepError(f"axes.{seen['model.eps']}: model.eps sets model.lr_a, which axes.{seen['model.lr_a']} sets too")
    return axes


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
        ODE/analysis cells per task.
    """

    base: Config
    axes: tuple[Axis, ...]
    compute: tuple[str, ...]
    chunk: int

    @classmethod
    def create(cls, base: Config | Mapping[str, Any] | None = None, axes: Mapping[str, Any] | None = None, *,
               compute: str | Sequence[str] = ("ode", "analysis"), chunk: int | None = None) -> "SweepSpec":
        """A sweep spec from Python objects.

        Parameters
        ----------
        base : Config or dict, optional
            The config every cell starts from (as a ``fastslow run`` TOML file; default: all defaults).
        axes : dict
            ``name -> values``. A name is a config path (``"init.a0"``, ``"sgd.n"``,
            ``"model.target.3"``) or a short name (``a0``, ``m0``, ``lr_a``, ``lr_w``, ``eps``, ``noise``,
            ``c<k>``, ``s<k>``, ``n``, ``d``, ``batch``, ``dt``, ``steps``, ``seed``, ``dtype``, ...).
            Values: a list or 1-D array, a range ``{"start", "stop", "step"}`` (the step must reach
            stop exactly) or ``{"start", "stop", "num", "log"}``, or, for an axis that sets several
            fields together, ``{field: list, ...}`` of equal lengths (the dimension is named by the key).
        compute : str or sequence of str
            ``"ode"``, ``"analysis"``, ``"sgd"`` or ``"all"``.
        chunk : int, optional
            ODE/analysis cells per task (default: about 8 tasks, 64 to 4096 cells each: each task
            costs a few ms of Python and a shard, so tasks are large; sweeps of more than 32,768
            cells get more tasks, and ``chunk`` sets any other size).
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
        if isinstance(compute, str):
            compute = [compute]
        comp = []
        for c in compute:
            if c == "all":
                comp.extend(COMPUTE)
            elif c in COMPUTE:
                comp.append(c)
            else:
                raise SweepError(f"sweep.compute: unknown {c!r}; allowed: ode, analysis, sgd, all")
        if not comp:
            raise SweepError("sweep.compute: empty; give some of ode, analysis, sgd, all")
        comp_t = tuple(c for c in COMPUTE if c in comp)
        ax = _parse_axes(axes or {})
        if "sgd" in comp_t and not any("sgd.seed" in a.fields for a in ax):
            # the base's seeds become an axis (one SGD run per cell)
            if any(a.name == "seed" for a in ax):
                raise SweepError("axes.seed: the name 'seed' is taken by an axis that does not set sgd.seed")
            ax.append(Axis("seed", ("sgd.seed",), (np.array(cfg.sgd.seeds, dtype=np.int64),)))
        ncells = int(np.prod([a.size for a in ax])) if ax else 1
        if ncells > 50_000_000:
            raise SweepError(f"axes: {ncells} cells; at most 50,000,000")
        if chunk is None:
            chunk = int(min(4096, max(64, math.ceil(ncells / 8))))
        elif isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
            raise SweepError(f"sweep.chunk: expected an integer >= 1, got {chunk!r}")
        return cls(base=cfg, axes=tuple(ax), compute=comp_t, chunk=int(chunk))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | os.PathLike | None = None) -> "SweepSpec":
        """From the parsed TOML of a sweep file: tables ``sweep`` (``compute``, ``chunk``,
        optional ``base_file``), ``base`` and ``axes``."""
        if not isinstance(data, Mapping):
            raise SweepError(f"spec: expected a table, got {data!r}")
        unknown = set(data) - {"sweep", "base", "axes"}
        if unknown:
            raise SweepError(f"{sorted(unknown)[0]}: unknown table; allowed: sweep, base, axes")
        sw = data.get("sweep", {})
        if not isinstance(sw, Mapping):
            raise SweepError(f"sweep: expected a table, got {sw!r}")
        unknown = set(sw) - {"compute", "chunk", "base_file"}
        if unknown:
            raise SweepError(f"sweep.{sorted(unknown)[0]}: unknown key; allowed: compute, chunk, base_file")
        base: Any = dict(data.get("base", {}))
        if "base_file" in sw:
            bf = sw["base_file"]
            if not isinstance(bf, str):
                raise SweepError(f"sweep.base_file: expected a path, got {bf!r}")
            p = Path(base_dir or ".") / bf
            try:
                file_data = tomllib.loads(p.read_text(encoding="utf-8"))
            except OSError as exc:
                raise SweepError(f"sweep.base_file: cannot read {p} ({exc.strerror})") from None
            except tomllib.TOMLDecodeError as exc:
                raise SweepError(f"sweep.base_file: {p} is not valid TOML: {exc}") from None
            base = _merge(file_data, base)
        if "axes" not in data:
            raise SweepError("axes: missing; a sweep needs at least one axis")
        return cls.create(base, data["axes"], compute=sw.get("compute", ["ode", "analysis"]), chunk=sw.get("chunk"))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes)

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.shape)) if self.axes else 1

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
    def _json(self) -> str:
        """``to_dict()`` as JSON (the dataset's ``spec`` attribute)."""
        return json.dumps(self.to_dict())

    def cell_overrides(self, index: int) -> dict[str, Any]:
        """The config paths and values of cell ``index`` (C order over the axes)."""
        out: dict[str, Any] = {}
        if not self.axes:
            return out
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
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{p}: not valid TOML: {exc}") from None
    return SweepSpec.from_dict(data, base_dir=p.parent)


def _as_spec(spec: Any) -> SweepSpec:
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return load_sweep_spec(spec)
    if isinstance(spec, Mapping):
        return SweepSpec.from_dict(spec)
    raise SweepError(f"spec: expected a SweepSpec, a dict or a TOML path, got {type(spec).__name__}")


# --------------------------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class _Task:
    id: str
    kind: str  # "ode" (ode and/or analysis for a chunk) or "sgd" (one cell)
    cells: tuple[int, ...]


def _plan(spec: SweepSpec) -> list[_Task]:
    tasks: list[_Task] = []
    n = spec.n_cells
    if "ode" in spec.compute or "analysis" in spec.compute:
        for k, start in enumerate(range(0, n, spec.chunk)):
            tasks.append(_Task(f"ode-{k:06d}", "ode", tuple(range(start, min(n, start + spec.chunk)))))
    if "sgd" in spec.compute:
        tasks.extend(_Task(f"sgd-{i:08d}", "sgd", (i,)) for i in range(n))
    return tasks


def _cell_config(base: Config, overrides: Mapping[str, Any]) -> tuple[Config, dict[str, float]]:
    """The cell's Config and the Hermite-coefficient / eps changes to apply to its model."""
    sections: dict[str, dict[str, Any]] = {}
    special: dict[str, float] = {}
    for path, v in overrides.items():
        parts = path.split(".")
        if parts[0] == "model" and len(parts) == 3:
            special[("c" if parts[1] == "target" else "s") + parts[2]] = float(v)
        elif path == "model.eps":
            special["eps"] = float(v)
        elif path == "sgd.seed":
            sections.setdefault("sgd", {})["seeds"] = [int(v)]
        else:
            sections.setdefault(parts[0], {})[parts[1]] = v
    cfg = base
    for sec, kw in sections.items():
        cfg = replace(cfg, **{sec: replace(getattr(cfg, sec), **kw)})
    return cfg, special


_BASE_MODELS: dict[str, Any] = {}  # per process: a named activation's series costs ~17 ms (quadrature)


class _ModelCache:
    def __init__(self) -> None:
        self._models: dict[str, Any] = {}
        self._reprs: dict[int, tuple[Any, str]] = {}

    def get(self, cfg: Config, special: Mapping[str, float]) -> Any:
        from .analysis import _with_param

        held = self._reprs.get(id(cfg.model))
        if held is None or held[0] is not cfg.model:  # (the object is kept: its id stays unique)
            held = self._reprs[id(cfg.model)] = (cfg.model, repr(cfg.model))
        key_base = held[1]
        key = key_base + repr(sorted(special.items()))
        m = self._models.get(key)
        if m is None:
            m = self._models.get(key_base) or _BASE_MODELS.get(key_base)
            if m is None:
                m = cfg.make_model()
                if len(_BASE_MODELS) > 256:
                    _BASE_MODELS.clear()
                _BASE_MODELS[key_base] = m
            self._models[key_base] = m
            # coefficients first, then eps (which scales the cell's lr_w)
            for name in sorted(special, key=lambda s: s == "eps"):
                m = _with_param(m, name, special[name])
            self._models[key] = m
        return m


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _cell_groups(spec: SweepSpec, cells: Sequence[int]) -> tuple[list[tuple[dict[str, Any], np.ndarray]],
                                                                   dict[str, np.ndarray]]:
    """Cells grouped by everything but the initial condition (one config and model per group),
    and the initial-condition axes' values per cell (vectorised: no per-cell Python work)."""
    cells_a = np.asarray(cells, dtype=np.int64)
    idx = np.unravel_index(cells_a, spec.shape) if spec.axes else ()
    init_only = [k for k, a in enumerate(spec.axes) if all(f in ("init.a0", "init.m0") for f in a.fields)]
    other = [k for k in range(len(spec.axes)) if k not in init_only]
    if other:
        # one integer per combination of the other axes' indices (1-D np.unique: fast)
        flat = np.ravel_multi_index(tuple(idx[k] for k in other), tuple(spec.shape[k] for k in other))
        uniq_flat, inv = np.unique(flat, return_inverse=True)
        inv = np.asarray(inv).reshape(-1)
        uniq = np.stack(np.unravel_index(uniq_flat, tuple(spec.shape[k] for k in other)), axis=1).tolist()
    else:
        uniq, inv = [[]], np.zeros(cells_a.size, dtype=np.int64)
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1)).tolist()
    groups = []
    for g, key in enumerate(uniq):
        overrides: dict[str, Any] = {}
        for k, i in zip(other, key):
            ax = spec.axes[k]
            for p, v in zip(ax.fields, ax.values):
                overrides[p] = v[i].item()
        groups.append((overrides, order[bounds[g]:bounds[g + 1]]))
    init: dict[str, np.ndarray] = {}
    for k in init_only:
        ax = spec.axes[k]
        for p, v in zip(ax.fields, ax.values):
            init[p] = np.asarray(v, dtype=float)[idx[k]]
    return groups, init


def _by_model(models: Sequence[Any], js: Sequence[int]) -> list[tuple[Any, np.ndarray]]:
    ids: dict[int, list[int]] = {}
    for j in js:
        ids.setdefault(id(models[j]), []).append(j)
    return [(models[v[0]], np.array(v)) for v in ids.values()]


@functools.lru_cache(maxsize=16)
def _save_times(t_max: float, points: int) -> np.ndarray:
    from .ode import log_times

    t = log_times(t_max, points)
    t.setflags(write=False)
    return t


def _run_ode_task(spec: SweepSpec, cells: Sequence[int], threads: int, compute_lock: Any = None) -> dict[str, np.ndarray]:
    from .analysis import _classify_arrays, asymptotic_law
    from .ode import solve_ode_batch

    nc = len(cells)
    cache = _ModelCache()
    err = np.full(nc, "", dtype=object)
    groups, init = _cell_groups(spec, cells)
    a0_all = np.full(nc, np.nan)
    m0_all = np.full(nc, np.nan)
    models: list[Any] = [None] * nc
    settings: dict[tuple[Any, ...], list[np.ndarray]] = {}
    for overrides, members in groups:
        try:
            cfg, special = _cell_config(spec.base, overrides)
            model = cache.get(cfg, special)
        except (ValueError, ArithmeticError) as exc:
            err[members] = _error_text(exc)
            continue
        a0_all[members], m0_all[members] = cfg.init.a0, cfg.init.m0
        for j in members:
            models[j] = model
        settings.setdefault((cfg.ode.rtol, cfg.ode.atol, cfg.analysis.classify_t_max), []).append(members)
    if "init.a0" in init:
        a0_all = np.where(np.isnan(a0_all), np.nan, init["init.a0"])
    if "init.m0" in init:
        m0_all = np.where(np.isnan(m0_all), np.nan, init["init.m0"])
    out: dict[str, np.ndarray] = {"cells": np.asarray(cells, dtype=np.int64)}
    t = _save_times(spec.base.ode.t_max, spec.base.ode.points)
    do_ode, do_an = "ode" in spec.compute, "analysis" in spec.compute
    if do_ode:
        for k in ("ode_m", "ode_a", "ode_loss"):
            out[k] = np.full((nc, t.size), np.nan)
        for k in ("m_peak", "t_peak", "t_half", "m_final", "a_final"):
            out[k] = np.full(nc, np.nan)
        out["ode_status"] = np.full(nc, -100, dtype=np.int32)
        out["ode_message"] = np.full(nc, "", dtype=object)
    if do_an:
        out["outcome"] = np.full(nc, "", dtype=object)
        out["exponent"] = np.full(nc, np.nan)
        out["law"] = np.full(nc, "", dtype=object)
        out["law_exponent"] = np.full(nc, np.nan)
    groups_by_setting = {key: np.sort(np.concatenate(parts)).tolist() for key, parts in settings.items()}

    def batch(js: list[int], t_eval: np.ndarray, rtol: float, atol: float) -> Any:
        ms, a0s, m0s = [models[j] for j in js], a0_all[js], m0_all[js]
        with compute_lock or contextlib.nullcontext():
            return solve_ode_batch(ms, a0s, m0s, t_eval, rtol=rtol, atol=atol, threads=threads)

    for (rtol, atol, t_cls), js in groups_by_setting.items():
        try:
            if do_ode:
                bt = batch(js, t, rtol, atol)
                idx = np.array(js)
                out["ode_m"][idx], out["ode_a"][idx], out["ode_loss"][idx] = bt.m, bt.a, bt.loss
                out["m_peak"][idx], out["t_peak"][idx], out["t_half"][idx] = bt.m_peak, bt.t_peak, bt.t_half
                out["m_final"][idx], out["a_final"][idx] = bt.m[:, -1], bt.a[:, -1]
                status = np.asarray(bt.status)
                out["ode_status"][idx] = status
                out["ode_message"][idx] = np.where(status != 0, np.array(bt.message, dtype=object), "")
            if do_an:
                tc = np.array([0.0, t_cls / 10.0, t_cls])
                bc = batch(js, tc, rtol, 1e-10)
                oc, ex = _classify_arrays(bc.m, bc.a, tc, np.asarray(bc.status), 1e-6, 1e-3, 0.02)
                idx = np.array(js)
                out["outcome"][idx] = np.asarray(oc).astype(str).astype(object)
                out["exponent"][idx] = ex
                # the law, once per distinct model
                for mdl, members in _by_model(models, js):
                    try:
                        law = asymptotic_law(mdl, limits=False)
                    except (ValueError, ArithmeticError) as exc:
                        err[members] = _error_text(exc)
                        continue
                    out["law"][members] = law.verdict
                    out["law_exponent"][members] = law.exponent
        except (ValueError, ArithmeticError, RuntimeError) as exc:
            err[np.array(js)] = _error_text(exc)
    out["error"] = err
    return {k: (v.astype(str) if v.dtype == object else v) for k, v in out.items()}


def _run_sgd_task(spec: SweepSpec, cell: int, threads: int, compute_lock: Any = None) -> dict[str, np.ndarray]:
    from .ode import solve_ode
    from .sgd import compare, train_sgd

    R = spec.base.sgd.record
    out: dict[str, np.ndarray] = {"cells": np.array([cell], dtype=np.int64)}
    for k in _SGD_SERIES:
        out[k] = np.full((1, R), np.nan)
    out["sgd_max_dm"] = np.full(1, np.nan)
    out["sgd_max_da"] = np.full(1, np.nan)
    try:
        cfg, special = _cell_config(spec.base, spec.cell_overrides(cell))
        model = _ModelCache().get(cfg, special)
        sg = cfg.sgd
        with compute_lock or contextlib.nullcontext():
            res = train_sgd(model, sg.d, sg.n, sg.batch, sg.dt, sg.steps, cfg.init.a0, cfg.init.m0,
                            seed=sg.seeds[0], dtype=sg.dtype, record=R, spacing="linear", threads=threads,
                            progress=False)
        ode = solve_ode(model, cfg.init.a0, cfg.init.m0, res.t, rtol=cfg.ode.rtol, atol=cfg.ode.atol,
                        dense_output=False)
        c = compare(res, ode)
        k = res.t.size
        for name, v in (("sgd_t", res.t), ("sgd_m_mean", res.m_mean), ("sgd_m_std", res.m_std),
                        ("sgd_a_mean", res.a_mean), ("sgd_a_std", res.a_std), ("sgd_batch_loss", res.batch_loss),
                        ("sgd_pop_loss", res.pop_loss), ("sgd_ode_m", ode.m), ("sgd_ode_a", ode.a)):
            out[name][0, :k] = v
        out["sgd_max_dm"][0], out["sgd_max_da"][0] = c.max_dm, c.max_da
        out["error"] = np.array([""])
    except (ValueError, ArithmeticError, RuntimeError, MemoryError) as exc:
        out["error"] = np.array([_error_text(exc)])
    return out


_SGD_SERIES = ("sgd_t", "sgd_m_mean", "sgd_m_std", "sgd_a_mean", "sgd_a_std", "sgd_batch_loss", "sgd_pop_loss",
               "sgd_ode_m", "sgd_ode_a")


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return max(1, os.cpu_count() or 1)


def run_task(spec_dict: dict[str, Any], task_id: str, kind: str, cells: Sequence[int],
             threads: int | Mapping[str, int] | None = None, compute_lock: Any = None) -> dict[str, np.ndarray]:
    """Compute one task (the unit a Dask worker runs); returns the arrays of its shard.

    ``threads`` is a number, or ``{host: concurrent task slots}`` (the task then takes its host's
    usable cores divided by its slots), or None (every usable core). ``compute_lock`` (a lock, or
    None) is held around the task's C++ calls: tasks that share it compute one at a time while the
    others prepare their inputs and results (see ``_run_threads``).
    """
    spec = _spec_from_dict(spec_dict)
    if isinstance(threads, Mapping):
        slots = None
        try:
            from distributed import get_worker

            w = get_worker()
            host = w.address.rsplit(":", 1)[0].split("://")[-1]
            slots = threads.get(host) or w.state.nthreads
        except (ImportError, ValueError, AttributeError):
            pass
        nthreads = max(1, _usable_cores() // max(1, int(slots or 1)))
    else:
        from .ode import default_threads

        nthreads = int(threads) if threads else default_threads()
    if kind == "ode":
        return _run_ode_task(spec, cells, nthreads, compute_lock)
    return _run_sgd_task(spec, cells[0], nthreads, compute_lock)


_SPEC_CACHE: dict[str, SweepSpec] = {}


def _spec_from_dict(d: Mapping[str, Any]) -> SweepSpec:
    key = d.get("fingerprint")
    if key is not None and key in _SPEC_CACHE:
        return _SPEC_CACHE[key]
    spec = _build_spec(d)
    if key is not None:
        if len(_SPEC_CACHE) > 8:
            _SPEC_CACHE.clear()
        _SPEC_CACHE[key] = spec
    return spec


def _build_spec(d: Mapping[str, Any]) -> SweepSpec:
    axes = tuple(Axis(a["name"], tuple(a["fields"]), tuple(np.array(v) for v in a["values"])) for a in d["axes"])
    return SweepSpec(base=parse_config(d["base"]), axes=axes, compute=tuple(d["compute"]), chunk=int(d["chunk"]))


# --------------------------------------------------------------------------------------------- store


def _atomic_write(path: Path, write: Any, sync: bool = True) -> None:
    """Write to ``.NAME.PID.tmp`` and rename over ``path``: a reader sees the old file or the whole
    new one, never part of it. ``sync``: fsync the file before the rename and the directory after
    (durable across a power cut, not only a crash of this process)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    if not sync:
        return
    try:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # pragma: no cover - directories that cannot be fsynced
        pass


_SHARD_MAGIC = b"FASTSLOW-SHARD-1\n"


def _shard_bytes(arrays: Mapping[str, np.ndarray]) -> list[bytes | memoryview]:
    """A shard file's parts: the magic line, an 8-byte header length, a JSON header (each array's
    name, dtype, shape and byte range, and the CRC-32 of the payload) and the raw arrays (C order).
    Four times faster to write than ``np.savez`` (zip members, each with its own headers and CRC):
    10 ms against 35 ms for the 16 shards of a 100 x 100 phase diagram."""
    entries, payload, offset, crc = [], [], 0, 0
    for name, v in arrays.items():
        a = np.ascontiguousarray(v)
        if a.dtype.hasobject:
            raise TypeError(f"shard array {name}: object arrays cannot be stored")
        buf = memoryview(a).cast("B") if a.size else memoryview(b"")
        entries.append({"name": name, "dtype": a.dtype.str, "shape": list(a.shape), "offset": offset,
                        "nbytes": a.nbytes})
        crc = zlib.crc32(buf, crc)
        payload.append(buf)
        offset += a.nbytes
    header = json.dumps({"arrays": entries, "payload_bytes": offset, "crc32": crc}).encode()
    return [_SHARD_MAGIC, len(header).to_bytes(8, "little"), header, *payload]


def _read_shard(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a shard file (``.shard``; a legacy ``.npz`` through ``np.load``); ValueError
    for a damaged one: wrong magic, truncated, trailing bytes or a payload that fails its CRC."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    raw = path.read_bytes()
    m = len(_SHARD_MAGIC)
    if raw[:m] != _SHARD_MAGIC or len(raw) < m + 8:
        raise ValueError("not a fastslow shard (bad magic)")
    hlen = int.from_bytes(raw[m:m + 8], "little")
    start = m + 8 + hlen
    if start > len(raw):
        raise ValueError("truncated header")
    try:
        header = json.loads(raw[m + 8:start])
        payload = memoryview(raw)[start:]
        if len(payload) != header["payload_bytes"]:
            raise ValueError(f"payload of {len(payload)} bytes, expected {header['payload_bytes']}")
        if zlib.crc32(payload) != header["crc32"]:
            raise ValueError("CRC-32 mismatch")
        return {e["name"]: np.frombuffer(payload[e["offset"]:e["offset"] + e["nbytes"]],
                                         dtype=np.dtype(e["dtype"])).reshape(e["shape"]) for e in header["arrays"]}
    except (KeyError, TypeError, IndexError, AttributeError) as exc:  # a damaged header
        raise ValueError(f"damaged header ({type(exc).__name__}: {exc})") from None


def _shard_files(shards: Path) -> list[Path]:
    return sorted([*shards.glob("*.shard"), *shards.glob("*.npz")])


class _Store:
    """``STORE/spec.json``, ``STORE/shards/<task>.shard`` (one per finished task), ``STORE/dataset.nc``,
    ``STORE/runs.jsonl`` (one line per invocation)."""

    def __init__(self, path: str | os.PathLike, spec: SweepSpec) -> None:
        self.path = Path(path)
        self.shards = self.path / "shards"
        self._meta = {"store_version": _STORE_VERSION, "fingerprint": spec.fingerprint, "spec": spec.to_dict()}
        spec_file = self.path / "spec.json"
        if self.path.exists() and not self.path.is_dir():
            raise SweepError(f"store: {self.path} exists and is not a directory")
        self._created = spec_file.exists()
        if self._created:
            try:
                old = json.loads(spec_file.read_text())
            except (OSError, ValueError) as exc:
                raise SweepError(f"store: {spec_file} is damaged ({exc}); delete the store or use another") from None
            if old.get("fingerprint") != spec.fingerprint:
                raise SweepError(f"store: {self.path} holds a different sweep (fingerprint "
                                 f"{str(old.get('fingerprint'))[:12]}..., this spec {spec.fingerprint[:12]}...); "
                                 "use another store or delete it")
            self.shards.mkdir(parents=True, exist_ok=True)
            self._remove_stale_temporaries()
        elif self.path.exists() and any(not self._leftover(p) for p in self.path.iterdir()):
            raise SweepError(f"store: {self.path} is not empty and holds no sweep; use an empty or new directory")
        else:  # fail now, not after the first task, if the directory cannot be made
            self.path.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _leftover(p: Path) -> bool:
        """What a run killed before its first file was written leaves in a new store: a temporary
        ``.NAME.PID.tmp`` or an empty ``shards/``."""
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            return True
        return p.name == "shards" and p.is_dir() and not any(p.iterdir())

    def _create(self) -> None:
        """A new store's ``shards/`` and ``spec.json`` (fsynced), made before its first file is
        written rather than before the first task starts: the fsync, which also flushes whatever
        else the file system holds dirty, then overlaps the computation (it took 0.3 to 300 ms
        here)."""
        if self._created:
            return
        self.shards.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()
        _atomic_write(self.path / "spec.json", lambda fh: fh.write(json.dumps(self._meta, indent=1).encode()))
        self._created = True

    def _remove_stale_temporaries(self) -> None:
        """A process killed mid-write (SIGKILL) leaves ``.NAME.PID.tmp``: removed once PID is gone."""
        for tmp in [*self.shards.glob(".*.tmp"), *self.path.glob(".*.tmp")]:
            try:
                pid = int(tmp.name.rsplit(".", 2)[-2])
                os.kill(pid, 0)
                continue  # still running (another sweep on this store?): leave it
            except (ValueError, IndexError, ProcessLookupError):
                pass
            except PermissionError:
                continue
            tmp.unlink(missing_ok=True)

    def finished(self) -> dict[str, dict[str, np.ndarray]]:
        """The readable shards; a damaged one (a crash mid-write cannot make one, but a disk can) is
        moved aside with a warning and its task runs again."""
        out = {}
        for p in _shard_files(self.shards):
            try:
                out[p.stem] = _read_shard(p)
                if "cells" not in out[p.stem] or "error" not in out[p.stem]:
                    raise ValueError("missing arrays")
            except Exception as exc:  # noqa: BLE001 - any unreadable file
                out.pop(p.stem, None)
                bad = p.with_suffix(".damaged")
                warnings.warn(f"sweep store: shard {p.name} is unreadable ({exc}); moved to {bad.name}, its "
                              "cells run again", RuntimeWarning, stacklevel=3)
                os.replace(p, bad)
        return out

    def write_shard(self, task_id: str, arrays: Mapping[str, np.ndarray]) -> None:
        # Atomic (rename) but not fsynced: a killed process never leaves part of a shard. After a
        # power cut the newest shards may be missing or, on some file systems, zero-filled; the
        # shard's length and CRC checks make such a shard unreadable, and `finished` then runs its
        # task again. (fsyncing every shard cost ~5 ms each here, next to tasks of ~70 ms.)
        parts = _shard_bytes(arrays)
        self._create()
        _atomic_write(self.shards / f"{task_id}.shard", lambda fh: fh.writelines(parts), sync=False)

    def write_dataset(self, ds: Any) -> None:
        self._create()
        target = self.path / "dataset.nc"
        tmp = self.path / f".dataset.nc.{os.getpid()}.tmp"
        try:
            if _nc_engine() == "netcdf4":
                _write_netcdf4(ds, tmp)  # a view of the shards, rebuilt by any later run
            else:
                # strings as fixed-width character arrays, as _write_netcdf4 writes them
                enc = {k: {"dtype": "S1"} for k, v in ds.data_vars.items() if v.dtype.kind == "U"}
                ds.to_netcdf(tmp, engine="h5netcdf", encoding=enc)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()

    def log(self, record: Mapping[str, Any]) -> None:
        self._create()
        with open(self.path / "runs.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def _utf8_bytes(a: np.ndarray) -> np.ndarray:
    """A unicode array as fixed-width UTF-8 bytes, as wide as its longest value (at least 1), the
    way xarray encodes strings; ASCII (every value a sweep writes, in practice) without a Python
    loop."""
    a = np.ascontiguousarray(a)
    n = a.dtype.itemsize // 4
    if n == 0 or a.size == 0:
        return np.zeros(a.shape, dtype="S1")
    cp = a.view(np.uint32).reshape(a.shape + (n,))
    if int(cp.max()) < 128:
        nz = cp != 0  # a value ends after its last non-NUL character (it may hold NULs inside)
        width = max(1, int(np.max(np.where(nz.any(axis=-1), n - np.argmax(nz[..., ::-1], axis=-1), 0))))
        return np.ascontiguousarray(cp[..., :width]).astype(np.uint8).view(f"S{width}").reshape(a.shape)
    return np.array([x.encode("utf-8") for x in a.ravel()], dtype=bytes).reshape(a.shape)


def _write_netcdf4(ds: Any, path: str | os.PathLike) -> None:
    """Write a sweep's dataset (float, integer, bool and string variables) with the netCDF4
    library, the way ``ds.to_netcdf(engine="netcdf4", encoding={strings: {"dtype": "S1"}})``
    writes it: the same dimensions, variables, ``_FillValue`` (NaN for floats), strings as UTF-8
    character arrays with ``_Encoding``, bools as int8 with ``dtype = "bool"``, the ``coordinates``
    attributes; ``xarray.open_dataset`` reads back an identical dataset (tests). Faster: 27 ms
    against 45 ms for a 100 x 100 phase diagram (bench/RESULTS.md), most of the rest being the
    page cache (5.5 MB); xarray's per-variable encoding cost more than the HDF5 calls, and the
    sweep writes this file on its way out, while nothing else runs."""
    import netCDF4

    variables = ds.variables  # data variables and coordinates
    non_dim = sorted(str(k) for k in ds.coords if k not in ds.dims)
    non_dim_dims = {c: set(variables[c].dims) for c in non_dim}
    written: set[str] = set()
    with netCDF4.Dataset(path, "w", format="NETCDF4") as f:
        for name, size in ds.sizes.items():
            f.createDimension(str(name), int(size))
        for name, var in variables.items():
            data, dims, attrs = var.values, tuple(str(x) for x in var.dims), dict(var.attrs)
            kind = data.dtype.kind
            if kind == "U":
                b = _utf8_bytes(data)
                char_dim = f"string{b.dtype.itemsize}"
                if char_dim not in f.dimensions:
                    f.createDimension(char_dim, b.dtype.itemsize)
                data = b.reshape(b.shape + (1,)).view("S1")
                v = f.createVariable(name, "S1", dims + (char_dim,), fill_value=False)
                attrs["_Encoding"] = "utf-8"
            elif kind == "b":
                data = data.astype(np.int8)
                v = f.createVariable(name, "i1", dims, fill_value=False)
                attrs["dtype"] = "bool"
            elif kind == "f":
                v = f.createVariable(name, data.dtype, dims, fill_value=data.dtype.type(np.nan))
            elif kind in "iu":
                v = f.createVariable(name, data.dtype, dims, fill_value=False)
            else:
                raise TypeError(f"sweep dataset: variable {name!r} of dtype {data.dtype} is not written by this writer")
            if name not in non_dim and name not in var.dims:
                mine = [c for c in non_dim if non_dim_dims[c] <= set(var.dims)]
                if mine:
                    attrs["coordinates"] = " ".join(mine)
                    written.update(mine)
            v.set_auto_chartostring(False)
            v[...] = data
            v.setncatts(attrs)
        attrs = dict(ds.attrs)
        rest = [c for c in non_dim if c not in written]
        if rest:
            attrs["coordinates"] = " ".join(rest)
        f.setncatts(attrs)


def _nc_engine() -> str:
    """netCDF4 through the netCDF4 library (about 4 times faster than h5netcdf for a sweep's many
    small variables: 60 ms against 240 ms for 10,000 cells), else h5netcdf."""
    for module, engine in (("netCDF4", "netcdf4"), ("h5netcdf", "h5netcdf")):
        try:
            __import__(module)
            return engine
        except ImportError:
            continue
    raise ImportError("writing the sweep's netCDF file needs netCDF4: pip install 'fastslow[sweep]'")


# ------------------------------------------------------------------------------------------ assembly


def _wide_enough(target: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``target`` (a unicode array), widened if ``values`` holds longer strings."""
    if values.dtype.itemsize > target.dtype.itemsize:
        return target.astype(values.dtype)
    return target


class _Results:
    """The dataset's arrays, filled in as shards arrive."""

    def __init__(self, spec: SweepSpec) -> None:
        from .ode import log_times

        self.spec = spec
        n = spec.n_cells
        self.t = log_times(spec.base.ode.t_max, spec.base.ode.points)
        R = spec.base.sgd.record
        # strings as fixed-width unicode, widened when a longer value arrives (no conversion of
        # 10,000 objects per dataset)
        self.per_cell: dict[str, np.ndarray] = {}
        # trajectories (cells x times): made when first filled (see _series), not before the
        # first task can start: their pages cost ~1 ms per 10,000 x 21 here
        self.series: dict[str, np.ndarray | None] = {}
        self._series_shape: dict[str, tuple[int, int]] = {}
        if "ode" in spec.compute:
            for k in ("ode_m", "ode_a", "ode_loss"):
                self.series[k], self._series_shape[k] = None, (n, self.t.size)
            for k in ("m_peak", "t_peak", "t_half", "m_final", "a_final"):
                self.per_cell[k] = np.full(n, np.nan)
            self.per_cell["ode_status"] = np.full(n, -100, dtype=np.int32)
            self.per_cell["ode_message"] = np.zeros(n, dtype="U1")
        if "analysis" in spec.compute:
            self.per_cell["outcome"] = np.zeros(n, dtype="U1")
            self.per_cell["exponent"] = np.full(n, np.nan)
            self.per_cell["law"] = np.zeros(n, dtype="U1")
            self.per_cell["law_exponent"] = np.full(n, np.nan)
        if "sgd" in spec.compute:
            for k in _SGD_SERIES:
                self.series[k], self._series_shape[k] = None, (n, R)
            self.per_cell["sgd_max_dm"] = np.full(n, np.nan)
            self.per_cell["sgd_max_da"] = np.full(n, np.nan)
        # per task kind: which cells are done (a cell is done when all its tasks are)
        self.kind_done = {k: np.zeros(n, dtype=bool) for k in {t.kind for t in _plan(spec)}}
        self.errors: dict[str, np.ndarray] = {k: np.zeros(n, dtype="U1") for k in sorted(self.kind_done)}

    def add(self, task_id: str, arrays: Mapping[str, np.ndarray]) -> int:
        """Fill in one shard; returns the number of its cells that failed."""
        kind = task_id.split("-", 1)[0]
        cells = np.asarray(arrays["cells"], dtype=np.int64)
        for k, v in arrays.items():
            if k in ("cells", "error"):
                continue
            target = self._series(k) if k in self.series else self.per_cell.get(k)
            if target is None:
                continue  # an array this spec does not keep
            if target.dtype.kind == "U":
                v = np.asarray(v).astype(str)
                target = self.per_cell[k] = _wide_enough(target, v)
            if target.ndim == 2:
                target[cells, : v.shape[1]] = v
            else:
                target[cells] = v
        err = np.asarray(arrays["error"]).astype(str)
        self.errors[kind] = _wide_enough(self.errors[kind], err)
        self.errors[kind][cells] = err
        self.kind_done[kind][cells] = True
        return int(np.count_nonzero(err != ""))

    def _series(self, k: str) -> np.ndarray:
        a = self.series[k]
        if a is None:
            a = self.series[k] = np.full(self._series_shape[k], np.nan)
        return a

    @property
    def done(self) -> np.ndarray:
        out = np.ones(self.spec.n_cells, dtype=bool)
        for d in self.kind_done.values():
            out &= d
        return out

    def dataset(self) -> Any:
        import xarray as xr

        spec = self.spec
        dims = tuple(a.name for a in spec.axes)
        shape = spec.shape
        coords: dict[str, Any] = {}
        for a in spec.axes:
            coords[a.name] = (a.name, a.values[0])
            for p, v in zip(a.fields, a.values):
                if p != a.name:
                    coords[p] = (a.name, v)
        kinds = list(self.errors.values())
        err = kinds[0].copy() if kinds else np.zeros(spec.n_cells, dtype="U1")
        for e in kinds[1:]:  # a cell's errors from each kind of task, joined by "; "
            idx = np.flatnonzero(e != "")
            if idx.size:
                joined = [f"{a}; {b}" if a else b for a, b in zip(err[idx].tolist(), e[idx].tolist())]
                err = _wide_enough(err, np.array(joined))
                err[idx] = joined
        data: dict[str, Any] = {}
        for k in self.series:
            v = self._series(k)
            extra = "t" if k.startswith("ode_") else "record"
            data[k] = (dims + (extra,), v.reshape(shape + v.shape[1:]))
        for k, v in self.per_cell.items():
            data[k] = (dims, (v.copy() if v.dtype.kind == "U" else v).reshape(shape))
        data["error"] = (dims, err.reshape(shape))
        data["done"] = (dims, self.done.reshape(shape))
        if "ode" in spec.compute:
            coords["t"] = ("t", self.t)
        if "sgd" in spec.compute:
            coords["record"] = ("record", np.arange(spec.base.sgd.record))
        from . import __version__

        attrs = {"title": "fastslow sweep", "fastslow_version": __version__, "fingerprint": spec.fingerprint,
                 "spec": spec._json, "compute": ",".join(spec.compute)}
        ds = xr.Dataset(data, coords=coords, attrs=attrs)
        _annotate(ds)
        return ds


_DESCRIPTIONS = {
    "ode_m": "m(t) of the limit ODE", "ode_a": "a(t) of the limit ODE", "ode_loss": "population loss on the ODE",
    "m_peak": "peak alignment of the ODE", "t_peak": "time of the peak alignment",
    "t_half": "unlearning half-life: first time after the peak with m = m_peak / 2 (NaN: not reached)",
    "m_final": "m at ode.t_max", "a_final": "a at ode.t_max",
    "ode_status": "0 success, < 0 failure (-100: not computed)", "ode_message": "the solver's message on failure",
    "outcome": "classification by analysis.classify_t_max: learning, lazy, unlearning, undetermined, failed",
    "exponent": "measured d log|a| / d log t over the last decade before analysis.classify_t_max",
    "law": "asymptotic law's verdict: unlearning, learning, pinned, undetermined",
    "law_exponent": "asymptotic law's exponent 1/(q+1) (NaN unless unlearning)",
    "sgd_t": "ODE time of each SGD record", "sgd_m_mean": "SGD mean alignment", "sgd_m_std": "SGD alignment spread",
    "sgd_a_mean": "SGD mean second-layer weight", "sgd_a_std": "SGD second-layer spread",
    "sgd_batch_loss": "SGD batch loss", "sgd_pop_loss": "exact population loss of the finite network",
    "sgd_ode_m": "limit ODE m at the SGD record times", "sgd_ode_a": "limit ODE a at the SGD record times",
    "sgd_max_dm": "max |m_mean - m_ODE| over the records", "sgd_max_da": "max |a_mean - a_ODE| over the records",
    "error": "the cell's error ('' if none)", "done": "every task of the cell finished",
}


def _annotate(ds: Any) -> None:
    for k, v in _DESCRIPTIONS.items():
        if k in ds:
            ds[k].attrs["description"] = v
    if "t" in ds.coords:
        ds["t"].attrs.update(units="ODE time (SGD steps x dt)", description="save points (0 and log-spaced)")


# ------------------------------------------------------------------------------------------- drivers


def _client_from(client: Any, workers: int | None) -> tuple[Any, Any, bool]:
    """(client, the cluster we started or None, whether we opened the client)."""
    try:
        import distributed
    except ImportError:
        raise ImportError("running a sweep on Dask needs distributed: pip install 'fastslow[sweep]'") from None
    if isinstance(client, str):
        if client == "local":
            n = workers or _usable_cores()
            cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                               dashboard_address=":0")
            return distributed.Client(cluster), cluster, True
        if not client.startswith(("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")):
            raise SweepError(f"client: a scheduler address looks like tcp://host:port, got {client!r}")
        try:
            return distributed.Client(client, timeout=30), None, True
        except OSError as exc:
            raise SweepError(f"client: cannot reach the Dask scheduler at {client} ({exc})") from None
    if isinstance(client, distributed.Client):
        return client, None, False
    raise SweepError(f"client: expected None, a distributed.Client, 'local' or a scheduler address, got {client!r}")


def _slots_by_host(client: Any) -> dict[str, int]:
    slots: dict[str, int] = {}
    for addr, w in client.scheduler_info(n_workers=-1).get("workers", {}).items():
        host = addr.rsplit(":", 1)[0].split("://")[-1]
        slots[host] = slots.get(host, 0) + int(w.get("nthreads", 1))
    return slots


def sweep(spec: SweepSpec | Mapping[str, Any] | str | os.PathLike, client: Any = None,
          store: str | os.PathLike | None = None, *, workers: int | None = None, progress: bool = True,
          flush_seconds: float = 60.0) -> Any:
    """Run a sweep and return its results as an :class:`xarray.Dataset`.

    Parameters
    ----------
    spec : SweepSpec, dict or path
        The sweep (see :class:`SweepSpec`; a path is a TOML file).
    client : None, distributed.Client, str
        None: this machine (see the module docstring); a ``distributed.Client``; a scheduler address
        ``"tcp://host:port"``; or ``"local"`` for a local Dask cluster of ``workers`` processes.
    store : path, optional
        Directory for the results (created if missing). Finished tasks are written as they finish;
        running again with the same store and spec computes only the missing tasks. A store of a
        different spec is refused.
    workers : int, optional
        Concurrent tasks on this machine: with ``client=None``, 1 (default) computes one task at a
        time with every core (pipelined, see above); more runs that many SGD tasks at once on
        threads in this process (``cores // workers`` cores each; ODE tasks stay pipelined); with
        ``client="local"``, the number of Dask worker processes.
    progress : bool
        A progress bar: cells done, failed, rate and the estimated time left.
    flush_seconds : float
        While running, rewrite ``STORE/dataset.nc`` at most this often (always at the end).

    Returns
    -------
    xarray.Dataset
        Axes as dimension coordinates (and ``t`` / ``record`` for trajectories); ``done`` marks
        finished cells and ``error`` holds a failed cell's error. ``attrs["spec"]`` is the spec
        (JSON); how this invocation went is in ``attrs["run"]`` and ``STORE/runs.jsonl``.
    """
    try:
        import xarray  # noqa: F401
    except ImportError:
        raise ImportError("sweeps need xarray: pip install 'fastslow[sweep]'") from None
    spec = _as_spec(spec)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SweepError(f"workers: expected an integer >= 1, got {workers!r}")
    if not (isinstance(flush_seconds, (int, float)) and flush_seconds > 0):
        raise SweepError(f"flush_seconds: expected a number > 0, got {flush_seconds!r}")
    _check_memory(spec)
    if store is not None:
        __import__({"netcdf4": "netCDF4", "h5netcdf": "h5netcdf"}[_nc_engine()])  # now, not on the way out
    st = _Store(store, spec) if store is not None else None
    results = _Results(spec)
    tasks = _plan(spec)
    reused = 0
    if st is not None:
        planned = {t.id for t in tasks}
        have = {tid: arrays for tid, arrays in st.finished().items() if tid in planned}
        for tid, arrays in have.items():
            results.add(tid, arrays)
        reused = len(have)
        tasks = [t for t in tasks if t.id not in have]
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=spec.n_cells, initial=int(results.done.sum()), unit="cell", desc="sweep", smoothing=0.1,
                   dynamic_ncols=True)
    state = {"last_flush": time.monotonic(), "failed": 0, "computed": 0, "cells": 0}

    def finish(task: _Task, arrays: Mapping[str, np.ndarray]) -> None:
        before = int(results.done.sum()) if bar is not None else 0
        # the shard, the in-memory results and the counts (runs.jsonl) agree whenever Ctrl-C comes
        with guard.critical():
            if st is not None:
                st.write_shard(task.id, arrays)
            state["failed"] += results.add(task.id, arrays)
            state["computed"] += 1
            state["cells"] += len(task.cells)
        if bar is not None:
            bar.update(int(results.done.sum()) - before)
            bar.set_postfix(failed=state["failed"], refresh=False)
        if st is not None and time.monotonic() - state["last_flush"] > flush_seconds:
            st.write_dataset(results.dataset())
            state["last_flush"] = time.monotonic()

    executor = "in-process"
    spec_dict = dict(spec.to_dict(), fingerprint=spec.fingerprint)
    interrupted = False
    guard = _SigintGuard()
    try:
        guard.__enter__()
        if client is None:
            # worker threads compute while this thread writes the finished tasks (and sees Ctrl-C)
            executor = f"in-process, {workers or 1} thread(s)"
            _run_threads(spec_dict, tasks, finish, workers or 1)
        else:
            cl, owned, opened = _client_from("local" if client is None else client, workers)
            executor = "dask-local" if owned is not None else f"dask {cl.scheduler.address}"
            try:
                _run_dask(cl, spec, spec_dict, tasks, finish)
            finally:
                if opened:
                    cl.close()
                if owned is not None:
                    owned.close()
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        guard.__exit__()
        if bar is not None:
            bar.close()
        run = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "executor": executor, "tasks_run": state["computed"],
               "tasks_reused": reused, "cells_run": state["cells"], "cells_failed_now": state["failed"],
               "cells_done": int(results.done.sum()), "cells": spec.n_cells, "interrupted": interrupted,
               "seconds": round(time.perf_counter() - start, 3)}
        ds = None
        if st is not None:
            if not interrupted:  # after Ctrl-C, return at once: open_sweep rebuilds the file from the shards
                ds = results.dataset()
                st.write_dataset(ds)  # always: the file is a view of the shards
            st.log(run)
    if ds is None:
        ds = results.dataset()
    ds.attrs["run"] = json.dumps(run)
    return ds


class _SigintGuard:
    """While a sweep runs (main thread, Python's default SIGINT handler in place), Ctrl-C raises
    KeyboardInterrupt as usual, except inside :meth:`critical`, where it is held back until the
    section ends. Python runs signal handlers in the main thread between bytecodes, whichever
    thread the signal hit, so the flag is reliable (a blocked signal mask is not: the C++ core's
    threads would take the signal)."""

    def __init__(self) -> None:
        import signal
        import threading

        self._signal = signal
        self.active = (threading.current_thread() is threading.main_thread()
                       and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        self.in_critical = False
        self.pending = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.in_critical:
            self.pending = True
            return
        raise KeyboardInterrupt

    def __enter__(self) -> "_SigintGuard":
        if self.active:
            self._signal.signal(self._signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.active:
            self._signal.signal(self._signal.SIGINT, self._signal.default_int_handler)

    @contextlib.contextmanager
    def critical(self) -> Any:
        self.in_critical = True
        try:
            yield
        finally:
            self.in_critical = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


def _run_threads(spec_dict: dict[str, Any], tasks: list[_Task], finish: Any, workers: int) -> None:
    """Tasks on threads in this process (the C++ core releases the GIL). On Ctrl-C (seen by the
    main thread, which waits in short slices) a cancel token stops the running C++ calls within
    about 50 ms.

    ODE/analysis tasks (and every task when ``workers`` is 1) run as a two-stage pipeline: two
    threads, one lock around the C++ calls, every core for each call. A task computes while the
    next one builds its models and groups its cells and the previous one assembles its arrays, so
    the cores do not idle through each task's Python or the tail of each call, and the C++ work
    never overlaps (no more compute threads than cores). Measured on 2 cores (bench_sweep.py, a
    100 x 100 phase diagram in 8 tasks): the pipeline +8 % over one direct ``solve_ode_batch``
    call, 2 tasks at a time on one core each +11 % (the last task runs alone on one core).
    SGD tasks with ``workers`` > 1 run ``workers`` at a time with ``cores // workers`` threads
    each: a small network does not scale over cores, so that is faster (1.22x for 8 seeds at
    n = d = 128)."""
    from .ode import default_threads

    cores = default_threads()
    pipelined = [t for t in tasks if workers == 1 or t.kind == "ode"]
    parallel = [t for t in tasks if not (workers == 1 or t.kind == "ode")]
    if pipelined:
        _run_pool(spec_dict, pipelined, finish, pool=2, threads=cores, pipeline=True)
    if parallel:
        _run_pool(spec_dict, parallel, finish, pool=workers, threads=max(1, cores // workers), pipeline=False)


class _PipelineLock:
    """The in-process pipeline's lock (see ``_run_threads``): held around a task's C++ calls, so
    tasks compute one at a time. Besides, one task at a time prepares its inputs, from its start
    until its first C++ call: at the start of a sweep the first task then builds its models alone
    instead of sharing the interpreter with the second, and the cores start computing sooner."""

    def __init__(self) -> None:
        import threading

        self._compute = threading.Lock()
        self._prepare = threading.Lock()
        self._local = threading.local()

    def start_task(self) -> None:
        self._prepare.acquire()
        self._local.preparing = True

    def _done_preparing(self) -> None:
        if getattr(self._local, "preparing", False):
            self._local.preparing = False
            self._prepare.release()

    def end_task(self) -> None:  # also after an error before any C++ call
        self._done_preparing()

    def __enter__(self) -> "_PipelineLock":
        self._compute.acquire()
        self._done_preparing()  # the next task may start preparing
        return self

    def __exit__(self, *exc: Any) -> None:
        self._compute.release()


def _run_pool(spec_dict: dict[str, Any], tasks: list[_Task], finish: Any, *, pool: int, threads: int,
              pipeline: bool) -> None:
    import concurrent.futures as cf

    from . import _core

    token = _core.CancelToken()
    lock = _PipelineLock() if pipeline else None

    def work(task: _Task) -> dict[str, np.ndarray]:
        _core.bind_cancel_token(token)
        if lock is not None:
            lock.start_task()
        try:
            return run_task(spec_dict, task.id, task.kind, task.cells, threads, compute_lock=lock)
        finally:
            if lock is not None:
                lock.end_task()
            _core.bind_cancel_token(None)

    ex = cf.ThreadPoolExecutor(pool, thread_name_prefix="fastslow-sweep")
    futures = {ex.submit(work, t): t for t in tasks}
    try:
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=0.1, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                finish(futures[fut], fut.result())
    except BaseException:
        token.cancel()
        ex.shutdown(wait=True, cancel_futures=True)
        raise
    ex.shutdown(wait=True)


def _run_dask(client: Any, spec: SweepSpec, spec_dict: dict[str, Any], tasks: list[_Task], finish: Any) -> None:
    from distributed import as_completed

    slots = _slots_by_host(client)
    payload = client.scatter(spec_dict, broadcast=True) if tasks else None
    prefix = f"fastslow-sweep-{spec.fingerprint[:12]}"
    by_key = {}
    futures = []
    for task in tasks:
        fut = client.submit(run_task, payload, task.id, task.kind, list(task.cells), slots, key=f"{prefix}-{task.id}",
                            pure=False, retries=2)
        by_key[fut.key] = task
        futures.append(fut)
    try:
        for fut in as_completed(futures):
            task = by_key[fut.key]
            try:
                arrays = fut.result()
            except Exception as exc:  # noqa: BLE001 - a task that failed for good (KilledWorker, ...)
                arrays = _failed_task(spec, task, exc)
            finish(task, arrays)
            fut.release()
    except BaseException:
        client.cancel(futures)
        raise


def _failed_task(spec: SweepSpec, task: _Task, exc: BaseException) -> dict[str, np.ndarray]:
    msg = _error_text(exc)
    warnings.warn(f"sweep: task {task.id} failed: {msg}", RuntimeWarning, stacklevel=3)
    return {"cells": np.asarray(task.cells, dtype=np.int64), "error": np.full(len(task.cells), msg)}


def _check_memory(spec: SweepSpec) -> None:
    n = spec.n_cells
    per = 8 * 3 * (spec.base.ode.points + 1) if "ode" in spec.compute else 0
    per += 8 * len(_SGD_SERIES) * spec.base.sgd.record if "sgd" in spec.compute else 0
    per += 200
    need = n * per * 3  # the arrays, one dataset copy, the netCDF encoding
    from .sgd import _available_memory

    avail = _available_memory()
    if avail is not None and need > 0.8 * avail:
        raise SweepError(f"the sweep's results need about {need / 2**30:.1f} GiB ({n} cells), more than 80 % of the "
                         f"{avail / 2**30:.1f} GiB available; fewer cells or ode.points")


def open_sweep(store: str | os.PathLike) -> Any:
    """The dataset of a sweep store, loaded into memory: ``STORE/dataset.nc``, rebuilt from the
    shards first when it is missing or older than the newest shard (a sweep stopped by Ctrl-C or
    killed leaves its finished tasks only as shards)."""
    import xarray as xr

    root = Path(store)
    p = root / "dataset.nc"
    spec_file = root / "spec.json"
    if not spec_file.exists():
        raise SweepError(f"store: {spec_file} does not exist (not a sweep store, or the sweep never ran)")
    shards = _shard_files(root / "shards")
    newest = max((q.stat().st_mtime for q in shards), default=0.0)
    if not p.exists() or p.stat().st_mtime < newest:
        try:
            spec = _build_spec(json.loads(spec_file.read_text())["spec"])
        except (OSError, ValueError, KeyError) as exc:
            raise SweepError(f"store: {spec_file} is damaged ({exc})") from None
        st = _Store(root, spec)
        results = _Results(spec)
        planned = {t.id for t in _plan(spec)}
        for tid, arrays in st.finished().items():
            if tid in planned:
                results.add(tid, arrays)
        st.write_dataset(results.dataset())
    with xr.open_dataset(p, engine=_nc_engine()) as ds:
        return ds.load()
