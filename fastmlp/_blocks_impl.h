/* Included by _blocks.h with FASTMLP_T (the float type), FASTMLP_V (a
 * 32-byte vector of it), FASTMLP_LANES (its lanes), FASTMLP_SPLAT (an
 * initialiser of such a vector with every lane x) and FASTMLP_NAME (the
 * suffix) defined. A block covers 2 vectors: 2·FASTMLP_LANES outputs. */

#define T FASTMLP_T
#define N (2 * FASTMLP_LANES)

#ifdef FASTMLP_VECTORS
#define V FASTMLP_V

static inline V FASTMLP_NAME(vload)(const T* p) { V v; memcpy(&v, p, sizeof v); return v; }
static inline void FASTMLP_NAME(vstore)(T* p, V v) { memcpy(p, &v, sizeof v); }
static inline V FASTMLP_NAME(vsplat)(T x) { V v = FASTMLP_SPLAT(x); return v; }
#define LOAD FASTMLP_NAME(vload)
#define STORE FASTMLP_NAME(vstore)
#define SPLAT FASTMLP_NAME(vsplat)
#endif

/* z_s[q] = Σ_k w[k·stride + q]·a_s[k], k = 0 … n_in−1 in order, for the 4
 * examples a_0 … a_3 and the N outputs q that start at w. */
static void FASTMLP_NAME(weighted_sums_block)(
    const T* a0, const T* a1, const T* a2, const T* a3, Py_ssize_t n_in,
    const T* w, Py_ssize_t stride, T* z0, T* z1, T* z2, T* z3)
{
#ifdef FASTMLP_VECTORS
    const int L = FASTMLP_LANES;
    V w0 = LOAD(w), w1 = LOAD(w + L);
    V s00 = SPLAT(a0[0]) * w0, s01 = SPLAT(a0[0]) * w1;
    V s10 = SPLAT(a1[0]) * w0, s11 = SPLAT(a1[0]) * w1;
    V s20 = SPLAT(a2[0]) * w0, s21 = SPLAT(a2[0]) * w1;
    V s30 = SPLAT(a3[0]) * w0, s31 = SPLAT(a3[0]) * w1;
    for (Py_ssize_t k = 1; k < n_in; k++) {
        const T* wk = w + k * stride;
        w0 = LOAD(wk);
        w1 = LOAD(wk + L);
        V b = SPLAT(a0[k]);
        s00 = s00 + b * w0; s01 = s01 + b * w1;
        b = SPLAT(a1[k]);
        s10 = s10 + b * w0; s11 = s11 + b * w1;
        b = SPLAT(a2[k]);
        s20 = s20 + b * w0; s21 = s21 + b * w1;
        b = SPLAT(a3[k]);
        s30 = s30 + b * w0; s31 = s31 + b * w1;
    }
    STORE(z0, s00); STORE(z0 + L, s01);
    STORE(z1, s10); STORE(z1 + L, s11);
    STORE(z2, s20); STORE(z2 + L, s21);
    STORE(z3, s30); STORE(z3 + L, s31);
#else
    const T* a[4] = {a0, a1, a2, a3};
    T* z[4] = {z0, z1, z2, z3};
    for (int s = 0; s < 4; s++)
        for (int q = 0; q < N; q++) {
            T t = a[s][0] * w[q];
            for (Py_ssize_t k = 1; k < n_in; k++) t = t + a[s][k] * w[k * stride + q];
            z[s][q] = t;
        }
#endif
}

/* The gradient sums of 4 weight rows and N outputs: out_r[q] = in_r[q] + Σ_i a_i[r]·d_i[q]
 * for i = i0 … i1−1 in order, where a_i = a + (idx ? idx[i] : i)·a_stride
 * (the 4 inputs r of example i) and d_i = d + i·d_stride (its N deltas).
 * With first, the sums start from the term of i0 instead, and `in` is not read.
 * Row r of `in` starts at in + r·in_stride, of `out` at out + r·out_stride. */
static void FASTMLP_NAME(nudge_block)(
    const T* a, const Py_ssize_t* idx, Py_ssize_t a_stride, const T* d, Py_ssize_t d_stride,
    Py_ssize_t i0, Py_ssize_t i1, int first, const T* in, Py_ssize_t in_stride,
    T* out, Py_ssize_t out_stride)
{
#ifdef FASTMLP_VECTORS
    const int L = FASTMLP_LANES;
    V s00, s01, s10, s11, s20, s21, s30, s31;
    Py_ssize_t i = i0;
    if (first) {
        const T* ai = a + (idx ? idx[i] : i) * a_stride;
        const T* di = d + i * d_stride;
        V d0 = LOAD(di), d1 = LOAD(di + L);
        s00 = SPLAT(ai[0]) * d0; s01 = SPLAT(ai[0]) * d1;
        s10 = SPLAT(ai[1]) * d0; s11 = SPLAT(ai[1]) * d1;
        s20 = SPLAT(ai[2]) * d0; s21 = SPLAT(ai[2]) * d1;
        s30 = SPLAT(ai[3]) * d0; s31 = SPLAT(ai[3]) * d1;
        i++;
    } else {
        const T *g0 = in, *g1 = in + in_stride, *g2 = in + 2 * in_stride, *g3 = in + 3 * in_stride;
        s00 = LOAD(g0); s01 = LOAD(g0 + L);
        s10 = LOAD(g1); s11 = LOAD(g1 + L);
        s20 = LOAD(g2); s21 = LOAD(g2 + L);
        s30 = LOAD(g3); s31 = LOAD(g3 + L);
    }
    for (; i < i1; i++) {
        const T* ai = a + (idx ? idx[i] : i) * a_stride;
        const T* di = d + i * d_stride;
        V d0 = LOAD(di), d1 = LOAD(di + L);
        V b = SPLAT(ai[0]);
        s00 = s00 + b * d0; s01 = s01 + b * d1;
        b = SPLAT(ai[1]);
        s10 = s10 + b * d0; s11 = s11 + b * d1;
        b = SPLAT(ai[2]);
        s20 = s20 + b * d0; s21 = s21 + b * d1;
        b = SPLAT(ai[3]);
        s30 = s30 + b * d0; s31 = s31 + b * d1;
    }
    T *o0 = out, *o1 = out + out_stride, *o2 = out + 2 * out_stride, *o3 = out + 3 * out_stride;
    STORE(o0, s00); STORE(o0 + L, s01);
    STORE(o1, s10); STORE(o1 + L, s11);
    STORE(o2, s20); STORE(o2 + L, s21);
    STORE(o3, s30); STORE(o3 + L, s31);
#else
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < N; q++) {
            T s = first ? 0 : in[r * in_stride + q];
            for (Py_ssize_t i = i0; i < i1; i++) {
                T term = a[(idx ? idx[i] : i) * a_stride + r] * d[i * d_stride + q];
                s = (first && i == i0) ? term : s + term;
            }
            out[r * out_stride + q] = s;
        }
#endif
}

#ifdef FASTMLP_VECTORS
#undef V
#undef LOAD
#undef STORE
#undef SPLAT
#endif
#undef T
#undef N
