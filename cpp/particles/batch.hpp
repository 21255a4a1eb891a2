// Many particle systems at once: an OpenMP loop over independent systems, each integrated on one
// thread with its own state, so results do not depend on the number of threads or the schedule
// (as ode/batch.hpp does for the 2-D limit).
#pragma once
#include <algorithm>
#include <atomic>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <omp.h>

#include "../ode/batch.hpp"  // ode::store_run_summary
#include "../parallel.hpp"
#include "solve.hpp"

namespace fastslow::particles {

struct BatchResult {
  std::size_t n = 0, N = 0, ne = 0;
  std::vector<double> v, a;                   // (n, N, ne) row-major
  std::vector<double> m_mean, a_mean, loss;   // (n, ne)
  std::vector<int> status;
  std::vector<std::string> message;
  std::vector<long> nfev, njev, nlu, nsteps, nrejected;
  std::vector<double> t_peak, m_peak, t_half;
  bool interrupted = false;
};

// models: one for all systems or one per system; weights: N values (shared) or n x N; y0: n x 2N
// (v_i, a_i interleaved). `poll` is called on the calling thread only.
inline BatchResult solve_batch(std::span<const LimitModel* const> models, std::span<const double> weights,
                               std::span<const double> y0, std::size_t N, std::span<const double> t_eval,
                               const Options& opt, int threads, const std::function<bool()>& poll = {}) {
  if (N == 0 || y0.size() % (2 * N) != 0) throw std::invalid_argument("m0, a0: must hold N values per system");
  const std::size_t n = y0.size() / (2 * N);
  if (n == 0) throw std::invalid_argument("m0, a0: no systems requested");
  if (!(models.size() == 1 || models.size() == n))
    throw std::invalid_argument("models: give one model or one per system (" + std::to_string(n) + ")");
  if (!(weights.size() == N || weights.size() == n * N))
    throw std::invalid_argument("weights: give N values or N per system");
  if (threads < 1 || threads > std::max(1, omp_get_num_procs()))
    throw std::invalid_argument("threads: must be from 1 to the " + std::to_string(std::max(1, omp_get_num_procs())) +
                                " processors, got " + std::to_string(threads));
  ode::validate_inputs(0.0, 0.0, t_eval, opt);
  validate_state(y0);
  BatchResult r;
  r.n = n;
  r.N = N;
  r.ne = t_eval.size();
  r.v.assign(n * N * r.ne, 0.0);
  r.a.assign(n * N * r.ne, 0.0);
  r.m_mean.assign(n * r.ne, 0.0);
  r.a_mean.assign(n * r.ne, 0.0);
  r.loss.assign(n * r.ne, 0.0);
  r.status.assign(n, ode::Interrupted);
  r.message.assign(n, "Not run: interrupted before this system started.");
  for (auto* v : {&r.nfev, &r.njev, &r.nlu, &r.nsteps, &r.nrejected}) v->assign(n, 0);
  r.t_peak.assign(n, 0.0);
  r.m_peak.assign(n, 0.0);
  r.t_half.assign(n, 0.0);
  std::atomic<bool> stop{false};
  Options o = opt;
  o.store_dense = false;
  const std::function<bool()> master_check = [&]() {
    if (!stop.load(std::memory_order_relaxed) && poll && poll()) stop.store(true);
    return stop.load(std::memory_order_relaxed);
  };
  const std::function<bool()> worker_check = [&]() { return stop.load(std::memory_order_relaxed); };
  blas::ensure_single_threaded();
  ExceptionGuard guard;
  const long long nn = (long long)n;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (long long i = 0; i < nn; ++i) {
    const bool master = omp_get_thread_num() == 0;
    const std::function<bool()>& check = master ? master_check : worker_check;
    if (guard.failed() || check()) continue;
    guard.run([&] {
      const std::size_t k = std::size_t(i);
      const LimitModel& mdl = *models[models.size() == 1 ? 0 : k];
      const std::size_t w0 = weights.size() == N ? 0 : k * N;
      ParticleSystem sys(mdl, std::vector<double>(weights.begin() + std::ptrdiff_t(w0),
                                                  weights.begin() + std::ptrdiff_t(w0 + N)));
      Solution s = solve(sys, y0.subspan(k * 2 * N, 2 * N), t_eval, o, check);
      std::copy(s.v.begin(), s.v.end(), r.v.begin() + std::ptrdiff_t(k * N * r.ne));
      std::copy(s.a.begin(), s.a.end(), r.a.begin() + std::ptrdiff_t(k * N * r.ne));
      std::copy(s.m_mean.begin(), s.m_mean.end(), r.m_mean.begin() + std::ptrdiff_t(k * r.ne));
      std::copy(s.a_mean.begin(), s.a_mean.end(), r.a_mean.begin() + std::ptrdiff_t(k * r.ne));
      std::copy(s.loss.begin(), s.loss.end(), r.loss.begin() + std::ptrdiff_t(k * r.ne));
      ode::store_run_summary(r, k, s);
    });
  }
  guard.rethrow();
  r.interrupted = stop.load();
  return r;
}

}  // namespace fastslow::particles
