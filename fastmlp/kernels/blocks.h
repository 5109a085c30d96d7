/* Register blocks, for one float type (included by typed.h): the sums of a
 * block of examples over a layer's inputs, and the gradient sums of a block
 * of weight rows over a chunk of examples, for networks that go through a
 * mini-batch in blocks of examples (_examples.pxi); and one example's step. */

/* The two sweeps (sweeps.h) over the block's vectors, then over
 * single unit vectors. */
#define SV V
#define SL L
#define SNV NV
#define SLOAD LOAD
#define SSTORE STORE
#define SMADD VMADD
#define SSQRT VSQRT
#define SUMS_OF FASTMLP_NAME(weighted_sums_of)
#define NUDGE_BLOCK FASTMLP_NAME(nudge_block)
#include "sweeps.h"
#define SV U
#define SL UL
#define SNV 1
#define SLOAD ULOAD
#define SSTORE USTORE
#define SMADD UMADD
#define SSQRT USQRT
#define SUMS_OF FASTMLP_NAME(unit_sums_of)
#define NUDGE_BLOCK FASTMLP_NAME(nudge_narrow)
#include "sweeps.h"

/* f(examples, a, n_in, w, stride, z, next) with the count of examples,
 * 1 … FASTMLP_SAMPLES, made a constant for the compiler, which then keeps
 * the sums in registers. */
#if FASTMLP_SAMPLES > 4
#define BY_COUNT(f, next)                                                   \
    switch (examples) {                                                     \
    case 1: f(1, a, n_in, w, stride, z, next); break;                       \
    case 2: f(2, a, n_in, w, stride, z, next); break;                       \
    case 3: f(3, a, n_in, w, stride, z, next); break;                       \
    case 4: f(4, a, n_in, w, stride, z, next); break;                       \
    case 5: f(5, a, n_in, w, stride, z, next); break;                       \
    case 6: f(6, a, n_in, w, stride, z, next); break;                       \
    case 7: f(7, a, n_in, w, stride, z, next); break;                       \
    default: f(8, a, n_in, w, stride, z, next); break;                      \
    }
#else
#define BY_COUNT(f, next)                                                   \
    switch (examples) {                                                     \
    case 1: f(1, a, n_in, w, stride, z, next); break;                       \
    case 2: f(2, a, n_in, w, stride, z, next); break;                       \
    case 3: f(3, a, n_in, w, stride, z, next); break;                       \
    default: f(4, a, n_in, w, stride, z, next); break;                      \
    }
#endif

/* The sums of 1 … FASTMLP_SAMPLES examples and N outputs: with fewer
 * examples, fewer sums run side by side, so each example costs more, but no
 * work is repeated. Given `next` (as many rows as examples), their inputs
 * are fetched meanwhile. */
static void FASTMLP_NAME(weighted_sums_block)(
    int examples, const T* const* a, Py_ssize_t n_in, const T* w, Py_ssize_t stride, T* const* z,
    const T* const* next)
{
    BY_COUNT(FASTMLP_NAME(weighted_sums_of), next)
}

/* The same for UL outputs, a single unit vector: for layers narrower than N. */
static void FASTMLP_NAME(weighted_sums_narrow)(
    int examples, const T* const* a, Py_ssize_t n_in, const T* w, Py_ssize_t stride, T* const* z)
{
    BY_COUNT(FASTMLP_NAME(unit_sums_of), NULL)
}
#undef BY_COUNT

/* One example's plain step on the rows k = 0 … rows−1 of N outputs that start
 * at w (row k at w + k·stride): w[k][q] = w[k][q] − step·(a[k]·d[q]). The
 * deltas stay in registers for all the rows. */
static void FASTMLP_NAME(one_example_rows)(
    const T* a, Py_ssize_t rows, const T* d, T step, T* w, Py_ssize_t stride)
{
#ifdef FASTMLP_VECTORS
    V dv[NV];
    for (int v = 0; v < NV; v++) dv[v] = LOAD(d + v * L);
    for (Py_ssize_t k = 0; k < rows; k++) {
        T ak = a[k];
        for (int v = 0; v < NV; v++) {
            T* o = w + k * stride + v * L;
            STORE(o, VMADD(LOAD(o), -step, ak * dv[v]));
        }
    }
#else
    for (Py_ssize_t k = 0; k < rows; k++)
        for (int q = 0; q < N; q++) w[k * stride + q] = MADD(w[k * stride + q], -step, a[k] * d[q]);
#endif
}

/* one_example_rows on the N outputs at w, and, row by row as each is
 * stepped, the next example's sums over the new weights:
 * z[q] = Σ_k w[k][q]·x[k], k = 0 … rows−1 in order. The sums wait on the
 * latency of their additions; the step's independent work fills the gaps.
 * Given `next` (the following example's inputs, or NULL), its cache lines
 * are fetched as the sums read x's. */
static void FASTMLP_NAME(step_then_sums)(
    const T* a, Py_ssize_t rows, const T* d, T step, T* w, Py_ssize_t stride, const T* x, T* z,
    const T* next)
{
#ifdef FASTMLP_VECTORS
    enum { LINE = 64 / sizeof(T) };
    V dv[NV], s[NV] = {{0}};  /* set at k = 0; the zeros only keep GCC from warning when rows is 0 */
    for (int v = 0; v < NV; v++) dv[v] = LOAD(d + v * L);
    for (Py_ssize_t k = 0; k < rows; k++) {
        T ak = a[k], xk = x[k];
        if (next && k % LINE == 0) __builtin_prefetch(next + k, 0, 3);
        for (int v = 0; v < NV; v++) {
            T* o = w + k * stride + v * L;
            V wk = VMADD(LOAD(o), -step, ak * dv[v]);
            STORE(o, wk);
            s[v] = k ? VMADD(s[v], xk, wk) : xk * wk;
        }
    }
    for (int v = 0; v < NV; v++) STORE(z + v * L, s[v]);
#else
    FASTMLP_NAME(one_example_rows)(a, rows, d, step, w, stride);
    for (int q = 0; q < N; q++) {
        T t = x[0] * w[q];
        for (Py_ssize_t k = 1; k < rows; k++) t = MADD(t, x[k], w[k * stride + q]);
        z[q] = t;
    }
#endif
}
