#!/usr/bin/env python
"""Benchmark of fastslow's limit-ODE integrator against SciPy's ``solve_ivp`` and diffrax.

Workloads, run side by side in one process:

1. **One trajectory.** The tanh student on the target ``{1: 1.0, 3: 0.3}`` with ``lr_w = 1``,
   ``lr_a = 0.01``, ``a0 = 1``, ``m0 = 0`` up to ``t_max = 1e7`` at ``rtol = 1e-8``, ``atol = 1e-10``:
   :func:`fastslow.solve_ode` against SciPy's Radau, BDF and LSODA (``_scipy_peer.py``) driven by
   the pure-NumPy right-hand side :class:`fastslow.reference.LimitRHS` in ``v = artanh(m)``
   coordinates. Times, step and evaluation counts, the error against a tight reference
   (:func:`fastslow.reference.solve_ode` at ``rtol = 1e-11``) and the speed ratios.
2. **Steps against the horizon.** ``t_max = 1e3 .. 1e12`` for ``lr_a / lr_w`` = 1e-2, 1e-4 and
   1e-6: fastslow's step count, evaluations and time, with a least-squares fit of the steps against
   ``log10(t_max)`` (steps per decade) to show the logarithmic growth.
3. **Batch.** A 100 x 100 grid (``a0`` geometric in 0.1..5 times the ``h_3`` target coefficient in
   -0.5..0.5, one model per coefficient) saved at ``t = 0, 1e3, 1e7`` with
   :func:`fastslow.solve_ode_batch`, on one thread and on the default thread count: throughput,
   parallel speed-up, failures, bit-identity across thread counts, a plain Python loop over
   :func:`fastslow.solve_ode` on a subset, and an *estimate* of a SciPy-LSODA loop.
4. **The batch against diffrax** (optional: ``jax`` + ``diffrax``, ``_diffrax_peer.py``: ``vmap`` +
   ``jit``, Kvaerno5, same tolerances) on a subset of the grid, compile time apart, scaled to the
   whole grid (marked ESTIMATE), its answers checked against fastslow's on that subset.

Every implementation is checked against the reference before it is timed: fastslow must agree with
it to 1e-6 relative in ``a(t_max)``, and any implementation that disagrees by more than 1e-5
relative is reported, and the script exits with status 1 at the end (a fast wrong answer is not a
result). Results: ``bench/RESULTS.md``.

Usage::

    python bench/bench_ode.py [--quick] [--json FILE]

``--quick`` (fewer repeats, a 20 x 20 batch, horizons up to 1e9, 10 diffrax trajectories) checks
that everything runs and agrees; its timings are rough. The results go to ``bench/results/ode.json``
unless ``--json`` says otherwise.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _diffrax_peer  # noqa: E402
import _scipy_peer  # noqa: E402
from _common import RESULTS_DIR, Checker, Session, Timed, fmt_ratio, fmt_time, parse_args, rel_err  # noqa: E402
from _common import render_table, section, summary_row, time_call, time_interleaved, timing_row  # noqa: E402

import fastslow as fs  # noqa: E402
from fastslow import reference  # noqa: E402
from fastslow._runtime import default_threads  # noqa: E402

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
#: diffrax's ``a(t_max)`` against fastslow's on its subset (workload 4).
DIFFRAX_TOL = 1e-6
#: The issue's target: the fastest SciPy method should be at least this many times slower.
SPEED_TARGET = 300.0

#: Batch workload: save times and the grid ranges.
BATCH_T_EVAL = (0.0, 1e3, 1e7)
BATCH_A0_RANGE = (0.1, 5.0)
BATCH_H3_RANGE = (-0.5, 0.5)

DEFAULT_JSON = RESULTS_DIR / "ode.json"


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
    diffrax_side: int         # diffrax runs on a side x side subset of the grid
    peak_repeats: int

    @classmethod
    def make(cls, quick: bool) -> Settings:
        """The quick or the full settings."""
        if quick:
            return cls(quick=True, ours_repeats=20, scipy_repeats=3, horizon_repeats=5,
                       horizons=tuple(10.0**k for k in range(3, 10)), eps_values=(1e-2, 1e-4, 1e-6),
                       grid=(20, 20), batch_repeats=3, loop_subset=200, diffrax_side=3, peak_repeats=1)
        return cls(quick=False, ours_repeats=140, scipy_repeats=7, horizon_repeats=11,
                   horizons=tuple(10.0**k for k in range(3, 13)), eps_values=(1e-2, 1e-4, 1e-6),
                   grid=(100, 100), batch_repeats=5, loop_subset=1000, diffrax_side=10, peak_repeats=3)


def make_model(lr_a: float = LR_A, target: dict[int, float] | None = None) -> fs.Model:
    """The benchmark model (tanh student) with the given ``lr_a`` and target."""
    return fs.Model(ACTIVATION, TARGET if target is None else target, lr_w=LR_W, lr_a=lr_a)


def ours(model: fs.Model, t_eval: np.ndarray, a0: float = A0) -> Callable[[], fs.Trajectory]:
    """fastslow's single-trajectory call as it is timed (no dense output)."""
    return lambda: fs.solve_ode(model, t_eval, a0=a0, m0=M0, rtol=RTOL, atol=ATOL, dense_output=False)


def quiet_batch(models: list[fs.Model], a0: np.ndarray, t_eval: np.ndarray, threads: int | None) -> fs.Trajectory:
    """:func:`fastslow.solve_ode_batch` on the ``a0 x models`` grid, its failure warning silenced
    (failures are counted)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fs.solve_ode_batch(models, t_eval, a0=a0[:, None], m0=M0, rtol=RTOL, atol=ATOL, threads=threads)


def reference_solution(model: fs.Model, a0: float, t_eval: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    """The tight reference :func:`fastslow.reference.solve_ode` at ``(REF_RTOL, REF_ATOL)``."""
    return reference.solve_ode(model.s, model.c, model.lr_w, model.lr_a, a0, M0, t_eval, rtol=REF_RTOL,
                               atol=REF_ATOL, method="Radau")


# ---------------------------------------------------------------------------------------------
# Workload 1: one trajectory against SciPy
# ---------------------------------------------------------------------------------------------
def workload_single(settings: Settings, checker: Checker) -> dict[str, Any]:
    """One trajectory: fastslow against SciPy Radau, BDF and LSODA, each checked against the tight
    reference before the timing; per implementation timing, steps, evaluations, errors and the
    speed ratio to fastslow."""
    section(f"1. One trajectory: tanh student, target {TARGET}, lr_w={LR_W:g}, lr_a={LR_A:g}, "
            f"a0={A0:g}, m0={M0:g}, t_max={T_MAX:.0e}, rtol={RTOL:.0e}, atol={ATOL:.0e}")
    model = make_model()
    t_eval = np.array([0.0, T_MAX])

    start = time.perf_counter()
    m_ref, a_ref, ref_res = reference_solution(model, A0, t_eval)
    ref_time = time.perf_counter() - start
    m_ref_T, a_ref_T = float(m_ref[-1]), float(a_ref[-1])
    print(f"reference: SciPy Radau rtol={REF_RTOL:.0e} atol={REF_ATOL:.0e} ({fmt_time(ref_time)}): "
          f"m(t_max) = {m_ref_T:.15g}, a(t_max) = {a_ref_T:.15g}", flush=True)
    run_ours = ours(model, t_eval)
    rhs = _scipy_peer.rhs(model)

    def scipy_fn(method: str, use_jac: bool) -> Callable[[], Any]:
        return lambda: _scipy_peer.solve(rhs, method, use_jac, a0=A0, m0=M0, t_max=T_MAX, rtol=RTOL, atol=ATOL)

    # -- agreement, before any timing ------------------------------------------------------
    rows: dict[str, dict[str, Any]] = {}
    tr = run_ours()
    rows["fastslow radau5"] = {
        "status": int(tr.status), "steps": tr.nsteps, "nfev": tr.nfev, "njev": tr.njev, "nlu": tr.nlu,
        "nrejected": tr.nrejected, "m": float(tr.m[-1]), "a": float(tr.a[-1]),
        "err_m": rel_err(tr.m[-1], m_ref_T), "err_a": rel_err(tr.a[-1], a_ref_T),
    }
    r = rows["fastslow radau5"]
    checker.require("single: fastslow status", tr.status == 0)
    checker.check("single: fastslow a(t_max) vs reference", r["err_a"], OURS_TOL)
    checker.check("single: fastslow m(t_max) vs reference", r["err_m"], AGREE_TOL)
    for label, (method, use_jac) in _scipy_peer.VARIANTS.items():
        res = scipy_fn(method, use_jac)()
        m_T, a_T = _scipy_peer.final_state(res)
        rows[f"scipy {label}"] = {
            "method": method, "jac": use_jac, "status": int(res.status), "steps": len(res.t) - 1,
            "nfev": int(res.nfev), "njev": int(res.njev), "nlu": int(res.nlu), "nrejected": None,
            "m": m_T, "a": a_T, "err_m": rel_err(m_T, m_ref_T), "err_a": rel_err(a_T, a_ref_T),
        }
        r = rows[f"scipy {label}"]
        checker.require(f"single: scipy {label} status", res.status == 0)
        checker.check(f"single: scipy {label} a(t_max) vs reference", r["err_a"], AGREE_TOL)
        checker.check(f"single: scipy {label} m(t_max) vs reference", r["err_m"], AGREE_TOL)

    # -- timing, interleaved: each round runs every SciPy variant once and fastslow several times
    rounds = settings.scipy_repeats
    fns = {"fastslow radau5": Timed(run_ours, calls=-(-settings.ours_repeats // rounds))}
    for label, (method, use_jac) in _scipy_peer.VARIANTS.items():
        fns[f"scipy {label}"] = Timed(scipy_fn(method, use_jac))
    for name, timing in time_interleaved(fns, rounds)[0].items():
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
        label = (f"scipy LSODA ({'jac' if r['jac'] else 'no jac'})" if name == "scipy LSODA"
                 else f"{name} (jac)" if name.startswith("scipy") else name)
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
    """fastslow's steps, evaluations and time for ``t_max`` over many decades; one tight reference
    per ``eps = lr_a / lr_w`` (saved at every horizon) checks each result before it is timed."""
    horizons = np.array(settings.horizons)
    section(f"2. Steps against the horizon: t_max = {horizons[0]:.0e} .. {horizons[-1]:.0e}, "
            f"rtol={RTOL:.0e}, atol={ATOL:.0e}")
    out: dict[str, Any] = {}
    for eps in settings.eps_values:
        model = make_model(lr_a=LR_W * eps)
        start = time.perf_counter()
        m_ref, a_ref, _ = reference_solution(model, A0, np.concatenate([[0.0], horizons]))
        ref_time = time.perf_counter() - start
        rows = []
        for k, t_max in enumerate(horizons):
            run = ours(model, np.array([0.0, t_max]))
            tr = run()
            err_a = rel_err(tr.a[-1], a_ref[k + 1])
            err_m = rel_err(tr.m[-1], m_ref[k + 1])
            label = f"horizons eps={eps:g} t_max={t_max:.0e}"
            checker.require(f"{label}: status", tr.status == 0)
            checker.check(f"{label}: a vs reference", err_a, AGREE_TOL)
            checker.check(f"{label}: m vs reference", err_m, AGREE_TOL)
            if max(err_a, err_m) > OURS_TOL:
                checker.note(f"{label}: fastslow relative error a {err_a:.1e}, m {err_m:.1e} (above "
                             f"{OURS_TOL:.0e}, below the {AGREE_TOL:.0e} failure bar)")
            timing, _ = time_call(run, settings.horizon_repeats)
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
def batch_grid(settings: Settings) -> tuple[np.ndarray, np.ndarray, list[fs.Model]]:
    """The batch's ``a0`` values, ``h3`` coefficients and one model per coefficient."""
    n_a0, n_h3 = settings.grid
    h3 = np.linspace(*BATCH_H3_RANGE, n_h3)
    return np.geomspace(*BATCH_A0_RANGE, n_a0), h3, [make_model(target={1: 1.0, 3: float(c)}) for c in h3]


def workload_batch(settings: Settings, checker: Checker, lsoda_seconds: float) -> dict[str, Any]:
    """A grid of trajectories with :func:`fastslow.solve_ode_batch` per thread count, a Python loop
    over :func:`fastslow.solve_ode` on a subset, and an estimate of a SciPy-LSODA loop from
    ``lsoda_seconds``, the median of one LSODA trajectory in workload 1 (same ``t_max``)."""
    n_a0, n_h3 = settings.grid
    n = n_a0 * n_h3
    a0, h3, models = batch_grid(settings)
    t_eval = np.array(BATCH_T_EVAL)
    section(f"3. Batch: {n_a0} a0 (geomspace {BATCH_A0_RANGE[0]:g}..{BATCH_A0_RANGE[1]:g}) x {n_h3} h3 "
            f"(linspace {BATCH_H3_RANGE[0]:g}..{BATCH_H3_RANGE[1]:g}) = {n:,} trajectories, "
            f"t_eval={list(BATCH_T_EVAL)}, rtol={RTOL:.0e}")

    # -- agreement: corners and centre of the grid against a tight reference ------------------
    first = quiet_batch(models, a0, t_eval, None)
    checker.require("batch: shape (a0, models, t_eval)", first.m.shape == (n_a0, n_h3, t_eval.size))
    spots = sorted({(0, 0), (0, n_h3 - 1), (n_a0 - 1, 0), (n_a0 - 1, n_h3 - 1), (n_a0 // 2, n_h3 // 2)})
    spot_rows = []
    start = time.perf_counter()
    for i, j in spots:
        m_ref, a_ref, _ = reference_solution(models[j], float(a0[i]), t_eval)
        err_a, err_m = rel_err(first.a[i, j], a_ref), rel_err(first.m[i, j], m_ref)
        label = f"batch a0={a0[i]:.3g} h3={h3[j]:+.3g}"
        checker.check(f"{label}: a vs reference", err_a, AGREE_TOL)
        checker.check(f"{label}: m vs reference", err_m, AGREE_TOL)
        spot_rows.append({"a0": float(a0[i]), "h3": float(h3[j]), "err_a": err_a, "err_m": err_m,
                          "a": first.a[i, j].tolist(), "m": first.m[i, j].tolist()})
    spot_time = time.perf_counter() - start
    worst = max(max(s["err_a"], s["err_m"]) for s in spot_rows)
    print(f"agreement: {len(spots)} grid points (corners, centre) against SciPy Radau rtol={REF_RTOL:.0e}: "
          f"largest relative error {worst:.1e} ({fmt_time(spot_time)})", flush=True)

    # -- timing per thread count --------------------------------------------------------------
    default = default_threads()
    thread_counts = sorted({1, 2, default})
    runs: dict[int, dict[str, Any]] = {}
    results: dict[int, fs.Trajectory] = {}

    def batch_fn(th: int) -> Callable[[], None]:
        def run() -> None:
            results[th] = quiet_batch(models, a0, t_eval, th)
        return run

    timings, _ = time_interleaved({str(th): Timed(batch_fn(th)) for th in thread_counts}, settings.batch_repeats,
                                  warmup=0)
    fields = ("m", "a", "status", "nsteps", "nfev")
    for th in thread_counts:
        timing, res = timings[str(th)], results[th]
        runs[th] = {"threads": th, "default": th == default, "time": timing, "per_second": n / timing.median,
                    "failures": int(np.count_nonzero(res.status != 0))}
    base = runs[1]["time"].median
    for th, r in runs.items():
        r["speedup"] = base / r["time"].median
        same = all(np.array_equal(getattr(results[th], f), getattr(results[1], f), equal_nan=True) for f in fields)
        r["identical_to_1_thread"] = bool(same)
        checker.require(f"batch threads={th}: identical to threads=1", same)
        checker.check(f"batch threads={th}: no failures", float(r["failures"]), 0.0)
    checker.require("batch: checked run identical to timed runs",
                    all(np.array_equal(getattr(first, f), getattr(results[1], f), equal_nan=True) for f in fields))
    steps = results[1].nsteps

    # -- a plain Python loop on a subset ------------------------------------------------------
    flat = np.unique(np.linspace(0, n - 1, min(settings.loop_subset, n)).round().astype(int))
    ii, jj = np.unravel_index(flat, (n_a0, n_h3))

    def loop() -> list[fs.Trajectory]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return [ours(models[j], t_eval, float(a0[i]))() for i, j in zip(ii, jj)]

    loop_timing, loop_res = time_call(loop, settings.batch_repeats)
    loop_m = np.array([tr.m for tr in loop_res])
    loop_a = np.array([tr.a for tr in loop_res])
    loop_fail = sum(tr.status != 0 for tr in loop_res)
    batch_m, batch_a = results[1].m[ii, jj], results[1].a[ii, jj]
    loop_vs_batch = max(rel_err(loop_m, batch_m), rel_err(loop_a, batch_a))
    loop_identical = bool(np.array_equal(loop_m, batch_m, equal_nan=True) and np.array_equal(loop_a, batch_a,
                                                                                             equal_nan=True))
    checker.check("batch: Python loop vs batch", loop_vs_batch, AGREE_TOL)
    loop_per_traj = loop_timing.median / flat.size
    lsoda_estimate = lsoda_seconds * n

    table = []
    for th, r in runs.items():
        t = r["time"]
        table.append([f"solve_ode_batch threads={th}" + (" (default)" if r["default"] else ""), fmt_time(t.median),
                      fmt_time(t.min), fmt_time(t.iqr), t.repeats, f"{r['per_second']:,.0f}",
                      fmt_time(t.median / n), f"{r['speedup']:.2f}x", r["failures"],
                      "yes" if r["identical_to_1_thread"] else "NO"])
    table.append([f"Python loop over solve_ode ({flat.size:,})", fmt_time(loop_timing.median),
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
        "best_threads": best["threads"],
        "steps": {"mean": float(steps.mean()), "min": int(steps.min()), "max": int(steps.max())},
        "python_loop": {"n": int(flat.size), "time": loop_timing, "per_trajectory": loop_per_traj,
                        "scaled_seconds": loop_per_traj * n, "failures": int(loop_fail),
                        "max_rel_diff_vs_batch": loop_vs_batch, "identical_to_batch": loop_identical},
        "scipy_lsoda_loop_estimate": {"seconds": lsoda_estimate, "per_trajectory": lsoda_seconds,
                                      "estimated": True,
                                      "basis": "n x median single-trajectory LSODA time of workload 1"},
    }


# ---------------------------------------------------------------------------------------------
# Workload 4: the batch against diffrax
# ---------------------------------------------------------------------------------------------
def workload_diffrax(settings: Settings, checker: Checker, batch: dict[str, Any]) -> dict[str, Any]:
    """diffrax on a ``side x side`` subset of the batch's grid (same ranges), its answers checked
    against fastslow's on that subset, its run time scaled to the whole grid."""
    section("4. Batch against diffrax (vmap + jit, Kvaerno5)")
    why = _diffrax_peer.available()
    if why:
        print(f"diffrax: {why}; skipped (pip install jax diffrax)")
        return {"available": False, "reason": why}
    side = settings.diffrax_side
    a0_axis = np.geomspace(*BATCH_A0_RANGE, side)
    h3_axis = np.linspace(*BATCH_H3_RANGE, side)
    a0, c3 = np.repeat(a0_axis, side), np.tile(h3_axis, side)
    t_eval = np.array(BATCH_T_EVAL)
    r = _diffrax_peer.batch(make_model().s, LR_W, LR_A, a0, c3, t_eval, RTOL, ATOL)
    models = [make_model(target={1: 1.0, 3: float(k)}) for k in h3_axis]
    mine = quiet_batch(models, a0_axis, t_eval, None)
    err = float(np.max(np.abs(r["a"][:, -1] / mine.a[..., -1].ravel() - 1)))
    checker.check(f"diffrax: a(t_max) against fastslow on {a0.size} trajectories", err, DIFFRAX_TOL)
    checker.require("diffrax: every trajectory succeeded", bool(r["ok"].all()))
    n_total = batch["n"]
    ours_seconds = batch["runs"][str(batch["best_threads"])]["time"].median
    per = r["run"] / a0.size
    est = per * n_total
    print(render_table(["implementation", "trajectories", "compile", "run", "per trajectory", f"{n_total:,} (scaled)",
                        "vs ours"],
                       [["diffrax Kvaerno5", a0.size, fmt_time(r["compile"]), fmt_time(r["run"]), fmt_time(per),
                         f"{fmt_time(est)} (ESTIMATE)", fmt_ratio(est / ours_seconds)],
                        ["fastslow solve_ode_batch", n_total, "-", fmt_time(ours_seconds),
                         fmt_time(ours_seconds / n_total), fmt_time(ours_seconds), "1x"]]))
    print(f"diffrax steps per trajectory: mean {r['steps'].mean():.0f}; max |a/a_ours - 1| at t_max: {err:.1e}. "
          "The subset runs all its lanes for as long as the slowest one (vmap), as a full batch would.", flush=True)
    return {"available": True, "n": int(a0.size), "compile": r["compile"], "run": r["run"], "per_trajectory": per,
            "scaled_seconds": est, "ratio_to_ours": est / ours_seconds, "max_rel_err": err,
            "mean_steps": float(r["steps"].mean())}


# ---------------------------------------------------------------------------------------------
# Summary, main
# ---------------------------------------------------------------------------------------------
def summary(single: dict[str, Any], batch: dict[str, Any], dfx: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary rows: one trajectory per implementation, the batch against its peers."""
    impls = single["implementations"]
    ours_single = impls["fastslow radau5"]["time"].median
    rows = [timing_row(f"ODE, one trajectory to {T_MAX:.0e}", name, r["time"], ours_single) for name, r in impls.items()]
    n = batch["n"]
    best = batch["runs"][str(batch["best_threads"])]
    t_best = best["time"].median
    label = f"ODE batch of {n:,}"
    rows.append(timing_row(label, f"fastslow, {best['threads']} thread{'s' if best['threads'] > 1 else ''}",
                           best["time"], t_best))
    loop = batch["python_loop"]
    rows.append(summary_row(label, "Python loop over solve_ode", loop["scaled_seconds"],
                            f"scaled from {loop['n']:,}", loop["scaled_seconds"] / t_best))
    lsoda = batch["scipy_lsoda_loop_estimate"]["seconds"]
    rows.append(summary_row(label, "SciPy LSODA loop", lsoda, "ESTIMATE", lsoda / t_best))
    if dfx.get("available"):
        rows.append(summary_row(label, "diffrax Kvaerno5 (after compile)", dfx["scaled_seconds"],
                                f"ESTIMATE from {dfx['n']}", dfx["scaled_seconds"] / t_best))
    else:
        rows.append(summary_row(label, "diffrax", None, "not installed"))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the workloads, print the tables, save the JSON; 0 if every implementation agreed with the
    reference, 1 otherwise."""
    args = parse_args(__doc__, DEFAULT_JSON, "fewer repeats, a 20x20 batch and horizons up to 1e9", argv)
    settings = Settings.make(args.quick)
    run = Session("fastslow limit-ODE benchmark", settings.quick, versions={"scipy": _scipy_peer.VERSION},
                  peak_repeats=settings.peak_repeats)
    single = workload_single(settings, run.checker)
    horizons = workload_horizons(settings, run.checker)
    lsoda = single["implementations"]["scipy LSODA"]["time"].median
    batch = workload_batch(settings, run.checker, lsoda)
    dfx = workload_diffrax(settings, run.checker, batch)
    results = {"benchmark": "ode", "settings": asdict(settings), "single": single, "horizons": horizons,
               "batch": batch, "diffrax": dfx}
    return run.close(summary(single, batch, dfx), results, args.json)


if __name__ == "__main__":
    sys.exit(main())
