"""The validity map of a model of SGD: per cell of ``(B / d, dt)``, how far SGD's seed mean is from
the model (the effective dynamics) and from the plain limit ODE, against the seed-to-seed
standard error; and the criteria of issue 17 counted over the cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .long_horizon import seed_mean, seed_stderr

__all__ = ["ValidityCell", "validity_cell", "validity_criteria"]


@dataclass(frozen=True)
class ValidityCell:
    """One cell of the map.

    Attributes
    ----------
    ratio, dt : float
        ``B / d`` and the step.
    seeds : int
    ode_dm, ode_da : float
        The largest ``|m_SGD - m_ODE|``, ``|a_SGD - a_ODE|`` over ``t`` (SGD: seed mean).
    eff_dm, eff_da : float
        The same against the effective dynamics.
    se_m, se_a : float
        The standard error of SGD's seed mean at the ``t`` where the effective dynamics deviates most.
    z_m, z_a : float
        ``max over t of |m_SGD - m_eff| / SE(t)`` (and for ``a``): below 3 means within three
        standard errors at every record (``t > 0``).
    """

    ratio: float
    dt: float
    seeds: int
    ode_dm: float
    ode_da: float
    eff_dm: float
    eff_da: float
    se_m: float
    se_a: float
    z_m: float
    z_a: float

    @property
    def closer(self) -> bool:
        """The effective dynamics is closer to SGD than the ODE, in ``m`` and in ``a``."""
        return self.eff_dm < self.ode_dm and self.eff_da < self.ode_da

    @property
    def within_3se(self) -> bool:
        """Within three standard errors of SGD's seed mean at every record, in ``m`` and in ``a``."""
        return self.z_m <= 3.0 and self.z_a <= 3.0

    @property
    def required(self) -> bool:
        """A cell where the issue requires ``closer``: ``B <= 2d`` or ``dt >= 0.1``."""
        return self.ratio <= 2.0 or self.dt >= 0.1 - 1e-12

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "closer": self.closer, "within_3se": self.within_3se, "required": self.required}


def _worst(dev: np.ndarray, se: np.ndarray) -> tuple[float, float, float]:
    k = int(np.nanargmax(dev))
    ok = np.isfinite(se) & (se > 0)
    z = float(np.nanmax(dev[ok] / se[ok])) if ok.any() else math.nan
    return float(dev[k]), float(se[k]), z


def validity_cell(*, ratio: float, dt: float, t: Any, m: Any, a: Any, ode: Any, effective: Any) -> ValidityCell:
    """One cell from SGD's per-seed means over neurons ``m``, ``a`` (shape ``(seeds, len(t))``),
    and the ODE and the effective dynamics at the same ``t`` (anything with ``.m`` and ``.a``)."""
    m, a = np.atleast_2d(np.asarray(m, dtype=float)), np.atleast_2d(np.asarray(a, dtype=float))
    t = np.asarray(t, dtype=float)
    if m.shape != a.shape or m.shape[1] != t.size:
        raise ValueError(f"m, a: must both have shape (seeds, {t.size}), got {m.shape} and {a.shape}")
    mm, am, sm, sa = seed_mean(m), seed_mean(a), seed_stderr(m), seed_stderr(a)
    k = t > 0
    ode_dm = float(np.nanmax(np.abs(mm - np.asarray(ode.m))))
    ode_da = float(np.nanmax(np.abs(am - np.asarray(ode.a))))
    dev_m, se_m, z_m = _worst(np.abs(mm - np.asarray(effective.m))[k], sm[k])
    dev_a, se_a, z_a = _worst(np.abs(am - np.asarray(effective.a))[k], sa[k])
    return ValidityCell(ratio=float(ratio), dt=float(dt), seeds=int(m.shape[0]), ode_dm=ode_dm, ode_da=ode_da,
                        eff_dm=dev_m, eff_da=dev_a, se_m=se_m, se_a=se_a, z_m=z_m, z_a=z_a)


def validity_criteria(cells: Sequence[ValidityCell]) -> dict[str, Any]:
    """The criteria of issue 17 over the cells: closer than the ODE in every required cell
    (``B <= 2d`` or ``dt >= 0.1``), and within three standard errors in at least 80 % of all cells.

    Returns a dict of the counts, the fractions and the two verdicts (``closer_ok``, ``within_ok``),
    with the cells that fail each.
    """
    cells = list(cells)
    req = [c for c in cells if c.required]
    closer_req = sum(c.closer for c in req)
    within = sum(c.within_3se for c in cells)
    within_m = sum(c.z_m <= 3.0 for c in cells)
    within_a = sum(c.z_a <= 3.0 for c in cells)
    frac = within / len(cells) if cells else math.nan
    return {"cells": len(cells), "required": len(req), "closer_required": closer_req,
            "closer_all": sum(c.closer for c in cells), "within_3se": within, "within_3se_m": within_m,
            "within_3se_a": within_a, "within_fraction": frac,
            "closer_ok": closer_req == len(req), "within_ok": bool(frac >= 0.8),
            "not_closer": [(c.ratio, c.dt) for c in req if not c.closer],
            "not_within": [(c.ratio, c.dt) for c in cells if not c.within_3se]}
