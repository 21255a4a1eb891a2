"""The ground floor: threads, available memory and cancellation.

Everything that asks "how many cores may I use?" or "will this fit?" asks here, so one rule holds
for every entry point (the batch integrators, the SGD trainer, sweeps, the command line):

* **threads**: an explicit ``threads=`` or ``FASTSLOW_NUM_THREADS`` must be an integer from 1 to the
  usable cores (the CPU affinity mask, further limited by a cgroup CPU quota), so fastslow's OpenMP
  threads never oversubscribe the machine; the default is every usable core.
* **memory**: the least of the kernel's ``MemAvailable``, the headroom under the address-space limit
  (``RLIMIT_AS``, ``ulimit -v``) and the headroom under the cgroup's memory limit (v2 ``memory.max``
  or v1 ``memory.limit_in_bytes``), which is what a cluster job runs under.
* **cancellation**: a :class:`CancelToken` bound to a thread stops the long C++ calls that thread
  makes (Ctrl-C only reaches the main thread).

This module imports nothing else of fastslow except the compiled core.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
from collections.abc import Iterator
from typing import Any

__all__ = ["usable_cores", "default_threads", "resolve_threads", "available_memory", "check_memory",
           "CancelToken", "cancel_token_bound"]


def _cgroup_dirs() -> list[str]:
    """The cgroup directories of this process (v2 unified, then v1 controllers), most specific first."""
    out: list[str] = []
    try:
        with open("/proc/self/cgroup", encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # cgroup v2
            out.append(os.path.join("/sys/fs/cgroup", path.lstrip("/")))
        else:
            for c in controllers.split(","):
                out.append(os.path.join("/sys/fs/cgroup", c, path.lstrip("/")))
    return out


def _read_first(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.readline().strip()
    except OSError:
        return None


def _cgroup_cpu_limit() -> int | None:
    """Cores allowed by a cgroup CPU quota (``cpu.max`` or ``cpu.cfs_quota_us``), or None."""
    for d in _cgroup_dirs() + ["/sys/fs/cgroup"]:
        text = _read_first(os.path.join(d, "cpu.max"))
        if text:
            quota, _, period = text.partition(" ")
            if quota != "max":
                try:
                    return max(1, math.ceil(int(quota) / int(period or 100000)))
                except ValueError:
                    pass
            continue
        q = _read_first(os.path.join(d, "cpu.cfs_quota_us"))
        p = _read_first(os.path.join(d, "cpu.cfs_period_us"))
        if q and p:
            try:
                if int(q) > 0:
                    return max(1, math.ceil(int(q) / int(p)))
            except ValueError:
                pass
    return None


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, further limited by a cgroup quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    quota = _cgroup_cpu_limit()
    if quota is not None:
        n = min(n, quota)
    return max(1, n)


def _check_threads(value: Any, field: str) -> int:
    import numpy as np

    cores = usable_cores()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{field}: must be an integer from 1 to {cores} (the usable cores), got {value!r} "
                        f"({type(value).__name__})")
    if not 1 <= int(value) <= cores:
        raise ValueError(f"{field}: must be an integer from 1 to {cores} (the usable cores), got {int(value)}")
    return int(value)


def default_threads() -> int:
    """Threads for batch work: ``FASTSLOW_NUM_THREADS`` if set (1 to the usable cores), else every
    usable core."""
    env = os.environ.get("FASTSLOW_NUM_THREADS")
    if env is None or env.strip() == "":
        return usable_cores()
    try:
        n = int(env)
    except ValueError:
        raise ValueError(f"FASTSLOW_NUM_THREADS: must be an integer from 1 to {usable_cores()} (the usable "
                         f"cores), got {env!r}") from None
    return _check_threads(n, "FASTSLOW_NUM_THREADS")


def resolve_threads(threads: Any = None, field: str = "threads") -> int:
    """``threads`` checked (an integer from 1 to the usable cores), or the default when None."""
    if threads is None:
        return default_threads()
    return _check_threads(threads, field)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _address_space_headroom() -> int | None:
    """Bytes left under ``RLIMIT_AS`` (``ulimit -v``): the limit minus this process' virtual size."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (OSError, ValueError):  # pragma: no cover
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    used = 0
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    used = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    return max(0, soft - used)


def _cgroup_headroom() -> int | None:
    """Bytes left under the cgroup's memory limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``)."""
    best: int | None = None
    for d in _cgroup_dirs():
        for limit_name, usage_name in (("memory.max", "memory.current"),
                                       ("memory.limit_in_bytes", "memory.usage_in_bytes")):
            limit = _read_first(os.path.join(d, limit_name))
            if not limit or limit == "max":
                continue
            try:
                lim = int(limit)
            except ValueError:
                continue
            if lim >= 2**60:  # v1 spells "no limit" as a huge number
                continue
            usage = _read_first(os.path.join(d, usage_name))
            try:
                used = int(usage) if usage else 0
            except ValueError:
                used = 0
            room = max(0, lim - used)
            best = room if best is None else min(best, room)
    return best


def available_memory() -> int | None:
    """Bytes this process can still allocate: the least of ``MemAvailable``, the headroom under
    ``RLIMIT_AS`` and the headroom under the cgroup memory limit (None when none is known)."""
    values = [v for v in (_meminfo_available(), _address_space_headroom(), _cgroup_headroom()) if v is not None]
    return min(values) if values else None


def check_memory(need: float, field: str, what: str, *, fraction: float = 0.8, hint: str = "") -> None:
    """Refuse work that would need more than ``fraction`` of :func:`available_memory`: a
    ``ValueError`` naming ``field``, the estimate and the limit (instead of the OOM killer or a
    ``std::bad_alloc``). Estimates under 64 MiB are not checked."""
    if need < 64 * 2**20:
        return
    avail = available_memory()
    if avail is not None and need > fraction * avail:
        raise ValueError(f"{field}: {what} need about {need / 2**30:.2f} GiB, more than {fraction:.0%} of the "
                         f"{avail / 2**30:.2f} GiB available (the least of MemAvailable, ulimit -v and the cgroup "
                         f"limit){'; ' + hint if hint else ''}")


def _core() -> Any:
    from . import _core

    return _core


class CancelToken:
    """A flag that stops the long C++ calls (SGD runs, ODE solves, batches) of the threads it is
    bound to (:func:`cancel_token_bound`), within about 50 ms of :meth:`cancel`."""

    def __init__(self) -> None:
        self._token = _core().runtime.CancelToken()

    def cancel(self) -> None:
        self._token.cancel()

    @property
    def cancelled(self) -> bool:
        return bool(self._token.cancelled)


@contextlib.contextmanager
def cancel_token_bound(token: CancelToken | None) -> Iterator[None]:
    """Bind ``token`` to the calling thread for the duration of the block."""
    core = _core()
    core.runtime.bind_cancel_token(token._token if token is not None else None)
    try:
        yield
    finally:
        core.runtime.bind_cancel_token(None)
