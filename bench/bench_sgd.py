#!/usr/bin/env python
"""Benchmark of one large-batch SGD step of fastslow's simulator against NumPy, PyTorch and the
two-GEMM floor.

The step (MODEL.md section 1): tanh student, target ``g = h1 + 0.2 h3``, ``lr_w = lr_a = 1``,
``dt = 0.05``, ``a0 = 0.5``, ``m0 = 0``, no label noise, a fresh standard-normal batch ``X``
(``B x d``) drawn inside every step::

    P = X W^T;  S = tanh(P);  D = 1 - S^2;  f = S a / n;  y = g(X theta);  r = f - y
    grad_a = S^T r / B;  G = (D * (r a^T))^T X / B
    W -= lr_w dt G;  W /= row norms;  a -= lr_a dt grad_a

Shapes ``(B, d, n) = (1024, 256, 256)`` and ``(4096, 1024, 1024)`` in float32 (plus a float64
row for the small shape, for information). Implementations, all in one process and timed per
step in interleaved rounds (the order rotated from round to round):

1. **fastslow**: ``fastslow.make_trainer(..., threads=2).run(k)``, timed and divided by ``k``
   (the batch is drawn inside the step by its counter-based generator).
2. **NumPy**: a vectorised float32 step written here with the same math (preallocated buffers,
   in-place elementwise passes), drawing its batch with ``Generator(SFC64).standard_normal``;
   NumPy's BLAS threads as they are (reported through threadpoolctl when it is importable).
3. **PyTorch** (CPU, ``torch.set_num_threads(2)``, eager, ``inference_mode``), drawing with
   ``torch.randn``; skipped, and said so, when ``import torch`` fails.
4. **The two-GEMM floor**: ``P = X W^T`` and ``G = M^T X`` alone in NumPy float32 at its measured
   speed, and the same ``4 B d n`` flops at this machine's sgemm peak (a 4096^3 float32 matmul,
   best of several with NumPy and PyTorch, measured before and after the workloads; the best is
   used). For information also the two GEMMs in PyTorch, and in the pattern fastslow uses
   (scipy-openblas32 through ctypes, one single-threaded call per fixed block of the trainer, two
   threads). At the large shape, also fastslow with its previous BLAS blocking (16 x 8 calls).

On two cores a library's idle threads matter: NumPy's OpenBLAS workers spin for about 0.1 s
after every call and halve the speed of whatever runs next. Each implementation's block of
calls in a round therefore starts after a wait until no thread of the process burns CPU, and
with one untimed call: the samples are steady-state back-to-back steps, as in a training loop.

Per implementation: median, min and IQR per step, GFLOP/s counting the two GEMMs (``4 B d n``),
the time relative to fastslow, and for fastslow the fraction of the GEMM floor reached. Where
fastslow's time goes is measured without a profiler: ``tr.step_with_batch`` (a given batch, no
random numbers, plus a copy of ``X``) against ``tr.run`` isolates the generator; the two-GEMM
floor against the rest gives the elementwise work.

Every implementation is checked before it is timed: one step on a given batch must match the
float64 reference :func:`fastslow.reference.sgd_step` to ``1e-4`` (float32; ``1e-10`` for the
float64 rows) relative to the largest entry, in the new state ``(W, a)`` and in the update
itself (``W - W0``, ``a - a0``). Any disagreement makes the script exit with status 1 at the
end (a fast wrong answer is not a result). The issue's speed targets are reported, not enforced.

Usage
-----
::

    python bench/bench_sgd.py [--quick] [--json FILE]

``--quick`` (fewer rounds) takes well under a minute on two cores; the full run a few minutes.
The results go to ``bench/results/sgd.json`` unless ``--json`` says otherwise.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import gc
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import fastslow as fs

from _common import Checker, Timing, base_machine_info, finish, print_header, fmt_ratio, fmt_time, render_table, section, source_revision
from fastslow import reference

try:  # optional: NumPy's BLAS library and thread count
    import threadpoolctl
except Exception:  # pragma: no cover - depends on the environment
    threadpoolctl = None

try:  # optional: the bench must never fail because PyTorch is missing
    import torch

    TORCH_ERROR: str | None = None
except Exception as exc:  # pragma: no cover - depends on the environment
    torch = None
    TORCH_ERROR = f"{type(exc).__name__}: {exc}"

# ---------------------------------------------------------------------------------------------
# The configuration under test
# ---------------------------------------------------------------------------------------------
ACTIVATION = "tanh"
TARGET: dict[int, float] = {1: 1.0, 3: 0.2}
LR_W = 1.0
LR_A = 1.0
DT = 0.05
A0 = 0.5
M0 = 0.0
SEED = 0
FS_THREADS = 2
TORCH_THREADS = 2

SMALL = (1024, 256, 256)
LARGE = (4096, 1024, 1024)
# The trainer's BLAS blocks at LARGE before 2026-11-30 (row blocks of 256 rows, at most 16; neuron
# blocks of 64, at most 8), timed alongside the current ones (4 and 4) for the record.
PREVIOUS_BLOCKS = (16, 8)
SHAPES = (SMALL, LARGE)
#: Square size of the sgemm-peak matmul.
PEAK_SIZE = 4096

#: Agreement with the float64 reference (max |x - ref| / max |ref|, per array), by dtype.
AGREE_TOL = {"float32": 1e-4, "float64": 1e-10}

#: The issue's targets: (shape, what, bound).
TARGETS = (
    (LARGE, "floor", 1.15),   # fastslow time <= 1.15 x the two-GEMM floor
    (LARGE, "numpy", 3.5),    # NumPy time >= 3.5 x fastslow time
    (LARGE, "torch", 1.5),    # PyTorch time >= 1.5 x fastslow time
    (SMALL, "torch", 1.5),
)

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "sgd.json"

SQRT6 = math.sqrt(6.0)
assert set(TARGET) <= {1, 3}, "the hand-written target below knows h1 and h3 only"
C1, C3 = TARGET.get(1, 0.0), TARGET.get(3, 0.0)


def target_value(z: Any) -> Any:
    """``g(z) = c1 h1(z) + c3 h3(z)``, ``h3(z) = (z^3 - 3 z) / sqrt(6)`` (NumPy or torch)."""
    return C1 * z + (C3 / SQRT6) * (z * z * z - 3.0 * z)


def target_derivative(z: Any) -> Any:
    """``g'(z) = c1 + c3 (3 z^2 - 3) / sqrt(6)``."""
    return C1 + (C3 / SQRT6) * (3.0 * z * z - 3.0)


REF_ACT = (np.tanh, lambda u: 1.0 - np.tanh(u) ** 2)
REF_TARGET = (target_value, target_derivative)


@dataclass(frozen=True)
class Settings:
    """Sizes and repeat counts of one run (``--quick`` or full)."""

    quick: bool
    rounds: tuple[int, ...]       # interleaved rounds per shape (SMALL, LARGE)
    round_budget: tuple[float, ...]  # timed seconds per implementation and round, per shape (>= 1 call)
    min_call: float               # fastslow's run(k): k steps so that a call lasts at least this
    warmup_steps: int             # untimed calls of each implementation before the rounds
    peak_repeats: int             # 4096^3 matmuls per peak measurement (best of)

    @classmethod
    def make(cls, quick: bool) -> "Settings":
        """The quick or the full settings."""
        if quick:
            return cls(quick=True, rounds=(6, 4), round_budget=(0.05, 0.05), min_call=0.02, warmup_steps=1,
                       peak_repeats=2)
        return cls(quick=False, rounds=(20, 12), round_budget=(0.15, 0.35), min_call=0.03, warmup_steps=2,
                   peak_repeats=4)


# ---------------------------------------------------------------------------------------------
# Timing, errors, checks
# ---------------------------------------------------------------------------------------------


@dataclass
class Timed:
    """One callable of an interleaved measurement: ``fn()`` does ``steps`` steps (or units)."""

    fn: Callable[[], Any]
    steps: int = 1
    calls: int = 1


def once(fn: Callable[[], Any]) -> float:
    """Seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def quiesce(max_wait: float = 1.0, chunk: float = 0.005, busy: float = 0.2) -> float:
    """Sleep until no thread of this process burns CPU (at most ``max_wait`` seconds).

    After a call, NumPy's OpenBLAS keeps its worker threads spinning for about 0.1 s (2^28
    cycles) before they sleep; on two cores a spinning worker halves the speed of whatever runs
    next (seen: fastslow's small step from 5 ms to 10-19 ms right after a NumPy GEMM). The
    process's CPU time over a short sleep tells whether anything still spins.

    Returns
    -------
    float
        Seconds waited.
    """
    start = time.perf_counter()
    while True:
        c0, t0 = time.process_time(), time.perf_counter()
        time.sleep(chunk)
        spent, waited = time.process_time() - c0, time.perf_counter() - t0
        if spent < busy * waited or time.perf_counter() - start > max_wait:
            return time.perf_counter() - start


def time_interleaved(fns: dict[str, Timed], rounds: int) -> tuple[dict[str, Timing], dict[str, float]]:
    """Time several callables in interleaved rounds, so that slow drifts of the machine (other
    processes, frequency changes) hit all of them alike; the order rotates from round to round.

    Each callable's block in a round starts with :func:`quiesce` (no thread of the previous
    library still spinning) and one untimed call (threads woken, caches warm), then its timed
    calls: the samples are steady-state, back-to-back steps, as in a training loop.

    Parameters
    ----------
    fns : dict
        ``name -> Timed``; ``fn`` is timed ``calls`` times in each round, each sample divided by
        ``steps``.
    rounds : int
        Number of rounds.

    Returns
    -------
    timings : dict
        ``name -> Timing`` (per step) over ``rounds * calls`` samples.
    quiesced : dict
        ``name -> `` the longest wait for spinning threads before that callable's block.
    """
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    waits: dict[str, float] = {name: 0.0 for name in fns}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                t = fns[name]
                waits[name] = max(waits[name], quiesce())
                t.fn()
                for _ in range(t.calls):
                    start = time.perf_counter()
                    t.fn()
                    samples[name].append((time.perf_counter() - start) / t.steps)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: Timing.from_samples(x) for name, x in samples.items()}, waits


def rel_err(value: Any, ref: Any) -> float:
    """``max |value - ref| / max |ref|`` (NaN or infinity anywhere counts as infinite)."""
    v = np.asarray(value, dtype=float)
    r = np.asarray(ref, dtype=float)
    if v.shape != r.shape:
        return math.inf
    diff = np.abs(v - r)
    scale = float(np.max(np.abs(r))) if r.size else 0.0
    if not (np.all(np.isfinite(diff)) and math.isfinite(scale)):
        return math.inf
    return float(np.max(diff)) / max(scale, np.finfo(float).tiny) if r.size else 0.0


# ---------------------------------------------------------------------------------------------
# Output helpers
# ---------------------------------------------------------------------------------------------


def shape_label(shape: tuple[int, int, int]) -> str:
    return "(B, d, n) = ({}, {}, {})".format(*shape)


def gemm_flops(shape: tuple[int, int, int]) -> float:
    """Flops of the two GEMMs of one step, ``P = X W^T`` and ``G = M^T X``: ``4 B d n``."""
    B, d, n = shape
    return 4.0 * B * d * n


# ---------------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------------


def blas_info() -> list[dict[str, Any]] | None:
    """The thread pools loaded in this process (threadpoolctl), each tagged with its owner."""
    if threadpoolctl is None:
        return None
    out = []
    for p in threadpoolctl.threadpool_info():
        path = p.get("filepath") or ""
        owner = ("numpy" if "numpy" in path else "fastslow (scipy-openblas32)" if "scipy_openblas32" in path
                 else "scipy" if "scipy" in path else "torch" if "torch" in path else "system")
        out.append({"owner": owner, "user_api": p.get("user_api"), "internal_api": p.get("internal_api"),
                    "version": p.get("version"), "num_threads": p.get("num_threads"),
                    "architecture": p.get("architecture"), "threading_layer": p.get("threading_layer"),
                    "filepath": path})
    return out


def numpy_blas_threads(info: list[dict[str, Any]] | None) -> str:
    """NumPy's BLAS and thread count as a short string, or 'unknown'."""
    if info is None:
        return "unknown (threadpoolctl not importable)"
    mine = [p for p in info if p["owner"] == "numpy" and p["user_api"] == "blas"]
    if not mine:
        return "unknown (NumPy's BLAS not found by threadpoolctl)"
    p = mine[0]
    return f"{p['num_threads']} ({p['internal_api']} {p['version']}, {p['architecture']})"


def numpy_blas_thread_count(info: list[dict[str, Any]] | None) -> int | None:
    if info is None:
        return None
    mine = [p for p in info if p["owner"] == "numpy" and p["user_api"] == "blas"]
    return int(mine[0]["num_threads"]) if mine else None


def machine_info() -> dict[str, Any]:
    """CPU, cores, library versions, thread pools, date and the source revision."""
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                       "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_WAIT_POLICY")
           if k in os.environ}
    return {**base_machine_info(),
            "torch": None if torch is None else torch.__version__,
            "torch_error": TORCH_ERROR,
            "threadpoolctl": None if threadpoolctl is None else threadpoolctl.__version__,
            "thread_env": env}


def print_machine(info: dict[str, Any], settings: Settings) -> None:
    torch_v = info["torch"] or f"not importable ({info['torch_error']})"
    print_header("fastslow large-batch SGD step benchmark", info, settings.quick,
                 f"fastslow {info['fastslow']}, numpy {info['numpy']}, torch {torch_v}, "
                 f"threadpoolctl {info['threadpoolctl'] or 'not importable'}")
    print(f"  env       {', '.join(f'{k}={v}' for k, v in info['thread_env'].items()) or 'no thread variables set'}")
    print(f"  source    {source_revision(info)}; fastslow imported from {info['fastslow_path']}", flush=True)


def print_threads(info: dict[str, Any], blas: list[dict[str, Any]] | None) -> None:
    print("threads:")
    print(f"  fastslow  make_trainer(threads={FS_THREADS}): OpenMP over batch rows / neurons, "
          f"single-threaded scipy-openblas32 GEMMs inside")
    print(f"  NumPy     BLAS threads {numpy_blas_threads(blas)}; generator and elementwise passes 1 thread")
    if torch is not None:
        print(f"  PyTorch   torch.set_num_threads({TORCH_THREADS}) -> get_num_threads() = {torch.get_num_threads()}")
    else:
        print(f"  PyTorch   skipped: {TORCH_ERROR}")
    if blas is not None:
        for p in blas:
            print(f"  pool      {p['owner']}: {p['internal_api']} {p['version'] or ''} "
                  f"{p['num_threads']} threads{', ' + p['architecture'] if p['architecture'] else ''} "
                  f"({os.path.basename(p['filepath'])})")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------
# Implementations
# ---------------------------------------------------------------------------------------------
def make_model() -> fs.Model:
    return fs.Model(ACTIVATION, TARGET, lr_w=LR_W, lr_a=LR_A)


def make_trainer(shape: tuple[int, int, int], dtype: str, seed: int = SEED) -> Any:
    B, d, n = shape
    return fs.make_trainer(make_model(), d, n, B, dt=DT, a0=A0, m0=M0, seed=seed, dtype=dtype, threads=FS_THREADS)


class NumpyStep:
    """A vectorised NumPy SGD step (same math as fastslow's), in place on its own state.

    Buffers are allocated once; the elementwise work runs in place. ``step()`` draws the batch
    with ``Generator(SFC64).standard_normal`` (NumPy's fastest bit generator) into a reused
    buffer; ``step_with_batch(X)`` uses a given batch.
    """

    def __init__(self, W: np.ndarray, a: np.ndarray, theta: np.ndarray, batch: int, dtype: str, seed: int) -> None:
        self.dtype = np.dtype(dtype)
        self.W = np.array(W, dtype=self.dtype, order="C")
        self.a = np.array(a, dtype=self.dtype)
        self.theta = np.array(theta, dtype=self.dtype)
        n, d = self.W.shape
        self.B, self.n, self.d = batch, n, d
        self.rng = np.random.Generator(np.random.SFC64(seed))
        self.X = np.empty((batch, d), self.dtype)
        self.P = np.empty((batch, n), self.dtype)
        self.M = np.empty((batch, n), self.dtype)
        self.G = np.empty((n, d), self.dtype)
        self.sw = LR_W * DT / batch
        self.sa = LR_A * DT / batch

    def step(self) -> None:
        self.rng.standard_normal(out=self.X, dtype=self.dtype)
        self.step_with_batch(self.X)

    def step_with_batch(self, X: np.ndarray) -> None:
        W, a, P, M = self.W, self.a, self.P, self.M
        np.matmul(X, W.T, out=P)                   # P = X W^T          (GEMM 1)
        S = np.tanh(P, out=P)                      # S = tanh(P), in place
        f = S @ a
        f *= 1.0 / self.n                          # f = S a / n
        r = f - target_value(X @ self.theta)       # r = f - g(X theta)  (no label noise)
        grad_a = S.T @ r                           # B * grad_a
        np.multiply(S, S, out=M)
        np.subtract(1.0, M, out=M)                 # D = 1 - S^2
        M *= r[:, None]
        M *= (a * self.sw)[None, :]                # M = lr_w dt / B * D * (r a^T)
        np.matmul(M.T, X, out=self.G)              # lr_w dt G = M^T X  (GEMM 2)
        W -= self.G
        W /= np.sqrt(np.einsum("ij,ij->i", W, W))[:, None]
        a -= self.sa * grad_a


class TorchStep:
    """The same step in eager PyTorch on the CPU (``inference_mode``, in-place where possible)."""

    def __init__(self, W: np.ndarray, a: np.ndarray, theta: np.ndarray, batch: int, seed: int) -> None:
        assert torch is not None
        dt = torch.float32
        self.W = torch.tensor(np.asarray(W, np.float32), dtype=dt).contiguous()
        self.a = torch.tensor(np.asarray(a, np.float32), dtype=dt)
        self.theta = torch.tensor(np.asarray(theta, np.float32), dtype=dt)
        n, d = self.W.shape
        self.B, self.n, self.d = batch, n, d
        self.gen = torch.Generator().manual_seed(seed)
        self.X = torch.empty((batch, d), dtype=dt)
        self.P = torch.empty((batch, n), dtype=dt)
        self.G = torch.empty((n, d), dtype=dt)
        self.sw = LR_W * DT / batch
        self.sa = LR_A * DT / batch

    def step(self) -> None:
        with torch.inference_mode():
            torch.randn((self.B, self.d), generator=self.gen, out=self.X)
            self._step(self.X)

    def step_with_batch(self, X: np.ndarray) -> None:
        with torch.inference_mode():
            self._step(torch.from_numpy(np.ascontiguousarray(X, np.float32)))

    def _step(self, X: Any) -> None:
        W, a, P = self.W, self.a, self.P
        torch.mm(X, W.t(), out=P)                  # P = X W^T          (GEMM 1)
        S = P.tanh_()
        f = torch.mv(S, a).mul_(1.0 / self.n)
        r = f.sub_(target_value(torch.mv(X, self.theta)))
        grad_a = torch.mv(S.t(), r)                # B * grad_a
        M = S.mul_(S).neg_().add_(1.0)             # D = 1 - S^2 (in place of S)
        M.mul_(r[:, None]).mul_((a * self.sw)[None, :])
        torch.mm(M.t(), X, out=self.G)             # lr_w dt G = M^T X  (GEMM 2)
        W.sub_(self.G)
        W.div_(torch.linalg.vector_norm(W, dim=1, keepdim=True))
        a.sub_(grad_a, alpha=self.sa)

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        return self.W.numpy().copy(), self.a.numpy().copy()


class TwoGemms:
    """The two GEMMs of a step alone, ``P = X W^T`` and ``G = M^T X``, into preallocated outputs."""

    def __init__(self, shape: tuple[int, int, int], lib: str, seed: int = 1) -> None:
        B, d, n = shape
        g = np.random.default_rng(seed)
        X = g.standard_normal((B, d), dtype=np.float32)
        W = g.standard_normal((n, d), dtype=np.float32)
        M = g.standard_normal((B, n), dtype=np.float32)
        self.lib = lib
        if lib == "numpy":
            self.X, self.W, self.M = X, W, M
            self.P, self.G = np.empty((B, n), np.float32), np.empty((n, d), np.float32)
        else:
            self.X, self.W, self.M = (torch.from_numpy(v) for v in (X, W, M))
            self.P, self.G = torch.empty((B, n)), torch.empty((n, d))

    def __call__(self) -> None:
        if self.lib == "numpy":
            np.matmul(self.X, self.W.T, out=self.P)
            np.matmul(self.M.T, self.X, out=self.G)
        else:
            torch.mm(self.X, self.W.t(), out=self.P)
            torch.mm(self.M.t(), self.X, out=self.G)


class FastslowPatternGemms:
    """The two GEMMs exactly as fastslow's trainer calls them, for the attribution of its time.

    ``scipy_cblas_sgemm`` of the scipy-openblas32 wheel that fastslow links (through ctypes,
    which releases the GIL), with OpenBLAS set to one thread, called by two Python threads at
    once. The work is cut into the trainer's own fixed blocks (``blocks`` = its ``_blocks``: row
    and neuron blocks, one call each) and each thread takes a contiguous run of them, as the
    trainer's OpenMP threads do: row blocks of ``X`` times ``[W; theta]^T`` into ``P`` (leading
    dimension ``n + 1``), then, after both finish, neuron blocks of ``G = M^T X``. Python's
    thread pool adds some 0.1 ms per step over fastslow's OpenMP.
    """

    ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

    def __init__(self, shape: tuple[int, int, int], blocks: tuple[int, int], threads: int = FS_THREADS,
                 seed: int = 1) -> None:
        import scipy_openblas32  # fastslow's BLAS (a dependency of fastslow)

        path = os.path.join(scipy_openblas32.get_lib_dir(), scipy_openblas32.get_library(True))
        lib = ctypes.CDLL(path)
        self.sgemm = lib.scipy_cblas_sgemm
        fp = ctypes.POINTER(ctypes.c_float)
        i, f = ctypes.c_int, ctypes.c_float
        self.sgemm.argtypes = [i, i, i, i, i, i, f, fp, i, fp, i, f, fp, i]
        self.sgemm.restype = None
        self.get_threads = lib.scipy_openblas_get_num_threads
        self.get_threads.restype = ctypes.c_int
        self.set_threads = lib.scipy_openblas_set_num_threads
        self.set_threads.argtypes = [ctypes.c_int]
        B, d, n = shape
        g = np.random.default_rng(seed)
        self.shape = shape
        self.X = g.standard_normal((B, d), dtype=np.float32)
        self.Wt = g.standard_normal((n + 1, d), dtype=np.float32)  # [W; theta]
        self.M = g.standard_normal((B, n), dtype=np.float32)
        self.P = np.empty((B, n + 1), np.float32)
        self.G = np.empty((n, d), np.float32)
        self.threads = threads
        self.row_blocks, self.neuron_blocks = blocks
        self.pool = concurrent.futures.ThreadPoolExecutor(threads)
        self.ptr = {k: v.ctypes.data_as(fp) for k, v in
                    (("X", self.X), ("Wt", self.Wt), ("M", self.M), ("P", self.P), ("G", self.G))}

    @staticmethod
    def block(total: int, parts: int, index: int) -> tuple[int, int]:
        base, extra = divmod(total, parts)
        lo = index * base + min(index, extra)
        return lo, lo + base + (1 if index < extra else 0)

    def _forward(self, t: int) -> None:
        B, d, n = self.shape
        fp = ctypes.POINTER(ctypes.c_float)
        for k in range(*self.block(self.row_blocks, self.threads, t)):
            b0, b1 = self.block(B, self.row_blocks, k)
            if b1 > b0:
                x = ctypes.cast(ctypes.addressof(self.ptr["X"].contents) + 4 * b0 * d, fp)
                p = ctypes.cast(ctypes.addressof(self.ptr["P"].contents) + 4 * b0 * (n + 1), fp)
                self.sgemm(self.ROW_MAJOR, self.NO_TRANS, self.TRANS, b1 - b0, n + 1, d, 1.0, x, d, self.ptr["Wt"],
                           d, 0.0, p, n + 1)

    def _backward(self, t: int) -> None:
        B, d, n = self.shape
        fp = ctypes.POINTER(ctypes.c_float)
        for k in range(*self.block(self.neuron_blocks, self.threads, t)):
            i0, i1 = self.block(n, self.neuron_blocks, k)
            if i1 > i0:
                m = ctypes.cast(ctypes.addressof(self.ptr["M"].contents) + 4 * i0, fp)
                g = ctypes.cast(ctypes.addressof(self.ptr["G"].contents) + 4 * i0 * d, fp)
                self.sgemm(self.ROW_MAJOR, self.TRANS, self.NO_TRANS, i1 - i0, d, B, 1.0, m, n, self.ptr["X"], d,
                           0.0, g, d)

    def __call__(self) -> None:
        old = self.get_threads()
        self.set_threads(1)
        try:
            list(self.pool.map(self._forward, range(self.threads)))
            list(self.pool.map(self._backward, range(self.threads)))
        finally:
            self.set_threads(old)

    def check(self) -> float:
        """Largest relative error of the blocked products against NumPy (float64)."""
        self()
        B, d, n = self.shape
        P = self.X.astype(float) @ self.Wt.astype(float).T
        G = self.M.astype(float).T @ self.X.astype(float)
        return max(rel_err(self.P, P), rel_err(self.G, G))


def sgemm_peak(lib: str, repeats: int, size: int = PEAK_SIZE) -> dict[str, Any]:
    """Best of ``repeats`` square float32 matmuls ``size^3`` into a preallocated, touched output,
    in GFLOP/s (after a small warm-up product that wakes the library's threads)."""
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
    else:
        At, Bt, Ct = torch.from_numpy(A), torch.from_numpy(Bm), torch.from_numpy(C)

        def fn() -> None:
            torch.mm(At, Bt, out=Ct)

        def warm() -> None:
            torch.mm(At[:small, :small], Bt[:small, :small])
    times = []
    for _ in range(repeats):
        quiesce()
        warm()
        times.append(once(fn))
    best = min(times)
    return {"lib": lib, "size": size, "repeats": repeats, "best_seconds": best,
            "median_seconds": float(np.median(times)), "gflops": 2.0 * size**3 / best / 1e9}


# ---------------------------------------------------------------------------------------------
# Agreement
# ---------------------------------------------------------------------------------------------
def compare(label: str, W0: np.ndarray, a0: np.ndarray, W: np.ndarray, a: np.ndarray, W_ref: np.ndarray,
            a_ref: np.ndarray, tol: float, checker: Checker) -> dict[str, float]:
    """State ``(W, a)`` and update ``(W - W0, a - a0)`` against the reference, each checked."""
    W0, a0 = np.asarray(W0, float), np.asarray(a0, float)
    errs = {
        "W": rel_err(W, W_ref), "a": rel_err(a, a_ref),
        "dW": rel_err(np.asarray(W, float) - W0, W_ref - W0), "da": rel_err(np.asarray(a, float) - a0, a_ref - a0),
    }
    for key, e in errs.items():
        checker.check(f"{label}: {key} vs reference", e, tol)
    return errs


def agreement(shape: tuple[int, int, int], dtypes: Sequence[str], checker: Checker) -> dict[str, Any]:
    """One step of each implementation on one given batch against the float64 reference."""
    B, d, n = shape
    out: dict[str, Any] = {}
    lines = []
    for dtype in dtypes:
        tol = AGREE_TOL[dtype]
        tr = make_trainer(shape, dtype)
        W0, a0, theta = np.array(tr.W), np.array(tr.a), np.array(tr.theta)
        g = np.random.default_rng(12345)
        X = g.standard_normal((B, d)).astype(dtype)
        xi = np.zeros(B, dtype)
        start = time.perf_counter()
        W_ref, a_ref, loss_ref = reference.sgd_step(W0, a0, theta, X, xi, REF_ACT, REF_TARGET, LR_W, LR_A, DT, 0.0)
        ref_time = time.perf_counter() - start
        rel_update = float(np.max(np.abs(W_ref - W0)) / np.max(np.abs(W0)))
        impls: dict[str, dict[str, float]] = {}

        tr.step_with_batch(X, xi)
        impls[f"fastslow {dtype}"] = compare(f"{shape_label(shape)} fastslow {dtype} step_with_batch",
                                             W0, a0, tr.W, tr.a, W_ref, a_ref, tol, checker)
        loss_err = abs(float(tr.batch_loss) - loss_ref) / loss_ref
        checker.check(f"{shape_label(shape)} fastslow {dtype} batch_loss vs reference", loss_err, tol)
        npy = NumpyStep(W0, a0, theta, B, dtype, seed=SEED)
        npy.step_with_batch(X)
        impls[f"NumPy {dtype}"] = compare(f"{shape_label(shape)} NumPy {dtype} step", W0, a0, npy.W, npy.a,
                                          W_ref, a_ref, tol, checker)
        if torch is not None and dtype == "float32":
            ts = TorchStep(W0, a0, theta, B, seed=SEED)
            ts.step_with_batch(X)
            Wt, at = ts.state()
            impls[f"PyTorch {dtype}"] = compare(f"{shape_label(shape)} PyTorch {dtype} step", W0, a0, Wt, at,
                                                W_ref, a_ref, tol, checker)

        # tr.run(1) draws its own batch, so it cannot be compared entry by entry: check that it
        # takes a real step (unit rows, finite, an update of the size of the given-batch step).
        tr_run = make_trainer(shape, dtype)
        tr_run.run(1)
        Wr, ar = np.array(tr_run.W, float), np.array(tr_run.a, float)
        norms = np.linalg.norm(Wr, axis=1)
        norm_err = float(np.max(np.abs(norms - 1.0))) if np.all(np.isfinite(norms)) else math.inf
        size_ratio = float(np.linalg.norm(Wr - W0) / np.linalg.norm(W_ref - W0))
        run_ok = (np.all(np.isfinite(Wr)) and np.all(np.isfinite(ar)) and norm_err <= 10 * tol
                  and 0.5 <= size_ratio <= 2.0)
        checker.check(f"{shape_label(shape)} fastslow {dtype} run(1): unit rows, update size "
                      f"{size_ratio:.3f} of the given-batch step (0.5..2)", 0.0 if run_ok else math.inf, 0.0)
        out[dtype] = {"tol": tol, "reference_time": ref_time, "update_over_W": rel_update, "impls": impls,
                      "fastslow_batch_loss_err": loss_err,
                      "run1": {"row_norm_err": norm_err, "update_size_ratio": size_ratio, "ok": bool(run_ok)}}
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
# One shape
# ---------------------------------------------------------------------------------------------
def calibrated_steps(fn_steps: Callable[[int], Any], min_call: float) -> int:
    """``k`` such that ``fn_steps(k)`` lasts at least ``min_call`` seconds (two probe calls)."""
    quiesce()
    fn_steps(1)
    t1 = once(lambda: fn_steps(1))
    return max(1, math.ceil(min_call / max(t1, 1e-6)))


def calls_for(fn: Callable[[], Any], budget: float, warmup: int) -> int:
    """Warm ``fn`` up (``warmup`` untimed calls), then the calls per round so that one round of
    ``fn`` lasts about ``budget`` seconds (at least one), from the time of one more call."""
    quiesce()
    for _ in range(warmup):
        fn()
    return max(1, round(budget / max(once(fn), 1e-6)))


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
    npy = NumpyStep(W0, a0, theta, B, "float32", seed=SEED)
    tor = TorchStep(W0, a0, theta, B, seed=SEED) if torch is not None else None
    gemm_np = TwoGemms(shape, "numpy")
    gemm_t = TwoGemms(shape, "torch") if torch is not None else None
    try:
        gemm_fs: FastslowPatternGemms | None = FastslowPatternGemms(shape, tuple(tr._blocks))
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
        tr_prev._set_blocks(*PREVIOUS_BLOCKS)
        fns["fastslow, previous blocks"] = Timed(lambda: tr_prev.run(k), steps=k)
    fns["NumPy"] = Timed(npy.step)
    if tor is not None:
        fns["PyTorch"] = Timed(tor.step)
    fns["two GEMMs, NumPy"] = Timed(gemm_np)
    if gemm_t is not None:
        fns["two GEMMs, PyTorch"] = Timed(gemm_t)
    if gemm_fs is not None:
        fns["two GEMMs, fastslow pattern"] = Timed(gemm_fs)
    fns["fastslow step_with_batch"] = Timed(lambda: tr_swb.step_with_batch(X_given, xi0))
    fns["copy of X"] = Timed(lambda: np.copyto(X_copy, X_given))
    fns["RNG, NumPy SFC64"] = Timed(lambda: rng_np.standard_normal(out=X_copy, dtype=np.float32))
    if torch is not None:
        fns["RNG, torch.randn"] = Timed(lambda: torch.randn((B, d), generator=gen_t, out=X_t))
    if small:
        tr64 = make_trainer(shape, "float64")
        k64 = calibrated_steps(tr64.run, settings.min_call)
        npy64 = NumpyStep(W0, a0, theta, B, "float64", seed=SEED)
        fns["fastslow float64"] = Timed(lambda: tr64.run(k64), steps=k64)
        fns["NumPy float64"] = Timed(npy64.step)

    for t in fns.values():
        t.calls = calls_for(t.fn, budget, settings.warmup_steps)
    start = time.perf_counter()
    timings, waits = time_interleaved(fns, rounds)
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
            "fs_blocks": list(tr._blocks)}


def report(res: dict[str, Any], peak_gflops: float, blas: list[dict[str, Any]] | None) -> None:
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
    np_threads = numpy_blas_thread_count(blas)
    np_thr = f"{np_threads} BLAS" if np_threads is not None else "unknown"
    rows: dict[str, dict[str, Any]] = {}

    def add(name: str, label: str, threads: str, timing: Timing | None, note: str = "") -> None:
        rows[name] = {"label": label, "threads": threads, "time": timing, "note": note}
        if timing is not None:
            rows[name].update({"gflops": flops / timing.median / 1e9, "vs_fastslow": timing.median / t_fs})

    add("fastslow", f"fastslow run({k})/{k}", f"{FS_THREADS}", timings["fastslow"])
    if "fastslow, previous blocks" in timings:
        add("fastslow, previous blocks", f"fastslow, {PREVIOUS_BLOCKS[0]} x {PREVIOUS_BLOCKS[1]} blocks (before, info)",
            f"{FS_THREADS}", timings["fastslow, previous blocks"])
    add("NumPy", "NumPy float32 step", np_thr, timings["NumPy"])
    if has_torch:
        add("PyTorch", "PyTorch float32 step", f"{torch.get_num_threads()}", timings["PyTorch"])
    else:
        add("PyTorch", "PyTorch float32 step", "", None, f"skipped: {TORCH_ERROR}")
    add("two GEMMs, NumPy", "two GEMMs only, NumPy (floor)", np_thr, timings["two GEMMs, NumPy"])
    rows["two GEMMs at sgemm peak"] = {"label": f"two GEMMs at sgemm peak {peak_gflops:.0f} GFLOP/s",
                                       "threads": "", "time": None, "seconds": floor_peak,
                                       "gflops": peak_gflops, "vs_fastslow": floor_peak / t_fs,
                                       "note": "computed"}
    if has_torch:
        add("two GEMMs, PyTorch", "two GEMMs only, PyTorch (info)", f"{torch.get_num_threads()}",
            timings["two GEMMs, PyTorch"])
    if has_fs_gemms:
        add("two GEMMs, fastslow pattern", "two GEMMs as fastslow calls them (info)", f"{FS_THREADS}x1",
            timings["two GEMMs, fastslow pattern"])
    else:
        add("two GEMMs, fastslow pattern", "two GEMMs as fastslow calls them (info)", "", None,
            f"skipped: {res['fastslow_pattern_gemms_error']}")
    if small:
        add("fastslow float64", f"fastslow float64 run({k64})/{k64} (info)", f"{FS_THREADS}",
            timings["fastslow float64"])
        add("NumPy float64", "NumPy float64 step (info)", np_thr, timings["NumPy float64"])
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

    # -- where fastslow's time goes -------------------------------------------------------------------
    t_swb = timings["fastslow step_with_batch"].median
    t_copy = timings["copy of X"].median
    t_rng = t_fs - t_swb + t_copy
    t_rest = t_swb - t_copy - floor_np
    t_gfs = timings["two GEMMs, fastslow pattern"].median if has_fs_gemms else None
    breakdown = {
        "run": t_fs, "step_with_batch": t_swb, "copy_X": t_copy, "rng": t_rng, "gemm_floor_numpy": floor_np,
        "rest": t_rest, "gemm_floor_peak": floor_peak, "gemm_fastslow_pattern": t_gfs,
        "rest_vs_fastslow_pattern": None if t_gfs is None else t_swb - t_copy - t_gfs,
        "rng_numpy_sfc64": timings["RNG, NumPy SFC64"].median,
        "rng_torch": timings["RNG, torch.randn"].median if has_torch else None,
    }
    part = [
        ["fastslow step, tr.run (draws X)", fmt_time(t_fs), "100%", timings["fastslow"].repeats],
        ["  random numbers = run - step_with_batch + copy", fmt_time(t_rng), f"{t_rng / t_fs:.0%}", ""],
        ["  two GEMMs (NumPy floor)", fmt_time(floor_np), f"{floor_np / t_fs:.0%}", ""],
        ["  rest = step_with_batch - copy - GEMM floor", fmt_time(t_rest), f"{t_rest / t_fs:.0%}", ""],
    ]
    if t_gfs is not None:
        t_rest2 = breakdown["rest_vs_fastslow_pattern"]
        part += [
            [f"  or: two GEMMs as fastslow calls them ({res['fs_blocks'][0]} + {res['fs_blocks'][1]} blocks)", fmt_time(t_gfs), f"{t_gfs / t_fs:.0%}",
             ""],
            ["  and rest = step_with_batch - copy - those GEMMs", fmt_time(t_rest2), f"{t_rest2 / t_fs:.0%}", ""],
        ]
    part += [
        ["tr.step_with_batch (given X, no RNG)", fmt_time(t_swb), f"{t_swb / t_fs:.0%}",
         timings["fastslow step_with_batch"].repeats],
        ["copy of X (np.copyto, 1 thread), inside step_with_batch", fmt_time(t_copy), f"{t_copy / t_fs:.0%}",
         timings["copy of X"].repeats],
        ["for scale: NumPy SFC64 standard_normal float32, 1 thread", fmt_time(breakdown["rng_numpy_sfc64"]),
         f"{breakdown['rng_numpy_sfc64'] / t_fs:.0%}", timings["RNG, NumPy SFC64"].repeats],
    ]
    if has_torch:
        part.append([f"for scale: torch.randn float32, {torch.get_num_threads()} threads",
                     fmt_time(breakdown["rng_torch"]), f"{breakdown['rng_torch'] / t_fs:.0%}",
                     timings["RNG, torch.randn"].repeats])
    print("\nwhere fastslow's step goes (medians; no profiler):")
    print(render_table(["part", "time", "of step", "reps"], part))
    print("rest: the elementwise passes (tanh, tanh', residuals, M), the GEMVs S a and S^T r, the update and "
          "the row normalisation, and thread synchronisation. fastslow's GEMMs are single-threaded "
          "scipy-openblas32 calls, one per fixed block (P with leading dimension n + 1, for X theta), not "
          "NumPy's 2-thread calls: the 'or' lines time that same pattern from Python (ctypes, a thread pool).")
    sys.stdout.flush()
    res.update({"rows": rows, "breakdown": breakdown, "floor_numpy": floor_np, "floor_peak": floor_peak,
                "peak_gflops_used": peak_gflops})


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer rounds (under a minute)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="FILE",
                   help=f"where to save the results (default: {DEFAULT_JSON.relative_to(DEFAULT_JSON.parents[2])})")
    return p.parse_args(argv)


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the workloads, print the tables, save the JSON.

    Returns
    -------
    int
        0 if every implementation agreed with the reference, 1 otherwise.
    """
    args = parse_args(argv)
    settings = Settings.make(args.quick)
    wall = time.perf_counter()
    if torch is not None:
        torch.set_num_threads(TORCH_THREADS)
    info = machine_info()
    print_machine(info, settings)
    checker = Checker()
    blas = blas_info()
    print_threads(info, blas)

    peaks_before = [sgemm_peak("numpy", settings.peak_repeats)]
    if torch is not None:
        peaks_before.append(sgemm_peak("torch", settings.peak_repeats))
    print("sgemm peak before the workloads (float32 {0}^3, best of {1}): {2}".format(
        PEAK_SIZE, settings.peak_repeats, ", ".join(f"{p['lib']} {p['gflops']:.1f} GFLOP/s" for p in peaks_before)),
        flush=True)

    results: dict[str, Any] = {}
    for shape, rounds, budget in zip(SHAPES, settings.rounds, settings.round_budget):
        results[str(shape)] = workload(shape, rounds, budget, settings, checker)

    peaks_after = [sgemm_peak("numpy", settings.peak_repeats)]
    if torch is not None:
        peaks_after.append(sgemm_peak("torch", settings.peak_repeats))
    best_before = max(p["gflops"] for p in peaks_before)
    best_after = max(p["gflops"] for p in peaks_after)
    peak_entry = max(peaks_before + peaks_after, key=lambda p: p["gflops"])
    peak = peak_entry["gflops"]
    print("\nsgemm peak before / after the workloads: " + "; ".join(
        f"{a['lib']} {a['gflops']:.1f} / {b['gflops']:.1f} GFLOP/s" for a, b in zip(peaks_before, peaks_after))
        + f"; the floors use the best, {peak:.1f} GFLOP/s ({peak_entry['lib']})", flush=True)
    if abs(best_after - best_before) > 0.1 * peak:
        checker.note(f"the sgemm peak moved by more than 10% during the run ({best_before:.1f} -> "
                     f"{best_after:.1f} GFLOP/s): the machine's speed drifted")
    for res in results.values():
        report(res, peak, blas)

    section("Summary")
    targets = evaluate_targets(results)
    print("targets (from the issue):")
    for t in targets:
        verdict = "not measured" if t["met"] is None else ("met" if t["met"] else "NOT met")
        print(f"  {t['text']}: {verdict}")
        if t["met"] is False:
            checker.note(f"target not met: {t['text']}")
    elapsed = time.perf_counter() - wall
    out = {
        "benchmark": "sgd", "machine": info, "settings": asdict(settings), "thread_pools": blas,
        "config": {"activation": ACTIVATION, "target": TARGET, "lr_w": LR_W, "lr_a": LR_A, "dt": DT, "a0": A0,
                   "m0": M0, "seed": SEED, "fastslow_threads": FS_THREADS, "torch_threads": TORCH_THREADS,
                   "numpy_generator": "SFC64"},
        "torch": {"available": torch is not None, "version": info["torch"], "error": TORCH_ERROR},
        "sgemm_peak": {"before": peaks_before, "after": peaks_after, "used_gflops": peak, "used_lib": peak_entry["lib"]},
        "shapes": results, "targets": targets,
    }
    return finish(checker, elapsed, out, args.json)


if __name__ == "__main__":
    sys.exit(main())
