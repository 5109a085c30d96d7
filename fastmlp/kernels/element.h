/* One element, for one float type (included by typed.h): fastmlp's exp,
 * the multiply-add of the arithmetic contract, and its step on one weight
 * and on a vector of weights. exp's constants stay defined for units.h, which takes exp a
 * vector at a time; typed.h undefines them. */

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

/* acc + x·y, the multiply-add of the sums: two roundings in the default
 * contract; one fused operation, rounded once, in the fused contract. MADD
 * takes scalars; VMADD and UMADD an accumulating vector of type V or U, a
 * scalar x and a vector y of that type (shapes.h's FASTMLP_FMA_*). No other
 * operation is ever fused: -ffp-contract=off. */
#if FASTMLP_FUSED
#if FASTMLP_F64
#define FUSE fma
#define VMADD(acc, x, y) FASTMLP_FMA_OF(f64, FASTMLP_VBYTES)(acc, x, y)
#define UMADD(acc, x, y) FASTMLP_FMA_OF(f64, FASTMLP_UBYTES_F64)(acc, x, y)
#else
#define FUSE fmaf
#define VMADD(acc, x, y) FASTMLP_FMA_OF(f32, FASTMLP_VBYTES)(acc, x, y)
#define UMADD(acc, x, y) FASTMLP_FMA_OF(f32, FASTMLP_UBYTES_F32)(acc, x, y)
#endif
#define MADD(acc, x, y) FUSE((x), (y), (acc))
#else
#define MADD(acc, x, y) ((acc) + (x) * (y))
#define VMADD(acc, x, y) ((acc) + (x) * (y))
#define UMADD(acc, x, y) ((acc) + (x) * (y))
#endif
/* MADD for the Cython layers (madd() of _element.pxi). */
static inline T FASTMLP_NAME(madd)(T acc, T x, T y) { return MADD(acc, x, y); }

/* A finished gradient sum s into the weight *c: stored as it is, or with
 * step_out the step of the arithmetic contract (velocity *vel, or NULL), as
 * STEP_VECTOR below. */
static inline void FASTMLP_NAME(take_step)(T* c, T s, int step_out, T step, T decay, T mu, T* vel)
{
    if (!step_out) {
        *c = s;
    } else if (vel) {
#if FASTMLP_FUSED
        *vel = MADD(mu * *vel, -step, s);
        *c = MADD(*vel, decay, *c);
#else
        *vel = mu * *vel - step * s;
        *c = decay * *c + *vel;
#endif
    } else {
        *c = MADD(decay * *c, -step, s);  /* decay·w is w when decay is 1 */
    }
}

#ifdef FASTMLP_VECTORS
/* A finished vector of gradient sums s into the weights at o (vectors of type
 * VT, loaded and stored by VLOAD and VSTORE, multiply-added by VMADD_ (VMADD
 * or UMADD)): stored as it is, or with
 * step_out the step of the arithmetic contract (velocities at pv, or NULL),
 * each + of a product fused in the fused contract:
 *   w = w − step·s                           (decay 1, no velocities)
 *   w = (decay·w) − step·s                   (no velocities)
 *   v = (mu·v) − step·s, w = (decay·w) + v   (velocities) */
#if FASTMLP_FUSED
#define STEP_WITH_VELOCITY(VT, VLOAD, VSTORE, VMADD_, o, pv, s, step, decay, mu)    \
    do {                                                                            \
        VT v_ = VMADD_((mu) * VLOAD(pv), -(step), s);                               \
        VSTORE(pv, v_);                                                             \
        VSTORE(o, VMADD_(v_, decay, VLOAD(o)));                                     \
    } while (0)
#else
#define STEP_WITH_VELOCITY(VT, VLOAD, VSTORE, VMADD_, o, pv, s, step, decay, mu)    \
    do {                                                                            \
        VT v_ = (mu) * VLOAD(pv) - (step) * (s);                                    \
        VSTORE(pv, v_);                                                             \
        VSTORE(o, (decay) * VLOAD(o) + v_);                                         \
    } while (0)
#endif
#define STEP_VECTOR(VT, VLOAD, VSTORE, VMADD_, o, pv, s, step_out, step, decay, mu) \
    do {                                                                            \
        if (!(step_out)) {                                                          \
            VSTORE(o, s);                                                           \
        } else if (pv) {                                                            \
            STEP_WITH_VELOCITY(VT, VLOAD, VSTORE, VMADD_, o, pv, s, step, decay, mu); \
        } else if ((decay) != 1) {                                                  \
            VSTORE(o, VMADD_((decay) * VLOAD(o), -(step), s));                      \
        } else {                                                                    \
            VSTORE(o, VMADD_(VLOAD(o), -(step), s));                                \
        }                                                                           \
    } while (0)
#endif
