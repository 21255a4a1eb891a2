"""Does unlearning survive a random second layer? A (mu, sigma) grid of the particle limit.

Every neuron starts at ``m_i = 0.1`` with ``a_i ~ N(mu, sigma^2)`` (so a fraction
``Phi(mu / sigma)`` of the second layer is positive: ``mu = 0`` is an even sign mix), represented
by 16 Gauss-Hermite particles; the particle limit (:func:`fastslow.solve_particles_batch`) runs to
``t = 1e7`` with ``lr_w = 1``, ``lr_a = 0.01`` for two cases of the paper:

* tanh student, target ``h1 + 0.3 h3``;
* centred GELU student, targets ``h1 + 0.4 h2`` and ``h1 - 0.4 h2``.

The alignment of a heterogeneous network is measured by ``|m| = sum_i w_i |m_i|`` (a neuron with
``a_i < 0`` may align with ``-theta``). Per cell: its peak, its value at ``t = 1e7``, the verdict
*unlearns* (the final value below half the peak) and the exponent ``p`` of ``|m| ~ t^-p`` fitted
over the last decade (``t = 1e6 .. 1e7``). The row ``sigma = 0`` is the 2-D limit ODE (checked
against :func:`fastslow.solve_ode`).

This is a small grid computed here, not a :mod:`fastslow.sweep`: sweeps do not take a
heterogeneous initial law yet (they refuse it with a named error).

Usage::

    python examples/particles_phase.py [--quick] [--out results/particles_phase]

Writes ``phase.json`` and ``particles_phase.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import special

import fastslow as fs

LR_A = 0.01
T_MAX = 1e7
CASES = [("tanh, h1 + 0.3 h3", lambda: fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=LR_A)),
         ("centred GELU, h1 + 0.4 h2", lambda: fs.Model("gelu", {1: 1.0, 2: 0.4}, lr_a=LR_A, centred=True)),
         ("centred GELU, h1 - 0.4 h2", lambda: fs.Model("gelu", {1: 1.0, 2: -0.4}, lr_a=LR_A, centred=True))]


def grid(model: fs.Model, mus: np.ndarray, sigmas: np.ndarray, n_part: int, t: np.ndarray) -> dict:
    x, wq = special.roots_hermitenorm(n_part)
    wq = wq / wq.sum()
    S, M = np.meshgrid(sigmas, mus, indexing="ij")  # rows: sigma, columns: mu
    a0 = M[..., None] + S[..., None] * x
    traj = fs.solve_particles_batch(model, t, a0=a0, m0=0.1, weights=wq)
    mabs = np.sum(wq[:, None] * np.abs(traj.particles["m"]), axis=-2)  # (sigma, mu, T)
    peak = mabs.max(-1)
    final = mabs[..., -1]
    tail = t >= T_MAX / 10
    slope = np.polyfit(np.log(t[tail]), np.log(np.maximum(mabs[..., tail], 1e-300)).reshape(-1, tail.sum()).T, 1)[0]
    exponent = -slope.reshape(S.shape)
    ode = fs.solve_ode_batch(model, t, a0=mus, m0=0.1)
    return {"mabs": mabs, "peak": peak, "final": final, "exponent": exponent, "status": np.asarray(traj.status),
            "unlearns": final < 0.5 * peak, "ode_diff": float(np.nanmax(np.abs(np.abs(ode.m) - mabs[0]))),
            "positive_fraction": np.where(S > 0, special.ndtr(M / np.where(S > 0, S, 1.0)), (M > 0) + 0.5 * (M == 0))}


def figure(res: dict, mus: np.ndarray, sigmas: np.ndarray, t: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(res), 3, figsize=(13, 3.4 * len(res)), constrained_layout=True)
    for row, (name, r) in zip(axes, res.items()):
        ratio = r["final"] / r["peak"]
        im = row[0].pcolormesh(mus, sigmas, ratio, vmin=0, vmax=1, cmap="viridis", shading="nearest")
        row[0].contour(mus, sigmas, ratio, levels=[0.5], colors="w", linewidths=1.5)
        fig.colorbar(im, ax=row[0], label=r"$|m|(10^7)\,/\,\max_t |m|$")
        row[0].set(xlabel=r"$\mu$ (mean of $a_i$)", ylabel=r"$\sigma$ (spread of $a_i$)", title=f"{name}: kept alignment")
        ex = np.where(r["unlearns"], r["exponent"], np.nan)
        im = row[1].pcolormesh(mus, sigmas, ex, cmap="magma", shading="nearest", vmin=-0.35, vmax=0.7)
        fig.colorbar(im, ax=row[1], label=r"exponent $p$ of $|m| \sim t^{-p}$ ($t = 10^6..10^7$)")
        row[1].set(xlabel=r"$\mu$", ylabel=r"$\sigma$", title="decay exponent (unlearning cells)")
        j0 = int(np.argmin(np.abs(mus - 1.0)))
        for i, s in enumerate(sigmas):
            row[2].loglog(t, r["mabs"][i, j0], label=rf"$\sigma = {s:g}$")
        row[2].set(xlabel="t (ODE time)", ylabel=r"$|m| = \sum_i w_i |m_i|$", title=rf"$\mu = {mus[j0]:g}$", ylim=(1e-3, 1.5))
        row[2].legend(fontsize=7)
    fig.suptitle("Particle limit with a random second layer a_i ~ N(mu, sigma^2), m_i(0) = 0.1, lr_a / lr_w = 0.01 "
                 "(white line: final alignment = half the peak)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 4 x 3 grid, 8 particles")
    ap.add_argument("--out", type=Path, default=Path("results/particles_phase"))
    args = ap.parse_args(argv)
    if args.quick:
        mus, sigmas, n_part = np.array([-1.0, 0.0, 1.0, 2.0]), np.array([0.0, 0.5, 2.0]), 8
    else:
        mus, sigmas, n_part = np.linspace(-2.0, 2.0, 9), np.array([0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0]), 16
    t = np.geomspace(1e-2, T_MAX, 120)
    res = {name: grid(make(), mus, sigmas, n_part, t) for name, make in CASES}
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name, r in res.items():
        print(f"\n{name}: |m| at 1e7 / peak (rows sigma, columns mu = {mus.tolist()}); 2-D check {r['ode_diff']:.1e}")
        for i, s in enumerate(sigmas):
            cells = " ".join(f"{v:5.2f}{'*' if u else ' '}" for v, u in zip(r["final"][i] / r["peak"][i], r["unlearns"][i]))
            exps = " ".join(f"{v:5.2f}" if u else "   - " for v, u in zip(r["exponent"][i], r["unlearns"][i]))
            print(f"  sigma {s:4.2f}: {cells}   p: {exps}")
        summary[name] = {k: np.asarray(v).tolist() for k, v in r.items() if k != "mabs"}
    (args.out / "phase.json").write_text(json.dumps({"mu": mus.tolist(), "sigma": sigmas.tolist(), "t_max": T_MAX,
                                                     "lr_a": LR_A, "particles": n_part, "cases": summary}, indent=1))
    figure(res, mus, sigmas, t, args.out / "particles_phase.png")
    print(f"\nwrote {args.out}/phase.json and particles_phase.png (* = unlearns)")


if __name__ == "__main__":
    main()
