"""fastslow: feature learning and unlearning in two-layer networks under large-batch SGD.

A C++ core simulates the network and integrates its infinite-width limit, a stiff fast-slow ODE
for the alignment ``m`` and the second-layer weight ``a``; this package is its Python API.
"""

from ._blas import preload_openblas as _preload_openblas

_preload_openblas()

from .trajectory import LEVELS, Comparison, Status, Trajectory, compare  # noqa: E402
from .model import ACTIVATIONS, HermiteSeries, Model, hermite_series  # noqa: E402
from .ode import METHODS, DenseOutput, log_times, solve_ode, solve_ode_batch  # noqa: E402
from .sgd import OrderParameters, SGDTrainer, TrainingInterrupted, record_steps, train_sgd  # noqa: E402
from .checkpoint import load_checkpoint  # noqa: E402
from .analysis import (  # noqa: E402
    AsymptoticLaw,
    Branch,
    Classification,
    CriticalManifold,
    Equilibrium,
    Fold,
    ManifoldStructure,
    PhaseDiagram,
    SlowFlow,
    SlowFlowEvent,
    asymptotic_law,
    classify,
    classify_batch,
    critical_manifold,
    equilibria,
    manifold_structure,
    phase_diagram,
    solve_slow_flow,
)
from .config import Config, ConfigError, example_config, load_config, parse_config  # noqa: E402
from .experiment import RunResult, load, run  # noqa: E402
from .sweep import Axis, SweepError, SweepSpec, load_sweep_spec, open_sweep, sweep  # noqa: E402
try:
    from importlib.metadata import version as _version

    __version__ = _version("fastslow")
except Exception:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0+unknown"

__all__ = [
    "LEVELS", "Comparison", "Status", "Trajectory", "compare",
    "ACTIVATIONS", "HermiteSeries", "Model", "hermite_series",
    "METHODS", "DenseOutput", "log_times", "solve_ode", "solve_ode_batch",
    "OrderParameters", "SGDTrainer", "TrainingInterrupted", "record_steps", "train_sgd", "load_checkpoint",
    "AsymptoticLaw", "Branch", "Classification", "CriticalManifold", "Equilibrium", "Fold", "ManifoldStructure",
    "PhaseDiagram", "SlowFlow", "SlowFlowEvent", "asymptotic_law", "classify", "classify_batch", "critical_manifold",
    "equilibria", "manifold_structure", "phase_diagram", "solve_slow_flow",
    "Config", "ConfigError", "example_config", "load_config", "parse_config", "RunResult", "load", "run",
    "Axis", "SweepError", "SweepSpec", "load_sweep_spec", "open_sweep", "sweep",
    "__version__",
]
