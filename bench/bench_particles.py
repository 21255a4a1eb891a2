#!/usr/bin/env python
"""Benchmark of the particle-limit integrator (:func:`fastslow.solve_particles`) against SciPy.

The system: the tanh student on the target ``{1: 1.0, 3: 0.3}``, ``lr_w = 1``, ``lr_a = 0.01``
(rank 44: the odd Hermite orders of tanh up to 87), particles with ``a_i ~ N(0.5, 0.3^2)``
(independent draws, seed 0) at ``m_i = 0.1``, integrated to ``t_max = 1e6`` at ``rtol = 1e-8``,
``atol = 1e-10``. Workloads, side by side in one process:

1. **Small N against every SciPy method.** ``N = 16, 64`` (quick: 16): fastslow against
   ``solve_ivp`` Radau, BDF and LSODA on the pure-NumPy right-hand side and the dense analytic
   Jacobian of :mod:`fastslow.reference` (its own implementation), same coordinates ``(v_i, a_i)``,
   same tolerances; the answers checked against each other (``a_i(t_max)``, ``m_i(t_max)``).
   Explicit methods (RK45, DOP853) are left out: their step is bounded by the fast time scale,
   ``O(1)``, against a horizon of ``1e6`` (RK45's step count to ``t = 1e3`` alone is printed).
2. **SciPy's fastest method against N.** The fastest of (1) at ``N = 16 .. 1024`` to ``t_max``: its
   cost grows like the dense LU, ``O(N^3)``.
3. **N = 10^4 to t = 10^6.** fastslow's full run; SciPy's fastest method on the same system through
   its step interface for a wall-clock budget (``--budget`` seconds): how far it gets, and the time
   to ``t_max`` extrapolated from (2) (marked ESTIMATE).
4. **Cost per step against N.** fastslow at ``N = 10^2 .. 10^4`` (quick: to ``10^3``) to
   ``t = 1e5``: seconds per step and per LU, with the least-squares slope of ``log(cost)`` against
   ``log N`` (1 = linear).

The machine may be shared: the numbers are for ratios in one run, not absolute speeds.
Results: ``bench/results/particles.json`` (``--json`` to change).

Usage::

    python bench/bench_particles.py [--quick] [--budget SECONDS] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.integrate import BDF, LSODA, Radau, solve_ivp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, Session, render_table  # noqa: E402

import fastslow as fs  # noqa: E402
from fastslow import reference as ref  # noqa: E402

RTOL, ATOL = 1e-8, 1e-10
METHODS = {"Radau": Radau, "BDF": BDF, "LSODA": LSODA}


def model() -> fs.Model:
    return fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=0.01)


def particles(N: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = 0.5 + 0.3 * np.random.default_rng(0).standard_normal(N)
    return a, np.full(N, 0.1), np.full(N, 1.0 / N)


def run_fastslow(mdl: fs.Model, N: int, t_max: float) -> dict[str, Any]:
    a, m, w = particles(N)
    t0 = time.perf_counter()
    p = fs.solve_particles(mdl, [0.0, t_max], a0=a, m0=m, weights=w, rtol=RTOL, atol=ATOL, dense_output=False)
    wall = time.perf_counter() - t0
    return {"N": N, "t_max": t_max, "seconds": wall, "nsteps": int(p.stats["nsteps"]), "nlu": int(p.stats["nlu"]),
            "nfev": int(p.stats["nfev"]), "status": int(p.status), "a_end": p.particles["a"][:, -1],
            "m_end": p.particles["m"][:, -1]}


def _scipy_fun(mdl: fs.Model, w: np.ndarray) -> tuple[Any, Any]:
    s, c, lw, la = mdl.s, mdl.c, mdl.lr_w, mdl.lr_a
    return (lambda t, y: ref.particle_rhs(s, c, lw, la, w, y)), (lambda t, y: ref.particle_jacobian(s, c, lw, la, w, y))


def _y0(a: np.ndarray, m: np.ndarray) -> np.ndarray:
    y = np.empty(2 * a.size)
    y[0::2], y[1::2] = np.arctanh(m), a
    return y


def run_scipy(mdl: fs.Model, N: int, t_max: float, method: str) -> dict[str, Any]:
    a, m, w = particles(N)
    f, jac = _scipy_fun(mdl, w)
    t0 = time.perf_counter()
    r = solve_ivp(f, (0.0, t_max), _y0(a, m), method=method, rtol=RTOL, atol=ATOL, jac=jac)
    wall = time.perf_counter() - t0
    return {"N": N, "method": method, "seconds": wall, "nsteps": int(r.t.size - 1), "nlu": int(r.nlu),
            "nfev": int(r.nfev), "status": int(r.status), "a_end": r.y[1::2, -1], "m_end": np.tanh(r.y[0::2, -1])}


def run_scipy_budget(mdl: fs.Model, N: int, t_max: float, method: str, budget: float) -> dict[str, Any]:
    """SciPy's step interface until ``t_max`` or the wall-clock budget."""
    a, m, w = particles(N)
    f, jac = _scipy_fun(mdl, w)
    t0 = time.perf_counter()
    solver = METHODS[method](f, 0.0, _y0(a, m), t_max, rtol=RTOL, atol=ATOL, jac=jac)
    steps = 0
    while solver.status == "running" and time.perf_counter() - t0 < budget:
        solver.step()
        steps += 1
    return {"N": N, "method": method, "seconds": time.perf_counter() - t0, "t_reached": float(solver.t),
            "nsteps": steps, "finished": solver.status == "finished", "budget": budget}


def _agree(x: dict[str, Any], y: dict[str, Any]) -> float:
    return float(max(np.max(np.abs(x["a_end"] - y["a_end"])), np.max(np.abs(x["m_end"] - y["m_end"]))))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small N, t_max = 1e4, a short budget")
    ap.add_argument("--budget", type=float, default=None, help="SciPy's wall-clock budget at N = 10^4 (s)")
    ap.add_argument("--json", type=Path, default=RESULTS_DIR / "particles.json")
    args = ap.parse_args(argv)
    quick = args.quick
    t_max = 1e4 if quick else 1e6
    budget = args.budget if args.budget is not None else (10.0 if quick else 300.0)
    run = Session("fastslow particle-limit benchmark", quick)
    mdl = model()
    rows, out = [], {"benchmark": "particles", "t_max": t_max, "rtol": RTOL, "atol": ATOL}

    # 1. small N, every method
    small = []
    for N in ((16,) if quick else (16, 64)):
        fsr = run_fastslow(mdl, N, t_max)
        entry = {"N": N, "fastslow": fsr, "scipy": {}}
        for meth in METHODS:
            sr = run_scipy(mdl, N, t_max, meth)
            err = _agree(fsr, sr)
            run.checker.check(f"N={N} {meth} against fastslow (max |diff| of a_i, m_i at t_max)", err, 1e-4)
            sr["max_diff"] = err
            entry["scipy"][meth] = sr
            print(f"N = {N:6d}  {meth:6s} {sr['seconds']:8.3f} s  {sr['nsteps']:6d} steps  "
                  f"vs fastslow {fsr['seconds']:.3f} s {fsr['nsteps']} steps  ratio {sr['seconds'] / fsr['seconds']:.1f}x"
                  f"  max diff {err:.1e}")
        small.append(entry)
    fastest = min(METHODS, key=lambda k: sum(e["scipy"][k]["seconds"] for e in small))
    print(f"SciPy's fastest at small N: {fastest}")
    rk = solve_ivp(_scipy_fun(mdl, particles(16)[2])[0], (0.0, 1e3), _y0(*particles(16)[:2]), method="RK45",
                   rtol=RTOL, atol=ATOL)
    print(f"RK45 (explicit), N = 16, to t = 1e3 only: {rk.t.size - 1} steps (the horizon is {t_max:g})")
    out.update(small=small, fastest=fastest, rk45_steps_to_1e3=int(rk.t.size - 1))

    # 2. the fastest SciPy method against N
    growth = []
    for N in ((16, 64) if quick else (16, 64, 256, 1024)):
        sr = run_scipy(mdl, N, t_max, fastest)
        fsr = run_fastslow(mdl, N, t_max)
        err = _agree(fsr, sr)
        run.checker.check(f"N={N} {fastest} against fastslow", err, 1e-4)
        growth.append({"N": N, "scipy_seconds": sr["seconds"], "scipy_steps": sr["nsteps"], "fastslow_seconds":
                       fsr["seconds"], "fastslow_steps": fsr["nsteps"], "ratio": sr["seconds"] / fsr["seconds"],
                       "max_diff": err})
        print(f"N = {N:6d}  {fastest} {sr['seconds']:8.2f} s, fastslow {fsr['seconds']:7.3f} s: "
              f"{sr['seconds'] / fsr['seconds']:.0f}x")
    Ns = np.array([g["N"] for g in growth], float)
    sec = np.array([g["scipy_seconds"] for g in growth])
    slope_scipy = float(np.polyfit(np.log(Ns[-2:]), np.log(sec[-2:]), 1)[0])
    out.update(scipy_growth=growth, scipy_growth_slope=slope_scipy)

    # 3. N = 10^4
    Nbig = 1000 if quick else 10_000
    big = run_fastslow(mdl, Nbig, t_max)
    print(f"N = {Nbig}: fastslow {big['seconds']:.1f} s ({big['nsteps']} steps, {big['nlu']} LU)")
    sb = run_scipy_budget(mdl, Nbig, t_max, fastest, budget)
    est = float(sec[-1] * (Nbig / Ns[-1]) ** slope_scipy)
    print(f"N = {Nbig}: SciPy {fastest} reached t = {sb['t_reached']:.3g} in {sb['seconds']:.0f} s "
          f"({sb['nsteps']} steps{', finished' if sb['finished'] else ''}); ESTIMATE to t_max: {est:.3g} s "
          f"(N^{slope_scipy:.2f} from N = {int(Ns[-2])}, {int(Ns[-1])})")
    big_out = {k: v for k, v in big.items() if k not in ("a_end", "m_end")}
    out.update(big={"fastslow": big_out, "scipy_budget": sb, "scipy_estimate_seconds": est,
                    "estimate_ratio": est / big["seconds"]})
    wl = f"N = {Nbig}, t = {t_max:g}"
    rows.append({"workload": wl, "implementation": "fastslow", "seconds": big["seconds"], "spread": "one run",
                 "ratio": 1.0})
    rows.append({"workload": wl, "implementation": f"SciPy {fastest} (ESTIMATE; t = {sb['t_reached']:.2g} in budget)",
                 "seconds": est, "spread": "extrapolated", "ratio": est / big["seconds"]})

    # 4. cost per step against N
    scal = []
    for N in ((100, 300, 1000) if quick else (100, 300, 1000, 3000, 10_000)):
        r = big if N == Nbig and t_max == 1e5 else run_fastslow(mdl, N, 1e5)
        scal.append({"N": N, "seconds": r["seconds"], "nsteps": r["nsteps"], "nlu": r["nlu"],
                     "per_step": r["seconds"] / r["nsteps"], "per_lu": r["seconds"] / max(r["nlu"], 1)})
    NN = np.array([s["N"] for s in scal], float)
    slope = float(np.polyfit(np.log(NN), np.log([s["per_step"] for s in scal]), 1)[0])
    slope_hi = float(np.polyfit(np.log(NN[-3:]), np.log([s["per_step"] for s in scal[-3:]]), 1)[0])
    print(render_table(["N", "steps", "LU", "s/step", "s/LU"],
                       [[s["N"], s["nsteps"], s["nlu"], f"{s['per_step']:.3g}", f"{s['per_lu']:.3g}"] for s in scal]))
    print(f"cost per step ~ N^{slope:.2f} over all N, N^{slope_hi:.2f} over the largest three")
    # a timing on a shared machine is not a pass/fail check: reported, not required
    run.checker.note(f"cost per step ~ N^{slope_hi:.2f} over the largest three N (linear: 1; dense LU: 3)")
    out.update(scaling=scal, scaling_slope=slope, scaling_slope_large=slope_hi)
    for sc_ in scal:
        rows.append({"workload": f"per step, N = {sc_['N']}", "implementation": "fastslow", "seconds": sc_["per_step"],
                     "spread": "one run", "ratio": None})
    return run.close(rows, out, args.json)


if __name__ == "__main__":
    sys.exit(main())
