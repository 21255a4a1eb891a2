#!/usr/bin/env python
"""Benchmark of fastslow's limit-ODE integrator against SciPy's ``solve_ivp``.

Three workloads, run side by side in one process:

1. **One trajectory.** The tanh student on the target ``{1: 1.0, 3: 0.3}`` with ``lr_w = 1``,
   ``lr_a = 0.01``, ``a0 = 1``, ``m0 = 0`` up to ``t_max = 1e7`` at ``rtol = 1e-8``,
   ``atol = 1e-10``: :func:`fastslow.solve_ode` against SciPy's Radau, BDF and LSODA driven by
   the pure-NumPy right-hand side :class:`fastslow.reference.LimitRHS` in ``v = artanh(m)``
   coordinates. Times, step and evaluation counts, the error against a tight reference
   (:func:`fastslow.reference.solve_ode` at ``rtol = 1e-11``) and the speed ratios.
2. **Steps against the horizon.** ``t_max = 1e3 .. 1e12`` for ``lr_a / lr_w`` = 1e-2, 1e-4 and
   1e-6: fastslow's step count, evaluations and time, with a least-squares fit of the steps
   against ``log10(t_max)`` (steps per decade) to show the logarithmic growth.
3. **Batch.** A 100 x 100 grid (``a0`` geometric in 0.1..5 times the ``h_3`` target coefficient
   in -0.5..0.5, one model per coefficient) saved at ``t = 0, 1e3, 1e7`` with
   :func:`fastslow.solve_ode_batch`, on one thread and on the default thread count: throughput,
   parallel speed-up, failures, bit-identity across thread counts, a plain Python loop over
   :func:`fastslow.solve_ode` on a subset, and an *estimate* of a SciPy-LSODA loop.

Every implementation is checked against the reference before it is timed: fastslow must agree
with it to 1e-6 relative in ``a(t_max)``, and any implementation that disagrees by more than 1e-5
relative is reported, and the script exits with status 1 at the end (a fast wrong answer is not
a result).

Usage
-----
::

    python bench/bench_ode.py [--quick] [--json FILE]

``--quick`` (fewer repeats, a 20 x 20 batch, horizons up to 1e9) takes well under a minute on
two cores; the full run a few minutes. The results go to ``bench/results/ode.json`` unless
``--json`` says otherwise.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import scipy
from scipy.integrate import solve_ivp

import fastslow as fs

from _common import Checker, Timing, base_machine_info, finish, print_header, fmt_ratio, fmt_time, render_table, section, source_revision
from fastslow import reference
from fastslow.ode import default_threads
from fastslow.reference import LimitRHS

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# The configuration under test
# ---------------------------------------------------------------------------------------------
ACTIVATION = "tanh"
TARGET: dict[int, float] = {1: 1.0, 3: 0.3}
LR_W = 1.0
LR_A = 0.01
A0 = 1.0
M0 = 0.0
T_MAX = 1e7
RTOL = 1e-8
ATOL = 1e-10
REF_RTOL = 1e-11
REF_ATOL = 1e-13

#: fastslow must match the reference in ``a(t_max)`` to this relative error (workload 1).
OURS_TOL = 1e-6
#: Any implementation further than this (relative) from the reference is a failure.
AGREE_TOL = 1e-5
#: The issue's target: the fastest SciPy method should be at least this many times slower.
SPEED_TARGET = 300.0

#: SciPy variants of workload 1: label -> (method, pass the analytic Jacobian).
SCIPY_VARIANTS: dict[str, tuple[str, bool]] = {
    "Radau": ("Radau", True),
    "BDF": ("BDF", True),
    "LSODA (jac)": ("LSODA", True),
    "LSODA (no jac)": ("LSODA", False),
}

#: Batch workload: save times and the grid ranges.
BATCH_T_EVAL = (0.0, 1e3, 1e7)
BATCH_A0_RANGE = (0.1, 5.0)
BATCH_H3_RANGE = (-0.5, 0.5)

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "ode.json"


@dataclass(frozen=True)
class Settings:
    """Sizes and repeat counts of one run (``--quick`` or full)."""

    quick: bool
    ours_repeats: int
    scipy_repeats: int
    horizon_repeats: int
    horizons: tuple[float, ...]
    eps_values: tuple[float, ...]
    grid: tuple[int, int]
    batch_repeats: int
    loop_subset: int

    @classmethod
    def make(cls, quick: bool) -> "Settings":
        """The quick or the full settings."""
        if quick:
            return cls(quick=True, ours_repeats=20, scipy_repeats=3, horizon_repeats=5,
                       horizons=tuple(10.0**k for k in range(3, 10)), eps_values=(1e-2, 1e-4, 1e-6),
                       grid=(20, 20), batch_repeats=3, loop_subset=200)
        return cls(quick=False, ours_repeats=140, scipy_repeats=7, horizon_repeats=11,
                   horizons=tuple(10.0**k for k in range(3, 13)), eps_values=(1e-2, 1e-4, 1e-6),
                   grid=(100, 100), batch_repeats=5, loop_subset=1000)


# ---------------------------------------------------------------------------------------------
# Timing, errors, checks
# ---------------------------------------------------------------------------------------------


def time_call(fn: Callable[[], T], repeats: int, warmup: int = 1) -> tuple[Timing, T]:
    """Time ``fn()`` ``repeats`` times (after ``warmup`` untimed calls) with the GC disabled.

    Parameters
    ----------
    fn : callable
        Called without arguments.
    repeats : int
        Number of timed calls.
    warmup : int
        Untimed calls first (to fill caches and import lazily loaded code).

    Returns
    -------
    timing : Timing
    result
        The value returned by the last call.
    """
    result: Any = None
    for _ in range(warmup):
        result = fn()
    samples = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            result = fn()
            samples.append(time.perf_counter() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return Timing.from_samples(samples), result


def time_interleaved(fns: dict[str, tuple[Callable[[], Any], int]], rounds: int,
                     warmup: int = 1) -> dict[str, Timing]:
    """Time several callables in interleaved rounds, so that slow drifts of the machine (other
    processes, frequency changes) hit all of them alike.

    Parameters
    ----------
    fns : dict
        ``name -> (fn, calls_per_round)``; ``fn`` is timed ``calls_per_round`` times in each round.
    rounds : int
        Number of rounds.
    warmup : int
        Untimed calls of each callable before the first round.

    Returns
    -------
    dict
        ``name -> Timing`` over ``rounds * calls_per_round`` samples.
    """
    for fn, _ in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, (fn, calls) in fns.items():
                for _ in range(calls):
                    start = time.perf_counter()
                    fn()
                    samples[name].append(time.perf_counter() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: Timing.from_samples(x) for name, x in samples.items()}


def rel_err(value: Any, ref: Any) -> float:
    """Largest relative error ``|value - ref| / |ref|`` (NaN or infinity counts as infinite)."""
    v = np.asarray(value, dtype=float)
    r = np.asarray(ref, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.abs(v - r) / np.maximum(np.abs(r), np.finfo(float).tiny)
    e = np.where(np.isfinite(e), e, np.inf)
    return float(np.max(e)) if e.size else 0.0


# ---------------------------------------------------------------------------------------------
# Output helpers
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """CPU, cores, library versions, date and the source revision."""
    return {**base_machine_info(), "scipy": scipy.__version__}


def print_machine(info: dict[str, Any], settings: Settings) -> None:
    print_header("fastslow limit-ODE benchmark", info, settings.quick,
                 f"fastslow {info['fastslow']}, numpy {info['numpy']}, scipy {info['scipy']}")
    print(f"  source    {source_revision(info)}; fastslow imported from {info['fastslow_path']}", flush=True)


# ---------------------------------------------------------------------------------------------
# Workload 1: one trajectory against SciPy
# ---------------------------------------------------------------------------------------------
def make_model(lr_a: float = LR_A, target: dict[int, float] | None = None) -> fs.Model:
    """The benchmark model (tanh student) with the given ``lr_a`` and target."""
    return fs.Model(ACTIVATION, TARGET if target is None else target, lr_w=LR_W, lr_a=lr_a)


def run_scipy(rhs: LimitRHS, method: str, use_jac: bool, t_max: float) -> Any:
    """``solve_ivp`` from ``y0 = (artanh m0, a0)`` to ``t_max`` (no ``t_eval``)."""
    kw = {"jac": rhs.jac} if use_jac else {}
    return solve_ivp(rhs, (0.0, t_max), [math.atanh(M0), A0], method=method, rtol=RTOL, atol=ATOL, **kw)


def workload_single(settings: Settings, checker: Checker) -> dict[str, Any]:
    """One trajectory: fastslow against SciPy Radau, BDF and LSODA.

    Parameters
    ----------
    settings : Settings
    checker : Checker
        Receives the agreement checks (done before any timing).

    Returns
    -------
    dict
        Per implementation: timing, steps, evaluations, errors and the speed ratio to fastslow;
        plus the reference values and the fastest-SciPy ratio.
    """
    section(f"1. One trajectory: tanh student, target {TARGET}, lr_w={LR_W:g}, lr_a={LR_A:g}, "
            f"a0={A0:g}, m0={M0:g}, t_max={T_MAX:.0e}, rtol={RTOL:.0e}, atol={ATOL:.0e}")
    model = make_model()
    t_eval = np.array([0.0, T_MAX])

    start = time.perf_counter()
    m_ref, a_ref, ref_res = reference.solve_ode(model.s, model.c, LR_W, LR_A, A0, M0, t_eval,
                                                rtol=REF_RTOL, atol=REF_ATOL, method="Radau")
    ref_time = time.perf_counter() - start
    m_ref_T, a_ref_T = float(m_ref[-1]), float(a_ref[-1])
    print(f"reference: SciPy Radau rtol={REF_RTOL:.0e} atol={REF_ATOL:.0e} ({fmt_time(ref_time)}): "
          f"m(t_max) = {m_ref_T:.15g}, a(t_max) = {a_ref_T:.15g}", flush=True)

    def ours() -> fs.Trajectory:
        return fs.solve_ode(model, A0, M0, t_eval, rtol=RTOL, atol=ATOL, dense_output=False)

    rhs = LimitRHS(model.s, model.c, LR_W, LR_A)

    # -- agreement, before any timing ------------------------------------------------------
    rows: dict[str, dict[str, Any]] = {}
    tr = ours()
    ok = tr.status == 0
    rows["fastslow radau5"] = {
        "status": tr.status, "steps": tr.nsteps, "nfev": tr.nfev, "njev": tr.njev, "nlu": tr.nlu,
        "nrejected": tr.nrejected, "m": float(tr.m[-1]), "a": float(tr.a[-1]),
        "err_m": rel_err(tr.m[-1], m_ref_T), "err_a": rel_err(tr.a[-1], a_ref_T),
    }
    r = rows["fastslow radau5"]
    checker.check("single: fastslow status", 0.0 if ok else math.inf, 0.0)
    checker.check("single: fastslow a(t_max) vs reference", r["err_a"], OURS_TOL)
    checker.check("single: fastslow m(t_max) vs reference", r["err_m"], AGREE_TOL)
    for label, (method, use_jac) in SCIPY_VARIANTS.items():
        res = run_scipy(rhs, method, use_jac, T_MAX)
        m_T, a_T = math.tanh(res.y[0, -1]), float(res.y[1, -1])
        rows[f"scipy {label}"] = {
            "method": method, "jac": use_jac, "status": int(res.status), "steps": len(res.t) - 1,
            "nfev": int(res.nfev), "njev": int(res.njev), "nlu": int(res.nlu), "nrejected": None,
            "m": m_T, "a": a_T, "err_m": rel_err(m_T, m_ref_T), "err_a": rel_err(a_T, a_ref_T),
        }
        r = rows[f"scipy {label}"]
        checker.check(f"single: scipy {label} status", 0.0 if res.status == 0 else math.inf, 0.0)
        checker.check(f"single: scipy {label} a(t_max) vs reference", r["err_a"], AGREE_TOL)
        checker.check(f"single: scipy {label} m(t_max) vs reference", r["err_m"], AGREE_TOL)

    # -- timing, interleaved: each round runs every SciPy variant once and fastslow several times
    def scipy_fn(method: str, use_jac: bool) -> Callable[[], Any]:
        return lambda: run_scipy(rhs, method, use_jac, T_MAX)

    rounds = settings.scipy_repeats
    fns: dict[str, tuple[Callable[[], Any], int]] = {
        "fastslow radau5": (ours, -(-settings.ours_repeats // rounds))}
    for label, (method, use_jac) in SCIPY_VARIANTS.items():
        fns[f"scipy {label}"] = (scipy_fn(method, use_jac), 1)
    for name, timing in time_interleaved(fns, rounds).items():
        rows[name]["time"] = timing
    ours_t = rows["fastslow radau5"]["time"].median
    for r in rows.values():
        r["ratio"] = r["time"].median / ours_t

    # Keep the faster LSODA variant as "LSODA".
    jac_row, nojac_row = rows.pop("scipy LSODA (jac)"), rows.pop("scipy LSODA (no jac)")
    lsoda_jac_faster = jac_row["time"].median <= nojac_row["time"].median
    kept, other = (jac_row, nojac_row) if lsoda_jac_faster else (nojac_row, jac_row)
    rows["scipy LSODA"] = kept
    scipy_rows = {k: v for k, v in rows.items() if k.startswith("scipy")}
    fastest = min(scipy_rows, key=lambda k: scipy_rows[k]["time"].median)
    fastest_ratio = scipy_rows[fastest]["ratio"]

    table = []
    for name, r in rows.items():
        t = r["time"]
        if name == "scipy LSODA":
            label = f"scipy LSODA ({'jac' if r['jac'] else 'no jac'})"
        elif name.startswith("scipy"):
            label = f"{name} (jac)"
        else:
            label = name
        table.append([
            label, fmt_time(t.median), fmt_time(t.min), fmt_time(t.iqr), t.repeats, r["steps"], r["nfev"],
            r["njev"], r["nlu"], f"{r['err_a']:.1e}", f"{r['err_m']:.1e}",
            "1x" if name.startswith("fastslow") else fmt_ratio(r["ratio"]),
        ])
    print()
    print(render_table(["implementation", "median", "min", "IQR", "reps", "steps", "nfev", "njev", "nlu",
                        "err a(T)", "err m(T)", "vs ours"], table))
    ot = other["time"]
    print(f"\nLSODA variants: with jac {fmt_time(jac_row['time'].median)}, "
          f"without {fmt_time(nojac_row['time'].median)}; "
          f"kept the faster ({'with' if lsoda_jac_faster else 'without'} jac) as \"LSODA\" "
          f"(the other: {fmt_time(ot.median)}, {other['steps']} steps, {other['nfev']} nfev, "
          f"err a {other['err_a']:.1e}).")
    met = "met" if fastest_ratio >= SPEED_TARGET else "NOT met"
    print(f"fastest SciPy method: {fastest.removeprefix('scipy ')}, {fmt_ratio(fastest_ratio)} slower than fastslow "
          f"(target >= {SPEED_TARGET:.0f}x: {met}).")
    print("Errors are relative to the reference; steps are accepted steps (SciPy: len(res.t) - 1); "
          "the fastslow row is fastslow.solve_ode(dense_output=False).", flush=True)
    if fastest_ratio < SPEED_TARGET:
        checker.note(f"speed target not met: fastest SciPy ({fastest}) is {fastest_ratio:.0f}x slower, "
                     f"target >= {SPEED_TARGET:.0f}x")

    return {
        "config": {"activation": ACTIVATION, "target": TARGET, "lr_w": LR_W, "lr_a": LR_A, "a0": A0, "m0": M0,
                   "t_max": T_MAX, "rtol": RTOL, "atol": ATOL},
        "reference": {"method": "Radau", "rtol": REF_RTOL, "atol": REF_ATOL, "m": m_ref_T, "a": a_ref_T,
                      "time": ref_time, "nfev": int(ref_res.nfev)},
        "implementations": rows,
        "lsoda_other_variant": other,
        "lsoda_kept_variant": "jac" if lsoda_jac_faster else "no jac",
        "fastest_scipy": fastest,
        "fastest_scipy_ratio": fastest_ratio,
        "speed_target": SPEED_TARGET,
        "speed_target_met": fastest_ratio >= SPEED_TARGET,
    }


# ---------------------------------------------------------------------------------------------
# Workload 2: steps against the horizon
# ---------------------------------------------------------------------------------------------
def fit_log_growth(t_max: Sequence[float], steps: Sequence[float]) -> dict[str, float]:
    """Least-squares fit ``steps = slope * log10(t_max) + intercept``, with its R^2."""
    x = np.log10(np.asarray(t_max, dtype=float))
    y = np.asarray(steps, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else 1.0
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2}


def workload_horizons(settings: Settings, checker: Checker) -> dict[str, Any]:
    """fastslow's steps, evaluations and time for ``t_max`` over many decades.

    One tight reference per ``eps = lr_a / lr_w`` (saved at every horizon) checks each result
    before it is timed.

    Returns
    -------
    dict
        Per ``eps``: one row per horizon and the fit of steps against ``log10(t_max)``.
    """
    horizons = np.array(settings.horizons)
    section(f"2. Steps against the horizon: t_max = {horizons[0]:.0e} .. {horizons[-1]:.0e}, "
            f"rtol={RTOL:.0e}, atol={ATOL:.0e}")
    out: dict[str, Any] = {}
    for eps in settings.eps_values:
        model = make_model(lr_a=LR_W * eps)
        start = time.perf_counter()
        m_ref, a_ref, _ = reference.solve_ode(model.s, model.c, LR_W, LR_W * eps, A0, M0,
                                              np.concatenate([[0.0], horizons]), rtol=REF_RTOL, atol=REF_ATOL)
        ref_time = time.perf_counter() - start
        rows = []
        for k, t_max in enumerate(horizons):
            t_eval = np.array([0.0, t_max])

            def ours() -> fs.Trajectory:
                return fs.solve_ode(model, A0, M0, t_eval, rtol=RTOL, atol=ATOL, dense_output=False)

            tr = ours()
            err_a = rel_err(tr.a[-1], a_ref[k + 1])
            err_m = rel_err(tr.m[-1], m_ref[k + 1])
            checker.check(f"horizons eps={eps:g} t_max={t_max:.0e}: status", 0.0 if tr.status == 0 else math.inf, 0.0)
            checker.check(f"horizons eps={eps:g} t_max={t_max:.0e}: a vs reference", err_a, AGREE_TOL)
            checker.check(f"horizons eps={eps:g} t_max={t_max:.0e}: m vs reference", err_m, AGREE_TOL)
            if max(err_a, err_m) > OURS_TOL:
                checker.note(f"horizons eps={eps:g} t_max={t_max:.0e}: fastslow relative error "
                             f"a {err_a:.1e}, m {err_m:.1e} (above {OURS_TOL:.0e}, "
                             f"below the {AGREE_TOL:.0e} failure bar)")
            timing, _ = time_call(ours, settings.horizon_repeats)
            rows.append({"t_max": float(t_max), "steps": tr.nsteps, "nfev": tr.nfev, "njev": tr.njev,
                         "nrejected": tr.nrejected, "time": timing, "m": float(tr.m[-1]), "a": float(tr.a[-1]),
                         "err_a": err_a, "err_m": err_m})
        fit = fit_log_growth(horizons, [r["steps"] for r in rows])
        out[f"{eps:g}"] = {"eps": eps, "lr_a": LR_W * eps, "reference_time": ref_time, "rows": rows, "fit": fit}

        print(f"\neps = lr_a/lr_w = {eps:g}  (reference: {fmt_time(ref_time)})")
        table = []
        prev = None
        for r in rows:
            flag = " !" if max(r["err_a"], r["err_m"]) > OURS_TOL else ""
            table.append([f"{r['t_max']:.0e}", r["steps"], "" if prev is None else f"{r['steps'] - prev:+d}",
                          r["nfev"], r["nrejected"], fmt_time(r["time"].median), fmt_time(r["time"].iqr),
                          f"{r['a']:.6g}", f"{r['m']:.6g}", f"{r['err_a']:.1e}{flag}", f"{r['err_m']:.1e}{flag}"])
            prev = r["steps"]
        print(render_table(["t_max", "steps", "d/decade", "nfev", "rej", "median", "IQR", "a(T)", "m(T)",
                            "err a", "err m"], table))
        ratio = rows[-1]["steps"] / rows[0]["steps"]
        print(f"fit: steps = {fit['slope']:.1f} * log10(t_max) {'-' if fit['intercept'] < 0 else '+'} "
              f"{abs(fit['intercept']):.1f}  (R^2 = {fit['r2']:.4f}); "
              f"{fit['slope']:.1f} steps per decade; t_max grew {horizons[-1] / horizons[0]:.0e}x, "
              f"steps {ratio:.2f}x", flush=True)
    if any(max(r["err_a"], r["err_m"]) > OURS_TOL for v in out.values() for r in v["rows"]):
        print(f"(!: fastslow's error against the reference exceeds {OURS_TOL:.0e}; "
              f"a failure only above {AGREE_TOL:.0e})")
    return {"horizons": horizons.tolist(), "rtol": RTOL, "atol": ATOL, "by_eps": out}


# ---------------------------------------------------------------------------------------------
# Workload 3: batch
# ---------------------------------------------------------------------------------------------
def tight_reference(model: fs.Model, a0: float, t_eval: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SciPy Radau at the reference tolerances with the reference right-hand side; returns ``(m, a)``."""
    rhs = LimitRHS(model.s, model.c, model.lr_w, model.lr_a)
    res = solve_ivp(rhs, (0.0, float(t_eval[-1])), [math.atanh(M0), a0], method="Radau", t_eval=t_eval,
                    rtol=REF_RTOL, atol=REF_ATOL, jac=rhs.jac)
    if res.status != 0:
        raise RuntimeError(f"reference solve_ivp failed: {res.message}")
    return np.tanh(res.y[0]), res.y[1]


def quiet_batch(models: list[fs.Model], a0: np.ndarray, t_eval: np.ndarray, threads: int | None) -> fs.BatchTrajectory:
    """:func:`fastslow.solve_ode_batch` on the grid, its failure warning silenced (failures are counted)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fs.solve_ode_batch(models, a0[:, None], 0.0, t_eval, rtol=RTOL, atol=ATOL, threads=threads)


def workload_batch(settings: Settings, checker: Checker, lsoda_seconds: float) -> dict[str, Any]:
    """A grid of trajectories with :func:`fastslow.solve_ode_batch`, a Python loop, and an estimate.

    Parameters
    ----------
    settings : Settings
    checker : Checker
    lsoda_seconds : float
        Median time of one SciPy-LSODA trajectory from workload 1 (same ``t_max``), used for the
        estimate of a SciPy loop over the whole grid.

    Returns
    -------
    dict
        Timings per thread count, throughput, speed-up, failures, identity checks, the loop
        comparison and the SciPy estimate.
    """
    n_a0, n_h3 = settings.grid
    n = n_a0 * n_h3
    a0 = np.geomspace(*BATCH_A0_RANGE, n_a0)
    h3 = np.linspace(*BATCH_H3_RANGE, n_h3)
    t_eval = np.array(BATCH_T_EVAL)
    section(f"3. Batch: {n_a0} a0 (geomspace {BATCH_A0_RANGE[0]:g}..{BATCH_A0_RANGE[1]:g}) x {n_h3} h3 "
            f"(linspace {BATCH_H3_RANGE[0]:g}..{BATCH_H3_RANGE[1]:g}) = {n:,} trajectories, "
            f"t_eval={list(BATCH_T_EVAL)}, rtol={RTOL:.0e}")
    models = [make_model(target={1: 1.0, 3: float(c)}) for c in h3]

    # -- agreement: corners and centre of the grid against a tight reference ------------------
    first = quiet_batch(models, a0, t_eval, None)
    spots = sorted({(0, 0), (0, n_h3 - 1), (n_a0 - 1, 0), (n_a0 - 1, n_h3 - 1), (n_a0 // 2, n_h3 // 2)})
    spot_rows = []
    start = time.perf_counter()
    for i, j in spots:
        k = i * n_h3 + j
        m_ref, a_ref = tight_reference(models[j], float(a0[i]), t_eval)
        err_a, err_m = rel_err(first.a[k], a_ref), rel_err(first.m[k], m_ref)
        label = f"batch a0={a0[i]:.3g} h3={h3[j]:+.3g}"
        checker.check(f"{label}: a vs reference", err_a, AGREE_TOL)
        checker.check(f"{label}: m vs reference", err_m, AGREE_TOL)
        spot_rows.append({"a0": float(a0[i]), "h3": float(h3[j]), "err_a": err_a, "err_m": err_m,
                          "a": first.a[k].tolist(), "m": first.m[k].tolist()})
    spot_time = time.perf_counter() - start
    worst = max(max(s["err_a"], s["err_m"]) for s in spot_rows)
    print(f"agreement: {len(spots)} grid points (corners, centre) against SciPy Radau rtol={REF_RTOL:.0e}: "
          f"largest relative error {worst:.1e} ({fmt_time(spot_time)})", flush=True)

    # -- timing per thread count --------------------------------------------------------------
    default = default_threads()
    thread_counts = sorted({1, 2, default})
    runs: dict[int, dict[str, Any]] = {}
    results: dict[int, fs.BatchTrajectory] = {}

    def batch_fn(th: int) -> Callable[[], fs.BatchTrajectory]:
        def run() -> fs.BatchTrajectory:
            results[th] = quiet_batch(models, a0, t_eval, th)
            return results[th]
        return run

    timings = time_interleaved({str(th): (batch_fn(th), 1) for th in thread_counts}, settings.batch_repeats,
                               warmup=0)
    for th in thread_counts:
        timing, res = timings[str(th)], results[th]
        runs[th] = {"threads": th, "default": th == default, "time": timing, "per_second": n / timing.median,
                    "failures": int(np.count_nonzero(res.status != 0))}
    base = runs[1]["time"].median
    for th, r in runs.items():
        r["speedup"] = base / r["time"].median
        same = all(np.array_equal(getattr(results[th], f), getattr(results[1], f), equal_nan=True)
                   for f in ("m", "a", "status", "nsteps", "nfev"))
        r["identical_to_1_thread"] = bool(same)
        checker.check(f"batch threads={th}: identical to threads=1", 0.0 if same else math.inf, 0.0)
        checker.check(f"batch threads={th}: no failures", float(r["failures"]), 0.0)
    same_first = all(np.array_equal(getattr(first, f), getattr(results[1], f), equal_nan=True) for f in ("m", "a"))
    checker.check("batch: checked run identical to timed runs", 0.0 if same_first else math.inf, 0.0)
    steps = results[1].nsteps

    # -- a plain Python loop on a subset ------------------------------------------------------
    n_loop = min(settings.loop_subset, n)
    idx = np.unique(np.linspace(0, n - 1, n_loop).round().astype(int))
    pairs = [(models[k % n_h3], float(a0[k // n_h3])) for k in idx]

    def loop() -> list[fs.Trajectory]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return [fs.solve_ode(mdl, a, 0.0, t_eval, rtol=RTOL, atol=ATOL, dense_output=False) for mdl, a in pairs]

    loop_timing, loop_res = time_call(loop, settings.batch_repeats)
    loop_m = np.array([tr.m for tr in loop_res])
    loop_a = np.array([tr.a for tr in loop_res])
    loop_fail = sum(tr.status != 0 for tr in loop_res)
    loop_vs_batch = max(rel_err(loop_m, results[1].m[idx]), rel_err(loop_a, results[1].a[idx]))
    loop_identical = bool(np.array_equal(loop_m, results[1].m[idx], equal_nan=True)
                          and np.array_equal(loop_a, results[1].a[idx], equal_nan=True))
    checker.check("batch: Python loop vs batch", loop_vs_batch, AGREE_TOL)
    loop_per_traj = loop_timing.median / idx.size
    lsoda_estimate = lsoda_seconds * n

    table = []
    for th, r in runs.items():
        t = r["time"]
        table.append([f"solve_ode_batch threads={th}" + (" (default)" if r["default"] else ""), fmt_time(t.median),
                      fmt_time(t.min), fmt_time(t.iqr), t.repeats, f"{r['per_second']:,.0f}",
                      fmt_time(t.median / n), f"{r['speedup']:.2f}x", r["failures"],
                      "yes" if r["identical_to_1_thread"] else "NO"])
    table.append([f"Python loop over solve_ode ({idx.size:,})", fmt_time(loop_timing.median),
                  fmt_time(loop_timing.min), fmt_time(loop_timing.iqr), loop_timing.repeats,
                  f"{1 / loop_per_traj:,.0f}", fmt_time(loop_per_traj), "", loop_fail,
                  "yes" if loop_identical else f"{loop_vs_batch:.1e}"])
    table.append([f"SciPy LSODA loop ({n:,}), ESTIMATE", fmt_time(lsoda_estimate), "", "", "",
                  f"{1 / lsoda_seconds:,.0f}", fmt_time(lsoda_seconds), "", "", ""])
    print()
    print(render_table(["run", "median", "min", "IQR", "reps", "traj/s", "per traj", "speed-up", "fail",
                        "same"], table))
    best = min(runs.values(), key=lambda r: r["time"].median)
    print(f"\nsteps per trajectory: mean {steps.mean():.1f}, min {steps.min()}, max {steps.max()}; "
          f"'same': identical to threads=1 (loop: to the batch on the same subset).")
    print(f"Python loop, scaled to {n:,} trajectories: {fmt_time(loop_per_traj * n)} "
          f"({loop_per_traj / (runs[1]['time'].median / n):.2f}x the per-trajectory time of threads=1).")
    print(f"SciPy LSODA: ESTIMATE = {n:,} x the single-trajectory LSODA median of workload 1 "
          f"({fmt_time(lsoda_seconds)}, a0=1, h3=0.3), not measured: {fmt_time(lsoda_estimate)}, "
          f"{lsoda_estimate / best['time'].median:,.0f}x the best batch time.", flush=True)

    return {
        "grid": [n_a0, n_h3], "n": n, "t_eval": list(BATCH_T_EVAL), "rtol": RTOL, "atol": ATOL,
        "a0_range": list(BATCH_A0_RANGE), "h3_range": list(BATCH_H3_RANGE),
        "spot_checks": spot_rows,
        "runs": {str(th): r for th, r in runs.items()},
        "steps": {"mean": float(steps.mean()), "min": int(steps.min()), "max": int(steps.max())},
        "python_loop": {"n": int(idx.size), "time": loop_timing, "per_trajectory": loop_per_traj,
                        "failures": int(loop_fail), "max_rel_diff_vs_batch": loop_vs_batch,
                        "identical_to_batch": loop_identical},
        "scipy_lsoda_loop_estimate": {"seconds": lsoda_estimate, "per_trajectory": lsoda_seconds,
                                      "estimated": True,
                                      "basis": "n x median single-trajectory LSODA time of workload 1"},
    }


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats, a 20x20 batch and horizons up to 1e9 (under a minute)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="FILE",
                   help=f"where to save the results (default: {DEFAULT_JSON.relative_to(DEFAULT_JSON.parents[2])})")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three workloads, print the tables, save the JSON.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 if every implementation agreed with the reference, 1 otherwise.
    """
    args = parse_args(argv)
    settings = Settings.make(args.quick)
    wall = time.perf_counter()
    info = machine_info()
    print_machine(info, settings)
    checker = Checker()

    single = workload_single(settings, checker)
    horizons = workload_horizons(settings, checker)
    lsoda = single["implementations"]["scipy LSODA"]["time"].median
    batch = workload_batch(settings, checker, lsoda)

    elapsed = time.perf_counter() - wall
    section("Summary")
    results = {
        "benchmark": "ode", "machine": info, "settings": asdict(settings),
        "single": single, "horizons": horizons, "batch": batch,
    }
    return finish(checker, elapsed, results, args.json)


if __name__ == "__main__":
    sys.exit(main())
