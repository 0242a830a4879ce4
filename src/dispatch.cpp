// The public kernel entry points (gemm.h, conv2d.h, ...): each forwards to the
// copy of the kernel compiled for the active instruction set (isa.h). This
// file and isa.cpp are compiled once, for the baseline ISA; the kernel sources
// once per ISA, into namespaces tgc::baseline, tgc::avx2, ... (simd.h).
#include <cstddef>
#include <cstdint>

#include "conv2d.h"
#include "elementwise.h"
#include "gemm.h"
#include "isa.h"
#include "matmul.h"
#include "norm.h"
#include "pool.h"
#include "softmax.h"

namespace tgc {

// Declarations of each compiled ISA's kernels (TGC_HAVE_<ISA> from CMakeLists.txt).
#if TGC_HAVE_BASELINE
namespace baseline {
#include "kernels.inc"
}
#endif
#if TGC_HAVE_AVX2
namespace avx2 {
#include "kernels.inc"
}
#endif
#if TGC_HAVE_AVX512
namespace avx512 {
#include "kernels.inc"
}
#endif
#if TGC_HAVE_NEON
namespace neon {
#include "kernels.inc"
}
#endif
#if TGC_HAVE_NATIVE
namespace native {
#include "kernels.inc"
}
#endif

#if TGC_HAVE_BASELINE
#define TGC_CASE_BASELINE(call) case Isa::kBaseline: return baseline::call;
#else
#define TGC_CASE_BASELINE(call)
#endif
#if TGC_HAVE_AVX2
#define TGC_CASE_AVX2(call) case Isa::kAvx2: return avx2::call;
#else
#define TGC_CASE_AVX2(call)
#endif
#if TGC_HAVE_AVX512
#define TGC_CASE_AVX512(call) case Isa::kAvx512: return avx512::call;
#else
#define TGC_CASE_AVX512(call)
#endif
#if TGC_HAVE_NEON
#define TGC_CASE_NEON(call) case Isa::kNeon: return neon::call;
#else
#define TGC_CASE_NEON(call)
#endif
#if TGC_HAVE_NATIVE
#define TGC_CASE_NATIVE(call) case Isa::kNative: return native::call;
#else
#define TGC_CASE_NATIVE(call)
#endif

// Calls `call` (e.g. gemm<T>(...)) in the active ISA's namespace. set_isa only
// ever activates a compiled ISA, so the switch always finds its case.
#define TGC_DISPATCH(call)                                                                  \
  switch (active_isa()) {                                                                   \
    TGC_CASE_BASELINE(call) TGC_CASE_AVX2(call) TGC_CASE_AVX512(call) TGC_CASE_NEON(call)   \
    TGC_CASE_NATIVE(call)                                                                   \
  }                                                                                         \
  __builtin_unreachable()

const char* isa_simd(Isa isa) {
  switch (isa) {
    TGC_CASE_BASELINE(simd_name()) TGC_CASE_AVX2(simd_name()) TGC_CASE_AVX512(simd_name())
    TGC_CASE_NEON(simd_name()) TGC_CASE_NATIVE(simd_name())
  }
  return "not compiled";
}

using i64 = std::int64_t;

template <typename T>
void gemm(bool ta, bool tb, i64 m, i64 n, i64 k, T alpha, const T* a, i64 lda, const T* b, i64 ldb,
          T beta, T* c, i64 ldc) {
  TGC_DISPATCH(gemm<T>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
}
template <typename T>
GemmConfig gemm_config() {
  TGC_DISPATCH(gemm_config<T>());
}

template <typename T>
void matmul_batched(const T* a, const T* b, T* c, i64 batch, i64 m, i64 k, i64 n) {
  TGC_DISPATCH(matmul_batched<T>(a, b, c, batch, m, k, n));
}
template <typename T>
void matmul_batched_strided(bool ta, bool tb, i64 batch, i64 m, i64 n, i64 k, const T* a, i64 lda,
                            i64 stride_a, const T* b, i64 ldb, i64 stride_b, T* c) {
  TGC_DISPATCH(matmul_batched_strided<T>(ta, tb, batch, m, n, k, a, lda, stride_a, b, ldb, stride_b, c));
}

ConvAlgo conv2d_forward_algo(const Conv2dParams& p, std::size_t elem_size) {
  TGC_DISPATCH(conv2d_forward_algo(p, elem_size));
}
ConvAlgo conv2d_grad_input_algo(const Conv2dParams& p, std::size_t elem_size) {
  TGC_DISPATCH(conv2d_grad_input_algo(p, elem_size));
}
ConvAlgo conv2d_grad_weight_algo(const Conv2dParams& p, std::size_t elem_size) {
  TGC_DISPATCH(conv2d_grad_weight_algo(p, elem_size));
}
template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  TGC_DISPATCH(conv2d_forward<T>(p, x, w, bias, y));
}
template <typename T>
void conv2d_grad_input(const Conv2dParams& p, const T* gy, const T* w, T* gx) {
  TGC_DISPATCH(conv2d_grad_input<T>(p, gy, w, gx));
}
template <typename T>
void conv2d_grad_weight(const Conv2dParams& p, const T* gy, const T* x, T* gw) {
  TGC_DISPATCH(conv2d_grad_weight<T>(p, gy, x, gw));
}

template <typename T>
void relu_forward(const T* x, T* y, i64 n) {
  TGC_DISPATCH(relu_forward<T>(x, y, n));
}
template <typename T>
void relu_backward(const T* g, const T* x, T* gx, i64 n) {
  TGC_DISPATCH(relu_backward<T>(g, x, gx, n));
}

template <typename T>
i64 cross_entropy_forward(const T* logits, const i64* target, i64 n, i64 c, double label_smoothing,
                          T* loss, T* probs) {
  TGC_DISPATCH(cross_entropy_forward<T>(logits, target, n, c, label_smoothing, loss, probs));
}
template <typename T>
i64 cross_entropy_backward(const T* g, const T* probs, const i64* target, i64 n, i64 c,
                           double label_smoothing, T* grad) {
  TGC_DISPATCH(cross_entropy_backward<T>(g, probs, target, n, c, label_smoothing, grad));
}

template <typename T>
void batch_norm_stats(const T* x, i64 n, i64 c, i64 s, T* mean, T* var) {
  TGC_DISPATCH(batch_norm_stats<T>(x, n, c, s, mean, var));
}
template <typename T>
void batch_norm_apply(const T* x, i64 n, i64 c, i64 s, const T* mean, const T* var, const T* gamma,
                      const T* beta, double eps, T* y) {
  TGC_DISPATCH(batch_norm_apply<T>(x, n, c, s, mean, var, gamma, beta, eps, y));
}
template <typename T>
void batch_norm_train(const T* x, i64 n, i64 c, i64 s, const T* gamma, const T* beta, double eps,
                      T* y, T* mean, T* var) {
  TGC_DISPATCH(batch_norm_train<T>(x, n, c, s, gamma, beta, eps, y, mean, var));
}
template <typename T>
void batch_norm_backward(const T* gy, const T* x, i64 n, i64 c, i64 s, const T* mean,
                         const T* invstd, const T* gamma, bool training, T* gx, T* ggamma,
                         T* gbeta) {
  TGC_DISPATCH(batch_norm_backward<T>(gy, x, n, c, s, mean, invstd, gamma, training, gx, ggamma, gbeta));
}
template <typename T>
void layer_norm_forward(const T* x, i64 rows, i64 m, const T* gamma, const T* beta, double eps,
                        T* y, T* mean, T* invstd) {
  TGC_DISPATCH(layer_norm_forward<T>(x, rows, m, gamma, beta, eps, y, mean, invstd));
}
template <typename T>
void layer_norm_backward(const T* gy, const T* x, i64 rows, i64 m, const T* mean, const T* invstd,
                         const T* gamma, T* gx, T* ggamma, T* gbeta) {
  TGC_DISPATCH(layer_norm_backward<T>(gy, x, rows, m, mean, invstd, gamma, gx, ggamma, gbeta));
}

template <typename T>
void max_pool2d_forward(const T* x, T* y, i64* argmax, const Pool2dShape& s) {
  TGC_DISPATCH(max_pool2d_forward<T>(x, y, argmax, s));
}
template <typename T>
i64 max_pool2d_backward(const T* gy, const i64* argmax, T* gx, const Pool2dShape& s) {
  TGC_DISPATCH(max_pool2d_backward<T>(gy, argmax, gx, s));
}
template <typename T>
void avg_pool2d_forward(const T* x, T* y, const Pool2dShape& s, bool count_include_pad) {
  TGC_DISPATCH(avg_pool2d_forward<T>(x, y, s, count_include_pad));
}
template <typename T>
void avg_pool2d_backward(const T* gy, T* gx, const Pool2dShape& s, bool count_include_pad) {
  TGC_DISPATCH(avg_pool2d_backward<T>(gy, gx, s, count_include_pad));
}

// Shape arithmetic, the same for every ISA.
i64 pool_output_size(i64 size, i64 kernel, i64 stride, i64 padding) {
  const i64 span = size + 2 * padding - kernel;
  // floor division (span may be negative for a too-small input)
  const i64 q = span >= 0 ? span / stride : -((-span + stride - 1) / stride);
  return q + 1;
}

#define TGC_INSTANTIATE(T)                                                                          \
  template void gemm<T>(bool, bool, i64, i64, i64, T, const T*, i64, const T*, i64, T, T*, i64);   \
  template GemmConfig gemm_config<T>();                                                             \
  template void matmul_batched<T>(const T*, const T*, T*, i64, i64, i64, i64);                      \
  template void matmul_batched_strided<T>(bool, bool, i64, i64, i64, i64, const T*, i64, i64,       \
                                          const T*, i64, i64, T*);                                  \
  template void conv2d_forward<T>(const Conv2dParams&, const T*, const T*, const T*, T*);           \
  template void conv2d_grad_input<T>(const Conv2dParams&, const T*, const T*, T*);                  \
  template void conv2d_grad_weight<T>(const Conv2dParams&, const T*, const T*, T*);                 \
  template void relu_forward<T>(const T*, T*, i64);                                                 \
  template void relu_backward<T>(const T*, const T*, T*, i64);                                      \
  template i64 cross_entropy_forward<T>(const T*, const i64*, i64, i64, double, T*, T*);            \
  template i64 cross_entropy_backward<T>(const T*, const T*, const i64*, i64, i64, double, T*);     \
  template void max_pool2d_forward<T>(const T*, T*, i64*, const Pool2dShape&);                      \
  template i64 max_pool2d_backward<T>(const T*, const i64*, T*, const Pool2dShape&);                \
  template void avg_pool2d_forward<T>(const T*, T*, const Pool2dShape&, bool);                      \
  template void avg_pool2d_backward<T>(const T*, T*, const Pool2dShape&, bool);                     \
  TGC_NORM_DECLARE(T, /* definition */)

TGC_INSTANTIATE(float)
TGC_INSTANTIATE(double)

}  // namespace tgc
