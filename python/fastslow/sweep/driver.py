"""Running a sweep: claim the store, reuse what it holds, run the rest, record the run."""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from typing import Any
from collections.abc import Mapping

from .._runtime import check_memory
from .dataset import Results, warn_problems
from .executors import check_client, client_from, close_quickly, run_dask, run_threads, SigintGuard
from .spec import SweepError, SweepSpec, as_spec
from .tasks import Task, plan
from .variables import variables_for

__all__ = ["sweep"]


def _check_memory(spec: SweepSpec) -> None:
    per = 0
    for v in variables_for(spec.compute):
        width = {"t": spec.base.ode.points + 1, "record": spec.base.sgd.record, None: 1}[v.extra]
        per += 8 * width
    need = spec.n_cells * (per + 200) * 3  # the arrays, the dataset's copy, reading a store back
    try:
        check_memory(need, "axes", f"the sweep's results ({spec.n_cells:,} cells)", hint="fewer cells or ode.points")
    except ValueError as exc:
        raise SweepError(str(exc)) from None


def _warm_up(spec: SweepSpec) -> None:
    """Pay the analysis' one-time start-up (its first call imports parts of SciPy, a good fraction
    of a second) in this thread, where Ctrl-C stops it at once, rather than in the first task
    under the compute lock, where no cancel token reaches it."""
    if "analysis" not in spec.compute:
        return
    from .. import asymptotic_law
    from .tasks import CELL_ERRORS

    try:
        asymptotic_law(spec.base.make_model(), limits=False)
    except CELL_ERRORS:
        pass


def require_sweep_dependencies() -> None:
    """Raise an ImportError that says what to install when xarray or zarr is missing (zarr 3, the
    store's format, needs Python >= 3.11)."""
    import importlib.util
    import sys

    missing = [m for m in ("xarray", "zarr") if importlib.util.find_spec(m) is None]
    if missing:
        where = ("; zarr 3 needs Python >= 3.11, this is Python "
                 f"{sys.version_info[0]}.{sys.version_info[1]}" if sys.version_info < (3, 11) else "")
        raise ImportError(f"sweeps need {' and '.join(missing)}: pip install 'fastslow[sweep]'{where}")


def sweep(spec: SweepSpec | Mapping[str, Any] | str | os.PathLike, client: Any = None,
          store: str | os.PathLike | None = None, *, workers: int | None = None, progress: bool = True,
          storage_options: Mapping[str, Any] | None = None) -> Any:
    """Run a sweep and return its results as an :class:`xarray.Dataset`.

    Parameters
    ----------
    spec : SweepSpec, dict or path
        The sweep (see :class:`SweepSpec`; a path is a TOML file).
    client : None, distributed.Client, str
        None: this process (see :mod:`fastslow.sweep.executors`); a ``distributed.Client``; a
        scheduler address ``"tcp://host:port"``; or ``"local"`` for a local Dask cluster of
        ``workers`` processes.
    store : path or URL, optional
        Where the results go as they are computed: a directory (created if missing) or an fsspec
        URL, a zarr store that ``xarray.open_zarr`` reads while the sweep runs (see
        :mod:`fastslow.sweep.store`). Running again with the same store and spec computes only the
        tasks that are not done; a store of another spec is refused, and so is a second sweep of
        another spec while this one runs.
    workers : int, optional
        Concurrent tasks on this machine: with ``client=None``, 1 (default) computes one task at a
        time with every core (pipelined); more runs that many SGD tasks at once on threads here
        (``cores // workers`` cores each; ODE tasks stay pipelined); with ``client="local"``, the
        number of Dask worker processes.
    progress : bool
        A progress bar: cells done, failed, rate and the estimated time left.
    storage_options : dict, optional
        Options of the fsspec file system of a URL ``store``.

    Returns
    -------
    xarray.Dataset
        See :mod:`fastslow.sweep.dataset`; ``attrs["run"]`` says how this invocation went (also
        in the store's ``runs/``).
    """
    require_sweep_dependencies()
    spec = as_spec(spec)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SweepError(f"workers: expected an integer >= 1, got {workers!r}")
    check_client(client)
    if storage_options is not None and not isinstance(storage_options, Mapping):
        raise SweepError(f"storage_options: expected a dict, got {type(storage_options).__name__}")
    _check_memory(spec)
    st = None
    if store is not None:
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise ImportError("a sweep store needs zarr: pip install 'fastslow[sweep]'") from None
        from .store import open_store

        st = open_store(store, spec, storage_options=dict(storage_options or {}))
    try:
        return _run(spec, client, st, workers, progress, dict(storage_options or {}))
    finally:
        if st is not None:
            st.close()


def _run(spec: SweepSpec, client: Any, st: Any, workers: int | None, progress: bool,
         storage_options: dict[str, Any]) -> Any:
    results = Results(spec)
    tasks = plan(spec)
    reused = 0
    if st is not None and not st.fresh:
        from .store import read_back

        contents = read_back(st.files, spec, st.layout)
        warn_problems(st.url, contents.problems, "its cells run again")
        results.load(contents.arrays, contents.done)
        todo = [t for t in tasks if not results.task_done(t)]
        reused, tasks = len(tasks) - len(todo), todo
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=spec.n_cells, initial=int(results.cell_done.sum()), unit="cell", desc="sweep",
                   smoothing=0.1, dynamic_ncols=True)
    state = {"failed": 0, "computed": 0, "cells": 0}
    guard = SigintGuard()
    stored_remotely = False

    def finish(task: Task, arrays: Mapping[str, Any]) -> None:
        before = int(results.cell_done.sum()) if bar is not None else 0
        with guard.critical():  # the results and the counts of the run record agree whenever Ctrl-C comes
            if arrays.get("stored"):
                results.mark(task)
                state["failed"] += int(arrays["failed"])
            else:
                state["failed"] += results.add(task, arrays)
            state["computed"] += 1
            state["cells"] += task.size
        if bar is not None:
            bar.update(int(results.cell_done.sum()) - before)
            bar.set_postfix(failed=state["failed"], refresh=False)

    executor = f"in-process, {workers or 1} thread(s)"
    interrupted = failed = False
    lost: dict[str, str] = {}
    cl = cluster = None
    opened = late_interrupt = False
    try:
        with guard:
            if client is None:
                if tasks:
                    _warm_up(spec)
                run_threads(spec, tasks, finish, workers or 1, st)
            else:
                cl, cluster, opened = client_from(client, workers, guard)
                executor = "dask-local" if cluster is not None else f"dask {cl.scheduler.address}"
                if st is not None:
                    payload = {"store": st.url, "fingerprint": spec.fingerprint, "options": json.dumps(storage_options)}
                    stored_remotely = True
                else:
                    payload = {"spec": spec.json}
                lost = run_dask(cl, spec, tasks, finish, payload,
                                lambda msg: warnings.warn(f"sweep: {msg}", RuntimeWarning, stacklevel=2), guard)
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        failed = True
        raise
    finally:
        if cluster is not None and failed:
            close_quickly(cl, cluster)  # Ctrl-C: within a second
        elif opened and cl is not None:
            # Ctrl-C while the cluster closes is taken once it is closed (an interrupt inside
            # distributed's close would leave it to its atexit hook, which waits 10 s more)
            with guard, guard.deferred(), contextlib.suppress(Exception):
                cl.close()
                if cluster is not None:
                    cluster.close()
            late_interrupt = guard.pending
        if bar is not None:
            bar.close()
        run = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "executor": executor, "tasks_run": state["computed"],
               "tasks_reused": reused, "tasks_lost": len(lost), "cells_run": state["cells"],
               "cells_failed_now": state["failed"], "cells_done": int(results.cell_done.sum()),
               "cells": spec.n_cells, "interrupted": interrupted, "seconds": round(time.perf_counter() - start, 3)}
        if lost:
            run["lost"] = dict(list(lost.items())[:20])
        if st is not None:
            with contextlib.suppress(Exception) if failed else contextlib.nullcontext():
                st.log(run)
    if late_interrupt:
        raise KeyboardInterrupt
    if stored_remotely:  # the workers wrote the arrays: read them back (checked)
        from .store import read_back

        contents = read_back(st.files, spec, st.layout)
        warn_problems(st.url, contents.problems, "its cells count as not done")
        results = Results(spec)
        results.load(contents.arrays, contents.done)
        run["cells_done"] = int(results.cell_done.sum())
    return results.dataset(run)

