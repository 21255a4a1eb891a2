// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3", SC 2011). Every draw is a pure function of (seed, stream, step, row, block), so a
// run is reproducible whatever the number of threads or the order in which rows are filled.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>

namespace fastslow::rng {

using u32 = std::uint32_t;
using u64 = std::uint64_t;

inline std::array<u32, 4> philox4x32(std::array<u32, 4> ctr, std::array<u32, 2> key) {
  constexpr u32 M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const u64 p0 = u64(M0) * ctr[0], p1 = u64(M1) * ctr[2];
    ctr = {u32(p1 >> 32) ^ ctr[1] ^ key[0], u32(p1), u32(p0 >> 32) ^ ctr[3] ^ key[1], u32(p0)};
    key[0] += W0;
    key[1] += W1;
  }
  return ctr;
}

// Streams: what a draw is for.
// ProjectedBatch: the projected sampler's Z = X Q, rows keyed by the batch row; ProjectedRemainder:
// its Xi (the remainder X (I - Pi) of the batch), rows keyed by the neuron.
enum Stream : u32 { Data = 0, Noise = 1, InitWeights = 2, Teacher = 3, ProjectedBatch = 4, ProjectedRemainder = 5 };
constexpr u32 kStreams = 6;

// Uniform in (0, 1) from 32 random bits (never 0, so log() is finite).
inline double uniform32(u32 x) { return (double(x) + 0.5) * 0x1p-32; }
// Uniform in (0, 1) from 64 random bits (53 used).
inline double uniform64(u32 hi, u32 lo) { return (double((u64(hi) << 21) ^ (lo >> 11)) + 0.5) * 0x1p-53; }

// Standard normals for one "row" of a stream: out[0..len), keyed by (seed, stream, step, row).
// Box-Muller on Philox blocks; `precise` uses 53-bit uniforms (two normals per block) instead of
// 32-bit ones (four per block, tails truncated beyond 6.6 sigma, probability 3e-11).
template <class T>
void normal_row(u64 seed, Stream stream, u64 step, u64 row, T* out, std::size_t len, bool precise) {
  const std::array<u32, 2> key = {u32(seed), u32(seed >> 32)};
  constexpr double two_pi = 6.283185307179586476925286766559;
  std::size_t j = 0;
  for (u32 block = 0; j < len; ++block) {
    // counter: block, row, step (low 32 bits), stream and step's high bits
    const std::array<u32, 4> ctr = {block, u32(row), u32(step), (u32(stream) << 24) ^ u32(step >> 32)};
    const auto r = philox4x32(ctr, key);
    if (precise) {
      const double u1 = uniform64(r[0], r[1]), u2 = uniform64(r[2], r[3]);
      const double rad = std::sqrt(-2.0 * std::log(u1));
      out[j++] = T(rad * std::cos(two_pi * u2));
      if (j < len) out[j++] = T(rad * std::sin(two_pi * u2));
    } else {
      for (int p = 0; p < 2 && j < len; ++p) {
        const double u1 = uniform32(r[2 * p]), u2 = uniform32(r[2 * p + 1]);
        const double rad = std::sqrt(-2.0 * std::log(u1));
        out[j++] = T(rad * std::cos(two_pi * u2));
        if (j < len) out[j++] = T(rad * std::sin(two_pi * u2));
      }
    }
  }
}

}  // namespace fastslow::rng
