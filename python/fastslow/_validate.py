"""Argument checks shared by the public API: every failure is a ValueError that names the argument,
says what was given and what is allowed (never a TypeError from deep inside NumPy, an
``ambiguous truth value`` or a silent NaN)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def real(x: Any, name: str, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
         hi_open: bool = False, finite: bool = True) -> float:
    """A real number (Python or NumPy scalar, or a 0-d array; not a bool or a string)."""
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x.item()
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise ValueError(f"{name}: must be a real number{_range(lo, hi, lo_open, hi_open)}, got {_show(x)}")
    try:
        v = float(x)
    except (OverflowError, ValueError, TypeError):
        raise ValueError(f"{name}: must be a real number{_range(lo, hi, lo_open, hi_open)}, got {_show(x)}") from None
    if math.isnan(v) or (finite and math.isinf(v)):
        raise ValueError(f"{name}: must be {'finite' if finite else 'a number'}{_range(lo, hi, lo_open, hi_open)}, "
                         f"got {v!r}")
    if (lo is not None and (v < lo or (lo_open and v == lo))) or (hi is not None and (v > hi or (hi_open and v == hi))):
        raise ValueError(f"{name}: must be{_range(lo, hi, lo_open, hi_open)}, got {v!r}")
    return v


def real_array(x: Any, name: str) -> np.ndarray:
    """A float64 array of real values: complex input is refused (NumPy would drop the imaginary
    part with only a warning), and anything not convertible gets a ValueError naming ``name``."""
    try:
        if np.iscomplexobj(x) or (isinstance(x, (list, tuple)) and np.iscomplexobj(np.asarray(x))):
            raise ValueError(f"{name}: must be real, got complex values")
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError, OverflowError) as exc:
        if str(exc).startswith(f"{name}:"):
            raise
        raise ValueError(f"{name}: must be real numbers or an array of them, got {_show(x)}") from None


def integer(x: Any, name: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """An integer (Python or NumPy; not a bool, not a float)."""
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x.item()
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise ValueError(f"{name}: must be an integer{_range(lo, hi)}, got {_show(x)}")
    v = int(x)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name}: must be an integer{_range(lo, hi)}, got {v!r}")
    return v


def flag(x: Any, name: str) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    raise ValueError(f"{name}: must be True or False, got {_show(x)}")


def choice(x: Any, name: str, allowed: Any) -> str:
    if not isinstance(x, str) or x not in allowed:
        raise ValueError(f"{name}: must be one of {', '.join(repr(a) for a in allowed)}, got {_show(x)}")
    return x


def _range(lo: Any, hi: Any, lo_open: bool = False, hi_open: bool = False) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return (" " + " and ".join(parts)) if parts else ""


def _show(x: Any) -> str:
    r = repr(x)
    if len(r) > 60:
        r = r[:57] + "..."
    return f"{r} ({type(x).__name__})"
