// The settings of an SGD trainer: sizes, rates, seed, initial condition, threads and the sampler.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace fastslow::sgd {

// How a step gets what it needs of the batch (both exact in distribution; see direct.hpp and
// projected.hpp). Direct: the batch X itself (B x d normals, 4 B d n flops). Projected: its
// projection on span [W; theta] and an independent remainder (B (n + 1) + n d normals, about
// 4 B n^2 + 9 n^2 d flops).
enum class Sampler { Direct = 0, Projected = 1 };

inline Sampler sampler_from_name(const std::string& name) {
  if (name == "direct") return Sampler::Direct;
  if (name == "projected") return Sampler::Projected;
  throw std::invalid_argument("sampler: must be 'direct' or 'projected', got '" + name + "'");
}

inline const char* sampler_name(Sampler s) { return s == Sampler::Direct ? "direct" : "projected"; }

// The initial law of the neurons (python/fastslow/initial.py): the second layer constant (a_i = a0),
// normal (a_i = a0 + a_sigma xi_i) or of two signs (+a0 for the first round(a_positive n) neurons,
// -a0 for the others); the first layer at the fixed alignment m0 or uniform on the sphere.
enum SecondLayer : int { AConstant = 0, ANormal = 1, ASigns = 2 };
enum FirstLayer : int { MFixed = 0, MSphere = 1 };

struct Config {
  int d = 0, n = 0, batch = 0;
  double dt = 0.0, lr_w = 0.0, lr_a = 0.0, noise = 0.0;
  std::uint64_t seed = 0;
  double a0 = 0.0, m0 = 0.0;
  int threads = 1;
  Sampler sampler = Sampler::Direct;
  int a_dist = AConstant, m_dist = MFixed;
  double a_sigma = 0.0, a_positive = 0.5;
};

}  // namespace fastslow::sgd
