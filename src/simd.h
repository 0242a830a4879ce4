// The SIMD layer: one vector type and a handful of operations that every
// kernel is written against, compiled once per instruction set.
//
// Each kernel source (gemm.cpp, conv2d.cpp, ...) is compiled several times by
// CMakeLists.txt, once per ISA, with that ISA's compiler flags and with
// TGC_ISA set to its name (baseline, avx2, avx512, neon, native). Everything a
// kernel source defines lives in namespace tgc::TGC_ISA, so the copies never
// meet; src/dispatch.cpp picks one set at run time (src/isa.h).
//
// The vector width follows the flags the file is compiled with (the
// compiler's predefined macros), not the ISA's name:
//   AVX-512F      64 bytes (16 float / 8 double lanes), 32 registers
//   AVX2 + FMA    32 bytes ( 8 / 4 lanes),               16 registers
//   NEON         16 bytes ( 4 / 2 lanes),               32 registers
//   otherwise     16 bytes (SSE2 on x86-64, or whatever the compiler makes
//                 of a 16-byte vector elsewhere),      16 registers
//
// Simd<T> is written with GCC/Clang vector extensions
// (__attribute__((vector_size))): arithmetic on them compiles to the ISA's
// instructions (a * b + c to an FMA where the ISA has one, with
// -ffp-contract=fast). Only what the extensions cannot express -- masked
// loads and stores of a partial vector, and the in-register transpose -- has
// per-ISA code, below in this file (AVX-512, AVX2; a portable version for the
// rest); kernels never use intrinsics.
//
// Interface of Simd<T> (T = float or double):
//   L (lanes), reg (the vector type), mask (make_mask(n): the first n lanes),
//   zero(), set1(x), load(p), store(p, v) (unaligned), load(m, p) (lanes
//   beyond m read as 0, memory beyond m untouched), store(m, p, v),
//   fma(a, b, c) = a * b + c, add, mul, max, hsum (sum of the lanes).
// kVectorRegs: the ISA's vector register count, for register-tile sizes.
// transpose_regs / transpose_block: in-register and in-memory L x L transposes.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#ifndef TGC_ISA
#error "TGC_ISA (the instruction set's namespace) must be defined when compiling a kernel source"
#endif

// Fully unroll fixed-size register-tile loops, so that the compiler keeps the
// accumulator arrays in vector registers.
#if defined(__clang__)
#define TGC_UNROLL _Pragma("unroll")
#else
#define TGC_UNROLL _Pragma("GCC unroll 16")
#endif

// Prefetch the cache line at address p into all cache levels (a hint).
#define TGC_PREFETCH(p) __builtin_prefetch((p), 0, 3)

namespace tgc {
namespace TGC_ISA {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
constexpr int kVectorRegs = 32;
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kVectorBytes = 32;
constexpr int kVectorRegs = 16;
#elif defined(__ARM_NEON) || defined(__aarch64__)
constexpr int kVectorBytes = 16;
constexpr int kVectorRegs = 32;
#else
constexpr int kVectorBytes = 16;
constexpr int kVectorRegs = 16;
#endif

// Name of the vector code this file was compiled to (for diagnostics).
#if defined(__AVX512F__)
constexpr const char* kSimdName = "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
constexpr const char* kSimdName = "avx2";
#elif defined(__ARM_NEON) || defined(__aarch64__)
constexpr const char* kSimdName = "neon";
#elif defined(__SSE2__)
constexpr const char* kSimdName = "sse2";
#else
constexpr const char* kSimdName = "generic";
#endif

template <typename T>
struct VecType;
template <>
struct VecType<float> {
  typedef float type __attribute__((vector_size(kVectorBytes)));
  typedef std::int32_t itype __attribute__((vector_size(kVectorBytes)));
};
template <>
struct VecType<double> {
  typedef double type __attribute__((vector_size(kVectorBytes)));
  typedef std::int64_t itype __attribute__((vector_size(kVectorBytes)));
};

// Masked (partial) loads and stores: the only per-ISA operations.
template <typename T>
struct Partial {
  // Portable: n < L lanes through a small buffer (the compiler turns the
  // memcpy pair into moves); kernels use it only for the ends of rows.
  using reg = typename VecType<T>::type;
  static constexpr int L = kVectorBytes / static_cast<int>(sizeof(T));
  using mask = int;  // number of valid lanes
  static mask make(int n) { return n < 0 ? 0 : (n > L ? L : n); }
  static reg load(mask m, const T* p) {
    if (m == L) {
      reg r;
      std::memcpy(&r, p, sizeof r);
      return r;
    }
    T buf[L] = {};
    for (int l = 0; l < m; ++l) buf[l] = p[l];
    reg r;
    std::memcpy(&r, buf, sizeof r);
    return r;
  }
  static void store(mask m, T* p, reg v) {
    if (m == L) {
      std::memcpy(p, &v, sizeof v);
      return;
    }
    T buf[L];
    std::memcpy(buf, &v, sizeof v);
    for (int l = 0; l < m; ++l) p[l] = buf[l];
  }
};

#if defined(__AVX512F__)
template <>
struct Partial<float> {
  using reg = VecType<float>::type;
  using mask = __mmask16;
  static mask make(int n) { return n >= 16 ? mask(0xFFFF) : n <= 0 ? mask(0) : mask((1u << n) - 1u); }
  static reg load(mask m, const float* p) { return reg(_mm512_maskz_loadu_ps(m, p)); }
  static void store(mask m, float* p, reg v) { _mm512_mask_storeu_ps(p, m, __m512(v)); }
};
template <>
struct Partial<double> {
  using reg = VecType<double>::type;
  using mask = __mmask8;
  static mask make(int n) { return n >= 8 ? mask(0xFF) : n <= 0 ? mask(0) : mask((1u << n) - 1u); }
  static reg load(mask m, const double* p) { return reg(_mm512_maskz_loadu_pd(m, p)); }
  static void store(mask m, double* p, reg v) { _mm512_mask_storeu_pd(p, m, __m512d(v)); }
};
#elif defined(__AVX2__) && defined(__FMA__)
// The first n lanes of v to p, through a small buffer.
template <typename T, typename R>
inline void store_prefix(T* p, R v, int n) {
  T buf[sizeof(R) / sizeof(T)];
  std::memcpy(buf, &v, sizeof v);
  for (int l = 0; l < n; ++l) p[l] = buf[l];
}

// Loads with vmaskmov (lanes whose mask element has its sign bit set); stores
// through a buffer instead (vmaskmov stores are slow on AMD CPUs).
template <>
struct Partial<float> {
  using reg = VecType<float>::type;
  using mask = __m256i;
  static mask make(int n) {
    const VecType<float>::itype lane = {0, 1, 2, 3, 4, 5, 6, 7};
    return __m256i(lane < n);
  }
  static reg load(mask m, const float* p) { return reg(_mm256_maskload_ps(p, m)); }
  static void store(mask m, float* p, reg v) {
    store_prefix(p, v, __builtin_popcount(_mm256_movemask_ps(_mm256_castsi256_ps(m))));
  }
};
template <>
struct Partial<double> {
  using reg = VecType<double>::type;
  using mask = __m256i;
  static mask make(int n) {
    const VecType<double>::itype lane = {0, 1, 2, 3};
    return __m256i(lane < std::int64_t{n});
  }
  static reg load(mask m, const double* p) { return reg(_mm256_maskload_pd(p, m)); }
  static void store(mask m, double* p, reg v) {
    store_prefix(p, v, __builtin_popcount(_mm256_movemask_pd(_mm256_castsi256_pd(m))));
  }
};
#endif

template <typename T>
struct Simd {
  using reg = typename VecType<T>::type;
  using mask = typename Partial<T>::mask;
  static constexpr int L = kVectorBytes / static_cast<int>(sizeof(T));

  static reg zero() { return reg{}; }
  // x - 0 is exactly x for every x, so this is a plain broadcast (x + 0 is not:
  // -0 + 0 = +0, and the compiler would emit the add).
  static reg set1(T x) { return x - reg{}; }
  static reg load(const T* p) {
    reg r;
    std::memcpy(&r, p, sizeof r);
    return r;
  }
  static void store(T* p, reg v) { std::memcpy(p, &v, sizeof v); }
  static mask make_mask(int n) { return Partial<T>::make(n); }
  static reg load(mask m, const T* p) { return Partial<T>::load(m, p); }
  static void store(mask m, T* p, reg v) { Partial<T>::store(m, p, v); }
  static reg fma(reg a, reg b, reg c) { return a * b + c; }
  static reg add(reg a, reg b) { return a + b; }
  static reg mul(reg a, reg b) { return a * b; }
  static reg max(reg a, reg b) { return a > b ? a : b; }
  static T hsum(reg v) {
    T s = T(0);
    for (int l = 0; l < L; ++l) s += v[l];
    return s;
  }
};

// In-register L x L transposes, where the ISA has the shuffles for them:
// transpose_regs(r) turns r[i] = row i into r[i] = column i.
#if defined(__AVX512F__)
namespace detail {
// In-register transposes of 128-bit lanes: u[g] lane l -> out[l] lane g (4 x 4).
template <typename R, typename Shuf>
inline void transpose_lanes4(const R* u, R* out, Shuf shuf) {
  const R s0 = shuf(u[0], u[1], 0x88), s1 = shuf(u[0], u[1], 0xdd);
  const R s2 = shuf(u[2], u[3], 0x88), s3 = shuf(u[2], u[3], 0xdd);
  out[0] = shuf(s0, s2, 0x88);
  out[2] = shuf(s0, s2, 0xdd);
  out[1] = shuf(s1, s3, 0x88);
  out[3] = shuf(s1, s3, 0xdd);
}

// 16 x 16 float transpose: out[c] lane r = in[r] lane c.
inline void transpose16(const __m512* in, __m512* out) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(in[2 * i], in[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(in[2 * i], in[2 * i + 1]);
  }
  // u[c'][g] lane l = column 4l + c', rows 4g .. 4g + 3.
  __m512 u[4][4];
  for (int g = 0; g < 4; ++g) {
    const __m512d t0 = _mm512_castps_pd(t[4 * g]), t1 = _mm512_castps_pd(t[4 * g + 1]);
    const __m512d t2 = _mm512_castps_pd(t[4 * g + 2]), t3 = _mm512_castps_pd(t[4 * g + 3]);
    u[0][g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    u[1][g] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    u[2][g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    u[3][g] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
  }
  const auto shuf = [](__m512 a, __m512 b, int imm) {
    return imm == 0x88 ? _mm512_shuffle_f32x4(a, b, 0x88) : _mm512_shuffle_f32x4(a, b, 0xdd);
  };
  for (int cp = 0; cp < 4; ++cp) {
    __m512 o[4];
    transpose_lanes4(u[cp], o, shuf);
    for (int l = 0; l < 4; ++l) out[4 * l + cp] = o[l];
  }
}

// 8 x 8 double transpose: out[c] lane r = in[r] lane c.
inline void transpose8(const __m512d* in, __m512d* out) {
  // u[c'][g] lane l = column 2l + c', rows 2g, 2g + 1.
  __m512d u[2][4];
  for (int g = 0; g < 4; ++g) {
    u[0][g] = _mm512_unpacklo_pd(in[2 * g], in[2 * g + 1]);
    u[1][g] = _mm512_unpackhi_pd(in[2 * g], in[2 * g + 1]);
  }
  const auto shuf = [](__m512d a, __m512d b, int imm) {
    return imm == 0x88 ? _mm512_shuffle_f64x2(a, b, 0x88) : _mm512_shuffle_f64x2(a, b, 0xdd);
  };
  for (int cp = 0; cp < 2; ++cp) {
    __m512d o[4];
    transpose_lanes4(u[cp], o, shuf);
    for (int l = 0; l < 4; ++l) out[2 * l + cp] = o[l];
  }
}
}  // namespace detail

constexpr bool kRegisterTranspose = true;
inline void transpose_regs(Simd<float>::reg* r) {
  __m512 in[16], out[16];
  for (int i = 0; i < 16; ++i) in[i] = __m512(r[i]);
  detail::transpose16(in, out);
  for (int i = 0; i < 16; ++i) r[i] = Simd<float>::reg(out[i]);
}
inline void transpose_regs(Simd<double>::reg* r) {
  __m512d in[8], out[8];
  for (int i = 0; i < 8; ++i) in[i] = __m512d(r[i]);
  detail::transpose8(in, out);
  for (int i = 0; i < 8; ++i) r[i] = Simd<double>::reg(out[i]);
}
#elif defined(__AVX2__) && defined(__FMA__)
namespace detail {
// 8 x 8 float transpose in place: r[i] = row i -> r[i] = column i.
inline void transpose8(__m256* r) {
  __m256 t[8], s[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
  }
}
// 4 x 4 double transpose in place.
inline void transpose4(__m256d* r) {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}
}  // namespace detail

constexpr bool kRegisterTranspose = true;
inline void transpose_regs(Simd<float>::reg* r) {
  __m256 m[8];
  for (int i = 0; i < 8; ++i) m[i] = __m256(r[i]);
  detail::transpose8(m);
  for (int i = 0; i < 8; ++i) r[i] = Simd<float>::reg(m[i]);
}
inline void transpose_regs(Simd<double>::reg* r) {
  __m256d m[4];
  for (int i = 0; i < 4; ++i) m[i] = __m256d(r[i]);
  detail::transpose4(m);
  for (int i = 0; i < 4; ++i) r[i] = Simd<double>::reg(m[i]);
}
#else
constexpr bool kRegisterTranspose = false;
template <typename R>
inline void transpose_regs(R*) {}  // never called: the portable transpose is scalar
#endif

// dst[c * ldd + r] = src[r * lds + c] for r < rows and c < cols (both <= L);
// dst[c * ldd + r] = 0 for rows <= r < lanes (rows <= lanes <= L); nothing
// beyond the first `lanes` of each of the `cols` dst rows is written. One
// L x L block of the packing / layout transposes: in registers where the ISA
// has the shuffles (partial rows and columns through the masked loads and
// stores), else a scalar loop (the compiler schedules it well enough at these
// sizes; the packing it serves is a small part of the work).
template <typename T>
inline void transpose_block(const T* src, std::int64_t lds, int rows, int cols, T* dst,
                            std::int64_t ldd, int lanes) {
  using S = Simd<T>;
  if constexpr (kRegisterTranspose) {
    const typename S::mask cols_mask = S::make_mask(cols), lanes_mask = S::make_mask(lanes);
    typename S::reg r[S::L];
    for (int i = 0; i < S::L; ++i)
      r[i] = i >= rows ? S::zero() : cols == S::L ? S::load(src + i * lds) : S::load(cols_mask, src + i * lds);
    transpose_regs(r);
    for (int c = 0; c < cols; ++c) {
      if (lanes == S::L)
        S::store(dst + c * ldd, r[c]);
      else
        S::store(lanes_mask, dst + c * ldd, r[c]);
    }
  } else {
    for (int c = 0; c < cols; ++c) {
      T* d = dst + c * ldd;
      int r = 0;
      for (; r < rows && r < lanes; ++r) d[r] = src[r * lds + c];
      for (; r < lanes; ++r) d[r] = T(0);
    }
  }
}

}  // namespace TGC_ISA
}  // namespace tgc
