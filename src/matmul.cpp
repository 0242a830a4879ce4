// Batched matmul on top of tgc::gemm; see matmul.h for the layout.
// Compiled once per instruction set, into namespace tgc::<isa> (see simd.h).

#include <algorithm>

#include "isa_kernels.h"
#include "workspace.h"
#include "matmul.h"

namespace tgc {
namespace TGC_ISA {

namespace {

// Below this many multiply-adds per matrix, a batch is split over threads
// (one single-threaded gemm per entry) rather than each gemm being threaded.
constexpr std::int64_t kSmallMatrixFlops = std::int64_t{1} << 21;
// Below this many multiply-adds in total the fork/join costs more than it saves.
constexpr std::int64_t kParallelThreshold = std::int64_t{64} * 64 * 64;

}  // namespace

template <typename T>
void matmul_batched_strided(bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m,
                            std::int64_t n, std::int64_t k, const T* a, std::int64_t lda,
                            std::int64_t stride_a, const T* b, std::int64_t ldb,
                            std::int64_t stride_b, T* c) {
  if (batch <= 0 || m <= 0 || n <= 0) return;  // C is empty
  if (k <= 0) {                                 // empty sum: C is all zeros
    std::fill(c, c + batch * m * n, T(0));
    return;
  }
  const std::int64_t per = m * n * k;
  if (batch > 1 && per < kSmallMatrixFlops) {
    const bool parallel = per * batch >= kParallelThreshold;
    (void)parallel;
    RegionErrors errors;  // gemm's packing buffers may fail to allocate (workspace.h)
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t bi = 0; bi < batch; ++bi) {
      errors.run([&] {
        gemm<T>(trans_a, trans_b, m, n, k, T(1), a + bi * stride_a, lda, b + bi * stride_b, ldb,
                T(0), c + bi * m * n, n);
      });
    }
    errors.rethrow();
  } else {
    for (std::int64_t bi = 0; bi < batch; ++bi) {
      gemm<T>(trans_a, trans_b, m, n, k, T(1), a + bi * stride_a, lda, b + bi * stride_b, ldb,
              T(0), c + bi * m * n, n);
    }
  }
}

template <typename T>
void matmul_batched(const T* a, const T* b, T* c, std::int64_t batch, std::int64_t m,
                    std::int64_t k, std::int64_t n) {
  matmul_batched_strided<T>(false, false, batch, m, n, k, a, k, m * k, b, n, k * n, c);
}

template void matmul_batched<float>(const float*, const float*, float*, std::int64_t,
                                    std::int64_t, std::int64_t, std::int64_t);
template void matmul_batched<double>(const double*, const double*, double*, std::int64_t,
                                     std::int64_t, std::int64_t, std::int64_t);
template void matmul_batched_strided<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t,
                                            std::int64_t, const float*, std::int64_t,
                                            std::int64_t, const float*, std::int64_t,
                                            std::int64_t, float*);
template void matmul_batched_strided<double>(bool, bool, std::int64_t, std::int64_t,
                                             std::int64_t, std::int64_t, const double*,
                                             std::int64_t, std::int64_t, const double*,
                                             std::int64_t, std::int64_t, double*);

}  // namespace TGC_ISA
}  // namespace tgc
