// What both samplers of an SGD step share (the theory page section 1): the network a step reads and
// updates, the buffers of the forward pass and of the gradient, and the passes that do not depend
// on how the batch was sampled:
//   - the fused activation pass over rows of P = [X W^T | X theta]: sigma, sigma', the output, the
//     residual r_b = f(x_b) - y_b, M_bi = r_b a_i sigma'(p_bi) / B and the grad-a sums;
//   - the label noise of a batch row, keyed by (seed, step, row);
//   - grad a from the row blocks' sums, the batch loss;
//   - the update of a block of neurons: w_i <- normalise(w_i - lr_w dt g_i), a_i <- a_i - lr_a dt ga_i.
// Every sum has a fixed order (blocks.hpp), so results do not depend on the number of threads.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "config.hpp"
#include "functions.hpp"
#include "philox.hpp"

namespace fastslow::sgd {

// The network a step updates, and the step being taken.
template <class T>
struct Network {
  const Config& cfg;
  const Function& act;
  const Function& tgt;
  T* W;                 // (n + 1) x d, row-major: the rows w_i, then theta (row n)
  T* a;                 // n
  std::uint64_t step;   // the step being taken: it keys the random streams
  int row_blocks;       // the step's blocks of batch rows and of neurons (blocks.hpp)
  int neuron_blocks;
};

// What a step returns: the batch loss and whether every updated weight is finite.
struct StepResult {
  double batch_loss;
  bool finite;
};

// Buffers of a step that both samplers fill the same way.
template <class T>
struct StepBuffers {
  std::vector<T> P;              // B x (n + 1): [X W^T | X theta]
  std::vector<T> M;              // B x ldm: M_bi = r_b a_i sigma'(p_bi) / B in columns 0..n-1
  int ldm = 0;                   // (the projected sampler keeps its Z in the columns after M)
  std::vector<T> G;              // n x d: the gradient of the first layer, mean over the batch
  std::vector<T> xi;             // B: label noise
  std::vector<double> r;         // B: residuals f(x_b) - y_b
  std::vector<T> ga;             // n: grad a
  std::vector<double> ga_part;   // per row block: sum_b r_b sigma(p_bi)
  bool given = false;            // the next step's draws were given (tests)

  void allocate(const Config& c, int ld_m, int row_blocks) {
    const std::size_t d = c.d, n = c.n, B = c.batch;
    ldm = ld_m;
    P.assign(B * (n + 1), T(0));
    M.assign(B * std::size_t(ld_m), T(0));
    G.assign(n * d, T(0));
    xi.assign(B, T(0));
    r.assign(B, 0.0);
    ga.assign(n, T(0));
    ga_part.assign(std::size_t(row_blocks) * n, 0.0);
  }
  void ensure_row_blocks(int fb, int n) {
    if (ga_part.size() < std::size_t(fb) * n) ga_part.resize(std::size_t(fb) * n);
  }
  // Before a step's draws: no label noise yet (drawn row by row inside the forward pass).
  void reset_noise(int B) {
    if (!given) xi.assign(std::size_t(B), T(0));
  }
};

// The label noise of batch row b (when the model has any), keyed by (seed, step, row) on its own
// stream, the same for both samplers: float64 Box-Muller on 53-bit uniforms, float32 on 32-bit ones.
template <class T>
inline void draw_label_noise(const Network<T>& net, int b, T* xi) {
  if (net.cfg.noise > 0.0)
    rng::normal_row(net.cfg.seed, rng::Noise, net.step, std::uint64_t(b), xi + b, 1, sizeof(T) == 8);
}

// Rows [b0, b1) of row block `k`, with P filled: the fused activation pass, the residuals, M and
// this block's part of sum_b r_b sigma(p_bi) (for grad a, in double, rows in order: the blocks are
// fixed, so the sum is the same for any threads). P's rows hold sigma(p) afterwards.
template <class T>
void activate_rows(const Network<T>& net, StepBuffers<T>& s, int b0, int b1, int k) {
  const int n = net.cfg.n, ldp = n + 1;
  const T* a = net.a;
  const double sqrt_noise = std::sqrt(net.cfg.noise), inv_n = 1.0 / n, inv_B = 1.0 / net.cfg.batch;
  double* acc = s.ga_part.data() + std::size_t(k) * n;
  std::fill(acc, acc + n, 0.0);
  for (int b = b0; b < b1; ++b) {
    T* p = s.P.data() + std::size_t(b) * ldp;
    const double zb = double(p[n]);
    T* q = s.M.data() + std::size_t(b) * s.ldm;
    net.act.eval_row(p, q, n);
    // f = (1/n) sum_i a_i sigma_i: four partial sums in double (a fixed order, vectorisable)
    double f0 = 0.0, f1 = 0.0, f2 = 0.0, f3 = 0.0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
      f0 += double(a[i]) * double(p[i]);
      f1 += double(a[i + 1]) * double(p[i + 1]);
      f2 += double(a[i + 2]) * double(p[i + 2]);
      f3 += double(a[i + 3]) * double(p[i + 3]);
    }
    for (; i < n; ++i) f0 += double(a[i]) * double(p[i]);
    const double f = ((f0 + f1) + (f2 + f3)) * inv_n;
    const double y = net.tgt.value(zb) + sqrt_noise * double(s.xi[b]);
    const double r = f - y;
    s.r[b] = r;
    // M_bi = r_b a_i sigma'(p_bi) / B, in place of sigma'; and the grad-a sums r_b sigma(p_bi)
    const T rB = T(r * inv_B);
    for (int i = 0; i < n; ++i) {
      acc[i] += r * double(p[i]);
      q[i] = rB * a[i] * q[i];
    }
  }
}

// mean_b r_b^2 / 2, summed in row order (independent of threads).
template <class T>
double batch_loss(const StepBuffers<T>& s, int B) {
  double loss = 0.0;
  for (int b = 0; b < B; ++b) loss += 0.5 * s.r[b] * s.r[b];
  return loss * (1.0 / B);  // (as a product: the same rounding as before the samplers split)
}

// grad a_i = mean_b r_b sigma(p_bi) for neurons [i0, i1), from the fb row blocks' sums in block order.
template <class T>
void grad_a(StepBuffers<T>& s, int fb, int n, int B, int i0, int i1) {
  const double inv_B = 1.0 / B;
  for (int i = i0; i < i1; ++i) {
    double acc = 0.0;
    for (int k = 0; k < fb; ++k) acc += s.ga_part[std::size_t(k) * n + i];
    s.ga[i] = T(acc * inv_B);
  }
}

// The update of neurons [i0, i1) from G and grad a, with the row renormalisation; false if a
// weight is not finite (or a row vanished).
template <class T>
bool update_rows(const Network<T>& net, const StepBuffers<T>& s, int i0, int i1) {
  const int d = net.cfg.d;
  const double sw = net.cfg.lr_w * net.cfg.dt, sa = net.cfg.lr_a * net.cfg.dt;
  bool finite = true;
  for (int i = i0; i < i1; ++i) {
    T* w = net.W + std::size_t(i) * d;
    const T* g = s.G.data() + std::size_t(i) * d;
    double nrm = 0.0;
    for (int j = 0; j < d; ++j) {
      const double wj = double(w[j]) - sw * double(g[j]);
      w[j] = T(wj);
      nrm += wj * wj;
    }
    const double inv = 1.0 / std::sqrt(nrm);
    for (int j = 0; j < d; ++j) w[j] = T(double(w[j]) * inv);
    net.a[i] = T(double(net.a[i]) - sa * double(s.ga[i]));
    finite = finite && std::isfinite(nrm) && nrm > 0.0 && std::isfinite(double(net.a[i]));
  }
  return finite;
}

}  // namespace fastslow::sgd
