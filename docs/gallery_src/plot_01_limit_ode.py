"""
The limit ODE: a feature learned, then unlearned
================================================

The two-dimensional limit of the network (alignment ``m`` of the first layer, second-layer weight
``a``) for a tanh student and the target ``h1 + 0.3 h3``. ``m`` rises in the fast phase, then falls
along the critical manifold while ``a`` grows: the network trades its feature for a large second
layer. Both axes are logarithmic in time because the late phase is a power law.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastslow as fs

model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=0.1)
t = np.geomspace(1e-2, 1e6, 400)
ode = fs.solve_ode(model, t, a0=1.0, m0=0.0)
print(ode)

fig, (ax_m, ax_a) = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
ax_m.semilogx(ode.t, ode.m)
ax_m.set(xlabel="time t (ODE units)", ylabel="alignment m", title="first layer")
ax_a.loglog(ode.t, ode.a)
ax_a.set(xlabel="time t (ODE units)", ylabel="second-layer weight a", title="second layer")
fig.suptitle("Limit ODE, tanh student, target h1 + 0.3 h3, lr_w = 1, lr_a = 0.1, a0 = 1")
plt.show()
