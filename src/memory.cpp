// See memory.h. Compiled once (for the baseline), shared by every ISA's kernels.
#include "memory.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace tgc {

namespace {
std::atomic<long long> g_fail_after{-1};  // -1: never fail

// True when this allocation must fail (fault injection).
bool injected_failure() {
  long long left = g_fail_after.load(std::memory_order_relaxed);
  while (left >= 0) {
    if (left == 0) return true;
    if (g_fail_after.compare_exchange_weak(left, left - 1, std::memory_order_relaxed)) return false;
  }
  return false;
}
}  // namespace

OutOfMemory::OutOfMemory(std::size_t bytes) : bytes_(bytes) {
  if (bytes == 0) {
    std::snprintf(message_, sizeof message_, "could not allocate scratch memory: its size overflows");
    return;
  }
  static const char* const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 6) v /= 1024.0, ++u;
  std::snprintf(message_, sizeof message_, "could not allocate %.1f %s of scratch memory", v, units[u]);
}

const char* OutOfMemory::what() const noexcept { return message_; }
std::size_t OutOfMemory::bytes() const noexcept { return bytes_; }

void* scratch_alloc(std::size_t count, std::size_t elem_size, std::size_t align) {
  if (count == 0) count = 1;
  if (elem_size != 0 && count > (SIZE_MAX - align) / elem_size) throw OutOfMemory(0);
  const std::size_t bytes = count * elem_size;
  const std::size_t rounded = (bytes + align - 1) / align * align;  // aligned_alloc's contract
  if (injected_failure()) throw OutOfMemory(rounded);
  void* p = std::aligned_alloc(align, rounded);
  if (!p) throw OutOfMemory(rounded);
  return p;
}

void scratch_free(void* p) noexcept { std::free(p); }

void scratch_fail_after(long long successes) noexcept {
  g_fail_after.store(successes < 0 ? -1 : successes, std::memory_order_relaxed);
}

}  // namespace tgc
