// The mean-field particle system (docs/theory/particles.md): N particles (m_i, a_i) with weights
// w_i (summing to 1), integrated in v_i = artanh m_i,
//
//   dv_i/dt = -lr_w a_i P'(m_i),   da_i/dt = -lr_a P(m_i),   m_i = tanh v_i,
//   P(m) = sum_k s_k R_k m^k,      R_k = s_k M_k - c_k,      M_k = sum_j w_j a_j m_j^k,
//
// and the loss of the limit network L = 1/2 sum_k R_k^2 + const. Only the orders with s_k != 0
// (`orders()`, r of them) couple the particles, so the Jacobian is block-diagonal (2 x 2 per
// particle, the derivatives at fixed R) plus U V^T of rank r (through the R_k):
//
//   D_i = [[-lr_w a_i P''(m_i) sech^2 v_i, -lr_w P'(m_i)], [-lr_a P'(m_i) sech^2 v_i, 0]],
//   U_(i,v),k = -lr_w a_i psi_ik,   U_(i,a),k = -lr_a phi_ik           (d f_i / d R_k),
//   V_(j,v),k = w_j a_j psi_jk sech^2 v_j,   V_(j,a),k = w_j phi_jk     (d R_k / d y_j),
//
// with phi_ik = s_k m_i^k and psi_ik = k s_k m_i^(k-1). With one particle (or all equal) this is
// the 2-D limit ODE of model.hpp exactly. State layout: y[2i] = v_i, y[2i + 1] = a_i. Every sum
// over particles runs in index order, so results do not depend on threads or schedules.
#pragma once
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../model.hpp"

namespace fastslow::particles {

// Per-thread scratch of the evaluations (powers of m, the coefficients of P).
struct Scratch {
  std::vector<double> pw, q;
};

class ParticleSystem {
 public:
  ParticleSystem(const LimitModel& model, std::vector<double> weights)
      : lr_w_(model.lr_w()), lr_a_(model.lr_a()), w_(std::move(weights)) {
    if (w_.empty()) throw std::invalid_argument("weights: a particle system needs at least one particle");
    double total = 0.0;
    for (std::size_t i = 0; i < w_.size(); ++i) {
      if (!(std::isfinite(w_[i]) && w_[i] > 0.0))
        throw std::invalid_argument("weights: entry " + std::to_string(i) + " is " + std::to_string(w_[i]) +
                                    "; weights must be finite and > 0");
      total += w_[i];
    }
    for (double& x : w_) x /= total;  // normalised: the means are weighted averages
    const auto& s = model.s();
    const auto& c = model.c();
    double const_loss = model.extra_loss();
    for (std::size_t k = 0; k < std::max(s.size(), c.size()); ++k) {
      const double sk = k < s.size() ? s[k] : 0.0, ck = k < c.size() ? c[k] : 0.0;
      if (sk != 0.0) {
        orders_.push_back(int(k));
        s_.push_back(sk);
        c_.push_back(ck);
      } else {
        const_loss += 0.5 * ck * ck;  // R_k = -c_k whatever the particles do
      }
    }
    if (orders_.empty()) throw std::invalid_argument("activation coefficients s: all are zero");
    const_loss_ = const_loss;
    kmax_ = orders_.back();
  }

  std::size_t size() const { return w_.size(); }
  int rank() const { return int(orders_.size()); }
  const std::vector<int>& orders() const { return orders_; }
  const std::vector<double>& weights() const { return w_; }
  double lr_w() const { return lr_w_; }
  double lr_a() const { return lr_a_; }

  // R_k (k in orders) at y.
  void residuals(const double* y, double* R, Scratch& sc) const {
    const int r = rank();
    for (int q = 0; q < r; ++q) R[q] = 0.0;
    std::vector<double>& pw = sc.pw;
    pw.resize(std::size_t(kmax_) + 1);
    for (std::size_t i = 0; i < w_.size(); ++i) {
      double m, sech2;
      tanh_sech2(y[2 * i], m, sech2);
      powers(m, pw.data());
      const double wa = w_[i] * y[2 * i + 1];
      for (int q = 0; q < r; ++q) R[q] += wa * pw[std::size_t(orders_[std::size_t(q)])];
    }
    for (int q = 0; q < r; ++q) R[q] = s_[std::size_t(q)] * R[q] - c_[std::size_t(q)];
  }

  // The loss L = 1/2 sum_k R_k^2 + const from the residuals.
  double loss(const double* R) const {
    double L = 0.0;
    for (int q = 0; q < rank(); ++q) L += 0.5 * R[q] * R[q];
    return L + const_loss_;
  }

  // f(y) (R: the residuals at y, filled). With D, U, V non-null also the Jacobian J = D + U V^T:
  // D holds N 2 x 2 blocks (row-major), U and V are 2N x r (row-major, row 2i + p).
  void rhs(const double* y, double* f, double* R, Scratch& sc, double* D = nullptr, double* U = nullptr,
           double* V = nullptr) const {
    residuals(y, R, sc);
    const int r = rank();
    std::vector<double>& pw = sc.pw;
    std::vector<double>& q = sc.q;
    q.resize(std::size_t(r));
    for (int k = 0; k < r; ++k) q[std::size_t(k)] = s_[std::size_t(k)] * R[k];
    const bool jac = D != nullptr;
    for (std::size_t i = 0; i < w_.size(); ++i) {
      double m, sech2;
      tanh_sech2(y[2 * i], m, sech2);
      const double a = y[2 * i + 1];
      powers(m, pw.data());
      double P = 0.0, P1 = 0.0, P2 = 0.0;
      for (int k = 0; k < r; ++k) {
        const int e = orders_[std::size_t(k)];
        const double qk = q[std::size_t(k)];
        P += qk * pw[std::size_t(e)];
        if (e >= 1) P1 += double(e) * qk * pw[std::size_t(e - 1)];
        if (jac && e >= 2) P2 += double(e) * double(e - 1) * qk * pw[std::size_t(e - 2)];
      }
      f[2 * i] = -lr_w_ * a * P1;
      f[2 * i + 1] = -lr_a_ * P;
      if (!jac) continue;
      double* Di = D + 4 * i;
      Di[0] = -lr_w_ * a * P2 * sech2;
      Di[1] = -lr_w_ * P1;
      Di[2] = -lr_a_ * P1 * sech2;
      Di[3] = 0.0;
      double* Uv = U + (2 * i) * std::size_t(r);
      double* Ua = Uv + r;
      double* Vv = V + (2 * i) * std::size_t(r);
      double* Va = Vv + r;
      const double wi = w_[i];
      for (int k = 0; k < r; ++k) {
        const int e = orders_[std::size_t(k)];
        const double sk = s_[std::size_t(k)];
        const double phi = sk * pw[std::size_t(e)];
        const double psi = e >= 1 ? double(e) * sk * pw[std::size_t(e - 1)] : 0.0;
        Uv[k] = -lr_w_ * a * psi;
        Ua[k] = -lr_a_ * phi;
        Vv[k] = wi * a * psi * sech2;
        Va[k] = wi * phi;
      }
    }
  }

  // The weighted means of m_i = tanh v_i and of a_i.
  void means(const double* y, double& m_mean, double& a_mean) const {
    double sm = 0.0, sa = 0.0;
    for (std::size_t i = 0; i < w_.size(); ++i) {
      sm += w_[i] * std::tanh(y[2 * i]);
      sa += w_[i] * y[2 * i + 1];
    }
    m_mean = sm;
    a_mean = sa;
  }

  // d/dt of the weighted mean alignment: sum_i w_i sech^2(v_i) dv_i/dt.
  double mean_alignment_rate(const double* y, const double* f) const {
    double s = 0.0;
    for (std::size_t i = 0; i < w_.size(); ++i) {
      double m, sech2;
      tanh_sech2(y[2 * i], m, sech2);
      s += w_[i] * sech2 * f[2 * i];
    }
    return s;
  }

 private:
  // pw[e] = m^e for e = 0 .. kmax.
  void powers(double m, double* pw) const {
    pw[0] = 1.0;
    for (int e = 1; e <= kmax_; ++e) pw[e] = pw[e - 1] * m;
  }

  double lr_w_, lr_a_;
  std::vector<double> w_;
  std::vector<int> orders_;
  std::vector<double> s_, c_;
  int kmax_ = 0;
  double const_loss_ = 0.0;
};

}  // namespace fastslow::particles
