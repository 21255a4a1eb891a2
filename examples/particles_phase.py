"""Does unlearning survive a random second layer? A (mu, sigma) phase diagram of the particle limit, as a sweep.

Every neuron starts at ``m_i = 0.1`` with ``a_i ~ N(mu, sigma^2)`` (so a fraction
``Phi(mu / sigma)`` of the second layer is positive: ``mu = 0`` is an even sign mix), represented
by Gauss-Hermite particles; the particle limit runs with ``lr_w = 1``, ``lr_a = 0.01`` for two
cases of the paper:

* tanh student, target ``h1 + 0.3 h3``;
* centred GELU student, targets ``h1 + 0.4 h2`` and ``h1 - 0.4 h2``.

The grid is a sweep (:func:`fastslow.sweep`, axes ``case`` x ``a_sigma`` x ``a0``; resumable in its
store): its cells with ``sigma > 0`` integrate the particle limit (level ``particles``), those with
``sigma = 0`` are identical neurons and integrate the 2-D limit ODE (level ``ode``). Two horizons:

* ``--horizon long`` (the default): ``examples/sweep_particles_phase_long.toml``, 64 particles to
  ``t = 1e13``: where the cells have settled (the local exponents move by < 0.002 a decade) and the
  particle number is converged (16 particles give a spurious exponent in some GELU cells);
* ``--horizon short``: ``examples/sweep_particles_phase.toml``, the first grid, 16 particles to
  ``t = 1e7``; its numbers are checked against ``examples/figures/particles_phase.json`` (the grid
  this example once built by hand with :func:`fastslow.solve_particles_batch`).

The alignment of a heterogeneous network is measured by ``|m| = sum_i w_i |m_i|`` (the sweep's
``m_abs``; a neuron with ``a_i < 0`` may align with ``-theta``). Per cell: its peak, its final value,
the verdict *unlearns* (the final value below half the peak) and the exponent ``p`` of ``|m| ~ t^-p``
fitted over the last decade; the sweep's own classification (``outcome``, ``exponent``: two-point
slope over the same decade) is printed beside it.

Usage::

    python examples/particles_phase.py [--quick] [--horizon long|short] [--out DIR]

Writes the sweep store ``sweep.zarr``, ``phase.json`` and ``particles_phase.png`` into ``--out``
(default ``results/particles_phase``, ``results/particles_phase_short`` for the short horizon).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import special

import fastslow as fs

HERE = Path(__file__).resolve().parent
SPECS = {"long": HERE / "sweep_particles_phase_long.toml", "short": HERE / "sweep_particles_phase.toml"}
REFERENCE = HERE / "figures" / "particles_phase.json"
NAMES = ["tanh, h1 + 0.3 h3", "centred GELU, h1 + 0.4 h2", "centred GELU, h1 - 0.4 h2"]  # the axis "case"


def spec_for(quick: bool, horizon: str = "long") -> fs.SweepSpec:
    """The sweep of ``sweep_particles_phase_long.toml`` (``horizon="long"``) or of
    ``sweep_particles_phase.toml`` (``"short"``); with ``quick`` a 4 x 3 grid of 8 particles."""
    spec = fs.load_sweep_spec(SPECS[horizon])
    if not quick:
        return spec
    base = spec.base.to_dict()
    base["particles"]["n"] = 8
    case = next(a for a in spec.axes if a.name == "case")
    axes = {"case": {f: v.tolist() for f, v in zip(case.fields, case.values)}, "a_sigma": [0.0, 0.5, 2.0],
            "a0": [-1.0, 0.0, 1.0, 2.0]}
    return fs.SweepSpec.create(base, axes, compute=spec.compute)


def summarise(ds, k: int) -> dict:
    """Case ``k`` of the sweep: |m| (sigma, mu, T) after t = 0, its peak, final value, the fitted exponent."""
    t = ds["t"].values[1:]
    mabs = ds["m_abs"].isel(case=k).values[..., 1:]
    peak = mabs.max(-1)
    final = mabs[..., -1]
    tail = t >= t[-1] / 10
    logs = np.log(np.maximum(mabs[..., tail], 1e-300)).reshape(-1, tail.sum()).T
    exponent = -np.polyfit(np.log(t[tail]), logs, 1)[0].reshape(peak.shape)
    sig, mu = ds["a_sigma"].values[:, None], ds["a0"].values[None, :]
    S, M = np.broadcast_arrays(sig, mu)
    pos = np.where(S > 0, special.ndtr(M / np.where(S > 0, S, 1.0)), (M > 0) + 0.5 * (M == 0))
    cell = ds.isel(case=k)
    return {"mabs": mabs, "peak": peak, "final": final, "exponent": exponent, "unlearns": final < 0.5 * peak,
            "status": cell["ode_status"].values, "level": cell["level"].values, "outcome": cell["outcome"].values,
            "sweep_exponent": cell["exponent"].values, "positive_fraction": pos}


def against_reference(res: dict, mus: np.ndarray, sigmas: np.ndarray) -> dict:
    """The largest differences to the hand-built grid (``examples/figures/particles_phase.json``)."""
    ref = json.loads(REFERENCE.read_text())
    if ref["mu"] != mus.tolist() or ref["sigma"] != sigmas.tolist():
        return {}
    out = {}
    for name, r in res.items():
        c = ref["cases"][name]
        both = np.array(c["unlearns"]) & r["unlearns"]
        out[name] = {"max_d_peak": float(np.max(np.abs(np.array(c["peak"]) - r["peak"]))),
                     "max_d_final": float(np.max(np.abs(np.array(c["final"]) - r["final"]))),
                     "max_d_exponent": float(np.max(np.abs(np.array(c["exponent"])[both] - r["exponent"][both]))),
                     "verdicts_differ": int(np.sum(np.array(c["unlearns"]) != r["unlearns"]))}
    return out


def figure(res: dict, mus: np.ndarray, sigmas: np.ndarray, t: np.ndarray, path: Path, spec_name: str,
           particles: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e_max = int(round(np.log10(t[-1])))
    # the colour scale of the exponents: the short horizon's unsettled cells go negative
    vmin, vmax = (0.0, 0.4) if e_max > 8 else (-0.35, 0.7)
    fig, axes = plt.subplots(len(res), 3, figsize=(13, 3.4 * len(res)), constrained_layout=True)
    for row, (name, r) in zip(axes, res.items()):
        ratio = r["final"] / r["peak"]
        im = row[0].pcolormesh(mus, sigmas, ratio, vmin=0, vmax=1, cmap="viridis", shading="nearest")
        row[0].contour(mus, sigmas, ratio, levels=[0.5], colors="w", linewidths=1.5)
        fig.colorbar(im, ax=row[0], label=rf"$|m|(10^{{{e_max}}})\,/\,\max_t |m|$")
        row[0].set(xlabel=r"$\mu$ (mean of $a_i$)", ylabel=r"$\sigma$ (spread of $a_i$)", title=f"{name}: kept alignment")
        ex = np.where(r["unlearns"], r["exponent"], np.nan)
        im = row[1].pcolormesh(mus, sigmas, ex, cmap="magma", shading="nearest", vmin=vmin, vmax=vmax)
        fig.colorbar(im, ax=row[1], label=rf"exponent $p$ of $|m| \sim t^{{-p}}$ ($t = 10^{{{e_max - 1}}}..10^{{{e_max}}}$)")
        row[1].set(xlabel=r"$\mu$", ylabel=r"$\sigma$", title="decay exponent (unlearning cells)")
        j0 = int(np.argmin(np.abs(mus - 1.0)))
        for i, s in enumerate(sigmas):
            row[2].loglog(t, r["mabs"][i, j0], label=rf"$\sigma = {s:g}$")
        row[2].set(xlabel="t (ODE time)", ylabel=r"$|m| = \sum_i w_i |m_i|$", title=rf"$\mu = {mus[j0]:g}$", ylim=(1e-3, 1.5))
        row[2].legend(fontsize=7)
    fig.suptitle(f"Particle limit ({particles} particles) with a random second layer a_i ~ N(mu, sigma^2), m_i(0) = 0.1, "
                 f"lr_a / lr_w = 0.01, to t = 1e{e_max}\n"
                 f"(one sweep, examples/{spec_name}; row sigma = 0: the 2-D limit ODE; "
                 "white line: final alignment = half the peak)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _counts(x: np.ndarray) -> dict[str, int]:
    vals, n = np.unique(np.asarray(x).astype(str), return_counts=True)
    return {str(v): int(c) for v, c in zip(vals, n)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 4 x 3 grid, 8 particles")
    ap.add_argument("--horizon", choices=("long", "short"), default="long",
                    help="long: 64 particles to t = 1e13 (the settled answer, ~1 min); short: the first grid, "
                         "16 particles to t = 1e7, checked against the hand-built grid")
    ap.add_argument("--out", type=Path, default=None, help="default results/particles_phase[_short]")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = Path("results/particles_phase" + ("_short" if args.horizon == "short" else ""))
    spec = spec_for(args.quick, args.horizon)
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / ("sweep-quick.zarr" if args.quick else "sweep.zarr")
    print(f"sweep: {spec.n_cells} cells ({' x '.join(f'{a.name} {a.size}' for a in spec.axes)}), "
          f"{spec.base.particles.n} particles, store {store}", flush=True)
    start = time.perf_counter()
    ds = fs.sweep(spec, store=str(store))
    run = json.loads(ds.attrs["run"])
    wall = time.perf_counter() - start
    print(f"time: {wall:.1f} s ({run['tasks_run']} tasks computed, {run['tasks_reused']} read back from the store)")
    mus, sigmas = ds["a0"].values, ds["a_sigma"].values
    t = ds["t"].values[1:]
    res = {name: summarise(ds, k) for k, name in enumerate(NAMES)}
    summary = {}
    for name, r in res.items():
        print(f"\n{name}: |m| at {t[-1]:.0e} / peak (rows sigma, columns mu = {mus.tolist()}), * = unlearns; "
              f"levels {_counts(r['level'])}")
        for i, s in enumerate(sigmas):
            cells = " ".join(f"{v:5.2f}{'*' if u else ' '}" for v, u in zip(r["final"][i] / r["peak"][i], r["unlearns"][i]))
            exps = " ".join(f"{v:5.2f}" if u else "   - " for v, u in zip(r["exponent"][i], r["unlearns"][i]))
            print(f"  sigma {s:4.2f}: {cells}   p: {exps}")
        print(f"  the sweep's classification: {_counts(r['outcome'])}")
        summary[name] = {k: np.asarray(v).tolist() for k, v in r.items() if k != "mabs"}
    check = {} if args.quick or args.horizon == "long" else against_reference(res, mus, sigmas)
    for name, c in check.items():
        print(f"against the hand-built grid, {name}: max |d peak| {c['max_d_peak']:.2e}, max |d final| "
              f"{c['max_d_final']:.2e}, max |d p| {c['max_d_exponent']:.2e}, verdicts differing {c['verdicts_differ']}")
    (args.out / "phase.json").write_text(json.dumps({"mu": mus.tolist(), "sigma": sigmas.tolist(), "t_max": float(t[-1]),
                                                     "lr_a": spec.base.model.lr_a, "particles": spec.base.particles.n,
                                                     "sweep": SPECS[args.horizon].name, "wall_time_s": wall,
                                                     "against_hand_grid": check, "cases": summary}, indent=1))
    figure(res, mus, sigmas, t, args.out / "particles_phase.png", SPECS[args.horizon].name, spec.base.particles.n)
    print(f"\nwrote {args.out}/phase.json and particles_phase.png")


if __name__ == "__main__":
    main()
