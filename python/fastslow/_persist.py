"""Results to plain data and back: any tree of fastslow's frozen dataclasses, arrays, numbers,
strings, tuples, lists, dicts, enums and complex numbers becomes a JSON tree plus a dict of named
arrays (for one ``.npz``), and comes back as the same objects.

Only dataclasses defined in fastslow's own modules are rebuilt (a file cannot make this module
import or call anything else), arrays are read without pickles, and fields a class does not
declare are refused. Dense outputs and other callables are not stored (they come back as None).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import math
from typing import Any

import numpy as np

__all__ = ["dump", "restore"]

_ARRAY, _TYPE, _COMPLEX, _TUPLE, _FLOAT, _ENUM = "__array__", "__type__", "__complex__", "__tuple__", "__float__", "__enum__"


def _type_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def dump(obj: Any, arrays: dict[str, np.ndarray], path: str = "r") -> Any:
    """The JSON-ready tree of ``obj``; its arrays are added to ``arrays`` under keys derived from
    ``path`` (so one dict can hold the arrays of a whole result)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, enum.Enum):
        return {_ENUM: _type_name(type(obj)), "value": obj.value}
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, np.bool_):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else {_FLOAT: repr(v)}
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (complex, np.complexfloating)):
        return {_COMPLEX: [dump(obj.real, arrays), dump(obj.imag, arrays)]}
    if isinstance(obj, np.ndarray):
        a = obj if obj.flags.c_contiguous else np.ascontiguousarray(obj)  # (keeps 0-d arrays 0-d)
        if a.dtype.hasobject:
            a = a.astype(str)
        key = path
        i = 1
        while key in arrays:
            i += 1
            key = f"{path}~{i}"
        arrays[key] = a
        return {_ARRAY: key}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {_TYPE: _type_name(type(obj))}
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            out[f.name] = None if callable(v) and not dataclasses.is_dataclass(v) else dump(v, arrays, f"{path}.{f.name}")
        return out
    if isinstance(obj, tuple):
        return {_TUPLE: [dump(v, arrays, f"{path}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [dump(v, arrays, f"{path}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)):
                raise TypeError(f"{path}: keys must be strings, got {type(k).__name__}")
        return {str(k): dump(v, arrays, f"{path}.{k}") for k, v in obj.items()}
    if hasattr(obj, "to_dict"):
        return dump(obj.to_dict(), arrays, path)
    if callable(obj):
        return None
    raise TypeError(f"{path}: cannot store a {type(obj).__name__}")


def _resolve(name: Any) -> type:
    if not isinstance(name, str) or ":" not in name:
        raise ValueError(f"bad type reference {name!r}")
    module, qual = name.split(":", 1)
    if module != "fastslow" and not module.startswith("fastslow."):
        raise ValueError(f"refusing to rebuild {name!r}: not a fastslow type")
    obj: Any = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise ValueError(f"{name!r} is not a class")
    return obj


def restore(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The objects :func:`dump` described (``ValueError`` for anything it cannot have written)."""
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, list):
        return [restore(v, arrays) for v in tree]
    if not isinstance(tree, dict):
        raise ValueError(f"unexpected {type(tree).__name__} in a stored result")
    if _ARRAY in tree:
        key = tree[_ARRAY]
        if key not in arrays:
            raise ValueError(f"the array {key!r} is missing")
        return arrays[key]
    if _FLOAT in tree:
        return float(tree[_FLOAT])
    if _COMPLEX in tree:
        re, im = tree[_COMPLEX]
        return complex(restore(re, arrays), restore(im, arrays))
    if _TUPLE in tree:
        return tuple(restore(v, arrays) for v in tree[_TUPLE])
    if _ENUM in tree:
        cls = _resolve(tree[_ENUM])
        if not issubclass(cls, enum.Enum):
            raise ValueError(f"{tree[_ENUM]!r} is not an enum")
        return cls(tree["value"])
    if _TYPE in tree:
        cls = _resolve(tree[_TYPE])
        if not dataclasses.is_dataclass(cls):
            raise ValueError(f"{tree[_TYPE]!r} is not a fastslow result type")
        names = {f.name for f in dataclasses.fields(cls)}
        extra = set(tree) - names - {_TYPE}
        if extra:
            raise ValueError(f"{tree[_TYPE]}: unknown fields {sorted(extra)}")
        kw = {k: restore(v, arrays) for k, v in tree.items() if k != _TYPE}
        return cls(**kw)
    return {k: restore(v, arrays) for k, v in tree.items()}
