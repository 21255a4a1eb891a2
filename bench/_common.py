"""Helpers shared by the benchmark scripts: machine description, tables, JSON, agreement checks."""

from __future__ import annotations

import math
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


def cpu_model() -> str:
    """CPU model name from ``/proc/cpuinfo`` (or ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state(repo: Path) -> dict[str, Any]:
    """Commit of the source tree and whether it has local changes (read-only git calls)."""
    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "--no-optional-locks", "-C", str(repo), *args],
                                 capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def section(title: str) -> None:
    print(f"\n{title}\n{'=' * len(title)}", flush=True)


def to_jsonable(obj: Any) -> Any:
    """NumPy scalars and arrays, tuples and dataclass timings as plain JSON data."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "to_dict"):  # the scripts' timing records
        return to_jsonable(obj.to_dict())
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Fixed-width table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def fmt_time(seconds: float) -> str:
    """A duration with a readable unit (``us``, ``ms``, ``s``)."""
    if not math.isfinite(seconds):
        return str(seconds)
    if abs(seconds) < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if abs(seconds) < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3g} s" if abs(seconds) < 100 else f"{seconds:.0f} s"


def fmt_ratio(x: float) -> str:
    """A ratio such as ``1.23x``."""
    return f"{x:.3g}x" if x < 100 else f"{x:.0f}x"


class Checker:
    """Collects agreement checks; the run fails if any of them exceeds its tolerance."""

    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def check(self, label: str, error: float, tol: float) -> bool:
        """Record ``error <= tol``; print a line at once when it fails."""
        ok = bool(error <= tol)
        self.checks.append({"label": label, "error": error, "tol": tol, "ok": ok})
        if not ok:
            print(f"  DISAGREEMENT: {label}: {error:.2e} > {tol:.0e}", flush=True)
        return ok

    def note(self, text: str) -> None:
        """Something worth reporting that is not a failure."""
        self.notes.append(text)

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if not c["ok"]]


@dataclass(frozen=True)
class Timing:
    """Wall-clock statistics of repeated calls, in seconds."""

    median: float
    min: float
    q25: float
    q75: float
    repeats: int

    @property
    def iqr(self) -> float:
        """Interquartile spread ``q75 - q25``."""
        return self.q75 - self.q25

    @classmethod
    def from_samples(cls, samples: Sequence[float]) -> "Timing":
        x = np.asarray(samples, dtype=float)
        q25, med, q75 = np.percentile(x, [25, 50, 75])
        return cls(median=float(med), min=float(x.min()), q25=float(q25), q75=float(q75), repeats=int(x.size))

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "iqr": self.iqr}
