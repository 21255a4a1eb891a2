"""A sweep's results as an :class:`xarray.Dataset`: assembled in memory as tasks finish, or read
back from a store (:func:`open_sweep`), the same way, so the two are equal.

The dataset has the axes as dimension coordinates (the fields of a zipped axis as further
coordinates along it), ``t`` for the ODE trajectories and ``record`` for the SGD runs, every
variable of :mod:`~fastslow.sweep.variables` that the spec computes, ``error`` (a cell's errors,
those of its ODE/analysis and SGD tasks joined by ``"; "``) and ``done`` (every task of the cell
finished). ``attrs``: ``title``, ``fastslow_version``, ``fingerprint``, ``spec`` (JSON), ``compute``
and, when known, ``run`` (JSON: how the last invocation went).
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from .spec import SweepError, SweepSpec
from .tasks import Task, save_times
from .variables import DESCRIPTIONS, kinds_for, variables_for

__all__ = ["Results", "open_sweep"]

#: The in-memory dtype of each stored dtype of a result variable.
_MEMORY_DTYPE: dict[str, npt.DTypeLike] = {"f8": float, "i4": np.int32, "str": "U1"}


def _wide_enough(target: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``target`` (a unicode array), widened if ``values`` holds longer strings."""
    return target.astype(values.dtype) if values.dtype.itemsize > target.dtype.itemsize else target


class Results:
    """The dataset's arrays (one row per cell, C order over the axes), filled in as tasks finish."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self.t = save_times(spec.base.ode.t_max, spec.base.ode.points)
        self._extra = {"t": self.t.size, "record": spec.base.sgd.record}
        self.vars = {v.name: v for v in variables_for(spec.compute, bookkeeping=False)}
        # made when first filled: a 10,000 x 21 trajectory's pages cost ~1 ms here
        self.arrays: dict[str, np.ndarray | None] = dict.fromkeys(self.vars)
        n = spec.n_cells
        self.done = {k: np.zeros(n, dtype=bool) for k in kinds_for(spec.compute)}
        self.errors = {k: np.zeros(n, dtype="U1") for k in self.done}

    def _array(self, name: str) -> np.ndarray:
        a = self.arrays[name]
        if a is None:
            v = self.vars[name]
            shape = (self.spec.n_cells,) + ((self._extra[v.extra],) if v.extra else ())
            a = self.arrays[name] = np.full(shape, v.fill, dtype=_MEMORY_DTYPE[v.dtype])
        return a

    def _put(self, name: str, rows: slice | np.ndarray, values: np.ndarray) -> None:
        target = self._array(name)
        if target.dtype.kind == "U":
            values = np.asarray(values).astype(str)
            target = self.arrays[name] = _wide_enough(target, values)
        if target.ndim == 2:
            target[rows, : values.shape[1]] = values
        else:
            target[rows] = values

    def add(self, task: Task, arrays: Mapping[str, np.ndarray]) -> int:
        """Fill in one task's arrays (as :func:`~fastslow.sweep.tasks.run_task` returns them);
        returns how many of its cells failed."""
        rows = slice(task.start, task.stop)
        for name, v in arrays.items():
            if name in self.vars:
                self._put(name, rows, np.asarray(v))
        err = np.asarray(arrays[f"{task.kind}_error"]).astype(str)
        self.errors[task.kind] = _wide_enough(self.errors[task.kind], err)
        self.errors[task.kind][rows] = err
        self.done[task.kind][rows] = True
        return int(np.count_nonzero(err != ""))

    def mark(self, task: Task) -> None:
        """Count ``task`` as done (its arrays are in a store, read back at the end)."""
        self.done[task.kind][task.start:task.stop] = True

    def load(self, arrays: Mapping[str, np.ndarray], done: Mapping[str, np.ndarray]) -> None:
        """Take a store's contents (:func:`~fastslow.sweep.store.read_back`)."""
        for name, v in arrays.items():
            if name in self.vars:
                self._put(name, slice(None), v)
        for k in self.done:
            self.done[k] = np.asarray(done[k], dtype=bool).copy()
            err = np.asarray(arrays[f"{k}_error"]).astype(str)
            self.errors[k] = err if err.dtype.itemsize else err.astype("U1")

    def task_done(self, task: Task) -> bool:
        return bool(self.done[task.kind][task.start:task.stop].all())

    @property
    def cell_done(self) -> np.ndarray:
        out = np.ones(self.spec.n_cells, dtype=bool)
        for d in self.done.values():
            out &= d
        return out

    def dataset(self, run: Mapping[str, Any] | None = None) -> Any:
        import xarray as xr

        from .._version import __version__

        spec = self.spec
        dims = tuple(a.name for a in spec.axes)
        shape = spec.shape
        coords: dict[str, Any] = {}
        for a in spec.axes:
            coords[a.name] = (a.name, a.coord)
            for p, v in zip(a.fields, a.values):
                if p != a.name:
                    coords[p] = (a.name, v)
        kinds = list(self.errors.values())
        err = kinds[0].copy()
        for e in kinds[1:]:  # a cell's errors from each kind of task, joined by "; "
            idx = np.flatnonzero(e != "")
            if idx.size:
                joined = [f"{a}; {b}" if a else b for a, b in zip(err[idx].tolist(), e[idx].tolist())]
                err = _wide_enough(err, np.array(joined))
                err[idx] = joined
        data: dict[str, Any] = {}
        for name, var in self.vars.items():
            arr = self._array(name)
            data[name] = (dims + ((var.extra,) if var.extra else ()),
                          (arr.copy() if arr.dtype.kind == "U" else arr).reshape(shape + arr.shape[1:]))
        data["error"] = (dims, err.reshape(shape))
        data["done"] = (dims, self.cell_done.reshape(shape))
        if "ode" in spec.compute:
            coords["t"] = ("t", self.t)
        if "sgd" in spec.compute:
            coords["record"] = ("record", np.arange(spec.base.sgd.record))
        attrs = {"title": "fastslow sweep", "fastslow_version": __version__, "fingerprint": spec.fingerprint,
                 "spec": spec.json, "compute": ",".join(spec.compute)}
        if run is not None:
            attrs["run"] = json.dumps(dict(run))
        ds = xr.Dataset(data, coords=coords, attrs=attrs)
        for k, text in DESCRIPTIONS.items():
            if k in ds:
                ds[k].attrs["description"] = text
        if "t" in ds.coords:
            ds["t"].attrs.update(units="ODE time (SGD steps x dt)", description="save points (0 and log-spaced)")
        return ds


def warn_problems(url: str, problems: Mapping[str, str], then: str) -> None:
    for task_id, why in sorted(problems.items()):
        warnings.warn(f"sweep store: {url}: task {task_id} is damaged ({why}); {then}", RuntimeWarning, stacklevel=3)


def open_sweep(store: str | os.PathLike, *, storage_options: dict[str, Any] | None = None) -> Any:
    """The dataset of a sweep store, loaded into memory and checked (it may still be running).

    Only what reads back whole counts as done: a task whose chunk is missing, damaged (CRC-32C),
    not a regular file or larger than its metadata allow is reported with a warning and its cells
    are not done (the next run of the sweep computes them again). The store's own metadata are not
    trusted: they come from its spec (the claim ``fastslow.json``, checked against its SHA-256); a
    metadata file on disk that differs is reported (``xarray.open_zarr`` would read it) and
    rewritten by the next run.
    """
    from .layout import layout
    from .store import check_static, read_back, read_claim, read_runs, store_files

    files = store_files(store, storage_options)
    if hasattr(files, "root") and not os.path.isdir(files.root):
        raise SweepError(f"store: {files.root} does not exist (not a sweep store, or the sweep never ran)")
    claim = read_claim(files)
    if claim is None:
        raise SweepError(f"store: {files.url} holds no sweep (no fastslow.json: it does not exist, or the sweep "
                         "never started)")
    spec = SweepSpec.from_record(claim["spec"])
    if spec.fingerprint != claim["fingerprint"]:
        raise SweepError(f"store: {files.url}/fastslow.json: its spec does not give its fingerprint (written by "
                         "another version of fastslow?); run the sweep into a new store")
    lay = layout(spec)
    for key, why in check_static(files, lay).items():
        warnings.warn(f"sweep store: {files.url}/{key} is {'missing' if why == 'missing' else 'damaged (' + why + ')'}; "
                      "read from the spec instead (running the sweep again rewrites it)", RuntimeWarning, stacklevel=2)
    contents = read_back(files, spec, lay)
    warn_problems(files.url, contents.problems, "its cells count as not done (running the sweep again computes them)")
    res = Results(spec)
    res.load(contents.arrays, contents.done)
    runs = read_runs(files)
    return res.dataset(runs[-1] if runs else None)
