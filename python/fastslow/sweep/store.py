"""The sweep store: a zarr v3 group (:mod:`.layout`) that many writers fill and readers open while
it grows, claimed by one sweep.

Files of a store ``STORE`` (a directory, or an fsspec URL such as ``s3://bucket/path``):

* ``fastslow.json``, the claim: the spec, its fingerprint and the store format, under a SHA-256 of
  them. It is written first, atomically (temporary file, fsync, rename), before anything else:
  the store belongs to that spec from then on, and another spec is refused.
* ``fastslow.lock`` (directories only): ``flock``-ed by the sweep that runs on the store. A second
  sweep of another spec is refused at once; one of the same spec says so on stderr and waits.
  (On an fsspec URL there is no lock: run one client per store.)
* ``zarr.json`` and ``NAME/zarr.json`` (the metadata, with consolidated metadata in the root
  document) and the coordinates' chunks, rewritten whenever they differ from the layout the spec
  gives (a damaged one is reported).
* ``NAME/c.I.J...``: chunks, written by the tasks: one chunk of every array of its kind, each
  atomically (temporary file, rename), the ``*_done`` chunk last. A task is done when its done
  chunk says so and every one of its chunks reads back whole (:func:`~.layout.checked_store`);
  anything else is computed again. Writes are not fsynced: after a power cut a chunk may be
  missing or zero-filled, and that check catches it.
* ``runs/*.json``: one record per invocation (what ran, what was reused, how long), each under
  its own SHA-256.

Every read is bounded: only regular files (no symbolic link, FIFO or device), no larger than the
metadata allow.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import time
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .files import LocalFiles, store_files
from .layout import STORE_FORMAT, STORE_VERSION, Layout, Unreadable, checked_store, layout
from .spec import SweepError, SweepSpec
from .tasks import Task
from .variables import KINDS

__all__ = ["SweepStore", "open_store", "read_claim", "check_static", "write_task", "read_back", "read_runs", "Contents",
           "store_files", "CLAIM", "LOCK"]

CLAIM, LOCK, RUNS = "fastslow.json", "fastslow.lock", "runs"
_CLAIM_MAX = 1 << 30  # a spec of 50 million cells' axes stays well under this
_RUN_MAX = 1 << 16


def _io_error(files: Any, what: str, exc: OSError) -> SweepError:
    return SweepError(f"store: cannot {what} {files.url} ({exc.strerror or exc})")


# -- the claim --------------------------------------------------------------------------------------
def _claim_body(spec: SweepSpec) -> dict[str, Any]:
    return {"format": STORE_FORMAT, "version": STORE_VERSION, "fingerprint": spec.fingerprint, "spec": spec.to_dict()}


def _digest(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_claim(store: Any) -> dict[str, Any] | None:
    """The claim of ``store`` (``{"format", "version", "fingerprint", "spec"}``), checked against its
    SHA-256; None if it has none. A damaged one is a :class:`SweepError`."""
    files = store if hasattr(store, "read") else store_files(store)
    where = f"{files.url}/{CLAIM}"
    try:
        raw = files.read(CLAIM, _CLAIM_MAX)
    except Unreadable as exc:
        raise SweepError(f"store: {where} is damaged ({exc}); delete the store or use another") from None
    except OSError as exc:
        raise _io_error(files, f"read {CLAIM} in", exc) from None
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
        ok = isinstance(doc, dict) and isinstance(doc.get("body"), dict) and _digest(doc["body"]) == doc.get("sha256")
    except (ValueError, UnicodeDecodeError, RecursionError):
        ok = False
    if not ok:
        raise SweepError(f"store: {where} is damaged (not the claim it was written as: its SHA-256 does not "
                         "match); the store cannot be trusted: delete it or use another")
    body = doc["body"]
    if body.get("format") != STORE_FORMAT or body.get("version") != STORE_VERSION:
        raise SweepError(f"store: {where} is of another store format ({body.get('format')!r} version "
                         f"{body.get('version')!r}; this fastslow writes version {STORE_VERSION}); use another store")
    return body


def _is_empty(files: Any) -> bool:
    for name in files.names():
        if name == LOCK or (name.startswith(".") and name.endswith(".tmp")):
            continue
        return False
    return True


def _refuse_unclaimed(files: Any) -> None:
    if files.names() and {"spec.json", "shards"} & set(files.names()):
        raise SweepError(f"store: {files.url} holds a sweep in the old format (spec.json and shards/ of fastslow "
                         "0.1), which this version does not read; run the sweep into a new store")
    raise SweepError(f"store: {files.url} is not empty and holds no sweep; use an empty or new directory")


# -- an open store ------------------------------------------------------------------------------------
class SweepStore:
    """A store claimed by a running sweep (:func:`open_store`): it holds the lock until
    :meth:`close`. :meth:`write_task` writes a task's chunks (any process may, given
    :meth:`writer_args`), :meth:`log` a run record."""

    def __init__(self, files: Any, spec: SweepSpec, lay: Layout, lock_fd: int | None, fresh: bool) -> None:
        self.files, self.spec, self.layout, self._lock_fd = files, spec, lay, lock_fd
        self.url = files.url
        self.fresh = fresh  # claimed just now: it holds no task yet

    def write_task(self, task: Task, arrays: dict[str, np.ndarray]) -> None:
        write_task(self.files, self.spec, self.layout, task, arrays)

    def log(self, run: dict[str, Any]) -> None:
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:6]}.json"  # sorts by time
        doc = {"run": run, "sha256": _digest(run)}
        try:
            self.files.write(f"{RUNS}/{name}", [json.dumps(doc).encode()])
        except OSError as exc:
            raise _io_error(self.files, "write the run record in", exc) from None

    def close(self) -> None:
        if self._lock_fd is not None:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> SweepStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _lock(files: Any, spec: SweepSpec) -> int | None:
    """Take the store's lock (local directories); refuse at once if a sweep of another spec holds
    it, wait (saying so) if one of this spec does."""
    if not isinstance(files, LocalFiles):
        return None
    path = os.path.join(files.root, LOCK)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        raise _io_error(files, "write to", exc) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            deadline = time.monotonic() + 10.0
            claim = None
            while claim is None and time.monotonic() < deadline:  # the holder writes its claim first thing
                claim = read_claim(files)
                if claim is None:
                    time.sleep(0.05)
            if claim is None or claim["fingerprint"] != spec.fingerprint:
                raise SweepError(f"store: {files.url} is in use by another sweep{holder} of a different spec; "
                                 "use another store") from None
            print(f"fastslow sweep: {files.url} is in use by another sweep of this spec{holder}; waiting for it "
                  "to finish (then only what is missing runs)", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {os.uname().nodename}\n".encode())
    except BaseException:
        os.close(fd)
        raise
    return fd


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").split()
        return f" (pid {text[0]} on {text[1]})" if len(text) >= 2 else ""
    except OSError:
        return ""


def open_store(store: Any, spec: SweepSpec, *, storage_options: dict[str, Any] | None = None) -> SweepStore:
    """Claim ``store`` for ``spec`` before anything runs: create it (or check it is empty), take
    its lock, write the claim first (or check the one there is this spec's), then make its
    metadata and coordinates what the spec's layout says (a damaged file is rewritten, with a
    warning). Refused with a :class:`SweepError` naming the store: a file, an unwritable place, a
    store of another spec or format, a foreign directory."""
    files = store_files(store, storage_options)
    if isinstance(files, LocalFiles):
        if os.path.lexists(files.root) and not files.root.is_dir():
            raise SweepError(f"store: {files.root} exists and is not a directory")
        try:
            files.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _io_error(files, "create", exc) from None
    lock_fd = _lock(files, spec)
    try:
        claim = read_claim(files)
        fresh = claim is None
        if claim is None:
            if not _is_empty(files):
                _refuse_unclaimed(files)
            files.remove_stale_temporaries()
            body = _claim_body(spec)
            try:
                files.write(CLAIM, [json.dumps({"body": body, "sha256": _digest(body)}).encode()], sync=True)
            except OSError as exc:
                raise _io_error(files, "write the claim in", exc) from None
        elif claim["fingerprint"] != spec.fingerprint:
            raise SweepError(f"store: {files.url} holds a different sweep (fingerprint {str(claim['fingerprint'])[:12]}"
                             f"..., this spec {spec.fingerprint[:12]}...); use another store or delete it")
        else:
            files.remove_stale_temporaries()
        lay = layout(spec)
        try:
            static = {k: "missing" for k in lay.static} if fresh else check_static(files, lay)
            for key, bad in static.items():
                if bad != "missing":
                    warnings.warn(f"sweep store: {files.url}/{key} is damaged ({bad}); rewritten from the spec",
                                  RuntimeWarning, stacklevel=3)
                files.write(key, [lay.static[key]])
        except OSError as exc:
            raise _io_error(files, "write to", exc) from None
    except BaseException:
        if lock_fd is not None:
            os.close(lock_fd)
        raise
    return SweepStore(files, spec, lay, lock_fd, fresh)


def check_static(files: Any, lay: Layout) -> dict[str, str]:
    """The metadata and coordinate files that are not what the layout says: key -> why."""
    out = {}
    for key, want in lay.static.items():
        try:
            got = files.read(key, len(want))
        except Unreadable as exc:
            out[key] = str(exc)
            continue
        if got is None:
            out[key] = "missing"
        elif got != want:
            out[key] = "its content differs from what the spec gives"
    return out


# -- writing and reading back ---------------------------------------------------------------------------
def write_task(files: Any, spec: SweepSpec, lay: Layout, task: Task, arrays: dict[str, np.ndarray]) -> None:
    """Write task ``task``'s chunk of every array of its kind, ``*_done`` last (a
    :class:`SweepError` naming the store if it cannot be written, e.g. a full disk)."""
    n_ax = len(spec.shape)
    if task.kind == "ode":
        lo = [i * b for i, b in zip(task.index, spec.block)]
        sub = tuple(min(b, s - x) for b, s, x in zip(spec.block, spec.shape, lo))
    else:
        sub = (1,) * n_ax
    try:
        for a in lay.of_kind(task.kind):
            v = np.ones(task.size, dtype=bool) if a.name.endswith("_done") else np.asarray(arrays[a.name])
            block = v.reshape(sub + v.shape[1:])
            files.write(a.key(task.index + (0,) * (len(a.shape) - n_ax)), a.encode(block))
    except OSError as exc:
        raise SweepError(f"store: cannot write task {task.id} to {files.url} ({exc.strerror or exc})") from None


@dataclass
class Contents:
    """What a store holds, checked: ``arrays`` (name -> per cell, not-done cells at their fill
    value), ``done`` (kind -> per cell) and ``problems`` (task id -> what was wrong with a
    chunk of a task marked done, which therefore counts as not done)."""

    arrays: dict[str, np.ndarray]
    done: dict[str, np.ndarray]
    problems: dict[str, str]


def read_back(files: Any, spec: SweepSpec, lay: Layout | None = None) -> Contents:
    """Read every task array of the store through :func:`~.layout.checked_store`: the done masks
    first (a task finishing meanwhile then counts as not done, never as done with missing data),
    then the data. A task counts as done only if its done chunk says so and each of its chunks is
    whole."""
    import zarr

    from .tasks import plan

    lay = lay or layout(spec)
    problems: dict[str, str] = {}
    zs = checked_store(files, lay, problems)
    n_ax = len(spec.shape)

    def read(name: str) -> np.ndarray:
        return np.asarray(zarr.open_array(zs, path=name, mode="r", zarr_format=3)[...])

    kinds = [k for k in KINDS if f"{k}_done" in lay.arrays]
    done_nd = {k: read(f"{k}_done") for k in kinds}
    arrays_nd = {a.name: read(a.name) for k in kinds for a in lay.of_kind(k) if not a.name.endswith("_done")}
    blocks = {"ode": spec.block, "sgd": (1,) * n_ax}
    tasks = {(t.kind, t.index): t for t in plan(spec)}
    bad: dict[str, str] = {}
    chunk_done = {k: _chunk_all(done_nd[k], blocks[k]) for k in kinds}
    for key, why in problems.items():
        name, _, rest = key.rpartition("/c.")
        a = lay.arrays[name]
        coords = tuple(int(c) for c in rest.split("."))[:n_ax]
        if a.kind is None:  # a coordinate: of no task
            continue
        task = tasks.get((a.kind, coords))
        if task is None:
            continue
        if name.endswith("_done") and why != "missing":
            bad[task.id] = f"{key}: {why}"
        elif not name.endswith("_done") and chunk_done[a.kind][coords]:
            bad.setdefault(task.id, f"{key}: {why}")
    done: dict[str, np.ndarray] = {}
    for k in kinds:
        mask = chunk_done[k].copy()  # per chunk
        for t in tasks.values():
            if t.kind == k and t.id in bad:
                mask[t.index] = False
        per_cell = _expand(mask, blocks[k], spec.shape).reshape(-1)
        done[k] = per_cell
    arrays: dict[str, np.ndarray] = {}
    for name, v in arrays_nd.items():
        a = lay.arrays[name]
        assert a.kind is not None  # a result variable of a kind of task
        flat = v.reshape((spec.n_cells,) + v.shape[n_ax:])
        if a.dtype == "str":  # zarr gives numpy's variable-width StringDType (or objects)
            flat = flat.astype(object).astype(str) if flat.size else flat.astype("U1")
            if flat.dtype.itemsize == 0:
                flat = flat.astype("U1")
        flat = flat.copy() if not flat.flags.writeable else flat
        flat[~done[a.kind]] = a.fill
        arrays[name] = flat
    return Contents(arrays=arrays, done=done, problems=bad)


def _chunk_all(mask: np.ndarray, block: tuple[int, ...]) -> np.ndarray:
    """Per chunk of ``block`` cells: whether every cell in it is True."""
    grid = tuple(-(-s // b) for s, b in zip(mask.shape, block))
    pad = tuple((0, g * b - s) for g, b, s in zip(grid, block, mask.shape))
    m = np.pad(mask, pad, constant_values=True)
    shape = [x for g, b in zip(grid, block) for x in (g, b)]
    return np.asarray(m.reshape(shape).all(axis=tuple(range(1, 2 * len(grid), 2))))


def _expand(per_chunk: np.ndarray, block: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    out = per_chunk
    for ax, b in enumerate(block):
        out = np.repeat(out, b, axis=ax)
    return out[tuple(slice(0, s) for s in shape)]


def read_runs(store: Any) -> list[dict[str, Any]]:
    """The run records of ``store``, oldest first (a damaged one is skipped with a warning)."""
    files = store if hasattr(store, "read") else store_files(store)
    out = []
    for name in files.names(RUNS):
        if not name.endswith(".json") or name.startswith("."):
            continue
        doc: Any
        try:
            raw = files.read(f"{RUNS}/{name}", _RUN_MAX)
            doc = json.loads(raw) if raw is not None else None
            ok = isinstance(doc, dict) and isinstance(doc.get("run"), dict) and _digest(doc["run"]) == doc.get("sha256")
        except (Unreadable, OSError, ValueError, UnicodeDecodeError):
            ok = False
        if ok:
            out.append(doc["run"])
        else:
            warnings.warn(f"sweep store: {files.url}/{RUNS}/{name} is damaged; skipped", RuntimeWarning, stacklevel=2)
    return out

