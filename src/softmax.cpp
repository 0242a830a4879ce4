// Fused softmax + cross-entropy; see softmax.h for the layout and the algorithm.
// Compiled once per instruction set, into namespace tgc::<isa> (see simd.h).

#include <algorithm>
#include <cmath>
#include <limits>

#include "isa_kernels.h"
#include "softmax.h"

namespace tgc {
namespace TGC_ISA {

namespace {

// Below this many logits the fork/join costs more than it saves.
constexpr std::int64_t kParallelElements = std::int64_t{1} << 14;

}  // namespace

template <typename T>
std::int64_t cross_entropy_forward(const T* logits, const std::int64_t* target, std::int64_t n,
                                   std::int64_t c, double label_smoothing, T* loss, T* probs) {
  if (n <= 0) return -1;
  const double eps = label_smoothing;
  std::int64_t bad = std::numeric_limits<std::int64_t>::max();
  const bool parallel = n > 1 && n * c >= kParallelElements;
#pragma omp parallel for schedule(static) if (parallel) reduction(min : bad)
  for (std::int64_t i = 0; i < n; ++i) {
    const T* x = logits + i * c;
    T* p = probs + i * c;
    const std::int64_t t = target[i];
    if (t < 0 || t >= c) {
      bad = std::min(bad, i);
      loss[i] = std::numeric_limits<T>::quiet_NaN();
      std::fill(p, p + c, std::numeric_limits<T>::quiet_NaN());
      continue;
    }
    T mx = x[0];
    for (std::int64_t j = 1; j < c; ++j) mx = (x[j] > mx || x[j] != x[j]) ? x[j] : mx;
    double z = 0, sx = 0;
    for (std::int64_t j = 0; j < c; ++j) {
      const T e = std::exp(x[j] - mx);
      p[j] = e;
      z += e;
      sx += x[j];
    }
    const double lse = std::log(z);
    const T inv = static_cast<T>(1.0 / z);
#pragma omp simd
    for (std::int64_t j = 0; j < c; ++j) p[j] *= inv;
    double l = -((static_cast<double>(x[t]) - mx) - lse);
    if (eps != 0.0) {
      const double mean_logp = sx / static_cast<double>(c) - mx - lse;
      l = (1.0 - eps) * l - eps * mean_logp;
    }
    loss[i] = static_cast<T>(l);
  }
  return bad == std::numeric_limits<std::int64_t>::max() ? -1 : bad;
}

template <typename T>
std::int64_t cross_entropy_backward(const T* g, const T* probs, const std::int64_t* target,
                                    std::int64_t n, std::int64_t c, double label_smoothing,
                                    T* grad) {
  if (n <= 0) return -1;
  const T off = static_cast<T>(label_smoothing / static_cast<double>(c));
  const T on = off + static_cast<T>(1.0 - label_smoothing);  // the target's smoothed label
  std::int64_t bad = std::numeric_limits<std::int64_t>::max();
  const bool parallel = n > 1 && n * c >= kParallelElements;
#pragma omp parallel for schedule(static) if (parallel) reduction(min : bad)
  for (std::int64_t i = 0; i < n; ++i) {
    const T* p = probs + i * c;
    T* out = grad + i * c;
    const T gi = g[i];
    const std::int64_t t = target[i];
#pragma omp simd
    for (std::int64_t j = 0; j < c; ++j) out[j] = gi * (p[j] - off);
    if (t < 0 || t >= c) {
      bad = std::min(bad, i);
    } else {
      out[t] = gi * (p[t] - on);
    }
  }
  return bad == std::numeric_limits<std::int64_t>::max() ? -1 : bad;
}

template std::int64_t cross_entropy_forward<float>(const float*, const std::int64_t*,
                                                   std::int64_t, std::int64_t, double, float*,
                                                   float*);
template std::int64_t cross_entropy_forward<double>(const double*, const std::int64_t*,
                                                    std::int64_t, std::int64_t, double, double*,
                                                    double*);
template std::int64_t cross_entropy_backward<float>(const float*, const float*,
                                                    const std::int64_t*, std::int64_t,
                                                    std::int64_t, double, float*);
template std::int64_t cross_entropy_backward<double>(const double*, const double*,
                                                     const std::int64_t*, std::int64_t,
                                                     std::int64_t, double, double*);

}  // namespace TGC_ISA
}  // namespace tgc
