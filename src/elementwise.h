// Elementwise kernels on the hot path of image networks: ReLU forward and backward.
//
// Layout: x, y, g, gx are dense contiguous arrays of n elements (any shape
// flattened); outputs do not alias inputs. Semantics equal the NumPy
// reference: y = max(x, 0) with NaN passed through, gx = g * (x > 0).
// OpenMP splits large arrays over threads; the loops are written over the SIMD
// layer (simd.h), memory-bound.
#pragma once

#include <cstdint>

namespace tgc {

template <typename T>
void relu_forward(const T* x, T* y, std::int64_t n);

template <typename T>
void relu_backward(const T* g, const T* x, T* gx, std::int64_t n);

}  // namespace tgc
