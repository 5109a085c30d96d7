/* Wide layers: a mini-batch's three products, blocked for the caches.
 * _blocks_impl.h includes this once per float type, with T, V, L, LOAD,
 * STORE and FASTMLP_NAME defined.
 *
 * Each product is a sum of outer products, C[r][q] = Σ_p a_r[p]·b_p[q],
 * with p in order, as the arithmetic contract wants:
 *
 *   product   C = …        rows r      columns q   p           a_r[p]           b_p[q]
 *   forward   Z = A·Wᵀ     examples    outputs j   inputs k    A[i][k]          Wᵀ[k][j]
 *   backward  Sᵀ = Wᵀ·Dᵀ   units k     examples i  outputs j   Wᵀ[k][j]         D[i][j]
 *   gradient  G = Aᵀ·D     inputs k    outputs j   examples i  A[i][k]          D[i][j]
 *
 * A register tile keeps TR rows × TN columns of sums (TNV vectors per row)
 * for as long as it runs: a whole sum, or a block of KC terms of it whose
 * partial sums are stored and taken up again by the next block, so each sum
 * still adds its terms one after another from the first. Blocking and
 * packing only choose which independent sums run side by side and where
 * their operands wait: b_p comes from a packed panel (KC rows of TN values,
 * contiguous) that stays in L1 while the tile sweeps many rows r; the a_r
 * are read where they lie, a row at a time, from L2.
 */

#define TR FASTMLP_TILE_ROWS
#define TNV FASTMLP_TILE_NV
#define TN (TNV * L)

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

/* The tile: c_r[q] = Σ_p a[p·TR + r]·b[p·TN + q], p = 0 … kc−1 in order, for
 * the rows r = 0 … E−1 and the TN columns q, from two packed panels (a: kc
 * rows of TR values, of which the first E count; b: kc rows of TN). Started
 * from the term of p = 0 when `first`, else continued from the sums stored in
 * c (row r at c + r·c_stride). The finished sums are stored in c, or with
 * step_out taken into the step on the weights c (STEP_VECTOR of
 * _blocks_impl.h; velocities vel laid out like c). */
static inline FASTMLP_ALWAYS_INLINE void FASTMLP_NAME(tile_of)(
    int E, Py_ssize_t kc, const T* a, const T* b, T* c, Py_ssize_t c_stride, int first,
    int step_out, T step, T decay, T mu, T* vel)
{
#ifdef FASTMLP_VECTORS
    V s[TR][TNV], bp[TNV];
    Py_ssize_t p = 0;
    if (first) {
        for (int v = 0; v < TNV; v++) bp[v] = LOAD(b + v * L);
        for (int r = 0; r < E; r++)
            for (int v = 0; v < TNV; v++) s[r][v] = a[r] * bp[v];
        p = 1;
    } else {
        for (int r = 0; r < E; r++)
            for (int v = 0; v < TNV; v++) s[r][v] = LOAD(c + r * c_stride + v * L);
    }
#pragma GCC unroll 4
    for (; p < kc; p++) {
        for (int v = 0; v < TNV; v++) bp[v] = LOAD(b + p * TN + v * L);
        for (int r = 0; r < E; r++) {
            T x = a[p * TR + r];
            for (int v = 0; v < TNV; v++) s[r][v] = s[r][v] + x * bp[v];
        }
    }
    for (int r = 0; r < E; r++)
        for (int v = 0; v < TNV; v++) {
            T* o = c + r * c_stride + v * L;
            T* pv = vel ? vel + r * c_stride + v * L : NULL;
            STEP_VECTOR(V, LOAD, STORE, o, pv, s[r][v], step_out, step, decay, mu);
        }
#else
    for (int r = 0; r < E; r++)
        for (int q = 0; q < TN; q++) {
            T t = first ? a[r] * b[q] : c[r * c_stride + q];
            for (Py_ssize_t p = first; p < kc; p++) t = t + a[p * TR + r] * b[p * TN + q];
            FASTMLP_NAME(take_step)(c + r * c_stride + q, t, step_out, step, decay, mu,
                                    vel ? vel + r * c_stride + q : NULL);
        }
#endif
}

static void FASTMLP_NAME(tile)(
    int E, Py_ssize_t kc, const T* a, const T* b, T* c, Py_ssize_t c_stride, int first,
    int step_out, T step, T decay, T mu, T* vel)
{
#define CALL(n) FASTMLP_NAME(tile_of)(n, kc, a, b, c, c_stride, first, step_out, step, decay, mu, vel)
    BY_ROWS(E, CALL)
#undef CALL
}

/* A tile of only `cols` < TN columns: the same sums through a full tile in
 * `edge` (TR·TN values), of which only the first cols columns go to c. */
static void FASTMLP_NAME(tile_part)(
    int E, Py_ssize_t cols, Py_ssize_t kc, const T* a, const T* b, T* c, Py_ssize_t c_stride,
    int first, int step_out, T step, T decay, T mu, T* vel, T* edge)
{
    if (!first)
        for (int r = 0; r < E; r++) memcpy(edge + r * TN, c + r * c_stride, cols * sizeof(T));
    FASTMLP_NAME(tile)(E, kc, a, b, edge, TN, first, 0, 0, 1, 0, NULL);
    for (int r = 0; r < E; r++)
        for (Py_ssize_t q = 0; q < cols; q++)
            FASTMLP_NAME(take_step)(c + r * c_stride + q, edge[r * TN + q], step_out, step, decay,
                                    mu, vel ? vel + r * c_stride + q : NULL);
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

/* Panels. While a call of the kernels trains a wide network, each layer's
 * weights (and velocities) live in panels of TN outputs: panel q holds the
 * n_in rows of Wᵀ restricted to the outputs q·TN … q·TN + TN−1, each row
 * TN values, zeros past n_out (a row of weights into TN outputs, or TR rows
 * of a tile, are then contiguous). Weight (k, j) sits at
 * k·TN + (j / TN)·n_in·TN + j % TN. Whatever the products do, they read and
 * write the weights a panel at a time, from the first byte to the last: the
 * hardware streams that, where rows of TN values n_out apart (a power of two
 * bytes, often) it does not.
 *
 * panel_layer: the rows k_begin … k_end−1 of w (Wᵀ, rows of n_out) into the
 * panels at `panels`; unpanel_layer: back. TR rows at a time, so that each
 * row of w is read a cache line after another and each panel written TR
 * rows at once. */
static void FASTMLP_NAME(panel_layer)(const T* w, Py_ssize_t n_in, Py_ssize_t n_out,
                                      Py_ssize_t k_begin, Py_ssize_t k_end, T* panels)
{
    for (Py_ssize_t k0 = k_begin; k0 < k_end; k0 += TR) {
        Py_ssize_t k1 = k0 + TR < k_end ? k0 + TR : k_end;
        for (Py_ssize_t j0 = 0; j0 < n_out; j0 += TN) {
            T* panel = panels + j0 * n_in;
            for (Py_ssize_t k = k0; k < k1; k++)
                FASTMLP_NAME(copy_row)(panel + k * TN, w + k * n_out + j0,
                                       n_out - j0 < TN ? n_out - j0 : TN);
        }
    }
}

static void FASTMLP_NAME(unpanel_layer)(const T* panels, Py_ssize_t n_in, Py_ssize_t n_out,
                                        Py_ssize_t k_begin, Py_ssize_t k_end, T* w)
{
    for (Py_ssize_t k0 = k_begin; k0 < k_end; k0 += TR) {
        Py_ssize_t k1 = k0 + TR < k_end ? k0 + TR : k_end;
        for (Py_ssize_t j0 = 0; j0 < n_out; j0 += TN) {
            const T* panel = panels + j0 * n_in;
            Py_ssize_t cols = n_out - j0 < TN ? n_out - j0 : TN;
            for (Py_ssize_t k = k0; k < k1; k++) {
                if (cols == TN)
                    memcpy(w + k * n_out + j0, panel + k * TN, TN * sizeof(T));
                else
                    for (Py_ssize_t q = 0; q < cols; q++) w[k * n_out + j0 + q] = panel[k * TN + q];
            }
        }
    }
}

/* The forward product of one chunk of examples: z_i[j] = Σ_k x_i[k]·W[k][j] for the m
 * examples x_i = x + (idx ? idx[i] : i)·x_stride and the outputs j of the panels
 * q_begin … q_end−1 of w (the layer's weights in panels, n_in rows), into
 * z_i = z + i·z_stride. The inputs go kc_max at a time: the examples' inputs
 * for them are packed first (m·kc_max values, rounded up to whole tiles, in
 * L2); then each panel's kc_max rows (in L1) serve all the examples.
 * `pack` holds forward_pack values (see _layers.pxi). */
static void FASTMLP_NAME(forward_chunk)(
    const T* x, const Py_ssize_t* idx, Py_ssize_t x_stride, Py_ssize_t m, Py_ssize_t n_in,
    const T* w, Py_ssize_t n_out, T* z, Py_ssize_t z_stride, Py_ssize_t q_begin, Py_ssize_t q_end,
    T* pack, Py_ssize_t kc_max)
{
    T edge[TR * TN] = {0};  /* its columns past n_out are sums never read: zeros keep them cheap */
    for (Py_ssize_t pc = 0; pc < n_in; pc += kc_max) {
        Py_ssize_t kc = n_in - pc < kc_max ? n_in - pc : kc_max;
        for (Py_ssize_t i0 = 0; i0 < m; i0 += TR)
            FASTMLP_NAME(pack_a)(m - i0 < TR ? (int)(m - i0) : TR, x + pc, idx, i0, x_stride, kc,
                                 pack + i0 * kc);
        for (Py_ssize_t q = q_begin; q < q_end; q++) {
            Py_ssize_t j0 = q * TN, cols = n_out - j0 < TN ? n_out - j0 : TN;
            const T* b = w + j0 * n_in + pc * TN;
            for (Py_ssize_t i0 = 0; i0 < m; i0 += TR) {
                int E = m - i0 < TR ? (int)(m - i0) : TR;
                T* c = z + i0 * z_stride + j0;
                if (cols == TN)
                    FASTMLP_NAME(tile)(E, kc, pack + i0 * kc, b, c, z_stride, pc == 0, 0, 0, 1, 0, NULL);
                else
                    FASTMLP_NAME(tile_part)(E, cols, kc, pack + i0 * kc, b, c, z_stride, pc == 0, 0, 0, 1,
                                            0, NULL, edge);
            }
        }
    }
}

/* forward_chunk of the whole layer, FASTMLP_CHUNK_EXAMPLES at a time. */
static void FASTMLP_NAME(forward_product)(
    const T* x, const Py_ssize_t* idx, Py_ssize_t x_stride, Py_ssize_t m, Py_ssize_t n_in,
    const T* w, Py_ssize_t n_out, T* z, Py_ssize_t z_stride, Py_ssize_t q_begin, Py_ssize_t q_end,
    T* pack, Py_ssize_t kc_max)
{
    for (Py_ssize_t i0 = 0; i0 < m; i0 += FASTMLP_CHUNK_EXAMPLES)
        FASTMLP_NAME(forward_chunk)(idx ? x : x + i0 * x_stride, idx ? idx + i0 : NULL, x_stride,
                                    m - i0 < FASTMLP_CHUNK_EXAMPLES ? m - i0 : FASTMLP_CHUNK_EXAMPLES, n_in, w, n_out,
                                    z + i0 * z_stride, z_stride, q_begin, q_end, pack, kc_max);
}

/* The backward product of one chunk of examples: s_k[i] = Σ_j W[k][j]·d_i[j], j = 0 … n_next−1
 * in order, for the units k_begin … k_end−1 and the m examples d_i = d + i·d_stride,
 * with W in panels at w (n rows of n_next), into s_k = s + k·s_stride (s_stride ≥
 * m rounded up to TN: the columns past m get sums of zeros). The outputs j go
 * kc_max at a time (a multiple of TN): the examples' deltas for them are
 * packed transposed (kc_max·s_stride values, in L2), then each tile's rows of
 * W, gathered from the panels (kc_max·TR values after them, in L1), serve all
 * the examples. `pack` holds backward_pack values (see _layers.pxi). */
static void FASTMLP_NAME(backward_chunk)(
    const T* w, Py_ssize_t n, Py_ssize_t n_next, Py_ssize_t k_begin, Py_ssize_t k_end, const T* d,
    Py_ssize_t d_stride, Py_ssize_t m, T* s, Py_ssize_t s_stride, T* pack, Py_ssize_t kc_max)
{
    Py_ssize_t panels = (m + TN - 1) / TN;
    T* a = pack + kc_max * panels * TN;
    for (Py_ssize_t pc = 0; pc < n_next; pc += kc_max) {
        Py_ssize_t kc = n_next - pc < kc_max ? n_next - pc : kc_max;
        for (Py_ssize_t q = 0; q < panels; q++) {
            T* panel = pack + q * kc * TN;
            for (Py_ssize_t r = 0; r < TN; r++) {
                Py_ssize_t i = q * TN + r;
                const T* di = d + i * d_stride + pc;
                if (i < m)
                    for (Py_ssize_t p = 0; p < kc; p++) panel[p * TN + r] = di[p];
                else
                    for (Py_ssize_t p = 0; p < kc; p++) panel[p * TN + r] = 0;
            }
        }
        for (Py_ssize_t k0 = k_begin; k0 < k_end; k0 += TR) {
            int E = k_end - k0 < TR ? (int)(k_end - k0) : TR;
            /* a[p·TR + r] = W[k0 + r][pc + p], a panel's TN columns at a time */
            for (Py_ssize_t j0 = pc; j0 < pc + kc; j0 += TN) {
                const T* block = w + j0 * n + k0 * TN;
                Py_ssize_t cols = pc + kc - j0 < TN ? pc + kc - j0 : TN;
                for (int r = 0; r < E; r++)
                    for (Py_ssize_t q = 0; q < cols; q++) a[(j0 - pc + q) * TR + r] = block[r * TN + q];
                /* The next tile's rows follow in each panel: one panel apart, a power of two
                 * bytes often, where the hardware does not look ahead. */
                if (k0 + TR < k_end)
                    for (Py_ssize_t at = TR * TN; at < 2 * TR * TN; at += 64 / sizeof(T))
                        __builtin_prefetch(block + at, 0, 3);
            }
            for (Py_ssize_t q = 0; q < panels; q++)
                FASTMLP_NAME(tile)(E, kc, a, pack + q * kc * TN, s + k0 * s_stride + q * TN, s_stride,
                                   pc == 0, 0, 0, 1, 0, NULL);
        }
    }
}

/* backward_chunk of the whole layer, FASTMLP_CHUNK_EXAMPLES at a time. */
static void FASTMLP_NAME(backward_product)(
    const T* w, Py_ssize_t n, Py_ssize_t n_next, Py_ssize_t k_begin, Py_ssize_t k_end, const T* d,
    Py_ssize_t d_stride, Py_ssize_t m, T* s, Py_ssize_t s_stride, T* pack, Py_ssize_t kc_max)
{
    for (Py_ssize_t i0 = 0; i0 < m; i0 += FASTMLP_CHUNK_EXAMPLES)
        FASTMLP_NAME(backward_chunk)(w, n, n_next, k_begin, k_end, d + i0 * d_stride, d_stride,
                                     m - i0 < FASTMLP_CHUNK_EXAMPLES ? m - i0 : FASTMLP_CHUNK_EXAMPLES, s + i0, s_stride,
                                     pack, kc_max);
}

/* The deltas from the backward sums: d_i[k] = s_k[i]·σ'(a_i[k]) for the units
 * k_begin … k_end−1 and the m examples (rows a_i = a + i·stride and d_i = d +
 * i·stride; s_k = s + k·s_stride), σ' as derivative() of _kernels.pyx
 * computes it from the activation. The examples go 8 at a time, so that the
 * rows they read and write stay in L1 while k sweeps them and each s_k gives
 * a run of 8. */
static void FASTMLP_NAME(deltas_from_sums)(
    const T* s, Py_ssize_t s_stride, Py_ssize_t m, Py_ssize_t k_begin, Py_ssize_t k_end,
    const T* a, T* d, Py_ssize_t stride, int kind)
{
    for (Py_ssize_t i0 = 0; i0 < m; i0 += 8) {
        Py_ssize_t i1 = i0 + 8 < m ? i0 + 8 : m;
        for (Py_ssize_t k = k_begin; k < k_end; k++)
            for (Py_ssize_t i = i0; i < i1; i++) {
                T ak = a[i * stride + k], slope;
                if (kind == FASTMLP_SIGMOID)
                    slope = ak * ((T)1 - ak);
                else if (kind == FASTMLP_TANH)
                    slope = (T)1 - ak * ak;
                else
                    slope = ak > 0 ? (T)1 : (T)0;
                d[i * stride + k] = s[k * s_stride + i] * slope;
            }
    }
}

/* The gradient of one layer over the m examples, for the weight rows k_begin …
 * k_end−1: G[k][j] = Σ_i a_i[k]·d_i[j] in the order of i, with a_i = a + (idx ?
 * idx[i] : i)·a_stride and d_i = d + i·d_stride. With step_out, takes the step
 * (see tile_of) on the weights in panels at `out` (n_in rows; velocities `vel`
 * likewise), all TN columns of every panel, those past n_out (whose deltas
 * are packed as zeros) included; without, stores G into `out` as Wᵀ (rows of
 * n_out). The examples' deltas are packed first, a panel of TN outputs after
 * another (m·n_out values, rounded up to whole panels: each row of deltas
 * read once, from its first byte to its last). Then the rows go kb_max at a
 * time (a multiple of TR): the examples' inputs for them are packed (m·kb_max
 * values after the deltas), and for each panel, its deltas serve all the
 * rows, whose weights the tiles take one after another, as the panel holds
 * them. `pack` holds gradient_pack values (see _layers.pxi). */
static void FASTMLP_NAME(gradient_product)(
    const T* a, const Py_ssize_t* idx, Py_ssize_t a_stride, const T* d, Py_ssize_t d_stride,
    Py_ssize_t m, Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t k_begin, Py_ssize_t k_end, T* out,
    int step_out, T step, T decay, T mu, T* vel, Py_ssize_t kb_max, T* pack)
{
    T edge[TR * TN];
    Py_ssize_t n_pad = (n_out + TN - 1) / TN * TN;
    T* ap = pack + m * n_pad;
    for (Py_ssize_t i = 0; i < m; i++)
        for (Py_ssize_t j0 = 0; j0 < n_out; j0 += TN)
            FASTMLP_NAME(copy_row)(pack + j0 * m + i * TN, d + i * d_stride + j0,
                                   n_out - j0 < TN ? n_out - j0 : TN);
    for (Py_ssize_t kb = k_begin; kb < k_end; kb += kb_max) {
        Py_ssize_t kb_end = kb + kb_max < k_end ? kb + kb_max : k_end;
        /* a_i[k0 …] for every i, TR rows at a time: the rows of a panel are the examples here. */
        for (Py_ssize_t i = 0; i < m; i++) {
            const T* row = a + (idx ? idx[i] : i) * a_stride;
            for (Py_ssize_t k0 = kb; k0 < kb_end; k0 += TR) {
                int E = kb_end - k0 < TR ? (int)(kb_end - k0) : TR;
                for (int r = 0; r < E; r++) ap[(k0 - kb) * m + i * TR + r] = row[k0 + r];
            }
        }
        for (Py_ssize_t j0 = 0; j0 < n_out; j0 += TN) {
            const T* dp = pack + j0 * m;
            for (Py_ssize_t k0 = kb; k0 < kb_end; k0 += TR) {
                int E = kb_end - k0 < TR ? (int)(kb_end - k0) : TR;
                const T* ak = ap + (k0 - kb) * m;
                if (step_out)
                    FASTMLP_NAME(tile)(E, m, ak, dp, out + j0 * n_in + k0 * TN, TN, 1, 1, step, decay, mu,
                                       vel ? vel + j0 * n_in + k0 * TN : NULL);
                else if (n_out - j0 >= TN)
                    FASTMLP_NAME(tile)(E, m, ak, dp, out + k0 * n_out + j0, n_out, 1, 0, 0, 1, 0, NULL);
                else
                    FASTMLP_NAME(tile_part)(E, n_out - j0, m, ak, dp, out + k0 * n_out + j0, n_out, 1, 0, 0,
                                            1, 0, NULL, edge);
            }
        }
    }
}

#undef BY_ROWS
#undef TR
#undef TNV
#undef TN
