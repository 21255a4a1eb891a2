"""The peers of the SGD-step benchmark: the same step in NumPy and in PyTorch, and the two-GEMM floor
(the step's two matrix products alone, in NumPy, in PyTorch and in the pattern fastslow calls them).

The step (theory page section 1), no label noise, a fresh standard-normal batch ``X`` (``B x d``)::

    P = X W^T;  S = sigma(P);  D = sigma'(P);  f = S a / n;  y = g(X theta);  r = f - y
    grad_a = S^T r / B;  G = (D * (r a^T))^T X / B
    W -= lr_w dt G;  W /= row norms;  a -= lr_a dt grad_a

with ``sigma = tanh`` and a target ``g = c1 h1 + c3 h3`` written out by hand. PyTorch is optional:
:data:`torch` is None (and :data:`TORCH_ERROR` says why) when it does not import.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from _common import rel_err_scaled

try:  # optional: the benchmark must never fail because PyTorch is missing
    import torch

    TORCH_ERROR: str | None = None
except Exception as exc:  # pragma: no cover - depends on the environment
    torch = None
    TORCH_ERROR = f"{type(exc).__name__}: {exc}"

SQRT6 = math.sqrt(6.0)


@dataclass(frozen=True)
class StepConfig:
    """Learning rates, time step and the target ``g = c1 h1 + c3 h3`` of the hand-written steps."""

    lr_w: float
    lr_a: float
    dt: float
    c1: float
    c3: float

    @classmethod
    def make(cls, target: dict[int, float], lr_w: float, lr_a: float, dt: float) -> StepConfig:
        if not set(target) <= {1, 3}:
            raise ValueError("the hand-written target knows h1 and h3 only")
        return cls(lr_w=lr_w, lr_a=lr_a, dt=dt, c1=target.get(1, 0.0), c3=target.get(3, 0.0))

    def target(self, z: Any) -> Any:
        """``g(z) = c1 h1(z) + c3 h3(z)``, ``h3(z) = (z^3 - 3 z) / sqrt(6)`` (NumPy or torch)."""
        return self.c1 * z + (self.c3 / SQRT6) * (z * z * z - 3.0 * z)

    def target_derivative(self, z: Any) -> Any:
        """``g'(z) = c1 + c3 (3 z^2 - 3) / sqrt(6)``."""
        return self.c1 + (self.c3 / SQRT6) * (3.0 * z * z - 3.0)

    def reference_functions(self) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
        """``(activation, target)`` pairs of (function, derivative) for :func:`fastslow.reference.sgd_step`."""
        return (np.tanh, lambda u: 1.0 - np.tanh(u) ** 2), (self.target, self.target_derivative)


class NumpyStep:
    """A vectorised NumPy SGD step (same math as fastslow's), in place on its own state.

    Buffers are allocated once; the elementwise work runs in place. ``step()`` draws the batch with
    ``Generator(SFC64).standard_normal`` (NumPy's fastest bit generator) into a reused buffer;
    ``step_with_batch(X)`` uses a given batch. NumPy's BLAS threads are left as they are.
    """

    def __init__(self, W: np.ndarray, a: np.ndarray, theta: np.ndarray, batch: int, dtype: str, seed: int,
                 config: StepConfig) -> None:
        self.dtype = np.dtype(dtype)
        self.W = np.array(W, dtype=self.dtype, order="C")
        self.a = np.array(a, dtype=self.dtype)
        self.theta = np.array(theta, dtype=self.dtype)
        n, d = self.W.shape
        self.B, self.n, self.d = batch, n, d
        self.config = config
        self.rng = np.random.Generator(np.random.SFC64(seed))
        self.X = np.empty((batch, d), self.dtype)
        self.P = np.empty((batch, n), self.dtype)
        self.M = np.empty((batch, n), self.dtype)
        self.G = np.empty((n, d), self.dtype)
        self.sw = config.lr_w * config.dt / batch
        self.sa = config.lr_a * config.dt / batch

    def step(self) -> None:
        self.rng.standard_normal(out=self.X, dtype=self.dtype)
        self.step_with_batch(self.X)

    def step_with_batch(self, X: np.ndarray) -> None:
        W, a, P, M = self.W, self.a, self.P, self.M
        np.matmul(X, W.T, out=P)                   # P = X W^T          (GEMM 1)
        S = np.tanh(P, out=P)                      # S = tanh(P), in place
        f = S @ a
        f *= 1.0 / self.n                          # f = S a / n
        r = f - self.config.target(X @ self.theta)  # r = f - g(X theta)  (no label noise)
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
    """The same step in eager PyTorch on the CPU (``inference_mode``, in place where possible), float32,
    drawing its batch with ``torch.randn``."""

    def __init__(self, W: np.ndarray, a: np.ndarray, theta: np.ndarray, batch: int, seed: int,
                 config: StepConfig) -> None:
        assert torch is not None
        dt = torch.float32
        self.W = torch.tensor(np.asarray(W, np.float32), dtype=dt).contiguous()
        self.a = torch.tensor(np.asarray(a, np.float32), dtype=dt)
        self.theta = torch.tensor(np.asarray(theta, np.float32), dtype=dt)
        n, d = self.W.shape
        self.B, self.n, self.d = batch, n, d
        self.config = config
        self.gen = torch.Generator().manual_seed(seed)
        self.X = torch.empty((batch, d), dtype=dt)
        self.P = torch.empty((batch, n), dtype=dt)
        self.G = torch.empty((n, d), dtype=dt)
        self.sw = config.lr_w * config.dt / batch
        self.sa = config.lr_a * config.dt / batch

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
        r = f.sub_(self.config.target(torch.mv(X, self.theta)))
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
    """The two GEMMs of a step alone, ``P = X W^T`` and ``G = M^T X``, into preallocated outputs, in
    NumPy (``lib="numpy"``) or PyTorch (``lib="torch"``): the floor of any implementation of the step."""

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

    ``scipy_cblas_sgemm`` of the scipy-openblas32 wheel that fastslow links (through ctypes, which
    releases the GIL), with OpenBLAS set to one thread, called by ``threads`` Python threads at once.
    The work is cut into the trainer's own fixed blocks (``blocks``: row and neuron blocks, one call
    each, as ``fastslow._core._testing.blocks`` reports them) and each thread takes a contiguous run
    of them, as the trainer's OpenMP threads do: row blocks of ``X`` times ``[W; theta]^T`` into
    ``P`` (leading dimension ``n + 1``), then, after both finish, neuron blocks of ``G = M^T X``.
    Python's thread pool adds a little over fastslow's OpenMP.
    """

    ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

    def __init__(self, shape: tuple[int, int, int], blocks: tuple[int, int], threads: int, seed: int = 1) -> None:
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

    @staticmethod
    def block(total: int, parts: int, index: int) -> tuple[int, int]:
        base, extra = divmod(total, parts)
        lo = index * base + min(index, extra)
        return lo, lo + base + (1 if index < extra else 0)

    def _ptr(self, array: np.ndarray, offset: int) -> Any:
        """A float pointer ``offset`` entries into ``array``."""
        return ctypes.cast(array.ctypes.data + 4 * offset, ctypes.POINTER(ctypes.c_float))

    def _calls(self, thread: int, forward: bool) -> None:
        """This thread's run of blocks: row blocks of ``P = X [W; theta]^T`` or neuron blocks of ``G = M^T X``."""
        B, d, n = self.shape
        parts, total = (self.row_blocks, B) if forward else (self.neuron_blocks, n)
        for k in range(*self.block(parts, self.threads, thread)):
            lo, hi = self.block(total, parts, k)
            if hi <= lo:
                continue
            if forward:
                self.sgemm(self.ROW_MAJOR, self.NO_TRANS, self.TRANS, hi - lo, n + 1, d, 1.0, self._ptr(self.X, lo * d),
                           d, self._ptr(self.Wt, 0), d, 0.0, self._ptr(self.P, lo * (n + 1)), n + 1)
            else:
                self.sgemm(self.ROW_MAJOR, self.TRANS, self.NO_TRANS, hi - lo, d, B, 1.0, self._ptr(self.M, lo), n,
                           self._ptr(self.X, 0), d, 0.0, self._ptr(self.G, lo * d), d)

    def __call__(self) -> None:
        old = self.get_threads()
        self.set_threads(1)
        try:
            for forward in (True, False):
                list(self.pool.map(lambda t, forward=forward: self._calls(t, forward), range(self.threads)))
        finally:
            self.set_threads(old)

    def check(self) -> float:
        """Largest relative error of the blocked products against NumPy (float64)."""
        self()
        P = self.X.astype(float) @ self.Wt.astype(float).T
        G = self.M.astype(float).T @ self.X.astype(float)
        return max(rel_err_scaled(self.P, P), rel_err_scaled(self.G, G))
