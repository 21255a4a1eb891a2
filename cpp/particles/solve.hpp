// The particle system integrated by Radau IIA (5), 3 stages, in y = (v_i, a_i) for i < N.
//
// The method, its constants, the tolerance map, the error estimate and the step-size controller are
// those of the 2-D integrator (ode/radau5.hpp, ode/controller.hpp, ode/solve.hpp): order 5,
// L-stable, Newton on the collocation equations with the stage Jacobians (chord iteration,
// refreshed once when it contracts too slowly), the order-3 estimate filtered through
// (MU_REAL/h - J)^-1, the predictive controller. What differs is the size: every linear solve is
// the structured one of structured.hpp (block-diagonal plus rank 3r for the stages, rank r for
// the estimate), O(N r^2) to factorise and O(N r) to apply.
//
// Values at t_eval are exact Radau steps from the start of the step that covers them (as in the
// 2-D driver). The events of the weighted mean alignment (its peak, the half-life after it) are
// located on the dense output (the collocation polynomial of each step, error O(h^4)), without
// the exact polish of the 2-D driver.
#pragma once
#include <algorithm>
#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "../ode/controller.hpp"
#include "../ode/events.hpp"
#include "../ode/radau5.hpp"
#include "../ode/solve.hpp"
#include "structured.hpp"
#include "system.hpp"

namespace fastslow::particles {

using ode::Options;
using ode::Stats;

struct Solution {
  std::size_t N = 0, ne = 0;
  std::vector<double> v, a;               // per particle at t_eval: (N, ne) row-major
  std::vector<double> m_mean, a_mean, loss;  // weighted means and the loss at t_eval (ne)
  int status = ode::Success;
  std::string message;
  Stats stats;
  double t_reached = 0.0;
  double t_peak = 0.0, m_peak = 0.0, t_half = std::numeric_limits<double>::quiet_NaN();
  // Dense output, one row per accepted step: t0, h; the state y0 (2N) and Q (2N x 3): component c
  // is y0[c] + x (Q[c][0] + x (Q[c][1] + x Q[c][2])) at t0 + x h.
  std::vector<double> dense_t0, dense_h, dense_y0, dense_Q;
  std::vector<double> y_end;
};

// Memory the integration of one system holds besides its result, in bytes.
inline double working_bytes(std::size_t N, int r) {
  return StructuredSolver<3>::bytes(N, r) + StructuredSolver<1>::bytes(N, r) + 8.0 * (2.0 * N) * 24 + 8.0 * r;
}

inline void validate_state(std::span<const double> y0) {
  if (y0.empty() || y0.size() % 2 != 0) throw std::invalid_argument("y0: must hold (v_i, a_i) for N >= 1 particles");
  for (std::size_t i = 0; i < y0.size() / 2; ++i) {
    if (!std::isfinite(y0[2 * i]))
      throw std::invalid_argument("m0: particle " + std::to_string(i) + " must have |m0| < 1");
    if (!std::isfinite(y0[2 * i + 1]))
      throw std::invalid_argument("a0: particle " + std::to_string(i) + " must be finite");
  }
}

class Integrator {
 public:
  Integrator(const ParticleSystem& sys, const Options& opt) : sys_(sys), opt_(opt) {
    N_ = sys.size();
    r_ = sys.rank();
    dim_ = 2 * N_;
    stage_.resize(N_, r_);
    est_.resize(N_, r_);
    for (auto* v : {&y_, &f_, &ynew_, &fnew_, &yex_, &tmp_, &scale_, &err_, &rvec_}) v->assign(dim_, 0.0);
    for (auto* v : {&Z_, &Z0_, &F_, &b_, &prevQ_, &segQ_}) v->assign(3 * dim_, 0.0);
    prevy0_.assign(dim_, 0.0);
    segy0_.assign(dim_, 0.0);
    R_.assign(std::size_t(r_), 0.0);
  }

  Solution run(std::span<const double> y0, std::span<const double> t_eval, const std::function<bool()>& interrupted);

 private:
  using R = ode::Radau5;

  // Newton on the collocation equations from state y (the stage increments in Z, stage-major,
  // starting from the predictor in Z0). See ode::radau5_collocation for the iteration's control.
  bool collocation(const double* y, double h, const double* scale, double tol, int& n_iter, double& shrink);

  // Segment evaluation: y0 + x (Q0 + x (Q1 + x Q2)), Q row-major (dim x 3).
  void seg_eval(const double* y0, const double* Q, double x, double* out) const {
    for (std::size_t c = 0; c < dim_; ++c) out[c] = y0[c] + x * (Q[3 * c] + x * (Q[3 * c + 1] + x * Q[3 * c + 2]));
  }
  void set_Q(const double* Z, double* Q) const {
    for (std::size_t c = 0; c < dim_; ++c)
      for (int k = 0; k < 3; ++k)
        Q[3 * c + k] = Z[c] * R::P[0][k] + Z[dim_ + c] * R::P[1][k] + Z[2 * dim_ + c] * R::P[2][k];
  }
  double mean_m(const double* y) const {
    double m, a;
    sys_.means(y, m, a);
    return m;
  }
  double initial_step(double span, double rtol, double atol);

  const ParticleSystem& sys_;
  Options opt_;
  std::size_t N_ = 0, dim_ = 0;
  int r_ = 0;
  Scratch sc_;
  StructuredSolver<3> stage_;
  StructuredSolver<1> est_;  // holds the Jacobian at the step start
  std::vector<double> y_, f_, ynew_, fnew_, yex_, tmp_, scale_, err_, rvec_;
  std::vector<double> Z_, Z0_, F_, b_, prevQ_, segQ_, prevy0_, segy0_, R_;
  Stats st_;
};

inline bool Integrator::collocation(const double* y, double h, const double* scale, double tol, int& n_iter,
                                    double& shrink) {
  const std::size_t dim = dim_, N = N_;
  double H[3][3];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) H[i][j] = h * R::A[i][j];
  shrink = 0.5;
  double faccon = 1.0, dZ_old = -1.0, rate = -1.0;
  std::copy(Z0_.begin(), Z0_.end(), Z_.begin());
  bool converged = false, need_jac = true;
  int refreshes = 0, k = 0;
  for (; k < R::newton_maxiter; ++k) {
    bool finite = true;
    for (int s = 0; s < 3; ++s) {
      double* ys = tmp_.data();
      for (std::size_t c = 0; c < dim; ++c) ys[c] = y[c] + Z_[s * dim + c];
      double* Fs = F_.data() + s * dim;
      if (need_jac) {
        sys_.rhs(ys, Fs, R_.data(), sc_, stage_.D(s), stage_.U(s), stage_.V(s));
        const double* D = stage_.D(s);
        for (std::size_t q = 0; q < 4 * N; ++q) finite = finite && std::isfinite(D[q]);
      } else {
        sys_.rhs(ys, Fs, R_.data(), sc_);
      }
      for (std::size_t c = 0; c < dim; ++c) finite = finite && std::isfinite(Fs[c]);
    }
    st_.nfev += 3;
    if (!finite) break;
    if (need_jac) {
      st_.njev += 3;
      st_.nlu++;
      if (!stage_.factor(H)) break;
      need_jac = false;
    }
    for (std::size_t j = 0; j < N; ++j)
      for (int s = 0; s < 3; ++s)
        for (int p = 0; p < 2; ++p) {
          const std::size_t c = 2 * j + std::size_t(p);
          double g = Z_[s * dim + c];
          for (int t = 0; t < 3; ++t) g -= H[s][t] * F_[t * dim + c];
          b_[6 * j + 2 * s + p] = -g;
        }
    stage_.solve(b_.data());
    double ss = 0.0;
    for (std::size_t j = 0; j < N; ++j)
      for (int s = 0; s < 3; ++s)
        for (int p = 0; p < 2; ++p) {
          const double e = b_[6 * j + 2 * s + p] / scale[2 * j + p];
          ss += e * e;
        }
    const double dZ = std::sqrt(ss / double(3 * dim));
    if (!std::isfinite(dZ)) break;
    if (dZ_old >= 0.0) rate = dZ / dZ_old;
    if (rate >= 0.0) {
      if (rate < 0.99) faccon = rate / (1.0 - rate);
      const double predicted =
          rate < 1.0 ? ipow(rate, R::newton_maxiter - 1 - k) / (1.0 - rate) * dZ / tol : 2e1;
      if (rate >= 0.99 || predicted >= 1.0) {
        if (refreshes == 0 && k + 2 < R::newton_maxiter) {
          if (rate < 0.99)
            for (std::size_t j = 0; j < N; ++j)
              for (int s = 0; s < 3; ++s)
                for (int p = 0; p < 2; ++p) Z_[s * dim + 2 * j + p] += b_[6 * j + 2 * s + p];
          ++refreshes;
          need_jac = true;
          dZ_old = -1.0;
          rate = -1.0;
          continue;
        }
        if (rate >= 0.99) break;
        const double q = std::max(1e-4, std::min(20.0, predicted));
        shrink = 0.8 * std::pow(q, -1.0 / (4.0 + R::newton_maxiter - 1 - k));
        break;
      }
    }
    for (std::size_t j = 0; j < N; ++j)
      for (int s = 0; s < 3; ++s)
        for (int p = 0; p < 2; ++p) Z_[s * dim + 2 * j + p] += b_[6 * j + 2 * s + p];
    if (dZ == 0.0 || (rate >= 0.0 ? faccon * dZ <= tol : dZ <= tol)) {
      converged = true;
      break;
    }
    dZ_old = dZ;
  }
  n_iter = k + 1;
  return converged;
}

inline double Integrator::initial_step(double span, double rtol, double atol) {
  if (span <= 0.0) return 0.0;
  double d0 = 0.0, d1 = 0.0;
  for (std::size_t c = 0; c < dim_; ++c) {
    const double s = atol + std::abs(y_[c]) * rtol;
    d0 += (y_[c] / s) * (y_[c] / s);
    d1 += (f_[c] / s) * (f_[c] / s);
  }
  d0 = std::sqrt(d0 / double(dim_));
  d1 = std::sqrt(d1 / double(dim_));
  double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
  h0 = std::min(h0, span);
  for (std::size_t c = 0; c < dim_; ++c) tmp_[c] = y_[c] + h0 * f_[c];
  sys_.rhs(tmp_.data(), err_.data(), R_.data(), sc_);
  double d2 = 0.0;
  for (std::size_t c = 0; c < dim_; ++c) {
    const double s = atol + std::abs(y_[c]) * rtol;
    d2 += ((err_[c] - f_[c]) / s) * ((err_[c] - f_[c]) / s);
  }
  d2 = std::sqrt(d2 / double(dim_)) / h0;
  double h1;
  if (!std::isfinite(d2) || (d1 <= 1e-15 && d2 <= 1e-15))
    h1 = std::max(1e-6, h0 * 1e-3);
  else
    h1 = std::pow(0.01 / std::max(d1, d2), 1.0 / double(R::error_order + 1));
  return std::min({100.0 * h0, h1, span});
}

inline Solution Integrator::run(std::span<const double> y0, std::span<const double> t_eval,
                                const std::function<bool()>& interrupted) {
  const std::size_t ne = t_eval.size(), dim = dim_, N = N_;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Solution sol;
  sol.N = N;
  sol.ne = ne;
  sol.v.assign(N * ne, nan);
  sol.a.assign(N * ne, nan);
  sol.m_mean.assign(ne, nan);
  sol.a_mean.assign(ne, nan);
  sol.loss.assign(ne, nan);
  st_ = Stats{};
  const double t_end = t_eval.back();
  const double rtol = 0.1 * std::pow(opt_.rtol, 2.0 / 3.0), atol = rtol * (opt_.atol / opt_.rtol);
  const double newton_tol = std::max(10.0 * std::numeric_limits<double>::epsilon() / rtol,
                                     std::min(0.03, std::sqrt(rtol)));
  const bool fixed = opt_.fixed_step > 0.0;

  double t = 0.0;
  std::copy(y0.begin(), y0.end(), y_.begin());
  sys_.rhs(y_.data(), f_.data(), R_.data(), sc_, est_.D(0), est_.U(0), est_.V(0));
  st_.nfev++;
  st_.njev++;

  std::size_t ie = 0;
  auto emit = [&](std::size_t i, const double* yy) {
    for (std::size_t j = 0; j < N; ++j) {
      sol.v[j * ne + i] = yy[2 * j];
      sol.a[j * ne + i] = yy[2 * j + 1];
    }
    sys_.means(yy, sol.m_mean[i], sol.a_mean[i]);
    std::vector<double> Rl(static_cast<std::size_t>(r_));
    sys_.residuals(yy, Rl.data(), sc_);
    sol.loss[i] = sys_.loss(Rl.data());
  };
  // events of the weighted mean alignment
  double m_peak = mean_m(y_.data()), t_peak = 0.0, t_half = nan;
  bool half_found = false;
  auto finish = [&](int status, std::string msg) {
    sol.status = status;
    sol.message = std::move(msg);
    sol.t_reached = t;
    sol.y_end = y_;
    sol.t_peak = t_peak;
    sol.m_peak = m_peak;
    sol.t_half = t_half;
    sol.stats = st_;
    return sol;
  };
  for (double x : f_)
    if (!std::isfinite(x)) return finish(ode::Failed, "The right-hand side is not finite at the initial condition.");
  while (ie < ne && t_eval[ie] <= 0.0) emit(ie++, y_.data());
  const std::string done = "The solver successfully reached the end of the integration interval.";
  if (t_end <= 0.0) return finish(ode::Success, done);

  double h_abs = fixed ? opt_.fixed_step : (opt_.first_step > 0.0 ? opt_.first_step : initial_step(t_end, rtol, atol));
  if (!fixed && opt_.first_step <= 0.0) st_.nfev++;
  ode::PredictiveController ctrl;
  bool have_prev = false;
  double prev_t0 = 0.0, prev_h = 0.0;

  while (t < t_end) {
    if (st_.nsteps >= opt_.max_steps)
      return finish(ode::Failed, "Maximum number of steps (" + std::to_string(opt_.max_steps) + ") reached at t = " +
                                     std::to_string(t) + ".");
    if (interrupted && interrupted()) return finish(ode::Interrupted, "Interrupted at t = " + std::to_string(t) + ".");
    const double min_step = 10.0 * std::abs(std::nextafter(t, std::numeric_limits<double>::infinity()) - t);
    if (h_abs > opt_.max_step) h_abs = opt_.max_step;
    if (h_abs < min_step) h_abs = min_step;
    for (std::size_t c = 0; c < dim; ++c) scale_[c] = atol + std::abs(y_[c]) * rtol;

    bool accepted = false, rejected = false;
    double t_new = 0.0, h = 0.0, error_norm = 0.0, safety = 0.9;
    int n_iter = 0;
    while (!accepted) {
      if (h_abs < min_step)
        return finish(ode::Failed, "Required step size is less than spacing between numbers at t = " +
                                       std::to_string(t) + ".");
      t_new = std::min(t + h_abs, t_end);
      h = t_new - t;
      std::fill(Z0_.begin(), Z0_.end(), 0.0);
      if (have_prev) {
        bool ok = true;
        for (int i = 0; i < 3; ++i) {
          seg_eval(prevy0_.data(), prevQ_.data(), (t + h * R::C[i] - prev_t0) / prev_h, tmp_.data());
          for (std::size_t c = 0; c < dim; ++c) {
            Z0_[i * dim + c] = tmp_[c] - y_[c];
            ok = ok && std::isfinite(Z0_[i * dim + c]);
          }
        }
        if (!ok) std::fill(Z0_.begin(), Z0_.end(), 0.0);
      }
      double shrink = 0.5;
      const bool conv = collocation(y_.data(), h, scale_.data(), newton_tol, n_iter, shrink);
      if (!conv) {
        if (fixed)
          return finish(ode::Failed, "Newton iteration did not converge with the fixed step at t = " +
                                         std::to_string(t) + ".");
        h_abs = h * shrink;
        rejected = true;
        st_.nrejected++;
        continue;
      }
      if (fixed) break;
      const double Hs[1][1] = {{h / R::MU_REAL}};
      st_.nlu++;
      if (!est_.factor(Hs)) {
        h_abs = 0.5 * h;
        rejected = true;
        st_.nrejected++;
        continue;
      }
      // err = (MU_REAL/h - J)^-1 (f + ZE) = (I - J h/MU_REAL)^-1 (h/MU_REAL) (f + ZE)
      for (std::size_t c = 0; c < dim; ++c) {
        const double ze = (Z_[c] * R::E[0] + Z_[dim + c] * R::E[1] + Z_[2 * dim + c] * R::E[2]) / h;
        rvec_[c] = ze;  // ZE, kept for the second estimate
        err_[c] = (f_[c] + ze) * Hs[0][0];
      }
      est_.solve(err_.data());
      auto norm = [&]() {
        double ss = 0.0;
        for (std::size_t c = 0; c < dim; ++c) {
          const double yn = y_[c] + Z_[2 * dim + c];
          const double sc2 = atol + std::max(std::abs(y_[c]), std::abs(yn)) * rtol;
          ss += (err_[c] / sc2) * (err_[c] / sc2);
        }
        return std::sqrt(ss / double(dim));
      };
      error_norm = norm();
      safety = 0.9 * (2 * R::newton_maxiter + 1) / double(2 * R::newton_maxiter + n_iter);
      if (rejected && error_norm > 1.0) {  // Hairer's second, stiffly filtered estimate
        for (std::size_t c = 0; c < dim; ++c) tmp_[c] = y_[c] + err_[c];
        sys_.rhs(tmp_.data(), fnew_.data(), R_.data(), sc_);
        st_.nfev++;
        for (std::size_t c = 0; c < dim; ++c) err_[c] = (fnew_[c] + rvec_[c]) * Hs[0][0];
        est_.solve(err_.data());
        error_norm = norm();
      }
      if (!std::isfinite(error_norm) || error_norm > 1.0) {
        const double fac = std::isfinite(error_norm) ? ctrl.factor(h, error_norm, R::error_order) : 0.0;
        h_abs = h * std::max(ode::PredictiveController::min_factor, safety * fac);
        rejected = true;
        st_.nrejected++;
      } else {
        accepted = true;
      }
    }
    double fac = 1.0;
    if (!fixed) {
      fac = std::min(ode::PredictiveController::max_factor, safety * ctrl.factor(h, error_norm, R::error_order));
      if (rejected) fac = std::min(fac, 1.0);
      ctrl.accepted(h, error_norm);
    }
    // the accepted step: its segment, the new state, f and J there (for the next estimate)
    std::copy(y_.begin(), y_.end(), segy0_.begin());
    set_Q(Z_.data(), segQ_.data());
    for (std::size_t c = 0; c < dim; ++c) ynew_[c] = y_[c] + Z_[2 * dim + c];
    const double t0 = t;
    // exact state at a time inside this step: a Radau step from its start, predicted by the segment
    auto exact = [&](double ts, double* out) {
      if (ts >= t_new) {
        std::copy(ynew_.begin(), ynew_.end(), out);
        return;
      }
      const double hs = ts - t0;
      if (hs <= 0.0) {
        std::copy(segy0_.begin(), segy0_.end(), out);
        return;
      }
      for (int i = 0; i < 3; ++i) {
        seg_eval(segy0_.data(), segQ_.data(), hs * R::C[i] / h, tmp_.data());
        for (std::size_t c = 0; c < dim; ++c) Z0_[i * dim + c] = tmp_[c] - segy0_[c];
      }
      int it = 0;
      double shrink = 0.5;
      if (collocation(segy0_.data(), hs, scale_.data(), newton_tol, it, shrink)) {
        for (std::size_t c = 0; c < dim; ++c) out[c] = segy0_[c] + Z_[2 * dim + c];
      } else {
        seg_eval(segy0_.data(), segQ_.data(), hs / h, out);
      }
    };
    while (ie < ne && t_eval[ie] <= t_new) {
      exact(t_eval[ie], yex_.data());
      emit(ie++, yex_.data());
    }
    sys_.rhs(ynew_.data(), fnew_.data(), R_.data(), sc_, est_.D(0), est_.U(0), est_.V(0));
    st_.nfev++;
    st_.njev++;
    st_.nsteps++;
    bool finite = true;
    for (std::size_t c = 0; c < dim; ++c) finite = finite && std::isfinite(ynew_[c]) && std::isfinite(fnew_[c]);
    if (!finite) return finish(ode::Failed, "The solution became non-finite at t = " + std::to_string(t_new) + ".");
    // events of the mean alignment, on the segment
    {
      const double fm0 = sys_.mean_alignment_rate(segy0_.data(), f_.data());
      const double fm1 = sys_.mean_alignment_rate(ynew_.data(), fnew_.data());
      double search_from = t0, m_from = mean_m(segy0_.data());
      if (fm0 > 0.0 && fm1 <= 0.0) {
        auto g = [&](double ts) {
          seg_eval(segy0_.data(), segQ_.data(), (ts - t0) / h, tmp_.data());
          sys_.rhs(tmp_.data(), err_.data(), R_.data(), sc_);
          st_.nfev++;
          return sys_.mean_alignment_rate(tmp_.data(), err_.data());
        };
        double tr = ode::illinois(g, t0, t_new, fm0, fm1);
        // polished on the exact state (a Radau step from the segment's start, as the 2-D driver
        // does): secant steps on the rate of the mean alignment, kept inside the step
        {
          auto g_exact = [&](double ts) {
            exact(ts, tmp_.data());
            sys_.rhs(tmp_.data(), err_.data(), R_.data(), sc_);
            st_.nfev++;
            return sys_.mean_alignment_rate(tmp_.data(), err_.data());
          };
          double ta = tr, ga = g_exact(ta);
          double tb = std::min(t_new, std::max(t0, tr + 1e-7 * h)), gb = tb == ta ? ga : g_exact(tb);
          for (int it = 0; it < 8 && gb != ga && ga != 0.0; ++it) {
            const double tc = std::min(t_new, std::max(t0, tb - gb * (tb - ta) / (gb - ga)));
            const bool done = std::abs(tc - tb) <= 1e-13 * std::max(1.0, std::abs(tb));
            ta = tb;
            ga = gb;
            tb = tc;
            gb = g_exact(tb);
            if (done) break;
          }
          if (std::isfinite(tb)) tr = std::abs(gb) <= std::abs(ga) ? tb : ta;
        }
        exact(tr, tmp_.data());
        const double mr = mean_m(tmp_.data());
        if (mr > m_peak) {
          m_peak = mr;
          t_peak = tr;
          half_found = false;
          t_half = nan;
          search_from = tr;
          m_from = mr;
        }
      }
      const double m1 = mean_m(ynew_.data());
      if (m1 > m_peak) {
        m_peak = m1;
        t_peak = t_new;
        half_found = false;
        t_half = nan;
      } else if (!half_found && m_peak > 0.0) {
        const double target = opt_.half_fraction * m_peak;
        if (m_from > target && m1 <= target) {
          auto g = [&](double ts) {
            seg_eval(segy0_.data(), segQ_.data(), (ts - t0) / h, tmp_.data());
            return mean_m(tmp_.data()) - target;
          };
          double th = ode::illinois(g, search_from, t_new, m_from - target, m1 - target);
          // Newton on the exact state (its time derivative: the rate of the mean alignment)
          for (int it = 0; it < 4; ++it) {
            exact(th, tmp_.data());
            sys_.rhs(tmp_.data(), err_.data(), R_.data(), sc_);
            st_.nfev++;
            const double gv = mean_m(tmp_.data()) - target, dg = sys_.mean_alignment_rate(tmp_.data(), err_.data());
            if (!(std::isfinite(gv) && std::isfinite(dg)) || dg == 0.0) break;
            const double tn = std::min(t_new, std::max(search_from, th - gv / dg));
            const bool done = std::abs(tn - th) <= 1e-13 * std::max(1.0, std::abs(th));
            th = tn;
            if (done) break;
          }
          t_half = th;
          half_found = true;
        }
      }
    }
    if (opt_.store_dense) {
      sol.dense_t0.push_back(t0);
      sol.dense_h.push_back(h);
      sol.dense_y0.insert(sol.dense_y0.end(), segy0_.begin(), segy0_.end());
      sol.dense_Q.insert(sol.dense_Q.end(), segQ_.begin(), segQ_.end());
    }
    std::swap(prevQ_, segQ_);
    std::swap(prevy0_, segy0_);
    prev_t0 = t0;
    prev_h = h;
    have_prev = true;
    t = t_new;
    std::swap(y_, ynew_);
    std::swap(f_, fnew_);
    h_abs = h * fac;
  }
  return finish(ode::Success, done);
}

// The integration with its whole call tree compiled for AVX2 + FMA and for the baseline (see
// FASTSLOW_HOT_TREE); exceptions are caught here and rethrown by solve().
FASTSLOW_HOT_TREE inline void solve_dispatch(const ParticleSystem& sys, std::span<const double> y0,
                                             std::span<const double> t_eval, const Options& opt,
                                             const std::function<bool()>& interrupted, Solution& out,
                                             std::exception_ptr& error) {
  try {
    Integrator it(sys, opt);
    out = it.run(y0, t_eval, interrupted);
  } catch (...) {
    error = std::current_exception();
  }
}

// Integrate the particle system from y0 = (v_i, a_i) at t = 0 to t_eval.back().
inline Solution solve(const ParticleSystem& sys, std::span<const double> y0, std::span<const double> t_eval,
                      const Options& opt, const std::function<bool()>& interrupted = {}) {
  ode::validate_inputs(0.0, 0.0, t_eval, opt);
  validate_state(y0);
  if (y0.size() != 2 * sys.size())
    throw std::invalid_argument("m0, a0: " + std::to_string(y0.size() / 2) + " particles for a system of " +
                                std::to_string(sys.size()) + " weights");
  Solution sol;
  std::exception_ptr error;
  solve_dispatch(sys, y0, t_eval, opt, interrupted, sol, error);
  if (error) std::rethrow_exception(error);
  return sol;
}

}  // namespace fastslow::particles
