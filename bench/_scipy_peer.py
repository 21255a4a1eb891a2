"""The SciPy peer of the limit-ODE benchmark: ``scipy.integrate.solve_ivp`` (Radau, BDF, LSODA) on the
pure-NumPy right-hand side :class:`fastslow.reference.LimitRHS`, in the coordinates fastslow
integrates in, ``y = (v, a)`` with ``v = artanh(m)``, at the same tolerances.

The tight reference every implementation is checked against is :func:`fastslow.reference.solve_ode`
(the same right-hand side, Radau at ``rtol = 1e-11``).
"""

from __future__ import annotations

import math
from typing import Any

import scipy
from scipy.integrate import solve_ivp

from fastslow.reference import LimitRHS

VERSION = scipy.__version__

#: The variants timed: label -> (method, pass the analytic Jacobian).
VARIANTS: dict[str, tuple[str, bool]] = {
    "Radau": ("Radau", True),
    "BDF": ("BDF", True),
    "LSODA (jac)": ("LSODA", True),
    "LSODA (no jac)": ("LSODA", False),
}


def rhs(model: Any) -> LimitRHS:
    """The reference right-hand side of ``model`` (its series and learning rates)."""
    return LimitRHS(model.s, model.c, model.lr_w, model.lr_a)


def solve(f: LimitRHS, method: str, use_jac: bool, *, a0: float, m0: float, t_max: float, rtol: float,
          atol: float) -> Any:
    """``solve_ivp`` from ``y0 = (artanh m0, a0)`` to ``t_max`` (no ``t_eval``: only the steps)."""
    kw = {"jac": f.jac} if use_jac else {}
    return solve_ivp(f, (0.0, t_max), [math.atanh(m0), a0], method=method, rtol=rtol, atol=atol, **kw)


def final_state(res: Any) -> tuple[float, float]:
    """``(m, a)`` at the last step of a :func:`solve` result."""
    return math.tanh(res.y[0, -1]), float(res.y[1, -1])
