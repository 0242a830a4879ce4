// Scratch memory for kernels that need temporaries (per-thread partial sums, ...).
//
// tgc::<isa>::workspace<T, Slot>(count) returns a pointer to at least `count`
// elements owned by the calling thread (thread_local; one buffer per element
// type and Slot, so a kernel can hold several), grown geometrically and never
// shrunk, so repeated calls of a kernel allocate nothing after the first. The
// contents are unspecified. Two ways to use it from OpenMP code: the calling
// thread takes one buffer and the workers of its parallel region index into
// it (e.g. by omp_get_thread_num(); norm.cpp's per-thread partial sums), or
// each worker asks for its own inside the region (pool.cpp's per-plane
// scratch: OpenMP keeps its worker threads alive, so their buffers persist
// too). Two Python threads calling kernels concurrently get separate buffers.
// A kernel must not call another kernel that uses the same buffer while it
// holds the pointer (the buffer may move when it grows).
//
// Array<T> is the growable array behind it, also for the kernels' small index
// tables. Not std::vector<T>: for a T shared by all ISAs (float, int64_t) its
// member functions would be instantiated in every ISA's object files under
// one name, and the linker keeps one copy for all, possibly compiled for a
// higher ISA than the CPU has. Everything here lives in tgc::TGC_ISA.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <type_traits>

#include "simd.h"

namespace tgc {
namespace TGC_ISA {

template <typename T>
class Array {
  static_assert(std::is_trivially_copyable<T>::value, "Array holds plain values (malloc'd)");

 public:
  Array() = default;
  explicit Array(std::size_t n) { resize(n); }
  Array(const Array&) = delete;
  Array& operator=(const Array&) = delete;
  ~Array() { std::free(data_); }

  // At least n elements; when it grows, the old contents are discarded (the
  // old block is freed first, so the two are never held at once).
  void resize(std::size_t n) {
    if (n <= size_) return;
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    void* p = std::malloc(n * sizeof(T));
    if (!p) throw std::bad_alloc();
    data_ = static_cast<T*>(p);
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

}  // namespace TGC_ISA
}  // namespace tgc
