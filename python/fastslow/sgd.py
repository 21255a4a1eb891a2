"""The finite network trained by large-batch online SGD (level ``"sgd"``), in the C++ core.

:class:`SGDTrainer` holds one network and steps it; :func:`train_sgd` runs it to a number of steps
and records the order parameters: the means and spreads over neurons of the alignments
``m_i = w_i^T theta`` and the second-layer weights ``a_i``, the batch loss and the exact population
loss of the finite network. Every step takes a fresh Gaussian batch, sampled by one of two exact
samplers (:mod:`fastslow.samplers`: ``"direct"`` draws it, ``"projected"`` draws only its
projection on the span of the weights and an independent remainder, ``d / n`` times cheaper at
large ``d``; ``"auto"`` picks the cheaper) from counter-based streams keyed by ``(seed, step,
row)``, so results do not depend on the number of threads, and a run resumed from a checkpoint
equals the uninterrupted one.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core
from . import _validate as V
from ._runtime import check_memory, resolve_threads
from .checkpoint import CHECKPOINT_VERSION, RECORD_COLUMNS, check_signature, load_checkpoint, save_checkpoint
from .initial import InitialLaw, sgd_codes
from .model import Model, as_model
from .params import lookup
from .samplers import choose_sampler
from .trajectory import Status, Trajectory

__all__ = ["SGDTrainer", "OrderParameters", "TrainingInterrupted", "train_sgd", "record_steps", "memory_estimate",
           "DTYPES"]

DTYPES: dict[str, Any] = {"float32": np.float32, "float64": np.float64}
_TRAINERS = {"float32": "Trainer32", "float64": "Trainer64"}


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`train_sgd`; ``.result`` holds the records made until then (a
    :class:`~fastslow.Trajectory` with status ``interrupted``)."""

    def __init__(self, result: Trajectory) -> None:
        last = int(result.step[-1]) if result.t.size else 0
        super().__init__(f"training interrupted at step {last}; the records so far are in .result")
        self.result = result


@dataclass(frozen=True)
class OrderParameters:
    """The means and spreads over neurons of ``m_i = w_i^T theta`` and ``a_i``."""

    m_mean: float
    m_std: float
    a_mean: float
    a_std: float


def record_steps(steps: int, record: Any = 50, spacing: str = "log") -> np.ndarray:
    """Step indices at which to record: ``record`` points (log- or linearly spaced, always
    including 0 and ``steps``), or an explicit increasing array of steps."""
    steps = V.integer(steps, "steps", lo=0, hi=10**12)
    if isinstance(record, (int, np.integer)) and not isinstance(record, (bool, np.bool_)):
        record = V.integer(record, "record", lo=2, hi=1_000_000)
        V.choice(spacing, "spacing", ("log", "linear"))
        if spacing == "log":
            pts = np.geomspace(1, steps, record - 1) if steps >= 1 else np.array([])
        else:
            pts = np.linspace(0, steps, record)
        out = np.unique(np.concatenate([[0, steps], np.round(pts)]).astype(np.int64))
        return out[(out >= 0) & (out <= steps)]
    if isinstance(record, (str, bytes, bool, float)) or record is None:
        raise TypeError(f"record: give a number of record points or a 1-D array of integer steps, got "
                        f"{V.show(record)}")
    try:
        arr = np.asarray(record)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"record: give a number of record points or a 1-D array of integer steps, got "
                        f"{V.show(record)}") from None
    if arr.dtype.kind not in "iu":
        raise TypeError(f"record: an array of record steps must hold integers, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"record: must be a non-empty 1-D array of steps, got shape {arr.shape}")
    if arr[0] < 0 or arr[-1] > steps or np.any(np.diff(arr) <= 0):
        raise ValueError(f"record: steps must be strictly increasing within [0, {steps}]")
    return arr.astype(np.int64)


def memory_estimate(d: int, n: int, batch: int, dtype: str, sampler: str = "direct") -> int:
    """Bytes the simulator allocates (the core's own count, an upper bound it checks again): for both
    samplers [P | z] (B x (n+1)), G (n x d), [W; theta] ((n+1) x d), small vectors and, for the
    population loss, Q (n x n) and W in double; direct: X (B x d) and M (B x n); projected: [M | Z]
    (B x (2n+1)), the basis Q^T ((n+1) x d), Xi (n x d), each row block's [M^T M | M^T Z]
    (n x (2n+1)) and n x n matrices."""
    config = _core.sgd.TrainerConfig(d=d, n=n, batch=batch, dt=1.0, lr_w=1.0, lr_a=1.0, sampler=sampler)
    return int(getattr(_core.sgd, _TRAINERS[dtype]).memory_need(config))


class SGDTrainer:
    """One finite network under large-batch online SGD, stepped from Python (the C++ trainer).

    Parameters
    ----------
    model : Model
        Activation, target, learning rates and label noise.
    d, n, batch : int
        Input dimension (>= 2), width and batch size.
    dt : float
        Step in ODE time (``t = step * dt``).
    a0, m0 : float
        Initial second-layer weight and alignment (``w_i = m0 theta + sqrt(1 - m0^2) u_i``). ``a0``
        may also be an array of ``n`` values, one per neuron.
    seed : int
        Seed of the counter-based random streams (data, noise, initialisation, teacher).
    dtype : {"float32", "float64"}
    threads : int, optional
        OpenMP threads, from 1 to the usable cores (results do not depend on it).
    sampler : {"auto", "direct", "projected"}
        How a step samples its batch (:mod:`fastslow.samplers`; the same law, other random
        realisations): ``"auto"`` takes the cheaper by the cost model.
    a_dist, a_sigma, a_positive, m_dist
        The initial law (:class:`~fastslow.InitialLaw`): the second layer ``"constant"`` (``a_i = a0``,
        the default), ``"normal"`` (``a0 + a_sigma xi_i``) or ``"signs"`` (``+a0`` for the first
        ``round(a_positive n)`` neurons, ``-a0`` for the others); the first layer ``"fixed"`` (at
        ``m0``) or ``"sphere"`` (uniform on the sphere). The draws are keyed by ``(seed, neuron)``.

    Attributes
    ----------
    W, a, theta : ndarray
        Views (no copies) of the first-layer rows, the second layer and the teacher direction.
    sampler : str
        The sampler used, ``"direct"`` or ``"projected"`` (``"auto"`` resolved).
    step_count : int
    t : float
        ``step_count * dt``.
    """

    def __init__(self, model: Model, *, d: int, n: int, batch: int, dt: float, a0: Any, m0: float = 0.0,
                 seed: int = 0, dtype: str = "float32", threads: int | None = None, sampler: str = "auto",
                 a_dist: str = "constant", a_sigma: float = 0.0, a_positive: float = 0.5, m_dist: str = "fixed") -> None:
        self.model = as_model(model)
        self.d = lookup("d").check(d, "d")
        self.n = lookup("n").check(n, "n")
        self.batch = lookup("batch").check(batch, "batch")
        self.dt = lookup("dt").check(dt, "dt")
        explicit = None
        if isinstance(a0, (list, tuple, np.ndarray)):  # one value per neuron
            explicit = V.real_array(a0, "a0", ndim=1)
            if explicit.size != self.n:
                raise ValueError(f"a0: an array needs one value per neuron ({self.n}), got {explicit.size}")
            if np.any(np.abs(explicit) > 1e6):
                raise ValueError("a0: every value must be >= -1e+06 and <= 1e+06")
            if a_dist != "constant":
                raise ValueError(f"a0: an array of values sets the second layer; a_dist must be 'constant', "
                                 f"got {a_dist!r}")
        self.a0 = lookup("a0").check(0.0 if explicit is not None else a0, "a0")
        self.m0 = V.real(m0, "m0", lo=-1.0, hi=1.0)
        self.init = InitialLaw(a0=self.a0, m0=min(max(self.m0, -0.999999), 0.999999), a_dist=a_dist, a_sigma=a_sigma,
                               a_positive=a_positive, m_dist=m_dist, d=self.d)
        self._a_explicit = explicit
        self.seed = V.integer(seed, "seed", lo=0, hi=2**64 - 1)
        self.dtype = V.choice(dtype, "dtype", tuple(DTYPES))
        self.threads = resolve_threads(threads)
        self.sampler = choose_sampler(lookup("sampler").check(sampler, "sampler"), self.batch, self.d, self.n)
        check_memory(memory_estimate(self.d, self.n, self.batch, self.dtype, self.sampler), "d, n, batch",
                     "the simulator's buffers", hint="reduce d, n or batch")
        act, tgt = self.model.simulator_functions()
        codes = {**sgd_codes(self.init), "a0": self.a0, "m0": self.m0}
        config = _core.sgd.TrainerConfig(d=self.d, n=self.n, batch=self.batch, dt=self.dt, lr_w=self.model.lr_w,
                                         lr_a=self.model.lr_a, noise=self.model.noise, seed=self.seed,
                                         threads=self.threads, sampler=self.sampler, **codes)
        self._raw = getattr(_core.sgd, _TRAINERS[self.dtype])(config, act, tgt)
        if explicit is not None:
            self._raw.a[...] = explicit
        s = np.asarray(self.model.s, float)
        self._loss_args = (s, np.asarray(self.model.c, float), float(np.sum(s**2) + self.model.activation_series.tail),
                           float(self.model.target_series.tail))

    def run(self, steps: int) -> int:
        """Take ``steps`` SGD steps (GIL released; Ctrl-C raises ``KeyboardInterrupt`` between
        steps, with the state consistent). Returns the number of steps taken."""
        steps = V.integer(steps, "steps", lo=0, hi=2**32 - 1)
        return int(self._raw.run(steps))

    def run_schedule(self, dts: Any) -> int:
        """Take one step per entry of ``dts``, each with that step in ODE time (a step schedule,
        see :mod:`fastslow.stability`; :attr:`dt` and :attr:`t` keep the nominal step). Returns the
        number of steps taken."""
        arr = V.real_array(dts, "dts", ndim=1)
        if np.any(arr <= 0):
            raise ValueError("dts: every step must be > 0")
        return int(self._raw.run_schedule(np.ascontiguousarray(arr)))

    def step(self, steps: int = 1) -> int:
        """Take ``steps`` steps (default one); see :meth:`run`."""
        return self.run(steps)

    @property
    def W(self) -> np.ndarray:
        return self._raw.W

    @property
    def a(self) -> np.ndarray:
        return self._raw.a

    @property
    def theta(self) -> np.ndarray:
        return self._raw.theta

    @property
    def step_count(self) -> int:
        return int(self._raw.step_count)

    @step_count.setter
    def step_count(self, value: int) -> None:
        self._raw.set_step_count(V.integer(value, "step_count", lo=0, hi=2**32 - 1))

    @property
    def t(self) -> float:
        return self.step_count * self.dt

    @property
    def batch_loss(self) -> float:
        """``mean_b (f(x_b) - y_b)^2 / 2`` of the batch of the last step (0 before the first)."""
        return float(self._raw.batch_loss)

    def order_parameters(self) -> OrderParameters:
        op = self._raw.order_parameters()
        return OrderParameters(op.m_mean, op.m_std, op.a_mean, op.a_std)

    def alignments(self) -> np.ndarray:
        """``m_i = w_i^T theta`` of every neuron."""
        return np.asarray(self._raw.alignments())

    def population_loss(self) -> float:
        """The exact population loss of the network as it is (no sampling): from ``Q = W W^T`` and
        Mehler's formula with the model's Hermite series (exact up to their reported tails)."""
        return float(self._raw.population_loss(*self._loss_args))

    def collective_overlap(self) -> float:
        """``q_perp``: the mean over pairs ``i != j`` of ``u_i^T u_j``, with ``u_i`` the unit part of
        ``w_i`` orthogonal to the teacher (about ``-1/n`` for independent random directions)."""
        return float(self._raw.population_stats(*self._loss_args).q_perp)

    def state(self) -> dict[str, np.ndarray]:
        """Copies of ``W``, ``a`` and ``theta`` (with :attr:`step_count`, the whole state)."""
        return {"W": np.array(self.W), "a": np.array(self.a), "theta": np.array(self.theta)}

    def load_state(self, state: dict[str, np.ndarray], step: int) -> None:
        """Restore a :meth:`state` and the step count (resuming a checkpoint)."""
        for k in ("W", "a", "theta"):
            v = np.asarray(state[k])
            target = getattr(self, k)
            if v.shape != target.shape:
                raise ValueError(f"resume: {k} has shape {v.shape}, this network's is {target.shape}")
            target[...] = v
        self.step_count = step

    def run_signature(self, steps: int, record: np.ndarray) -> dict[str, Any]:
        """Everything that determines a run of ``steps`` steps recorded at ``record``: a checkpoint
        resumes only a run with the same signature."""
        md = self.model.to_dict()
        sig = {"version": CHECKPOINT_VERSION, "d": self.d, "n": self.n, "batch": self.batch, "dt": self.dt,
               "steps": int(steps), "a0": self.a0, "m0": self.m0, "seed": self.seed, "dtype": self.dtype,
               "sampler": self.sampler, "record": np.asarray(record).tolist(),
               "model": {k: md[k] for k in ("s", "c", "lr_w", "lr_a", "noise", "activation", "target", "centred")}}
        if not (self.init.a_dist == "constant" and self.init.m_dist == "fixed"):  # (identical neurons: as before)
            sig["init"] = {k: getattr(self.init, k) for k in ("a_dist", "a_sigma", "a_positive", "m_dist")}
        if self._a_explicit is not None:
            sig["a0"] = self._a_explicit.tolist()
        return sig

    def __repr__(self) -> str:
        op = self.order_parameters()
        return (f"SGDTrainer(d={self.d}, n={self.n}, batch={self.batch}, dt={self.dt:g}, {self.dtype}, {self.sampler}, "
                f"seed={self.seed}, "
                f"step {self.step_count}: m_mean = {op.m_mean:.4g}, a_mean = {op.a_mean:.4g})")


def train_sgd(model: Model, *, d: int, n: int, batch: int, dt: float, steps: int, a0: Any, m0: float = 0.0,
              seed: int = 0, dtype: str = "float32", record: Any = 50, spacing: str = "log",
              threads: int | None = None, progress: bool = True, checkpoint: str | os.PathLike | None = None,
              checkpoint_every: float = 30.0, resume: str | os.PathLike | None = None,
              sampler: str = "auto", dt_schedule: Any = None, a_dist: str = "constant",
              a_sigma: float = 0.0, a_positive: float = 0.5, m_dist: str = "fixed",
              record_neurons: bool = False) -> Trajectory:
    """Train the finite network by large-batch online SGD and record its order parameters.

    Parameters
    ----------
    model : Model
    d, n, batch, dt, a0, m0, seed, dtype, threads, sampler, a_dist, a_sigma, a_positive, m_dist
        As for :class:`SGDTrainer` (``sampler``: ``"auto"``, ``"direct"`` or ``"projected"``; the initial law).
    steps : int
        Number of SGD steps (at most 2**32 - 1).
    record : int or array of int
        Number of record points (spaced by ``spacing``, ``"log"`` or ``"linear"``) or the steps to
        record at.
    progress : bool
        A progress bar (tqdm) when standard error is a terminal.
    checkpoint : path, optional
        Write the full state to this ``.npz`` file atomically: at record points at most every
        ``checkpoint_every`` seconds, at the end, and on Ctrl-C.
    resume : path, optional
        Continue the run saved in this checkpoint; the result equals an uninterrupted run. The
        settings must match the checkpoint's (a mismatch is a ``ValueError`` naming the field).
    dt_schedule : "stable" or StepSchedule, optional
        Steps ``dt_k`` instead of the constant ``dt``: the run covers the ODE time ``steps * dt``
        and takes the schedule's steps up to it (ODE time is the sum of the steps; records are at
        step indices of the schedule). ``"stable"`` builds
        :func:`fastslow.stability.stable_schedule` with ``dt`` as its largest step. Without a
        schedule, a ``RuntimeWarning`` is given before a run whose ``dt`` would exceed the stable
        bound of the limit ODE's fast eigenvalue within ``steps * dt`` (it names ``dt``, the ``t``
        and the bound there; see :func:`fastslow.stability.stability`).
    record_neurons : bool
        Also record every neuron's ``(m_i, a_i)`` at the record points (in ``particles``, shape
        ``(n, T)``, with ``particle_weights = 1/n``), for comparison with the particle limit (not
        with ``checkpoint`` or ``resume``).

    Returns
    -------
    Trajectory
        Level ``"sgd"``: ``m``, ``a`` the means over neurons, ``loss`` the exact population loss of
        the finite network; ``series``: ``step``, ``m_std``, ``a_std``, ``batch_loss`` (NaN at step
        0), ``q_perp`` (the collective overlap of the neurons' parts orthogonal to the teacher, see
        :meth:`SGDTrainer.collective_overlap`); ``params``: the settings, the model and ``wall_time`` (seconds).

    Raises
    ------
    TrainingInterrupted
        On Ctrl-C, with the records so far in ``.result``.
    RuntimeError
        When the run diverges (the message names the step and the order parameters).
    """
    steps = lookup("steps").check(steps, "steps")
    schedule = _schedule(dt_schedule, model, steps, dt, a0, m0)
    if schedule is None:
        _warn_if_unstable(model, a0, m0, dt, steps)
    else:
        steps = schedule.steps
    rec = record_steps(steps, record, spacing)
    checkpoint_every = V.real(checkpoint_every, "checkpoint_every", lo=0.0)
    progress = V.flag(progress, "progress")
    ck_path = _check_path(checkpoint, "checkpoint") if checkpoint is not None else None
    neurons = V.flag(record_neurons, "record_neurons")
    if neurons and (checkpoint is not None or resume is not None):
        raise ValueError("record_neurons: not available with checkpoint or resume (the neurons' records are not "
                         "checkpointed)")
    trainer = SGDTrainer(model, d=d, n=n, batch=batch, dt=dt, a0=a0, m0=m0, seed=seed, dtype=dtype, threads=threads,
                         sampler=sampler, a_dist=a_dist, a_sigma=a_sigma, a_positive=a_positive,
                         m_dist=m_dist)
    signature = trainer.run_signature(steps, rec)
    if schedule is not None:  # a resumed run must take the same steps
        import hashlib

        signature["dt_schedule"] = hashlib.sha256(schedule.dts.tobytes()).hexdigest()
    cols: dict[str, list[float]] = {k: [] for k in RECORD_COLUMNS}
    params = {"model": trainer.model.to_dict(), "d": trainer.d, "n": trainer.n, "batch": trainer.batch,
              "dt": trainer.dt, "steps": steps, "a0": trainer.a0, "m0": trainer.m0, "seed": trainer.seed,
              "dtype": trainer.dtype, "threads": trainer.threads, "sampler": trainer.sampler,
              "dt_schedule": None if schedule is None else (dt_schedule if isinstance(dt_schedule, str) else "given"),
              "init": trainer.init.to_dict()}
    times = None if schedule is None else schedule.times
    cloud: dict[str, list[np.ndarray]] = {"m": [], "a": []}
    if resume is not None:
        state = load_checkpoint(resume)
        check_signature(state["signature"], signature, os.fspath(resume))
        trainer.load_state(state, int(state["step"]))
        restored_loss = float(state["batch_loss"])
        for k in RECORD_COLUMNS:
            cols[k] = state[f"rec_{k}"].tolist()
    else:
        restored_loss = float("nan")
    resumed_at = trainer.step_count

    def record_now(batch_loss: float) -> None:
        op = trainer.order_parameters()
        ps = trainer._raw.population_stats(*trainer._loss_args)  # the loss and q_perp from one Q = W W^T
        row = {"step": trainer.step_count, "m": op.m_mean, "m_std": op.m_std, "a": op.a_mean, "a_std": op.a_std,
               "batch_loss": batch_loss, "loss": ps.loss, "q_perp": ps.q_perp}
        if neurons:
            cloud["m"].append(trainer.alignments())
            cloud["a"].append(np.array(trainer.a, dtype=float))
        for k in RECORD_COLUMNS:  # appended together: a Ctrl-C cannot land between them
            cols[k].append(row[k])

    def result(wall: float, status: Status = Status.SUCCESS, message: str = "") -> Trajectory:
        step = np.asarray(cols["step"], dtype=np.int64)
        arr = {k: np.asarray(cols[k], dtype=float) for k in RECORD_COLUMNS if k != "step"}
        t = step * trainer.dt if times is None else times[step]
        kept = {k: np.stack(v[: step.size], axis=1) for k, v in cloud.items()} if neurons and step.size else {}
        return Trajectory(level="sgd", t=t, m=arr["m"], a=arr["a"], loss=arr["loss"], status=status,
                          message=message, series={"step": step, "m_std": arr["m_std"], "a_std": arr["a_std"],
                                                   "batch_loss": arr["batch_loss"], "q_perp": arr["q_perp"]},
                          params={**params, "wall_time": wall}, particles=kept,
                          particle_weights=np.full(trainer.n, 1.0 / trainer.n) if kept else None)

    def last_batch_loss() -> float:
        # the batch loss of the step just taken (a resumed trainer has taken none: the checkpoint's)
        return trainer.batch_loss if trainer.step_count > resumed_at else restored_loss

    def save() -> None:
        if ck_path is not None:
            save_checkpoint(ck_path, {**trainer.state(), "batch_loss": np.float64(last_batch_loss())},
                            trainer.step_count, signature, cols)

    bar = None
    if progress and sys.stderr.isatty():
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, unit="step", desc="SGD", leave=False, initial=trainer.step_count)
    start = time.perf_counter()
    last_save = time.monotonic()
    try:
        if not cols["step"]:
            record_now(float("nan"))
        last = int(cols["step"][-1])
        for target in rec[rec > last]:
            todo = int(target) - trainer.step_count
            while todo > 0:  # chunks so that the bar moves
                chunk = min(todo, max(1, steps // 200)) if bar is not None else todo
                if schedule is None:
                    trainer.run(chunk)
                else:
                    k0 = trainer.step_count
                    trainer.run_schedule(schedule.dts[k0:k0 + chunk])
                todo -= chunk
                if bar is not None:
                    bar.update(chunk)
                    op = trainer.order_parameters()
                    bar.set_postfix(m=f"{op.m_mean:.4f}", a=f"{op.a_mean:.4f}")
            record_now(last_batch_loss())
            if ck_path is not None and time.monotonic() - last_save >= checkpoint_every:
                save()
                last_save = time.monotonic()
        save()
    except KeyboardInterrupt:
        _trim(cols)
        save()  # the state is consistent between steps: keep it on disk
        raise TrainingInterrupted(result(time.perf_counter() - start, Status.INTERRUPTED,
                                         f"interrupted at step {trainer.step_count}")) from None
    finally:
        if bar is not None:
            bar.close()
    return result(time.perf_counter() - start)


def _schedule(dt_schedule: Any, model: Any, steps: int, dt: Any, a0: Any, m0: Any) -> Any:
    """The StepSchedule of a run (None for the constant step), cut at the horizon ``steps * dt``."""
    if dt_schedule is None:
        return None
    from .stability import StepSchedule, stable_schedule

    dt = lookup("dt").check(dt, "dt")
    t_max = steps * dt
    if isinstance(dt_schedule, str):
        V.choice(dt_schedule, "dt_schedule", ("stable",))
        dt_schedule = stable_schedule(model, t_max, a0=lookup("a0").check(a0, "a0"),
                                      m0=V.real(m0, "m0", lo=-1.0, hi=1.0, lo_open=True, hi_open=True), dt=dt)
    if not isinstance(dt_schedule, StepSchedule):
        raise TypeError(f"dt_schedule: must be 'stable' or a fastslow.stability.StepSchedule, got "
                        f"{V.show(dt_schedule)}")
    k = dt_schedule.steps_to(t_max)
    if k > 2**32 - 1:
        raise ValueError(f"dt_schedule: {k} steps to t = {t_max:g}, more than a run takes (2**32 - 1)")
    return dt_schedule if k == dt_schedule.steps else StepSchedule(dt_schedule.dts[:k])


def _warn_if_unstable(model: Any, a0: Any, m0: Any, dt: Any, steps: int) -> None:
    """Warn before a run whose constant dt crosses the stable bound of the limit ODE within its horizon."""
    import warnings

    from .stability import stability

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            st = stability(as_model(model), a0=a0, m0=m0, dt=dt, t_max=steps * float(dt), points=200)
    except (TypeError, ValueError, ArithmeticError):  # the run's own checks report bad input
        return
    if not st.stable:
        when = "is unstable from t = 0" if st.t_unstable == 0 else f"stops being stable at t = {st.t_unstable:.6g}"
        warnings.warn(f"train_sgd: dt = {st.dt:g} {when}, within this run's "
                      f"horizon t = {steps * st.dt:g}: there the rate lambda of the {st.mode} mode reaches -2 / dt "
                      f"(an explicit step is stable while |1 + dt lambda| <= 1; see fastslow.stability), and by t = "
                      f"{steps * st.dt:g} the stable bound falls to dt <= {st.dt_bound:.4g}; pass "
                      "dt_schedule='stable' or a smaller dt",
                      RuntimeWarning, stacklevel=3)


def _trim(cols: dict[str, list]) -> None:
    size = min(len(v) for v in cols.values())
    for v in cols.values():
        del v[size:]


def _check_path(path: Any, field: str) -> str:
    """A file path whose folder exists and is writable (checked before any work is done)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{field}: must be a path, got {V.show(path)}")
    p = os.fspath(path)
    if isinstance(p, bytes) or "\x00" in p or not p:
        raise ValueError(f"{field}: not a usable path: {p!r}")
    folder = os.path.dirname(os.path.abspath(p)) or "."
    if not os.path.isdir(folder):
        raise ValueError(f"{field}: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{field}: the folder {folder!r} is not writable")
    if os.path.isdir(p):
        raise ValueError(f"{field}: {p!r} is a directory, not a file")
    return p
