// Cache-blocked batched GEMM; see matmul.h for the algorithm and layout.
#include "matmul.h"

#include <algorithm>

namespace tgc {

namespace {

// Block sizes. The B panel touched by one (k-block, n-block) pair is
// kBlockK * kBlockN elements: 128 KiB for float, 256 KiB for double, which
// fits the L2 cache of current x86/ARM server cores. A kBlockM x kBlockN
// tile of C (32 KiB for float) is one parallel task.
constexpr std::int64_t kBlockM = 32;
constexpr std::int64_t kBlockK = 128;
constexpr std::int64_t kBlockN = 256;

// Below this many multiply-adds the OpenMP fork/join costs more than it saves.
constexpr std::int64_t kParallelThreshold = std::int64_t{1} << 15;

// C[i0:i1, j0:j1] = A[i0:i1, :] @ B[:, j0:j1] for one matrix of the batch.
// Requires j1 - j0 <= kBlockN.
template <typename T>
void gemm_block(const T* __restrict a, const T* __restrict b, T* __restrict c,
                std::int64_t i0, std::int64_t i1, std::int64_t j0, std::int64_t j1,
                std::int64_t k, std::int64_t n) {
  const std::int64_t jlen = j1 - j0;
  for (std::int64_t i = i0; i < i1; ++i) std::fill(c + i * n + j0, c + i * n + j1, T(0));
  for (std::int64_t p0 = 0; p0 < k; p0 += kBlockK) {
    const std::int64_t p1 = std::min(p0 + kBlockK, k);
    for (std::int64_t i = i0; i < i1; ++i) {
      const T* __restrict a_row = a + i * k;
      T* __restrict c_row = c + i * n + j0;
      for (std::int64_t p = p0; p < p1; ++p) {
        const T a_ip = a_row[p];
        const T* __restrict b_row = b + p * n + j0;
#pragma omp simd
        for (std::int64_t j = 0; j < jlen; ++j) {
          c_row[j] += a_ip * b_row[j];
        }
      }
    }
  }
}

}  // namespace

template <typename T>
void matmul_batched(const T* a, const T* b, T* c, std::int64_t batch, std::int64_t m,
                    std::int64_t k, std::int64_t n) {
  if (batch <= 0 || m <= 0 || n <= 0) return;  // C is empty
  if (k <= 0) {                                 // empty sum: C is all zeros
    std::fill(c, c + batch * m * n, T(0));
    return;
  }

  // One task = one (batch entry, block of kBlockM rows, block of kBlockN
  // columns) tile of C. Tiles are disjoint, so tasks need no synchronisation,
  // and splitting over columns too keeps all cores busy for small M (M = 1).
  const std::int64_t row_blocks = (m + kBlockM - 1) / kBlockM;
  const std::int64_t col_blocks = (n + kBlockN - 1) / kBlockN;
  const std::int64_t tasks = batch * row_blocks * col_blocks;
  const bool parallel = tasks > 1 && batch * m * k * n >= kParallelThreshold;
  (void)parallel;  // unused when built without OpenMP

#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t t = 0; t < tasks; ++t) {
    const std::int64_t bi = t / (row_blocks * col_blocks);
    const std::int64_t rem = t % (row_blocks * col_blocks);
    const std::int64_t i0 = (rem / col_blocks) * kBlockM;
    const std::int64_t j0 = (rem % col_blocks) * kBlockN;
    gemm_block<T>(a + bi * m * k, b + bi * k * n, c + bi * m * n, i0, std::min(i0 + kBlockM, m),
                  j0, std::min(j0 + kBlockN, n), k, n);
  }
}

template void matmul_batched<float>(const float*, const float*, float*, std::int64_t,
                                    std::int64_t, std::int64_t, std::int64_t);
template void matmul_batched<double>(const double*, const double*, double*, std::int64_t,
                                     std::int64_t, std::int64_t, std::int64_t);

}  // namespace tgc
