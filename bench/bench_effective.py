#!/usr/bin/env python
"""Benchmark of the effective dynamics of the finite network (issue 17).

Workloads, each timed side by side in one process (interleaved rounds):

1. One trajectory of :func:`fastslow.solve_effective` (the C++ map) against the pure-NumPy reference
   of the same map (``fastslow.reference.EffectiveReference.trajectory``) on the same problem: tanh
   student, target ``h1 + 0.2 h3``, ``lr_w = lr_a = 1``, ``a0 = 0.5``, ``d = n = 256``, ``dt = 0.1``,
   100 steps to ``t = 10``; at ``B = 64`` (``q_perp > 0``: the noise expectations are 3-D Gauss-Hermite
   sums, 24^3 activation calls a step) and at ``B = 4096`` (``q_perp < 0``: 24^2 a step). Agreement:
   ``m``, ``a``, the loss and ``q_perp`` to a relative ``1e-11``.
2. The 28 cells of the validity map (``B / d`` from 1/4 to 16 times ``dt`` from 0.2 to 0.025, to
   ``t = 10``) as one :func:`fastslow.solve_effective_batch` call on the usable cores, against 28
   single calls (agreement: identical values).

Usage::

    python bench/bench_effective.py [--quick] [--json FILE]

``--quick``: the reference on 20 steps and one round (checks that everything runs and agrees).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, Session, Timed, fmt_ratio, fmt_time, parse_args, render_table, section  # noqa: E402
from _common import time_interleaved, timing_row  # noqa: E402

import fastslow as fs  # noqa: E402
from fastslow import reference as ref  # noqa: E402
from fastslow._runtime import default_threads  # noqa: E402

DEFAULT_JSON = RESULTS_DIR / "effective.json"
D = N = 256
DT = 0.1


def _model() -> fs.Model:
    return fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)


def _reference(model: fs.Model) -> ref.EffectiveReference:
    return ref.EffectiveReference(model.s, model.c, s_tail=model.activation_series.tail,
                                  c_tail=model.target_series.tail, act=ref.named_function("tanh"), lr_w=model.lr_w,
                                  lr_a=model.lr_a, noise=model.noise)


def workload_single(quick: bool, checker: Any) -> dict[str, Any]:
    steps = 20 if quick else 100
    section(f"1. One trajectory of the effective map, {steps} steps, d = n = {D}: C++ against NumPy")
    model, rows, results = _model(), [], {}
    R = _reference(model)
    t = np.arange(steps + 1) * DT
    for B in (64, 4096):
        core = lambda B=B: fs.solve_effective(model, t, a0=0.5, dt=DT, d=D, batch=B, n=N, dense_output=False)
        numpy_ = lambda B=B: R.trajectory(t, a0=0.5, m0=0.0, dt=DT, ratio=D / B, n=float(N))
        ours, theirs = core(), numpy_()
        err = max(float(np.max(np.abs(x - y) / np.maximum(1.0, np.abs(y))))
                  for x, y in zip((ours.m, ours.a, ours.loss, ours.q_perp), theirs))
        checker.check(f"effective map B = {B}: C++ against the NumPy reference (relative)", err, 1e-11)
        timing = time_interleaved({"fastslow": Timed(core, calls=3 if quick else 10),
                                   "numpy": Timed(numpy_, calls=1 if quick else 3)}, 1 if quick else 3)[0]
        ratio = timing["numpy"].median / timing["fastslow"].median
        rows.append([f"B = {B} (q_perp {'> 0' if B < D else '< 0'})", fmt_time(timing["fastslow"].median),
                     fmt_time(timing["numpy"].median), fmt_ratio(ratio), f"{err:.1e}"])
        results[f"B={B}"] = {"steps": steps, "fastslow": timing["fastslow"], "numpy": timing["numpy"], "ratio": ratio,
                             "max_rel_err": err}
    print(render_table(["setting", "fastslow (C++)", "NumPy reference", "NumPy / C++", "max rel. diff."], rows))
    return results


def workload_batch(quick: bool, checker: Any) -> dict[str, Any]:
    section("2. The 28 cells of the validity map: one batch call against 28 single calls")
    model = _model()
    t = np.linspace(0, 10, 51)
    ratios = np.array([0.25, 0.5, 1, 2, 4, 8, 16])
    dts = np.array([0.2, 0.1, 0.05, 0.025])
    B = (ratios * D).astype(int)
    threads = default_threads()
    batch = lambda: fs.solve_effective_batch(model, t, a0=0.5, dt=dts[None, :], d=D, batch=B[:, None], n=N,
                                             threads=threads)
    singles = lambda: [fs.solve_effective(model, t, a0=0.5, dt=float(h), d=D, batch=int(b), n=N, dense_output=False)
                       for b in B for h in dts]
    got, each = batch(), singles()
    err = max(float(np.max(np.abs(got.m.reshape(-1, t.size)[k] - e.m))) for k, e in enumerate(each))
    checker.check("validity-map batch: equal to single calls", err, 0.0)
    timing = time_interleaved({"batch": Timed(batch, calls=1), "singles": Timed(singles, calls=1)},
                              1 if quick else 3)[0]
    ratio = timing["singles"].median / timing["batch"].median
    print(f"one call on {threads} threads {fmt_time(timing['batch'].median)}, 28 single calls "
          f"{fmt_time(timing['singles'].median)}: {fmt_ratio(ratio)}")
    return {"threads": threads, "batch": timing["batch"], "singles": timing["singles"], "ratio": ratio}


def summary(single: dict[str, Any], batch: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for label, r in single.items():
        workload = f"effective map, {r['steps']} steps, {label}"
        rows.append(timing_row(workload, "fastslow", r["fastslow"], r["fastslow"].median))
        rows.append(timing_row(workload, "NumPy reference", r["numpy"], r["fastslow"].median))
    workload = "effective map, 28 validity-map cells"
    rows.append(timing_row(workload, f"fastslow batch, {batch['threads']} threads", batch["batch"],
                           batch["batch"].median))
    rows.append(timing_row(workload, "fastslow, 28 single calls", batch["singles"], batch["batch"].median))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__, DEFAULT_JSON, "the reference on 20 steps and one round", argv)
    run = Session("fastslow effective-dynamics benchmark", args.quick, peak_repeats=1)
    single = workload_single(args.quick, run.checker)
    batch = workload_batch(args.quick, run.checker)
    return run.close(summary(single, batch), {"benchmark": "effective", "single": single, "batch": batch}, args.json)


if __name__ == "__main__":
    sys.exit(main())
