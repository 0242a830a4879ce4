// 2-D max/average pooling; see pool.h for the layout and the algorithm.
// Compiled once per instruction set, into namespace tgc::<isa> (see simd.h).

#include <algorithm>
#include <limits>

#include "isa_kernels.h"
#include "pool.h"
#include "workspace.h"

namespace tgc {
namespace TGC_ISA {

namespace {

// Below this many input + output elements the fork/join costs more than it saves.
constexpr std::int64_t kParallelElements = std::int64_t{1} << 15;

// `v` replaces the running maximum `m`: larger, or NaN while m is not (first NaN wins).
template <typename T>
inline bool beats(T v, T m) {
  return !(v <= m) && (m == m);
}

// Kernel 2x2, stride 2, no padding: branch-free, vectorised over the output columns.
template <typename T>
void max_pool2d_2x2(const T* x, T* y, std::int64_t* argmax, const Pool2dShape& s) {
  const std::int64_t planes = s.n * s.c, H = s.h, W = s.w, OH = s.oh, OW = s.ow;
  const bool parallel = planes * H * W >= kParallelElements;
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * H * W;
    for (std::int64_t i = 0; i < OH; ++i) {
      const T* r0 = xp + 2 * i * W;
      const T* r1 = r0 + W;
      T* yo = y + (p * OH + i) * OW;
      std::int64_t* ao = argmax + (p * OH + i) * OW;
      const std::int64_t base = 2 * i * W;
#pragma omp simd
      for (std::int64_t j = 0; j < OW; ++j) {
        const T a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
        T m = a;
        std::int64_t off = 0;
        bool u = beats(b, m);
        m = u ? b : m;
        off = u ? 1 : off;
        u = beats(c, m);
        m = u ? c : m;
        off = u ? W : off;
        u = beats(d, m);
        m = u ? d : m;
        off = u ? W + 1 : off;
        yo[j] = m;
        ao[j] = base + 2 * j + off;
      }
    }
  }
}

// Polyphase layout used by the generic kernels. The (virtually) padded plane
// Xp (Hp x Wp, Hp = H + 2ph, Wp = W + 2pw) is split into sh * sw phases
//   X[a][b][u][v] = Xp[u * sh + a][v * sw + b]      (Hq x Wq each, Hq = ceil(Hp / sh))
// so that window element (dh, dw) of output (i, j) is
//   X[dh % sh][dw % sw][i + dh / sh][j + dw / sw]:
// on the flat grid q = i * Wq + j each window offset reads one phase at a constant
// offset, i.e. a strided pool becomes sh * sw stride-1 passes with contiguous,
// vectorisable inner loops of length (OH - 1) * Wq + OW (the columns j >= OW are
// computed and thrown away). Without padding and with stride 1 the phase is the
// input plane itself and nothing is copied.
struct Phases {
  std::int64_t hq, wq;  // size of one phase
  std::int64_t len;     // flat grid length (OH - 1) * Wq + OW
  bool copy;            // false: stride 1 and no padding, the input plane is the phase
};

inline Phases phases_of(const Pool2dShape& s) {
  Phases f;
  f.hq = (s.h + 2 * s.ph + s.sh - 1) / s.sh;
  f.wq = (s.w + 2 * s.pw + s.sw - 1) / s.sw;
  f.len = (s.oh - 1) * f.wq + s.ow;
  f.copy = s.sh != 1 || s.sw != 1 || s.ph != 0 || s.pw != 0;
  return f;
}

// Elements of all sh * sw phases of one plane.
inline std::size_t phase_elems(const Pool2dShape& s, const Phases& f) {
  return static_cast<std::size_t>(s.sh * s.sw * f.hq * f.wq);
}

// Splits plane xp (H x W) into the phases X (pad where Xp is padding).
template <typename T>
void split_phases(const T* xp, T* X, const Pool2dShape& s, const Phases& f, T pad) {
  for (std::int64_t a = 0; a < s.sh; ++a) {
    for (std::int64_t b = 0; b < s.sw; ++b) {
      T* ph = X + (a * s.sw + b) * f.hq * f.wq;
      // columns v with w = v * sw + b - pw inside [0, W)
      const std::int64_t vlo = std::min(f.wq, std::max<std::int64_t>(0, (s.pw - b + s.sw - 1) / s.sw));
      const std::int64_t vhi = std::max(vlo, std::min(f.wq, (s.w + s.pw - b + s.sw - 1) / s.sw));
      for (std::int64_t u = 0; u < f.hq; ++u) {
        T* r = ph + u * f.wq;
        const std::int64_t h = u * s.sh + a - s.ph;
        if (h < 0 || h >= s.h) {
          std::fill(r, r + f.wq, pad);
          continue;
        }
        std::fill(r, r + vlo, pad);
        const T* xr = xp + h * s.w;
        const std::int64_t sw = s.sw, c0 = b - s.pw;  // x[h, v * sw + b - pw]
#pragma omp simd
        for (std::int64_t v = vlo; v < vhi; ++v) r[v] = xr[v * sw + c0];
        std::fill(r + vhi, r + f.wq, pad);
      }
    }
  }
}

// Adds the phases G back into the plane gp (H x W), dropping the padding.
template <typename T>
void merge_phases(const T* G, T* gp, const Pool2dShape& s, const Phases& f) {
  for (std::int64_t h = 0; h < s.h; ++h) {
    const std::int64_t hh = h + s.ph, a = hh % s.sh, u = hh / s.sh;
    for (std::int64_t b = 0; b < s.sw; ++b) {
      const T* r = G + ((a * s.sw + b) * f.hq + u) * f.wq;
      // w with (w + pw) % sw == b: w = v * sw + b - pw
      const std::int64_t vlo = std::max<std::int64_t>(0, (s.pw - b + s.sw - 1) / s.sw);
      const std::int64_t vhi = std::min(f.wq, (s.w + s.pw - b + s.sw - 1) / s.sw);
      T* out = gp + h * s.w;
      const std::int64_t sw = s.sw, c0 = b - s.pw;
#pragma omp simd
      for (std::int64_t v = vlo; v < vhi; ++v) out[v * sw + c0] = r[v];
    }
  }
}

// Pointer to phase (dh % sh, dw % sw) at the offset of window element (dh, dw).
template <typename T>
inline T* phase_at(T* X, const Pool2dShape& s, const Phases& f, std::int64_t dh, std::int64_t dw) {
  return X + ((dh % s.sh) * s.sw + dw % s.sw) * f.hq * f.wq + (dh / s.sh) * f.wq + dw / s.sw;
}

// Number of window rows (columns) of output row i (column j) inside the image.
inline std::int64_t rows_inside(const Pool2dShape& s, std::int64_t i) {
  const std::int64_t hs = i * s.sh - s.ph;
  return std::min(hs + s.kh, s.h) - std::max<std::int64_t>(hs, 0);
}
inline std::int64_t cols_inside(const Pool2dShape& s, std::int64_t j) {
  const std::int64_t ws = j * s.sw - s.pw;
  return std::min(ws + s.kw, s.w) - std::max<std::int64_t>(ws, 0);
}

template <typename T>
inline T avg_divisor(const Pool2dShape& s, bool count_include_pad, std::int64_t i,
                     std::int64_t j) {
  return count_include_pad ? static_cast<T>(s.kh * s.kw)
                           : static_cast<T>(std::max<std::int64_t>(
                                 rows_inside(s, i) * cols_inside(s, j), 1));
}

// IT: type of the in-window offsets dh * W + dw kept per output (int32 unless too large).
template <typename IT, typename T>
void max_pool2d_generic(const T* x, T* y, std::int64_t* argmax, const Pool2dShape& s) {
  const std::int64_t planes = s.n * s.c, H = s.h, W = s.w, OH = s.oh, OW = s.ow;
  const Phases f = phases_of(s);
  const std::int64_t len = f.len;
  const T ninf = -std::numeric_limits<T>::infinity();
  const bool padded = s.ph > 0 || s.pw > 0;
  const int threads = planes * (H * W + OH * OW) >= kParallelElements ? max_threads() : 1;
  // per-thread workspaces, allocated here (workspace.h): phases, running max, offsets
  const PerThread<T> Xs(threads, f.copy ? phase_elems(s, f) : 0, workspace<T, 2>);
  const PerThread<T> Ms(threads, static_cast<std::size_t>(len), workspace<T, 3>);
  const PerThread<IT> Ks(threads, static_cast<std::size_t>(len), workspace<IT, 4>);
#pragma omp parallel num_threads(threads)
  {
    T* X = f.copy ? Xs.slice() : nullptr;
    T* M = Ms.slice();
    IT* K = Ks.slice();
#pragma omp for schedule(static)
    for (std::int64_t p = 0; p < planes; ++p) {
      const T* xp = x + p * H * W;
      T* yp = y + p * OH * OW;
      std::int64_t* ap = argmax + p * OH * OW;
      const T* src = xp;
      if (f.copy) {
        split_phases(xp, X, s, f, ninf);
        src = X;
      }
      // window elements in row-major order; the first initialises the running maximum
#pragma omp simd
      for (std::int64_t q = 0; q < len; ++q) {
        M[q] = src[q];
        K[q] = 0;
      }
      for (std::int64_t dh = 0; dh < s.kh; ++dh) {
        for (std::int64_t dw = (dh == 0 ? 1 : 0); dw < s.kw; ++dw) {
          const T* r = phase_at(src, s, f, dh, dw);
          const IT off = static_cast<IT>(dh * W + dw);
#pragma omp simd
          for (std::int64_t q = 0; q < len; ++q) {
            const T v = r[q];
            const bool u = beats(v, M[q]);
            M[q] = u ? v : M[q];
            K[q] = u ? off : K[q];
          }
        }
      }
      const std::int64_t sw = s.sw;
      for (std::int64_t i = 0; i < OH; ++i) {
        const T* m = M + i * f.wq;
        const IT* k = K + i * f.wq;
        T* yo = yp + i * OW;
        std::int64_t* ao = ap + i * OW;
        const std::int64_t corner = (i * s.sh - s.ph) * W - s.pw;  // window (i, 0), maybe padding
#pragma omp simd
        for (std::int64_t j = 0; j < OW; ++j) {
          yo[j] = m[j];
          ao[j] = corner + j * sw + static_cast<std::int64_t>(k[j]);
        }
        // A maximum of -inf may have been found in the padding (which comes first in
        // the window): point it at the window's first element inside the image, as if
        // the padding were skipped.
        if (padded) {
          const std::int64_t h0 = std::max<std::int64_t>(i * s.sh - s.ph, 0);
#pragma omp simd
          for (std::int64_t j = 0; j < OW; ++j) {
            const std::int64_t w0 = std::max<std::int64_t>(j * sw - s.pw, 0);
            ao[j] = yo[j] == ninf ? h0 * W + w0 : ao[j];
          }
        }
      }
    }
  }
}

template <typename T>
void avg_pool2d_forward_impl(const T* x, T* y, const Pool2dShape& s, bool count_include_pad) {
  const std::int64_t planes = s.n * s.c, H = s.h, W = s.w, OH = s.oh, OW = s.ow;
  const Phases f = phases_of(s);
  const std::int64_t len = f.len;
  const int threads = planes * (H * W + OH * OW) >= kParallelElements ? max_threads() : 1;
  const PerThread<T> Xs(threads, f.copy ? phase_elems(s, f) : 0, workspace<T, 2>);
  const PerThread<T> As(threads, static_cast<std::size_t>(len), workspace<T, 3>);
#pragma omp parallel num_threads(threads)
  {
    T* X = f.copy ? Xs.slice() : nullptr;
    T* A = As.slice();
#pragma omp for schedule(static)
    for (std::int64_t p = 0; p < planes; ++p) {
      const T* xp = x + p * H * W;
      T* yp = y + p * OH * OW;
      const T* src = xp;
      if (f.copy) {
        split_phases(xp, X, s, f, T(0));
        src = X;
      }
      std::fill(A, A + len, T(0));
      for (std::int64_t dh = 0; dh < s.kh; ++dh) {
        for (std::int64_t dw = 0; dw < s.kw; ++dw) {
          const T* r = phase_at(src, s, f, dh, dw);
#pragma omp simd
          for (std::int64_t q = 0; q < len; ++q) A[q] += r[q];
        }
      }
      for (std::int64_t i = 0; i < OH; ++i) {
        const T* a = A + i * f.wq;
        T* yo = yp + i * OW;
        if (count_include_pad) {
          const T div = static_cast<T>(s.kh * s.kw);
#pragma omp simd
          for (std::int64_t j = 0; j < OW; ++j) yo[j] = a[j] / div;
        } else {
          for (std::int64_t j = 0; j < OW; ++j) yo[j] = a[j] / avg_divisor<T>(s, false, i, j);
        }
      }
    }
  }
}

template <typename T>
void avg_pool2d_backward_impl(const T* gy, T* gx, const Pool2dShape& s, bool count_include_pad) {
  const std::int64_t planes = s.n * s.c, H = s.h, W = s.w, OH = s.oh, OW = s.ow;
  const Phases f = phases_of(s);
  const std::int64_t len = f.len;
  const int threads = planes * (H * W + OH * OW) >= kParallelElements ? max_threads() : 1;
  const PerThread<T> Xs(threads, f.copy ? phase_elems(s, f) : 0, workspace<T, 2>);
  const PerThread<T> Gs(threads, static_cast<std::size_t>(len), workspace<T, 3>);  // gy / divisor
#pragma omp parallel num_threads(threads)
  {
    T* X = f.copy ? Xs.slice() : nullptr;
    T* G = Gs.slice();
#pragma omp for schedule(static)
    for (std::int64_t p = 0; p < planes; ++p) {
      T* gp = gx + p * H * W;
      const T* gyp = gy + p * OH * OW;
      T* dst = f.copy ? X : gp;
      std::fill(dst, dst + (f.copy ? static_cast<std::int64_t>(phase_elems(s, f)) : H * W), T(0));
      for (std::int64_t i = 0; i < OH; ++i) {
        T* g = G + i * f.wq;
        const T* gyo = gyp + i * OW;
        if (count_include_pad) {
          const T div = static_cast<T>(s.kh * s.kw);
#pragma omp simd
          for (std::int64_t j = 0; j < OW; ++j) g[j] = gyo[j] / div;
        } else {
          for (std::int64_t j = 0; j < OW; ++j) g[j] = gyo[j] / avg_divisor<T>(s, false, i, j);
        }
        if (i + 1 < OH) std::fill(g + OW, g + f.wq, T(0));  // thrown-away columns add nothing
      }
      // within one pass every q adds to a different element
      for (std::int64_t dh = 0; dh < s.kh; ++dh) {
        for (std::int64_t dw = 0; dw < s.kw; ++dw) {
          T* r = phase_at(dst, s, f, dh, dw);
#pragma omp simd
          for (std::int64_t q = 0; q < len; ++q) r[q] += G[q];
        }
      }
      if (f.copy) merge_phases(X, gp, s, f);
    }
  }
}

}  // namespace

template <typename T>
void max_pool2d_forward(const T* x, T* y, std::int64_t* argmax, const Pool2dShape& s) {
  if (s.n * s.c <= 0 || s.oh <= 0 || s.ow <= 0) return;
  if (s.kh == 2 && s.kw == 2 && s.sh == 2 && s.sw == 2 && s.ph == 0 && s.pw == 0) {
    max_pool2d_2x2(x, y, argmax, s);
  } else if (s.kh * s.w + s.kw < (std::int64_t{1} << 31)) {
    max_pool2d_generic<std::int32_t>(x, y, argmax, s);
  } else {
    max_pool2d_generic<std::int64_t>(x, y, argmax, s);
  }
}

template <typename T>
std::int64_t max_pool2d_backward(const T* gy, const std::int64_t* argmax, T* gx,
                                 const Pool2dShape& s) {
  const std::int64_t planes = s.n * s.c, HW = s.h * s.w, OHW = s.oh * s.ow;
  if (planes <= 0 || HW <= 0) return -1;
  std::int64_t bad = std::numeric_limits<std::int64_t>::max();
  const bool parallel = planes * (HW + OHW) >= kParallelElements;
#pragma omp parallel for schedule(static) if (parallel) reduction(min : bad)
  for (std::int64_t p = 0; p < planes; ++p) {
    T* gp = gx + p * HW;
    const T* gyp = gy + p * OHW;
    const std::int64_t* ap = argmax + p * OHW;
    std::fill(gp, gp + HW, T(0));
    for (std::int64_t q = 0; q < OHW; ++q) {
      const std::int64_t k = ap[q];
      if (static_cast<std::uint64_t>(k) < static_cast<std::uint64_t>(HW)) {
        gp[k] += gyp[q];
      } else {
        bad = std::min(bad, p * OHW + q);
      }
    }
  }
  return bad == std::numeric_limits<std::int64_t>::max() ? -1 : bad;
}

template <typename T>
void avg_pool2d_forward(const T* x, T* y, const Pool2dShape& s, bool count_include_pad) {
  if (s.n * s.c <= 0 || s.oh <= 0 || s.ow <= 0) return;
  avg_pool2d_forward_impl(x, y, s, count_include_pad);
}

template <typename T>
void avg_pool2d_backward(const T* gy, T* gx, const Pool2dShape& s, bool count_include_pad) {
  if (s.n * s.c <= 0 || s.h * s.w <= 0) return;
  avg_pool2d_backward_impl(gy, gx, s, count_include_pad);
}

template void max_pool2d_forward<float>(const float*, float*, std::int64_t*, const Pool2dShape&);
template void max_pool2d_forward<double>(const double*, double*, std::int64_t*,
                                         const Pool2dShape&);
template std::int64_t max_pool2d_backward<float>(const float*, const std::int64_t*, float*,
                                                 const Pool2dShape&);
template std::int64_t max_pool2d_backward<double>(const double*, const std::int64_t*, double*,
                                                  const Pool2dShape&);
template void avg_pool2d_forward<float>(const float*, float*, const Pool2dShape&, bool);
template void avg_pool2d_forward<double>(const double*, double*, const Pool2dShape&, bool);
template void avg_pool2d_backward<float>(const float*, float*, const Pool2dShape&, bool);
template void avg_pool2d_backward<double>(const double*, double*, const Pool2dShape&, bool);

}  // namespace TGC_ISA
}  // namespace tgc
