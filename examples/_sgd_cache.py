"""What the long-horizon and validity-map examples share: SGD runs of the library's trainer,
cached on disk one file per (configuration, seed), so that a second run only reads them back.
Not an example itself.

A cached run is an ``.npz`` with the per-record arrays ``step``, ``t``, ``m_mean``, ``m_std``,
``a_mean``, ``a_std``, ``q_perp`` and ``loss`` (the means and spreads over neurons, the collective
overlap and the exact population loss), named by :func:`key`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import fastslow as fs


def key(target: dict, *, lr_w: float, lr_a: float, a0: float, m0: float, d: int, n: int, batch: int, dt: float,
        steps: int, record: Any) -> str:
    """The file stem of one configuration (without the seed)."""
    tg = "_".join(f"{k}x{v:g}" for k, v in sorted(target.items()))
    rec = record if isinstance(record, int) else f"custom{len(record)}"
    return f"tanh_{tg}_lw{lr_w:g}_la{lr_a:g}_a0{a0:g}_m0{m0:g}_d{d}_n{n}_B{batch}_dt{dt:g}_K{steps}_r{rec}"


def sgd_run(target: dict, *, lr_w: float, lr_a: float, a0: float, m0: float, d: int, n: int, batch: int, dt: float,
            steps: int, record: Any, seed: int, cache: Path | None, dtype: str = "float64",
            threads: int | None = 1) -> fs.Trajectory:
    """One SGD run of a tanh student (``fastslow.train_sgd``, linear records if ``record`` is a
    number), read from ``cache`` if it is there, else trained and written there. One thread by
    default: on a machine shared with other work, OpenMP threads that wait for a busy core cost far
    more than they bring at these sizes."""
    f = None
    if cache is not None:
        f = Path(cache) / (key(target, lr_w=lr_w, lr_a=lr_a, a0=a0, m0=m0, d=d, n=n, batch=batch, dt=dt, steps=steps,
                               record=record) + f"_s{seed}.npz")
    if f is not None and f.exists():
        z = np.load(f)
        return fs.Trajectory(level="sgd", t=z["t"], m=z["m_mean"], a=z["a_mean"], loss=z["loss"],
                             series={"step": z["step"], "m_std": z["m_std"], "a_std": z["a_std"], "q_perp": z["q_perp"]},
                             params={"d": d, "n": n, "batch": batch, "dt": dt, "steps": steps, "seed": seed,
                                     "cached": str(f)})
    model = fs.Model("tanh", target, lr_w=lr_w, lr_a=lr_a)
    rec = record if isinstance(record, int) else np.asarray(record, dtype=np.int64)
    r = fs.train_sgd(model, d=d, n=n, batch=batch, dt=dt, steps=steps, a0=a0, m0=m0, seed=seed, dtype=dtype,
                     record=rec, spacing="linear", threads=threads)
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        np.savez(f, step=r.step, t=r.t, m_mean=r.m, m_std=r.m_std, a_mean=r.a, a_std=r.a_std, q_perp=r.q_perp,
                 loss=r.loss)
    # keep only what a cached run has, so both kinds of run stack alike
    return fs.Trajectory(level="sgd", t=r.t, m=r.m, a=r.a, loss=r.loss,
                         series={"step": r.step, "m_std": r.m_std, "a_std": r.a_std, "q_perp": r.q_perp},
                         params={"d": d, "n": n, "batch": batch, "dt": dt, "steps": steps, "seed": seed})


def sgd_runs(seeds: list[int], **kw: Any) -> fs.Trajectory:
    """:func:`sgd_run` for several seeds, stacked along ``seed``."""
    runs = [sgd_run(seed=s, **kw) for s in seeds]
    return fs.Trajectory.stack(runs, "seed", np.asarray(seeds, dtype=np.int64))
