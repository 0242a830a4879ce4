// Scratch memory for kernels that need temporaries (per-thread partial sums, ...),
// and the rules that keep an allocation failure from killing the process.
//
// tgc::<isa>::workspace<T, Slot>(count) returns a pointer to at least `count`
// elements owned by the calling thread (thread_local; one buffer per element
// type and Slot, so a kernel can hold several), grown geometrically and never
// shrunk, so repeated calls of a kernel allocate nothing after the first. The
// contents are unspecified. Two Python threads calling kernels concurrently
// get separate buffers. A kernel must not call another kernel that uses the
// same buffer while it holds the pointer (the buffer may move when it grows).
//
// Allocation failure. Every buffer comes from memory.h's scratch_alloc, which
// throws OutOfMemory; the binding turns it into a Python MemoryError. A C++
// exception must never leave an OpenMP region (the runtime would call
// std::terminate), so a parallel region either
//   - allocates nothing: buffers for all its threads are allocated before it
//     by the calling thread (PerThread below), or
//   - runs every iteration that may allocate (e.g. one calling gemm, whose
//     packing buffers are per thread) through RegionErrors::run, and calls
//     rethrow() after the region.
//
// Array<T> is the growable array behind it, also for the kernels' small index
// tables. Not std::vector<T>: for a T shared by all ISAs (float, int64_t) its
// member functions would be instantiated in every ISA's object files under
// one name, and the linker keeps one copy for all, possibly compiled for a
// higher ISA than the CPU has. Everything here lives in tgc::TGC_ISA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "memory.h"
#include "simd.h"

namespace tgc {
namespace TGC_ISA {

template <typename T>
class Array {
  static_assert(std::is_trivially_copyable<T>::value, "Array holds plain values (not constructed)");

 public:
  Array() = default;
  explicit Array(std::size_t n) { resize(n); }
  Array(const Array&) = delete;
  Array& operator=(const Array&) = delete;
  ~Array() { scratch_free(data_); }

  // At least n elements, 64-byte aligned; when it grows, the old contents are
  // discarded (the old block is freed first, so the two are never held at
  // once). Throws OutOfMemory (memory.h) and then holds nothing.
  void resize(std::size_t n) {
    if (n <= size_) return;
    scratch_free(data_);
    data_ = nullptr;
    size_ = 0;
    data_ = static_cast<T*>(scratch_alloc(n, sizeof(T), 64));
    size_ = n;
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

template <typename T, int Slot = 0>
T* workspace(std::size_t count) {
  thread_local Array<T> buffer;
  if (buffer.size() < count) {
    const std::size_t doubled = buffer.size() * 2;
    buffer.resize(count > doubled ? count : doubled);
  }
  return buffer.data();
}

// a * b, or SIZE_MAX when that overflows (scratch_alloc then fails cleanly).
inline std::size_t saturating_mul(std::size_t a, std::size_t b) {
  return b != 0 && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

// Elements between the slices of consecutive threads: `count` rounded up to
// whole cache lines, so that no two threads write to one line.
template <typename T>
std::size_t thread_stride(std::size_t count) {
  constexpr std::size_t line = 64 / sizeof(T) > 0 ? 64 / sizeof(T) : 1;
  return count > SIZE_MAX - line ? SIZE_MAX : (count + line - 1) / line * line;
}

inline int thread_num() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Threads a parallel region started here gets (1 inside another region: no nesting).
inline int max_threads() {
#ifdef _OPENMP
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

// Buffers of `count` elements for each of `threads` threads, taken by the
// calling thread before a parallel region from its buffer `alloc` (e.g.
// workspace<T, Slot>); inside the region, slice() is the calling thread's.
template <typename T>
class PerThread {
 public:
  PerThread(int threads, std::size_t count, T* (*alloc)(std::size_t))
      : stride_(thread_stride<T>(count)),
        base_(alloc(saturating_mul(static_cast<std::size_t>(threads), stride_))) {}
  T* slice() const { return base_ + static_cast<std::size_t>(thread_num()) * stride_; }

 private:
  std::size_t stride_;
  T* base_;
};

// Keeps the first exception thrown by the iterations of a parallel loop (see
// the top of this file); iterations that start after it are skipped.
class RegionErrors {
 public:
  template <typename F>
  void run(F&& f) noexcept {
    bool failed;
#pragma omp atomic read
    failed = failed_;
    if (failed) return;
    try {
      f();
    } catch (...) {
#pragma omp critical(tgc_region_errors)
      {
        if (!error_) error_ = std::current_exception();
#pragma omp atomic write
        failed_ = true;
      }
    }
  }
  // After the region: throws the first exception, if any.
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
  bool failed_ = false;
};

}  // namespace TGC_ISA
}  // namespace tgc
