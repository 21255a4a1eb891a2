#!/usr/bin/env python
"""Monte-Carlo check of the projected sampler's derivation (issue 18), in plain NumPy.

With ``V = [W; theta]^T`` (``d x (n+1)``) and its thin QR ``V = Q R``, for a batch ``X`` (``B x d``) of
standard normal rows:

1. ``Z = X Q`` has i.i.d. N(0, 1) entries;
2. ``P = X V = Z R`` and ``X Pi = Z Q^T`` (``Pi = Q Q^T``), identities;
3. ``X_perp = X (I - Pi)`` is independent of ``Z``, with rows ``N(0, I - Pi)``;
4. given ``Z`` (so ``M``, a function of ``P = Z R`` and of the label noise, is fixed),
   ``M^T X_perp ~ L Xi (I - Pi)`` with ``L L^T = M^T M`` and ``Xi`` an ``n x d`` standard normal
   matrix: the matrix-normal law ``MN(0, M^T M, I - Pi)``;
5. so one step's gradient ``G = M^T X = (M^T Z) Q^T + M^T X_perp`` has the same law from both samplers
   (mean and covariance, with ``grad a`` and the updated order parameters).

Every claim is tested by z-scores of Monte-Carlo estimates against their standard errors (the
largest |z| over all entries is reported; under the claim it is that of a maximum of that many
standard normals, about 3-4.5). Run: ``python tools/projected_derivation.py [--draws N]``.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

SQ6 = math.sqrt(6.0)


def target(z):
    return z + 0.3 * (z**3 - 3 * z) / SQ6


def setup(rng, d, n, m_mean):
    theta = rng.standard_normal(d)
    theta /= np.linalg.norm(theta)
    U = rng.standard_normal((n, d))
    U -= np.outer(U @ theta, theta)
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    m = np.clip(m_mean + 0.1 * rng.standard_normal(n), -0.99, 0.99)
    W = m[:, None] * theta + np.sqrt(1 - m**2)[:, None] * U
    a = 0.7 + 0.2 * rng.standard_normal(n)
    return W, a, theta


def forward(P, a, noise, xi):
    """M (B x n, with the 1/B), residuals, grad a from P = [X W^T | X theta]."""
    n = a.size
    S = np.tanh(P[..., :n])
    D = 1 - S**2
    f = S @ a / n
    r = f - (target(P[..., n]) + math.sqrt(noise) * xi)
    B = P.shape[-2]
    M = r[..., :, None] * a * D / B
    ga = np.einsum("...bi,...b->...i", S, r) / B
    return M, ga


def zmax_cov(samples, expected):
    """Largest |z| of the sample covariance of rows of `samples` (N x p) against `expected` (p x p),
    the SE of entry (i, j) estimated as sqrt(var(x_i x_j) / N)."""
    N = samples.shape[0]
    x = samples - samples.mean(0)
    prod = x[:, :, None] * x[:, None, :]
    est = prod.mean(0)
    se = prod.std(0) / math.sqrt(N)
    iu = np.triu_indices(samples.shape[1])
    return float(np.max(np.abs(est - expected)[iu] / se[iu])), est


def two_sample(x, y):
    """Largest |z| of the difference of means and of covariances (upper triangle) of two samples."""
    zm = np.abs(x.mean(0) - y.mean(0)) / np.sqrt(x.var(0) / len(x) + y.var(0) / len(y))
    xc, yc = x - x.mean(0), y - y.mean(0)
    iu = np.triu_indices(x.shape[1])
    px = (xc[:, :, None] * xc[:, None, :])[:, iu[0], iu[1]]
    py = (yc[:, :, None] * yc[:, None, :])[:, iu[0], iu[1]]
    zc = np.abs(px.mean(0) - py.mean(0)) / np.sqrt(px.var(0) / len(px) + py.var(0) / len(py))
    return float(zm.max()), float(zc.max()), zm.size, zc.size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--draws", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    N = args.draws
    rng = np.random.default_rng(args.seed)
    d, n, B, noise = 9, 3, 5, 0.1
    W, a, theta = setup(rng, d, n, m_mean=0.8)  # aligned neurons: an ill-conditioned-ish V
    V = np.vstack([W, theta]).T
    Q, R = np.linalg.qr(V)
    k = Q.shape[1]
    Pi = Q @ Q.T
    print(f"d = {d}, n = {n}, B = {B}, noise = {noise}, cond(V) = {np.linalg.cond(V):.1f}, draws {N}")

    # 1-3: one row at a time (N rows)
    X = rng.standard_normal((N, d))
    Z = X @ Q
    z1, _ = zmax_cov(Z, np.eye(k))
    print(f"1. Z = X Q: max |mean| z = {np.max(np.abs(Z.mean(0)) * math.sqrt(N)):.2f}, "
          f"covariance vs I: max |z| = {z1:.2f} over {k * (k + 1) // 2} entries")
    print(f"2. |X V - Z R| / |X V| = {np.linalg.norm(X @ V - Z @ R) / np.linalg.norm(X @ V):.1e}, "
          f"|X Pi - Z Q^T| / |X Pi| = {np.linalg.norm(X @ Pi - Z @ Q.T) / np.linalg.norm(X @ Pi):.1e}")
    Xp = X - X @ Pi
    joint = np.hstack([Z, Xp])
    x = joint - joint.mean(0)
    cross = (x[:, :k, None] * x[:, None, k:])
    zc = np.abs(cross.mean(0)) / (cross.std(0) / math.sqrt(N))
    zp, _ = zmax_cov(Xp, np.eye(d) - Pi)
    # independence beyond correlation: E[z_i^2 |x_perp|^2] = E[z_i^2] E[|x_perp|^2]
    q = (Z**2)[:, :, None] * (Xp**2)[:, None, :]
    zq = np.abs(q.mean(0) - (Z**2).mean(0)[:, None] * (Xp**2).mean(0)[None, :]) / (q.std(0) / math.sqrt(N))
    print(f"3. X_perp vs Z: cross-covariance max |z| = {zc.max():.2f} over {zc.size}; E[z^2 x_perp^2] "
          f"factorises: max |z| = {zq.max():.2f}; cov(X_perp) vs I - Pi: max |z| = {zp:.2f}")

    # 4: conditional law, one fixed Z (B x k)
    Zf = rng.standard_normal((B, k))
    xi_f = rng.standard_normal(B)
    M, _ = forward(Zf @ R, a, noise, xi_f)
    Nb = rng.standard_normal((N // 4, B, d))
    Gp = np.einsum("bi,sbj->sij", M, Nb - Nb @ Pi).reshape(N // 4, -1)
    expected = np.kron(M.T @ M, np.eye(d) - Pi)
    z4, _ = zmax_cov(Gp, expected)
    L = np.linalg.cholesky(M.T @ M)
    Xi = rng.standard_normal((N // 4, n, d))
    Gl = (L @ (Xi - Xi @ Pi)).reshape(N // 4, -1)
    z4b, _ = zmax_cov(Gl, expected)
    print(f"4. given Z: cov(M^T X_perp) vs (M^T M) x (I - Pi): max |z| = {z4:.2f}; cov(L Xi (I - Pi)) vs the same: "
          f"max |z| = {z4b:.2f} ({(n * d) * (n * d + 1) // 2} entries); means max |z| = "
          f"{np.max(np.abs(Gp.mean(0)) / (Gp.std(0) / math.sqrt(len(Gp)))):.2f}, "
          f"{np.max(np.abs(Gl.mean(0)) / (Gl.std(0) / math.sqrt(len(Gl)))):.2f}")

    # 5: the whole step, both samplers, N steps each from the same W
    S = N // 4
    lr, dt = 1.0, 0.1
    Xd = rng.standard_normal((S, B, d))
    xi = rng.standard_normal((S, B))
    Pd = Xd @ V
    Md, gad = forward(Pd, a, noise, xi)
    Gd = np.einsum("sbi,sbj->sij", Md, Xd)
    Zs = rng.standard_normal((S, B, k))
    xi2 = rng.standard_normal((S, B))
    Ms, gas = forward(Zs @ R, a, noise, xi2)
    Gram = np.einsum("sbi,sbj->sij", Ms, Ms)
    Ls = np.linalg.cholesky(Gram + 0 * np.eye(n))
    Xis = rng.standard_normal((S, n, d))
    Ys = Ls @ Xis
    Gs = (np.einsum("sbi,sbk->sik", Ms, Zs) - Ys @ Q) @ Q.T + Ys
    zm, zc, pm, pc = two_sample(Gd.reshape(S, -1), Gs.reshape(S, -1))
    print(f"5. one step's G, direct vs projected ({S} steps each): means max |z| = {zm:.2f} over {pm}, "
          f"covariances max |z| = {zc:.2f} over {pc}")
    zm, zc, pm, pc = two_sample(np.hstack([Gd.reshape(S, -1), gad]), np.hstack([Gs.reshape(S, -1), gas]))
    print(f"   (G, grad a) jointly: means max |z| = {zm:.2f} over {pm}, covariances max |z| = {zc:.2f} over {pc}")

    def order(G, ga):
        Wn = W - lr * dt * G
        Wn /= np.linalg.norm(Wn, axis=-1, keepdims=True)
        return np.hstack([Wn @ theta, a - lr * dt * ga])

    zm, zc, pm, pc = two_sample(order(Gd, gad), order(Gs, gas))
    print(f"   updated (m_i, a_i): means max |z| = {zm:.2f} over {pm}, covariances max |z| = {zc:.2f} over {pc}")
    # a rank-deficient V (two equal neurons, one at the teacher): Householder QR still gives V = Q R
    # with Q orthonormal, and the same law
    W2 = W.copy()
    W2[1] = W2[0]
    W2[2] = theta
    V2 = np.vstack([W2, theta]).T
    Q2, R2 = np.linalg.qr(V2)
    Pd2 = Xd @ V2
    Md2, gad2 = forward(Pd2, a, noise, xi)
    Gd2 = np.einsum("sbi,sbj->sij", Md2, Xd)
    Ms2, gas2 = forward(Zs @ R2, a, noise, xi2)
    Gram2 = np.einsum("sbi,sbj->sij", Ms2, Ms2)
    lam, U = np.linalg.eigh(Gram2)  # semi-definite here (columns 0 and 1 of M are parallel): L = U sqrt(lam)
    Ys2 = (U * np.sqrt(np.maximum(lam, 0))[:, None, :]) @ Xis
    Gs2 = (np.einsum("sbi,sbk->sik", Ms2, Zs) - Ys2 @ Q2) @ Q2.T + Ys2
    zm, zc, pm, pc = two_sample(np.hstack([Gd2.reshape(S, -1), gad2]), np.hstack([Gs2.reshape(S, -1), gas2]))
    print(f"   rank-deficient V (rank {np.linalg.matrix_rank(V2)} of {k}; w_1 = w_0, w_2 = theta): (G, grad a) "
          f"means max |z| = {zm:.2f} over {pm}, covariances max |z| = {zc:.2f} over {pc}")
    # a sampler with the X_perp term left out must be caught by the same statistics
    Gbad = np.einsum("sbi,sbk->sik", Ms, Zs) @ Q.T
    zm, zc, _, _ = two_sample(Gd.reshape(S, -1), Gbad.reshape(S, -1))
    print(f"   control, projected without the M^T X_perp term: means max |z| = {zm:.2f}, covariances max |z| = {zc:.1f}")


if __name__ == "__main__":
    main()
