// The finite two-layer network trained by large-batch online SGD (theory page section 1):
//   f(x) = (1/n) sum_i a_i sigma(w_i . x),  |w_i| = 1,  y = g(theta . x) + sqrt(noise) xi,
//   a_i <- a_i - lr_a dt mean_b[ r_b sigma(w_i . x_b) ],
//   w_i <- normalise( w_i - lr_w dt mean_b[ r_b a_i sigma'(w_i . x_b) x_b ] ),  r_b = f(x_b) - y_b.
// One step: a fresh Gaussian batch X (B x d) from counter-based streams keyed by (seed, step,
// row); P = X W^T and G = M^T X as BLAS GEMMs; the activation, its derivative and the residual
// in one fused pass over P; updates and row renormalisation. Every reduction has a fixed order,
// so results do not depend on the number of threads.
#pragma once
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../blas.hpp"
#include "../memory.hpp"
#include "../parallel.hpp"
#include "functions.hpp"
#include "philox.hpp"
#include "ziggurat.hpp"

namespace fastslow::sgd {

// The initial law of the neurons (python/fastslow/initial.py): the second layer constant (a_i = a0),
// normal (a_i = a0 + a_sigma xi_i) or of two signs (+a0 for the first round(a_positive n) neurons,
// -a0 for the others); the first layer at the fixed alignment m0 or uniform on the sphere.
enum SecondLayer : int { AConstant = 0, ANormal = 1, ASigns = 2 };
enum FirstLayer : int { MFixed = 0, MSphere = 1 };

struct Config {
  int d = 0, n = 0, batch = 0;
  double dt = 0.0, lr_w = 0.0, lr_a = 0.0, noise = 0.0;
  std::uint64_t seed = 0;
  double a0 = 0.0, m0 = 0.0;
  int threads = 1;
  int a_dist = AConstant, m_dist = MFixed;
  double a_sigma = 0.0, a_positive = 0.5;
};

struct OrderParameters {
  double m_mean, m_std, a_mean, a_std;
};

// What Q = W W^T tells about the network as a whole: its exact population loss, and the collective
// overlap q_perp = mean over i != j of u_i . u_j of the neurons' unit parts orthogonal to the
// teacher, u_i = (w_i - m_i theta) / sqrt(1 - m_i^2) (pairs with a neuron at a pole left out).
struct PopulationStats {
  double loss, q_perp;
};

class DivergenceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class T>
class Trainer {
 public:
  Trainer(const Config& cfg, Function activation, Function target) : cfg_(cfg), act_(std::move(activation)), tgt_(std::move(target)) {
    auto positive_int = [](int v, const char* f) {
      if (v <= 0) throw std::invalid_argument(std::string(f) + ": must be a positive integer, got " + std::to_string(v));
    };
    positive_int(cfg.d, "d");
    positive_int(cfg.n, "n");
    positive_int(cfg.batch, "batch");
    positive_int(cfg.threads, "threads");
    if (cfg.threads > std::max(1, omp_get_num_procs()))
      throw std::invalid_argument("threads: must be from 1 to the " + std::to_string(std::max(1, omp_get_num_procs())) +
                                  " processors, got " + std::to_string(cfg.threads));
    check_memory(cfg);
    auto positive = [](double v, const char* f) {
      if (!(std::isfinite(v) && v > 0.0)) throw std::invalid_argument(std::string(f) + ": must be finite and > 0, got " + std::to_string(v));
    };
    positive(cfg.dt, "dt");
    positive(cfg.lr_w, "lr_w");
    positive(cfg.lr_a, "lr_a");
    if (!(std::isfinite(cfg.noise) && cfg.noise >= 0.0)) throw std::invalid_argument("noise: must be finite and >= 0");
    if (!std::isfinite(cfg.a0)) throw std::invalid_argument("a0: must be finite");
    if (!(std::isfinite(cfg.m0) && std::abs(cfg.m0) <= 1.0)) throw std::invalid_argument("m0: must be in [-1, 1]");
    if (cfg.a_dist < AConstant || cfg.a_dist > ASigns) throw std::invalid_argument("a_dist: unknown law");
    if (cfg.m_dist < MFixed || cfg.m_dist > MSphere) throw std::invalid_argument("m_dist: unknown law");
    if (!(std::isfinite(cfg.a_sigma) && cfg.a_sigma >= 0.0)) throw std::invalid_argument("a_sigma: must be finite and >= 0");
    if (!(cfg.a_positive >= 0.0 && cfg.a_positive <= 1.0)) throw std::invalid_argument("a_positive: must be in [0, 1]");
    if (cfg.d < 2) throw std::invalid_argument("d: must be >= 2 (a teacher direction and its complement)");
    const std::size_t d = cfg.d, n = cfg.n, B = cfg.batch;
    W_.assign((n + 1) * d, T(0));  // the teacher direction is stored as row n: z = X theta comes with P
    a_.assign(n, T(cfg.a0));
    X_.assign(B * d, T(0));
    P_.assign(B * (n + 1), T(0));
    D_.assign(B * n, T(0));
    G_.assign(n * d, T(0));
    r_.assign(B, 0.0);
    ga_.assign(n, T(0));
    ga_part_.assign(std::size_t(step_blocks(cfg.batch, kRowGrain, kRowMin, 0)) * n, 0.0);
    initialise();
  }

  const Config& config() const { return cfg_; }
  std::uint64_t step_count() const { return step_; }
  double last_batch_loss() const { return batch_loss_; }
  T* W() { return W_.data(); }
  T* a() { return a_.data(); }
  T* theta() { return W_.data() + std::size_t(cfg_.n) * cfg_.d; }
  const T* theta() const { return W_.data() + std::size_t(cfg_.n) * cfg_.d; }
  void set_step_count(std::uint64_t s) { step_ = s; }
  // For benchmarks: exactly `rows` row blocks and `neurons` neuron blocks (clamped to the sizes;
  // 0 = the default rule of step_blocks). Results change with them, never with the threads.
  void set_blocks(int rows, int neurons) {
    if (rows < 0 || neurons < 0) throw std::invalid_argument("blocks: must be >= 0");
    row_blocks_ = rows;
    neuron_blocks_ = neurons;
  }
  // The number of row and neuron blocks a step uses (one BLAS call each).
  std::pair<int, int> blocks() const {
    return {step_blocks(cfg_.batch, kRowGrain, kRowMin, row_blocks_),
            step_blocks(cfg_.n, kNeuronGrain, kNeuronMin, neuron_blocks_)};
  }

  // Run k steps; `interrupted` (may be empty) is polled between steps and stops the run early.
  // Returns the number of steps done.
  long run(long k, const std::function<bool()>& interrupted = {}) {
    blas::ensure_single_threaded();  // OpenMP threads call single-threaded BLAS on their blocks
    for (long i = 0; i < k; ++i) {
      if (interrupted && interrupted()) return i;
      draw_batch();
      update();
    }
    return k;
  }

  // One step on a given batch X (B x d, row-major) and label noise xi (B): for tests.
  void step_with_batch(const T* X, const T* xi) {
    blas::ensure_single_threaded();
    std::copy(X, X + X_.size(), X_.begin());
    xi_.assign(xi, xi + cfg_.batch);
    have_batch_ = true;
    update();
  }

  OrderParameters order_parameters() const {
    const std::size_t n = cfg_.n;
    const std::vector<double> ms = alignments();
    double sm = 0, sm2 = 0, sa = 0, sa2 = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double m = ms[i];
      sm += m;
      sm2 += m * m;
      sa += double(a_[i]);
      sa2 += double(a_[i]) * double(a_[i]);
    }
    const double mm = sm / n, am = sa / n;
    return {mm, std::sqrt(std::max(0.0, sm2 / n - mm * mm)), am, std::sqrt(std::max(0.0, sa2 / n - am * am))};
  }

  // Alignments m_i = w_i . theta.
  std::vector<double> alignments() const {
    const std::size_t d = cfg_.d, n = cfg_.n;
    std::vector<double> m(n, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < d; ++j) m[i] += double(W_[i * d + j]) * double(theta()[j]);
    return m;
  }

  // Exact population loss of the finite network from Q = W W^T (in double, blocked GEMMs) and
  // Mehler's formula E[sigma(u_i) sigma(u_j)] = sum_k s_k^2 rho_ij^k (rows have unit norm, so
  // the diagonal is E[sigma^2] = second_moment). s, c: Hermite coefficients of activation and
  // target; target_tail: E[g^2] - sum c_k^2.
  double population_loss(const std::vector<double>& s, const std::vector<double>& c, double second_moment,
                         double target_tail) const {
    return population_stats(s, c, second_moment, target_tail).loss;
  }

  PopulationStats population_stats(const std::vector<double>& s, const std::vector<double>& c, double second_moment,
                                   double target_tail) const {
    const int d = cfg_.d, n = cfg_.n;
    std::vector<double> Wd(W_.begin(), W_.begin() + std::size_t(n) * d), Q(std::size_t(n) * n, 0.0);
    {
      // the upper triangle by fixed row blocks, Q[i0:i1, i0:] = W[i0:i1] W[i0:]^T, one
      // single-threaded GEMM per block: the same calls (and roundings) for any thread count
      blas::ensure_single_threaded();
      const int qb = fixed_blocks(n, 64, 32);
#pragma omp parallel for schedule(dynamic, 1) num_threads(cfg_.threads)
      for (int k = 0; k < qb; ++k) {
        int i0, i1;
        block_of(n, qb, k, i0, i1);
        if (i1 > i0)
          blas::gemm(blas::NoTrans, blas::Trans, i1 - i0, n - i0, d, 1.0, Wd.data() + std::size_t(i0) * d, d,
                     Wd.data() + std::size_t(i0) * d, d, 0.0, Q.data() + std::size_t(i0) * n + i0, n);
      }
    }
    std::vector<double> s2(s.size());
    for (std::size_t k = 0; k < s.size(); ++k) s2[k] = s[k] * s[k];
    auto kernel = [&](double rho) {
      double acc = 0.0;
      for (std::size_t k = s2.size(); k-- > 0;) acc = acc * rho + s2[k];
      return acc;
    };
    const std::vector<double> m = alignments();
    std::vector<double> self_row(static_cast<std::size_t>(n)), cross_row(static_cast<std::size_t>(n));
    std::vector<double> overlap_row(static_cast<std::size_t>(n)), pairs_row(static_cast<std::size_t>(n));
    std::vector<double> perp(static_cast<std::size_t>(n));  // sqrt(1 - m_i^2), 0 at a pole
    for (int i = 0; i < n; ++i) perp[std::size_t(i)] = std::sqrt(std::max(0.0, 1.0 - m[i] * m[i]));
#pragma omp parallel for schedule(static) num_threads(cfg_.threads)
    for (int i = 0; i < n; ++i) {
      const double ai = a_[i];
      double row = ai * second_moment;  // diagonal
      double ov = 0.0, np_ = 0.0;
      const double pi = perp[std::size_t(i)];
      for (int j = i + 1; j < n; ++j) {
        const double q = Q[std::size_t(i) * n + j];
        row += 2.0 * double(a_[j]) * kernel(q);
        const double pp = pi * perp[std::size_t(j)];
        if (pp > 1e-150) {
          ov += (q - m[i] * m[j]) / pp;
          np_ += 1.0;
        }
      }
      self_row[std::size_t(i)] = ai * row;
      overlap_row[std::size_t(i)] = ov;
      pairs_row[std::size_t(i)] = np_;
      double bi = 0.0, mk = 1.0;
      for (std::size_t k = 0; k < std::min(s.size(), c.size()); ++k, mk *= m[i]) bi += s[k] * c[k] * mk;
      cross_row[std::size_t(i)] = ai * bi;
    }
    double self = 0.0, cross = 0.0, overlap = 0.0, pairs = 0.0;  // summed in order: any thread count
    for (int i = 0; i < n; ++i) {
      self += self_row[std::size_t(i)];
      cross += cross_row[std::size_t(i)];
      overlap += overlap_row[std::size_t(i)];
      pairs += pairs_row[std::size_t(i)];
    }
    double c2 = target_tail;
    for (double ck : c) c2 += ck * ck;
    const double nn = double(n);
    const double loss = 0.5 * (self / (nn * nn) - 2.0 * cross / nn + c2) + 0.5 * cfg_.noise;
    return {loss, pairs > 0 ? overlap / pairs : std::numeric_limits<double>::quiet_NaN()};
  }

 private:
  void initialise() {
    const std::size_t d = cfg_.d, n = cfg_.n;
    std::vector<double> th(d);
    rng::normal_row(cfg_.seed, rng::Teacher, 0, 0, th.data(), d, true);
    double nrm = 0;
    for (double v : th) nrm += v * v;
    nrm = std::sqrt(nrm);
    for (std::size_t j = 0; j < d; ++j) th[j] /= nrm;
    for (std::size_t j = 0; j < d; ++j) theta()[j] = T(th[j]);
    // the second layer: a_i from the row i of the InitWeights stream at "step" 1 (step 0 draws the
    // first layer), or the two signs by index
    if (cfg_.a_dist == ANormal) {
      for (std::size_t i = 0; i < n; ++i) {
        double xi;
        rng::normal_row(cfg_.seed, rng::InitWeights, 1, std::uint64_t(i), &xi, 1, true);
        a_[i] = T(cfg_.a0 + cfg_.a_sigma * xi);
      }
    } else if (cfg_.a_dist == ASigns) {
      const std::size_t plus = std::size_t(std::llround(cfg_.a_positive * double(n)));
      for (std::size_t i = 0; i < n; ++i) a_[i] = T(i < plus ? cfg_.a0 : -cfg_.a0);
    }
    const bool sphere = cfg_.m_dist == MSphere;
    const double m0 = cfg_.m0, c0 = std::sqrt(std::max(0.0, 1.0 - m0 * m0));
    ExceptionGuard guard;  // the rows' buffers are allocated inside the region
#pragma omp parallel for schedule(static) num_threads(cfg_.threads)
    for (long long i = 0; i < (long long)n; ++i) {
      if (guard.failed()) continue;
      guard.run([&] {
        std::vector<double> u(d), w(d);
        rng::normal_row(cfg_.seed, rng::InitWeights, 0, std::uint64_t(i), u.data(), d, true);
        if (sphere) {  // w_i = u_i / |u_i|: uniform on the sphere
          double nu = 0;
          for (std::size_t j = 0; j < d; ++j) nu += u[j] * u[j];
          nu = std::sqrt(nu);
          for (std::size_t j = 0; j < d; ++j) W_[std::size_t(i) * d + j] = T(u[j] / nu);
          return;
        }
        double proj = 0;
        for (std::size_t j = 0; j < d; ++j) proj += u[j] * th[j];
        double nu = 0;
        for (std::size_t j = 0; j < d; ++j) {
          u[j] -= proj * th[j];
          nu += u[j] * u[j];
        }
        nu = std::sqrt(nu);
        double nw = 0;
        for (std::size_t j = 0; j < d; ++j) {
          w[j] = m0 * th[j] + c0 * u[j] / nu;
          nw += w[j] * w[j];
        }
        nw = std::sqrt(nw);
        for (std::size_t j = 0; j < d; ++j) W_[std::size_t(i) * d + j] = T(w[j] / nw);
      });
    }
    guard.rethrow();
  }

  void draw_batch() {
    xi_.assign(cfg_.batch, T(0));
    have_batch_ = false;  // drawn block by block inside update(), where it is used
  }

  // Rows [b0, b1) of the batch, row block `k`: draw (unless given), P = X W^T, the fused
  // activation pass, the residuals, M and this block's part of sum_b r_b sigma(p_bi) (for grad a,
  // in double, rows in order: the blocks are fixed, so the sum is the same for any threads).
  void forward_block(int b0, int b1, int k) {
    const int d = cfg_.d, n = cfg_.n;
    const bool precise = sizeof(T) == 8;
    const bool noisy = cfg_.noise > 0.0;
    if (!have_batch_) {
      for (int b = b0; b < b1; ++b) {
        // float64: Box-Muller on 53-bit uniforms; float32: the Ziggurat on 32-bit words.
        if (precise)
          rng::normal_row(cfg_.seed, rng::Data, step_, std::uint64_t(b), X_.data() + std::size_t(b) * d, d, true);
        else
          rng::ziggurat_row(cfg_.seed, rng::Data, step_, std::uint64_t(b), X_.data() + std::size_t(b) * d, d);
        if (noisy) rng::normal_row(cfg_.seed, rng::Noise, step_, std::uint64_t(b), xi_.data() + b, 1, precise);
      }
    }
    const int ldp = n + 1;  // [P | z]: X times [W; theta]^T
    if (b1 > b0)
      blas::gemm(blas::NoTrans, blas::Trans, b1 - b0, ldp, d, T(1), X_.data() + std::size_t(b0) * d, d, W_.data(), d,
                 T(0), P_.data() + std::size_t(b0) * ldp, ldp);
    const double sqrt_noise = std::sqrt(cfg_.noise), inv_n = 1.0 / n, inv_B = 1.0 / cfg_.batch;
    double* acc = ga_part_.data() + std::size_t(k) * n;
    std::fill(acc, acc + n, 0.0);
    for (int b = b0; b < b1; ++b) {
      T* p = P_.data() + std::size_t(b) * ldp;
      const double zb = double(p[n]);
      T* q = D_.data() + std::size_t(b) * n;
      act_.eval_row(p, q, n);
      // f = (1/n) sum_i a_i sigma_i: four partial sums in double (a fixed order, vectorisable)
      double f0 = 0.0, f1 = 0.0, f2 = 0.0, f3 = 0.0;
      int i = 0;
      for (; i + 4 <= n; i += 4) {
        f0 += double(a_[i]) * double(p[i]);
        f1 += double(a_[i + 1]) * double(p[i + 1]);
        f2 += double(a_[i + 2]) * double(p[i + 2]);
        f3 += double(a_[i + 3]) * double(p[i + 3]);
      }
      for (; i < n; ++i) f0 += double(a_[i]) * double(p[i]);
      const double f = ((f0 + f1) + (f2 + f3)) * inv_n;
      const double y = tgt_.value(zb) + sqrt_noise * double(xi_[b]);
      const double r = f - y;
      r_[b] = r;
      // M_bi = r_b a_i sigma'(p_bi) / B, in place of sigma'; and the grad-a sums r_b sigma(p_bi)
      const T rB = T(r * inv_B);
      for (int i = 0; i < n; ++i) {
        acc[i] += r * double(p[i]);
        q[i] = rB * a_[i] * q[i];
      }
    }
  }

  // Refuse sizes whose buffers would not fit in the available memory (see memory.hpp), before
  // allocating anything: a clear error instead of std::bad_alloc or the OOM killer.
  static void check_memory(const Config& c) {
    const double item = sizeof(T), d = c.d, n = c.n, B = c.batch;
    const double rb = step_blocks(c.batch, kRowGrain, kRowMin, 0);
    const double need = item * (B * d + B * (n + 1) + B * n + n * d + (n + 1) * d + 4 * n + 2 * B) +
                        8.0 * (n * n + n * d + B + rb * n);  // + Q and W in double (population loss)
    const double avail = available_memory();
    if (avail > 0 && need > 0.8 * avail)
      throw std::invalid_argument("d, n, batch: the simulator needs about " + std::to_string(need / 1073741824.0) +
                                  " GiB, more than 80 % of the " + std::to_string(avail / 1073741824.0) +
                                  " GiB available; reduce d, n or batch");
  }

  // Blocks of at least `grain` items, at most `max_blocks` of them: a function of the size only.
  static int fixed_blocks(int total, int grain, int max_blocks) {
    return std::max(1, std::min(max_blocks, total / grain));
  }

  // The BLAS blocks of a step, a function of the sizes only (never of the thread count: see
  // update()). Each call packs its whole second operand (W forward, X backward), so a block
  // should be large: the packing costs about 1/(2 size) of the call's flops in memory traffic.
  // Measured at (B, d, n) = (4096, 1024, 1024), 2 threads, medians of 30 interleaved steps: 16
  // row and 8 neuron blocks took 153 ms a step, 4 and 4 took 144 ms. So: blocks of `grain`
  // items, but at least 4 of them (small and medium sizes still spread over 4 threads) as long
  // as each keeps `min_size` items, and at most 16. `fixed` > 0 (set_blocks) overrides the rule.
  static int step_blocks(int total, int grain, int min_size, int fixed) {
    int k = std::max(total / grain, 4);
    k = std::min(k, total / min_size);
    if (fixed > 0) k = fixed;
    return std::max(1, std::min({k, total, kMaxBlocks}));
  }
  static constexpr int kRowGrain = 1024, kRowMin = 64, kNeuronGrain = 256, kNeuronMin = 32, kMaxBlocks = 16;
  int row_blocks_ = 0, neuron_blocks_ = 0;

  static void block_of(int total, int parts, int index, int& lo, int& hi) {
    const int base = total / parts, extra = total % parts;
    lo = index * base + std::min(index, extra);
    hi = lo + base + (index < extra ? 1 : 0);
  }

  void update() {
    const int d = cfg_.d, n = cfg_.n, B = cfg_.batch;
    const int th = cfg_.threads;
    const double inv_B = 1.0 / B;
    // (The regions below and in population_loss allocate nothing and call no code that throws: the
    // buffers are sized in the constructor. initialise() and ode::solve_batch, which allocate inside
    // their regions, run through an ExceptionGuard.)
    // Forward: each thread draws, multiplies and activates its own block of batch rows (cache-hot),
    // calling single-threaded BLAS.
    // The work is cut into blocks that depend on the sizes only, never on the thread count, and
    // each BLAS call covers one block: OpenBLAS's sgemm rounds a row differently depending on where
    // it falls in the call's M tiling, so blocks tied to the thread count made float32 runs differ
    // in the last bit between 1 and 2 threads. Threads take contiguous runs of blocks.
    const int fb = step_blocks(B, kRowGrain, kRowMin, row_blocks_);
    if (ga_part_.size() < std::size_t(fb) * n) ga_part_.resize(std::size_t(fb) * n);
#pragma omp parallel num_threads(th)
    {
      const int nth = omp_get_num_threads(), tid = omp_get_thread_num();
      int k0, k1;
      block_of(fb, nth, tid, k0, k1);
      for (int k = k0; k < k1; ++k) {
        int b0, b1;
        block_of(B, fb, k, b0, b1);
        forward_block(b0, b1, k);
      }
    }
    have_batch_ = false;
    double loss = 0.0;
    for (int b = 0; b < B; ++b) loss += 0.5 * r_[b] * r_[b];  // in order: independent of threads
    batch_loss_ = loss * inv_B;
    // Backward, split over neurons: grad_a_i = mean_b r_b sigma(p_bi) from the row blocks' sums
    // (in block order) and G = M^T X for the thread's block of neurons, then its updates.
    const double sw = cfg_.lr_w * cfg_.dt, sa = cfg_.lr_a * cfg_.dt;
    const int nb = step_blocks(n, kNeuronGrain, kNeuronMin, neuron_blocks_);
    bool finite = true;
#pragma omp parallel num_threads(th) reduction(&& : finite)
    {
      const int nth = omp_get_num_threads(), tid = omp_get_thread_num();
      int k0, k1, i0 = 0, i1 = 0, unused;
      block_of(nb, nth, tid, k0, k1);
      if (k1 > k0) {  // this thread's neurons: its blocks are contiguous
        block_of(n, nb, k0, i0, unused);
        block_of(n, nb, k1 - 1, unused, i1);
      }
      for (int i = i0; i < i1; ++i) {
        double acc = 0.0;
        for (int k = 0; k < fb; ++k) acc += ga_part_[std::size_t(k) * n + i];
        ga_[i] = T(acc * inv_B);
      }
      for (int k = k0; k < k1; ++k) {  // one call per fixed block (see above)
        int j0, j1;
        block_of(n, nb, k, j0, j1);
        if (j1 > j0)
          blas::gemm(blas::Trans, blas::NoTrans, j1 - j0, d, B, T(1), D_.data() + j0, n, X_.data(), d, T(0),
                     G_.data() + std::size_t(j0) * d, d);
      }
      for (int i = i0; i < i1; ++i) {
        T* w = W_.data() + std::size_t(i) * d;
        const T* g = G_.data() + std::size_t(i) * d;
        double nrm = 0.0;
        for (int j = 0; j < d; ++j) {
          const double wj = double(w[j]) - sw * double(g[j]);
          w[j] = T(wj);
          nrm += wj * wj;
        }
        const double inv = 1.0 / std::sqrt(nrm);
        for (int j = 0; j < d; ++j) w[j] = T(double(w[j]) * inv);
        a_[i] = T(double(a_[i]) - sa * double(ga_[i]));
        finite = finite && std::isfinite(nrm) && nrm > 0.0 && std::isfinite(double(a_[i]));
      }
    }
    ++step_;
    if (!finite || !std::isfinite(batch_loss_)) {
      const auto op = order_parameters();
      throw DivergenceError("SGD diverged at step " + std::to_string(step_) + " (t = " +
                            std::to_string(double(step_) * cfg_.dt) + "): m_mean = " + std::to_string(op.m_mean) +
                            ", a_mean = " + std::to_string(op.a_mean) + ", batch loss = " +
                            std::to_string(batch_loss_) + "; lower dt or the learning rates");
    }
  }

  Config cfg_;
  Function act_, tgt_;
  std::uint64_t step_ = 0;
  double batch_loss_ = 0.0;
  bool have_batch_ = false;
  std::vector<T> W_, a_, X_, P_, D_, G_, ga_, xi_;
  std::vector<double> r_;        // residuals f(x_b) - y_b
  std::vector<double> ga_part_;  // per row block: sum_b r_b sigma(p_bi)
};

}  // namespace fastslow::sgd
