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

struct Config {
  int d = 0, n = 0, batch = 0;
  double dt = 0.0, lr_w = 0.0, lr_a = 0.0, noise = 0.0;
  std::uint64_t seed = 0;
  double a0 = 0.0, m0 = 0.0;
  int threads = 1;
  Sampler sampler = Sampler::Direct;
};

}  // namespace fastslow::sgd
