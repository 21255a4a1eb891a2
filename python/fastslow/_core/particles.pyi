"""``fastslow._core.particles``: the mean-field particle system and its Radau IIA (5) integrator."""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .model import LimitModel
from .ode import Options

_F = npt.NDArray[np.float64]
_I = npt.NDArray[np.int64]

class System:
    size: int
    rank: int
    orders: list[int]
    weights: _F
    def __init__(self, model: LimitModel, weights: npt.ArrayLike) -> None: ...
    def residuals(self, y: npt.ArrayLike) -> _F: ...
    def loss(self, y: npt.ArrayLike) -> float: ...
    def rhs(self, y: npt.ArrayLike) -> _F: ...
    def jacobian(self, y: npt.ArrayLike) -> tuple[_F, _F, _F]: ...

class Solution:
    N: int
    v: _F
    a: _F
    m_mean: _F
    a_mean: _F
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
    dense: tuple[_F, _F, _F, _F] | None

class BatchResult:
    n: int
    N: int
    v: _F
    a: _F
    m_mean: _F
    a_mean: _F
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

def working_bytes(N: int, rank: int) -> float: ...
def solve(system: System, y0: npt.ArrayLike, t_eval: npt.ArrayLike, options: Options) -> Solution: ...
def solve_batch(models: Sequence[LimitModel], weights: npt.ArrayLike, y0: npt.ArrayLike, N: int, t_eval: npt.ArrayLike,
                options: Options, threads: int) -> BatchResult: ...
