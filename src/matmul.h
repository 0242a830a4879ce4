// Batched dense matrix multiplication (GEMM) on the CPU.
//
//   C[b] = A[b] @ B[b]      for b in [0, batch)
//
// Layout assumptions (the caller -- csrc/bindings.cpp -- guarantees them):
//   * A is (batch, M, K), B is (batch, K, N), C is (batch, M, N);
//   * all three are dense, row-major (C order) and contiguous, i.e.
//       A[b, i, k] = A[(b * M + i) * K + k], and likewise for B and C;
//   * C does not alias A or B;
//   * any size may be 0 (C is then empty, or all zeros when only K == 0).
//
// Algorithm: cache-blocked i-k-j loop order.
//   * C is zeroed, then accumulated block by block.
//   * K and N are split into blocks (kBlockK x kBlockN) so that the active
//     panel of B stays in L2 while it is reused by every row of a row block.
//   * Inside a block the loop order is i, k, j: for each A[i, k] the inner
//     loop is C[i, j0:j1] += A[i, k] * B[k, j0:j1], unit stride on both C and
//     B, which the compiler auto-vectorises (with FMAs under -march=native).
//   * Work is split with OpenMP over tiles of C: (batch x blocks of kBlockM
//     rows x blocks of kBlockN columns). Every task writes a disjoint tile,
//     so no synchronisation is needed, and each output element is summed in
//     the same order whatever the thread count (results are reproducible).
//
// This is the simple, readable baseline; a packed, register-blocked
// micro-kernel GEMM is planned as a later improvement.
#pragma once

#include <cstdint>

namespace tgc {

template <typename T>
void matmul_batched(const T* a, const T* b, T* c, std::int64_t batch, std::int64_t m,
                    std::int64_t k, std::int64_t n);

extern template void matmul_batched<float>(const float*, const float*, float*, std::int64_t,
                                           std::int64_t, std::int64_t, std::int64_t);
extern template void matmul_batched<double>(const double*, const double*, double*,
                                            std::int64_t, std::int64_t, std::int64_t,
                                            std::int64_t);

}  // namespace tgc
