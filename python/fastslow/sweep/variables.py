"""What a sweep computes per cell: the one catalogue of its variables.

Every variable of a sweep's dataset is defined here once, with the kind of task that computes it
(``"ode"``: ODE/analysis tasks, a block of cells each; ``"sgd"``: one SGD cell each), what must be
in ``compute`` for it to exist, its dtype, its extra dimension (``t``, ``record``), its fill value
(what a cell not computed holds) and its description. The spec refuses axis names that collide
with these names (:data:`RESERVED`), the tasks fill them, the store lays them out and the dataset
assembles them, all from this table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Variable", "VARIABLES", "KINDS", "RESERVED", "MAX_TEXT", "variables_for", "kinds_for", "truncate"]

#: The kinds of task: ODE/analysis cells in blocks, SGD cells one by one.
KINDS: tuple[str, ...] = ("ode", "sgd")

#: The longest text a string variable keeps (an error, a solver message), in characters; longer
#: texts end in "...". It bounds what a store's string chunk may hold (see ``store``).
MAX_TEXT = 2000


@dataclass(frozen=True)
class Variable:
    """One variable of a sweep's dataset.

    Attributes
    ----------
    name : str
    kind : str
        ``"ode"`` or ``"sgd"``: the kind of task that computes it.
    needs : str
        What ``compute`` must hold for it to exist (``"ode"``, ``"analysis"``, ``"sgd"``, or either of
        two: ``"ode|analysis"``), or ``"kind"`` for the per-kind bookkeeping (``ode_done``,
        ``ode_error``, ...).
    dtype : str
        ``"f8"``, ``"i4"``, ``"bool"`` or ``"str"``.
    extra : str or None
        A dimension after the axes: ``"t"`` (ODE save times) or ``"record"`` (SGD records).
    fill : object
        What a cell that was not computed holds.
    description : str
    """

    name: str
    kind: str
    needs: str
    dtype: str
    extra: str | None
    fill: Any
    description: str


def _v(name: str, kind: str, needs: str, dtype: str, extra: str | None, description: str) -> Variable:
    fill = {"f8": math.nan, "i4": -100, "bool": False, "str": ""}[dtype]
    return Variable(name, kind, needs, dtype, extra, fill, description)


VARIABLES: tuple[Variable, ...] = (
    _v("level", "ode", "ode|analysis", "str", None,
       "level integrated: ode (identical neurons: the 2-D limit ODE) or particles (a heterogeneous initial law: "
       "the particle limit of particles.n particles)"),
    _v("particle_count", "ode", "ode|analysis", "i4", None,
       "particles representing the cell's initial law (1 for identical neurons)"),
    _v("ode_m", "ode", "ode", "f8", "t", "m(t) of the limit ODE (the particles' weighted mean at level particles)"),
    _v("ode_a", "ode", "ode", "f8", "t", "a(t) of the limit ODE (the particles' weighted mean at level particles)"),
    _v("ode_loss", "ode", "ode", "f8", "t", "population loss of the limit (the ODE or the particle limit)"),
    _v("m_abs", "ode", "ode", "f8", "t", "|m|(t) = sum_i w_i |m_i|, the alignment of a heterogeneous network "
       "(|m| of the ODE for identical neurons)"),
    _v("m_peak", "ode", "ode", "f8", None, "peak alignment of the ODE (of the weighted mean m at level particles)"),
    _v("t_peak", "ode", "ode", "f8", None, "time of the peak alignment"),
    _v("t_half", "ode", "ode", "f8", None,
       "unlearning half-life: first time after the peak with m = m_peak / 2 (NaN: not reached)"),
    _v("m_final", "ode", "ode", "f8", None, "m at ode.t_max"),
    _v("a_final", "ode", "ode", "f8", None, "a at ode.t_max"),
    _v("ode_status", "ode", "ode", "i4", None, "0 success, < 0 failure (-100: not computed)"),
    _v("ode_message", "ode", "ode", "str", None, "the solver's message on failure"),
    _v("outcome", "ode", "analysis", "str", None,
       "classification by analysis.classify_t_max: learning, lazy, unlearning, undetermined, failed "
       "(at level particles: of |m| = sum_i w_i |m_i| and |a| = sum_i w_i |a_i|)"),
    _v("exponent", "ode", "analysis", "f8", None,
       "measured -d log|m| / d log t over the last decade before analysis.classify_t_max (unlearning only)"),
    _v("law", "ode", "analysis", "str", None, "asymptotic law's verdict: unlearning, learning, pinned, undetermined"),
    _v("law_exponent", "ode", "analysis", "f8", None, "asymptotic law's exponent 1/(q+1) (NaN unless unlearning)"),
    _v("sgd_t", "sgd", "sgd", "f8", "record", "ODE time of each SGD record"),
    _v("sgd_m_mean", "sgd", "sgd", "f8", "record", "SGD mean alignment"),
    _v("sgd_m_std", "sgd", "sgd", "f8", "record", "SGD alignment spread"),
    _v("sgd_a_mean", "sgd", "sgd", "f8", "record", "SGD mean second-layer weight"),
    _v("sgd_a_std", "sgd", "sgd", "f8", "record", "SGD second-layer spread"),
    _v("sgd_batch_loss", "sgd", "sgd", "f8", "record", "SGD batch loss"),
    _v("sgd_pop_loss", "sgd", "sgd", "f8", "record", "exact population loss of the finite network"),
    _v("sgd_ode_m", "sgd", "sgd", "f8", "record",
       "the limit's m at the SGD record times (the ODE; the particle limit's weighted mean for a heterogeneous law)"),
    _v("sgd_ode_a", "sgd", "sgd", "f8", "record",
       "the limit's a at the SGD record times (the ODE; the particle limit's weighted mean for a heterogeneous law)"),
    _v("sgd_cloud", "sgd", "sgd", "f8", "record", "sliced-Wasserstein distance between the SGD neurons' (m_i, a_i) "
       "and the particle limit's particles (a heterogeneous law only; NaN for identical neurons)"),
    _v("sgd_max_dm", "sgd", "sgd", "f8", None, "max |m_mean - m_limit| over the records"),
    _v("sgd_max_da", "sgd", "sgd", "f8", None, "max |a_mean - a_limit| over the records"),
    # per kind of task: its errors and which of its tasks finished (the store's bookkeeping; the
    # dataset joins them into `error` and `done`)
    _v("ode_error", "ode", "kind", "str", None, "the error of the cell's ODE/analysis task ('' if none)"),
    _v("ode_done", "ode", "kind", "bool", None, "the cell's ODE/analysis task finished"),
    _v("sgd_error", "sgd", "kind", "str", None, "the error of the cell's SGD task ('' if none)"),
    _v("sgd_done", "sgd", "kind", "bool", None, "the cell's SGD task finished"),
)

_BY_NAME = {v.name: v for v in VARIABLES}

#: Names an axis (or a zipped axis' coordinate) cannot take, and why: the dataset's variables and
#: coordinates, and the names of the store's own files.
RESERVED: dict[str, str] = {
    **{v.name: "a variable of the dataset" for v in VARIABLES},
    "error": "a variable of the dataset (the cell's error)",
    "done": "a variable of the dataset (the cell finished)",
    "t": "the time coordinate of the ODE trajectories",
    "record": "the record dimension of the SGD runs",
    "zarr.json": "a file of the store",
    "fastslow.json": "a file of the store",
    "fastslow.lock": "a file of the store",
    "runs": "a folder of the store",
}

DESCRIPTIONS: dict[str, str] = {**{v.name: v.description for v in VARIABLES},
                                "error": "the cell's error ('' if none)", "done": "every task of the cell finished"}


def variable(name: str) -> Variable:
    return _BY_NAME[name]


def kinds_for(compute: tuple[str, ...]) -> tuple[str, ...]:
    """The kinds of task a sweep computing ``compute`` runs."""
    out = []
    if "ode" in compute or "analysis" in compute:
        out.append("ode")
    if "sgd" in compute:
        out.append("sgd")
    return tuple(out)


def variables_for(compute: tuple[str, ...], kind: str | None = None, *, bookkeeping: bool = True) -> list[Variable]:
    """The variables of a sweep computing ``compute`` (of one kind of task if given), in catalogue
    order; with ``bookkeeping`` the per-kind ``*_error`` and ``*_done`` too (last)."""
    kinds = kinds_for(compute)
    out = [v for v in VARIABLES if any(x in compute for x in v.needs.split("|")) and v.kind in kinds and (kind is None or v.kind == kind)]
    if bookkeeping:
        out += [v for v in VARIABLES if v.needs == "kind" and v.kind in kinds and (kind is None or v.kind == kind)]
    return out


def truncate(text: str) -> str:
    """``text`` cut to :data:`MAX_TEXT` characters."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."
