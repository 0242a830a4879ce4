// norm.cu -- batch norm (training and eval, forward and backward) and layer norm (forward, backward).
//
// Batch norm: x is (N, C, S) C-contiguous (S = product of the spatial dims, 1 for (N, C) inputs;
// fewer than 2**31 elements: 32-bit index arithmetic);
// statistics per channel over the m = N*S values, biased variance, all sums in double.
//   bn_stats      one block per channel (grid-stride), 256 threads: mean (pass 1), then
//                 var = mean((x - mean)^2) (pass 2, like np.var), block tree reductions. Writes mean,
//                 var (T) and params[3c..3c+2] = (mean, gamma/sqrt(var+eps), beta) in double.
//   bn_params     the same params from given running mean/var (eval), one thread per channel.
//   bn_apply      y = (x - mean) * scale + beta, one thread per element (grid-stride).
//   bn_grad_reduce  one block per channel: gbeta = sum(gy), ggamma = sum(gy * xhat) with
//                 xhat = (x - mean) * invstd; params[3c..] = (gamma*invstd, gbeta/m, ggamma/m) in
//                 training, (gamma*invstd, 0, 0) in eval.
//   bn_grad_input gx = k * (gy - a - xhat * b) with (k, a, b) from params -- NumpyBackend's
//                 (invstd/m) (m g - sum(g) - xhat sum(g xhat)) with g = gy*gamma, rearranged.
// Layer norm: x is (R, D) (R rows = the leading dims, D = the normalised trailing dims).
//   ln_fwd        one block per row (grid-stride), threads over D: two-pass mean/var in double,
//                 invstd = 1/sqrt(var + eps), y = (x - mean) * invstd * gamma + beta.
//   ln_grad_rows  one block per row: gx = invstd * (g - mean(g) - xhat * mean(g xhat)), g = gy*gamma.
//   ln_grad_cols  ggamma[d] = sum_r gy * xhat, gbeta[d] = sum_r gy: blocks of 32 columns x 8 row
//                 lanes, each lane strides over the rows, then a tree over the 8 lanes.
// Optional gamma/beta: has_gamma/has_beta = 0 and any valid pointer.
#include "common.cuh"

constexpr int kNormThreads = 256;

template <class T>
__device__ __forceinline__ void bn_stats_body(const T* x, const T* gamma, const T* beta, int has_gamma, int has_beta,
                                              T* mean, T* var, double* params, int N, int C, int S, double eps) {
  __shared__ double buf[kNormThreads];
  const int m = N * S;
  for (int c = blockIdx.x; c < C; c += gridDim.x) {
    const T* xc = x + static_cast<i64>(c) * S;
    double s1 = 0.0;
    for (int e = threadIdx.x; e < m; e += blockDim.x) {
      const int n = e / S;
      s1 += static_cast<double>(xc[static_cast<i64>(n) * C * S + (e - n * S)]);
    }
    const double mu = block_reduce(s1, buf, SumOp()) / static_cast<double>(m);
    double s2 = 0.0;
    for (int e = threadIdx.x; e < m; e += blockDim.x) {
      const int n = e / S;
      const double d = static_cast<double>(xc[static_cast<i64>(n) * C * S + (e - n * S)]) - mu;
      s2 += d * d;
    }
    const double v = block_reduce(s2, buf, SumOp()) / static_cast<double>(m);
    if (threadIdx.x == 0) {
      mean[c] = static_cast<T>(mu);
      var[c] = static_cast<T>(v);
      params[3 * c] = mu;
      params[3 * c + 1] = (has_gamma ? static_cast<double>(gamma[c]) : 1.0) / sqrt(v + eps);
      params[3 * c + 2] = has_beta ? static_cast<double>(beta[c]) : 0.0;
    }
  }
}

template <class T>
__device__ __forceinline__ void bn_params_body(const T* mean, const T* var, const T* gamma, const T* beta,
                                               int has_gamma, int has_beta, double* params, int C, double eps) {
  TGC_GRID_STRIDE(c, C) {
    params[3 * c] = static_cast<double>(mean[c]);
    params[3 * c + 1] = (has_gamma ? static_cast<double>(gamma[c]) : 1.0) / sqrt(static_cast<double>(var[c]) + eps);
    params[3 * c + 2] = has_beta ? static_cast<double>(beta[c]) : 0.0;
  }
}

template <class T>
__device__ __forceinline__ void bn_apply_body(const T* x, const double* params, T* y, int total, int C, int S) {
  TGC_GRID_STRIDE(i, total) {
    const int c = static_cast<int>(i) / S % C;
    y[i] = static_cast<T>((static_cast<double>(x[i]) - params[3 * c]) * params[3 * c + 1] + params[3 * c + 2]);
  }
}

template <class T>
__device__ __forceinline__ void bn_grad_reduce_body(const T* gy, const T* x, const T* mean, const T* invstd,
                                                    const T* gamma, int has_gamma, T* ggamma, T* gbeta, double* params,
                                                    int N, int C, int S, int training) {
  __shared__ double buf1[kNormThreads];
  __shared__ double buf2[kNormThreads];
  const int m = N * S;
  for (int c = blockIdx.x; c < C; c += gridDim.x) {
    const double mu = static_cast<double>(mean[c]), is = static_cast<double>(invstd[c]);
    double s1 = 0.0, s2 = 0.0;
    for (int e = threadIdx.x; e < m; e += blockDim.x) {
      const int n = e / S;
      const i64 i = (static_cast<i64>(n) * C + c) * S + (e - n * S);
      const double g = static_cast<double>(gy[i]);
      s1 += g;
      s2 += g * ((static_cast<double>(x[i]) - mu) * is);
    }
    block_sum2(s1, s2, buf1, buf2);
    if (threadIdx.x == 0) {
      const double gm = has_gamma ? static_cast<double>(gamma[c]) : 1.0;
      gbeta[c] = static_cast<T>(s1);
      ggamma[c] = static_cast<T>(s2);
      params[3 * c] = gm * is;
      params[3 * c + 1] = training ? s1 / static_cast<double>(m) : 0.0;
      params[3 * c + 2] = training ? s2 / static_cast<double>(m) : 0.0;
    }
  }
}

template <class T>
__device__ __forceinline__ void bn_grad_input_body(const T* gy, const T* x, const T* mean, const T* invstd,
                                                   const double* params, T* gx, int total, int C, int S) {
  TGC_GRID_STRIDE(i, total) {
    const int c = static_cast<int>(i) / S % C;
    const double xhat = (static_cast<double>(x[i]) - static_cast<double>(mean[c])) * static_cast<double>(invstd[c]);
    gx[i] = static_cast<T>(params[3 * c] * (static_cast<double>(gy[i]) - params[3 * c + 1] - xhat * params[3 * c + 2]));
  }
}

template <class T>
__device__ __forceinline__ void ln_fwd_body(const T* x, const T* gamma, const T* beta, int has_gamma, int has_beta,
                                            T* y, T* mean, T* invstd, int R, int D, double eps) {
  __shared__ double buf[kNormThreads];
  for (int r = blockIdx.x; r < R; r += gridDim.x) {
    const T* xr = x + static_cast<i64>(r) * D;
    T* yr = y + static_cast<i64>(r) * D;
    double s1 = 0.0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) s1 += static_cast<double>(xr[d]);
    const double mu = block_reduce(s1, buf, SumOp()) / D;
    double s2 = 0.0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
      const double v = static_cast<double>(xr[d]) - mu;
      s2 += v * v;
    }
    const double is = 1.0 / sqrt(block_reduce(s2, buf, SumOp()) / D + eps);
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
      double v = (static_cast<double>(xr[d]) - mu) * is;
      if (has_gamma) v *= static_cast<double>(gamma[d]);
      if (has_beta) v += static_cast<double>(beta[d]);
      yr[d] = static_cast<T>(v);
    }
    if (threadIdx.x == 0) {
      mean[r] = static_cast<T>(mu);
      invstd[r] = static_cast<T>(is);
    }
  }
}

template <class T>
__device__ __forceinline__ void ln_grad_rows_body(const T* gy, const T* x, const T* mean, const T* invstd,
                                                  const T* gamma, int has_gamma, T* gx, int R, int D) {
  __shared__ double buf1[kNormThreads];
  __shared__ double buf2[kNormThreads];
  for (int r = blockIdx.x; r < R; r += gridDim.x) {
    const i64 off = static_cast<i64>(r) * D;
    const double mu = static_cast<double>(mean[r]), is = static_cast<double>(invstd[r]);
    double s1 = 0.0, s2 = 0.0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
      const double g = static_cast<double>(gy[off + d]) * (has_gamma ? static_cast<double>(gamma[d]) : 1.0);
      s1 += g;
      s2 += g * (static_cast<double>(x[off + d]) - mu) * is;
    }
    block_sum2(s1, s2, buf1, buf2);
    const double a = s1 / D, b = s2 / D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
      const double g = static_cast<double>(gy[off + d]) * (has_gamma ? static_cast<double>(gamma[d]) : 1.0);
      const double xhat = (static_cast<double>(x[off + d]) - mu) * is;
      gx[off + d] = static_cast<T>(is * (g - a - xhat * b));
    }
  }
}

// blockDim = (32, 8): threadIdx.x picks the column, threadIdx.y strides over the rows.
template <class T>
__device__ __forceinline__ void ln_grad_cols_body(const T* gy, const T* x, const T* mean, const T* invstd, T* ggamma,
                                                  T* gbeta, int R, int D) {
  __shared__ double buf1[8][33];
  __shared__ double buf2[8][33];
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (int d0 = blockIdx.x * 32; d0 < D; d0 += gridDim.x * 32) {
    const int d = d0 + tx;
    double s1 = 0.0, s2 = 0.0;
    if (d < D) {
      for (int r = ty; r < R; r += 8) {
        const i64 i = static_cast<i64>(r) * D + d;
        const double g = static_cast<double>(gy[i]);
        s1 += g;
        s2 += g * ((static_cast<double>(x[i]) - static_cast<double>(mean[r])) * static_cast<double>(invstd[r]));
      }
    }
    buf1[ty][tx] = s1;
    buf2[ty][tx] = s2;
    __syncthreads();
    if (ty == 0 && d < D) {
      for (int k = 1; k < 8; ++k) {
        s1 += buf1[k][tx];
        s2 += buf2[k][tx];
      }
      gbeta[d] = static_cast<T>(s1);
      ggamma[d] = static_cast<T>(s2);
    }
    __syncthreads();
  }
}

// --- entry points -------------------------------------------------------------------------------
extern "C" __global__ void bn_stats_f32(const float* x, const float* gamma, const float* beta, int has_gamma,
                                        int has_beta, float* mean, float* var, double* params, int N, int C,
                                        int S, double eps) {
  bn_stats_body<float>(x, gamma, beta, has_gamma, has_beta, mean, var, params, N, C, S, eps);
}
extern "C" __global__ void bn_stats_f64(const double* x, const double* gamma, const double* beta, int has_gamma,
                                        int has_beta, double* mean, double* var, double* params, int N, int C,
                                        int S, double eps) {
  bn_stats_body<double>(x, gamma, beta, has_gamma, has_beta, mean, var, params, N, C, S, eps);
}
extern "C" __global__ void bn_params_f32(const float* mean, const float* var, const float* gamma, const float* beta,
                                         int has_gamma, int has_beta, double* params, int C, double eps) {
  bn_params_body<float>(mean, var, gamma, beta, has_gamma, has_beta, params, C, eps);
}
extern "C" __global__ void bn_params_f64(const double* mean, const double* var, const double* gamma,
                                         const double* beta, int has_gamma, int has_beta, double* params, int C,
                                         double eps) {
  bn_params_body<double>(mean, var, gamma, beta, has_gamma, has_beta, params, C, eps);
}
extern "C" __global__ void bn_apply_f32(const float* x, const double* params, float* y, int total, int C,
                                        int S) {
  bn_apply_body<float>(x, params, y, total, C, S);
}
extern "C" __global__ void bn_apply_f64(const double* x, const double* params, double* y, int total, int C,
                                        int S) {
  bn_apply_body<double>(x, params, y, total, C, S);
}
extern "C" __global__ void bn_grad_reduce_f32(const float* gy, const float* x, const float* mean, const float* invstd,
                                              const float* gamma, int has_gamma, float* ggamma, float* gbeta,
                                              double* params, int N, int C, int S, int training) {
  bn_grad_reduce_body<float>(gy, x, mean, invstd, gamma, has_gamma, ggamma, gbeta, params, N, C, S, training);
}
extern "C" __global__ void bn_grad_reduce_f64(const double* gy, const double* x, const double* mean,
                                              const double* invstd, const double* gamma, int has_gamma,
                                              double* ggamma, double* gbeta, double* params, int N, int C,
                                              int S, int training) {
  bn_grad_reduce_body<double>(gy, x, mean, invstd, gamma, has_gamma, ggamma, gbeta, params, N, C, S, training);
}
extern "C" __global__ void bn_grad_input_f32(const float* gy, const float* x, const float* mean, const float* invstd,
                                             const double* params, float* gx, int total, int C, int S) {
  bn_grad_input_body<float>(gy, x, mean, invstd, params, gx, total, C, S);
}
extern "C" __global__ void bn_grad_input_f64(const double* gy, const double* x, const double* mean,
                                             const double* invstd, const double* params, double* gx, int total,
                                             int C, int S) {
  bn_grad_input_body<double>(gy, x, mean, invstd, params, gx, total, C, S);
}
extern "C" __global__ void ln_fwd_f32(const float* x, const float* gamma, const float* beta, int has_gamma,
                                      int has_beta, float* y, float* mean, float* invstd, int R, int D, double eps) {
  ln_fwd_body<float>(x, gamma, beta, has_gamma, has_beta, y, mean, invstd, R, D, eps);
}
extern "C" __global__ void ln_fwd_f64(const double* x, const double* gamma, const double* beta, int has_gamma,
                                      int has_beta, double* y, double* mean, double* invstd, int R, int D, double eps) {
  ln_fwd_body<double>(x, gamma, beta, has_gamma, has_beta, y, mean, invstd, R, D, eps);
}
extern "C" __global__ void ln_grad_rows_f32(const float* gy, const float* x, const float* mean, const float* invstd,
                                            const float* gamma, int has_gamma, float* gx, int R, int D) {
  ln_grad_rows_body<float>(gy, x, mean, invstd, gamma, has_gamma, gx, R, D);
}
extern "C" __global__ void ln_grad_rows_f64(const double* gy, const double* x, const double* mean,
                                            const double* invstd, const double* gamma, int has_gamma, double* gx,
                                            int R, int D) {
  ln_grad_rows_body<double>(gy, x, mean, invstd, gamma, has_gamma, gx, R, D);
}
extern "C" __global__ void ln_grad_cols_f32(const float* gy, const float* x, const float* mean, const float* invstd,
                                            float* ggamma, float* gbeta, int R, int D) {
  ln_grad_cols_body<float>(gy, x, mean, invstd, ggamma, gbeta, R, D);
}
extern "C" __global__ void ln_grad_cols_f64(const double* gy, const double* x, const double* mean,
                                            const double* invstd, double* ggamma, double* gbeta, int R, int D) {
  ln_grad_cols_body<double>(gy, x, mean, invstd, ggamma, gbeta, R, D);
}
