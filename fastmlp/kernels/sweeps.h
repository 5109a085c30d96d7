/* The two sweeps of a block over vectors of one type: the weighted sums of a
 * block of examples, and the gradient sums of a block of weight rows.
 * blocks.h includes this twice, with the sweeps' vector type SV, its
 * lanes SL, the vectors per block SNV, SLOAD, SSTORE, SMADD (the contract's
 * multiply-add on SV, element.h), and the functions'
 * names SUMS_OF and NUDGE_BLOCK defined: for the block's vectors, and for
 * single unit vectors, the outputs of layers narrower than a block. It
 * undefines them at its end, ready for the next inclusion. */
#define SN (SNV * SL)

/* z_e[q] = Σ_k w[k·stride + q]·a_e[k], k = 0 … n_in−1 in order, for the E
 * examples a_0 … a_{E−1} and the SN outputs q that start at w.
 * Given `next` (the E inputs of the next block, or NULL), their cache lines
 * are fetched as the sums go, a line of each per line of a_e read: the next
 * block's inputs arrive from memory while this one computes. */
static inline FASTMLP_ALWAYS_INLINE void SUMS_OF(
    int E, const T* const* a, Py_ssize_t n_in, const T* w, Py_ssize_t stride,
    T* const* z, const T* const* next)
{
#ifdef FASTMLP_VECTORS
    enum { LINE = 64 / sizeof(T) };
    SV s[FASTMLP_SAMPLES][SNV], wk[SNV];
    for (int v = 0; v < SNV; v++) wk[v] = SLOAD(w + v * SL);
    for (int e = 0; e < E; e++)
        for (int v = 0; v < SNV; v++) s[e][v] = a[e][0] * wk[v];
    /* A cache line of inputs at a time: the fetches need no test per input, and
     * the unrolled loop's own instructions leave the vector units more slots. */
    for (Py_ssize_t line = 0; line < n_in; line += LINE) {
        Py_ssize_t k = line ? line : 1, end = line + LINE < n_in ? line + LINE : n_in;
        if (next)
            for (int e = 0; e < E; e++) __builtin_prefetch(next[e] + line, 0, 3);
#pragma GCC unroll 4
        for (; k < end; k++) {
            for (int v = 0; v < SNV; v++) wk[v] = SLOAD(w + k * stride + v * SL);
            for (int e = 0; e < E; e++) {
                T b = a[e][k];
                for (int v = 0; v < SNV; v++) s[e][v] = SMADD(s[e][v], b, wk[v]);
            }
        }
    }
    for (int e = 0; e < E; e++)
        for (int v = 0; v < SNV; v++) SSTORE(z[e] + v * SL, s[e][v]);
#else
    for (int e = 0; e < E; e++)
        for (int q = 0; q < SN; q++) {
            T t = a[e][0] * w[q];
            for (Py_ssize_t k = 1; k < n_in; k++) t = MADD(t, a[e][k], w[k * stride + q]);
            z[e][q] = t;
        }
#endif
}

/* The gradient sums of FASTMLP_ROWS weight rows and SN = SNV·SL outputs:
 * S_r[q] = in_r[q] + Σ_i a_i[r]·d_i[q] for i = i0 … i1−1 in order, where a_i = a + (idx ? idx[i] : i)·a_stride
 * (the inputs r of example i) and d_i = d + i·d_stride (its SN deltas).
 * With first, the sums start from the term of i0 instead, and `in` is not read.
 * Stores out_r[q] = S_r[q], or, given a rule, takes its step on the weights
 * `out` instead (w = out_r[q], s = S_r[q]; take_step of element.h, with the
 * state vel laid out like out).
 * Row r of `in` starts at in + r·in_stride, of `out` at out + r·out_stride. */
static void NUDGE_BLOCK(
    const T* a, const Py_ssize_t* idx, Py_ssize_t a_stride, const T* d, Py_ssize_t d_stride,
    Py_ssize_t i0, Py_ssize_t i1, int first, const T* in, Py_ssize_t in_stride,
    T* out, Py_ssize_t out_stride, const fastmlp_rule* rule, T* vel)
{
#ifdef FASTMLP_VECTORS
    SV s[FASTMLP_ROWS][SNV], di[SNV];
    Py_ssize_t i = i0;
    if (first) {
        const T* ai = a + (idx ? idx[i] : i) * a_stride;
        for (int v = 0; v < SNV; v++) di[v] = SLOAD(d + i * d_stride + v * SL);
        for (int r = 0; r < FASTMLP_ROWS; r++)
            for (int v = 0; v < SNV; v++) s[r][v] = ai[r] * di[v];
        i++;
    } else {
        for (int r = 0; r < FASTMLP_ROWS; r++)
            for (int v = 0; v < SNV; v++) s[r][v] = SLOAD(in + r * in_stride + v * SL);
    }
    for (; i < i1; i++) {
        const T* ai = a + (idx ? idx[i] : i) * a_stride;
        if (idx) __builtin_prefetch(ai + 2 * 64 / sizeof(T), 0, 3);
        for (int v = 0; v < SNV; v++) di[v] = SLOAD(d + i * d_stride + v * SL);
        for (int r = 0; r < FASTMLP_ROWS; r++) {
            T b = ai[r];
            for (int v = 0; v < SNV; v++) s[r][v] = SMADD(s[r][v], b, di[v]);
        }
    }
    for (int r = 0; r < FASTMLP_ROWS; r++)
        for (int v = 0; v < SNV; v++) {
            T* o = out + r * out_stride + v * SL;
            T* p = vel ? vel + r * out_stride + v * SL : NULL;
            STEP_VECTOR(SV, SLOAD, SSTORE, SMADD, SSQRT, o, p, s[r][v], rule);
        }
#else
    for (int r = 0; r < FASTMLP_ROWS; r++)
        for (int q = 0; q < SN; q++) {
            T s = first ? 0 : in[r * in_stride + q];
            for (Py_ssize_t i = i0; i < i1; i++) {
                T ai = a[(idx ? idx[i] : i) * a_stride + r], di = d[i * d_stride + q];
                s = (first && i == i0) ? ai * di : MADD(s, ai, di);
            }
            if (rule)
                FASTMLP_NAME(take_step)(out + r * out_stride + q, s, rule, vel ? vel + r * out_stride + q : NULL);
            else
                out[r * out_stride + q] = s;
        }
#endif
}

#undef SN
#undef SV
#undef SL
#undef SNV
#undef SLOAD
#undef SSTORE
#undef SMADD
#undef SSQRT
#undef SUMS_OF
#undef NUDGE_BLOCK
