#!/usr/bin/env python
"""Benchmark of the fast-slow analysis (issue 4).

Workloads, each timed in one process:

1. The critical manifold on 10,000 values of ``a`` (tanh student, target ``h1 + 0.3 h3``; and a
   centred-GELU student, ``h1 + 0.4 h2``): :func:`fastslow.critical_manifold` (branch structure
   once, then vectorised safeguarded Newton on every branch), the first call (with the structure) and
   later calls, against the naive NumPy approach (``numpy.roots`` of ``dL/dm`` at every ``a``,
   ``_roots_peer.py``), timed on a subset and scaled (marked ESTIMATE). Agreement: every fastslow
   point has ``|dL/dm| < 1e-10`` and both find the same points on the subset.
2. A 200 x 200 phase diagram (the target's ``h3`` coefficient x ``a0``, 40,000 trajectories to
   ``t = 1e7``) with :func:`fastslow.phase_diagram`; a few cells checked against
   :func:`fastslow.classify` of the same model and initial condition.

Targets (issue 4): the phase diagram under 10 s on 2 cores, the manifold on 10,000 ``a`` under 1 s.
Results: ``bench/RESULTS.md``.

Usage::

    python bench/bench_analysis.py [--quick] [--json FILE]

``--quick``: a 50 x 50 phase diagram and fewer repeats (checks that everything runs and agrees).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _roots_peer  # noqa: E402
from _common import RESULTS_DIR, Checker, Session, Timed, fmt_ratio, fmt_time, parse_args, render_table, section  # noqa: E402
from _common import summary_row, time_interleaved, timing_row  # noqa: E402

import fastslow as fs  # noqa: E402
from fastslow._runtime import default_threads  # noqa: E402

DEFAULT_JSON = RESULTS_DIR / "analysis.json"
T_MAX = 1e7
MANIFOLD_TARGET = 1.0    # seconds, first call on 10,000 values of a
PHASE_TARGET = 10.0      # seconds, 200 x 200 phase diagram

CASES = {"tanh, h1 + 0.3 h3": lambda: fs.Model("tanh", {1: 1.0, 3: 0.3}),
         "gelu (centred), h1 + 0.4 h2": lambda: fs.Model("gelu", {1: 1.0, 2: 0.4}, centred=True)}


def same_points(ours: Any, naive: list[np.ndarray]) -> float:
    """Largest distance between fastslow's manifold points (rows of ``ours.m``, NaN-padded) and the
    naive roots at the same values of ``a``; infinite when they find different numbers of points."""
    worst = 0.0
    for row, r in zip(ours.m, naive):
        mine = np.sort(row[np.isfinite(row)])
        if len(mine) != len(r):
            return np.inf
        if len(r):
            worst = max(worst, float(np.max(np.abs(mine - r))))
    return worst


def workload_manifold(quick: bool, checker: Checker) -> dict[str, Any]:
    section("1. Critical manifold on 10,000 values of a")
    a = np.linspace(-20, 20, 10_000)
    a = a[a != 0]
    rows, results = [], {}
    for label, make in CASES.items():
        model = make()
        t0 = time.perf_counter()
        cm = fs.critical_manifold(model, a)
        first = time.perf_counter() - t0
        later = time_interleaved({"later": Timed(lambda model=model: fs.critical_manifold(model, a), calls=3 if quick else 7)}, 1,
                                 warmup=0)[0]["later"]
        residual = float(np.nanmax(cm.residual))
        checker.check(f"manifold {label}: max |dL/dm|", residual, 1e-10)
        sub = a[:: (200 if quick else 50)]
        t0 = time.perf_counter()
        naive = _roots_peer.critical_points(model, sub)
        t_naive = (time.perf_counter() - t0) / len(sub) * len(a)
        checker.check(f"manifold {label}: same points as numpy.roots on {len(sub)} values",
                      same_points(fs.critical_manifold(model, sub), naive), 1e-7)
        rows.append([label, fmt_time(first), fmt_time(later.median), f"{fmt_time(t_naive)} (ESTIMATE)",
                     fmt_ratio(t_naive / later.median), len(cm.branches), len(cm.folds), f"{residual:.1e}"])
        results[label] = {"first_call": first, "later": later, "numpy_roots_estimate": t_naive,
                          "numpy_roots_subset": len(sub), "branches": len(cm.branches), "folds": len(cm.folds),
                          "max_residual": residual}
        if first > MANIFOLD_TARGET:
            checker.note(f"manifold {label}: first call {first:.2f} s, target < {MANIFOLD_TARGET:g} s: NOT met")
    print(render_table(["model", "first call", "later calls", "numpy.roots loop", "vs ours", "branches", "folds",
                        "max |dL/dm|"], rows))
    print(f"({len(a):,} values of a in [-20, 20]; first call includes the branch structure: fold and "
          "zero polynomials by colleague matrix + sign scan; numpy.roots timed on a subset and scaled)", flush=True)
    return results


def workload_phase(quick: bool, checker: Checker) -> dict[str, Any]:
    n = 50 if quick else 200
    section(f"2. Phase diagram {n} x {n}: h3 coefficient x a0, tanh student, t_max = {T_MAX:.0e}")
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.01)
    c3 = np.linspace(-0.5, 0.5, n)
    a0 = np.geomspace(0.25, 4.0, n)
    threads = default_threads()
    t0 = time.perf_counter()
    pd = fs.phase_diagram(model, ("c3", c3), ("a0", a0), t_max=T_MAX, threads=threads)
    seconds = time.perf_counter() - t0
    labels, counts = np.unique(np.asarray(pd.outcome).astype(str), return_counts=True)
    outcomes = {str(k): int(v) for k, v in zip(labels, counts)}
    print(f"{n * n:,} trajectories in {fmt_time(seconds)} ({fmt_time(seconds / (n * n))} each, "
          f"{threads} threads); outcomes: {outcomes}")
    # cells against single classifications of the same model and initial condition
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(5):
        i, j = rng.integers(n), rng.integers(n)
        single = fs.classify(model.replace(target={"hermite": [0, 1, 0, c3[j]]}), a0=a0[i], m0=0.0, t_max=T_MAX)
        same = np.ravel(single.outcome)[0] == pd.outcome[i, j]
        worst = max(worst, 0.0 if same else np.inf, abs(float(np.ravel(single.m_final)[0]) - pd.m_final[i, j]))
    checker.check("phase diagram: 5 cells equal single runs", worst, 1e-12)
    if n == 200 and seconds >= PHASE_TARGET:
        checker.note(f"phase diagram 200 x 200: {seconds:.1f} s, target < {PHASE_TARGET:g} s: NOT met")
    return {"n": n, "seconds": seconds, "per_trajectory": seconds / (n * n), "threads": threads, "outcomes": outcomes}


def summary(manifold: dict[str, Any], phase: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for label, r in manifold.items():
        workload = f"critical manifold, 10,000 a, {label}"
        t = r["later"].median
        rows.append(timing_row(workload, "fastslow, later calls", r["later"], t))
        rows.append(summary_row(workload, "fastslow, first call", r["first_call"], "one call", r["first_call"] / t))
        rows.append(summary_row(workload, "numpy.roots loop", r["numpy_roots_estimate"],
                                f"ESTIMATE from {r['numpy_roots_subset']}", r["numpy_roots_estimate"] / t))
    n = phase["n"]
    rows.append(summary_row(f"phase diagram {n} x {n} to {T_MAX:.0e}", f"fastslow, {phase['threads']} threads",
                            phase["seconds"], "one call", 1.0))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__, DEFAULT_JSON, "a 50 x 50 phase diagram and fewer repeats", argv)
    run = Session("fastslow fast-slow analysis benchmark", args.quick, peak_repeats=1 if args.quick else 3)
    manifold = workload_manifold(args.quick, run.checker)
    phase = workload_phase(args.quick, run.checker)
    return run.close(summary(manifold, phase), {"benchmark": "analysis", "manifold": manifold,
                                                 "phase_diagram": phase}, args.json)


if __name__ == "__main__":
    sys.exit(main())
