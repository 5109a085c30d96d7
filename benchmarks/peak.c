/* The multiply-add rate of one core: the limit the kernels are measured
 * against.
 *
 * The pattern is the kernels' register tile: E independent rows of NV vectors
 * of sums, each step adding x·b for a broadcast x and a vector b read from
 * L1-resident arrays, s = s + x·b. How many chains it takes to cover the
 * latency of the additions depends on the core (8 do not on AMD Zen 3 or
 * Zen 4; 12 or 16 do), so several shapes run and the best counts, with the
 * vectors the target has: 32 bytes, and 64 with AVX-512.
 *
 * Built with -ffp-contract=off, each term is a multiplication and a separate
 * addition, as the arithmetic contract wants: the no-FMA limit. Built with
 * -ffp-contract=fast, the compiler fuses them: the FMA limit, what BLAS
 * libraries reach for. Prints "<float64 G/s> <float32 G/s>", the best of 25
 * runs of each shape, a second in all: on a shared machine, some runs are
 * slowed by others' work, and the limit is the fastest. Build with -O3 (the loops over a shape's rows and
 * vectors must unroll for its sums to stay in registers). */
#include <stdio.h>
#include <time.h>

#define K 256 /* steps per sweep: the arrays stay in L1 */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* The rate of E rows × NV vectors of type V (lanes of T) over `sweeps` sweeps. */
#define SHAPE(NAME, V, T, E, NV)                                                      \
    static double NAME(long sweeps) {                                                 \
        enum { LANES = sizeof(V) / sizeof(T) };                                       \
        static T a[K][E];                                                             \
        static V b[K][NV];                                                            \
        for (int k = 0; k < K; k++) {                                                 \
            for (int e = 0; e < E; e++) a[k][e] = (T)(1e-3 * (k + e + 1));            \
            for (int v = 0; v < NV; v++)                                              \
                for (int q = 0; q < LANES; q++) b[k][v][q] = (T)(1e-4 * (k - q + v)); \
        }                                                                             \
        V s[E][NV] = {{{0}}};                                                         \
        double start = now();                                                         \
        for (long r = 0; r < sweeps; r++) {                                           \
            for (int k = 0; k < K; k++) {                                             \
                _Pragma("GCC unroll 16") for (int e = 0; e < E; e++) {                \
                    T x = a[k][e];                                                    \
                    _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++)              \
                        s[e][v] = s[e][v] + x * b[k][v];                              \
                }                                                                     \
            }                                                                         \
        }                                                                             \
        double seconds = now() - start;                                               \
        T sink = 0;                                                                   \
        for (int e = 0; e < E; e++)                                                   \
            for (int v = 0; v < NV; v++) sink += s[e][v][0];                          \
        if (sink == (T)12345) printf(" ");                                            \
        return (double)sweeps * K * E * NV * LANES / seconds / 1e9;                  \
    }

typedef double f64x4 __attribute__((vector_size(32)));
typedef float f32x8 __attribute__((vector_size(32)));
SHAPE(f64_32_4x2, f64x4, double, 4, 2)
SHAPE(f64_32_6x2, f64x4, double, 6, 2)
SHAPE(f64_32_4x3, f64x4, double, 4, 3)
SHAPE(f32_32_4x2, f32x8, float, 4, 2)
SHAPE(f32_32_6x2, f32x8, float, 6, 2)
SHAPE(f32_32_4x3, f32x8, float, 4, 3)
#ifdef __AVX512F__
typedef double f64x8 __attribute__((vector_size(64)));
typedef float f32x16 __attribute__((vector_size(64)));
SHAPE(f64_64_8x2, f64x8, double, 8, 2)
SHAPE(f64_64_12x2, f64x8, double, 12, 2)
SHAPE(f32_64_8x2, f32x16, float, 8, 2)
SHAPE(f32_64_12x2, f32x16, float, 12, 2)
#endif

static double (*const shapes_f64[])(long) = {
    f64_32_4x2, f64_32_6x2, f64_32_4x3,
#ifdef __AVX512F__
    f64_64_8x2, f64_64_12x2,
#endif
};
static double (*const shapes_f32[])(long) = {
    f32_32_4x2, f32_32_6x2, f32_32_4x3,
#ifdef __AVX512F__
    f32_64_8x2, f32_64_12x2,
#endif
};

static double best(double (*const *shapes)(long), int count) {
    double top = 0;
    for (int round = 0; round < 25; round++)
        for (int i = 0; i < count; i++) {
            double rate = shapes[i](20000);
            if (rate > top) top = rate;
        }
    return top;
}

int main(void) {
    double f64 = best(shapes_f64, sizeof shapes_f64 / sizeof *shapes_f64);
    double f32 = best(shapes_f32, sizeof shapes_f32 / sizeof *shapes_f32);
    printf("%.2f %.2f\n", f64, f32);
    return 0;
}
