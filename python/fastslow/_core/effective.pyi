"""``fastslow._core.effective``: the effective map of the finite network (cpp/effective)."""

import numpy as np
import numpy.typing as npt

from .sgd import Function

_F = npt.NDArray[np.float64]
_I = npt.NDArray[np.int64]

class Terms:
    noise: bool
    collective: bool
    feedback: bool
    def __init__(self, *, noise: bool = True, collective: bool = True, feedback: bool = True) -> None: ...

class EffectiveMap:
    second_moment: float
    def __init__(self, *, s: npt.ArrayLike, c: npt.ArrayLike, s_tail: float, c_tail: float, activation: Function,
                 lr_w: float, lr_a: float, noise: float, nodes: int = 24) -> None: ...
    def series(self, x: float) -> tuple[float, float, float, float, float, float]: ...
    def noise_terms(self, m: float, a: float, Q: float, n: float) -> tuple[float, float]: ...
    def step(self, m: float, a: float, Q: float, dt: float, ratio: float, n: float,
             terms: Terms) -> tuple[float, float, float]: ...
    def loss(self, m: float, a: float, Q: float, n: float, terms: Terms) -> float: ...

class Trajectory:
    m: _F
    a: _F
    loss: _F
    q_perp: _F
    t_steps: _F
    m_steps: _F
    a_steps: _F
    loss_steps: _F
    q_steps: _F
    steps: int
    t_end: float
    status: int
    message: str

class BatchResult:
    n: int
    m: _F
    a: _F
    loss: _F
    q_perp: _F
    steps: _I
    status: npt.NDArray[np.int32]
    message: list[str]
    interrupted: bool

def iterate(map: EffectiveMap, m0: float, a0: float, q0: float, t_eval: _F, dt: float, schedule: _F, ratio: float,
            n: float, terms: Terms, store_steps: bool, max_steps: int = 10000000) -> Trajectory: ...
def iterate_batch(map: EffectiveMap, m0: _F, a0: _F, dt: _F, n: _F, ratio: _F, terms: Terms, t_eval: _F,
                  threads: int, max_steps: int = 10000000) -> BatchResult: ...
