# cython: language_level=3
"""Compiled kernels of fastmlp: forward pass, backprop and SGD step.

They compute exactly what :mod:`fastmlp.reference` defines (its module
docstring is the arithmetic contract), operation for operation, so results
agree bit for bit. Validation happens in Python before any call here; the
kernels trust their arguments, hold no GIL and cannot fail.

The file has three layers:
(a) one-element math: exp, the activations and their derivatives;
(b) loops over one example (forward, backward) and over one weight row
    (the sum of the nudges over a mini-batch, then the step);
(c) the entry points the Python layer calls: a whole epoch, the forward
    pass over many examples, the gradient of one mini-batch, and exp.

Memory layout. Parameters live in two flat buffers. Layer l (0-based, from
layer l to layer l+1) keeps Wᵀ, shape (n_l, n_{l+1}) row-major, from
``w_off[l]``, so row k holds the weights leaving input unit k and a sum
over k can run in order while the outputs j sit side by side in a vector.
Biases, activations and deltas of one example share one layout, ``width``
units long: layer l+1's units start at ``a_off[l]``.
"""

cimport cython
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

#: Whether this build runs prange loops on OpenMP threads (otherwise they run serially).
OPENMP = bool(FASTMLP_OPENMP)
#: The C compiler flags the kernels were built with.
COMPILE_FLAGS = FASTMLP_CFLAGS.decode()


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
# (b) One example, one weight row

cdef void forward_example(const Net* net, const floating* x, const floating* wt,
                          const floating* b, floating* act) noexcept nogil:
    """Fill ``act`` (one example's row) with a^1 … a^L for input ``x``."""
    cdef const floating* a_in = x
    cdef const floating* w
    cdef floating* z
    cdef floating a_k
    cdef Py_ssize_t l, j, k, n_in, n_out
    for l in range(net.n_layers):
        n_in = net.sizes[l]
        n_out = net.sizes[l + 1]
        w = wt + net.w_off[l]
        z = act + net.a_off[l]
        # z_j = (Σ_k W[j,k]·a_k) + b_j, the sum over k in order: row k of Wᵀ
        # adds its term to every output j at once.
        a_k = a_in[0]
        for j in range(n_out):
            z[j] = a_k * w[j]
        for k in range(1, n_in):
            a_k = a_in[k]
            for j in range(n_out):
                z[j] = z[j] + a_k * w[k * n_out + j]
        for j in range(n_out):
            z[j] = activate(z[j] + b[net.a_off[l] + j], net.activation)
        a_in = z


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


cdef void sum_nudges_row(const Net* net, Py_ssize_t l, Py_ssize_t k, Py_ssize_t m,
                         const floating* X, const Py_ssize_t* idx, const floating* act,
                         const floating* delta, floating* g) noexcept nogil:
    """Row k of Gᵀ for layer l: g_j = Σ_i δ_ij·a_ik over the m examples, in order."""
    cdef Py_ssize_t n_out = net.sizes[l + 1]
    cdef Py_ssize_t i, j
    cdef floating a_ik
    cdef const floating* d
    for i in range(m):
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


cdef void backprop_batch(const Net* net, const floating* X, const floating* Y,
                         const Py_ssize_t* idx, Py_ssize_t m, const floating* wt,
                         const floating* b, floating* act, floating* delta, floating* err,
                         int threads) noexcept nogil:
    """Activations, deltas and errors of examples idx[0..m) into rows 0..m of the buffers."""
    cdef Py_ssize_t i
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[net.n_layers]
    for i in prange(m, num_threads=threads, schedule="static"):
        forward_example(net, X + idx[i] * n_in, wt, b, act + i * net.width)
        err[i] = backward_example(net, Y + idx[i] * n_out, wt, act + i * net.width,
                                  delta + i * net.width)


cdef void sum_nudges(const Net* net, const floating* X, const Py_ssize_t* idx, Py_ssize_t m,
                     const floating* act, const floating* delta, floating* gwt, floating* gb,
                     floating* wt, floating* b, floating step, int threads) noexcept nogil:
    """Sum every weight's and bias's nudges over the m examples into gwt and gb.

    With ``wt`` and ``b`` given, then take the step W ← W − step·G, each row
    of Wᵀ right after its sum, while it is in cache. With NULL instead,
    divide the sums by m: the mini-batch gradient.
    """
    cdef Py_ssize_t i, j, k, l, n_out
    cdef floating* g
    cdef floating* w
    for l in range(net.n_layers):
        n_out = net.sizes[l + 1]
        for k in prange(net.sizes[l], num_threads=threads, schedule="static"):
            g = gwt + net.w_off[l] + k * n_out
            sum_nudges_row(net, l, k, m, X, idx, act, delta, g)
            if wt != NULL:
                w = wt + net.w_off[l] + k * n_out
                for j in range(n_out):
                    w[j] = w[j] - step * g[j]
            else:
                for j in range(n_out):
                    g[j] = g[j] / <floating>m
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
    """Output activations of every row of X into ``out``; ``scratch`` has a row per thread."""
    cdef Net net = make_net(sizes, w_off, a_off, activation)
    cdef Py_ssize_t i, j, n_out = sizes[net.n_layers]
    cdef floating* row
    with nogil:
        for i in prange(X.shape[0], num_threads=threads, schedule="static"):
            row = &scratch[threadid(), 0]
            forward_example(&net, &X[i, 0], &wt[0], &b[0], row)
            for j in range(n_out):
                out[i, j] = row[net.a_off[net.n_layers - 1] + j]


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
