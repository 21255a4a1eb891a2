"""Fast-slow analysis of the limit ODE: critical manifold, equilibria, asymptotic law, slow flow,
classification and phase diagrams.

One module per idea (re-exported here):

- :mod:`~fastslow.analysis.manifold`: the critical manifold ``dL/dm = 0``, its branches and folds,
  and the one branch solver;
- :mod:`~fastslow.analysis.equilibria`: fixed points of the full system and the Jacobian;
- :mod:`~fastslow.analysis.law`: the learning/unlearning verdict at the lazy end (a level of
  description: :meth:`AsymptoticLaw.trajectory`);
- :mod:`~fastslow.analysis.slow_flow`: the reduced flow on attracting branches (level ``"slow_flow"``);
- :mod:`~fastslow.analysis.classify`: what ODE trajectories do by a horizon (:class:`Thresholds`);
- :mod:`~fastslow.analysis.phase`: phase diagrams over any two named parameters;
- :mod:`~fastslow.analysis.groups`: the same lifted to a few particle groups (critical points,
  their fast stability, the slow flow with poles and jumps).
"""

from .classify import DEFAULT_THRESHOLDS, OUTCOMES, Classification, Thresholds, classify, classify_batch, \
    classify_trajectory
from .groups import GroupPoint, GroupSlowFlow, group_critical_points, solve_group_slow_flow
from .equilibria import Equilibrium, equilibria, jacobian
from .law import AsymptoticLaw, asymptotic_law
from .manifold import Branch, CriticalManifold, Fold, ManifoldStructure, branch_points, critical_manifold, \
    manifold_structure
from .phase import PhaseDiagram, phase_diagram
from .slow_flow import SlowFlowEvent, solve_slow_flow

__all__ = [
    "Branch", "Fold", "ManifoldStructure", "CriticalManifold", "manifold_structure", "critical_manifold",
    "branch_points",
    "Equilibrium", "jacobian", "equilibria",
    "AsymptoticLaw", "asymptotic_law",
    "SlowFlowEvent", "solve_slow_flow",
    "OUTCOMES", "Thresholds", "DEFAULT_THRESHOLDS", "Classification", "classify", "classify_batch",
    "classify_trajectory",
    "PhaseDiagram", "phase_diagram",
    "GroupPoint", "GroupSlowFlow", "group_critical_points", "solve_group_slow_flow",
]
