// conv2d.cu -- 2-D convolution (NCHW, stride, padding, dilation, groups, bias): forward, grad-input and
// grad-weight, each an *implicit GEMM* on the tile of gemm_core.cuh (128 x 128 x 8, 256 threads, 8 x 8
// outputs per thread). No im2col buffer: the loaders below gather the GEMM operands from the images
// on the fly while filling shared memory, and the epilogues scatter the tile into NCHW.
//
// Shapes: x (N, C, H, W), w (F, C/G, KH, KW), y/gy (N, F, OH, OW), all C-contiguous; Cg = C/G,
// Fg = F/G, q = (c, i, j) indexes Cg*KH*KW, p = (n, oh, ow) indexes N*OH*OW. One GEMM per group g
// (blockIdx.z, grid-stride):
//   forward      y[n, gFg+f, oh, ow] = sum_q w[gFg+f, q] * col[q, p] (+ bias)      M=Fg, N=N*OH*OW, K=Q
//                col[q, p] = x[n, gCg+c, oh*sh-ph+i*dh, ow*sw-pw+j*dw]  (0 in the padding)
//   grad_input   gx[n, gCg+c, h, w] = sum_(f,i,j) wt[g, c, (f,i,j)] * gcol[(f,i,j), (n,h,w)]
//                gcol = gy[n, gFg+f, oh, ow] where h = oh*sh-ph+i*dh, w likewise, else 0  M=Cg, N=N*H*W, K=Fg*KH*KW
//                (wt = w regrouped to (G, Cg, Fg, KH, KW) by the host; a gather, no atomics)
//   grad_weight  gw[gFg+f, q] = sum_p gy[n, gFg+f, oh, ow] * col[q, p]             M=Fg, N=Q, K=N*OH*OW
//                split-K over p (k_chunk, as in gemm.cu): blockIdx.z = g * nsplit + s, partial sums
//                at gw + (s * G + g) * Fg * Q, added in order by sum_splits.
#include "gemm_core.cuh"

struct ConvGeom {
  int N, C, H, W, F, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, G;
  int Cg, Fg, KHW, Q, HW, OHW;
};

__device__ __forceinline__ ConvGeom conv_geom(int N, int C, int H, int W, int F, int KH, int KW, int OH, int OW,
                                              int sh, int sw, int ph, int pw, int dh, int dw, int G) {
  ConvGeom g = {N, C, H, W, F, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, G, C / G, F / G, KH * KW, 0, H * W, OH * OW};
  g.Q = g.Cg * g.KHW;
  return g;
}

// A row/column offset that stays out of range whatever tap offset is added to it (marks padding
// columns of the tile past the end of the matrix).
constexpr int kFar = -(1 << 29);

// col[q][p] of the forward pass (k = q, x = p), runs of 4 along p. x points at the group's first channel.
template <class T> struct ImageColumns {
  const T* x;
  i64 base[4];
  int ih0[4], iw0[4];
  int kk, xx, Q, KHW, KW, dh, dw, H, W, HW;
  T r[4];

  __device__ ImageColumns(const T* x_, const ConvGeom& g, int p0)
      : x(x_), kk(gemm::slice_k(true)), xx(gemm::slice_x(true)), Q(g.Q), KHW(g.KHW), KW(g.KW), dh(g.dh),
        dw(g.dw), H(g.H), W(g.W), HW(g.HW) {
    const int P = g.N * g.OHW;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int p = p0 + xx + e;
      base[e] = 0;
      ih0[e] = iw0[e] = kFar;
      if (p < P) {
        const int n = p / g.OHW, rr = p - n * g.OHW, oh = rr / g.OW, ow = rr - oh * g.OW;
        base[e] = static_cast<i64>(n) * g.C * g.HW;
        ih0[e] = oh * g.sh - g.ph;
        iw0[e] = ow * g.sw - g.pw;
      }
    }
  }
  __device__ __forceinline__ void fetch(int k0) {
    const int q = k0 + kk;
    if (q < Q) {
      const int c = q / KHW, rem = q - c * KHW, i = rem / KW, j = rem - i * KW;
      const T* xc = x + static_cast<i64>(c) * HW;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int ih = ih0[e] + i * dh, iw = iw0[e] + j * dw;
        r[e] = (static_cast<unsigned>(ih) < static_cast<unsigned>(H) && static_cast<unsigned>(iw) < static_cast<unsigned>(W))
                   ? xc[base[e] + ih * W + iw] : T(0);
      }
    } else {
#pragma unroll
      for (int e = 0; e < 4; ++e) r[e] = T(0);
    }
  }
  __device__ __forceinline__ void store(T (*s)[gemm::LDS]) const { gemm::store_slice(s, true, kk, xx, r); }
};

// col[q][p] transposed for grad_weight (k = p, x = q), runs of 4 along p; k < kend (the split's end).
template <class T> struct ImageColumnsT {
  const T* x;  // the group's first channel + this thread's (c, i, j) channel offset
  int di, dj, kend, kk, xx, OHW, OW, OH, sh, sw, H, W;
  i64 CHW;
  bool valid;
  T r[4];

  __device__ ImageColumnsT(const T* x_, const ConvGeom& g, int q0, int kend_)
      : kend(kend_), kk(gemm::slice_k(false)), xx(gemm::slice_x(false)), OHW(g.OHW), OW(g.OW), OH(g.OH),
        sh(g.sh), sw(g.sw), H(g.H), W(g.W), CHW(static_cast<i64>(g.C) * g.HW) {
    const int q = q0 + xx;
    valid = q < g.Q;
    const int c = valid ? q / g.KHW : 0, rem = q - c * g.KHW, i = rem / g.KW, j = rem - i * g.KW;
    x = x_ + static_cast<i64>(c) * g.HW;
    di = i * g.dh - g.ph;
    dj = j * g.dw - g.pw;
  }
  __device__ __forceinline__ void fetch(int k0) {
    const int p = k0 + kk;
    int n = p / OHW, rr = p - n * OHW, oh = rr / OW, ow = rr - oh * OW;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      T v = T(0);
      if (valid && p + e < kend) {
        const int ih = oh * sh + di, iw = ow * sw + dj;
        if (static_cast<unsigned>(ih) < static_cast<unsigned>(H) && static_cast<unsigned>(iw) < static_cast<unsigned>(W))
          v = x[n * CHW + ih * W + iw];
      }
      r[e] = v;
      if (++ow == OW) {
        ow = 0;
        if (++oh == OH) { oh = 0; ++n; }
      }
    }
  }
  __device__ __forceinline__ void store(T (*s)[gemm::LDS]) const { gemm::store_slice(s, false, kk, xx, r); }
};

// gy as a (p, f) matrix for grad_weight (k = p, x = f), runs of 4 along p. gy points at the group's first filter.
template <class T> struct GradRows {
  const T* gy;  // + this thread's filter
  i64 FOHW;
  int OHW, kend, kk, xx;
  bool valid;
  T r[4];

  __device__ GradRows(const T* gy_, const ConvGeom& g, int f0, int kend_)
      : FOHW(static_cast<i64>(g.F) * g.OHW), OHW(g.OHW), kend(kend_), kk(gemm::slice_k(false)),
        xx(gemm::slice_x(false)) {
    const int f = f0 + xx;
    valid = f < g.Fg;
    gy = gy_ + static_cast<i64>(valid ? f : 0) * g.OHW;
  }
  __device__ __forceinline__ void fetch(int k0) {
    const int p = k0 + kk;
    int n = OHW > 0 ? p / OHW : 0, rr = p - n * OHW;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      r[e] = (valid && p + e < kend) ? gy[n * FOHW + rr] : T(0);
      if (++rr == OHW) { rr = 0; ++n; }
    }
  }
  __device__ __forceinline__ void store(T (*s)[gemm::LDS]) const { gemm::store_slice(s, false, kk, xx, r); }
};

// gcol[(f, i, j)][(n, h, w)] for grad_input (k = (f, i, j), x = pixel), runs of 4 along the pixels.
// gy points at the group's first filter.
template <class T> struct GradColumns {
  const T* gy;
  i64 base[4];
  int hp[4], wp[4];
  int kk, xx, K, KHW, KW, dh, dw, sh, sw, OH, OW, OHW;
  T r[4];

  __device__ GradColumns(const T* gy_, const ConvGeom& g, int p0)
      : gy(gy_), kk(gemm::slice_k(true)), xx(gemm::slice_x(true)), K(g.Fg * g.KHW), KHW(g.KHW), KW(g.KW),
        dh(g.dh), dw(g.dw), sh(g.sh), sw(g.sw), OH(g.OH), OW(g.OW), OHW(g.OHW) {
    const int P = g.N * g.HW;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int p = p0 + xx + e;
      base[e] = 0;
      hp[e] = wp[e] = kFar;
      if (p < P) {
        const int n = p / g.HW, rr = p - n * g.HW, h = rr / g.W, w = rr - h * g.W;
        base[e] = static_cast<i64>(n) * g.F * g.OHW;
        hp[e] = h + g.ph;
        wp[e] = w + g.pw;
      }
    }
  }
  __device__ __forceinline__ void fetch(int k0) {
    const int q = k0 + kk;
    if (q < K) {
      const int f = q / KHW, rem = q - f * KHW, i = rem / KW, j = rem - i * KW;
      const T* gf = gy + static_cast<i64>(f) * OHW;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        T v = T(0);
        const int th = hp[e] - i * dh, tw = wp[e] - j * dw;  // = oh * sh, ow * sw if this tap hits (h, w)
        if (th >= 0 && tw >= 0) {
          const int oh = th / sh, ow = tw / sw;
          if (oh * sh == th && ow * sw == tw && oh < OH && ow < OW) v = gf[base[e] + oh * OW + ow];
        }
        r[e] = v;
      }
    } else {
#pragma unroll
      for (int e = 0; e < 4; ++e) r[e] = T(0);
    }
  }
  __device__ __forceinline__ void store(T (*s)[gemm::LDS]) const { gemm::store_slice(s, true, kk, xx, r); }
};

// Tile (row = channel within the group, column p = (n, pixel)) -> out[n, c0 + row, pixel] (+ bias).
template <class T> struct StoreImage {
  T* out;
  const T* bias;  // nullptr: none
  int rows, P, plane, c0;
  i64 nstride;  // channels * plane
  __device__ __forceinline__ void operator()(int m, int n, const T (&v)[4]) const {
    if (m >= rows) return;
    const T b = bias ? bias[c0 + m] : T(0);
    T* o = out + static_cast<i64>(c0 + m) * plane;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int p = n + e;
      if (p < P) {
        const int nn = p / plane;
        o[nn * nstride + (p - nn * plane)] = v[e] + b;
      }
    }
  }
};

template <class T>
__device__ __forceinline__ void conv2d_fwd_body(const T* x, const T* w, const T* bias, int has_bias, T* y,
                                                const ConvGeom& g, int w_vec) {
  const int m0 = blockIdx.y * gemm::BM, n0 = blockIdx.x * gemm::BN;
  for (int grp = blockIdx.z; grp < g.G; grp += gridDim.z) {
    gemm::Strided<T> a(w + static_cast<i64>(grp) * g.Fg * g.Q, 1, g.Q, g.Fg, g.Q, m0, w_vec ? gemm::kVec : 0);
    ImageColumns<T> b(x + static_cast<i64>(grp) * g.Cg * g.HW, g, n0);
    const StoreImage<T> epi{y, has_bias ? bias : nullptr, g.Fg, g.N * g.OHW, g.OHW, grp * g.Fg,
                            static_cast<i64>(g.F) * g.OHW};
    gemm::block_tile<T>(a, b, 0, g.Q, m0, n0, epi);
  }
}

template <class T>
__device__ __forceinline__ void conv2d_dgrad_body(const T* gy, const T* wt, T* gx, const ConvGeom& g, int wt_vec) {
  const int m0 = blockIdx.y * gemm::BM, n0 = blockIdx.x * gemm::BN;
  const int K = g.Fg * g.KHW;
  for (int grp = blockIdx.z; grp < g.G; grp += gridDim.z) {
    gemm::Strided<T> a(wt + static_cast<i64>(grp) * g.Cg * K, 1, K, g.Cg, K, m0, wt_vec ? gemm::kVec : 0);
    GradColumns<T> b(gy + static_cast<i64>(grp) * g.Fg * g.OHW, g, n0);
    const StoreImage<T> epi{gx, nullptr, g.Cg, g.N * g.HW, g.HW, grp * g.Cg, static_cast<i64>(g.C) * g.HW};
    gemm::block_tile<T>(a, b, 0, K, m0, n0, epi);
  }
}

template <class T>
__device__ __forceinline__ void conv2d_wgrad_body(const T* gy, const T* x, T* gw, const ConvGeom& g, int k_chunk,
                                                  int gw_vec) {
  const int m0 = blockIdx.y * gemm::BM, n0 = blockIdx.x * gemm::BN;
  const int P = g.N * g.OHW;
  const int nsplit = P > 0 ? (P + k_chunk - 1) / k_chunk : 1;
  for (int z = blockIdx.z; z < g.G * nsplit; z += gridDim.z) {
    const int grp = z / nsplit, s = z - grp * nsplit;
    const int kb = s * k_chunk, ke = imin(P, kb + k_chunk);
    GradRows<T> a(gy + static_cast<i64>(grp) * g.Fg * g.OHW, g, m0, ke);
    ImageColumnsT<T> b(x + static_cast<i64>(grp) * g.Cg * g.HW, g, n0, ke);
    const gemm::StoreRowMajor<T> epi{gw + (static_cast<i64>(s) * g.G + grp) * g.Fg * g.Q, g.Fg, g.Q, gw_vec != 0};
    gemm::block_tile<T>(a, b, kb, ke, m0, n0, epi);
  }
}

// --- entry points -------------------------------------------------------------------------------
extern "C" __global__ void __launch_bounds__(256, 2)
conv2d_fwd_f32(const float* x, const float* w, const float* bias, int has_bias, float* y, int N, int C, int H,
               int W, int F, int KH, int KW, int OH, int OW, int sh, int sw, int ph, int pw, int dh, int dw,
               int groups, int w_vec) {
  conv2d_fwd_body<float>(x, w, bias, has_bias, y, conv_geom(N, C, H, W, F, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, groups), w_vec);
}

extern "C" __global__ void __launch_bounds__(256)
conv2d_fwd_f64(const double* x, const double* w, const double* bias, int has_bias, double* y, int N, int C, int H,
               int W, int F, int KH, int KW, int OH, int OW, int sh, int sw, int ph, int pw, int dh, int dw,
               int groups, int w_vec) {
  conv2d_fwd_body<double>(x, w, bias, has_bias, y, conv_geom(N, C, H, W, F, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, groups), w_vec);
}

extern "C" __global__ void __launch_bounds__(256, 2)
conv2d_dgrad_f32(const float* gy, const float* wt, float* gx, int N, int C, int H, int W, int F, int KH, int KW,
                 int OH, int OW, int sh, int sw, int ph, int pw, int dh, int dw, int groups, int wt_vec) {
  conv2d_dgrad_body<float>(gy, wt, gx, conv_geom(N, C, H, W, F, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, groups), wt_vec);
}

extern "C" __global__ void __launch_bounds__(256)
conv2d_dgrad_f64(const double* gy, const double* wt, double* gx, int N, int C, int H, int W, int F, int KH, int KW,
                 int OH, int OW, int sh, int sw, int ph, int pw, int dh, int dw, int groups, int wt_vec) {
  conv2d_dgrad_body<double>(gy, wt, gx, conv_geom(N, C, H, W, F, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, groups), wt_vec);
}

extern "C" __global__ void __launch_bounds__(256, 2)
conv2d_wgrad_f32(const float* gy, const float* x, float* gw, int N, int C, int H, int W, int F, int KH, int KW,
                 int OH, int OW, int sh, int sw, int ph, int pw, int dh, int dw, int groups, int k_chunk, int gw_vec) {
  conv2d_wgrad_body<float>(gy, x, gw, conv_geom(N, C, H, W, F, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, groups), k_chunk, gw_vec);
}

extern "C" __global__ void __launch_bounds__(256)
conv2d_wgrad_f64(const double* gy, const double* x, double* gw, int N, int C, int H, int W, int F, int KH, int KW,
                 int OH, int OW, int sh, int sw, int ph, int pw, int dh, int dw, int groups, int k_chunk, int gw_vec) {
  conv2d_wgrad_body<double>(gy, x, gw, conv_geom(N, C, H, W, F, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, groups), k_chunk, gw_vec);
}

extern "C" __global__ void sum_splits_f32(const float* ws, float* out, long long count, int splits) {
  sum_splits_body<float>(ws, out, count, splits);
}

extern "C" __global__ void sum_splits_f64(const double* ws, double* out, long long count, int splits) {
  sum_splits_body<double>(ws, out, count, splits);
}
