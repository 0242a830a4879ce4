// emulation.h -- run the CUDA kernels of kernels/*.cu on the CPU, as plain C++17.
//
// Included before a kernel source (tinygrad_course/backend/cuda.py writes a small translation unit:
// this header, the .cu text, one TGC_EMU_EXPORT(name) per extern "C" kernel) and compiled with
// `g++ -std=c++17 -O1 -shared -fPIC`. It maps the CUDA keywords the kernels use onto C++:
//
//   __global__/__device__/__forceinline__   nothing / inline
//   __shared__                              `static`: one copy per kernel function, shared by the block;
//                                           cuda.py follows each declaration with TGC_EMU_SHARED(name),
//                                           which registers it: the launcher fills it with 0xff bytes
//                                           (NaN for float/double, -1 for integers) before every block,
//                                           so reading shared memory before writing it shows
//   threadIdx, blockIdx, blockDim, gridDim  globals set by the launcher before a thread runs
//   __syncthreads()                         a real barrier across the block's threads (below)
//   float4, double2, __int_as_float, ...    the few vector types and intrinsics the kernels use
//
// Execution model. A launch runs its blocks one after another. The threads of a block are fibers
// on their own stacks (started with makecontext/setcontext, switched with _setjmp/_longjmp, which
// makes no system call): a thread runs until it reaches __syncthreads() or returns, then the next
// one runs; when every thread has arrived, the barrier opens and the next phase starts. Phases run
// the threads alternately in forward and reverse order, so a missing barrier between a shared-memory
// write and another thread's read shows up as a wrong result. Barrier misuse fails the launch
// immediately, with a message, instead of hanging as it may on a GPU:
//   * a thread returned while others wait at a barrier (an early `return` before __syncthreads),
//   * threads wait at different __syncthreads() calls (a barrier in divergent code).
// One launch at a time (the runtime in cuda.py holds a lock): the fibers, the shared memory and the
// thread indices are process-wide. Built without _FORTIFY_SOURCE (its longjmp check rejects the
// jumps between stacks).
//
// What it does not catch: out-of-bounds global accesses (compute-sanitizer on a GPU; without one,
// build the emulation with TINYGRAD_COURSE_EMU_CXXFLAGS=-fsanitize=address and run Python with
// LD_PRELOAD=$(g++ -print-file-name=libasan.so)), races that the two run orders happen to hide, and
// warp-level behaviour (the kernels use no warp intrinsics). Floating-point results may differ from
// the GPU in the last bits (no FMA contraction on the host, no flush-to-zero of float32 subnormals).
#ifndef TGC_EMULATION_H
#define TGC_EMULATION_H

#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// --- keywords -------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __shared__ static
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

// --- built-in types and variables -----------------------------------------------------------------
struct uint3 { unsigned x, y, z; };
struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
struct __attribute__((aligned(8))) float2 { float x, y; };
struct __attribute__((aligned(16))) double2 { double x, y; };
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

// --- intrinsics -----------------------------------------------------------------------------------
inline float __int_as_float(int i) { float f; memcpy(&f, &i, sizeof f); return f; }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, sizeof i); return i; }
inline double __longlong_as_double(long long i) { double d; memcpy(&d, &i, sizeof d); return d; }
inline long long __double_as_longlong(double d) { long long i; memcpy(&i, &d, sizeof i); return i; }
template <class T> inline T __ldg(const T* p) { return *p; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
// The host runs one fiber at a time: a plain read-modify-write is atomic here.
template <class T> inline T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
inline void __threadfence() {}

// --- fibers and the barrier -----------------------------------------------------------------------
namespace emu {

enum class State { ready, at_barrier, done };

struct Fiber {
  ucontext_t ctx;  // how it starts (makecontext/setcontext: once per block)
  jmp_buf resume;  // where it continues after a barrier (_setjmp/_longjmp: no system call)
  bool started;
  State state;
  const char* file;  // where the __syncthreads() it waits at is
  int line;
  uint3 tid;
};

constexpr std::size_t kStackBytes = 256 * 1024;

struct Scheduler {
  jmp_buf main;  // the scheduler, between two threads
  std::vector<Fiber> fibers;
  std::vector<std::unique_ptr<char[]>> stacks;
  int current = -1;
  void (*body)(void*) = nullptr;  // runs the kernel with the launch's arguments
  void* body_arg = nullptr;
  std::string error;
};

inline Scheduler& sched() {
  static Scheduler s;
  return s;
}

inline void fiber_main() {
  Scheduler& s = sched();
  s.body(s.body_arg);
  s.fibers[s.current].state = State::done;
  _longjmp(s.main, 1);  // never returns
}

// __syncthreads(): park this thread until every thread of the block has arrived.
inline void barrier(const char* file, int line) {
  Scheduler& s = sched();
  Fiber& f = s.fibers[s.current];
  f.state = State::at_barrier;
  f.file = file;
  f.line = line;
  if (!_setjmp(f.resume)) _longjmp(s.main, 1);
}

inline std::string block_name() {
  return "block (" + std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y) + "," +
         std::to_string(blockIdx.z) + ")";
}

inline std::string where(const Fiber& f) { return std::string(f.file) + ":" + std::to_string(f.line); }

// The __shared__ variables seen so far (registered when a thread first passes the declaration).
inline std::vector<std::pair<void*, std::size_t>>& shared_regions() {
  static std::vector<std::pair<void*, std::size_t>> regions;
  return regions;
}

inline bool shared_region(void* p, std::size_t bytes) {
  shared_regions().emplace_back(p, bytes);
  memset(p, 0xff, bytes);  // before its first use
  return true;
}

// Run thread f until it waits at a barrier or returns (a separate frame for _setjmp: the
// scheduler's loop variables stay out of the function that returns twice).
__attribute__((noinline)) inline void run_thread(Scheduler& s, Fiber& f) {
  if (!_setjmp(s.main)) {
    if (f.started) _longjmp(f.resume, 1);
    f.started = true;
    setcontext(&f.ctx);  // first run: fiber_main on the thread's own stack
  }
}

// Run one block to completion; false (and s.error set) on barrier misuse.
inline bool run_block(Scheduler& s, int nthreads) {
  for (auto& r : shared_regions()) memset(r.first, 0xff, r.second);
  if (static_cast<int>(s.stacks.size()) < nthreads) {
    s.fibers.resize(nthreads);
    while (static_cast<int>(s.stacks.size()) < nthreads)
      s.stacks.emplace_back(new char[kStackBytes]);  // not touched until used
  }
  for (int i = 0; i < nthreads; ++i) {
    Fiber& f = s.fibers[i];
    f.tid = {static_cast<unsigned>(i % blockDim.x), static_cast<unsigned>(i / blockDim.x % blockDim.y),
             static_cast<unsigned>(i / (blockDim.x * blockDim.y))};
    f.state = State::ready;
#if defined(__SANITIZE_ADDRESS__)  // frames left on the stack by an aborted launch are gone
    __asan_unpoison_memory_region(s.stacks[i].get(), kStackBytes);
#endif
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = s.stacks[i].get();
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = nullptr;
    f.started = false;
    makecontext(&f.ctx, fiber_main, 0);
  }
  for (int phase = 0;; ++phase) {
    const bool reverse = phase & 1;
    for (int k = 0; k < nthreads; ++k) {
      const int i = reverse ? nthreads - 1 - k : k;
      if (s.fibers[i].state != State::ready) continue;
      s.current = i;
      threadIdx = s.fibers[i].tid;
      run_thread(s, s.fibers[i]);
    }
    int waiting = 0, done = 0;
    const Fiber* first = nullptr;
    const Fiber* other = nullptr;
    for (int i = 0; i < nthreads; ++i) {
      const Fiber& f = s.fibers[i];
      if (f.state == State::done) { ++done; continue; }
      ++waiting;
      if (!first) first = &f;
      else if (f.line != first->line || strcmp(f.file, first->file) != 0) other = &f;
    }
    if (waiting == 0) return true;
    if (done > 0) {
      s.error = block_name() + ": " + std::to_string(done) + " thread(s) returned while " +
                std::to_string(waiting) + " wait at __syncthreads() in " + where(*first) +
                " (an early return before a barrier deadlocks or corrupts a GPU block)";
      return false;
    }
    if (other) {
      s.error = block_name() + ": threads wait at different __syncthreads() calls (" + where(*first) +
                " and " + where(*other) + "): a barrier in divergent code";
      return false;
    }
    for (int i = 0; i < nthreads; ++i) s.fibers[i].state = State::ready;
  }
}

// --- launching a kernel through its typed parameter list --------------------------------------------
template <class T> constexpr char type_code() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_pointer_v<U>) {
    using E = std::remove_cv_t<std::remove_pointer_t<U>>;
    static_assert(std::is_same_v<E, float> || std::is_same_v<E, double> || std::is_same_v<E, int> ||
                      std::is_same_v<E, long long>,
                  "kernel pointer parameters must point to float, double, int or long long");
    return std::is_same_v<E, float> ? 'F' : std::is_same_v<E, double> ? 'D' : std::is_same_v<E, int> ? 'I' : 'Q';
  } else {
    static_assert(std::is_same_v<U, float> || std::is_same_v<U, double> || std::is_same_v<U, int> ||
                      std::is_same_v<U, long long>,
                  "kernel scalar parameters must be float, double, int or long long");
    return std::is_same_v<U, float> ? 'f' : std::is_same_v<U, double> ? 'd' : std::is_same_v<U, int> ? 'i' : 'q';
  }
}

// "FFi..." : one type code per parameter (what cuda.py checks the Python arguments against).
template <class... P> const char* signature(void (*)(P...)) {
  static const char codes[] = {type_code<P>()..., '\0'};
  return codes;
}

template <class... P> struct Call {
  void (*kernel)(P...);
  void** args;  // args[i] points to the value of parameter i (as cuLaunchKernel's kernelParams)
  template <std::size_t... I> void run(std::index_sequence<I...>) {
    kernel(*static_cast<std::remove_cv_t<P>*>(args[I])...);
  }
  static void thunk(void* self) { static_cast<Call*>(self)->run(std::index_sequence_for<P...>{}); }
};

// dims: grid x, y, z, block x, y, z. Returns 0, or 1 with the reason in emu_last_error().
template <class... P> int launch(void (*kernel)(P...), const unsigned* dims, void** args) {
  Scheduler& s = sched();
  s.error.clear();
  Call<P...> call{kernel, args};
  s.body = &Call<P...>::thunk;
  s.body_arg = &call;
  gridDim = {dims[0], dims[1], dims[2]};
  blockDim = {dims[3], dims[4], dims[5]};
  const int nthreads = static_cast<int>(dims[3] * dims[4] * dims[5]);
  for (unsigned z = 0; z < dims[2]; ++z)
    for (unsigned y = 0; y < dims[1]; ++y)
      for (unsigned x = 0; x < dims[0]; ++x) {
        blockIdx = {x, y, z};
        if (!run_block(s, nthreads)) return 1;
      }
  return 0;
}

}  // namespace emu

#define __syncthreads() ::emu::barrier(__FILE__, __LINE__)
#define TGC_EMU_CAT2(a, b) a##b
#define TGC_EMU_CAT(a, b) TGC_EMU_CAT2(a, b)
#define TGC_EMU_SHARED(name) \
  [[maybe_unused]] static const bool TGC_EMU_CAT(tgc_emu_shared_, __COUNTER__) = ::emu::shared_region(name, sizeof(name));

extern "C" const char* emu_last_error() { return emu::sched().error.c_str(); }

// One per extern "C" kernel (written by cuda.py after the kernel source).
#define TGC_EMU_EXPORT(name)                                                                  \
  extern "C" int emu_launch_##name(const unsigned* dims, void** args) {                      \
    return ::emu::launch(name, dims, args);                                                   \
  }                                                                                           \
  extern "C" const char* emu_signature_##name() { return ::emu::signature(name); }

#endif  // TGC_EMULATION_H
