"""The peer of the critical-manifold benchmark: the naive NumPy approach, ``numpy.roots`` (companion
matrix eigenvalues) of ``dL/dm / a`` at every value of ``a``, one polynomial at a time."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.polynomial import polynomial as P


def critical_points(model: Any, a_values: np.ndarray) -> list[np.ndarray]:
    """Real roots in (-1, 1) of ``dL/dm / a = a A'(m) / 2 - B'(m)``, sorted, for each ``a``, where
    ``A(m) = sum_k s_k^2 m^(2k)`` and ``B(m) = sum_k s_k c_k m^k`` are built from the model's series."""
    s, c = np.asarray(model.s, float), np.asarray(model.c, float)
    A = np.zeros(2 * len(s) - 1)
    A[::2] = s * s
    k = min(len(s), len(c))
    B = s[:k] * c[:k]
    A1, B1 = P.polyder(A), P.polyder(B)
    out = []
    for a in a_values:
        h = P.polysub(0.5 * a * A1, B1)
        r = np.roots(np.trim_zeros(h, "b")[::-1])
        r = r[np.abs(r.imag) < 1e-9].real
        out.append(np.sort(r[np.abs(r) < 1]))
    return out
