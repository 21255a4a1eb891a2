// The direct sampler: a step draws the whole batch X (B x d standard normals, rows keyed by
// (seed, step, row)) and multiplies it twice, P = X [W; theta]^T and G = M^T X (4 B d n flops).
// The cheaper sampler where d is not much larger than n (see projected.hpp for the other).
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../blas.hpp"
#include "blocks.hpp"
#include "philox.hpp"
#include "step_parts.hpp"
#include "ziggurat.hpp"

namespace fastslow::sgd {

template <class T>
class DirectSampler {
 public:
  void allocate(const Config& c) { X_.assign(std::size_t(c.batch) * c.d, T(0)); }

  // The next step uses this batch (B x d, row-major) and label noise (B) instead of drawing them.
  void give(const T* X, const T* xi, StepBuffers<T>& s, int B) {
    std::copy(X, X + X_.size(), X_.begin());
    s.xi.assign(xi, xi + B);
    s.given = true;
  }

  StepResult step(const Network<T>& net, StepBuffers<T>& s) {
    const int d = net.cfg.d, n = net.cfg.n, B = net.cfg.batch, th = net.cfg.threads;
    // (The regions below allocate nothing and call no code that throws: the buffers are sized in
    // the constructor.)
    // Forward: each thread draws, multiplies and activates its own blocks of batch rows
    // (cache-hot), calling single-threaded BLAS on blocks fixed by the sizes (blocks.hpp).
    const int fb = net.row_blocks;
    s.ensure_row_blocks(fb, n);
    s.reset_noise(B);
#pragma omp parallel num_threads(th)
    {
      int k0, k1;
      blocks::thread_blocks(fb, k0, k1);
      for (int k = k0; k < k1; ++k) {
        int b0, b1;
        blocks::of(B, fb, k, b0, b1);
        forward_block(net, s, b0, b1, k);
      }
    }
    s.given = false;
    const double loss = batch_loss(s, B);
    // Backward, split over neurons: grad a from the row blocks' sums (in block order) and
    // G = M^T X for the thread's blocks of neurons, then their updates.
    const int nb = net.neuron_blocks;
    bool finite = true;
#pragma omp parallel num_threads(th) reduction(&& : finite)
    {
      int k0, k1, i0, i1;
      blocks::thread_blocks(nb, k0, k1);
      blocks::thread_items(n, nb, i0, i1);
      grad_a(s, fb, n, B, i0, i1);
      for (int k = k0; k < k1; ++k) {  // one call per fixed block
        int j0, j1;
        blocks::of(n, nb, k, j0, j1);
        if (j1 > j0)
          blas::gemm(blas::Trans, blas::NoTrans, j1 - j0, d, B, T(1), s.M.data() + j0, s.ldm, X_.data(), d, T(0),
                     s.G.data() + std::size_t(j0) * d, d);
      }
      finite = update_rows(net, s, i0, i1);
    }
    return {loss, finite};
  }

 private:
  // Rows [b0, b1) of the batch, row block `k`: draw (unless given), P = X W^T, then the shared
  // activation pass.
  void forward_block(const Network<T>& net, StepBuffers<T>& s, int b0, int b1, int k) {
    const int d = net.cfg.d, n = net.cfg.n;
    if (!s.given) {
      for (int b = b0; b < b1; ++b) {
        // float64: Box-Muller on 53-bit uniforms; float32: the Ziggurat on 32-bit words.
        if (sizeof(T) == 8)
          rng::normal_row(net.cfg.seed, rng::Data, net.step, std::uint64_t(b), X_.data() + std::size_t(b) * d, d,
                          true);
        else
          rng::ziggurat_row(net.cfg.seed, rng::Data, net.step, std::uint64_t(b), X_.data() + std::size_t(b) * d, d);
        draw_label_noise(net, b, s.xi.data());
      }
    }
    const int ldp = n + 1;  // [P | z]: X times [W; theta]^T
    if (b1 > b0)
      blas::gemm(blas::NoTrans, blas::Trans, b1 - b0, ldp, d, T(1), X_.data() + std::size_t(b0) * d, d, net.W, d, T(0),
                 s.P.data() + std::size_t(b0) * ldp, ldp);
    activate_rows(net, s, b0, b1, k);
  }

  std::vector<T> X_;  // B x d: the batch
};

}  // namespace fastslow::sgd
