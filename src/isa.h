// Run-time choice of the instruction set the kernels run with.
//
// The build compiles every kernel source once per ISA it supports (see
// CMakeLists.txt and simd.h); at import the best ISA the CPU supports is
// chosen, and set_isa() may force a lower one (TINYGRAD_COURSE_ISA, tests and
// benchmarks). src/dispatch.cpp routes each public kernel entry point to the
// active ISA's copy.
#pragma once

namespace tgc {

// In order of preference within an architecture.
enum class Isa : int { kBaseline = 0, kAvx2 = 1, kAvx512 = 2, kNeon = 3, kNative = 4 };
constexpr int kIsaCount = 5;

const char* isa_name(Isa isa);
// false when `name` names no ISA; otherwise *out is set.
bool isa_from_name(const char* name, Isa* out);
// Compiled into this build.
bool isa_compiled(Isa isa);
// Compiled into this build and supported by this CPU.
bool isa_available(Isa isa);
// The best available ISA (what the kernels use unless set_isa says otherwise).
Isa best_isa();
Isa active_isa();
// Makes `isa` the active one; returns false (and changes nothing) when it is not available.
bool set_isa(Isa isa);
// The vector code each ISA's kernels were compiled to ("avx2", "sse2", ...).
const char* isa_simd(Isa isa);

}  // namespace tgc
