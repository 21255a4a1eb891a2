"""Where a sweep's tasks run: threads in this process, or a Dask cluster.

**In this process** (``client=None``). The C++ core releases the GIL, so tasks run on threads:

* ODE/analysis tasks (and every task with ``workers=1``) run as a two-stage pipeline: two
  threads, one lock around the C++ calls, every core for each call. A task computes while the
  next one builds its models and groups its cells and the previous one assembles its arrays and
  writes them to the store, so the cores do not idle through each task's Python or the tail of
  each call, and the C++ work never overlaps (no more compute threads than cores). Two tasks at
  a time on ``cores / 2`` threads each were measured slower: each ``solve_ode_batch`` call already
  spreads its trajectories over every core, and the last task then runs alone on half of them.
* SGD tasks with ``workers=N > 1`` run ``N`` at a time with ``cores // N`` threads each: a small
  network does not scale over cores, so that is faster than one at a time with every core (and
  than Dask worker processes on one machine).

Ctrl-C (seen by the main thread, which waits in short slices) cancels the running C++ calls
through a :class:`~fastslow._runtime.CancelToken` within about 50 ms; a task that was writing its
chunks finishes them first, so what the store marks done is whole.

**On Dask** (``client`` a ``distributed.Client``, its scheduler's address, or ``"local"`` for a
local cluster of ``workers`` processes). Each task is sent by value (its id and either the spec
or, with a store, the store's address, from which the worker reads the checked spec); it takes
the cores of its host divided by the tasks that can run there at once, so threads never
oversubscribe. With a store, the worker writes its task's chunks itself (the store must be
reachable from the workers: a shared file system or an fsspec URL) and returns a summary.
A task that fails for any reason but its cells' own computation (a worker killed, a lost
connection, a cancelled future) is submitted again, up to three times, and is never recorded as
a result: it stays not done, and the next run computes it. Measured timings: ``bench/RESULTS.md``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import signal
import threading
import time
import uuid
from typing import Any
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .._runtime import CancelToken, cancel_token_bound, default_threads, usable_cores
from .spec import SweepError, SweepSpec
from .tasks import Task, run_task, task_by_id

__all__ = ["SigintGuard", "PipelineLock", "run_threads", "client_from", "run_dask", "dask_task", "MAX_ATTEMPTS"]

#: How often a Dask task lost to its infrastructure is submitted.
MAX_ATTEMPTS = 3


class SigintGuard:
    """While a sweep runs (main thread, Python's default SIGINT handler in place), Ctrl-C raises
    KeyboardInterrupt as usual, except inside :meth:`critical`, where it is held back until the
    section ends (so the in-memory results and the counts of the run record agree), and inside
    :meth:`deferred`, where it is only noted, for the code to act on at a point of its choosing
    (:meth:`check`). Python runs signal handlers in the main thread between bytecodes, whichever
    thread the signal hit."""

    def __init__(self) -> None:
        self.active = (threading.current_thread() is threading.main_thread()
                       and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        self.in_critical = False
        self.deferring = False
        self.pending = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.in_critical or self.deferring:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Any:
        """Ctrl-C is noted, not raised, until :meth:`check` (distributed's blocking calls must not
        be interrupted from inside: an interrupt landing in its ``sync`` wrapper before the awaited
        future exists makes its cancel callback fail with a logged ``NameError``)."""
        before, self.deferring = self.deferring, True
        try:
            yield
        finally:
            self.deferring = before

    def check(self) -> None:
        """Raise the KeyboardInterrupt a :meth:`deferred` section noted (once)."""
        if self.pending and not self.in_critical:
            self.pending = False
            raise KeyboardInterrupt

    def __enter__(self) -> SigintGuard:
        if self.active:
            signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.active:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    @contextlib.contextmanager
    def critical(self) -> Any:
        self.in_critical = True
        try:
            yield
        finally:
            self.in_critical = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


class PipelineLock:
    """The in-process pipeline's lock: held around a task's C++ calls, so tasks compute one at a
    time. Besides, one task at a time prepares its inputs, from its start until its first C++ call:
    at the start of a sweep the first task then builds its models alone instead of sharing the
    interpreter with the second, and the cores start computing sooner."""

    def __init__(self) -> None:
        self._compute = threading.Lock()
        self._prepare = threading.Lock()
        self._local = threading.local()

    def start_task(self) -> None:
        self._prepare.acquire()
        self._local.preparing = True

    def _done_preparing(self) -> None:
        if getattr(self._local, "preparing", False):
            self._local.preparing = False
            self._prepare.release()

    def end_task(self) -> None:  # also after an error before any C++ call
        self._done_preparing()

    def __enter__(self) -> PipelineLock:
        self._compute.acquire()
        self._done_preparing()  # the next task may start preparing
        return self

    def __exit__(self, *exc: Any) -> None:
        self._compute.release()


Finish = Callable[[Task, Mapping[str, Any]], None]


def run_threads(spec: SweepSpec, tasks: Sequence[Task], finish: Finish, workers: int, store: Any = None) -> None:
    """Run ``tasks`` on threads here (see the module documentation); ``finish(task, arrays)`` is
    called in this thread for each, after ``store.write_task`` (in the task's thread)."""
    cores = default_threads()
    pipelined = [t for t in tasks if workers == 1 or t.kind == "ode"]
    parallel = [t for t in tasks if not (workers == 1 or t.kind == "ode")]
    if pipelined:
        _run_pool(spec, pipelined, finish, store, pool=2, threads=cores, pipeline=True)
    if parallel:
        _run_pool(spec, parallel, finish, store, pool=workers, threads=max(1, cores // workers), pipeline=False)


def _run_pool(spec: SweepSpec, tasks: Sequence[Task], finish: Finish, store: Any, *, pool: int, threads: int,
              pipeline: bool) -> None:
    token = CancelToken()
    lock = PipelineLock() if pipeline else None

    def work(task: Task) -> Mapping[str, Any]:
        with cancel_token_bound(token):
            if lock is not None:
                lock.start_task()
            try:
                arrays = run_task(spec, task, threads=threads, compute_lock=lock)
            finally:
                if lock is not None:
                    lock.end_task()
            if token.cancelled:  # never write what a cancellation may have cut short
                raise KeyboardInterrupt
            if store is not None:
                store.write_task(task, arrays)
            return arrays

    ex = cf.ThreadPoolExecutor(pool, thread_name_prefix="fastslow-sweep")
    futures = {ex.submit(work, t): t for t in tasks}
    finished: set[cf.Future] = set()
    try:
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=0.1, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                finish(futures[fut], fut.result())
                finished.add(fut)
    except BaseException:
        token.cancel()
        ex.shutdown(wait=True, cancel_futures=True)
        # a task that was writing its chunks when the interrupt came finished them (the shutdown
        # waited): count it, so the run's record agrees with what the store marks done
        for fut, task in futures.items():
            if fut not in finished and fut.done() and not fut.cancelled() and fut.exception() is None:
                finish(task, fut.result())
        raise
    ex.shutdown(wait=True)


# -- Dask -------------------------------------------------------------------------------------------
def client_from(client: Any, workers: int | None, guard: SigintGuard | None = None) -> tuple[Any, Any, bool]:
    """(client, the cluster started here or None, whether the client was opened here). ``guard``:
    the sweep's :class:`SigintGuard` (Ctrl-C while a local cluster starts is held back by it)."""
    try:
        import distributed
    except ImportError:
        raise ImportError("running a sweep on Dask needs distributed: pip install 'fastslow[sweep]'") from None
    if isinstance(client, str):
        if client == "local":
            return _local_cluster(distributed, workers or usable_cores(), guard)
        try:
            return distributed.Client(client, timeout=30), None, True
        except (OSError, TimeoutError) as exc:
            raise SweepError(f"client: cannot reach the Dask scheduler at {client} ({exc})") from None
    if isinstance(client, distributed.Client):
        return client, None, False
    raise SweepError(f"client: expected None, a distributed.Client, 'local' or a scheduler address, got {client!r}")


def check_client(client: Any) -> None:
    """Refuse a bad ``client`` before anything runs."""
    if client is None or client == "local":
        return
    if isinstance(client, str):
        if not client.startswith(("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")):
            raise SweepError(f"client: a scheduler address looks like tcp://host:port, got {client!r}")
        return
    try:
        import distributed
    except ImportError:
        raise ImportError("running a sweep on Dask needs distributed: pip install 'fastslow[sweep]'") from None
    if not isinstance(client, distributed.Client):
        raise SweepError(f"client: expected None, a distributed.Client, 'local' or a scheduler address, got {client!r}")


def _local_cluster(distributed: Any, n: int, guard: SigintGuard | None) -> tuple[Any, Any, bool]:
    """A local cluster of ``n`` single-threaded worker processes. Ctrl-C while it starts is held
    back until it is up (distributed cannot be interrupted half-way through its start without
    tracebacks from its own clean-up at exit), then the cluster is closed at once and
    KeyboardInterrupt raised."""
    own = guard is None
    guard = guard or SigintGuard()
    with (guard if own else contextlib.nullcontext()), guard.critical():
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0")
        try:
            client = distributed.Client(cluster)
        except BaseException:
            close_quickly(None, cluster)
            raise
        if guard.pending:
            close_quickly(client, cluster)
    return client, cluster, True


def close_quickly(client: Any, cluster: Any) -> None:
    """Close a client and the local cluster started for it without waiting for the workers to
    finish gracefully (their processes are terminated; distributed's own logging of the connections
    this closes, tracebacks included, is silenced meanwhile: nothing went wrong)."""
    import logging

    logs = [logging.getLogger(name) for name in ("distributed", "tornado")]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.CRITICAL)
    try:
        _close_quickly(client, cluster)
    finally:
        for log, level in zip(logs, levels):
            log.setLevel(level)


def _close_quickly(client: Any, cluster: Any) -> None:
    if client is not None:
        with contextlib.suppress(Exception):
            client.close(timeout=1)
    if cluster is None:
        return
    with contextlib.suppress(Exception):
        for w in list(getattr(cluster, "workers", {}).values()):
            proc = getattr(getattr(w, "process", None), "process", None)  # the nanny's worker process
            if proc is not None and proc.is_alive():
                proc.kill()
    with contextlib.suppress(Exception):
        cluster.close(timeout=2)
    # Whatever is left of it (its worker processes are killed) must not be closed again at exit:
    # distributed's atexit hook would wait up to 10 s more for a cluster that did not close in time.
    with contextlib.suppress(Exception):
        cluster.shutdown_on_close = False


def _slots_by_host(client: Any) -> dict[str, int]:
    slots: dict[str, int] = {}
    for addr, w in client.scheduler_info(n_workers=-1).get("workers", {}).items():
        host = addr.rsplit(":", 1)[0].split("://")[-1]
        slots[host] = slots.get(host, 0) + int(w.get("nthreads", 1))
    return slots


def _threads_here(slots: Mapping[str, int]) -> int:
    n = None
    try:
        from distributed import get_worker

        w = get_worker()
        host = w.address.rsplit(":", 1)[0].split("://")[-1]
        n = slots.get(host) or w.state.nthreads
    except (ImportError, ValueError, AttributeError):
        pass
    return max(1, usable_cores() // max(1, int(n or 1)))


@functools.lru_cache(maxsize=8)
def _spec_from_store(url: str, fingerprint: str, options: str) -> tuple[SweepSpec, Any, Any]:
    import json

    from .layout import layout
    from .store import read_claim, store_files

    files = store_files(url, json.loads(options) or None)
    claim = read_claim(files)
    if claim is None or claim["fingerprint"] != fingerprint:
        raise SweepError(f"store: {url} no longer holds this sweep (fingerprint {fingerprint[:12]}...)")
    spec = SweepSpec.from_record(claim["spec"])
    return spec, files, layout(spec)


@functools.lru_cache(maxsize=8)
def _spec_from_json(text: str) -> SweepSpec:
    import json

    return SweepSpec.from_record(json.loads(text))


def dask_task(payload: Mapping[str, Any], task_id: str, slots: Mapping[str, int]) -> dict[str, Any]:
    """One task on a Dask worker. ``payload``: ``{"spec": JSON}`` (the arrays are returned) or
    ``{"store": url, "fingerprint": ..., "options": JSON}`` (the spec is read from the store, the
    arrays written to it, and a summary returned)."""
    from .store import write_task

    if "store" in payload:
        spec, files, lay = _spec_from_store(payload["store"], payload["fingerprint"], payload["options"])
    else:
        spec, files, lay = _spec_from_json(payload["spec"]), None, None
    task = task_by_id(spec, task_id)
    arrays = run_task(spec, task, threads=_threads_here(slots))
    if files is None:
        return arrays
    write_task(files, spec, lay, task, arrays)
    err = np.asarray(arrays[f"{task.kind}_error"])
    return {"stored": True, "failed": int(np.count_nonzero(err != ""))}


def _is_fatal(exc: BaseException) -> bool:
    return isinstance(exc, (KeyboardInterrupt, SystemExit, SweepError))


def run_dask(client: Any, spec: SweepSpec, tasks: Sequence[Task], finish: Finish, payload: Mapping[str, Any],
             warn: Callable[[str], None], guard: SigintGuard | None = None) -> dict[str, str]:
    """Run ``tasks`` on the cluster of ``client``; returns the tasks lost for good (id -> why).

    With a ``guard``, Ctrl-C is taken between short waits (never inside one of distributed's
    blocking calls) and cancels what is still queued."""
    guard = guard if guard is not None else SigintGuard()
    with guard.deferred():
        return _run_dask(client, spec, tasks, finish, payload, warn, guard)


def _ready(ac: Any, guard: SigintGuard) -> Any:
    """The finished futures of ``ac`` as they come, polling in 20 ms slices so that a noted Ctrl-C
    is raised here, in our code."""
    while not ac.is_empty():
        guard.check()
        if not ac.has_ready():
            time.sleep(0.02)
            continue
        yield from ac.next_batch(block=False)
    guard.check()


def _run_dask(client: Any, spec: SweepSpec, tasks: Sequence[Task], finish: Finish, payload: Mapping[str, Any],
              warn: Callable[[str], None], guard: SigintGuard) -> dict[str, str]:
    from distributed import as_completed

    slots = _slots_by_host(client)
    prefix = f"fastslow-sweep-{spec.fingerprint[:12]}-{uuid.uuid4().hex[:6]}"
    attempts: dict[str, int] = {}
    futures: dict[Any, Task] = {}

    def submit(task: Task) -> Any:
        n = attempts[task.id] = attempts.get(task.id, 0) + 1
        fut = client.submit(dask_task, payload, task.id, slots, key=f"{prefix}-{task.id}-{n}", pure=False)
        futures[fut] = task
        return fut

    lost: dict[str, str] = {}
    ac = as_completed([submit(t) for t in tasks])
    try:
        for fut in _ready(ac, guard):
            task = futures.pop(fut)
            try:
                result = fut.result()
            except BaseException as exc:  # noqa: BLE001 - everything but a cell's own error
                if _is_fatal(exc):
                    raise
                why = f"{type(exc).__name__}: {exc}"
                if attempts[task.id] < MAX_ATTEMPTS:
                    warn(f"task {task.id} was lost ({why}); submitting it again")
                    ac.add(submit(task))
                else:
                    warn(f"task {task.id} was lost {MAX_ATTEMPTS} times ({why}); not done (run again to compute it)")
                    lost[task.id] = why
                continue
            finally:
                fut.release()
            finish(task, result)
    except BaseException:
        with contextlib.suppress(Exception):
            client.cancel(list(futures))
        raise
    return lost
