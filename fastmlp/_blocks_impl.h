/* Included by _blocks.h with FASTMLP_T (the float type), FASTMLP_V (a
 * vector of it), FASTMLP_LANES (its lanes), FASTMLP_NV (vectors per block),
 * FASTMLP_U, FASTMLP_UI and FASTMLP_ULANES (the unit vector, its integer
 * twin and its lanes), FASTMLP_ROWS (weight rows per gradient block) and
 * FASTMLP_NAME (the suffix) defined. A block covers N = NV·LANES outputs.
 * The loops over a block's examples or rows and its vectors have constant
 * bounds: the compiler unrolls them and keeps the arrays of sums in
 * registers. */

#define T FASTMLP_T
#define NV FASTMLP_NV
#define L FASTMLP_LANES
#define N (NV * L)
#define UL FASTMLP_ULANES

#ifdef FASTMLP_VECTORS
#define V FASTMLP_V
static inline V FASTMLP_NAME(vload)(const T* p) { V v; memcpy(&v, p, sizeof v); return v; }
static inline void FASTMLP_NAME(vstore)(T* p, V v) { memcpy(p, &v, sizeof v); }
#define LOAD FASTMLP_NAME(vload)
#define STORE FASTMLP_NAME(vstore)
#define U FASTMLP_U
static inline U FASTMLP_NAME(uload)(const T* p) { U u; memcpy(&u, p, sizeof u); return u; }
static inline void FASTMLP_NAME(ustore)(T* p, U u) { memcpy(p, &u, sizeof u); }
#define ULOAD FASTMLP_NAME(uload)
#define USTORE FASTMLP_NAME(ustore)
#endif

/* exp's constants (fastmlp.reference's _EXP): its clamp, the shifter that
 * rounds x·log2 e to an integer k, ln 2 split in two, the polynomial's
 * degree, and the exponent's bias and place in the bits (integer types EXP_INT, EXP_UINT). */
#if FASTMLP_F64
#define EXP_LO -746.0
#define EXP_HI 710.0
#define EXP_SHIFTER 6755399441055744.0  /* 1.5·2^52 */
#define EXP_LN2_HI 0.693147180559663
#define EXP_LN2_LO 2.8235290563031577e-13
#define EXP_DEGREE 13
#define EXP_BIAS 1023
#define EXP_MANTISSA_BITS 52
#define EXP_INT int64_t
#define EXP_UINT uint64_t
#else
#define EXP_LO -104.0
#define EXP_HI 89.0
#define EXP_SHIFTER 12582912.0  /* 1.5·2^23 */
#define EXP_LN2_HI 0.693145751953125
#define EXP_LN2_LO 1.428606765330187e-06
#define EXP_DEGREE 7
#define EXP_BIAS 127
#define EXP_MANTISSA_BITS 23
#define EXP_INT int32_t
#define EXP_UINT uint32_t
#endif
#define EXP_LOG2_E 1.4426950408889634

/* fastmlp.reference.exp, step by step (see its docstring); each constant is
 * the reference's float64 literal rounded once to T. */
static inline T FASTMLP_NAME(exp)(T x)
{
    if (x < (T)EXP_LO) x = (T)EXP_LO;
    if (x > (T)EXP_HI) x = (T)EXP_HI;
    T t = x * (T)EXP_LOG2_E + (T)EXP_SHIFTER;
    T kf = t - (T)EXP_SHIFTER;
    T r = (x - kf * (T)EXP_LN2_HI) - kf * (T)EXP_LN2_LO;
    T p = (T)fastmlp_inv_factorial[EXP_DEGREE];
    for (int n = EXP_DEGREE - 1; n >= 0; n--) p = p * r + (T)fastmlp_inv_factorial[n];
    /* k sits in the low bits of t, since t = shifter + k exactly. */
    T shifter = (T)EXP_SHIFTER, two_k1, two_k2;
    EXP_UINT t_bits, shifter_bits, bits;
    memcpy(&t_bits, &t, sizeof t);
    memcpy(&shifter_bits, &shifter, sizeof shifter);
    EXP_INT k = (EXP_INT)(t_bits - shifter_bits);
    EXP_INT k1 = k >> 1;
    bits = (EXP_UINT)(k1 + EXP_BIAS) << EXP_MANTISSA_BITS;
    memcpy(&two_k1, &bits, sizeof bits);
    bits = (EXP_UINT)(k - k1 + EXP_BIAS) << EXP_MANTISSA_BITS;
    memcpy(&two_k2, &bits, sizeof bits);
    return (p * two_k1) * two_k2;
}

/* A finished gradient sum s into the weight *c: stored as it is, or with
 * step_out the step of the arithmetic contract (velocity *vel, or NULL), as
 * STEP_VECTOR below. */
static inline void FASTMLP_NAME(take_step)(T* c, T s, int step_out, T step, T decay, T mu, T* vel)
{
    if (!step_out) {
        *c = s;
    } else if (vel) {
        *vel = mu * *vel - step * s;
        *c = decay * *c + *vel;
    } else {
        *c = decay * *c - step * s;  /* decay·w is w when decay is 1 */
    }
}

#ifdef FASTMLP_VECTORS
/* A finished vector of gradient sums s into the weights at o (vectors of type
 * VT, loaded and stored by VLOAD and VSTORE): stored as it is, or with
 * step_out the step of the arithmetic contract (velocities at pv, or NULL):
 *   w = w − step·s                           (decay 1, no velocities)
 *   w = (decay·w) − step·s                   (no velocities)
 *   v = (mu·v) − step·s, w = (decay·w) + v   (velocities) */
#define STEP_VECTOR(VT, VLOAD, VSTORE, o, pv, s, step_out, step, decay, mu)          \
    do {                                                                          \
        if (!(step_out)) {                                                        \
            VSTORE(o, s);                                                         \
        } else if (pv) {                                                          \
            VT v_ = (mu) * VLOAD(pv) - (step) * (s);                              \
            VSTORE(pv, v_);                                                       \
            VSTORE(o, (decay) * VLOAD(o) + v_);                                   \
        } else if ((decay) != 1) {                                                \
            VSTORE(o, (decay) * VLOAD(o) - (step) * (s));                         \
        } else {                                                                  \
            VSTORE(o, VLOAD(o) - (step) * (s));                                   \
        }                                                                         \
    } while (0)
#endif

/* The two sweeps (_vectors_impl.h) over the block's vectors, then over
 * single unit vectors. */
#define SV V
#define SL L
#define SNV NV
#define SLOAD LOAD
#define SSTORE STORE
#define SUMS_OF FASTMLP_NAME(weighted_sums_of)
#define NUDGE_BLOCK FASTMLP_NAME(nudge_block)
#include "_vectors_impl.h"
#define SV U
#define SL UL
#define SNV 1
#define SLOAD ULOAD
#define SSTORE USTORE
#define SUMS_OF FASTMLP_NAME(unit_sums_of)
#define NUDGE_BLOCK FASTMLP_NAME(nudge_narrow)
#include "_vectors_impl.h"

/* The wide layers' tiles and the blocked products built on them. */
#include "_tiles_impl.h"

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
            STORE(o, LOAD(o) - step * (ak * dv[v]));
        }
    }
#else
    for (Py_ssize_t k = 0; k < rows; k++)
        for (int q = 0; q < N; q++) w[k * stride + q] = w[k * stride + q] - step * (a[k] * d[q]);
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
            V wk = LOAD(o) - step * (ak * dv[v]);
            STORE(o, wk);
            s[v] = k ? s[v] + xk * wk : xk * wk;
        }
    }
    for (int v = 0; v < NV; v++) STORE(z + v * L, s[v]);
#else
    FASTMLP_NAME(one_example_rows)(a, rows, d, step, w, stride);
    for (int q = 0; q < N; q++) {
        T t = x[0] * w[q];
        for (Py_ssize_t k = 1; k < rows; k++) t = t + x[k] * w[k * stride + q];
        z[q] = t;
    }
#endif
}

#ifdef FASTMLP_VECTORS
/* Activations and deltas (_units_impl.h) a unit vector at a time; for float32
 * with AVX-512, layers of 16 units or more a whole vector at a time. */
#define AV U
#define AVI FASTMLP_UI
#define AL UL
#define ALOAD ULOAD
#define ASTORE USTORE
#define UNAME(f) FASTMLP_NAME(f##_unit)
#include "_units_impl.h"
#if FASTMLP_LANES > FASTMLP_ULANES
#define FASTMLP_WIDE_UNITS 1
#define AV V
#define AVI FASTMLP_VI
#define AL L
#define ALOAD LOAD
#define ASTORE STORE
#define UNAME(f) FASTMLP_NAME(f##_wide)
#include "_units_impl.h"
#endif

/* One example's deltas of a layer of n ≥ UL units (see _units_impl.h). */
static void FASTMLP_NAME(deltas_back)(const T* w, Py_ssize_t n, const T* d_next, Py_ssize_t n_next,
                                      const T* a, int kind, T* d)
{
#ifdef FASTMLP_WIDE_UNITS
    if (n >= L) {
        FASTMLP_NAME(deltas_wide)(w, n, d_next, n_next, a, kind, d);
        return;
    }
#endif
    FASTMLP_NAME(deltas_unit)(w, n, d_next, n_next, a, kind, d);
}

/* z_i ← activation(z_i + bias) for the rows z_0 … z_{rows−1} of n ≥ UL units each. */
static void FASTMLP_NAME(activate_units)(int rows, T* const* z, const T* bias, Py_ssize_t n, int kind)
{
#ifdef FASTMLP_WIDE_UNITS
    if (n >= L) {
        FASTMLP_NAME(activate_wide)(rows, z, bias, n, kind);
        return;
    }
#endif
    FASTMLP_NAME(activate_unit)(rows, z, bias, n, kind);
}
#undef FASTMLP_WIDE_UNITS
#else
/* Never called without vectors (FASTMLP_UNIT_LANES_* is 0): the kernels refer to them. */
static void FASTMLP_NAME(activate_units)(int rows, T* const* z, const T* bias, Py_ssize_t n, int kind) {}
static void FASTMLP_NAME(deltas_back)(const T* w, Py_ssize_t n, const T* d_next, Py_ssize_t n_next,
                                      const T* a, int kind, T* d) {}
#endif

#undef EXP_LO
#undef EXP_HI
#undef EXP_SHIFTER
#undef EXP_LN2_HI
#undef EXP_LN2_LO
#undef EXP_DEGREE
#undef EXP_BIAS
#undef EXP_MANTISSA_BITS
#undef EXP_LOG2_E
#undef EXP_INT
#undef EXP_UINT

#ifdef FASTMLP_VECTORS
#undef STEP_VECTOR
#undef V
#undef LOAD
#undef STORE
#undef U
#undef ULOAD
#undef USTORE
#endif
#undef T
#undef NV
#undef L
#undef N
#undef UL
