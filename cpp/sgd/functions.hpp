// Scalar functions for the simulator: an activation or a target, given by name (exact) or as a
// normalised Hermite series sum_k c_k h_k(u), evaluated with its derivative.
#pragma once
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "../activation.hpp"
#include "../model.hpp"  // FASTSLOW_HOT

namespace fastslow::sgd {

// tanh and its derivative over a row of float32 values, in place (uv: in u, out tanh(u) - offset;
// dv: tanh'(u)). A rational minimax approximation on [-9, 9] (the one of Eigen's fast tanh),
// within 4e-7 of tanh: float32 accuracy, with no libm call, so the loop vectorises.
FASTSLOW_HOT inline void tanh_row_f32(float* uv, float* __restrict dv, int n, float offset) {
  for (int i = 0; i < n; ++i) {
    // clamp with std::min/max (vector min/max; std::fmin/fmax are library calls that stop the
    // vectoriser); adding 0 * u keeps a NaN or infinite input NaN instead of clamping it to +-9,
    // so a divergence still shows
    const float u = uv[i];
    const float x = std::min(9.0f, std::max(-9.0f, u)) + 0.0f * u;
    const float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    const float t = x * p / q;
    uv[i] = t - offset;
    dv[i] = 1.0f - t * t;
  }
}

class Function {
 public:
  Function() = default;
  // A named function minus `offset` (offset = s_0 for a centred activation).
  static Function named(const std::string& name, double offset) {
    Function f;
    f.named_ = true;
    f.kind_ = activation_from_name(name);
    f.offset_ = offset;
    if (!std::isfinite(offset)) throw std::invalid_argument("activation offset: must be finite");
    return f;
  }
  static Function hermite(std::vector<double> coef, const char* field) {
    Function f;
    if (coef.empty()) throw std::invalid_argument(std::string(field) + ": Hermite coefficients must not be empty");
    for (std::size_t k = 0; k < coef.size(); ++k)
      if (!std::isfinite(coef[k]))
        throw std::invalid_argument(std::string(field) + ": coefficient " + std::to_string(k) + " is not finite");
    f.coef_ = std::move(coef);
    const std::size_t K = f.coef_.size();
    f.rk_.resize(K + 1);
    for (std::size_t k = 0; k <= K; ++k) f.rk_[k] = std::sqrt(double(k));
    return f;
  }

  // value and derivative at u
  void eval(double u, double& v, double& dv) const {
    if (named_) {
      activation_value_derivative(kind_, u, v, dv);
      v -= offset_;
      return;
    }
    // h_0 = 1, h_1 = u, h_{k+1} = (u h_k - sqrt(k) h_{k-1}) / sqrt(k+1); h_k' = sqrt(k) h_{k-1}
    const std::size_t K = coef_.size() - 1;
    double hm1 = 1.0, h = u;
    v = coef_[0];
    dv = 0.0;
    if (K >= 1) {
      v += coef_[1] * u;
      dv += coef_[1];
    }
    for (std::size_t k = 1; k < K; ++k) {
      const double hp = (u * h - rk_[k] * hm1) / rk_[k + 1];
      dv += coef_[k + 1] * rk_[k + 1] * h;
      v += coef_[k + 1] * hp;
      hm1 = h;
      h = hp;
    }
  }
  // Values and derivatives over a row, in place: uv holds u on entry and f(u) on exit.
  template <class T>
  void eval_row(T* uv, T* dv, int n) const {
    if constexpr (std::is_same_v<T, float>) {
      if (named_ && kind_ == Activation::Tanh) {
        tanh_row_f32(uv, dv, n, float(offset_));
        return;
      }
    }
    for (int i = 0; i < n; ++i) {
      double v, d;
      eval(double(uv[i]), v, d);
      uv[i] = T(v);
      dv[i] = T(d);
    }
  }

  double value(double u) const {
    double v, dv;
    eval(u, v, dv);
    return v;
  }

 private:
  bool named_ = false;
  Activation kind_ = Activation::Tanh;
  double offset_ = 0.0;
  std::vector<double> coef_, rk_;
};

}  // namespace fastslow::sgd
