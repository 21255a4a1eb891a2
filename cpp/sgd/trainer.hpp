// The finite two-layer network trained by large-batch online SGD (theory page section 1):
//   f(x) = (1/n) sum_i a_i sigma(w_i . x),  |w_i| = 1,  y = g(theta . x) + sqrt(noise) xi,
//   a_i <- a_i - lr_a dt mean_b[ r_b sigma(w_i . x_b) ],
//   w_i <- normalise( w_i - lr_w dt mean_b[ r_b a_i sigma'(w_i . x_b) x_b ] ),  r_b = f(x_b) - y_b.
// The trainer holds the network (state, initialisation, order parameters, the exact population
// statistics) and takes steps with one of two samplers of the fresh Gaussian batch, exact in
// distribution both: direct.hpp (draws X, B x d) and projected.hpp (draws only what the step sees of
// X: B x (n + 1) and n x d normals). Both share the activation pass, the update and the fixed BLAS
// blocks (step_parts.hpp, blocks.hpp); every random number is keyed by (seed, stream, step, row)
// and every reduction has a fixed order, so results do not depend on the number of threads.
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
#include "blocks.hpp"
#include "config.hpp"
#include "direct.hpp"
#include "functions.hpp"
#include "philox.hpp"
#include "projected.hpp"
#include "step_parts.hpp"

namespace fastslow::sgd {

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
    const std::size_t d = cfg.d, n = cfg.n;
    W_.assign((n + 1) * d, T(0));  // the teacher direction is stored as row n: z = X theta comes with P
    a_.assign(n, T(cfg.a0));
    const bool projected = cfg.sampler == Sampler::Projected;
    buf_.allocate(cfg, projected ? ProjectedSampler<T>::ld_m(cfg) : cfg.n, blocks::rows(cfg.batch, 0));
    if (projected)
      projected_.allocate(cfg);
    else
      direct_.allocate(cfg);
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
  // 0 = the default rule of blocks::step). Results change with them, never with the threads.
  void set_blocks(int rows, int neurons) {
    if (rows < 0 || neurons < 0) throw std::invalid_argument("blocks: must be >= 0");
    row_blocks_ = rows;
    neuron_blocks_ = neurons;
  }
  // The number of row and neuron blocks a step uses (one BLAS call each).
  std::pair<int, int> blocks() const {
    return {blocks::rows(cfg_.batch, row_blocks_), blocks::neurons(cfg_.n, neuron_blocks_)};
  }
  ProjectedSampler<T>& projected() { return projected_; }
  const ProjectedSampler<T>& projected() const { return projected_; }
  // The gradients of the last step: G (n x d, the first layer's, mean over the batch) and grad a.
  const std::vector<T>& last_gradient() const { return buf_.G; }
  const std::vector<T>& last_grad_a() const { return buf_.ga; }

  // Run k steps; `interrupted` (may be empty) is polled between steps and stops the run early.
  // Returns the number of steps done.
  long run(long k, const std::function<bool()>& interrupted = {}) {
    blas::ensure_single_threaded();  // OpenMP threads call single-threaded BLAS on their blocks
    for (long i = 0; i < k; ++i) {
      if (interrupted && interrupted()) return i;
      update();
    }
    return k;
  }

  // Change the step (ODE time per step) from the next step on: a step schedule dt_k (the
  // random streams are keyed by the step index, not by t, so a schedule changes no draw).
  void set_dt(double dt) {
    if (!(std::isfinite(dt) && dt > 0.0)) throw std::invalid_argument("dt: must be finite and > 0, got " + std::to_string(dt));
    cfg_.dt = dt;
  }

  // Run one step per entry of dts with that step; `interrupted` as for run(). Returns the steps done.
  long run_schedule(const std::vector<double>& dts, const std::function<bool()>& interrupted = {}) {
    for (double h : dts)
      if (!(std::isfinite(h) && h > 0.0)) throw std::invalid_argument("schedule: every step must be finite and > 0");
    blas::ensure_single_threaded();
    for (std::size_t i = 0; i < dts.size(); ++i) {
      if (interrupted && interrupted()) return long(i);
      cfg_.dt = dts[i];
      update();
    }
    return long(dts.size());
  }

  // One direct step on a given batch X (B x d, row-major) and label noise xi (B): for tests.
  void step_with_batch(const T* X, const T* xi) {
    if (cfg_.sampler != Sampler::Direct) throw std::invalid_argument("step_with_batch: the trainer's sampler is not 'direct'");
    blas::ensure_single_threaded();
    direct_.give(X, xi, buf_, cfg_.batch);
    update();
  }

  // One projected step on given draws: Z (B x k, k = min(d, n + 1)), Xi (n x d) and label noise xi
  // (B): for tests.
  void step_with_draws(const T* Z, const T* Xi, const T* xi) {
    if (cfg_.sampler != Sampler::Projected)
      throw std::invalid_argument("step_with_draws: the trainer's sampler is not 'projected'");
    blas::ensure_single_threaded();
    projected_.give(Z, Xi, xi, cfg_, buf_);
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
      const int qb = blocks::fixed(n, 64, 32);
#pragma omp parallel for schedule(dynamic, 1) num_threads(cfg_.threads)
      for (int k = 0; k < qb; ++k) {
        int i0, i1;
        blocks::of(n, qb, k, i0, i1);
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

  // Refuse sizes whose buffers would not fit in the available memory (see memory.hpp), before
  // allocating anything: a clear error instead of std::bad_alloc or the OOM killer.
  static void check_memory(const Config& c) {
    const double need = memory_need(c);
    const double avail = available_memory();
    if (avail > 0 && need > 0.8 * avail)
      throw std::invalid_argument("d, n, batch: the simulator needs about " + std::to_string(need / 1073741824.0) +
                                  " GiB, more than 80 % of the " + std::to_string(avail / 1073741824.0) +
                                  " GiB available; reduce d, n or batch");
  }

 public:
  // Bytes the trainer allocates (an upper bound; fastslow.sgd.memory_estimate is the same sum).
  static double memory_need(const Config& c) {
    const double item = sizeof(T), d = c.d, n = c.n, B = c.batch;
    const double rb = blocks::rows(c.batch, 0);
    // shared: W and theta, a, P, G, label noise, grad a; the population statistics' Q and W in double
    double need = item * ((n + 1) * d + B * (n + 1) + n * d + 4 * n + 2 * B) + 8.0 * (n * n + n * d + B + rb * n);
    if (c.sampler == Sampler::Direct) return need + item * (B * d + B * n);  // X, M
    const double k = std::min(d, n + 1);
    need += item * B * (n + k);  // [M | Z]
    if (c.d <= c.n + 1) return need;
    const double cb = blocks::columns(c.d);
    // Q^T, R, Xi, the row blocks' [M^T M | M^T Z], C, L; in double R, the Gram blocks and matrices,
    // M^T Z, V (float)
    need += item * ((n + 1) * d + k * (n + 1) + n * d + rb * n * (n + k) + n * k + n * n) +
            8.0 * (3 * k * (n + 1) + cb * k * k + 3 * n * n + n * k + (sizeof(T) == 8 ? 0.0 : (n + 1) * d));
    return need;
  }

 private:
  void update() {
    const Network<T> net{cfg_, act_, tgt_, W_.data(), a_.data(), step_, blocks::rows(cfg_.batch, row_blocks_),
                         blocks::neurons(cfg_.n, neuron_blocks_)};
    const StepResult res = cfg_.sampler == Sampler::Direct ? direct_.step(net, buf_) : projected_.step(net, buf_);
    batch_loss_ = res.batch_loss;
    ++step_;
    if (!res.finite || !std::isfinite(batch_loss_)) {
      const auto op = order_parameters();
      throw DivergenceError("SGD diverged at step " + std::to_string(step_) + " (t = " +
                            std::to_string(double(step_) * cfg_.dt) + " at the current dt = " + std::to_string(cfg_.dt) + "): m_mean = " + std::to_string(op.m_mean) +
                            ", a_mean = " + std::to_string(op.a_mean) + ", batch loss = " +
                            std::to_string(batch_loss_) + "; lower dt or the learning rates");
    }
  }

  Config cfg_;
  Function act_, tgt_;
  std::uint64_t step_ = 0;
  double batch_loss_ = 0.0;
  int row_blocks_ = 0, neuron_blocks_ = 0;
  std::vector<T> W_, a_;
  StepBuffers<T> buf_;
  DirectSampler<T> direct_;
  ProjectedSampler<T> projected_;
};

}  // namespace fastslow::sgd
