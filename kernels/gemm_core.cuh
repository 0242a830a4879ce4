// gemm_core.cuh -- the tiled, register-blocked GEMM block shared by gemm.cu and conv2d.cu.
//
// One block computes a 128 x 128 tile of C = A B (sum over k of A[m][k] * B[k][n]):
//  * 256 threads (8 warps); each thread accumulates 8 x 8 outputs in registers: rows 4ty..4ty+3 and
//    64+4ty..64+4ty+3, columns likewise with tx. Warp w holds ty = 4(w/2)..4(w/2)+3 and
//    tx = 8(w%2)..8(w%2)+7 (a 32 x 64 warp tile), so the float4 reads of the shared tiles are
//    conflict-free broadcasts: per k, a thread reads 2 float4 of A, 2 float4 of B and does 64 FMAs.
//  * K advances in slices of BK = 8. Shared memory holds As[k][m] and Bs[k][n] for two slices (double
//    buffering, rows padded to 132 so the transposing stores do not conflict): while the block
//    multiplies slice t out of one buffer, the global loads of slice t+1 are in flight into registers
//    and go to the other buffer afterwards. One barrier per slice. 2 x 2 x 8 x 132 x sizeof(T) bytes of
//    shared memory: 16.5 KiB (float), 33 KiB (double).
//  * Operands are read through *loaders*: a loader gives each thread 4 elements of the BK x 128 slice
//    -- a run of 4 along x (x = m for A, n for B) or along k -- from global memory and writes them to
//    shared memory. `Strided` reads a matrix with arbitrary element strides (0 and negative too), with
//    float4/double2 loads where the host says the run is contiguous and 16-byte aligned; conv2d.cu
//    has loaders that gather the implicit im2col matrix. Out-of-range elements read as 0.
//  * The epilogue functor gets each thread's results in runs of 4 columns, and guards the M/N edges.
#ifndef TGC_GEMM_CORE_CUH
#define TGC_GEMM_CORE_CUH

#include "common.cuh"

namespace gemm {

constexpr int BM = 128, BN = 128, BK = 8, NT = 256;
constexpr int LDS = 132;  // padded row length of the shared tiles

// loader modes (host side: cuda.py)
constexpr int kAlongX = 1;  // a thread's 4 elements are consecutive in x (else in k)
constexpr int kVec = 2;     // ... and contiguous + 16-byte aligned: one vector load

// Thread t's first element in a BK x 128 slice: runs along x are (k = t / 32, x = 4 (t % 32)),
// runs along k are (k = 4 (t % 2), x = t / 2).
__device__ __forceinline__ int slice_k(bool along_x) { return along_x ? threadIdx.x >> 5 : (threadIdx.x & 1) * 4; }
__device__ __forceinline__ int slice_x(bool along_x) { return along_x ? (threadIdx.x & 31) * 4 : threadIdx.x >> 1; }

template <class T> __device__ __forceinline__ void store_slice(T (*s)[LDS], bool along_x, int kk, int xx, const T (&r)[4]) {
  if (along_x) {
    st4(&s[kk][xx], r);
  } else {
#pragma unroll
    for (int e = 0; e < 4; ++e) s[kk + e][xx] = r[e];
  }
}

// Op[k][x] = p[k * sk + x * sx] for x < X and k < kend, else 0. x0 is the block's first x.
template <class T> struct Strided {
  const T* q;  // this thread's first element of slice k0 = 0
  i64 sk, sx;
  int kend;    // relative to this thread's first k
  int nx;      // how many of the thread's x positions are < X (runs along x), or 0/4 (runs along k)
  bool along_x, vec;
  T r[4];

  __device__ Strided(const T* p, i64 sk_, i64 sx_, int X, int kend_, int x0, int mode)
      : sk(sk_), sx(sx_), along_x(mode & kAlongX), vec(mode & kVec) {
    const int kk = slice_k(along_x), x = x0 + slice_x(along_x);
    q = p + kk * sk + x * sx;
    kend = kend_ - kk;
    nx = along_x ? imax(0, imin(4, X - x)) : (x < X ? 4 : 0);
  }

  __device__ __forceinline__ void fetch(int k0) {
    const T* s = q + k0 * sk;
    if (along_x) {
      if (k0 < kend && vec && nx == 4) {
        ld4(s, r);  // sx == 1
      } else {
#pragma unroll
        for (int e = 0; e < 4; ++e) r[e] = (k0 < kend && e < nx) ? s[e * sx] : T(0);
      }
    } else {
      if (nx && vec && k0 + 3 < kend) {
        ld4(s, r);  // sk == 1
      } else {
#pragma unroll
        for (int e = 0; e < 4; ++e) r[e] = (nx && k0 + e < kend) ? s[e * sk] : T(0);
      }
    }
  }
  __device__ __forceinline__ void store(T (*s)[LDS]) const {
    store_slice(s, along_x, slice_k(along_x), slice_x(along_x), r);
  }
};

// Row-major output tile: C[m * N + n] for m < M, n < N (vec: N % 4 == 0 and C 16-byte aligned).
template <class T> struct StoreRowMajor {
  T* c;
  int M, N;
  bool vec;
  __device__ __forceinline__ void operator()(int m, int n, const T (&v)[4]) const {
    if (m >= M) return;
    T* row = c + static_cast<i64>(m) * N;
    if (vec && n + 3 < N) {
      st4(row + n, v);
    } else {
#pragma unroll
      for (int e = 0; e < 4; ++e)
        if (n + e < N) row[n + e] = v[e];
    }
  }
};

// The block's 128 x 128 tile at (m0, n0), summing k over [kb, ke). Loader `a` covers x = m, `b` x = n;
// a loader's fetch(k0) loads its part of the slice k0..k0+7 (it was built for its block's x range).
// Every thread of the block must call it (barriers inside).
template <class T, class LA, class LB, class Epilogue>
__device__ __forceinline__ void block_tile(LA& a, LB& b, int kb, int ke, int m0, int n0, const Epilogue& epi) {
  __shared__ __align__(16) T As[2][BK][LDS];
  __shared__ __align__(16) T Bs[2][BK][LDS];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int ty = (warp >> 1) * 4 + (lane >> 3);
  const int tx = (warp & 1) * 8 + (lane & 7);

  T acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = T(0);

  const int nk = ke > kb ? (ke - kb + BK - 1) / BK : 0;
  if (nk > 0) {
    a.fetch(kb);
    b.fetch(kb);
    a.store(As[0]);
    b.store(Bs[0]);
  }
  __syncthreads();
  for (int t = 0; t < nk; ++t) {
    const int cur = t & 1;
    const bool more = t + 1 < nk;
    if (more) {  // global loads of the next slice overlap the arithmetic below
      a.fetch(kb + (t + 1) * BK);
      b.fetch(kb + (t + 1) * BK);
    }
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      T a_lo[4], a_hi[4], b_lo[4], b_hi[4];
      ld4(&As[cur][k][ty * 4], a_lo);
      ld4(&As[cur][k][64 + ty * 4], a_hi);
      ld4(&Bs[cur][k][tx * 4], b_lo);
      ld4(&Bs[cur][k][64 + tx * 4], b_hi);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          acc[i][j] += a_lo[i] * b_lo[j];
          acc[i][4 + j] += a_lo[i] * b_hi[j];
          acc[4 + i][j] += a_hi[i] * b_lo[j];
          acc[4 + i][4 + j] += a_hi[i] * b_hi[j];
        }
    }
    if (more) {
      a.store(As[cur ^ 1]);
      b.store(Bs[cur ^ 1]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int m = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
    const T lo[4] = {acc[i][0], acc[i][1], acc[i][2], acc[i][3]};
    const T hi[4] = {acc[i][4], acc[i][5], acc[i][6], acc[i][7]};
    epi(m, n0 + tx * 4, lo);
    epi(m, n0 + 64 + tx * 4, hi);
  }
}

}  // namespace gemm

// out[i] = sum over s of ws[s * count + i], in the order s = 0, 1, ... (split-K partial sums)
template <class T> __device__ __forceinline__ void sum_splits_body(const T* ws, T* out, i64 count, int splits) {
  TGC_GRID_STRIDE(i, count) {
    T acc = ws[i];
    for (int s = 1; s < splits; ++s) acc += ws[s * count + i];
    out[i] = acc;
  }
}

#endif  // TGC_GEMM_CORE_CUH
