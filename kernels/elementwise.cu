// elementwise.cu -- ReLU and its gradient: one thread per element (grid-stride), C-contiguous, n elements.
//   relu       y = x > 0 ? x : 0, NaN passes through (np.maximum(x, 0))
//   relu_grad  gx = g * (x > 0 ? 1 : 0) -- a product, as in the reference, so g = inf/NaN at x <= 0 gives NaN
#include "common.cuh"

template <class T> __device__ __forceinline__ void relu_body(const T* x, T* y, i64 n) {
  TGC_GRID_STRIDE(i, n) {
    const T v = x[i];
    y[i] = (v > T(0) || v != v) ? v : T(0);
  }
}

template <class T> __device__ __forceinline__ void relu_grad_body(const T* g, const T* x, T* gx, i64 n) {
  TGC_GRID_STRIDE(i, n) gx[i] = g[i] * (x[i] > T(0) ? T(1) : T(0));
}

extern "C" __global__ void relu_f32(const float* x, float* y, long long n) { relu_body<float>(x, y, n); }
extern "C" __global__ void relu_f64(const double* x, double* y, long long n) { relu_body<double>(x, y, n); }
extern "C" __global__ void relu_grad_f32(const float* g, const float* x, float* gx, long long n) {
  relu_grad_body<float>(g, x, gx, n);
}
extern "C" __global__ void relu_grad_f64(const double* g, const double* x, double* gx, long long n) {
  relu_grad_body<double>(g, x, gx, n);
}
