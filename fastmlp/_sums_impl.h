/* The weighted sums of a block of examples over vectors of one type.
 * _blocks_impl.h includes this twice, for the block's vectors and for the
 * unit vectors, with SUMS_OF (the function's name), SV (the vector type),
 * SL (its lanes), SLOAD and SSTORE defined. */

/* z_e[q] = Σ_k w[k·stride + q]·a_e[k], k = 0 … n_in−1 in order, for the E
 * examples a_0 … a_{E−1} and the nv·SL outputs q that start at w (nv ≤ NV).
 * Given `next` (the E inputs of the next block, or NULL), their cache lines
 * are fetched as the sums go, a line of each per line of a_e read: the next
 * block's inputs arrive from memory while this one computes. */
static inline FASTMLP_ALWAYS_INLINE void SUMS_OF(
    int E, int nv, const T* const* a, Py_ssize_t n_in, const T* w, Py_ssize_t stride,
    T* const* z, const T* const* next)
{
#ifdef FASTMLP_VECTORS
    enum { LINE = 64 / sizeof(T) };
    SV s[FASTMLP_SAMPLES][NV], wk[NV];
    for (int v = 0; v < nv; v++) wk[v] = SLOAD(w + v * SL);
    for (int e = 0; e < E; e++)
        for (int v = 0; v < nv; v++) s[e][v] = a[e][0] * wk[v];
    for (Py_ssize_t k = 1; k < n_in; k++) {
        if (next && k % LINE == 1)
            for (int e = 0; e < E; e++) __builtin_prefetch(next[e] + k - 1, 0, 3);
        for (int v = 0; v < nv; v++) wk[v] = SLOAD(w + k * stride + v * SL);
        for (int e = 0; e < E; e++) {
            T b = a[e][k];
            for (int v = 0; v < nv; v++) s[e][v] = s[e][v] + b * wk[v];
        }
    }
    for (int e = 0; e < E; e++)
        for (int v = 0; v < nv; v++) SSTORE(z[e] + v * SL, s[e][v]);
#else
    for (int e = 0; e < E; e++)
        for (int q = 0; q < nv * SL; q++) {
            T t = a[e][0] * w[q];
            for (Py_ssize_t k = 1; k < n_in; k++) t = t + a[e][k] * w[k * stride + q];
            z[e][q] = t;
        }
#endif
}
