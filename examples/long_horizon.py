"""SGD itself unlearns: the finite network trained past two half-lives of the limit (issue 17).

Tanh student, target h1 + 0.3 h3, lr_w = 1, lr_a = 0.1, a0 = 1, m0 = 0, d = n = 128, B = 1024,
dt = 0.05, 40,000 steps (t = 2000; the ODE's half-life is 840). SGD over seeds against the limit
ODE, the slow flow, the asymptotic law and the effective dynamics of the finite network
(``fastslow.solve_effective``), all from the same initial condition at the same times. The question
it answers: at t past two half-lives, is the drift of a below the ODE explained?

Usage::

    python examples/long_horizon.py [--seeds 0 1] [--cache DIR] [--out results/long_horizon] [--quick]

One seed takes about 15 minutes on an otherwise idle 2-core machine (float64, one thread); ``--cache DIR`` reads and
writes the SGD runs there (default ``OUT/sgd``), so a second run only redraws. ``--quick``: d = n = 32,
B = 256, dt = 0.2 (seconds). Writes ``table.md``, ``summary.json`` and ``long_horizon.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import fastslow as fs
from fastslow.studies import against_levels

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sgd_cache import sgd_runs  # noqa: E402

TARGET = {1: 1.0, 3: 0.3}
CASE = dict(lr_w=1.0, lr_a=0.1, a0=1.0, m0=0.0)
FULL = dict(d=128, n=128, batch=1024, dt=0.05)
QUICK = dict(d=32, n=32, batch=256, dt=0.2)
T_MAX = 2000.0
TIMES = (5, 15, 50, 100, 200, 500, 1000, 1500, 2000)


def record_steps(steps: int, dt: float) -> np.ndarray:
    """Every t = 1 up to t = 20, then 100 log-spaced records, and each of TIMES."""
    early = np.arange(0, int(round(20 / dt)) + 1, max(1, int(round(1 / dt))))
    late = np.round(np.geomspace(early[-1], steps, 100))
    marks = np.round(np.asarray(TIMES) / dt)
    rec = np.unique(np.concatenate([early, late, marks[marks <= steps], [steps]])).astype(np.int64)
    return rec


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--cache", type=Path, help="folder of cached SGD runs (default: OUT/sgd)")
    p.add_argument("--out", type=Path, default=Path("results/long_horizon"))
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    size = QUICK if args.quick else FULL
    steps = int(round(T_MAX / size["dt"]))
    if not args.quick and size["dt"] == 0.05:  # the record steps of the research runs (t = 0, 1, ..., 100, 110, ...)
        rec = np.unique(np.concatenate([np.arange(0, 2001, 20), np.arange(2000, steps + 1, 200)])).astype(np.int64)
    else:
        rec = record_steps(steps, size["dt"])
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.cache or args.out / "sgd"
    start = time.perf_counter()
    sgd = sgd_runs(args.seeds, target=TARGET, **CASE, **size, steps=steps, record=rec, cache=cache)
    t_sgd = time.perf_counter() - start
    model = fs.Model("tanh", TARGET, lr_w=CASE["lr_w"], lr_a=CASE["lr_a"])
    start = time.perf_counter()
    st = against_levels(model, sgd, a0=CASE["a0"], m0=CASE["m0"])
    t_levels = time.perf_counter() - start
    print(st)
    has_eff = st.effective is not None
    head = ["t", "SGD m (± SE)", "ODE m", "slow flow m", "law m"] + (["effective m"] if has_eff else []) + \
        ["SGD a (± SE)", "ODE a", "slow flow a", "law a"] + (["effective a", "SGD q_perp", "effective q_perp"]
                                                             if has_eff else ["SGD q_perp"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for tt in TIMES:
        r = st.at(tt)
        sg = r["sgd"]
        row = [f"{r['t']:g}", f"{sg['m']:.4f} ± {sg['m_se']:.4f}", f"{r['ode']['m']:.4f}",
               f"{r['slow_flow']['m']:.4f}" if "slow_flow" in r else "-", f"{r['law']['m']:.4f}" if "law" in r else "-"]
        row += [f"{r['effective']['m']:.4f}"] if has_eff else []
        row += [f"{sg['a']:.4f} ± {sg['a_se']:.4f}", f"{r['ode']['a']:.4f}",
                f"{r['slow_flow']['a']:.4f}" if "slow_flow" in r else "-", f"{r['law']['a']:.4f}" if "law" in r else "-"]
        row += ([f"{r['effective']['a']:.4f}", f"{sg['q_perp']:.4f}", f"{r['effective']['q_perp']:.4f}"] if has_eff
                else [f"{sg['q_perp']:.4f}"])
        lines.append("| " + " | ".join(row) + " |")
    end = st.at(float(st.t[-1]))
    sg = end["sgd"]
    summary = {"config": {"target": {str(k): v for k, v in TARGET.items()}, **CASE, **size, "steps": steps,
                          "seeds": args.seeds},
               "t_half_ode": st.t_half, "half_lives": st.half_lives, "t_end": end["t"], "sgd_end": sg,
               "levels_end": {k: v for k, v in end.items() if k not in ("t", "sgd")},
               "max_dev_t_ge_100": {k: dict(zip(("m", "a"), st.deviation(k, 100.0))) for k in st.levels()},
               "m_peak_sgd": float(st.m_mean.max()), "t_peak_sgd": float(st.t[int(np.argmax(st.m_mean))]),
               "seconds": {"sgd (or reading the cache)": t_sgd, "levels": t_levels}}
    drift = (end["ode"]["a"] - sg["a"]) / sg["a"]
    answer = [f"At t = {end['t']:g} ({st.half_lives:.2f} ODE half-lives): SGD a = {sg['a']:.4f} ± {sg['a_se']:.4f} "
              f"(SE over {len(args.seeds)} seeds), the ODE's a = {end['ode']['a']:.4f}: {100 * drift:.1f} % above SGD."]
    if has_eff:
        ea = end["effective"]["a"]
        z = abs(ea - sg["a"]) / sg["a_se"] if sg["a_se"] > 0 else float("nan")
        answer.append(f"The effective dynamics gives a = {ea:.4f}: {100 * (ea - sg['a']) / sg['a']:+.2f} % from SGD "
                      f"({z:.1f} SE), m = {end['effective']['m']:.4f} against SGD's {sg['m']:.4f} ± {sg['m_se']:.4f} "
                      f"(ODE {end['ode']['m']:.4f}).")
        share = (end["ode"]["a"] - ea) / (end["ode"]["a"] - sg["a"])
        answer.append(f"It accounts for {100 * share:.0f} % of the ODE's excess over SGD in a.")
        # which term does it: the effective dynamics with parts of it switched off (fastslow.effective.TERMS)
        abl = {}
        for terms in ("map", "width", "shrink", "no_feedback"):
            tr = fs.solve_effective(model, st.t, a0=CASE["a0"], m0=CASE["m0"], dt=size["dt"], d=size["d"],
                                    batch=size["batch"], n=size["n"], terms=terms, dense_output=False)
            abl[terms] = {"m": float(tr.m[-1]), "a": float(tr.a[-1])}
        abl["all"] = {"m": end["effective"]["m"], "a": ea}
        answer += ["", "| terms of the effective dynamics | m at the end | a at the end | a - a_SGD |", "|---|---|---|---|"]
        answer += [f"| {k} | {v['m']:.4f} | {v['a']:.4f} | {v['a'] - sg['a']:+.4f} |" for k, v in abl.items()]
        summary["terms_end"] = abl
        summary["drift_explained"] = {"ode_rel": drift, "effective_rel": (ea - sg["a"]) / sg["a"], "effective_z": z,
                                      "share_of_ode_excess": share}
        summary["effective_params"] = {k: v for k, v in st.effective.params.items() if isinstance(v, (int, float, str))}
    else:
        answer.append("This build of fastslow has no solve_effective: the effective dynamics is not compared.")
    table = "\n".join(lines + [""] + answer)
    print(table)
    (args.out / "table.md").write_text(table + "\n")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    fig = fs.plotting.long_horizon(st)
    fig.savefig(args.out / "long_horizon.png", dpi=110)
    print(f"SGD {t_sgd:.1f} s, levels {t_levels:.1f} s; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
