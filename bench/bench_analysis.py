"""Benchmark of the fast-slow analysis (issue 4).

Workloads, each timed in one process:

1. The critical manifold on 10,000 values of ``a`` (tanh student, target ``h1 + 0.3 h3``; and a
   centred-GELU student, ``h1 + 0.4 h2``): fastslow (branch structure once, then vectorised
   safeguarded Newton on every branch), the first call (with the structure) and later calls, against
   the naive NumPy approach (``numpy.roots`` of ``dL/dm`` at every ``a``, companion matrix), timed on
   a subset and scaled (marked ESTIMATE). Agreement: every fastslow point has ``|dL/dm| < 1e-10`` and
   both find the same points on the subset.
2. A 200 x 200 phase diagram (the target's ``h3`` coefficient x ``a0``, 40,000 trajectories to
   ``t = 1e7``) with :func:`fastslow.phase_diagram`; a few cells checked against single runs.

Targets (issue 4): the phase diagram under 10 s on 2 cores, the manifold on 10,000 ``a`` under 1 s.

Usage::

    python bench/bench_analysis.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.polynomial import polynomial as P

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    Checker,
    Timing,
    base_machine_info,
    finish,
    fmt_ratio,
    fmt_time,
    print_header,
    render_table,
    section,
    source_revision,
)

import fastslow as fs  # noqa: E402
from fastslow import analysis as an  # noqa: E402


def naive_roots(model: fs.Model, a_values: np.ndarray) -> list[np.ndarray]:
    """Real roots in (-1, 1) of dL/dm / a = a A'(m)/2 - B'(m) by numpy.roots, one a at a time."""
    s, c = model.s, model.c
    A = np.zeros(2 * len(s) - 1)
    A[::2] = s * s
    k = min(len(s), len(c))
    B = s[:k] * c[:k]
    A1, B1 = P.polyder(A), P.polyder(B)
    out = []
    for a in a_values:
        h = P.polysub(0.5 * a * A1, B1)
        r = np.roots(np.trim_zeros(h, "b")[::-1])
        r = r[np.abs(r.imag) < 1e-9].real
        out.append(np.sort(r[np.abs(r) < 1]))
    return out


def workload_manifold(quick: bool, checker: Checker) -> dict[str, Any]:
    section("1. Critical manifold on 10,000 values of a")
    a = np.linspace(-20, 20, 10_000)
    a = a[a != 0]
    rows, results = [], {}
    cases = {"tanh, h1 + 0.3 h3": lambda: fs.Model("tanh", {1: 1.0, 3: 0.3}),
             "gelu (centred), h1 + 0.4 h2": lambda: fs.Model("gelu", {1: 1.0, 2: 0.4}, centred=True)}
    for label, make in cases.items():
        model = make()
        t0 = time.perf_counter()
        cm = fs.critical_manifold(model, a)
        first = time.perf_counter() - t0
        reps = 3 if quick else 7
        samples = []
        for _ in range(reps):
            t0 = time.perf_counter()
            cm = fs.critical_manifold(model, a)
            samples.append(time.perf_counter() - t0)
        later = Timing.from_samples(samples)
        checker.check(f"manifold {label}: max |dL/dm|", float(np.nanmax(cm.residual)), 1e-10)
        sub = a[:: (200 if quick else 50)]
        t0 = time.perf_counter()
        naive = naive_roots(model, sub)
        t_naive = (time.perf_counter() - t0) / len(sub) * len(a)
        cms = fs.critical_manifold(model, sub)
        worst = 0.0
        for i, r in enumerate(naive):
            ours = np.sort(cms.m[i][np.isfinite(cms.m[i])])
            if len(ours) != len(r):
                worst = np.inf
                break
            if len(r):
                worst = max(worst, float(np.max(np.abs(ours - r))))
        checker.check(f"manifold {label}: same points as numpy.roots on {len(sub)} values", worst, 1e-7)
        rows.append([label, fmt_time(first), fmt_time(later.median), f"{fmt_time(t_naive)} (ESTIMATE)",
                     fmt_ratio(t_naive / later.median), len(cm.branches), len(cm.folds),
                     f"{np.nanmax(cm.residual):.1e}"])
        results[label] = {"first_call": first, "later": later, "numpy_roots_estimate": t_naive,
                          "numpy_roots_subset": len(sub), "branches": len(cm.branches), "folds": len(cm.folds),
                          "max_residual": float(np.nanmax(cm.residual))}
        if first > 1.0:
            checker.note(f"manifold {label}: first call {first:.2f} s, target < 1 s: NOT met")
    print(render_table(["model", "first call", "later calls", "numpy.roots loop", "vs ours", "branches", "folds",
                        "max |dL/dm|"], rows))
    print(f"({len(a):,} values of a in [-20, 20]; first call includes the branch structure: fold and "
          "zero polynomials by colleague matrix + sign scan; numpy.roots timed on a subset and scaled)")
    return results


def workload_phase(quick: bool, checker: Checker) -> dict[str, Any]:
    n = 50 if quick else 200
    section(f"2. Phase diagram {n} x {n}: h3 coefficient x a0, tanh student, t_max = 1e7")
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.01)
    c3 = np.linspace(-0.5, 0.5, n)
    a0 = np.geomspace(0.25, 4.0, n)
    pd = fs.phase_diagram(model, ("c3", c3), ("a0", a0), t_max=1e7)
    seconds = pd.seconds
    counts = {k: int(np.sum(pd.outcome == k)) for k in an.OUTCOMES}
    print(f"{n * n:,} trajectories in {fmt_time(seconds)} ({fmt_time(seconds / (n * n))} each, "
          f"{fs.ode.default_threads()} threads); outcomes: {counts}")
    # cells against single classifications
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(5):
        i, j = rng.integers(n), rng.integers(n)
        single = fs.classify(model.replace(target={"hermite": [0, 1, 0, c3[j]]}), a0[i], 0.0, t_max=1e7)
        same = single.outcome[0] == pd.outcome[i, j]
        worst = max(worst, 0.0 if same else np.inf, abs(single.m_final[0] - pd.m_final[i, j]))
    checker.check("phase diagram: 5 cells equal single runs", worst, 1e-12)
    if n == 200 and seconds >= 10:
        checker.note(f"phase diagram 200 x 200: {seconds:.1f} s, target < 10 s: NOT met")
    return {"n": n, "seconds": seconds, "per_trajectory": seconds / (n * n), "outcomes": counts}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 50 x 50 phase diagram and fewer repeats")
    ap.add_argument("--json", type=Path, default=Path(__file__).resolve().parent / "results" / "analysis.json")
    args = ap.parse_args()
    info = base_machine_info()
    print_header("fastslow fast-slow analysis benchmark", info, args.quick,
                 f"fastslow {info['fastslow']}, numpy {info['numpy']}")
    print(f"  source    {source_revision(info)}")
    start = time.perf_counter()
    checker = Checker()
    results = {"machine": info, "quick": args.quick}
    results["manifold"] = workload_manifold(args.quick, checker)
    results["phase_diagram"] = workload_phase(args.quick, checker)
    return finish(checker, time.perf_counter() - start, results, args.json)


if __name__ == "__main__":
    sys.exit(main())
