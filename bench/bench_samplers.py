#!/usr/bin/env python
"""Benchmark of the two exact samplers of an SGD step (issue 18): the projected step against the
direct one as ``d`` grows, side by side in one process, and the long runs of small networks.

The step is that of ``bench_sgd`` (tanh student, ``g = h1 + 0.2 h3``, ``lr_w = lr_a = 1``,
``dt = 0.05``, ``a0 = 0.5``, ``m0 = 0``, no label noise), float32, 2 threads. Workloads:

1. **Ratio against d**: ``n = 128``, ``B = 8 d``, ``d`` from 256 to 16384 (to 2048 with ``--quick``):
   both samplers' ``run(k)`` timed in interleaved rounds, the ratio projected / direct, and the
   projected step's time against its flop count (:func:`fastslow.samplers.step_cost`) at the sgemm
   peak measured in the same run. The direct step's batch ``X`` is ``B x d``: at ``B = 8 d`` and
   ``d >= 8192`` it takes 2-9 GB, which a shared machine cannot spare, so there the direct step is
   timed at ``B = d`` and ``B = 2 d`` and scaled to ``B = 8 d`` linearly in ``B`` (its work, two GEMMs
   with ``B`` as a dimension and ``B d`` normals, is linear in ``B``; the two points check it). Such
   rows say "scaled".
2. **The crossover**: ``(8d, 4096, 256)`` and ``(8d, 1024, 1024)`` with both samplers timed (at
   ``d = 1024 <= n + 1`` the projected basis is the identity: the direct algorithm on other streams),
   and what ``sampler="auto"`` picks there.
3. **Long runs of small networks** (the finite-size issue's long-horizon study): ``n = d = 128``,
   ``B = 1024``, 4 seeds, each a single-threaded trainer, two at a time on the two cores (the GIL is
   released in ``run``): the throughput in flops of the direct step (``4 B d n``) per second as a
   fraction of the sgemm peak, and where the rest goes (``step_with_batch``: the step without the
   generator; and the step's two GEMMs alone at its shapes, NumPy's sgemm on one thread each, two at
   a time: what the BLAS itself reaches there).
4. **The projected step's generator**: at the target shape ``(8d, 16384, 128)`` (``(8d, 2048, 128)``
   with ``--quick``), the step against the same step on given draws (``step_with_draws``), and both
   against the step's flop count at the peak; and its six products as plain sgemm calls at their
   shapes (NumPy, 2 threads): what the BLAS reaches at these thin shapes.

Before timing, one projected step on given draws is checked against
:func:`fastslow.reference.sgd_step_projected` (``3e-4`` relative, float32); a disagreement makes the
script exit with status 1. The machine is shared with other jobs while this runs: timings are
reported as ratios measured side by side, with the sgemm peak measured before and after.

Usage::

    python bench/bench_samplers.py [--quick] [--json FILE]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, Session, Timed, calibrated_steps, fmt_ratio, fmt_time, once, parse_args  # noqa: E402
from _common import _threadpoolctl, quiesce, render_table, section, summary_row, time_interleaved  # noqa: E402

import fastslow as fs  # noqa: E402
from fastslow import reference  # noqa: E402
from fastslow._core import _testing  # noqa: E402
from fastslow.samplers import choose_sampler, step_cost  # noqa: E402

DEFAULT_JSON = RESULTS_DIR / "samplers.json"
MODEL = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
DT, A0, M0, SEED, THREADS = 0.05, 0.5, 0.0, 0, 2
#: The direct step's X above this many bytes is timed at smaller batches and scaled (see above).
MAX_DIRECT_BYTES = 1.2e9


def trainer(d: int, n: int, B: int, sampler: str, threads: int = THREADS, seed: int = SEED) -> fs.SGDTrainer:
    return fs.SGDTrainer(MODEL, d=d, n=n, batch=B, dt=DT, a0=A0, m0=M0, seed=seed, dtype="float32",
                         threads=threads, sampler=sampler)


def check(checker: Any) -> None:
    """One projected step on given draws against the float64 reference."""
    d, n, B = 2048, 64, 4096
    tr = trainer(d, n, B, "projected")
    W0, a0, th = (x.astype(float) for x in (tr.W, tr.a, tr.theta))
    g = np.random.default_rng(1)
    Z, Xi = g.standard_normal((B, n + 1), dtype=np.float32), g.standard_normal((n, d), dtype=np.float32)
    _testing.step_with_draws(tr._raw, Z, Xi, np.zeros(B, np.float32))
    act = reference.named_function("tanh")
    tgt = reference.hermite_function([0.0, 1.0, 0.0, 0.2])
    W1, a1, _, _, _ = reference.sgd_step_projected(W0, a0, th, Z, Xi, np.zeros(B), act, tgt, 1.0, 1.0, DT, 0.0)
    err = max(np.abs(tr.W - W1).max() / np.abs(W1 - W0).max(), np.abs(tr.a - a1).max() / np.abs(a1 - a0).max())
    checker.check(f"projected step {d, n, B} vs reference (update, relative)", float(err), 3e-4)


def time_pair(d: int, n: int, B: int, rounds: int, budget: float) -> dict[str, Any]:
    """Both samplers at (B, d, n), interleaved; the direct one at smaller batches and scaled when its
    X would not fit (see the module docstring)."""
    direct_B = [B] if 4.0 * B * d <= MAX_DIRECT_BYTES else [d, 2 * d]
    fns, trainers = {}, {}
    for label, sampler, batch in [("projected", "projected", B)] + [(f"direct B={b}", "direct", b) for b in direct_B]:
        tr = trainers[label] = trainer(d, n, batch, sampler)
        k = calibrated_steps(tr.run, budget)
        fns[label] = Timed(lambda tr=tr, k=k: tr.run(k), steps=k)
    timings, _ = time_interleaved(fns, rounds, settle=True)
    del trainers
    proj = timings["projected"].median
    if len(direct_B) == 1:
        direct, how = timings[f"direct B={B}"].median, "timed"
        linearity = None
    else:
        t1, t2 = timings[f"direct B={d}"].median, timings[f"direct B={2 * d}"].median
        direct, how = t1 + (t2 - t1) * (B - d) / d, f"scaled from B = {d}, {2 * d}"
        linearity = t2 / t1
    cost = step_cost("projected", B, d, n)
    return {"shape": (B, d, n), "projected": timings["projected"], "direct_seconds": direct, "direct_how": how,
            "direct_timings": {k: v for k, v in timings.items() if k != "projected"},
            "direct_B_doubling_ratio": linearity, "ratio": proj / direct, "projected_flops": cost.flops,
            "projected_normals": cost.normals, "auto": choose_sampler("auto", B, d, n),
            "model_ratio": cost.equivalent / step_cost("direct", B, d, n).equivalent}


def long_runs(steps: int, seeds: int = 4) -> dict[str, Any]:
    """n = d = 128, B = 1024: `seeds` single-threaded trainers, two at a time; and the breakdown."""
    d = n = 128
    B = 1024
    trs = [trainer(d, n, B, "direct", threads=1, seed=s) for s in range(seeds)]
    for tr in trs:
        tr.run(2)
    quiesce()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda tr: tr.run(steps), trs))
    wall = time.perf_counter() - t0
    flops = 4.0 * B * d * n * steps * seeds
    # one trainer, one thread: run (draws inside) against step_with_batch (a given batch, no draws)
    one = trs[0]
    X = np.random.default_rng(0).standard_normal((B, d), dtype=np.float32)
    xi = np.zeros(B, np.float32)
    reps = max(20, steps // 10)
    t_run = min(once(lambda: one.run(reps)) for _ in range(3)) / reps
    t_given = min(once(lambda: [_testing.step_with_batch(one._raw, X, xi) for _ in range(reps)]) for _ in range(3)) / reps
    gemm = gemm_ceiling(B, d, n)
    return {"shape": (B, d, n), "seeds": seeds, "steps": steps, "wall": wall, "gflops": flops / wall / 1e9,
            "step_run_1thread": t_run, "step_given_batch_1thread": t_given,
            "generator_share": 1.0 - t_given / t_run, "gemm_ceiling_gflops": gemm}


def gemm_ceiling(B: int, d: int, n: int, reps: int = 400) -> float:
    """GFLOP/s of the direct step's two GEMMs alone (``X [W; theta]^T`` and ``M^T X`` at the step's
    shapes, float32, NumPy's sgemm on one thread each), two threads at a time on the two cores as the
    seeds run: what the BLAS reaches at these shapes with nothing else in the step."""
    tpc = _threadpoolctl()
    g = np.random.default_rng(0)
    X, V = g.standard_normal((B, d), dtype=np.float32), g.standard_normal((d, n + 1), dtype=np.float32)
    M = g.standard_normal((B, n), dtype=np.float32)
    P, G = np.empty((B, n + 1), np.float32), np.empty((n, d), np.float32)

    def work() -> None:
        for _ in range(reps):
            np.matmul(X, V, out=P)
            np.matmul(M.T, X, out=G)

    limit = tpc.threadpool_limits(1, user_api="blas") if tpc is not None else None
    try:
        work()
        quiesce()
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda _: work(), range(2)))
            best = min(best, time.perf_counter() - t0)
    finally:
        if limit is not None:
            limit.unregister()
    return 2 * reps * (2.0 * B * d * (n + 1) + 2.0 * B * d * n) / best / 1e9


def projected_gemm_ceiling(d: int, n: int, B: int, reps: int = 3) -> dict[str, Any]:
    """The projected step's BLAS products as plain float32 GEMMs at their shapes (NumPy's sgemm on
    the cores, nothing else running): ``P = Z R``, ``M^T [M | Z]``, ``L Xi``, ``Y Q``, ``C Q^T`` and
    the basis Gram ``V^T V``, each counted as a general product (2 m n k flops). What the BLAS itself
    reaches at these thin shapes, against the square peak."""
    k = n + 1
    g = np.random.default_rng(3)
    Z = g.standard_normal((B, k), dtype=np.float32)
    R = np.triu(g.standard_normal((k, k), dtype=np.float32))
    MZ = g.standard_normal((B, n + k), dtype=np.float32)
    L = g.standard_normal((n, n), dtype=np.float32)
    Xi = g.standard_normal((n, d), dtype=np.float32)
    Qt = g.standard_normal((k, d), dtype=np.float32)
    calls = {"P = Z R": (2.0 * B * k * k, lambda: Z @ R), "M^T [M | Z]": (2.0 * B * n * (n + k), lambda: MZ[:, :n].T @ MZ),
             "L Xi": (2.0 * n * n * d, lambda: L @ Xi), "Y Q": (2.0 * n * k * d, lambda: Xi @ Qt.T),
             "C Q^T": (2.0 * n * k * d, lambda: Xi[:, :k] @ Qt), "V^T V": (2.0 * d * k * k, lambda: Qt @ Qt.T)}
    out: dict[str, Any] = {}
    for name, (flops, fn) in calls.items():
        fn()
        best = np.inf
        for _ in range(reps):
            quiesce()
            best = min(best, once(fn))
        out[name] = {"flops": flops, "seconds": best, "gflops": flops / best / 1e9}
    flops = sum(v["flops"] for v in out.values())
    seconds = sum(v["seconds"] for v in out.values())
    return {"calls": out, "gflops": flops / seconds / 1e9}


def projected_breakdown(d: int, n: int, B: int, reps: int = 3) -> dict[str, float]:
    """The projected step at (B, d, n) with its draws made (``run``) and on given draws
    (``step_with_draws``: no generator), 2 threads: the generator's share of the step."""
    tr = trainer(d, n, B, "projected")
    g = np.random.default_rng(2)
    Z, Xi = g.standard_normal((B, n + 1), dtype=np.float32), g.standard_normal((n, d), dtype=np.float32)
    xi = np.zeros(B, np.float32)
    tr.run(1)
    _testing.step_with_draws(tr._raw, Z, Xi, xi)
    t_run, t_given = np.inf, np.inf
    for _ in range(reps):
        quiesce()
        t_run = min(t_run, once(lambda: tr.run(1)))
        quiesce()
        t_given = min(t_given, once(lambda: _testing.step_with_draws(tr._raw, Z, Xi, xi)))
    return {"step": t_run, "step_given_draws": t_given, "generator_share": 1.0 - t_given / t_run}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__, DEFAULT_JSON, "fewer sizes and rounds (checks that everything runs)", argv)
    run = Session("fastslow samplers benchmark (direct vs projected)", args.quick)
    check(run.checker)
    rounds, budget = (3, 0.05) if args.quick else (5, 0.3)
    ds = (256, 512, 1024, 2048) if args.quick else (256, 512, 1024, 2048, 4096, 8192, 16384)
    section("1. projected / direct against d (n = 128, B = 8 d, float32, 2 threads)")
    scan = []
    for d in ds:
        r = time_pair(d, 128, 8 * d, rounds, budget)
        scan.append(r)
        print(f"  d = {d:5d}: projected {fmt_time(r['projected'].median)}, direct {fmt_time(r['direct_seconds'])} "
              f"({r['direct_how']}), ratio {r['ratio']:.4f} (cost model {r['model_ratio']:.4f}), auto: {r['auto']}",
              flush=True)
    section("2. the crossover shapes")
    cross = [time_pair(d, n, 8 * d, rounds, budget) for d, n in (((4096, 256), (1024, 1024)) if not args.quick
                                                               else ((1024, 256), (256, 256)))]
    section("3. long runs of small networks (n = d = 128, B = 1024, 4 seeds, two at a time)")
    lr = long_runs(200 if args.quick else 3000)
    bd_shape = (2048, 128, 8 * 2048) if args.quick else (16384, 128, 8 * 16384)
    section(f"4. the projected step at (B, d, n) = ({bd_shape[2]}, {bd_shape[0]}, {bd_shape[1]}): its generator's share")
    bd = projected_breakdown(*bd_shape)
    bd_gemm = projected_gemm_ceiling(*bd_shape)
    peak = run.peak()["used_gflops"]
    rows = []
    for r in scan + cross:
        B, d, n = r["shape"]
        rows.append([f"({B}, {d}, {n})", fmt_time(r["projected"].median), fmt_time(r["direct_seconds"]),
                     r["direct_how"], f"{r['ratio']:.4f}", fmt_ratio(1 / r["ratio"]), f"{r['model_ratio']:.4f}",
                     f"{r['projected_flops'] / (peak * 1e9) / r['projected'].median:.2f}", r["auto"]])
    print()
    print(render_table(["(B, d, n)", "projected", "direct", "direct timing", "proj / direct", "speed-up",
                        "cost model", "proj flops at peak / time", "auto"], rows))
    lr["fraction_of_peak"] = lr["gflops"] / peak
    print(f"\nlong runs: {lr['seeds']} seeds x {lr['steps']} steps of (1024, 128, 128) in {fmt_time(lr['wall'])}: "
          f"{lr['gflops']:.1f} GFLOP/s of direct-step flops = {100 * lr['fraction_of_peak']:.0f} % of the "
          f"{peak:.1f} GFLOP/s sgemm peak; one thread: run {fmt_time(lr['step_run_1thread'])} a step, on a given "
          f"batch (no generator) {fmt_time(lr['step_given_batch_1thread'])} (the generator "
          f"{100 * lr['generator_share']:.0f} % of the step, "
          f"{(lr['step_run_1thread'] - lr['step_given_batch_1thread']) * 1e9 / (1024 * 128):.2f} ns a normal); the two GEMMs alone at these shapes reach "
          f"{lr['gemm_ceiling_gflops']:.1f} GFLOP/s = {100 * lr['gemm_ceiling_gflops'] / peak:.0f} % of the peak")
    cost = step_cost("projected", bd_shape[2], bd_shape[0], bd_shape[1])
    bd["flop_time_at_peak"] = cost.flops / (peak * 1e9)
    bd["normals"] = cost.normals
    print(f"projected step ({bd_shape[2]}, {bd_shape[0]}, {bd_shape[1]}): {fmt_time(bd['step'])}, on given draws "
          f"{fmt_time(bd['step_given_draws'])} (the generator {100 * bd['generator_share']:.0f} %: "
          f"{(bd['step'] - bd['step_given_draws']) * 2e9 / cost.normals:.2f} ns a normal on each of 2 threads); "
          f"its {cost.flops / 1e9:.1f} GFLOP at the peak take {fmt_time(bd['flop_time_at_peak'])}: the step is "
          f"{bd['step'] / bd['flop_time_at_peak']:.2f}x that, {bd['step_given_draws'] / bd['flop_time_at_peak']:.2f}x "
          "without the generator")
    bd["gemm_ceiling"] = bd_gemm
    calls = ", ".join(f"{k} {100 * v['gflops'] / peak:.0f} %" for k, v in bd_gemm["calls"].items())
    gemm_time = sum(v["seconds"] for v in bd_gemm["calls"].values())
    bd["step_over_gemm_calls"] = bd["step"] / gemm_time
    print(f"  its products as plain sgemm calls at their shapes reach {bd_gemm['gflops']:.1f} GFLOP/s = "
          f"{100 * bd_gemm['gflops'] / peak:.0f} % of the peak ({calls}) and take {fmt_time(gemm_time)}: the "
          f"whole step is {bd['step_over_gemm_calls']:.2f}x that")
    summary = []
    for r in scan + cross:
        B, d, n = r["shape"]
        w = f"step ({B}, {d}, {n})"
        summary.append(summary_row(w, "projected", r["projected"].median, "median", r["ratio"]))
        summary.append(summary_row(w, "direct", r["direct_seconds"], r["direct_how"], 1.0))
    targets = {"16384": next((r for r in scan if r["shape"][1] == 16384), None)}
    t = targets["16384"]
    out = {"benchmark": "samplers", "config": {"model": MODEL.to_dict(), "dt": DT, "threads": THREADS},
           "scan": scan, "crossover": cross, "long_runs": lr, "projected_breakdown": bd,
           "targets": None if t is None else {"speedup_at_16384": 1 / t["ratio"],
                                              "projected_time_over_flops_at_peak":
                                                  t["projected"].median * peak * 1e9 / t["projected_flops"]}}
    return run.close(summary, out, args.json)


if __name__ == "__main__":
    sys.exit(main())
