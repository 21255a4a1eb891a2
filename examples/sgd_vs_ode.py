"""How SGD approaches the limit ODE: vary 1/n, 1/d, dt and dt d/B one at a time.

Base configuration (theory page section 2 and issue 3): tanh student, target h1 + 0.2 h3, a0 = 0.5,
m0 = 0, lr_w = lr_a = 1, t in [0, 10]; sizes n = d = 256, B = 8 d, dt = 0.05. Each sweep changes
one quantity and keeps the other three fixed (to vary 1/d alone, B grows with d; to vary dt alone,
B grows as 1/dt). For every point the largest deviation over t of the SGD means from the ODE is
averaged over seeds, with its standard error, and a power law is fitted along each sweep.

Usage::

    python examples/sgd_vs_ode.py [--quick] [--seeds 3] [--out results/sgd_vs_ode]

Writes a table (stdout and ``table.md``), ``study.json`` and, when matplotlib is installed,
``deviation.png`` (log-log deviation against each quantity, fitted slopes in the legend).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import fastslow as fs

T_MAX = 10.0
BASE = dict(n=256, d=256, ratio=8.0, dt=0.05)  # ratio = B / d


def run_point(model: fs.Model, n: int, d: int, B: int, dt: float, seeds: int) -> dict:
    steps = int(round(T_MAX / dt))
    dms, das = [], []
    traj = None
    for seed in range(seeds):
        r = fs.train_sgd(model, d=d, n=n, batch=B, dt=dt, steps=steps, a0=0.5, seed=seed, record=41, spacing="linear", progress=False)
        if traj is None:
            traj = fs.solve_ode(model, r.t, a0=0.5, m0=0.0)
        c = fs.compare(r, traj)
        dms.append(c.max_dm)
        das.append(c.max_da)

    def se(x: list[float]) -> float:
        return float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")

    return {"n": n, "d": d, "B": B, "dt": dt, "dt_d_over_B": dt * d / B, "max_dm": float(np.mean(dms)),
            "max_dm_se": se(dms), "max_da": float(np.mean(das)), "max_da_se": se(das)}


def slope(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer points and one seed (a smoke run)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default="results/sgd_vs_ode")
    args = p.parse_args()
    seeds = 1 if args.quick else args.seeds
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
    n0, d0, r0, dt0 = BASE["n"], BASE["d"], BASE["ratio"], BASE["dt"]
    sweeps = {
        "1/n": [dict(n=n, d=d0, B=int(r0 * d0), dt=dt0) for n in ((64, 256) if args.quick else (64, 128, 256, 512, 1024))],
        "1/d": [dict(n=n0, d=d, B=int(r0 * d), dt=dt0) for d in ((64, 256) if args.quick else (64, 128, 256, 512))],
        "dt": [dict(n=n0, d=d0, B=int(r0 * d0 * dt0 / dt), dt=dt) for dt in ((0.1, 0.05) if args.quick else (0.1, 0.05, 0.025, 0.0125))],
        "dt d/B": [dict(n=n0, d=d0, B=int(k * d0), dt=dt0) for k in ((2, 8) if args.quick else (1, 2, 4, 8, 16, 32))],
    }
    results: dict[str, list[dict]] = {}
    t0 = time.perf_counter()
    for name, points in sweeps.items():
        results[name] = [run_point(model, seeds=seeds, **pt) for pt in points]
        print(f"sweep {name}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    xkey = {"1/n": lambda r: 1 / r["n"], "1/d": lambda r: 1 / r["d"], "dt": lambda r: r["dt"],
            "dt d/B": lambda r: r["dt_d_over_B"]}
    lines = ["| varied | value | n | d | B | dt | max dev m | max dev a |", "|---|---|---|---|---|---|---|---|"]
    fits = {}
    for name, rows in results.items():
        x = np.array([xkey[name](r) for r in rows])
        dm = np.array([r["max_dm"] for r in rows])
        da = np.array([r["max_da"] for r in rows])
        fits[name] = {"slope_m": slope(x, dm), "slope_a": slope(x, da)}
        for r, xv in zip(rows, x):
            lines.append(f"| {name} | {xv:.4g} | {r['n']} | {r['d']} | {r['B']} | {r['dt']:g} | "
                         f"{r['max_dm']:.4f} ± {r['max_dm_se']:.4f} | {r['max_da']:.4f} ± {r['max_da_se']:.4f} |")
    lines.append("")
    lines.append("| varied | log-log slope of max dev m | of max dev a |")
    lines.append("|---|---|---|")
    for name, f in fits.items():
        lines.append(f"| {name} | {f['slope_m']:.2f} | {f['slope_a']:.2f} |")
    table = "\n".join(lines)
    print(table)
    (out / "table.md").write_text(table + "\n")
    (out / "study.json").write_text(json.dumps({"base": BASE, "seeds": seeds, "t_max": T_MAX, "results": results,
                                                "fits": fits}, indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install matplotlib)")
        return 0
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    colours = ["#0072B2", "#D55E00", "#009E73", "#CC79A7"]  # Okabe-Ito, colour-blind safe
    for ax, key, label in zip(axes, ("max_dm", "max_da"), ("max$_t$ |m$_{SGD}$ - m$_{ODE}$|", "max$_t$ |a$_{SGD}$ - a$_{ODE}$|")):
        for (name, rows), col in zip(results.items(), colours):
            x = np.array([xkey[name](r) for r in rows])
            y = np.array([r[key] for r in rows])
            e = np.array([r[key + "_se"] for r in rows])
            fit = fits[name]["slope_m" if key == "max_dm" else "slope_a"]
            ax.errorbar(x / x.max(), y, yerr=np.nan_to_num(e), marker="o", color=col, capsize=3,
                        label=f"{name} (slope {fit:.2f})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("varied quantity / its largest value (dimensionless)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("SGD against the limit ODE (tanh, h1 + 0.2 h3, t ≤ 10): one quantity varied at a time")
    fig.savefig(out / "deviation.png", dpi=120)
    print(f"figure: {out / 'deviation.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
