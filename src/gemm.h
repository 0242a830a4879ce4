// General matrix multiply (GEMM) on the CPU, BLAS-style interface.
//
//   C = alpha * op(A) @ op(B) + beta * C
//
// All matrices are row-major with explicit leading dimensions (row strides,
// in elements); see the comment on tgc::gemm for the exact indexing.
// See gemm.cpp for the algorithm (packed, cache-blocked, register-blocked).
#pragma once

#include <cstdint>

namespace tgc {

// C = alpha * op(A) @ op(B) + beta * C, all row-major. op(A) is M x K: A itself (trans_a == false,
// element (i, p) at A[i * lda + p]) or the transpose of a K x M matrix (element (i, p) at A[p * lda + i]).
// Likewise op(B) is K x N (B[p * ldb + j], or B[j * ldb + p] when trans_b). C[i * ldc + j].
// beta == 0 means C is overwritten (never read, so it may hold garbage/NaN).
// Multithreaded with OpenMP, except when called from inside an OpenMP parallel region
// (omp_in_parallel()), where it runs on the calling thread only, so callers may parallelise outside.
template <typename T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc);

// The block sizes the build uses (for tests and diagnostics): micro-tile
// MR x NR, and the cache blocks KC (depth), MC (rows of A), NC (columns of B).
struct GemmConfig {
  const char* simd;  // the vector code of the active ISA's kernels (simd.h's kSimdName)
  int mr, nr;
  std::int64_t kc, mc, nc;
};
template <typename T>
GemmConfig gemm_config();

extern template GemmConfig gemm_config<float>();
extern template GemmConfig gemm_config<double>();
extern template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float,
                                 const float*, std::int64_t, const float*, std::int64_t, float,
                                 float*, std::int64_t);
extern template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double,
                                  const double*, std::int64_t, const double*, std::int64_t, double,
                                  double*, std::int64_t);

}  // namespace tgc
