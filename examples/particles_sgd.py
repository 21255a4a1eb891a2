"""SGD on a network with a random second layer against the particle limit, as the width grows.

The tanh student on ``h1 + 0.3 h3`` with ``lr_w = 1``, ``lr_a = 0.1``; the second layer drawn
``a_i ~ N(0.5, 0.5^2)``, every ``m_i = 0.1``; ``d = 256``, ``B = 4096``, ``dt = 0.05``, to ``t = 10``
(float32). For each width ``n`` and seed, the particle limit (:func:`fastslow.solve_particles`) starts
from the network's own initial ``(m_i, a_i)``, so the comparison sees the dynamics, not the
sampling of the law. Measured: the sliced-Wasserstein distance between the two clouds
(:func:`fastslow.clouds.cloud_distance`) over time, its time average against ``n`` with a fitted
power, and the largest deviation of the loss (a finite network's loss carries an ``O(1/n)``
self-term the limit does not have).

Usage::

    python examples/particles_sgd.py [--quick] [--out results/particles_sgd]

Writes ``study.json`` and ``particles_sgd.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import fastslow as fs

MODEL = dict(activation="tanh", target={1: 1.0, 3: 0.3}, lr_a=0.1)
RUN = dict(d=256, batch=4096, dt=0.05, steps=200, a0=0.5, m0=0.1, a_dist="normal", a_sigma=0.5, dtype="float32")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="n = 4, 16, 64 and two seeds")
    ap.add_argument("--out", type=Path, default=Path("results/particles_sgd"))
    args = ap.parse_args(argv)
    ns = (4, 16, 64) if args.quick else (4, 16, 64, 256)
    seeds = (1, 2) if args.quick else (1, 2, 3, 4)
    model = fs.Model(MODEL["activation"], MODEL["target"], lr_a=MODEL["lr_a"])
    rows, curves = [], {}
    for n in ns:
        dist, dloss = [], []
        for seed in seeds:
            s = fs.train_sgd(model, n=n, seed=seed, record=21, spacing="linear", record_neurons=True, progress=False,
                             **RUN)
            p = fs.solve_particles(model, s.t, a0=s.particles["a"][:, 0], m0=s.particles["m"][:, 0])
            d_t = fs.clouds.cloud_distance(s, p)
            dist.append(d_t)
            dloss.append(float(np.max(np.abs(s.loss - p.loss))))
        dist = np.array(dist)
        curves[n] = (s.t, dist.mean(0))
        avg = dist[:, 1:].mean(1)
        rows.append({"n": n, "distance": float(avg.mean()), "distance_se": float(avg.std(ddof=1) / np.sqrt(avg.size)),
                     "loss_deviation": float(np.mean(dloss))})
        print(f"n = {n:4d}: cloud distance {avg.mean():.2e} +- {rows[-1]['distance_se']:.1e}, "
              f"max |loss - limit| {np.mean(dloss):.2e}")
    N = np.array([r["n"] for r in rows], float)
    D = np.array([r["distance"] for r in rows])
    slope_all = float(np.polyfit(np.log(N), np.log(D), 1)[0])
    slope_small = float(np.polyfit(np.log(N[:3]), np.log(D[:3]), 1)[0])
    print(f"fitted: distance ~ n^{slope_all:.2f} over all n, n^{slope_small:.2f} over n <= {int(N[2])}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "study.json").write_text(json.dumps({"setup": {**MODEL, **RUN, "target": {"1": 1.0, "3": 0.3}},
                                                     "seeds": list(seeds), "rows": rows, "slope_all": slope_all,
                                                     "slope_small_n": slope_small}, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for n, (t, d) in curves.items():
        ax0.semilogy(t[1:], d[1:], marker=".", label=f"n = {n}")
    ax0.set(xlabel="t (ODE time)", ylabel="sliced $W_2$(SGD neurons, particle limit)",
            title=f"cloud distance over time (mean of {len(seeds)} seeds)")
    ax0.legend()
    ax1.errorbar(N, D, yerr=[r["distance_se"] for r in rows], fmt="o", label="time-averaged distance")
    ax1.loglog(N, np.exp(np.polyval(np.polyfit(np.log(N[:3]), np.log(D[:3]), 1), np.log(N))), "--",
               label=f"fit n <= {int(N[2])}: n^{slope_small:.2f}")
    ax1.loglog(N, [r["loss_deviation"] for r in rows], "s", label="max |loss - limit loss|")
    ax1.set(xscale="log", yscale="log", xlabel="width n", ylabel="distance / deviation",
            title="falls with n, then a floor (finite d, B)")
    ax1.legend(fontsize=8)
    fig.suptitle("SGD (d = 256, B = 4096, dt = 0.05) with a_i ~ N(0.5, 0.5^2) against the particle limit from the "
                 "same initial neurons")
    fig.savefig(args.out / "particles_sgd.png", dpi=110)
    print(f"wrote {args.out}/study.json and particles_sgd.png")


if __name__ == "__main__":
    main()
