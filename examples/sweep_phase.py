"""The phase diagram as a sweep: what the full ODE does by t = 1e7 over c3 and a0.

Runs ``examples/sweep_phase.toml`` (tanh student, target h1 + c3 h3, lr_a = 0.01; 201 values of c3
from -0.5 to 0.5 times 161 log-spaced values of a0 from 0.25 to 4, i.e. 32,361 cells, computing
"ode" and "analysis") with :func:`fastslow.sweep` into a store, then draws
``examples/figures/sweep_phase.png``:

* left: the outcome by t = 1e7 per cell (learning, lazy, unlearning, undetermined, failed; the
  colours of :func:`fastslow.plotting.phase_diagram`), contours of the unlearning half-life (a
  factor 10^0.5 apart) and the c3 where the asymptotic law's verdict changes;
* right: the measured exponent d log a / d log t over the last decade before t = 1e7 (where a grows
  as a power of t) against c3 at three values of a0 (it hardly depends on a0), with the law's
  exponent 1/(q + 1).

It prints the outcome counts, the time the sweep took, and how often the measured outcome
(unlearning or not) agrees with the law's verdict.

The sweep is resumable: every finished block of cells is written to the store (a zarr directory)
at once, so an interrupted run (Ctrl-C, a killed process) started again with the same store
computes only what is missing, and a finished store is only read back (the printed time is then
that of reading it). The command line ``fastslow sweep examples/sweep_phase.toml --out
results/sweep-phase`` fills the same store; ``xarray.open_zarr`` reads it, even while it runs.

Usage::

    python examples/sweep_phase.py [STORE]      (default STORE: results/sweep-phase; ~10 s on 2 cores)
    python examples/sweep_phase.py --quick      (51 x 41 cells, a few seconds; figure in the store)

Needs xarray and zarr (``pip install 'fastslow[sweep]'``) and matplotlib.
"""

from __future__ import annotations


import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from _sweep_example import run_example_sweep, save_figure  # noqa: E402
from fastslow.plotting import OKABE_ITO  # noqa: E402

OUTCOMES = ["learning", "lazy", "unlearning", "undetermined", "failed"]  # as plotting.phase_diagram
OUTCOME_COLOURS = [OKABE_ITO[0], OKABE_ITO[5], OKABE_ITO[1], "#BBBBBB", "#000000"]


def main() -> int:
    quick = {"c3": {"start": -0.5, "stop": 0.5, "step": 0.02}, "a0": {"start": 0.25, "stop": 4.0, "num": 41, "log": True}}
    started = run_example_sweep(__doc__, "phase", unit="tasks", quick_axes=quick)
    if isinstance(started, int):
        return started  # Ctrl-C: the finished cells are in the store
    args, spec, ds = started

    outcome = ds["outcome"].transpose("a0", "c3").values.astype(str)  # rows a0, columns c3
    law = ds["law"].transpose("a0", "c3").values.astype(str)
    c3, a0 = ds["c3"].values, ds["a0"].values
    n = outcome.size

    # problems the sweep recorded
    err = ds["error"].values.astype(str)
    nerr, ndone = int(np.count_nonzero(err != "")), int(ds["done"].values.sum())
    nbad_status = int(np.count_nonzero(ds["ode_status"].values != 0))
    print(f"cells with an error: {nerr}; cells not done: {n - ndone}; ODE status != 0: {nbad_status}")
    for e in sorted(set(err[err != ""]))[:5]:
        print(f"  error: {e}")

    print("\noutcome by t = 1e7     cells   share")
    for name in OUTCOMES:
        k = int(np.count_nonzero(outcome == name))
        print(f"  {name:<14} {k:>12d}  {k / n:6.1%}")
    other = n - sum(int(np.count_nonzero(outcome == name)) for name in OUTCOMES)
    if other:
        print(f"  (other)        {other:>12d}")
    print("law's verdict (limit t -> infinity): "
          + ", ".join(f"{v} {int(np.count_nonzero(law == v))}" for v in sorted(set(law.ravel()))))

    measured_u, law_u = outcome == "unlearning", law == "unlearning"
    agree = measured_u == law_u
    print(f"\nmeasured outcome (unlearning or not) agrees with the law's verdict in {agree.mean():.2%} of the cells "
          f"({int(agree.sum())} of {n})")
    for label, mask in (("measured unlearning, law not", measured_u & ~law_u),
                        ("law unlearning, measured not", law_u & ~measured_u)):
        cols = np.flatnonzero(mask.any(axis=0))
        if cols.size:
            ex_mask = ds["exponent"].transpose("a0", "c3").values[mask]
            ex_text = (f", measured exponent {np.nanmin(ex_mask):.3f} to {np.nanmax(ex_mask):.3f}"
                       if np.isfinite(ex_mask).any() else "")
            print(f"  {label}: {int(mask.sum())} cells, c3 from {c3[cols[0]]:+.3f} to {c3[cols[-1]]:+.3f}, "
                  f"measured as {', '.join(sorted(set(outcome[mask])))}{ex_text}")
        else:
            print(f"  {label}: none")
    und = np.flatnonzero((outcome == "undetermined").any(axis=0))
    if und.size:
        print(f"  undetermined cells lie at c3 from {c3[und[0]]:+.3f} to {c3[und[-1]]:+.3f}")
    ex, lx = ds["exponent"].values, ds["law_exponent"].values
    both = np.isfinite(ex) & np.isfinite(lx)
    if both.any():
        print(f"measured exponent where the law gives one: median {np.median(ex[both]):.4f}, "
              f"law {', '.join(f'{v:.4f}' for v in sorted(set(np.round(lx[both], 6))))}; "
              f"|measured - law| < 0.01 in {np.mean(np.abs(ex[both] - lx[both]) < 0.01):.1%} of them")

    # ---------------------------------------------------------------------------------- figure
    code = np.full(outcome.shape, np.nan)
    for i, name in enumerate(OUTCOMES):
        code[outcome == name] = i
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), layout="constrained")
    ax = axes[0]
    mesh = ax.pcolormesh(c3, a0, code, cmap=ListedColormap(OUTCOME_COLOURS), vmin=-0.5, vmax=4.5, shading="nearest",
                         rasterized=True)
    cb = fig.colorbar(mesh, ax=ax, ticks=range(len(OUTCOMES)))
    cb.ax.set_yticklabels(OUTCOMES, fontsize=8)
    # half-life contours where the cell unlearns (elsewhere m may halve on its way to a low equilibrium)
    t_half = np.where(outcome == "unlearning", ds["t_half"].transpose("a0", "c3").values, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        cs = ax.contour(c3, a0, np.log10(t_half), levels=np.arange(3.5, 7.01, 0.5), colors="k", linewidths=0.8)
    # label the whole decades, away from the crowd of lines near c3 = 0
    spots = []
    for level, segs in zip(cs.levels, cs.allsegs):
        pts = np.concatenate([sg for sg in segs if len(sg)]) if any(len(sg) for sg in segs) else np.empty((0, 2))
        if float(level).is_integer() and len(pts):
            # nearest to (c3 = 0.3, a0 = 1.5) in axis units, kept off the frame
            inside = pts[(pts[:, 0] < c3[-1] - 0.05) & (pts[:, 1] < a0[-1] / 1.15) & (pts[:, 1] > a0[0] * 1.15)]
            if len(inside):
                dist = np.hypot((inside[:, 0] - 0.3) / np.ptp(c3), np.log(inside[:, 1] / 1.5) / np.log(a0[-1] / a0[0]))
                spots.append(tuple(inside[np.argmin(dist)]))
    ax.clabel(cs, levels=[lv for lv in cs.levels if float(lv).is_integer()], fontsize=8, inline_spacing=3,
              fmt=lambda v: f"1e{v:.0f}", manual=spots or False)
    # where the law's verdict changes (a vertical line between two columns)
    edge = np.flatnonzero(np.diff(law_u[0].astype(int)) != 0)
    for j in edge:
        ax.axvline(0.5 * (c3[j] + c3[j + 1]), color=OKABE_ITO[4], ls="--", lw=1.5,
                   label="law's verdict: learning | unlearning" if j == edge[0] else None)
    ax.plot([], [], color="k", lw=0.8, label="half-life (ODE time), x 10^0.5 apart")
    ax.set_yscale("log")
    ax.set_xlabel("c3, target's Hermite coefficient of order 3 (dimensionless)")
    ax.set_ylabel("a0, initial second-layer weight (dimensionless, log scale)")
    ax.set_title(f"Outcome by t = 1e7 ({len(c3)} x {len(a0)} cells)", fontsize=10)
    ax.legend(fontsize=7, loc="lower left", framealpha=0.9)

    ax = axes[1]  # the exponent hardly depends on a0: cuts at three a0 against c3
    expo = ds["exponent"].transpose("a0", "c3").values
    lexp = ds["law_exponent"].transpose("a0", "c3").values
    for k, (a0_cut, style) in enumerate(((0.25, "-"), (1.0, "--"), (4.0, ":"))):
        i = int(np.argmin(np.abs(a0 - a0_cut)))
        ax.plot(c3, expo[i], style, color=OKABE_ITO[(1, 0, 2)[k]], lw=2.0 - 0.4 * k,
                label=f"measured, a0 = {a0[i]:.3g}")
    i = int(np.argmin(np.abs(a0 - 1.0)))
    ax.plot(c3, lexp[i], "o", color="k", ms=2.5, label="asymptotic law 1/(q + 1)")
    ax.axvspan(c3[0], 0.5 * (c3[edge[0]] + c3[edge[0] + 1]) if edge.size else c3[0], color=OKABE_ITO[0], alpha=0.12,
               lw=0, label="law: learning (no power law)")
    ax.set_yticks([0, 0.05, 0.1, 1 / 6, 0.2, 0.25], ["0", "0.05", "0.1", "1/6", "0.2", "1/4"])
    ax.set_xlim(-0.1, 0.5)
    ax.set_ylim(0, 0.27)
    ax.grid(alpha=0.3)
    ax.set_xlabel("c3, target's Hermite coefficient of order 3 (dimensionless)")
    ax.set_ylabel("exponent of a ~ t^k, measured over t = 1e6 ... 1e7")
    ax.set_title("Growth exponent of a (measured where the cell unlearns by t = 1e7)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Sweep: tanh student, target h1 + c3 h3, lr_a / lr_w = 0.01 (limit ODE)", fontsize=11)
    save_figure(fig, args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
