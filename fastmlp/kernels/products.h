/* Wide layers: a mini-batch's three products, blocked for the caches, for
 * one float type (included by typed.h, after tiles.h), for networks that go
 * through a mini-batch a layer at a time (_layers.pxi).
 *
 * Each product is a sum of outer products, C[r][q] = Σ_p a_r[p]·b_p[q],
 * with p in order, as the arithmetic contract wants:
 *
 *   product   C = …        rows r      columns q   p           a_r[p]           b_p[q]
 *   forward   Z = A·Wᵀ     examples    outputs j   inputs k    A[i][k]          Wᵀ[k][j]
 *   backward  Sᵀ = Wᵀ·Dᵀ   units k     examples i  outputs j   Wᵀ[k][j]         D[i][j]
 *   gradient  G = Aᵀ·D     inputs k    outputs j   examples i  A[i][k]          D[i][j]
 *
*
 * Register tiles (tiles.h) compute each product, their sums carried across
 * blocks of terms in order. Blocking and packing only choose which
 * independent sums run side by side and where their operands wait: each
 * product packs the operand it reuses most into panels that stay in L1
 * while the tiles sweep past them, and streams the other from L2, packed
 * too; each function below says which is which.
 */

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
 * for them are packed first (m·kc_max values, rounded up to whole tiles: in
 * L2, or L3 past it); then each panel's kc_max rows (in L1) serve all the
 * examples, whose packed inputs stream past them.
 * `pack` holds what pack_size of _layers.pxi counts for the forward product. */
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
                    FASTMLP_NAME(tile)(E, kc, pack + i0 * kc, b, c, z_stride, pc == 0, NULL, NULL);
                else
                    FASTMLP_NAME(tile_part)(E, cols, kc, pack + i0 * kc, b, c, z_stride, pc == 0, edge);
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
 * packed transposed (kc_max values for each of m rounded up to TN, in L2), then each tile's rows of
 * W, copied from the panels (kc_max·TR values after them, in L1), serve all
 * the examples. `pack` holds what pack_size counts for them (see
 * _layers.pxi). */
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
            /* The tile's rows of W, a panel's TN columns at a time, into `a`. With tiles
             * of 16 columns or more, the blocks are copied whole (E·TN values each, not
             * transposed) and tile_w reads them so; with fewer, a tile's sums are too few
             * for that reading's groups of TN terms, and they are transposed into a packed
             * panel (measured on AMD Zen 3, G multiply-adds/s: float32, 16 columns, 37-39
             * copied whole against 31-36 transposed; float64, 8 columns, 17-19 transposed
             * against 16-17.5 whole).
             * The next tile's rows follow in each panel, where the hardware does not look
             * ahead (the panels are n rows apart, a power of two bytes often): fetched
             * meanwhile. */
            for (Py_ssize_t j0 = pc; j0 < pc + kc; j0 += TN) {
                const T* block = w + j0 * n + k0 * TN;
                if (TN >= 16) {
                    memcpy(a + (j0 - pc) * TR, block, E * TN * sizeof(T));
                } else {
                    Py_ssize_t cols = pc + kc - j0 < TN ? pc + kc - j0 : TN;
                    for (int r = 0; r < E; r++)
                        for (Py_ssize_t q = 0; q < cols; q++) a[(j0 - pc + q) * TR + r] = block[r * TN + q];
                }
                Py_ssize_t next_end = (k0 + 2 * TR < k_end ? k0 + 2 * TR : k_end) - k0;
                for (Py_ssize_t at = TR * TN; at < next_end * TN; at += 64 / sizeof(T))
                    __builtin_prefetch(block + at, 0, 3);
            }
            for (Py_ssize_t q = 0; q < panels; q++) {
                T* c = s + k0 * s_stride + q * TN;
                if (TN >= 16)
                    FASTMLP_NAME(tile_w)(E, kc, a, TR * TN, pack + q * kc * TN, c, s_stride, pc == 0);
                else
                    FASTMLP_NAME(tile)(E, kc, a, pack + q * kc * TN, c, s_stride, pc == 0, NULL, NULL);
            }
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
 * i·stride; s_k = s + k·s_stride), σ' as derivative() of _element.pxi
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
                if (kind == FASTMLP_SLOPES)
                    slope = d[i * stride + k];
                else if (kind == FASTMLP_SIGMOID)
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
 * idx[i] : i)·a_stride and d_i = d + i·d_stride. Given a rule, takes its step
 * (see tile_of) on the weights in panels at `out` (n_in rows; the state `vel`
 * likewise), all TN columns of every panel, those past n_out (whose deltas
 * are packed as zeros) included; without, stores G into `out` as Wᵀ (rows of
 * n_out). The examples' deltas are packed first, a panel of TN outputs after
 * another (m·n_out values, rounded up to whole panels: each row of deltas
 * read once, from its first byte to its last). Then the rows go kb_max at a
 * time (a multiple of TR): the examples' inputs for them are packed (m·kb_max
 * values after the deltas), and for each panel, its deltas serve all the
 * rows, whose weights the tiles take one after another, as the panel holds
 * them. `pack` holds what pack_size of _layers.pxi counts for the gradient. */
static void FASTMLP_NAME(gradient_product)(
    const T* a, const Py_ssize_t* idx, Py_ssize_t a_stride, const T* d, Py_ssize_t d_stride,
    Py_ssize_t m, Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t k_begin, Py_ssize_t k_end, T* out,
    const fastmlp_rule* rule, T* vel, Py_ssize_t kb_max, T* pack)
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
                if (rule)
                    FASTMLP_NAME(tile)(E, m, ak, dp, out + j0 * n_in + k0 * TN, TN, 1, rule,
                                       vel ? vel + j0 * n_in + k0 * TN : NULL);
                else if (n_out - j0 >= TN)
                    FASTMLP_NAME(tile)(E, m, ak, dp, out + k0 * n_out + j0, n_out, 1, NULL, NULL);
                else
                    FASTMLP_NAME(tile_part)(E, n_out - j0, m, ak, dp, out + k0 * n_out + j0, n_out, 1, edge);
            }
        }
    }
}

