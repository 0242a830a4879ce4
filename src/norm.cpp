// Batch norm and layer norm; see norm.h for the layout and the algorithms.
// Compiled once per instruction set, into namespace tgc::<isa> (see simd.h).

#include <algorithm>
#include <cmath>
#include <limits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "isa_kernels.h"
#include "norm.h"
#include "workspace.h"

namespace tgc {
namespace TGC_ISA {

namespace {

// Below this many elements the fork/join costs more than it saves.
constexpr std::int64_t kParallelElements = std::int64_t{1} << 15;
// Runs longer than this are summed in pieces: each piece in T (SIMD lanes), the pieces in double.
constexpr std::int64_t kBlock = 1024;

inline int team_size() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// v clamped at 0 from below (rounding can make E[x^2] - E[x]^2 slightly
// negative), NaN kept: an Inf or NaN input must give NaN statistics, as in
// PyTorch, and std::max(0.0, NaN) would be 0.
inline double nonnegative(double v) { return v < 0 ? 0.0 : v; }

// Threads worth using for `elements` elements of work split into `units` independent pieces.
inline int threads_for(std::int64_t elements, std::int64_t units) {
  if (elements < kParallelElements) return 1;
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(max_threads(), units)));
}

// Two sums over [0, len) of f(i) -> (u, v): s1 += sum(u), s2 += sum(v). Pieces of
// at most kBlock values are summed in T into kLanes independent accumulators
// (4 SIMD registers: a single accumulator would make the loop wait on the adder's
// latency instead of memory), the pieces in double.
template <typename T>
constexpr std::int64_t kLanes = 256 / sizeof(T);

template <typename T, typename F>
inline void two_sums(std::int64_t len, F f, double& s1, double& s2) {
  constexpr std::int64_t L = kLanes<T>;
  for (std::int64_t b = 0; b < len; b += kBlock) {
    const std::int64_t e = std::min(len, b + kBlock);
    T a1[L] = {}, a2[L] = {};
    std::int64_t i = b;
    for (; i + L <= e; i += L) {
#pragma omp simd
      for (std::int64_t l = 0; l < L; ++l) {
        T u, v;
        f(i + l, u, v);
        a1[l] += u;
        a2[l] += v;
      }
    }
    T t1 = 0, t2 = 0;
    for (; i < e; ++i) {
      T u, v;
      f(i, u, v);
      t1 += u;
      t2 += v;
    }
#pragma omp simd reduction(+ : t1, t2)
    for (std::int64_t l = 0; l < L; ++l) {
      t1 += a1[l];
      t2 += a2[l];
    }
    s1 += t1;
    s2 += t2;
  }
}

// s1 += sum(p - k), s2 += sum((p - k)^2) over p[0, len).
template <typename T>
inline void shifted_sums(const T* p, std::int64_t len, T k, double& s1, double& s2) {
  two_sums<T>(len, [p, k](std::int64_t i, T& u, T& v) {
    u = p[i] - k;
    v = u * u;
  }, s1, s2);
}

// s1 += sum(gy), s2 += sum(gy * (x - mean)) over [0, len).
template <typename T>
inline void grad_sums(const T* gy, const T* x, std::int64_t len, T mean, double& s1, double& s2) {
  two_sums<T>(len, [gy, x, mean](std::int64_t i, T& u, T& v) {
    u = gy[i];
    v = gy[i] * (x[i] - mean);
  }, s1, s2);
}

// Per-channel totals of two sums over an (N, C, S) array, split over threads as
// norm.h describes. `run(n, c, s1, s2)` adds the sums of the run (n, c, :) (S > 1);
// `cols(n, c0, c1, acc1, acc2)` adds element (n, c) to acc1[c], acc2[c] for c in
// [c0, c1) (S == 1). Writes the totals to out1[c], out2[c].
template <typename Run, typename Cols>
void channel_reduce(std::int64_t n, std::int64_t c, std::int64_t s, Run run, Cols cols,
                    double* out1, double* out2) {
  const std::int64_t rows = n * c;
  const int nt = threads_for(rows * s, s == 1 ? n : rows);
  double* ws = workspace<double>(static_cast<std::size_t>(2 * c * nt));
  int used = 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = thread_num(), team = team_size();
    if (t == 0) used = team;
    double* a1 = ws + 2 * c * t;
    double* a2 = a1 + c;
    std::fill(a1, a1 + 2 * c, 0.0);
    const std::int64_t r0 = rows * t / team, r1 = rows * (t + 1) / team;
    if (s == 1) {
      for (std::int64_t r = r0; r < r1;) {
        const std::int64_t i = r / c, c0 = r % c, c1 = std::min(c, c0 + (r1 - r));
        cols(i, c0, c1, a1, a2);
        r += c1 - c0;
      }
    } else {
      for (std::int64_t r = r0; r < r1; ++r) run(r / c, r % c, a1[r % c], a2[r % c]);
    }
  }
  for (std::int64_t j = 0; j < c; ++j) {
    double t1 = 0, t2 = 0;
    for (int t = 0; t < used; ++t) {
      t1 += ws[2 * c * t + j];
      t2 += ws[2 * c * t + c + j];
    }
    out1[j] = t1;
    out2[j] = t2;
  }
}

// out[n, c, s] = a[c] * u[n, c, s] + b[c] * (v[n, c, s] - m[c]) + d[c], where the
// u term is present when HasU and the v term when HasV.
template <bool HasU, bool HasV, typename T>
void channel_affine(const T* u, const T* v, const T* m, const double* a, const double* b,
                    const double* d, std::int64_t n, std::int64_t c, std::int64_t s, T* out) {
  const std::int64_t rows = n * c;
  if (s == 1) {
    const int nt = threads_for(rows, n);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (std::int64_t i = 0; i < n; ++i) {
      const T* ui = HasU ? u + i * c : nullptr;
      const T* vi = HasV ? v + i * c : nullptr;
      T* oi = out + i * c;
#pragma omp simd
      for (std::int64_t j = 0; j < c; ++j) {
        T o = T(d[j]);
        if constexpr (HasU) o += T(a[j]) * ui[j];
        if constexpr (HasV) o += T(b[j]) * (vi[j] - m[j]);
        oi[j] = o;
      }
    }
    return;
  }
  const int nt = threads_for(rows * s, rows);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t j = r % c;
    const T aj = HasU ? T(a[j]) : T(0), bj = HasV ? T(b[j]) : T(0), mj = HasV ? m[j] : T(0);
    const T dj = T(d[j]);
    const T* ur = HasU ? u + r * s : nullptr;
    const T* vr = HasV ? v + r * s : nullptr;
    T* orow = out + r * s;
#pragma omp simd
    for (std::int64_t k = 0; k < s; ++k) {
      T o = dj;
      if constexpr (HasU) o += aj * ur[k];
      if constexpr (HasV) o += bj * (vr[k] - mj);
      orow[k] = o;
    }
  }
}

}  // namespace

template <typename T>
void batch_norm_stats(const T* x, std::int64_t n, std::int64_t c, std::int64_t s, T* mean,
                      T* var) {
  if (c <= 0) return;
  const std::int64_t m = n * s;
  if (m <= 0) {
    std::fill(mean, mean + c, std::numeric_limits<T>::quiet_NaN());
    std::fill(var, var + c, std::numeric_limits<T>::quiet_NaN());
    return;
  }
  // k: shift (the channel's first value x[0, c, 0]); s1, s2: the shifted sums
  double* k = workspace<double, 1>(static_cast<std::size_t>(3 * c));
  double* s1 = k + c;
  double* s2 = s1 + c;
  for (std::int64_t j = 0; j < c; ++j) k[j] = static_cast<double>(x[j * s]);
  channel_reduce(
      n, c, s,
      [&](std::int64_t i, std::int64_t j, double& a1, double& a2) {
        shifted_sums(x + (i * c + j) * s, s, static_cast<T>(k[j]), a1, a2);
      },
      [&](std::int64_t i, std::int64_t c0, std::int64_t c1, double* a1, double* a2) {
        const T* xi = x + i * c;
#pragma omp simd
        for (std::int64_t j = c0; j < c1; ++j) {
          const T d = xi[j] - static_cast<T>(k[j]);
          a1[j] += d;
          a2[j] += static_cast<double>(d) * d;
        }
      },
      s1, s2);
  for (std::int64_t j = 0; j < c; ++j) {
    const double mu = s1[j] / m;
    mean[j] = static_cast<T>(k[j] + mu);
    var[j] = static_cast<T>(nonnegative(s2[j] / m - mu * mu));
  }
}

template <typename T>
void batch_norm_apply(const T* x, std::int64_t n, std::int64_t c, std::int64_t s, const T* mean,
                      const T* var, const T* gamma, const T* beta, double eps, T* y) {
  if (c <= 0 || n * s <= 0) return;
  double* b = workspace<double, 1>(static_cast<std::size_t>(2 * c));  // scale
  double* d = b + c;                                                     // shift
  for (std::int64_t j = 0; j < c; ++j) {
    b[j] = (gamma ? static_cast<double>(gamma[j]) : 1.0) /
           std::sqrt(static_cast<double>(var[j]) + eps);
    d[j] = beta ? static_cast<double>(beta[j]) : 0.0;
  }
  channel_affine<false, true, T>(nullptr, x, mean, nullptr, b, d, n, c, s, y);
}

template <typename T>
void batch_norm_train(const T* x, std::int64_t n, std::int64_t c, std::int64_t s, const T* gamma,
                      const T* beta, double eps, T* y, T* mean, T* var) {
  batch_norm_stats(x, n, c, s, mean, var);
  batch_norm_apply(x, n, c, s, mean, var, gamma, beta, eps, y);
}

template <typename T>
void batch_norm_backward(const T* gy, const T* x, std::int64_t n, std::int64_t c, std::int64_t s,
                         const T* mean, const T* invstd, const T* gamma, bool training, T* gx,
                         T* ggamma, T* gbeta) {
  if (c <= 0) return;
  double* s1 = workspace<double, 1>(static_cast<std::size_t>(5 * c));
  double* s2 = s1 + c;
  channel_reduce(
      n, c, s,
      [&](std::int64_t i, std::int64_t j, double& a1, double& a2) {
        const std::int64_t off = (i * c + j) * s;
        grad_sums(gy + off, x + off, s, mean[j], a1, a2);
      },
      [&](std::int64_t i, std::int64_t c0, std::int64_t c1, double* a1, double* a2) {
        const T* gi = gy + i * c;
        const T* xi = x + i * c;
#pragma omp simd
        for (std::int64_t j = c0; j < c1; ++j) {
          a1[j] += gi[j];
          a2[j] += static_cast<double>(gi[j] * (xi[j] - mean[j]));
        }
      },
      s1, s2);
  const double m = static_cast<double>(n * s);
  double* a = s2 + c;
  double* b = a + c;
  double* d = b + c;
  for (std::int64_t j = 0; j < c; ++j) {
    const double is = invstd[j];
    const double g = gamma ? static_cast<double>(gamma[j]) : 1.0;
    gbeta[j] = static_cast<T>(s1[j]);
    ggamma[j] = static_cast<T>(is * s2[j]);
    a[j] = g * is;
    b[j] = training ? -g * is * is * is * s2[j] / m : 0.0;
    d[j] = training ? -g * is * s1[j] / m : 0.0;
  }
  if (n * s <= 0) return;
  if (training) {
    channel_affine<true, true, T>(gy, x, mean, a, b, d, n, c, s, gx);
  } else {
    channel_affine<true, false, T>(gy, nullptr, nullptr, a, nullptr, d, n, c, s, gx);
  }
}

template <typename T>
void layer_norm_forward(const T* x, std::int64_t rows, std::int64_t m, const T* gamma,
                        const T* beta, double eps, T* y, T* mean, T* invstd) {
  if (rows <= 0) return;
  if (m <= 0) {
    std::fill(mean, mean + rows, std::numeric_limits<T>::quiet_NaN());
    std::fill(invstd, invstd + rows, std::numeric_limits<T>::quiet_NaN());
    return;
  }
  const int nt = threads_for(rows * m, rows);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * m;
    T* yr = y + r * m;
    double s1 = 0, unused = 0;
    shifted_sums(xr, m, T(0), s1, unused);
    const T mu = static_cast<T>(s1 / m);
    double c1 = 0, c2 = 0;
    shifted_sums(xr, m, mu, c1, c2);  // c2 = sum((x - mu)^2); c1 ~ 0 corrects for mu's rounding
    const double var = nonnegative(c2 / m - (c1 / m) * (c1 / m));
    const T is = static_cast<T>(1.0 / std::sqrt(var + eps));
    mean[r] = mu;
    invstd[r] = is;
    if (gamma && beta) {
#pragma omp simd
      for (std::int64_t j = 0; j < m; ++j) yr[j] = (xr[j] - mu) * is * gamma[j] + beta[j];
    } else if (gamma) {
#pragma omp simd
      for (std::int64_t j = 0; j < m; ++j) yr[j] = (xr[j] - mu) * is * gamma[j];
    } else if (beta) {
#pragma omp simd
      for (std::int64_t j = 0; j < m; ++j) yr[j] = (xr[j] - mu) * is + beta[j];
    } else {
#pragma omp simd
      for (std::int64_t j = 0; j < m; ++j) yr[j] = (xr[j] - mu) * is;
    }
  }
}

template <typename T>
void layer_norm_backward(const T* gy, const T* x, std::int64_t rows, std::int64_t m,
                         const T* mean, const T* invstd, const T* gamma, T* gx, T* ggamma,
                         T* gbeta) {
  if (m <= 0) return;
  const int nt = threads_for(rows * m, rows);
  double* ws = workspace<double>(static_cast<std::size_t>(2 * m * nt));
  int used = 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = thread_num();
    if (t == 0) used = team_size();
    double* acc_g = ws + 2 * m * t;
    double* acc_b = acc_g + m;
    std::fill(acc_g, acc_g + 2 * m, 0.0);
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      const T* g = gy + r * m;
      const T* xr = x + r * m;
      T* out = gx + r * m;
      const T mu = mean[r], is = invstd[r];
      double sa = 0, sb = 0;  // sum(g*gamma), sum(g*gamma*xhat)
      for (std::int64_t b = 0; b < m; b += kBlock) {
        const std::int64_t e = std::min(m, b + kBlock);
        T a1 = 0, a2 = 0;
#pragma omp simd reduction(+ : a1, a2)
        for (std::int64_t j = b; j < e; ++j) {
          const T xh = (xr[j] - mu) * is;
          const T gh = gamma ? g[j] * gamma[j] : g[j];
          a1 += gh;
          a2 += gh * xh;
          acc_b[j] += g[j];
          acc_g[j] += static_cast<double>(g[j] * xh);
        }
        sa += a1;
        sb += a2;
      }
      // (invstd / M) * (M * g - sum(g) - xhat * sum(g * xhat)), as the reference writes it
      // (so that, e.g., M = 1 gives exactly 0)
      const T A = static_cast<T>(sa), B = static_cast<T>(sb), fm = static_cast<T>(m);
      const T scale = is / fm;
      if (gamma) {
#pragma omp simd
        for (std::int64_t j = 0; j < m; ++j)
          out[j] = scale * (fm * (g[j] * gamma[j]) - A - (xr[j] - mu) * is * B);
      } else {
#pragma omp simd
        for (std::int64_t j = 0; j < m; ++j) out[j] = scale * (fm * g[j] - A - (xr[j] - mu) * is * B);
      }
    }
  }
  for (std::int64_t j = 0; j < m; ++j) {
    double tg = 0, tb = 0;
    for (int t = 0; t < used; ++t) {
      tg += ws[2 * m * t + j];
      tb += ws[2 * m * t + m + j];
    }
    ggamma[j] = static_cast<T>(tg);
    gbeta[j] = static_cast<T>(tb);
  }
}

TGC_NORM_DECLARE(float, )
TGC_NORM_DECLARE(double, )

}  // namespace TGC_ISA
}  // namespace tgc
