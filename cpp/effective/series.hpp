// The power series of the effective dynamics, built from the Model's normalised Hermite
// coefficients s_k (activation) and c_k (target), by Mehler's formula E[h_j(u) h_k(v)] = Q^k delta_jk:
//   K(Q)  = sum_k s_k^2 Q^k                         = E[sigma(u) sigma(v)],   corr(u, v) = Q
//   K1(Q) = sum_k k s_k^2 Q^(k-1)                   = E[sigma'(u) sigma'(v)]
//   K2(Q) = sum_k sqrt((k+1)(k+2)) s_k s_(k+2) Q^k  = E[sigma(u) sigma''(v)]
//   C(m)  = sum_k s_k c_k m^k                       = E[g(z) sigma(lambda)],  corr(z, lambda) = m
//   C1(m) = sum_k k s_k c_k m^(k-1)                 = E[g'(z) sigma'(lambda)]
//   T(m)  = sum_k sqrt((k+1)(k+2)) c_k s_(k+2) m^k  = E[g(z) sigma''(lambda)]
// and the constants E[sigma^2] (the series plus the activation's tail) and E[g^2] (plus the
// target's tail). Plain Horner evaluation in the power basis (|Q|, |m| <= 1: all converge).
#pragma once
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace fastslow::effective {

// p_0 + p_1 x + ... + p_K x^K.
class Polynomial {
 public:
  Polynomial() = default;
  explicit Polynomial(std::vector<double> p) : p_(std::move(p)) {}
  double operator()(double x) const {
    double acc = 0.0;
    for (std::size_t k = p_.size(); k-- > 0;) acc = acc * x + p_[k];
    return acc;
  }
  const std::vector<double>& coefficients() const { return p_; }

 private:
  std::vector<double> p_;
};

class Series {
 public:
  // s, c: Hermite coefficients; s_tail = E[sigma^2] - sum s_k^2, c_tail = E[g^2] - sum c_k^2.
  Series(std::vector<double> s, std::vector<double> c, double s_tail, double c_tail) : c_tail_(c_tail) {
    if (s.empty()) throw std::invalid_argument("activation coefficients s: must not be empty");
    for (const auto* v : {&s, &c})
      for (double x : *v)
        if (!(std::isfinite(x) && std::abs(x) <= 1e100))
          throw std::invalid_argument("Hermite coefficients: must be finite and at most 1e100 in magnitude");
    if (!(std::isfinite(s_tail) && s_tail >= 0.0) || !(std::isfinite(c_tail) && c_tail >= 0.0))
      throw std::invalid_argument("series tails: must be finite and >= 0");
    const std::size_t L = std::max(s.size(), c.size());
    s.resize(L, 0.0);
    c.resize(L, 0.0);
    std::vector<double> pK(L), pK1(L > 1 ? L - 1 : 1, 0.0), pK2(L > 2 ? L - 2 : 1, 0.0), pC(L),
        pC1(L > 1 ? L - 1 : 1, 0.0), pT(L > 2 ? L - 2 : 1, 0.0);
    E_sig2_ = s_tail;
    c2_ = c_tail;
    for (std::size_t k = 0; k < L; ++k) {
      pK[k] = s[k] * s[k];
      pC[k] = s[k] * c[k];
      E_sig2_ += s[k] * s[k];
      c2_ += c[k] * c[k];
      if (k >= 1) {
        pK1[k - 1] = double(k) * s[k] * s[k];
        pC1[k - 1] = double(k) * s[k] * c[k];
      }
      if (k + 2 < L) {
        const double sq = std::sqrt(double((k + 1) * (k + 2)));
        pK2[k] = sq * s[k] * s[k + 2];
        pT[k] = sq * c[k] * s[k + 2];
      }
    }
    K = Polynomial(pK);
    K1 = Polynomial(pK1);
    K2 = Polynomial(pK2);
    C = Polynomial(pC);
    C1 = Polynomial(pC1);
    T = Polynomial(pT);
    c_ = std::move(c);
    K1_one_ = K1(1.0);
    K2_one_ = K2(1.0);
  }

  Polynomial K, K1, K2, C, C1, T;
  double E_sig2() const { return E_sig2_; }   // E[sigma^2]
  double E_g2() const { return c2_; }         // E[g^2]
  double c_tail() const { return c_tail_; }   // the target's neglected tail (enters as noise)
  double K1_one() const { return K1_one_; }   // K1(1)
  double K2_one() const { return K2_one_; }   // K2(1)
  const std::vector<double>& target() const { return c_; }

 private:
  std::vector<double> c_;
  double E_sig2_ = 0.0, c2_ = 0.0, c_tail_ = 0.0, K1_one_ = 0.0, K2_one_ = 0.0;
};

}  // namespace fastslow::effective
