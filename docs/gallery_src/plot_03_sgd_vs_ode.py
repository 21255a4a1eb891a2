"""
The finite network under SGD against its limit
===============================================

A small network (``d = n = 64``, batch 512, step 0.05) trained by SGD in the C++ core, against the
limit ODE at the same times. The shaded band is the spread of the neurons' alignments ``m_i``
(one standard deviation), the line their mean.
"""

import matplotlib.pyplot as plt

import fastslow as fs

model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=0.1)
sgd = fs.train_sgd(model, d=64, n=64, batch=512, dt=0.05, steps=400, a0=1.0, seed=1, progress=False)
ode = fs.solve_ode(model, sgd.t, a0=1.0)
print(fs.compare(sgd, ode))

m_std = sgd.series["m_std"]
fig, ax = plt.subplots(figsize=(6, 3.6), constrained_layout=True)
ax.fill_between(sgd.t, sgd.m - m_std, sgd.m + m_std, alpha=0.3, label="SGD, neuron spread")
ax.plot(sgd.t, sgd.m, label="SGD, mean over neurons")
ax.plot(ode.t, ode.m, "k--", label="limit ODE")
ax.set(xscale="log", xlabel="time t = steps x dt", ylabel="alignment m")
ax.legend()
plt.show()
