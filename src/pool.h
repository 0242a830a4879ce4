// 2-D max and average pooling on NCHW tensors, forward and backward.
//
// Layout assumptions (the caller -- csrc/pool_bindings.cpp -- guarantees them):
//   * x / gx are dense C-contiguous (N, C, H, W); y / gy / argmax are dense
//     C-contiguous (N, C, OH, OW) with OH = (H + 2*ph - kh) / sh + 1 (same for W);
//   * kh, kw, sh, sw >= 1 and 0 <= ph <= kh / 2, 0 <= pw <= kw / 2, so every
//     window overlaps the image in at least one element;
//   * outputs do not alias inputs.
//
// Algorithm. Every (n, c) plane is independent: the planes are split into
// contiguous ranges over the OpenMP threads, so each thread streams through its
// own part of memory; per-plane temporaries live in per-thread workspaces
// (workspace.h), reused across calls.
//   * max_pool2d_forward: within a window the elements are visited in row-major
//     order; a value replaces the running maximum when it is larger, or when it
//     is NaN and the maximum is not (the first NaN wins, as np.argmax does); ties
//     keep the first. Padding acts as -inf and never wins (a window whose maximum
//     is a real -inf points at its first element inside the image). argmax stores
//     the flat index h * W + w of the winner inside its plane.
//     - kernel 2x2, stride 2, no padding (the CIFAR case): one branch-free loop
//       per output row that the compiler vectorises (stride-2 loads of two input
//       rows, 4 compares and selects per output); memory-bound.
//     - any other shape: the padded plane is split into sh * sw polyphase
//       components X[a][b][u][v] = Xpad[u*sh + a][v*sw + b] (no copy at all for
//       stride 1 without padding). Window element (dh, dw) of output (i, j) is
//       then X[dh%sh][dw%sw][i + dh/sh][j + dw/sw], so on the flat grid
//       q = i*Wq + j every window offset is one contiguous, vectorised pass over
//       the running maxima (columns j >= OW are computed and dropped). The
//       winner's in-window offset dh*W + dw is kept as int32 (int64 for huge
//       planes) and turned into the flat index at the end.
//   * max_pool2d_backward: each gx plane is zeroed and gy scatter-added at the
//     argmax positions (a plane is small enough to stay in L1/L2 while this
//     happens, so gx is written to memory once). Indices outside [0, H*W) are
//     skipped and reported.
//   * avg_pool2d_forward: the same polyphase passes summing instead of taking
//     the maximum, then a division by kh*kw (count_include_pad) or by the number
//     of window elements inside the image.
//   * avg_pool2d_backward: the adjoint: gy / divisor is added to the polyphase
//     components of a zeroed plane, one contiguous pass per window offset (within
//     a pass every output adds to a different element), and the components are
//     interleaved back into gx.
#pragma once

#include <cstdint>

namespace tgc {

struct Pool2dShape {
  std::int64_t n, c, h, w;     // input
  std::int64_t kh, kw;         // kernel
  std::int64_t sh, sw;         // stride
  std::int64_t ph, pw;         // zero/-inf padding on each side
  std::int64_t oh, ow;         // output (see pool_output_size)
};

// floor((size + 2 * padding - kernel) / stride) + 1 (may be <= 0 for a too-small input).
std::int64_t pool_output_size(std::int64_t size, std::int64_t kernel, std::int64_t stride,
                              std::int64_t padding);

template <typename T>
void max_pool2d_forward(const T* x, T* y, std::int64_t* argmax, const Pool2dShape& s);

// Returns -1, or the flat position in argmax of the first index outside [0, H*W)
// (such entries contribute nothing).
template <typename T>
std::int64_t max_pool2d_backward(const T* gy, const std::int64_t* argmax, T* gx,
                                 const Pool2dShape& s);

template <typename T>
void avg_pool2d_forward(const T* x, T* y, const Pool2dShape& s, bool count_include_pad);

template <typename T>
void avg_pool2d_backward(const T* gy, T* gx, const Pool2dShape& s, bool count_include_pad);

extern template void max_pool2d_forward<float>(const float*, float*, std::int64_t*,
                                               const Pool2dShape&);
extern template void max_pool2d_forward<double>(const double*, double*, std::int64_t*,
                                                const Pool2dShape&);
extern template std::int64_t max_pool2d_backward<float>(const float*, const std::int64_t*,
                                                        float*, const Pool2dShape&);
extern template std::int64_t max_pool2d_backward<double>(const double*, const std::int64_t*,
                                                         double*, const Pool2dShape&);
extern template void avg_pool2d_forward<float>(const float*, float*, const Pool2dShape&, bool);
extern template void avg_pool2d_forward<double>(const double*, double*, const Pool2dShape&,
                                                bool);
extern template void avg_pool2d_backward<float>(const float*, float*, const Pool2dShape&, bool);
extern template void avg_pool2d_backward<double>(const double*, double*, const Pool2dShape&,
                                                 bool);

}  // namespace tgc
