// Which instruction sets this build has and this CPU supports; see isa.h.
#include "isa.h"

#include <atomic>
#include <cstring>
#include <initializer_list>

namespace tgc {

namespace {

constexpr const char* kNames[kIsaCount] = {"baseline", "avx2", "avx512", "neon", "native"};

// TGC_HAVE_<ISA>: set by CMakeLists.txt for the ISAs compiled into this build.
constexpr bool kCompiled[kIsaCount] = {TGC_HAVE_BASELINE != 0, TGC_HAVE_AVX2 != 0,
                                       TGC_HAVE_AVX512 != 0, TGC_HAVE_NEON != 0,
                                       TGC_HAVE_NATIVE != 0};

bool cpu_supports(Isa isa) {
  switch (isa) {
#if defined(__x86_64__) || defined(__i386__)
    // __builtin_cpu_supports also checks that the OS saves the wider registers.
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    case Isa::kBaseline:  // x86-64's SSE2, or the architecture's base instructions
    case Isa::kNeon:      // part of every aarch64 CPU
    case Isa::kNative:    // an opt-in build for the machine it was built on
      return true;
    default:
      return false;
  }
}

Isa pick_best() {
  for (Isa isa : {Isa::kNative, Isa::kAvx512, Isa::kAvx2, Isa::kNeon, Isa::kBaseline})
    if (isa_available(isa)) return isa;
  return Isa::kBaseline;  // unreachable: CMakeLists.txt always compiles one of these
}

std::atomic<int>& active() {
  static std::atomic<int> isa{static_cast<int>(pick_best())};
  return isa;
}

}  // namespace

const char* isa_name(Isa isa) { return kNames[static_cast<int>(isa)]; }

bool isa_from_name(const char* name, Isa* out) {
  for (int i = 0; i < kIsaCount; ++i)
    if (std::strcmp(name, kNames[i]) == 0) {
      *out = static_cast<Isa>(i);
      return true;
    }
  return false;
}

bool isa_compiled(Isa isa) { return kCompiled[static_cast<int>(isa)]; }
bool isa_available(Isa isa) { return isa_compiled(isa) && cpu_supports(isa); }
Isa best_isa() { return pick_best(); }
Isa active_isa() { return static_cast<Isa>(active().load(std::memory_order_relaxed)); }

bool set_isa(Isa isa) {
  if (!isa_available(isa)) return false;
  active().store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

}  // namespace tgc
