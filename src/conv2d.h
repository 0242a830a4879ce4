// 2-D convolution (cross-correlation, as in PyTorch) on the CPU: forward,
// gradient with respect to the input and gradient with respect to the weight.
//
// Layout assumptions (the caller -- csrc/conv_bindings.cpp -- guarantees them):
//   * x (N, C, H, W), w (F, C/groups, KH, KW), bias (F,) or null,
//     y / gy (N, F, OH, OW): dense, row-major (NCHW), contiguous, no aliasing;
//   * OH = floor((H + 2 ph - dh (KH - 1) - 1) / sh) + 1, likewise OW;
//   * strides and dilations >= 1, paddings >= 0, groups >= 1 dividing C and F,
//     KH, KW >= 1, OH, OW >= 1; N, C or F may be 0 (then there is nothing to do,
//     or the result is all zeros / the bias).
//
// Three algorithms; Conv2dParams::algo forces one (for tests), kAuto picks per
// call (conv2d_*_algo; the rule and the measurements behind it, per ISA, are in
// conv2d.cpp). Every algorithm is one source over the SIMD layer (simd.h),
// compiled once per ISA; its register tiles follow the ISA's vector width and
// register count.
//
// 1. im2col + GEMM (tgc::gemm from gemm.h). Per image n and group g, with
//    K = C/g * KH * KW and P = OH * OW:
//      forward      Y[n,g]  (F/g x P)  = W[g] (F/g x K) @ cols (K x P)      (+ bias)
//      grad_input   cols    (K x P)    = W[g]^T @ gY[n,g] (F/g x P), then col2im
//                                        (scatter-add of cols into gX)
//      grad_weight  gW[g]   (F/g x K) += gY[n,g] @ cols^T, summed over the batch
//    cols[(c*KH + kh)*KW + kw][oh*OW + ow] = x[c][oh*sh - ph + kh*dh][ow*sw - pw + kw*dw]
//    (0 in the padding). The image is first copied into a zero-padded buffer
//    split into `sw` column phases, so that every row of cols is a run of
//    contiguous copies for any stride and dilation (and col2im a run of
//    contiguous adds into such a buffer). Large images are processed in blocks
//    of output rows so the column buffer stays around 1-2 MiB; 1x1 convolutions
//    with stride 1 and no padding use x / gX directly as the column matrix.
// 2. Direct convolution (an implicit GEMM with its own register-blocked
//    micro-kernel), chosen for few input channels per group (the first layer
//    of an image network: C = 1 or 3, where K is too short for GEMM) and, for
//    the forward and the stride-1 grad_input, whenever output rows fill the
//    SIMD vectors well (then it beats im2col + GEMM, which copies every input
//    KH*KW times). The padded, phase-split input of one image is the only copy.
//    Outputs are covered by "slots" (one SIMD vector of up to VL consecutive
//    outputs of one output row); the micro-kernel computes up to 8 output
//    channels x up to 6 slots in registers (4 x 3 on ISAs with 16 vector
//    registers, AVX2 and SSE2), looping over the C/g*KH*KW taps
//    with one vector load per slot and one broadcast weight per channel.
//      forward      as above;
//      grad_input   for stride 1 only: the transposed convolution is a forward
//                   convolution of gY with the weights flipped in space and with
//                   input/output channels swapped (padding d(k-1) - p, which may
//                   be negative, i.e. a crop); other strides use im2col + GEMM;
//      grad_weight  per (4 output channels x 6 taps) tile (3 x 4 with 16
//                   registers), dot products over all
//                   slots, accumulated lane-wise in a per-thread buffer.
// 3. Channel-vectorised direct convolution (kDirectChannels), chosen for the
//    forward and the stride-1 grad_input of small images with several channels
//    and a batch of 32 or more (there the padding holds 10-30% of the taps and
//    rows are too short for 2.), and for grad_weight with more than a few input
//    channels. One SIMD
//    vector holds L consecutive output channels (L = 16 float / 8 double
//    lanes on AVX-512, 8 / 4 on AVX2, 4 / 2 on SSE2 and NEON); output channels
//    are split into blocks of FV <= 4 vectors (3 with 16 registers; zero-
//    padded), the weights are repacked once per call to [block][c][kh][kw][FV*L].
//    Only taps that read real input pixels are visited: for output (oh, ow) the
//    valid kernel rows / columns are a range [kh0, kh1) x [kw0, kw1), the same
//    for every image, so the loops simply start and stop there (no padded copy,
//    no multiplications by zero; borders need no special code).
//      forward      register tile: RB images x FV vectors at one output pixel
//                   (RB * FV <= 28 accumulators, e.g. 6 x 4 or 14 x 2; with 16
//                   registers <= 14, e.g. 4 x 3 or 14 x 1); per tap
//                   FV weight vectors times RB broadcast inputs. The RB images of
//                   a work item are interleaved once (xi[c][ih][iw][image]) so
//                   the broadcasts of a tap are adjacent; the tiles of one output
//                   row are staged [ow][image][channel] and written out as
//                   contiguous NCHW rows (a transpose per row).
//      grad_input   for stride 1 only, the transposed convolution as in 2.
//      grad_weight  register tile: RB input channels x FV vectors of output
//                   channels at one kernel position (kh, kw), summed over the
//                   pixels where that tap is valid (a rectangle of outputs) of a
//                   batch of images transposed to channel-innermost layouts
//                   (x[n][ih][iw][c], gy[n][oh][ow][f]); per pixel FV gy vectors
//                   times RB broadcast inputs. Partial sums per image chunk.
//
// Threads (OpenMP): with at least as many (image, group) pairs as threads, the
// pairs are handed to the threads dynamically (a shared machine slows threads
// unevenly); each thread uses its own workspaces and gemm runs single-threaded
// inside the parallel region. With fewer pairs (batch 1) the pairs are
// processed one after the other and the parallelism is inside (gemm's own
// threads, or the direct micro-kernel's tiles). The channel-vectorised kernel
// hands out (group, image block) work items the same way (as many image blocks
// as a multiple of the thread count where that costs at most a few images per
// block), or splits the output rows of one item over the threads. grad_weight
// splits the pairs (kDirectChannels: the images) into a fixed number of chunks
// with one partial sum each, added in chunk order at the end: deterministic for
// a given thread count.
//
// Workspaces (padded images, column buffers, packed weights, partial sums) are
// thread-local and only grow, so repeated calls allocate (and page-fault)
// nothing after the first.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tgc {

// kDirect: 2. above (vectorised over output width); kDirectChannels: 3. (over output channels).
enum class ConvAlgo : int { kAuto = 0, kGemm = 1, kDirect = 2, kDirectChannels = 3 };

struct Conv2dParams {
  std::int64_t n = 0, c = 0, h = 0, w = 0;  // input
  std::int64_t f = 0, kh = 1, kw = 1;       // weight (f, c / groups, kh, kw)
  std::int64_t sh = 1, sw = 1;              // stride
  std::int64_t ph = 0, pw = 0;              // padding
  std::int64_t dh = 1, dw = 1;              // dilation
  std::int64_t groups = 1;
  ConvAlgo algo = ConvAlgo::kAuto;

  std::int64_t oh() const { return (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1; }
  std::int64_t ow() const { return (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1; }
};

// The algorithm each entry point uses for these parameters and element size
// (sizeof(float) or sizeof(double)); resolves kAuto.
ConvAlgo conv2d_forward_algo(const Conv2dParams& p, std::size_t elem_size);
ConvAlgo conv2d_grad_input_algo(const Conv2dParams& p, std::size_t elem_size);
ConvAlgo conv2d_grad_weight_algo(const Conv2dParams& p, std::size_t elem_size);

// y = conv(x, w) + bias (bias may be null).
template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y);

// gx = d(sum(gy * conv(x, w))) / dx.
template <typename T>
void conv2d_grad_input(const Conv2dParams& p, const T* gy, const T* w, T* gx);

// gw = d(sum(gy * conv(x, w))) / dw.
template <typename T>
void conv2d_grad_weight(const Conv2dParams& p, const T* gy, const T* x, T* gw);

extern template void conv2d_forward<float>(const Conv2dParams&, const float*, const float*,
                                           const float*, float*);
extern template void conv2d_forward<double>(const Conv2dParams&, const double*, const double*,
                                            const double*, double*);
extern template void conv2d_grad_input<float>(const Conv2dParams&, const float*, const float*,
                                              float*);
extern template void conv2d_grad_input<double>(const Conv2dParams&, const double*, const double*,
                                               double*);
extern template void conv2d_grad_weight<float>(const Conv2dParams&, const float*, const float*,
                                               float*);
extern template void conv2d_grad_weight<double>(const Conv2dParams&, const double*, const double*,
                                                double*);

}  // namespace tgc
