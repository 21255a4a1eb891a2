"""The one trajectory type that every level of description returns, and their comparison.

SGD on the finite network, the limit ODE, the slow flow, the asymptotic law and the levels to come
all return a :class:`Trajectory`: save times ``t`` and, at each, the alignment ``m``, the
second-layer weight ``a`` and the population loss ``loss``, with a ``status`` and a ``message``
(SciPy's ``solve_ivp`` conventions). A batch of trajectories has a leading batch shape:
``m.shape == batch_shape + t.shape``. What only one level has lives in ``series`` (more values per
save time, such as SGD's spread over neurons ``m_std``) and ``stats`` (one value per trajectory, such
as the ODE's step count ``nsteps`` or peak alignment ``m_peak``); both read as attributes
(``traj.m_std``). A level that follows individual neurons or particles (the particle system, SGD
with ``record_neurons``) keeps their states in ``particles`` (``batch_shape + (N, T)``, a
``particle`` dimension before ``t``) and their weights in ``particle_weights``
(``batch_shape + (N,)``); ``m`` and ``a`` are then the weighted means. :func:`compare` takes any two.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Status", "Trajectory", "Comparison", "compare", "LEVELS"]

#: The levels of description, from the finite network to the law (``Trajectory.level``).
LEVELS: tuple[str, ...] = ("sgd", "effective", "ode", "particles", "slow_flow", "law")


class Status(enum.IntEnum):
    """How a trajectory ended (SciPy's convention: 0 success, negative failure)."""

    SUCCESS = 0
    """Reached the last save time."""
    STOPPED = 1
    """Stopped early at an event (the slow flow at a fold it was not asked to jump)."""
    FAILED = -1
    """Failed (``message`` says why); values past the failure are NaN."""
    INTERRUPTED = -2
    """Stopped by Ctrl-C or a cancel token before the end."""
    NOT_RUN = -100
    """Not computed (a sweep cell whose task has not run)."""

    def __str__(self) -> str:
        return self.name.lower().replace("_", " ")


def _status_text(status: Any) -> str:
    try:
        return str(Status(int(status)))
    except ValueError:
        return f"status {int(status)}"


_FIELDS = frozenset(("level", "t", "m", "a", "loss", "status", "message", "series", "stats", "events", "params",
                     "sol", "batch_dims", "coords", "particles", "particle_weights"))


def _readonly(a: np.ndarray) -> np.ndarray:
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False, repr=False)
class Trajectory:
    """Save times and the state ``(m, a)`` with the loss there, for one trajectory or a batch.

    Attributes
    ----------
    level : str
        The level of description (one of :data:`LEVELS`): ``"sgd"``, ``"ode"``, ``"slow_flow"``, ...
    t : ndarray, shape (T,)
        Save times (ODE time; for SGD ``step * dt``).
    m, a, loss : ndarray, shape ``batch_shape + (T,)``
        Alignment, second-layer weight and population loss (for SGD: the means over neurons and
        the exact population loss of the finite network).
    status : Status or ndarray of int
        A :class:`Status` for one trajectory, an integer array of ``batch_shape`` for a batch.
    message : str or ndarray of str
    series : mapping of str to ndarray
        Further values per save time, each of shape ``batch_shape + (T,)``.
    stats : mapping of str to ndarray
        Values per trajectory, each of shape ``batch_shape``.
    events : tuple
        What the trajectory met (the slow flow's folds and jumps).
    params : mapping
        The model (as plain data) and the settings that made it.
    sol : callable or None
        Dense output of a single trajectory: ``sol(t)`` gives ``(m, a)`` at any ``t`` it covers.
    batch_dims : tuple of str
        Names of the batch dimensions (for :meth:`to_xarray`).
    coords : mapping of str to ndarray
        Coordinates along the batch dimensions (for :meth:`to_xarray`), e.g. the seeds.
    particles : mapping of str to ndarray
        Per-particle (or per-neuron) values at each save time, each of shape
        ``batch_shape + (N, T)``: ``m``, ``a`` (and ``v = artanh m`` for the particle system).
        Empty for levels that follow no individual particles.
    particle_weights : ndarray or None
        The particles' weights, shape ``batch_shape + (N,)``, summing to 1 (``1/n`` for neurons).
    """

    level: str
    t: np.ndarray
    m: np.ndarray
    a: np.ndarray
    loss: np.ndarray
    status: Any = Status.SUCCESS
    message: Any = ""
    series: Mapping[str, np.ndarray] = field(default_factory=dict)
    stats: Mapping[str, np.ndarray] = field(default_factory=dict)
    events: tuple[Any, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    sol: Any = None
    batch_dims: tuple[str, ...] = ()
    coords: Mapping[str, np.ndarray] = field(default_factory=dict)
    particles: Mapping[str, np.ndarray] = field(default_factory=dict)
    particle_weights: Any = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        t = self.t if type(self.t) is np.ndarray and self.t.dtype == np.float64 else np.asarray(self.t, dtype=float)
        if t.ndim != 1:
            raise ValueError(f"t: must be 1-D, got shape {t.shape}")
        set_(self, "t", _readonly(t))
        m = np.asarray(self.m, dtype=float)
        if m.shape[-1:] != t.shape:
            raise ValueError(f"m: its last axis must match t ({t.size}), got shape {m.shape}")
        shape = m.shape[:-1]
        set_(self, "m", _readonly(m))
        for name in ("a", "loss"):
            v = np.asarray(getattr(self, name), dtype=float)
            if v.shape != m.shape:
                raise ValueError(f"{name}: shape {v.shape} differs from m's {m.shape}")
            set_(self, name, _readonly(v))
        if not shape:
            st, msg = self.status, self.message
            set_(self, "status", Status(int(st if isinstance(st, (int, np.integer)) else np.asarray(st).reshape(()))))
            set_(self, "message", msg if isinstance(msg, str) else str(np.asarray(msg).reshape(())[()]))
        else:
            st = np.broadcast_to(np.asarray(self.status, dtype=np.int32), shape)
            msg = np.broadcast_to(np.asarray(self.message, dtype=str), shape)
            set_(self, "status", _readonly(np.ascontiguousarray(st)))
            set_(self, "message", _readonly(np.ascontiguousarray(msg)))
        series = {}
        for k, v in self.series.items():
            v = np.asarray(v)
            if v.shape == t.shape and shape:
                v = np.broadcast_to(v, m.shape)  # shared by the batch (SGD's step index)
            if v.shape != m.shape:
                raise ValueError(f"series {k!r}: shape {v.shape} differs from m's {m.shape}")
            series[k] = _readonly(v)
        stats = {}
        for k, v in self.stats.items():
            v = np.asarray(v)
            if v.shape != shape:
                raise ValueError(f"stats {k!r}: shape {v.shape} differs from the batch shape {shape}")
            stats[k] = _readonly(v) if shape else v  # (0-d: read back as scalars)
        _check_particles(self, shape, t.size)
        if not _FIELDS.isdisjoint(series) or not _FIELDS.isdisjoint(stats) or not stats.keys().isdisjoint(series):
            clash = (set(series) & set(stats)) | ((set(series) | set(stats)) & _FIELDS)
            raise ValueError(f"series and stats: names {sorted(clash)} are used twice")
        set_(self, "series", series)
        set_(self, "stats", stats)
        if shape:
            dims = tuple(self.batch_dims) or tuple(f"batch_{i}" for i in range(len(shape)))
            if len(dims) != len(shape):
                raise ValueError(f"batch_dims: {len(dims)} names for a batch of shape {shape}")
            set_(self, "batch_dims", dims)
        elif self.batch_dims:
            raise ValueError(f"batch_dims: {len(self.batch_dims)} names for a single trajectory")
        if self.coords:
            set_(self, "coords", {k: np.asarray(v) for k, v in self.coords.items()})
        elif type(self.coords) is not dict:
            set_(self, "coords", {})
        if type(self.events) is not tuple:
            set_(self, "events", tuple(self.events))
        if type(self.params) is not dict:
            set_(self, "params", dict(self.params))

    @classmethod
    def _trusted(cls, level: str, t: np.ndarray, m: np.ndarray, a: np.ndarray, loss: np.ndarray, status: Any,
                 message: Any, series: dict[str, np.ndarray], stats: dict[str, Any], params: dict[str, Any],
                 sol: Any = None) -> Trajectory:
        """A single trajectory from arrays the core made (float64, of matching shapes): the checks
        of the constructor skipped, for the per-call cost of the hot paths (``solve_ode``)."""
        obj = object.__new__(cls)
        set_ = object.__setattr__
        for k, v in (("level", level), ("t", _readonly(t)), ("m", _readonly(m)), ("a", _readonly(a)),
                     ("loss", _readonly(loss)), ("status", Status(status)), ("message", message),
                     ("series", {k: _readonly(x) for k, x in series.items()}),
                     ("stats", {k: np.asarray(x) for k, x in stats.items()}), ("events", ()), ("params", params),
                     ("sol", sol), ("batch_dims", ()), ("coords", {}), ("particles", {}),
                     ("particle_weights", None)):
            set_(obj, k, v)
        return obj

    # -- shape --------------------------------------------------------------------------------
    @property
    def batch_shape(self) -> tuple[int, ...]:
        """``()`` for one trajectory, else the shape of the batch."""
        return self.m.shape[:-1]

    @property
    def n_particles(self) -> int:
        """The number of particles (neurons) followed individually (0 if none)."""
        return 0 if self.particle_weights is None else int(self.particle_weights.shape[-1])

    @property
    def size(self) -> int:
        """The number of trajectories (1 for a single one)."""
        return int(np.prod(self.batch_shape)) if self.batch_shape else 1

    def __len__(self) -> int:
        if not self.batch_shape:
            raise TypeError("a single trajectory has no len(); see .t.size for its save times")
        return self.batch_shape[0]

    def __getitem__(self, index: Any) -> Trajectory:
        """A sub-batch or one trajectory of a batch (``batch[3]``, ``batch[:, 0]``)."""
        if not self.batch_shape:
            raise TypeError("a single trajectory cannot be indexed; index its arrays (traj.m[k])")
        idx = index if isinstance(index, tuple) else (index,)
        probe = np.empty(self.batch_shape, dtype=np.int8)[idx]
        new_shape = np.shape(probe)
        dims = self.batch_dims if len(new_shape) == len(self.batch_shape) else tuple(
            f"batch_{i}" for i in range(len(new_shape)))
        coords = {k: v for k, v in self.coords.items() if len(new_shape) == len(self.batch_shape)}
        if len(self.batch_shape) == 1 and len(new_shape) <= 1:
            coords = {k: np.asarray(v)[idx] for k, v in self.coords.items()}
            dims = self.batch_dims if new_shape else ()
        return Trajectory(
            level=self.level, t=self.t, m=self.m[idx], a=self.a[idx], loss=self.loss[idx],
            status=np.asarray(self.status)[idx], message=np.asarray(self.message)[idx],
            series={k: v[idx] for k, v in self.series.items()}, stats={k: v[idx] for k, v in self.stats.items()},
            events=self.events, params=self.params, sol=None, batch_dims=dims,
            coords={k: v for k, v in coords.items() if np.ndim(v) == len(new_shape) and np.ndim(v) > 0},
            particles={k: v[idx] for k, v in self.particles.items()},
            particle_weights=None if self.particle_weights is None else self.particle_weights[idx])

    # -- outcome ------------------------------------------------------------------------------
    @property
    def success(self) -> Any:
        """``status == 0``: a bool, or an array of bools for a batch."""
        return self.status == Status.SUCCESS if not self.batch_shape else np.asarray(self.status) == 0

    @property
    def t_final(self) -> float:
        return float(self.t[-1])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        d = self.__dict__
        for bag in ("series", "stats"):
            values = d.get(bag)
            if values is not None and name in values:
                v = values[name]
                return v[()] if v.ndim == 0 else v
        fields = sorted([*d.get("series", {}), *d.get("stats", {})])
        if d.get("particles"):
            fields.append("particles[" + ", ".join(d["particles"]) + "]")
        raise AttributeError(f"a {d.get('level', '?')} trajectory has no field {name!r}"
                             + (f"; its extra fields: {', '.join(fields)}" if fields else ""))

    def fields(self) -> list[str]:
        """Every field name: ``t, m, a, loss, status, message`` and the level's own."""
        return ["t", "m", "a", "loss", "status", "message", *self.series, *self.stats]

    # -- conversion ---------------------------------------------------------------------------
    def to_xarray(self) -> Any:
        """An :class:`xarray.Dataset`: ``m``, ``a``, ``loss`` and the series over the batch
        dimensions and ``t``; ``status``, ``message`` and the stats over the batch dimensions;
        scalar parameters as attributes."""
        import xarray as xr  # optional dependency

        bd = self.batch_dims
        data: dict[str, Any] = {k: (bd + ("t",), np.asarray(getattr(self, k))) for k in ("m", "a", "loss")}
        data.update({k: (bd + ("t",), np.asarray(v)) for k, v in self.series.items()})
        data["status"] = (bd, np.asarray(self.status, dtype=np.int32))
        data["message"] = (bd, np.asarray(self.message, dtype=str))
        data.update({k: (bd, np.asarray(v)) for k, v in self.stats.items()})
        data.update({f"particle_{k}": (bd + ("particle", "t"), np.asarray(v)) for k, v in self.particles.items()})
        if self.particle_weights is not None:
            data["particle_weight"] = (bd + ("particle",), np.asarray(self.particle_weights))
        coords: dict[str, Any] = {"t": self.t}
        for k, v in self.coords.items():
            coords[k] = (bd[: np.ndim(v)], v) if k not in bd else v
        attrs = {"level": self.level}
        attrs.update({k: v for k, v in _plain(self.params).items() if isinstance(v, (int, float, str, bool))})
        return xr.Dataset(data, coords=coords, attrs=attrs)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (arrays, strings and numbers; no dense output): :meth:`from_dict` reads it back."""
        return {"level": self.level, "t": self.t, "m": self.m, "a": self.a, "loss": self.loss,
                "status": np.asarray(self.status, dtype=np.int32), "message": np.asarray(self.message, dtype=str),
                "series": dict(self.series), "stats": dict(self.stats),
                "events": [e.to_dict() if hasattr(e, "to_dict") else e for e in self.events],
                "params": _plain(self.params), "batch_dims": list(self.batch_dims), "coords": dict(self.coords),
                "particles": dict(self.particles),
                **({} if self.particle_weights is None else {"particle_weights": self.particle_weights})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Trajectory:
        """The trajectory :meth:`to_dict` described (events come back as dicts)."""
        return cls(level=str(d["level"]), t=d["t"], m=d["m"], a=d["a"], loss=d["loss"], status=d["status"],
                   message=d["message"], series=d.get("series", {}), stats=d.get("stats", {}),
                   events=tuple(d.get("events", ())), params=d.get("params", {}),
                   batch_dims=tuple(d.get("batch_dims", ())), coords=d.get("coords", {}),
                   particles=d.get("particles", {}), particle_weights=d.get("particle_weights"))

    @classmethod
    def stack(cls, trajectories: Sequence[Trajectory], dim: str = "batch_0",
              coord: Any = None) -> Trajectory:
        """Single trajectories of one level on the same save times, as a batch along ``dim``
        (``coord``: its coordinate values, e.g. the seeds)."""
        trs = list(trajectories)
        if not trs:
            raise ValueError("trajectories: need at least one")
        first = trs[0]
        for i, tr in enumerate(trs):
            if tr.batch_shape:
                raise ValueError(f"trajectories[{i}]: already a batch")
            if tr.level != first.level or not np.array_equal(tr.t, first.t):
                raise ValueError(f"trajectories[{i}]: another level or other save times than trajectories[0]")
            if (set(tr.series) != set(first.series) or set(tr.stats) != set(first.stats)
                    or set(tr.particles) != set(first.particles) or tr.n_particles != first.n_particles):
                raise ValueError(f"trajectories[{i}]: other fields (or numbers of particles) than trajectories[0]")
        return cls(level=first.level, t=first.t, m=np.stack([t.m for t in trs]), a=np.stack([t.a for t in trs]),
                   loss=np.stack([t.loss for t in trs]), status=np.array([int(t.status) for t in trs]),
                   message=np.array([t.message for t in trs]),
                   series={k: np.stack([t.series[k] for t in trs]) for k in first.series},
                   stats={k: np.stack([t.stats[k] for t in trs]) for k in first.stats},
                   params=first.params, batch_dims=(dim,),
                   coords={dim: np.asarray(coord)} if coord is not None else {},
                   particles={k: np.stack([t.particles[k] for t in trs]) for k in first.particles},
                   particle_weights=None if first.particle_weights is None else np.stack(
                       [t.particle_weights for t in trs]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trajectory):
            return NotImplemented
        if self.level != other.level or self.batch_shape != other.batch_shape:
            return False
        if (set(self.series) != set(other.series) or set(self.stats) != set(other.stats)
                or set(self.particles) != set(other.particles)
                or (self.particle_weights is None) != (other.particle_weights is None)):
            return False
        pairs = [(self.t, other.t), (self.m, other.m), (self.a, other.a), (self.loss, other.loss),
                 (np.asarray(self.status), np.asarray(other.status)),
                 *((self.series[k], other.series[k]) for k in self.series),
                 *((self.stats[k], other.stats[k]) for k in self.stats),
                 *((self.particles[k], other.particles[k]) for k in self.particles),
                 *(() if self.particle_weights is None else ((self.particle_weights, other.particle_weights),))]
        for x, y in pairs:
            if x.shape != y.shape or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                return False
        return bool(np.all(np.asarray(self.message) == np.asarray(other.message)))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        T = self.t.size
        span = f"t in [{_g(self.t[0])}, {_g(self.t[-1])}] ({T} time{'s' if T != 1 else ''})"
        if not self.batch_shape:
            parts = [f"{self.level}: {span}", str(self.status)]
            parts.append(f"m {_g(self.m[0])} -> {_g(self.m[-1])}")
            if "m_peak" in self.stats and math.isfinite(float(self.stats["m_peak"])):
                parts[-1] += f" (peak {_g(self.stats['m_peak'])} at t = {_g(self.stats['t_peak'])})"
            parts.append(f"a {_g(self.a[0])} -> {_g(self.a[-1])}")
            if "t_half" in self.stats and math.isfinite(float(self.stats["t_half"])):
                parts.append(f"half-life {_g(self.stats['t_half'])}")
            if self.status != Status.SUCCESS and self.message:
                parts.append(repr(self.message[:60]))
            return "Trajectory(" + "; ".join(parts) + ")"
        st = np.asarray(self.status)
        vals, counts = np.unique(st, return_counts=True)
        outcome = ", ".join(f"{c} {_status_text(v)}" for v, c in zip(vals, counts))
        shape = "x".join(str(s) for s in self.batch_shape)
        dims = ", ".join(self.batch_dims)
        mf, af = self.m[..., -1], self.a[..., -1]
        return (f"Trajectory({self.level}, batch {shape} [{dims}]: {span}; {outcome}; "
                f"final m in [{_g(np.nanmin(mf)) if np.isfinite(mf).any() else 'nan'}, "
                f"{_g(np.nanmax(mf)) if np.isfinite(mf).any() else 'nan'}], "
                f"final a in [{_g(np.nanmin(af)) if np.isfinite(af).any() else 'nan'}, "
                f"{_g(np.nanmax(af)) if np.isfinite(af).any() else 'nan'}])")


def _g(x: Any) -> str:
    return f"{float(x):.4g}"


def _check_particles(tr: Trajectory, shape: tuple[int, ...], T: int) -> None:
    """Validate and freeze ``particles`` (``shape + (N, T)`` each) and ``particle_weights`` (``shape + (N,)``)."""
    set_ = object.__setattr__
    w = tr.particle_weights
    parts = dict(tr.particles)
    if w is None:
        if parts:
            raise ValueError("particles: per-particle values need their particle_weights")
        set_(tr, "particles", {})
        return
    w = np.asarray(w, dtype=float)
    if w.shape[:-1] != shape or w.ndim != len(shape) + 1 or w.shape[-1] < 1:
        raise ValueError(f"particle_weights: shape {w.shape}; expected the batch shape {shape} + (N,)")
    N = w.shape[-1]
    out = {}
    for k, v in parts.items():
        v = np.asarray(v, dtype=float)
        if v.shape != shape + (N, T):
            raise ValueError(f"particles {k!r}: shape {v.shape}; expected {shape + (N, T)}")
        out[k] = _readonly(v)
    set_(tr, "particles", out)
    set_(tr, "particle_weights", _readonly(w))


def _plain(obj: Any) -> Any:
    """Plain data for JSON: models by their ``to_dict``, arrays as lists."""
    if hasattr(obj, "to_dict") and not isinstance(obj, (Mapping, np.ndarray)):
        return _plain(obj.to_dict())
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


@dataclass(frozen=True, repr=False)
class Comparison:
    """One trajectory minus another at the first one's save times.

    Attributes
    ----------
    t : ndarray
    dm, da, dloss : ndarray
        ``x - y`` (broadcast over the batch shapes of both).
    max_dm, max_da, max_dloss : float
        The largest absolute deviations (over every trajectory and time; NaN ignored).
    levels : tuple of str
        ``(x.level, y.level)``.
    """

    t: np.ndarray
    dm: np.ndarray
    da: np.ndarray
    dloss: np.ndarray
    max_dm: float
    max_da: float
    max_dloss: float
    levels: tuple[str, str]

    def __repr__(self) -> str:
        return (f"Comparison({self.levels[0]} - {self.levels[1]} at {self.t.size} times: max |dm| = "
                f"{self.max_dm:.3g}, max |da| = {self.max_da:.3g}, max |dloss| = {self.max_dloss:.3g})")

    def to_xarray(self) -> Any:
        import xarray as xr

        bd = tuple(f"batch_{i}" for i in range(self.dm.ndim - 1)) + ("t",)
        return xr.Dataset({k: (bd, getattr(self, k)) for k in ("dm", "da", "dloss")}, coords={"t": self.t},
                          attrs={"x": self.levels[0], "y": self.levels[1], "max_dm": self.max_dm,
                                 "max_da": self.max_da, "max_dloss": self.max_dloss})


def _nanmax_abs(x: np.ndarray) -> float:
    x = np.abs(np.asarray(x, dtype=float))
    return float(np.nanmax(x)) if np.isfinite(x).any() else math.nan


def compare(x: Trajectory, y: Trajectory) -> Comparison:
    """``x - y`` at the save times of ``x``, for any two trajectories (any levels).

    ``y`` is read at ``x.t`` directly when it was saved at the same times, else through its dense
    output (``y.sol``; a single trajectory). Batch shapes broadcast: SGD over seeds (batch ``(3,)``)
    against one ODE trajectory gives deviations of shape ``(3, T)``.
    """
    for name, v in (("x", x), ("y", y)):
        if not isinstance(v, Trajectory):
            raise TypeError(f"{name}: expected a fastslow.Trajectory, got {type(v).__name__}")
    if y.t.shape == x.t.shape and np.array_equal(y.t, x.t):
        m, a, loss = y.m, y.a, y.loss
    elif y.sol is not None:
        t = x.t
        if t[0] < y.t[0] or t[-1] > y.t[-1]:
            raise ValueError(f"y: its dense output covers [{y.t[0]:g}, {y.t[-1]:g}], x runs over "
                             f"[{t[0]:g}, {t[-1]:g}]")
        m, a = y.sol(t)
        loss = y.sol.loss(t) if hasattr(y.sol, "loss") else np.full(t.shape, np.nan)
    else:
        raise ValueError("y: saved at other times than x and without dense output; solve it at x.t "
                         "(e.g. fastslow.solve_ode(model, x.t, a0=..., m0=...))")
    try:
        dm, da, dl = x.m - m, x.a - a, x.loss - loss
    except ValueError:
        raise ValueError(f"x and y: batch shapes {x.batch_shape} and {y.batch_shape} do not broadcast") from None
    return Comparison(t=x.t, dm=dm, da=da, dloss=dl, max_dm=_nanmax_abs(dm), max_da=_nanmax_abs(da),
                      max_dloss=_nanmax_abs(dl), levels=(x.level, y.level))

