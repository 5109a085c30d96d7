/* A layer's activations and deltas over vectors of one type, side by side.
 * units.h includes this with the vector type AV, its integer twin AVI, its
 * lanes AL, ALOAD, ASTORE, AMADD (the contract's multiply-add on AV) and the
 * names' suffix UNAME defined: for unit vectors, and for float32 with
 * AVX-512 also for whole 16-lane vectors, which take layers of 16 units or
 * more in half the operations. It undefines them
 * at its end, ready for the next inclusion. */

static inline AV UNAME(splat)(T c)
{
    AV v;
    for (int i = 0; i < AL; i++) v[i] = c;
    return v;
}
#define SPLAT UNAME(splat)

/* The lanes of a where m is all ones, of b where it is all zeros. */
static inline AV UNAME(select)(AVI m, AV a, AV b) { return (AV)(((AVI)a & m) | ((AVI)b & ~m)); }
#define SELECT UNAME(select)

/* exp() above lane by lane, on E vectors side by side: each step for all E
 * before the next, so that E independent chains fill the pipelines instead of
 * one waiting on its own latency. The same operations on the same constants
 * in the same order as exp(), so the same bits. */
static inline FASTMLP_ALWAYS_INLINE void UNAME(vexp_side)(int E, AV* x)
{
    AV t[FASTMLP_SAMPLES], r[FASTMLP_SAMPLES], p[FASTMLP_SAMPLES];
    for (int e = 0; e < E; e++) {
        x[e] = SELECT(x[e] < SPLAT((T)EXP_LO), SPLAT((T)EXP_LO), x[e]);
        x[e] = SELECT(x[e] > SPLAT((T)EXP_HI), SPLAT((T)EXP_HI), x[e]);
        t[e] = x[e] * (T)EXP_LOG2_E + (T)EXP_SHIFTER;
        AV kf = t[e] - (T)EXP_SHIFTER;
        r[e] = (x[e] - kf * (T)EXP_LN2_HI) - kf * (T)EXP_LN2_LO;
        p[e] = SPLAT((T)fastmlp_inv_factorial[EXP_DEGREE]);
    }
#pragma GCC unroll 16
    for (int n = EXP_DEGREE - 1; n >= 0; n--)
        for (int e = 0; e < E; e++) p[e] = p[e] * r[e] + (T)fastmlp_inv_factorial[n];
    for (int e = 0; e < E; e++) {
        AVI k = (AVI)t[e] - (AVI)SPLAT((T)EXP_SHIFTER);
        AVI k1 = k >> 1;
        AV two_k1 = (AV)((k1 + EXP_BIAS) << EXP_MANTISSA_BITS);
        AV two_k2 = (AV)((k - k1 + EXP_BIAS) << EXP_MANTISSA_BITS);
        x[e] = (p[e] * two_k1) * two_k2;
    }
}

/* activate() of _element.pxi lane by lane on E vectors side by side, for the
 * kinds FASTMLP_SIGMOID, FASTMLP_RELU and FASTMLP_TANH. */
static inline FASTMLP_ALWAYS_INLINE void UNAME(vactivate_side)(int E, AV* z, int kind)
{
    AV u[FASTMLP_SAMPLES];
    if (kind == FASTMLP_SIGMOID) {
        for (int e = 0; e < E; e++) u[e] = -z[e];
        UNAME(vexp_side)(E, u);
        for (int e = 0; e < E; e++) z[e] = (T)1 / ((T)1 + u[e]);
    } else if (kind == FASTMLP_TANH) {
        for (int e = 0; e < E; e++)  /* −2|z|: |z| has the sign bit cleared */
            u[e] = (T)-2 * (AV)((AVI)z[e] & ~(AVI)SPLAT((T)-0.0));
        UNAME(vexp_side)(E, u);
        for (int e = 0; e < E; e++) {
            AV v = ((T)1 - u[e]) / ((T)1 + u[e]);
            z[e] = SELECT(z[e] >= (T)0, v, -v);
        }
    } else {  /* ReLU: NaN passes, −0 becomes +0 */
        for (int e = 0; e < E; e++) z[e] = SELECT(z[e] <= (T)0, SPLAT((T)0), z[e]);
    }
}

/* z_e ← activation(z_e + bias) over the n ≥ AL units of E examples' rows, AL
 * units of all E rows at a time. When AL does not divide n, the last vector
 * ends at n and overlaps the one before: it is computed first, from the
 * inputs, and stored last, so the overlap is computed twice from the same
 * inputs and stored twice, the same. */
static inline FASTMLP_ALWAYS_INLINE void UNAME(activate_side)(
    int E, T* const* z, const T* bias, Py_ssize_t n, int kind)
{
    Py_ssize_t last = n - AL;
    AV v[FASTMLP_SAMPLES], tail[FASTMLP_SAMPLES];
    for (int e = 0; e < E; e++) tail[e] = ALOAD(z[e] + last) + ALOAD(bias + last);
    UNAME(vactivate_side)(E, tail, kind);
    for (Py_ssize_t j = 0; j < last; j += AL) {
        for (int e = 0; e < E; e++) v[e] = ALOAD(z[e] + j) + ALOAD(bias + j);
        UNAME(vactivate_side)(E, v, kind);
        for (int e = 0; e < E; e++) ASTORE(z[e] + j, v[e]);
    }
    for (int e = 0; e < E; e++) ASTORE(z[e] + last, tail[e]);
}

static inline FASTMLP_ALWAYS_INLINE void UNAME(activate_kind)(
    int rows, T* const* z, const T* bias, Py_ssize_t n, int kind)
{
    for (; rows >= FASTMLP_SAMPLES; rows -= FASTMLP_SAMPLES, z += FASTMLP_SAMPLES)
        UNAME(activate_side)(FASTMLP_SAMPLES, z, bias, n, kind);
    if (FASTMLP_SAMPLES > 4 && rows >= 4) {
        UNAME(activate_side)(4, z, bias, n, kind);
        rows -= 4, z += 4;
    }
    if (rows >= 2) {
        UNAME(activate_side)(2, z, bias, n, kind);
        rows -= 2, z += 2;
    }
    if (rows)
        UNAME(activate_side)(1, z, bias, n, kind);
}

/* The deltas of AL units k … k+AL−1 of one example (see UNAME(deltas)). */
static inline FASTMLP_ALWAYS_INLINE AV UNAME(deltas_at)(const T* w, Py_ssize_t n, const T* d_next,
                                                        Py_ssize_t n_next, const T* a, int kind,
                                                        const T* d, Py_ssize_t k)
{
    AV s = ALOAD(w + k) * d_next[0];
    for (Py_ssize_t j = 1; j < n_next; j++) s = AMADD(s, d_next[j], ALOAD(w + j * n + k));
    AV ak = ALOAD(a + k), slope;
    if (kind == FASTMLP_SLOPES)
        slope = ALOAD(d + k);
    else if (kind == FASTMLP_SIGMOID)
        slope = ak * ((T)1 - ak);
    else if (kind == FASTMLP_TANH)
        slope = (T)1 - ak * ak;
    else
        slope = SELECT(ak > (T)0, SPLAT((T)1), SPLAT((T)0));
    return s * slope;
}

/* One example's deltas of a layer of n ≥ AL units from the next layer's n_next
 * deltas d_next: d_k = (Σ_j W[j][k]·d_next_j)·σ'(a_k), the sum over j = 0 …
 * n_next−1 in order, σ' from the activations a (derivative() of _element.pxi,
 * lane by lane), or, for kind FASTMLP_SLOPES, read from d itself. W is not
 * transposed here (row j starts at w + j·n), so AL units k go at a time; the
 * last vector ends at n and overlaps the one before: it is computed first,
 * before anything of d is overwritten, and stored last, the same values. */
static void UNAME(deltas)(const T* w, Py_ssize_t n, const T* d_next, Py_ssize_t n_next,
                          const T* a, int kind, T* d)
{
    Py_ssize_t last = n - AL;
    AV tail = UNAME(deltas_at)(w, n, d_next, n_next, a, kind, d, last);
    for (Py_ssize_t k = 0; k < last; k += AL) ASTORE(d + k, UNAME(deltas_at)(w, n, d_next, n_next, a, kind, d, k));
    ASTORE(d + last, tail);
}

/* z_i ← activation(z_i + bias) for the rows z_0 … z_{rows−1} of n ≥ AL units each. */
static void UNAME(activate)(int rows, T* const* z, const T* bias, Py_ssize_t n, int kind)
{
    if (kind == FASTMLP_SIGMOID)
        UNAME(activate_kind)(rows, z, bias, n, FASTMLP_SIGMOID);
    else if (kind == FASTMLP_TANH)
        UNAME(activate_kind)(rows, z, bias, n, FASTMLP_TANH);
    else
        UNAME(activate_kind)(rows, z, bias, n, FASTMLP_RELU);
}
#undef SPLAT
#undef SELECT
#undef AV
#undef AVI
#undef AL
#undef ALOAD
#undef ASTORE
#undef AMADD
#undef UNAME
