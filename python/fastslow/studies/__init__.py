"""Studies that compose several levels of description over long horizons or grids (the study
layer beside :mod:`fastslow.study`):

* :func:`long_horizon`: the finite network trained past two half-lives of the limit, over seeds,
  against the ODE, the slow flow, the asymptotic law and the effective dynamics;
* :func:`deviation_against_dt`: SGD against the ODE as the step ``dt`` shrinks at fixed ``dt d / B``;
* :func:`validity_cell`, :func:`validity_criteria`: the validity map of the effective dynamics.
"""

from __future__ import annotations

from .long_horizon import LongHorizonStudy, against_levels, long_horizon
from .step_size import deviation_against_dt
from .validity import ValidityCell, validity_cell, validity_criteria

__all__ = ["LongHorizonStudy", "long_horizon", "against_levels", "deviation_against_dt", "ValidityCell", "validity_cell",
           "validity_criteria"]
