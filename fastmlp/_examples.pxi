# Included by _kernels.pyx: mini-batches in blocks of examples.
#
# Each block of up to SAMPLES examples goes through every layer, forward
# then backward, before the next; the gradient sums of a chunk of CHUNK
# examples follow while their inputs are still in cache. Partial sums stay
# in registers for a whole sum: SAMPLES examples × LANES outputs in the
# forward pass (each row of Wᵀ is loaded once for all the examples),
# rows_of() inputs × LANES outputs in the weight gradient (each δ is loaded
# once for all the rows). LANES, the outputs of a block, is 16, 8 or 4;
# layers narrower than that go a unit vector at a time (vector_lanes: 8, 4
# or 2 units), and narrower than that one output at a time. The block loops
# are in kernels/blocks.h and sweeps.h. Blocking and threads only decide
# which independent sums run side by side; each sum still runs in contract
# order. Each block reads a layer's whole Wᵀ: right while the weights stay
# in L1 and L2; wider networks go a layer at a time (_layers.pxi).

cdef extern from "kernels/kernels.h" nogil:
    # Register-blocked inner loops (kernels/blocks.h and sweeps.h); the same
    # with a single unit vector for narrower layers (the *_narrow functions).
    void weighted_sums_block_f64(int examples, const double* const* a, Py_ssize_t n_in,
                                 const double* w, Py_ssize_t stride, double* const* z,
                                 const double* const* next)
    void weighted_sums_block_f32(int examples, const float* const* a, Py_ssize_t n_in,
                                 const float* w, Py_ssize_t stride, float* const* z,
                                 const float* const* next)
    void nudge_block_f64(const double* a, const Py_ssize_t* idx, Py_ssize_t a_stride,
                         const double* d, Py_ssize_t d_stride, Py_ssize_t i0, Py_ssize_t i1,
                         int first, const double* g_in, Py_ssize_t in_stride,
                         double* g_out, Py_ssize_t out_stride, const Rule* rule, double* vel)
    void nudge_block_f32(const float* a, const Py_ssize_t* idx, Py_ssize_t a_stride,
                         const float* d, Py_ssize_t d_stride, Py_ssize_t i0, Py_ssize_t i1,
                         int first, const float* g_in, Py_ssize_t in_stride,
                         float* g_out, Py_ssize_t out_stride, const Rule* rule, float* vel)
    void one_example_rows_f64(const double* a, Py_ssize_t rows, const double* d, double step,
                              double* w, Py_ssize_t stride)
    void one_example_rows_f32(const float* a, Py_ssize_t rows, const float* d, float step,
                              float* w, Py_ssize_t stride)
    void step_then_sums_f64(const double* a, Py_ssize_t rows, const double* d, double step,
                            double* w, Py_ssize_t stride, const double* x, double* z,
                            const double* next)
    void step_then_sums_f32(const float* a, Py_ssize_t rows, const float* d, float step,
                            float* w, Py_ssize_t stride, const float* x, float* z,
                            const float* next)
    void nudge_narrow_f64(const double* a, const Py_ssize_t* idx, Py_ssize_t a_stride,
                          const double* d, Py_ssize_t d_stride, Py_ssize_t i0, Py_ssize_t i1,
                          int first, const double* g_in, Py_ssize_t in_stride,
                          double* g_out, Py_ssize_t out_stride, const Rule* rule, double* vel)
    void nudge_narrow_f32(const float* a, const Py_ssize_t* idx, Py_ssize_t a_stride,
                          const float* d, Py_ssize_t d_stride, Py_ssize_t i0, Py_ssize_t i1,
                          int first, const float* g_in, Py_ssize_t in_stride,
                          float* g_out, Py_ssize_t out_stride, const Rule* rule, float* vel)
    void weighted_sums_narrow_f64(int examples, const double* const* a, Py_ssize_t n_in,
                                  const double* w, Py_ssize_t stride, double* const* z)
    void weighted_sums_narrow_f32(int examples, const float* const* a, Py_ssize_t n_in,
                                  const float* w, Py_ssize_t stride, float* const* z)
    # backward_example's deltas of a hidden layer, a vector of units at a time.
    void deltas_back_f64(const double* w, Py_ssize_t n, const double* d_next, Py_ssize_t n_next,
                         const double* a, int kind, double* d)
    void deltas_back_f32(const float* w, Py_ssize_t n, const float* d_next, Py_ssize_t n_next,
                         const float* a, int kind, float* d)


cdef enum:
    CHUNK = 64  # examples per sweep over the gradient rows, so their inputs stay in cache
    # Mini-batches this large take their deltas from an untransposed copy of the hidden
    # weights: making it costs about one example's backward pass without it.
    MIN_UNTRANSPOSED = 4
    MIN_PARALLEL = 32  # smaller mini-batches run on one thread: waking others costs more


cdef inline Py_ssize_t lanes(const floating* any) noexcept nogil:
    """Outputs per register block (at most 16)."""
    return FASTMLP_OUTPUTS_F64 if floating is double else FASTMLP_OUTPUTS_F32


cdef inline Py_ssize_t rows_of(const floating* any) noexcept nogil:
    """Weight rows per gradient block (at most 16)."""
    return FASTMLP_ROWS_F64 if floating is double else FASTMLP_ROWS_F32


cdef inline Py_ssize_t group_of(Py_ssize_t n_out, const floating* any) noexcept nogil:
    """Outputs that go side by side in a layer of n_out: a block's (LANES) when there are
    enough, else a unit vector's, else 0 (one at a time)."""
    if n_out >= lanes(any):
        return lanes(any)
    if vector_lanes(any) and n_out >= vector_lanes(any):
        return vector_lanes(any)
    return 0


cdef inline void prefetch_row(const floating* row, Py_ssize_t n) noexcept nogil:
    """Fetch the (at most two) cache lines of a short row, such as an example's targets."""
    prefetch(row)
    prefetch(row + n - 1)


cdef void weighted_sums(int examples, const floating** a, Py_ssize_t n_in, Py_ssize_t n_out,
                        const floating* w, floating** z,
                        const floating** next=NULL) noexcept nogil:
    """z[e][j] = Σ_k W[j,k]·a[e][k] for 1 … SAMPLES examples, each sum over k in order.

    Outputs go LANES at a time, or a vector at a time in narrower layers;
    the last group is shifted back to end at n_out and recomputes a few
    outputs, which writes the same values again.
    """
    cdef Py_ssize_t LANES = lanes(w)
    cdef Py_ssize_t group = group_of(n_out, w)
    cdef floating* z_at[SAMPLES]
    cdef floating t
    cdef Py_ssize_t j0 = 0, j, k, e
    if group == 0:
        for e in range(examples):
            for j in range(n_out):
                t = a[e][0] * w[j]
                for k in range(1, n_in):
                    t = madd(t, a[e][k], w[k * n_out + j])
                z[e][j] = t
        return
    while True:
        if j0 + group > n_out:
            j0 = n_out - group
        for e in range(examples):
            z_at[e] = z[e] + j0
        if group < LANES:
            if floating is double:
                weighted_sums_narrow_f64(examples, a, n_in, w + j0, n_out, z_at)
            else:
                weighted_sums_narrow_f32(examples, a, n_in, w + j0, n_out, z_at)
        elif floating is double:
            weighted_sums_block_f64(examples, a, n_in, w + j0, n_out, z_at, next if j0 == 0 else NULL)
        else:
            weighted_sums_block_f32(examples, a, n_in, w + j0, n_out, z_at, next if j0 == 0 else NULL)
        if j0 + group >= n_out:
            return
        j0 += group


cdef void forward_block(const Net* net, const floating** x, Py_ssize_t ns, floating** rows,
                        const floating* wt, const floating* b,
                        bint first_summed=False, const floating** next=NULL,
                        const Py_ssize_t* ids=NULL, floating** slopes=NULL) noexcept nogil:
    """Fill rows[e] with a^1 … a^L of input x[e], for ns ≤ SAMPLES examples.

    With ``first_summed``, the first layer's sums Σ_k W[j,k]·x_k are already
    in the rows (see one_example_epoch), and only their bias and activation remain.
    Given the examples' rows of X, ``ids``, and where their deltas go, ``slopes``, training
    with dropout drops the hidden units (drop_units) as each layer is done.
    """
    cdef const floating* a_in[SAMPLES]
    cdef floating* z[SAMPLES]
    cdef Py_ssize_t l, j, e, n_out
    cdef int examples = <int>ns
    cdef int kind
    cdef const floating* bias
    for e in range(examples):
        a_in[e] = x[e]
    for l in range(net.n_layers):
        n_out = net.sizes[l + 1]
        for e in range(examples):
            z[e] = rows[e] + net.a_off[l]
        # z_j = (Σ_k W[j,k]·a_k) + b_j: the sum over k in order, then the bias.
        if l > 0 or not first_summed:
            weighted_sums(examples, a_in, net.sizes[l], n_out, wt + net.w_off[l], z,
                          next if l == 0 else NULL)
        bias = b + net.a_off[l]
        kind = net.output if l == net.n_layers - 1 else net.activation
        activate_rows(z, ns, bias, n_out, kind)
        if net.dropping and ids != NULL and l < net.n_layers - 1:
            for e in range(examples):
                drop_units(net, l + 1, ids[e], z[e], slopes[e] + net.a_off[l], 0, n_out)
        for e in range(examples):
            a_in[e] = z[e]


cdef floating backward_example(const Net* net, const floating* y, const floating* wt,
                               const floating* w_back, const floating* act,
                               floating* delta) noexcept nogil:
    """Fill ``delta`` with δ^L … δ^1 of one example; return its cost e_x (contract 8).

    Given ``w_back``, the hidden layers' W untransposed (see untranspose_hidden), layers
    of at least a vector of units take their deltas a vector at a time from it."""
    cdef Py_ssize_t L = net.n_layers
    cdef const floating* a
    cdef floating* d
    cdef const floating* d_next
    cdef const floating* w_row
    cdef floating error = output_deltas(net, y, act, delta), s
    cdef Py_ssize_t l, j, k, n, n_next
    cdef Py_ssize_t vector = vector_lanes(wt)
    # δ^l_k = (Σ_j W[j,k]·δ^{l+1}_j)·σ'(a^l_k); W[j,k] is row k of Wᵀ.
    for l in range(L - 1, 0, -1):
        n = net.sizes[l]
        n_next = net.sizes[l + 1]
        a = act + net.a_off[l - 1]
        d = delta + net.a_off[l - 1]
        d_next = delta + net.a_off[l]
        if w_back != NULL and vector and n >= vector:
            if floating is double:
                deltas_back_f64(w_back + net.w_off[l] - net.w_off[1], n, d_next, n_next, a,
                                FASTMLP_SLOPES if net.dropping else net.activation, d)
            else:
                deltas_back_f32(w_back + net.w_off[l] - net.w_off[1], n, d_next, n_next, a,
                                FASTMLP_SLOPES if net.dropping else net.activation, d)
            continue
        for k in range(n):
            w_row = wt + net.w_off[l] + k * n_next
            s = w_row[0] * d_next[0]
            for j in range(1, n_next):
                s = madd(s, w_row[j], d_next[j])
            # With dropout, σ'(a_k)·m_k is in d[k] already (drop_units).
            d[k] = s * (d[k] if net.dropping else derivative(a[k], net.activation))
    return error


cdef void untranspose_hidden(const Net* net, const floating* wt,
                            floating* w_back) noexcept nogil:
    """w_back ← the hidden layers' W (l ≥ 1) untransposed, W[j,k] at w_off[l] − w_off[1] + j·n_l + k:
    rows of W hold the weights of consecutive units k, which backward_example takes a vector at
    a time."""
    cdef Py_ssize_t l, j, k, n, n_next
    cdef const floating* w
    cdef floating* out
    for l in range(1, net.n_layers):
        n = net.sizes[l]
        n_next = net.sizes[l + 1]
        w = wt + net.w_off[l]
        out = w_back + net.w_off[l] - net.w_off[1]
        for k in range(n):
            for j in range(n_next):
                out[j * n + k] = w[k * n_next + j]


cdef void backprop_block(const Net* net, Py_ssize_t i0, Py_ssize_t ns,
                         const floating* X, const floating* Y, const Py_ssize_t* idx,
                         const floating* wt, const floating* b, floating* act,
                         floating* delta, floating* err, const floating* w_back,
                         const Py_ssize_t* fetch) noexcept nogil:
    """Forward and backward pass of the ns ≤ SAMPLES examples idx[i0 …].

    The inputs and targets of the ns examples idx[fetch[0]] … (those 2·SAMPLES places
    further on in the thread's sequence, from the next mini-batch perhaps) are fetched
    into cache meanwhile."""
    cdef const floating* x[SAMPLES]
    cdef const floating* next[SAMPLES]
    cdef floating* rows[SAMPLES]
    cdef floating* slopes[SAMPLES]
    cdef Py_ssize_t s, i
    cdef Py_ssize_t n_y = net.sizes[net.n_layers]
    for s in range(ns):
        x[s] = X + idx[i0 + s] * net.sizes[0]
        rows[s] = act + (i0 + s) * net.width
        slopes[s] = delta + (i0 + s) * net.width
    for s in range(ns):
        next[s] = X + idx[fetch[s]] * net.sizes[0]
        prefetch_row(Y + idx[fetch[s]] * n_y, n_y)
    forward_block(net, x, ns, rows, wt, b, False, next, idx + i0, slopes)
    for i in range(i0, i0 + ns):
        err[i] = backward_example(net, Y + idx[i] * net.sizes[net.n_layers], wt, w_back,
                                  act + i * net.width, delta + i * net.width)


cdef inline void nudge_group(Py_ssize_t group, const floating* a, const Py_ssize_t* a_idx,
                             Py_ssize_t a_stride, const floating* d, Py_ssize_t d_stride,
                             Py_ssize_t i0, Py_ssize_t i1, const floating* g,
                             Py_ssize_t g_stride, floating* out, Py_ssize_t out_stride,
                             const Rule* rule, floating* vel) noexcept nogil:
    """nudge_block (group: LANES outputs) or nudge_narrow (a unit vector's) of kernels/sweeps.h."""
    if group == lanes(g):
        if floating is double:
            nudge_block_f64(a, a_idx, a_stride, d, d_stride, i0, i1, i0 == 0, g, g_stride,
                            out, out_stride, rule, vel)
        else:
            nudge_block_f32(a, a_idx, a_stride, d, d_stride, i0, i1, i0 == 0, g, g_stride,
                            out, out_stride, rule, vel)
    elif floating is double:
        nudge_narrow_f64(a, a_idx, a_stride, d, d_stride, i0, i1, i0 == 0, g, g_stride,
                         out, out_stride, rule, vel)
    else:
        nudge_narrow_f32(a, a_idx, a_stride, d, d_stride, i0, i1, i0 == 0, g, g_stride,
                         out, out_stride, rule, vel)


cdef void nudge_rows(const Net* net, Py_ssize_t l, Py_ssize_t k0, Py_ssize_t i0, Py_ssize_t i1,
                     const floating* X, const Py_ssize_t* idx, const floating* act,
                     const floating* delta, floating* gwt, floating* wt, const Rule* rule,
                     floating* vwt) noexcept nogil:
    """Add the nudges of examples i0 … i1 to rows k0 … k0+rows_of() of Gᵀ for layer l.

    G[j,k] = Σ_i δ_ij·a_ik in the order of i: started at i = 0, continued
    from the stored partial sums otherwise. With ``wt`` (the mini-batch's
    last examples), the finished sums are not stored: they go straight into
    the rule's step (take_step). Needs group_of(n_out) > 0. Outputs go
    LANES at a time, or a unit vector at a time in narrower layers. When the
    group does not divide n_out, a last group ending at n_out overlaps the
    others: it goes first, while all its sums are as the previous sweep left
    them, and keeps only the outputs that no other group has (a continued sum
    must not be advanced twice).
    """
    cdef floating tail[16 * 16]  # rows_of() and lanes() are at most 16 (kernels/shapes.h checks)
    cdef Py_ssize_t n_out = net.sizes[l + 1]
    cdef Py_ssize_t group = group_of(n_out, gwt)
    cdef Py_ssize_t j0, q, r, a_stride, shift = n_out - group
    cdef const floating* a
    cdef const Py_ssize_t* a_idx
    cdef const floating* d = delta + net.a_off[l]
    cdef floating* g = gwt + net.w_off[l] + k0 * n_out
    cdef floating* out = g if wt == NULL else wt + net.w_off[l] + k0 * n_out
    cdef floating* vel = NULL if vwt == NULL else vwt + net.w_off[l] + k0 * n_out
    cdef const Rule* rule_or_store = rule if wt != NULL else NULL
    if l == 0:  # the inputs are rows idx[i] of X
        a, a_idx, a_stride = X + k0, idx, net.sizes[0]
    else:  # the inputs are the previous layer's activations, rows i of act
        a, a_idx, a_stride = act + net.a_off[l - 1] + k0, NULL, net.width
    if n_out % group:
        nudge_group(group, a, a_idx, a_stride, d + shift, net.width, i0, i1, g + shift, n_out,
                    tail, group, NULL, NULL)
        for r in range(rows_of(gwt)):
            for q in range(group - n_out % group, group):
                if wt != NULL:
                    take_step(out + r * n_out + shift + q,
                              NULL if vel == NULL else vel + r * n_out + shift + q,
                              tail[r * group + q], rule)
                else:
                    out[r * n_out + shift + q] = tail[r * group + q]
    j0 = 0
    while j0 + group <= n_out:
        nudge_group(group, a, a_idx, a_stride, d + j0, net.width, i0, i1, g + j0, n_out,
                    out + j0, n_out, rule_or_store, NULL if vel == NULL else vel + j0)
        j0 += group


cdef void nudge_row(const Net* net, Py_ssize_t l, Py_ssize_t k,
                    Py_ssize_t i0, Py_ssize_t i1, const floating* X, const Py_ssize_t* idx,
                    const floating* act, const floating* delta, floating* gwt, floating* wt,
                    const Rule* rule, floating* vwt) noexcept nogil:
    """nudge_rows for the single row k, and any number of outputs."""
    cdef Py_ssize_t n_out = net.sizes[l + 1]
    cdef Py_ssize_t i, j
    cdef floating a_ik
    cdef const floating* d
    cdef floating* g = gwt + net.w_off[l] + k * n_out
    cdef floating* w
    for i in range(i0, i1):
        if l == 0:
            a_ik = X[idx[i] * net.sizes[0] + k]
        else:
            a_ik = act[i * net.width + net.a_off[l - 1] + k]
        d = delta + i * net.width + net.a_off[l]
        if i == 0:
            for j in range(n_out):
                g[j] = a_ik * d[j]
        else:
            for j in range(n_out):
                g[j] = madd(g[j], a_ik, d[j])
    if wt != NULL:
        w = wt + net.w_off[l] + k * n_out
        for j in range(n_out):
            take_step(w + j, NULL if vwt == NULL else vwt + net.w_off[l] + k * n_out + j, g[j], rule)


cdef inline Py_ssize_t row_cost(Py_ssize_t n_out, const floating* any) noexcept nogil:
    """The vector operations per example of a weight row's sums in a layer of n_out outputs
    (scalar ones when the layer goes one output at a time, or in a build without vectors)."""
    cdef Py_ssize_t group = group_of(n_out, any), groups
    if group == 0:
        return n_out
    groups = (n_out + group - 1) // group
    if vector_lanes(any) == 0:  # blocks of scalar sums
        return groups * group
    if group < lanes(any):  # unit vectors
        return groups
    return groups * (FASTMLP_NV_F64 if floating is double else FASTMLP_NV_F32)


cdef inline Py_ssize_t row_cut(const Net* net, Py_ssize_t l, Py_ssize_t rows, int part,
                               int parts, const floating* any) noexcept nogil:
    """Where part `part` of `parts` starts in layer l's weight rows.

    The parts cut the rows of all layers, taken in order, into near-equal
    costs (row_cost), each cut at the nearest multiple of the block of rows,
    or at the layer's end if that multiple is past it. In 64-bit integers:
    the costs of a large network times the parts overflow 32 bits."""
    cdef int64_t total = 0, offset = 0, before, block
    cdef Py_ssize_t k
    for k in range(net.n_layers):
        if k == l:
            offset = total
        total += <int64_t>net.sizes[k] * row_cost(net.sizes[k + 1], any)
    if part >= parts:
        return net.sizes[l]
    before = total * part // parts - offset  # the cost of layer l's rows before the cut
    if before <= 0:
        return 0
    block = <int64_t>row_cost(net.sizes[l + 1], any) * rows
    return <Py_ssize_t>min(<int64_t>net.sizes[l], rows * ((2 * before + block) // (2 * block)))


cdef inline void row_range(const Net* net, Py_ssize_t l, int part, int parts,
                           Py_ssize_t* k_begin, Py_ssize_t* k_end,
                           const floating* any) noexcept nogil:
    """Part `part` of `parts` of layer l's weight rows, k_begin … k_end (see row_cut)."""
    k_begin[0] = row_cut(net, l, rows_of(any), part, parts, any)
    k_end[0] = row_cut(net, l, rows_of(any), part + 1, parts, any)


cdef void nudge_chunk(const Net* net, int part, int parts, Py_ssize_t i0, Py_ssize_t i1,
                      const floating* X, const Py_ssize_t* idx, const floating* act,
                      const floating* delta, floating* gwt, floating* wt, const Rule* rule,
                      floating* vwt) noexcept nogil:
    """Add the nudges of examples i0 … i1 to one part of every layer's weight rows.

    With ``wt``, these are the mini-batch's last examples: finish the sums
    and take the rule's step on those rows at once.
    """
    cdef Py_ssize_t l, k, k_end
    for l in range(net.n_layers):
        row_range(net, l, part, parts, &k, &k_end, gwt)
        if group_of(net.sizes[l + 1], gwt):
            while k + rows_of(gwt) <= k_end:
                nudge_rows(net, l, k, i0, i1, X, idx, act, delta, gwt, wt, rule, vwt)
                k += rows_of(gwt)
        while k < k_end:
            nudge_row(net, l, k, i0, i1, X, idx, act, delta, gwt, wt, rule, vwt)
            k += 1


cdef void divide_part(const Net* net, int part, int parts, Py_ssize_t m,
                      floating* gwt) noexcept nogil:
    """G ← G/m on one part of every layer's rows: the mini-batch gradient."""
    cdef Py_ssize_t l, j, k_begin, k_end, n_out
    cdef floating* g
    for l in range(net.n_layers):
        n_out = net.sizes[l + 1]
        row_range(net, l, part, parts, &k_begin, &k_end, gwt)
        g = gwt + net.w_off[l] + k_begin * n_out
        for j in range((k_end - k_begin) * n_out):
            g[j] = g[j] / <floating>m


cdef void finish_biases(const Net* net, Py_ssize_t u0, Py_ssize_t u1, Py_ssize_t m,
                        const floating* delta, floating* gb, floating* b, floating* vb,
                        const Rule* rule) noexcept nogil:
    """gb_u = Σ_i δ_iu in order, for the units u0 … u1−1 at once; then the rule's step on the
    biases b, with their state vb, not decayed; without ``b``, gb ← gb/m."""
    cdef Py_ssize_t i, j
    cdef Rule biases
    for j in range(u0, u1):
        gb[j] = delta[j]
    for i in range(1, m):
        for j in range(u0, u1):
            gb[j] = gb[j] + delta[i * net.width + j]
    if b == NULL:
        for j in range(u0, u1):
            gb[j] = gb[j] / <floating>m
        return
    biases = bias_rule(net, rule)
    for j in range(u0, u1):
        take_step(b + j, NULL if vb == NULL else vb + j, gb[j], &biases)


cdef inline Rule bias_rule(const Net* net, const Rule* rule) noexcept nogil:
    """The rule for the biases: the weights', without the decay, the states of the biases a
    width apart."""
    cdef Rule biases = rule[0]
    biases.decay = 1
    biases.second = net.width
    return biases


cdef floating one_example_step(const Net* net, Py_ssize_t id, const floating* x, const floating* y,
                               floating* wt, floating* b, floating* act, floating* delta,
                               const Rule* rule, floating* vwt, floating* vb) noexcept nogil:
    """A mini-batch of one example: the step straight from the nudges, W ← W − step·(a·δ)
    (or the rule's, as take_step).

    With one example each sum G = a_k·δ_j is its single term, so skipping
    the gradient buffer gives the same bits. Returns the example's error.
    """
    cdef floating* row = act
    cdef floating* slopes = delta
    cdef floating error
    forward_block(net, &x, 1, &row, wt, b, False, NULL, &id, &slopes)
    error = backward_example(net, y, wt, NULL, act, delta)
    if rule.kind != PLAIN or rule.decay != 1:
        one_example_update(net, x, act, delta, wt, b, rule, vwt, vb)
    else:
        one_example_plain(net, 0, x, act, delta, wt, b, <floating>rule.step)
    return error


cdef void one_example_plain(const Net* net, Py_ssize_t first, const floating* x,
                            const floating* act, const floating* delta, floating* wt,
                            floating* b, floating step) noexcept nogil:
    """One example's plain step on the layers from ``first`` on, and on every bias."""
    cdef const floating* a
    cdef Py_ssize_t l, j
    for l in range(first, net.n_layers):
        a = x if l == 0 else act + net.a_off[l - 1]
        one_example_layer(a, net.sizes[l], delta + net.a_off[l], net.sizes[l + 1], step,
                          wt + net.w_off[l])
    for j in range(net.width):
        b[j] = madd(b[j], -step, delta[j])


cdef void one_example_update(const Net* net, const floating* x, const floating* act,
                             const floating* delta, floating* wt, floating* b, const Rule* rule,
                             floating* vwt, floating* vb) noexcept nogil:
    """one_example_step's update with weight decay or another rule (take_step on every weight)."""
    cdef const floating* a
    cdef const floating* d
    cdef Py_ssize_t l, k, j, n_out, at
    cdef Rule biases = bias_rule(net, rule)
    for l in range(net.n_layers):
        n_out = net.sizes[l + 1]
        a = x if l == 0 else act + net.a_off[l - 1]
        d = delta + net.a_off[l]
        for k in range(net.sizes[l]):
            at = net.w_off[l] + k * n_out
            for j in range(n_out):
                take_step(wt + at + j, NULL if vwt == NULL else vwt + at + j, a[k] * d[j], rule)
    for j in range(net.width):
        take_step(b + j, NULL if vb == NULL else vb + j, delta[j], &biases)


cdef inline Py_ssize_t share_of(Py_ssize_t i0, Py_ssize_t i1, int me, int parts,
                                Py_ssize_t* stop) noexcept nogil:
    """Where member ``me`` of ``parts`` starts its share of the examples i0 … i1 (a chunk);
    sets ``stop`` to where it ends. The shares differ by one example at most."""
    stop[0] = i0 + (i1 - i0) * (me + 1) // parts
    return i0 + (i1 - i0) * me // parts


cdef void batch_member(const Net* net, const floating* X, const floating* Y,
                         const Py_ssize_t* idx, Py_ssize_t m, floating* wt, floating* b,
                         floating* gwt, floating* gb, floating* act, floating* delta,
                         floating* err, const Rule* rule,
                         floating* vwt, floating* vb, bint update,
                         double* error_sum, floating* w_back, Py_ssize_t back_stride,
                         Py_ssize_t n_idx) noexcept nogil:
    """One member's share of a mini-batch, idx[0..m), for every member of a team of threads.

    idx has n_idx ≥ m entries; those after m are the next examples. Each block
    fetches into cache the inputs and targets of the member's examples 2·SAMPLES places
    further on: of this chunk, of the next chunk, or of the next mini-batch's first (see
    backprop_block).

    Computes activations, deltas and errors into rows 0..m of the buffers and
    the nudge sums into gwt and gb; then, with ``update``, takes the rule's step
    (with the state vwt and vb, unless the rule is plain SGD); without, divides
    the sums by m. Row ``me`` of w_back (rows back_stride apart) is
    the member's copy of the hidden layers' W for the backward passes.

    The examples go CHUNK at a time: the team runs their forward and
    backward passes (split into shares of examples that differ by one at most,
    in blocks as even as they go), waits for each other,
    then adds their nudges (split by weight rows) while their inputs are
    still in cache. Member 0 sums the biases' nudges and adds the examples'
    errors, in order, to error_sum (in float64); the caller's barrier must
    follow before anything reads the results. Small mini-batches run on
    member 0.
    """
    cdef int team = team_size(), me = team_rank()
    cdef int parts = team if m >= MIN_PARALLEL else 1
    cdef Py_ssize_t i0, i1, i, s, ns, start, stop, next_start, next_stop, blocks
    cdef Py_ssize_t fetch[SAMPLES]
    cdef floating* back
    if update and m == 1:
        if me == 0:
            error_sum[0] = error_sum[0] + <double>one_example_step(
                net, idx[0], X + idx[0] * net.sizes[0], Y + idx[0] * net.sizes[net.n_layers],
                wt, b, act, delta, rule, vwt, vb)
        return
    if me >= parts:
        return
    back = NULL
    if m >= MIN_UNTRANSPOSED:
        back = w_back + me * back_stride
        untranspose_hidden(net, wt, back)
    i0 = 0
    while i0 < m:
        i1 = min(i0 + <Py_ssize_t>CHUNK, m)
        start = share_of(i0, i1, me, parts, &stop)
        # The member's share of the next chunk (the next mini-batch's taken as whole).
        next_start = share_of(i1, min(i1 + <Py_ssize_t>CHUNK, m) if i1 < m else i1 + CHUNK,
                              me, parts, &next_stop)
        i = start
        while i < stop:
            # Blocks as even as they go: with blocks of 8, 18 examples as 6 + 6 + 6, not 8 + 8 + 2.
            blocks = (stop - i + SAMPLES - 1) // SAMPLES
            ns = (stop - i + blocks - 1) // blocks
            # The examples 2·SAMPLES places further in the member's sequence: its share
            # of this chunk, then of the next (where it has them).
            for s in range(ns):
                fetch[s] = i + 2 * SAMPLES + s
                if fetch[s] >= stop:
                    fetch[s] = next_start + fetch[s] - stop
                    if fetch[s] >= next_stop:
                        fetch[s] = i + s  # none: this block's own, already in cache
                if fetch[s] >= n_idx:
                    fetch[s] = i + s
            backprop_block(net, i, ns, X, Y, idx, wt, b, act, delta, err, back, fetch)
            i += ns
        if parts > 1:
            barrier()
        # Every nudge was computed with the old weights before any weight moves:
        # the step comes with the last chunk's sums, after all the deltas.
        nudge_chunk(net, me, parts, i0, i1, X, idx, act, delta, gwt,
                    wt if update and i1 == m else NULL, rule, vwt)
        i0 = i1
    if not update:
        divide_part(net, me, parts, m, gwt)
    if me == 0:
        finish_biases(net, 0, net.width, m, delta, gb, b if update else NULL, vb, rule)
        for i in range(m):
            error_sum[0] = error_sum[0] + <double>err[i]


cdef double one_example_epoch(const Net* net, const floating* X, const floating* Y,
                              const Py_ssize_t* perm, Py_ssize_t n, floating* wt, floating* b,
                              floating* act, floating* delta, floating step,
                              double total, Py_ssize_t* alive) noexcept nogil:
    """Mini-batches of one example with the plain step, as one_example_step takes them, in a
    pipeline: the step on the first layer's weights comes in one pass with the next example's
    sums over them (step_then_sums), each row read for the next example right after its step.
    The operations and their order are one_example_step's, so are the bits. Needs the first
    layer's outputs to be whole groups of LANES. Returns total plus the examples' e_x."""
    cdef Py_ssize_t t, j, n_in = net.sizes[0], h = net.sizes[1], n_y = net.sizes[net.n_layers]
    cdef Py_ssize_t LANES = lanes(wt)
    cdef const floating* x
    cdef const floating* after
    cdef floating* z
    cdef floating* row = act
    cdef floating error
    cdef const floating* first = X + perm[0] * n_in
    cdef floating* first_z = act
    # The first example's sums over the first layer, as forward_block would compute them.
    weighted_sums(1, &first, n_in, h, wt, &first_z)
    for t in range(n):
        x = X + perm[t] * n_in
        forward_block(net, &x, 1, &row, wt, b, True)
        error = backward_example(net, Y + perm[t] * net.sizes[net.n_layers], wt, NULL, act,
                                 delta)
        total = total + <double>error
        note_alive(net, act, 1, alive)  # before the next example's sums take the first layer's units
        one_example_plain(net, 1, x, act, delta, wt, b, step)  # the later layers and the biases
        # The first layer's step, with the next example's sums (into the first layer's
        # units of act, free again once the deltas are known).
        z = act
        # The example after the next one: its inputs, fetched while the first group's
        # sums run, and its targets.
        after = X + perm[t + 2] * n_in if t + 2 < n else NULL
        if t + 2 < n:
            prefetch_row(Y + perm[t + 2] * n_y, n_y)
        j = 0
        while j < h:
            if t + 1 < n:
                if floating is double:
                    step_then_sums_f64(x, n_in, delta + j, step, wt + j, h, X + perm[t + 1] * n_in,
                                       z + j, after if j == 0 else NULL)
                else:
                    step_then_sums_f32(x, n_in, delta + j, step, wt + j, h, X + perm[t + 1] * n_in,
                                       z + j, after if j == 0 else NULL)
            else:
                if floating is double:
                    one_example_rows_f64(x, n_in, delta + j, step, wt + j, h)
                else:
                    one_example_rows_f32(x, n_in, delta + j, step, wt + j, h)
            j += LANES
    return total


cdef void one_example_layer(const floating* a, Py_ssize_t n_in, const floating* d,
                            Py_ssize_t n_out, floating step, floating* w) noexcept nogil:
    """One example's plain step on one layer: w[k][j] = w[k][j] − step·(a_k·d_j), whole groups
    of LANES outputs in registers, the rest one by one."""
    cdef Py_ssize_t j0 = 0, k, j
    cdef Py_ssize_t rest = n_out - n_out % lanes(w)
    while j0 < rest:
        if floating is double:
            one_example_rows_f64(a, n_in, d + j0, step, w + j0, n_out)
        else:
            one_example_rows_f32(a, n_in, d + j0, step, w + j0, n_out)
        j0 += lanes(w)
    for k in range(n_in):
        for j in range(rest, n_out):
            w[k * n_out + j] = madd(w[k * n_out + j], -step, a[k] * d[j])


cdef void epoch_member(const Net* net, const floating* X, const floating* Y,
                       const Py_ssize_t* perm, Py_ssize_t n, Py_ssize_t batch_size,
                       const Optimizer* opt, double* powers, floating* vwt, floating* vb,
                       floating* wt, floating* b, floating* gwt, floating* gb,
                       floating* act, floating* delta, floating* err, floating* w_back,
                       Py_ssize_t back_stride, bint by_layers, bint enter, bint leave,
                       floating* pw, floating* pv,
                       floating* pack, Py_ssize_t pack_stride, floating* scratch,
                       double* total, Py_ssize_t* alive) noexcept nogil:
    """Mini-batches over the examples in the order of perm, for every member of a team:
    ``by_layers`` a layer at a time (epoch_layered, with the panels pw and pv, entered and
    left as ``enter`` and ``leave`` say, and row ``me`` of pack, rows pack_stride apart),
    otherwise in blocks of examples (batch_member).

    Each step's rule comes from ``opt`` (step_rule); with Adam, each member advances its own
    copy of the powers, and member 0 stores them back into ``powers`` at the end.
    Member 0 adds the examples' costs e_x to total[0] in float64, in the order visited,
    and notes in ``alive`` the hidden layers that had a unit with a derivative other than 0
    (note_alive), each mini-batch's before the barrier after it.
    """
    cdef Py_ssize_t start = 0, m
    cdef Rule rule
    cdef double own[2]
    own[0] = powers[0]
    own[1] = powers[1]
    if by_layers:
        epoch_layered(net, X, Y, perm, n, batch_size, opt, own, vwt, vb, wt, b, gb, act,
                      delta, err, enter, leave, pw, pv, pack + team_rank() * pack_stride, scratch,
                      total, alive)
    elif (batch_size == 1 and opt.kind == PLAIN and <floating>opt.decay == 1 and team_size() == 1
            and net.sizes[1] % lanes(wt) == 0 and not net.dropping):
        total[0] = one_example_epoch(net, X, Y, perm, n, wt, b, act, delta,
                                     <floating>opt.eta / <floating>1, total[0], alive)
    else:
        while start < n:
            m = min(batch_size, n - start)
            step_rule(&rule, opt, m, own, net.w_off[net.n_layers], wt)
            batch_member(net, X, Y, perm + start, m, wt, b, gwt, gb, act, delta, err,
                         &rule, vwt, vb, True, total, w_back, back_stride, n - start)
            if team_rank() == 0:
                note_alive(net, act, m, alive)
            if team_size() > 1:
                barrier()
            start += m
    if team_rank() == 0:
        powers[0] = own[0]
        powers[1] = own[1]
