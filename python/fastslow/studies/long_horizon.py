"""SGD itself unlearns: the finite network trained past two half-lives of the limit, over seeds.

:func:`long_horizon` trains the network once per seed to ``t_max`` (log-spaced records), and puts
next to SGD every level of description from the same initial condition at the same times: the
limit ODE, the slow flow, the asymptotic law and, when the library has it, the effective dynamics
of the finite network (:func:`fastslow.solve_effective`: the exact finite-``dt`` map with the
finite-``dt d / B`` and ``1/n`` terms).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _validate as V
from ..model import Model, as_model
from ..ode import solve_ode
from ..sgd import train_sgd
from ..trajectory import Trajectory

__all__ = ["LongHorizonStudy", "long_horizon", "against_levels", "effective_solver", "seed_mean", "seed_stderr"]


#: Below this ``batch * d * n`` the study trains on one thread unless told otherwise.
_ONE_THREAD_BELOW = 2**22


def effective_solver() -> Any:
    """:func:`fastslow.solve_effective` if this build of the library has it, else None."""
    try:
        from ..effective import solve_effective
    except ModuleNotFoundError as exc:
        if exc.name not in ("fastslow.effective",):
            raise
        return None
    return solve_effective


def seed_mean(x: Any) -> np.ndarray:
    """Mean over the first axis (the seeds)."""
    return np.mean(np.asarray(x, dtype=float), axis=0)


def seed_stderr(x: Any) -> np.ndarray:
    """Standard error of the mean over the first axis (the seeds): ``std(ddof=1) / sqrt(S)``; NaN
    with one seed."""
    x = np.asarray(x, dtype=float)
    if x.shape[0] < 2:
        return np.full(x.shape[1:], math.nan)
    return np.std(x, axis=0, ddof=1) / math.sqrt(x.shape[0])


@dataclass(frozen=True, repr=False)
class LongHorizonStudy:
    """SGD over seeds to a long horizon against the limit ODE, the slow flow, the law and the
    effective dynamics, all at SGD's record times.

    Attributes
    ----------
    sgd : Trajectory
        Level ``"sgd"``, a batch along ``seed`` (``m``, ``a`` are means over neurons; ``m_std``,
        ``a_std`` their spreads; ``q_perp`` the measured collective overlap).
    ode : Trajectory
        The limit ODE.
    slow_flow : Trajectory or None
        The reduced flow on the attracting branch (None if it could not be computed).
    law : Trajectory or None
        The asymptotic law (None unless the law's verdict is unlearning).
    effective : Trajectory or None
        The effective dynamics at SGD's ``dt``, ``d``, ``batch``, ``n`` (None if the library has no
        :func:`fastslow.solve_effective` or ``effective=False`` was asked).
    t_half : float
        The ODE's half-life: when ``m`` falls to half its peak (NaN if not within the horizon).
    """

    sgd: Trajectory
    ode: Trajectory
    slow_flow: Trajectory | None
    law: Trajectory | None
    effective: Trajectory | None
    t_half: float

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.sgd.coords["seed"]]

    @property
    def t(self) -> np.ndarray:
        return self.sgd.t

    @property
    def half_lives(self) -> float:
        """The horizon in ODE half-lives."""
        return float(self.sgd.t[-1] / self.t_half) if self.t_half > 0 else math.nan

    # SGD: means and spreads over seeds and neurons
    @property
    def m_mean(self) -> np.ndarray:
        """SGD's alignment, mean over seeds (of the mean over neurons)."""
        return seed_mean(self.sgd.m)

    @property
    def m_se(self) -> np.ndarray:
        """Its standard error over the seeds."""
        return seed_stderr(self.sgd.m)

    @property
    def m_neurons(self) -> np.ndarray:
        """The spread of ``m_i`` over neurons (std), mean over seeds."""
        return seed_mean(self.sgd.m_std)

    @property
    def a_mean(self) -> np.ndarray:
        return seed_mean(self.sgd.a)

    @property
    def a_se(self) -> np.ndarray:
        return seed_stderr(self.sgd.a)

    @property
    def a_neurons(self) -> np.ndarray:
        return seed_mean(self.sgd.a_std)

    @property
    def q_mean(self) -> np.ndarray:
        """The measured collective overlap ``q_perp``, mean over seeds."""
        return seed_mean(self.sgd.q_perp)

    @property
    def q_se(self) -> np.ndarray:
        return seed_stderr(self.sgd.q_perp)

    def levels(self) -> dict[str, Trajectory]:
        """The levels that were computed, by name (``ode``, ``slow_flow``, ``law``, ``effective``)."""
        out = {"ode": self.ode, "slow_flow": self.slow_flow, "law": self.law, "effective": self.effective}
        return {k: v for k, v in out.items() if v is not None}

    def deviation(self, level: str, t_min: float = 0.0) -> tuple[float, float]:
        """The largest ``|m_SGD - m_level|`` and ``|a_SGD - a_level|`` (seed means) over ``t >= t_min``."""
        tr = self.levels()[level]
        k = self.t >= t_min
        dm = np.abs(self.m_mean - tr.m)[k]
        da = np.abs(self.a_mean - tr.a)[k]
        return float(np.nanmax(dm)) if dm.size else math.nan, float(np.nanmax(da)) if da.size else math.nan

    def at(self, t: float) -> dict[str, Any]:
        """Every level's ``m``, ``a`` at the record nearest ``t`` (SGD: seed mean, SE and the neuron
        spread; the effective dynamics also its ``q_perp``)."""
        i = int(np.argmin(np.abs(self.t - t)))
        out: dict[str, Any] = {"t": float(self.t[i]), "sgd": {
            "m": float(self.m_mean[i]), "m_se": float(self.m_se[i]), "m_neurons": float(self.m_neurons[i]),
            "a": float(self.a_mean[i]), "a_se": float(self.a_se[i]), "a_neurons": float(self.a_neurons[i]),
            "q_perp": float(self.q_mean[i])}}
        for name, tr in self.levels().items():
            out[name] = {"m": float(tr.m[i]), "a": float(tr.a[i])}
            if name == "effective" and "q_perp" in tr.series:
                out[name]["q_perp"] = float(tr.q_perp[i])
        return out

    def __repr__(self) -> str:
        p = self.sgd.params
        end = self.at(float(self.t[-1]))
        parts = [f"LongHorizonStudy(d = {p.get('d')}, n = {p.get('n')}, B = {p.get('batch')}, dt = {p.get('dt')}, "
                 f"{len(self.seeds)} seed(s), t <= {self.t[-1]:.4g} = {self.half_lives:.2f} ODE half-lives: "
                 f"SGD m = {end['sgd']['m']:.4f}, a = {end['sgd']['a']:.4f}; ODE m = {end['ode']['m']:.4f}, "
                 f"a = {end['ode']['a']:.4f}"]
        if "effective" in end:
            parts.append(f"effective m = {end['effective']['m']:.4f}, a = {end['effective']['a']:.4f}")
        return "; ".join(parts) + ")"

    def to_xarray(self) -> Any:
        """SGD's dataset (over ``seed``, ``t``) with the seed statistics and every level's ``m``,
        ``a``, ``loss`` (``<level>_m``, ...) and the effective dynamics' ``q_perp``."""
        ds = self.sgd.to_xarray()
        for k in ("m_mean", "m_se", "m_neurons", "a_mean", "a_se", "a_neurons", "q_mean", "q_se"):
            ds[f"sgd_{k}"] = ("t", getattr(self, k))
        for name, tr in self.levels().items():
            for f in ("m", "a", "loss"):
                ds[f"{name}_{f}"] = ("t", np.asarray(getattr(tr, f), dtype=float))
            if name == "effective" and "q_perp" in tr.series:
                ds["effective_q_perp"] = ("t", np.asarray(tr.q_perp, dtype=float))
        ds.attrs["t_half"] = self.t_half
        return ds


def long_horizon(model: Model, *, d: int, n: int, batch: int, dt: float, t_max: float, a0: float, m0: float = 0.0,
                 seeds: Sequence[int] = (0, 1, 2), dtype: str = "float32", record: Any = 80,
                 threads: int | None = None, effective: bool | None = None, progress: bool = False,
                 dt_schedule: Any = None) -> LongHorizonStudy:
    """Train the finite network to ``t_max`` once per seed and compare it with every level.

    Parameters
    ----------
    model : Model
    d, n, batch, dt : int, int, int, float
        The network, its batch and its step (``steps = round(t_max / dt)``).
    t_max : float
        The horizon (ODE time); to see SGD unlearn, past two ODE half-lives.
    a0, m0 : float
        The initial condition, shared by every level.
    seeds : sequence of int
    dtype : {"float32", "float64"}
    record : int or array_like
        Record points, log-spaced in steps (with step 0), or explicit steps.
    threads : int, optional
        OpenMP threads (None: one for networks with ``batch d n`` below 2^22, where a step takes
        well under a millisecond and waiting for a second core costs more than it brings on a
        busy machine; else every usable core). Results do not depend on it.
    effective : bool, optional
        Compute the effective dynamics (None: when the library has it; True: required).
    progress : bool
    dt_schedule : "stable" or StepSchedule, optional
        Steps ``dt_k <= dt`` that stay stable as the fast rate grows with ``a`` (see
        :mod:`fastslow.stability`), for SGD and the effective dynamics alike. Without one, SGD warns
        before a ``dt`` that would cross the stable bound within ``t_max``.

    Returns
    -------
    LongHorizonStudy
    """
    model = as_model(model)
    t_max = V.real(t_max, "t_max", lo=0.0, lo_open=True, hi=1e12)
    dt = V.real(dt, "dt", lo=0.0, lo_open=True, hi=10.0)
    steps = int(round(t_max / dt))
    if steps < 1:
        raise ValueError(f"t_max: must be at least one step dt = {dt:g}, got {t_max:g}")
    seeds = [V.integer(s, f"seeds[{i}]", lo=0, hi=2**63 - 1) for i, s in enumerate(seeds)]
    if not seeds:
        raise ValueError("seeds: need at least one seed")
    if effective and effective_solver() is None:
        raise ValueError("effective: this build of fastslow has no solve_effective")
    if threads is None and batch * d * n < _ONE_THREAD_BELOW:
        threads = 1
    runs = [train_sgd(model, d=d, n=n, batch=batch, dt=dt, steps=steps, a0=a0, m0=m0, seed=s, dtype=dtype,
                      record=record, spacing="log", threads=threads, progress=progress, dt_schedule=dt_schedule)
            for s in seeds]
    sgd = Trajectory.stack(runs, "seed", np.asarray(seeds, dtype=np.int64))
    return against_levels(model, sgd, a0=a0, m0=m0, effective=effective, schedule=dt_schedule)


def against_levels(model: Model, sgd: Trajectory, *, a0: float, m0: float = 0.0,
                   effective: bool | None = None, schedule: Any = None) -> LongHorizonStudy:
    """The study from SGD runs already made: every level from ``(m0, a0)`` at ``sgd.t``.

    Parameters
    ----------
    model : Model
    sgd : Trajectory
        Level ``"sgd"``, a batch along ``seed``, with ``m_std``, ``a_std``, ``q_perp`` among its
        series and ``d``, ``n``, ``batch``, ``dt`` among its params (as :func:`~fastslow.train_sgd`
        and :meth:`Trajectory.stack` make them).
    a0, m0 : float
    effective : bool, optional
        As for :func:`long_horizon`.
    schedule : "stable" or StepSchedule, optional
        The step schedule SGD ran with (the effective dynamics takes the same steps).
    """
    from ..analysis import asymptotic_law, solve_slow_flow

    model = as_model(model)
    if not isinstance(sgd, Trajectory) or sgd.level != "sgd" or sgd.batch_dims != ("seed",):
        raise TypeError("sgd: must be an SGD Trajectory stacked along 'seed'")
    missing = [k for k in ("d", "n", "batch", "dt") if k not in sgd.params]
    if missing:
        raise ValueError(f"sgd: its params lack {', '.join(missing)}")
    solver = effective_solver()
    if effective and solver is None:
        raise ValueError("effective: this build of fastslow has no solve_effective")
    p = sgd.params
    t = sgd.t
    ode = solve_ode(model, t, a0=a0, m0=m0, rtol=1e-10, atol=1e-12, dense_output=False)
    t_half = float(ode.t_half) if np.isfinite(ode.t_half) and ode.t_half > 0 else math.nan
    slow = law = None
    if a0 != 0:
        slow = solve_slow_flow(model, t, a0=a0, m0=m0, jump=True)
    lw = asymptotic_law(model, limits=False)
    if lw.verdict == "unlearning":
        law = lw.trajectory(t, a0=a0, model=model)
    eff = None
    if solver is not None and effective is not False:
        kw = {} if schedule is None else {"schedule": schedule}
        eff = solver(model, t, a0=a0, m0=m0, dt=float(p["dt"]), d=int(p["d"]), batch=int(p["batch"]), n=int(p["n"]),
                     **kw)
    return LongHorizonStudy(sgd=sgd, ode=ode, slow_flow=slow, law=law, effective=eff, t_half=t_half)
