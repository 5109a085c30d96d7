/* The register tile of the layer-at-a-time products, for one float type
 * (included by typed.h; products.h builds the products on it, and its
 * header says what the tile's rows, columns and terms are in each).
 *
 * A tile keeps TR rows × TN columns of sums (TNV vectors per row) for as
 * long as it runs: a whole sum, or a block of kc terms of it whose partial
 * sums are stored and taken up again by the next block, so each sum still
 * adds its terms one after another from the first. Its operands come packed:
 * a panel of kc rows of TR values (broadcast one at a time) and one of kc
 * rows of TN values (loaded as vectors), each read from first byte to last. */

/* f(n) for the row count E = 1 … TR, made a constant so that the tile's sums
 * stay in registers. Counts above TR never occur; they clamp to TR only so
 * that every case compiles. */
#define BY_ROWS(E, f)                                                       \
    switch (E) {                                                            \
    case 1: f(1); break;                                                    \
    case 2: f(2); break;                                                    \
    case 3: f(3); break;                                                    \
    case 4: f(4); break;                                                    \
    case 5: f(5 <= TR ? 5 : TR); break;                                     \
    case 6: f(6 <= TR ? 6 : TR); break;                                     \
    case 7: f(7 <= TR ? 7 : TR); break;                                     \
    default: f(8 <= TR ? 8 : TR); break;                                    \
    }

/* The tile: c_r[q] = Σ_p a_r[p]·b[p·TN + q], p = 0 … kc−1 in order, for the
 * rows r = 0 … E−1 and the TN columns q, from a packed panel b of kc rows of
 * TN and the rows' terms a_r[p] = a[(p / group)·a_group + (p % group)·a_p +
 * r·a_r]: from a packed panel of kc rows of TR (a_p = TR, a_r = 1, one group),
 * or from weights in panels (tile_w). Started
 * from the term of p = 0 when `first`, else continued from the sums stored in
 * c (row r at c + r·c_stride). The finished sums are stored in c, or with
 * given a rule taken into its step on the weights c (STEP_VECTOR of
 * element.h; the state vel laid out like c). */
static inline FASTMLP_ALWAYS_INLINE void FASTMLP_NAME(tile_of)(
    int E, Py_ssize_t kc, const T* a, Py_ssize_t a_p, Py_ssize_t a_r, Py_ssize_t group,
    Py_ssize_t a_group, const T* b, T* c, Py_ssize_t c_stride, int first, const fastmlp_rule* rule,
    T* vel)
{
#ifdef FASTMLP_VECTORS
    V s[TR][TNV], bp[TNV];
    if (first) {
        for (int v = 0; v < TNV; v++) bp[v] = LOAD(b + v * L);
        for (int r = 0; r < E; r++)
            for (int v = 0; v < TNV; v++) s[r][v] = a[r * a_r] * bp[v];
    } else {
        for (int r = 0; r < E; r++)
            for (int v = 0; v < TNV; v++) s[r][v] = LOAD(c + r * c_stride + v * L);
    }
    for (Py_ssize_t g0 = 0; g0 < kc; g0 += group) {
        const T* ag = a + g0 / group * a_group;
        const T* bg = b + g0 * TN;
        Py_ssize_t n = kc - g0 < group ? kc - g0 : group;
#pragma GCC unroll 4
        for (Py_ssize_t p = g0 == 0 && first; p < n; p++) {
            for (int v = 0; v < TNV; v++) bp[v] = LOAD(bg + p * TN + v * L);
            for (int r = 0; r < E; r++) {
                T x = ag[p * a_p + r * a_r];
                for (int v = 0; v < TNV; v++) s[r][v] = VMADD(s[r][v], x, bp[v]);
            }
        }
    }
    for (int r = 0; r < E; r++)
        for (int v = 0; v < TNV; v++) {
            T* o = c + r * c_stride + v * L;
            T* pv = vel ? vel + r * c_stride + v * L : NULL;
            STEP_VECTOR(V, LOAD, STORE, VMADD, VSQRT, o, pv, s[r][v], rule);
        }
#else
    for (int r = 0; r < E; r++)
        for (int q = 0; q < TN; q++) {
            T t = first ? a[r * a_r] * b[q] : c[r * c_stride + q];
            for (Py_ssize_t p = first; p < kc; p++)
                t = MADD(t, a[p / group * a_group + p % group * a_p + r * a_r], b[p * TN + q]);
            if (rule)
                FASTMLP_NAME(take_step)(c + r * c_stride + q, t, rule, vel ? vel + r * c_stride + q : NULL);
            else
                c[r * c_stride + q] = t;
        }
#endif
}

static void FASTMLP_NAME(tile)(
    int E, Py_ssize_t kc, const T* a, const T* b, T* c, Py_ssize_t c_stride, int first,
    const fastmlp_rule* rule, T* vel)
{
#define CALL(n) FASTMLP_NAME(tile_of)(n, kc, a, TR, 1, kc, 0, b, c, c_stride, first, rule, vel)
    BY_ROWS(E, CALL)
#undef CALL
}

/* The tile with its rows' terms in blocks of TN, as weights in panels hold
 * them (see products.h), rather than in a packed panel: a_r[p] = w[(p / TN)·
 * w_group + r·TN + p % TN], each block the tile's rows r of one panel, TR·TN
 * values. Storing only. */
static void FASTMLP_NAME(tile_w)(
    int E, Py_ssize_t kc, const T* w, Py_ssize_t w_group, const T* b, T* c, Py_ssize_t c_stride,
    int first)
{
#define CALL(rows) FASTMLP_NAME(tile_of)(rows, kc, w, 1, TN, TN, w_group, b, c, c_stride, first, NULL, NULL)
    BY_ROWS(E, CALL)
#undef CALL
}

/* A tile of only `cols` < TN columns: the same sums through a full tile in
 * `edge` (TR·TN values), of which only the first cols columns go to c. */
static void FASTMLP_NAME(tile_part)(
    int E, Py_ssize_t cols, Py_ssize_t kc, const T* a, const T* b, T* c, Py_ssize_t c_stride,
    int first, T* edge)
{
    if (!first)
        for (int r = 0; r < E; r++) memcpy(edge + r * TN, c + r * c_stride, cols * sizeof(T));
    FASTMLP_NAME(tile)(E, kc, a, b, edge, TN, first, NULL, NULL);
    for (int r = 0; r < E; r++)
        for (Py_ssize_t q = 0; q < cols; q++) c[r * c_stride + q] = edge[r * TN + q];
}

/* out[q] = in[q] for q < cols ≤ TN, zeros past cols. A whole row is one
 * copy of constant size, which the compiler turns into vector moves (with a
 * size known only at run time it calls for a string move, slow on 64 bytes). */
static inline void FASTMLP_NAME(copy_row)(T* out, const T* in, Py_ssize_t cols)
{
    if (cols == TN) {
        memcpy(out, in, TN * sizeof(T));
        return;
    }
    for (Py_ssize_t q = 0; q < cols; q++) out[q] = in[q];
    for (Py_ssize_t q = cols; q < TN; q++) out[q] = 0;
}

/* Packing. a panel: out[p·TR + r] = row_r[p] for p < kc and the E ≤ TR rows
 * row_r = x + (idx ? idx[i0 + r] : i0 + r)·stride. */
static void FASTMLP_NAME(pack_a)(
    int E, const T* x, const Py_ssize_t* idx, Py_ssize_t i0, Py_ssize_t stride, Py_ssize_t kc,
    T* out)
{
    for (int r = 0; r < E; r++) {
        const T* row = x + (idx ? idx[i0 + r] : i0 + r) * stride;
        for (Py_ssize_t p = 0; p < kc; p++) out[p * TR + r] = row[p];
    }
}
#undef BY_ROWS
