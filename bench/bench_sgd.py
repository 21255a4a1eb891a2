#!/usr/bin/env python
"""Benchmark of one large-batch SGD step of fastslow's simulator against NumPy, PyTorch and the
two-GEMM floor, and of the step's time against ``B d n``.

The step (theory page section 1; written out in ``_sgd_peers.py``): tanh student, target
``g = h1 + 0.2 h3``, ``lr_w = lr_a = 1``, ``dt = 0.05``, ``a0 = 0.5``, ``m0 = 0``, no label noise, a
fresh standard-normal batch ``X`` (``B x d``) drawn inside every step.

Workloads, all in one process:

1. Shapes ``(B, d, n) = (1024, 256, 256)`` and ``(4096, 1024, 1024)`` in float32 (plus a float64 row
   for the small shape, for information), each implementation timed per step in interleaved rounds
   (the order rotated from round to round):

   - **fastslow**: ``fastslow.SGDTrainer(..., threads=2).run(k)``, timed and divided by ``k`` (the
     batch is drawn inside the step by its counter-based generator);
   - **NumPy**: a vectorised float32 step with the same math, drawing its batch with
     ``Generator(SFC64).standard_normal``, NumPy's BLAS threads as they are;
   - **PyTorch** (CPU, ``torch.set_num_threads(2)``, eager, ``inference_mode``), drawing with
     ``torch.randn``; skipped, and said so, when ``import torch`` fails;
   - **the two-GEMM floor**: ``P = X W^T`` and ``G = M^T X`` alone in NumPy float32 at its measured
     speed, and the same ``4 B d n`` flops at this machine's sgemm peak (a 4096^3 float32 matmul,
     best of several with NumPy and PyTorch, measured before and after the workloads). For
     information also the two GEMMs in PyTorch and in the pattern fastslow calls them
     (scipy-openblas32 through ctypes, one single-threaded call per fixed block of the trainer, two
     threads), and at the large shape fastslow with its previous BLAS blocking (16 x 8 calls).

   On few cores a library's idle threads matter: NumPy's OpenBLAS workers keep spinning after every
   call and slow down whatever runs next. Each implementation's block of calls in a round therefore
   starts after a wait until no thread of the process burns CPU, and with one untimed call: the
   samples are steady-state back-to-back steps, as in a training loop.

   Per implementation: median, min and IQR per step, GFLOP/s counting the two GEMMs (``4 B d n``),
   the time relative to fastslow, and for fastslow the fraction of the GEMM floor reached. Where
   fastslow's time goes is measured without a profiler: ``_testing.step_with_batch`` (a given batch,
   no random numbers, plus a copy of ``X``) against ``run`` isolates the generator; the two-GEMM
   floor against the rest gives the elementwise work.
2. **Scaling**: fastslow's step from ``(256, 64, 64)`` to ``(4096, 1024, 1024)`` (to ``(2048, 512,
   512)`` with ``--quick``) against the flops of its two GEMMs; the log-log slope should be near 1.

Every implementation is checked before it is timed: one step on a given batch must match the float64
reference :func:`fastslow.reference.sgd_step` to ``1e-4`` (float32; ``1e-10`` for the float64 rows)
relative to the largest entry, in the new state ``(W, a)`` and in the update itself (``W - W0``,
``a - a0``). Any disagreement makes the script exit with status 1 at the end (a fast wrong answer is
not a result). The issue's speed targets are reported, not enforced. Results and where the time goes:
``bench/RESULTS.md``.

Usage::

    python bench/bench_sgd.py [--quick] [--json FILE]

``--quick`` (fewer rounds) checks that everything runs and agrees; its timings are rough. The results
go to ``bench/results/sgd.json`` unless ``--json`` says otherwise.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, Checker, Session, Timed, calibrated_steps, calls_for, fmt_ratio, fmt_time  # noqa: E402
from _common import numpy_blas, numpy_blas_threads, optional_version, parse_args, rel_err_scaled  # noqa: E402
from _common import render_table, section, summary_row, time_interleaved, timing_row  # noqa: E402
from _sgd_peers import TORCH_ERROR, FastslowPatternGemms, NumpyStep, StepConfig, TorchStep, TwoGemms, torch  # noqa: E402

import fastslow as fs  # noqa: E402
from fastslow import reference  # noqa: E402
from fastslow._core import _testing  # noqa: E402

# ---------------------------------------------------------------------------------------------
# The configuration under test
# ---------------------------------------------------------------------------------------------
TARGET: dict[int, float] = {1: 1.0, 3: 0.2}
#: The tanh student under test; its step, initial condition and seed.
MODEL = fs.Model("tanh", TARGET, lr_w=1.0, lr_a=1.0)
DT, A0, M0, SEED = 0.05, 0.5, 0.0, 0
FS_THREADS = TORCH_THREADS = 2
#: The same step for the hand-written peers.
PEERS = StepConfig.make(TARGET, MODEL.lr_w, MODEL.lr_a, DT)

SMALL = (1024, 256, 256)
LARGE = (4096, 1024, 1024)
# The trainer's BLAS blocks at LARGE before 2026-11-30 (row blocks of 256 rows, at most 16; neuron
# blocks of 64, at most 8), timed alongside the current ones for the record.
PREVIOUS_BLOCKS = (16, 8)
SHAPES = (SMALL, LARGE)
#: The scaling workload's shapes (the last one only in the full run).
SCALING_SHAPES = ((256, 64, 64), (512, 128, 128), (1024, 256, 256), (2048, 512, 512), (4096, 1024, 1024))

#: Agreement with the float64 reference (max |x - ref| / max |ref|, per array), by dtype.
AGREE_TOL = {"float32": 1e-4, "float64": 1e-10}

#: The issue's targets: (shape, what, bound).
TARGETS = (
    (LARGE, "floor", 1.15),   # fastslow time <= 1.15 x the two-GEMM floor
    (LARGE, "numpy", 3.5),    # NumPy time >= 3.5 x fastslow time
    (LARGE, "torch", 1.5),    # PyTorch time >= 1.5 x fastslow time
    (SMALL, "torch", 1.5),
)

DEFAULT_JSON = RESULTS_DIR / "sgd.json"


@dataclass(frozen=True)
class Settings:
    """Sizes and repeat counts of one run (``--quick`` or full)."""

    quick: bool
    rounds: tuple[int, ...]       # interleaved rounds per shape (SMALL, LARGE)
    round_budget: tuple[float, ...]  # timed seconds per implementation and round, per shape (>= 1 call)
    min_call: float               # fastslow's run(k): k steps so that a call lasts at least this
    warmup_steps: int             # untimed calls of each implementation before the rounds
    peak_repeats: int             # 4096^3 matmuls per peak measurement (best of)
    scaling_shapes: int           # how many of SCALING_SHAPES
    scaling_repeats: int          # samples per scaling shape (each at least scaling_call seconds)
    scaling_call: float

    @classmethod
    def make(cls, quick: bool) -> Settings:
        """The quick or the full settings."""
        if quick:
            return cls(quick=True, rounds=(6, 4), round_budget=(0.05, 0.05), min_call=0.02, warmup_steps=1,
                       peak_repeats=2, scaling_shapes=4, scaling_repeats=5, scaling_call=0.1)
        return cls(quick=False, rounds=(20, 12), round_budget=(0.15, 0.35), min_call=0.03, warmup_steps=2,
                   peak_repeats=4, scaling_shapes=5, scaling_repeats=9, scaling_call=0.3)


def shape_label(shape: tuple[int, int, int]) -> str:
    return "(B, d, n) = ({}, {}, {})".format(*shape)


def gemm_flops(shape: tuple[int, int, int]) -> float:
    """Flops of the two GEMMs of one step, ``P = X W^T`` and ``G = M^T X``: ``4 B d n``."""
    B, d, n = shape
    return 4.0 * B * d * n


# ---------------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------------
def start_session(settings: Settings) -> Session:
    """The machine block (with PyTorch's version or why it does not import) and how each
    implementation uses its threads; the sgemm peak of NumPy and PyTorch before the workloads."""
    versions = {"torch": torch.__version__ if torch is not None else f"not importable ({TORCH_ERROR})",
                "threadpoolctl": optional_version("threadpoolctl")}
    run = Session("fastslow large-batch SGD step benchmark", settings.quick, versions=versions,
                  extra={"torch_error": TORCH_ERROR}, libs=["numpy"] + (["torch"] if torch is not None else []),
                  peak_repeats=settings.peak_repeats)
    print("threads:")
    print(f"  fastslow  SGDTrainer(threads={FS_THREADS}): OpenMP over batch rows / neurons, "
          f"single-threaded scipy-openblas32 GEMMs inside")
    print(f"  NumPy     BLAS threads {numpy_blas_threads(run.info['thread_pools'])}; generator and elementwise "
          f"passes 1 thread")
    if torch is not None:
        print(f"  PyTorch   torch.set_num_threads({TORCH_THREADS}) -> get_num_threads() = {torch.get_num_threads()}")
    else:
        print(f"  PyTorch   skipped: {TORCH_ERROR}")
    sys.stdout.flush()
    return run


# ---------------------------------------------------------------------------------------------
# fastslow
# ---------------------------------------------------------------------------------------------
def make_trainer(shape: tuple[int, int, int], dtype: str, seed: int = SEED) -> fs.SGDTrainer:
    B, d, n = shape
    return fs.SGDTrainer(MODEL, d=d, n=n, batch=B, dt=DT, a0=A0, m0=M0, seed=seed, dtype=dtype,
                         threads=FS_THREADS)


# ---------------------------------------------------------------------------------------------
# Agreement
# ---------------------------------------------------------------------------------------------
def check_step(label: str, W0: np.ndarray, a0: np.ndarray, W: np.ndarray, a: np.ndarray, W_ref: np.ndarray,
               a_ref: np.ndarray, tol: float, checker: Checker) -> dict[str, float]:
    """State ``(W, a)`` and update ``(W - W0, a - a0)`` against the reference, each checked."""
    W0, a0 = np.asarray(W0, float), np.asarray(a0, float)
    errs = {
        "W": rel_err_scaled(W, W_ref), "a": rel_err_scaled(a, a_ref),
        "dW": rel_err_scaled(np.asarray(W, float) - W0, W_ref - W0),
        "da": rel_err_scaled(np.asarray(a, float) - a0, a_ref - a0),
    }
    for key, e in errs.items():
        checker.check(f"{label}: {key} vs reference", e, tol)
    return errs


def agreement(shape: tuple[int, int, int], dtypes: Sequence[str], checker: Checker) -> dict[str, Any]:
    """One step of each implementation on one given batch against the float64 reference."""
    B, d, n = shape
    out: dict[str, Any] = {}
    lines = []
    ref_act, ref_target = PEERS.reference_functions()
    for dtype in dtypes:
        tol = AGREE_TOL[dtype]
        tr = make_trainer(shape, dtype)
        W0, a0, theta = np.array(tr.W), np.array(tr.a), np.array(tr.theta)
        g = np.random.default_rng(12345)
        X = g.standard_normal((B, d)).astype(dtype)
        xi = np.zeros(B, dtype)
        start = time.perf_counter()
        W_ref, a_ref, loss_ref = reference.sgd_step(W0, a0, theta, X, xi, ref_act, ref_target, MODEL.lr_w,
                                                  MODEL.lr_a, DT, 0.0)
        ref_time = time.perf_counter() - start
        rel_update = float(np.max(np.abs(W_ref - W0)) / np.max(np.abs(W0)))
        impls: dict[str, dict[str, float]] = {}

        _testing.step_with_batch(tr._raw, X, xi)
        impls[f"fastslow {dtype}"] = check_step(f"{shape_label(shape)} fastslow {dtype} step_with_batch",
                                                W0, a0, tr.W, tr.a, W_ref, a_ref, tol, checker)
        loss_err = abs(float(tr.batch_loss) - loss_ref) / loss_ref
        checker.check(f"{shape_label(shape)} fastslow {dtype} batch_loss vs reference", loss_err, tol)
        npy = NumpyStep(W0, a0, theta, B, dtype, SEED, PEERS)
        npy.step_with_batch(X)
        impls[f"NumPy {dtype}"] = check_step(f"{shape_label(shape)} NumPy {dtype} step", W0, a0, npy.W, npy.a,
                                             W_ref, a_ref, tol, checker)
        if torch is not None and dtype == "float32":
            ts = TorchStep(W0, a0, theta, B, SEED, PEERS)
            ts.step_with_batch(X)
            Wt, at = ts.state()
            impls[f"PyTorch {dtype}"] = check_step(f"{shape_label(shape)} PyTorch {dtype} step", W0, a0, Wt, at,
                                                   W_ref, a_ref, tol, checker)

        # run(1) draws its own batch, so it cannot be compared entry by entry: check that it takes a
        # real step (unit rows, finite, an update of the size of the given-batch step).
        tr_run = make_trainer(shape, dtype)
        tr_run.run(1)
        Wr, ar = np.array(tr_run.W, float), np.array(tr_run.a, float)
        norms = np.linalg.norm(Wr, axis=1)
        norm_err = float(np.max(np.abs(norms - 1.0))) if np.all(np.isfinite(norms)) else math.inf
        size_ratio = float(np.linalg.norm(Wr - W0) / np.linalg.norm(W_ref - W0))
        run_ok = bool(np.all(np.isfinite(Wr)) and np.all(np.isfinite(ar)) and norm_err <= 10 * tol
                      and 0.5 <= size_ratio <= 2.0)
        checker.require(f"{shape_label(shape)} fastslow {dtype} run(1): unit rows, update size "
                        f"{size_ratio:.3f} of the given-batch step (0.5..2)", run_ok)
        out[dtype] = {"tol": tol, "reference_time": ref_time, "update_over_W": rel_update, "impls": impls,
                      "fastslow_batch_loss_err": loss_err,
                      "run1": {"row_norm_err": norm_err, "update_size_ratio": size_ratio, "ok": run_ok}}
        for name, e in impls.items():
            worst = max(e.values())
            lines.append([name, f"{e['W']:.1e}", f"{e['a']:.1e}", f"{e['dW']:.1e}", f"{e['da']:.1e}",
                          f"{tol:.0e}", "ok" if worst <= tol else "DISAGREES"])
        lines.append([f"fastslow {dtype} run(1)", f"|row|-1 {norm_err:.0e}", "", f"size {size_ratio:.3f}", "", "",
                      "ok" if run_ok else "FAILED"])
    if torch is None:
        lines.append(["PyTorch float32", "", "", "", "", "", "skipped"])
    print(f"agreement, one step on one given batch against fastslow.reference.sgd_step (float64; "
          f"max|x - ref| / max|ref|; the update W - W0 is {out[dtypes[0]]['update_over_W']:.1%} of max|W0|):")
    print(render_table(["implementation", "W", "a", "W - W0", "a - a0", "tol", ""], lines))
    print("run(1) draws its own batch: checked for unit rows and an update |W - W0| of 0.5..2 times the "
          "given-batch step's.")
    sys.stdout.flush()
    return out


# ---------------------------------------------------------------------------------------------
# Workload 1: one shape
# ---------------------------------------------------------------------------------------------
def workload(shape: tuple[int, int, int], rounds: int, budget: float, settings: Settings,
             checker: Checker) -> dict[str, Any]:
    """Agreement, then interleaved timing of every implementation and component at one shape."""
    B, d, n = shape
    small = shape == SMALL
    dtypes = ("float32", "float64") if small else ("float32",)
    section(f"{shape_label(shape)}, float32" + (" (and float64 for information)" if small else "")
            + f": {gemm_flops(shape) / 1e9:.2f} GFLOP of GEMMs per step: agreement and timing")
    agree = agreement(shape, dtypes, checker)

    # -- the timed objects, all from the same initial state -------------------------------------
    tr = make_trainer(shape, "float32")
    W0, a0, theta = np.array(tr.W), np.array(tr.a), np.array(tr.theta)
    tr_swb = make_trainer(shape, "float32")
    X_given = np.random.default_rng(7).standard_normal((B, d), dtype=np.float32)
    xi0 = np.zeros(B, np.float32)
    X_copy = np.empty_like(X_given)
    npy = NumpyStep(W0, a0, theta, B, "float32", SEED, PEERS)
    tor = TorchStep(W0, a0, theta, B, SEED, PEERS) if torch is not None else None
    gemm_np = TwoGemms(shape, "numpy")
    gemm_t = TwoGemms(shape, "torch") if torch is not None else None
    blocks = tuple(_testing.blocks(tr._raw))
    try:
        gemm_fs: FastslowPatternGemms | None = FastslowPatternGemms(shape, blocks, FS_THREADS)
        gemm_fs_error = None
    except Exception as exc:  # pragma: no cover - depends on the wheel's layout
        gemm_fs, gemm_fs_error = None, f"{type(exc).__name__}: {exc}"
    if gemm_fs is not None:
        checker.check(f"{shape_label(shape)} two GEMMs in fastslow's pattern vs float64", gemm_fs.check(), 1e-5)
    rng_np = np.random.Generator(np.random.SFC64(3))
    if torch is not None:
        gen_t = torch.Generator().manual_seed(3)
        X_t = torch.empty((B, d))

    fns: dict[str, Timed] = {}
    k = calibrated_steps(tr.run, settings.min_call)
    fns["fastslow"] = Timed(lambda: tr.run(k), steps=k)
    if not small:  # the blocking before 2026-11-30 (16 row, 8 neuron BLAS calls), for the record
        tr_prev = make_trainer(shape, "float32")
        _testing.set_blocks(tr_prev._raw, *PREVIOUS_BLOCKS)
        fns["fastslow, previous blocks"] = Timed(lambda: tr_prev.run(k), steps=k)
    fns["NumPy"] = Timed(npy.step)
    if tor is not None:
        fns["PyTorch"] = Timed(tor.step)
    fns["two GEMMs, NumPy"] = Timed(gemm_np)
    if gemm_t is not None:
        fns["two GEMMs, PyTorch"] = Timed(gemm_t)
    if gemm_fs is not None:
        fns["two GEMMs, fastslow pattern"] = Timed(gemm_fs)
    fns["fastslow step_with_batch"] = Timed(lambda: _testing.step_with_batch(tr_swb._raw, X_given, xi0))
    fns["copy of X"] = Timed(lambda: np.copyto(X_copy, X_given))
    fns["RNG, NumPy SFC64"] = Timed(lambda: rng_np.standard_normal(out=X_copy, dtype=np.float32))
    if torch is not None:
        fns["RNG, torch.randn"] = Timed(lambda: torch.randn((B, d), generator=gen_t, out=X_t))
    if small:
        tr64 = make_trainer(shape, "float64")
        k64 = calibrated_steps(tr64.run, settings.min_call)
        npy64 = NumpyStep(W0, a0, theta, B, "float64", SEED, PEERS)
        fns["fastslow float64"] = Timed(lambda: tr64.run(k64), steps=k64)
        fns["NumPy float64"] = Timed(npy64.step)

    for t in fns.values():
        t.calls = calls_for(t.fn, budget, settings.warmup_steps)
    start = time.perf_counter()
    timings, waits = time_interleaved(fns, rounds, settle=True, warmup=0)
    elapsed = time.perf_counter() - start

    # -- the state after all the timed steps must still be sane ---------------------------------
    def sane(label: str, W: np.ndarray, a: np.ndarray, tol: float) -> None:
        W = np.asarray(W, float)
        ok = np.all(np.isfinite(W)) and np.all(np.isfinite(a))
        err = float(np.max(np.abs(np.linalg.norm(W, axis=1) - 1.0))) if ok else math.inf
        checker.check(f"{shape_label(shape)} {label}: unit rows and finite after timing", err, tol)

    sane("fastslow", tr.W, tr.a, 1e-5)
    if not small:
        sane("fastslow, previous blocks", tr_prev.W, tr_prev.a, 1e-5)
    sane("NumPy", npy.W, npy.a, 1e-5)
    if tor is not None:
        sane("PyTorch", *tor.state(), 1e-5)
    if small:
        sane("fastslow float64", tr64.W, tr64.a, 1e-12)
        sane("NumPy float64", npy64.W, npy64.a, 1e-12)
    slowest = max(waits, key=waits.get)
    print(f"timed: {rounds} interleaved rounds in {elapsed:.1f} s (tables below, after the second sgemm-peak "
          f"measurement)", flush=True)
    return {"shape": list(shape), "flops": gemm_flops(shape), "rounds": rounds, "elapsed": elapsed,
            "fastslow_run_k": k, "fastslow64_run_k": k64 if small else None,
            "calls_per_round": {name: t.calls for name, t in fns.items()},
            "longest_quiesce": waits, "longest_quiesce_before": slowest,
            "agreement": agree, "timings": timings,
            "torch": tor is not None, "fastslow_pattern_gemms_error": gemm_fs_error,
            "fs_blocks": list(blocks)}


def report(res: dict[str, Any], peak_gflops: float, pools: list[dict[str, Any]] | None) -> None:
    """Print the timing table and fastslow's breakdown of one shape; add rows and breakdown to ``res``."""
    shape = tuple(res["shape"])
    small = shape == SMALL
    timings, waits, rounds, elapsed = res["timings"], res["longest_quiesce"], res["rounds"], res["elapsed"]
    k, k64 = res["fastslow_run_k"], res["fastslow64_run_k"]
    has_torch = res["torch"]
    has_fs_gemms = res["fastslow_pattern_gemms_error"] is None
    section(f"{shape_label(shape)}, float32" + (" (and float64 for information)" if small else "")
            + ": timing")
    flops = gemm_flops(shape)
    t_fs = timings["fastslow"].median
    floor_np = timings["two GEMMs, NumPy"].median
    floor_peak = flops / (peak_gflops * 1e9)
    blas = numpy_blas(pools)
    np_thr = f"{blas['num_threads']} BLAS" if blas is not None else "unknown"
    torch_thr = f"{torch.get_num_threads()}" if has_torch else ""
    rows: dict[str, dict[str, Any]] = {}

    def add(name: str, label: str, threads: str, note: str = "") -> None:
        timing = timings.get(name)
        rows[name] = {"label": label, "threads": threads, "time": timing, "note": note}
        if timing is not None:
            rows[name].update({"gflops": flops / timing.median / 1e9, "vs_fastslow": timing.median / t_fs})

    add("fastslow", f"fastslow run({k})/{k}", f"{FS_THREADS}")
    if not small:
        add("fastslow, previous blocks", f"fastslow, {PREVIOUS_BLOCKS[0]} x {PREVIOUS_BLOCKS[1]} blocks (before, info)",
            f"{FS_THREADS}")
    add("NumPy", "NumPy float32 step", np_thr)
    add("PyTorch", "PyTorch float32 step", torch_thr, "" if has_torch else f"skipped: {TORCH_ERROR}")
    add("two GEMMs, NumPy", "two GEMMs only, NumPy (floor)", np_thr)
    rows["two GEMMs at sgemm peak"] = {"label": f"two GEMMs at sgemm peak {peak_gflops:.0f} GFLOP/s",
                                       "threads": "", "time": None, "seconds": floor_peak,
                                       "gflops": peak_gflops, "vs_fastslow": floor_peak / t_fs,
                                       "note": "computed"}
    if has_torch:
        add("two GEMMs, PyTorch", "two GEMMs only, PyTorch (info)", torch_thr)
    add("two GEMMs, fastslow pattern", "two GEMMs as fastslow calls them (info)", f"{FS_THREADS}x1" if has_fs_gemms
        else "", "" if has_fs_gemms else f"skipped: {res['fastslow_pattern_gemms_error']}")
    if small:
        add("fastslow float64", f"fastslow float64 run({k64})/{k64} (info)", f"{FS_THREADS}")
        add("NumPy float64", "NumPy float64 step (info)", np_thr)
    rows["fastslow"]["floor_fraction_numpy"] = floor_np / t_fs
    rows["fastslow"]["floor_fraction_peak"] = floor_peak / t_fs

    table = []
    for name, r in rows.items():
        t = r["time"]
        if t is not None:
            table.append([r["label"], r["threads"], fmt_time(t.median), fmt_time(t.min), fmt_time(t.iqr), t.repeats,
                          f"{r['gflops']:.1f}", fmt_ratio(r["vs_fastslow"]),
                          f"{floor_np / t.median:.0%} / {floor_peak / t.median:.0%}" if not name.startswith("two")
                          else ""])
        elif "seconds" in r:
            table.append([r["label"], "", fmt_time(r["seconds"]), "", "", "", f"{r['gflops']:.1f}",
                          fmt_ratio(r["vs_fastslow"]), ""])
        else:
            table.append([r["label"] + " (skipped, below)", "", "-", "", "", "", "", "", ""])
    slowest = res["longest_quiesce_before"]
    print(f"{rounds} interleaved rounds in {elapsed:.1f} s; per step; each block after a wait for "
          f"spinning threads (longest {fmt_time(waits[slowest])}, before {slowest}) and one untimed call")
    print(render_table(["implementation", "threads", "median", "min", "IQR", "reps", "GFLOP/s", "time/fastslow",
                        "floor/time"], table))
    print("GFLOP/s counts the two GEMMs (4 B d n flops); time/fastslow > 1: slower than fastslow; "
          "floor/time: the two-GEMM floor (NumPy measured / sgemm peak) over the row's time.")
    for r in rows.values():
        if r["time"] is None and "seconds" not in r:
            print(f"{r['label']}: {r['note']}")
    if small:
        r64 = timings["NumPy float64"].median / timings["fastslow float64"].median
        rows["NumPy float64"]["vs_fastslow_float64"] = r64
        print(f"float64 rows: time/fastslow is against fastslow float32; NumPy float64 / fastslow float64 = "
              f"{fmt_ratio(r64)}.")
    res.update({"rows": rows, "breakdown": breakdown(res, floor_np, floor_peak), "floor_numpy": floor_np,
                "floor_peak": floor_peak, "peak_gflops_used": peak_gflops})


def breakdown(res: dict[str, Any], floor_np: float, floor_peak: float) -> dict[str, Any]:
    """Print where fastslow's step goes (differences of medians, no profiler) and return the parts."""
    timings, has_torch = res["timings"], res["torch"]
    t_fs = timings["fastslow"].median
    t_swb = timings["fastslow step_with_batch"].median
    t_copy = timings["copy of X"].median
    t_rng = t_fs - t_swb + t_copy
    t_rest = t_swb - t_copy - floor_np
    t_gfs = timings["two GEMMs, fastslow pattern"].median if "two GEMMs, fastslow pattern" in timings else None
    parts = {
        "run": t_fs, "step_with_batch": t_swb, "copy_X": t_copy, "rng": t_rng, "gemm_floor_numpy": floor_np,
        "rest": t_rest, "gemm_floor_peak": floor_peak, "gemm_fastslow_pattern": t_gfs,
        "rest_vs_fastslow_pattern": None if t_gfs is None else t_swb - t_copy - t_gfs,
        "rng_numpy_sfc64": timings["RNG, NumPy SFC64"].median,
        "rng_torch": timings["RNG, torch.randn"].median if has_torch else None,
    }

    def line(label: str, seconds: float, reps: Any = "") -> list[Any]:
        return [label, fmt_time(seconds), f"{seconds / t_fs:.0%}", reps]

    table = [
        line("fastslow step, tr.run (draws X)", t_fs, timings["fastslow"].repeats),
        line("  random numbers = run - step_with_batch + copy", t_rng),
        line("  two GEMMs (NumPy floor)", floor_np),
        line("  rest = step_with_batch - copy - GEMM floor", t_rest),
    ]
    if t_gfs is not None:
        table += [line(f"  or: two GEMMs as fastslow calls them ({res['fs_blocks'][0]} + {res['fs_blocks'][1]} "
                       "blocks)", t_gfs),
                  line("  and rest = step_with_batch - copy - those GEMMs", parts["rest_vs_fastslow_pattern"])]
    table += [
        line("step_with_batch (given X, no RNG)", t_swb, timings["fastslow step_with_batch"].repeats),
        line("copy of X (np.copyto, 1 thread), inside step_with_batch", t_copy, timings["copy of X"].repeats),
        line("for scale: NumPy SFC64 standard_normal float32, 1 thread", parts["rng_numpy_sfc64"],
             timings["RNG, NumPy SFC64"].repeats),
    ]
    if has_torch:
        table.append(line(f"for scale: torch.randn float32, {torch.get_num_threads()} threads", parts["rng_torch"],
                          timings["RNG, torch.randn"].repeats))
    print("\nwhere fastslow's step goes (medians; no profiler):")
    print(render_table(["part", "time", "of step", "reps"], table))
    print("rest: the elementwise passes (tanh, tanh', residuals, M), the GEMVs S a and S^T r, the update and "
          "the row normalisation, and thread synchronisation. fastslow's GEMMs are single-threaded "
          "scipy-openblas32 calls, one per fixed block (P with leading dimension n + 1, for X theta), not "
          "NumPy's 2-thread calls: the 'or' lines time that same pattern from Python (ctypes, a thread pool).")
    sys.stdout.flush()
    return parts


# ---------------------------------------------------------------------------------------------
# Workload 2: scaling with B d n
# ---------------------------------------------------------------------------------------------
def workload_scaling(settings: Settings, checker: Checker) -> dict[str, Any]:
    """fastslow's step time against the flops of its two GEMMs, from small to large shapes."""
    section(f"Scaling: SGD step time against B d n (float32, {FS_THREADS} threads)")
    rows, out = [], []
    for shape in SCALING_SHAPES[:settings.scaling_shapes]:
        tr = make_trainer(shape, "float32", seed=1)
        tr.run(2)
        k = calibrated_steps(tr.run, settings.scaling_call)
        timings, _ = time_interleaved({"run": Timed(lambda tr=tr, k=k: tr.run(k), steps=k, calls=settings.scaling_repeats)}, 1,
                                      warmup=0)
        t = timings["run"]
        flops = gemm_flops(shape)
        out.append({"shape": list(shape), "flops": flops, "time": t, "gflops": flops / t.median / 1e9})
        rows.append([shape_label(shape), f"{flops / 1e9:.3g}", fmt_time(t.median), fmt_time(t.iqr),
                     f"{flops / t.median / 1e9:.1f}"])
        op = tr.order_parameters()
        checker.require(f"scaling {shape_label(shape)}: finite order parameters",
                        bool(np.isfinite([op.m_mean, op.a_mean]).all()))
    f = np.log([o["flops"] for o in out])
    tt = np.log([o["time"].median for o in out])
    slope_all = float(np.polyfit(f, tt, 1)[0])
    slope_big = float(np.polyfit(f[-3:], tt[-3:], 1)[0])
    print(render_table(["shape", "GFLOP (2 GEMMs)", "step", "IQR", "GFLOP/s"], rows))
    print(f"log-log slope of time against flops: {slope_all:.2f} over all sizes, {slope_big:.2f} over the "
          f"largest three (1 = time follows the GEMM flops; small sizes pay fixed overheads)", flush=True)
    return {"shapes": out, "slope_all": slope_all, "slope_largest3": slope_big}


# ---------------------------------------------------------------------------------------------
# Targets, summary, main
# ---------------------------------------------------------------------------------------------
def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets against the measured medians."""
    out = []
    for shape, what, bound in TARGETS:
        if str(shape) not in results:
            continue
        w = results[str(shape)]
        rows = w["rows"]
        t_fs = rows["fastslow"]["time"].median
        if what == "floor":
            value = t_fs / w["floor_numpy"]
            text = (f"{shape_label(shape)}: fastslow within {bound:g}x of the two-GEMM floor: "
                    f"{fmt_ratio(value)} of NumPy's two GEMMs ({fmt_ratio(t_fs / w['floor_peak'])} of the sgemm-peak floor)")
            met: bool | None = value <= bound
        else:
            name = {"numpy": "NumPy", "torch": "PyTorch"}[what]
            if rows[name]["time"] is None:
                value, met = None, None
                text = f"{shape_label(shape)}: >= {bound:g}x faster than {name}: not measured ({rows[name]['note']})"
            else:
                value = rows[name]["time"].median / t_fs
                met = value >= bound
                at_floor = rows[name]["time"].median / w["floor_numpy"]
                text = (f"{shape_label(shape)}: >= {bound:g}x faster than {name}: {fmt_ratio(value)} "
                        f"(a fastslow at the NumPy GEMM floor would be {fmt_ratio(at_floor)})")
        out.append({"shape": list(shape), "what": what, "bound": bound, "value": value, "met": met, "text": text})
    return out


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary rows: per shape fastslow, NumPy, PyTorch and the two floors against fastslow."""
    rows = []
    for res in results.values():
        shape = tuple(res["shape"])
        workload_name = f"SGD step {shape}"
        t_fs = res["rows"]["fastslow"]["time"].median
        for name in ("fastslow", "NumPy", "PyTorch", "two GEMMs, NumPy", "two GEMMs at sgemm peak"):
            r = res["rows"][name]
            if r["time"] is not None:
                rows.append(timing_row(workload_name, name, r["time"], t_fs))
            elif "seconds" in r:
                rows.append(summary_row(workload_name, name, r["seconds"], "computed", r["seconds"] / t_fs))
            else:
                rows.append(summary_row(workload_name, name, None, "not installed" if name == "PyTorch" else r["note"]))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the workloads, print the tables, save the JSON; 0 if every implementation agreed with the
    reference, 1 otherwise."""
    args = parse_args(__doc__, DEFAULT_JSON, "fewer rounds and shapes (checks that everything runs)", argv)
    settings = Settings.make(args.quick)
    if torch is not None:
        torch.set_num_threads(TORCH_THREADS)
    run = start_session(settings)
    results: dict[str, Any] = {}
    for shape, rounds, budget in zip(SHAPES, settings.rounds, settings.round_budget):
        results[str(shape)] = workload(shape, rounds, budget, settings, run.checker)
    scaling = workload_scaling(settings, run.checker)
    peak = run.peak()
    for res in results.values():
        report(res, peak["used_gflops"], run.info["thread_pools"])

    section("Targets (from the issue)")
    targets = evaluate_targets(results)
    for t in targets:
        verdict = "not measured" if t["met"] is None else ("met" if t["met"] else "NOT met")
        print(f"  {t['text']}: {verdict}")
        if t["met"] is False:
            run.checker.note(f"target not met: {t['text']}")
    out = {
        "benchmark": "sgd", "settings": asdict(settings),
        "config": {"model": MODEL.to_dict(), "dt": DT, "a0": A0,
                   "m0": M0, "seed": SEED, "fastslow_threads": FS_THREADS, "torch_threads": TORCH_THREADS,
                   "numpy_generator": "SFC64"},
        "torch": {"available": torch is not None, "version": None if torch is None else torch.__version__,
                  "error": TORCH_ERROR},
        "shapes": results, "scaling": scaling, "targets": targets,
    }
    return run.close(summary(results), out, args.json)


if __name__ == "__main__":
    sys.exit(main())
