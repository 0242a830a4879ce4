// common.cuh -- helpers shared by the kernels in kernels/*.cu.
//
// Rules for every kernel source (they are compiled by NVRTC through CuPy, by nvcc in the tests, and
// as plain C++ by the CPU emulation, see emulation.h):
//   * no includes other than our own .cuh files; no warp shuffles, cooperative groups or atomics;
//   * entry points are `extern "C" __global__` float32/float64 wrappers (`name_f32`, `name_f64`) around
//     a templated __device__ body; their parameters are pointers to float/double/int/long long or
//     scalars of those four types (cuda.py reads the parameter lists to type the launch arguments);
//   * every thread of a block reaches every __syncthreads() (no early return before a barrier);
//   * static shared memory only, at most 48 KiB per kernel;
//   * layouts: NCHW, C-contiguous unless a stride parameter says otherwise; 64-bit offsets.
#ifndef TGC_COMMON_CUH
#define TGC_COMMON_CUH

typedef long long i64;

// --- math that works on float and double the same way ---------------------------------------------
__device__ __forceinline__ float tgc_exp(float x) { return expf(x); }
__device__ __forceinline__ double tgc_exp(double x) { return exp(x); }
__device__ __forceinline__ float tgc_log(float x) { return logf(x); }
__device__ __forceinline__ double tgc_log(double x) { return log(x); }
__device__ __forceinline__ float tgc_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double tgc_sqrt(double x) { return sqrt(x); }

template <class T> __device__ __forceinline__ T tgc_inf();
template <> __device__ __forceinline__ float tgc_inf<float>() { return __int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double tgc_inf<double>() {
  return __longlong_as_double(0x7ff0000000000000LL);
}
template <class T> __device__ __forceinline__ T tgc_nan() { return tgc_inf<T>() - tgc_inf<T>(); }
template <class T> __device__ __forceinline__ bool tgc_isnan(T x) { return x != x; }

// max that propagates NaN (like np.max): the result is NaN if either argument is
template <class T> __device__ __forceinline__ T nan_max(T a, T b) { return (a > b || a != a) ? a : b; }

__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }

// floor division for a possibly negative numerator and a positive divisor
__device__ __forceinline__ int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// --- 4-element vector loads/stores (16-byte aligned addresses only) --------------------------------
__device__ __forceinline__ void ld4(const float* p, float (&r)[4]) {
  const float4 v = *reinterpret_cast<const float4*>(p);
  r[0] = v.x; r[1] = v.y; r[2] = v.z; r[3] = v.w;
}
__device__ __forceinline__ void ld4(const double* p, double (&r)[4]) {
  const double2 a = reinterpret_cast<const double2*>(p)[0];
  const double2 b = reinterpret_cast<const double2*>(p)[1];
  r[0] = a.x; r[1] = a.y; r[2] = b.x; r[3] = b.y;
}
__device__ __forceinline__ void st4(float* p, const float (&r)[4]) {
  *reinterpret_cast<float4*>(p) = make_float4(r[0], r[1], r[2], r[3]);
}
__device__ __forceinline__ void st4(double* p, const double (&r)[4]) {
  reinterpret_cast<double2*>(p)[0] = make_double2(r[0], r[1]);
  reinterpret_cast<double2*>(p)[1] = make_double2(r[2], r[3]);
}

// --- block-wide reductions (deterministic: a fixed tree in shared memory) ---------------------------
// Every thread of the block must call these (they contain barriers); each gets the result. `buf` is
// shared scratch with room for blockDim.x values; blockDim.y == blockDim.z == 1.
struct SumOp {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct MinOp {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return b < a ? b : a; }
};
struct MaxOp {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return b > a ? b : a; }
};
struct NanMaxOp {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return nan_max(a, b); }
};

template <class T, class Op> __device__ __forceinline__ T block_reduce(T v, T* buf, Op op) {
  const int tid = threadIdx.x, n = blockDim.x;
  buf[tid] = v;
  __syncthreads();
  int half = 1;
  while (half * 2 < n) half *= 2;  // largest power of two below n
  for (; half > 0; half >>= 1) {
    if (tid < half && tid + half < n) buf[tid] = op(buf[tid], buf[tid + half]);
    __syncthreads();
  }
  const T r = buf[0];
  __syncthreads();  // buf may be reused right away
  return r;
}

// two sums at once (one pass of barriers for both)
template <class T> __device__ __forceinline__ void block_sum2(T& a, T& b, T* buf_a, T* buf_b) {
  const int tid = threadIdx.x, n = blockDim.x;
  buf_a[tid] = a;
  buf_b[tid] = b;
  __syncthreads();
  int half = 1;
  while (half * 2 < n) half *= 2;
  for (; half > 0; half >>= 1) {
    if (tid < half && tid + half < n) {
      buf_a[tid] += buf_a[tid + half];
      buf_b[tid] += buf_b[tid + half];
    }
    __syncthreads();
  }
  a = buf_a[0];
  b = buf_b[0];
  __syncthreads();
}

// grid-stride loop bounds for elementwise kernels
#define TGC_GRID_STRIDE(i, n)                                                                   \
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);                \
       i += static_cast<i64>(gridDim.x) * blockDim.x)

#endif  // TGC_COMMON_CUH
