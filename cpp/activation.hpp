// Named activations sigma(z) with their derivatives, and closed-form Hermite coefficients
// where they exist. Conventions:
//   tanh      tanh(z)
//   erf       erf(z / sqrt 2)                      (the committee-machine convention)
//   relu      max(z, 0)
//   gelu      z Phi(z), Phi the standard normal CDF (exact, not the tanh approximation)
//   sigmoid   1 / (1 + exp(-z))
//   quadratic z^2
//   linear    z
#pragma once
#include <cmath>
#include <numbers>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fastslow {

enum class Activation { Tanh, Erf, Relu, Gelu, Sigmoid, Quadratic, Linear };

inline constexpr std::string_view activation_names[] = {"tanh",    "erf",       "relu",  "gelu",
                                                        "sigmoid", "quadratic", "linear"};

inline Activation activation_from_name(std::string_view name) {
  for (int i = 0; i < int(std::size(activation_names)); ++i)
    if (activation_names[i] == name) return Activation(i);
  std::string msg = "activation: unknown name '";
  msg.append(name);
  msg += "'; allowed: ";
  bool first = true;
  for (auto n : activation_names) {
    if (!first) msg += ", ";
    msg.append(n);
    first = false;
  }
  throw std::invalid_argument(msg);
}

inline double activation_value(Activation a, double z) {
  constexpr double rs2 = 0.70710678118654752440;
  switch (a) {
    case Activation::Tanh: return std::tanh(z);
    case Activation::Erf: return std::erf(z * rs2);
    case Activation::Relu: return z > 0.0 ? z : 0.0;
    case Activation::Gelu: return 0.5 * z * std::erfc(-z * rs2);
    case Activation::Sigmoid:
      return z >= 0.0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
    case Activation::Quadratic: return z * z;
    case Activation::Linear: return z;
  }
  return 0.0;
}

inline double activation_derivative(Activation a, double z) {
  constexpr double rs2 = 0.70710678118654752440;
  constexpr double rs2pi = 0.39894228040143267794;  // 1/sqrt(2 pi)
  switch (a) {
    case Activation::Tanh: { double t = std::tanh(z); return 1.0 - t * t; }
    case Activation::Erf: return 2.0 * rs2pi * std::exp(-0.5 * z * z);
    case Activation::Relu: return z > 0.0 ? 1.0 : 0.0;
    case Activation::Gelu: return 0.5 * std::erfc(-z * rs2) + z * rs2pi * std::exp(-0.5 * z * z);
    case Activation::Sigmoid: {
      double s = activation_value(a, z);
      return s * (1.0 - s);
    }
    case Activation::Quadratic: return 2.0 * z;
    case Activation::Linear: return 1.0;
  }
  return 0.0;
}

// sigma(z) and sigma'(z) together, sharing the expensive part (one tanh, erf or exp).
inline void activation_value_derivative(Activation a, double z, double& v, double& dv) {
  constexpr double rs2 = 0.70710678118654752440;
  constexpr double rs2pi = 0.39894228040143267794;
  switch (a) {
    case Activation::Tanh: {
      const double t = std::tanh(z);
      v = t;
      dv = 1.0 - t * t;
      return;
    }
    case Activation::Erf:
      v = std::erf(z * rs2);
      dv = 2.0 * rs2pi * std::exp(-0.5 * z * z);
      return;
    case Activation::Relu:
      v = z > 0.0 ? z : 0.0;
      dv = z > 0.0 ? 1.0 : 0.0;
      return;
    case Activation::Gelu: {
      const double Phi = 0.5 * std::erfc(-z * rs2);
      v = z * Phi;
      dv = Phi + z * rs2pi * std::exp(-0.5 * z * z);
      return;
    }
    case Activation::Sigmoid: {
      const double e = std::exp(-std::abs(z));
      const double s = z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
      v = s;
      dv = s * (1.0 - s);
      return;
    }
    case Activation::Quadratic:
      v = z * z;
      dv = 2.0 * z;
      return;
    case Activation::Linear:
      v = z;
      dv = 1.0;
      return;
  }
  v = dv = 0.0;
}

// Closed-form coefficients s_k = E[sigma(z) h_k(z)], k = 0..K, where they exist.
//  relu:  s_0 = 1/sqrt(2 pi), s_1 = 1/2, s_k = He_{k-2}(0) / sqrt(2 pi k!) for k >= 2
//         (zero for odd k >= 3); by the ratio s_{k+2}/s_k = -(k-1)/sqrt((k+1)(k+2)).
//  erf:   from E[sigma(z + t)] = erf(beta t), beta = alpha / sqrt(1 + 2 alpha^2), alpha = 1/sqrt2:
//         s_{2n+1} = (2/sqrt(pi)) (-1)^n beta^(2n+1) sqrt((2n+1)!) / (n! (2n+1)).
inline std::optional<std::vector<double>> closed_form_coefficients(Activation a, int K) {
  std::vector<double> s(K + 1, 0.0);
  const double rs2pi = 0.39894228040143267794;
  switch (a) {
    case Activation::Relu: {
      s[0] = rs2pi;
      if (K >= 1) s[1] = 0.5;
      if (K >= 2) s[2] = rs2pi / std::sqrt(2.0);
      for (int k = 2; k + 2 <= K; k += 2)
        s[k + 2] = -s[k] * double(k - 1) / std::sqrt(double(k + 1) * double(k + 2));
      return s;
    }
    case Activation::Erf: {
      const double beta = 0.5;  // alpha = 1/sqrt(2): beta = alpha / sqrt(1 + 2 alpha^2) = 1/2
      if (K >= 1) s[1] = 2.0 / std::sqrt(std::numbers::pi) * beta;
      for (int k = 1; k + 2 <= K; k += 2) {
        const int n = (k - 1) / 2;  // k = 2n + 1 -> k + 2 = 2n + 3
        s[k + 2] = -s[k] * beta * beta * std::sqrt(double(k + 1) * double(k + 2)) /
                   double(n + 1) * double(2 * n + 1) / double(2 * n + 3);
      }
      return s;
    }
    case Activation::Quadratic:
      s[0] = 1.0;
      if (K >= 2) s[2] = std::sqrt(2.0);
      return s;
    case Activation::Linear:
      if (K >= 1) s[1] = 1.0;
      return s;
    default: return std::nullopt;
  }
}

// E[sigma(z)^2] in closed form where known (used to report the truncation tail exactly).
inline std::optional<double> closed_form_second_moment(Activation a) {
  switch (a) {
    case Activation::Relu: return 0.5;
    case Activation::Erf: return 2.0 / std::numbers::pi * std::asin(0.5);  // E[erf(z/sqrt2)^2]
    case Activation::Quadratic: return 3.0;
    case Activation::Linear: return 1.0;
    default: return std::nullopt;
  }
}

}  // namespace fastslow
