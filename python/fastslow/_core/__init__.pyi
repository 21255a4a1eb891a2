"""Type stubs of the private compiled module ``fastslow._core`` (C++ core, pybind11): one submodule
per concept, as the C++ bindings are split (cpp/bindings/register_*.cpp)."""

from . import _testing as _testing
from . import hermite as hermite
from . import model as model
from . import ode as ode
from . import particles as particles
from . import runtime as runtime
from . import effective as effective
from . import sgd as sgd
