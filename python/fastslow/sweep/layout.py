"""The zarr layout of a sweep store, its chunk encoding, and reading it back without trusting it.

The layout is a pure function of the spec (:func:`layout`): a zarr v3 group whose arrays are the
dataset's variables with the axes as dimensions (``xarray.open_zarr(STORE)`` opens it as it is),
each chunked so that **one task writes exactly one chunk of every array of its kind**:

* ODE/analysis variables (``ode_m``, ``outcome``, ...): chunks of :attr:`SweepSpec.block` cells over
  the axes (the whole ``t`` dimension); ``ode_done`` / ``ode_error`` chunked the same;
* SGD variables: one cell per chunk (the whole ``record`` dimension); ``sgd_done`` / ``sgd_error``
  the same;
* coordinates (the axes, the fields of zipped axes, ``t``, ``record``): one chunk each, written
  when the store is created.

Why rectangular chunks over the axes rather than a flat cell dimension: xarray and any zarr reader
then see the sweep's own dimensions (no reshape step to know about), a block of cells is still one
contiguous range in C order (:func:`~fastslow.sweep.spec.block_shape`), and no two tasks ever
share a chunk, so writers need no coordination and a chunk is never read-modified-written.

Every chunk is encoded as zarr v3 specifies for the codecs ``bytes`` (little-endian) or
``vlen-utf8``, followed by ``crc32c`` (the 4-byte CRC-32C of the encoded bytes). The writer
encodes chunks itself (:meth:`ArrayLayout.encode`, a few lines over NumPy, numcodecs and
google-crc32c) rather than through ``zarr.Array.__setitem__``, whose per-call machinery (an event
loop, indexing, buffer prototypes) cost several times more CPU per task, CPU taken from the
computing task beside it (profiled: ``bench/RESULTS.md``); zarr reads every chunk back (tests
check the bytes are zarr's own). The chunk keys use the separator ``.`` (``ode_m/c.3.0.0``): a task
then writes files into existing folders only.

Reading back trusts nothing on disk (:func:`checked_store`): metadata documents are served from
the spec-derived layout, never read from the store; a chunk is read only from a regular file (not
a symbolic link, FIFO or device), only if its size is what the metadata allow (exactly, for
numbers), and only if its CRC-32C matches; anything else reads as missing and is reported, so the
task that wrote it counts as not done.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .spec import SweepSpec
from .tasks import save_times
from .variables import DESCRIPTIONS, MAX_TEXT, variables_for

__all__ = ["STORE_FORMAT", "STORE_VERSION", "ArrayLayout", "Layout", "layout", "crc32c", "chunk_ok",
           "checked_store", "Unreadable"]

STORE_FORMAT = "fastslow sweep store (zarr v3)"
#: 2: the variables of the initial law (``level``, ``particle_count``, ``m_abs``, ``sgd_cloud``); a
#: store of version 1 lacks them and is refused by name.
STORE_VERSION = 2

_ZARR_DTYPE = {"f8": "float64", "i4": "int32", "i8": "int64", "bool": "bool", "str": "string"}
_NP_DTYPE: dict[str, np.dtype] = {"f8": np.dtype("<f8"), "i4": np.dtype("<i4"), "i8": np.dtype("<i8"),
                                  "bool": np.dtype("?"), "str": np.dtype(object)}


class Unreadable(Exception):
    """A file that must not be read (not a regular file, or larger than its metadata allow)."""


def crc32c(data: bytes) -> bytes:
    """The CRC-32C of ``data``, 4 bytes little-endian (zarr's ``crc32c`` codec)."""
    import google_crc32c

    return int(google_crc32c.value(data)).to_bytes(4, "little")


def chunk_ok(raw: bytes) -> bool:
    """Whether ``raw`` ends in the CRC-32C of what precedes it."""
    return len(raw) >= 4 and crc32c(raw[:-4]) == raw[-4:]


def _fill_json(fill: Any, dtype: str) -> Any:
    if dtype == "f8":
        return "NaN" if math.isnan(fill) else fill
    return fill


@dataclass(frozen=True)
class ArrayLayout:
    """One array of the store.

    Attributes
    ----------
    name, shape, chunks, dims
    dtype : str
        ``"f8"``, ``"i4"``, ``"i8"``, ``"bool"`` or ``"str"``.
    fill : object
    attrs : dict
    kind : str or None
        ``"ode"`` / ``"sgd"``: written by the tasks of that kind, one chunk each; None: written
        with the store (a coordinate).
    """

    name: str
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: str
    fill: Any
    dims: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    kind: str | None = None

    def key(self, coords: tuple[int, ...]) -> str:
        """The store key of the chunk at ``coords`` (zarr's default chunk-key encoding with the
        separator ``.``: every chunk of an array in its folder, so a task makes no folders)."""
        return f"{self.name}/c." + ".".join(str(int(c)) for c in coords)

    def metadata(self) -> dict[str, Any]:
        """The array's ``zarr.json`` document (zarr v3)."""
        ser: dict[str, Any]
        if self.dtype == "str":
            ser = {"name": "vlen-utf8", "configuration": {}}
        elif self.dtype == "bool":
            ser = {"name": "bytes"}
        else:
            ser = {"name": "bytes", "configuration": {"endian": "little"}}
        return {"zarr_format": 3, "node_type": "array", "shape": list(self.shape), "data_type": _ZARR_DTYPE[self.dtype],
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(self.chunks)}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "."}},
                "fill_value": _fill_json(self.fill, self.dtype), "codecs": [ser, {"name": "crc32c"}],
                "attributes": self.attrs, "dimension_names": list(self.dims), "storage_transformers": []}

    @property
    def max_bytes(self) -> int:
        """The largest an encoded chunk may be (a number's is exactly this)."""
        n = int(np.prod(self.chunks))
        if self.dtype == "str":
            return 4 + n * (4 + 4 * MAX_TEXT) + 4
        return n * _NP_DTYPE[self.dtype].itemsize + 4

    def encode(self, block: np.ndarray) -> list[bytes]:
        """One chunk's bytes: ``block`` (of at most the chunk's shape; an edge chunk is padded with
        the fill value, as zarr does) encoded, then its CRC-32C."""
        block = np.asarray(block)
        if block.shape != self.chunks:
            full = np.full(self.chunks, self.fill, dtype=_NP_DTYPE[self.dtype])
            full[tuple(slice(0, s) for s in block.shape)] = block
            block = full
        if self.dtype == "str":
            from numcodecs.vlen import VLenUTF8

            data = bytes(VLenUTF8().encode(np.asarray(block, dtype=object).ravel()))
        else:
            data = np.ascontiguousarray(block, dtype=_NP_DTYPE[self.dtype]).tobytes()
        return [data, crc32c(data)]


@dataclass(frozen=True)
class Layout:
    """Every array of a sweep's store, and the files written with the store (``static``: the
    metadata documents and the coordinates' chunks, key -> bytes)."""

    arrays: dict[str, ArrayLayout]
    static: dict[str, bytes]
    attrs: dict[str, Any]

    def of_kind(self, kind: str) -> list[ArrayLayout]:
        """The arrays the tasks of ``kind`` write, data first, ``*_done`` last."""
        out = [a for a in self.arrays.values() if a.kind == kind]
        return sorted(out, key=lambda a: a.name == f"{kind}_done")


def _dtype_of(values: np.ndarray) -> str:
    k = values.dtype.kind
    return {"f": "f8", "i": "i8", "u": "i8", "b": "bool", "U": "str", "O": "str"}[k]


def layout(spec: SweepSpec) -> Layout:
    """The store layout of ``spec`` (see the module documentation)."""
    dims = tuple(a.name for a in spec.axes)
    shape = spec.shape
    arrays: dict[str, ArrayLayout] = {}
    coord_data: dict[str, np.ndarray] = {}
    field_coords = []
    for ax in spec.axes:
        coord_data[ax.name] = ax.coord
        arrays[ax.name] = ArrayLayout(ax.name, (ax.size,), (ax.size,), _dtype_of(ax.coord), _NP_FILL[_dtype_of(ax.coord)],
                                      (ax.name,))
        for p, v in zip(ax.fields, ax.values):
            if p != ax.name:
                coord_data[p] = v
                field_coords.append(p)
                arrays[p] = ArrayLayout(p, (ax.size,), (ax.size,), _dtype_of(v), _NP_FILL[_dtype_of(v)], (ax.name,))
    t = save_times(spec.base.ode.t_max, spec.base.ode.points)
    record = spec.base.sgd.record
    if "ode" in spec.compute:
        coord_data["t"] = np.asarray(t)
        arrays["t"] = ArrayLayout("t", (t.size,), (t.size,), "f8", math.nan, ("t",),
                                  {"units": "ODE time (SGD steps x dt)", "description": "save points (0 and log-spaced)"})
    if "sgd" in spec.compute:
        coord_data["record"] = np.arange(record, dtype=np.int64)
        arrays["record"] = ArrayLayout("record", (record,), (record,), "i8", 0, ("record",))
    coords_attr = {"coordinates": " ".join(field_coords)} if field_coords else {}
    for var in variables_for(spec.compute):
        block = spec.block if var.kind == "ode" else (1,) * len(shape)
        extra = (t.size,) if var.extra == "t" else (record,) if var.extra == "record" else ()
        arrays[var.name] = ArrayLayout(var.name, shape + extra, block + extra, var.dtype, var.fill,
                                       dims + ((var.extra,) if var.extra else ()),
                                       {"description": DESCRIPTIONS[var.name], **coords_attr}, var.kind)
    attrs = {"title": "fastslow sweep", "store_format": STORE_FORMAT, "store_version": STORE_VERSION,
             "fingerprint": spec.fingerprint, "spec": spec.json, "compute": ",".join(spec.compute)}
    docs = {name: a.metadata() for name, a in arrays.items()}
    root = {"zarr_format": 3, "node_type": "group", "attributes": attrs,
            "consolidated_metadata": {"kind": "inline", "must_understand": False, "metadata": docs}}
    static = {"zarr.json": _json_bytes(root)}
    for name, doc in docs.items():
        static[f"{name}/zarr.json"] = _json_bytes(doc)
    for name, values in coord_data.items():
        a = arrays[name]
        static[a.key((0,))] = b"".join(a.encode(np.asarray(values)))
    return Layout(arrays=arrays, static=static, attrs=attrs)


_NP_FILL = {"f8": math.nan, "i8": 0, "bool": False, "str": "", "i4": 0}


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def checked_store(files: Any, lay: Layout, problems: dict[str, str]) -> Any:
    """A read-only zarr store over a sweep store's files that trusts nothing on them.

    ``zarr.json`` documents come from ``lay`` (the spec's layout); chunks are read through
    ``files.read`` (regular files only, at most the array's :attr:`~ArrayLayout.max_bytes`) and
    checked (exact size for numbers, CRC-32C). A chunk that is missing, unreadable or damaged
    reads as the fill value and is reported in ``problems`` (key -> reason).
    """
    from zarr.storage import MemoryStore

    return _checked_class()(MemoryStore(read_only=True), files, lay, problems)


@functools.lru_cache(maxsize=1)
def _checked_class() -> type:
    from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
    from zarr.core.buffer import default_buffer_prototype
    from zarr.storage import WrapperStore

    class CheckedStore(WrapperStore):
        def __init__(self, store: Any, files: Any, lay: Layout, problems: dict[str, str]) -> None:
            super().__init__(store)
            self._files, self._lay, self._problems = files, lay, problems

        def _with_store(self, store: Any) -> CheckedStore:
            return CheckedStore(store, self._files, self._lay, self._problems)

        async def get(self, key: str, prototype: Any = None, byte_range: Any = None) -> Any:
            raw = await asyncio.to_thread(_checked_read, self._files, self._lay, self._problems, key)
            if raw is None:
                return None
            if isinstance(byte_range, RangeByteRequest):  # unsharded arrays read whole chunks
                raw = raw[byte_range.start:byte_range.end]
            elif isinstance(byte_range, OffsetByteRequest):
                raw = raw[byte_range.offset:]
            elif isinstance(byte_range, SuffixByteRequest):
                raw = raw[-byte_range.suffix:]
            return (prototype or default_buffer_prototype()).buffer.from_bytes(raw)

        async def get_partial_values(self, prototype: Any, key_ranges: Any) -> list[Any]:
            return [await self.get(k, prototype, r) for k, r in key_ranges]

        async def exists(self, key: str) -> bool:
            return await asyncio.to_thread(_checked_read, self._files, self._lay, {}, key) is not None

    return CheckedStore


def _checked_read(files: Any, lay: Layout, problems: dict[str, str], key: str) -> bytes | None:
    if key == "zarr.json" or key.endswith("/zarr.json"):
        return lay.static.get(key)
    name, sep, _ = key.rpartition("/c.")
    a = lay.arrays.get(name)
    if not sep or a is None:
        return None
    try:
        raw = files.read(key, a.max_bytes)
    except Unreadable as exc:
        problems[key] = str(exc)
        return None
    except OSError as exc:
        problems[key] = f"unreadable ({exc.strerror or exc})"
        return None
    if raw is None:
        problems[key] = "missing"
        return None
    if a.dtype != "str" and len(raw) != a.max_bytes:
        problems[key] = f"{len(raw)} bytes, not the {a.max_bytes} of its shape and dtype"
        return None
    if not chunk_ok(raw):
        problems[key] = "CRC-32C mismatch"
        return None
    return raw
