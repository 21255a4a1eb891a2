"""``fastslow._core.ode``: the Radau IIA (5) integrator."""

import numpy as np
import numpy.typing as npt

from .model import LimitModel

_F = npt.NDArray[np.float64]
_I = npt.NDArray[np.int64]

class Options:
    rtol: float
    atol: float
    max_steps: int
    first_step: float
    max_step: float
    fixed_step: float
    half_fraction: float
    store_dense: bool
    def __init__(self, *, rtol: float = 1e-8, atol: float = 1e-10, max_steps: int = 1000000, first_step: float = 0.0,
                 max_step: float = ..., fixed_step: float = 0.0, half_fraction: float = 0.5,
                 store_dense: bool = False) -> None: ...

class Solution:
    v: _F
    m: _F
    a: _F
    loss: _F
    status: int
    message: str
    nfev: int
    njev: int
    nlu: int
    nsteps: int
    nrejected: int
    t_reached: float
    t_peak: float
    m_peak: float
    t_half: float
    dense: _F

class BatchResult:
    n: int
    m: _F
    a: _F
    loss: _F
    status: npt.NDArray[np.int32]
    message: list[str]
    nfev: _I
    njev: _I
    nlu: _I
    nsteps: _I
    nrejected: _I
    t_peak: _F
    m_peak: _F
    t_half: _F
    interrupted: bool

def solve(model: LimitModel, m0: float, a0: float, t_eval: npt.ArrayLike, options: Options) -> Solution: ...
def solve_batch(models: list[LimitModel], m0: npt.ArrayLike, a0: npt.ArrayLike, t_eval: npt.ArrayLike,
                options: Options, threads: int) -> BatchResult: ...
def dense_evaluate(segments: npt.ArrayLike, t: npt.ArrayLike) -> _F: ...
