"""The finite network trained by large-batch online SGD (C++ core), and its comparison with the
limit ODE.

``train_sgd`` runs the simulator of MODEL.md section 1 and records order parameters, the batch
loss and the exact population loss of the finite network; ``compare`` measures how far the
SGD means are from an ODE trajectory.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _core
from .model import Model
from .ode import Trajectory, default_threads

__all__ = ["SGDResult", "Comparison", "TrainingInterrupted", "train_sgd", "make_trainer", "SGDTrainer", "compare",
           "record_steps", "load_checkpoint"]

DTYPES = {"float32": (np.float32, "SGDTrainer32"), "float64": (np.float64, "SGDTrainer64")}
_MAX_STEPS = 2**32 - 1  # the step counter is one 32-bit word of the random stream's counter


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`train_sgd`; ``.result`` holds everything recorded until then."""

    def __init__(self, result: "SGDResult") -> None:
        super().__init__(f"training interrupted at step {int(result.step[-1]) if result.step.size else 0}; "
                         "the records so far are in .result")
        self.result = result


@dataclass(frozen=True)
class SGDResult:
    """Recorded statistics of an SGD run.

    Attributes
    ----------
    t, step : ndarray
        ODE time ``step * dt`` and step index of each record.
    m_mean, m_std, a_mean, a_std : ndarray
        Mean and spread over neurons of the alignments ``m_i = w_i . theta`` and weights ``a_i``.
    batch_loss : ndarray
        ``mean_b (f(x_b) - y_b)^2 / 2`` of the batch of the step just taken (NaN at step 0).
    pop_loss : ndarray
        Exact population loss of the finite network (no sampling noise), from ``Q = W W^T`` and
        Mehler's formula, with the Hermite series of the model (exact up to its reported tails).
    params : dict
        Sizes, rates, seed, dtype, threads and the model.
    wall_time : float
        Seconds spent.
    """

    t: np.ndarray
    step: np.ndarray
    m_mean: np.ndarray
    m_std: np.ndarray
    a_mean: np.ndarray
    a_std: np.ndarray
    batch_loss: np.ndarray
    pop_loss: np.ndarray
    params: dict = field(default_factory=dict, compare=False)
    wall_time: float = field(default=0.0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "params"}
        p = dict(self.params)
        if isinstance(p.get("model"), Model):
            p["model"] = p["model"].to_dict()
        d["params"] = p
        return d


@dataclass(frozen=True)
class Comparison:
    """SGD means minus the ODE at the recorded times, and the largest deviations."""

    t: np.ndarray
    dm: np.ndarray
    da: np.ndarray
    max_dm: float
    max_da: float


def record_steps(steps: int, record: Any = 50, spacing: str = "log") -> np.ndarray:
    """Step indices at which to record: ``record`` points (log- or linearly spaced, always
    including 0 and ``steps``), or an explicit increasing array of steps."""
    from ._validate import integer

    steps = integer(steps, "steps", lo=0, hi=10**12)
    if isinstance(record, (int, np.integer)) and not isinstance(record, bool):
        if record < 2:
            raise ValueError(f"record: need at least 2 record points, got {record}")
        if record > 1_000_000:
            raise ValueError(f"record: at most 1,000,000 record points, got {record}")
        if spacing == "log":
            pts = np.geomspace(1, steps, record - 1) if steps >= 1 else np.array([])
        elif spacing == "linear":
            pts = np.linspace(0, steps, record)
        else:
            raise ValueError(f"spacing: must be 'log' or 'linear', got {spacing!r}")
        out = np.unique(np.concatenate([[0, steps], np.round(pts)]).astype(np.int64))
        return out[(out >= 0) & (out <= steps)]
    arr = np.asarray(record)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError("record: give a number of record points or a 1-D array of integer steps")
    if arr[0] < 0 or arr[-1] > steps or np.any(np.diff(arr) <= 0):
        raise ValueError(f"record: steps must be strictly increasing within [0, {steps}]")
    return arr.astype(np.int64)


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def memory_estimate(d: int, n: int, batch: int, dtype: str) -> int:
    """Bytes the simulator allocates: X (B x d), [P | z] (B x (n+1)), M (B x n), G (n x d), [W; theta]
    ((n+1) x d), a and small vectors, and for the population loss Q (n x n) and W in double."""
    item = np.dtype(DTYPES[dtype][0]).itemsize
    return (item * (batch * d + batch * (n + 1) + batch * n + n * d + (n + 1) * d + 2 * n + 2 * batch)
            + 8 * (n * n + n * d + batch))


def _positive_int(value: Any, field: str, upper: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{field}: must be a positive integer, got {value!r}")
    if value <= 0 or (upper is not None and value > upper):
        hi = f" and <= {upper}" if upper is not None else ""
        raise ValueError(f"{field}: must be > 0{hi}, got {value!r}")
    return int(value)


def make_trainer(model: Model, d: int, n: int, batch: int, dt: float, a0: float, m0: float = 0.0, *, seed: int = 0,
                 dtype: str = "float32", threads: int | None = None):
    """A step-by-step C++ trainer (``fastslow._core.SGDTrainer32/64``): ``.step(k)``/``.run(k)``, ``.W``,
    ``.a``, ``.theta`` (numpy views, no copies), ``.order_parameters()``, ``.population_loss(...)``."""
    if not isinstance(model, Model):
        raise ValueError(f"model: expected a fastslow.Model, got {type(model).__name__}")
    d = _positive_int(d, "d", 2**31 - 1)
    n = _positive_int(n, "n", 2**31 - 1)
    batch = _positive_int(batch, "batch", 2**31 - 1)
    if d < 2:
        raise ValueError(f"d: must be >= 2, got {d}")
    try:
        dt = float(dt)
        a0 = float(a0)
        m0 = float(m0)
    except (TypeError, ValueError):
        raise ValueError("dt, a0, m0: must be real numbers") from None
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt: must be finite and > 0, got {dt!r}")
    if not math.isfinite(a0):
        raise ValueError(f"a0: must be finite, got {a0!r}")
    if not (math.isfinite(m0) and abs(m0) <= 1):
        raise ValueError(f"m0: must be in [-1, 1], got {m0!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype: must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise ValueError(f"seed: must be an integer in [0, 2**64), got {seed!r}")
    if threads is None:
        threads = default_threads()
    threads = _positive_int(threads, "threads", os.cpu_count() or 1)
    need = memory_estimate(d, n, batch, dtype)
    avail = _available_memory()
    if avail is not None and need > 0.9 * avail:
        raise ValueError(f"d, n, batch: the simulator needs about {need / 2**30:.2f} GiB but only "
                         f"{avail / 2**30:.2f} GiB are available; reduce d, n or batch")
    act, tgt = model.simulator_functions()
    cls = getattr(_core, DTYPES[dtype][1])
    return cls(d, n, batch, dt, model.lr_w, model.lr_a, model.noise, int(seed), a0, m0, threads, act, tgt)


CHECKPOINT_VERSION = 1


def _run_signature(model: Model, d: int, n: int, batch: int, dt: float, steps: int, a0: float, m0: float, seed: int,
                   dtype: str, rec: np.ndarray) -> dict[str, Any]:
    """Everything that determines a run: a checkpoint only resumes a run with the same signature."""
    md = model.to_dict()
    return {"version": CHECKPOINT_VERSION, "d": d, "n": n, "batch": batch, "dt": float(dt), "steps": steps,
            "a0": float(a0), "m0": float(m0), "seed": int(seed), "dtype": dtype, "record": rec.tolist(),
            "model": {k: md[k] for k in ("s", "c", "lr_w", "lr_a", "noise", "activation", "target", "centred")}}


def save_checkpoint(path: str | os.PathLike, trainer: Any, signature: dict[str, Any], cols: dict[str, list]) -> None:
    """Write the full state atomically: a temporary file in the same folder, fsync, rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".fastslow-ckpt-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, W=np.array(trainer.W), a=np.array(trainer.a), theta=np.array(trainer.theta),
                     step=np.int64(trainer.step_count), signature=np.array(json.dumps(signature)),
                     **{f"rec_{k}": np.asarray(v) for k, v in cols.items()})
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`train_sgd`; a damaged file gets a clear ``ValueError``."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        data["signature"] = json.loads(str(data["signature"]))
        for key in ("W", "a", "theta", "step"):
            if key not in data:
                raise KeyError(key)
    except FileNotFoundError:
        raise ValueError(f"resume: no checkpoint at {path!r}") from None
    except Exception as exc:
        raise ValueError(f"resume: {path!r} is not a readable fastslow checkpoint ({type(exc).__name__}: {exc})") from None
    return data


def _check_signature(saved: dict[str, Any], current: dict[str, Any], path: str) -> None:
    for key in current:
        if saved.get(key) != current[key]:
            if key == "model":
                diff = [k for k in current["model"] if saved.get("model", {}).get(k) != current["model"][k]]
                key = "model." + (diff[0] if diff else "?")
            raise ValueError(f"resume: the checkpoint {path!r} is from a different configuration: {key} differs "
                             f"(checkpoint {saved.get(key.split('.')[0])!r:.80}); start a new run or use the same settings")


def _trim(cols: dict[str, list]) -> None:
    size = min(len(v) for v in cols.values())
    for v in cols.values():
        del v[size:]


#: ``fastslow.SGDTrainer(model, d, n, batch, dt, a0, ...)``: the reusable C++ trainer, for step-by-step use.
SGDTrainer = make_trainer


def train_sgd(model: Model, d: int, n: int, batch: int, dt: float, steps: int, a0: float, m0: float = 0.0, *,
              seed: int = 0, dtype: str = "float32", record: Any = 50, spacing: str = "log",
              threads: int | None = None, progress: bool = True, checkpoint: str | os.PathLike | None = None,
              checkpoint_every: float = 30.0, resume: str | os.PathLike | None = None) -> SGDResult:
    """Train the finite network by large-batch online SGD and record its order parameters.

    Parameters
    ----------
    model : Model
        Activation, target, learning rates and label noise.
    d, n, batch : int
        Input dimension, width and batch size.
    dt : float
        Step in ODE time (``t = step * dt``).
    steps : int
        Number of SGD steps (at most 2**32 - 1).
    a0, m0 : float
        Initial second-layer weight and alignment (``w_i = m0 theta + sqrt(1 - m0^2) u_i``).
    seed : int
        Seed of the counter-based random streams (data, noise, initialisation, teacher).
    dtype : {"float32", "float64"}
    record : int or array of int
        Number of record points (spaced by ``spacing``) or the steps to record at.
    threads : int, optional
        OpenMP and OpenBLAS threads (set together, never more than the cores; results do not
        depend on it).
    progress : bool
        Show a progress bar (tqdm) on a terminal.
    checkpoint : path, optional
        Write the full state (weights, step, records; the random streams need nothing more, being
        keyed by the step) to this ``.npz`` file atomically, at record points at most every
        ``checkpoint_every`` seconds, at the end, and on Ctrl-C.
    resume : path, optional
        Continue the run saved in this checkpoint; the result equals an uninterrupted run. The
        configuration must match the checkpoint's (a mismatch is a ``ValueError`` naming the field).

    Raises
    ------
    TrainingInterrupted
        On Ctrl-C, with the records so far in ``.result``.
    RuntimeError
        When the run diverges (the message names the step and the order parameters).
    """
    steps = _positive_int(steps, "steps", _MAX_STEPS)
    rec = record_steps(steps, record, spacing)
    if not (isinstance(checkpoint_every, (int, float)) and checkpoint_every >= 0):
        raise ValueError(f"checkpoint_every: must be a number of seconds >= 0, got {checkpoint_every!r}")
    trainer = make_trainer(model, d, n, batch, dt, a0, m0, seed=seed, dtype=dtype, threads=threads)
    signature = _run_signature(model, d, n, batch, dt, steps, a0, m0, seed, dtype, rec)
    s = np.asarray(model.s, float)
    c = np.asarray(model.c, float)
    second = float(np.sum(s**2) + model.activation_series.tail)
    tail_c = float(model.target_series.tail)
    cols: dict[str, list[float]] = {k: [] for k in ("step", "m_mean", "m_std", "a_mean", "a_std", "batch_loss", "pop_loss")}
    params = {"model": model, "d": d, "n": n, "batch": batch, "dt": float(dt), "steps": steps, "a0": float(a0),
              "m0": float(m0), "seed": int(seed), "dtype": dtype,
              "threads": threads if threads is not None else default_threads()}

    def record_now(batch_loss: float) -> None:
        op = trainer.order_parameters()
        row = {"step": trainer.step_count, "batch_loss": batch_loss,
               "pop_loss": trainer.population_loss(s, c, second, tail_c), **{k: op[k] for k in op}}
        for k in cols:
            cols[k].append(row[k])

    def result(wall: float) -> SGDResult:
        arr = {k: np.asarray(v, dtype=np.int64 if k == "step" else float) for k, v in cols.items()}
        return SGDResult(t=arr["step"] * float(dt), wall_time=wall, params=params, **arr)

    resumed_from = 0
    if resume is not None:
        state = load_checkpoint(resume)
        _check_signature(state["signature"], signature, os.fspath(resume))
        trainer.W[...] = state["W"]
        trainer.a[...] = state["a"]
        trainer.theta[...] = state["theta"]
        trainer.set_step_count(int(state["step"]))
        for k in cols:
            cols[k] = state[f"rec_{k}"].tolist()
        resumed_from = int(state["step"])
    last_save = time.monotonic()

    def save() -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, trainer, signature, cols)

    bar = None
    if progress:
        try:
            import sys

            from tqdm.auto import tqdm

            if sys.stderr.isatty():
                bar = tqdm(total=steps, unit="step", desc="SGD", leave=False)
        except ImportError:  # pragma: no cover - tqdm is a dependency
            bar = None
    start = time.perf_counter()
    try:
        if resume is None:
            record_now(float("nan"))
        if bar is not None:
            bar.update(resumed_from)
        for target in rec[rec > resumed_from]:
            todo = int(target) - int(trainer.step_count)
            while todo > 0:  # chunks so the bar moves
                chunk = min(todo, max(1, steps // 200)) if bar is not None else todo
                trainer.run(chunk)
                todo -= chunk
                if bar is not None:
                    bar.update(chunk)
                    op = trainer.order_parameters()
                    bar.set_postfix(m=f"{op['m_mean']:.4f}", a=f"{op['a_mean']:.4f}")
            record_now(trainer.batch_loss)
            if checkpoint is not None and time.monotonic() - last_save >= checkpoint_every:
                save()
                last_save = time.monotonic()
        save()
    except KeyboardInterrupt:
        # the state is consistent between steps: keep it on disk too
        _trim(cols)  # a Ctrl-C between two appends of one record leaves it half written
        if checkpoint is not None:
            save()
        raise TrainingInterrupted(result(time.perf_counter() - start)) from None
    finally:
        if bar is not None:
            bar.close()
    return result(time.perf_counter() - start)


def compare(sgd: SGDResult, trajectory: Trajectory) -> Comparison:
    """Deviations of the SGD means from the ODE at the recorded times.

    ``trajectory`` should be ``solve_ode(model, a0, m0, sgd.t)`` (values at exactly those times);
    otherwise its dense output is used.
    """
    if not isinstance(sgd, SGDResult):
        raise ValueError(f"sgd: expected an SGDResult, got {type(sgd).__name__}")
    if not isinstance(trajectory, Trajectory):
        raise ValueError(f"trajectory: expected a Trajectory, got {type(trajectory).__name__}")
    if trajectory.t.shape == sgd.t.shape and np.array_equal(trajectory.t, sgd.t):
        m, a = trajectory.m, trajectory.a
    else:
        if trajectory.sol is None:
            raise ValueError("trajectory: its times differ from the SGD record times and it has no dense output; "
                             "solve it with t_eval=sgd.t")
        m, a = trajectory.sol(sgd.t)
    dm = sgd.m_mean - m
    da = sgd.a_mean - a
    return Comparison(t=sgd.t, dm=dm, da=da, max_dm=float(np.max(np.abs(dm))), max_da=float(np.max(np.abs(da))))
