"""The one place where arguments are checked.

Every check raises ``TypeError`` for a value of the wrong type (a string, a bool or a complex
number where a real is expected) and ``ValueError`` for a value of the right type that is out of
range, NaN or of the wrong shape; both messages name the field, what was given and what is
allowed. Nothing reaches the C++ core unchecked (it checks again, for memory safety).

Ranges of named parameters live in :mod:`fastslow.params`; this module holds the mechanics.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["real", "integer", "flag", "choice", "real_array", "times", "allowed", "show"]


def allowed(lo: Any = None, hi: Any = None, lo_open: bool = False, hi_open: bool = False) -> str:
    """`` >= lo and <= hi`` (the part of a message that states a range)."""
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {_num(lo)}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {_num(hi)}")
    return (" " + " and ".join(parts)) if parts else ""


def _num(x: Any) -> str:
    if isinstance(x, int) and abs(x) >= 10**6:
        return f"{x:,}" if x < 2**40 else (f"2**{int(math.log2(x + 1))} - 1" if (x + 1) & x == 0 else f"{x:.6g}")
    return f"{x:g}" if isinstance(x, float) else str(x)


def show(x: Any) -> str:
    """A short, safe rendering of a bad value for an error message."""
    try:
        r = repr(x)
    except Exception:  # pragma: no cover - a hostile __repr__
        r = "<unprintable>"
    if len(r) > 60:
        r = r[:57] + "..."
    return f"{r} ({type(x).__name__})"


def _is_real_scalar(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def real(x: Any, name: str, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
         hi_open: bool = False, finite: bool = True) -> float:
    """A real number (a Python or NumPy real scalar, or a 0-d real array): ``TypeError`` for
    anything else (bools, strings, complex numbers), ``ValueError`` for NaN, infinities (unless
    ``finite=False``), values that overflow a float and values out of range."""
    if type(x) is float:  # the common case, first
        v = x
    else:
        if isinstance(x, np.ndarray) and x.ndim == 0:
            x = x[()]
        if not _is_real_scalar(x):
            raise TypeError(f"{name}: must be a real number{allowed(lo, hi, lo_open, hi_open)}, got {show(x)}")
        try:
            v = float(x)
        except OverflowError:
            raise ValueError(f"{name}: must be a finite real number{allowed(lo, hi, lo_open, hi_open)}, got "
                             f"{show(x)} (too large for a float)") from None
    if v != v or (finite and (v == math.inf or v == -math.inf)):
        raise ValueError(f"{name}: must be {'finite' if finite else 'a number, not NaN'}"
                         f"{allowed(lo, hi, lo_open, hi_open)}, got {v!r}")
    if (lo is not None and (v < lo or (lo_open and v == lo))) or (hi is not None and (v > hi or (hi_open and v == hi))):
        raise ValueError(f"{name}: must be{allowed(lo, hi, lo_open, hi_open)}, got {v!r}")
    return v


def integer(x: Any, name: str, *, lo: int | None = None, hi: int | None = None) -> int:
    """An integer (Python or NumPy; not a bool, not a float): ``TypeError`` otherwise,
    ``ValueError`` out of range."""
    if isinstance(x, np.ndarray) and x.ndim == 0:
        x = x[()]
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{name}: must be an integer{allowed(lo, hi)}, got {show(x)}")
    v = int(x)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name}: must be an integer{allowed(lo, hi)}, got {v!r}")
    return v


def flag(x: Any, name: str) -> bool:
    """True or False (a Python or NumPy bool)."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    raise TypeError(f"{name}: must be True or False, got {show(x)}")


def choice(x: Any, name: str, options: Any) -> str:
    """One of the strings ``options``."""
    opts = ", ".join(repr(a) for a in options)
    if not isinstance(x, str):
        raise TypeError(f"{name}: must be one of {opts}, got {show(x)}")
    if x not in options:
        raise ValueError(f"{name}: must be one of {opts}, got {x!r}")
    return x


def real_array(x: Any, name: str, *, ndim: int | None = None, finite: bool = True, nonempty: bool = False) -> np.ndarray:
    """A float64 array of real values. ``TypeError`` for complex, boolean, string or object input
    (NumPy would drop an imaginary part with only a warning), ``ValueError`` for NaN/inf (with
    ``finite``), a wrong number of dimensions or an empty array (with ``nonempty``)."""
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError, OverflowError):
            raise TypeError(f"{name}: must be real numbers or an array of them, got {show(x)}") from None
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name}: must be real, got complex values")
    if kind not in "fiu":
        if kind == "O":
            try:
                if all(_is_real_scalar(v) for v in arr.ravel().tolist()):
                    arr = arr.astype(float)
                    kind = "f"
            except (TypeError, ValueError, OverflowError):
                pass
        if kind not in "fiu":
            raise TypeError(f"{name}: must be real numbers or an array of them, got {show(x)}")
    try:
        out = np.asarray(arr, dtype=float)
    except OverflowError:
        raise ValueError(f"{name}: values too large for a float") from None
    if ndim is not None and out.ndim != ndim:
        raise ValueError(f"{name}: must be a {ndim}-D array, got shape {out.shape}")
    if nonempty and out.size == 0:
        raise ValueError(f"{name}: must not be empty")
    if finite and out.size and not np.all(np.isfinite(out)):
        i = int(np.flatnonzero(~np.isfinite(out.ravel()))[0])
        raise ValueError(f"{name}: every value must be finite (entry {i} is {out.ravel()[i]!r})")
    return out


def times(t_eval: Any, name: str = "t_eval") -> np.ndarray:
    """Save times: a non-empty, strictly increasing 1-D array of finite times ``>= 0``."""
    if t_eval is None:
        raise TypeError(f"{name}: required (an increasing array of times >= 0; see fastslow.log_times)")
    if type(t_eval) is np.ndarray and t_eval.dtype == np.float64 and t_eval.ndim == 1 and t_eval.size:
        t = t_eval  # the common case; the checks below cover NaN and inf too
        if t[0] >= 0 and t[-1] < math.inf and (t.size == 1 or bool((t[1:] > t[:-1]).all())):
            return t if t.flags.c_contiguous else np.ascontiguousarray(t)
    t = np.atleast_1d(real_array(t_eval, name))
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"{name}: must be a non-empty 1-D array of times, got shape {t.shape}")
    if t[0] < 0:
        raise ValueError(f"{name}: times must be >= 0 (the dynamics start at t = 0), got {t[0]!r}")
    if t.size > 1 and not np.all(np.diff(t) > 0):
        i = int(np.flatnonzero(np.diff(t) <= 0)[0]) + 1
        raise ValueError(f"{name}: times must be strictly increasing; {name}[{i}] = {t[i]!r} <= "
                         f"{name}[{i - 1}] = {t[i - 1]!r}")
    return np.ascontiguousarray(t)

