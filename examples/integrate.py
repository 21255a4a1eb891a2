"""Integrate the limit ODE for one configuration and print the trajectory and what it does.

Usage::

    python examples/integrate.py                        # tanh student, target h1 + 0.3 h3
    python examples/integrate.py --activation gelu --centred --target "1:1,2:0.4"
    python examples/integrate.py --lr-a 1e-4 --a0 2 --t-max 1e9

The verdict printed first is measured on the trajectory itself (late-time log-log slopes of
``a`` and ``m``, or convergence); then the fast-slow analysis predicts it from the model alone
(``fastslow.asymptotic_law``, ``fastslow.equilibria``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

import fastslow as fs


def parse_target(text: str) -> dict[int, float]:
    """``"1:1,3:0.3"`` -> ``{1: 1.0, 3: 0.3}``."""
    out: dict[int, float] = {}
    for item in text.split(","):
        try:
            k, v = item.split(":")
            out[int(k)] = float(v)
        except ValueError:
            raise SystemExit(f"--target: expected 'order:coefficient' pairs such as '1:1,3:0.3', got {text!r}") from None
    return out


def late_slope(t: np.ndarray, x: np.ndarray, decades: float = 1.0) -> float:
    """d log|x| / d log t over the last ``decades`` of the run."""
    sel = t >= t[-1] / 10**decades
    return float(np.polyfit(np.log(t[sel]), np.log(np.abs(x[sel])), 1)[0])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--activation", default="tanh", help=f"one of {', '.join(fs.ACTIVATIONS)}")
    p.add_argument("--centred", action="store_true", help="remove the activation's constant coefficient")
    p.add_argument("--target", default="1:1,3:0.3", help="Hermite coefficients of the target, 'k:c_k,...'")
    p.add_argument("--lr-w", type=float, default=1.0)
    p.add_argument("--lr-a", type=float, default=0.01)
    p.add_argument("--a0", type=float, default=1.0)
    p.add_argument("--m0", type=float, default=0.0)
    p.add_argument("--t-max", type=float, default=1e7)
    p.add_argument("--points", type=int, default=25, help="save points printed (log-spaced)")
    p.add_argument("--rtol", type=float, default=1e-8)
    args = p.parse_args(argv)

    try:
        model = fs.Model(args.activation, parse_target(args.target), lr_w=args.lr_w, lr_a=args.lr_a,
                         centred=args.centred)
        t = fs.log_times(args.t_max, 400, t_min=min(1e-2, args.t_max))
        t0 = time.perf_counter()
        tr = fs.solve_ode(model, t, a0=args.a0, m0=args.m0, rtol=args.rtol)
        elapsed = time.perf_counter() - t0
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    print(model)
    print(f"a0 = {args.a0:g}, m0 = {args.m0:g}, eps = lr_a/lr_w = {model.eps:g}, t_max = {args.t_max:g}")
    print(f"integrated in {elapsed * 1e3:.2f} ms: {tr.nsteps} steps, {tr.nrejected} rejected, "
          f"{tr.nfev} right-hand sides; status {tr.status} ({tr.message})\n")
    show = np.unique(np.linspace(0, t.size - 1, args.points).round().astype(int))
    print(f"{'t':>12} {'m':>12} {'a':>12} {'loss':>12}")
    for i in show:
        print(f"{t[i]:12.4g} {tr.m[i]:12.6f} {tr.a[i]:12.6f} {tr.loss[i]:12.4e}")
    if not tr.success:
        print("\nverdict: integration failed:", tr.message)
        return 1

    print(f"\npeak alignment m = {tr.m_peak:.6f} at t = {tr.t_peak:.6g}")
    if math.isfinite(tr.t_half):
        print(f"half-life: m falls to m_peak / 2 at t = {tr.t_half:.6g}")
    else:
        print("half-life: m does not fall to half its peak before t_max")
    sa, sm = late_slope(t, tr.a), late_slope(t, tr.m)
    rel_change = abs(tr.a[-1] - tr.a[np.searchsorted(t, t[-1] / 10)]) / abs(tr.a[-1])
    if sa > 0.02 and sm < -0.02:
        print(f"verdict: UNLEARNING - over the last decade a ~ t^{sa:.3f}, m ~ t^{sm:.3f} "
              f"(a power law 1/(q+1) with q = {1 / sa - 1:.2f})")
    elif rel_change < 1e-6:
        print(f"verdict: LEARNING - converged to m = {tr.m[-1]:.6f}, a = {tr.a[-1]:.6f} "
              f"(loss {tr.loss[-1]:.3e})")
    else:
        print(f"verdict: still moving at t_max (last decade: a ~ t^{sa:.3f}, m ~ t^{sm:.3f}); integrate longer")

    # What the fast-slow analysis predicts from the model alone (theory page section 4).
    law = fs.asymptotic_law(model)
    print(f"\nfast-slow analysis: {law.verdict} ({law.reason})")
    if law.verdict == "unlearning":
        print(f"  law: a ~ t^{law.exponent:.4f}, m ~ t^-{law.exponent:.4f}; predicted a(t_max) = "
              f"{float(law.predict_a(t[-1], a0=args.a0)):.6f} (ODE: {tr.a[-1]:.6f})")
    elif law.verdict in ("learning", "pinned") and np.isfinite(law.a_limit):
        print(f"  the slow flow from the lazy end settles at m = {law.m_limit:.6f}, a = {law.a_limit:.6f}")
    for e in fs.equilibria(model):
        if e.stable:
            print(f"  stable equilibrium ({e.kind}): m = {e.m:.6f}, a = {e.a:.6f}, loss {e.loss:.3e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
