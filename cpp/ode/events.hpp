// Events of the alignment m along a trajectory:
//  - the peak alignment: the largest local maximum of m (dm/dt changes sign from + to -), or
//    the initial or final value when m is monotone there;
//  - the unlearning half-life: the first time after that peak at which m falls to `fraction`
//    times the peak (defined when the peak is positive).
// A sign change is bracketed on the step's dense output, and the root is then polished by
// Newton's method on exact Radau steps from the step start (`Refine`), so that the event time and
// value carry the integrator's accuracy, not the interpolant's.
#pragma once
#include <cmath>
#include <limits>

#include "../model.hpp"
#include "dense.hpp"

namespace fastslow::ode {

// Root of g on [a, b] with g(a), g(b) of opposite signs (or g(b) == 0): Illinois method.
template <class G>
double illinois(G&& g, double a, double b, double ga, double gb) {
  if (gb == 0.0) return b;
  for (int it = 0; it < 200; ++it) {
    const double c = (a * gb - b * ga) / (gb - ga);
    if (!(c > std::min(a, b) && c < std::max(a, b))) return 0.5 * (a + b);
    const double gc = g(c);
    if (gc == 0.0) return c;
    if ((gc > 0.0) == (gb > 0.0)) {
      ga *= 0.5;
    } else {
      a = b;
      ga = gb;
    }
    b = c;
    gb = gc;
    if (std::abs(b - a) <= 4.0 * std::numeric_limits<double>::epsilon() * std::max(std::abs(a), std::abs(b)))
      break;
  }
  return b;
}

// Exact state at time t inside the current step (an exact Radau step from its start): any
// callable bool(double t, double* y).

struct AlignmentEvents {
  double fraction = 0.5;
  double t_peak = 0.0, m_peak = 0.0;
  double t_half = std::numeric_limits<double>::quiet_NaN();
  bool half_found = false;

  void start(double t0, const double* y0) {
    t_peak = t0;
    m_peak = std::tanh(y0[0]);
    half_found = false;
    t_half = std::numeric_limits<double>::quiet_NaN();
  }

  // Newton polish of a root of g(y(t)) with time derivative dg(y(t)), inside [lo, hi].
  template <class Refine, class G, class DG>
  static double polish(double t, double lo, double hi, const Refine& exact, G&& g, DG&& dg, double* y) {
    for (int it = 0; it < 4; ++it) {
      if (!exact(t, y)) break;
      const double gv = g(y), d = dg(y);
      if (!(std::isfinite(gv) && std::isfinite(d)) || d == 0.0) break;
      const double tn = std::min(hi, std::max(lo, t - gv / d));
      const bool done = std::abs(tn - t) <= 1e-13 * std::max(1.0, std::abs(t));
      t = tn;
      if (done) break;
    }
    exact(t, y);
    return t;
  }

  // Process the accepted step `seg` (f0, f1: dv/dt at its ends).
  template <class Refine>
  void step(const LimitModel& model, const Segment& seg, const double* y1, double fv0, double fv1,
            const Refine& exact) {
    const double t0 = seg.t0, t1 = seg.t1();
    double search_from = t0;
    double m_from = std::tanh(seg.y0[0]);
    if (fv0 > 0.0 && fv1 <= 0.0) {  // a local maximum of m inside the step
      auto g_dense = [&](double t) {
        double y[2], f[2];
        seg.eval(t, y);
        model.rhs(y, f);
        return f[0];
      };
      double tr = illinois(g_dense, t0, t1, fv0, fv1);
      double y[2];
      tr = polish(
          tr, t0, t1, exact,
          [&](const double* yy) { double f[2]; model.rhs(yy, f); return f[0]; },
          [&](const double* yy) { double f[2], J[4]; model.rhs_jac(yy, f, J); return J[0] * f[0] + J[1] * f[1]; }, y);
      const double mr = std::tanh(y[0]);
      if (mr > m_peak) {
        m_peak = mr;
        t_peak = tr;
        half_found = false;
        t_half = std::numeric_limits<double>::quiet_NaN();
        search_from = tr;
        m_from = mr;
      }
    }
    const double m1 = std::tanh(y1[0]);
    if (m1 > m_peak) {  // still rising at the step end: provisional peak
      m_peak = m1;
      t_peak = t1;
      half_found = false;
      t_half = std::numeric_limits<double>::quiet_NaN();
      return;
    }
    if (!half_found && m_peak > 0.0) {
      const double target = fraction * m_peak;
      if (m_from > target && m1 <= target) {
        auto g_dense = [&](double t) {
          double y[2];
          seg.eval(t, y);
          return std::tanh(y[0]) - target;
        };
        double th = illinois(g_dense, search_from, t1, m_from - target, m1 - target);
        double y[2];
        t_half = polish(
            th, search_from, t1, exact, [&](const double* yy) { return std::tanh(yy[0]) - target; },
            [&](const double* yy) {
              double m, sech2, f[2];
              tanh_sech2(yy[0], m, sech2);
              model.rhs(yy, f);
              return sech2 * f[0];
            },
            y);
        half_found = true;
      }
    }
  }
};

}  // namespace fastslow::ode
