# Included by _kernels.pyx: mini-batches of wide networks, a layer at a time.
#
# A block of examples (batch_member) carries SAMPLES examples through every
# layer while their sums stay in registers, reading each layer's whole Wᵀ
# once per block: right while the weights fit in L1 and L2, as the
# 784-16-16-10 network's do. Past that, every block streams the weights
# from L3 or memory again. Here the whole mini-batch instead goes through
# one layer at a time, each layer's work being a product of matrices
# (kernels/tiles.h and products.h): the forward sums, the deltas of the layer below, and the
# gradient taken straight into the step. Each weight is then read from
# memory once per product for the whole mini-batch, and reused from L1 by
# all its examples. The team of threads splits each product between
# independent outputs and waits at a barrier after each layer, whose
# results the next one reads.

cdef extern from "kernels/kernels.h" nogil:
    enum:
        FASTMLP_TILE_ROWS  # rows of a register tile: examples, units or weight rows
        FASTMLP_TILE_F64  # columns of a tile: outputs or examples
        FASTMLP_TILE_F32
        FASTMLP_CHUNK_EXAMPLES  # examples per chunk of the forward and backward products
    void panel_layer_f64(const double* w, Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t k_begin,
                         Py_ssize_t k_end, double* panels)
    void panel_layer_f32(const float* w, Py_ssize_t n_in, Py_ssize_t n_out, Py_ssize_t k_begin,
                         Py_ssize_t k_end, float* panels)
    void unpanel_layer_f64(const double* panels, Py_ssize_t n_in, Py_ssize_t n_out,
                           Py_ssize_t k_begin, Py_ssize_t k_end, double* w)
    void unpanel_layer_f32(const float* panels, Py_ssize_t n_in, Py_ssize_t n_out,
                           Py_ssize_t k_begin, Py_ssize_t k_end, float* w)
    void deltas_from_sums_f64(const double* s, Py_ssize_t s_stride, Py_ssize_t m,
                              Py_ssize_t k_begin, Py_ssize_t k_end, const double* a, double* d,
                              Py_ssize_t stride, int kind)
    void deltas_from_sums_f32(const float* s, Py_ssize_t s_stride, Py_ssize_t m,
                              Py_ssize_t k_begin, Py_ssize_t k_end, const float* a, float* d,
                              Py_ssize_t stride, int kind)
    void forward_product_f64(const double* x, const Py_ssize_t* idx, Py_ssize_t x_stride,
                             Py_ssize_t m, Py_ssize_t n_in, const double* w, Py_ssize_t n_out,
                             double* z, Py_ssize_t z_stride, Py_ssize_t q_begin,
                             Py_ssize_t q_end, double* pack, Py_ssize_t kc_max)
    void forward_product_f32(const float* x, const Py_ssize_t* idx, Py_ssize_t x_stride,
                             Py_ssize_t m, Py_ssize_t n_in, const float* w, Py_ssize_t n_out,
                             float* z, Py_ssize_t z_stride, Py_ssize_t q_begin,
                             Py_ssize_t q_end, float* pack, Py_ssize_t kc_max)
    void backward_product_f64(const double* w, Py_ssize_t n, Py_ssize_t n_next,
                              Py_ssize_t k_begin, Py_ssize_t k_end, const double* d,
                              Py_ssize_t d_stride, Py_ssize_t m, double* s, Py_ssize_t s_stride,
                              double* pack, Py_ssize_t kc_max)
    void backward_product_f32(const float* w, Py_ssize_t n, Py_ssize_t n_next,
                              Py_ssize_t k_begin, Py_ssize_t k_end, const float* d,
                              Py_ssize_t d_stride, Py_ssize_t m, float* s, Py_ssize_t s_stride,
                              float* pack, Py_ssize_t kc_max)
    void gradient_product_f64(const double* a, const Py_ssize_t* idx, Py_ssize_t a_stride,
                              const double* d, Py_ssize_t d_stride, Py_ssize_t m, Py_ssize_t n_in,
                              Py_ssize_t n_out, Py_ssize_t k_begin, Py_ssize_t k_end, double* out,
                              const Rule* rule, double* vel, Py_ssize_t kb_max, double* pack)
    void gradient_product_f32(const float* a, const Py_ssize_t* idx, Py_ssize_t a_stride,
                              const float* d, Py_ssize_t d_stride, Py_ssize_t m, Py_ssize_t n_in,
                              Py_ssize_t n_out, Py_ssize_t k_begin, Py_ssize_t k_end, float* out,
                              const Rule* rule, float* vel, Py_ssize_t kb_max, float* pack)

cdef enum:
    TILE_ROWS = FASTMLP_TILE_ROWS
    # Terms per block of the forward and backward sums: KC_MAX rows of a panel are
    # 16 KB (float64 with AVX), half of L1. The forward's blocks are always KC_MAX: a
    # panel's rows stay in L1 while the examples' packed inputs stream past them, from
    # L3 if they must (measured: blocks fitting the examples into L2 lose more to the
    # partial sums stored and taken up again between blocks than they gain). The
    # backward's are whole multiples of KC_UNIT, which is a multiple of every tile's
    # columns (as the panels' alignment needs), and smaller with many examples.
    KC_MAX = 256
    KC_UNIT = 32
    # Weight rows per block of the gradient, whatever the examples (rounded down to whole
    # tiles): their packed inputs stream past the tiles, from L3 if they must; blocks
    # small enough for L2 at a thousand examples would pack each panel of deltas again
    # every few rows.
    KB_ROWS = 128 // FASTMLP_TILE_ROWS * FASTMLP_TILE_ROWS
    # Bytes of L2 that a product's other operand may fill while the panels go
    # through L1: the examples' inputs (forward), their deltas (backward,
    # gradient). A quarter of Zen 3's L2, an eighth of Zen 4's.
    L2_SHARE = 128 * 1024
    # Networks with a layer at least this wide (after the input) take mini-batches
    # of at least LAYERED_BATCH examples a layer at a time.
    LAYERED_UNITS = 64
    LAYERED_BATCH = 2


cdef inline Py_ssize_t tile_cols(const floating* any) noexcept nogil:
    """Columns of a register tile."""
    return FASTMLP_TILE_F64 if floating is double else FASTMLP_TILE_F32


cdef inline Py_ssize_t l2_block(Py_ssize_t rows, Py_ssize_t unit, Py_ssize_t cap,
                                const floating* any) noexcept nogil:
    """The largest multiple of ``unit`` up to ``cap`` (at least ``unit``) such that ``rows``
    rows of it fill at most L2_SHARE bytes."""
    cdef Py_ssize_t fit = L2_SHARE // (rows * <Py_ssize_t>sizeof(floating)) // unit * unit
    return max(unit, min(cap, fit))


cdef inline Py_ssize_t padded(Py_ssize_t m, const floating* any) noexcept nogil:
    """m rounded up to whole tiles' columns."""
    return (m + tile_cols(any) - 1) // tile_cols(any) * tile_cols(any)


cdef inline Py_ssize_t cut(Py_ssize_t n, Py_ssize_t unit, int part, int parts) noexcept nogil:
    """Where part `part` of `parts` of 0 … n starts: the parts are near-equal runs of whole
    units (the last one perhaps shorter)."""
    cdef Py_ssize_t units = (n + unit - 1) // unit
    return min(n, units * part // parts * unit)


cdef inline Py_ssize_t widest(const Net* net, Py_ssize_t first, Py_ssize_t end) noexcept nogil:
    """The most units of the layers first … end−1 (layer 0 the input), 1 if none."""
    cdef Py_ssize_t l, units = 1
    for l in range(first, end):
        units = max(units, net.sizes[l])
    return units


cdef inline bint layered(const Net* net, Py_ssize_t m) noexcept nogil:
    """Whether mini-batches of m examples go a layer at a time."""
    return widest(net, 1, net.n_layers + 1) >= LAYERED_UNITS and m >= LAYERED_BATCH


cdef inline Py_ssize_t chunk(Py_ssize_t m) noexcept nogil:
    """Examples in the largest chunk of the forward and backward products of m examples."""
    return min(m, <Py_ssize_t>FASTMLP_CHUNK_EXAMPLES)


cdef inline Py_ssize_t backward_kc(Py_ssize_t m, const floating* any) noexcept nogil:
    """Outputs per block of the backward product of m examples: a chunk's packed deltas fill
    L2_SHARE."""
    return l2_block(padded(chunk(m), any), KC_UNIT, KC_MAX, any)


cdef inline Py_ssize_t pack_size(const Net* net, Py_ssize_t m, const floating* any) noexcept nogil:
    """Values of one thread's packing buffer for mini-batches of up to m examples: the most
    that any of the three products packs (see kernels/products.h) for any count of examples up to
    m (a smaller count packs longer blocks)."""
    cdef Py_ssize_t count, most = 1, outputs = padded(widest(net, 1, net.n_layers + 1), any)
    for count in range(1, m + 1):
        most = max(most, (chunk(count) + TILE_ROWS - 1) // TILE_ROWS * TILE_ROWS * KC_MAX)
        most = max(most, (padded(chunk(count), any) + TILE_ROWS) * backward_kc(count, any))
        most = max(most, count * (outputs + KB_ROWS))
    return most


cdef inline Py_ssize_t panel_offset(const Net* net, Py_ssize_t l,
                                    const floating* any) noexcept nogil:
    """Where layer l's weights start among the weights in panels (see kernels/products.h): each
    layer's outputs are rounded up to whole panels."""
    cdef Py_ssize_t k, offset = 0
    for k in range(l):
        offset += net.sizes[k] * padded(net.sizes[k + 1], any)
    return offset


cdef void panel_weights(const Net* net, floating* wt, floating* panels, bint back) noexcept nogil:
    """Every layer's weights Wᵀ in wt into panels (back: from the panels into wt), this
    member's share of the rows; a barrier must follow before anyone reads them."""
    cdef int parts = team_size(), me = team_rank()
    cdef Py_ssize_t l, k0, k1, n_in, n_out
    cdef floating* p
    for l in range(net.n_layers):
        n_in = net.sizes[l]
        n_out = net.sizes[l + 1]
        k0 = cut(n_in, TILE_ROWS, me, parts)
        k1 = cut(n_in, TILE_ROWS, me + 1, parts)
        p = panels + panel_offset(net, l, wt)
        if floating is double:
            if back:
                unpanel_layer_f64(p, n_in, n_out, k0, k1, wt + net.w_off[l])
            else:
                panel_layer_f64(wt + net.w_off[l], n_in, n_out, k0, k1, p)
        else:
            if back:
                unpanel_layer_f32(p, n_in, n_out, k0, k1, wt + net.w_off[l])
            else:
                panel_layer_f32(wt + net.w_off[l], n_in, n_out, k0, k1, p)


cdef inline Py_ssize_t scratch_size(const Net* net, Py_ssize_t m, const floating* any) noexcept nogil:
    """Values of the backward sums' buffer, shared by the team: the widest hidden layer's units
    × the examples, padded."""
    return widest(net, 1, net.n_layers) * padded(m, any)


cdef void activate_columns(floating* z, Py_ssize_t stride, Py_ssize_t m, const floating* bias,
                           Py_ssize_t n, int kind) noexcept nogil:
    """z_i[j] ← activation(z_i[j] + bias[j]) for the n units j of the m rows z_i = z + i·stride,
    SAMPLES rows at a time (activate_rows)."""
    cdef floating* rows[SAMPLES]
    cdef Py_ssize_t i0 = 0, e, ns
    while i0 < m:
        ns = min(<Py_ssize_t>SAMPLES, m - i0)
        for e in range(ns):
            rows[e] = z + (i0 + e) * stride
        activate_rows(rows, ns, bias, n, kind)
        i0 += ns


cdef void forward_layers(const Net* net, const floating* X, const Py_ssize_t* idx, Py_ssize_t m,
                         const floating* pw, const floating* b, floating* act,
                         floating* pack, floating* delta=NULL) noexcept nogil:
    """Fill rows 0 … m−1 of act (``width`` apart) with a^1 … a^L of the inputs X[idx[i]] (rows
    i of X without idx), a layer at a time, from the weights in panels pw; the team splits
    each layer's outputs by panels. The output layer's softmax, which needs whole rows, is left to the caller,
    after the barrier that ends this. In training with dropout, the hidden units are dropped as
    each member's share of a layer is done, their slopes going into ``delta`` (drop_units)."""
    cdef int parts = team_size(), me = team_rank()
    cdef Py_ssize_t TN = tile_cols(pw)
    cdef Py_ssize_t l, n_in, n_out, panels, p0, p1, j0, j1, x_stride, i
    cdef const floating* x
    cdef const Py_ssize_t* x_idx
    cdef int kind
    for l in range(net.n_layers):
        n_in = net.sizes[l]
        n_out = net.sizes[l + 1]
        if l == 0:
            x, x_idx, x_stride = X, idx, n_in
        else:
            x, x_idx, x_stride = act + net.a_off[l - 1], NULL, net.width
        panels = (n_out + TN - 1) // TN
        p0 = panels * me // parts
        p1 = panels * (me + 1) // parts
        if p0 < p1:
            if floating is double:
                forward_product_f64(x, x_idx, x_stride, m, n_in, pw + panel_offset(net, l, pw),
                                    n_out, act + net.a_off[l], net.width, p0, p1, pack, KC_MAX)
            else:
                forward_product_f32(x, x_idx, x_stride, m, n_in, pw + panel_offset(net, l, pw),
                                    n_out, act + net.a_off[l], net.width, p0, p1, pack, KC_MAX)
            kind = net.output if l == net.n_layers - 1 else net.activation
            if kind != SOFTMAX:
                j0 = p0 * TN
                j1 = min(p1 * TN, n_out)
                activate_columns(act + net.a_off[l] + j0, net.width, m, b + net.a_off[l] + j0,
                                 j1 - j0, kind)
                if net.dropping and delta != NULL and l < net.n_layers - 1:
                    for i in range(m):
                        drop_units(net, l + 1, idx[i], act + i * net.width + net.a_off[l],
                                   delta + i * net.width + net.a_off[l], j0, j1)
        if parts > 1:
            barrier()


cdef void layered_member(const Net* net, const floating* X, const floating* Y,
                         const Py_ssize_t* idx, Py_ssize_t m, floating* pw, floating* b,
                         floating* gwt, floating* gb, floating* act, floating* delta,
                         floating* err, const Rule* rule,
                         floating* pv, floating* vb, bint update, double* error_sum,
                         floating* pack, floating* scratch) noexcept nogil:
    """batch_member's work (see there) for mini-batches that go a layer at a time, on the
    weights in panels pw (and their state in panels pv): the forward pass, the output deltas, the deltas
    of each layer below, then every layer's gradient with the step (or, without ``update``,
    G/m into gwt as Wᵀ), each split between the members of the team with a barrier after it.
    ``pack`` is the member's packing buffer (pack_size), ``scratch`` the team's
    (scratch_size)."""
    cdef int parts = team_size(), me = team_rank()
    cdef Py_ssize_t L = net.n_layers, width = net.width
    cdef Py_ssize_t m_pad = padded(m, pw)
    cdef Py_ssize_t kc_back = backward_kc(m, pw)
    cdef Py_ssize_t l, i, k, n, n_in, n_next, k0, k1
    cdef floating* out
    cdef floating* vel
    cdef const floating* a
    cdef const Py_ssize_t* a_idx
    cdef Py_ssize_t a_stride
    forward_layers(net, X, idx, m, pw, b, act, pack, delta)
    # δ^L and e_x, split by examples: the softmax needs whole rows.
    for i in range(m * me // parts, m * (me + 1) // parts):
        if net.output == SOFTMAX:
            softmax_(act + i * width + net.a_off[L - 1], b + net.a_off[L - 1], net.sizes[L])
        err[i] = output_deltas(net, Y + idx[i] * net.sizes[L], act + i * width, delta + i * width)
    if parts > 1:
        barrier()
    # δ^l_k = (Σ_j W[j,k]·δ^{l+1}_j)·σ'(a^l_k), split by units k: the sums go into
    # scratch (row k, one column per example), then times σ' into the deltas.
    for l in range(L - 1, 0, -1):
        n = net.sizes[l]
        n_next = net.sizes[l + 1]
        k0 = cut(n, TILE_ROWS, me, parts)
        k1 = cut(n, TILE_ROWS, me + 1, parts)
        if k0 < k1:
            if floating is double:
                backward_product_f64(pw + panel_offset(net, l, pw), n, n_next, k0, k1,
                                     delta + net.a_off[l], width, m, scratch, m_pad, pack, kc_back)
                deltas_from_sums_f64(scratch, m_pad, m, k0, k1, act + net.a_off[l - 1],
                                     delta + net.a_off[l - 1], width,
                                     FASTMLP_SLOPES if net.dropping else net.activation)
            else:
                backward_product_f32(pw + panel_offset(net, l, pw), n, n_next, k0, k1,
                                     delta + net.a_off[l], width, m, scratch, m_pad, pack, kc_back)
                deltas_from_sums_f32(scratch, m_pad, m, k0, k1, act + net.a_off[l - 1],
                                     delta + net.a_off[l - 1], width,
                                     FASTMLP_SLOPES if net.dropping else net.activation)
        if parts > 1:
            barrier()
    # G[l][j, k] = Σ_i δ^{l+1}_{ij}·a^l_{ik}, split by weight rows k, into the step (or into gwt).
    for l in range(L):
        n_in = net.sizes[l]
        k0 = cut(n_in, TILE_ROWS, me, parts)
        k1 = cut(n_in, TILE_ROWS, me + 1, parts)
        if k0 >= k1:
            continue
        if l == 0:
            a, a_idx, a_stride = X, idx, n_in
        else:
            a, a_idx, a_stride = act + net.a_off[l - 1], NULL, width
        out = pw + panel_offset(net, l, pw) if update else gwt + net.w_off[l]
        vel = NULL if pv == NULL else pv + panel_offset(net, l, pw)
        if floating is double:
            gradient_product_f64(a, a_idx, a_stride, delta + net.a_off[l], width, m, n_in,
                                 net.sizes[l + 1], k0, k1, out, rule if update else NULL, vel, KB_ROWS, pack)
        else:
            gradient_product_f32(a, a_idx, a_stride, delta + net.a_off[l], width, m, n_in,
                                 net.sizes[l + 1], k0, k1, out, rule if update else NULL, vel, KB_ROWS, pack)
        if not update:
            for k in range((k1 - k0) * net.sizes[l + 1]):
                out[k0 * net.sizes[l + 1] + k] = out[k0 * net.sizes[l + 1] + k] / <floating>m
    finish_biases(net, width * me // parts, width * (me + 1) // parts, m, delta, gb,
                  b if update else NULL, vb, rule)
    if me == 0:
        for i in range(m):
            error_sum[0] = error_sum[0] + <double>err[i]


cdef void forward_layered(const Net* net, const floating* X, Py_ssize_t n, Py_ssize_t rows,
                          floating* wt, floating* pw, const floating* b, floating* act,
                          floating* pack, floating* out) noexcept nogil:
    """The output activations of the n rows of X into ``out``, ``rows`` examples at a time
    through forward_layers, for every member of a team; the weights wt go into panels pw
    first. ``act`` holds ``rows`` rows of the network's width."""
    cdef int parts = team_size(), me = team_rank()
    cdef Py_ssize_t start = 0, m, i, j, L = net.n_layers, n_out = net.sizes[net.n_layers]
    cdef floating* z
    panel_weights(net, wt, pw, False)
    if parts > 1:
        barrier()
    while start < n:
        m = min(rows, n - start)
        forward_layers(net, X + start * net.sizes[0], NULL, m, pw, b, act, pack)
        for i in range(m * me // parts, m * (me + 1) // parts):
            z = act + i * net.width + net.a_off[L - 1]
            if net.output == SOFTMAX:
                softmax_(z, b + net.a_off[L - 1], n_out)
            for j in range(n_out):
                out[(start + i) * n_out + j] = z[j]
        if parts > 1:
            barrier()
        start += m


cdef void epoch_layered(const Net* net, const floating* X, const floating* Y,
                        const Py_ssize_t* perm, Py_ssize_t n, Py_ssize_t batch_size,
                        const Optimizer* opt, double* powers, floating* vwt, floating* vb,
                        floating* wt, floating* b, floating* gb, floating* act, floating* delta,
                        floating* err, bint enter, bint leave, floating* pw, floating* pv,
                        floating* pack, floating* scratch, double* total,
                        Py_ssize_t* alive) noexcept nogil:
    """epoch_member's mini-batches a layer at a time, on the weights (and the optimizer's
    state) in panels: they go there first if ``enter``, and back after if ``leave``. Adam's
    second moments follow the first ones, in wt's layout in vwt and in the panels' in pv."""
    cdef Py_ssize_t start = 0, m, slot
    cdef Py_ssize_t panels = panel_offset(net, net.n_layers, pw), weights = net.w_off[net.n_layers]
    cdef Py_ssize_t slots = 0 if vwt == NULL else 2 if opt.kind == ADAM else 1
    cdef int parts = team_size()
    cdef Rule rule
    if enter:
        panel_weights(net, wt, pw, False)
        for slot in range(slots):
            panel_weights(net, vwt + slot * weights, pv + slot * panels, False)
        if parts > 1:
            barrier()
    while start < n:
        m = min(batch_size, n - start)
        step_rule(&rule, opt, m, powers, panels, pw)
        layered_member(net, X, Y, perm + start, m, pw, b, NULL, gb, act, delta, err,
                       &rule, pv if vwt != NULL else NULL, vb, True, total, pack, scratch)
        if team_rank() == 0:
            note_alive(net, act, m, alive)
        if parts > 1:
            barrier()
        start += m
    if leave:
        panel_weights(net, wt, pw, True)
        for slot in range(slots):
            panel_weights(net, vwt + slot * weights, pv + slot * panels, True)
