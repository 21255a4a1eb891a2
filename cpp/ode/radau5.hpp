// Radau IIA of order 5 (3 stages) for the 2-D limit ODE in y = (v, a).
//
// Order 5 at the step ends, stage order 3, L-stable (its stability function vanishes at
// infinity), so the fast direction is damped however stiff the system is. The collocation
// equations are solved by Newton's method with the exact stage Jacobians (see
// radau5_collocation for why not RADAU5's simplified Newton); the Jacobian is the analytic one of
// the model. The embedded error estimate is the order-3 one of Hairer & Wanner (RADAU5, also
// SciPy's `Radau`), filtered through (MU_REAL/h - J)^-1, which keeps it bounded on stiff
// components; the step-size controller is their predictive (Gustafsson) one. As in RADAU5, the
// user's tolerances are mapped to rtol' = 0.1 rtol^(2/3), atol' = rtol' atol / rtol before they
// meet that order-3 estimate, so that the error of the order-5 solution comes out near rtol.
// A Newton iteration predicted to miss its tolerance shrinks the step by its predicted shortfall.
#pragma once
#include <cmath>
#include <algorithm>
#include <limits>
#include <utility>

#include "../model.hpp"

namespace fastslow::ode {

struct Radau5 {
  static constexpr int order = 5;
  static constexpr int error_order = 3;  // order of the embedded error estimate
  static constexpr int newton_maxiter = 7;

  static constexpr double S6 = 2.449489742783178098197284;  // sqrt 6
  static constexpr double C[3] = {(4.0 - S6) / 10.0, (4.0 + S6) / 10.0, 1.0};
  // Butcher matrix.
  static constexpr double A[3][3] = {
      {(88.0 - 7.0 * S6) / 360.0, (296.0 - 169.0 * S6) / 1800.0, (-2.0 + 3.0 * S6) / 225.0},
      {(296.0 + 169.0 * S6) / 1800.0, (88.0 + 7.0 * S6) / 360.0, (-2.0 - 3.0 * S6) / 225.0},
      {(16.0 - S6) / 36.0, (16.0 + S6) / 36.0, 1.0 / 9.0}};
  // Error estimate weights and the real eigenvalue of the inverse Butcher matrix (RADAU5).
  static constexpr double E[3] = {(-13.0 - 7.0 * S6) / 3.0, (-13.0 + 7.0 * S6) / 3.0, -1.0 / 3.0};
  static constexpr double MU_REAL = 3.637834252744495732;  // 3 + 3^(2/3) - 3^(1/3)
  // Collocation polynomial: y(t_old + x h) = y_old + sum_j Q_j x^(j+1), Q = Z^T P.
  static constexpr double P[3][3] = {{13.0 / 3.0 + 7.0 * S6 / 3.0, -23.0 / 3.0 - 22.0 * S6 / 3.0, 10.0 / 3.0 + 5.0 * S6},
                                     {13.0 / 3.0 - 7.0 * S6 / 3.0, -23.0 / 3.0 + 22.0 * S6 / 3.0, 10.0 / 3.0 - 5.0 * S6},
                                     {1.0 / 3.0, -8.0 / 3.0, 10.0 / 3.0}};
};

// (MU_REAL/h I - J)^-1, 2x2, for the error estimate.
struct Radau5Matrices {
  double inv_r[4];
  bool ok = false;

  void factor(double h, const double* J) {
    const double mr = Radau5::MU_REAL / h;
    const double a = mr - J[0], b = -J[1], c = -J[2], d = mr - J[3];
    const double det = a * d - b * c;
    ok = std::isfinite(det) && det != 0.0;
    if (!ok) return;
    inv_r[0] = d / det; inv_r[1] = -b / det; inv_r[2] = -c / det; inv_r[3] = a / det;
  }
  void solve_real(const double* r, double* x) const {
    const double x0 = inv_r[0] * r[0] + inv_r[1] * r[1];
    x[1] = inv_r[2] * r[0] + inv_r[3] * r[1];
    x[0] = x0;
  }
};

inline double rms2(double x, double y) { return std::sqrt(0.5 * (x * x + y * y)); }

// LU factorisation with partial pivoting of a 6x6 matrix, and the matching solve.
struct LU6 {
  double a[6][6];
  int piv[6];
  bool factor() {
    for (int c = 0; c < 6; ++c) {
      int p = c;
      for (int r = c + 1; r < 6; ++r)
        if (std::abs(a[r][c]) > std::abs(a[p][c])) p = r;
      piv[c] = p;
      if (!(std::abs(a[p][c]) > 0.0) || !std::isfinite(a[p][c])) return false;
      if (p != c)
        for (int k = 0; k < 6; ++k) std::swap(a[c][k], a[p][k]);
      const double inv = 1.0 / a[c][c];
      for (int r = c + 1; r < 6; ++r) {
        const double f = a[r][c] * inv;
        a[r][c] = f;
        for (int k = c + 1; k < 6; ++k) a[r][k] -= f * a[c][k];
      }
    }
    return true;
  }
  void solve(double (&b)[6]) const {
    for (int c = 0; c < 6; ++c)  // the row interchanges first (P b), as LAPACK's getrs does
      if (piv[c] != c) std::swap(b[c], b[piv[c]]);
    for (int c = 0; c < 6; ++c)
      for (int r = c + 1; r < 6; ++r) b[r] -= a[r][c] * b[c];
    for (int c = 5; c >= 0; --c) {
      double x = b[c];
      for (int k = c + 1; k < 6; ++k) x -= a[c][k] * b[k];
      b[c] = x / a[c][c];
    }
  }
};

// Solve the collocation equations Z_i = h sum_j A_ij f(y + Z_j) for the stage increments Z (3 x 2)
// by Newton's method with stage Jacobians: the 6x6 iteration matrix I - h (A x J_j) uses the
// Jacobian at each stage's own predicted state; it is factorised once and reused (a chord
// iteration) while the iteration contracts fast enough, and rebuilt at the current iterate once
// if it does not. (Measured: the same number of right-hand sides as rebuilding it at every
// iteration, 43% fewer Jacobians, about 15% less time.)
//
// Why not RADAU5's simplified Newton (one Jacobian for all stages)? On the slow manifold the
// effective Jacobian of the slow variable is a small difference of large terms
// (J_aa - J_av J_va / J_vv); a Jacobian frozen at the step start, off by a percent across a long
// step, gets that difference wrong by O(1) and the iteration stalls, capping the step at a few
// percent of t. With stage Jacobians the step is limited by accuracy alone, so the step count
// grows only logarithmically with the horizon.
//
// Returns whether it converged. On failure, `shrink` is the factor by which to reduce the step
// (Hairer & Wanner: from the predicted shortfall of the iteration, or 1/2 when it diverges).
inline bool radau5_collocation(const LimitModel& model, const double* y, double h,
                               const double (&Z0)[3][2], const double* scale, double tol,
                               double (&Z)[3][2], int& n_iter, double& rate, double& shrink,
                               long& nfev, long& njev, long& nlu) {
  using R = Radau5;
  shrink = 0.5;
  double faccon = 1.0;  // rate / (1 - rate): predicted remaining error per unit correction
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) Z[i][j] = Z0[i][j];
  double dZ_norm_old = -1.0;
  rate = -1.0;
  bool converged = false;
  LU6 lu;
  bool need_jac = true;  // Jacobians at the current stage iterates, refactorised
  int refreshes = 0;
  int k = 0;
  for (; k < R::newton_maxiter; ++k) {
    double F[3][2], Jst[3][4];
    bool finite = true;
    for (int i = 0; i < 3; ++i) {
      const double yi[2] = {y[0] + Z[i][0], y[1] + Z[i][1]};
      if (need_jac) {
        model.rhs_jac(yi, F[i], Jst[i]);
        for (int q = 0; q < 4; ++q) finite = finite && std::isfinite(Jst[i][q]);
      } else {
        model.rhs(yi, F[i]);
      }
      for (int q = 0; q < 2; ++q) finite = finite && std::isfinite(F[i][q]);
    }
    nfev += 3;
    if (!finite) break;
    if (need_jac) {
      njev += 3;
      for (int i = 0; i < 3; ++i)
        for (int p = 0; p < 2; ++p)
          for (int j = 0; j < 3; ++j)
            for (int q = 0; q < 2; ++q)
              lu.a[2 * i + p][2 * j + q] = (i == j && p == q ? 1.0 : 0.0) - h * R::A[i][j] * Jst[j][2 * p + q];
      nlu++;
      if (!lu.factor()) break;
      need_jac = false;
    }
    double b[6];
    for (int i = 0; i < 3; ++i)
      for (int p = 0; p < 2; ++p) {
        double g = Z[i][p];
        for (int j = 0; j < 3; ++j) g -= h * R::A[i][j] * F[j][p];
        b[2 * i + p] = -g;
      }
    lu.solve(b);
    double ss = 0.0;
    for (int i = 0; i < 3; ++i)
      for (int p = 0; p < 2; ++p) ss += (b[2 * i + p] / scale[p]) * (b[2 * i + p] / scale[p]);
    const double dZ_norm = std::sqrt(ss / 6.0);
    if (!std::isfinite(dZ_norm)) break;
    if (dZ_norm_old >= 0.0) rate = dZ_norm / dZ_norm_old;
    if (rate >= 0.0) {
      if (rate < 0.99) faccon = rate / (1.0 - rate);
      const double predicted = rate < 1.0 ? ipow(rate, R::newton_maxiter - 1 - k) / (1.0 - rate) * dZ_norm / tol : 2e1;
      if (rate >= 0.99 || predicted >= 1.0) {
        if (refreshes == 0 && k + 2 < R::newton_maxiter) {
          // The chord iteration is too slow: refresh the stage Jacobians at the current iterate
          // (taking this correction unless it diverges) and continue with a new rate estimate.
          if (rate < 0.99)
            for (int i = 0; i < 3; ++i)
              for (int p = 0; p < 2; ++p) Z[i][p] += b[2 * i + p];
          ++refreshes;
          need_jac = true;
          dZ_norm_old = -1.0;
          rate = -1.0;
          continue;
        }
        if (rate >= 0.99) break;  // diverging: halve the step
        const double q = std::max(1e-4, std::min(20.0, predicted));
        shrink = 0.8 * std::pow(q, -1.0 / (4.0 + R::newton_maxiter - 1 - k));
        break;
      }
    }
    for (int i = 0; i < 3; ++i)
      for (int p = 0; p < 2; ++p) Z[i][p] += b[2 * i + p];
    // Converged when the predicted remaining error is below tol: from the contraction rate once it
    // is measured, and at the first iteration only when the correction itself is that small.
    // (RADAU5 carries the previous step's rate over to accept after one iteration; that rate says
    // nothing about the iteration from a new predictor, and trusting it, or a quadratic error
    // model, lost two to three digits of accuracy on long steps.)
    if (dZ_norm == 0.0 || (rate >= 0.0 ? faccon * dZ_norm <= tol : dZ_norm <= tol)) {
      converged = true;
      break;
    }
    dZ_norm_old = dZ_norm;
  }
  n_iter = k + 1;
  return converged;
}

}  // namespace fastslow::ode
