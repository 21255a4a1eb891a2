#!/usr/bin/env python
"""Every benchmark in one process, with one summary table, a JSON file and a figure.

    python bench/run.py [--quick] [--json FILE] [--skip NAME ...]

Runs, in this order, in this process, each saving its own JSON beside ``FILE``:

1. ``bench_sgd``: one SGD step at (B, d, n) = (1024, 256, 256) and (4096, 1024, 1024), float32:
   fastslow, NumPy, PyTorch (optional), the two-GEMM floor; the step against ``B d n``.
2. ``bench_ode``: one trajectory to t = 1e7 at rtol 1e-8 against SciPy's Radau, BDF and LSODA; steps
   against t_max; the 10,000-trajectory batch against a Python loop, a SciPy loop (estimated) and
   diffrax (optional; on a subset, scaled).
3. ``bench_analysis``: the critical manifold against ``numpy.roots``; a 200 x 200 phase diagram.
4. ``bench_sweep``: sweeps against one direct ``solve_ode_batch`` call, in this process and on local
   Dask clusters (needs ``fastslow[sweep]``; skipped otherwise).
5. ``bench_samplers``: the projected SGD step against the direct one as d grows (n = 128, B = 8 d),
   the crossover shapes, and long runs of small networks (seeds in parallel on the cores).
6. ``bench_effective``: the effective map in C++ against its NumPy reference on the same problem;
   the validity map's 28 cells as one batch call against single calls.

Each benchmark measures the machine's sgemm peak alongside its workloads and checks every
implementation against fastslow or a tight reference before timing it; the exit status is 1 when any
implementation disagrees, or a benchmark fails to run. Peers that are not installed are reported as
such. The summary table is the concatenation of the benchmarks' own summaries.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import RESULTS_DIR, Checker, base_machine_info, finish, print_summary, section, source_revision  # noqa: E402

#: name -> (title, a module that must import for it to run, or None).
BENCHMARKS: dict[str, tuple[str, str | None]] = {
    "sgd": ("SGD step (bench_sgd)", None),
    "ode": ("Limit ODE (bench_ode)", None),
    "analysis": ("Fast-slow analysis (bench_analysis)", None),
    "particles": ("Particle limit (bench_particles)", None),
    "sweep": ("Sweeps (bench_sweep)", "xarray"),
    "samplers": ("SGD samplers, direct vs projected (bench_samplers)", None),
    "effective": ("Effective dynamics (bench_effective)", None),
}


def run_one(name: str, quick: bool, path: Path, checker: Checker) -> dict[str, Any] | None:
    """Import and run ``bench_<name>`` with its JSON at ``path``; its results, or None when skipped.
    A failed agreement check or a crash is recorded in ``checker``."""
    title, needs = BENCHMARKS[name]
    section(f"{list(BENCHMARKS).index(name) + 1}. {title}")
    if needs is not None:
        try:
            importlib.import_module(needs)
        except ImportError:
            print(f"  skipped: {needs} is not installed (pip install 'fastslow[sweep]')")
            return None
    try:
        rc = importlib.import_module(f"bench_{name}").main([*(["--quick"] if quick else []), "--json", str(path)])
    except Exception as exc:  # a benchmark that cannot run is a failure, not a reason to stop the others
        traceback.print_exc()
        checker.require(f"bench_{name} ran ({type(exc).__name__}: {exc})", False)
        return None
    checker.require(f"bench_{name}: every implementation agreed", rc == 0)
    return json.loads(path.read_text())


def figure(results: dict[str, Any], rows: list[dict[str, Any]], path: Path) -> bool:
    """SGD step time against flops, ODE steps against the horizon, and every ratio to fastslow."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    fig = Figure(figsize=(12, 4), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    sgd, ode = results.get("sgd"), results.get("ode")
    if sgd:
        sc = sgd["scaling"]["shapes"]
        fl = np.array([s["flops"] for s in sc])
        ax1.loglog(fl, [s["time"]["median"] for s in sc], "o-", color="#0072B2", label="fastslow step")
        ax1.loglog(fl, fl / (sgd["sgemm_peak"]["used_gflops"] * 1e9), ":", color="k", label="two GEMMs at sgemm peak")
        ax1.set_xlabel("flops of the two GEMMs, 4 B d n")
        ax1.set_ylabel("time per step (s)")
        ax1.legend(fontsize=8)
    if ode:
        for i, (eps, hz) in enumerate(ode["horizons"]["by_eps"].items()):
            ax2.semilogx([r["t_max"] for r in hz["rows"]], [r["steps"] for r in hz["rows"]], "o-",
                         color=["#0072B2", "#D55E00", "#009E73"][i % 3], label=f"eps = {eps}")
        ax2.set_xlabel("t_max")
        ax2.set_ylabel("accepted steps")
        ax2.set_title("ODE steps grow like log t_max", fontsize=9)
        ax2.legend(fontsize=8)
    bars = [(f"{r['workload']}: {r['implementation']}", r["ratio"]) for r in rows
            if r["ratio"] is not None and r["ratio"] != 1.0]
    y = np.arange(len(bars))
    ax3.barh(y, [b[1] for b in bars], color="#E69F00")
    ax3.set_yticks(y, [b[0] for b in bars], fontsize=5)
    ax3.set_xscale("log")
    ax3.axvline(1, color="k", lw=0.8)
    ax3.set_xlabel("time / fastslow (> 1: fastslow faster)")
    fig.savefig(path, dpi=110)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the quick mode of every benchmark")
    ap.add_argument("--json", type=Path, default=RESULTS_DIR / "all.json")
    ap.add_argument("--skip", action="append", default=[], choices=list(BENCHMARKS), metavar="NAME",
                    help=f"leave a benchmark out (one of {', '.join(BENCHMARKS)}; repeatable)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    out_dir = args.json.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    info = base_machine_info()
    print(f"fastslow benchmarks{' (--quick)' if args.quick else ''}: {info['cpu']}, {info['usable_cores']} cores, "
          f"{info['date']}, source {source_revision(info)}")
    checker = Checker()
    results: dict[str, Any] = {"machine": info, "quick": args.quick, "skipped": args.skip}
    for name in BENCHMARKS:
        if name not in args.skip:
            results[name] = run_one(name, args.quick, out_dir / f"{args.json.stem}_{name}.json", checker)
    rows = [row for name in BENCHMARKS for row in (results.get(name) or {}).get("summary", [])]
    peaks = {name: results[name]["sgemm_peak"]["used_gflops"] for name in BENCHMARKS
             if (results.get(name) or {}).get("sgemm_peak")}
    print_summary(rows, None, "Summary of every benchmark")
    print("sgemm peak measured alongside each benchmark: "
          + ", ".join(f"{name} {gflops:.1f} GFLOP/s" for name, gflops in peaks.items()))
    results["summary"] = rows
    fig_path = out_dir / f"{args.json.stem}.png"
    if figure(results, rows, fig_path):
        print(f"figure saved to {fig_path}")
    return finish(checker, time.perf_counter() - start, results, args.json)


if __name__ == "__main__":
    sys.exit(main())
