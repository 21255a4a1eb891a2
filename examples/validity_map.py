"""Where does the effective dynamics hold? SGD's seed mean against the effective dynamics and the
plain limit ODE over a grid of B/d and dt, with the seed-to-seed standard error (issue 17).

Tanh student, target h1 + 0.2 h3, a0 = 0.5, m0 = 0, lr_w = lr_a = 1, t in [0, 10] (41 linear
records), d = n = 256, B/d from 1/4 to 16, dt from 0.2 to 0.025. Per cell: the largest deviation
over t of SGD's seed mean from the ODE and from the effective dynamics (``fastslow.solve_effective``),
the standard error of that mean, and ``z`` = the largest over t of |SGD - effective| / SE(t). The
criteria of the issue are computed and printed: the effective dynamics closer to SGD than the ODE
(in m and in a) in every cell with B <= 2d or dt >= 0.1, and within three standard errors (at every
record, in m and in a) in at least 80 % of all cells. A second figure: q_perp(t), SGD against the
effective dynamics, at B/d = 1/4, 1, 4 (dt = 0.1).

Usage::

    python examples/validity_map.py [--seeds 8] [--cache DIR] [--out results/validity_map] [--quick]

The SGD runs (28 cells x seeds, float64) are cached in ``--cache`` (default ``OUT/sgd``): about
4 minutes per seed for the whole grid on 2 cores, then seconds. ``--quick``: d = n = 64, a 3 x 2
grid, 3 seeds (about 20 s). Writes ``table.md``, ``cells.json``, ``validity_map.png`` and
``q_perp.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import fastslow as fs
from fastslow.studies import validity_cell, validity_criteria
from fastslow.studies.long_horizon import seed_mean, seed_stderr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sgd_cache import sgd_runs  # noqa: E402

TARGET = {1: 1.0, 3: 0.2}
CASE = dict(lr_w=1.0, lr_a=1.0, a0=0.5, m0=0.0)
T_MAX = 10.0
Q_RATIOS = (0.25, 1.0, 4.0)
Q_DT = 0.1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=8, help="seeds 0 .. N-1 (default 8)")
    p.add_argument("--cache", type=Path, help="folder of cached SGD runs (default: OUT/sgd)")
    p.add_argument("--out", type=Path, default=Path("results/validity_map"))
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    ratios = [0.25, 1, 4] if args.quick else [0.25, 0.5, 1, 2, 4, 8, 16]
    dts = [0.2, 0.1] if args.quick else [0.2, 0.1, 0.05, 0.025]
    d = 64 if args.quick else 256
    seeds = list(range(3 if args.quick else args.seeds))
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.cache or args.out / "sgd"
    model = fs.Model("tanh", TARGET, lr_w=CASE["lr_w"], lr_a=CASE["lr_a"])
    cells, qdata = [], {}
    t_sgd = t_models = 0.0
    for ratio in ratios:
        for dt in dts:
            B = max(1, int(round(ratio * d)))
            steps = int(round(T_MAX / dt))
            start = time.perf_counter()
            sgd = sgd_runs(seeds, target=TARGET, **CASE, d=d, n=d, batch=B, dt=dt, steps=steps, record=41, cache=cache)
            t_sgd += time.perf_counter() - start
            start = time.perf_counter()
            ode = fs.solve_ode(model, sgd.t, a0=CASE["a0"], m0=CASE["m0"], rtol=1e-10, atol=1e-12, dense_output=False)
            eff = fs.solve_effective(model, sgd.t, a0=CASE["a0"], m0=CASE["m0"], dt=dt, d=d, batch=B, n=d)
            t_models += time.perf_counter() - start
            c = validity_cell(ratio=ratio, dt=dt, t=sgd.t, m=sgd.m, a=sgd.a, ode=ode, effective=eff)
            cells.append(c)
            if ratio in Q_RATIOS and abs(dt - Q_DT) < 1e-12:
                qdata[ratio] = {"t": sgd.t.tolist(), "sgd": seed_mean(sgd.q_perp).tolist(),
                                "se": seed_stderr(sgd.q_perp).tolist(), "effective": np.asarray(eff.q_perp).tolist()}
            print(f"B/d {ratio:5g} dt {dt:6g}: ODE {c.ode_dm:.4f} ({c.ode_da:.4f}), effective {c.eff_dm:.4f} "
                  f"({c.eff_da:.4f}), SE {c.se_m:.4f} ({c.se_a:.4f}), z {c.z_m:.1f} ({c.z_a:.1f})", flush=True)
    crit = validity_criteria(cells)
    table = tables(cells, ratios, dts, crit, qdata, len(seeds), d)
    print(table)
    (args.out / "table.md").write_text(table + "\n")
    (args.out / "cells.json").write_text(json.dumps(
        {"d": d, "n": d, "seeds": seeds, "t_max": T_MAX, "case": CASE, "target": {str(k): v for k, v in TARGET.items()},
         "effective": {k: v for k, v in getattr(eff, "params", {}).items() if isinstance(v, (int, float, str))},
         "cells": [c.to_dict() for c in cells], "criteria": crit, "q_perp": qdata,
         "seconds": {"sgd (or reading the cache)": t_sgd, "ode and effective": t_models}}, indent=1) + "\n")
    figures(cells, ratios, dts, qdata, args.out, len(seeds), d)
    print(f"SGD {t_sgd:.1f} s, ODE and effective dynamics {t_models:.1f} s; written to {args.out}")
    return 0


def tables(cells, ratios, dts, crit, qdata, nseeds, d) -> str:
    by = {(c.ratio, c.dt): c for c in cells}
    out = [f"d = n = {d}, {nseeds} seeds per cell.", ""]
    for f, name in (("m", "m"), ("a", "a")):
        out += [f"#### max over t of |{name}_SGD - {name}_model| (seed mean): ODE / **effective** ± SE of SGD's mean "
                "at the effective's worst t (z = max over t of |SGD - effective| / SE)", "",
                "| B/d \\ dt | " + " | ".join(f"{dt:g}" for dt in dts) + " |", "|---" * (len(dts) + 1) + "|"]
        for r in ratios:
            row = []
            for dt in dts:
                c = by[(float(r), float(dt))]
                ode, eff, se, z = ((c.ode_dm, c.eff_dm, c.se_m, c.z_m) if f == "m" else (c.ode_da, c.eff_da, c.se_a, c.z_a))
                row.append(f"{ode:.4f} / **{eff:.4f}** ± {se:.4f} (z {z:.1f})")
            out.append(f"| {r:g} | " + " | ".join(row) + " |")
        out.append("")
    out += ["#### The criteria", "",
            "| criterion | cells | verdict |", "|---|---|---|",
            f"| effective closer to SGD than the ODE in m and in a, cells with B <= 2d or dt >= 0.1 | "
            f"{crit['closer_required']} / {crit['required']} (all cells: {crit['closer_all']} / {crit['cells']}) | "
            f"{'met' if crit['closer_ok'] else 'NOT met: ' + str(crit['not_closer'])} |",
            f"| within 3 SE of SGD's seed mean at every record, in m and in a | {crit['within_3se']} / {crit['cells']} "
            f"({100 * crit['within_fraction']:.0f} %; m alone {crit['within_3se_m']}, a alone {crit['within_3se_a']}) | "
            f"{'met' if crit['within_ok'] else 'NOT met'} (>= 80 % required) |", ""]
    if crit["not_within"]:
        out += [f"Cells not within 3 SE (B/d, dt): {', '.join(f'({r:g}, {dt:g})' for r, dt in crit['not_within'])}.", ""]
    for r, q in qdata.items():
        t, s, se, e = (np.asarray(q[k]) for k in ("t", "sgd", "se", "effective"))
        idx = [int(np.argmin(np.abs(t - x))) for x in range(0, 11, 2)]
        out += [f"#### q_perp(t) at B/d = {r:g} (B = {int(round(r * d))}), dt = {Q_DT:g}: max over t of |SGD - effective| = "
                f"{np.max(np.abs(s - e)):.4f}; peak SGD {s.max():.4f} at t = {t[np.argmax(s)]:g}, effective {e.max():.4f} "
                f"at t = {t[np.argmax(e)]:g}", "", "| t | " + " | ".join(f"{t[i]:g}" for i in idx) + " |",
                "|---" * (len(idx) + 1) + "|",
                "| SGD | " + " | ".join(f"{s[i]:.4f} ± {se[i]:.4f}" for i in idx) + " |",
                "| effective | " + " | ".join(f"{e[i]:.4f}" for i in idx) + " |", ""]
    return "\n".join(out)


def figures(cells, ratios, dts, qdata, out: Path, nseeds: int, d: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    by = {(c.ratio, c.dt): c for c in cells}
    fig, axes = plt.subplots(2, 2, figsize=(11, 9), constrained_layout=True)
    for row, f in enumerate(("m", "a")):
        ode = np.array([[getattr(by[(float(r), float(dt))], f"ode_d{f}") for dt in dts] for r in ratios])
        eff = np.array([[getattr(by[(float(r), float(dt))], f"eff_d{f}") for dt in dts] for r in ratios])
        z = np.array([[getattr(by[(float(r), float(dt))], f"z_{f}") for dt in dts] for r in ratios])
        norm = LogNorm(vmin=min(ode.min(), eff.min()), vmax=max(ode.max(), eff.max()))
        for col, (vals, title) in enumerate(((ode, "limit ODE"), (eff, "effective dynamics"))):
            ax = axes[row, col]
            im = ax.pcolormesh(np.arange(len(dts) + 1), np.arange(len(ratios) + 1), vals, norm=norm, cmap="viridis")
            for i in range(len(ratios)):
                for j in range(len(dts)):
                    bright = np.log(vals[i, j]) > 0.5 * (np.log(norm.vmin) + np.log(norm.vmax))
                    txt = f"{vals[i, j]:.4f}" + (f"\nz {z[i, j]:.1f}" if col == 1 else "")
                    ax.text(j + 0.5, i + 0.5, txt, ha="center", va="center", fontsize=7,
                            color="black" if bright else "white")
                    c = by[(float(ratios[i]), float(dts[j]))]
                    if col == 1 and z[i, j] > 3:
                        ax.add_patch(Rectangle((j + 0.04, i + 0.04), 0.92, 0.92, fill=False, ec="#D55E00", lw=2))
                    if col == 1 and c.required and not c.closer:
                        ax.add_patch(Rectangle((j + 0.1, i + 0.1), 0.8, 0.8, fill=False, ec="k", lw=2, ls="--"))
            ax.set_xticks(np.arange(len(dts)) + 0.5, [f"{dt:g}" for dt in dts])
            ax.set_yticks(np.arange(len(ratios)) + 0.5, [f"{r:g}" for r in ratios])
            ax.set_xlabel("dt (ODE time per step)")
            ax.set_ylabel("B / d")
            ax.set_title(f"max$_t$ |{f}$_{{SGD}}$ - {f}$_{{model}}$|, model: {title}", fontsize=10)
        fig.colorbar(im, ax=axes[row, :], label=f"largest deviation of SGD's seed mean in {f}")
    fig.suptitle(f"d = n = {d}, {nseeds} seeds per cell, t <= {T_MAX:g}. Right: z = max$_t$ |SGD - effective| / SE; "
                 "orange frame: z > 3", fontsize=10)
    fig.savefig(out / "validity_map.png", dpi=110)
    plt.close(fig)
    if not qdata:
        return
    fig, axes = plt.subplots(1, len(qdata), figsize=(4.2 * len(qdata), 3.8), constrained_layout=True, squeeze=False)
    for ax, (r, q) in zip(axes[0], qdata.items()):
        t, s, se, e = (np.asarray(q[k]) for k in ("t", "sgd", "se", "effective"))
        ax.errorbar(t, s, yerr=np.nan_to_num(se), fmt="o", ms=3, color="#009E73", capsize=2,
                    label=f"SGD, mean over {nseeds} seeds +- SE")
        ax.plot(t, e, "-", color="#D55E00", lw=1.5, label="effective dynamics (predicted)")
        ax.axhline(-1 / (d - 1), color="0.5", lw=0.8, ls=":", label="-1/(n-1): no common direction")
        ax.axhline(0, color="0.8", lw=0.6)
        ax.set_xlabel("t (ODE time)")
        ax.set_ylabel("q_perp = mean over i != j of u_i . u_j")
        ax.set_title(f"B/d = {r:g} (B = {int(round(r * d))}), dt = {Q_DT:g}, dt d/B = {Q_DT / r:g}", fontsize=10)
        ax.legend(fontsize=7)
    fig.savefig(out / "q_perp.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
