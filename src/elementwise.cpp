// ReLU forward/backward; see elementwise.h.

#include "elementwise.h"
#include "isa_kernels.h"

namespace tgc {
namespace TGC_ISA {

namespace {
// Below this many elements a fork/join costs more than the loop itself.
constexpr std::int64_t kParallelThreshold = std::int64_t{1} << 16;
}  // namespace

template <typename T>
void relu_forward(const T* x, T* y, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (std::int64_t i = 0; i < n; ++i) {
    y[i] = x[i] < T(0) ? T(0) : x[i];  // NaN is not < 0, so it passes through like np.maximum
  }
}

template <typename T>
void relu_backward(const T* g, const T* x, T* gx, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (std::int64_t i = 0; i < n; ++i) {
    gx[i] = g[i] * T(x[i] > T(0));
  }
}

template void relu_forward<float>(const float*, float*, std::int64_t);
template void relu_forward<double>(const double*, double*, std::int64_t);
template void relu_backward<float>(const float*, const float*, float*, std::int64_t);
template void relu_backward<double>(const double*, const double*, double*, std::int64_t);

}  // namespace TGC_ISA
}  // namespace tgc
