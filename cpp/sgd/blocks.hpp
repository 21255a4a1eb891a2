// The fixed BLAS blocking rule of an SGD step, shared by both samplers.
//
// The work of a step is cut into blocks that depend on the sizes only, never on the thread count,
// and each BLAS call covers one block: OpenBLAS's sgemm rounds a row differently depending on where
// it falls in the call's M tiling, so blocks tied to the thread count made float32 runs differ in
// the last bit between 1 and 2 threads. Threads take contiguous runs of blocks (thread_blocks), and
// every reduction over blocks is summed in block order, so results do not depend on the threads.
#pragma once
#include <omp.h>

#include <algorithm>

namespace fastslow::sgd::blocks {

// Blocks of at least `grain` items, at most `max_blocks` of them: a function of the size only.
inline int fixed(int total, int grain, int max_blocks) { return std::max(1, std::min(max_blocks, total / grain)); }

constexpr int kRowGrain = 1024, kRowMin = 64, kNeuronGrain = 256, kNeuronMin = 32, kMaxBlocks = 16;
// Column blocks of the input dimension (the projected sampler's basis of span V): each call
// multiplies (n + 1) x (d / blocks) panels, large enough to run at the GEMM speed.
constexpr int kColGrain = 2048, kColMin = 256;

// The BLAS blocks of a step, a function of the sizes only. Each call packs its whole second
// operand (W forward, X backward), so a block should be large: the packing costs about 1/(2 size)
// of the call's flops in memory traffic. Measured at (B, d, n) = (4096, 1024, 1024), 2 threads,
// medians of 30 interleaved steps: 16 row and 8 neuron blocks took 153 ms a step, 4 and 4 took
// 144 ms. So: blocks of `grain` items, but at least 4 of them (small and medium sizes still spread
// over 4 threads) as long as each keeps `min_size` items, and at most 16. `forced` > 0 (the
// benchmarks' set_blocks) overrides the rule.
inline int step(int total, int grain, int min_size, int forced) {
  int k = std::max(total / grain, 4);
  k = std::min(k, total / min_size);
  if (forced > 0) k = forced;
  return std::max(1, std::min({k, total, kMaxBlocks}));
}

inline int rows(int batch, int forced) { return step(batch, kRowGrain, kRowMin, forced); }
inline int neurons(int n, int forced) { return step(n, kNeuronGrain, kNeuronMin, forced); }
inline int columns(int d) { return step(d, kColGrain, kColMin, 0); }

// Items [lo, hi) of block `index` of `parts` (the first total % parts blocks one item longer).
inline void of(int total, int parts, int index, int& lo, int& hi) {
  const int base = total / parts, extra = total % parts;
  lo = index * base + std::min(index, extra);
  hi = lo + base + (index < extra ? 1 : 0);
}

// Inside a parallel region: the calling thread's contiguous run [k0, k1) of `nb` blocks.
inline void thread_blocks(int nb, int& k0, int& k1) { of(nb, omp_get_num_threads(), omp_get_thread_num(), k0, k1); }

// Inside a parallel region: the items [i0, i1) covered by the calling thread's blocks of `total`
// items in `nb` blocks (empty when the thread has none).
inline void thread_items(int total, int nb, int& i0, int& i1) {
  int k0, k1, unused;
  thread_blocks(nb, k0, k1);
  i0 = i1 = 0;
  if (k1 > k0) {
    of(total, nb, k0, i0, unused);
    of(total, nb, k1 - 1, unused, i1);
  }
}

}  // namespace fastslow::sgd::blocks
