"""The fast-slow analysis, checked against the full ODE: the studies behind issue 4.

Writes to ``examples/figures/`` (PNG) and prints the tables quoted in ``examples/README.md``:

1. Phase portrait: the critical manifold (attracting solid, repelling dashed, folds), equilibria and
   full trajectories in ``(m, a)``.
2. Tikhonov/Fenichel: max deviation of the full ODE from the slow flow against ``eps = lr_a / lr_w``
   (slope ~ 1).
3. The asymptotic law against the full ODE at ``t = 1e7 ... 1e9`` (the theory page's table and more).
4. Insight 1: the sign of the primary nonlinear coefficient decides, its strength sets the rate.
5. Insight 2: a larger initial second-layer scale delays unlearning (half-life against ``a0``).
6. A phase diagram over the ``h3`` coefficient and ``a0``.

Usage::

    python examples/fast_slow.py [--out DIR] [--quick]

Needs matplotlib (``pip install matplotlib``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fastslow as fs  # noqa: E402

LR_A = 0.01


def phase_portrait(out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, (title, model) in zip(axes, [
            ("tanh student, target h1 + 0.3 h3 (unlearning)", fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=LR_A)),
            ("polynomial student with a fold", fs.Model({"hermite": [0, 1, 0.5, 1.0]}, {1: -1.0, 2: 0.5, 3: 0.5},
                                                        lr_a=LR_A))]):
        a = np.linspace(-6, 6, 4001)
        a = a[a != 0]
        cm = fs.critical_manifold(model, a)
        for b in range(cm.m.shape[1]):
            for att, style in ((True, "-"), (False, "--")):
                mm = np.where(cm.attracting[:, b] == att, cm.m[:, b], np.nan)
                ax.plot(mm, a, style, color="C0" if att else "C3", lw=1.8,
                        label="attracting" if att else "repelling")
        for f in cm.folds:
            ax.plot(f.m, f.a, "ks", ms=6, label="fold")
        for e in fs.equilibria(model):
            ax.plot(e.m, e.a, "o", color="k" if e.stable else "w", mec="k", ms=7)
        for a0 in (0.5, 1.0, 2.0, 4.0):
            tr = fs.solve_ode(model, fs.log_times(1e5, 400), a0=a0, m0=0.0)
            ax.plot(tr.m, tr.a, color="0.5", lw=0.8)
        ax.set_xlim(-1, 1)
        ax.set_ylim(-6, 6)
        ax.set_xlabel("alignment m (dimensionless)")
        ax.set_ylabel("second-layer weight a (dimensionless)")
        ax.set_title(title, fontsize=10)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=8, loc="lower left")
    fig.suptitle("Critical manifold dL/dm = 0 (blue: attracting, red dashed: repelling), equilibria "
                 "(filled: stable), trajectories (grey, lr_a/lr_w = 0.01)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "phase_portrait.png", dpi=120)
    plt.close(fig)


def fenichel(out: Path) -> dict:
    epss = np.array([1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4])
    dev_m, dev_a = [], []
    for eps in epss:
        model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=eps)
        t = np.concatenate([[0.0], np.geomspace(0.5, 50, 60) / eps])
        sf = fs.solve_slow_flow(model, t, a0=2.0, m0=0.0)
        tr = fs.solve_ode(model, t, a0=2.0, m0=0.0, rtol=1e-10, atol=1e-12)
        dev_m.append(float(np.max(np.abs(tr.m[1:] - sf.m[1:]))))
        dev_a.append(float(np.max(np.abs(tr.a[1:] - sf.a[1:]))))
    sm = float(np.polyfit(np.log10(epss), np.log10(dev_m), 1)[0])
    sa = float(np.polyfit(np.log10(epss), np.log10(dev_a), 1)[0])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.loglog(epss, dev_m, "o-", label=f"max |m - m_slow| (slope {sm:.3f})")
    ax.loglog(epss, dev_a, "s-", label=f"max |a - a_slow| (slope {sa:.3f})")
    ax.loglog(epss, epss * dev_m[0] / epss[0], "k:", label="slope 1")
    ax.set_xlabel("eps = lr_a / lr_w")
    ax.set_ylabel("max deviation over slow time 0.5 ... 50")
    ax.set_title("Full ODE against the slow flow (tanh, h1 + 0.3 h3, a0 = 2)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fenichel.png", dpi=120)
    plt.close(fig)
    print("\nFenichel: eps, max|dm|, max|da|")
    for e, x, y in zip(epss, dev_m, dev_a):
        print(f"  {e:8.0e}  {x:.3e}  {y:.3e}")
    print(f"  slopes: m {sm:.3f}, a {sa:.3f}")
    return {"eps": epss.tolist(), "dev_m": dev_m, "dev_a": dev_a, "slope_m": sm, "slope_a": sa}


LAW_CONFIGS = [
    ("tanh", {1: 1.0}, {}),
    ("tanh", {1: 1.0, 3: 0.3}, {}),
    ("gelu", {1: 1.0, 2: -0.4}, {"centred": True}),
    ("gelu", {1: 1.0, 2: 0.4}, {"centred": True}),
    ("erf", {1: 1.0, 3: 0.3}, {}),
    ("relu", {1: 1.0, 2: -0.4}, {"centred": True}),
    ({"hermite": [0, 1, 0.5, -0.2]}, {1: 1.0, 2: -0.6, 3: 0.3}, {}),
    ("gelu", {1: 1.0, 2: -0.4}, {}),
    ("tanh", {1: 1.0, 5: 0.3}, {}),
    ({"hermite": [0, 1, 0.3, -0.2]}, {1: 1.0, 2: -0.3, 3: 0.2}, {}),
]


def law_table() -> list[dict]:
    t = np.array([0.0, 1e7, 1e8, 1e9])
    rows = []
    print("\nAsymptotic law against the ODE (a0 = 1, m0 = 0, lr_a/lr_w = 0.01)")
    print("| student | target | verdict | law | a(1e7) law / ODE | rel. error 1e7, 1e8, 1e9 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for act, tgt, kw in LAW_CONFIGS:
        model = fs.Model(act, tgt, lr_a=LR_A, **kw)
        law = fs.asymptotic_law(model)
        tr = fs.solve_ode(model, t, a0=1.0, m0=0.0)
        pred = law.predict_a(t[1:], a0=1.0)
        err = np.abs(pred / tr.a[1:] - 1)
        name = (act if isinstance(act, str) else f"poly {act['hermite']}") + (" (centred)" if kw.get("centred") else "")
        tname = " + ".join(f"{v:g} h{k}" for k, v in tgt.items())
        desc = (f"{law.kind}, order {law.order}: a ~ t^(1/{law.power + 1})" if law.verdict == "unlearning"
                else f"{law.kind}: a -> {law.a_limit:.4f}, m -> {law.m_limit:.4f}")
        print(f"| {name} | {tname} | {law.verdict} | {desc} | {pred[0]:.4f} / {tr.a[1]:.4f} | "
              f"{err[0]:.1e}, {err[1]:.1e}, {err[2]:.1e} |")
        rows.append({"student": name, "target": tname, "verdict": law.verdict, "law": desc,
                     "pred": pred.tolist(), "ode": tr.a[1:].tolist(), "err": err.tolist()})
    return rows


def insight_sign(out: Path) -> dict:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    t = fs.log_times(1e8, 300)
    res = {}
    for ax, (label, make, _k_nl) in zip(axes, [
            ("centred GELU, target h1 + kappa h2", lambda k: fs.Model("gelu", {1: 1.0, 2: k}, lr_a=LR_A, centred=True), 2),
            ("tanh, target h1 + kappa h3", lambda k: fs.Model("tanh", {1: 1.0, 3: k}, lr_a=LR_A), 3)]):
        res[label] = []
        for i, kappa in enumerate([-0.4, -0.2, -0.1, 0.1, 0.2, 0.4]):
            model = make(kappa)
            tr = fs.solve_ode(model, t, a0=1.0, m0=0.0)
            law = fs.asymptotic_law(model)
            ax.semilogx(t[1:], tr.m[1:], color=plt.cm.coolwarm(i / 5), label=f"kappa = {kappa:+.1f}: {law.verdict}")
            res[label].append({"kappa": kappa, "verdict": law.verdict, "D": law.D, "m_1e6": float(np.interp(1e6, t, tr.m)),
                               "m_1e8": float(tr.m[-1])})
        ax.set_xlabel("t (ODE time, lr_w = 1)")
        ax.set_ylabel("alignment m")
        ax.set_title(label, fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle("Insight 1: the sign of the primary nonlinear term decides (learning vs unlearning), its "
                 "strength sets the rate (a0 = 1, lr_a/lr_w = 0.01)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "insight_sign.png", dpi=120)
    plt.close(fig)
    print("\nInsight 1 (a0 = 1): kappa, verdict, D, m(1e6), m(1e8)")
    for label, rows in res.items():
        print(" ", label)
        for r in rows:
            print(f"    {r['kappa']:+.1f}  {r['verdict']:10s}  D = {r['D']:+.4f}  m(1e6) = {r['m_1e6']:.4f}  "
                  f"m(1e8) = {r['m_1e8']:.4f}")
    return res


def insight_a0(out: Path) -> dict:
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=LR_A)
    a0s = np.geomspace(0.1, 8.0, 40)
    bt = fs.solve_ode_batch(model, [0.0, 1e9], a0=a0s, m0=0.0)
    fig, ax1 = plt.subplots(figsize=(6, 4))
    ax1.loglog(a0s, bt.t_half, "o-", color="C0", label="half-life (m falls to half its peak)")
    ax1.set_xlabel("initial second-layer weight a0")
    ax1.set_ylabel("half-life t_1/2 (ODE time)", color="C0")
    ax2 = ax1.twinx()
    ax2.semilogx(a0s, bt.m_peak, "s--", color="C1", ms=3, label="peak alignment")
    ax2.set_ylabel("peak alignment m_peak", color="C1")
    ax1.set_title("Insight 2: a larger a0 delays unlearning (tanh, h1 + 0.3 h3); below a0 ~ 1 m saturates "
                  "near the pole", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "insight_a0.png", dpi=120)
    plt.close(fig)
    sel = [0.25, 0.5, 1.0, 2.0, 4.0]
    bt2 = fs.solve_ode_batch(model, [0.0, 1e9], a0=np.array(sel), m0=0.0)
    print("\nInsight 2 (tanh, h1 + 0.3 h3): a0, half-life, peak alignment")
    for a0, th, mp in zip(sel, bt2.t_half, bt2.m_peak):
        print(f"  {a0:5.2f}  {th:10.4g}  {mp:.4f}")
    return {"a0": sel, "t_half": bt2.t_half.tolist(), "m_peak": bt2.m_peak.tolist()}


def phase(out: Path, n: int) -> dict:
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=LR_A)
    pd = fs.phase_diagram(model, ("c3", np.linspace(-0.5, 0.5, n)), ("a0", np.geomspace(0.25, 4.0, n)), t_max=1e7)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    codes = {"learning": 0, "lazy": 1, "unlearning": 2, "undetermined": 3, "failed": 4}
    img = np.vectorize(codes.get)(pd.outcome).astype(float)
    ext = [pd.x[0], pd.x[-1], np.log10(pd.y[0]), np.log10(pd.y[-1])]
    im = axes[0].imshow(img, origin="lower", aspect="auto", extent=ext, cmap="viridis", vmin=0, vmax=4)
    axes[0].set_title("outcome by t = 1e7 (0 learning, 2 unlearning, 3 undetermined)", fontsize=9)
    fig.colorbar(im, ax=axes[0])
    im2 = axes[1].imshow(np.log10(pd.t_half), origin="lower", aspect="auto", extent=ext, cmap="magma")
    axes[1].set_title("log10 half-life (blank: m never halves)", fontsize=9)
    fig.colorbar(im2, ax=axes[1])
    for ax in axes:
        ax.set_xlabel("target coefficient c3 (kappa)")
        ax.set_ylabel("log10 a0")
    fig.suptitle(f"Phase diagram, tanh student, {n} x {n} trajectories in {pd.seconds:.1f} s", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "phase_diagram.png", dpi=120)
    plt.close(fig)
    print(f"\nPhase diagram {n} x {n}: {pd.seconds:.2f} s")
    return {"n": n, "seconds": pd.seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results/fast_slow"),
                    help="where the figures and the JSON go (default results/fast_slow; the committed copies are in examples/figures)")
    ap.add_argument("--quick", action="store_true", help="a 50 x 50 phase diagram instead of 200 x 200")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    phase_portrait(args.out)
    res = {"fenichel": fenichel(args.out), "law": law_table(), "insight_sign": insight_sign(args.out),
           "insight_a0": insight_a0(args.out), "phase_diagram": phase(args.out, 50 if args.quick else 200)}
    with open(args.out / "fast_slow.json", "w", encoding="utf-8") as fh:
        json.dump(res, fh, indent=1, default=float)
    print(f"\nfigures and fast_slow.json written to {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
