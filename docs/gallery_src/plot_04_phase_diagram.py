"""
The dichotomy over a parameter plane
====================================

Each cell integrates the limit ODE to a late time and classifies what the network does: keeps its
feature, or unlearns it with a growing second layer. Here the plane is the coefficient ``c3`` of
the target's third Hermite term against the initial second-layer weight ``a0``: the sign of
``c3`` decides (for a tanh student), and a larger ``a0`` delays unlearning (longer half-lives).
The star is the model the other gallery pages use.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastslow as fs
import fastslow.plotting

model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=0.1)
pd = fs.phase_diagram(model, ("c3", np.linspace(-0.5, 0.5, 41)), ("a0", np.geomspace(0.25, 4, 25)),
                      t_max=1e7)
print(pd)

fig, ax = plt.subplots(figsize=(7, 5), layout="constrained")
fs.plotting.phase_diagram(pd, ax, point=(0.3, 1.0))
plt.show()
