// The structured linear algebra of the implicit particle integrator, written once.
//
// Radau IIA's Newton matrix for a state of 2N unknowns, S stages and stage Jacobians J_t, and the
// matrix of its error estimate, are both
//
//   M = I - (H (x) I_2N) diag(J_1, ..., J_S),      J_t = D_t + U_t V_t^T,
//
// with H = h A (S = 3) or H = [h / MU_REAL] (S = 1), D_t block-diagonal with a 2 x 2 block per
// particle and U_t, V_t of size 2N x r (the coupling through the r residuals R_k). Ordering the
// unknowns particle by particle, (j, stage s, component p), M is block-diagonal with one
// 2S x 2S block per particle,
//
//   Bd_j[(s,p),(t,q)] = delta - H_st D_t,j[p,q],
//
// minus a coupling of rank S r: M = Bd - U~ V~^T, U~_j = (H (x) I_2) diag_t(U_t,j),
// V~_j = diag_t(V_t,j). The Woodbury identity
//
//   M^-1 = Bd^-1 + Bd^-1 U~ C^-1 V~^T Bd^-1,    C = I - V~^T Bd^-1 U~   (S r x S r),
//
// gives the factorisation in O(N S^2 r^2) (the sum forming C, by GEMMs over blocks of particles)
// and each solve in O(N S r) plus one S r x S r solve, against O((2 S N)^3) for a dense LU.
// Every sum over particles runs in index order (fixed blocks): results do not depend on threads.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "../blas.hpp"

namespace fastslow::particles {

// LU factorisation with partial pivoting of a small dense B x B matrix, and its solve.
template <int B>
struct SmallLU {
  double a[B][B];
  int piv[B];
  bool factor() {
    for (int c = 0; c < B; ++c) {
      int p = c;
      for (int r = c + 1; r < B; ++r)
        if (std::abs(a[r][c]) > std::abs(a[p][c])) p = r;
      piv[c] = p;
      if (!(std::abs(a[p][c]) > 0.0) || !std::isfinite(a[p][c])) return false;
      if (p != c)
        for (int k = 0; k < B; ++k) std::swap(a[c][k], a[p][k]);
      const double inv = 1.0 / a[c][c];
      for (int r = c + 1; r < B; ++r) {
        const double f = a[r][c] * inv;
        a[r][c] = f;
        for (int k = c + 1; k < B; ++k) a[r][k] -= f * a[c][k];
      }
    }
    return true;
  }
  void solve(double* b) const {
    for (int c = 0; c < B; ++c)
      if (piv[c] != c) std::swap(b[c], b[piv[c]]);
    for (int c = 0; c < B; ++c)
      for (int r = c + 1; r < B; ++r) b[r] -= a[r][c] * b[c];
    for (int c = B - 1; c >= 0; --c) {
      double x = b[c];
      for (int k = c + 1; k < B; ++k) x -= a[c][k] * b[k];
      b[c] = x / a[c][c];
    }
  }
};

// Solves M x = b for M = I - (H (x) I_2N) diag(J_1..J_S), J_t = D_t + U_t V_t^T (see above).
// Fill D(t), U(t), V(t), call factor(H), then solve() as often as needed.
template <int S>
class StructuredSolver {
 public:
  static constexpr int B = 2 * S;       // unknowns per particle
  static constexpr std::size_t kChunk = 128;  // particles per GEMM block when forming C

  void resize(std::size_t N, int r) {
    N_ = N;
    r_ = r;
    for (int t = 0; t < S; ++t) {
      D_[t].assign(4 * N, 0.0);
      U_[t].assign(2 * N * std::size_t(r), 0.0);
      V_[t].assign(2 * N * std::size_t(r), 0.0);
    }
    lu_.resize(N);
    G_.assign(N * B * B, 0.0);
    const std::size_t sr = std::size_t(S) * std::size_t(r);
    C_.assign(sr * sr, 0.0);
    ipiv_.assign(sr, 0);
    z_.assign(sr, 0.0);
    X_.assign(2 * std::min(N, kChunk) * sr, 0.0);
  }
  std::size_t size() const { return N_; }
  int rank() const { return r_; }
  double* D(int t) { return D_[t].data(); }
  double* U(int t) { return U_[t].data(); }
  double* V(int t) { return V_[t].data(); }
  const double* D(int t) const { return D_[t].data(); }
  const double* U(int t) const { return U_[t].data(); }
  const double* V(int t) const { return V_[t].data(); }
  // Bytes held (for the memory estimates).
  static double bytes(std::size_t N, int r) {
    const double sr = double(S) * r;
    return 8.0 * (S * (4.0 * N + 4.0 * N * r) + 2.0 * N * B * B + sr * sr + 2.0 * sr +
                  2.0 * std::min(N, kChunk) * sr) + 4.0 * N * B;
  }

  // Factorise M for the matrix H; false when a block or C is singular (or not finite).
  bool factor(const double (&H)[S][S]) {
    const std::size_t N = N_, r = std::size_t(r_), sr = S * r;
    for (std::size_t j = 0; j < N; ++j) {
      SmallLU<B>& L = lu_[j];
      for (int s = 0; s < S; ++s)
        for (int p = 0; p < 2; ++p)
          for (int t = 0; t < S; ++t)
            for (int q = 0; q < 2; ++q)
              L.a[2 * s + p][2 * t + q] = (s == t && p == q ? 1.0 : 0.0) - H[s][t] * D_[t][4 * j + 2 * p + q];
      if (!L.factor()) return false;
      // G_j = Bd_j^-1 (H (x) I_2), column by column (row-major B x B)
      double* G = G_.data() + j * B * B;
      for (int t = 0; t < S; ++t)
        for (int q = 0; q < 2; ++q) {
          double col[B];
          for (int s = 0; s < S; ++s)
            for (int p = 0; p < 2; ++p) col[2 * s + p] = p == q ? H[s][t] : 0.0;
          L.solve(col);
          for (int i = 0; i < B; ++i) G[i * B + 2 * t + q] = col[i];
        }
    }
    std::fill(C_.begin(), C_.end(), 0.0);
    for (std::size_t i = 0; i < sr; ++i) C_[i * sr + i] = 1.0;
    // C -= V~^T X, X_j = G_j diag_t(U_t,j): per block of particles and stage row s, one GEMM
    for (std::size_t j0 = 0; j0 < N; j0 += kChunk) {
      const std::size_t j1 = std::min(N, j0 + kChunk), c = j1 - j0;
      for (int s = 0; s < S; ++s) {
        for (std::size_t jj = 0; jj < c; ++jj) {
          const std::size_t j = j0 + jj;
          const double* G = G_.data() + j * B * B;
          for (int p = 0; p < 2; ++p) {
            double* row = X_.data() + (2 * jj + std::size_t(p)) * sr;
            const double* g = G + (2 * s + p) * B;
            for (int t = 0; t < S; ++t) {
              const double g0 = g[2 * t], g1 = g[2 * t + 1];
              const double* u0 = U_[t].data() + (2 * j) * r;
              const double* u1 = u0 + r;
              double* xr = row + std::size_t(t) * r;
              for (std::size_t k = 0; k < r; ++k) xr[k] = g0 * u0[k] + g1 * u1[k];
            }
          }
        }
        blas::gemm(blas::Trans, blas::NoTrans, int(r), int(sr), int(2 * c), -1.0, V_[s].data() + 2 * j0 * r, int(r),
                   X_.data(), int(sr), 1.0, C_.data() + std::size_t(s) * r * sr, int(sr));
      }
    }
    for (double x : C_)
      if (!std::isfinite(x)) return false;
    // LAPACK sees the row-major C as C^T (column-major): factor it, solve with trans = 'T'
    const int n = int(sr);
    int info = 0;
    scipy_dgetrf_(&n, &n, C_.data(), &n, ipiv_.data(), &info);
    return info == 0;
  }

  // x <- M^-1 x, x of length 2 S N in the layout (particle j, stage s, component p).
  void solve(double* x) {
    const std::size_t N = N_, r = std::size_t(r_), sr = S * r;
    for (std::size_t j = 0; j < N; ++j) lu_[j].solve(x + j * B);
    std::fill(z_.begin(), z_.end(), 0.0);
    for (int s = 0; s < S; ++s) {
      double* zs = z_.data() + std::size_t(s) * r;
      for (std::size_t j = 0; j < N; ++j) {
        const double b0 = x[j * B + 2 * s], b1 = x[j * B + 2 * s + 1];
        const double* v0 = V_[s].data() + (2 * j) * r;
        const double* v1 = v0 + r;
        for (std::size_t k = 0; k < r; ++k) zs[k] += v0[k] * b0 + v1[k] * b1;
      }
    }
    const int n = int(sr), one = 1;
    int info = 0;
    const char trans = 'T';
    scipy_dgetrs_(&trans, &n, &one, C_.data(), &n, ipiv_.data(), z_.data(), &n, &info, 1);
    for (std::size_t j = 0; j < N; ++j) {
      double u[B];
      for (int t = 0; t < S; ++t) {
        const double* yt = z_.data() + std::size_t(t) * r;
        const double* u0 = U_[t].data() + (2 * j) * r;
        const double* u1 = u0 + r;
        double a0 = 0.0, a1 = 0.0;
        for (std::size_t k = 0; k < r; ++k) {
          a0 += u0[k] * yt[k];
          a1 += u1[k] * yt[k];
        }
        u[2 * t] = a0;
        u[2 * t + 1] = a1;
      }
      const double* G = G_.data() + j * B * B;
      double* xj = x + j * B;
      for (int i = 0; i < B; ++i) {
        double acc = 0.0;
        for (int c = 0; c < B; ++c) acc += G[i * B + c] * u[c];
        xj[i] += acc;
      }
    }
  }

 private:
  std::size_t N_ = 0;
  int r_ = 0;
  std::vector<double> D_[S], U_[S], V_[S];
  std::vector<SmallLU<B>> lu_;
  std::vector<double> G_, C_, z_, X_;
  std::vector<int> ipiv_;
};

}  // namespace fastslow::particles
