// Iterating the effective map from t = 0: a constant step dt (step times k dt, as SGD's) or a
// schedule of steps dt_0, dt_1, ... (step times their partial sums), with values at requested
// times by linear interpolation between the two step times around them (exactly the step's state
// at a step time), and, on request, every step's state for dense output. A batch of independent
// settings runs on OpenMP threads; the results do not depend on their number.
#pragma once
#include <omp.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "../parallel.hpp"
#include "map.hpp"

namespace fastslow::effective {

enum Status : int { Success = 0, Failed = -1, Interrupted = -2 };

struct Trajectory {
  std::vector<double> m, a, loss, q_perp;                       // at the requested times
  std::vector<double> t_steps, m_steps, a_steps, loss_steps, q_steps;  // every step (store_steps)
  long steps = 0;
  double t_end = 0.0;
  int status = Success;
  std::string message;
};

inline void validate(double m0, double a0, double q0, std::span<const double> t_eval, double dt,
                     std::span<const double> schedule, const Setting& s, long max_steps) {
  if (max_steps < 1) throw std::invalid_argument("max_steps: must be >= 1");
  if (!(std::isfinite(m0) && std::abs(m0) < 1.0))
    throw std::invalid_argument("m0: must be finite with |m0| < 1, got " + std::to_string(m0));
  if (!std::isfinite(a0)) throw std::invalid_argument("a0: must be finite");
  if (!(std::isfinite(q0) && q0 > -1.0 && q0 < 1.0)) throw std::invalid_argument("q0: must be in (-1, 1)");
  if (t_eval.empty()) throw std::invalid_argument("t_eval: must hold at least one time");
  for (std::size_t i = 0; i < t_eval.size(); ++i)
    if (!(std::isfinite(t_eval[i]) && t_eval[i] >= 0.0 && (i == 0 || t_eval[i] > t_eval[i - 1])))
      throw std::invalid_argument("t_eval: times must be finite, >= 0 and strictly increasing");
  if (schedule.empty()) {
    if (!(std::isfinite(dt) && dt > 0.0)) throw std::invalid_argument("dt: must be finite and > 0");
    if (!(t_eval.back() / dt <= double(max_steps)))
      throw std::invalid_argument("t_eval, dt: " + std::to_string(t_eval.back() / dt) + " steps to the last save time, "
                                  "more than max_steps = " + std::to_string(max_steps));
  } else {
    if (schedule.size() > std::size_t(max_steps))
      throw std::invalid_argument("schedule: " + std::to_string(schedule.size()) + " steps, more than max_steps = " +
                                  std::to_string(max_steps));
    double t = 0.0;
    for (double h : schedule) {
      if (!(std::isfinite(h) && h > 0.0)) throw std::invalid_argument("schedule: every step must be finite and > 0");
      t += h;
    }
    if (t < t_eval.back() * (1.0 - 1e-12))
      throw std::invalid_argument("schedule: its steps add up to t = " + std::to_string(t) +
                                  ", short of the last save time " + std::to_string(t_eval.back()));
  }
  if (!(s.inv_n >= 0.0 && s.inv_n <= 0.5)) throw std::invalid_argument("n: the width must be >= 2 (or infinite)");
  if (!(std::isfinite(s.ratio) && s.ratio >= 0.0)) throw std::invalid_argument("d / batch: must be finite and >= 0");
}

// The iteration itself (inputs validated). `poll` (may be empty) is called every 256 steps and
// stops the iteration (status Interrupted) when it returns true.
inline Trajectory iterate(const EffectiveMap& map, double m0, double a0, double q0, std::span<const double> t_eval,
                          double dt, std::span<const double> schedule, const Setting& s, bool store_steps,
                          const std::function<bool()>& poll = {}) {
  const std::size_t ne = t_eval.size();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Trajectory r;
  r.m.assign(ne, nan);
  r.a.assign(ne, nan);
  r.loss.assign(ne, nan);
  r.q_perp.assign(ne, nan);
  State x{m0, a0, m0 * m0 + (1.0 - m0 * m0) * q0};
  double L = map.loss(x, s), q = q0, t = 0.0;
  auto keep = [&](double tk) {
    if (!store_steps) return;
    r.t_steps.push_back(tk);
    r.m_steps.push_back(x.m);
    r.a_steps.push_back(x.a);
    r.loss_steps.push_back(L);
    r.q_steps.push_back(q);
  };
  auto put = [&](std::size_t i, double m, double a, double l, double qq) {
    r.m[i] = m;
    r.a[i] = a;
    r.loss[i] = l;
    r.q_perp[i] = qq;
  };
  keep(0.0);
  std::size_t idx = 0;
  while (idx < ne && t_eval[idx] == 0.0) put(idx++, x.m, x.a, L, q);
  const bool fixed = schedule.empty();
  const double t_last = t_eval.back();
  long k = 0;
  while (idx < ne) {
    if (!fixed && std::size_t(k) >= schedule.size()) break;  // validated: the schedule reaches t_last
    if (poll && (k & 255) == 255 && poll()) {
      r.status = Interrupted;
      r.message = "interrupted at step " + std::to_string(k);
      break;
    }
    const double h = fixed ? dt : schedule[std::size_t(k)];
    const State y = map.step(x, h, s);
    const double t_new = fixed ? double(k + 1) * dt : t + h;
    if (!(std::isfinite(y.m) && std::isfinite(y.a) && std::isfinite(y.Q) && std::abs(y.m) < 1.0)) {
      r.status = Failed;
      r.message = "the effective map left its domain at step " + std::to_string(k + 1) + " (t = " +
                  std::to_string(t_new) + "): m = " + std::to_string(y.m) + ", a = " + std::to_string(y.a) +
                  "; the step dt is too large for the fast rate there (see fastslow.stability)";
      break;
    }
    const double L_new = map.loss(y, s), q_new = EffectiveMap::q_perp(y);
    // save times in (t, t_new]: within 1e-9 of a step of t_new, the step's state itself
    while (idx < ne && t_eval[idx] <= t_new + 1e-9 * h) {
      const double te = t_eval[idx];
      if (std::abs(te - t_new) <= 1e-9 * h) {
        put(idx++, y.m, y.a, L_new, q_new);
      } else {
        const double f = (te - t) / (t_new - t);
        put(idx++, x.m + f * (y.m - x.m), x.a + f * (y.a - x.a), L + f * (L_new - L), q + f * (q_new - q));
      }
    }
    x = y;
    L = L_new;
    q = q_new;
    t = t_new;
    ++k;
    keep(t);
  }
  // a schedule whose sum falls short of the last save time by rounding only: its last state
  while (r.status == Success && idx < ne && t >= t_last * (1.0 - 1e-12)) put(idx++, x.m, x.a, L, q);
  r.steps = k;
  r.t_end = t;
  return r;
}

struct BatchResult {
  std::size_t n = 0, ne = 0;
  std::vector<double> m, a, loss, q_perp;  // (n, ne) row-major
  std::vector<long> steps;
  std::vector<int> status;
  std::vector<std::string> message;
  bool interrupted = false;
};

// Many settings at once (constant steps): m0, a0, dt, inv_n, ratio of length n each; `terms` shared.
inline BatchResult iterate_batch(const EffectiveMap& map, std::span<const double> m0, std::span<const double> a0,
                                 std::span<const double> dt, std::span<const double> inv_n,
                                 std::span<const double> ratio, const Terms& terms, std::span<const double> t_eval,
                                 int threads, long max_steps, const std::function<bool()>& poll = {}) {
  const std::size_t n = m0.size();
  if (a0.size() != n || dt.size() != n || inv_n.size() != n || ratio.size() != n)
    throw std::invalid_argument("m0, a0, dt, inv_n, ratio: must have the same length");
  if (threads < 1 || threads > std::max(1, omp_get_num_procs()))
    throw std::invalid_argument("threads: must be from 1 to the " + std::to_string(std::max(1, omp_get_num_procs())) +
                                " processors, got " + std::to_string(threads));
  for (std::size_t i = 0; i < n; ++i) validate(m0[i], a0[i], 0.0, t_eval, dt[i], {}, Setting{inv_n[i], ratio[i], terms}, max_steps);
  BatchResult r;
  r.n = n;
  r.ne = t_eval.size();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  r.m.assign(n * r.ne, nan);
  r.a.assign(n * r.ne, nan);
  r.loss.assign(n * r.ne, nan);
  r.q_perp.assign(n * r.ne, nan);
  r.steps.assign(n, 0);
  r.status.assign(n, Interrupted);
  r.message.assign(n, "Not run: interrupted before this setting started.");
  std::atomic<bool> stop{false};
  const std::function<bool()> master_check = [&]() {
    if (!stop.load(std::memory_order_relaxed) && poll && poll()) stop.store(true);
    return stop.load(std::memory_order_relaxed);
  };
  const std::function<bool()> worker_check = [&]() { return stop.load(std::memory_order_relaxed); };
  ExceptionGuard guard;
  const long long nn = (long long)n;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (long long i = 0; i < nn; ++i) {
    const std::function<bool()>& check = omp_get_thread_num() == 0 ? master_check : worker_check;
    if (guard.failed() || check()) continue;
    guard.run([&] {
      const std::size_t j = std::size_t(i);
      Trajectory tr = iterate(map, m0[j], a0[j], 0.0, t_eval, dt[j], {}, Setting{inv_n[j], ratio[j], terms}, false,
                              check);
      for (std::size_t k = 0; k < r.ne; ++k) {
        r.m[j * r.ne + k] = tr.m[k];
        r.a[j * r.ne + k] = tr.a[k];
        r.loss[j * r.ne + k] = tr.loss[k];
        r.q_perp[j * r.ne + k] = tr.q_perp[k];
      }
      r.steps[j] = tr.steps;
      r.status[j] = tr.status;
      r.message[j] = std::move(tr.message);
    });
  }
  guard.rethrow();
  r.interrupted = stop.load();
  return r;
}

}  // namespace fastslow::effective
