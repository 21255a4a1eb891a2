// Standard normals by the Ziggurat method (Marsaglia & Tsang, J. Stat. Softw. 5(8), 2000; 128
// layers, 32-bit), fed by a counter-based Philox stream: the fast path costs one multiply and
// one comparison, and the number of Philox blocks a row consumes is a deterministic function of
// (seed, stream, step, row), so results still do not depend on threads.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

// Fill out[0..len) with standard normals of one row, one word at a time: the definition of the
// stream (and the fallback where AVX2 is missing).
template <class T>
void ziggurat_row_scalar(u64 seed, Stream stream, u64 step, u64 row, T* out, std::size_t len) {
  const ZigguratTables& t = ziggurat_tables();
  WordStream ws(seed, stream, step, row);
  for (std::size_t j = 0; j < len; ++j) out[j] = T(ziggurat_normal(ws, t));
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(FASTSLOW_NO_MULTIVERSION)
#define FASTSLOW_ZIGGURAT_AVX2 1

// Philox4x32-10 blocks block0 .. block0 + 7 of one (seed, stream, step, row), eight at a time in
// AVX2 registers (the 32 x 32 -> 64-bit products are vpmuludq); out[4 k + i] = word i of block
// block0 + k, exactly as philox4x32 gives them.
__attribute__((target("avx2"))) inline void philox4x32_x8(u32 block0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1,
                                                           u32* out) {
  const __m256i M0 = _mm256_set1_epi64x(0xD2511F53u), M1 = _mm256_set1_epi64x(0xCD9E8D57u);
  const __m256i low = _mm256_set1_epi64x(0xffffffffu);
  __m256i x0[2], x1[2], x2[2], x3[2];
  for (int h = 0; h < 2; ++h) {
    const long long b = (long long)block0 + 4 * h;
    x0[h] = _mm256_setr_epi64x(b, b + 1, b + 2, b + 3);
    x0[h] = _mm256_and_si256(x0[h], low);  // the block counter wraps at 2^32 as a u32 does
    x1[h] = _mm256_set1_epi64x(c1);
    x2[h] = _mm256_set1_epi64x(c2);
    x3[h] = _mm256_set1_epi64x(c3);
  }
  u32 ka = k0, kb = k1;
  for (int round = 0; round < 10; ++round) {
    const __m256i K0 = _mm256_set1_epi64x(ka), K1 = _mm256_set1_epi64x(kb);
    for (int h = 0; h < 2; ++h) {
      const __m256i p0 = _mm256_mul_epu32(x0[h], M0), p1 = _mm256_mul_epu32(x2[h], M1);
      x0[h] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), x1[h]), K0);
      x1[h] = _mm256_and_si256(p1, low);
      x2[h] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), x3[h]), K1);
      x3[h] = _mm256_and_si256(p0, low);
    }
    ka += 0x9E3779B9u;
    kb += 0xBB67AE85u;
  }
  for (int h = 0; h < 2; ++h) {  // lanes (x0, x1, x2, x3) of block l -> four consecutive words
    const __m256i a = _mm256_or_si256(x0[h], _mm256_slli_epi64(x1[h], 32));
    const __m256i b = _mm256_or_si256(x2[h], _mm256_slli_epi64(x3[h], 32));
    const __m256i lo = _mm256_unpacklo_epi64(a, b), hi = _mm256_unpackhi_epi64(a, b);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 * h), _mm256_permute2x128_si256(lo, hi, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 * h + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
  }
}

// The same numbers as ziggurat_row_scalar, about three times faster: the row's words are made
// eight Philox blocks at a time into a buffer, and the Ziggurat's fast path (99 % of words) runs
// over the buffer without the stream's bookkeeping; at a word that fails it, the full method takes
// over for that one normal (reading further words in order), so the words are consumed exactly as
// one at a time. (Testing eight words at once with AVX2 gathers was slower on AMD Zen 3.)
template <class T>
__attribute__((target("avx2"))) void ziggurat_row_avx2(u64 seed, Stream stream, u64 step, u64 row, T* out,
                                                       std::size_t len) {
  const ZigguratTables& t = ziggurat_tables();
  const u32 c1 = u32(row), c2 = u32(step), c3 = (u32(stream) << 24) ^ u32(step >> 32);
  const u32 k0 = u32(seed), k1 = u32(seed >> 32);
  thread_local std::vector<u32> buf;
  // Words made so far (a multiple of 32): about 1.028 words a normal on average (2.8 % of words fail
  // the fast path and take one or more words more), so len + len / 25 + 16 rarely needs more; when it
  // does, next() makes 32 more. (The words are a function of the block index only, so how many are
  // made ahead does not change the numbers.)
  std::size_t nw = (len + len / 25 + 16 + 31) / 32 * 32;
  if (buf.size() < nw + 8) buf.resize(nw + 8);
  for (std::size_t k = 0; k < nw / 4; k += 8) philox4x32_x8(u32(k), c1, c2, c3, k0, k1, buf.data() + 4 * k);
  std::size_t pos = 0;
  auto next = [&]() -> u32 {
    if (pos == nw) {
      if (buf.size() < nw + 40) buf.resize(nw + 40);
      philox4x32_x8(u32(nw / 4), c1, c2, c3, k0, k1, buf.data() + nw);
      nw += 32;
    }
    return buf[pos++];
  };
  std::size_t j = 0;
  while (j < len) {
    // the fast path over the words already made, until a word fails it
    const u32* w = buf.data() + pos;
    const std::size_t stop = std::min(len - j, nw - pos);
    std::size_t k = 0;
    for (; k < stop; ++k) {
      const std::int32_t hz = std::int32_t(w[k]);
      const std::uint32_t iz = std::uint32_t(hz) & 127u;
      const std::uint32_t ahz = hz < 0 ? std::uint32_t(-(std::int64_t)hz) : std::uint32_t(hz);
      if (!(ahz < t.kn[iz])) break;
      out[j + k] = T(hz * t.wn[iz]);
    }
    j += k;
    pos += k;
    if (j >= len) break;
    // one normal the scalar way (its first word fails the fast path, or the tail of the row)
    constexpr double r = 3.442620;
    for (;;) {
      const std::int32_t hz = std::int32_t(next());
      const std::uint32_t iz = std::uint32_t(hz) & 127u;
      const std::uint32_t ahz = hz < 0 ? std::uint32_t(-(std::int64_t)hz) : std::uint32_t(hz);
      if (ahz < t.kn[iz]) {
        out[j] = T(hz * t.wn[iz]);
        break;
      }
      const double x = hz * t.wn[iz];
      if (iz == 0) {
        double xx, yy;
        do {
          xx = -std::log(uniform32(next())) / r;
          yy = -std::log(uniform32(next()));
        } while (yy + yy < xx * xx);
        out[j] = T(hz > 0 ? r + xx : -r - xx);
        break;
      }
      if (t.fn[iz] + uniform32(next()) * (t.fn[iz - 1] - t.fn[iz]) < std::exp(-0.5 * x * x)) {
        out[j] = T(x);
        break;
      }
    }
    ++j;
  }
}
#endif

// Standard normals of one row: the AVX2 path where the CPU has it, else the scalar one (the same
// numbers either way).
template <class T>
void ziggurat_row(u64 seed, Stream stream, u64 step, u64 row, T* out, std::size_t len) {
#ifdef FASTSLOW_ZIGGURAT_AVX2
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2) {
    ziggurat_row_avx2(seed, stream, step, row, out, len);
    return;
  }
#endif
  ziggurat_row_scalar(seed, stream, step, row, out, len);
}

}  // namespace fastslow::rng
