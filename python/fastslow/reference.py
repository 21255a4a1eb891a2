"""Pure NumPy/SciPy reference implementations of every fastslow kernel.

This module exists to disagree with the C++ core: it is the tests' oracle and the "pure Python"
side of every benchmark. It shares no code with the core; formulas are written out directly
(sums over Hermite orders instead of the core's polynomial factorisation, SciPy's Gauss-Hermite
rule instead of the core's, closed forms from factorials instead of recurrences).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special
from scipy.integrate import solve_ivp

#: A function of an array of pre-activations, elementwise (an activation, a target, a derivative).
_Fn = Callable[[np.ndarray], np.ndarray]

__all__ = [
    "hermite_values", "quadrature_coefficients", "relu_coefficients", "erf_coefficients",
    "loss", "grad", "hessian", "LimitRHS", "solve_ode", "solve_ode_m_direct",
    "named_function", "hermite_function", "sgd_step", "sgd_step_projected", "batch_loss", "population_loss_mc", "collective_overlap",
    "EffectiveReference", "limit_map",
    "particle_rhs", "particle_jacobian", "solve_particles",
]


# ---------------------------------------------------------------------------------------------
# Hermite series
# ---------------------------------------------------------------------------------------------
def hermite_values(x: np.ndarray, K: int) -> np.ndarray:
    """``h_k(x) = He_k(x) / sqrt(k!)`` for ``k = 0..K``: array of shape ``(K + 1,) + x.shape``."""
    x = np.asarray(x, dtype=float)
    out = np.empty((K + 1,) + x.shape)
    for k in range(K + 1):
        # He_k via SciPy's physicists' polynomials: He_k(x) = 2^(-k/2) H_k(x / sqrt 2)
        out[k] = special.eval_hermitenorm(k, x) / math.sqrt(math.factorial(k))
    return out


def quadrature_coefficients(func: Callable[[np.ndarray], np.ndarray], K: int, n_nodes: int = 400) -> np.ndarray:
    """``E[f(z) h_k(z)]`` by SciPy's Gauss-Hermite rule (``roots_hermitenorm``)."""
    x, w = special.roots_hermitenorm(n_nodes)
    w = w / math.sqrt(2 * math.pi)
    vals = np.asarray(func(x), dtype=float)
    # Stable normalised recurrence (eval_hermitenorm overflows for large k and |x|).
    out = np.zeros(K + 1)
    hm1 = np.ones_like(x)
    h = x.copy()
    out[0] = np.sum(w * vals)
    if K >= 1:
        out[1] = np.sum(w * vals * h)
    for k in range(1, K):
        hm1, h = h, (x * h - math.sqrt(k) * hm1) / math.sqrt(k + 1)
        out[k + 1] = np.sum(w * vals * h)
    return out


def relu_coefficients(K: int) -> np.ndarray:
    """ReLU: ``s_0 = 1/sqrt(2 pi)``, ``s_1 = 1/2``, ``s_k = He_{k-2}(0) / sqrt(2 pi k!)``."""
    s = np.zeros(K + 1)
    s[0] = 1 / math.sqrt(2 * math.pi)
    if K >= 1:
        s[1] = 0.5
    for k in range(2, K + 1, 2):
        j = k - 2  # He_j(0) = (-1)^(j/2) (j-1)!! = (-1)^(j/2) j! / (2^(j/2) (j/2)!)
        log_abs = math.lgamma(j + 1) - (j / 2) * math.log(2) - math.lgamma(j / 2 + 1)
        s[k] = (-1) ** (j // 2) * math.exp(log_abs - 0.5 * math.lgamma(k + 1)) / math.sqrt(2 * math.pi)
    return s


def erf_coefficients(K: int) -> np.ndarray:
    """``erf(z / sqrt 2)``: ``s_{2n+1} = (2/sqrt pi) (-1)^n (1/2)^(2n+1) sqrt((2n+1)!) / (n! (2n+1))``."""
    s = np.zeros(K + 1)
    for k in range(1, K + 1, 2):
        n = (k - 1) // 2
        log_abs = -k * math.log(2) + 0.5 * math.lgamma(k + 1) - math.lgamma(n + 1) - math.log(k)
        s[k] = 2 / math.sqrt(math.pi) * (-1) ** n * math.exp(log_abs)
    return s


# ---------------------------------------------------------------------------------------------
# The population loss, written as sums over orders
# ---------------------------------------------------------------------------------------------
def _pad(s: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    K = max(len(s), len(c))
    sp = np.zeros(K)
    cp = np.zeros(K)
    sp[: len(s)] = s
    cp[: len(c)] = c
    return sp, cp, np.arange(K)


def _terms(s: npt.ArrayLike, c: npt.ArrayLike, m: npt.ArrayLike,
           a: npt.ArrayLike) -> tuple[np.ndarray, ...]:
    """Per-order terms: ``P_k = s_k m^k`` and its first two m-derivatives, residuals ``a P_k - c_k``."""
    sp, cp, k = _pad(np.asarray(s, float), np.asarray(c, float))
    m = np.asarray(m, float)[..., None]
    a = np.asarray(a, float)[..., None]
    P = sp * m**k
    dP = k * sp * m ** np.maximum(k - 1, 0)
    d2P = k * (k - 1) * sp * m ** np.maximum(k - 2, 0)
    return a, P, dP, d2P, a * P - cp


def loss(s: npt.ArrayLike, c: npt.ArrayLike, m: npt.ArrayLike, a: npt.ArrayLike,
         extra: float = 0.0) -> Any:
    """``L = 1/2 sum_k (a s_k m^k - c_k)^2 + extra``."""
    r = _terms(s, c, m, a)[-1]
    return 0.5 * np.sum(r**2, axis=-1) + extra


def grad(s: npt.ArrayLike, c: npt.ArrayLike, m: npt.ArrayLike, a: npt.ArrayLike) -> np.ndarray:
    """``(dL/dm, dL/da)`` stacked on the last axis."""
    a, P, dP, _, r = _terms(s, c, m, a)
    return np.stack([np.sum(a * dP * r, -1), np.sum(P * r, -1)], -1)


def hessian(s: npt.ArrayLike, c: npt.ArrayLike, m: npt.ArrayLike, a: npt.ArrayLike) -> np.ndarray:
    """``[[L_mm, L_ma], [L_ma, L_aa]]`` on the last two axes."""
    a, P, dP, d2P, r = _terms(s, c, m, a)
    Lmm = np.sum(a * d2P * r + a * a * dP * dP, -1)
    Lma = np.sum(dP * r + a * dP * P, -1)
    Laa = np.sum(P * P, -1)
    return np.stack([np.stack([Lmm, Lma], -1), np.stack([Lma, Laa], -1)], -2)


# ---------------------------------------------------------------------------------------------
# The limit ODE in v = artanh m
# ---------------------------------------------------------------------------------------------
class LimitRHS:
    """Right-hand side and Jacobian of the limit ODE in ``y = (v, a)``, NumPy only.

    The fastest plain-NumPy form we found, and the one the benchmarks time SciPy with: with
    ``L = a^2/2 sum_k s_k^2 m^(2k) - a sum_k s_k c_k m^k + const``, every quantity is a dot
    product of a fixed coefficient matrix with the vector of powers ``m^e``, so one call costs one
    ``np.power`` and one small matrix-vector product.
    """

    def __init__(self, s: npt.ArrayLike, c: npt.ArrayLike, lr_w: float, lr_a: float) -> None:
        sp, cp, k = _pad(np.asarray(s, float), np.asarray(c, float))
        K = len(sp) - 1
        e = np.arange(2 * K + 1, dtype=float)
        A = np.zeros(2 * K + 1)  # sum_k s_k^2 m^(2k)
        A[0::2] = sp**2
        B = np.zeros(2 * K + 1)  # sum_k s_k c_k m^k
        B[: K + 1] = sp * cp
        dA = np.zeros_like(A)  # coefficients of m^e in dA/dm, and so on
        dB = np.zeros_like(B)
        d2A = np.zeros_like(A)
        d2B = np.zeros_like(B)
        dA[:-1] = A[1:] * e[1:]
        dB[:-1] = B[1:] * e[1:]
        d2A[:-2] = A[2:] * e[2:] * e[1:-1]
        d2B[:-2] = B[2:] * e[2:] * e[1:-1]
        keep = np.flatnonzero(np.any(np.stack([A, B, dA, dB, d2A, d2B]) != 0, axis=0))
        self.e = e[keep]
        self.f_rows = np.stack([A, B, dA, dB])[:, keep]
        self.j_rows = np.stack([A, B, dA, dB, d2A, d2B])[:, keep]
        self.lr_w, self.lr_a = float(lr_w), float(lr_a)

    def __call__(self, t: float, y: np.ndarray) -> np.ndarray:
        v, a = y
        A, B, dA, dB = self.f_rows @ (math.tanh(v) ** self.e)
        return np.array([-self.lr_w * (0.5 * a * a * dA - a * dB), -self.lr_a * (a * A - B)])

    def jac(self, t: float, y: np.ndarray) -> np.ndarray:
        v, a = y
        m = math.tanh(v)
        A, B, dA, dB, d2A, d2B = self.j_rows @ (m**self.e)
        ex = math.exp(-2.0 * abs(v))
        sech2 = 4.0 * ex / (1.0 + ex) ** 2  # 1 - tanh(v)^2 without overflow or cancellation
        Lmm = 0.5 * a * a * d2A - a * d2B
        Lma = a * dA - dB
        return np.array([[-self.lr_w * Lmm * sech2, -self.lr_w * Lma],
                         [-self.lr_a * Lma * sech2, -self.lr_a * A]])


def solve_ode(s: npt.ArrayLike, c: npt.ArrayLike, lr_w: float, lr_a: float, a0: float, m0: float,
              t_eval: npt.ArrayLike, *, rtol: float = 1e-11, atol: float = 1e-13, method: str = "Radau",
              use_jac: bool = True) -> tuple[np.ndarray, np.ndarray, Any]:
    """Integrate in ``v = artanh m`` with SciPy's ``solve_ivp``; returns ``(m, a, result)``."""
    rhs = LimitRHS(s, c, lr_w, lr_a)
    t_eval = np.asarray(t_eval, float)
    kw = {"jac": rhs.jac} if (use_jac and method in ("Radau", "BDF", "LSODA")) else {}
    res = solve_ivp(rhs, (0.0, float(t_eval[-1])), [math.atanh(m0), float(a0)], method=method,
                    t_eval=t_eval, rtol=rtol, atol=atol, **kw)
    if res.status != 0:
        raise RuntimeError(f"reference solve_ivp failed: {res.message}")
    return np.tanh(res.y[0]), res.y[1], res


def solve_ode_m_direct(s: npt.ArrayLike, c: npt.ArrayLike, lr_w: float, lr_a: float, a0: float, m0: float,
                       t_eval: npt.ArrayLike, *, rtol: float = 1e-8, atol: float = 1e-10,
                       method: str = "Radau") -> Any:
    """The naive formulation: integrate ``m`` itself, ``dm/dt = -lr_w (1 - m^2) dL/dm``.

    Kept to show why fastslow integrates in ``v``: steps can overshoot ``|m| = 1``.
    """
    sp, cp, _ = _pad(np.asarray(s, float), np.asarray(c, float))

    def f(t: float, y: np.ndarray) -> list[Any]:
        m, a = y
        g = grad(sp, cp, m, a)
        return [-lr_w * (1 - m * m) * g[0], -lr_a * g[1]]

    t_eval = np.asarray(t_eval, float)
    return solve_ivp(f, (0.0, float(t_eval[-1])), [float(m0), float(a0)], method=method, t_eval=t_eval,
                     rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# The finite network and one SGD step
# ---------------------------------------------------------------------------------------------
def named_function(name: str) -> tuple[_Fn, _Fn]:
    """``(sigma, sigma')`` of a named activation, from NumPy/SciPy (not from the core)."""
    from scipy.special import erf, erfc, expit

    rs2 = 1 / math.sqrt(2)
    table = {
        "tanh": (np.tanh, lambda u: 1 - np.tanh(u) ** 2),
        "erf": (lambda u: erf(u * rs2), lambda u: math.sqrt(2 / math.pi) * np.exp(-u * u / 2)),
        "relu": (lambda u: np.maximum(u, 0), lambda u: (u > 0).astype(float)),
        "gelu": (lambda u: u * 0.5 * erfc(-u * rs2),
                 lambda u: 0.5 * erfc(-u * rs2) + u * np.exp(-u * u / 2) / math.sqrt(2 * math.pi)),
        "sigmoid": (expit, lambda u: expit(u) * (1 - expit(u))),
        "quadratic": (lambda u: u * u, lambda u: 2 * u),
        "linear": (lambda u: u, lambda u: np.ones_like(u)),
    }
    return table[name]


def hermite_function(coef: npt.ArrayLike) -> tuple[_Fn, _Fn]:
    """``(f, f')`` of the series ``sum_k coef_k h_k``."""
    coef = np.asarray(coef, float)
    K = coef.size - 1

    def f(u: np.ndarray) -> np.ndarray:
        return np.tensordot(coef, hermite_values(u, K), axes=(0, 0))

    def df(u: np.ndarray) -> np.ndarray:
        if K == 0:
            return np.zeros_like(np.asarray(u, float))
        h = hermite_values(u, K - 1)
        return np.tensordot(coef[1:] * np.sqrt(np.arange(1, K + 1)), h, axes=(0, 0))

    return f, df


def sgd_step(W: npt.ArrayLike, a: npt.ArrayLike, theta: np.ndarray, X: npt.ArrayLike, xi: npt.ArrayLike,
             act: tuple[_Fn, _Fn], target: tuple[_Fn, _Fn], lr_w: float, lr_a: float, dt: float,
             noise: float) -> tuple[np.ndarray, np.ndarray, Any]:
    """One large-batch SGD step of theory page section 1 on a given batch, in float64.

    ``act`` and ``target`` are ``(f, f')`` pairs. Returns ``(W_new, a_new, batch_loss)``.
    """
    W = np.asarray(W, float)
    a = np.asarray(a, float)
    X = np.asarray(X, float)
    n, B = W.shape[0], X.shape[0]
    P = X @ W.T
    S, D = act[0](P), act[1](P)
    f = S @ a / n
    y = target[0](X @ theta) + math.sqrt(noise) * np.asarray(xi, float)
    r = f - y
    grad_a = S.T @ r / B
    G = (D * (r[:, None] * a[None, :])).T @ X / B
    W_new = W - lr_w * dt * G
    W_new /= np.linalg.norm(W_new, axis=1, keepdims=True)
    return W_new, a - lr_a * dt * grad_a, 0.5 * np.mean(r**2)


def sgd_step_projected(W: np.ndarray, a: np.ndarray, theta: np.ndarray, Z: np.ndarray, Xi: npt.ArrayLike,
                       xi: npt.ArrayLike, act: tuple[_Fn, _Fn], target: tuple[_Fn, _Fn], lr_w: float, lr_a: float,
                       dt: float, noise: float) -> tuple[np.ndarray, np.ndarray, Any, np.ndarray, np.ndarray]:
    """One step of the projected sampler on given draws, in float64, written from its definition:
    with ``V = [W; theta]^T = Q R`` (NumPy's Householder QR, signs so that ``diag R >= 0``),
    ``P = Z R``, ``M`` from ``P`` as in :func:`sgd_step`, ``L`` the Cholesky factor of ``M^T M``,
    ``Y = L Xi`` and ``G = Y + (M^T Z - Y Q) Q^T`` (``Z``: ``B x (n + 1)``, ``Xi``: ``n x d``).
    For ``d <= n + 1`` the basis is the identity and ``Z`` (``B x d``) is the batch itself.

    Returns ``(W_new, a_new, batch_loss, G, grad_a)``.
    """
    W = np.asarray(W, float)
    a = np.asarray(a, float)
    theta = np.asarray(theta, float)
    Z = np.asarray(Z, float)
    n, d, B = W.shape[0], W.shape[1], Z.shape[0]
    if d <= n + 1:
        Q, R = np.eye(d), np.vstack([W, theta]).T
    else:
        Q, R = np.linalg.qr(np.vstack([W, theta]).T)
        sign = np.where(np.diag(R) < 0, -1.0, 1.0)
        Q, R = Q * sign, R * sign[:, None]
    P = Z @ R
    S, D = act[0](P[:, :n]), act[1](P[:, :n])
    r = S @ a / n - (target[0](P[:, n]) + math.sqrt(noise) * np.asarray(xi, float))
    M = D * (r[:, None] * a[None, :]) / B
    grad_a = S.T @ r / B
    if d <= n + 1:
        G = M.T @ Z
    else:
        Y = np.linalg.cholesky(M.T @ M) @ np.asarray(Xi, float)
        G = Y + (M.T @ Z - Y @ Q) @ Q.T
    W_new = W - lr_w * dt * G
    W_new /= np.linalg.norm(W_new, axis=1, keepdims=True)
    return W_new, a - lr_a * dt * grad_a, 0.5 * np.mean(r**2), G, grad_a


def batch_loss(W: np.ndarray, a: np.ndarray, theta: np.ndarray, X: np.ndarray, xi: npt.ArrayLike,
               act: tuple[_Fn, _Fn], target: tuple[_Fn, _Fn], noise: float) -> Any:
    """``mean_b (f(x_b) - y_b)^2 / 2`` with ``f = (1/n) sum_i a_i sigma(w_i . x)`` (no normalisation)."""
    n = W.shape[0]
    f = act[0](X @ W.T) @ a / n
    y = target[0](X @ theta) + math.sqrt(noise) * np.asarray(xi, float)
    return 0.5 * np.mean((f - y) ** 2)


def population_loss_mc(W: np.ndarray, a: np.ndarray, theta: np.ndarray, act: tuple[_Fn, _Fn],
                       target: tuple[_Fn, _Fn], noise: float, samples: int = 200_000, seed: int = 0) -> tuple[float, float]:
    """Monte-Carlo estimate of the population loss and its standard error."""
    rng = np.random.default_rng(seed)
    d = W.shape[1]
    total, total2, done = 0.0, 0.0, 0
    while done < samples:
        m = min(20_000, samples - done)
        X = rng.standard_normal((m, d))
        f = act[0](X @ W.T) @ a / W.shape[0]
        v = 0.5 * (f - target[0](X @ theta)) ** 2
        total += v.sum()
        total2 += (v**2).sum()
        done += m
    mean = total / samples
    se = math.sqrt(max(total2 / samples - mean**2, 0.0) / samples)
    return mean + 0.5 * noise, se


# ---------------------------------------------------------------------------------------------
# The collective overlap of a finite network
# ---------------------------------------------------------------------------------------------
def collective_overlap(W: np.ndarray, theta: np.ndarray) -> float:
    """``q_perp = mean over i != j of u_i . u_j``, ``u_i = (w_i - m_i theta) / |w_i - m_i theta|``,
    written out directly (the core takes it from ``Q = W W^T``)."""
    W = np.asarray(W, dtype=float)
    theta = np.asarray(theta, dtype=float)
    m = W @ theta
    U = W - np.outer(m, theta)
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    G = U @ U.T
    n = W.shape[0]
    return float((G.sum() - np.trace(G)) / (n * (n - 1)))


# ---------------------------------------------------------------------------------------------
# The effective map of the finite network (issue 17; fastslow.effective and cpp/effective)
# ---------------------------------------------------------------------------------------------
class EffectiveReference:
    """The effective map written out in NumPy: the series of the model's Hermite coefficients,
    the noise expectations by tensor Gauss-Hermite quadrature (NumPy's ``hermegauss``), the step.

    ``s, c``: Hermite coefficients; ``s_tail, c_tail``: their neglected squared tails;
    ``act``: ``(sigma, sigma')`` as functions (:func:`named_function`, :func:`hermite_function`).
    The formulas are those of the theory page (docs/theory/finite_size.md), section by section.
    """

    def __init__(self, s: npt.ArrayLike, c: npt.ArrayLike, *, s_tail: float, c_tail: float, act: tuple[_Fn, _Fn],
                 lr_w: float, lr_a: float, noise: float = 0.0,
                 nodes: int = 24) -> None:
        s, c = np.asarray(s, float), np.asarray(c, float)
        L = max(s.size, c.size)
        self.s, self.c = np.pad(s, (0, L - s.size)), np.pad(c, (0, L - c.size))
        self.sigma, self.dsigma = act
        self.lr_w, self.lr_a, self.noise = float(lr_w), float(lr_a), float(noise)
        self.E_sig2 = float(np.sum(self.s**2) + s_tail)
        self.E_g2 = float(np.sum(self.c**2) + c_tail)
        self.extra = self.noise + float(c_tail)
        x, w = np.polynomial.hermite_e.hermegauss(nodes)
        self.x, self.w = x, w / math.sqrt(2 * math.pi)

    # the series, as sums over Hermite orders ------------------------------------------------
    @staticmethod
    def _sum(coef: np.ndarray, x: float) -> float:
        """``sum_k coef_k x^k``, term by term."""
        return float(np.sum(coef * np.power(float(x), np.arange(coef.size))))

    def series(self, x: float) -> tuple[float, ...]:
        """``(K, K1, K2, C, C1, T)`` at ``x``."""
        s, c = self.s, self.c
        k = np.arange(s.size)
        sq = np.sqrt((k[:-2] + 1.0) * (k[:-2] + 2.0))
        return (self._sum(s**2, x), self._sum(k[1:] * s[1:] ** 2, x), self._sum(sq * s[:-2] * s[2:], x),
                self._sum(s * c, x), self._sum(k[1:] * s[1:] * c[1:], x), self._sum(sq * c[:-2] * s[2:], x))

    def K(self, Q: float) -> float:
        return self.series(Q)[0]

    def noise_terms(self, m: float, a: float, Q: float, n: float) -> tuple[float, float]:
        """``(E_s, E_c) = (E[r^2 sigma'_i^2], E[r^2 sigma'_i sigma'_j])`` in the state (m, a, Q)."""
        x, w = self.x, self.w
        inv = 0.0 if math.isinf(n) else 1.0 / n
        q = (Q - m * m) / (1 - m * m)
        qp = max(q, 0.0)
        rho2 = m * m + (1 - m * m) * qp
        rho = math.sqrt(rho2)
        Vn = a * a * (inv * (self.E_sig2 - self.K(Q)) + (1 - inv) * (self.K(Q) - self.K(rho2)))
        # (z, omega) jointly Gaussian, corr(z, omega) = m / rho: z = c omega + sqrt(1 - c^2) xi
        c = m / rho if rho > 0 else 0.0
        lam = rho * x[:, None] + math.sqrt(1 - rho2) * x[None, :]         # (omega, eta)
        F, dsg = self.sigma(lam) @ w, self.dsigma(lam)
        D1, D2 = dsg @ w, dsg**2 @ w                                       # functions of omega
        z = c * x[:, None] + math.sqrt(max(0.0, 1 - c * c)) * x[None, :]  # (omega, xi)
        kc = int(np.max(np.flatnonzero(self.c))) if np.any(self.c) else 0
        g = np.tensordot(self.c[: kc + 1], hermite_values(z, kc), axes=(0, 0))
        r2 = (a * F[:, None] - g) ** 2 + self.extra + Vn
        W2 = np.outer(w, w)
        D1, D2 = D1[:, None], D2[:, None]
        return float(np.sum(r2 * D2 * W2)), float(np.sum(r2 * D1**2 * W2))

    def step(self, m: float, a: float, Q: float, *, dt: float, ratio: float, n: float, noise: bool = True,
             collective: bool = True, feedback: bool = True) -> tuple[float, float, float]:
        """One step ``(m, a, Q) -> (m', a', Q')``; ``ratio = d / B``, ``n`` may be ``inf``."""
        eta = self.lr_w * dt
        inv = 0.0 if math.isinf(n) else 1.0 / n
        sees_Q = feedback and collective
        Qe = Q if sees_Q else m * m

        def geometry(Qx: float) -> Any:
            K, K1, K2, C, C1, T = self.series(Qx)
            _, K1_1, K2_1, _, _, _ = self.series(1.0)
            C, C1, T = self.series(m)[3:]
            alpha = a * ((K1_1 + K2_1) * inv + (1 - inv) * K2) - T
            beta = a * (1 - inv) * K1
            Qt = Qx + (1 - Qx) / (n - 1) if inv else Qx
            W2 = Qx + (1 - Qx) * (n - 2) / (n - 1) ** 2 if inv else Qx
            return ((alpha + beta) * m - C1, alpha + beta * Qx - C1 * m, alpha * Qx + beta * Qt - C1 * m,
                    alpha**2 + beta**2 * Qt + C1**2 + 2 * alpha * beta * Qx - 2 * (alpha + beta) * C1 * m,
                    alpha**2 * Qx + 2 * alpha * beta * Qt + beta**2 * W2 - 2 * (alpha + beta) * C1 * m + C1**2)

        tG, wG, xG, GG, GGx = geometry(Qe)
        Sig_s = Sig_c = 0.0
        if noise and ratio > 0:
            Es, Ec = self.noise_terms(m, a, Qe, n)
            Sig_s = ratio * a * a * Es
            Sig_c = ratio * a * a * Ec if collective else 0.0
        N2 = 1 - 2 * eta * a * wG + eta**2 * (a * a * GG + Sig_s)
        m_new = (m - eta * a * tG) / math.sqrt(N2)
        if collective:
            if not sees_Q:
                _, wGq, xG, GGq, GGx = geometry(Q)
                N2 = 1 - 2 * eta * a * wGq + eta**2 * (a * a * GGq + Sig_s)
            Q_new = (Q - 2 * eta * a * xG + eta**2 * (a * a * GGx + Sig_c)) / N2
        else:
            Q_new = m_new**2
        a_new = a - self.lr_a * dt * (a * (inv * self.E_sig2 + (1 - inv) * self.K(Qe)) - self.series(m)[3])
        return m_new, a_new, Q_new

    def loss(self, m: float, a: float, Q: float, n: float, sees_Q: bool = True) -> float:
        inv = 0.0 if math.isinf(n) else 1.0 / n
        self_term = inv * self.E_sig2 + (1 - inv) * self.K(Q if sees_Q else m * m)
        return 0.5 * (a * a * self_term - 2 * a * self.series(m)[3] + self.E_g2 + self.noise)

    def trajectory(self, t_eval: npt.ArrayLike, *, a0: float, m0: float, dt: float, ratio: float, n: float,
                   **terms: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Iterate from ``(m0, a0, q = 0)`` with step ``dt`` (step times ``k dt``), read at ``t_eval`` by
        linear interpolation: ``(m, a, loss, q_perp)`` arrays."""
        t_eval = np.asarray(t_eval, float)
        K = int(math.ceil(t_eval[-1] / dt - 1e-9))
        sees_Q = terms.get("feedback", True) and terms.get("collective", True)
        m, a, Q = float(m0), float(a0), float(m0) ** 2
        rows = [(m, a, self.loss(m, a, Q, n, sees_Q), 0.0)]
        for _ in range(K):
            m, a, Q = self.step(m, a, Q, dt=dt, ratio=ratio, n=n, **terms)
            rows.append((m, a, self.loss(m, a, Q, n, sees_Q), (Q - m * m) / (1 - m * m)))
        tt = np.arange(K + 1) * dt
        return tuple(np.interp(t_eval, tt, col) for col in np.array(rows).T)


def limit_map(s: npt.ArrayLike, c: npt.ArrayLike, lr_w: float, lr_a: float, m: float, a: float, dt: float) -> tuple[float, float]:
    """The exact ``n, d, B -> infinity`` limit of one SGD step at finite ``dt``, in the plane of the
    teacher and the row: ``G = a (A theta + C u)`` with ``R = a K2(m^2) - T(m)``,
    ``A = a m K1(m^2) - C1(m) + m R``, ``C = sqrt(1 - m^2) R``; ``m' = (m - eta a A) / N``."""
    ref = EffectiveReference(s, c, s_tail=0.0, c_tail=0.0, act=hermite_function(s), lr_w=lr_w, lr_a=lr_a)
    eta = lr_w * dt
    K, K1, K2, _, _, _ = ref.series(m * m)
    _, _, _, C, C1, T = ref.series(m)
    R = a * K2 - T
    A = a * m * K1 - C1 + m * R
    Cc = math.sqrt(1 - m * m) * R
    N2 = 1 - 2 * eta * a * (m * A + math.sqrt(1 - m * m) * Cc) + eta**2 * a * a * (A * A + Cc * Cc)
    return (m - eta * a * A) / math.sqrt(N2), a - lr_a * dt * (a * K - C)
# The mean-field particle system (dense, for small N)
# ---------------------------------------------------------------------------------------------
def _particle_terms(s: Any, c: Any, y: Any, w: Any) -> tuple[np.ndarray, ...]:
    """Dense per-particle, per-order matrices at the state ``y = (v_0, a_0, v_1, a_1, ...)``:
    ``Phi = s_k m^k``, ``Psi = dPhi/dm``, ``Psi2 = d2Phi/dm2`` (shape ``(N, K)``), the residuals
    ``R_k = sum_i w_i a_i Phi_ik - c_k``, and ``m``, ``a``, ``sech^2 v``."""
    sp, cp, k = _pad(np.asarray(s, float), np.asarray(c, float))
    y = np.asarray(y, float)
    v, a = y[0::2], y[1::2]
    m = np.tanh(v)[:, None]
    Phi = sp * m**k
    Psi = k * sp * m ** np.maximum(k - 1, 0)
    Psi2 = k * (k - 1) * sp * m ** np.maximum(k - 2, 0)
    R = (np.asarray(w, float) * a) @ Phi - cp
    sech2 = 1.0 / np.cosh(v) ** 2
    return Phi, Psi, Psi2, R, a, sech2


def particle_rhs(s: Any, c: Any, lr_w: float, lr_a: float, w: Any, y: Any) -> np.ndarray:
    """The particle system's right-hand side in ``(v_i, a_i)``: ``dv_i/dt = -lr_w a_i dL_i/dm``,
    ``da_i/dt = -lr_a L_i`` with ``L_i = sum_k s_k m_i^k R_k`` (the loss's gradient per unit weight)."""
    Phi, Psi, _, R, a, _ = _particle_terms(s, c, y, w)
    f = np.empty(2 * a.size)
    f[0::2] = -lr_w * a * (Psi @ R)
    f[1::2] = -lr_a * (Phi @ R)
    return f


def particle_jacobian(s: Any, c: Any, lr_w: float, lr_a: float, w: Any, y: Any) -> np.ndarray:
    """The dense ``2N x 2N`` Jacobian of :func:`particle_rhs` (product rule written out per entry
    pair: the particle's own derivative at fixed residuals plus the change of the residuals)."""
    w = np.asarray(w, float)
    Phi, Psi, Psi2, R, a, sech2 = _particle_terms(s, c, y, w)
    N = a.size
    dR = np.empty((2 * N, Phi.shape[1]))  # dR_k / dy_j
    dR[0::2] = (w * a * sech2)[:, None] * Psi
    dR[1::2] = w[:, None] * Phi
    J = np.zeros((2 * N, 2 * N))
    J[0::2] = -lr_w * a[:, None] * (Psi @ dR.T)
    J[1::2] = -lr_a * (Phi @ dR.T)
    i = np.arange(N)
    J[2 * i, 2 * i] += -lr_w * a * (Psi2 @ R) * sech2
    J[2 * i, 2 * i + 1] += -lr_w * (Psi @ R)
    J[2 * i + 1, 2 * i] += -lr_a * (Psi @ R) * sech2
    return J


def solve_particles(s: Any, c: Any, lr_w: float, lr_a: float, a0: Any, m0: Any, weights: Any, t_eval: Any, *,
                    rtol: float = 1e-11, atol: float = 1e-13, method: str = "Radau") -> tuple[np.ndarray, np.ndarray, Any]:
    """Integrate the particle system with SciPy's ``solve_ivp`` (dense Jacobian for the implicit
    methods); returns ``(m, a, result)`` with ``m``, ``a`` of shape ``(N, T)``."""
    a0 = np.atleast_1d(np.asarray(a0, float))
    m0 = np.broadcast_to(np.asarray(m0, float), a0.shape)
    w = np.asarray(weights, float)
    w = w / w.sum()
    y0 = np.empty(2 * a0.size)
    y0[0::2] = np.arctanh(m0)
    y0[1::2] = a0
    t_eval = np.asarray(t_eval, float)
    kw = {"jac": lambda t, y: particle_jacobian(s, c, lr_w, lr_a, w, y)} if method in ("Radau", "BDF", "LSODA") else {}
    res = solve_ivp(lambda t, y: particle_rhs(s, c, lr_w, lr_a, w, y), (0.0, float(t_eval[-1])), y0,
                    method=method, t_eval=t_eval, rtol=rtol, atol=atol, **kw)
    if res.status != 0:
        raise RuntimeError(f"reference solve_ivp failed: {res.message}")
    return np.tanh(res.y[0::2]), res.y[1::2], res
