"""The diffrax peer of the batch benchmark (optional: needs ``jax`` and ``diffrax``).

The same right-hand side as fastslow's in ``(v = artanh m, a)``, with the activation's series in
``w = m^2`` (tanh is odd), Kvaerno5 (an ESDIRK method for stiff problems) with a PID step-size
controller at the same tolerances, ``jax.vmap`` over the trajectories and ``jax.jit``; compilation
is timed apart from the run.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def available() -> str | None:
    """None when jax and diffrax import, else why not."""
    try:
        import diffrax  # noqa: F401
        import jax  # noqa: F401
    except Exception as exc:  # ImportError and friends
        return f"not installed ({type(exc).__name__}: {exc})"
    return None


def batch(s: np.ndarray, lr_w: float, lr_a: float, a0: np.ndarray, c3: np.ndarray, t_eval: np.ndarray,
          rtol: float, atol: float, max_steps: int = 100_000) -> dict[str, Any]:
    """Integrate ``len(a0)`` trajectories (target ``h1 + c3 h3``, tanh student with coefficients ``s``).

    Returns the compile time, the time of one run after compilation, ``m`` and ``a`` at ``t_eval``
    (shape ``(N, len(t_eval))``), whether each trajectory succeeded, and its accepted steps.
    """
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    import diffrax

    s = np.asarray(s, dtype=float)
    if np.any(s[0::2] != 0):
        raise ValueError("the diffrax peer assumes an odd activation (s_k = 0 for even k)")
    # A(m) = sum_k s_k^2 m^(2k) = P(w), w = m^2;  A'(m) = 2 m P'(w)
    P = np.zeros(len(s))
    P[: len(s)] = s * s
    P = P[: np.max(np.nonzero(P)) + 1]
    dP = np.polynomial.polynomial.polyder(P)
    Pr, dPr = jnp.asarray(P[::-1].copy()), jnp.asarray(dP[::-1].copy())
    s1, s3 = float(s[1]), float(s[3])
    c0_const = 0.0

    def rhs(t, y, c3):
        v, a = y[0], y[1]
        m = jnp.tanh(v)
        w = m * m
        A = jnp.polyval(Pr, w)
        A1 = 2.0 * m * jnp.polyval(dPr, w)
        B = s1 * m + s3 * c3 * m ** 3
        B1 = s1 + 3.0 * s3 * c3 * w
        Lm = 0.5 * a * a * A1 - a * B1
        La = a * A - B + c0_const
        return jnp.stack([-lr_w * Lm, -lr_a * La])

    term = diffrax.ODETerm(rhs)
    solver = diffrax.Kvaerno5()
    ctrl = diffrax.PIDController(rtol=rtol, atol=atol)
    ts = jnp.asarray(t_eval)

    def one(a0_i, c3_i):
        y0 = jnp.stack([jnp.asarray(0.0), a0_i])
        sol = diffrax.diffeqsolve(term, solver, t0=0.0, t1=float(t_eval[-1]), dt0=None, y0=y0, args=c3_i,
                                  saveat=diffrax.SaveAt(ts=ts), stepsize_controller=ctrl, max_steps=max_steps,
                                  throw=False)
        return sol.ys, sol.result == diffrax.RESULTS.successful, sol.stats["num_accepted_steps"]

    f = jax.jit(jax.vmap(one))
    a0j, c3j = jnp.asarray(a0, dtype=jnp.float64), jnp.asarray(c3, dtype=jnp.float64)
    start = time.perf_counter()
    compiled = f.lower(a0j, c3j).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    ys, ok, steps = compiled(a0j, c3j)
    ys = np.asarray(jax.block_until_ready(ys))
    run_s = time.perf_counter() - start
    return {"compile": compile_s, "run": run_s, "m": np.tanh(ys[:, :, 0]), "a": ys[:, :, 1],
            "ok": np.asarray(ok), "steps": np.asarray(steps)}
