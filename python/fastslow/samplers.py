"""The two samplers of an SGD step and their cost models, written once: what ``sampler="auto"``
chooses by, and what the benchmarks compare their timings with.

Both samplers take the same step of the theory page section 1 on a fresh batch of ``B`` standard normal
inputs, exactly in distribution; they differ in what they draw (``cpp/sgd/direct.hpp``,
``cpp/sgd/projected.hpp``):

* ``"direct"`` draws the batch ``X`` (``B x d``) and computes ``P = X [W; theta]^T`` and
  ``G = M^T X``: ``4 B d n`` flops and ``B d`` normals a step.
* ``"projected"`` draws only what the step sees of ``X``: ``Z = X Q`` (``B x (n + 1)``, ``Q`` an
  orthonormal basis of the span of ``[W; theta]``) and the remainder ``X (I - Q Q^T)`` through
  ``M^T X (I - Q Q^T) ~ L Xi (I - Q Q^T)`` (``L L^T = M^T M``, ``Xi`` ``n x d``): about
  ``4 B n^2 + 9 n^2 d`` flops and ``B (n + 1) + n d`` normals; ``d / n`` times cheaper where
  ``B >> n``. For ``d <= n + 1`` the basis is the identity and the step is the direct one on other
  random streams (the same cost).

A projected run is another random realisation than a direct run of the same seed; the law is the
same (``tests/test_projected.py``).

The cost of a step is counted in flop-equivalents: its BLAS flops, plus ``NORMAL_FLOPS`` per
standard normal and ``ELEMENT_FLOPS`` per entry of the ``B x n`` activation pass (what those cost in
time, expressed in flops at the machine's sgemm peak). ``auto`` takes the cheaper sampler. The
constants come from measurements (``bench/bench_sgd.py`` refits them; ``bench/RESULTS.md``); note
that ``auto``'s choice, and so the random realisation of a run, can change when they are
re-measured: give the sampler explicitly to keep a realisation across versions.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SAMPLERS", "NORMAL_FLOPS", "ELEMENT_FLOPS", "StepCost", "step_cost", "choose_sampler"]

#: The samplers, and ``"auto"`` (the cheaper one by :func:`step_cost`).
SAMPLERS = ("direct", "projected", "auto")

#: A standard normal in flops at the sgemm peak: bench/RESULTS.md, 2026-11-30, (B, d, n) = (4096,
#: 1024, 1024): the 4.19e6 normals of a direct step took 7.61 ms on 2 threads at a 151 GFLOP/s
#: peak, 7.61e-3 * 151e9 / 4.19e6 = 274 (the counter-based Ziggurat, float32).
NORMAL_FLOPS = 270.0
#: An entry of the activation pass (sigma, sigma', the residual, M and the grad-a sums) in flops at
#: the sgemm peak: the same run's step_with_batch minus its two GEMMs, 3.92 ms for 4.19e6 entries
#: (an upper bound: it includes the update and the synchronisation).
ELEMENT_FLOPS = 140.0


@dataclass(frozen=True)
class StepCost:
    """The cost of one step of a sampler at ``(B, d, n)``.

    Attributes
    ----------
    sampler : str
    flops : float
        BLAS flops (multiply-adds count two), the Grams in double counted twice.
    normals : float
        Standard normals drawn.
    elements : float
        Entries of the activation pass (``B n``).
    equivalent : float
        ``flops + NORMAL_FLOPS normals + ELEMENT_FLOPS elements``: what ``auto`` compares.
    """

    sampler: str
    flops: float
    normals: float
    elements: float

    @property
    def equivalent(self) -> float:
        return self.flops + NORMAL_FLOPS * self.normals + ELEMENT_FLOPS * self.elements


def step_cost(sampler: str, batch: float, d: float, n: float) -> StepCost:
    """The cost model of one step of ``sampler`` (``"direct"`` or ``"projected"``), the same for
    float32 and float64 (their ratio is what matters).

    Direct: the GEMMs ``P = X [W; theta]^T`` (``2 B d (n + 1)``) and ``G = M^T X`` (``2 B d n``).
    Projected (``k = n + 1 < d``): ``P = Z R`` triangular (``B k^2``); ``[M^T M | M^T Z]`` (``B n^2
    + 2 B n k``); the basis of span ``[W; theta]`` by Cholesky QR, counted with its second pass
    (two Grams in double, each ``d k^2`` counted twice, and two triangular solves, ``d k^2``
    each: ``6 d k^2``); ``Y = L Xi`` (``n^2 d``), ``Y Q`` and ``C Q^T`` (``4 n k d``); the two small
    Cholesky factorisations in double (``2 k^3 / 3`` flops, counted twice). For ``d <= n + 1`` the
    projected step is the direct one.
    """
    B, d, n = float(batch), float(d), float(n)  # floats from here on: no integer overflow in the counts
    k = n + 1.0
    direct = StepCost("direct", 2 * B * d * k + 2 * B * d * n, B * d, B * n)
    if sampler == "direct" or d <= k:
        return direct if sampler == "direct" else StepCost("projected", direct.flops, direct.normals, direct.elements)
    if sampler != "projected":
        raise ValueError(f"sampler: must be 'direct' or 'projected', got {sampler!r}")
    flops = B * k * k + B * n * n + 2 * B * n * k + 6 * d * k * k + n * n * d + 4 * n * k * d + 4 * k**3 / 3
    return StepCost("projected", flops, B * k + n * d, B * n)


def choose_sampler(sampler: str, batch: int, d: int, n: int) -> str:
    """``sampler`` itself, or for ``"auto"`` the one with the smaller :func:`step_cost` (direct on
    a tie, and wherever ``d <= n + 1``)."""
    if sampler != "auto":
        return sampler
    proj = step_cost("projected", batch, d, n).equivalent
    return "projected" if d > n + 1 and proj < step_cost("direct", batch, d, n).equivalent else "direct"
