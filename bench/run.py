"""Every benchmark in one process, with one summary table, a JSON file and a figure.

    python bench/run.py [--quick] [--json FILE]

Runs, in this order, in this process:

1. ``bench_sgd``: one SGD step at (B, d, n) = (1024, 256, 256) and (4096, 1024, 1024), float32:
   fastslow, the pure-NumPy reference step, PyTorch (optional), the two-GEMM floor, with the
   machine's sgemm peak measured before and after.
2. ``bench_ode``: one trajectory to t = 1e7 at rtol 1e-8 against SciPy's Radau, BDF and LSODA;
   steps against t_max; the 10,000-trajectory batch against a SciPy loop (estimated).
3. The batch against diffrax (optional; ``jax`` + ``diffrax``, ``vmap`` + ``jit``, Kvaerno5, same
   tolerances): run on a subset of the grid, compile time apart, scaled to 10,000 (marked ESTIMATE),
   its answers checked against ours on that subset.
4. Scaling of the SGD step with ``B d n`` (it should follow the GEMM flops).
5. ``bench_sweep``: a 100 x 100 ODE phase diagram as a sweep (in this process, with its store, on a
   local Dask cluster of 1 and 2 workers) against one direct ``solve_ode_batch`` call, and an SGD
   seed ensemble on each local executor (needs ``fastslow[sweep]``; skipped otherwise).

Every implementation is checked against fastslow (or a tight reference) before it is timed; the
exit status is 1 when any disagrees. Peers that are not installed are reported as such.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_ode  # noqa: E402
import bench_sgd  # noqa: E402
import bench_sweep  # noqa: E402
import _diffrax_peer  # noqa: E402
from _common import (  # noqa: E402
    Checker,
    Timing,
    base_machine_info,
    finish,
    fmt_ratio,
    fmt_time,
    render_table,
    section,
    source_revision,
)

import fastslow as fs  # noqa: E402


def diffrax_workload(quick: bool, ours_batch_seconds: float, n_total: int, checker: Checker) -> dict[str, Any]:
    section("3. Batch against diffrax (vmap + jit, Kvaerno5)")
    why = _diffrax_peer.available()
    if why:
        print(f"diffrax: {why}; skipped (pip install jax diffrax)")
        return {"available": False, "reason": why}
    n = 10 if quick else 100
    side = int(round(np.sqrt(n)))
    a0 = np.repeat(np.geomspace(0.1, 5.0, side), side)
    c3 = np.tile(np.linspace(-0.5, 0.5, side), side)
    t_eval = np.array([0.0, 1e3, 1e7])
    model = bench_ode.make_model()
    r = _diffrax_peer.batch(model.s, bench_ode.LR_W, bench_ode.LR_A, a0, c3, t_eval, bench_ode.RTOL, bench_ode.ATOL)
    models = [bench_ode.make_model(target={1: 1.0, 3: float(k)}) for k in c3]
    ours = fs.solve_ode_batch(models, a0, 0.0, t_eval, rtol=bench_ode.RTOL, atol=bench_ode.ATOL)
    err = float(np.max(np.abs(r["a"][:, -1] / ours.a[:, -1] - 1)))
    checker.check(f"diffrax: a(t_max) against fastslow on {len(a0)} trajectories", err, 1e-6)
    checker.check("diffrax: every trajectory succeeded", 0.0 if r["ok"].all() else np.inf, 0.0)
    per = r["run"] / len(a0)
    est = per * n_total
    print(render_table(["implementation", "trajectories", "compile", "run", "per trajectory", f"{n_total:,} (scaled)",
                        "vs ours"],
                       [["diffrax Kvaerno5", len(a0), fmt_time(r["compile"]), fmt_time(r["run"]), fmt_time(per),
                         f"{fmt_time(est)} (ESTIMATE)", fmt_ratio(est / ours_batch_seconds)],
                        ["fastslow solve_ode_batch", n_total, "-", fmt_time(ours_batch_seconds),
                         fmt_time(ours_batch_seconds / n_total), fmt_time(ours_batch_seconds), "1x"]]))
    print(f"diffrax steps per trajectory: mean {r['steps'].mean():.0f}; max |a/a_ours - 1| at t_max: {err:.1e}. "
          "The subset runs all its lanes for as long as the slowest one (vmap), as a full batch would.")
    return {"available": True, "n": len(a0), "compile": r["compile"], "run": r["run"], "per_trajectory": per,
            "scaled_seconds": est, "ratio_to_ours": est / ours_batch_seconds, "max_rel_err": err,
            "mean_steps": float(r["steps"].mean())}


def sgd_scaling(quick: bool, checker: Checker) -> dict[str, Any]:
    section("4. SGD step time against B d n (float32, 2 threads)")
    shapes = [(256, 64, 64), (512, 128, 128), (1024, 256, 256), (2048, 512, 512)]
    if not quick:
        shapes.append((4096, 1024, 1024))
    rows, out = [], []
    model = bench_sgd.make_model()
    for B, d, n in shapes:
        tr = fs.make_trainer(model, d=d, n=n, batch=B, dt=0.01, a0=1.0, seed=1)
        tr.run(2)
        k = max(1, int(0.3 / max(1e-6, _time_steps(tr, 1))))
        samples = [_time_steps(tr, k) for _ in range(5 if quick else 9)]
        t = Timing.from_samples(samples)
        flops = 4.0 * B * d * n
        out.append({"shape": [B, d, n], "flops": flops, "time": t, "gflops": flops / t.median / 1e9})
        rows.append([f"({B}, {d}, {n})", f"{flops / 1e9:.3g}", fmt_time(t.median), f"{flops / t.median / 1e9:.1f}"])
        op = tr.order_parameters()
        checker.check(f"SGD scaling {B, d, n}: finite order parameters", 0.0 if np.isfinite(op["m_mean"]) else np.inf, 0.0)
    f = np.log([o["flops"] for o in out])
    tt = np.log([o["time"].median for o in out])
    slope_all = float(np.polyfit(f, tt, 1)[0])
    slope_big = float(np.polyfit(f[-3:], tt[-3:], 1)[0])
    print(render_table(["(B, d, n)", "GFLOP (2 GEMMs)", "step", "GFLOP/s"], rows))
    print(f"log-log slope of time against flops: {slope_all:.2f} over all sizes, {slope_big:.2f} over the "
          f"largest three (1 = time follows the GEMM flops; small sizes pay fixed overheads)")
    return {"shapes": out, "slope_all": slope_all, "slope_largest3": slope_big}


def _time_steps(tr: Any, k: int) -> float:
    start = time.perf_counter()
    tr.run(k)
    return (time.perf_counter() - start) / k


def summary(sgd: dict[str, Any], ode: dict[str, Any], dfx: dict[str, Any], scal: dict[str, Any]) -> list[list[str]]:
    rows = []
    for shape, res in sgd["shapes"].items():
        ours = res["rows"]["fastslow"]["time"]["median"]
        for name in ("fastslow", "NumPy", "PyTorch", "two GEMMs, NumPy", "two GEMMs at sgemm peak"):
            r = res["rows"].get(name)
            t = r.get("time") if r else None
            if r is None or (t is None and "seconds" not in r):
                if name == "PyTorch":
                    rows.append([f"SGD step {shape}", "PyTorch", "not installed", "", ""])
                continue
            med = t["median"] if t else r["seconds"]
            spread = f"IQR {fmt_time(t['iqr'])}" if t else "computed"
            rows.append([f"SGD step {shape}", name, fmt_time(med), spread, fmt_ratio(med / ours)])
    single = ode["single"]["implementations"]
    ours = single["fastslow radau5"]["time"]["median"]
    for name, r in single.items():
        rows.append(["ODE, one trajectory to 1e7", name, fmt_time(r["time"]["median"]), f"IQR {fmt_time(r['time']['iqr'])}",
                     fmt_ratio(r["time"]["median"] / ours)])
    b = ode["batch"]
    best = min((r for r in b["runs"].values()), key=lambda r: r["time"]["median"])
    n = b["n"]
    rows.append([f"ODE batch of {n:,}", f"fastslow, {best['threads']} threads", fmt_time(best["time"]["median"]),
                 f"IQR {fmt_time(best['time']['iqr'])}", "1x"])
    rows.append([f"ODE batch of {n:,}", "SciPy LSODA loop", fmt_time(b["scipy_lsoda_loop_estimate"]["seconds"]),
                 "ESTIMATE", fmt_ratio(b["scipy_lsoda_loop_estimate"]["seconds"] / best["time"]["median"])])
    if dfx.get("available"):
        rows.append([f"ODE batch of {n:,}", "diffrax Kvaerno5 (after compile)", fmt_time(dfx["scaled_seconds"]),
                     f"ESTIMATE from {dfx['n']}", fmt_ratio(dfx["scaled_seconds"] / best["time"]["median"])])
    else:
        rows.append([f"ODE batch of {n:,}", "diffrax", "not installed", "", ""])
    return rows


def figure(results: dict[str, Any], path: Path) -> None:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return
    fig = Figure(figsize=(12, 4), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    sc = results["sgd_scaling"]["shapes"]
    fl = np.array([s["flops"] for s in sc])
    tm = np.array([s["time"].median if isinstance(s["time"], Timing) else s["time"]["median"] for s in sc])
    ax1.loglog(fl, tm, "o-", color="#0072B2", label="fastslow step")
    ax1.loglog(fl, fl / (results["sgd"]["sgemm_peak"]["used_gflops"] * 1e9), ":", color="k",
               label="two GEMMs at sgemm peak")
    ax1.set_xlabel("flops of the two GEMMs, 4 B d n")
    ax1.set_ylabel("time per step (s)")
    ax1.legend(fontsize=8)
    hz = results["ode"]["horizons"]["by_eps"]
    for i, (eps, rows) in enumerate(hz.items()):
        ax2.semilogx([r["t_max"] for r in rows["rows"]], [r["steps"] for r in rows["rows"]], "o-",
                     color=["#0072B2", "#D55E00", "#009E73"][i % 3], label=f"eps = {eps}")
    ax2.set_xlabel("t_max")
    ax2.set_ylabel("accepted steps")
    ax2.set_title("ODE steps grow like log t_max", fontsize=9)
    ax2.legend(fontsize=8)
    names, ratios = [], []
    for row in results["summary"]:
        if row[4] and row[4] != "1x" and "x" in row[4] and row[1] not in ("fastslow",):
            names.append(f"{row[0]}: {row[1]}")
            ratios.append(float(row[4].rstrip("x")))
    y = np.arange(len(names))
    ax3.barh(y, ratios, color="#E69F00")
    ax3.set_yticks(y, names, fontsize=6)
    ax3.set_xscale("log")
    ax3.axvline(1, color="k", lw=0.8)
    ax3.set_xlabel("time / fastslow (> 1: fastslow faster)")
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the quick modes of every workload (a few minutes)")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "all.json")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    out_dir = args.json.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    quick = ["--quick"] if args.quick else []
    info = base_machine_info()
    print(f"fastslow benchmarks{' (--quick)' if args.quick else ''}: {info['cpu']}, {info['usable_cores']} cores, "
          f"{info['date']}, source {source_revision(info)}")
    rc = 0
    section("1. SGD step (bench_sgd)")
    rc |= bench_sgd.main([*quick, "--json", str(out_dir / "all_sgd.json")])
    section("2. Limit ODE (bench_ode)")
    rc |= bench_ode.main([*quick, "--json", str(out_dir / "all_ode.json")])
    sgd = json.loads((out_dir / "all_sgd.json").read_text())
    ode = json.loads((out_dir / "all_ode.json").read_text())
    checker = Checker()
    best_batch = min(r["time"]["median"] for r in ode["batch"]["runs"].values())
    dfx = diffrax_workload(args.quick, best_batch, ode["batch"]["n"], checker)
    scal = sgd_scaling(args.quick, checker)
    rows = summary(sgd, ode, dfx, scal)
    section("Summary: every workload, each implementation's median time, its spread and the ratio to fastslow")
    print(render_table(["workload", "implementation", "median", "spread", "time / fastslow"], rows))
    peak = sgd["sgemm_peak"]
    print(f"sgemm peak (float32, OpenBLAS through numpy): {peak['used_gflops']:.1f} GFLOP/s; threads: fastslow "
          f"{info['fastslow_default_threads']} (OpenMP, single-threaded OpenBLAS inside), NumPy/PyTorch 2")
    results = {"machine": info, "quick": args.quick, "sgd": sgd, "ode": ode, "diffrax": dfx, "sgd_scaling": scal,
               "summary": rows, "component_exit_codes": rc}
    section("5. Sweeps (bench_sweep)")
    try:
        import xarray  # noqa: F401

        rc |= bench_sweep.main([*quick, "--json", str(out_dir / "all_sweep.json")])
        results["sweep"] = json.loads((out_dir / "all_sweep.json").read_text())
    except ImportError:
        print("  skipped: xarray is not installed (pip install 'fastslow[sweep]')")
    results["component_exit_codes"] = rc
    figure(results, out_dir / "all.png")
    print(f"figure saved to {out_dir / 'all.png'}")
    if rc:
        checker.check("bench_sgd / bench_ode / bench_sweep agreement checks", float("inf"), 0.0)
    return finish(checker, time.perf_counter() - start, results, args.json)


if __name__ == "__main__":
    sys.exit(main())
