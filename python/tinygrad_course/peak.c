/* Machine probes for the benchmarks and the profiler: float32 FMA peak and STREAM-like triad bandwidth.
 *
 * Built at run time by tinygrad_course/machine.py with the system C compiler:
 *     cc -O2 -march=native -fopenmp peak.c -o peak
 *
 *     peak fma   THREADS SECONDS    -> {"gflops": ..., "threads": ..., "isa": ...}
 *     peak triad THREADS MIB        -> {"gbps": ..., "threads": ..., "mib_per_array": ...}
 *
 * FMA: each thread runs NACC independent chains acc[i] = acc[i] * m + a on the
 * widest vectors the compiler was told about (-march=native): 512-bit with
 * __AVX512F__, 256-bit with __AVX2__ + __FMA__, 128-bit SSE2 (multiply + add)
 * on any other x86-64, else scalar C (which the
 * compiler may or may not vectorise; it is a fallback, not a peak). Peak needs
 * at least latency x ports independent chains in flight (4 cycles x 2 FMA
 * pipes = 8 on current x86); NACC = 16 leaves a 2x margin and still fits the
 * register file (16 of 32 zmm registers). One FMA on W float lanes counts
 * 2 W flops. m and a come through volatile variables so nothing is folded; the
 * chains converge to a / (1 - m), so no overflow, NaN or denormal slows them.
 * Each timing repeats until SECONDS elapsed; we report the best of several
 * sub-runs, since a peak is a max, not a median.
 *
 * Triad: a[i] = b[i] + s * c[i] over three arrays of MIB MiB each (far larger
 * than the caches), OpenMP static schedule, first-touch initialisation by the
 * same schedule. Bytes counted as in STREAM: 3 x 4 bytes per element (the
 * write-allocate read of a[] is not counted). Best of 10 sweeps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif


static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static volatile float g_mul = 0.999999f, g_add = 1e-6f;
static volatile float g_sink;

#if defined(__AVX512F__)
#define ISA "avx512"
#define VBYTES 64
#ifndef NACC
#define NACC 16 /* + 2 constants: 18 of the 32 zmm registers */
#endif
#elif defined(__AVX2__) && defined(__FMA__)
#define ISA "avx2"
#define VBYTES 32
#ifndef NACC
#define NACC 14 /* + 2 constants: all 16 ymm registers (more would spill) */
#endif
#elif defined(__SSE2__)
/* x86-64 baseline: no FMA, so one multiply and one add per lane per step
 * (the same 2 FLOPs an FMA counts), on separate ports. */
#define ISA "sse2"
#define VBYTES 16
#ifndef NACC
#define NACC 14 /* + 2 constants: all 16 xmm registers */
#endif
#endif

#ifdef VBYTES
/* GCC/Clang vector extensions: acc * m + a compiles to the ISA's FMA (C's
 * default -ffp-contract=fast), or to a multiply and an add without one. */
#define LANES (VBYTES / 4)
typedef float vfloat __attribute__((vector_size(VBYTES)));
static float fma_chains(long iters) {
    const vfloat zero = {0};
    const vfloat m = g_mul - zero, a = g_add - zero; /* broadcasts */
    vfloat acc[NACC];
    for (int i = 0; i < NACC; i++) acc[i] = (float)i - zero;
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < NACC; i++) acc[i] = acc[i] * m + a;
    }
    vfloat s = acc[0];
    for (int i = 1; i < NACC; i++) s += acc[i];
    float out = 0.0f;
    for (int l = 0; l < LANES; l++) out += s[l];
    return out;
}
#else
#define ISA "scalar"
#define LANES 1
#ifndef NACC
#define NACC 16
#endif
static float fma_chains(long iters) {
    const float m = g_mul, a = g_add;
    float acc[NACC];
    for (int i = 0; i < NACC; i++) acc[i] = (float)i;
    for (long it = 0; it < iters; it++)
        for (int i = 0; i < NACC; i++) acc[i] = acc[i] * m + a;
    float s = 0.0f;
    for (int i = 0; i < NACC; i++) s += acc[i];
    return s;
}
#endif

static void set_threads(int threads) {
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
#else
    (void)threads;
#endif
}

static int team_size(void) {
    int n = 1;
#ifdef _OPENMP
#pragma omp parallel
    {
#pragma omp single
        n = omp_get_num_threads();
    }
#endif
    return n;
}

/* flop/s of all threads running `iters` iterations each, in one parallel region. */
static double fma_rate(long iters, int nthreads) {
    double t0 = now();
    float sink = 0.0f;
#ifdef _OPENMP
#pragma omp parallel reduction(+ : sink)
#endif
    sink += fma_chains(iters);
    double t = now() - t0;
    g_sink = sink;
    return (double)nthreads * iters * NACC * LANES * 2.0 / t;
}

static int run_fma(int threads, double seconds) {
    set_threads(threads);
    int nthreads = team_size();
    long iters = 1 << 16;
    for (;;) { /* calibrate: one sub-run of about 50 ms */
        double t0 = now();
        fma_rate(iters, nthreads);
        if (now() - t0 > 0.05 || iters > (1L << 40)) break;
        iters *= 2;
    }
    double best = 0.0, t_end = now() + seconds;
    do {
        double r = fma_rate(iters, nthreads);
        if (r > best) best = r;
    } while (now() < t_end);
    printf("{\"gflops\": %.3f, \"threads\": %d, \"isa\": \"%s\", \"lanes\": %d, \"chains\": %d}\n",
           best / 1e9, nthreads, ISA, LANES, NACC);
    return 0;
}

static int run_triad(int threads, long mib) {
    set_threads(threads);
    int nthreads = team_size();
    long n = mib * (1L << 20) / (long)sizeof(float);
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)), *c = malloc(n * sizeof(float));
    if (!a || !b || !c) {
        fprintf(stderr, "triad: cannot allocate 3 x %ld MiB\n", mib);
        return 1;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (long i = 0; i < n; i++) {
        a[i] = 0.0f;
        b[i] = 1.0f;
        c[i] = 2.0f;
    }
    const float s = g_add;
    double best = 1e30;
    for (int rep = 0; rep < 10; rep++) {
        double t0 = now();
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
        for (long i = 0; i < n; i++) a[i] = b[i] + s * c[i];
        double t = now() - t0;
        if (t < best) best = t;
    }
    g_sink = a[n / 2];
    printf("{\"gbps\": %.3f, \"threads\": %d, \"mib_per_array\": %ld}\n", 3.0 * n * sizeof(float) / best / 1e9,
           nthreads, mib);
    free(a);
    free(b);
    free(c);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "fma") == 0) return run_fma(atoi(argv[2]), atof(argv[3]));
    if (argc == 4 && strcmp(argv[1], "triad") == 0) return run_triad(atoi(argv[2]), atol(argv[3]));
    fprintf(stderr, "usage: %s fma THREADS SECONDS | triad THREADS MIB_PER_ARRAY\n", argv[0]);
    return 2;
}
