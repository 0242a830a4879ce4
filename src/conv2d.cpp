// 2-D convolution: im2col + GEMM, a direct kernel vectorised over output width
// and one vectorised over output channels; see conv2d.h for the algorithms and
// the layout assumptions.
// Compiled once per instruction set, into namespace tgc::<isa> (see simd.h).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "isa_kernels.h"
#include "workspace.h"

namespace tgc {
namespace TGC_ISA {

namespace {

using i64 = std::int64_t;

// ------------------------------------------------------------------ threads

// Split `tasks` (image, group) pairs over the threads, or process them one by
// one with the parallelism inside? Outside when every thread gets (nearly) the
// same number of pairs.
bool split_pairs(i64 tasks, int threads) {
  return threads > 1 && tasks >= threads && (tasks % threads == 0 || tasks >= 4 * threads);
}

// Pairs are handed out dynamically (one at a time): on a machine shared with
// other processes a statically split loop waits for its slowest thread.
// grad_weight sums over pairs, so it splits them into a fixed number of
// contiguous chunks instead, each with its own partial sum (of `part` elements);
// chunks go to threads dynamically and the partials are added in chunk order,
// so the result does not depend on which thread ran which chunk.
i64 weight_chunks(i64 pairs, int threads, i64 part, std::size_t elem_size) {
  constexpr std::size_t kBudget = std::size_t{32} << 20;  // bytes of partial sums
  const i64 by_memory = static_cast<i64>(kBudget / (elem_size * static_cast<std::size_t>(std::max<i64>(part, 1))));
  return std::max<i64>(1, std::min<i64>(pairs, std::max<i64>(threads, std::min<i64>(4 * threads, by_memory))));
}

// ------------------------------------------------------------------ workspaces

// Per-thread scratch buffers that only grow (workspace.h's Array): a steady
// stream of calls with the same shapes allocates (and page-faults) nothing
// after the first one. Grown to exactly n, not doubled like workspace(): the
// partial sums of grad_weight alone may take 32 MiB. The slot separates
// buffers that are alive at the same time.
template <typename T, int Slot>
T* conv_workspace(std::size_t n) {
  thread_local Array<T> buf;
  buf.resize(n);
  return buf.data();
}

enum : int {
  kWsInput = 0, kWsWeights = 1, kWsPartial = 2, kWsPad = 3, kWsFlip = 4, kWsChunks = 5, kWsRow = 6
};

inline i64 ceil_div(i64 a, i64 b) {  // b > 0, a of any sign
  return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

inline i64 clamp64(i64 v, i64 lo, i64 hi) { return std::min(std::max(v, lo), hi); }

// ------------------------------------------------------------------ direct convolution

// Geometry of one direct convolution: per image and group, `mo` output planes
// (oh x ow) from `ci` input planes (hs x ws). Paddings may be negative (a crop):
// the transposed convolution of grad_input uses d(k-1) - p.
struct DGeom {
  i64 n, groups, ci, hs, ws, mo, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
  // The padded input of one (image, group), split into sw column phases:
  // xq[c][r][i][q] = xpad[c][i][q*sw + r], with rows 0..hp-1 and q in 0..wq-1.
  i64 hp() const { return (oh - 1) * sh + (kh - 1) * dh + 1; }
  i64 wq() const { return ceil_div((ow - 1) * sw + (kw - 1) * dw + 1, sw); }
  i64 plane() const { return sw * hp() * wq(); }  // elements per input channel in xq
  i64 taps() const { return ci * kh * kw; }
};

// One SIMD vector of outputs: `len` consecutive outputs of one output row,
// starting at `out` in the output plane and reading xq from `in` (+ tap offset).
struct Slot {
  i64 in, out;
  int len;
};

template <typename T>
void build_slots(const DGeom& g, std::vector<Slot>& slots) {
  constexpr int L = Simd<T>::L;
  const i64 nv = ceil_div(g.ow, L), wq = g.wq();
  slots.clear();
  slots.reserve(static_cast<std::size_t>(g.oh * nv));
  for (i64 r = 0; r < g.oh; ++r)
    for (i64 v = 0; v < nv; ++v)
      slots.push_back(Slot{r * g.sh * wq + v * L, r * g.ow + v * L,
                           static_cast<int>(std::min<i64>(L, g.ow - v * L))});
}

// off[(c*kh + i)*kw + j]: where tap (c, i, j) starts in xq relative to a slot's `in`.
void build_offsets(const DGeom& g, Array<i64>& off) {
  const i64 hp = g.hp(), wq = g.wq(), plane = g.plane();
  off.resize(static_cast<std::size_t>(g.taps()));
  for (i64 c = 0; c < g.ci; ++c)
    for (i64 i = 0; i < g.kh; ++i)
      for (i64 j = 0; j < g.kw; ++j) {
        const i64 col = j * g.dw;
        off[static_cast<std::size_t>((c * g.kh + i) * g.kw + j)] =
            c * plane + (col % g.sw) * hp * wq + i * g.dh * wq + col / g.sw;
      }
}

// Copies the ci planes at src (hs x ws each, contiguous) into xq (see DGeom).
template <typename T>
void pad_phases(const DGeom& g, const T* src, T* xq) {
  const i64 hp = g.hp(), wq = g.wq();
  for (i64 c = 0; c < g.ci; ++c) {
    const T* s_c = src + c * g.hs * g.ws;
    for (i64 r = 0; r < g.sw; ++r) {
      // columns q of phase r that hold input column q*sw + r - pw in [0, ws)
      const i64 lo = clamp64(ceil_div(g.pw - r, g.sw), 0, wq);
      const i64 hi = clamp64(ceil_div(g.ws + g.pw - r, g.sw), lo, wq);
      for (i64 i = 0; i < hp; ++i) {
        T* d = xq + c * g.plane() + (r * hp + i) * wq;
        const i64 si = i - g.ph;
        if (si < 0 || si >= g.hs) {
          std::fill(d, d + wq, T(0));
          continue;
        }
        const T* s = s_c + si * g.ws;
        std::fill(d, d + lo, T(0));
        if (g.sw == 1) {
          if (hi > lo) std::copy(s + (lo - g.pw), s + (hi - g.pw), d + lo);
        } else {
          for (i64 q = lo; q < hi; ++q) d[q] = s[q * g.sw + r - g.pw];
        }
        std::fill(d + hi, d + wq, T(0));
      }
    }
  }
}

// Output-channel blocks of at most `max_mr` channels, as even as possible.
struct Block {
  i64 start;
  int size;
};

// `total` split into `nb` blocks, sizes differing by at most one (larger first).
std::vector<Block> split_blocks(i64 total, i64 nb) {
  std::vector<Block> blocks;
  if (total <= 0) return blocks;
  const i64 base = total / nb, extra = total % nb;
  i64 start = 0;
  for (i64 b = 0; b < nb; ++b) {
    const int size = static_cast<int>(base + (b < extra ? 1 : 0));
    blocks.push_back(Block{start, size});
    start += size;
  }
  return blocks;
}

std::vector<Block> even_blocks(i64 total, int max_size) {
  return split_blocks(total, ceil_div(total, max_size));
}

// Register tiles sized to the ISA's vector registers (simd.h): 32 (AVX-512,
// NEON) or 16 (AVX2, SSE2). Forward: MR * NB accumulators, NB input vectors
// and a broadcast; grad_weight: MR * KB accumulators, MR gy vectors and one x.
constexpr bool kManyRegs = kVectorRegs >= 32;
constexpr int kFwdMaxMR = kManyRegs ? 8 : 4;     // output channels per micro-tile
constexpr int kFwdAccRegs = kManyRegs ? 24 : 12;  // MR * NB accumulators
constexpr int kFwdMaxNB = kManyRegs ? 6 : 3;      // slots per micro-tile
constexpr int kGwMaxMR = kManyRegs ? 4 : 3;       // grad_weight: output channels per micro-tile
constexpr int kGwMaxKB = kManyRegs ? 6 : 4;       // grad_weight: taps per micro-tile

constexpr int fwd_nb(int mr) { return std::min(kFwdMaxNB, kFwdAccRegs / mr); }

// y[i][slot j] = bias[i] + sum_t wp[t*MR + i] * xq[slot j + off[t]] for MR output
// channels (planes p elements apart) and NB slots. Full: every slot fills a
// whole vector (plain loads and stores; masked ones are slower on AVX2).
template <typename T, int MR, int NB, bool Full>
void fwd_tile(const T* xq, const i64* off, i64 taps, const T* wp, const Slot* slots, T* y, i64 p,
              const T* bias) {
  using S = Simd<T>;
  typename S::reg acc[MR][NB];
  typename S::mask m[NB];
  const T* xb[NB];
  TGC_UNROLL
  for (int j = 0; j < NB; ++j) {
    m[j] = S::make_mask(slots[j].len);
    xb[j] = xq + slots[j].in;
  }
  TGC_UNROLL
  for (int i = 0; i < MR; ++i)
    TGC_UNROLL
    for (int j = 0; j < NB; ++j) acc[i][j] = S::zero();
  for (i64 t = 0; t < taps; ++t) {
    const i64 o = off[t];
    typename S::reg xv[NB];
    TGC_UNROLL
    for (int j = 0; j < NB; ++j) xv[j] = Full ? S::load(xb[j] + o) : S::load(m[j], xb[j] + o);
    const T* wt = wp + t * MR;
    TGC_UNROLL
    for (int i = 0; i < MR; ++i) {
      const typename S::reg b = S::set1(wt[i]);
      TGC_UNROLL
      for (int j = 0; j < NB; ++j) acc[i][j] = S::fma(b, xv[j], acc[i][j]);
    }
  }
  TGC_UNROLL
  for (int i = 0; i < MR; ++i) {
    const typename S::reg b = bias ? S::set1(bias[i]) : S::zero();
    TGC_UNROLL
    for (int j = 0; j < NB; ++j) {
      T* out = y + i * p + slots[j].out;
      if (Full)
        S::store(out, S::add(acc[i][j], b));
      else
        S::store(m[j], out, S::add(acc[i][j], b));
    }
  }
}

template <typename T>
using FwdTileFn = void (*)(const T*, const i64*, i64, const T*, const Slot*, T*, i64, const T*);

template <typename T, int MR, bool Full>
FwdTileFn<T> pick_fwd_nb(int nb) {
  switch (nb) {
    case 1: return &fwd_tile<T, MR, 1, Full>;
    case 2: return &fwd_tile<T, MR, 2, Full>;
    case 3: return &fwd_tile<T, MR, 3, Full>;
    case 4: if constexpr (MR * 4 <= kFwdAccRegs) return &fwd_tile<T, MR, 4, Full>; else break;
    case 5: if constexpr (MR * 5 <= kFwdAccRegs) return &fwd_tile<T, MR, 5, Full>; else break;
    case 6: if constexpr (MR * 6 <= kFwdAccRegs) return &fwd_tile<T, MR, 6, Full>; else break;
    default: break;
  }
  return nullptr;
}

template <typename T, bool Full>
FwdTileFn<T> pick_fwd_mr(int mr, int nb) {
  switch (mr) {
    case 1: return pick_fwd_nb<T, 1, Full>(nb);
    case 2: return pick_fwd_nb<T, 2, Full>(nb);
    case 3: return pick_fwd_nb<T, 3, Full>(nb);
    case 4: return pick_fwd_nb<T, 4, Full>(nb);
    case 5: if constexpr (kFwdMaxMR >= 5) return pick_fwd_nb<T, 5, Full>(nb); else break;
    case 6: if constexpr (kFwdMaxMR >= 6) return pick_fwd_nb<T, 6, Full>(nb); else break;
    case 7: if constexpr (kFwdMaxMR >= 7) return pick_fwd_nb<T, 7, Full>(nb); else break;
    case 8: if constexpr (kFwdMaxMR >= 8) return pick_fwd_nb<T, 8, Full>(nb); else break;
    default: break;
  }
  return nullptr;
}

// The micro-kernel for mr channels x nb slots (full: every slot a whole vector).
template <typename T>
FwdTileFn<T> pick_fwd(int mr, int nb, bool full) {
  return full ? pick_fwd_mr<T, true>(mr, nb) : pick_fwd_mr<T, false>(mr, nb);
}

// Direct convolution dst = conv(src, w) (+ bias) for every image and group;
// w is (groups * mo, ci, kh, kw).
template <typename T>
void direct_conv(const DGeom& g, const T* src, const T* w, const T* bias, T* dst) {
  const i64 taps = g.taps(), p = g.oh * g.ow;
  const i64 in_pair = g.ci * g.hs * g.ws, out_pair = g.mo * p;
  const std::vector<Block> mblocks = even_blocks(g.mo, kFwdMaxMR);

  // Weights packed per group and channel block as [tap][channel] (read-only, shared).
  T* wp = conv_workspace<T, kWsWeights>(static_cast<std::size_t>(g.groups * g.mo * taps));
  for (i64 gi = 0; gi < g.groups; ++gi)
    for (const Block& b : mblocks)
      for (i64 t = 0; t < taps; ++t)
        for (int i = 0; i < b.size; ++i)
          wp[(gi * g.mo + b.start) * taps + t * b.size + i] = w[(gi * g.mo + b.start + i) * taps + t];
  std::vector<Slot> slots;
  Array<i64> off;
  build_slots<T>(g, slots);
  build_offsets(g, off);

  // Tiles of one (image, group): channel block x run of slots.
  struct Tile {
    int block;
    i64 slot0;
    int nb;
    bool full;  // every slot a whole vector
  };
  std::vector<Tile> tiles;
  const i64 nslots = static_cast<i64>(slots.size());
  for (int bi = 0; bi < static_cast<int>(mblocks.size()); ++bi) {
    const int nbmax = fwd_nb(mblocks[bi].size);
    for (i64 s = 0; s < nslots; s += nbmax) {
      const int nb = static_cast<int>(std::min<i64>(nbmax, nslots - s));
      bool full = true;
      for (int j = 0; j < nb; ++j) full = full && slots[static_cast<std::size_t>(s + j)].len == Simd<T>::L;
      tiles.push_back(Tile{bi, s, nb, full});
    }
  }
  const i64 ntiles = static_cast<i64>(tiles.size());
  const std::size_t xq_size = static_cast<std::size_t>(g.ci * g.plane());

  auto run_tile = [&](const T* xq, i64 pair, i64 ti) {
    const Tile& t = tiles[static_cast<std::size_t>(ti)];
    const Block& b = mblocks[static_cast<std::size_t>(t.block)];
    const i64 gi = pair % g.groups;
    pick_fwd<T>(b.size, t.nb, t.full)(xq, off.data(), taps, wp + (gi * g.mo + b.start) * taps,
                              slots.data() + t.slot0, dst + pair * out_pair + b.start * p, p,
                              bias ? bias + gi * g.mo + b.start : nullptr);
  };

  const i64 pairs = g.n * g.groups;
  const int threads = max_threads();
  if (split_pairs(pairs, threads)) {
    const PerThread<T> xqs(threads, xq_size, conv_workspace<T, kWsInput>);
#pragma omp parallel num_threads(threads)
    {
      T* xq = xqs.slice();
#pragma omp for schedule(dynamic, 1)
      for (i64 pr = 0; pr < pairs; ++pr) {
        pad_phases(g, src + pr * in_pair, xq);
        for (i64 ti = 0; ti < ntiles; ++ti) run_tile(xq, pr, ti);
      }
    }
  } else {
    T* xq = conv_workspace<T, kWsInput>(xq_size);
    for (i64 pr = 0; pr < pairs; ++pr) {
      pad_phases(g, src + pr * in_pair, xq);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && ntiles > 1)
      for (i64 ti = 0; ti < ntiles; ++ti) run_tile(xq, pr, ti);
    }
  }
}

// acc[i][j] (vectors, rows acc_ld elements apart) += sum over slots of
// gy[i][slot] * xq[slot + off[j]], for MR output channels and KB taps.
template <typename T, int MR, int KB>
void gw_tile(const T* xq, const i64* off, const T* gy, i64 p, const Slot* slots, i64 nslots,
             T* acc_buf, i64 acc_ld) {
  using S = Simd<T>;
  constexpr int L = S::L;
  typename S::reg acc[MR][KB];
  i64 o[KB];
  TGC_UNROLL
  for (int j = 0; j < KB; ++j) o[j] = off[j];
  TGC_UNROLL
  for (int i = 0; i < MR; ++i)
    TGC_UNROLL
    for (int j = 0; j < KB; ++j) acc[i][j] = S::load(acc_buf + i * acc_ld + j * L);
  // One slot; `load` reads a whole or a partial vector (masked loads are
  // slower on AVX2, so whole slots use plain ones).
  auto slot = [&](const Slot& sl, auto load) {
    const T* xs = xq + sl.in;
    const T* gs = gy + sl.out;
    typename S::reg gv[MR];
    TGC_UNROLL
    for (int i = 0; i < MR; ++i) gv[i] = load(gs + i * p);
    TGC_UNROLL
    for (int j = 0; j < KB; ++j) {
      const typename S::reg xv = load(xs + o[j]);
      TGC_UNROLL
      for (int i = 0; i < MR; ++i) acc[i][j] = S::fma(gv[i], xv, acc[i][j]);
    }
  };
  for (i64 s = 0; s < nslots; ++s) {
    if (slots[s].len == L) {
      slot(slots[s], [](const T* q) { return S::load(q); });
    } else {
      const auto m = S::make_mask(slots[s].len);
      slot(slots[s], [m](const T* q) { return S::load(m, q); });
    }
  }
  TGC_UNROLL
  for (int i = 0; i < MR; ++i)
    TGC_UNROLL
    for (int j = 0; j < KB; ++j) S::store(acc_buf + i * acc_ld + j * L, acc[i][j]);
}

template <typename T>
using GwTileFn = void (*)(const T*, const i64*, const T*, i64, const Slot*, i64, T*, i64);

template <typename T, int MR>
GwTileFn<T> pick_gw_kb(int kb) {
  switch (kb) {
    case 1: return &gw_tile<T, MR, 1>;
    case 2: return &gw_tile<T, MR, 2>;
    case 3: return &gw_tile<T, MR, 3>;
    case 4: return &gw_tile<T, MR, 4>;
    case 5: return &gw_tile<T, MR, 5>;
    case 6: return &gw_tile<T, MR, 6>;
    default: return nullptr;
  }
}

template <typename T>
GwTileFn<T> pick_gw(int mr, int kb) {
  switch (mr) {
    case 1: return pick_gw_kb<T, 1>(kb);
    case 2: return pick_gw_kb<T, 2>(kb);
    case 3: return pick_gw_kb<T, 3>(kb);
    case 4: return pick_gw_kb<T, 4>(kb);
    default: return nullptr;
  }
}

// gw (groups * mo, ci, kh, kw) = sum over images of the correlation of gy with x.
template <typename T>
void direct_grad_weight(const DGeom& g, const T* x, const T* gy, T* gw) {
  constexpr int L = Simd<T>::L;
  const i64 taps = g.taps(), p = g.oh * g.ow;
  const i64 in_pair = g.ci * g.hs * g.ws, out_pair = g.mo * p;
  const i64 total = g.groups * g.mo * taps;  // elements of gw
  const std::vector<Block> mblocks = even_blocks(g.mo, kGwMaxMR);
  const std::vector<Block> kblocks = even_blocks(taps, kGwMaxKB);
  std::vector<Slot> slots;
  Array<i64> off;
  build_slots<T>(g, slots);
  build_offsets(g, off);
  const i64 nslots = static_cast<i64>(slots.size());
  const i64 ntiles = static_cast<i64>(mblocks.size() * kblocks.size());
  const std::size_t xq_size = static_cast<std::size_t>(g.ci * g.plane());
  const std::size_t acc_size = static_cast<std::size_t>(total * L);

  // acc[(g*mo + m)*taps + t][lane]: lane-wise partial sums of one thread.
  auto run_tile = [&](const T* xq, i64 pair, i64 ti, T* acc) {
    const Block& mb = mblocks[static_cast<std::size_t>(ti / static_cast<i64>(kblocks.size()))];
    const Block& kb = kblocks[static_cast<std::size_t>(ti % static_cast<i64>(kblocks.size()))];
    const i64 gi = pair % g.groups;
    pick_gw<T>(mb.size, kb.size)(xq, off.data() + kb.start, gy + pair * out_pair + mb.start * p, p,
                                 slots.data(), nslots,
                                 acc + ((gi * g.mo + mb.start) * taps + kb.start) * L, taps * L);
  };
  auto lane_sum = [&](const T* a) {
    T s = T(0);
    for (int l = 0; l < L; ++l) s += a[l];
    return s;
  };

  const i64 pairs = g.n * g.groups;
  const int threads = max_threads();
  if (split_pairs(pairs, threads)) {
    // Each chunk accumulates lane-wise in the thread's buffer, then adds the
    // lanes into its own partial; partials are summed in chunk order.
    const i64 nch = weight_chunks(pairs, threads, total, sizeof(T));
    T* parts = conv_workspace<T, kWsChunks>(static_cast<std::size_t>(nch * total));
    const PerThread<T> xqs(threads, xq_size, conv_workspace<T, kWsInput>);
    const PerThread<T> accs(threads, acc_size, conv_workspace<T, kWsPartial>);
#pragma omp parallel num_threads(threads)
    {
      T* xq = xqs.slice();
      T* acc = accs.slice();
#pragma omp for schedule(dynamic, 1)
      for (i64 ch = 0; ch < nch; ++ch) {
        std::fill(acc, acc + acc_size, T(0));
        for (i64 pr = pairs * ch / nch; pr < pairs * (ch + 1) / nch; ++pr) {
          pad_phases(g, x + pr * in_pair, xq);
          for (i64 ti = 0; ti < ntiles; ++ti) run_tile(xq, pr, ti, acc);
        }
        T* part = parts + ch * total;
        for (i64 e = 0; e < total; ++e) part[e] = lane_sum(acc + e * L);
      }
#pragma omp for schedule(static)
      for (i64 e = 0; e < total; ++e) {
        T s = parts[e];
        for (i64 ch = 1; ch < nch; ++ch) s += parts[ch * total + e];
        gw[e] = s;
      }
    }
  } else {
    T* xq = conv_workspace<T, kWsInput>(xq_size);
    T* acc = conv_workspace<T, kWsPartial>(acc_size);
    std::fill(acc, acc + acc_size, T(0));
    for (i64 pr = 0; pr < pairs; ++pr) {
      pad_phases(g, x + pr * in_pair, xq);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && ntiles > 1)
      for (i64 ti = 0; ti < ntiles; ++ti) run_tile(xq, pr, ti, acc);
    }
    for (i64 e = 0; e < total; ++e) gw[e] = lane_sum(acc + e * L);
  }
}

// ------------------------------------------------------------------ channel-vectorised direct convolution
//
// The SIMD vectors run over output channels; the register tile is FV vectors
// of output channels times RB images at one output pixel (forward) or RB input
// channels at one kernel position (grad_weight); only the taps that touch real
// input pixels are visited (the tap range of a pixel is a rectangle [kh0, kh1)
// x [kw0, kw1), the same for every image): no padding copy, no multiplications
// by zero, full vectors whatever the image width.

// dst[c*ld_dst + r] = src[r*ld_src + c] for r < rows, c < cols, in L x L
// blocks (simd.h's transpose_block: in registers where the ISA has the
// shuffles; the inputs of the channel-vectorised kernel are transposed on
// every call).
template <typename T>
void transpose(const T* src, i64 rows, i64 cols, i64 ld_src, T* dst, i64 ld_dst) {
  constexpr int L = Simd<T>::L;
  for (i64 r0 = 0; r0 < rows; r0 += L) {
    const int nr = static_cast<int>(std::min<i64>(L, rows - r0));
    for (i64 c0 = 0; c0 < cols; c0 += L) {
      const int nc = static_cast<int>(std::min<i64>(L, cols - c0));
      transpose_block(src + r0 * ld_src + c0, ld_src, nr, nc, dst + c0 * ld_dst + r0, ld_dst, nr);
    }
  }
}

// Output-channel vectors per micro-tile. With 16 registers: 3 x 4 images (12
// accumulators); measured on Zen 3 (AVX2, batch 128, 5x5, 2 threads): 32->64 on
// 16x16 fwd / grad_input / grad_weight 18.2 / 16.9 / 30.8 ms, against
// 17.5 / 16.7 / 31.4 with 2 x 6 and 32.9 / 34.4 / 46.4 with 4 x 2.
constexpr int kCvMaxFV = kManyRegs ? 4 : 3;
constexpr int kCvMaxRB = 14;  // images (forward) / input channels (grad_weight) per micro-tile

// Rows per micro-tile: RB * FV accumulators, FV weight vectors and a broadcast
// in the vector registers.
constexpr int cv_rb(int fv) { return std::min(kCvMaxRB, (kVectorRegs - 1 - fv) / fv); }
// The most accumulators (RB * FV) of any micro-tile.
constexpr int kCvAcc = std::max({cv_rb(1) * 1, cv_rb(2) * 2, cv_rb(3) * 3, cv_rb(4) * 4});

// Kernel positions [lo, hi) of output position o that read inside [0, size):
// 0 <= o*s - p + k*d < size.
inline void taps_of_output(i64 o, i64 s, i64 p, i64 d, i64 k, i64 size, i64& lo, i64& hi) {
  const i64 i0 = o * s - p;
  lo = clamp64(ceil_div(-i0, d), 0, k);
  hi = clamp64(ceil_div(size - i0, d), lo, k);
}

// Output positions [lo, hi) (of osize) that kernel position k reads inside [0, size).
inline void outputs_of_tap(i64 k, i64 s, i64 p, i64 d, i64 size, i64 osize, i64& lo, i64& hi) {
  const i64 i0 = k * d - p;
  lo = clamp64(ceil_div(-i0, s), 0, osize);
  hi = clamp64(ceil_div(size - i0, s), lo, osize);
}

// out[j][v*L + l] = init[v*L + l] + sum over the taps (c < ci, a < nkh, b < nkw) of
// wb[c*w_c + a*w_h + b*FV*L + v*L + l] * xb[c*x_c + a*x_h + b*x_w + j]:
// RB images (innermost in x) times FV vectors of output channels.
template <typename T, int FV, int RB>
void cv_fwd_tile(const T* xb, const T* wb, i64 ci, i64 nkh, i64 nkw, i64 x_c, i64 x_h, i64 x_w,
                 i64 w_c, i64 w_h, const T* init, T* out) {
  using S = Simd<T>;
  constexpr int L = S::L;
  typename S::reg acc[RB][FV];
  TGC_UNROLL
  for (int v = 0; v < FV; ++v) {
    const typename S::reg b = init ? S::load(init + v * L) : S::zero();
    TGC_UNROLL
    for (int j = 0; j < RB; ++j) acc[j][v] = b;
  }
  const i64 span = static_cast<i64>(sizeof(T)) * ((nkw - 1) * x_w + RB);  // bytes of x per kernel row
  for (i64 c = 0; c < ci; ++c)
    for (i64 a = 0; a < nkh; ++a) {
      const T* xr = xb + c * x_c + a * x_h;
      const T* wr = wb + c * w_c + a * w_h;
      // The same kernel row two channels ahead: its input is usually no longer
      // in L1 (the tile touches ci * nkh such runs) and the stride is too long
      // for the hardware prefetcher. (Integer arithmetic: may point past xi.)
      const std::uintptr_t ahead = reinterpret_cast<std::uintptr_t>(xr) + 2 * x_c * sizeof(T);
      for (i64 q = 0; q < span; q += 64) TGC_PREFETCH(reinterpret_cast<const void*>(ahead + q));
      for (i64 b = 0; b < nkw; ++b, xr += x_w, wr += FV * L) {
        typename S::reg wv[FV];
        TGC_UNROLL
        for (int v = 0; v < FV; ++v) wv[v] = S::load(wr + v * L);
        TGC_UNROLL
        for (int j = 0; j < RB; ++j) {
          const typename S::reg xv = S::set1(xr[j]);
          TGC_UNROLL
          for (int v = 0; v < FV; ++v) acc[j][v] = S::fma(wv[v], xv, acc[j][v]);
        }
      }
    }
  TGC_UNROLL
  for (int j = 0; j < RB; ++j)
    TGC_UNROLL
    for (int v = 0; v < FV; ++v) S::store(out + (j * FV + v) * L, acc[j][v]);
}

// acc[j][v*L + l] (rows acc_ld apart) += sum over images n < nimg, output rows
// a < noh, columns o < now of gyb[n*gy_n + a*gy_h + o*gy_w + v*L + l] *
// xb[n*x_n + a*x_h + o*x_w + j]: the weight gradient of RB input channels
// (innermost in x) times FV vectors of output channels at one kernel position.
template <typename T, int FV, int RB>
void cv_gw_tile(const T* gyb, const T* xb, i64 nimg, i64 noh, i64 now, i64 gy_n, i64 gy_h,
                i64 gy_w, i64 x_n, i64 x_h, i64 x_w, T* acc_mem, i64 acc_ld) {
  using S = Simd<T>;
  constexpr int L = S::L;
  typename S::reg acc[RB][FV];
  TGC_UNROLL
  for (int j = 0; j < RB; ++j)
    TGC_UNROLL
    for (int v = 0; v < FV; ++v) acc[j][v] = S::load(acc_mem + j * acc_ld + v * L);
  for (i64 n = 0; n < nimg; ++n)
    for (i64 a = 0; a < noh; ++a) {
      const T* gp = gyb + n * gy_n + a * gy_h;
      const T* xp = xb + n * x_n + a * x_h;
      for (i64 o = 0; o < now; ++o, gp += gy_w, xp += x_w) {
        typename S::reg gv[FV];
        TGC_UNROLL
        for (int v = 0; v < FV; ++v) gv[v] = S::load(gp + v * L);
        TGC_UNROLL
        for (int j = 0; j < RB; ++j) {
          const typename S::reg xv = S::set1(xp[j]);
          TGC_UNROLL
          for (int v = 0; v < FV; ++v) acc[j][v] = S::fma(gv[v], xv, acc[j][v]);
        }
      }
    }
  TGC_UNROLL
  for (int j = 0; j < RB; ++j)
    TGC_UNROLL
    for (int v = 0; v < FV; ++v) S::store(acc_mem + j * acc_ld + v * L, acc[j][v]);
}

template <typename T>
using CvFwdFn = void (*)(const T*, const T*, i64, i64, i64, i64, i64, i64, i64, i64, const T*, T*);
template <typename T>
using CvGwFn = void (*)(const T*, const T*, i64, i64, i64, i64, i64, i64, i64, i64, i64, T*, i64);

template <typename T, int FV, std::size_t... R>
CvFwdFn<T> cv_fwd_rb(int rb, std::index_sequence<R...>) {
  static constexpr CvFwdFn<T> fns[] = {&cv_fwd_tile<T, FV, static_cast<int>(R) + 1>...};
  return fns[rb - 1];
}
template <typename T, int FV, std::size_t... R>
CvGwFn<T> cv_gw_rb(int rb, std::index_sequence<R...>) {
  static constexpr CvGwFn<T> fns[] = {&cv_gw_tile<T, FV, static_cast<int>(R) + 1>...};
  return fns[rb - 1];
}

// The micro-kernel for fv (1..kCvMaxFV) vectors and rb (1..cv_rb(fv)) rows.
template <typename T>
CvFwdFn<T> cv_fwd_pick(int fv, int rb) {
  switch (fv) {
    case 1: return cv_fwd_rb<T, 1>(rb, std::make_index_sequence<cv_rb(1)>{});
    case 2: return cv_fwd_rb<T, 2>(rb, std::make_index_sequence<cv_rb(2)>{});
    case 3: return cv_fwd_rb<T, 3>(rb, std::make_index_sequence<cv_rb(3)>{});
    default: return cv_fwd_rb<T, 4>(rb, std::make_index_sequence<cv_rb(4)>{});
  }
}
template <typename T>
CvGwFn<T> cv_gw_pick(int fv, int rb) {
  switch (fv) {
    case 1: return cv_gw_rb<T, 1>(rb, std::make_index_sequence<cv_rb(1)>{});
    case 2: return cv_gw_rb<T, 2>(rb, std::make_index_sequence<cv_rb(2)>{});
    case 3: return cv_gw_rb<T, 3>(rb, std::make_index_sequence<cv_rb(3)>{});
    default: return cv_gw_rb<T, 4>(rb, std::make_index_sequence<cv_rb(4)>{});
  }
}

// Output-channel blocks of one group, in SIMD vectors (at most kCvMaxFV each).
template <typename T>
std::vector<Block> cv_fblocks(i64 mo) {
  return even_blocks(ceil_div(mo, Simd<T>::L), kCvMaxFV);
}

// Direct convolution dst = conv(src, w) (+ bias) vectorised over output
// channels; w is (groups * mo, ci, kh, kw). Work items: (group, block of up to
// RB images); the images of an item are interleaved (xi[c][ih][iw][image]) so
// that the RB broadcasts of one tap are adjacent.
template <typename T>
void cv_conv(const DGeom& g, const T* src, const T* w, const T* bias, T* dst) {
  constexpr int L = Simd<T>::L;
  constexpr i64 FL = kCvMaxFV * L;  // packed output channels per block and tap
  const i64 taps = g.taps(), kk = g.kh * g.kw, np = g.oh * g.ow, hw = g.hs * g.ws;
  const std::vector<Block> fb = cv_fblocks<T>(g.mo);
  const i64 nfb = static_cast<i64>(fb.size());
  const int threads = max_threads();

  // Image blocks: at most RB images (for the widest channel block), and a
  // multiple of the thread count when that costs at most a few images per block.
  const int rb = cv_rb(fb[0].size);
  i64 nblk = ceil_div(g.n, rb);
  for (i64 k = nblk; k <= std::min(g.n, nblk + threads); ++k)
    if ((g.groups * k) % threads == 0) {
      nblk = k;
      break;
    }
  const std::vector<Block> iblocks = split_blocks(g.n, nblk);

  // Weights as [group][channel block][tap][FL] (zero beyond mo), bias as [group][block][FL].
  T* wp = conv_workspace<T, kWsWeights>(static_cast<std::size_t>(g.groups * nfb * (taps + 1) * FL));
  T* bp = wp + g.groups * nfb * taps * FL;
  for (i64 gi = 0; gi < g.groups; ++gi)
    for (i64 b = 0; b < nfb; ++b) {
      T* wb = wp + (gi * nfb + b) * taps * FL;
      const i64 f0 = fb[static_cast<std::size_t>(b)].start * L, fv = fb[static_cast<std::size_t>(b)].size;
      for (i64 t = 0; t < taps; ++t)
        for (i64 l = 0; l < fv * L; ++l)
          wb[t * fv * L + l] = f0 + l < g.mo ? w[(gi * g.mo + f0 + l) * taps + t] : T(0);
      for (i64 l = 0; l < FL; ++l)
        bp[(gi * nfb + b) * FL + l] = bias && f0 + l < g.mo ? bias[gi * g.mo + f0 + l] : T(0);
    }
  // Valid kernel rows / columns of each output row / column.
  Array<i64> rh(static_cast<std::size_t>(2 * g.oh)), rw(static_cast<std::size_t>(2 * g.ow));
  for (i64 o = 0; o < g.oh; ++o) taps_of_output(o, g.sh, g.ph, g.dh, g.kh, g.hs, rh[2 * o], rh[2 * o + 1]);
  for (i64 o = 0; o < g.ow; ++o) taps_of_output(o, g.sw, g.pw, g.dw, g.kw, g.ws, rw[2 * o], rw[2 * o + 1]);

  const i64 cin = g.groups * g.ci, cout = g.groups * g.mo;
  auto interleave = [&](i64 gi, const Block& ib, T* xi) {
    transpose(src + (ib.start * cin + gi * g.ci) * hw, ib.size, g.ci * hw, cin * hw, xi, ib.size);
  };
  const PerThread<T> outs(threads, static_cast<std::size_t>(g.ow * kCvAcc * L), conv_workspace<T, kWsRow>);
  // Output row oh of channel block b for the images of ib, into y (image j,
  // channel f of the group at y + j*y_img + f*np).
  auto row = [&](i64 gi, const Block& ib, const T* xi, i64 b, i64 oh, T* y, i64 y_img) {
    const i64 nb = ib.size;
    const Block& f = fb[static_cast<std::size_t>(b)];
    const i64 fv = f.size, f0 = f.start * L, fn = std::min<i64>(fv * L, g.mo - f0);
    const CvFwdFn<T> fn_tile = cv_fwd_pick<T>(f.size, ib.size);
    const T* wb = wp + (gi * nfb + b) * taps * FL;
    const T* init = bias ? bp + (gi * nfb + b) * FL : nullptr;
    // The tiles of the row go to out[ow][image][channel]; then out is written to
    // y one contiguous output row at a time (not one element per plane per tile).
    const i64 tile = nb * fv * L;
    T* out = outs.slice();
    const i64 kh0 = rh[2 * oh], nkh = rh[2 * oh + 1] - kh0;
    for (i64 ow = 0; ow < g.ow; ++ow) {
      const i64 kw0 = rw[2 * ow], nkw = rw[2 * ow + 1] - kw0;
      const i64 ih = oh * g.sh - g.ph + kh0 * g.dh, iw = ow * g.sw - g.pw + kw0 * g.dw;
      const T* xb = nkh > 0 && nkw > 0 ? xi + (ih * g.ws + iw) * nb : xi;
      fn_tile(xb, wb + (kh0 * g.kw + kw0) * fv * L, g.ci, nkh, nkw, hw * nb, g.dh * g.ws * nb,
              g.dw * nb, kk * fv * L, g.kw * fv * L, init, out + ow * tile);
    }
    for (i64 j = 0; j < nb; ++j)
      transpose(out + j * fv * L, g.ow, fn, tile, y + j * y_img + f0 * np + oh * g.ow, np);
  };

  const i64 items = g.groups * static_cast<i64>(iblocks.size());
  const i64 nb_max = iblocks[0].size;
  if (split_pairs(items, threads)) {
    const PerThread<T> xis(threads, static_cast<std::size_t>(g.ci * hw * nb_max), conv_workspace<T, kWsInput>);
#pragma omp parallel num_threads(threads)
    {
      T* xi = xis.slice();
#pragma omp for schedule(dynamic, 1)
      for (i64 it = 0; it < items; ++it) {
        const i64 gi = it % g.groups;
        const Block& ib = iblocks[static_cast<std::size_t>(it / g.groups)];
        T* y = dst + (ib.start * cout + gi * g.mo) * np;
        interleave(gi, ib, xi);
        for (i64 b = 0; b < nfb; ++b)
          for (i64 oh = 0; oh < g.oh; ++oh) row(gi, ib, xi, b, oh, y, cout * np);
      }
    }
  } else {
    T* xi = conv_workspace<T, kWsInput>(static_cast<std::size_t>(g.ci * hw * nb_max));
    for (i64 it = 0; it < items; ++it) {
      const i64 gi = it % g.groups;
      const Block& ib = iblocks[static_cast<std::size_t>(it / g.groups)];
      interleave(gi, ib, xi);
      const i64 rows = nfb * g.oh;
      T* y = dst + (ib.start * cout + gi * g.mo) * np;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1 && rows > 1)
      for (i64 r = 0; r < rows; ++r) row(gi, ib, xi, r / g.oh, r % g.oh, y, cout * np);
    }
  }
}

// Bytes of transposed images (x and gy) per batch of cv_grad_weight: every
// (channel block, tap) tile passes over the whole batch. 512 KiB was measured
// on AVX-512 (Zen 4, 1 MiB L2); with 16 registers (Zen 3, 512 KiB L2) an
// L1-sized batch is much faster: AVX2, 2 threads, ms for 512 / 32 KiB:
// 64->64 5x5 on 8x8, batch 128: 12.4 / 8.5; 3->32 5x5 on 32x32: 5.4 / 4.7;
// 16->32 5x5 on 16x16: 5.8 / 4.9; SSE2: 28.4 / 22.8, 14.6 / 10.5, 14.6 / 12.6.
constexpr i64 kGwBatchBytes = kManyRegs ? i64{512} << 10 : i64{32} << 10;

// gw (groups * mo, ci, kh, kw) = sum over images of the correlation of gy with
// x, vectorised over output channels; only pixel pairs inside the image are
// visited. Images are split into chunks with one partial sum each, laid out as
// part[group][kernel position][input channel][output channel, padded to
// vectors]; within a chunk, batches of images are transposed to channel-
// innermost layouts (xt[image][ih][iw][c], gyt[image][oh][ow][f]).
template <typename T>
void cv_grad_weight(const DGeom& g, const T* x, const T* gy, T* gw) {
  constexpr int L = Simd<T>::L;
  const i64 kk = g.kh * g.kw, np = g.oh * g.ow, hw = g.hs * g.ws;
  const std::vector<Block> fb = cv_fblocks<T>(g.mo);
  const i64 fp = ceil_div(g.mo, L) * L;  // padded output channels
  const int rb = cv_rb(fb[0].size);
  const std::vector<Block> cb = even_blocks(g.ci, rb);
  const i64 part = g.groups * kk * g.ci * fp;
  const i64 cin = g.groups * g.ci, cout = g.groups * g.mo;
  const int threads = max_threads();
  const i64 nch = weight_chunks(g.n, threads, part, sizeof(T));
  // Images per transposed batch: both transposes within kGwBatchBytes.
  const i64 per_image = (g.ci * hw + np * fp) * static_cast<i64>(sizeof(T));
  const i64 batch = clamp64(kGwBatchBytes / std::max<i64>(per_image, 1), 1, ceil_div(g.n, nch));

  Array<i64> ro(static_cast<std::size_t>(2 * g.kh)), co(static_cast<std::size_t>(2 * g.kw));
  for (i64 k = 0; k < g.kh; ++k) outputs_of_tap(k, g.sh, g.ph, g.dh, g.hs, g.oh, ro[2 * k], ro[2 * k + 1]);
  for (i64 k = 0; k < g.kw; ++k) outputs_of_tap(k, g.sw, g.pw, g.dw, g.ws, g.ow, co[2 * k], co[2 * k + 1]);

  // acc += the images [n0, n1) of group gi.
  auto images = [&](i64 gi, i64 n0, i64 n1, T* xt, T* gyt, T* acc) {
    const i64 nb = n1 - n0;
    for (i64 n = 0; n < nb; ++n) {
      transpose(x + ((n0 + n) * cin + gi * g.ci) * hw, g.ci, hw, hw, xt + n * hw * g.ci, g.ci);
      T* gd = gyt + n * np * fp;
      transpose(gy + ((n0 + n) * cout + gi * g.mo) * np, g.mo, np, np, gd, fp);
      if (fp > g.mo)
        for (i64 e = 0; e < np; ++e) std::fill(gd + e * fp + g.mo, gd + (e + 1) * fp, T(0));
    }
    for (const Block& f : fb)
      for (i64 kh = 0; kh < g.kh; ++kh)
        for (i64 kw = 0; kw < g.kw; ++kw) {
          const i64 oh0 = ro[2 * kh], noh = ro[2 * kh + 1] - oh0;
          const i64 ow0 = co[2 * kw], now = co[2 * kw + 1] - ow0;
          if (noh == 0 || now == 0) continue;
          const i64 ih = oh0 * g.sh - g.ph + kh * g.dh, iw = ow0 * g.sw - g.pw + kw * g.dw;
          for (const Block& c : cb)
            cv_gw_pick<T>(f.size, c.size)(
                gyt + (oh0 * g.ow + ow0) * fp + f.start * L, xt + (ih * g.ws + iw) * g.ci + c.start,
                nb, noh, now, np * fp, g.ow * fp, fp, hw * g.ci, g.sh * g.ws * g.ci, g.sw * g.ci,
                acc + ((gi * kk + kh * g.kw + kw) * g.ci + c.start) * fp + f.start * L, fp);
        }
  };

  T* parts = conv_workspace<T, kWsChunks>(static_cast<std::size_t>(nch * part));
  const int team = threads > 1 && nch > 1 ? threads : 1;
  const PerThread<T> xts(team, static_cast<std::size_t>(batch * hw * g.ci), conv_workspace<T, kWsInput>);
  const PerThread<T> gyts(team, static_cast<std::size_t>(batch * np * fp), conv_workspace<T, kWsPartial>);
#pragma omp parallel num_threads(team)
  {
    T* xt = xts.slice();
    T* gyt = gyts.slice();
#pragma omp for schedule(dynamic, 1)
    for (i64 ch = 0; ch < nch; ++ch) {
      T* acc = parts + ch * part;
      std::fill(acc, acc + part, T(0));
      const i64 n0 = g.n * ch / nch, n1 = g.n * (ch + 1) / nch;
      for (i64 gi = 0; gi < g.groups; ++gi)
        for (i64 n = n0; n < n1; n += batch) images(gi, n, std::min(n1, n + batch), xt, gyt, acc);
    }
    // The sum over chunks (in chunk order) into the first partial, then
    // gw[gi*mo + f][c][k] = part[gi][k][c][f].
#pragma omp for schedule(static)
    for (i64 e0 = 0; e0 < part; e0 += 1024) {
      const i64 e1 = std::min(part, e0 + 1024);
      for (i64 ch = 1; ch < nch; ++ch)
        for (i64 e = e0; e < e1; ++e) parts[e] += parts[ch * part + e];
    }
#pragma omp for schedule(static)
    for (i64 r = 0; r < g.groups * kk * g.ci; ++r) {  // r = (gi*kk + k)*ci + c
      const i64 gi = r / (kk * g.ci), k = (r / g.ci) % kk, c = r % g.ci;
      for (i64 f = 0; f < g.mo; ++f) gw[((gi * g.mo + f) * g.ci + c) * kk + k] = parts[r * fp + f];
    }
  }
}

// ------------------------------------------------------------------ im2col + GEMM

bool is_pointwise(const Conv2dParams& p) {
  return p.kh == 1 && p.kw == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
}

// Output rows per block so that the column buffer (K x rows*OW) stays near
// 256 Ki elements, but gives GEMM at least ~256 columns.
i64 chunk_rows(i64 k, i64 oh, i64 ow) {
  constexpr i64 kBudget = i64{1} << 18;
  i64 rows = kBudget / std::max<i64>(1, k * ow);
  rows = std::max(rows, ceil_div(256, ow));
  return clamp64(rows, 1, oh);
}

// d[0:n] = s[0:n] (copy_row) and d[0:n] += s[0:n] (add_row): whole vectors,
// then the tail element by element rather than with a mask: a wide masked
// load that overlaps the masked-off part of a recent store to a neighbouring
// row (column rows are often only OW + padding elements apart) cannot be
// store-forwarded and stalls.
template <typename T>
inline void copy_row(T* __restrict d, const T* __restrict s, i64 n) {
  using S = Simd<T>;
  i64 q = 0;
  for (; q + S::L <= n; q += S::L) S::store(d + q, S::load(s + q));
  for (; q < n; ++q) d[q] = s[q];
}
template <typename T>
inline void add_row(T* __restrict d, const T* __restrict s, i64 n) {
  using S = Simd<T>;
  i64 q = 0;
  for (; q + S::L <= n; q += S::L) S::store(d + q, S::add(S::load(d + q), S::load(s + q)));
  for (; q < n; ++q) d[q] += s[q];
}

// The im2col of one (image, group) reads its padded, phase-split copy xq
// (pad_phases, see DGeom): row t of the column matrix, output row r, is the
// contiguous run xq[off[t] + r*sh*wq + 0 .. OW), for every stride and dilation.
// cols[t][(r - r0)*OW + ow] for output rows [r0, r1).
template <typename T>
void im2col(const DGeom& g, const T* xq, const i64* off, i64 r0, i64 r1, T* cols, bool par) {
  const i64 taps = g.taps(), pc = (r1 - r0) * g.ow, rs = g.sh * g.wq();
#pragma omp parallel for schedule(static) if (par && taps * pc >= (i64{1} << 15))
  for (i64 t = 0; t < taps; ++t) {
    const T* s = xq + off[t] + r0 * rs;
    T* d = cols + t * pc;
    for (i64 r = r0; r < r1; ++r, s += rs, d += g.ow) copy_row(d, s, g.ow);
  }
}

// Adjoint of im2col: gq (same layout as xq) += the column rows of output rows [r0, r1).
template <typename T>
void col2im(const DGeom& g, const T* cols, const i64* off, i64 r0, i64 r1, T* gq, bool par) {
  const i64 pc = (r1 - r0) * g.ow, rs = g.sh * g.wq();
  // taps of one channel write the same plane: split the work over channels only
#pragma omp parallel for schedule(static) if (par && g.ci > 1 && g.taps() * pc >= (i64{1} << 15))
  for (i64 c = 0; c < g.ci; ++c)
    for (i64 j = 0; j < g.kw; ++j)
      for (i64 i = 0; i < g.kh; ++i) {
        // Kernel column outermost: consecutive row updates either touch other
        // rows or exactly the same addresses (same column shift), so loads
        // never straddle recent, shifted stores (no store-forwarding stalls).
        const i64 t = (c * g.kh + i) * g.kw + j;
        T* d = gq + off[t] + r0 * rs;
        const T* s = cols + t * pc;
        for (i64 r = r0; r < r1; ++r, d += rs, s += g.ow) add_row(d, s, g.ow);
      }
}

// gx (ci planes hs x ws) = the unpadded part of gq.
template <typename T>
void unpad_phases(const DGeom& g, const T* gq, T* gx, bool par) {
  const i64 hp = g.hp(), wq = g.wq();
#pragma omp parallel for schedule(static) if (par && g.ci > 1 && g.ci * g.hs * g.ws >= (i64{1} << 15))
  for (i64 c = 0; c < g.ci; ++c)
    for (i64 ih = 0; ih < g.hs; ++ih) {
      T* d = gx + (c * g.hs + ih) * g.ws;
      const i64 i = ih + g.ph;  // row in gq
      if (i >= hp) {
        std::fill(d, d + g.ws, T(0));
        continue;
      }
      const T* s = gq + c * g.plane() + i * wq;
      if (g.sw == 1) {
        const i64 n = clamp64(wq - g.pw, 0, g.ws);  // columns iw + pw < wq
        copy_row(d, s + g.pw, n);
        std::fill(d + n, d + g.ws, T(0));
      } else {
        for (i64 iw = 0; iw < g.ws; ++iw) {
          const i64 j = iw + g.pw, q = j / g.sw;
          d[iw] = q < wq ? s[(j % g.sw) * hp * wq + q] : T(0);
        }
      }
    }
}

// Runs pair(pr, inner) for every (image, group) pair pr: split over the threads
// (inner = false; gemm then runs single-threaded), or one after the other with
// the parallelism inside (inner = true).
// A pair allocates (its buffers and gemm's are per thread): an allocation
// failure inside the region is kept and rethrown after it (workspace.h).
template <typename Pair>
void for_each_pair(i64 pairs, Pair&& pair) {
  const int threads = max_threads();
  if (split_pairs(pairs, threads)) {
    RegionErrors errors;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (i64 pr = 0; pr < pairs; ++pr) errors.run([&] { pair(pr, false); });
    errors.rethrow();
  } else {
    for (i64 pr = 0; pr < pairs; ++pr) pair(pr, threads > 1);
  }
}

template <typename T>
void pad_input(const DGeom& g, const T* src, T* xq, bool par) {
  if (par && g.ci > 1 && g.ci * g.plane() >= (i64{1} << 15)) {
#pragma omp parallel for schedule(static)
    for (i64 c = 0; c < g.ci; ++c) {
      DGeom one = g;
      one.ci = 1;
      pad_phases(one, src + c * g.hs * g.ws, xq + c * g.plane());
    }
  } else {
    pad_phases(g, src, xq);
  }
}

// y = conv(x, w) (+ bias) with geometry g; w is (groups * mo, ci, kh, kw).
// pw1: 1x1 kernel, stride 1, no padding (x is its own column matrix).
template <typename T>
void gemm_forward(const DGeom& g, bool pw1, const T* x, const T* w, const T* bias, T* y) {
  const i64 fg = g.mo, k = g.taps(), oh = g.oh, ow = g.ow, np = oh * ow;
  const i64 rows = pw1 ? oh : chunk_rows(k, oh, ow);
  Array<i64> off;
  build_offsets(g, off);

  for_each_pair(g.n * g.groups, [&](i64 pr, bool inner) {
    const i64 gi = pr % g.groups;
    const T* xg = x + pr * g.ci * g.hs * g.ws;
    const T* wg = w + gi * fg * k;
    T* yg = y + pr * fg * np;
    const T* xq = nullptr;
    if (!pw1) {
      T* buf = conv_workspace<T, kWsPad>(static_cast<std::size_t>(g.ci * g.plane()));
      pad_input(g, xg, buf, inner);
      xq = buf;
    }
    for (i64 r0 = 0; r0 < oh; r0 += rows) {
      const i64 r1 = std::min(oh, r0 + rows), p0 = r0 * ow, pc = (r1 - r0) * ow;
      const T* b = xg + p0;
      i64 ldb = np;
      if (!pw1) {
        T* cols = conv_workspace<T, kWsInput>(static_cast<std::size_t>(k * pc));
        im2col(g, xq, off.data(), r0, r1, cols, inner);
        b = cols;
        ldb = pc;
      }
      T beta = T(0);
      if (bias) {
        for (i64 f = 0; f < fg; ++f) std::fill(yg + f * np + p0, yg + f * np + p0 + pc, bias[gi * fg + f]);
        beta = T(1);
      }
      gemm<T>(false, false, fg, pc, k, T(1), wg, k, b, ldb, beta, yg + p0, np);
    }
  });
}

// Geometry of grad_input for stride 1 as a forward convolution of gy (the
// transposed convolution): gy's fg planes in, cg planes of the input size out,
// kernel flipped, padding d(k-1) - p (negative: a crop).
DGeom transposed_geom(const Conv2dParams& p) {
  return DGeom{p.n, p.groups, p.f / p.groups, p.oh(), p.ow(), p.c / p.groups, p.kh, p.kw,
               1,   1,        (p.kh - 1) * p.dh - p.ph, (p.kw - 1) * p.dw - p.pw,
               p.dh, p.dw,    p.h, p.w};
}

// Weights of the transposed convolution, (groups * cg, fg, kh, kw): output
// channel c, tap (f, i, j) of group gi is w[gi*fg + f][c][kh-1-i][kw-1-j].
// Written into a workspace of the calling thread.
template <typename T>
const T* flipped_weights(const Conv2dParams& p, const T* w) {
  const i64 cg = p.c / p.groups, fg = p.f / p.groups, kk = p.kh * p.kw;
  T* wt = conv_workspace<T, kWsFlip>(static_cast<std::size_t>(p.c * fg * kk));
  for (i64 gi = 0; gi < p.groups; ++gi)
    for (i64 f = 0; f < fg; ++f)
      for (i64 c = 0; c < cg; ++c) {
        const T* src = w + ((gi * fg + f) * cg + c) * kk;
        T* dst = wt + ((gi * cg + c) * fg + f) * kk;
        for (i64 t = 0; t < kk; ++t) dst[t] = src[kk - 1 - t];  // (i, j) -> (kh-1-i, kw-1-j)
      }
  return wt;
}

template <typename T>
void gemm_grad_input(const Conv2dParams& p, const DGeom& g, const T* gy, const T* w, T* gx) {
  const i64 fg = g.mo, cg = g.ci, k = g.taps(), oh = g.oh, ow = g.ow, np = oh * ow;
  const bool pw1 = is_pointwise(p);
  const i64 rows = chunk_rows(k, oh, ow);
  Array<i64> off;
  build_offsets(g, off);

  for_each_pair(g.n * g.groups, [&](i64 pr, bool inner) {
    const i64 gi = pr % g.groups;
    T* gxg = gx + pr * cg * g.hs * g.ws;
    const T* wg = w + gi * fg * k;
    const T* gyg = gy + pr * fg * np;
    if (pw1) {  // the column matrix is gx itself
      gemm<T>(true, false, cg, np, fg, T(1), wg, k, gyg, np, T(0), gxg, np);
      return;
    }
    T* gq = conv_workspace<T, kWsPad>(static_cast<std::size_t>(cg * g.plane()));
    std::fill(gq, gq + cg * g.plane(), T(0));
    for (i64 r0 = 0; r0 < oh; r0 += rows) {
      const i64 r1 = std::min(oh, r0 + rows), p0 = r0 * ow, pc = (r1 - r0) * ow;
      T* cols = conv_workspace<T, kWsInput>(static_cast<std::size_t>(k * pc));
      gemm<T>(true, false, k, pc, fg, T(1), wg, k, gyg + p0, np, T(0), cols, pc);
      col2im(g, cols, off.data(), r0, r1, gq, inner);
    }
    unpad_phases(g, gq, gxg, inner);
  });
}

template <typename T>
void gemm_grad_weight(const Conv2dParams& p, const DGeom& g, const T* gy, const T* x, T* gw) {
  const i64 fg = g.mo, k = g.taps(), oh = g.oh, ow = g.ow, np = oh * ow;
  const bool pw1 = is_pointwise(p);
  const i64 rows = pw1 ? oh : chunk_rows(k, oh, ow);
  const i64 total = p.f * k;
  Array<i64> off;
  build_offsets(g, off);

  // acc (F x K) += the contribution of (image, group) pair pr.
  auto pair = [&](i64 pr, bool inner, T* acc) {
    const i64 gi = pr % g.groups;
    const T* xg = x + pr * g.ci * g.hs * g.ws;
    const T* gyg = gy + pr * fg * np;
    const T* xq = nullptr;
    if (!pw1) {
      T* buf = conv_workspace<T, kWsPad>(static_cast<std::size_t>(g.ci * g.plane()));
      pad_input(g, xg, buf, inner);
      xq = buf;
    }
    for (i64 r0 = 0; r0 < oh; r0 += rows) {
      const i64 r1 = std::min(oh, r0 + rows), p0 = r0 * ow, pc = (r1 - r0) * ow;
      const T* b = xg + p0;
      i64 ldb = np;
      if (!pw1) {
        T* cols = conv_workspace<T, kWsInput>(static_cast<std::size_t>(k * pc));
        im2col(g, xq, off.data(), r0, r1, cols, inner);
        b = cols;
        ldb = pc;
      }
      gemm<T>(false, true, fg, k, pc, T(1), gyg + p0, np, b, ldb, T(1), acc + gi * fg * k, k);
    }
  };

  const i64 pairs = g.n * g.groups;
  const int threads = max_threads();
  if (split_pairs(pairs, threads)) {
    const i64 nch = weight_chunks(pairs, threads, total, sizeof(T));
    T* parts = conv_workspace<T, kWsChunks>(static_cast<std::size_t>(nch * total));
    RegionErrors errors;  // pair() allocates: see for_each_pair
#pragma omp parallel num_threads(threads)
    {
#pragma omp for schedule(dynamic, 1)
      for (i64 ch = 0; ch < nch; ++ch) {
        errors.run([&] {
          T* part = parts + ch * total;
          std::fill(part, part + total, T(0));
          for (i64 pr = pairs * ch / nch; pr < pairs * (ch + 1) / nch; ++pr) pair(pr, false, part);
        });
      }
#pragma omp for schedule(static)
      for (i64 e = 0; e < total; ++e) {
        T s = parts[e];
        for (i64 ch = 1; ch < nch; ++ch) s += parts[ch * total + e];
        gw[e] = s;
      }
    }
    errors.rethrow();
  } else {
    std::fill(gw, gw + total, T(0));
    for (i64 pr = 0; pr < pairs; ++pr) pair(pr, threads > 1, gw);
  }
}

// ------------------------------------------------------------------ algorithm choice
//
// The rules below read the active ISA's vector width (lane_fill) and register
// count (kManyRegs); their thresholds were measured on AVX-512 (Zen 4) and
// checked on AVX2 and SSE2 (Zen 3, 2 threads, ms for fwd / grad_input /
// grad_weight, im2col + GEMM | width-vectorised | channel-vectorised):
//   AVX2, 3->32 5x5 on 32x32,  batch 128:  5.6  5.3  6.3 |  3.7  4.4  7.7 |  4.6 12.7  7.1
//   AVX2, 32->64 5x5 on 16x16, batch 128: 23.6 21.8 23.3 | 18.2 18.3 43.7 | 17.7 16.7 22.5
//   AVX2, 64->64 5x5 on 8x8,   batch 128: 15.0 13.4 13.8 |  9.1  9.2 30.8 |  7.4  7.5  9.0
//   SSE2, 3->32 5x5 on 32x32,  batch 128: 12.4 12.8 16.9 | 13.0 11.0 16.0 | 11.6 19.4 10.5
//   SSE2, 32->64 5x5 on 16x16, batch 128: 61.5 60.9 69.2 | 68.8 68.3 96.0 | 53.5 51.6 52.9
//   SSE2, 64->64 5x5 on 8x8,   batch 128: 36.4 31.3 36.3 | 34.3 34.1 54.1 | 20.2 20.4 22.7
// (one run each on a shared machine; 3->32's grad_weight varies between 4.7
// and 7.1 ms from run to run, see channels_suit_grad_weight for more shapes)
// (the forward of 3->32 on 32x32 keeps the width-vectorised kernel: only 7%
// of its taps read padding, see channels_suit). The grad_weight rule
// differs per ISA (channels_suit_grad_weight).
//
// Measured on AVX-512 (Zen 4), single thread, float32 and float64 over shapes
// from 1 to 256 channels, 7x7 to 224x224: the direct kernel beats im2col + GEMM
// for the forward and the stride-1 grad_input whenever output rows fill the
// SIMD vectors well (no im2col copy, no packing), loses when rows are short
// (OW = 7 or 8 with 16 float lanes: half-empty vectors) and on 1x1 kernels
// (GEMM reads x in place). Its grad_weight (dot products over slots) wins only
// for few input channels. With one input channel per group grad_input has one
// output channel per micro-tile (one FMA per load) and GEMM + col2im is faster.
//
// The channel-vectorised kernel (2 threads, interleaved runs, minima; ms for
// forward / grad_input / grad_weight, against the best of the other two):
//   batch 128, 32->64 5x5 on 16x16:        13.4 / 13.5 / 13.7  vs 15.9 / 16.2 / 21.4
//   batch 128, 64->64 5x5 on 8x8:           5.7 /  5.6 /  6.1  vs 12.5 / 12.2 / 13.4
//   batch 64, 128->128 3x3 on 8x8:          5.8 /  6.0 /  7.1  vs  8.5 /  8.0 / 11.7
//   batch 64, 256->256 3x3 on 4x4:          6.1 /  6.5 /  9.5  vs  9.6 /  9.6 / 16.1
//   batch 32, 64->64 3x3 on 16x16:          2.7 /  2.7 /  2.8  vs  2.9 /  2.9 /  3.7
//   batch 32, 64->128 3x3 stride 2, 32x32:  5.9 /    - /  6.2  vs  6.4 /    - /  7.4
//   float64, batch 128, 64->64 5x5 on 8x8: 14.7 / 15.1 / 13.3  vs 18.1 / 18.3 / 28.6
// Its forward loses on larger images, where few taps are padding and the
// width-vectorised kernel has full vectors (64->64 3x3 on 32x32: 14.8 vs 12.3;
// on 64x64, batch 8: 20.1 vs 11.1), for small batches (image blocks of few
// images: batch 16, 32->64 on 16x16: 2.9 vs 1.9) and with partly filled
// vectors (16->24: 3.5 vs 3.0; grad_input of 3 input channels: 3 of 16 lanes).
// Its grad_weight is the fastest for every shape measured with more than a few
// input channels, from batch 2 to 128 and 4x4 to 56x56 images (56x56: 39.9 vs
// 41.0 GEMM); with 3 input channels (3->32 on 32x32) the width-vectorised
// kernel stays ahead (4.3 vs 6.2).

// Few input channels per group: K = C/g*KH*KW is too short for GEMM to run well.
constexpr i64 kFewChannels = 4;
constexpr i64 kDirectGradWeightMaxChannels = 8;

// Fraction of SIMD lanes that n consecutive elements (an output row of width
// n, or n output channels) fill.
double lane_fill(i64 n, std::size_t elem_size) {
  const i64 lanes = elem_size == sizeof(float) ? Simd<float>::L : Simd<double>::L;
  return static_cast<double>(n) / static_cast<double>(ceil_div(n, lanes) * lanes);
}

bool direct_suits(const Conv2dParams& p, std::size_t elem_size) {
  return !is_pointwise(p) && lane_fill(p.ow(), elem_size) >= 0.75;
}

// Fraction of the kernel taps of all outputs that read real input pixels
// (not the padding), for stride 1: what the channel-vectorised kernel computes.
double valid_tap_fraction(const Conv2dParams& p) {
  auto axis = [](i64 out, i64 s, i64 pad, i64 d, i64 k, i64 size) {
    i64 valid = 0;
    for (i64 o = 0; o < out; ++o) {
      i64 lo, hi;
      taps_of_output(o, s, pad, d, k, size, lo, hi);
      valid += hi - lo;
    }
    return static_cast<double>(valid) / static_cast<double>(out * k);
  };
  return axis(p.oh(), p.sh, p.ph, p.dh, p.kh, p.h) * axis(p.ow(), p.sw, p.pw, p.dw, p.kw, p.w);
}

// The channel-vectorised kernel for the forward (in = C/g, out = F/g) and the
// stride-1 grad_input (in = F/g, out = C/g): several input channels, output
// channels that fill the vectors, a batch for its image blocks, and small
// images (or at least 10% of the taps in the padding).
constexpr i64 kChannelsMinBatch = 32;
constexpr i64 kChannelsMaxPixels = 256;
constexpr double kChannelsMaxValidTaps = 0.9;
constexpr double kChannelsMinFill = 0.9;

bool channels_suit(const Conv2dParams& p, i64 in, i64 out, std::size_t elem_size) {
  return in > kFewChannels && p.n >= kChannelsMinBatch &&
         lane_fill(out, elem_size) >= kChannelsMinFill &&
         (p.oh() * p.ow() <= kChannelsMaxPixels || valid_tap_fraction(p) <= kChannelsMaxValidTaps);
}

// Its grad_weight wins for every measured shape with more than a few input
// channels (not 1x1: GEMM reads x in place) and output channels that fill at
// least half of the vectors.
//
// With 16 vector registers (AVX2, SSE2) it wins with 3 input channels too. On
// AVX2 it loses to GEMM when one image's input (C/g x H x W) is large: AVX2,
// Zen 3, 2 threads, ms for GEMM / width-vectorised / channel-vectorised
// (input image in KiB):
//   128, 3->32 5x5 on 32x32 (12):       6.3 /  7.7 /  4.7
//   128, 16->32 5x5 on 16x16 (16):      7.5 / 10.9 /  4.9
//   128, 64->64 5x5 on 8x8 (16):       13.8 / 30.4 /  8.5
//   64, 256->256 3x3 on 4x4 (16):      11.6 / 73.7 / 11.1
//   128, 32->64 5x5 on 16x16 (32):     23.6 / 44.2 / 23.2
//   64, 128->128 3x3 on 8x8 (32):       8.7 / 23.0 /  8.4
//   32, 64->64 3x3 on 16x16 (64):       5.3 /  8.3 /  4.8
//   32, 32->32 3x3 on 32x32 (128):      5.4 /  7.6 /  4.3
//   16, 64->64 3x3 on 32x32 (256):      8.4 / 15.2 / 11.2
// With SSE2 (4 lanes) it wins on all of these (e.g. 10.5 vs 17.0 for 3->32,
// 52.9 vs 66.8 for 32->64, 26.1 vs 30.0 for the last), so there only the
// channel count matters.
constexpr std::size_t kGwMaxImageBytes = std::size_t{256} << 10;

bool channels_suit_grad_weight(const Conv2dParams& p, std::size_t elem_size) {
  const i64 cg = p.c / p.groups;
  if (is_pointwise(p) || lane_fill(p.f / p.groups, elem_size) < 0.5) return false;
  if (kManyRegs) return cg > kFewChannels;  // AVX-512 (NEON: assumed alike, not measured)
  const std::size_t image_bytes = static_cast<std::size_t>(cg * p.h * p.w) * elem_size;
  return cg >= 3 && (kVectorBytes < 32 || image_bytes < kGwMaxImageBytes);
}

// Whether a[0..n) holds no Inf or NaN.
template <typename T>
bool all_finite(const T* a, i64 n) {
  T acc = 0;  // a - a is 0 for finite a, NaN for Inf and NaN
#pragma omp simd reduction(+ : acc)
  for (i64 i = 0; i < n; ++i) acc += a[i] - a[i];
  return acc == 0;
}

// The channel-vectorised kernels skip the taps that read padding, but
// 0 * Inf is NaN: the other algorithms (and PyTorch) multiply the padding and
// get NaN there. When `operand`, the array the padding is multiplied with,
// holds an Inf or NaN, the automatic choice falls back to GEMM. (For
// grad_weight, where that operand is the large gy, conv2d_grad_weight checks
// the result instead.)
template <typename T>
ConvAlgo keep_nan_through_padding(ConvAlgo algo, const Conv2dParams& p, bool padded, const T* operand,
                                  i64 count) {
  const bool skips = algo == ConvAlgo::kDirectChannels && p.algo == ConvAlgo::kAuto && padded;
  return skips && !all_finite(operand, count) ? ConvAlgo::kGemm : algo;
}

// Whether gy holds an Inf or NaN at an output whose window reads padding only:
// its products, all with padding, are the only ones of gy that the
// channel-vectorised grad_weight can skip without a trace in gw. (None in
// the usual geometries, padding <= (kernel - 1) * dilation.)
template <typename T>
bool nonfinite_in_padding_windows(const Conv2dParams& p, const T* gy) {
  const i64 oh = p.oh(), ow = p.ow();
  Array<unsigned char> row_out(static_cast<std::size_t>(oh)), col_out(static_cast<std::size_t>(ow));
  bool any = false;
  i64 lo, hi;
  for (i64 o = 0; o < oh; ++o) {
    taps_of_output(o, p.sh, p.ph, p.dh, p.kh, p.h, lo, hi);
    any |= (row_out[static_cast<std::size_t>(o)] = lo >= hi);
  }
  for (i64 o = 0; o < ow; ++o) {
    taps_of_output(o, p.sw, p.pw, p.dw, p.kw, p.w, lo, hi);
    any |= (col_out[static_cast<std::size_t>(o)] = lo >= hi);
  }
  if (!any) return false;
  for (i64 plane = 0; plane < p.n * p.f; ++plane)
    for (i64 i = 0; i < oh; ++i)
      for (i64 j = 0; j < ow; ++j) {
        const T v = gy[(plane * oh + i) * ow + j];
        if ((row_out[static_cast<std::size_t>(i)] || col_out[static_cast<std::size_t>(j)]) && v - v != 0) return true;
      }
  return false;
}

DGeom forward_geom(const Conv2dParams& p) {
  return DGeom{p.n,  p.groups, p.c / p.groups, p.h,  p.w,  p.f / p.groups, p.kh, p.kw,
               p.sh, p.sw,     p.ph,           p.pw, p.dh, p.dw,           p.oh(), p.ow()};
}

}  // namespace

ConvAlgo conv2d_forward_algo(const Conv2dParams& p, std::size_t elem_size) {
  if (p.algo != ConvAlgo::kAuto) return p.algo;
  if (channels_suit(p, p.c / p.groups, p.f / p.groups, elem_size)) return ConvAlgo::kDirectChannels;
  const i64 cg = p.c / p.groups;
  return cg <= kFewChannels || direct_suits(p, elem_size) ? ConvAlgo::kDirect : ConvAlgo::kGemm;
}

ConvAlgo conv2d_grad_input_algo(const Conv2dParams& p, std::size_t elem_size) {
  if (p.sh != 1 || p.sw != 1) return ConvAlgo::kGemm;  // the direct kernels need stride 1
  if (p.algo != ConvAlgo::kAuto) return p.algo;
  if (channels_suit(p, p.f / p.groups, p.c / p.groups, elem_size)) return ConvAlgo::kDirectChannels;
  const i64 cg = p.c / p.groups;
  return cg >= 2 && (cg <= kFewChannels || direct_suits(p, elem_size)) ? ConvAlgo::kDirect
                                                                        : ConvAlgo::kGemm;
}

ConvAlgo conv2d_grad_weight_algo(const Conv2dParams& p, std::size_t elem_size) {
  if (p.algo != ConvAlgo::kAuto) return p.algo;
  if (channels_suit_grad_weight(p, elem_size)) return ConvAlgo::kDirectChannels;
  const i64 cg = p.c / p.groups;
  return cg <= kFewChannels || (cg <= kDirectGradWeightMaxChannels && direct_suits(p, elem_size))
             ? ConvAlgo::kDirect
             : ConvAlgo::kGemm;
}

template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  const i64 np = p.oh() * p.ow();
  if (p.n <= 0 || p.f <= 0 || np <= 0) return;
  if (p.c <= 0) {  // empty sum: y is the bias (or zero)
    for (i64 n = 0; n < p.n; ++n)
      for (i64 f = 0; f < p.f; ++f)
        std::fill(y + (n * p.f + f) * np, y + (n * p.f + f + 1) * np, bias ? bias[f] : T(0));
    return;
  }
  // Qualified: the argument type would also find tgc::conv2d_forward_algo (ADL).
  const ConvAlgo algo = keep_nan_through_padding(TGC_ISA::conv2d_forward_algo(p, sizeof(T)), p,
                                                 p.ph > 0 || p.pw > 0, w, p.f * (p.c / p.groups) * p.kh * p.kw);
  if (algo == ConvAlgo::kDirectChannels) {
    cv_conv<T>(forward_geom(p), x, w, bias, y);
  } else if (algo == ConvAlgo::kDirect) {
    direct_conv<T>(forward_geom(p), x, w, bias, y);
  } else {
    gemm_forward<T>(forward_geom(p), is_pointwise(p), x, w, bias, y);
  }
}

template <typename T>
void conv2d_grad_input(const Conv2dParams& p, const T* gy, const T* w, T* gx) {
  if (p.n <= 0 || p.c <= 0 || p.h * p.w <= 0) return;
  if (p.f <= 0) {
    std::fill(gx, gx + p.n * p.c * p.h * p.w, T(0));
    return;
  }
  // Direct algorithms: the transposed convolution with stride 1 is a forward
  // convolution of gy with the kernel flipped in space, channels swapped,
  // padding d(k-1) - p.
  // Qualified: the argument type would also find tgc::conv2d_grad_input_algo (ADL).
  const ConvAlgo algo = keep_nan_through_padding(TGC_ISA::conv2d_grad_input_algo(p, sizeof(T)), p, true, w,
                                                 p.f * (p.c / p.groups) * p.kh * p.kw);
  if (algo == ConvAlgo::kDirectChannels) {
    cv_conv<T>(transposed_geom(p), gy, flipped_weights(p, w), nullptr, gx);
  } else if (algo == ConvAlgo::kDirect) {
    direct_conv<T>(transposed_geom(p), gy, flipped_weights(p, w), nullptr, gx);
  } else {
    gemm_grad_input<T>(p, forward_geom(p), gy, w, gx);
  }
}

template <typename T>
void conv2d_grad_weight(const Conv2dParams& p, const T* gy, const T* x, T* gw) {
  const i64 total = p.f * (p.c / p.groups) * p.kh * p.kw;
  if (total <= 0) return;
  if (p.n <= 0 || p.oh() * p.ow() <= 0) {
    std::fill(gw, gw + total, T(0));
    return;
  }
  // Qualified: the argument type would also find tgc::conv2d_grad_weight_algo (ADL).
  const ConvAlgo algo = TGC_ISA::conv2d_grad_weight_algo(p, sizeof(T));
  if (algo == ConvAlgo::kDirectChannels) {
    cv_grad_weight<T>(forward_geom(p), x, gy, gw);
    // An Inf or NaN of gy times padding must give NaN (keep_nan_through_padding):
    // such a gy leaves a non-finite gw unless its window reads padding only.
    const bool padded = p.ph > 0 || p.pw > 0;
    if (p.algo == ConvAlgo::kAuto && padded && (!all_finite(gw, total) || nonfinite_in_padding_windows(p, gy)))
      gemm_grad_weight<T>(p, forward_geom(p), gy, x, gw);
  } else if (algo == ConvAlgo::kDirect) {
    direct_grad_weight<T>(forward_geom(p), x, gy, gw);
  } else {
    gemm_grad_weight<T>(p, forward_geom(p), gy, x, gw);
  }
}

template void conv2d_forward<float>(const Conv2dParams&, const float*, const float*, const float*,
                                    float*);
template void conv2d_forward<double>(const Conv2dParams&, const double*, const double*,
                                     const double*, double*);
template void conv2d_grad_input<float>(const Conv2dParams&, const float*, const float*, float*);
template void conv2d_grad_input<double>(const Conv2dParams&, const double*, const double*,
                                        double*);
template void conv2d_grad_weight<float>(const Conv2dParams&, const float*, const float*, float*);
template void conv2d_grad_weight<double>(const Conv2dParams&, const double*, const double*,
                                         double*);

}  // namespace TGC_ISA
}  // namespace tgc
