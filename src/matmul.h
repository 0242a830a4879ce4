// Batched dense matrix multiplication on the CPU, built on tgc::gemm (gemm.h).
//
//   C[b] = op(A[b]) @ op(B[b])      for b in [0, batch)
//
// Layout assumptions (the caller -- csrc/matmul_bindings.cpp -- guarantees them):
//   * op(A[b]) is M x K, op(B[b]) is K x N, C[b] is M x N;
//   * each A[b] / B[b] is a row-major matrix with leading dimension lda / ldb,
//     read transposed when trans_a / trans_b (see tgc::gemm for the indexing);
//     consecutive batch entries are stride_a / stride_b elements apart;
//   * C is dense and C-contiguous: C[b, i, j] = c[(b * M + i) * N + j];
//   * C does not alias A or B;
//   * any size may be 0 (C is then empty, or all zeros when only K == 0).
//
// Parallelism: large matrices are multiplied one after the other, each with a
// multithreaded gemm; a batch of small matrices is split over threads instead
// (one single-threaded gemm per batch entry). Either way every output element
// is summed in the same order whatever the thread count.
#pragma once

#include <cstdint>

namespace tgc {

// Contiguous case: A is (batch, M, K), B is (batch, K, N), all C-contiguous.
template <typename T>
void matmul_batched(const T* a, const T* b, T* c, std::int64_t batch, std::int64_t m,
                    std::int64_t k, std::int64_t n);

// General case: strided batch of possibly transposed operands (see above).
template <typename T>
void matmul_batched_strided(bool trans_a, bool trans_b, std::int64_t batch, std::int64_t m,
                            std::int64_t n, std::int64_t k, const T* a, std::int64_t lda,
                            std::int64_t stride_a, const T* b, std::int64_t ldb,
                            std::int64_t stride_b, T* c);

extern template void matmul_batched<float>(const float*, const float*, float*, std::int64_t,
                                           std::int64_t, std::int64_t, std::int64_t);
extern template void matmul_batched<double>(const double*, const double*, double*,
                                            std::int64_t, std::int64_t, std::int64_t,
                                            std::int64_t);
extern template void matmul_batched_strided<float>(bool, bool, std::int64_t, std::int64_t,
                                                   std::int64_t, std::int64_t, const float*,
                                                   std::int64_t, std::int64_t, const float*,
                                                   std::int64_t, std::int64_t, float*);
extern template void matmul_batched_strided<double>(bool, bool, std::int64_t, std::int64_t,
                                                    std::int64_t, std::int64_t, const double*,
                                                    std::int64_t, std::int64_t, const double*,
                                                    std::int64_t, std::int64_t, double*);

}  // namespace tgc
