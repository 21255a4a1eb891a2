// Normalised probabilists' Hermite polynomials h_k = He_k / sqrt(k!) and Gauss-Hermite
// quadrature for the standard normal weight. E[h_j h_k] = delta_jk under N(0, 1).
#pragma once
#include <cmath>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "blas.hpp"

namespace fastslow::hermite {

// h_0(x) .. h_K(x) into out[0..K] by the stable three-term recurrence
//   h_{k+1} = (x h_k - sqrt(k) h_{k-1}) / sqrt(k+1).
inline void values(double x, int K, double* out) {
  out[0] = 1.0;
  if (K >= 1) out[1] = x;
  for (int k = 1; k < K; ++k)
    out[k + 1] = (x * out[k] - std::sqrt(double(k)) * out[k - 1]) / std::sqrt(double(k + 1));
}

struct Quadrature {
  std::vector<double> nodes;    // ascending
  std::vector<double> weights;  // probability weights: sum to 1
};

// N-point Gauss-Hermite rule for E[f(z)], z ~ N(0, 1). Nodes are the eigenvalues of the
// Jacobi matrix (LAPACK dstev, Golub-Welsch), polished by Newton on h_N; weights are the
// Christoffel numbers 1 / sum_{k<N} h_k(x_i)^2, which keep full relative accuracy. Nodes so
// far out that the sum overflows get weight 0 (their true weight is below 1e-300).
inline Quadrature gauss_hermite(int N) {
  if (N < 1 || N > 20000)
    throw std::invalid_argument("gauss_hermite: number of nodes must be in [1, 20000], got " +
                                std::to_string(N));
  std::vector<double> d(N, 0.0), e(N > 1 ? N - 1 : 1, 0.0), work(1);
  for (int k = 1; k < N; ++k) e[k - 1] = std::sqrt(double(k));
  const char jobz = 'N';
  int ldz = 1, info = 0;
  double zdummy = 0.0;
  work.resize(2 * N);
  scipy_dstev_(&jobz, &N, d.data(), e.data(), &zdummy, &ldz, work.data(), &info, 1);
  if (info != 0) throw std::runtime_error("gauss_hermite: LAPACK dstev failed, info=" + std::to_string(info));
  Quadrature q;
  q.nodes = d;
  q.weights.assign(N, 0.0);
  constexpr double big = 1e150;
  for (int i = 0; i < N; ++i) {
    double x = q.nodes[i];
    for (int it = 0; it < 3; ++it) {  // Newton on h_N with rescaling against overflow
      double hm1 = 1.0, h = x;
      if (N == 1) { h = x; hm1 = 1.0; }
      for (int k = 1; k < N; ++k) {
        double hp = (x * h - std::sqrt(double(k)) * hm1) / std::sqrt(double(k + 1));
        hm1 = h;
        h = hp;
        if (std::abs(h) > big) { h /= big; hm1 /= big; }
      }
      double dx = h / (std::sqrt(double(N)) * hm1);  // h_N' = sqrt(N) h_{N-1}
      if (!std::isfinite(dx)) break;
      x -= dx;
      if (std::abs(dx) <= 1e-16 * (1.0 + std::abs(x))) break;
    }
    q.nodes[i] = x;
    double hm1 = 1.0, h = x, sum = 1.0;
    bool overflow = false;
    if (N > 1) sum += x * x;
    for (int k = 1; k + 1 < N; ++k) {
      double hp = (x * h - std::sqrt(double(k)) * hm1) / std::sqrt(double(k + 1));
      hm1 = h;
      h = hp;
      sum += h * h;
      if (!(sum < 1e300)) { overflow = true; break; }
    }
    q.weights[i] = overflow ? 0.0 : 1.0 / sum;
  }
  return q;
}

// c_k = sum_i w_i f(x_i) h_k(x_i), k = 0..K: the Hermite projection of sampled values.
inline std::vector<double> project(std::span<const double> values, std::span<const double> nodes,
                                   std::span<const double> weights, int K) {
  if (values.size() != nodes.size() || weights.size() != nodes.size())
    throw std::invalid_argument("hermite project: values, nodes and weights differ in length");
  if (K < 0) throw std::invalid_argument("hermite project: order K must be >= 0");
  std::vector<double> c(K + 1, 0.0), h(K + 1);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const double w = weights[i];
    if (w == 0.0) continue;
    const double fw = w * values[i];
    if (!std::isfinite(fw))
      throw std::invalid_argument("hermite project: function value is not finite at node " +
                                  std::to_string(nodes[i]));
    hermite::values(nodes[i], K, h.data());
    for (int k = 0; k <= K; ++k) c[k] += fw * h[k];
  }
  return c;
}

}  // namespace fastslow::hermite
