# cython: language_level=3
"""Compiled kernels of fastmlp: forward pass, backprop and SGD step.

They compute exactly what :mod:`fastmlp.reference` defines (its module
docstring is the arithmetic contract), operation for operation, so results
agree bit for bit. Validation happens in Python before any call here; the
kernels trust their arguments, hold no GIL and cannot fail.

The file has three layers:
(a) one-element math: exp, the activations and their derivatives;
(b) loops over blocks of 4 examples (forward pass), one example
    (backward pass) and blocks of 4 weight rows (the sums of the nudges
    over a mini-batch, then the step); their innermost register blocks are
    in _blocks_impl.h;
(c) the entry points the Python layer calls: a whole epoch, the forward
    pass over many examples, the gradient of one mini-batch, and exp.

Memory layout. Parameters live in two flat buffers. Layer l (0-based, from
layer l to layer l+1) keeps Wᵀ, shape (n_l, n_{l+1}) row-major, from
``w_off[l]``, so row k holds the weights leaving input unit k and a sum
over k can run in order while the outputs j sit side by side in a vector.
Biases, activations and deltas of one example share one layout, ``width``
units long: layer l+1's units start at ``a_off[l]``.
"""

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

# Activation codes; fastmlp/trainer.py maps names to them.
cpdef enum:
    SIGMOID = 0
    RELU = 1

cdef extern from *:
    """
    #ifdef _OPENMP
    #define FASTMLP_OPENMP 1
    #else
    #define FASTMLP_OPENMP 0
    #endif
    #ifndef FASTMLP_CFLAGS
    #define FASTMLP_CFLAGS ""
    #endif
    """
    int FASTMLP_OPENMP
    const char* FASTMLP_CFLAGS

#: Examples per block in the forward pass: forward() needs this many scratch rows per thread.
SAMPLE_BLOCK = SAMPLES

#: Whether this build runs prange loops on OpenMP threads (otherwise they run serially).
OPENMP = bool(FASTMLP_OPENMP)
#: The C compiler flags the kernels were built with.
COMPILE_FLAGS = FASTMLP_CFLAGS.decode()


cdef extern from "_blocks.h" nogil:
    # Register-blocked inner loops (see _blocks_impl.h): 4 examples or 4
    # weight rows × 2 vectors of outputs (8 float64 or 16 float32).
    void weighted_sums_block_f64(const double* a0, const double* a1, const double* a2,
                                 const double* a3, Py_ssize_t n_in, const double* w,
                                 Py_ssize_t stride, double* z0, double* z1, double* z2, double* z3)
    void weighted_sums_block_f32(const float* a0, const float* a1, const float* a2,
                                 const float* a3, Py_ssize_t n_in, const float* w,
                                 Py_ssize_t stride, float* z0, float* z1, float* z2, float* z3)
    void nudge_block_f64(const double* a, const Py_ssize_t* idx, Py_ssize_t a_stride,
                         const double* d, Py_ssize_t d_stride, Py_ssize_t i0, Py_ssize_t i1,
                         int first, const double* g_in, Py_ssize_t in_stride,
                         double* g_out, Py_ssize_t out_stride)
    void nudge_block_f32(const float* a, const Py_ssize_t* idx, Py_ssize_t a_stride,
                         const float* d, Py_ssize_t d_stride, Py_ssize_t i0, Py_ssize_t i1,
                         int first, const float* g_in, Py_ssize_t in_stride,
                         float* g_out, Py_ssize_t out_stride)


cdef struct Net:
    Py_ssize_t n_layers
    const Py_ssize_t* sizes  # n_layers + 1 widths, input first
    const Py_ssize_t* w_off  # where layer l's Wᵀ starts in the flat weights
    const Py_ssize_t* a_off  # where layer l+1's units start in an example's row
    Py_ssize_t width  # units per example over layers 1..L
    int activation


# ----------------------------------------------------------------------
# (a) One element

cdef inline floating exp_(floating x) noexcept nogil:
    """e^x exactly as fastmlp.reference.exp computes it (see its steps)."""
    cdef floating t, kf, r, p, two_k1, two_k2
    cdef int64_t k, k1
    cdef uint64_t bits64
    cdef int32_t k32, k132
    cdef uint32_t bits32
    if floating is double:
        if x < -746.0:
            x = -746.0
        if x > 710.0:
            x = 710.0
        t = x * 1.4426950408889634 + 6755399441055744.0
        kf = t - 6755399441055744.0
        r = (x - kf * 0.693147180559663) - kf * 2.8235290563031577e-13
        p = 1.6059043836821613e-10
        p = p * r + 2.08767569878681e-09
        p = p * r + 2.505210838544172e-08
        p = p * r + 2.755731922398589e-07
        p = p * r + 2.7557319223985893e-06
        p = p * r + 2.48015873015873e-05
        p = p * r + 0.0001984126984126984
        p = p * r + 0.001388888888888889
        p = p * r + 0.008333333333333333
        p = p * r + 0.041666666666666664
        p = p * r + 0.16666666666666666
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        memcpy(&bits64, &t, 8)
        k = <int64_t>(bits64 - <uint64_t>0x4338000000000000)  # bits of 1.5·2^52
        k1 = k >> 1
        bits64 = <uint64_t>(k1 + 1023) << 52
        memcpy(&two_k1, &bits64, 8)
        bits64 = <uint64_t>(k - k1 + 1023) << 52
        memcpy(&two_k2, &bits64, 8)
    else:
        if x < <float>-104.0:
            x = <float>-104.0
        if x > <float>89.0:
            x = <float>89.0
        t = x * <float>1.4426950408889634 + <float>12582912.0
        kf = t - <float>12582912.0
        r = (x - kf * <float>0.693145751953125) - kf * <float>1.428606765330187e-06
        p = <float>0.0001984126984126984
        p = p * r + <float>0.001388888888888889
        p = p * r + <float>0.008333333333333333
        p = p * r + <float>0.041666666666666664
        p = p * r + <float>0.16666666666666666
        p = p * r + <float>0.5
        p = p * r + <float>1.0
        p = p * r + <float>1.0
        memcpy(&bits32, &t, 4)
        k32 = <int32_t>(bits32 - <uint32_t>0x4B400000)  # bits of 1.5·2^23
        k132 = k32 >> 1
        bits32 = <uint32_t>(k132 + 127) << 23
        memcpy(&two_k1, &bits32, 4)
        bits32 = <uint32_t>(k32 - k132 + 127) << 23
        memcpy(&two_k2, &bits32, 4)
    return (p * two_k1) * two_k2


cdef inline floating activate(floating z, int kind) noexcept nogil:
    if kind == SIGMOID:
        return <floating>1 / (<floating>1 + exp_(-z))
    # ReLU: NaN passes through, −0 becomes +0
    if z <= 0:
        return 0
    return z


cdef inline floating derivative(floating a, int kind) noexcept nogil:
    """σ'(z) from the activation a = σ(z)."""
    if kind == SIGMOID:
        return a * (<floating>1 - a)
    if a > 0:
        return 1
    return 0


# ----------------------------------------------------------------------
# (b) Blocks of examples and blocks of weight rows
#
# Partial sums stay in registers for a whole sum: SAMPLES examples × LANES
# outputs in the forward pass (each row of Wᵀ is loaded once for all the
# examples), ROWS inputs × LANES outputs in the weight gradient (each δ is
# loaded once for all the rows). LANES is 64 bytes: 8 float64 or 16 float32.
# The innermost block loops are in _blocks_impl.h. Blocking and threads only decide which
# independent sums run side by side; each sum still runs in contract order.

cdef enum:
    SAMPLES = 4  # fixed by the blocks of _blocks_impl.h
    ROWS = 4  # likewise
    CHUNK = 64  # examples per sweep over the gradient rows, so their inputs stay in cache
    MIN_PARALLEL = 32  # smaller mini-batches run on one thread: waking others costs more


cdef inline Py_ssize_t lanes(const floating* any) noexcept nogil:
    """Outputs per register block: 2 vectors of 32 bytes."""
    return 8 if floating is double else 16


cdef void weighted_sums(const floating** a, Py_ssize_t n_in, Py_ssize_t n_out,
                        const floating* w, floating** z) noexcept nogil:
    """z[s][j] = Σ_k W[j,k]·a[s][k] for SAMPLES examples, each sum over k in order.

    Outputs go LANES at a time; the last group is shifted back to end at
    n_out and recomputes a few outputs, which writes the same values again.
    """
    cdef Py_ssize_t LANES = lanes(w)
    cdef floating t
    cdef Py_ssize_t j0 = 0, j, k, s
    if n_out < LANES:
        for s in range(SAMPLES):
            for j in range(n_out):
                t = a[s][0] * w[j]
                for k in range(1, n_in):
                    t = t + a[s][k] * w[k * n_out + j]
                z[s][j] = t
        return
    while True:
        if j0 + LANES > n_out:
            j0 = n_out - LANES
        if floating is double:
            weighted_sums_block_f64(a[0], a[1], a[2], a[3], n_in, w + j0, n_out,
                                    z[0] + j0, z[1] + j0, z[2] + j0, z[3] + j0)
        else:
            weighted_sums_block_f32(a[0], a[1], a[2], a[3], n_in, w + j0, n_out,
                                    z[0] + j0, z[1] + j0, z[2] + j0, z[3] + j0)
        if j0 + LANES >= n_out:
            return
        j0 += LANES


cdef void forward_block(const Net* net, const floating** x, Py_ssize_t ns, floating** rows,
                        const floating* wt, const floating* b) noexcept nogil:
    """Fill rows[s] with a^1 … a^L of input x[s], for SAMPLES examples of which ns are distinct.

    A block of fewer than SAMPLES examples repeats its last one (same x, same
    row): the repeats compute and write the same values, and only the ns
    distinct rows are activated.
    """
    cdef const floating* a_in[SAMPLES]
    cdef floating* z[SAMPLES]
    cdef Py_ssize_t l, j, s, n_out
    cdef const floating* bias
    for s in range(SAMPLES):
        a_in[s] = x[s]
    for l in range(net.n_layers):
        n_out = net.sizes[l + 1]
        for s in range(SAMPLES):
            z[s] = rows[s] + net.a_off[l]
        # z_j = (Σ_k W[j,k]·a_k) + b_j: the sum over k in order, then the bias.
        weighted_sums(a_in, net.sizes[l], n_out, wt + net.w_off[l], z)
        bias = b + net.a_off[l]
        for s in range(ns):
            for j in range(n_out):
                z[s][j] = activate(z[s][j] + bias[j], net.activation)
        for s in range(SAMPLES):
            a_in[s] = z[s]


cdef floating backward_example(const Net* net, const floating* y, const floating* wt,
                               const floating* act, floating* delta) noexcept nogil:
    """Fill ``delta`` with δ^L … δ^1 of one example; return Σ_j (a_j − y_j)²."""
    cdef Py_ssize_t L = net.n_layers
    cdef Py_ssize_t n_out = net.sizes[L]
    cdef const floating* a = act + net.a_off[L - 1]
    cdef floating* d = delta + net.a_off[L - 1]
    cdef const floating* d_next
    cdef const floating* w_row
    cdef floating diff, error = 0, s
    cdef Py_ssize_t l, j, k, n, n_next
    for j in range(n_out):
        diff = a[j] - y[j]
        d[j] = diff * derivative(a[j], net.activation)
        if j == 0:
            error = diff * diff
        else:
            error = error + diff * diff
    # δ^l_k = (Σ_j W[j,k]·δ^{l+1}_j)·σ'(a^l_k); W[j,k] is row k of Wᵀ.
    for l in range(L - 1, 0, -1):
        n = net.sizes[l]
        n_next = net.sizes[l + 1]
        a = act + net.a_off[l - 1]
        d = delta + net.a_off[l - 1]
        d_next = delta + net.a_off[l]
        for k in range(n):
            w_row = wt + net.w_off[l] + k * n_next
            s = w_row[0] * d_next[0]
            for j in range(1, n_next):
                s = s + w_row[j] * d_next[j]
            d[k] = s * derivative(a[k], net.activation)
    return error


cdef void backprop_block(const Net* net, Py_ssize_t block, Py_ssize_t m,
                         const floating* X, const floating* Y, const Py_ssize_t* idx,
                         const floating* wt, const floating* b, floating* act,
                         floating* delta, floating* err) noexcept nogil:
    """Forward and backward pass of examples idx[i], i in block·SAMPLES … (at most m)."""
    cdef const floating* x[SAMPLES]
    cdef floating* rows[SAMPLES]
    cdef Py_ssize_t s, i, i0 = block * SAMPLES
    cdef Py_ssize_t ns = min(<Py_ssize_t>SAMPLES, m - i0)
    for s in range(SAMPLES):
        i = i0 + min(s, ns - 1)
        x[s] = X + idx[i] * net.sizes[0]
        rows[s] = act + i * net.width
    forward_block(net, x, ns, rows, wt, b)
    for i in range(i0, i0 + ns):
        err[i] = backward_example(net, Y + idx[i] * net.sizes[net.n_layers], wt,
                                  act + i * net.width, delta + i * net.width)


cdef void backprop_batch(const Net* net, const floating* X, const floating* Y,
                         const Py_ssize_t* idx, Py_ssize_t m, const floating* wt,
                         const floating* b, floating* act, floating* delta, floating* err,
                         int threads) noexcept nogil:
    """Activations, deltas and errors of examples idx[0..m) into rows 0..m of the buffers."""
    cdef Py_ssize_t block, blocks = (m + SAMPLES - 1) // SAMPLES
    if threads == 1 or m < MIN_PARALLEL:
        for block in range(blocks):
            backprop_block(net, block, m, X, Y, idx, wt, b, act, delta, err)
    else:
        for block in prange(blocks, num_threads=threads, schedule="static"):
            backprop_block(net, block, m, X, Y, idx, wt, b, act, delta, err)


cdef void nudge_rows(const Net* net, Py_ssize_t l, Py_ssize_t k0, Py_ssize_t i0, Py_ssize_t i1,
                     const floating* X, const Py_ssize_t* idx, const floating* act,
                     const floating* delta, floating* gwt) noexcept nogil:
    """Add the nudges of examples i0 … i1 to rows k0 … k0+ROWS of Gᵀ for layer l.

    G[j,k] = Σ_i δ_ij·a_ik in the order of i: started at i = 0, continued
    from the stored partial sums otherwise. Needs n_out ≥ LANES. Outputs go
    LANES at a time. When LANES does not divide n_out, a last group ending
    at n_out overlaps the others: it goes first, while all its sums are as
    the previous sweep left them, and keeps only the outputs that no other
    group has (a continued sum must not be advanced twice).
    """
    cdef floating tail[ROWS * 16]
    cdef Py_ssize_t LANES = lanes(gwt)
    cdef Py_ssize_t n_out = net.sizes[l + 1]
    cdef Py_ssize_t j0, q, r, a_stride, shift = n_out - LANES
    cdef const floating* a
    cdef const Py_ssize_t* a_idx
    cdef const floating* d = delta + net.a_off[l]
    cdef floating* g = gwt + net.w_off[l] + k0 * n_out
    if l == 0:  # the inputs are rows idx[i] of X
        a, a_idx, a_stride = X + k0, idx, net.sizes[0]
    else:  # the inputs are the previous layer's activations, rows i of act
        a, a_idx, a_stride = act + net.a_off[l - 1] + k0, NULL, net.width
    if n_out % LANES:
        if floating is double:
            nudge_block_f64(a, a_idx, a_stride, d + shift, net.width, i0, i1, i0 == 0,
                            g + shift, n_out, tail, LANES)
        else:
            nudge_block_f32(a, a_idx, a_stride, d + shift, net.width, i0, i1, i0 == 0,
                            g + shift, n_out, tail, LANES)
        for r in range(ROWS):
            for q in range(LANES - n_out % LANES, LANES):
                g[r * n_out + shift + q] = tail[r * LANES + q]
    j0 = 0
    while j0 + LANES <= n_out:
        if floating is double:
            nudge_block_f64(a, a_idx, a_stride, d + j0, net.width, i0, i1, i0 == 0,
                            g + j0, n_out, g + j0, n_out)
        else:
            nudge_block_f32(a, a_idx, a_stride, d + j0, net.width, i0, i1, i0 == 0,
                            g + j0, n_out, g + j0, n_out)
        j0 += LANES


cdef void nudge_row(const Net* net, Py_ssize_t l, Py_ssize_t k,
                    Py_ssize_t i0, Py_ssize_t i1, const floating* X, const Py_ssize_t* idx,
                    const floating* act, const floating* delta, floating* gwt) noexcept nogil:
    """nudge_rows for the single row k, and any number of outputs."""
    cdef Py_ssize_t n_out = net.sizes[l + 1]
    cdef Py_ssize_t i, j
    cdef floating a_ik
    cdef const floating* d
    cdef floating* g = gwt + net.w_off[l] + k * n_out
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
                g[j] = g[j] + a_ik * d[j]


cdef void nudge_part(const Net* net, Py_ssize_t l, Py_ssize_t part, Py_ssize_t parts,
                     Py_ssize_t m, const floating* X, const Py_ssize_t* idx,
                     const floating* act, const floating* delta, floating* gwt,
                     floating* wt, floating step) noexcept nogil:
    """Sum the nudges of one part of layer l's rows over the m examples, then finish them.

    Rows are split into `parts` contiguous ranges (one per thread). The
    examples go CHUNK at a time, so a chunk's inputs stay in cache while
    every row of the part takes its nudges. Finishing: with ``wt`` given,
    the step W ← W − step·G; with NULL, G ← G / m.
    """
    cdef Py_ssize_t LANES = lanes(gwt)
    cdef Py_ssize_t n_in = net.sizes[l], n_out = net.sizes[l + 1]
    cdef Py_ssize_t k_begin = n_in * part // parts, k_end = n_in * (part + 1) // parts
    cdef Py_ssize_t i0, i1, k, j
    cdef floating* g
    cdef floating* w
    i0 = 0
    while i0 < m:
        i1 = min(i0 + <Py_ssize_t>CHUNK, m)
        k = k_begin
        if n_out >= LANES:
            while k + ROWS <= k_end:
                nudge_rows(net, l, k, i0, i1, X, idx, act, delta, gwt)
                k += ROWS
        while k < k_end:
            nudge_row(net, l, k, i0, i1, X, idx, act, delta, gwt)
            k += 1
        i0 = i1
    g = gwt + net.w_off[l] + k_begin * n_out
    if wt != NULL:
        w = wt + net.w_off[l] + k_begin * n_out
        for j in range((k_end - k_begin) * n_out):
            w[j] = w[j] - step * g[j]
    else:
        for j in range((k_end - k_begin) * n_out):
            g[j] = g[j] / <floating>m


cdef void sum_nudges(const Net* net, const floating* X, const Py_ssize_t* idx, Py_ssize_t m,
                     const floating* act, const floating* delta, floating* gwt, floating* gb,
                     floating* wt, floating* b, floating step, int threads) noexcept nogil:
    """Sum every weight's and bias's nudges over the m examples into gwt and gb.

    With ``wt`` and ``b`` given, then take the step W ← W − step·G. With
    NULL instead, divide the sums by m: the mini-batch gradient.
    """
    cdef Py_ssize_t i, j, l, part
    cdef int parts = 1 if m < MIN_PARALLEL else threads
    for l in range(net.n_layers):
        if parts == 1:
            nudge_part(net, l, 0, 1, m, X, idx, act, delta, gwt, wt, step)
        else:
            for part in prange(parts, num_threads=parts, schedule="static", chunksize=1):
                nudge_part(net, l, part, parts, m, X, idx, act, delta, gwt, wt, step)
    # Biases: gb_u = Σ_i δ_iu, in order, for every unit u of every layer at once.
    for j in range(net.width):
        gb[j] = delta[j]
    for i in range(1, m):
        for j in range(net.width):
            gb[j] = gb[j] + delta[i * net.width + j]
    if b != NULL:
        for j in range(net.width):
            b[j] = b[j] - step * gb[j]
    else:
        for j in range(net.width):
            gb[j] = gb[j] / <floating>m


cdef double train_epoch_(const Net* net, const floating* X, const floating* Y,
                         const Py_ssize_t* perm, Py_ssize_t n, Py_ssize_t batch_size,
                         floating eta, floating* wt, floating* b, floating* gwt, floating* gb,
                         floating* act, floating* delta, floating* err,
                         int threads) noexcept nogil:
    cdef double total = 0.0
    cdef Py_ssize_t start = 0, m, i
    while start < n:
        m = min(batch_size, n - start)
        backprop_batch(net, X, Y, perm + start, m, wt, b, act, delta, err, threads)
        for i in range(m):
            total = total + <double>err[i]
        # Every nudge was computed with the old weights before any weight moves.
        sum_nudges(net, X, perm + start, m, act, delta, gwt, gb, wt, b, eta / <floating>m, threads)
        start += m
    return total


# ----------------------------------------------------------------------
# (c) Entry points. The Python layer has checked shapes, dtypes and
# contiguity, and allocated every buffer; see fastmlp/trainer.py.

cdef Net make_net(const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] w_off,
                  const Py_ssize_t[::1] a_off, int activation):
    cdef Net net
    net.n_layers = sizes.shape[0] - 1
    net.sizes = &sizes[0]
    net.w_off = &w_off[0]
    net.a_off = &a_off[0]
    net.width = a_off[net.n_layers]  # a_off carries the total as its last entry
    net.activation = activation
    return net


def train_epoch(const floating[:, ::1] X, const floating[:, ::1] Y, const Py_ssize_t[::1] perm,
                floating[::1] wt, floating[::1] b, floating[::1] gwt, floating[::1] gb,
                floating[:, ::1] act, floating[:, ::1] delta, floating[::1] err,
                const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] w_off,
                const Py_ssize_t[::1] a_off, int activation, double learning_rate,
                Py_ssize_t batch_size, int threads):
    """One epoch of SGD over the examples in the order of ``perm``; updates wt and b.

    ``act``, ``delta`` and ``err`` hold at least min(batch_size, n) rows.
    Returns Σ_x Σ_j (a_j − y_j)² in float64, added in the order visited.
    """
    cdef Net net = make_net(sizes, w_off, a_off, activation)
    cdef double total
    with nogil:
        total = train_epoch_(&net, &X[0, 0], &Y[0, 0], &perm[0], perm.shape[0], batch_size,
                             <floating>learning_rate, &wt[0], &b[0], &gwt[0], &gb[0],
                             &act[0, 0], &delta[0, 0], &err[0], threads)
    return total


def forward(const floating[:, ::1] X, const floating[::1] wt, const floating[::1] b,
            floating[:, ::1] scratch, floating[:, ::1] out,
            const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] w_off,
            const Py_ssize_t[::1] a_off, int activation, int threads):
    """Output activations of every row of X into ``out``.

    ``scratch`` has SAMPLE_BLOCK rows per thread, of the network's width.
    """
    cdef Net net = make_net(sizes, w_off, a_off, activation)
    cdef Py_ssize_t n = X.shape[0]
    cdef Py_ssize_t block, blocks = (n + SAMPLES - 1) // SAMPLES
    with nogil:
        if threads == 1 or n < MIN_PARALLEL:
            for block in range(blocks):
                forward_rows(&net, block, &X[0, 0], n, &wt[0], &b[0], &scratch[0, 0], &out[0, 0])
        else:
            for block in prange(blocks, num_threads=threads, schedule="static"):
                forward_rows(&net, block, &X[0, 0], n, &wt[0], &b[0],
                             &scratch[threadid() * SAMPLES, 0], &out[0, 0])


cdef void forward_rows(const Net* net, Py_ssize_t block, const floating* X, Py_ssize_t n,
                       const floating* wt, const floating* b, floating* scratch,
                       floating* out) noexcept nogil:
    """forward_block on rows block·SAMPLES … of X, copying the outputs to ``out``."""
    cdef const floating* x[SAMPLES]
    cdef floating* rows[SAMPLES]
    cdef Py_ssize_t s, j, i0 = block * SAMPLES
    cdef Py_ssize_t ns = min(<Py_ssize_t>SAMPLES, n - i0)
    cdef Py_ssize_t n_out = net.sizes[net.n_layers]
    cdef Py_ssize_t last = net.a_off[net.n_layers - 1]
    for s in range(SAMPLES):
        x[s] = X + (i0 + min(s, ns - 1)) * net.sizes[0]
        rows[s] = scratch + min(s, ns - 1) * net.width
    forward_block(net, x, ns, rows, wt, b)
    for s in range(ns):
        for j in range(n_out):
            out[(i0 + s) * n_out + j] = rows[s][last + j]


def gradients(const floating[:, ::1] X, const floating[:, ::1] Y, const Py_ssize_t[::1] order,
              const floating[::1] wt, const floating[::1] b, floating[::1] gwt, floating[::1] gb,
              floating[:, ::1] act, floating[:, ::1] delta, floating[::1] err,
              const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] w_off,
              const Py_ssize_t[::1] a_off, int activation, int threads):
    """The mini-batch gradient over the examples ``order`` (G/m, g/m) into gwt and gb."""
    cdef Net net = make_net(sizes, w_off, a_off, activation)
    cdef Py_ssize_t m = order.shape[0]
    with nogil:
        backprop_batch(&net, &X[0, 0], &Y[0, 0], &order[0], m, &wt[0], &b[0],
                       &act[0, 0], &delta[0, 0], &err[0], threads)
        sum_nudges(&net, &X[0, 0], &order[0], m, &act[0, 0], &delta[0, 0], &gwt[0], &gb[0],
                   NULL, NULL, 0, threads)


def exp(const floating[::1] x, floating[::1] out):
    """Element-wise :func:`fastmlp.reference.exp`, for tests."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(x.shape[0]):
            out[i] = exp_(x[i])
