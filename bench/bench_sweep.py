#!/usr/bin/env python
"""Benchmark of sweeps (issue 7): what scheduling and I/O cost next to the work, and which local
executor serves best.

Two workloads, run side by side in one process:

1. **A 100 x 100 ODE phase diagram.** The demo's model (tanh student, target ``h1 + c3 h3``,
   ``lr_a = 0.01``) over ``c3`` in [-0.5, 0.5] and ``a0`` log-spaced in [0.25, 4], each trajectory to
   ``t = 1e7`` saved at 21 points (``compute = ["ode"]``, the default 8 tasks of 1,250 cells).
   Against **one direct** :func:`fastslow.solve_ode_batch` call on the same 10,000 cells (every
   core): the sweep in this process with 1 worker (the default pipeline) without and with its store
   (a zarr store: one chunk per task and variable), with 2 workers and its store, and on a local Dask cluster of 1 and 2
   worker processes (client started before timing; its start-up reported apart), plus a thread pool
   of 2 threads running the same tasks with one OpenMP thread each and no pipeline (not an executor
   of the library: the measurement behind its choices). Overhead = the median over rounds of (sweep
   time / direct time in the same round) - 1; target: under 10 %.
2. **An SGD seed ensemble.** 8 SGD cells (n = d = 128, B = 1024, 100 steps): ``workers=1`` (one task
   at a time with every core), ``workers=2`` (two at a time, one core each) and 2 Dask worker
   processes.

Every sweep's results are checked against the direct call (bit for bit) before they count; a
disagreement makes the script exit with status 1.

Usage
-----
::

    python bench/bench_sweep.py [--quick] [--json FILE]

``--quick``: one repeat of each, a 40 x 40 diagram (about 30 s); the full run 15 rounds of the phase
diagram and 5 of the ensemble (4 min).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable

import numpy as np

import fastslow as fs
from fastslow._runtime import default_threads
from fastslow.sweep import SweepSpec
from fastslow.sweep.tasks import concat, plan, run_task

from _common import Checker, Timing, base_machine_info, finish, fmt_ratio, fmt_time, print_header, render_table, section

HERE = Path(__file__).resolve().parent
BASE = {"model": {"activation": "tanh", "target": {"1": 1.0, "3": 0.3}, "lr_a": 0.01},
        "ode": {"t_max": 1e7, "points": 20}}


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Timing, Any]:
    samples, out = [], None
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t)
    return Timing.from_samples(samples), out


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int,
                after: Callable[[], None] | None = None) -> dict[str, tuple[Timing, Any, list[float]]]:
    """Time several variants round-robin (this machine's speed drifts: side by side, not one after
    the other): per variant its Timing over ``repeats`` rounds, its last output and its samples.
    The order within a round is shuffled (seeded), so no variant always follows the same one.
    ``after`` runs after each timed call, outside the timing (the phase workload deletes the
    stores written: the kernel writes a file's dirty pages back 5-30 s later, which used to land in
    whichever variant was being timed then, the direct call included)."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    outs: dict[str, Any] = {}
    rng = np.random.default_rng(20261130)
    labels = list(fns)
    for _ in range(repeats):
        for i in rng.permutation(len(labels)):
            label, fn = labels[i], fns[labels[i]]
            gc.collect()
            t = time.perf_counter()
            outs[label] = fn()
            samples[label].append(time.perf_counter() - t)
            if after is not None:
                after()
    return {k: (Timing.from_samples(v), outs[k], v) for k, v in samples.items()}


def thread_pool(spec: SweepSpec, workers: int) -> dict[str, np.ndarray]:
    """The sweep's tasks on a pool of threads in this process, each with cores // workers threads
    (the tasks' cells in C order, as planned)."""
    per = max(1, default_threads() // workers)
    with cf.ThreadPoolExecutor(workers) as ex:
        futs = [ex.submit(run_task, spec, t, threads=per) for t in plan(spec)]
        parts = [f.result() for f in futs]
    return concat(parts)


def phase_workload(n: int, repeats: int, client1: Any, client2: Any, checker: Checker,
                   into: dict[str, Any] | None = None) -> dict[str, Any]:
    """The local rows (clients None), or, with ``into`` (the local result), the Dask rows added to it."""
    c3 = np.linspace(-0.5, 0.5, n)
    a0 = np.geomspace(0.25, 4.0, n)
    spec = SweepSpec.create(BASE, {"c3": c3, "a0": a0}, compute=["ode"])
    base = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.01)
    models = [base.replace(target={"hermite": [0.0, 1.0, 0.0, float(c)]}) for c in c3]
    t_eval = fs.log_times(1e7, 20)
    rows: dict[str, Any] = {}

    direct_fn = lambda: fs.solve_ode_batch(models, t_eval, a0=a0[:, None], m0=0.0)  # noqa: E731
    if into is not None:
        rows = into["runs"]
        ref_m = direct_fn().m.reshape(n, n, -1).transpose(1, 0, 2)
    else:
        ref_m = direct_fn().m.reshape(n, n, -1).transpose(1, 0, 2)  # (a0, c3) -> the sweep's (c3, a0)

    def check(label: str, m: np.ndarray) -> None:
        err = float(np.max(np.abs(m - ref_m))) if m.shape == ref_m.shape else float("inf")
        checker.check(f"phase diagram, {label}: ode_m against the direct call", err, 0.0)

    stores: list[str] = []

    def run_store(**kw: Any) -> Any:  # a new store each time (removed after the timings)
        stores.append(tempfile.mkdtemp(prefix="fastslow-bench-sweep-"))
        return fs.sweep(spec, store=stores[-1], progress=False, **kw)

    def pool() -> np.ndarray:
        return thread_pool(spec, 2)["ode_m"].reshape(n, n, -1)

    if into is None:
        variants: dict[str, Callable[[], Any]] = {
            "direct solve_ode_batch": direct_fn,
            "sweep, this process, 1 worker, no store": lambda: fs.sweep(spec, progress=False),
            "sweep, this process, 1 worker, store": run_store,
            "sweep, this process, 2 workers, store": lambda: run_store(workers=2),
            "2 threads x 1 core each (no store, no pipeline)": pool}
        run_store()  # warm-up: the first store in a process pays zarr's and numcodecs' imports
    else:
        variants = {"direct solve_ode_batch (again, beside the clusters)": direct_fn,
                    "sweep, Dask 1 worker process, store": lambda: run_store(client=client1),
                    "sweep, Dask 2 worker processes, store": lambda: run_store(client=client2)}
    def remove_stores() -> None:
        for d in stores:
            shutil.rmtree(d, ignore_errors=True)
        stores.clear()

    try:
        timings = interleaved(variants, repeats, after=remove_stores)
    finally:
        remove_stores()
    first = next(iter(timings))
    direct_samples = np.array(timings[first][2])
    for label, (tm, out, samples) in timings.items():
        if label.startswith("direct"):
            rows[label] = {"time": tm, "tasks": 1}
            print(f"  {label}: {n * n} trajectories in {fmt_time(tm.median)} ({default_threads()} threads)", flush=True)
            continue
        check(label, out if isinstance(out, np.ndarray) else out["ode_m"].values)
        # paired: each round's time over the direct call's in the same round, then the median
        # (steadier than a ratio of medians on a VM whose speed drifts from round to round)
        ratios = np.array(samples) / direct_samples
        over = float(np.median(ratios)) - 1.0
        q1, q3 = (float(x) - 1.0 for x in np.percentile(ratios, [25, 75]))
        rows[label] = {"time": tm, "tasks": len(plan(spec)), "overhead": over, "overhead_q1": q1,
                       "overhead_q3": q3, "overhead_ratio_of_medians": tm.median / timings[first][0].median - 1.0}
        print(f"  {label}: {fmt_time(tm.median)}, overhead {100 * over:+.1f} % (quartiles {100 * q1:+.1f} .. "
              f"{100 * q3:+.1f} %)", flush=True)
    if into is not None:
        return into
    return {"cells": n * n, "chunk": spec.chunk, "tasks": len(plan(spec)), "runs": rows}


def sgd_workload(repeats: int, client2: Any, checker: Checker, into: dict[str, Any] | None = None) -> dict[str, Any]:
    base = {"model": {"activation": "tanh", "target": {"1": 1.0, "3": 0.2}, "lr_w": 1.0, "lr_a": 1.0},
            "init": {"a0": 0.5}, "sgd": {"d": 128, "n": 128, "batch": 1024, "dt": 0.05, "steps": 100, "record": 11}}
    spec = SweepSpec.create(base, {"seed": list(range(8))}, compute=["sgd"])
    rows: dict[str, Any] = {} if into is None else into["runs"]
    if into is None:
        tm, ref = timed(lambda: fs.sweep(spec, progress=False), repeats)
        rows["this process, workers=1: 1 task at a time, every core"] = {"time": tm}
        print(f"  in process: {fmt_time(tm.median)}", flush=True)
    else:
        ref = fs.sweep(spec, progress=False)
    ref_m = ref["sgd_m_mean"].values
    if client2 is not None:
        tm, ds = timed(lambda: fs.sweep(spec, client=client2, progress=False), repeats)
        checker.check("SGD ensemble, Dask: sgd_m_mean against in-process", float(np.max(np.abs(ds["sgd_m_mean"].values - ref_m))), 0.0)
        rows["Dask, 2 worker processes x 1 core"] = {"time": tm}
        print(f"  Dask 2 workers: {fmt_time(tm.median)}", flush=True)
        return into if into is not None else {"cells": spec.n_cells, "runs": rows}
    tm, ds = timed(lambda: fs.sweep(spec, progress=False, workers=2), repeats)
    checker.check("SGD ensemble, workers=2: sgd_m_mean against in-process",
                  float(np.max(np.abs(ds["sgd_m_mean"].values - ref_m))), 0.0)
    rows["this process, workers=2: 2 tasks at a time x 1 core"] = {"time": tm}
    print(f"  workers=2: {fmt_time(tm.median)}", flush=True)
    return {"cells": spec.n_cells, "runs": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one repeat of each")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "sweep.json")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    checker = Checker()
    info = base_machine_info()
    try:
        import distributed as _d
        import xarray as _x
        import zarr as _z

        versions = f"xarray {_x.__version__}, zarr {_z.__version__}, dask.distributed {_d.__version__}"
    except ImportError:
        versions = "dask.distributed not installed"
    info["versions"] = versions
    print_header("fastslow sweeps: scheduling and I/O against one direct call", info, args.quick, versions)
    repeats = 1 if args.quick else 9
    # the local rows first: a Dask client's event-loop thread and idle workers in the same process
    # slow this process's own I/O (measured: 1.7-1.9 s against 1.2-1.4 s for the stored sweep)
    n = 40 if args.quick else 100
    section(f"1. A {n} x {n} ODE phase diagram (to t = 1e7, 21 save points)")
    phase_rounds = 1 if args.quick else 15  # this VM's speed drifts by +-5 %: many paired rounds
    phase = phase_workload(n, phase_rounds, None, None, checker)
    section("2. An SGD seed ensemble (8 cells, n = d = 128, B = 1024, 100 steps)")
    sgd = sgd_workload(repeats, None, checker)
    client1 = client2 = None
    clusters = []
    startup = float("nan")
    try:
        import distributed

        t = time.perf_counter()
        c2 = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                      silence_logs=40)
        client2 = distributed.Client(c2)
        client2.run(lambda: __import__("fastslow") and None)  # workers import the package before timing
        startup = time.perf_counter() - t
        c1 = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                      silence_logs=40)
        client1 = distributed.Client(c1)
        client1.run(lambda: __import__("fastslow") and None)
        clusters = [(client1, c1), (client2, c2)]
    except ImportError:
        checker.note("distributed is not installed: the Dask rows are skipped (pip install 'fastslow[sweep]')")
    try:
        if client1 is not None:
            section("3. The same on local Dask clusters (client started before timing)")
            phase_workload(n, phase_rounds, client1, client2, checker, into=phase)
            sgd_workload(repeats, client2, checker, into=sgd)
    finally:
        for cl, c in clusters:
            cl.close()
            c.close()
    rows = []
    direct = phase["runs"]["direct solve_ode_batch"]["time"].median
    print("\n(overheads against the direct call timed in the same round-robin: the Dask rows against the "
          "direct call repeated beside the clusters)")
    for label, r in phase["runs"].items():
        over = r.get("overhead")
        rows.append([f"phase diagram: {label}", fmt_time(r["time"].median), fmt_time(r["time"].iqr),
                     "-" if over is None else f"{100 * over:+.1f} %",
                     "-" if over is None else f"{100 * r['overhead_q1']:+.1f} .. {100 * r['overhead_q3']:+.1f} %",
                     f"{phase['cells'] / r['time'].median:,.0f}"])
    section(f"Summary ({phase['cells']} cells in {phase['tasks']} tasks of {phase['chunk']}; direct call "
            f"{fmt_time(direct)}; Dask cluster start-up {startup:.2f} s, not counted)")
    print(render_table(["workload", "median", "spread", "overhead vs direct", "quartiles", "cells / s"], rows))
    print("overhead: the median over rounds of (sweep time / direct time in the same round) - 1")
    for label in ("sweep, this process, 1 worker, store", "sweep, this process, 2 workers, store"):
        over = phase["runs"].get(label, {}).get("overhead")
        if over is not None:
            verdict = "met" if over < 0.10 else "NOT met"
            print(f"target: {label} under 10 % over the direct call: {100 * over:+.1f} %: {verdict}")
            if over >= 0.10:
                checker.note(f"target not met: {label}: {100 * over:+.1f} % over the direct call (target < 10 %)")
    srows = [[f"SGD ensemble: {k}", fmt_time(v["time"].median), fmt_time(v["time"].iqr)] for k, v in sgd["runs"].items()]
    print()
    print(render_table(["workload", "median", "spread"], srows))
    best = min(sgd["runs"].items(), key=lambda kv: kv[1]["time"].median)
    print(f"fastest for SGD cells: {best[0]}; speed-up over one task at a time: "
          f"{fmt_ratio(sgd['runs']['this process, workers=1: 1 task at a time, every core']['time'].median / best[1]['time'].median)}")
    results = {"machine": info, "quick": args.quick, "phase": phase, "sgd": sgd, "dask_startup_seconds": startup}
    return finish(checker, time.perf_counter() - start, results, args.json)


if __name__ == "__main__":
    sys.exit(main())
