// softmax.cu -- fused softmax cross-entropy with label smoothing e: logits (N, C) C-contiguous (fewer
// than 2**31 elements), int64 class indices (N,).
//   ce_fwd  one block per row (grid-stride; blockDim.x a power of two <= 256 picked for C): block max
//           (NaN-propagating), then in double: s = sum exp(x - max), lse = log s, logp = x - max - lse;
//           loss = -(1 - e) logp[t] - e mean(logp); probs = exp(logp). A target outside [0, C) gives a
//           NaN loss (F.cross_entropy rejects those before they get here).
//   ce_bwd  one thread per logit: g[n] * (probs - soft) with soft = e/C (+ 1 - e at the target), rounded
//           to T in the reference's order.
#include "common.cuh"

template <class T>
__device__ __forceinline__ void ce_fwd_body(const T* logits, const i64* target, T* loss, T* probs, int N, int C,
                                            double smoothing) {
  __shared__ T mbuf[256];
  __shared__ double buf1[256];
  __shared__ double buf2[256];
  for (int n = blockIdx.x; n < N; n += gridDim.x) {
    const T* x = logits + static_cast<i64>(n) * C;
    T* p = probs + static_cast<i64>(n) * C;
    T mx = -tgc_inf<T>();
    for (int c = threadIdx.x; c < C; c += blockDim.x) mx = nan_max(mx, x[c]);
    mx = block_reduce(mx, mbuf, NanMaxOp());
    const double m = static_cast<double>(mx);
    double s = 0.0, sx = 0.0;  // sum exp(x - max), sum (x - max)
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
      const double d = static_cast<double>(x[c]) - m;
      s += exp(d);
      sx += d;
    }
    block_sum2(s, sx, buf1, buf2);
    const double lse = log(s);
    for (int c = threadIdx.x; c < C; c += blockDim.x) p[c] = static_cast<T>(exp(static_cast<double>(x[c]) - m - lse));
    if (threadIdx.x == 0) {
      const i64 t = target[n];
      double l = tgc_nan<double>();
      if (t >= 0 && t < C) {
        l = -(static_cast<double>(x[t]) - m - lse);
        if (smoothing != 0.0) l = (1.0 - smoothing) * l - smoothing * (sx / C - lse);
      }
      loss[n] = static_cast<T>(l);
    }
  }
}

template <class T>
__device__ __forceinline__ void ce_bwd_body(const T* g, const T* probs, const i64* target, T* gx, int N, int C,
                                            double smoothing) {
  const T base = static_cast<T>(smoothing / C), hit = static_cast<T>(1.0 - smoothing);
  TGC_GRID_STRIDE(i, static_cast<i64>(N) * C) {
    const int n = static_cast<int>(i) / C, c = static_cast<int>(i) - n * C;
    const T soft = c == target[n] ? static_cast<T>(base + hit) : base;
    gx[i] = g[n] * (probs[i] - soft);
  }
}

extern "C" __global__ void ce_fwd_f32(const float* logits, const long long* target, float* loss, float* probs, int N,
                                      int C, double smoothing) {
  ce_fwd_body<float>(logits, target, loss, probs, N, C, smoothing);
}
extern "C" __global__ void ce_fwd_f64(const double* logits, const long long* target, double* loss, double* probs,
                                      int N, int C, double smoothing) {
  ce_fwd_body<double>(logits, target, loss, probs, N, C, smoothing);
}
extern "C" __global__ void ce_bwd_f32(const float* g, const float* probs, const long long* target, float* gx, int N,
                                      int C, double smoothing) {
  ce_bwd_body<float>(g, probs, target, gx, N, C, smoothing);
}
extern "C" __global__ void ce_bwd_f64(const double* g, const double* probs, const long long* target, double* gx,
                                      int N, int C, double smoothing) {
  ce_bwd_body<double>(g, probs, target, gx, N, C, smoothing);
}
