"""The compositions of the particle limit that runs and sweeps share (a heterogeneous initial law).

* :func:`particle_cells`: the particle limit of many cells (one :class:`~fastslow.InitialLaw` and
  model each), with the classification of each and the asymptotic law of each distinct model: what
  :func:`fastslow.study.limit_cells` is for identical neurons;
* :func:`sgd_against_particles`: train the finite network from a law over seeds, integrate the
  particle limit of the same law at the record times, compare the means, the loss and the clouds
  of neurons (sliced Wasserstein, :mod:`fastslow.clouds`).

A heterogeneous network's alignment is measured by ``|m| = sum_i w_i |m_i|`` (a neuron with
``a_i < 0`` may align with ``-theta``, so the weighted mean ``m`` of a sign mix can vanish while every
neuron is aligned), and its second layer by ``|a| = sum_i w_i |a_i|``. The classification
(:func:`fastslow.analysis.classify_trajectory`, the one set of thresholds) reads these two over the
last decade ``[classify_t_max / 10, classify_t_max]``; for identical neurons they are ``|m|`` and
``|a|`` of the 2-D limit ODE, whose verdict is the same. ``m_peak``, ``t_peak``, ``t_half`` are the
particle driver's events of the weighted mean ``m`` (as :func:`fastslow.solve_particles` reports them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validate as V
from .initial import InitialLaw
from .model import Model, as_model
from .particles import solve_particles_batch
from .study import SGDStudy, model_laws
from .trajectory import Trajectory, compare

__all__ = ["ParticleCells", "particle_cells", "particle_classification", "sgd_against_particles", "abs_means"]


def abs_means(traj: Trajectory) -> tuple[np.ndarray, np.ndarray]:
    """``(|m|, |a|)``: the weighted means ``sum_i w_i |m_i|``, ``sum_i w_i |a_i|`` of a trajectory that
    follows its particles, shape ``batch_shape + (T,)``."""
    if traj.particle_weights is None:
        raise ValueError(f"traj: a {traj.level} trajectory that does not follow its particles")
    w = traj.particle_weights[..., :, None]
    return (np.sum(w * np.abs(traj.particles["m"]), axis=-2), np.sum(w * np.abs(traj.particles["a"]), axis=-2))


@dataclass(frozen=True, repr=False)
class ParticleCells:
    """The particle limit of many cells (1-D over the cells, in the order given).

    Attributes
    ----------
    t : ndarray or None
        The save times (None when no ``t_eval`` was given; then ``m``, ``a``, ``loss``, ``m_abs`` are None).
    m, a, loss, m_abs : ndarray or None
        Per cell and save time: the weighted means, the loss, ``|m| = sum_i w_i |m_i|``.
    status : ndarray of int
    message : ndarray of str
    m_peak, t_peak, t_half : ndarray
        The events of the weighted mean ``m`` (of the solve at ``t_eval``, else of the classification's).
    n_particles : ndarray of int
        The particles of each cell's law (:meth:`InitialLaw.particles`: at most ``n``; two for signs).
    classification : Classification or None
    law, law_exponent, law_error : ndarray or None
        The asymptotic law of each cell's model (the identical-neuron theory of the model), as
        :func:`fastslow.study.limit_cells`.
    """

    t: np.ndarray | None
    m: np.ndarray | None
    a: np.ndarray | None
    loss: np.ndarray | None
    m_abs: np.ndarray | None
    status: np.ndarray
    message: np.ndarray
    m_peak: np.ndarray
    t_peak: np.ndarray
    t_half: np.ndarray
    n_particles: np.ndarray
    classification: Any = None
    law: np.ndarray | None = None
    law_exponent: np.ndarray | None = None
    law_error: np.ndarray | None = None

    def __repr__(self) -> str:
        parts = [f"ParticleCells({self.status.size} cells, {int(self.n_particles.min())}.."
                 f"{int(self.n_particles.max())} particles"]
        if self.classification is not None:
            parts.append(", ".join(f"{c} {k}" for k, c in self.classification.counts().items()))
        return ": ".join(parts) + ")"


def _solve(models: list[Model], parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], t: np.ndarray,
           rtol: float, atol: float, threads: int | None) -> dict[str, np.ndarray]:
    """Every cell's particle system at ``t``, one batch per particle count."""
    n, T = len(parts), t.size
    out: dict[str, np.ndarray] = {k: np.full((n, T), math.nan) for k in ("m", "a", "loss", "m_abs", "a_abs")}
    out.update({k: np.full(n, math.nan) for k in ("m_peak", "t_peak", "t_half")})
    out["status"] = np.zeros(n, dtype=np.int32)
    out["message"] = np.full(n, "", dtype=object)
    by_size: dict[int, list[int]] = {}
    for j, (a, _, _) in enumerate(parts):
        by_size.setdefault(a.size, []).append(j)
    for size, same_size in by_size.items():
        # at most ~64 MB per particle array of a batch (a block of thousands of cells of many
        # particles would otherwise hold gigabytes), and at least one cell
        per = max(1, _BATCH_DOUBLES // (size * T))
        for k in range(0, len(same_size), per):
            _solve_batch(models, parts, same_size[k:k + per], t, rtol, atol, threads, out)
    out["message"] = out["message"].astype(str)
    return out


#: The most doubles one particle array of a batch holds (64 MB).
_BATCH_DOUBLES = 2**23


def _solve_batch(models: list[Model], parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], js: list[int],
                 t: np.ndarray, rtol: float, atol: float, threads: int | None, out: dict[str, np.ndarray]) -> None:
    """One batch of cells of equal particle counts into ``out``."""
    A = np.stack([parts[j][0] for j in js])
    M = np.stack([parts[j][1] for j in js])
    W = np.stack([parts[j][2] for j in js])
    mdl = [models[j] for j in js]
    same = all(x is mdl[0] for x in mdl)
    tr = solve_particles_batch(mdl[0] if same else mdl, t, a0=A, m0=M, weights=W, rtol=rtol, atol=atol,
                               threads=threads)
    m_abs, a_abs = abs_means(tr)
    for k, v in (("m", tr.m), ("a", tr.a), ("loss", tr.loss), ("m_abs", m_abs), ("a_abs", a_abs)):
        out[k][js] = v
    for k in ("m_peak", "t_peak", "t_half"):
        out[k][js] = np.asarray(tr.stats[k], dtype=float)
    out["status"][js] = np.asarray(tr.status)
    out["message"][js] = np.asarray(tr.message).astype(str)


def particle_cells(models: Model | Sequence[Model], laws: Sequence[InitialLaw], *, n_particles: int = 64,
                   draw: str = "quadrature", seed: int = 0, t_eval: Any = None, classify_t_max: float | None = None,
                   rtol: float = 1e-8, atol: float = 1e-10, threads: int | None = None) -> ParticleCells:
    """The particle limit of many cells, and, with ``classify_t_max``, each cell's classification
    and the asymptotic law of each distinct model.

    Parameters
    ----------
    models : Model or sequence of Model
        One model for all cells or one per cell.
    laws : sequence of InitialLaw
        One law per cell, represented by ``law.particles(n_particles, draw=draw, seed=seed)``.
    n_particles, draw, seed
        As for :meth:`InitialLaw.particles` (the config's ``particles.n``, ``particles.draw``,
        ``particles.seed``).
    t_eval : array_like, optional
        Save times (None: no trajectories, only the classification).
    classify_t_max : float, optional
        The classification horizon (None: no classification and no law). When it equals the last
        save time, one integration serves both.
    rtol, atol, threads
        As for :func:`fastslow.solve_particles_batch`.
    """
    from .analysis import classify_trajectory
    from .params import lookup

    law_list = list(laws)
    if not law_list or not all(isinstance(x, InitialLaw) for x in law_list):
        raise TypeError("laws: expected a non-empty sequence of fastslow.InitialLaw")
    n = len(law_list)
    model_list = [models] * n if isinstance(models, Model) else list(models)
    if len(model_list) != n:
        raise ValueError(f"models: give one model or one per law ({n}), got {len(model_list)}")
    model_list = [as_model(mdl, f"models[{i}]") for i, mdl in enumerate(model_list)]
    if t_eval is None and classify_t_max is None:
        raise ValueError("t_eval and classify_t_max: give at least one")
    parts = [law.particles(n_particles, draw=draw, seed=seed) for law in law_list]
    t = None if t_eval is None else V.times(t_eval)
    t_cls = None if classify_t_max is None else lookup("classify_t_max").check(classify_t_max, "classify_t_max")
    saved = cls_run = None
    if t is not None:
        t_all = t
        if t_cls is not None and t_cls == t[-1] and t_cls / 10.0 not in t:
            t_all = np.union1d(t, [t_cls / 10.0])
        saved = _solve(model_list, parts, t_all, rtol, atol, threads)
        if t_cls is not None and t_cls == t[-1]:
            k = int(np.searchsorted(t_all, t_cls / 10.0))
            cls_run = {**saved, "t": np.array([0.0, t_all[k], t_all[-1]]),
                       "m_abs": saved["m_abs"][:, [0, k, -1]], "a_abs": saved["a_abs"][:, [0, k, -1]]}
        keep = np.isin(t_all, t)
        saved = {**saved, **{k: saved[k][:, keep] for k in ("m", "a", "loss", "m_abs")}}
    if t_cls is not None and cls_run is None:
        t3 = np.array([0.0, t_cls / 10.0, t_cls])
        cls_run = {**_solve(model_list, parts, t3, rtol, atol, threads), "t": t3}
    classification = law = law_exp = law_err = None
    if cls_run is not None:
        probe = Trajectory(level="particles", t=cls_run["t"], m=cls_run["m_abs"], a=cls_run["a_abs"],
                           loss=np.zeros_like(cls_run["m_abs"]), status=cls_run["status"],
                           stats={k: cls_run[k] for k in ("m_peak", "t_peak", "t_half")})
        classification = classify_trajectory(probe)
        law, law_exp, law_err = model_laws(model_list, (n,))
    ev = saved if saved is not None else cls_run
    assert ev is not None
    return ParticleCells(t=t, m=None if saved is None else saved["m"], a=None if saved is None else saved["a"],
                         loss=None if saved is None else saved["loss"], m_abs=None if saved is None else saved["m_abs"],
                         status=ev["status"], message=ev["message"], m_peak=ev["m_peak"], t_peak=ev["t_peak"],
                         t_half=ev["t_half"], n_particles=np.array([p[0].size for p in parts], dtype=np.int32),
                         classification=classification, law=law, law_exponent=law_exp, law_error=law_err)


def particle_classification(model: Model, law: InitialLaw, *, n_particles: int = 64, draw: str = "quadrature",
                            seed: int = 0, t_max: float = 1e9, rtol: float = 1e-8, atol: float = 1e-10) -> Any:
    """What the particle limit of ``law`` does by ``t_max`` (of ``|m|``, ``|a|``; see
    :func:`particle_cells`): a :class:`~fastslow.analysis.Classification` of scalars."""
    from .analysis import Classification

    c = particle_cells(model, [law], n_particles=n_particles, draw=draw, seed=seed, classify_t_max=t_max, rtol=rtol,
                       atol=atol, threads=1).classification
    names = ("outcome", "exponent", "m_final", "a_final", "m_peak", "t_peak", "t_half")
    vals: dict[str, Any] = {k: (str if k == "outcome" else float)(np.asarray(getattr(c, k))[0]) for k in names}
    return Classification(**vals, t_max=c.t_max, thresholds=c.thresholds)


def sgd_against_particles(model: Model, law: InitialLaw, *, d: int, n: int, batch: int, dt: float, steps: int,
                          seeds: Sequence[int] = (0,), dtype: str = "float32", record: Any = 41,
                          spacing: str = "linear", threads: int | None = None, rtol: float = 1e-8,
                          atol: float = 1e-10, progress: bool = False, sampler: str = "auto",
                          n_particles: int = 64, draw: str = "quadrature", particle_seed: int = 0,
                          projections: int = 64) -> SGDStudy:
    """Train the finite network from ``law`` once per seed (its neurons recorded), integrate the
    particle limit of the same law at the record times, compare.

    Returns an :class:`~fastslow.study.SGDStudy` whose ``ode`` is the particle limit (level
    ``"particles"``, ``law.particles(n_particles, draw=draw, seed=particle_seed)``), ``comparison``
    the SGD means minus the particle limit's, and ``cloud`` the sliced-Wasserstein distance between
    the SGD neurons' ``(m_i, a_i)`` and the particles per seed and record
    (:func:`fastslow.clouds.cloud_distance`, ``projections`` directions).
    """
    from .clouds import cloud_distance
    from .particles import solve_particles
    from .sgd import train_sgd

    model = as_model(model)
    if not isinstance(law, InitialLaw):
        raise TypeError(f"law: expected a fastslow.InitialLaw, got {type(law).__name__}")
    seeds = [V.integer(s, f"seeds[{i}]", lo=0, hi=2**63 - 1) for i, s in enumerate(seeds)]
    if not seeds:
        raise ValueError("seeds: need at least one seed")
    kw = {k: getattr(law, k) for k in ("a0", "m0", "a_dist", "a_sigma", "a_positive", "m_dist")}
    runs = [train_sgd(model, d=d, n=n, batch=batch, dt=dt, steps=steps, seed=s, dtype=dtype, record=record,
                      spacing=spacing, threads=threads, progress=progress, sampler=sampler, record_neurons=True, **kw)
            for s in seeds]
    sgd = Trajectory.stack(runs, "seed", np.asarray(seeds, dtype=np.int64))
    a, m, w = law.particles(n_particles, draw=draw, seed=particle_seed)
    lim = solve_particles(model, sgd.t, a0=a, m0=m, weights=w, rtol=rtol, atol=atol, dense_output=False)
    cloud = cloud_distance(sgd, lim, projections=projections)
    return SGDStudy(sgd=sgd, ode=lim, comparison=compare(sgd, lim), cloud=cloud)
