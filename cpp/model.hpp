// The limit model: population loss L(m, a) of the infinite-width network and its derivatives,
// and the ODE right-hand side and Jacobian in the coordinates (v = artanh m, a).
//
// With P_k = s_k m^k,  L = 1/2 sum_k (a P_k - c_k)^2 + const = 1/2 a^2 A(m) - a B(m) + C0, where
//   A(m) = sum_k s_k^2 m^(2k),
//   B(m) = sum_k s_k c_k m^k,
//   C0   = 1/2 sum_k c_k^2 + extra   (extra: the target's neglected tail and noise / 2).
// The ODE is dv/dt = -lr_w dL/dm (tanh v, a), da/dt = -lr_a dL/da.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

// Hot kernels are compiled twice, for x86-64-v3 (AVX2 + FMA) and for the baseline, and the
// loader picks the version the CPU supports (GCC/Clang function multiversioning), so one
// portable binary still gets fused multiply-adds where the machine has them.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(FASTSLOW_NO_MULTIVERSION)
#define FASTSLOW_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
// An entry point whose whole call tree is inlined into each clone (`flatten`), so that the
// model's series, the Newton iteration and the linear algebra all get the clone's instructions.
// GCC (12) treats a target_clones function as not throwing: an exception leaving one calls
// std::terminate, so such a function must catch everything itself (see ode::solve_dispatch).
#define FASTSLOW_HOT_TREE __attribute__((flatten, target_clones("arch=x86-64-v3", "default")))
#else
#define FASTSLOW_HOT
#define FASTSLOW_HOT_TREE
#endif

namespace fastslow {

struct LossDerivs {
  double L, Lm, La, Lmm, Lma, Laa;
};

inline double ipow(double x, int k) {
  switch (k) {  // the common small exponents without a loop
    case 0: return 1.0;
    case 1: return x;
    case 2: return x * x;
    case 4: { const double x2 = x * x; return x2 * x2; }
    default: {
      double r = 1.0;
      for (; k > 0; --k) r *= x;
      return r;
    }
  }
}

// Four doubles: with AVX2 one register, otherwise two SSE2 halves (GCC/Clang vector extension).
typedef double v4d __attribute__((vector_size(32)));

// A power series F(m) = sum_e F_e m^e over the exponents e = p + q j that actually occur, with
// its first two derivatives, each stored as F^(r)(m) = m^b(r) P_r(m^q): parity and sparsity (tanh
// has only odd coefficients, a target often two or three) cost nothing at evaluation. The three
// polynomials P_0, P_1, P_2 are evaluated together: their coefficients of w^j are interleaved as
// lanes of one vector, and four Horner chains in w^4 run side by side, so one pass over the
// coefficients gives F, F' and F'' at the machine's throughput rather than its FMA latency.
class PowerSeries {
 public:
  PowerSeries() = default;
  explicit PowerSeries(const std::vector<double>& coef_by_exponent) {
    std::vector<int> e;
    for (std::size_t k = 0; k < coef_by_exponent.size(); ++k)
      if (coef_by_exponent[k] != 0.0) e.push_back(int(k));
    if (e.empty()) return;
    const int p = e.front();
    int q = 0;
    for (int x : e) q = std::gcd(q, x - p);
    if (q == 0) q = 1;
    q_ = q;
    const int J = (e.back() - p) / q;
    std::vector<double> c[3];
    for (int r = 0; r < 3; ++r) {
      int j0 = 0;
      while (j0 <= J && p + q * j0 < r) ++j0;
      base_[r] = j0 <= J ? p + q * j0 - r : 0;
      for (int j = j0; j <= J; ++j) {
        const int ex = p + q * j;
        double ff = 1.0;
        for (int i = 0; i < r; ++i) ff *= double(ex - i);
        c[r].push_back(coef_by_exponent[std::size_t(ex)] * ff);
      }
    }
    std::size_t len = std::max({c[0].size(), c[1].size(), c[2].size()});
    len = (len + 3) / 4 * 4;
    coef_.assign(len, v4d{0.0, 0.0, 0.0, 0.0});
    for (int r = 0; r < 3; ++r)
      for (std::size_t j = 0; j < c[r].size(); ++j) coef_[j][r] = c[r][j];
    // Length needed in each bin of |m|: for every derivative, the terms left out add up to less
    // than 2^-60 of the sum of the absolute values of all its terms (below round-off), at the
    // bin's upper edge and so (the ratio grows with |m|) everywhere in it.
    for (int b = 0; b < kBins; ++b) {
      const double wb = ipow(double(b + 1) / kBins, q);
      std::size_t need = 4;
      for (int r = 0; r < 3; ++r) {
        std::vector<double> mag(len, 0.0);
        double total = 0.0, pw = 1.0;
        for (std::size_t j = 0; j < c[r].size(); ++j, pw *= wb) total += (mag[j] = std::abs(c[r][j]) * pw);
        std::size_t n = len;
        double tail = 0.0;
        while (n >= 8) {  // drop whole groups of four from the top while the tail stays negligible
          const double grp = mag[n - 1] + mag[n - 2] + mag[n - 3] + mag[n - 4];
          if (tail + grp > 0x1p-60 * total) break;
          tail += grp;
          n -= 4;
        }
        need = std::max(need, n);
      }
      cut_[b] = static_cast<std::uint32_t>(need);
    }
  }
  // F(m), F'(m) and F''(m) (w = m^stride()); the second derivative only when `second`.
  void eval(double m, double w, double& F0, double& F1, double* F2) const {
    if (coef_.empty()) {
      F0 = F1 = 0.0;
      if (F2) *F2 = 0.0;
      return;
    }
    // the bin of |m| (|m| > 1, inf or NaN: the last bin, the full series; converting those to int
    // directly is undefined and gave a wild index, found by fuzzing the raw binding with m = NaN)
    const double x = std::abs(m) * kBins;
    const int b = x < double(kBins - 1) ? int(x) : kBins - 1;
    const std::size_t n = cut_[b];
    const double w2 = w * w, w4 = w2 * w2;
    const v4d* c = coef_.data();
    v4d s0 = {0, 0, 0, 0}, s1 = s0, s2 = s0, s3 = s0;
    for (std::size_t i = n; i >= 4; i -= 4) {
      s0 = s0 * w4 + c[i - 4];
      s1 = s1 * w4 + c[i - 3];
      s2 = s2 * w4 + c[i - 2];
      s3 = s3 * w4 + c[i - 1];
    }
    const v4d P = (s0 + w * s1) + w2 * (s2 + w * s3);
    F0 = ipow(m, base_[0]) * P[0];
    F1 = ipow(m, base_[1]) * P[1];
    if (F2) *F2 = ipow(m, base_[2]) * P[2];
  }
  int stride() const { return q_; }

 private:
  static constexpr int kBins = 64;
  int q_ = 1;
  int base_[3] = {0, 0, 0};
  std::vector<v4d> coef_;
  std::uint32_t cut_[kBins] = {};
};

// tanh v and sech^2 v = 1 - tanh^2 v without cancellation for large |v|.
inline void tanh_sech2(double v, double& m, double& sech2) {
  const double e = std::exp(-2.0 * std::abs(v));
  const double ope = 1.0 + e;
  m = std::copysign((1.0 - e) / ope, v);
  sech2 = 4.0 * e / (ope * ope);
}

class LimitModel {
 public:
  LimitModel(std::vector<double> s, std::vector<double> c, double lr_w, double lr_a,
             double extra_loss = 0.0)
      : s_(std::move(s)), c_(std::move(c)), lr_w_(lr_w), lr_a_(lr_a), extra_(extra_loss) {
    check_array(s_, "activation coefficients s");
    check_array(c_, "target coefficients c");
    if (s_.empty()) throw std::invalid_argument("activation coefficients s: must not be empty");
    if (!(std::isfinite(lr_w) && lr_w > 0.0))
      throw std::invalid_argument("lr_w: must be finite and > 0, got " + std::to_string(lr_w));
    if (!(std::isfinite(lr_a) && lr_a > 0.0))
      throw std::invalid_argument("lr_a: must be finite and > 0, got " + std::to_string(lr_a));
    if (!(std::isfinite(extra_loss) && extra_loss >= 0.0))
      throw std::invalid_argument("extra_loss: must be finite and >= 0");
    std::vector<double> A(2 * s_.size() - 1, 0.0);  // A(m) = sum_k s_k^2 m^(2k)
    for (std::size_t k = 0; k < s_.size(); ++k) A[2 * k] = s_[k] * s_[k];
    const std::size_t KB = std::min(s_.size(), c_.size());
    std::vector<double> B(KB, 0.0);  // B(m) = sum_k s_k c_k m^k
    for (std::size_t k = 0; k < KB; ++k) B[k] = s_[k] * c_[k];
    A_ = PowerSeries(A);
    B_ = PowerSeries(B);
    wA_ = A_.stride();
    wB_ = B_.stride();
    C0_ = extra_;
    for (double ck : c_) C0_ += 0.5 * ck * ck;
  }

  double lr_w() const { return lr_w_; }
  double lr_a() const { return lr_a_; }
  const std::vector<double>& s() const { return s_; }
  const std::vector<double>& c() const { return c_; }
  double extra_loss() const { return extra_; }  // the target's neglected tail and noise / 2

  // L and its derivatives at (m, a); the second derivatives only when `second`.
  LossDerivs derivs(double m, double a, bool second = true) const {
    const double wA = ipow(m, wA_), wB = ipow(m, wB_);
    double A, Am, Amm = 0.0, B, Bm, Bmm = 0.0;
    A_.eval(m, wA, A, Am, second ? &Amm : nullptr);
    B_.eval(m, wB, B, Bm, second ? &Bmm : nullptr);
    LossDerivs d;
    d.L = 0.5 * a * a * A - a * B + C0_;
    d.Lm = 0.5 * a * a * Am - a * Bm;
    d.La = a * A - B;
    d.Laa = A;
    d.Lma = a * Am - Bm;
    d.Lmm = second ? 0.5 * a * a * Amm - a * Bmm : 0.0;
    return d;
  }

  // The series A, A', A'', B, B', B'' at m (for the fast-slow analysis).
  void series(double m, double* out) const {
    A_.eval(m, ipow(m, wA_), out[0], out[1], &out[2]);
    B_.eval(m, ipow(m, wB_), out[3], out[4], &out[5]);
  }

  // Right-hand side in y = (v, a).
  void rhs(const double* y, double* f) const {
    double m, sech2;
    tanh_sech2(y[0], m, sech2);
    const LossDerivs d = derivs(m, y[1], false);
    f[0] = -lr_w_ * d.Lm;
    f[1] = -lr_a_ * d.La;
  }

  // Right-hand side and Jacobian J (row-major 2x2) in y = (v, a).
  void rhs_jac(const double* y, double* f, double* J) const {
    double m, sech2;
    tanh_sech2(y[0], m, sech2);
    const LossDerivs d = derivs(m, y[1]);
    f[0] = -lr_w_ * d.Lm;
    f[1] = -lr_a_ * d.La;
    J[0] = -lr_w_ * d.Lmm * sech2;
    J[1] = -lr_w_ * d.Lma;
    J[2] = -lr_a_ * d.Lma * sech2;
    J[3] = -lr_a_ * d.Laa;
  }

 private:
  static void check_array(const std::vector<double>& x, const char* name) {
    for (std::size_t k = 0; k < x.size(); ++k)
      if (!(std::isfinite(x[k]) && std::abs(x[k]) <= 1e100))  // squares and products stay finite
        throw std::invalid_argument(std::string(name) + ": entry " + std::to_string(k) + " is " +
                                    std::to_string(x[k]) + "; coefficients must be finite and at most 1e100 "
                                    "in magnitude");
  }
  std::vector<double> s_, c_;
  double lr_w_, lr_a_, extra_;
  PowerSeries A_, B_;
  int wA_ = 1, wB_ = 1;
  double C0_ = 0.0;
};

}  // namespace fastslow
