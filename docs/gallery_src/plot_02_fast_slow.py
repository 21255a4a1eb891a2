"""
Fast-slow: the slow flow and the asymptotic law against the full ODE
====================================================================

After the fast phase the state sits on the critical manifold, where ``dm/dt = 0``; the reduced
slow flow moves ``a`` along it, and the asymptotic law gives the power law it approaches. The
three levels of description return the same :class:`fastslow.Trajectory`, so
:func:`fastslow.compare` measures any two against each other.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastslow as fs

model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=0.1)
t = np.geomspace(1.0, 1e7, 300)
ode = fs.solve_ode(model, t, a0=1.0)
slow = fs.solve_slow_flow(model, t, a0=1.0, jump=True)  # jump at folds and poles
law = fs.asymptotic_law(model)
print(law)
pred = law.trajectory(t[t >= 1e3], a0=1.0, model=model)
print(fs.compare(ode, slow))  # dominated by the fast phase, which the slow flow skips
late = ode.t >= 1e3
print(f"after t = 1e3: max |m_ode - m_slow| = {np.abs(ode.m - slow.m)[late].max():.2e}, "
      f"max |a_ode / a_law - 1| = {np.abs(ode.a[late] / pred.a - 1).max():.2e}")

fig, (ax_m, ax_a) = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
for tr, style, label in [(ode, "-", "limit ODE"), (slow, "--", "slow flow"), (pred, ":", "asymptotic law")]:
    ax_m.loglog(tr.t, np.abs(tr.m), style, label=label)
    ax_a.loglog(tr.t, tr.a, style, label=label)
ax_m.set(xlabel="time t (ODE units)", ylabel="alignment |m|")
ax_a.set(xlabel="time t (ODE units)", ylabel="second-layer weight a")
ax_m.legend()
fig.suptitle("The full ODE, the slow flow on the critical manifold and the law")
plt.show()
