// gemm.cu -- batched matrix product C[b] = A[b] @ B[b] for float32/float64 (CudaBackend.matmul).
//
// Algorithm: the 128 x 128 x 8 double-buffered, register-blocked tile of gemm_core.cuh; grid
// (ceil(N/128), ceil(M/128), z), 256 threads per block, each thread 8 x 8 outputs.
// Layout: A (M, K) and B (K, N) are read in place through element strides -- a row-major matrix, its
// transpose (a view) and a stride-0 broadcast need no copy: A[b][m][k] = A[b * a_b + m * a_m + k * a_k].
// a_mode/b_mode (gemm::kAlongX | gemm::kVec) tell which way each thread's runs of 4 go and whether
// they can be single 16-byte loads. C is a fresh C-contiguous (batch, M, N) array.
// Split-K: with k_chunk < K the K range is cut into nsplit = ceil(K / k_chunk) chunks (k_chunk a
// multiple of 8); chunk s of batch entry b goes to C + (s * batch + b) * M * N, and sum_splits adds the
// partial products in chunk order (deterministic). blockIdx.z runs over batch * nsplit (grid-stride).
#include "gemm_core.cuh"

template <class T>
__device__ __forceinline__ void gemm_body(const T* A, const T* B, T* C, int M, int N, int K, int batch,
                                          i64 a_b, i64 a_m, i64 a_k, int a_mode, i64 b_b, i64 b_k, i64 b_n,
                                          int b_mode, int k_chunk, int c_vec) {
  const int nsplit = K > 0 ? (K + k_chunk - 1) / k_chunk : 1;
  const int m0 = blockIdx.y * gemm::BM, n0 = blockIdx.x * gemm::BN;
  for (int z = blockIdx.z; z < batch * nsplit; z += gridDim.z) {
    const int bi = z / nsplit, s = z - bi * nsplit;
    const int kb = s * k_chunk, ke = imin(K, kb + k_chunk);
    gemm::Strided<T> a(A + bi * a_b, a_k, a_m, M, ke, m0, a_mode);
    gemm::Strided<T> b(B + bi * b_b, b_k, b_n, N, ke, n0, b_mode);
    const gemm::StoreRowMajor<T> epi{C + (static_cast<i64>(s) * batch + bi) * M * N, M, N, c_vec != 0};
    gemm::block_tile<T>(a, b, kb, ke, m0, n0, epi);
  }
}

// 2 blocks per SM for float32 (<= 128 registers); float64 needs ~255 registers (64 double accumulators).
extern "C" __global__ void __launch_bounds__(256, 2)
gemm_f32(const float* A, const float* B, float* C, int M, int N, int K, int batch,
         long long a_b, long long a_m, long long a_k, int a_mode,
         long long b_b, long long b_k, long long b_n, int b_mode, int k_chunk, int c_vec) {
  gemm_body<float>(A, B, C, M, N, K, batch, a_b, a_m, a_k, a_mode, b_b, b_k, b_n, b_mode, k_chunk, c_vec);
}

extern "C" __global__ void __launch_bounds__(256)
gemm_f64(const double* A, const double* B, double* C, int M, int N, int K, int batch,
         long long a_b, long long a_m, long long a_k, int a_mode,
         long long b_b, long long b_k, long long b_n, int b_mode, int k_chunk, int c_vec) {
  gemm_body<double>(A, B, C, M, N, K, batch, a_b, a_m, a_k, a_mode, b_b, b_k, b_n, b_mode, k_chunk, c_vec);
}

extern "C" __global__ void sum_splits_f32(const float* ws, float* out, long long count, int splits) {
  sum_splits_body<float>(ws, out, count, splits);
}

extern "C" __global__ void sum_splits_f64(const double* ws, double* out, long long count, int splits) {
  sum_splits_body<double>(ws, out, count, splits);
}
