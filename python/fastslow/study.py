"""The compositions that runs, sweeps and the demo share, each written once.

* :func:`sgd_against_ode`: train the finite network over seeds, solve the limit ODE at the
  record times, compare;
* :func:`fenichel_deviation`: the full ODE against the slow flow as ``eps = lr_a / lr_w`` shrinks;
* :func:`limit_cells`: the limit ODE of many cells (initial conditions or models), each with its
  classification and the verdict of the asymptotic law.

Each returns a small frozen result of arrays with ``to_xarray()`` and a short ``repr``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as V
from .model import Model, as_model
from .ode import solve_ode, solve_ode_batch
from .sgd import train_sgd
from .trajectory import Comparison, Trajectory, compare

__all__ = ["SGDStudy", "sgd_against_ode", "FenichelStudy", "fenichel_deviation", "LimitCells", "limit_cells", "model_laws",
           "DeviationStudy", "deviation_against_width", "loglog_slope"]


def loglog_slope(x: Any, y: Any) -> float:
    """Least-squares slope of ``log |y|`` against ``log x`` over the finite, positive points (NaN if
    fewer than two)."""
    x, y = np.asarray(x, dtype=float), np.abs(np.asarray(y, dtype=float))
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


@dataclass(frozen=True, repr=False)
class SGDStudy:
    """SGD over seeds against the limit ODE at the same times.

    Attributes
    ----------
    sgd : Trajectory
        Level ``"sgd"``, a batch along ``seed``.
    ode : Trajectory
        The limit ODE from the same initial condition, saved at ``sgd.t``.
    comparison : Comparison
        ``sgd - ode`` per seed.
    cloud : ndarray or None
        With a heterogeneous initial law (:func:`fastslow.particle_study.sgd_against_particles`, where
        ``ode`` is the particle limit): the sliced-Wasserstein distance between the SGD neurons and
        the particles, per seed and record. None for identical neurons.
    """

    sgd: Trajectory
    ode: Trajectory
    comparison: Comparison
    cloud: np.ndarray | None = None

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.sgd.coords["seed"]]

    @property
    def max_dm(self) -> np.ndarray:
        """Per seed: the largest ``|m_SGD - m_ODE|`` over the records."""
        return np.nanmax(np.abs(self.comparison.dm), axis=-1)

    @property
    def max_da(self) -> np.ndarray:
        return np.nanmax(np.abs(self.comparison.da), axis=-1)

    def __repr__(self) -> str:
        p = self.sgd.params
        return (f"SGDStudy(d = {p.get('d')}, n = {p.get('n')}, B = {p.get('batch')}, dt = {p.get('dt')}, "
                f"{len(self.seeds)} seed(s), t <= {self.sgd.t[-1]:.4g}: max |dm| = {self.comparison.max_dm:.3g}, "
                f"max |da| = {self.comparison.max_da:.3g})")

    def to_xarray(self) -> Any:
        ds = self.sgd.to_xarray()
        ds["ode_m"] = ("t", self.ode.m)
        ds["ode_a"] = ("t", self.ode.a)
        ds["ode_loss"] = ("t", self.ode.loss)
        if self.cloud is not None:
            ds["cloud"] = (("seed", "t"), self.cloud)
        return ds


def sgd_against_ode(model: Model, *, d: int, n: int, batch: int, dt: float, steps: int, a0: float, m0: float = 0.0,
                    seeds: Sequence[int] = (0,), dtype: str = "float32", record: Any = 41, spacing: str = "linear",
                    threads: int | None = None, rtol: float = 1e-8, atol: float = 1e-10,
                    progress: bool = False, sampler: str = "auto") -> SGDStudy:
    """Train the finite network once per seed, solve the limit ODE at the record times, compare.

    Parameters are those of :func:`~fastslow.train_sgd` (``seeds``: one run each; ``sampler``) and
    the ODE's tolerances.
    """
    model = as_model(model)
    seeds = [V.integer(s, f"seeds[{i}]", lo=0, hi=2**63 - 1) for i, s in enumerate(seeds)]
    if not seeds:
        raise ValueError("seeds: need at least one seed")
    runs = [train_sgd(model, d=d, n=n, batch=batch, dt=dt, steps=steps, a0=a0, m0=m0, seed=s, dtype=dtype,
                      record=record, spacing=spacing, threads=threads, progress=progress, sampler=sampler)
            for s in seeds]
    sgd = Trajectory.stack(runs, "seed", np.asarray(seeds, dtype=np.int64))
    ode = solve_ode(model, sgd.t, a0=a0, m0=m0, rtol=rtol, atol=atol, dense_output=False)
    return SGDStudy(sgd=sgd, ode=ode, comparison=compare(sgd, ode))


@dataclass(frozen=True, repr=False)
class FenichelStudy:
    """The full ODE against the slow flow as ``eps`` shrinks, over slow times ``tau = eps lr_w t``.

    Attributes
    ----------
    eps : ndarray
    dev_m, dev_a : ndarray
        The largest ``|m_ODE - m_slow|``, ``|a_ODE - a_slow|`` over the slow times (after the first).
    slope_m, slope_a : float
        Their log-log slopes against ``eps`` (Fenichel theory: 1).
    tau : ndarray
        The slow times compared.
    """

    eps: np.ndarray
    dev_m: np.ndarray
    dev_a: np.ndarray
    slope_m: float
    slope_a: float
    tau: np.ndarray

    def __repr__(self) -> str:
        return (f"FenichelStudy(eps {self.eps.min():.3g} .. {self.eps.max():.3g}: deviation slope in m "
                f"{self.slope_m:.2f}, in a {self.slope_a:.2f})")

    def to_xarray(self) -> Any:
        import xarray as xr

        return xr.Dataset({"dev_m": ("eps", self.dev_m), "dev_a": ("eps", self.dev_a)}, coords={"eps": self.eps},
                          attrs={"slope_m": self.slope_m, "slope_a": self.slope_a})


def fenichel_deviation(model: Model, *, a0: float, m0: float = 0.0, eps: Sequence[float] = (1e-1, 1e-2, 1e-3),
                       tau: Any = None, jump: bool = True) -> FenichelStudy:
    """The full ODE (``rtol = 1e-10``) against the slow flow at each ``eps`` (``lr_a = eps lr_w``),
    at slow times ``tau`` (default 40 log-spaced from 0.5 to 50)."""
    from .analysis import solve_slow_flow

    model = as_model(model)
    eps_arr = V.real_array(eps, "eps", ndim=1, nonempty=True)
    if np.any(eps_arr <= 0):
        raise ValueError("eps: every value must be > 0")
    tau_arr = np.geomspace(0.5, 50, 40) if tau is None else V.real_array(tau, "tau", ndim=1, nonempty=True)
    dm, da = [], []
    for e in eps_arr:
        mm = model.replace(lr_a=float(e) * model.lr_w)
        tt = np.concatenate([[0.0], tau_arr / (float(e) * model.lr_w)])
        sf = solve_slow_flow(mm, tt, a0=a0, m0=m0, jump=jump)
        tr = solve_ode(mm, tt, a0=a0, m0=m0, rtol=1e-10, atol=1e-12, dense_output=False)
        dm.append(float(np.nanmax(np.abs(tr.m[1:] - sf.m[1:]))))
        da.append(float(np.nanmax(np.abs(tr.a[1:] - sf.a[1:]))))
    dm_a, da_a = np.array(dm), np.array(da)
    return FenichelStudy(eps=eps_arr, dev_m=dm_a, dev_a=da_a, slope_m=loglog_slope(eps_arr, dm_a),
                         slope_a=loglog_slope(eps_arr, da_a), tau=tau_arr)


def model_laws(models: Model | Sequence[Model], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The asymptotic law of each cell's model, computed once per distinct model: ``(verdict,
    exponent, error)`` arrays of ``shape`` (``models`` broadcast to it along the last axis, as in
    :func:`~fastslow.solve_ode_batch`). A model whose law fails gets ``""``, NaN and the error; the
    others go on."""
    from .analysis import asymptotic_law

    model_list = [models] if isinstance(models, Model) else list(models)
    verdicts: dict[int, tuple[str, float, str]] = {}
    for mdl in model_list:
        if id(mdl) in verdicts:
            continue
        try:  # one model's law failing must not cost the other models theirs
            lw = asymptotic_law(mdl, limits=False)
            verdicts[id(mdl)] = (lw.verdict, lw.exponent, "")
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            verdicts[id(mdl)] = ("", math.nan, f"asymptotic_law: {type(exc).__name__}: {exc}")
    idx = np.broadcast_to(np.arange(len(model_list)) if len(model_list) > 1 else np.zeros(1, int), shape)
    rows = [verdicts[id(model_list[i])] for i in np.asarray(idx).ravel()]
    return (np.array([r[0] for r in rows], dtype=str).reshape(shape),
            np.array([r[1] for r in rows], dtype=float).reshape(shape),
            np.array([r[2] for r in rows], dtype=str).reshape(shape))


@dataclass(frozen=True, repr=False)
class LimitCells:
    """The limit ODE of many cells, with what each trajectory does and what the law says.

    Attributes
    ----------
    ode : Trajectory or None
        The ODE at the save times (a batch), when asked for.
    classification : Classification or None
        Each cell's outcome by ``classify_t_max``, when asked for.
    law : ndarray of str or None
        The asymptotic law's verdict of each cell's model.
    law_exponent : ndarray or None
        Its exponent ``1 / (q + 1)`` (NaN unless unlearning).
    law_error : ndarray of str or None
        Per cell: why the law could not be computed for its model (``""`` where it was); such a
        cell's ``law`` is ``""``.
    """

    ode: Trajectory | None
    classification: Any
    law: np.ndarray | None
    law_exponent: np.ndarray | None
    law_error: np.ndarray | None = None

    def __repr__(self) -> str:
        shape = (self.ode or self.classification).m_final.shape if self.ode is None else self.ode.batch_shape
        parts = [f"LimitCells({'x'.join(map(str, shape)) or 1} cells"]
        if self.classification is not None:
            vals, counts = np.unique(np.asarray(self.classification.outcome), return_counts=True)
            parts.append(", ".join(f"{c} {v}" for v, c in zip(vals, counts)))
        return ": ".join(parts) + ")"


def limit_cells(models: Model | Sequence[Model], *, a0: Any, m0: Any = 0.0, t_eval: Any = None,
                classify_t_max: float | None = None, rtol: float = 1e-8, atol: float = 1e-10,
                threads: int | None = None) -> LimitCells:
    """The limit ODE of many cells (one batch call), and, with ``classify_t_max``, each cell's
    classification and the asymptotic law of each distinct model.

    Parameters
    ----------
    models : Model or sequence of Model
        One model, or one per cell (broadcast with ``a0``, ``m0`` as in :func:`~fastslow.solve_ode_batch`).
    a0, m0 : array_like
    t_eval : array_like, optional
        Save times of the ODE (None: no trajectories, only the classification).
    classify_t_max : float, optional
        The classification horizon (None: no classification and no law).
    """
    from .analysis import classify_batch

    if t_eval is None and classify_t_max is None:
        raise ValueError("t_eval and classify_t_max: give at least one")
    ode = None
    if t_eval is not None:
        ode = solve_ode_batch(models, t_eval, a0=a0, m0=m0, rtol=rtol, atol=atol, threads=threads)
    cls = law = law_exp = law_err = None
    if classify_t_max is not None:
        cls = classify_batch(models, a0=a0, m0=m0, t_max=classify_t_max, rtol=rtol, threads=threads)
        law, law_exp, law_err = model_laws(models, np.shape(cls.outcome))
    return LimitCells(ode=ode, classification=cls, law=law, law_exponent=law_exp, law_error=law_err)


@dataclass(frozen=True, repr=False)
class DeviationStudy:
    """How far SGD is from the limit ODE as one quantity varies (the others fixed).

    Attributes
    ----------
    varied : str
        The quantity varied (a parameter name, e.g. ``"n"`` for ``n = d`` with ``B = 8d``).
    values : ndarray
    max_dm, max_da : ndarray
        Per value: the largest ``|m_SGD - m_ODE|``, ``|a_SGD - a_ODE|`` over the records, mean over seeds.
    stderr_dm, stderr_da : ndarray
        Their standard errors over the seeds (NaN with one seed).
    slope_dm : float
        The log-log slope of ``max_dm`` against ``values``.
    """

    varied: str
    values: np.ndarray
    max_dm: np.ndarray
    max_da: np.ndarray
    stderr_dm: np.ndarray
    stderr_da: np.ndarray
    slope_dm: float

    def __repr__(self) -> str:
        return (f"DeviationStudy({self.varied} from {self.values.min():g} to {self.values.max():g}: max |dm| "
                f"{self.max_dm.min():.3g} .. {self.max_dm.max():.3g}, slope {self.slope_dm:.2f})")

    def to_xarray(self) -> Any:
        import xarray as xr

        return xr.Dataset({k: (self.varied, getattr(self, k)) for k in ("max_dm", "max_da", "stderr_dm", "stderr_da")},
                          coords={self.varied: self.values}, attrs={"slope_dm": self.slope_dm})


def deviation_against_width(model: Model, *, widths: Sequence[int], a0: float, m0: float = 0.0,
                            batch_per_d: int = 8, dt: float = 0.05, steps: int = 100, seeds: Sequence[int] = (0,),
                            record: int = 21) -> DeviationStudy:
    """SGD against the ODE for ``n = d`` in ``widths`` with ``B = batch_per_d * d``."""
    dm, da, sdm, sda = [], [], [], []
    for w in widths:
        st = sgd_against_ode(model, d=w, n=w, batch=batch_per_d * w, dt=dt, steps=steps, a0=a0, m0=m0, seeds=seeds,
                             record=record)
        k = len(st.seeds)
        dm.append(float(np.mean(st.max_dm)))
        da.append(float(np.mean(st.max_da)))
        sdm.append(float(np.std(st.max_dm, ddof=1) / math.sqrt(k)) if k > 1 else math.nan)
        sda.append(float(np.std(st.max_da, ddof=1) / math.sqrt(k)) if k > 1 else math.nan)
    values = np.asarray(widths, dtype=float)
    return DeviationStudy(varied="n", values=values, max_dm=np.array(dm), max_da=np.array(da),
                          stderr_dm=np.array(sdm), stderr_da=np.array(sda), slope_dm=loglog_slope(values, dm))
