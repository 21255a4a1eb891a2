"""One experiment from a config: the limit ODE, SGD over seeds, the fast-slow analysis.

``run(config)`` returns a :class:`RunResult` holding everything the ``fastslow run`` command writes;
``result.save(dir)`` writes ``data.npz`` (every array) and ``run.json`` (the resolved config, scalars,
versions, timings, machine), and ``load(dir)`` reads them back without loss.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, parse_config

__all__ = ["RunResult", "run", "load"]

RUN_JSON = "run.json"
DATA_NPZ = "data.npz"
FORMAT_VERSION = 1


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, complex):
        return {"re": obj.real, "im": obj.imag}
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def _unjson(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"re", "im"}:
            return complex(obj["re"], obj["im"])
        return {k: _unjson(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unjson(v) for v in obj]
    if obj in ("nan", "inf", "-inf"):
        return float(obj)
    return obj


@dataclass(frozen=True)
class RunResult:
    """Everything one run produced.

    Attributes
    ----------
    config : Config
    arrays : dict of str to ndarray
        ``ode/t``, ``ode/m``, ``ode/a``, ``ode/loss``; per seed ``sgd/<seed>/t``, ``.../m_mean``,
        ``m_std``, ``a_mean``, ``a_std``, ``batch_loss``, ``pop_loss``, and ``sgd/<seed>/ode_m``,
        ``ode_a`` (the ODE at the SGD record times); ``manifold/a``, ``manifold/m``,
        ``manifold/attracting``; ``slow/t``, ``slow/a``, ``slow/m``; ``fenichel/eps``, ``fenichel/dev_m``,
        ``fenichel/dev_a``; ``phase/...`` when a phase diagram was asked for.
    info : dict
        Scalars and records: ODE events and statistics, the asymptotic law, equilibria, the
        classification, SGD-versus-ODE deviations, timings, versions and the machine.
    """

    config: Config
    arrays: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunResult):
            return NotImplemented
        if self.config != other.config or set(self.arrays) != set(other.arrays):
            return False
        for k, v in self.arrays.items():
            w = other.arrays[k]
            if v.shape != w.shape or v.dtype != w.dtype or not np.array_equal(v, w, equal_nan=v.dtype.kind == "f"):
                return False
        return json.dumps(_jsonable(self.info), sort_keys=True) == json.dumps(_jsonable(other.info), sort_keys=True)

    __hash__ = None  # type: ignore[assignment]

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.info.get("sgd", {}).get("seeds", [])]

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``data.npz`` and ``run.json`` into ``directory`` (created); atomic per file."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / (DATA_NPZ + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k.replace("/", "__"): v for k, v in self.arrays.items()})
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, d / DATA_NPZ)
        doc = {"format": FORMAT_VERSION, "config": self.config.to_dict(), "info": _jsonable(self.info)}
        tmp = d / (RUN_JSON + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, d / RUN_JSON)
        return d


def load(directory: str | os.PathLike) -> RunResult:
    """Read a result written by :meth:`RunResult.save`."""
    d = Path(directory)
    try:
        with open(d / RUN_JSON, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise ValueError(f"{d}: no {RUN_JSON} here; not a fastslow run directory") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{d / RUN_JSON}: corrupted ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
        raise ValueError(f"{d / RUN_JSON}: unknown format {doc.get('format') if isinstance(doc, dict) else doc!r}")
    try:
        with np.load(d / DATA_NPZ, allow_pickle=False) as z:
            arrays = {k.replace("__", "/"): z[k] for k in z.files}
    except FileNotFoundError:
        raise ValueError(f"{d}: {DATA_NPZ} is missing") from None
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError
        raise ValueError(f"{d / DATA_NPZ}: corrupted ({exc})") from None
    return RunResult(config=parse_config(doc["config"]), arrays=arrays, info=_unjson(doc["info"]))


def _machine() -> dict[str, Any]:
    from . import __version__

    return {"fastslow": __version__, "numpy": np.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "cpus": os.cpu_count(),
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
    from .ode import log_times, solve_ode
    from .sgd import compare, train_sgd

    cfg = config if isinstance(config, Config) else parse_config(config)
    model = cfg.make_model()
    a0, m0 = cfg.init.a0, cfg.init.m0
    arrays: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {"model": model.to_dict(), "timings": {}}
    T = info["timings"]

    start = time.perf_counter()
    t = log_times(cfg.ode.t_max, cfg.ode.points)
    tr = solve_ode(model, a0, m0, t, rtol=cfg.ode.rtol, atol=cfg.ode.atol, dense_output=True)
    T["ode"] = time.perf_counter() - start
    arrays.update({"ode/t": tr.t, "ode/m": tr.m, "ode/a": tr.a, "ode/loss": tr.loss})
    info["ode"] = {"status": tr.status, "message": tr.message, "nsteps": tr.nsteps, "nfev": tr.nfev,
                   "m_peak": tr.m_peak, "t_peak": tr.t_peak, "t_half": tr.t_half, "m_final": float(tr.m[-1]),
                   "a_final": float(tr.a[-1])}

    if cfg.sgd.enabled:
        sg = cfg.sgd
        info["sgd"] = {"seeds": list(sg.seeds), "d": sg.d, "n": sg.n, "batch": sg.batch, "dt": sg.dt,
                       "steps": sg.steps, "dtype": sg.dtype, "per_seed": {}}
        start = time.perf_counter()
        for seed in sg.seeds:
            res = train_sgd(model, sg.d, sg.n, sg.batch, sg.dt, sg.steps, a0, m0, seed=seed, dtype=sg.dtype,
                            record=sg.record, spacing="linear", progress=progress)
            pre = f"sgd/{seed}/"
            for k in ("t", "m_mean", "m_std", "a_mean", "a_std", "batch_loss", "pop_loss"):
                arrays[pre + k] = np.asarray(getattr(res, k))
            ode = solve_ode(model, a0, m0, res.t, rtol=cfg.ode.rtol, atol=cfg.ode.atol, dense_output=False)
            arrays[pre + "ode_m"], arrays[pre + "ode_a"] = ode.m, ode.a
            c = compare(res, ode)
            info["sgd"]["per_seed"][str(seed)] = {"max_dm": c.max_dm, "max_da": c.max_da, "wall_time": res.wall_time}
        T["sgd"] = time.perf_counter() - start
        per = info["sgd"]["per_seed"].values()
        info["sgd"]["max_dm"] = max(p["max_dm"] for p in per)
        info["sgd"]["max_da"] = max(p["max_da"] for p in per)

    if cfg.analysis.enabled:
        start = time.perf_counter()
        law = an.asymptotic_law(model)
        info["law"] = law.to_dict()
        info["equilibria"] = [e.to_dict() for e in an.equilibria(model)]
        c = an.classify(model, a0, m0, t_max=cfg.analysis.classify_t_max, rtol=cfg.ode.rtol)
        info["classification"] = {"outcome": str(c.outcome[0]), "exponent": float(c.exponent[0]),
                                  "m_peak": float(c.m_peak[0]), "t_peak": float(c.t_peak[0]),
                                  "t_half": float(c.t_half[0]), "t_max": c.t_max,
                                  "equilibrium": c.equilibrium[0].to_dict() if c.equilibrium[0] else None}
        amax = max(4.0, 1.5 * float(np.nanmax(np.abs(tr.a))))
        ag = np.linspace(-amax, amax, 801)
        ag = ag[ag != 0]
        cm = an.critical_manifold(model, ag)
        arrays.update({"manifold/a": cm.a, "manifold/m": cm.m, "manifold/attracting": cm.attracting})
        info["folds"] = [f.to_dict() for f in cm.folds]
        if a0 != 0:
            sf = an.solve_slow_flow(model, a0, m0, t, jump=True)
            arrays.update({"slow/t": sf.t, "slow/a": sf.a, "slow/m": sf.m})
            info["slow_flow"] = {"status": sf.status, "message": sf.message, "events": [e.to_dict() for e in sf.events]}
            # the ODE against the slow flow as eps shrinks (Tikhonov/Fenichel), over slow time 0.5 .. 50
            eps_list = np.array([1e-1, 1e-2, 1e-3])
            dm, da = [], []
            for eps in eps_list:
                mm = model.replace(lr_a=eps * model.lr_w)
                tt = np.concatenate([[0.0], np.geomspace(0.5, 50, 40) / (eps * model.lr_w)])
                sfe = an.solve_slow_flow(mm, a0, m0, tt, jump=True)
                tre = solve_ode(mm, a0, m0, tt, rtol=1e-10, atol=1e-12, dense_output=False)
                dm.append(float(np.nanmax(np.abs(tre.m[1:] - sfe.m[1:]))))
                da.append(float(np.nanmax(np.abs(tre.a[1:] - sfe.a[1:]))))
            arrays.update({"fenichel/eps": eps_list, "fenichel/dev_m": np.array(dm), "fenichel/dev_a": np.array(da)})
        ph = cfg.analysis.phase
        if ph.enabled:
            xv = np.linspace(*ph.x_range, ph.x_num)
            yv = np.geomspace(*ph.y_range, ph.y_num) if ph.y_log else np.linspace(*ph.y_range, ph.y_num)
            pd = an.phase_diagram(model, (ph.x, xv), (ph.y, yv), a0=a0, m0=m0, t_max=ph.t_max)
            for k in ("x", "y", "outcome", "law", "exponent", "m_peak", "t_half", "m_final", "a_final"):
                v = getattr(pd, k)
                arrays["phase/" + k] = v.astype(str) if v.dtype.kind in "OU" else v
            info["phase"] = {"x": ph.x, "y": ph.y, "t_max": ph.t_max, "seconds": pd.seconds}
        T["analysis"] = time.perf_counter() - start
    info["machine"] = _machine()
    return RunResult(config=cfg, arrays=arrays, info=info)
