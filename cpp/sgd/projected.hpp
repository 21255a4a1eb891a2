// The projected sampler: the same SGD step as the direct one, exact in distribution, without ever
// drawing the batch X (B x d). A step needs X only through P = X V (V = [W; theta]^T, d x (n + 1))
// and G = M^T X, and M is a function of P and of the label noise alone.
//
// Derivation (checked by Monte Carlo in tools/projected_derivation.py, and by tests/test_projected.py):
// with the thin QR V = Q R (Q^T Q = I_k, k = n + 1; basis.hpp),
//   1. Z = X Q (B x k) has i.i.d. N(0, 1) entries (the rows of X are N(0, I_d), Q has orthonormal
//      columns);
//   2. P = X V = X Q R = Z R, and X Pi = Z Q^T with Pi = Q Q^T the projector on span V;
//   3. X_perp = X (I - Pi) is Gaussian and uncorrelated with Z (Q^T (I - Pi) = 0), so independent of
//      Z, with i.i.d. rows N(0, I - Pi);
//   4. G = M^T X = (M^T Z) Q^T + M^T X_perp, and given Z (so given M: M depends on Z and on the label
//      noise xi, which is independent of X), M^T X_perp is matrix normal MN(0, M^T M, I - Pi):
//      E[(M^T X_perp)_ij (M^T X_perp)_kl] = (M^T M)_ik (I - Pi)_jl. So is L Xi (I - Pi) for any L with
//      L L^T = M^T M and Xi an independent n x d standard normal matrix.
// Hence drawing Z (B x k) and Xi (n x d) and setting
//      P = Z R,    G = Y + (M^T Z - Y Q) Q^T,    Y = L Xi,
// gives (P, G), and so the whole step, exactly the law of the direct step. The label noise xi_b is
// drawn as in the direct sampler, keyed by (seed, step, row). Z's rows are keyed by (seed, step,
// batch row) and Xi's by (seed, step, neuron), on their own streams: results do not depend on the
// threads, and a projected run is another random realisation than a direct run of the same seed
// (the law is the same).
//
// Conditioning: V^T V is never inverted. Q comes from Cholesky QR (repeated when needed) or
// Householder QR, with its orthogonality measured (basis.hpp); L is the Cholesky factor of
// M^T M, or its pivoted (rank-revealing) factor when M^T M is singular (a_i = 0, equal neurons,
// B < n). Both only need L L^T = M^T M and V = Q R, which backward-stable factorisations give to
// the working precision.
//
// Flops of a step (k = n + 1): forward P = Z R, a triangular product, B k^2 (a GEMM 2 B k^2 where R
// is not triangular); backward [M^T M | M^T Z] (upper part of M^T M), B n^2 + 2 B n k; Y = L Xi
// n^2 d (L lower triangular); Y Q and C Q^T 4 n k d; the basis 3-5 d k^2. So about
// 4 B n^2 + 7..9 n^2 d, and B k + n d normals, against 4 B d n and B d for the direct step.
// For d <= n + 1 the basis is the identity (Q = I, Z = X): the direct algorithm on another stream.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../blas.hpp"
#include "basis.hpp"
#include "blocks.hpp"
#include "cholesky.hpp"
#include "philox.hpp"
#include "step_parts.hpp"
#include "ziggurat.hpp"

namespace fastslow::sgd {

template <class T>
class ProjectedSampler {
 public:
  // The width of a row of the M buffer: [M_b (n) | Z_b (k)].
  static int ld_m(const Config& c) { return c.n + std::min(c.d, c.n + 1); }

  void allocate(const Config& c) {
    basis_.allocate(c.d, c.n);
    const std::size_t n = c.n, d = c.d, k = basis_.k();
    if (basis_.identity()) return;
    Xi_.assign(n * d, T(0));
    part_.assign(std::size_t(blocks::rows(c.batch, 0)) * n * (n + k), T(0));
    C_.assign(n * k, T(0));
    Cd_.assign(n * k, 0.0);
    S_.assign(n * n, 0.0);
    LT_.assign(n * n, T(0));
  }

  SpanBasis<T>& basis() { return basis_; }
  const SpanBasis<T>& basis() const { return basis_; }
  int k() const { return basis_.k(); }
  // Benchmarks: P = Z R as a general product instead of the triangular one (the same law).
  void set_forward_gemm(bool on) { forward_gemm_ = on; }
  bool factor_triangular() const { return triangular_L_; }

  // The next step uses these draws instead of its own: Z (B x k), Xi (n x d; unused when the basis
  // is the identity) and the label noise xi (B).
  void give(const T* Z, const T* Xi, const T* xi, const Config& c, StepBuffers<T>& s) {
    const int n = c.n, k = basis_.k(), B = c.batch;
    for (int b = 0; b < B; ++b)
      std::copy(Z + std::size_t(b) * k, Z + std::size_t(b + 1) * k, s.M.data() + std::size_t(b) * s.ldm + n);
    if (!basis_.identity()) std::copy(Xi, Xi + Xi_.size(), Xi_.begin());
    s.xi.assign(xi, xi + B);
    s.given = true;
  }

  StepResult step(const Network<T>& net, StepBuffers<T>& s) {
    const int d = net.cfg.d, n = net.cfg.n, B = net.cfg.batch, th = net.cfg.threads, k = basis_.k();
    const bool identity = basis_.identity();
    // 1. the basis of span [W; theta]: Q^T (k x d) and R (k x (n + 1)), V = Q R
    basis_.compute(net.W, th);
    // 2. forward over fixed row blocks: draw Z rows (into the M buffer, after M), P = Z R, the
    //    shared activation pass
    const int fb = net.row_blocks;
    s.ensure_row_blocks(fb, n);
    if (!identity && part_.size() < std::size_t(fb) * n * (n + k)) part_.resize(std::size_t(fb) * n * (n + k));
    s.reset_noise(B);
#pragma omp parallel num_threads(th)
    {
      int k0, k1;
      blocks::thread_blocks(fb, k0, k1);
      for (int kb = k0; kb < k1; ++kb) {
        int b0, b1;
        blocks::of(B, fb, kb, b0, b1);
        forward_block(net, s, b0, b1, kb);
      }
    }
    const bool given = s.given;
    s.given = false;
    const double loss = batch_loss(s, B);
    const int nb = net.neuron_blocks, ldm = s.ldm;
    T* MZ = s.M.data();
    bool finite = true;
    if (identity) {
      // Q = I: G = M^T Z, as the direct step's M^T X
#pragma omp parallel num_threads(th) reduction(&& : finite)
      {
        int k0, k1, i0, i1;
        blocks::thread_blocks(nb, k0, k1);
        blocks::thread_items(n, nb, i0, i1);
        grad_a(s, fb, n, B, i0, i1);
        for (int c = k0; c < k1; ++c) {
          int j0, j1;
          blocks::of(n, nb, c, j0, j1);
          if (j1 > j0)
            blas::gemm(blas::Trans, blas::NoTrans, j1 - j0, d, B, T(1), MZ + j0, ldm, MZ + n, ldm, T(0),
                       s.G.data() + std::size_t(j0) * d, d);
        }
        finite = update_rows(net, s, i0, i1);
      }
      return {loss, finite};
    }
    // 3. over fixed neuron blocks: M^T M (double, both triangles) and M^T Z from the row blocks'
    //    partial products (summed in block order: independent of the threads), grad a, and the
    //    rows of Xi (keyed by neuron)
    const std::size_t part = std::size_t(n) * (n + k);
    // (a team only where there is work for it: see basis.hpp)
    const bool team = double(fb) * part + 8.0 * n * d > 2e6;
#pragma omp parallel num_threads(th) if (team)
    {
      int i0, i1;
      blocks::thread_items(n, nb, i0, i1);
      grad_a(s, fb, n, B, i0, i1);
      for (int i = i0; i < i1; ++i) {
        double* srow = S_.data() + std::size_t(i) * n;
        double* crow = Cd_.data() + std::size_t(i) * k;
        std::fill(srow + i, srow + n, 0.0);
        std::fill(crow, crow + k, 0.0);
        for (int kb = 0; kb < fb; ++kb) {
          const T* prow = part_.data() + std::size_t(kb) * part + std::size_t(i) * (n + k);
          for (int j = i; j < n; ++j) srow[j] += double(prow[j]);
          for (int j = 0; j < k; ++j) crow[j] += double(prow[n + j]);
        }
        for (int j = i + 1; j < n; ++j) S_[std::size_t(j) * n + i] = srow[j];
        T* c = C_.data() + std::size_t(i) * k;
        for (int j = 0; j < k; ++j) c[j] = T(crow[j]);
      }
      if (!given)
        for (int i = i0; i < i1; ++i) {
          T* row = Xi_.data() + std::size_t(i) * d;
          if (sizeof(T) == 8)
            rng::normal_row(net.cfg.seed, rng::ProjectedRemainder, net.step, std::uint64_t(i), row, d, true);
          else
            rng::ziggurat_row(net.cfg.seed, rng::ProjectedRemainder, net.step, std::uint64_t(i), row, d);
        }
    }
    // 4. L L^T = M^T M (double; serial, n^3 / 3 flops)
    triangular_L_ = psd_factor(S_, n, L_);
    std::transform(L_.begin(), L_.end(), LT_.begin(), [](double v) { return T(v); });
    // 5. over fixed neuron blocks: Y = L Xi (into G), C = M^T Z - Y Q (in place), G = Y + C Q^T, the update
    const T* Qt = basis_.Qt();
    const bool tri = triangular_L_;
#pragma omp parallel num_threads(th) reduction(&& : finite)
    {
      int k0, k1, i0, i1;
      blocks::thread_blocks(nb, k0, k1);
      blocks::thread_items(n, nb, i0, i1);
      for (int c = k0; c < k1; ++c) {
        int j0, j1;
        blocks::of(n, nb, c, j0, j1);
        if (j1 <= j0) continue;
        const int m = j1 - j0, K = tri ? j1 : n;  // rows j0..j1-1 of a lower triangular L end at column j1
        T* Y = s.G.data() + std::size_t(j0) * d;
        T* Cb = C_.data() + std::size_t(j0) * k;
        blas::gemm(blas::NoTrans, blas::NoTrans, m, d, K, T(1), LT_.data() + std::size_t(j0) * n, n, Xi_.data(), d,
                   T(0), Y, d);
        blas::gemm(blas::NoTrans, blas::Trans, m, k, d, T(-1), Y, d, Qt, d, T(1), Cb, k);
        blas::gemm(blas::NoTrans, blas::NoTrans, m, d, k, T(1), Cb, k, Qt, d, T(1), Y, d);
      }
      finite = update_rows(net, s, i0, i1);
    }
    return {loss, finite};
  }

 private:
  // Rows [b0, b1) of row block `kb`: Z rows (unless given) and label noise, P = Z R, activation.
  void forward_block(const Network<T>& net, StepBuffers<T>& s, int b0, int b1, int kb) {
    const int d = net.cfg.d, n = net.cfg.n, k = basis_.k(), ldm = s.ldm, ldp = n + 1;
    T* Z = s.M.data() + n;  // Z_b at columns n .. n + k - 1 of row b
    if (!s.given)
      for (int b = b0; b < b1; ++b) {
        T* row = Z + std::size_t(b) * ldm;
        if (sizeof(T) == 8)
          rng::normal_row(net.cfg.seed, rng::ProjectedBatch, net.step, std::uint64_t(b), row, k, true);
        else
          rng::ziggurat_row(net.cfg.seed, rng::ProjectedBatch, net.step, std::uint64_t(b), row, k);
        draw_label_noise(net, b, s.xi.data());
      }
    if (b1 > b0) {
      const int rows = b1 - b0;
      T* P = s.P.data() + std::size_t(b0) * ldp;
      const T* Zb = Z + std::size_t(b0) * ldm;
      if (basis_.identity()) {  // R = V: P = Z [W; theta]^T
        blas::gemm(blas::NoTrans, blas::Trans, rows, ldp, d, T(1), Zb, ldm, net.W, d, T(0), P, ldp);
      } else if (forward_gemm_) {
        blas::gemm(blas::NoTrans, blas::NoTrans, rows, ldp, k, T(1), Zb, ldm, basis_.R(), ldp, T(0), P, ldp);
      } else {  // R upper triangular (k = n + 1): P = Z, then P <- P R in place
        for (int b = 0; b < rows; ++b)
          std::copy(Zb + std::size_t(b) * ldm, Zb + std::size_t(b) * ldm + k, P + std::size_t(b) * ldp);
        blas::trmm(blas::Right, blas::Upper, blas::NoTrans, rows, ldp, T(1), basis_.R(), ldp, P, ldp);
      }
    }
    activate_rows(net, s, b0, b1, kb);
    if (basis_.identity()) return;
    // this row block's part of [M^T M (upper triangle) | M^T Z], from the cache-hot rows: the
    // whole [M | Z] is read once a step (one product over all rows per neuron block packed it
    // once per block, and took a third of the step at (B, d, n) = (32768, 4096, 256))
    T* out = part_.data() + std::size_t(kb) * n * (n + k);
    if (b1 <= b0) {
      std::fill(out, out + std::size_t(n) * (n + k), T(0));
      return;
    }
    const T* Mb = s.M.data() + std::size_t(b0) * ldm;
    blas::syrk(blas::Upper, blas::Trans, n, b1 - b0, T(1), Mb, ldm, T(0), out, n + k);
    blas::gemm(blas::Trans, blas::NoTrans, n, k, b1 - b0, T(1), Mb, ldm, Mb + n, ldm, T(0), out + n, n + k);
  }

  SpanBasis<T> basis_;
  std::vector<T> Xi_;  // n x d: the remainder's standard normals
  std::vector<T> part_;  // per row block, n x (n + k): [M^T M (upper triangle) | M^T Z] of its rows
  std::vector<T> C_;     // n x k: M^T Z, then M^T Z - Y Q
  std::vector<T> LT_;    // n x n: L in T
  std::vector<double> S_, L_, Cd_;  // M^T M (n x n), its factor, M^T Z summed (n x k)
  bool triangular_L_ = true, forward_gemm_ = false;
};

}  // namespace fastslow::sgd
