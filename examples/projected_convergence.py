"""SGD against the limit ODE as d grows to 32,768 at fixed B / d and n: the projected sampler.

The direct SGD step costs ``4 B d n`` flops and ``B d`` normals; at ``d = 32768`` and ``B = 4 d`` that
is ~0.6 TFLOP and 4e9 normals a step. The projected sampler (``sampler="projected"``; exact in
distribution, see ``fastslow.samplers``) draws only ``B (n + 1) + n d`` normals, so the sizes the
theory is about (``d -> infinity`` with ``B / d`` fixed) are reached on a laptop-class machine.

Configuration: tanh student, target h1 + 0.2 h3, a0 = 0.5, m0 = 0, lr_w = lr_a = 1, n = 32,
B = 4 d, dt = 0.05 (so dt d / B = 0.0125), t in [0, 10]; d from 256 to 32768, several seeds each.
At each d: the mean over seeds of m(t) - m_ODE(t) (what stays as d grows: the O(dt) and
O(dt d / B) biases of the theory page (section 2), fixed here) and the spread over seeds (the batch noise,
expected to fall like d^(-1/2) at fixed B / d), with power laws fitted in d. At d = 256 and 1024 the
direct sampler runs too, on the same seeds, as a check that both give the same statistics.

What it does not do: compare with the effective (finite dt d / B) dynamics of issue 17, which
fastslow does not implement yet; the bias that remains at large d is the quantity such a theory
would have to predict.

Usage::

    python examples/projected_convergence.py [--quick] [--seeds 6] [--out results/projected_convergence]

Writes ``table.md``, ``study.json`` and ``convergence.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import fastslow as fs

T_MAX, DT, N, RATIO = 10.0, 0.05, 32, 4  # RATIO = B / d


def run(model: fs.Model, d: int, seeds: int, sampler: str) -> dict:
    """`seeds` runs at input dimension d, two at a time, one thread each (the GIL is released while
    a run computes); m(t), a(t) of each (records on a linear grid)."""
    steps = int(round(T_MAX / DT))

    def one(seed: int) -> fs.Trajectory:
        return fs.train_sgd(model, d=d, n=N, batch=RATIO * d, dt=DT, steps=steps, a0=0.5, m0=0.0, seed=seed,
                            record=41, spacing="linear", progress=False, sampler=sampler, threads=1)

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        rs = list(pool.map(one, range(seeds)))
    return {"d": d, "sampler": sampler, "t": np.asarray(rs[0].t), "m": np.array([r.m for r in rs]),
            "a": np.array([r.a for r in rs]), "seconds": time.perf_counter() - start}


def fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Log-log slope and prefactor of y against x."""
    s, c = np.polyfit(np.log(x), np.log(y), 1)
    return float(s), float(np.exp(c))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="d up to 4096 and 2 seeds (a smoke run)")
    p.add_argument("--seeds", type=int, default=6)
    p.add_argument("--out", default="results/projected_convergence")
    args = p.parse_args()
    seeds = 2 if args.quick else args.seeds
    ds = (256, 1024, 4096) if args.quick else (256, 1024, 4096, 16384, 32768)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
    runs = []
    for d in ds:
        runs.append(run(model, d, seeds, "projected"))
        print(f"d = {d:5d}, projected: {runs[-1]['seconds']:.1f} s", flush=True)
    checks = []
    for d in ds[:2]:
        checks.append(run(model, d, seeds, "direct"))
        print(f"d = {d:5d}, direct:    {checks[-1]['seconds']:.1f} s", flush=True)
    t = runs[0]["t"]
    ode = fs.solve_ode(model, t, a0=0.5, m0=0.0)
    rows = []
    for r in runs + checks:
        dev = r["m"] - ode.m[None, :]
        dev_a = r["a"] - ode.a[None, :]
        rows.append({"d": r["d"], "B": RATIO * r["d"], "sampler": r["sampler"], "seconds": r["seconds"],
                     "bias_m": float(np.max(np.abs(dev.mean(0)))),  # max_t |mean over seeds - ODE|
                     "bias_a": float(np.max(np.abs(dev_a.mean(0)))),
                     "spread_m": float(np.max(r["m"].std(0, ddof=1))),  # max_t spread over seeds
                     "spread_a": float(np.max(r["a"].std(0, ddof=1))),
                     "max_dev_m": float(np.mean(np.max(np.abs(dev), axis=1)))})
    proj = [r for r in rows if r["sampler"] == "projected"]
    x = np.array([r["d"] for r in proj], float)
    fits = {k: fit(x, np.array([r[k] for r in proj])) for k in ("spread_m", "spread_a", "bias_m", "max_dev_m")}
    lines = ["| d | B | sampler | seconds | max_t bias m | max_t bias a | max_t spread m | max_t spread a | "
             "mean max_t dev m |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['d']} | {r['B']} | {r['sampler']} | {r['seconds']:.1f} | {r['bias_m']:.5f} | "
                     f"{r['bias_a']:.5f} | {r['spread_m']:.5f} | {r['spread_a']:.5f} | {r['max_dev_m']:.5f} |")
    lines += ["", f"{seeds} seeds per row; bias: max over t of |mean over seeds of SGD - ODE|; spread: max over t "
              "of the standard deviation over seeds.", "",
              "| quantity | fitted slope in d (projected rows) |", "|---|---|"]
    lines += [f"| {k} | {s:.2f} |" for k, (s, _) in fits.items()]
    table = "\n".join(lines)
    print(table)
    (out / "table.md").write_text(table + "\n")
    (out / "study.json").write_text(json.dumps({"t_max": T_MAX, "dt": DT, "n": N, "B_over_d": RATIO, "seeds": seeds,
                                                "rows": rows, "fits": fits}, indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure")
        return 0
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    for i, r in enumerate(runs):
        dev = r["m"] - ode.m[None, :]
        col = cmap(i / max(1, len(runs) - 1))
        ax1.plot(t, dev.mean(0), color=col, label=f"d = {r['d']}")
        ax1.fill_between(t, dev.mean(0) - dev.std(0, ddof=1), dev.mean(0) + dev.std(0, ddof=1), color=col, alpha=0.15)
    for r in checks:
        ax1.plot(t, (r["m"] - ode.m[None, :]).mean(0), "k:", lw=1)
    ax1.axhline(0, color="k", lw=0.6)
    ax1.set_xlabel("t (SGD steps x dt)")
    ax1.set_ylabel("m$_{SGD}$(t) - m$_{ODE}$(t)")
    ax1.set_title("mean over seeds (band: ± 1 s.d.); dotted: direct sampler", fontsize=9)
    ax1.legend(fontsize=8)
    for key, col, lab in (("spread_m", "#0072B2", "spread of m over seeds"), ("spread_a", "#009E73", "spread of a"),
                          ("bias_m", "#D55E00", "bias of m (mean over seeds - ODE)")):
        y = np.array([r[key] for r in proj])
        s, c = fits[key] if key in fits else fit(x, y)
        ax2.loglog(x, y, "o-", color=col, label=f"{lab}: slope {s:.2f}")
    ax2.loglog(x, proj[0]["spread_m"] * (x / x[0]) ** -0.5, "k--", lw=0.8, label="d$^{-1/2}$ reference")
    ax2.set_xticks(x, [f"{int(v)}" for v in x])
    ax2.xaxis.set_minor_formatter(plt.NullFormatter())
    ax2.set_xlabel("input dimension d (B = 4 d, n = 32)")
    ax2.set_ylabel("max over t (dimensionless)")
    ax2.legend(fontsize=8)
    ax2.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"Projected-sampler SGD against the limit ODE (tanh, h1 + 0.2 h3, dt = {DT}, dt d/B = "
                 f"{DT / RATIO:g}, {seeds} seeds)", fontsize=10)
    fig.savefig(out / "convergence.png", dpi=120)
    print(f"figure: {out / 'convergence.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
