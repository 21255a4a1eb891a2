"""Tasks: how a sweep's cells are grouped, and the work of one task.

ODE/analysis cells are grouped in blocks (:attr:`SweepSpec.block`, a rectangle of the grid and a
contiguous range of cells), one :func:`fastslow.study.limit_cells` call per group of equal solver
settings (so one batch over every core); an SGD cell is one task, one
:func:`fastslow.study.sgd_against_ode` call.

A cell's initial law (``init.a_dist``, ``init.a_sigma``, ``init.a_positive``, ``init.m_dist``, with
``init.a0``, ``init.m0`` and ``sgd.d``) decides its level: identical neurons integrate the 2-D limit
ODE as above; a heterogeneous law integrates the particle limit of ``particles.n`` particles
(:func:`fastslow.particle_study.particle_cells`, one batch per group of equal settings), and its SGD
cell draws the network from the law and compares it with the particle limit
(:func:`fastslow.particle_study.sgd_against_particles`). Both store the same variables (the
particle limit's weighted means as ``ode_m``, ``ode_a``), with ``level`` saying which. A task returns its arrays, one value (or one row) per
cell: what a cell's own computation raised (a bad parameter combination, a diverged run, a failed
solve) is recorded in ``ode_error`` / ``sgd_error`` and the other cells go on. Anything else, such
as the cancellation that Ctrl-C sets off (``KeyboardInterrupt``), propagates: it is not a result.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np

from .. import params
from ..config import Config
from ..trajectory import Status
from .spec import SweepSpec
from .variables import truncate, variables_for

__all__ = ["Task", "plan", "task_by_id", "run_task", "save_times", "CELL_ERRORS"]

#: What a cell's own computation may raise (recorded as its error; anything else propagates).
CELL_ERRORS = (ValueError, ArithmeticError, RuntimeError, MemoryError)


@dataclass(frozen=True)
class Task:
    """One unit of work.

    Attributes
    ----------
    id : str
        ``"ode-000003"`` (a block of ODE/analysis cells) or ``"sgd-00000012"`` (one SGD cell).
    kind : str
        ``"ode"`` or ``"sgd"``.
    index : tuple of int
        The block's (or the cell's) position on the grid of blocks: the coordinates of its zarr
        chunk along the axes.
    start, stop : int
        Its cells, ``range(start, stop)`` in C order over the axes.
    """

    id: str
    kind: str
    index: tuple[int, ...]
    start: int
    stop: int

    @property
    def cells(self) -> range:
        return range(self.start, self.stop)

    @property
    def size(self) -> int:
        return self.stop - self.start


def _ode_tasks(spec: SweepSpec) -> list[Task]:
    shape, block = spec.shape, spec.block
    grid = tuple(math.ceil(s / b) for s, b in zip(shape, block))
    out = []
    for k, idx in enumerate(np.ndindex(*grid)):
        lo = tuple(i * b for i, b in zip(idx, block))
        count = int(np.prod([min(b, s - x) for b, s, x in zip(block, shape, lo)]))
        start = int(np.ravel_multi_index(lo, shape))
        out.append(Task(f"ode-{k:06d}", "ode", tuple(int(i) for i in idx), start, start + count))
    return out


def plan(spec: SweepSpec) -> list[Task]:
    """Every task of the sweep: the ODE/analysis blocks (if it computes ``ode`` or ``analysis``),
    then the SGD cells (if it computes ``sgd``)."""
    tasks: list[Task] = []
    if "ode" in spec.compute or "analysis" in spec.compute:
        tasks.extend(_ode_tasks(spec))
    if "sgd" in spec.compute:
        shape = spec.shape
        tasks.extend(Task(f"sgd-{i:08d}", "sgd", tuple(int(x) for x in np.unravel_index(i, shape)), i, i + 1)
                     for i in range(spec.n_cells))
    return tasks


def task_by_id(spec: SweepSpec, task_id: str) -> Task:
    """The task called ``task_id`` (what a Dask worker is sent)."""
    kind, _, num = task_id.partition("-")
    if kind == "sgd":
        i = int(num)
        return Task(task_id, "sgd", tuple(int(x) for x in np.unravel_index(i, spec.shape)), i, i + 1)
    return _ode_tasks(spec)[int(num)]


@functools.lru_cache(maxsize=16)
def save_times(t_max: float, points: int) -> np.ndarray:
    """The ODE save points of a sweep (read-only): 0 and ``points`` log-spaced times to ``t_max``."""
    from ..ode import log_times

    t = log_times(t_max, points)
    t.setflags(write=False)
    return t


# -- cells: their parameters and models --------------------------------------------------------
_BASE_MODELS: dict[str, Any] = {}  # per process: a named activation's series costs ~17 ms (quadrature)
_CELL_MODELS: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}


def _model(base: Config, changes: Mapping[params.Param, Any]) -> Any:
    """The cell's :class:`~fastslow.Model`: the base config's model with the model parameters
    ``changes`` (one per distinct combination and process)."""
    key_base = repr(base.model)
    key = (key_base, tuple(sorted((p.path, v) for p, v in changes.items())))
    m = _CELL_MODELS.get(key)
    if m is None:
        b = _BASE_MODELS.get(key_base)
        if b is None:
            if len(_BASE_MODELS) > 64:
                _BASE_MODELS.clear()
            b = _BASE_MODELS[key_base] = base.make_model()
        m = params.model_changes(b, dict(changes))
        if len(_CELL_MODELS) > 8192:
            _CELL_MODELS.clear()
        _CELL_MODELS[key] = m
    return m


@dataclass(frozen=True)
class _Cell:
    """A group of cells' settings apart from the per-cell initial condition."""

    model: Any
    a0: float
    m0: float
    rtol: float
    atol: float
    classify_t_max: float
    sgd: dict[str, Any]
    law: dict[str, Any]
    particles: tuple[int, str, int]

    @property
    def uniform(self) -> bool:
        """Every cell of the group has identical neurons whatever its ``a0``, ``m0``."""
        return self.law["a_dist"] == "constant" and self.law["m_dist"] == "fixed"

    def initial_law(self, a0: float, m0: float) -> Any:
        """The cell's :class:`~fastslow.InitialLaw` (a ``ValueError`` for a bad combination)."""
        from ..initial import InitialLaw

        return InitialLaw(a0=float(a0), m0=float(m0), **self.law)


def _settle(base: Config, overrides: Mapping[params.Param, Any]) -> _Cell:
    model_changes = {p: v for p, v in overrides.items() if p.section == "model"}
    val = {p.path: v for p, v in overrides.items()}
    sg = base.sgd
    sgd = {"d": sg.d, "n": sg.n, "batch": sg.batch, "dt": sg.dt, "steps": sg.steps, "dtype": sg.dtype,
           "sampler": sg.sampler, "seed": sg.seeds[0]}
    for p, v in overrides.items():
        if p.section == "sgd":
            sgd[p.field] = v
    law = {k: val.get(f"init.{k}", getattr(base.init, k)) for k in ("a_dist", "a_sigma", "a_positive", "m_dist")}
    law["d"] = sgd["d"]
    pa = base.particles
    particles = (val.get("particles.n", pa.n), val.get("particles.draw", pa.draw), val.get("particles.seed", pa.seed))
    return _Cell(model=_model(base, model_changes), a0=val.get("init.a0", base.init.a0),
                 m0=val.get("init.m0", base.init.m0), rtol=val.get("ode.rtol", base.ode.rtol),
                 atol=val.get("ode.atol", base.ode.atol),
                 classify_t_max=val.get("analysis.classify_t_max", base.analysis.classify_t_max), sgd=sgd,
                 law=law, particles=particles)


def _axis_params(spec: SweepSpec) -> list[list[params.Param]]:
    return [[params.lookup(f) for f in ax.fields] for ax in spec.axes]


def _groups(spec: SweepSpec, task: Task) -> tuple[list[tuple[dict[params.Param, Any], np.ndarray]],
                                                  dict[str, np.ndarray]]:
    """The task's cells grouped by everything but the initial condition (one model per group), and
    the initial-condition axes' values per cell (vectorised: no per-cell Python work)."""
    cells = np.arange(task.start, task.stop, dtype=np.int64)
    idx = np.unravel_index(cells, spec.shape)
    aps = _axis_params(spec)
    init_only = [k for k, a in enumerate(spec.axes) if all(f in ("init.a0", "init.m0") for f in a.fields)]
    other = [k for k in range(len(spec.axes)) if k not in init_only]
    if other:
        sub = tuple(spec.shape[k] for k in other)
        flat = np.ravel_multi_index(tuple(idx[k] for k in other), sub)
        uniq_flat, inv = np.unique(flat, return_inverse=True)
        inv = np.asarray(inv).reshape(-1)
        uniq = np.stack(np.unravel_index(uniq_flat, sub), axis=1).tolist()
    else:
        uniq, inv = [[]], np.zeros(cells.size, dtype=np.int64)
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1)).tolist()
    groups = []
    for g, key in enumerate(uniq):
        overrides: dict[params.Param, Any] = {}
        for k, i in zip(other, key):
            for p, v in zip(aps[k], spec.axes[k].values):
                overrides[p] = v[i].item()
        groups.append((overrides, order[bounds[g]:bounds[g + 1]]))
    init: dict[str, np.ndarray] = {}
    for k in init_only:
        for path, v in zip(spec.axes[k].fields, spec.axes[k].values):
            init[path] = np.asarray(v, dtype=float)[idx[k]]
    return groups, init


def _error_text(exc: BaseException) -> str:
    return truncate(f"{type(exc).__name__}: {exc}")


def _empty(spec: SweepSpec, kind: str, n: int) -> dict[str, np.ndarray]:
    t_len = save_times(spec.base.ode.t_max, spec.base.ode.points).size
    out = {}
    for v in variables_for(spec.compute, kind, bookkeeping=False):
        shape = (n,) + ((t_len,) if v.extra == "t" else (spec.base.sgd.record,) if v.extra == "record" else ())
        out[v.name] = (np.full(shape, v.fill, dtype={"f8": float, "i4": np.int32, "str": object}[v.dtype]))
    return out


def _no_interrupt(status: Any) -> None:
    if np.any(np.asarray(status) == Status.INTERRUPTED):
        raise KeyboardInterrupt("a trajectory was interrupted (cancelled)")


def _run_ode(spec: SweepSpec, task: Task, threads: int, lock: Any) -> dict[str, np.ndarray]:
    from ..study import limit_cells

    n = task.size
    out = _empty(spec, "ode", n)
    err = np.full(n, "", dtype=object)
    groups, init = _groups(spec, task)
    a0, m0 = np.full(n, np.nan), np.full(n, np.nan)
    models: list[Any] = [None] * n
    settled: list[tuple[_Cell, np.ndarray]] = []
    for overrides, members in groups:
        try:
            c = _settle(spec.base, overrides)
        except CELL_ERRORS as exc:
            err[members] = _error_text(exc)
            continue
        a0[members], m0[members] = c.a0, c.m0
        for j in members:
            models[j] = c.model
        settled.append((c, members))
    ok = np.array([m is not None for m in models])
    if "init.a0" in init:
        a0 = np.where(ok, init["init.a0"], np.nan)
    if "init.m0" in init:
        m0 = np.where(ok, init["init.m0"], np.nan)
    # each cell's level: identical neurons (the ODE, from the point they share) or a law of particles
    laws: list[Any] = [None] * n
    settings: dict[tuple[float, float, float], list[np.ndarray]] = {}
    p_settings: dict[tuple[Any, ...], list[int]] = {}
    for c, members in settled:
        if c.uniform:
            settings.setdefault((c.rtol, c.atol, c.classify_t_max), []).append(members)
            continue
        same = []
        for j in members.tolist():
            try:
                law = c.initial_law(a0[j], m0[j])
            except CELL_ERRORS as exc:
                err[j] = _error_text(exc)
                continue
            if law.identical:
                a0[j], m0[j] = law.point
                same.append(j)
            else:
                laws[j] = law
                p_settings.setdefault((c.rtol, c.atol, c.classify_t_max, *c.particles), []).append(j)
        if same:
            settings.setdefault((c.rtol, c.atol, c.classify_t_max), []).append(np.array(same, dtype=np.int64))
    t = save_times(spec.base.ode.t_max, spec.base.ode.points)
    do_ode, do_an = "ode" in spec.compute, "analysis" in spec.compute

    def solve(js: np.ndarray, mdl: Any, rtol: float, atol: float, t_cls: float) -> None:
        with lock or contextlib.nullcontext():
            lc = limit_cells(mdl, a0=a0[js], m0=m0[js], t_eval=t if do_ode else None,
                             classify_t_max=t_cls if do_an else None, rtol=rtol, atol=atol, threads=threads)
        if do_ode:
            b = lc.ode
            assert b is not None  # t_eval was given
            _no_interrupt(b.status)
            out["ode_m"][js], out["ode_a"][js], out["ode_loss"][js] = b.m, b.a, b.loss
            out["m_peak"][js], out["t_peak"][js], out["t_half"][js] = b.m_peak, b.t_peak, b.t_half
            out["m_final"][js], out["a_final"][js] = b.m[:, -1], b.a[:, -1]
            out["ode_status"][js] = np.asarray(b.status)
            out["ode_message"][js] = [truncate(str(x)) for x in np.asarray(b.message).tolist()]
            out["m_abs"][js] = np.abs(b.m)
        out["level"][js], out["particle_count"][js] = "ode", 1
        if do_an:
            _store_analysis(out, err, js, lc)

    for (rtol, atol, t_cls), parts in settings.items():
        js = np.sort(np.concatenate(parts))
        try:
            solve(js, [models[j] for j in js], rtol, atol, t_cls)
        except CELL_ERRORS:
            # a solve failed for some model: again one model at a time, so only the cells of that
            # model get the error
            by_model: dict[int, list[int]] = {}
            for j in js.tolist():
                by_model.setdefault(id(models[j]), []).append(j)
            for same_model in by_model.values():
                mj = np.array(same_model)
                try:
                    solve(mj, models[same_model[0]], rtol, atol, t_cls)
                except CELL_ERRORS as exc:
                    err[mj] = _error_text(exc)
    for key, cells in p_settings.items():
        _particle_block(spec, out, err, np.array(cells, dtype=np.int64), [laws[j] for j in cells],
                        [models[j] for j in cells], key, t if do_ode else None, do_an, threads, lock)
    out["ode_error"] = err
    return {k: (v.astype(str) if v.dtype == object else v) for k, v in out.items()}


def _store_analysis(out: dict[str, np.ndarray], err: np.ndarray, js: np.ndarray, cells: Any) -> None:
    """The classification and the law of ``cells`` (the limit ODE's or the particle limit's cells,
    with ``classification``, ``law``, ``law_exponent``, ``law_error``) into ``out`` at ``js``; a model
    whose law failed: its cells carry the error, the others go on."""
    cl = cells.classification
    out["outcome"][js] = np.asarray(cl.outcome).astype(str)
    out["exponent"][js] = cl.exponent
    out["law"][js] = np.asarray(cells.law).astype(str)
    out["law_exponent"][js] = cells.law_exponent
    failed = np.asarray(cells.law_error) != ""
    if failed.any():
        err[js[failed]] = np.asarray(cells.law_error)[failed]


def _particle_block(spec: SweepSpec, out: dict[str, np.ndarray], err: np.ndarray, js: np.ndarray, laws: list[Any],
                    models: list[Any], key: tuple[Any, ...], t: np.ndarray | None, do_an: bool, threads: int,
                    lock: Any) -> None:
    """The particle limit of the cells ``js`` (heterogeneous laws of equal settings ``key``) into
    ``out``; a failure is retried cell by cell, so only the failing cells get the error."""
    from ..particle_study import particle_cells

    rtol, atol, t_cls, n_part, draw, seed = key

    def solve(idx: list[int]) -> None:
        with lock or contextlib.nullcontext():
            pc = particle_cells([models[i] for i in idx], [laws[i] for i in idx], n_particles=n_part, draw=draw,
                                seed=seed, t_eval=t, classify_t_max=t_cls if do_an else None, rtol=rtol, atol=atol,
                                threads=threads)
        _no_interrupt(pc.status)
        cj = js[idx]
        out["level"][cj], out["particle_count"][cj] = "particles", pc.n_particles
        if t is not None:
            assert pc.m is not None and pc.a is not None
            for name, v in (("ode_m", pc.m), ("ode_a", pc.a), ("ode_loss", pc.loss), ("m_abs", pc.m_abs),
                            ("m_peak", pc.m_peak), ("t_peak", pc.t_peak), ("t_half", pc.t_half),
                            ("m_final", pc.m[:, -1]), ("a_final", pc.a[:, -1]), ("ode_status", pc.status)):
                out[name][cj] = v
            out["ode_message"][cj] = [truncate(str(x)) for x in pc.message.tolist()]
        if do_an:
            _store_analysis(out, err, cj, pc)

    try:
        solve(list(range(js.size)))
    except CELL_ERRORS:
        for i in range(js.size):
            try:
                solve([i])
            except CELL_ERRORS as exc:
                err[js[i]] = _error_text(exc)


def _run_sgd(spec: SweepSpec, task: Task, threads: int, lock: Any) -> dict[str, np.ndarray]:
    from ..particle_study import sgd_against_particles
    from ..study import sgd_against_ode

    out = _empty(spec, "sgd", 1)
    error = ""
    overrides = {p: v[i].item() for ps, ax, i in zip(_axis_params(spec), spec.axes, task.index)
                 for p, v in zip(ps, ax.values)}
    try:
        c = _settle(spec.base, overrides)
        s = dict(c.sgd)
        seed = s.pop("seed")
        law = c.initial_law(c.a0, c.m0)
        with lock or contextlib.nullcontext():
            if law.identical:
                a0, m0 = law.point
                st = sgd_against_ode(c.model, **s, a0=a0, m0=m0, seeds=[seed], record=spec.base.sgd.record,
                                     spacing="linear", threads=threads, rtol=c.rtol, atol=c.atol)
            else:
                n_part, draw, p_seed = c.particles
                st = sgd_against_particles(c.model, law, **s, seeds=[seed], record=spec.base.sgd.record,
                                           spacing="linear", threads=threads, rtol=c.rtol, atol=c.atol,
                                           n_particles=n_part, draw=draw, particle_seed=p_seed)
        sg, ode = st.sgd, st.ode
        _no_interrupt(sg.status)
        k = sg.t.size
        for name, v in (("sgd_t", sg.t), ("sgd_m_mean", sg.m[0]), ("sgd_m_std", sg.m_std[0]),
                        ("sgd_a_mean", sg.a[0]), ("sgd_a_std", sg.a_std[0]), ("sgd_batch_loss", sg.batch_loss[0]),
                        ("sgd_pop_loss", sg.loss[0]), ("sgd_ode_m", ode.m), ("sgd_ode_a", ode.a)):
            out[name][0, :k] = v
        if st.cloud is not None:
            out["sgd_cloud"][0, :k] = st.cloud[0]
        out["sgd_max_dm"][0], out["sgd_max_da"][0] = st.comparison.max_dm, st.comparison.max_da
    except CELL_ERRORS as exc:
        out = _empty(spec, "sgd", 1)
        error = _error_text(exc)
    out["sgd_error"] = np.array([error])
    return out


def run_task(spec: SweepSpec, task: Task, *, threads: int | None = None, compute_lock: Any = None) -> dict[str, np.ndarray]:
    """Compute one task; returns its arrays (one value or row per cell of the task, in order),
    named as in :mod:`~fastslow.sweep.variables`, with the cells' errors in ``ode_error`` or
    ``sgd_error`` (``''`` for none).

    ``threads``: OpenMP threads of the task's C++ calls (default: every usable core).
    ``compute_lock`` (a context manager, or None) is held around the task's C++ calls: tasks that
    share it compute one at a time while the others prepare their inputs and results.
    """
    from .._runtime import resolve_threads

    nthreads = resolve_threads(threads)
    if task.kind == "ode":
        return _run_ode(spec, task, nthreads, compute_lock)
    return _run_sgd(spec, task, nthreads, compute_lock)


def concat(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays of several tasks of one kind, joined in order."""
    keys = list(parts[0])
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in keys}
