// Factors of small symmetric Gram matrices, in double, by LAPACK (blocked, single-threaded):
//   - cholesky_upper: S = R^T R, R upper triangular (positive definite S), or a failure;
//   - psd_factor: F with F F^T = S for any positive semi-definite S: the Cholesky factor (lower
//     triangular) when S is positive definite, else the rank-revealing pivoted Cholesky factor
//     P L (columns past the numerical rank zero; not triangular).
// Matrices are row-major; a symmetric matrix is the same in either order, and LAPACK's
// column-major upper triangle is the row-major lower one.
#pragma once
#include <cmath>
#include <limits>
#include <vector>

#include "../blas.hpp"

namespace fastslow::sgd {

// S (k x k, row-major, its upper triangle read) -> R (in place, row-major upper triangular, strict
// lower part zeroed) with S = R^T R. False if S is not numerically positive definite (S is then
// destroyed).
inline bool cholesky_upper(std::vector<double>& S, int k) {
  int info = 0;
  const char uplo = 'L';  // column-major lower = row-major upper: S = Lc Lc^T, R = Lc^T
  scipy_dpotrf_(&uplo, &k, S.data(), &k, &info, 1);
  if (info != 0) return false;
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < i; ++j) S[std::size_t(i) * k + j] = 0.0;
  for (int i = 0; i < k; ++i)
    if (!std::isfinite(S[std::size_t(i) * k + i])) return false;
  return true;
}

// F (n x n, row-major) with F F^T = S for a symmetric positive semi-definite S (row-major, both
// triangles). Returns true when F is lower triangular (S positive definite: plain Cholesky),
// false when it came from the pivoted factorisation (rank deficient S: a zero M column, equal
// neurons, B < n). A non-finite S gives a NaN F (the step then reports the divergence).
inline bool psd_factor(const std::vector<double>& S, int n, std::vector<double>& F) {
  F = S;
  int info = 0;
  const char uplo = 'U';  // column-major upper = row-major lower: S = U^T U, F = U^T lower
  scipy_dpotrf_(&uplo, &n, F.data(), &n, &info, 1);
  if (info == 0) {
    for (int i = 0; i < n; ++i)
      for (int j = i + 1; j < n; ++j) F[std::size_t(i) * n + j] = 0.0;
    return true;
  }
  // Pivoted: P^T S P = U^T U on the leading `rank` columns; row-major, Lp = U^T (lower) with
  // P^T S P = Lp Lp^T, so F = P Lp: row piv[j] - 1 of F is row j of Lp.
  std::vector<double> A = S, work(2 * std::size_t(n));
  std::vector<int> piv(static_cast<std::size_t>(n));
  int rank = 0;
  const double tol = -1.0;  // LAPACK's default: n eps max_i S_ii
  scipy_dpstrf_(&uplo, &n, A.data(), &n, piv.data(), &rank, &tol, work.data(), &info, 1);
  F.assign(std::size_t(n) * n, 0.0);
  if (info < 0) {
    std::fill(F.begin(), F.end(), std::numeric_limits<double>::quiet_NaN());
    return false;
  }
  for (int j = 0; j < n; ++j) {
    const int row = piv[j] - 1;
    for (int c = 0; c <= j && c < rank; ++c) F[std::size_t(row) * n + c] = A[std::size_t(j) * n + c];
  }
  return false;
}

}  // namespace fastslow::sgd
