"""What every benchmark shares: the machine's description (CPU, cores, thread pools and BLAS kernels,
thread environment, source revision, sgemm peak), the timing harness, agreement checks, the command
line, tables and the JSON file.

A benchmark script holds its workloads only; the implementations it compares fastslow with (its
peers) live in their own ``_*_peer(s).py`` files.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import importlib
import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"

# =============================================================================================
# The machine
# =============================================================================================

#: Environment variables that change how many threads a library starts or which kernel it runs.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE",
                   "OPENBLAS_L2_SIZE", "OMP_WAIT_POLICY", "FASTSLOW_NUM_THREADS")


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


def thread_env() -> dict[str, str]:
    """The thread and kernel variables of :data:`THREAD_ENV_VARS` that are set."""
    return {k: os.environ[k] for k in THREAD_ENV_VARS if k in os.environ}


def _threadpoolctl() -> Any:
    try:
        import threadpoolctl
    except Exception:  # pragma: no cover - optional
        return None
    return threadpoolctl


def optional_version(module: str) -> str:
    """The version of an optional library, or why it is missing."""
    try:
        return importlib.import_module(module).__version__
    except Exception as exc:  # ImportError and friends
        return f"not importable ({type(exc).__name__}: {exc})"


def thread_pools() -> list[dict[str, Any]] | None:
    """The thread pools loaded in this process (threadpoolctl), each tagged with its owner; None
    without threadpoolctl. ``architecture`` is the BLAS kernel OpenBLAS chose for this CPU."""
    tpc = _threadpoolctl()
    if tpc is None:
        return None
    out = []
    for p in tpc.threadpool_info():
        path = p.get("filepath") or ""
        owner = ("numpy" if "numpy" in path else "fastslow (scipy-openblas32)" if "scipy_openblas32" in path
                 else "scipy" if "scipy" in path else "torch" if "torch" in path else "system")
        out.append({"owner": owner, "user_api": p.get("user_api"), "internal_api": p.get("internal_api"),
                    "version": p.get("version"), "num_threads": p.get("num_threads"),
                    "architecture": p.get("architecture"), "threading_layer": p.get("threading_layer"),
                    "filepath": path})
    return out


def numpy_blas(pools: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """NumPy's BLAS pool among ``pools``, or None when unknown."""
    mine = [p for p in pools or () if p["owner"] == "numpy" and p["user_api"] == "blas"]
    return mine[0] if mine else None


def numpy_blas_threads(pools: list[dict[str, Any]] | None) -> str:
    """NumPy's BLAS, its kernel and thread count as a short string."""
    if pools is None:
        return "unknown (threadpoolctl not importable)"
    p = numpy_blas(pools)
    if p is None:
        return "unknown (NumPy's BLAS not found by threadpoolctl)"
    return f"{p['num_threads']} ({p['internal_api']} {p['version']}, {p['architecture']})"


def base_machine_info() -> dict[str, Any]:
    """CPU, cores, thread pools and environment, Python, NumPy and fastslow versions, date and source
    revision (each script adds the libraries it compares against)."""
    import fastslow as fs
    from fastslow._runtime import default_threads, usable_cores

    tpc = _threadpoolctl()
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "fastslow_default_threads": default_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "fastslow": fs.__version__,
        "fastslow_path": str(Path(fs.__file__).parent),
        "threadpoolctl": None if tpc is None else tpc.__version__,
        "thread_env": thread_env(),
        "thread_pools": thread_pools(),
        "date": datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds"),
        "git": git_state(HERE.parent),
    }


def source_revision(info: dict[str, Any]) -> str:
    """The commit the benchmark ran from, marked when the tree had local changes."""
    git = info["git"]
    return (git["commit"] or "unknown")[:12] + (" (dirty tree)" if git["dirty"] else "")


def print_header(title: str, info: dict[str, Any], quick: bool, versions: str) -> None:
    """The machine block that opens every benchmark's output."""
    print(title + (" (--quick)" if quick else ""))
    print(f"  date      {info['date']}")
    print(f"  cpu       {info['cpu']}, {info['logical_cores']} logical cores, {info['usable_cores']} usable "
          f"(fastslow default threads: {info['fastslow_default_threads']})")
    print(f"  platform  {info['platform']}, Python {info['python']}")
    print(f"  versions  {versions}")
    env = info.get("thread_env", {})
    print(f"  env       {', '.join(f'{k}={v}' for k, v in env.items()) or 'no thread variables set'}")
    for p in info.get("thread_pools") or ():
        print(f"  pool      {p['owner']}: {p['internal_api']} {p['version'] or ''} "
              f"{p['num_threads']} threads{', ' + p['architecture'] if p['architecture'] else ''} "
              f"({os.path.basename(p['filepath'])})")
    print(f"  source    {source_revision(info)}; fastslow imported from {info['fastslow_path']}", flush=True)


# -- the sgemm peak -----------------------------------------------------------------------------
#: Square size of the sgemm-peak matmul.
PEAK_SIZE = 4096


def sgemm_peak(lib: str = "numpy", repeats: int = 3, size: int = PEAK_SIZE) -> dict[str, Any]:
    """Best of ``repeats`` square float32 matmuls ``size^3`` into a preallocated, touched output, in
    GFLOP/s, each after :func:`quiesce` and a small warm-up product that wakes the library's threads.

    ``lib`` is ``"numpy"`` or ``"torch"`` (which must then be importable).
    """
    g = np.random.default_rng(2)
    A = g.standard_normal((size, size), dtype=np.float32)
    Bm = g.standard_normal((size, size), dtype=np.float32)
    C = np.zeros_like(A)
    C.fill(1.0)  # touch every page before the timing
    small = min(size, 512)
    if lib == "numpy":
        def fn() -> None:
            np.matmul(A, Bm, out=C)

        def warm() -> None:
            np.matmul(A[:small, :small], Bm[:small, :small], out=C[:small, :small])
    elif lib == "torch":
        import torch

        At, Bt, Ct = torch.from_numpy(A), torch.from_numpy(Bm), torch.from_numpy(C)

        def fn() -> None:
            torch.mm(At, Bt, out=Ct)

        def warm() -> None:
            torch.mm(At[:small, :small], Bt[:small, :small])
    else:
        raise ValueError(f"sgemm_peak: unknown library {lib!r}")
    times = []
    for _ in range(repeats):
        quiesce()
        warm()
        times.append(once(fn))
    best = min(times)
    return {"lib": lib, "size": size, "repeats": repeats, "best_seconds": best,
            "median_seconds": float(np.median(times)), "gflops": 2.0 * size**3 / best / 1e9}


def measure_peaks(libs: Sequence[str], repeats: int, when: str) -> list[dict[str, Any]]:
    """:func:`sgemm_peak` of each library, printed as one line (``when``: "before", "after")."""
    peaks = [sgemm_peak(lib, repeats) for lib in libs]
    print(f"sgemm peak {when} the workloads (float32 {PEAK_SIZE}^3, best of {repeats}): "
          + ", ".join(f"{p['lib']} {p['gflops']:.1f} GFLOP/s" for p in peaks), flush=True)
    return peaks


def peak_summary(before: list[dict[str, Any]], after: list[dict[str, Any]], checker: Checker) -> dict[str, Any]:
    """The sgemm peak measured before and after the workloads: print both, note a drift of more than
    10 % (the machine's speed changed during the run) and use the best."""
    best_before = max(p["gflops"] for p in before)
    best_after = max(p["gflops"] for p in after)
    used = max(before + after, key=lambda p: p["gflops"])
    print("sgemm peak before / after the workloads: " + "; ".join(
        f"{a['lib']} {a['gflops']:.1f} / {b['gflops']:.1f} GFLOP/s" for a, b in zip(before, after))
        + f"; the best, {used['gflops']:.1f} GFLOP/s ({used['lib']}), is the machine's peak", flush=True)
    if abs(best_after - best_before) > 0.1 * used["gflops"]:
        checker.note(f"the sgemm peak moved by more than 10% during the run ({best_before:.1f} -> "
                     f"{best_after:.1f} GFLOP/s): the machine's speed drifted")
    return {"before": before, "after": after, "used_gflops": used["gflops"], "used_lib": used["lib"]}


# =============================================================================================
# Timing
# =============================================================================================


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
    def from_samples(cls, samples: Sequence[float]) -> Timing:
        x = np.asarray(samples, dtype=float)
        q25, med, q75 = np.percentile(x, [25, 50, 75])
        return cls(median=float(med), min=float(x.min()), q25=float(q25), q75=float(q75), repeats=int(x.size))

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "iqr": self.iqr}


@dataclass
class Timed:
    """One callable of an interleaved measurement: ``fn()`` does ``steps`` steps (or units of work)
    and is timed ``calls`` times in every round."""

    fn: Callable[[], Any]
    steps: int = 1
    calls: int = 1


@contextlib.contextmanager
def gc_disabled() -> Iterator[None]:
    """No garbage collection inside the block (it would land in whichever call is being timed)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def once(fn: Callable[[], Any]) -> float:
    """Seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def quiesce(max_wait: float = 1.0, chunk: float = 0.005, busy: float = 0.2) -> float:
    """Sleep until no thread of this process burns CPU (at most ``max_wait`` seconds); returns the
    seconds waited.

    After a call, OpenBLAS keeps its worker threads spinning for a while before they sleep; on a
    machine with few cores a spinning worker slows down whatever runs next (bench/RESULTS.md has
    the measurements). The process's CPU time over a short sleep tells whether anything still spins.
    """
    start = time.perf_counter()
    while True:
        c0, t0 = time.process_time(), time.perf_counter()
        time.sleep(chunk)
        spent, waited = time.process_time() - c0, time.perf_counter() - t0
        if spent < busy * waited or time.perf_counter() - start > max_wait:
            return time.perf_counter() - start


def time_interleaved(fns: dict[str, Timed], rounds: int, *, settle: bool = False,
                     warmup: int = 1) -> tuple[dict[str, Timing], dict[str, float]]:
    """Time several callables side by side in interleaved rounds, so that slow drifts of the machine
    (other processes, frequency changes) hit all of them alike; the order rotates from round to round.

    Parameters
    ----------
    fns : dict
        ``name -> Timed``: ``fn`` is timed ``calls`` times in each round, each sample divided by
        ``steps``.
    rounds : int
    settle : bool
        If true, each callable's block in a round starts with :func:`quiesce` (no thread of the
        previous library still spinning) and one untimed call (threads woken, caches warm): the
        samples are steady-state back-to-back calls, as in a training loop.
    warmup : int
        Untimed calls of each callable before the first round.

    Returns
    -------
    timings : dict
        ``name -> Timing`` (per step) over ``rounds * calls`` samples.
    waits : dict
        ``name ->`` the longest wait for spinning threads before its block (0 unless ``settle``).
    """
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    waits: dict[str, float] = {name: 0.0 for name in fns}
    for t in fns.values():
        for _ in range(warmup):
            t.fn()
    with gc_disabled():
        for r in range(rounds):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                t = fns[name]
                if settle:
                    waits[name] = max(waits[name], quiesce())
                    t.fn()
                for _ in range(t.calls):
                    start = time.perf_counter()
                    t.fn()
                    samples[name].append((time.perf_counter() - start) / t.steps)
    return {name: Timing.from_samples(x) for name, x in samples.items()}, waits


def time_call(fn: Callable[[], T], repeats: int, warmup: int = 1) -> tuple[Timing, T]:
    """Time ``fn()`` ``repeats`` times after ``warmup`` untimed calls (GC disabled); returns the
    timing and the value of the last call."""
    last: list[Any] = []

    def call() -> None:
        last[:] = [fn()]

    timings, _ = time_interleaved({"fn": Timed(call, calls=repeats)}, 1, warmup=warmup)
    return timings["fn"], last[0]


def calibrated_steps(fn_steps: Callable[[int], Any], min_call: float) -> int:
    """``k`` such that ``fn_steps(k)`` lasts at least ``min_call`` seconds (two probe calls)."""
    quiesce()
    fn_steps(1)
    t1 = once(lambda: fn_steps(1))
    return max(1, math.ceil(min_call / max(t1, 1e-6)))


def calls_for(fn: Callable[[], Any], budget: float, warmup: int) -> int:
    """Warm ``fn`` up (``warmup`` untimed calls), then the calls per round so that one round of ``fn``
    lasts about ``budget`` seconds (at least one), from the time of one more call."""
    quiesce()
    for _ in range(warmup):
        fn()
    return max(1, round(budget / max(once(fn), 1e-6)))


# =============================================================================================
# Errors and agreement checks
# =============================================================================================


def rel_err(value: Any, ref: Any) -> float:
    """Largest elementwise relative error ``|value - ref| / |ref|`` (NaN or infinity: infinite)."""
    v = np.asarray(value, dtype=float)
    r = np.asarray(ref, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.abs(v - r) / np.maximum(np.abs(r), np.finfo(float).tiny)
    e = np.where(np.isfinite(e), e, np.inf)
    return float(np.max(e)) if e.size else 0.0


def rel_err_scaled(value: Any, ref: Any) -> float:
    """``max |value - ref| / max |ref|``, relative to the largest entry (NaN or infinity anywhere, or
    different shapes: infinite)."""
    v = np.asarray(value, dtype=float)
    r = np.asarray(ref, dtype=float)
    if v.shape != r.shape:
        return math.inf
    if not r.size:
        return 0.0
    diff = np.abs(v - r)
    scale = float(np.max(np.abs(r)))
    if not (np.all(np.isfinite(diff)) and math.isfinite(scale)):
        return math.inf
    return float(np.max(diff)) / max(scale, np.finfo(float).tiny)


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

    def require(self, label: str, ok: bool) -> bool:
        """A check that holds or not (recorded as error 0 or infinity against tolerance 0)."""
        return self.check(label, 0.0 if ok else math.inf, 0.0)

    def note(self, text: str) -> None:
        """Something worth reporting that is not a failure."""
        self.notes.append(text)

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [c for c in self.checks if not c["ok"]]


# =============================================================================================
# Command line, output, JSON
# =============================================================================================


def parse_args(doc: str, default_json: Path, quick_help: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``--quick`` and ``--json FILE``, the options every benchmark takes."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--json", type=Path, default=default_json, metavar="FILE",
                   help=f"where to save the results (default: bench/results/{default_json.name})")
    return p.parse_args(argv)


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


# -- the summary table of ratios ------------------------------------------------------------------
SUMMARY_HEADERS = ("workload", "implementation", "median", "spread", "time / fastslow")


def summary_row(workload: str, implementation: str, seconds: float | None, spread: str = "",
                ratio: float | None = None) -> dict[str, Any]:
    """One row of a benchmark's summary: a median time (None: not measured, ``spread`` says why), its
    spread or how it was obtained, and the time relative to fastslow's in the same run."""
    return {"workload": workload, "implementation": implementation, "seconds": seconds, "spread": spread,
            "ratio": ratio}


def timing_row(workload: str, implementation: str, timing: Timing, fastslow: float) -> dict[str, Any]:
    """:func:`summary_row` of a measured :class:`Timing` against fastslow's median ``fastslow``."""
    return summary_row(workload, implementation, timing.median, f"IQR {fmt_time(timing.iqr)}",
                       timing.median / fastslow)


def print_summary(rows: Sequence[dict[str, Any]], peak: dict[str, Any] | None, title: str = "Summary") -> None:
    """The table of ratios, each measured in this run, and the sgemm peak measured alongside."""
    section(title + ": each implementation's median time, its spread and the ratio to fastslow")
    print(render_table(SUMMARY_HEADERS, [
        [r["workload"], r["implementation"], "-" if r["seconds"] is None else fmt_time(r["seconds"]), r["spread"],
         "" if r["ratio"] is None else fmt_ratio(r["ratio"])] for r in rows]))
    if peak is not None:
        print(f"sgemm peak of this machine, measured before and after the workloads: {peak['used_gflops']:.1f} "
              f"GFLOP/s (float32 {PEAK_SIZE}^3, {peak['used_lib']})", flush=True)


class Session:
    """One benchmark run from start to JSON: the machine block, the sgemm peak before the workloads and
    the agreement :attr:`checker`; :meth:`peak` measures the sgemm peak again after the workloads,
    :meth:`close` prints the summary table of ratios and the checks and saves the results.

    ``versions``: the peers' libraries and their versions (or why they are missing), added to the
    machine's description with ``extra``; ``libs``: the libraries whose sgemm peak is measured
    (``"numpy"``, ``"torch"``), best of ``peak_repeats`` each time.
    """

    def __init__(self, title: str, quick: bool, *, versions: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None, libs: Sequence[str] = ("numpy",), peak_repeats: int = 1) -> None:
        self.start = time.perf_counter()
        self.quick = quick
        versions = versions or {}
        self.info = {**base_machine_info(), **versions, **(extra or {})}
        print_header(title, self.info, quick, ", ".join(
            f"{k} {v}" for k, v in {"fastslow": self.info["fastslow"], "numpy": self.info["numpy"], **versions}.items()))
        self.checker = Checker()
        self.libs, self.peak_repeats = list(libs), peak_repeats
        self.peaks_before = measure_peaks(self.libs, peak_repeats, "before")
        self._peak: dict[str, Any] | None = None

    def peak(self) -> dict[str, Any]:
        """The sgemm peak before and after the workloads (measured after them on the first call)."""
        if self._peak is None:
            print()
            after = measure_peaks(self.libs, self.peak_repeats, "after")
            self._peak = peak_summary(self.peaks_before, after, self.checker)
        return self._peak

    def close(self, rows: Sequence[dict[str, Any]], results: dict[str, Any], path: Path) -> int:
        """Print the summary ``rows`` with the sgemm peak, then the checks; save ``results`` (with the
        machine, the peak and the rows) to ``path``; the exit status of :func:`finish`."""
        peak = self.peak()
        print_summary(rows, peak)
        results = {"machine": self.info, "quick": self.quick, "sgemm_peak": peak, **results, "summary": list(rows)}
        return finish(self.checker, time.perf_counter() - self.start, results, path)


def finish(checker: Checker, elapsed: float, results: dict[str, Any], path: Path) -> int:
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
        print(f"FAILED: {len(failures)} check(s): an implementation disagreed, or a benchmark did not run "
              "(exit status 1)")
        return 1
    return 0
