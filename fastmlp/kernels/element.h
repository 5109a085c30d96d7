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
/* IEEE's square root, correctly rounded on every target (Adam's step): SQRT
 * on scalars, VSQRT and USQRT on vectors of type V and U (shapes.h). */
#if FASTMLP_F64
#define SQRT sqrt
#ifdef FASTMLP_VECTORS
#define VSQRT(x) FASTMLP_SQRT_OF(f64, FASTMLP_VBYTES)(x)
#define USQRT(x) FASTMLP_SQRT_OF(f64, FASTMLP_UBYTES_F64)(x)
#endif
#else
#define SQRT sqrtf
#ifdef FASTMLP_VECTORS
#define VSQRT(x) FASTMLP_SQRT_OF(f32, FASTMLP_VBYTES)(x)
#define USQRT(x) FASTMLP_SQRT_OF(f32, FASTMLP_UBYTES_F32)(x)
#endif
#endif
/* MADD for the Cython layers (madd() of _element.pxi). */
static inline T FASTMLP_NAME(madd)(T acc, T x, T y) { return MADD(acc, x, y); }

/* The rule's step on one weight *w from its finished gradient sum s
 * (fastmlp.reference, rules 7 and 10, and 7' and 10' in the fused contract,
 * where MADD fuses), with the weight's state at *state: its velocity, or its
 * first moment, the second being at state + rule->second (Adam). The plain
 * step has none. */
static inline void FASTMLP_NAME(take_step)(T* w, T s, const fastmlp_rule* rule, T* state)
{
    T decay = (T)rule->decay;
    if (rule->kind == FASTMLP_PLAIN) {
        *w = MADD(decay * *w, -(T)rule->step, s);  /* decay·w is w when decay is 1 */
    } else if (rule->kind == FASTMLP_ADAM) {
        T* second = state + rule->second;
        T g = (T)rule->scale * s;
        T m = MADD((T)rule->beta1 * *state, (T)rule->rest1, g);
        T v = MADD((T)rule->beta2 * *second, (T)rule->rest2, g * g);
        T u = MADD((T)rule->eps, SQRT(v), (T)rule->root);
        *state = m;
        *second = v;
        *w = MADD(decay * *w, -(T)rule->rate, m / u);
    } else {  /* momentum: v = (μ·v) − s·G, w = (d·w) + v, or Nesterov's look-ahead for v */
        T mu = (T)rule->mu, step = (T)rule->step;
        T v = MADD(mu * *state, -step, s);
        *state = v;
        if (rule->kind == FASTMLP_NESTEROV) v = MADD(mu * v, -step, s);
        *w = MADD(v, decay, *w);
    }
}

#ifdef FASTMLP_VECTORS
/* take_step on a vector: the finished gradient sums s (of vector type VT,
 * loaded and stored by VLOAD and VSTORE, multiply-added by VMADD_, square
 * roots by VSQRT_) into the weights at o, with the state at pv; or, with no
 * rule, the sums stored at o as they are. */
#define STEP_VECTOR(VT, VLOAD, VSTORE, VMADD_, VSQRT_, o, pv, s, rule)                \
    do {                                                                            \
        const fastmlp_rule* r_ = (rule);                                            \
        T d_ = r_ ? (T)r_->decay : (T)1;                                            \
        if (!r_) {                                                                  \
            VSTORE(o, s);                                                           \
        } else if (r_->kind == FASTMLP_PLAIN) {                                     \
            VSTORE(o, VMADD_(d_ != 1 ? d_ * VLOAD(o) : VLOAD(o), -(T)r_->step, s)); \
        } else if (r_->kind == FASTMLP_ADAM) {                                      \
            T* p2_ = (pv) + r_->second;                                             \
            VT g_ = (T)r_->scale * (s);                                             \
            VT m_ = VMADD_((T)r_->beta1 * VLOAD(pv), (T)r_->rest1, g_);             \
            VT v_ = VMADD_((T)r_->beta2 * VLOAD(p2_), (T)r_->rest2, g_ * g_);       \
            VT e_ = {0};                                                            \
            VT u_ = VMADD_(e_ + (T)r_->eps, (T)r_->root, VSQRT_(v_));               \
            VSTORE(pv, m_);                                                         \
            VSTORE(p2_, v_);                                                        \
            VSTORE(o, VMADD_(d_ * VLOAD(o), -(T)r_->rate, m_ / u_));                \
        } else {                                                                    \
            T mu_ = (T)r_->mu, step_ = (T)r_->step;                                 \
            VT v_ = VMADD_(mu_ * VLOAD(pv), -step_, s);                             \
            VSTORE(pv, v_);                                                         \
            if (r_->kind == FASTMLP_NESTEROV) v_ = VMADD_(mu_ * v_, -step_, s);     \
            VSTORE(o, VMADD_(v_, d_, VLOAD(o)));                                    \
        }                                                                           \
    } while (0)
#endif
