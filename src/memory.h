// The one allocation path of the kernels' scratch memory.
//
// Every scratch buffer of every kernel (workspace.h's Array, gemm's packing
// buffers) comes from scratch_alloc, compiled once (memory.cpp, not per ISA).
// A request that cannot be met, including one whose byte count overflows
// size_t, throws OutOfMemory, a std::bad_alloc carrying the bytes asked for.
// Kernels never let it escape an OpenMP region (workspace.h: allocate before
// the region, or run the iterations through RegionErrors), so it reaches the
// binding, which raises a Python MemoryError naming the operation and the size.
#pragma once

#include <cstddef>
#include <new>

namespace tgc {

class OutOfMemory : public std::bad_alloc {
 public:
  explicit OutOfMemory(std::size_t bytes);  // bytes == 0: the size overflowed size_t
  const char* what() const noexcept override;
  std::size_t bytes() const noexcept;

 private:
  std::size_t bytes_;
  char message_[96];
};

// count * elem_size bytes aligned to `align` (a power of two >= alignof(max_align_t));
// free with scratch_free.
void* scratch_alloc(std::size_t count, std::size_t elem_size, std::size_t align);
void scratch_free(void* p) noexcept;

// Fault injection for the tests (_C._fail_scratch_alloc): after `successes`
// more allocations, every one fails until this is called with -1 (never fail).
void scratch_fail_after(long long successes) noexcept;

}  // namespace tgc
