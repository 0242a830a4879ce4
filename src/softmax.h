// Fused softmax + cross-entropy over class indices, forward and backward.
//
// Layout: logits, probs and the gradient are dense C-contiguous (N, C) arrays;
// target, loss and g are dense (N,). target holds int64 class indices.
//
// Forward, per row i (rows are independent and split over OpenMP threads):
//   m = max_c x[c];  e[c] = exp(x[c] - m) (stored in probs);  Z = sum_c e[c]
//   log_softmax[c] = x[c] - m - log Z;  probs = e / Z
//   loss[i] = -[(1 - eps) * log_softmax[t] + eps * mean_c log_softmax[c]]
// where t = target[i] and eps the label smoothing. Sums are taken in double.
// A row whose target is outside [0, C) gets loss NaN; the kernel returns the
// first such row (or -1) so that the caller can raise.
//
// Backward: grad[i, c] = g[i] * (probs[i, c] - (1 - eps) * [c == t] - eps / C).
#pragma once

#include <cstdint>

namespace tgc {

template <typename T>
std::int64_t cross_entropy_forward(const T* logits, const std::int64_t* target, std::int64_t n,
                                   std::int64_t c, double label_smoothing, T* loss, T* probs);

template <typename T>
std::int64_t cross_entropy_backward(const T* g, const T* probs, const std::int64_t* target,
                                    std::int64_t n, std::int64_t c, double label_smoothing,
                                    T* grad);

extern template std::int64_t cross_entropy_forward<float>(const float*, const std::int64_t*,
                                                          std::int64_t, std::int64_t, double,
                                                          float*, float*);
extern template std::int64_t cross_entropy_forward<double>(const double*, const std::int64_t*,
                                                           std::int64_t, std::int64_t, double,
                                                           double*, double*);
extern template std::int64_t cross_entropy_backward<float>(const float*, const float*,
                                                           const std::int64_t*, std::int64_t,
                                                           std::int64_t, double, float*);
extern template std::int64_t cross_entropy_backward<double>(const double*, const double*,
                                                            const std::int64_t*, std::int64_t,
                                                            std::int64_t, double, double*);

}  // namespace tgc
