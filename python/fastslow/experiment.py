"""One experiment from a config: the limit ODE, SGD over seeds, the fast-slow analysis.

With a heterogeneous initial law (``init.a_dist`` other than constant, or ``init.m_dist = "sphere"``)
the run integrates the particle limit of the law (``particles.n`` particles) besides the 2-D ODE
from ``(a0, m0)``, trains SGD from the same law and compares it with the particle limit (means,
loss, the sliced-Wasserstein distance of the clouds of neurons); the classification is that of the
particle limit. The slow flow, its Fenichel check and the long-horizon study describe identical
neurons: they are not run (the long-horizon study is refused by name).

``run(config)`` returns a :class:`RunResult`, a typed record of everything the ``fastslow run``
command writes; ``result.save(dir)`` writes ``data.npz`` (every array and, embedded, the whole
result description) and a readable copy ``run.json``; ``load(dir)`` reads ``data.npz`` back without
loss. ``data.npz`` is written atomically and holds everything, so a reader sees either the old or the
new run, never a mix.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _persist
from .config import Config, ConfigError, parse_config
from .ode import log_times, solve_ode
from .particle_study import particle_classification, sgd_against_particles
from .particles import solve_particles
from .study import DeviationStudy, FenichelStudy, SGDStudy, fenichel_deviation, sgd_against_ode
from .studies.long_horizon import LongHorizonStudy, long_horizon
from .trajectory import Trajectory

__all__ = ["RunResult", "run", "load", "RUN_JSON", "DATA_NPZ"]

RUN_JSON = "run.json"
DATA_NPZ = "data.npz"
FORMAT_VERSION = 2


@dataclass(frozen=True, eq=False, repr=False)
class RunResult:
    """Everything one run produced.

    Attributes
    ----------
    config : Config
    ode : Trajectory
        The limit ODE at ``ode.points`` log-spaced times to ``ode.t_max`` (identical neurons at
        ``(a0, m0)``).
    sgd : SGDStudy or None
        SGD over the seeds against the limit at the record times: the ODE, or for a heterogeneous
        law the particle limit (``sgd.ode``, level ``"particles"``, with ``sgd.cloud``).
    law : AsymptoticLaw or None
    equilibria : tuple of Equilibrium
    classification : Classification or None
    manifold : CriticalManifold or None
        The critical manifold on a grid of ``a`` covering the trajectory.
    slow_flow : Trajectory or None
        The reduced flow from the same initial condition (level ``"slow_flow"``).
    fenichel : FenichelStudy or None
        The ODE against the slow flow as ``eps`` shrinks.
    phase : PhaseDiagram or None
    sizes : DeviationStudy or None
        SGD against the ODE as the width grows.
    long_horizon : LongHorizonStudy or None
        SGD past two half-lives of the limit against every level (``[long_horizon]`` of the config).
    dt_study : DeviationStudy or None
        SGD against the ODE as ``dt`` shrinks at fixed ``dt d / B`` (the demo adds it).
    particles : Trajectory or None
        For a heterogeneous initial law: its particle limit at the ODE's save times (level
        ``"particles"``); None for identical neurons.
    timings : dict of str to float
        Seconds per stage.
    machine : dict
        Versions, platform, date.
    """

    config: Config
    ode: Trajectory
    sgd: SGDStudy | None = None
    law: Any = None
    equilibria: tuple[Any, ...] = ()
    classification: Any = None
    manifold: Any = None
    slow_flow: Trajectory | None = None
    fenichel: FenichelStudy | None = None
    phase: Any = None
    sizes: DeviationStudy | None = None
    long_horizon: LongHorizonStudy | None = None
    dt_study: DeviationStudy | None = None
    particles: Trajectory | None = None
    timings: dict[str, float] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> Any:
        """The :class:`~fastslow.Model` of the config."""
        return self.config.make_model()

    @property
    def level(self) -> str:
        """The level the run integrated: ``"ode"`` (identical neurons) or ``"particles"``."""
        return "ode" if self.particles is None else "particles"

    @property
    def seeds(self) -> list[int]:
        return self.sgd.seeds if self.sgd is not None else []

    def replace(self, **changes: Any) -> RunResult:
        import dataclasses

        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        parts = [f"RunResult({self.ode!r}"]
        if self.sgd is not None:
            parts.append(repr(self.sgd))
        if self.law is not None:
            parts.append(f"law: {self.law.verdict}")
        if self.classification is not None:
            parts.append(f"outcome: {self.classification.outcome}")
        return "; ".join(parts) + ")"

    def __eq__(self, other: object) -> bool:
        """The same config and the same results (timings and the machine are not compared)."""
        if not isinstance(other, RunResult):
            return NotImplemented
        a, b = _describe(self, with_run_info=False), _describe(other, with_run_info=False)
        if _without_timings(a[0]) != _without_timings(b[0]) or set(a[1]) != set(b[1]):
            return False
        for k, v in a[1].items():
            w = b[1][k]
            if v.shape != w.shape or v.dtype != w.dtype or not np.array_equal(v, w, equal_nan=v.dtype.kind == "f"):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``data.npz`` (atomic: temporary file, fsync, rename) and its readable copy ``run.json``
        into ``directory`` (created)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        doc, arrays = _describe(self)
        text = json.dumps(doc, indent=1, allow_nan=False)
        buf = io.BytesIO()
        named: dict[str, Any] = {_npz_key(k): v for k, v in arrays.items()}  # Any: savez's allow_pickle is no array
        np.savez(buf, __run__=np.array(text), **named)
        payload = buf.getvalue()
        _atomic_write(d / DATA_NPZ, payload)
        copy = json.dumps({**doc, "data_sha256": hashlib.sha256(payload).hexdigest(),
                           "note": f"a readable copy of what {DATA_NPZ} holds; fastslow.load reads {DATA_NPZ}"},
                          indent=1, allow_nan=False)
        _atomic_write(d / RUN_JSON, (copy + "\n").encode("utf-8"))
        return d


def _without_timings(tree: Any) -> Any:
    """A stored tree without its ``wall_time`` entries (how long something took is not a result)."""
    if isinstance(tree, dict):
        return {k: _without_timings(v) for k, v in tree.items() if k != "wall_time"}
    if isinstance(tree, list):
        return [_without_timings(v) for v in tree]
    return tree


def _npz_key(k: str) -> str:
    return k.replace("/", "__")


_RESULTS = ("ode", "sgd", "law", "equilibria", "classification", "manifold", "slow_flow", "fenichel", "phase", "sizes",
            "long_horizon", "dt_study", "particles")


def _describe(r: RunResult, with_run_info: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    names = _RESULTS + (("timings", "machine") if with_run_info else ())
    fields_ = {name: _persist.dump(getattr(r, name), arrays, name) for name in names}
    return {"format": FORMAT_VERSION, "config": r.config.to_dict(), "result": fields_}, arrays


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # pragma: no cover
        pass


def load(directory: str | os.PathLike) -> RunResult:
    """Read a result written by :meth:`RunResult.save` (from its ``data.npz``); a missing or damaged
    file gets a ``ValueError`` naming it."""
    d = Path(directory)
    p = d / DATA_NPZ
    if not p.exists():
        raise ValueError(f"{d}: no {DATA_NPZ} here; not a fastslow run directory")
    if not p.is_file():
        raise ValueError(f"{p}: not a regular file")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError
        raise ValueError(f"{p}: corrupted ({type(exc).__name__}: {exc})") from None
    try:
        doc = json.loads(str(arrays.pop("__run__")))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{p}: not a fastslow result ({type(exc).__name__}: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{p}: result format {got!r}; this fastslow reads format {FORMAT_VERSION}")
    if not isinstance(doc.get("config"), dict) or not isinstance(doc.get("result"), dict):
        raise ValueError(f"{p}: damaged (no config or result)")
    try:
        cfg = parse_config(doc["config"])
    except ConfigError as exc:
        raise ValueError(f"{p}: its config is not valid ({exc})") from None
    by_key = {k.replace("__", "/"): v for k, v in arrays.items()}
    try:
        parts = {k: _persist.restore(v, by_key) for k, v in doc["result"].items()}
        return RunResult(config=cfg, **parts)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ValueError(f"{p}: damaged ({type(exc).__name__}: {exc})") from None


def _machine() -> dict[str, Any]:
    from ._version import __version__

    import scipy

    return {"fastslow": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def run(config: Config | dict[str, Any], *, progress: bool = False) -> RunResult:
    """Run the experiment a config describes.

    Parameters
    ----------
    config : Config or dict
        A :class:`Config` or the nested dict of a TOML file (validated).
    progress : bool
        Progress bars (tqdm) for the SGD runs.

    Returns
    -------
    RunResult
    """
    from . import analysis as an

    cfg = config if isinstance(config, Config) else parse_config(config)
    model = cfg.make_model()
    law = cfg.initial_law()
    hetero = not law.identical
    if hetero and cfg.long_horizon.enabled:
        raise ConfigError("long_horizon.enabled", f"the long-horizon study covers identical neurons only, got {law!r}; "
                          "set long_horizon.enabled = false (the run integrates the particle limit of the law)")
    a0, m0 = law.point if not hetero else (cfg.init.a0, cfg.init.m0)
    T: dict[str, float] = {}
    parts: dict[str, Any] = {}
    pa = cfg.particles

    start = time.perf_counter()
    t = log_times(cfg.ode.t_max, cfg.ode.points)
    ode = solve_ode(model, t, a0=a0, m0=m0, rtol=cfg.ode.rtol, atol=cfg.ode.atol, dense_output=False)
    T["ode"] = time.perf_counter() - start
    if hetero:
        start = time.perf_counter()
        pa_, pm_, pw_ = law.particles(pa.n, draw=pa.draw, seed=pa.seed)
        parts["particles"] = solve_particles(model, t, a0=pa_, m0=pm_, weights=pw_, rtol=cfg.ode.rtol,
                                             atol=cfg.ode.atol, dense_output=False)
        T["particles"] = time.perf_counter() - start

    if cfg.sgd.enabled:
        sg = cfg.sgd
        start = time.perf_counter()
        if hetero:
            parts["sgd"] = sgd_against_particles(model, law, d=sg.d, n=sg.n, batch=sg.batch, dt=sg.dt, steps=sg.steps,
                                                 seeds=sg.seeds, dtype=sg.dtype, sampler=sg.sampler, record=sg.record,
                                                 spacing="linear", rtol=cfg.ode.rtol, atol=cfg.ode.atol,
                                                 progress=progress, n_particles=pa.n, draw=pa.draw,
                                                 particle_seed=pa.seed)
        else:
            parts["sgd"] = sgd_against_ode(model, d=sg.d, n=sg.n, batch=sg.batch, dt=sg.dt, steps=sg.steps, a0=a0,
                                           m0=m0, seeds=sg.seeds, dtype=sg.dtype, sampler=sg.sampler, record=sg.record,
                                           spacing="linear",
                                           rtol=cfg.ode.rtol, atol=cfg.ode.atol, progress=progress)
        T["sgd"] = time.perf_counter() - start

    lh = cfg.long_horizon
    if lh.enabled:
        start = time.perf_counter()
        parts["long_horizon"] = long_horizon(model, d=lh.d, n=lh.n, batch=lh.batch, dt=lh.dt, t_max=lh.t_max, a0=a0,
                                             m0=m0, seeds=lh.seeds, dtype=lh.dtype, record=lh.record,
                                             effective=None if lh.effective else False, progress=progress,
                                             dt_schedule="stable" if lh.schedule == "stable" else None)
        T["long_horizon"] = time.perf_counter() - start

    if cfg.analysis.enabled:
        start = time.perf_counter()
        parts["law"] = an.asymptotic_law(model)
        parts["equilibria"] = an.equilibria(model)
        if hetero:
            parts["classification"] = particle_classification(model, law, n_particles=pa.n, draw=pa.draw,
                                                              seed=pa.seed, t_max=cfg.analysis.classify_t_max,
                                                              rtol=cfg.ode.rtol, atol=cfg.ode.atol)
        else:
            parts["classification"] = an.classify(model, a0=a0, m0=m0, t_max=cfg.analysis.classify_t_max,
                                                  rtol=cfg.ode.rtol)
        amax = max(4.0, 1.5 * float(np.nanmax(np.abs(ode.a))))
        ag = np.linspace(-amax, amax, 801)
        parts["manifold"] = an.critical_manifold(model, ag[ag != 0])
        if a0 != 0 and not hetero:
            parts["slow_flow"] = an.solve_slow_flow(model, t, a0=a0, m0=m0, jump=True)
            parts["fenichel"] = fenichel_deviation(model, a0=a0, m0=m0)
        ph = cfg.analysis.phase
        if ph.enabled:
            (x0, x1), (y0, y1) = ph.x_range, ph.y_range  # [start, stop], validated
            xv = np.linspace(x0, x1, ph.x_num)
            yv = np.geomspace(y0, y1, ph.y_num) if ph.y_log else np.linspace(y0, y1, ph.y_num)
            parts["phase"] = an.phase_diagram(model, (ph.x, xv), (ph.y, yv), a0=a0, m0=m0, t_max=ph.t_max)
        T["analysis"] = time.perf_counter() - start
    return RunResult(config=cfg, ode=ode, timings=T, machine=_machine(), **parts)
