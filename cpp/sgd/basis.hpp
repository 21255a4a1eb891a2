// An orthonormal basis of the span of V = [W; theta]^T (d x (n + 1)) for the projected sampler: Q
// (d x k, stored as Q^T, k x d row-major) and R (k x (n + 1)) with V = Q R and Q^T Q = I to the
// working precision, whatever the conditioning of V (neurons near each other or near the teacher,
// all of them at a pole, equal rows).
//
// Methods, chosen per step from V alone (so the choice never depends on the threads):
//   - Identity (d <= n + 1): Q = I, R = V; nothing to compute (the projected step is then the direct
//     one on another random stream).
//   - CholeskyQR: S = V^T V in double (column blocks of V, summed in block order), S = R^T R,
//     Q^T = R^{-T} V^T (triangular solves on column blocks). Then the orthogonality is measured, not
//     estimated: F = Q^T Q - I (in double). Kept when |F|_F <= 100 eps (the precision of T).
//   - CholeskyQR2: otherwise, once more on Q (Q^T Q = R2^T R2, Q <- Q R2^{-1}, R <- R2 R). The
//     first pass leaves |F| about eps_T cond(V) + eps_64 cond(V)^2, the second one eps_T (Yamamoto,
//     Nakatsukasa, Yanagisawa, Fukaya, "Roundoff error analysis of the CholeskyQR2 algorithm",
//     ETNA 44, 2015), as long as the first is well below 1: used while |F|_F <= 1/4.
//   - Householder: otherwise, or when a Cholesky factorisation fails (rank-deficient V): LAPACK's
//     geqrf + orgqr (serial; exact for any V, rank-deficient included), signs made so that
//     R's diagonal is >= 0 as in the Cholesky methods.
// Flops (with k = n + 1): d k^2 per Gram (double), d k^2 per triangular solve: 3 d k^2 for one pass,
// 5 d k^2 with the second; Householder about 4 d k^2.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "../blas.hpp"
#include "blocks.hpp"
#include "cholesky.hpp"

namespace fastslow::sgd {

enum class BasisMethod { Auto = 0, Identity = 1, CholeskyQR = 2, CholeskyQR2 = 3, Householder = 4 };

template <class T>
class SpanBasis {
 public:
  void allocate(int d, int n) {
    d_ = d;
    n_ = n;
    k_ = std::min(d, n + 1);
    identity_ = d <= n + 1;
    cb_ = blocks::columns(d);
    // threads only where a pass has work for them: a team costs a fork and a join, and on a loaded
    // machine a join waits for a descheduled thread (the blocks, and so the results, stay the same)
    parallel_ = cb_ > 1 && double(d) * k_ * k_ > kParallelFlops;
    if (identity_) return;
    const std::size_t k = k_;
    Qt_.assign(std::size_t(n + 1) * d, T(0));  // n + 1 rows: the Householder path works in place
    R_.assign(k * (n + 1), T(0));
    Rd_.assign(k * (n + 1), 0.0);
    part_.assign(std::size_t(cb_) * k * k, 0.0);
    if constexpr (!std::is_same_v<T, double>) Vd_.assign(std::size_t(n + 1) * d, 0.0);
  }

  int k() const { return k_; }
  bool identity() const { return identity_; }
  // R is square upper triangular (the forward pass may use a triangular product).
  bool triangular() const { return !identity_; }
  const T* Qt() const { return Qt_.data(); }
  const T* R() const { return R_.data(); }
  BasisMethod used() const { return used_; }
  double orthogonality() const { return off_; }  // |Q^T Q - I|_F after the first pass (NaN if none)
  void force(BasisMethod m) { forced_ = m; }

  // The basis of span V from Vt = [W; theta] ((n + 1) x d, row-major).
  void compute(const T* Vt, int threads) {
    off_ = std::numeric_limits<double>::quiet_NaN();
    if (identity_) {
      used_ = BasisMethod::Identity;
      return;
    }
    if (forced_ == BasisMethod::Householder) return householder(Vt);
    gram(Vt, threads);
    if (!cholesky_pass(Vt, threads, /*check=*/true)) return householder(Vt);
    off_ = frobenius_off_identity(S_);  // S_ = Q^T Q of the first pass
    const double eps = std::numeric_limits<T>::epsilon();
    if (forced_ == BasisMethod::CholeskyQR || (forced_ == BasisMethod::Auto && off_ <= 100.0 * eps)) {
      used_ = BasisMethod::CholeskyQR;
      return to_T();
    }
    if (forced_ == BasisMethod::Auto && !(off_ <= 0.25)) return householder(Vt);
    std::vector<double> R1 = Rd_;
    if (!cholesky_pass(Qt_.data(), threads, /*check=*/false)) return householder(Vt);
    const int k = k_;  // Rd_ = R2: R = R2 R1
    blas::trmm(blas::Left, blas::Upper, blas::NoTrans, k, k, 1.0, Rd_.data(), k, R1.data(), k);
    Rd_ = R1;
    used_ = BasisMethod::CholeskyQR2;
    to_T();
  }

 private:
  // One Cholesky QR pass on the columns of A^T (A = [W; theta] on the first pass, Q^T on the
  // second) with S_ = A A^T given: S_ = R^T R, Rd_ <- R, Q^T = R^{-T} A (into Qt_, on column blocks)
  // and, with `check`, S_ <- Q^T Q from the same cache-hot blocks. False if the Cholesky fails.
  bool cholesky_pass(const T* A, int threads, bool check) {
    const int d = d_, k = k_, cb = cb_;
    std::vector<double> Rfac = S_;
    if (!cholesky_upper(Rfac, k)) return false;
    std::copy(Rfac.begin(), Rfac.end(), Rd_.begin());
    const std::vector<T> RT(Rfac.begin(), Rfac.end());
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel_)
    for (int c = 0; c < cb; ++c) {
      int j0, j1;
      blocks::of(d, cb, c, j0, j1);
      if (j1 <= j0) continue;
      T* q = Qt_.data() + j0;
      if (A != Qt_.data())
        for (int i = 0; i < k; ++i)
          std::copy(A + std::size_t(i) * d + j0, A + std::size_t(i) * d + j1, q + std::size_t(i) * d);
      blas::trsm(blas::Left, blas::Upper, blas::Trans, k, j1 - j0, T(1), RT.data(), k, q, d);
      if (check) gram_block(Qt_.data(), c, j0, j1);
    }
    if (check) sum_parts();
    return true;
  }

  // S_ = A A^T (k x k, double, upper triangle) from column blocks of A (k x d), summed in block order.
  void gram(const T* A, int threads) {
    const int d = d_, cb = cb_;
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel_)
    for (int c = 0; c < cb; ++c) {
      int j0, j1;
      blocks::of(d, cb, c, j0, j1);
      if (j1 > j0) gram_block(A, c, j0, j1);
    }
    sum_parts();
  }

  // part c = A[:, j0:j1] A[:, j0:j1]^T in double (float: the block converted first).
  void gram_block(const T* A, int c, int j0, int j1) {
    const int d = d_, k = k_;
    double* out = part_.data() + std::size_t(c) * k * k;
    if constexpr (std::is_same_v<T, double>) {
      blas::syrk(blas::Upper, blas::NoTrans, k, j1 - j0, 1.0, A + j0, d, 0.0, out, k);
    } else {
      double* v = Vd_.data() + j0;
      for (int i = 0; i < k; ++i)
        for (int j = j0; j < j1; ++j) v[std::size_t(i) * d + (j - j0)] = double(A[std::size_t(i) * d + j]);
      blas::syrk(blas::Upper, blas::NoTrans, k, j1 - j0, 1.0, v, d, 0.0, out, k);
    }
  }

  void sum_parts() {
    const std::size_t kk = std::size_t(k_) * k_;
    S_.assign(kk, 0.0);
    for (int c = 0; c < cb_; ++c) {  // block order: independent of the threads
      const double* p = part_.data() + std::size_t(c) * kk;
      for (int i = 0; i < k_; ++i)
        for (int j = i; j < k_; ++j) S_[std::size_t(i) * k_ + j] += p[std::size_t(i) * k_ + j];
    }
    for (int i = 0; i < k_; ++i)
      for (int j = 0; j < i; ++j) S_[std::size_t(i) * k_ + j] = S_[std::size_t(j) * k_ + i];
  }

  static double frobenius_off_identity(const std::vector<double>& S) {
    const std::size_t k = std::size_t(std::llround(std::sqrt(double(S.size()))));
    double acc = 0.0;
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t j = 0; j < k; ++j) {
        const double e = S[i * k + j] - (i == j ? 1.0 : 0.0);
        acc += e * e;
      }
    return std::sqrt(acc);
  }

  // Householder QR of V (d x (n + 1), column-major = Vt row-major) in Qt_'s buffer.
  void householder(const T* Vt) {
    const int d = d_, n1 = n_ + 1, k = k_;
    std::copy(Vt, Vt + std::size_t(n1) * d, Qt_.begin());
    tau_.assign(std::size_t(k), T(0));
    int info = 0;
    if (work_.empty()) {  // workspace queries, once
      T q1 = 0, q2 = 0;
      blas::geqrf(d, n1, Qt_.data(), d, tau_.data(), &q1, -1, info);
      blas::orgqr(d, k, k, Qt_.data(), d, tau_.data(), &q2, -1, info);
      work_.assign(std::size_t(std::max({double(q1), double(q2), double(n1)})) + 1, T(0));
    }
    const int lwork = int(work_.size());
    blas::geqrf(d, n1, Qt_.data(), d, tau_.data(), work_.data(), lwork, info);
    // R (k x (n + 1)): column-major R(i, j), i <= j, is at [j * d + i]
    std::fill(Rd_.begin(), Rd_.end(), 0.0);
    for (int j = 0; j < n1; ++j)
      for (int i = 0; i <= std::min(j, k - 1); ++i) Rd_[std::size_t(i) * n1 + j] = double(Qt_[std::size_t(j) * d + i]);
    blas::orgqr(d, k, k, Qt_.data(), d, tau_.data(), work_.data(), lwork, info);
    // column-major Q (d x k) is row-major Q^T (k x d): rows 0..k-1 of the buffer
    for (int i = 0; i < k; ++i)
      if (Rd_[std::size_t(i) * n1 + i] < 0.0) {
        for (int j = 0; j < n1; ++j) Rd_[std::size_t(i) * n1 + j] = -Rd_[std::size_t(i) * n1 + j];
        T* q = Qt_.data() + std::size_t(i) * d;
        for (int j = 0; j < d; ++j) q[j] = -q[j];
      }
    used_ = BasisMethod::Householder;
    to_T();
  }

  void to_T() { std::transform(Rd_.begin(), Rd_.end(), R_.begin(), [](double v) { return T(v); }); }

  static constexpr double kParallelFlops = 2e7;
  int d_ = 0, n_ = 0, k_ = 0, cb_ = 1;
  bool identity_ = false, parallel_ = false;
  BasisMethod forced_ = BasisMethod::Auto, used_ = BasisMethod::Auto;
  double off_ = std::numeric_limits<double>::quiet_NaN();
  std::vector<T> Qt_, R_, tau_, work_;
  std::vector<double> Rd_, S_, part_, Vd_;
};

}  // namespace fastslow::sgd
