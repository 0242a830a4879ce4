// GEMM, GotoBLAS / BLIS style; see gemm.h for the interface.
// Compiled once per instruction set, into namespace tgc::<isa> (see simd.h).
//
// Algorithm (for one thread's rectangle of C; the five loops around the
// micro-kernel, outermost first):
//
//   for jc in N by NC:                       B panel   KC x NC (L3)
//     for pc in K by KC:
//       pack op(B)[pc:pc+kc, jc:jc+nc]       into NR-column slivers
//       for ic in M by MC:                   A block   MC x KC (L2)
//         pack op(A)[ic:ic+mc, pc:pc+kc]     into MR-row slivers
//         for jr in nc by NR:                B sliver  KC x NR (L1/L2)
//           for ir in mc by MR:              A sliver  MR x KC
//             micro-kernel: C[ir:ir+MR, jr:jr+NR] (+)= A sliver @ B sliver
//
// * Layout: A, B, C row-major with leading dimensions; op(A) / op(B) may be
//   transposes (see gemm.h). Packing copies the operands into contiguous,
//   64-byte aligned buffers in exactly the order the micro-kernel reads them
//   (sliver after sliver; one k step = MR consecutive elements of A, NR of B),
//   zero-padded to whole slivers. Whatever the input layout the kernel then
//   reads unit stride: the transposes are absorbed by the packing, which
//   either copies runs (op(B) = B, op(A) = A^T) or transposes L x L blocks
//   (simd.h's transpose_block; in registers on AVX-512 and AVX2)
//   (op(A) = A, op(B) = B^T).
// * Micro-kernel (one source for every ISA, over simd.h): an MR x NR tile of
//   C lives in vector registers for the whole kc loop; each k step loads NR/L
//   vectors of B and broadcasts MR scalars of A into FMAs (L = lanes):
//     AVX-512 : float 14 x 32 (28 zmm accumulators, 2 for B, 1 broadcast:
//               31 of the 32 registers), double 8 x 24 (24 accumulators,
//               3 for B; measured ~7% faster than 14 x 16 here, whose 14 C
//               rows 2^k bytes apart contend for one L1 set);
//     AVX2+FMA: float  6 x 16, double  6 x  8 (12 ymm accumulators, 2 for B);
//     NEON    : float  8 x 12, double  6 x  8 (24 of the 32 q registers);
//     SSE2    : float  6 x  8, double  6 x  4 (12 xmm accumulators; no FMA,
//               a multiply and an add).
//   The first K block writes C = alpha * AB + beta * C (C is not read when
//   beta == 0); later K blocks accumulate C += alpha * AB. The last rows of
//   C (fewer than MR) use kernel instances for exactly that many rows, so
//   e.g. M = 128 = 9 * 14 + 2 computes no padding rows; the last columns
//   (fewer than NR) are computed into a local tile and copied.
// * Block sizes (Blocking<> below; float, AVX-512) are tuned on AMD Zen 4
//   (32 KiB L1d, 1 MiB L2 per core, 32 MiB shared L3): KC = 1024 makes every
//   micro-kernel call up to 1024 k steps long, so loading/storing the C tile
//   is rare (for K <= KC, C is written once and never read); the A block
//   (MC = 168 rows, 672 KiB) stays in L2 with room for the B sliver (KC x NR
//   = 128 KiB) streaming past it; the B panel (NC = 2048 columns, 8 MiB)
//   stays in L3. Neither sliver fits in L1, which costs little: each k step
//   reads 184 bytes for 28 FMA cycles, well within L2 bandwidth. Measured
//   (single thread, min of runs, noisy shared machine): KC = 256 ~5% slower
//   than 512, KC = 1024 ~2-4% faster than 512 at 1536..3000; MC from 84 to
//   336 and NC from 1024 to 4096 within noise; the micro-tiles 8 x 48,
//   12 x 32 and 6 x 64 no faster than 14 x 32. Double uses about the same
//   byte sizes. Block counts are balanced (K = KC + 1 gives two blocks of
//   about K/2).
// * Threads (OpenMP): C is split into a grid of nthreads rectangles (along M
//   or N or both, in whole micro-tiles, choosing the split with the least
//   work per thread, packing included); each thread runs the loops above on
//   its own rectangle with its own packing buffers. A thread packs only the
//   A rows / B columns its rectangle needs, so there is no synchronisation
//   at all, at the price of packing the shared operand once per thread
//   (a few % at most). Problems under 64^3 multiply-adds run on one thread;
//   inside an OpenMP parallel region gemm never forks.
// * Packing buffers are thread_local and only ever grow, so repeated calls do
//   not allocate (nor page-fault on fresh memory).
// * The summation order of every C element depends only on K and KC, and
//   thread rectangles start at multiples of MR / NR, so results do not
//   depend on the thread count: they are reproducible run to run.
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "isa_kernels.h"
#include "workspace.h"

namespace tgc {
namespace TGC_ISA {

namespace {

using idx = std::int64_t;

// --------------------------------------------------------------------------
// Block sizes per ISA and type. MR x NR: micro-tile; KC: depth of a packed
// panel; MC: rows of the packed A block; NC: columns of the packed B panel.
// MC is a multiple of MR and NC of NR.
// --------------------------------------------------------------------------
struct Blocks {
  int mr, nr;
  idx kc, mc, nc;
};

// Per vector width and register count (simd.h). The micro-tile keeps MR x NR/L
// accumulators, NR/L vectors of B and a broadcast of A in registers.
//   64-byte vectors (AVX-512), tuned on Zen 4 (see the header comment);
//   32-byte vectors, 16 registers (AVX2): 6 x 16 float (12 accumulators), 6 x 8 double;
//   16-byte vectors, 32 registers (NEON): BLIS's armv8a tiles, 8 x 12 float, 6 x 8 double;
//   16-byte vectors, 16 registers (SSE2): 6 x 8 float, 6 x 4 double.
constexpr Blocks blocks_for(bool is_float) {
  if (kVectorBytes == 64)
    return is_float ? Blocks{14, 32, 1024, 14 * 12, 32 * 64} : Blocks{8, 24, 512, 8 * 14, 24 * 42};
  if (kVectorBytes == 32)
    return is_float ? Blocks{6, 16, 256, 6 * 24, 16 * 128} : Blocks{6, 8, 256, 6 * 12, 8 * 256};
  if (kVectorRegs >= 32)
    return is_float ? Blocks{8, 12, 256, 8 * 16, 12 * 160} : Blocks{6, 8, 256, 6 * 16, 8 * 256};
  return is_float ? Blocks{6, 8, 256, 6 * 24, 8 * 256} : Blocks{6, 4, 256, 6 * 24, 4 * 512};
}

template <typename T>
struct Blocking {
  static constexpr Blocks b = blocks_for(std::is_same<T, float>::value);
  static constexpr int MR = b.mr, NR = b.nr;
  static constexpr idx KC = b.kc, MC = b.mc, NC = b.nc;
};

// Below this many multiply-adds a gemm runs on one thread (fork/join and
// the duplicated packing cost more than the second core gains).
constexpr idx kParallelMinWork = idx{64} * 64 * 64;
// Relative cost of packing one element, in units of one multiply-add, for
// the thread-split heuristic.
constexpr idx kPackCost = 8;

// --------------------------------------------------------------------------
// Thread-local packing buffers that only grow.
// --------------------------------------------------------------------------
class Workspace {
 public:
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() { release(ptr_); }

  // At least `bytes` bytes, page aligned; contents are not preserved.
  void* get(std::size_t bytes) {
    if (bytes > size_) {
      release(ptr_);
      ptr_ = nullptr;
      size_ = 0;
      ptr_ = scratch_alloc(bytes, 1, 4096);  // throws OutOfMemory (memory.h)
      size_ = bytes;
    }
    return ptr_;
  }

 private:
  static void release(void* p) { scratch_free(p); }

  void* ptr_ = nullptr;
  std::size_t size_ = 0;
};

Workspace& workspace_a() {
  thread_local Workspace ws;
  return ws;
}
Workspace& workspace_b() {
  thread_local Workspace ws;
  return ws;
}

// --------------------------------------------------------------------------
// Packing.
// --------------------------------------------------------------------------

// Transposing copy: dst[c * ldd + r] = src[r * lds + c] for r < rows and
// c < cols, and dst[c * ldd + r] = 0 for rows <= r < lanes (padding); in
// L x L blocks transposed in registers where the ISA has the shuffles for it
// (simd.h's transpose_block).
template <typename T>
void transpose_pack(const T* src, idx lds, int rows, idx cols, T* dst, idx ldd, int lanes) {
  constexpr int W = Simd<T>::L;
  for (int r0 = 0; r0 < lanes; r0 += W) {
    const int group_rows = std::max(0, std::min(W, rows - r0));
    const int group_lanes = std::min(W, lanes - r0);
    const T* s = group_rows > 0 ? src + r0 * lds : src;
    for (idx c0 = 0; c0 < cols; c0 += W) {
      const int w = static_cast<int>(std::min<idx>(W, cols - c0));
      transpose_block(s + c0, lds, group_rows, w, dst + c0 * ldd + r0, ldd, group_lanes);
    }
  }
}

// Non-transposing copy: dst[p * LEN + j] = src[p * lds + j] for j < cnt and
// p < kc, and 0 for cnt <= j < LEN (padding). Whole slivers (cnt == LEN) are
// copied in vectors (compilers turn the plain loop into a memcpy call per row,
// which costs more than the copy itself for these 24..128-byte rows).
template <int LEN, typename T>
void copy_pack(const T* src, idx lds, int cnt, idx kc, T* __restrict dst) {
  using V = Simd<T>;
  constexpr int NFULL = LEN / V::L;
  if (cnt == LEN) {
    for (idx p = 0; p < kc; ++p) {
      const T* sp = src + p * lds;
      T* dp = dst + p * LEN;
      TGC_UNROLL
      for (int v = 0; v < NFULL; ++v) V::store(dp + v * V::L, V::load(sp + v * V::L));
      for (int j = NFULL * V::L; j < LEN; ++j) dp[j] = sp[j];
    }
    return;
  }
  for (idx p = 0; p < kc; ++p) {
    const T* __restrict sp = src + p * lds;
    T* __restrict dp = dst + p * LEN;
    int j = 0;
    for (; j < cnt; ++j) dp[j] = sp[j];
    for (; j < LEN; ++j) dp[j] = T(0);
  }
}

// The non-transposing packs below walk the source in bands of kBandRows rows
// (k steps of B, resp. of A stored transposed), each band across all slivers,
// so the reads run along the source rows: walking one sliver at a time would
// read a short run from each of kc rows, typically each in a different page,
// which the hardware prefetchers do not follow.
constexpr idx kBandRows = 8;

// Packs op(A)[i0:i0+mc, p0:p0+kc] into ceil(mc/MR) slivers; sliver s holds
// rows i0 + s*MR .. + MR as dst[s*MR*kc + p*MR + r], zero-padded rows.
template <typename T, int MR>
void pack_a(bool trans, const T* a, idx lda, idx i0, idx mc, idx p0, idx kc, T* __restrict dst) {
  if (trans) {
    // element (i, p) at a[p * lda + i]: each k step is a contiguous run of rows.
    for (idx pb = 0; pb < kc; pb += kBandRows) {
      const idx pn = std::min(kBandRows, kc - pb);
      for (idx s = 0; s < mc; s += MR) {
        const int rows = static_cast<int>(std::min<idx>(MR, mc - s));
        copy_pack<MR>(a + (p0 + pb) * lda + (i0 + s), lda, rows, pn, dst + s * kc + pb * MR);
      }
    }
  } else {
    // element (i, p) at a[i * lda + p]: a transpose of each rows x kc block.
    for (idx s = 0; s < mc; s += MR) {
      const int rows = static_cast<int>(std::min<idx>(MR, mc - s));
      transpose_pack(a + (i0 + s) * lda + p0, lda, rows, kc, dst + s * kc, MR, MR);
    }
  }
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] into ceil(nc/NR) slivers; sliver s holds
// columns j0 + s*NR .. + NR as dst[s*NR*kc + p*NR + j], zero-padded columns.
template <typename T, int NR>
void pack_b(bool trans, const T* b, idx ldb, idx p0, idx kc, idx j0, idx nc, T* __restrict dst) {
  if (!trans) {
    // element (p, j) at b[p * ldb + j]: each k step is a contiguous run.
    for (idx pb = 0; pb < kc; pb += kBandRows) {
      const idx pn = std::min(kBandRows, kc - pb);
      for (idx s = 0; s < nc; s += NR) {
        const int cols = static_cast<int>(std::min<idx>(NR, nc - s));
        copy_pack<NR>(b + (p0 + pb) * ldb + (j0 + s), ldb, cols, pn, dst + s * kc + pb * NR);
      }
    }
  } else {
    // element (p, j) at b[j * ldb + p]: a transpose of each cols x kc block.
    for (idx s = 0; s < nc; s += NR) {
      const int cols = static_cast<int>(std::min<idx>(NR, nc - s));
      transpose_pack(b + (j0 + s) * ldb + p0, ldb, cols, kc, dst + s * kc, NR, NR);
    }
  }
}

// --------------------------------------------------------------------------
// Micro-kernels: C[0:MR, 0:NR] = alpha * (A sliver @ B sliver) + beta * C,
// with C[i * ldc + j]; C is not read when beta == 0.
// --------------------------------------------------------------------------

// ROWS (<= MR) rows of A sliver (k stride MR) times NV vectors of the B
// sliver (k stride NR). Full tiles use ROWS = MR, NV = NR / W; the others
// cover the last rows / columns of C without computing padding.
template <typename T, int ROWS, int NV>
void micro_kernel(idx kc, const T* __restrict a, const T* __restrict b, T* __restrict c, idx ldc,
                  T alpha, T beta) {
  using V = Simd<T>;
  using R = typename V::reg;
  constexpr int MR = Blocking<T>::MR;
  constexpr int NR = Blocking<T>::NR;
  static_assert(NR % V::L == 0 && NV * V::L <= NR && ROWS <= MR, "bad micro-tile");

  R acc[ROWS][NV];
#pragma GCC unroll 32
  for (int i = 0; i < ROWS; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = V::zero();
    // Start fetching the C tile now; it is only touched after the k loop.
    TGC_PREFETCH(c + i * ldc);
    TGC_PREFETCH(c + i * ldc + NV * V::L - 1);
  }

#pragma GCC unroll 4
  for (idx p = 0; p < kc; ++p) {
    R bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = V::load(b + v * V::L);
#pragma GCC unroll 32
    for (int i = 0; i < ROWS; ++i) {
      const R av = V::set1(a[i]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = V::fma(av, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }

  const R va = V::set1(alpha);
  if (beta == T(0)) {
#pragma GCC unroll 32
    for (int i = 0; i < ROWS; ++i) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) V::store(c + i * ldc + v * V::L, V::mul(va, acc[i][v]));
    }
  } else if (beta == T(1)) {
#pragma GCC unroll 32
    for (int i = 0; i < ROWS; ++i) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        T* cp = c + i * ldc + v * V::L;
        V::store(cp, V::fma(va, acc[i][v], V::load(cp)));
      }
    }
  } else {
    const R vb = V::set1(beta);
#pragma GCC unroll 32
    for (int i = 0; i < ROWS; ++i) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        T* cp = c + i * ldc + v * V::L;
        V::store(cp, V::fma(va, acc[i][v], V::mul(vb, V::load(cp))));
      }
    }
  }
}

// kernel_table<T>()[rows - 1][nv - 1]: the micro-kernel for a rows x (nv * W) tile.
template <typename T>
using KernelFn = void (*)(idx, const T*, const T*, T*, idx, T, T);

template <typename T>
struct KernelTable {
  static constexpr int MR = Blocking<T>::MR;
  static constexpr int NV = Blocking<T>::NR / Simd<T>::L;
  KernelFn<T> fn[MR][NV];

  template <int R, int V>
  void fill() {
    fn[R - 1][V - 1] = &micro_kernel<T, R, V>;
    if constexpr (V < NV) {
      fill<R, V + 1>();
    } else if constexpr (R < MR) {
      fill<R + 1, 1>();
    }
  }
  KernelTable() { fill<1, 1>(); }
};

template <typename T>
const KernelTable<T>& kernel_table() {
  static const KernelTable<T> table;
  return table;
}

// --------------------------------------------------------------------------
// Driver.
// --------------------------------------------------------------------------

// Splits `total` into `parts` nearly equal blocks, each a multiple of `unit`
// where possible, and each at most `cap` long: returns the block length to use.
idx balanced_block(idx total, idx cap, idx unit) {
  const idx nblocks = (total + cap - 1) / cap;
  idx len = (total + nblocks - 1) / nblocks;
  len = (len + unit - 1) / unit * unit;
  return std::min(len, cap);
}

// C[m0:m1, n0:n1] of the full product, on the calling thread.
template <typename T>
void gemm_rect(bool ta, bool tb, idx m0, idx m1, idx n0, idx n1, idx k, T alpha, const T* a,
               idx lda, const T* b, idx ldb, T beta, T* c, idx ldc) {
  constexpr int MR = Blocking<T>::MR;
  constexpr int NR = Blocking<T>::NR;
  constexpr idx kW = Simd<T>::L;
  constexpr idx kNV = NR / kW;
  const KernelTable<T>& table = kernel_table<T>();
  const idx m = m1 - m0;
  const idx n = n1 - n0;
  if (m <= 0 || n <= 0) return;

  const idx kc_max = balanced_block(k, Blocking<T>::KC, 8);
  const idx mc_max = balanced_block(m, Blocking<T>::MC, MR);
  const idx nc_max = balanced_block(n, Blocking<T>::NC, NR);
  const idx mc_pad = (mc_max + MR - 1) / MR * MR;
  const idx nc_pad = (nc_max + NR - 1) / NR * NR;

  T* abuf = static_cast<T*>(workspace_a().get(sizeof(T) * mc_pad * kc_max));
  T* bbuf = static_cast<T*>(workspace_b().get(sizeof(T) * nc_pad * kc_max));

  for (idx jc = n0; jc < n1; jc += nc_max) {
    const idx nc = std::min(nc_max, n1 - jc);
    for (idx pc = 0; pc < k; pc += kc_max) {
      const idx kc = std::min(kc_max, k - pc);
      const T beta_eff = pc == 0 ? beta : T(1);
      pack_b<T, NR>(tb, b, ldb, pc, kc, jc, nc, bbuf);
      for (idx ic = m0; ic < m1; ic += mc_max) {
        const idx mc = std::min(mc_max, m1 - ic);
        pack_a<T, MR>(ta, a, lda, ic, mc, pc, kc, abuf);
        for (idx jr = 0; jr < nc; jr += NR) {
          const idx nr = std::min<idx>(NR, nc - jr);
          const T* bp = bbuf + jr * kc;
          for (idx ir = 0; ir < mc; ir += MR) {
            const idx mr = std::min<idx>(MR, mc - ir);
            const T* ap = abuf + ir * kc;
            T* cp = c + (ic + ir) * ldc + (jc + jr);
            if (nr == NR) {
              // Full width: the kernel for exactly mr rows writes C directly.
              table.fn[mr - 1][kNV - 1](kc, ap, bp, cp, ldc, alpha, beta_eff);
            } else {
              // Last columns: compute whole vectors into a local tile, copy nr columns.
              alignas(64) T tile[MR * NR];
              const idx nv = (nr + kW - 1) / kW;
              table.fn[mr - 1][nv - 1](kc, ap, bp, tile, NR, T(1), T(0));
              for (idx i = 0; i < mr; ++i) {
                T* cr = cp + i * ldc;
                const T* tr = tile + i * NR;
                if (beta_eff == T(0)) {
                  for (idx j = 0; j < nr; ++j) cr[j] = alpha * tr[j];
                } else {
                  for (idx j = 0; j < nr; ++j) cr[j] = alpha * tr[j] + beta_eff * cr[j];
                }
              }
            }
          }
        }
      }
    }
  }
}

// C = beta * C (K == 0 or alpha == 0: nothing to multiply).
template <typename T>
void scale_c(idx m, idx n, T beta, T* c, idx ldc) {
  for (idx i = 0; i < m; ++i) {
    T* cr = c + i * ldc;
    if (beta == T(0)) {
      std::fill(cr, cr + n, T(0));
    } else if (beta != T(1)) {
      for (idx j = 0; j < n; ++j) cr[j] *= beta;
    }
  }
}

// Per-thread cost of splitting an m x n x k product over a tm x tn grid.
template <typename T>
idx split_cost(idx m, idx n, idx k, idx tm, idx tn) {
  constexpr idx MR = Blocking<T>::MR;
  constexpr idx NR = Blocking<T>::NR;
  const idx mu = (m + MR - 1) / MR, nu = (n + NR - 1) / NR;
  if (tm > mu || tn > nu) return -1;  // some thread would get nothing
  const idx mt = (mu + tm - 1) / tm * MR;  // rows of the largest rectangle (padded)
  const idx nt = (nu + tn - 1) / tn * NR;
  const idx npanels = (nt + Blocking<T>::NC - 1) / Blocking<T>::NC;
  return mt * nt * k + kPackCost * k * (nt + mt * npanels);
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
          std::int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) {
    scale_c(m, n, beta, c, ldc);
    return;
  }

  int nthreads = 1;
#ifdef _OPENMP
  if (!omp_in_parallel() && m * n * k >= kParallelMinWork) nthreads = omp_get_max_threads();
#endif
  if (nthreads <= 1) {
    gemm_rect<T>(trans_a, trans_b, 0, m, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }

  // Choose the tm x tn grid (tm * tn <= nthreads) with the least work per thread.
  idx best_tm = 1, best_tn = 1, best_cost = split_cost<T>(m, n, k, 1, 1);
  for (idx tm = 1; tm <= nthreads; ++tm) {
    const idx tn = nthreads / tm;
    const idx cost = split_cost<T>(m, n, k, tm, tn);
    if (cost >= 0 && cost < best_cost) {
      best_cost = cost;
      best_tm = tm;
      best_tn = tn;
    }
  }
  if (best_tm * best_tn == 1) {
    gemm_rect<T>(trans_a, trans_b, 0, m, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }

  constexpr idx MR = Blocking<T>::MR;
  constexpr idx NR = Blocking<T>::NR;
  const idx mu = (m + MR - 1) / MR, nu = (n + NR - 1) / NR;
  const idx tm = best_tm, tn = best_tn;
  // The packing buffers are per thread: an allocation failure is kept and
  // rethrown after the region (workspace.h).
  RegionErrors errors;
#pragma omp parallel for num_threads(static_cast<int>(tm * tn)) schedule(static, 1)
  for (idx t = 0; t < tm * tn; ++t) {
    const idx ti = t / tn, tj = t % tn;
    const idx r0 = std::min(m, mu * ti / tm * MR), r1 = std::min(m, mu * (ti + 1) / tm * MR);
    const idx c0 = std::min(n, nu * tj / tn * NR), c1 = std::min(n, nu * (tj + 1) / tn * NR);
    errors.run([&] { gemm_rect<T>(trans_a, trans_b, r0, r1, c0, c1, k, alpha, a, lda, b, ldb, beta, c, ldc); });
  }
  errors.rethrow();
}

template <typename T>
GemmConfig gemm_config() {
  return GemmConfig{kSimdName, Blocking<T>::MR, Blocking<T>::NR, Blocking<T>::KC,
                    Blocking<T>::MC, Blocking<T>::NC};
}

const char* simd_name() { return kSimdName; }

template GemmConfig gemm_config<float>();
template GemmConfig gemm_config<double>();
template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float,
                          const float*, std::int64_t, const float*, std::int64_t, float, float*,
                          std::int64_t);
template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double,
                           const double*, std::int64_t, const double*, std::int64_t, double,
                           double*, std::int64_t);

}  // namespace TGC_ISA
}  // namespace tgc
