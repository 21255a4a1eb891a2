"""fastslow: feature learning and unlearning in two-layer networks under large-batch SGD.

A C++ core simulates the network and integrates its limits, a stiff fast-slow ODE for the
alignment ``m`` and the second-layer weight ``a`` among them; this package is its Python API.
Every level of description (SGD, the limit ODE, the particle limit, the slow flow, the asymptotic law) returns a
:class:`Trajectory`, and :func:`compare` takes any two.

The public names are loaded on first use (``fastslow.solve_ode`` imports :mod:`fastslow.ode`), so
``import fastslow`` and the ``fastslow`` command start in milliseconds and a Ctrl-C during start-up
is caught by the command like any other.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from ._blas import preload_openblas as _preload_openblas

_preload_openblas()

from ._version import __version__  # noqa: E402

#: Each public name and the module that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["LEVELS", "Comparison", "Status", "Trajectory", "compare"], "trajectory"),
    **dict.fromkeys(["ACTIVATIONS", "HermiteSeries", "Model", "hermite_series"], "model"),
    **dict.fromkeys(["METHODS", "DenseOutput", "log_times", "solve_ode", "solve_ode_batch"], "ode"),
    **dict.fromkeys(["OrderParameters", "SGDTrainer", "TrainingInterrupted", "record_steps", "train_sgd"], "sgd"),
    **dict.fromkeys(["TERMS", "solve_effective", "solve_effective_batch"], "effective"),
    **dict.fromkeys(["StepSchedule", "fast_eigenvalue", "stable_schedule"], "stability"),
    **dict.fromkeys(["ParticleDenseOutput", "particle_moments", "solve_particles", "solve_particles_batch"],
                    "particles"),
    "InitialLaw": "initial",
    **dict.fromkeys(["cloud_distance", "sliced_wasserstein"], "clouds"),
    "load_checkpoint": "checkpoint",
    **dict.fromkeys(["AsymptoticLaw", "Branch", "Classification", "CriticalManifold", "Equilibrium", "Fold",
                     "ManifoldStructure", "PhaseDiagram", "SlowFlowEvent", "Thresholds", "asymptotic_law", "classify",
                     "classify_batch", "critical_manifold", "equilibria", "manifold_structure", "phase_diagram",
                     "solve_slow_flow"], "analysis"),
    **dict.fromkeys(["Config", "ConfigError", "example_config", "load_config", "parse_config"], "config"),
    **dict.fromkeys(["RunResult", "load", "run"], "experiment"),
    **dict.fromkeys(["Axis", "SweepError", "SweepSpec", "load_sweep_spec", "open_sweep"], "sweep"),
}

__all__ = [*_EXPORTS, "sweep", "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value
        return value
    try:  # a submodule (fastslow.params, fastslow._core, ...)
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module 'fastslow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """``fastslow.sweep`` is the function :func:`fastslow.sweep.sweep`, although ``fastslow.sweep``
    is also a subpackage (whose first import would otherwise put the module in its place)."""

    @property
    def sweep(self) -> Any:
        from .sweep import sweep

        return sweep

    @sweep.setter
    def sweep(self, value: Any) -> None:  # the import system binds the subpackage here: keep the function
        pass


sys.modules[__name__].__class__ = _Package

if TYPE_CHECKING:  # the names as type checkers and IDEs see them
    from .analysis import (AsymptoticLaw, Branch, Classification, CriticalManifold, Equilibrium, Fold,
                           ManifoldStructure, PhaseDiagram, SlowFlowEvent, Thresholds, asymptotic_law,
                           classify_batch, critical_manifold, manifold_structure, phase_diagram, solve_slow_flow)
    # from their modules: in fastslow.analysis these two names are also submodules
    from .analysis.classify import classify
    from .analysis.equilibria import equilibria
    from .checkpoint import load_checkpoint
    from .config import Config, ConfigError, example_config, load_config, parse_config
    from .effective import TERMS, solve_effective, solve_effective_batch
    from .experiment import RunResult, load, run
    from .model import ACTIVATIONS, HermiteSeries, Model, hermite_series
    from .clouds import cloud_distance, sliced_wasserstein
    from .initial import InitialLaw
    from .ode import METHODS, DenseOutput, log_times, solve_ode, solve_ode_batch
    from .particles import ParticleDenseOutput, particle_moments, solve_particles, solve_particles_batch
    from .sgd import OrderParameters, SGDTrainer, TrainingInterrupted, record_steps, train_sgd
    from .stability import StepSchedule, fast_eigenvalue, stable_schedule
    from .sweep import Axis, SweepError, SweepSpec, load_sweep_spec, open_sweep, sweep
    from .trajectory import LEVELS, Comparison, Status, Trajectory, compare
