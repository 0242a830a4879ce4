// Batch normalisation and layer normalisation, forward and backward.
//
// Batch norm. Layout: x, y, gy, gx are dense C-contiguous arrays viewed as
// (N, C, S) -- an (N, C) input has S = 1, an (N, C, H, W) input S = H * W --
// and the statistics are per channel c, over the M = N * S values x[n, c, s].
// Per-channel arrays (mean, var, invstd, gamma, beta, ggamma, gbeta) are dense
// (C,); gamma and beta may be null (no affine transform).
//   * batch_norm_stats: one pass over x. Each channel's sums are taken of the
//     values shifted by the channel's first value K (sum of x - K and of
//     (x - K)^2), which keeps the one-pass variance accurate when |mean| >> std;
//     mean = K + s1/M, var = s2/M - (s1/M)^2 (biased, clamped at 0). Pieces of at
//     most 1024 values are summed in T into several independent SIMD
//     accumulators, the pieces in double.
//   * batch_norm_apply: y = (x - mean) * scale + beta with
//     scale = gamma / sqrt(var + eps) computed per channel in double.
//   * batch_norm_backward: one pass for sum(gy) and sum(gy * (x - mean)) per
//     channel (the gradients of beta and, times invstd, of gamma), then one pass
//     writing gx = a*gy + b*(x - mean) + d with per-channel coefficients
//     (training: the batch statistics depend on x; eval: gx = gamma*invstd*gy).
//   Work split: the N*C runs of S values are cut into one contiguous range per
//   thread (so each thread streams through its own slab of memory); for S = 1
//   the innermost loop runs over channels instead. Per-thread per-channel
//   partial sums (double) live in a reused workspace and are added at the end,
//   so the result depends only on the thread count, not on timing. (Going
//   channel by channel instead, to find a channel in L2 for the second pass,
//   was 3x slower: the runs of one channel are C*S*sizeof(T) bytes apart, a
//   power of two for typical shapes, so they collide in the same cache sets,
//   and short strided runs stream worse than contiguous slabs.)
//
// Layer norm. Layout: x, y, gy, gx are dense C-contiguous (R, M): R rows of the
// M = prod(normalised shape) values that are normalised together; mean and
// invstd are (R,); gamma, beta, ggamma, gbeta are (M,) and gamma/beta may be
// null. Each row is normalised by a thread on its own with two passes over the
// row (mean, then the mean squared deviation: the row is in cache for the
// second pass) and a third writing y. The backward pass computes, per row,
// sum(g) and sum(g * xhat) with g = gy * gamma, then
// gx = invstd * (g - sum(g)/M - xhat * sum(g * xhat)/M); ggamma and gbeta are
// column sums over the rows, accumulated per thread in double and added at the end.
#pragma once

#include <cstdint>

namespace tgc {

template <typename T>
void batch_norm_stats(const T* x, std::int64_t n, std::int64_t c, std::int64_t s, T* mean,
                      T* var);

template <typename T>
void batch_norm_apply(const T* x, std::int64_t n, std::int64_t c, std::int64_t s, const T* mean,
                      const T* var, const T* gamma, const T* beta, double eps, T* y);

// batch_norm_stats followed by batch_norm_apply (y, mean, var).
template <typename T>
void batch_norm_train(const T* x, std::int64_t n, std::int64_t c, std::int64_t s, const T* gamma,
                      const T* beta, double eps, T* y, T* mean, T* var);

template <typename T>
void batch_norm_backward(const T* gy, const T* x, std::int64_t n, std::int64_t c, std::int64_t s,
                         const T* mean, const T* invstd, const T* gamma, bool training, T* gx,
                         T* ggamma, T* gbeta);

template <typename T>
void layer_norm_forward(const T* x, std::int64_t rows, std::int64_t m, const T* gamma,
                        const T* beta, double eps, T* y, T* mean, T* invstd);

template <typename T>
void layer_norm_backward(const T* gy, const T* x, std::int64_t rows, std::int64_t m,
                         const T* mean, const T* invstd, const T* gamma, T* gx, T* ggamma,
                         T* gbeta);

#define TGC_NORM_DECLARE(T, EXTERN)                                                          \
  EXTERN template void batch_norm_stats<T>(const T*, std::int64_t, std::int64_t, std::int64_t, \
                                           T*, T*);                                          \
  EXTERN template void batch_norm_apply<T>(const T*, std::int64_t, std::int64_t, std::int64_t, \
                                           const T*, const T*, const T*, const T*, double, T*); \
  EXTERN template void batch_norm_train<T>(const T*, std::int64_t, std::int64_t, std::int64_t, \
                                           const T*, const T*, double, T*, T*, T*);          \
  EXTERN template void batch_norm_backward<T>(const T*, const T*, std::int64_t, std::int64_t,  \
                                              std::int64_t, const T*, const T*, const T*, bool, \
                                              T*, T*, T*);                                     \
  EXTERN template void layer_norm_forward<T>(const T*, std::int64_t, std::int64_t, const T*,   \
                                             const T*, double, T*, T*, T*);                    \
  EXTERN template void layer_norm_backward<T>(const T*, const T*, std::int64_t, std::int64_t,  \
                                              const T*, const T*, const T*, T*, T*, T*);

TGC_NORM_DECLARE(float, extern)
TGC_NORM_DECLARE(double, extern)

}  // namespace tgc
