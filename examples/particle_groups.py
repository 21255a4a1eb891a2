"""The fast-slow picture of two particle groups, against the particle system.

Two groups of neurons, 70% at ``a = 0.8`` and 30% at ``a = -0.4`` (both at ``m = 0.1``), with
``lr_a / lr_w = 1e-3``, for the tanh student on ``h1 + 0.3 h3`` and the centred GELU student on
``h1 + 0.4 h2``. For each: the groups' alignments and second layers from the particle limit
(:func:`fastslow.solve_particles`) and from the groups' slow flow
(:func:`fastslow.analysis.groups.solve_group_slow_flow`: poles, jumps, the attracting sheet), and
the points of the critical manifold in the ``(m_1, m_2)`` plane at the second layers the flow passes
through (:func:`~fastslow.analysis.groups.group_critical_points`, marked by their stability).

Usage::

    python examples/particle_groups.py [--out results/particle_groups]

Writes ``groups.json`` and ``particle_groups.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import fastslow as fs
from fastslow.analysis import groups as G

A0, W, M0, EPS = [0.8, -0.4], [0.7, 0.3], 0.1, 1e-3
CASES = [("tanh, h1 + 0.3 h3", fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=EPS)),
         ("centred GELU, h1 + 0.4 h2", fs.Model("gelu", {1: 1.0, 2: 0.4}, lr_a=EPS, centred=True))]
MARK = {"attracting": ("o", "tab:green"), "saddle": ("D", "tab:orange"), "repelling": ("s", "tab:red")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results/particle_groups"))
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.geomspace(1e-1, 1e7, 200)
    fig, axes = plt.subplots(len(CASES), 3, figsize=(14, 4 * len(CASES)), constrained_layout=True)
    out = {}
    for row, (name, model) in zip(axes, CASES):
        p = fs.solve_particles(model, t, a0=A0, m0=M0, weights=W)
        sf = G.solve_group_slow_flow(model, t, a0=A0, m0=M0, weights=W)
        s = sf.trajectory
        late = t > 1e5
        dev = float(np.nanmax(np.abs(s.particles["a"][:, late] - p.particles["a"][:, late]) / np.abs(p.particles["a"][:, late])))
        out[name] = {"verdict": sf.verdict, "jumps": list(s.params["jumps"]), "status": int(s.status),
                     "message": s.message, "max_rel_dev_a_late": dev,
                     "m_final_particles": p.particles["m"][:, -1].tolist(), "a_final_particles": p.particles["a"][:, -1].tolist()}
        print(f"{name}: verdict {sf.verdict}, jumps at t = {[f'{x:.4g}' for x in s.params['jumps']]}, "
              f"slow flow vs particles (t > 1e5): max relative deviation in a_g {dev:.1e}")
        for g, c in enumerate(("tab:blue", "tab:purple")):
            lab = f"group {g + 1} (w = {W[g]}, a0 = {A0[g]})"
            row[0].semilogx(t, p.particles["m"][g], c=c, label=lab + ", particles")
            row[0].semilogx(t, s.particles["m"][g], c=c, ls="--", lw=2, alpha=0.6, label="slow flow")
            row[1].loglog(t, np.abs(p.particles["a"][g]), c=c, label=lab)
            row[1].loglog(t, np.abs(s.particles["a"][g]), c=c, ls="--", lw=2, alpha=0.6)
        for ax in row[:2]:
            for x in s.params["jumps"]:
                ax.axvline(x, c="0.6", lw=0.8, ls=":")
        row[0].set(xlabel="t (ODE time)", ylabel=r"$m_g$", title=f"{name}: alignments (dotted: jumps)")
        row[1].set(xlabel="t (ODE time)", ylabel=r"$|a_g|$", title="second layers")
        row[0].legend(fontsize=7)
        # the critical manifold at second layers along the flow
        for tj in (3e3, 3e4, 1e6):
            k = int(np.argmin(np.abs(t - tj)))
            a_k = s.particles["a"][:, k]
            if not np.all(np.isfinite(a_k)):
                continue
            for pt in G.group_critical_points(model, W, a_k, starts=13):
                mk, col = MARK[pt.stability]
                row[2].scatter(pt.m[0], pt.m[1], marker=mk, edgecolors=col, facecolors="none", s=160, linewidths=2)
            row[2].plot(*s.particles["m"][:, k], "k*", ms=7)
            row[2].annotate(f"t = {tj:.0e}", s.particles["m"][:, k], fontsize=7, xytext=(4, 4), textcoords="offset points")
        for stab, (mk, col) in MARK.items():
            row[2].scatter([], [], marker=mk, edgecolors=col, facecolors="none", linewidths=2, label=stab)
        row[2].set(xlim=(-1, 1), ylim=(-1, 1), xlabel=r"$m_1$", ylabel=r"$m_2$",
                   title="interior critical points at a(t); star: the flow")
        row[2].legend(fontsize=7)
    fig.suptitle("Two particle groups: particle limit (solid) and the groups' slow flow (dashed), lr_a / lr_w = 1e-3")
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "particle_groups.png", dpi=110)
    (args.out / "groups.json").write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}/particle_groups.png and groups.json")


if __name__ == "__main__":
    main()
