"""Helpers shared by the benchmark scripts: machine description, tables, JSON, agreement checks."""

from __future__ import annotations

import datetime
import json
import math
import os
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


def finish(checker: "Checker", elapsed: float, results: dict[str, Any], path: Path) -> int:
    """Print the agreement summary, save the results as JSON and return the exit status (1 when any
    implementation disagreed with the reference: a fast wrong answer is not a result)."""
    failures = checker.failures
    print(f"agreement checks: {len(checker.checks) - len(failures)} of {len(checker.checks)} passed")
    for f in failures:
        print(f"  FAILED: {f['label']}: {f['error']:.2e} > {f['tol']:.0e}")
    for note in checker.notes:
        print(f"  note: {note}")
    print(f"total time {fmt_time(elapsed)}")
    results = {**results, "checks": checker.checks, "notes": checker.notes, "passed": not failures,
               "elapsed": elapsed}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(to_jsonable(results), fh, indent=1)
        fh.write("\n")
    print(f"results saved to {path}")
    if failures:
        print(f"FAILED: {len(failures)} disagreement(s) with the reference (exit status 1)")
        return 1
    return 0


def base_machine_info() -> dict[str, Any]:
    """CPU, cores, Python, NumPy and fastslow versions, date and source revision (each script adds
    the libraries it compares against)."""
    import fastslow as fs
    from fastslow.ode import default_threads

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "fastslow_default_threads": default_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "fastslow": fs.__version__,
        "fastslow_path": str(Path(fs.__file__).parent),
        "date": datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds"),
        "git": git_state(Path(__file__).resolve().parent.parent),
    }


def print_header(title: str, info: dict[str, Any], quick: bool, versions: str) -> None:
    """The machine block that opens every benchmark's output."""
    print(title + (" (--quick)" if quick else ""))
    print(f"  date      {info['date']}")
    print(f"  cpu       {info['cpu']}, {info['logical_cores']} logical cores, {info['usable_cores']} usable "
          f"(fastslow default threads: {info['fastslow_default_threads']})")
    print(f"  platform  {info['platform']}, Python {info['python']}")
    print(f"  versions  {versions}")


def source_revision(info: dict[str, Any]) -> str:
    """The commit the benchmark ran from, marked when the tree had local changes."""
    git = info["git"]
    return (git["commit"] or "unknown")[:12] + (" (dirty tree)" if git["dirty"] else "")

