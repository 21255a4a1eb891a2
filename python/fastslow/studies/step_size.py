"""SGD against the limit ODE as the step shrinks: the effect that dominates at large batch.

SGD is an explicit Euler method of the limit flow with an ``O(dt)`` bias; the batch noise enters
through ``dt d / B``. :func:`deviation_against_dt` varies ``dt`` with ``dt d / B`` held fixed
(``B`` grows as ``1/dt``), so the cost of a run does not depend on ``dt`` and only the step bias
changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import _validate as V
from ..model import Model, as_model
from ..study import DeviationStudy, loglog_slope, sgd_against_ode

__all__ = ["deviation_against_dt"]


def deviation_against_dt(model: Model, *, dts: Sequence[float] = (0.2, 0.1, 0.05, 0.025), a0: float, m0: float = 0.0,
                         d: int = 128, n: int | None = None, noise: float = 0.00625, t_max: float = 10.0,
                         seeds: Sequence[int] = (0, 1, 2), record: int = 41, dtype: str = "float32") -> DeviationStudy:
    """Largest deviation over ``t <= t_max`` of SGD from the ODE, per seed, as ``dt`` varies.

    Parameters
    ----------
    model : Model
    dts : sequence of float
        The steps (ODE time), each > 0.
    a0, m0 : float
    d, n : int
        Input dimension and width (``n = d`` by default).
    noise : float
        ``dt d / B``, held fixed: ``B = round(dt d / noise)``.
    t_max : float
        The horizon of every run (``steps = round(t_max / dt)``).
    seeds : sequence of int
    record : int
        Linear record points.
    dtype : {"float32", "float64"}

    Returns
    -------
    DeviationStudy
        ``varied = "dt"``; ``max_dm``, ``max_da``: mean over seeds of each seed's largest
        ``|m_SGD - m_ODE|``, ``|a_SGD - a_ODE|``; ``stderr_*``: their standard errors over seeds;
        ``slope_dm``: the log-log slope of ``max_dm`` against ``dt`` (an ``O(dt)`` bias: 1).
    """
    model = as_model(model)
    dt_arr = V.real_array(dts, "dts", ndim=1, nonempty=True)
    if np.any(dt_arr <= 0):
        raise ValueError("dts: every step must be > 0")
    noise = V.real(noise, "noise", lo=0.0, lo_open=True, hi=1e6)
    t_max = V.real(t_max, "t_max", lo=0.0, lo_open=True, hi=1e6)
    n = d if n is None else n
    dm, da, sdm, sda = [], [], [], []
    for dt in dt_arr:
        batch = max(1, int(round(float(dt) * d / noise)))
        steps = max(1, int(round(t_max / float(dt))))
        st = sgd_against_ode(model, d=d, n=n, batch=batch, dt=float(dt), steps=steps, a0=a0, m0=m0, seeds=seeds,
                             dtype=dtype, record=min(record, steps + 1))
        k = len(st.seeds)
        dm.append(float(np.mean(st.max_dm)))
        da.append(float(np.mean(st.max_da)))
        sdm.append(float(np.std(st.max_dm, ddof=1) / math.sqrt(k)) if k > 1 else math.nan)
        sda.append(float(np.std(st.max_da, ddof=1) / math.sqrt(k)) if k > 1 else math.nan)
    return DeviationStudy(varied="dt", values=dt_arr, max_dm=np.array(dm), max_da=np.array(da),
                          stderr_dm=np.array(sdm), stderr_da=np.array(sda), slope_dm=loglog_slope(dt_arr, dm))
