// Dense output: the collocation polynomial of each accepted Radau IIA step,
//   y(t0 + x h) = y0 + Q_1 x + Q_2 x^2 + Q_3 x^3,  x in [0, 1],
// which passes through the step's start, its three stage values and its end. Its error is
// O(h^4) (the stage order plus one); unlike a Hermite interpolant built from f(y) at the step
// ends it does not amplify the tolerance-level deviations of stiff components by the stiffness.
// Values at requested times and events do not rely on it alone: they are recomputed by an exact
// Radau step from the step start (see solve.hpp), so they carry the integrator's accuracy.
#pragma once
#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

namespace fastslow::ode {

struct Segment {
  double t0, h;
  double y0[2];
  double Q[2][3];

  double t1() const { return t0 + h; }
  void eval(double t, double* y) const {
    const double x = h > 0.0 ? (t - t0) / h : 0.0;
    for (int j = 0; j < 2; ++j) y[j] = y0[j] + x * (Q[j][0] + x * (Q[j][1] + x * Q[j][2]));
  }
  // The end point exactly (x = 1).
  void end(double* y) const {
    for (int j = 0; j < 2; ++j) y[j] = y0[j] + Q[j][0] + Q[j][1] + Q[j][2];
  }
};

// Evaluate stored segments (sorted in t) at arbitrary times into out_y (pairs v, a).
inline void dense_evaluate(std::span<const Segment> segs, std::span<const double> t, double* out_y) {
  for (std::size_t i = 0; i < t.size(); ++i) {
    const double ti = t[i];
    auto it = std::upper_bound(segs.begin(), segs.end(), ti, [](double x, const Segment& s) { return x < s.t0; });
    std::size_t k = std::size_t(it - segs.begin());
    k = k == 0 ? 0 : k - 1;
    segs[k].eval(ti, out_y + 2 * i);
  }
}

}  // namespace fastslow::ode
