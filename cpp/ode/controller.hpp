// Step-size control: the predictive (Gustafsson) controller of RADAU5, as in SciPy's `Radau`,
// and the standard initial-step heuristic of Hairer, Norsett & Wanner.
#pragma once
#include <algorithm>
#include <cmath>

#include "../model.hpp"

namespace fastslow::ode {

struct PredictiveController {
  static constexpr double min_factor = 0.2;
  static constexpr double max_factor = 10.0;
  double h_old = -1.0;          // previous accepted step (negative: none)
  double error_norm_old = -1.0; // its error norm (negative: none)

  // Factor for the next step from the current error norm and step.
  double factor(double h, double error_norm, int error_order) const {
    // x^(1/(error_order+1)), with the common order 3 (a fourth root) done by two square roots.
    auto root = [error_order](double x) {
      return error_order == 3 ? std::sqrt(std::sqrt(x)) : std::pow(x, 1.0 / double(error_order + 1));
    };
    double multiplier = 1.0;
    if (error_norm_old > 0.0 && h_old > 0.0 && error_norm > 0.0)
      multiplier = h / h_old * root(error_norm_old / error_norm);
    if (error_norm == 0.0) return max_factor;
    return std::min(1.0, multiplier) / root(error_norm);
  }
  void accepted(double h, double error_norm) {
    h_old = h;
    error_norm_old = error_norm;
  }
};

inline double initial_step(const LimitModel& model, const double* y0, const double* f0, double span,
                           double rtol, double atol, int error_order) {
  if (span <= 0.0) return 0.0;
  double d0 = 0.0, d1 = 0.0;
  for (int j = 0; j < 2; ++j) {
    const double sc = atol + std::abs(y0[j]) * rtol;
    d0 += (y0[j] / sc) * (y0[j] / sc);
    d1 += (f0[j] / sc) * (f0[j] / sc);
  }
  d0 = std::sqrt(d0 / 2.0);
  d1 = std::sqrt(d1 / 2.0);
  double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
  h0 = std::min(h0, span);
  const double y1[2] = {y0[0] + h0 * f0[0], y0[1] + h0 * f0[1]};
  double f1[2];
  model.rhs(y1, f1);
  double d2 = 0.0;
  for (int j = 0; j < 2; ++j) {
    const double sc = atol + std::abs(y0[j]) * rtol;
    d2 += ((f1[j] - f0[j]) / sc) * ((f1[j] - f0[j]) / sc);
  }
  d2 = std::sqrt(d2 / 2.0) / h0;
  double h1;
  if (!std::isfinite(d2) || (d1 <= 1e-15 && d2 <= 1e-15))
    h1 = std::max(1e-6, h0 * 1e-3);
  else
    h1 = std::pow(0.01 / std::max(d1, d2), 1.0 / double(error_order + 1));
  return std::min({100.0 * h0, h1, span});
}

}  // namespace fastslow::ode
