"""Where does the limit ODE hold? The largest SGD-versus-ODE deviation over a grid of B/d and dt.

Tanh student, target h1 + 0.2 h3, a0 = 0.5, m0 = 0, lr_w = lr_a = 1, t in [0, 10], d = n, at two
widths. For each (B/d, dt) the deviation is the largest over t of |m_SGD - m_ODE| (and the same for
a), averaged over seeds. theory page section 2 records that a naive finite-batch correction to the
ODE made the agreement worse; this map measures the validity region instead of correcting.

Usage::

    python examples/validity_map.py [--quick] [--seeds 2] [--out results/validity_map]

Writes ``table.md`` (one table per width), ``map.json`` and, with matplotlib, ``map.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import fastslow as fs

T_MAX = 10.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--out", default="results/validity_map")
    p.add_argument("--from-json", metavar="FILE", help="redraw the table and figure from a saved map.json")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ratios = [0.25, 1, 4, 16] if args.quick else [0.25, 0.5, 1, 2, 4, 8, 16]
    dts = [0.1, 0.05] if args.quick else [0.2, 0.1, 0.05, 0.025]
    widths = [32, 64] if args.quick else [128, 256]
    seeds = 1 if args.quick else args.seeds
    model = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
    grid = {}
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        ratios, dts, seeds = saved["ratios"], saved["dts"], saved["seeds"]
        grid = {int(k): v for k, v in saved["grid"].items()}
        widths = []
    t0 = time.perf_counter()
    for width in widths:
        dm = np.zeros((len(ratios), len(dts)))
        da = np.zeros_like(dm)
        for i, ratio in enumerate(ratios):
            for j, dt in enumerate(dts):
                B = max(1, int(round(ratio * width)))
                steps = int(round(T_MAX / dt))
                devs_m, devs_a = [], []
                for seed in range(seeds):
                    r = fs.train_sgd(model, d=width, n=width, batch=B, dt=dt, steps=steps, a0=0.5, seed=seed, record=min(steps + 1, 41), spacing="linear", progress=False)
                    c = fs.compare(r, fs.solve_ode(model, r.t, a0=0.5, m0=0.0))
                    devs_m.append(c.max_dm)
                    devs_a.append(c.max_da)
                dm[i, j], da[i, j] = np.mean(devs_m), np.mean(devs_a)
        grid[width] = {"max_dm": dm.tolist(), "max_da": da.tolist()}
        print(f"width {width}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    lines = []
    for width, g in grid.items():
        lines += [f"### d = n = {width}: max over t of |m_SGD - m_ODE| (|a_SGD - a_ODE|)", "",
                  "| B/d \\ dt | " + " | ".join(f"{dt:g}" for dt in dts) + " |", "|---" * (len(dts) + 1) + "|"]
        for i, ratio in enumerate(ratios):
            cells = " | ".join(f"{g['max_dm'][i][j]:.4f} ({g['max_da'][i][j]:.4f})" for j in range(len(dts)))
            lines.append(f"| {ratio:g} | {cells} |")
        lines.append("")
    table = "\n".join(lines)
    print(table)
    (out / "table.md").write_text(table)
    (out / "map.json").write_text(json.dumps({"ratios": ratios, "dts": dts, "seeds": seeds, "t_max": T_MAX,
                                              "grid": {str(k): v for k, v in grid.items()}}, indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import LogNorm
    except ImportError:
        print("matplotlib is not installed: no figure (pip install matplotlib)")
        return 0
    fig, axes = plt.subplots(1, len(grid), figsize=(5 * len(grid), 4), constrained_layout=True)
    vmin = min(np.min(g["max_dm"]) for g in grid.values())
    vmax = max(np.max(g["max_dm"]) for g in grid.values())
    for ax, (width, g) in zip(np.atleast_1d(axes), grid.items()):
        im = ax.pcolormesh(np.arange(len(dts) + 1), np.arange(len(ratios) + 1), np.array(g["max_dm"]),
                           norm=LogNorm(vmin=vmin, vmax=vmax), cmap="viridis")
        for i in range(len(ratios)):
            for j in range(len(dts)):
                v = g["max_dm"][i][j]
                bright = np.log(v) > 0.5 * (np.log(vmin) + np.log(vmax))  # viridis is light at the top
                ax.text(j + 0.5, i + 0.5, f"{v:.3f}", ha="center", va="center", fontsize=7,
                        color="black" if bright else "white")
        ax.set_xticks(np.arange(len(dts)) + 0.5, [f"{dt:g}" for dt in dts])
        ax.set_yticks(np.arange(len(ratios)) + 0.5, [f"{r:g}" for r in ratios])
        ax.set_xlabel("dt (ODE time per step)")
        ax.set_ylabel("B / d")
        ax.set_title(f"d = n = {width}")
    fig.colorbar(im, ax=axes, label="max$_t$ |m$_{SGD}$ - m$_{ODE}$|")
    fig.savefig(out / "map.png", dpi=120)
    print(f"figure: {out / 'map.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
