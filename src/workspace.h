// Scratch memory for kernels that need temporaries (per-thread partial sums, ...).
//
// tgc::workspace<T, Slot>(count) returns a pointer to at least `count` elements
// owned by the calling thread (thread_local; one buffer per element type and
// Slot, so a kernel can hold several), grown geometrically and never shrunk,
// so repeated calls of a kernel allocate nothing after the first. The contents
// are unspecified. Two ways to use it from OpenMP code: the calling thread takes
// one buffer and the workers of its parallel region index into it (e.g. by
// omp_get_thread_num(); norm.cpp's per-thread partial sums), or each worker asks
// for its own inside the region (pool.cpp's per-plane scratch: OpenMP keeps its
// worker threads alive, so their buffers persist too). Two Python threads
// calling kernels concurrently get separate buffers. A kernel must not call
// another kernel that uses the same buffer while it holds the pointer (the
// buffer may move when it grows).
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace tgc {

template <typename T, int Slot = 0>
T* workspace(std::size_t count) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < count) buffer.resize(std::max(count, buffer.size() * 2));
  return buffer.data();
}

}  // namespace tgc
