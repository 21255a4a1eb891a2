// One step of the effective map of the finite network: the mean of one SGD step with its exact row
// normalisation, in the symmetric state (m, a, Q), Q = w_i . w_j (i != j) = m^2 + (1 - m^2) q.
//
// Population part (exact for the symmetric finite network; inv = 1/n), G_i / a = alpha w_i +
// beta wbar_{-i} - C1(m) theta by Stein's lemma and Mehler's formula:
//   alpha = a [(K1(1) + K2(1)) inv + (1 - inv) K2(Q)] - T(m),   beta = a (1 - inv) K1(Q),
//   Qt = Q + (1 - Q)/(n - 1),   W2 = Q + (n - 2)(1 - Q)/(n - 1)^2,
//   tG = (alpha + beta) m - C1,  wG = alpha + beta Q - C1 m,  xG = alpha Q + beta Qt - C1 m,
//   GG  = alpha^2 + beta^2 Qt + C1^2 + 2 alpha beta Q - 2 (alpha + beta) C1 m,
//   GGx = alpha^2 Q + 2 alpha beta Qt + beta^2 W2 - 2 (alpha + beta) C1 m + C1^2.
// Noise part: Sigma_s = (d/B) a^2 E_s, Sigma_c = (d/B) a^2 E_c (noise.hpp). The step (eta = lr_w dt):
//   N^2 = 1 - 2 eta a wG + eta^2 (a^2 GG + Sigma_s),   m' = (m - eta a tG) / N,
//   Q'  = (Q - 2 eta a xG + eta^2 (a^2 GGx + Sigma_c)) / N^2,
//   a'  = a - lr_a dt [a (E[sigma^2]/n + (1 - 1/n) K(Q)) - C(m)].
// With n = infinity, d/B = 0 and Q = m^2 this is the exact discrete-time limit map (q stays 0).
#pragma once
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "noise.hpp"
#include "series.hpp"

namespace fastslow::effective {

// Which terms a step keeps (the ablations). noise: Sigma_s (and Sigma_c if collective);
// collective: Q evolves (else Q = m^2, q = 0 throughout); feedback: the m- and a-steps see Q
// (else they see m^2 while Q still evolves).
struct Terms {
  bool noise = true, collective = true, feedback = true;
};

// The sizes of one setting: inv_n = 1/n (0: infinitely wide), ratio = d/B (0: no batch noise).
struct Setting {
  double inv_n = 0.0, ratio = 0.0;
  Terms terms;
};

struct State {
  double m, a, Q;
};

struct Geometry {
  double tG, wG, xG, GG, GGx;
};

class EffectiveMap {
 public:
  EffectiveMap(Series series, sgd::Function activation, double lr_w, double lr_a, double label_noise, int nodes)
      : series_(std::move(series)), noise_(series_, std::move(activation), label_noise, nodes), lr_w_(lr_w),
        lr_a_(lr_a), label_noise_(label_noise) {
    if (!(std::isfinite(lr_w) && lr_w > 0.0)) throw std::invalid_argument("lr_w: must be finite and > 0");
    if (!(std::isfinite(lr_a) && lr_a > 0.0)) throw std::invalid_argument("lr_a: must be finite and > 0");
  }
  EffectiveMap(const EffectiveMap&) = delete;  // noise_ points into series_
  EffectiveMap& operator=(const EffectiveMap&) = delete;

  const Series& series() const { return series_; }
  const NoiseExpectations& noise() const { return noise_; }
  double lr_w() const { return lr_w_; }
  double lr_a() const { return lr_a_; }

  Geometry geometry(double m, double a, double Q, double inv_n) const {
    const Series& S = series_;
    // 1/(n - 1) = inv / (1 - inv); W2 - Q = (n - 2)/(n - 1)^2 (1 - Q) = inv (1 - 2 inv)/(1 - inv)^2 (1 - Q)
    const double inv1 = inv_n / (1.0 - inv_n);
    const double C1 = S.C1(m);
    const double alpha = a * ((S.K1_one() + S.K2_one()) * inv_n + (1.0 - inv_n) * S.K2(Q)) - S.T(m);
    const double beta = a * (1.0 - inv_n) * S.K1(Q);
    const double Qt = Q + (1.0 - Q) * inv1;
    const double W2 = Q + (1.0 - Q) * inv_n * (1.0 - 2.0 * inv_n) / ((1.0 - inv_n) * (1.0 - inv_n));
    Geometry g;
    g.tG = (alpha + beta) * m - C1;
    g.wG = alpha + beta * Q - C1 * m;
    g.xG = alpha * Q + beta * Qt - C1 * m;
    g.GG = alpha * alpha + beta * beta * Qt + C1 * C1 + 2.0 * alpha * beta * Q - 2.0 * (alpha + beta) * C1 * m;
    g.GGx = alpha * alpha * Q + 2.0 * alpha * beta * Qt + beta * beta * W2 - 2.0 * (alpha + beta) * C1 * m + C1 * C1;
    return g;
  }

  State step(const State& x, double dt, const Setting& s) const {
    const Series& S = series_;
    const double m = x.m, a = x.a, Q = x.Q;
    const double eta = lr_w_ * dt;
    const bool sees_Q = s.terms.feedback && s.terms.collective;
    const double Qe = sees_Q ? Q : m * m;
    const Geometry g = geometry(m, a, Qe, s.inv_n);
    double Sig_s = 0.0, Sig_c = 0.0;
    if (s.terms.noise && s.ratio > 0.0) {
      const NoiseTerms e = noise_(m, a, Qe, s.inv_n);
      Sig_s = s.ratio * a * a * e.Es;
      Sig_c = s.terms.collective ? s.ratio * a * a * e.Ec : 0.0;
    }
    const double N2 = 1.0 - 2.0 * eta * a * g.wG + eta * eta * (a * a * g.GG + Sig_s);
    State y;
    y.m = (m - eta * a * g.tG) / std::sqrt(N2);
    if (s.terms.collective) {
      double N2q = N2, xG = g.xG, GGx = g.GGx;
      if (!sees_Q) {  // Q keeps its own restoring drift; the m- and a-steps do not see it
        const Geometry gq = geometry(m, a, Q, s.inv_n);
        N2q = 1.0 - 2.0 * eta * a * gq.wG + eta * eta * (a * a * gq.GG + Sig_s);
        xG = gq.xG;
        GGx = gq.GGx;
      }
      y.Q = (Q - 2.0 * eta * a * xG + eta * eta * (a * a * GGx + Sig_c)) / N2q;
    } else {
      y.Q = y.m * y.m;
    }
    y.a = a - lr_a_ * dt * (a * (s.inv_n * S.E_sig2() + (1.0 - s.inv_n) * S.K(Qe)) - S.C(m));
    return y;
  }

  // The population loss of the finite network in the state (its self terms see Q when fed back).
  double loss(const State& x, const Setting& s) const {
    const Series& S = series_;
    const double Qe = (s.terms.feedback && s.terms.collective) ? x.Q : x.m * x.m;
    const double self = s.inv_n * S.E_sig2() + (1.0 - s.inv_n) * S.K(Qe);
    return 0.5 * (x.a * x.a * self - 2.0 * x.a * S.C(x.m) + S.E_g2() + label_noise_);
  }

  static double q_perp(const State& x) { return (x.Q - x.m * x.m) / (1.0 - x.m * x.m); }

 private:
  Series series_;
  NoiseExpectations noise_;
  double lr_w_, lr_a_, label_noise_;
};

}  // namespace fastslow::effective
