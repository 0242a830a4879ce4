// For the kernel sources: simd.h plus the declarations of this ISA's kernel
// entry points (kernels.inc) in namespace tgc::TGC_ISA, so that one kernel
// calls another of the same ISA directly (conv2d.cpp's im2col + gemm).
#pragma once

#include <cstddef>
#include <cstdint>

#include "conv2d.h"
#include "gemm.h"
#include "pool.h"
#include "simd.h"

namespace tgc {
namespace TGC_ISA {
#include "kernels.inc"
}  // namespace TGC_ISA
}  // namespace tgc
