// pool.cu -- 2-D max and average pooling, forward and backward (NCHW, C-contiguous; NC = N*C planes;
// fewer than 2**31 elements in x and in y, so the index arithmetic is 32-bit).
//
// Forward: one thread per output element (grid-stride), looping over its window in row-major order.
//   max: the first maximum wins, the first NaN wins over numbers, padding cells never win; argmax is
//        the flat input index h*W + w (int64) -- NumpyBackend.max_pool2d exactly.
//   avg: sum of the real cells (padding counts as 0) over KH*KW (count_include_pad) or over the number
//        of real cells; accumulated in double.
// Backward: deterministic gathers, one thread per *input* element, no atomics.
//   avg: the windows that contain (h, w) are oh in [ceil((h+ph-KH+1)/sh), floor((h+ph)/sh)] (and
//        likewise ow); gx = sum of gy / divisor over them.
//   max: the grad op gets only (gy, argmax, x_shape), not the window geometry, so the candidate
//        outputs of an input row h are found from argmax itself:
//        1. maxpool_bwd_bounds: for every output row oh, the min and max input row any argmax of that
//           row points at (over all planes and columns); likewise per output column. One block each,
//           block reductions.
//        2. maxpool_bwd_ranges: with A[oh] = max(rmax[0..oh]) and B[oh] = min(rmin[oh..]) (both
//           nondecreasing), the outputs that can point at row h lie in the interval
//           {oh : A[oh] >= h and B[oh] <= h}; one thread per input row/column finds it.
//        3. maxpool_bwd: gx[h, w] = sum of gy[oh, ow] over the candidate (oh, ow) whose argmax is h*W+w,
//           added in output order in double -- the same sum, in the same order, as the reference's
//           np.bincount.
#include "common.cuh"

template <class T>
__device__ __forceinline__ void maxpool_fwd_body(const T* x, T* y, i64* argmax, int NC, int H, int W, int OH, int OW,
                                                 int kh, int kw, int sh, int sw, int ph, int pw) {
  TGC_GRID_STRIDE(o, static_cast<i64>(NC) * OH * OW) {
    const int t = static_cast<int>(o) / OW, ow = static_cast<int>(o) - t * OW, plane = t / OH, oh = t - plane * OH;
    const T* xp = x + static_cast<i64>(plane) * H * W;
    const int h0 = oh * sh - ph, w0 = ow * sw - pw;
    T best = -tgc_inf<T>();
    int best_idx = -1;
    for (int i = 0; i < kh; ++i) {
      const int h = h0 + i;
      if (h < 0 || h >= H) continue;
      for (int j = 0; j < kw; ++j) {
        const int w = w0 + j;
        if (w < 0 || w >= W) continue;
        const T v = xp[h * W + w];
        if (best_idx < 0 || v > best || (v != v && best == best)) {
          best = v;
          best_idx = h * W + w;
        }
      }
    }
    if (best_idx < 0) best_idx = h0 * W + w0;  // a window of padding only (the reference's choice)
    y[o] = best;
    argmax[o] = best_idx;
  }
}

// bounds[2*oh], bounds[2*oh+1]: min/max input row of the argmaxes of output row oh;
// bounds[2*OH + 2*ow], [.. + 1]: min/max input column of output column ow. Rows/columns are clamped to
// the image. Grid: OH + OW blocks (grid-stride), blockDim.x <= 256.
extern "C" __global__ void maxpool_bwd_bounds(const long long* argmax, int* bounds, int NC, int H, int W, int OH,
                                              int OW) {
  __shared__ int lo_buf[256];
  __shared__ int hi_buf[256];
  for (int b = blockIdx.x; b < OH + OW; b += gridDim.x) {
    const bool row = b < OH;
    const int o = row ? b : b - OH;  // the output row or column
    const int count = NC * (row ? OW : OH);
    const i64 hw = static_cast<i64>(H) * W;
    int lo = row ? H - 1 : W - 1, hi = 0;
    for (int t = threadIdx.x; t < count; t += blockDim.x) {
      int idx;
      if (row) idx = (t / OW * OH + o) * OW + t % OW;  // t = (plane, ow)
      else idx = t * OW + o;                           // t = (plane, oh)
      const i64 a = argmax[idx];
      const int flat = static_cast<int>(a < 0 ? 0 : (a >= hw ? hw - 1 : a));  // clamped into the plane
      const int v = row ? flat / W : flat % W;
      lo = imin(lo, v);
      hi = imax(hi, v);
    }
    lo = block_reduce(lo, lo_buf, MinOp());
    hi = block_reduce(hi, hi_buf, MaxOp());
    if (threadIdx.x == 0) {
      bounds[2 * b] = lo;
      bounds[2 * b + 1] = hi;
    }
  }
}

// ranges[2*h], ranges[2*h+1]: first and last output row whose argmax may point at input row h (first >
// last: none); ranges[2*H + 2*w], [.. + 1]: the same for columns. One thread per input row/column.
extern "C" __global__ void maxpool_bwd_ranges(const int* bounds, int* ranges, int H, int W, int OH, int OW) {
  TGC_GRID_STRIDE(t, static_cast<i64>(H) + W) {
    const bool row = t < H;
    const int v = static_cast<int>(row ? t : t - H);
    const int n = row ? OH : OW;
    const int* bd = row ? bounds : bounds + 2 * OH;
    int first = n, last = -1;
    int run_max = -1;
    for (int o = 0; o < n; ++o) {  // A[o] = max(hi[0..o]) >= v
      run_max = imax(run_max, bd[2 * o + 1]);
      if (run_max >= v) { first = o; break; }
    }
    int run_min = 1 << 30;
    for (int o = n - 1; o >= 0; --o) {  // B[o] = min(lo[o..]) <= v
      run_min = imin(run_min, bd[2 * o]);
      if (run_min <= v) { last = o; break; }
    }
    int* out = row ? ranges + 2 * v : ranges + 2 * H + 2 * v;
    out[0] = first;
    out[1] = last;
  }
}

template <class T>
__device__ __forceinline__ void maxpool_bwd_body(const T* gy, const i64* argmax, const int* ranges, T* gx, int NC,
                                                 int H, int W, int OH, int OW) {
  TGC_GRID_STRIDE(i, static_cast<i64>(NC) * H * W) {
    const int t = static_cast<int>(i) / W, w = static_cast<int>(i) - t * W, plane = t / H, h = t - plane * H;
    const i64 target = h * W + w;
    const int oh0 = ranges[2 * h], oh1 = ranges[2 * h + 1];
    const int ow0 = ranges[2 * H + 2 * w], ow1 = ranges[2 * H + 2 * w + 1];
    const i64 off = static_cast<i64>(plane) * OH * OW;
    double acc = 0.0;
    for (int oh = oh0; oh <= oh1; ++oh)
      for (int ow = ow0; ow <= ow1; ++ow) {
        const i64 o = off + oh * OW + ow;
        if (argmax[o] == target) acc += static_cast<double>(gy[o]);
      }
    gx[i] = static_cast<T>(acc);
  }
}

// number of real (non-padding) cells of window (oh, ow)
__device__ __forceinline__ int real_cells(int oh, int ow, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw) {
  const int h0 = oh * sh - ph, w0 = ow * sw - pw;
  const int rows = imin(h0 + kh, H) - imax(h0, 0), cols = imin(w0 + kw, W) - imax(w0, 0);
  return imax(rows, 0) * imax(cols, 0);
}

template <class T>
__device__ __forceinline__ void avgpool_fwd_body(const T* x, T* y, int NC, int H, int W, int OH, int OW, int kh,
                                                 int kw, int sh, int sw, int ph, int pw, int count_include_pad) {
  TGC_GRID_STRIDE(o, static_cast<i64>(NC) * OH * OW) {
    const int t = static_cast<int>(o) / OW, ow = static_cast<int>(o) - t * OW, plane = t / OH, oh = t - plane * OH;
    const T* xp = x + static_cast<i64>(plane) * H * W;
    const int h0 = oh * sh - ph, w0 = ow * sw - pw;
    double acc = 0.0;
    for (int h = imax(h0, 0); h < imin(h0 + kh, H); ++h)
      for (int w = imax(w0, 0); w < imin(w0 + kw, W); ++w) acc += static_cast<double>(xp[h * W + w]);
    const int div = count_include_pad ? kh * kw : real_cells(oh, ow, H, W, kh, kw, sh, sw, ph, pw);
    y[o] = static_cast<T>(acc / div);
  }
}

template <class T>
__device__ __forceinline__ void avgpool_bwd_body(const T* gy, T* gx, int NC, int H, int W, int OH, int OW, int kh,
                                                 int kw, int sh, int sw, int ph, int pw, int count_include_pad) {
  TGC_GRID_STRIDE(i, static_cast<i64>(NC) * H * W) {
    const int t = static_cast<int>(i) / W, w = static_cast<int>(i) - t * W, plane = t / H, h = t - plane * H;
    const T* gp = gy + static_cast<i64>(plane) * OH * OW;
    // windows containing (h, w): oh * sh - ph <= h <= oh * sh - ph + kh - 1
    const int oh0 = imax(0, -floor_div(-(h + ph - kh + 1), sh)), oh1 = imin(OH - 1, floor_div(h + ph, sh));
    const int ow0 = imax(0, -floor_div(-(w + pw - kw + 1), sw)), ow1 = imin(OW - 1, floor_div(w + pw, sw));
    double acc = 0.0;
    for (int oh = oh0; oh <= oh1; ++oh)
      for (int ow = ow0; ow <= ow1; ++ow) {
        const int div = count_include_pad ? kh * kw : real_cells(oh, ow, H, W, kh, kw, sh, sw, ph, pw);
        acc += static_cast<double>(gp[oh * OW + ow]) / div;
      }
    gx[i] = static_cast<T>(acc);
  }
}

// --- entry points -------------------------------------------------------------------------------
extern "C" __global__ void maxpool_fwd_f32(const float* x, float* y, long long* argmax, int NC, int H, int W, int OH,
                                           int OW, int kh, int kw, int sh, int sw, int ph, int pw) {
  maxpool_fwd_body<float>(x, y, argmax, NC, H, W, OH, OW, kh, kw, sh, sw, ph, pw);
}
extern "C" __global__ void maxpool_fwd_f64(const double* x, double* y, long long* argmax, int NC, int H, int W, int OH,
                                           int OW, int kh, int kw, int sh, int sw, int ph, int pw) {
  maxpool_fwd_body<double>(x, y, argmax, NC, H, W, OH, OW, kh, kw, sh, sw, ph, pw);
}
extern "C" __global__ void maxpool_bwd_f32(const float* gy, const long long* argmax, const int* ranges, float* gx,
                                           int NC, int H, int W, int OH, int OW) {
  maxpool_bwd_body<float>(gy, argmax, ranges, gx, NC, H, W, OH, OW);
}
extern "C" __global__ void maxpool_bwd_f64(const double* gy, const long long* argmax, const int* ranges, double* gx,
                                           int NC, int H, int W, int OH, int OW) {
  maxpool_bwd_body<double>(gy, argmax, ranges, gx, NC, H, W, OH, OW);
}
extern "C" __global__ void avgpool_fwd_f32(const float* x, float* y, int NC, int H, int W, int OH, int OW, int kh,
                                           int kw, int sh, int sw, int ph, int pw, int count_include_pad) {
  avgpool_fwd_body<float>(x, y, NC, H, W, OH, OW, kh, kw, sh, sw, ph, pw, count_include_pad);
}
extern "C" __global__ void avgpool_fwd_f64(const double* x, double* y, int NC, int H, int W, int OH, int OW, int kh,
                                           int kw, int sh, int sw, int ph, int pw, int count_include_pad) {
  avgpool_fwd_body<double>(x, y, NC, H, W, OH, OW, kh, kw, sh, sw, ph, pw, count_include_pad);
}
extern "C" __global__ void avgpool_bwd_f32(const float* gy, float* gx, int NC, int H, int W, int OH, int OW, int kh,
                                           int kw, int sh, int sw, int ph, int pw, int count_include_pad) {
  avgpool_bwd_body<float>(gy, gx, NC, H, W, OH, OW, kh, kw, sh, sw, ph, pw, count_include_pad);
}
extern "C" __global__ void avgpool_bwd_f64(const double* gy, double* gx, int NC, int H, int W, int OH, int OW, int kh,
                                           int kw, int sh, int sw, int ph, int pw, int count_include_pad) {
  avgpool_bwd_body<double>(gy, gx, NC, H, W, OH, OW, kh, kw, sh, sw, ph, pw, count_include_pad);
}
