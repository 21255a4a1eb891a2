"""Sweeps: a base config plus axes, run cell by cell on this machine or on a Dask cluster, into a
zarr store that is resumable, checked and readable while it grows.

* :mod:`~fastslow.sweep.spec`: the spec (:class:`SweepSpec`, :func:`load_sweep_spec`), validated
  before anything runs;
* :mod:`~fastslow.sweep.variables`: the one catalogue of what a cell computes;
* :mod:`~fastslow.sweep.tasks`: cells grouped into tasks, and the work of one task;
* :mod:`~fastslow.sweep.layout` and :mod:`~fastslow.sweep.store`: the zarr store (its layout and
  chunk encoding, the claim and lock, writing tasks, reading back without trusting the disk);
* :mod:`~fastslow.sweep.dataset`: the results as an :class:`xarray.Dataset`, and :func:`open_sweep`;
* :mod:`~fastslow.sweep.executors`: threads in this process (a pipeline) or Dask;
* :mod:`~fastslow.sweep.driver`: :func:`sweep`.

>>> ds = sweep(load_sweep_spec("examples/sweep_phase.toml"), store="results/sweep-phase")  # doctest: +SKIP
>>> ds = open_sweep("results/sweep-phase")            # or xarray.open_zarr(...)  # doctest: +SKIP
"""

from .dataset import open_sweep
from .driver import sweep
from .spec import COMPUTE, Axis, SweepError, SweepSpec, load_sweep_spec

__all__ = ["SweepSpec", "Axis", "SweepError", "load_sweep_spec", "sweep", "open_sweep", "COMPUTE"]
