// The driver: integrates the limit ODE from t = 0 with Radau IIA (5) and adaptive steps; values
// at requested times, alignment events, dense output, and statistics in SciPy's conventions.
#pragma once
#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "../model.hpp"
#include "controller.hpp"
#include "dense.hpp"
#include "events.hpp"
#include "radau5.hpp"

namespace fastslow::ode {

struct Options {
  double rtol = 1e-8;
  double atol = 1e-10;
  long max_steps = 1'000'000;
  double first_step = 0.0;  // 0: automatic
  double max_step = std::numeric_limits<double>::infinity();
  double fixed_step = 0.0;     // > 0: constant steps without error control (for order studies)
  double half_fraction = 0.5;  // fraction of the peak alignment defining the half-life
  bool store_dense = false;    // keep every accepted step for dense output
};

enum Status : int { Success = 0, Failed = -1, Interrupted = -2 };

struct Stats {
  long nfev = 0, njev = 0, nlu = 0, nsteps = 0, nrejected = 0;
};

struct Solution {
  // Values at t_eval: v = artanh m, m, a, loss (NaN past a failure; status says why).
  std::vector<double> v, m, a, loss;
  int status = Success;
  std::string message;
  Stats stats;
  double t_reached = 0.0;
  double t_peak = 0.0, m_peak = 0.0, t_half = std::numeric_limits<double>::quiet_NaN();
  std::vector<Segment> dense;
  double y_end[2] = {0.0, 0.0};
};

inline void validate_inputs(double m0, double a0, std::span<const double> t_eval, const Options& o) {
  if (!(std::isfinite(m0) && std::abs(m0) < 1.0))
    throw std::invalid_argument("m0: must be finite with |m0| < 1, got " + std::to_string(m0));
  if (!std::isfinite(a0)) throw std::invalid_argument("a0: must be finite, got " + std::to_string(a0));
  if (t_eval.empty()) throw std::invalid_argument("t_eval: must hold at least one time");
  for (std::size_t i = 0; i < t_eval.size(); ++i) {
    if (!(std::isfinite(t_eval[i]) && t_eval[i] >= 0.0))
      throw std::invalid_argument("t_eval: times must be finite and >= 0, got " + std::to_string(t_eval[i]) +
                                  " at index " + std::to_string(i));
    if (i > 0 && !(t_eval[i] > t_eval[i - 1]))
      throw std::invalid_argument("t_eval: times must be strictly increasing (index " + std::to_string(i) + ")");
  }
  if (!(std::isfinite(o.rtol) && o.rtol >= 1e-14 && o.rtol < 1.0))
    throw std::invalid_argument("rtol: must be in [1e-14, 1), got " + std::to_string(o.rtol));
  if (!(std::isfinite(o.atol) && o.atol > 0.0))
    throw std::invalid_argument("atol: must be finite and > 0, got " + std::to_string(o.atol));
  if (o.max_steps < 1) throw std::invalid_argument("max_steps: must be >= 1");
  if (!(o.first_step >= 0.0 && std::isfinite(o.first_step)))
    throw std::invalid_argument("first_step: must be finite and >= 0 (0 = automatic)");
  if (!(o.max_step > 0.0)) throw std::invalid_argument("max_step: must be > 0");
  if (!(o.fixed_step >= 0.0 && std::isfinite(o.fixed_step)))
    throw std::invalid_argument("fixed_step: must be finite and >= 0 (0 = adaptive)");
  if (!(std::isfinite(o.half_fraction) && o.half_fraction > 0.0 && o.half_fraction < 1.0))
    throw std::invalid_argument("half_fraction: must be in (0, 1), got " + std::to_string(o.half_fraction));
}

// One Radau IIA step attempt of size h from (t, y); Z0 is the Newton predictor.
struct Attempt {
  bool converged = false;
  double Z[3][2];
  int n_iter = 0;
  double rate = -1.0, shrink = 0.5;
};

inline Attempt radau5_attempt(const LimitModel& model, const double* y, double h, const double (&Z0)[3][2],
                              const double* scale, double newton_tol, Stats& st) {
  Attempt at;
  at.converged = radau5_collocation(model, y, h, Z0, scale, newton_tol, at.Z, at.n_iter, at.rate, at.shrink,
                                    st.nfev, st.njev, st.nlu);
  return at;
}

// Collocation polynomial coefficients Q (2 x 3) of a converged step.
inline void collocation_Q(const double (&Z)[3][2], double (&Q)[2][3]) {
  using R = Radau5;
  for (int j = 0; j < 2; ++j)
    for (int c = 0; c < 3; ++c) Q[j][c] = Z[0][j] * R::P[0][c] + Z[1][j] * R::P[1][c] + Z[2][j] * R::P[2][c];
}

// The integration itself (inputs already validated); see solve().
inline Solution solve_impl(const LimitModel& model, double m0, double a0, std::span<const double> t_eval,
                           const Options& opt, const std::function<bool()>& interrupted) {
  using R = Radau5;
  const std::size_t ne = t_eval.size();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Solution sol;
  Stats& st = sol.stats;
  sol.v.assign(ne, nan);
  sol.m.assign(ne, nan);
  sol.a.assign(ne, nan);
  sol.loss.assign(ne, nan);
  const double t_end = t_eval.back();
  // RADAU5's tolerance map (see radau5.hpp): the order-3 error estimate meets rtol', atol'.
  const double rtol = 0.1 * std::pow(opt.rtol, 2.0 / 3.0), atol = rtol * (opt.atol / opt.rtol);
  const double newton_tol = std::max(10.0 * std::numeric_limits<double>::epsilon() / rtol,
                                     std::min(0.03, std::sqrt(rtol)));
  const bool fixed = opt.fixed_step > 0.0;

  double t = 0.0, y[2] = {std::atanh(m0), a0}, f[2], J[4];
  model.rhs_jac(y, f, J);
  st.nfev++;
  st.njev++;

  std::size_t ie = 0;
  auto emit = [&](std::size_t i, const double* yy) {
    double m, sech2;
    tanh_sech2(yy[0], m, sech2);
    sol.v[i] = yy[0];
    sol.m[i] = m;
    sol.a[i] = yy[1];
    sol.loss[i] = model.derivs(m, yy[1], false).L;
  };
  AlignmentEvents events;
  events.fraction = opt.half_fraction;
  events.start(t, y);
  auto finish = [&](int status, std::string msg) {
    sol.status = status;
    sol.message = std::move(msg);
    sol.t_reached = t;
    sol.y_end[0] = y[0];
    sol.y_end[1] = y[1];
    sol.t_peak = events.t_peak;
    sol.m_peak = events.m_peak;
    sol.t_half = events.t_half;
    return sol;
  };
  if (!(std::isfinite(f[0]) && std::isfinite(f[1])))
    return finish(Failed, "The right-hand side is not finite at the initial condition.");
  while (ie < ne && t_eval[ie] <= 0.0) emit(ie++, y);
  const std::string done = "The solver successfully reached the end of the integration interval.";
  if (t_end <= 0.0) return finish(Success, done);

  double h_abs = fixed ? opt.fixed_step
                       : (opt.first_step > 0.0 ? opt.first_step
                                               : initial_step(model, y, f, t_end, rtol, atol, R::error_order));
  if (!fixed && opt.first_step <= 0.0) st.nfev++;
  PredictiveController ctrl;
  Radau5Matrices M;
  // Previous step's collocation polynomial, for the Newton predictor.
  bool have_prev = false;
  Segment prev{};

  while (t < t_end) {
    if (st.nsteps >= opt.max_steps)
      return finish(Failed, "Maximum number of steps (" + std::to_string(opt.max_steps) + ") reached at t = " +
                                std::to_string(t) + ".");
    if (interrupted && (st.nsteps & 255) == 0 && interrupted())
      return finish(Interrupted, "Interrupted at t = " + std::to_string(t) + ".");
    const double min_step = 10.0 * std::abs(std::nextafter(t, std::numeric_limits<double>::infinity()) - t);
    if (h_abs > opt.max_step) h_abs = opt.max_step;
    if (h_abs < min_step) h_abs = min_step;

    bool accepted = false, rejected = false;
    Attempt at;
    double t_new = 0.0, h = 0.0, error_norm = 0.0, safety = 0.9;
    const double scale[2] = {atol + std::abs(y[0]) * rtol, atol + std::abs(y[1]) * rtol};
    while (!accepted) {
      if (h_abs < min_step)
        return finish(Failed, "Required step size is less than spacing between numbers at t = " +
                                  std::to_string(t) + ".");
      t_new = std::min(t + h_abs, t_end);
      h = t_new - t;
      double Z0[3][2] = {};
      if (have_prev) {
        for (int i = 0; i < 3; ++i) {
          double yp[2];
          prev.eval(t + h * R::C[i], yp);
          Z0[i][0] = yp[0] - y[0];
          Z0[i][1] = yp[1] - y[1];
        }
        bool ok = true;
        for (auto& r : Z0) ok = ok && std::isfinite(r[0]) && std::isfinite(r[1]);
        if (!ok)
          for (auto& r : Z0) r[0] = r[1] = 0.0;
      }
      at = radau5_attempt(model, y, h, Z0, scale, newton_tol, st);
      if (!at.converged) {
        if (fixed)
          return finish(Failed, "Newton iteration did not converge with the fixed step at t = " + std::to_string(t) + ".");
        h_abs = h * at.shrink;
        rejected = true;
        st.nrejected++;
        continue;
      }
      if (fixed) break;
      M.factor(h, J);
      st.nlu++;
      if (!M.ok) {
        h_abs = 0.5 * h;
        rejected = true;
        st.nrejected++;
        continue;
      }
      const double y_new[2] = {y[0] + at.Z[2][0], y[1] + at.Z[2][1]};
      double ZE[2];
      for (int j = 0; j < 2; ++j) ZE[j] = (at.Z[0][j] * R::E[0] + at.Z[1][j] * R::E[1] + at.Z[2][j] * R::E[2]) / h;
      double rvec[2] = {f[0] + ZE[0], f[1] + ZE[1]}, err[2];
      M.solve_real(rvec, err);
      const double sc2[2] = {atol + std::max(std::abs(y[0]), std::abs(y_new[0])) * rtol,
                             atol + std::max(std::abs(y[1]), std::abs(y_new[1])) * rtol};
      error_norm = rms2(err[0] / sc2[0], err[1] / sc2[1]);
      safety = 0.9 * (2 * R::newton_maxiter + 1) / double(2 * R::newton_maxiter + at.n_iter);
      if (rejected && error_norm > 1.0) {  // Hairer's second, stiffly filtered estimate
        const double ye[2] = {y[0] + err[0], y[1] + err[1]};
        double fe[2];
        model.rhs(ye, fe);
        st.nfev++;
        double r2[2] = {fe[0] + ZE[0], fe[1] + ZE[1]};
        M.solve_real(r2, err);
        error_norm = rms2(err[0] / sc2[0], err[1] / sc2[1]);
      }
      if (!std::isfinite(error_norm) || error_norm > 1.0) {
        const double fac = std::isfinite(error_norm) ? ctrl.factor(h, error_norm, R::error_order) : 0.0;
        h_abs = h * std::max(PredictiveController::min_factor, safety * fac);
        rejected = true;
        st.nrejected++;
      } else {
        accepted = true;
      }
    }
    double fac = 1.0;
    if (!fixed) {
      fac = std::min(PredictiveController::max_factor, safety * ctrl.factor(h, error_norm, R::error_order));
      if (rejected) fac = std::min(fac, 1.0);  // after a rejection, do not grow at once
      ctrl.accepted(h, error_norm);
    }

    Segment seg;
    seg.t0 = t;
    seg.h = h;
    seg.y0[0] = y[0];
    seg.y0[1] = y[1];
    collocation_Q(at.Z, seg.Q);
    double y_new[2] = {y[0] + at.Z[2][0], y[1] + at.Z[2][1]}, f_new[2];
    model.rhs_jac(y_new, f_new, J);
    st.nfev++;
    st.njev++;
    st.nsteps++;
    if (!(std::isfinite(y_new[0]) && std::isfinite(y_new[1]) && std::isfinite(f_new[0]) && std::isfinite(f_new[1])))
      return finish(Failed, "The solution became non-finite at t = " + std::to_string(t_new) + ".");

    // Exact state at a time inside this step: a Radau step from its start, predicted by the
    // step's collocation polynomial (converges in one or two Newton iterations).
    const auto exact = [&](double ts, double* out) {
      if (ts >= t_new) {
        out[0] = y_new[0];
        out[1] = y_new[1];
        return true;
      }
      const double hs = ts - t;
      if (hs <= 0.0) {
        out[0] = y[0];
        out[1] = y[1];
        return true;
      }
      double Z0[3][2];
      for (int i = 0; i < 3; ++i) {
        double yp[2];
        seg.eval(t + hs * R::C[i], yp);
        Z0[i][0] = yp[0] - y[0];
        Z0[i][1] = yp[1] - y[1];
      }
      const Attempt sub = radau5_attempt(model, y, hs, Z0, scale, newton_tol, st);
      if (sub.converged) {
        out[0] = y[0] + sub.Z[2][0];
        out[1] = y[1] + sub.Z[2][1];
      } else {
        seg.eval(ts, out);
      }
      return sub.converged;
    };
    while (ie < ne && t_eval[ie] <= t_new) {
      double ye[2];
      exact(t_eval[ie], ye);
      emit(ie++, ye);
    }
    events.step(model, seg, y_new, f[0], f_new[0], exact);
    if (opt.store_dense) sol.dense.push_back(seg);
    prev = seg;
    have_prev = true;
    t = t_new;
    y[0] = y_new[0];
    y[1] = y_new[1];
    f[0] = f_new[0];
    f[1] = f_new[1];
    h_abs = h * fac;
  }
  return finish(Success, done);
}

// solve_impl with its whole call tree compiled for AVX2 + FMA and for the baseline (see
// FASTSLOW_HOT_TREE). GCC treats a target_clones function as not throwing, so an exception
// (say std::bad_alloc) must not leave it: it is caught here and rethrown by solve().
FASTSLOW_HOT_TREE inline void solve_dispatch(const LimitModel& model, double m0, double a0,
                                             std::span<const double> t_eval, const Options& opt,
                                             const std::function<bool()>& interrupted, Solution& out,
                                             std::exception_ptr& error) {
  try {
    out = solve_impl(model, m0, a0, t_eval, opt, interrupted);
  } catch (...) {
    error = std::current_exception();
  }
}

// Integrate from (m0, a0) at t = 0 to t_eval.back(). `interrupted` (may be empty) is polled
// every 256 steps; when it returns true the run stops with status Interrupted.
inline Solution solve(const LimitModel& model, double m0, double a0, std::span<const double> t_eval,
                      const Options& opt, const std::function<bool()>& interrupted = {}) {
  validate_inputs(m0, a0, t_eval, opt);
  Solution sol;
  std::exception_ptr error;
  solve_dispatch(model, m0, a0, t_eval, opt, interrupted, sol, error);
  if (error) std::rethrow_exception(error);
  return sol;
}

}  // namespace fastslow::ode
