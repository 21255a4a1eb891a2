// The two expectations that set the batch noise of one SGD step (per sample and input direction):
//   E_s = E[r^2 sigma'(lambda_i)^2]                 (a row's own noise: its shrinkage)
//   E_c = E[r^2 sigma'(lambda_i) sigma'(lambda_j)]  (i != j: the noise common to all rows)
// in the symmetric state (m, a, Q) of width n, with q = (Q - m^2) / (1 - m^2) the collective overlap.
// For q > 0 the rows share a unit direction v orthogonal to the teacher: with zeta = v . x,
// rho^2 = m^2 + (1 - m^2) q and omega = (m z + sqrt((1 - m^2) q) zeta) / rho,
//   lambda_i = rho omega + sqrt(1 - rho^2) eta_i         (eta_i independent unit Gaussians),
//   F(omega)  = E[sigma(lambda) | omega],  D1(omega) = E[sigma'(lambda) | omega],
//   D2(omega) = E[sigma'(lambda)^2 | omega],  r = a F(omega) - g(z),
//   E_s = E_{z,zeta}[(r^2 + V_n + extra) D2],  E_c = E_{z,zeta}[(r^2 + V_n + extra) D1^2],
// V_n = a^2 (E[sigma^2] - K(Q)) / n the variance of the finite-width part of f (independent noise),
// extra = label noise + the target's neglected tail. For q < 0 there is no shared direction: q is
// set to 0 in omega and the (negative) a^2 (K(Q) - K(m^2)) joins V_n. Every average is a tensor
// Gauss-Hermite rule over the activation itself (not products of truncated Hermite series, whose
// truncation error the fourth moments amplify): N nodes in each of omega, eta and, for z given
// omega, xi (z = (m / rho) omega + sqrt(1 - m^2 / rho^2) xi).
#pragma once
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../hermite.hpp"
#include "../sgd/functions.hpp"
#include "series.hpp"

namespace fastslow::effective {

struct NoiseTerms {
  double Es, Ec;
};

class NoiseExpectations {
 public:
  NoiseExpectations(const Series& series, sgd::Function activation, double label_noise, int nodes)
      : series_(&series), act_(std::move(activation)), extra_(label_noise + series.c_tail()) {
    if (nodes < 2 || nodes > 200)
      throw std::invalid_argument("quadrature nodes: must be from 2 to 200, got " + std::to_string(nodes));
    if (!(std::isfinite(label_noise) && label_noise >= 0.0))
      throw std::invalid_argument("noise: the label-noise variance must be finite and >= 0");
    const auto q = hermite::gauss_hermite(nodes);
    x_ = q.nodes;
    w_ = q.weights;
    // the target's Hermite series (its tail is treated as noise, in extra_), up to its last nonzero order
    const auto& cs = series.target();
    std::size_t kc = cs.size();
    while (kc > 0 && cs[kc - 1] == 0.0) --kc;
    c_.assign(cs.begin(), cs.begin() + std::ptrdiff_t(kc));
    rk_.resize(kc + 1);
    for (std::size_t k = 0; k <= kc; ++k) rk_[k] = std::sqrt(double(k));
  }

  // g(z) = sum_k c_k h_k(z) by the three-term recurrence.
  double target(double z) const {
    const std::size_t K = c_.size();
    if (K == 0) return 0.0;
    double hm1 = 1.0, h = z, acc = c_[0];
    if (K > 1) acc += c_[1] * z;
    for (std::size_t k = 1; k + 1 < K; ++k) {
      const double hp = (z * h - rk_[k] * hm1) / rk_[k + 1];
      acc += c_[k + 1] * hp;
      hm1 = h;
      h = hp;
    }
    return acc;
  }

  int nodes() const { return int(x_.size()); }

  // inv_n = 1/n (0 for the infinitely wide network).
  NoiseTerms operator()(double m, double a, double Q, double inv_n) const {
    const Series& S = *series_;
    const double m2 = m * m;
    const double q = (Q - m2) / (1.0 - m2);
    const double qp = std::max(q, 0.0);
    const double rho2 = m2 + (1.0 - m2) * qp;
    const double rho = std::sqrt(rho2);
    const double KQ = S.K(Q);
    const double Vn = a * a * (inv_n * (S.E_sig2() - KQ) + (1.0 - inv_n) * (KQ - S.K(rho2)));
    const double base = extra_ + Vn;
    // (z, omega) are jointly Gaussian with correlation c = m / rho: integrate over omega and an
    // independent xi, z = c omega + sqrt(1 - c^2) xi, so the conditional averages over eta are needed
    // at the N nodes of omega only (N^2 activation calls, not N^3); g is a short polynomial.
    const double c = rho > 0.0 ? m / rho : 0.0, sc = std::sqrt(std::max(0.0, 1.0 - c * c));
    const double sres = std::sqrt(1.0 - rho2);
    const std::size_t N = x_.size();
    double Es = 0.0, Ec = 0.0;
    for (std::size_t i = 0; i < N; ++i) {
      double F = 0.0, D1 = 0.0, D2 = 0.0;  // E[sigma | omega], E[sigma' | omega], E[sigma'^2 | omega]
      const double c0 = rho * x_[i];
      for (std::size_t k = 0; k < N; ++k) {
        double v, dv;
        act_.eval(c0 + sres * x_[k], v, dv);
        F += w_[k] * v;
        D1 += w_[k] * dv;
        D2 += w_[k] * dv * dv;
      }
      double r2m = 0.0;  // E[(a F - g(z))^2 | omega] + the rest
      if (sc == 0.0) {
        const double r = a * F - target(c * x_[i]);
        r2m = r * r;
      } else {
        for (std::size_t j = 0; j < N; ++j) {
          const double r = a * F - target(c * x_[i] + sc * x_[j]);
          r2m += w_[j] * r * r;
        }
      }
      const double r2 = r2m + base;
      Es += w_[i] * r2 * D2;
      Ec += w_[i] * r2 * D1 * D1;
    }
    return {Es, Ec};
  }

 private:
  const Series* series_;
  sgd::Function act_;
  double extra_;
  std::vector<double> x_, w_, c_, rk_;
};

}  // namespace fastslow::effective
