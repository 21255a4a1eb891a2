// Standard normals by the Ziggurat method (Marsaglia & Tsang, J. Stat. Softw. 5(8), 2000; 128
// layers, 32-bit), fed by a counter-based Philox stream: the fast path costs one multiply and
// one comparison, and the number of Philox blocks a row consumes is a deterministic function of
// (seed, stream, step, row), so results still do not depend on threads.
#pragma once
#include <cmath>
#include <cstdint>

#include "philox.hpp"

namespace fastslow::rng {

struct ZigguratTables {
  std::uint32_t kn[128];
  double wn[128], fn[128];
  ZigguratTables() {
    const double m1 = 2147483648.0, vn = 9.91256303526217e-3;
    double dn = 3.442619855899, tn = dn;
    const double q = vn / std::exp(-0.5 * dn * dn);
    kn[0] = std::uint32_t((dn / q) * m1);
    kn[1] = 0;
    wn[0] = q / m1;
    wn[127] = dn / m1;
    fn[0] = 1.0;
    fn[127] = std::exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; --i) {
      dn = std::sqrt(-2.0 * std::log(vn / dn + std::exp(-0.5 * dn * dn)));
      kn[i + 1] = std::uint32_t((dn / tn) * m1);
      tn = dn;
      fn[i] = std::exp(-0.5 * dn * dn);
      wn[i] = dn / m1;
    }
  }
};

inline const ZigguratTables& ziggurat_tables() {
  static const ZigguratTables t;
  return t;
}

// A stream of 32-bit words from consecutive Philox blocks of one (seed, stream, step, row).
class WordStream {
 public:
  WordStream(u64 seed, Stream stream, u64 step, u64 row)
      : key_{u32(seed), u32(seed >> 32)}, row_(u32(row)), step_(step), stream_(stream) {}
  u32 next() {
    if (pos_ == 4) {
      buf_ = philox4x32({block_++, row_, u32(step_), (u32(stream_) << 24) ^ u32(step_ >> 32)}, key_);
      pos_ = 0;
    }
    return buf_[pos_++];
  }

 private:
  std::array<u32, 2> key_;
  u32 row_;
  u64 step_;
  Stream stream_;
  u32 block_ = 0;
  std::array<u32, 4> buf_{};
  int pos_ = 4;
};

inline double ziggurat_normal(WordStream& ws, const ZigguratTables& t) {
  constexpr double r = 3.442620;
  for (;;) {
    const std::int32_t hz = std::int32_t(ws.next());
    const std::uint32_t iz = std::uint32_t(hz) & 127u;
    const std::uint32_t ahz = hz < 0 ? std::uint32_t(-(std::int64_t)hz) : std::uint32_t(hz);
    if (ahz < t.kn[iz]) return hz * t.wn[iz];
    // slow path: the base strip's tail, or a wedge
    const double x = hz * t.wn[iz];
    if (iz == 0) {
      double xx, yy;
      do {
        xx = -std::log(uniform32(ws.next())) / r;
        yy = -std::log(uniform32(ws.next()));
      } while (yy + yy < xx * xx);
      return hz > 0 ? r + xx : -r - xx;
    }
    if (t.fn[iz] + uniform32(ws.next()) * (t.fn[iz - 1] - t.fn[iz]) < std::exp(-0.5 * x * x)) return x;
  }
}

// Fill out[0..len) with standard normals of one row (fast path for float32 data).
template <class T>
void ziggurat_row(u64 seed, Stream stream, u64 step, u64 row, T* out, std::size_t len) {
  const ZigguratTables& t = ziggurat_tables();
  WordStream ws(seed, stream, step, row);
  for (std::size_t j = 0; j < len; ++j) out[j] = T(ziggurat_normal(ws, t));
}

}  // namespace fastslow::rng
