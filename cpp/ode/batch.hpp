// Many trajectories at once: an OpenMP loop over independent solves, each with its own state,
// so results do not depend on the number of threads or the schedule.
#pragma once
#include <algorithm>
#include <atomic>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <omp.h>

#include "../parallel.hpp"
#include "solve.hpp"

namespace fastslow::ode {

// Row i of a batch result's per-run fields (status, message, counters, events) from one run's
// solution: shared by the 2-D ODE batch and the particle batch.
template <class Result, class Sol>
void store_run_summary(Result& r, std::size_t i, Sol& s) {
  r.status[i] = s.status;
  r.message[i] = std::move(s.message);
  r.nfev[i] = s.stats.nfev;
  r.njev[i] = s.stats.njev;
  r.nlu[i] = s.stats.nlu;
  r.nsteps[i] = s.stats.nsteps;
  r.nrejected[i] = s.stats.nrejected;
  r.t_peak[i] = s.t_peak;
  r.m_peak[i] = s.m_peak;
  r.t_half[i] = s.t_half;
}

struct BatchResult {
  std::size_t n = 0, ne = 0;
  std::vector<double> m, a, loss;  // (n, ne) row-major
  std::vector<int> status;
  std::vector<std::string> message;
  std::vector<long> nfev, njev, nlu, nsteps, nrejected;
  std::vector<double> t_peak, m_peak, t_half;
  bool interrupted = false;
};

// models: one model for all trajectories, or one per trajectory. m0, a0: length n.
// `poll` is called only on the calling (master) thread, at most every few hundred steps;
// when it returns true every thread stops as soon as it can.
inline BatchResult solve_batch(std::span<const LimitModel* const> models, std::span<const double> m0,
                               std::span<const double> a0, std::span<const double> t_eval,
                               const Options& opt, int threads, const std::function<bool()>& poll = {}) {
  const std::size_t n = a0.size();
  if (m0.size() != n) throw std::invalid_argument("m0: length must equal that of a0");
  if (!(models.size() == 1 || models.size() == n))
    throw std::invalid_argument("models: give one model or one per trajectory (" + std::to_string(n) + ")");
  if (threads < 1 || threads > std::max(1, omp_get_num_procs()))
    throw std::invalid_argument("threads: must be from 1 to the " + std::to_string(std::max(1, omp_get_num_procs())) +
                                " processors, got " + std::to_string(threads));
  for (std::size_t i = 0; i < n; ++i) validate_inputs(m0[i], a0[i], t_eval, opt);
  BatchResult r;
  r.n = n;
  r.ne = t_eval.size();
  r.m.assign(n * r.ne, 0.0);
  r.a.assign(n * r.ne, 0.0);
  r.loss.assign(n * r.ne, 0.0);
  r.status.assign(n, Interrupted);
  r.message.assign(n, "Not run: interrupted before this trajectory started.");
  r.nfev.assign(n, 0);
  r.njev.assign(n, 0);
  r.nlu.assign(n, 0);
  r.nsteps.assign(n, 0);
  r.nrejected.assign(n, 0);
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
  const long long nn = (long long)n;
// dynamic, 1: a trajectory takes ~0.1-0.3 ms, so handing them out one at a time costs nothing
  // and the threads finish within one trajectory of each other (a sweep makes many calls)
  ExceptionGuard guard;  // a std::bad_alloc in one trajectory must not abort the process
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (long long i = 0; i < nn; ++i) {
    const bool master = omp_get_thread_num() == 0;
    const std::function<bool()>& check = master ? master_check : worker_check;
    if (guard.failed() || check()) continue;
    guard.run([&] {
      const LimitModel& mdl = *models[models.size() == 1 ? 0 : std::size_t(i)];
      Solution s = solve(mdl, m0[i], a0[i], t_eval, o, check);
      const std::size_t off = std::size_t(i) * r.ne;
      for (std::size_t k = 0; k < r.ne; ++k) {
        r.m[off + k] = s.m[k];
        r.a[off + k] = s.a[k];
        r.loss[off + k] = s.loss[k];
      }
      store_run_summary(r, i, s);
    });
  }
  guard.rethrow();
  r.interrupted = stop.load();
  return r;
}

}  // namespace fastslow::ode
