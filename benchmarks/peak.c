/* The multiply-add rate one core reaches without fused multiply-add, in
 * the pattern of fastmlp's forward block: 8 independent chains of
 * acc = acc + w·a (2 vectors of outputs × 4 examples), w and a read from
 * L1-resident arrays, with the widest vectors the kernels use: 64 bytes
 * with AVX-512, 32 otherwise. Built with -O2 -ffp-contract=off
 * -march=native, as the kernels are. Prints "<float64 G/s> <float32 G/s>",
 * best of 5. */
#include <stdio.h>
#include <time.h>

#ifdef __AVX512F__
#define VBYTES 64
#else
#define VBYTES 32
#endif
typedef double vf64 __attribute__((vector_size(VBYTES)));
typedef float vf32 __attribute__((vector_size(VBYTES)));

#define K 512 /* inputs per sum: the arrays stay in L1 */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

#define PEAK(NAME, V, T, LANES)                                                   \
    static V NAME##_w[K][2];                                                      \
    static T NAME##_a[4][K];                                                      \
    static double NAME(long repeats) {                                            \
        for (int k = 0; k < K; k++) {                                             \
            for (int q = 0; q < LANES; q++) {                                     \
                NAME##_w[k][0][q] = (T)(1e-3 * (k + q));                          \
                NAME##_w[k][1][q] = (T)(2e-3 * (k - q));                          \
            }                                                                     \
            for (int s = 0; s < 4; s++) NAME##_a[s][k] = (T)(1e-2 * (s + 1));     \
        }                                                                         \
        T sink = 0;                                                               \
        double start = now();                                                     \
        for (long r = 0; r < repeats; r++) {                                      \
            V s00 = {0}, s01 = {0}, s10 = {0}, s11 = {0};                         \
            V s20 = {0}, s21 = {0}, s30 = {0}, s31 = {0};                         \
            for (int k = 0; k < K; k++) {                                         \
                V w0 = NAME##_w[k][0], w1 = NAME##_w[k][1];                       \
                s00 = s00 + NAME##_a[0][k] * w0; s01 = s01 + NAME##_a[0][k] * w1; \
                s10 = s10 + NAME##_a[1][k] * w0; s11 = s11 + NAME##_a[1][k] * w1; \
                s20 = s20 + NAME##_a[2][k] * w0; s21 = s21 + NAME##_a[2][k] * w1; \
                s30 = s30 + NAME##_a[3][k] * w0; s31 = s31 + NAME##_a[3][k] * w1; \
            }                                                                     \
            V t = s00 + s01 + s10 + s11 + s20 + s21 + s30 + s31;                  \
            for (int q = 0; q < LANES; q++) sink += t[q];                         \
        }                                                                         \
        double seconds = now() - start;                                           \
        if (sink == (T)12345) printf(" ");                                        \
        return (double)repeats * K * 8 * LANES / seconds / 1e9;                   \
    }

PEAK(peak_f64, vf64, double, VBYTES / 8)
PEAK(peak_f32, vf32, float, VBYTES / 4)

int main(void) {
    double best64 = 0, best32 = 0;
    for (int round = 0; round < 5; round++) {
        double a = peak_f64(50000), b = peak_f32(50000);
        if (a > best64) best64 = a;
        if (b > best32) best32 = b;
    }
    printf("%.2f %.2f\n", best64, best32);
    return 0;
}
