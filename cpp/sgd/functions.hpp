// Scalar functions for the simulator: an activation or a target, given by name (exact) or as a
// normalised Hermite series sum_k c_k h_k(u), evaluated with its derivative.
#pragma once
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../activation.hpp"

namespace fastslow::sgd {

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
