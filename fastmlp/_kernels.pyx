# cython: language_level=3
"""Compiled kernels of fastmlp: forward pass, backprop and SGD step.

They compute exactly what :mod:`fastmlp.reference` defines (its module
docstring is the arithmetic contract), operation for operation, so results
agree bit for bit. Validation happens in Python before any call here; the
kernels trust their arguments, hold no GIL and cannot fail.

The file has three layers:
(a) one-element math: exp, log, the activations and their derivatives, the softmax;
(b) loops over blocks of up to SAMPLES examples (forward pass), one example
    (backward pass) and blocks of weight rows (the sums of the nudges over
    a mini-batch, then the step), whose innermost register blocks are in
    _blocks_impl.h, _vectors_impl.h and _units_impl.h; and the mini-batch and the epoch,
    run by a team of threads in one parallel region with barriers between
    the phases;
(c) the entry points the Python layer calls: a whole epoch, the forward
    pass over many examples, the gradient of one mini-batch; and exp, log
    and the activations element by element, for tests.

Memory layout. Parameters live in two flat buffers. Layer l (0-based, from
layer l to layer l+1) keeps Wᵀ, shape (n_l, n_{l+1}) row-major, from
``w_off[l]``, so row k holds the weights leaving input unit k and a sum
over k can run in order while the outputs j sit side by side in a vector.
Biases, activations and deltas of one example share one layout, ``width``
units long: layer l+1's units start at ``a_off[l]``.
"""

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.math cimport INFINITY, fabs
from libc.string cimport memcpy

# Activation and cost codes; fastmlp/trainer.py maps names to them.
cdef extern from "_blocks.h":
    enum:
        FASTMLP_SIGMOID
        FASTMLP_RELU
        FASTMLP_TANH

cpdef enum:
    SIGMOID = FASTMLP_SIGMOID
    RELU = FASTMLP_RELU
    TANH = FASTMLP_TANH
    SOFTMAX = 3  # output layer only

cpdef enum:
    QUADRATIC = 0
    CROSS_ENTROPY = 1
    LOG_LIKELIHOOD = 2

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

cdef extern from *:
    """
    /* The team of threads running the current parallel region (one thread
     * outside any), and a barrier across it. */
    #ifdef _OPENMP
    #include <omp.h>
    static int fastmlp_team_size(void) { return omp_get_num_threads(); }
    static int fastmlp_team_rank(void) { return omp_get_thread_num(); }
    static void fastmlp_barrier(void) {
    #ifdef _MSC_VER
        __pragma(omp barrier)
    #else
        _Pragma("omp barrier")
    #endif
    }
    #else
    static int fastmlp_team_size(void) { return 1; }
    static int fastmlp_team_rank(void) { return 0; }
    static void fastmlp_barrier(void) {}
    #endif
    """
    int team_size "fastmlp_team_size"() noexcept nogil
    int team_rank "fastmlp_team_rank"() noexcept nogil
    void barrier "fastmlp_barrier"() noexcept nogil

cdef extern from *:
    """
    /* A hint to fetch the cache line at p: no effect on results. */
    static inline void fastmlp_prefetch(const void* p) {
    #if defined(__GNUC__) || defined(__clang__)
        __builtin_prefetch(p, 0, 3);
    #else
        (void)p;
    #endif
    }
    """
    void prefetch "fastmlp_prefetch"(const void* p) noexcept nogil

#: Examples per block in the forward pass: forward() needs this many scratch rows per thread.
SAMPLE_BLOCK = SAMPLES

#: Whether this build runs prange loops on OpenMP threads (otherwise they run serially).
OPENMP = bool(FASTMLP_OPENMP)
#: The C compiler flags the kernels were built with.
COMPILE_FLAGS = FASTMLP_CFLAGS.decode()
#: The width of the kernels' vectors in bytes: 16 (SSE2), 32 (AVX) or 64 (AVX-512).
VECTOR_BYTES = FASTMLP_VBYTES


cdef extern from "_blocks.h" nogil:
    # Register-blocked inner loops (see _blocks_impl.h): FASTMLP_SAMPLES
    # examples or FASTMLP_ROWS_* weight rows (8, or 16 of float32, with
    # AVX-512; otherwise 4) × FASTMLP_OUTPUTS_* outputs (16 float64 or
    # float32 with AVX-512; 8 float64 or 16 float32 with AVX; 4 or 8 with
    # SSE2); the same with a single unit vector for narrower layers (the
    # *_narrow functions).
    enum:
        FASTMLP_OUTPUTS_F64
        FASTMLP_OUTPUTS_F32
        FASTMLP_SAMPLES
        FASTMLP_ROWS_F64
        FASTMLP_ROWS_F32
        FASTMLP_NV_F64  # vectors per block of outputs
        FASTMLP_NV_F32
        FASTMLP_VBYTES  # bytes per vector
    void weighted_sums_block_f64(int examples, const double* const* a, Py_ssize_t n_in,
                                 const double* w, Py_ssize_t stride, double* const* z,
                                 const double* const* next)
    void weighted_sums_block_f32(int examples, const float* const* a, Py_ssize_t n_in,
                                 const float* w, Py_ssize_t stride, float* const* z,
                                 const float* const* next)
    void nudge_block_f64(const double* a, const Py_ssize_t* idx, Py_ssize_t a_stride,
                         const double* d, Py_ssize_t d_stride, Py_ssize_t i0, Py_ssize_t i1,
                         int first, const double* g_in, Py_ssize_t in_stride,
                         double* g_out, Py_ssize_t out_stride, int step_out, double step,
                         double decay, double mu, double* vel)
    void nudge_block_f32(const float* a, const Py_ssize_t* idx, Py_ssize_t a_stride,
                         const float* d, Py_ssize_t d_stride, Py_ssize_t i0, Py_ssize_t i1,
                         int first, const float* g_in, Py_ssize_t in_stride,
                         float* g_out, Py_ssize_t out_stride, int step_out, float step,
                         float decay, float mu, float* vel)
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
                          double* g_out, Py_ssize_t out_stride, int step_out, double step,
                          double decay, double mu, double* vel)
    void nudge_narrow_f32(const float* a, const Py_ssize_t* idx, Py_ssize_t a_stride,
                          const float* d, Py_ssize_t d_stride, Py_ssize_t i0, Py_ssize_t i1,
                          int first, const float* g_in, Py_ssize_t in_stride,
                          float* g_out, Py_ssize_t out_stride, int step_out, float step,
                          float decay, float mu, float* vel)
    void weighted_sums_narrow_f64(int examples, const double* const* a, Py_ssize_t n_in,
                                  const double* w, Py_ssize_t stride, double* const* z)
    void weighted_sums_narrow_f32(int examples, const float* const* a, Py_ssize_t n_in,
                                  const float* w, Py_ssize_t stride, float* const* z)
    # fastmlp.reference.exp, shared with the vector activations below.
    double exp_f64(double x)
    float exp_f32(float x)
    # activate() on the units of a layer, a vector of them at a time.
    enum:
        FASTMLP_UNIT_LANES_F64
        FASTMLP_UNIT_LANES_F32
    void activate_units_f64(int rows, double* const* z, const double* bias, Py_ssize_t n,
                            int kind)
    void activate_units_f32(int rows, float* const* z, const float* bias, Py_ssize_t n,
                            int kind)
    # backward_example's deltas of a hidden layer, a vector of units at a time.
    void deltas_back_f64(const double* w, Py_ssize_t n, const double* d_next, Py_ssize_t n_next,
                         const double* a, int kind, double* d)
    void deltas_back_f32(const float* w, Py_ssize_t n, const float* d_next, Py_ssize_t n_next,
                         const float* a, int kind, float* d)


cdef struct Net:
    Py_ssize_t n_layers
    const Py_ssize_t* sizes  # n_layers + 1 widths, input first
    const Py_ssize_t* w_off  # where layer l's Wᵀ starts in the flat weights
    const Py_ssize_t* a_off  # where layer l+1's units start in an example's row
    Py_ssize_t width  # units per example over layers 1..L
    int activation  # of the hidden layers
    int output  # the output layer's activation
    int cost


# ----------------------------------------------------------------------
# (a) One element

cdef inline floating exp_(floating x) noexcept nogil:
    """e^x exactly as fastmlp.reference.exp computes it (_blocks_impl.h has its steps)."""
    if floating is double:
        return exp_f64(x)
    else:
        return exp_f32(x)


cdef inline floating log_(floating x) noexcept nogil:
    """ln x, never below −100, exactly as fastmlp.reference.log computes it (see its steps)."""
    cdef floating m, kf, s, h, z, p, r
    cdef int64_t e
    cdef uint64_t bits64
    cdef uint32_t bits32
    if not (x < <floating>INFINITY):  # NaN and +inf
        return x
    if x == 0:  # both zeros: −0 is not < 0, and its sign bit must not reach the exponent
        return -100
    if x < 0:
        if floating is double:
            bits64 = <uint64_t>0x7FF8000000000000  # NumPy's NaN
            memcpy(&r, &bits64, 8)
        else:
            bits32 = <uint32_t>0x7FC00000
            memcpy(&r, &bits32, 4)
        return r
    if floating is double:
        e = 0
        if x < 2.2250738585072014e-308:
            x = x * 18014398509481984.0  # 2^54
            e = -54
        memcpy(&bits64, &x, 8)
        e = e + <int64_t>(bits64 >> 52) - 1023
        bits64 = (bits64 & <uint64_t>0x000FFFFFFFFFFFFF) | <uint64_t>0x3FF0000000000000
        memcpy(&m, &bits64, 8)
        if m > 1.4142135623730951:
            m = m * 0.5
            e = e + 1
    else:
        e = 0
        if x < <float>1.1754943508222875e-38:
            x = x * <float>16777216.0  # 2^24
            e = -24
        memcpy(&bits32, &x, 4)
        e = e + <int64_t>(bits32 >> 23) - 127
        bits32 = (bits32 & <uint32_t>0x007FFFFF) | <uint32_t>0x3F800000
        memcpy(&m, &bits32, 4)
        if m > <float>1.4142135381698608:
            m = m * <float>0.5
            e = e + 1
    kf = <floating>e
    s = (m - <floating>1) / (m + <floating>1)
    h = s + s
    z = s * s
    if floating is double:
        p = 0.047619047619047616
        p = p * z + 0.05263157894736842
        p = p * z + 0.058823529411764705
        p = p * z + 0.06666666666666667
        p = p * z + 0.07692307692307693
        p = p * z + 0.09090909090909091
        p = p * z + 0.1111111111111111
        p = p * z + 0.14285714285714285
        p = p * z + 0.2
        p = p * z + 0.3333333333333333
        r = (kf * 2.8235290563031577e-13 + (h + (h * z) * p)) + kf * 0.693147180559663
    else:
        p = <float>0.09090909090909091
        p = p * z + <float>0.1111111111111111
        p = p * z + <float>0.14285714285714285
        p = p * z + <float>0.2
        p = p * z + <float>0.3333333333333333
        r = (kf * <float>1.428606765330187e-06 + (h + (h * z) * p)) + kf * <float>0.693145751953125
    if r < -100:
        r = -100
    return r


cdef inline floating activate(floating z, int kind) noexcept nogil:
    cdef floating t, v
    if kind == SIGMOID:
        return <floating>1 / (<floating>1 + exp_(-z))
    if kind == TANH:
        t = <floating>fabs(z)  # exact; the cast keeps exp_ in the dtype
        t = exp_(<floating>-2 * t)
        v = (<floating>1 - t) / (<floating>1 + t)
        return v if z >= 0 else -v
    # ReLU: NaN passes through, −0 becomes +0
    if z <= 0:
        return 0
    return z


cdef inline floating derivative(floating a, int kind) noexcept nogil:
    """σ'(z) from the activation a = σ(z)."""
    if kind == SIGMOID:
        return a * (<floating>1 - a)
    if kind == TANH:
        return <floating>1 - a * a
    if a > 0:
        return 1
    return 0


cdef void activate_rows(floating** z, Py_ssize_t rows, const floating* bias, Py_ssize_t n,
                        int kind) noexcept nogil:
    """z[i] ← activation(z[i] + bias) for the layer's units in ``rows`` examples' rows: in
    vectors of units when there are enough, the rows side by side (_blocks_impl.h);
    otherwise one loop per kind, so each stays simple."""
    cdef Py_ssize_t i, j
    cdef Py_ssize_t vector = vector_lanes(bias)
    if kind == SOFTMAX:
        for i in range(rows):
            softmax_(z[i], bias, n)
    elif vector and n >= vector:
        if floating is double:
            activate_units_f64(<int>rows, z, bias, n, kind)
        else:
            activate_units_f32(<int>rows, z, bias, n, kind)
    elif kind == SIGMOID:
        for i in range(rows):
            for j in range(n):
                z[i][j] = activate(z[i][j] + bias[j], SIGMOID)
    elif kind == TANH:
        for i in range(rows):
            for j in range(n):
                z[i][j] = activate(z[i][j] + bias[j], TANH)
    else:
        for i in range(rows):
            for j in range(n):
                z[i][j] = activate(z[i][j] + bias[j], RELU)


cdef void softmax_(floating* z, const floating* bias, Py_ssize_t n) noexcept nogil:
    """z ← softmax(z + bias), as fastmlp.reference.softmax computes it."""
    cdef Py_ssize_t j
    cdef floating m, s
    for j in range(n):
        z[j] = z[j] + bias[j]
    m = z[0]
    for j in range(1, n):
        if z[j] > m:
            m = z[j]
    for j in range(n):
        z[j] = exp_(z[j] - m)
    s = z[0]
    for j in range(1, n):
        s = s + z[j]
    for j in range(n):
        z[j] = z[j] / s


# ----------------------------------------------------------------------
# (b) Blocks of examples and blocks of weight rows
#
# Partial sums stay in registers for a whole sum: SAMPLES examples × LANES
# outputs in the forward pass (each row of Wᵀ is loaded once for all the
# examples), rows_of() inputs × LANES outputs in the weight gradient (each δ is
# loaded once for all the rows). LANES, the outputs of a block, is 16, 8 or 4; layers
# narrower than that go a unit vector at a time (vector_lanes: 8, 4 or 2 units; see
# _blocks.h), and narrower than that one output at a time.
# The innermost block loops are in _blocks_impl.h. Blocking and threads only decide which
# independent sums run side by side; each sum still runs in contract order.

cdef enum:
    SAMPLES = FASTMLP_SAMPLES  # 8 or 4, fixed by the blocks of _blocks_impl.h
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


cdef inline Py_ssize_t vector_lanes(const floating* any) noexcept nogil:
    """Units per unit vector, for a layer's activations and deltas and for layers narrower
    than a block (0 in a build without vectors)."""
    return FASTMLP_UNIT_LANES_F64 if floating is double else FASTMLP_UNIT_LANES_F32


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
                    t = t + a[e][k] * w[k * n_out + j]
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
                        bint first_summed=False, const floating** next=NULL) noexcept nogil:
    """Fill rows[e] with a^1 … a^L of input x[e], for ns ≤ SAMPLES examples.

    With ``first_summed``, the first layer's sums Σ_k W[j,k]·x_k are already
    in the rows (see one_example_epoch), and only their bias and activation remain.
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
        for e in range(examples):
            a_in[e] = z[e]


cdef floating output_deltas(const Net* net, const floating* y, const floating* act,
                            floating* delta) noexcept nogil:
    """Fill ``delta`` with δ^L of one example (contract 4); return its cost e_x (contract 8)."""
    cdef Py_ssize_t L = net.n_layers
    cdef Py_ssize_t n_out = net.sizes[L]
    cdef const floating* a = act + net.a_off[L - 1]
    cdef floating* d = delta + net.a_off[L - 1]
    cdef floating diff, error = 0, term
    cdef Py_ssize_t j
    # One loop per cost, so that each stays simple.
    if net.cost == QUADRATIC:
        for j in range(n_out):
            diff = a[j] - y[j]
            d[j] = diff * derivative(a[j], net.output)
            error = diff * diff if j == 0 else error + diff * diff
    else:  # ∂C_x/∂z^L = a − y for these costs and their output layers; e_x = −Σ_j term_j
        for j in range(n_out):
            d[j] = a[j] - y[j]
            if net.cost == CROSS_ENTROPY:
                term = y[j] * log_(a[j]) + (<floating>1 - y[j]) * log_(<floating>1 - a[j])
            else:
                term = y[j] * log_(a[j])
            error = term if j == 0 else error + term
        error = -error
    return error


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
                                net.activation, d)
            else:
                deltas_back_f32(w_back + net.w_off[l] - net.w_off[1], n, d_next, n_next, a,
                                net.activation, d)
            continue
        for k in range(n):
            w_row = wt + net.w_off[l] + k * n_next
            s = w_row[0] * d_next[0]
            for j in range(1, n_next):
                s = s + w_row[j] * d_next[j]
            d[k] = s * derivative(a[k], net.activation)
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
    cdef Py_ssize_t s, i
    cdef Py_ssize_t n_y = net.sizes[net.n_layers]
    for s in range(ns):
        x[s] = X + idx[i0 + s] * net.sizes[0]
        rows[s] = act + (i0 + s) * net.width
    for s in range(ns):
        next[s] = X + idx[fetch[s]] * net.sizes[0]
        prefetch_row(Y + idx[fetch[s]] * n_y, n_y)
    forward_block(net, x, ns, rows, wt, b, False, next)
    for i in range(i0, i0 + ns):
        err[i] = backward_example(net, Y + idx[i] * net.sizes[net.n_layers], wt, w_back,
                                  act + i * net.width, delta + i * net.width)


cdef inline void take_step(floating* w, floating* v, floating s, floating step, floating decay,
                           floating mu) noexcept nogil:
    """One weight's step from its finished sum s (contract 7), with velocity v unless NULL."""
    if v != NULL:
        v[0] = mu * v[0] - step * s
        w[0] = decay * w[0] + v[0]
    else:
        w[0] = decay * w[0] - step * s  # decay·w is w when decay is 1


cdef inline void nudge_group(Py_ssize_t group, const floating* a, const Py_ssize_t* a_idx,
                             Py_ssize_t a_stride, const floating* d, Py_ssize_t d_stride,
                             Py_ssize_t i0, Py_ssize_t i1, const floating* g,
                             Py_ssize_t g_stride, floating* out, Py_ssize_t out_stride,
                             int step_out, floating step, floating decay, floating mu,
                             floating* vel) noexcept nogil:
    """nudge_block (group: LANES outputs) or nudge_narrow (a unit vector's) of _vectors_impl.h."""
    if group == lanes(g):
        if floating is double:
            nudge_block_f64(a, a_idx, a_stride, d, d_stride, i0, i1, i0 == 0, g, g_stride,
                            out, out_stride, step_out, step, decay, mu, vel)
        else:
            nudge_block_f32(a, a_idx, a_stride, d, d_stride, i0, i1, i0 == 0, g, g_stride,
                            out, out_stride, step_out, step, decay, mu, vel)
    elif floating is double:
        nudge_narrow_f64(a, a_idx, a_stride, d, d_stride, i0, i1, i0 == 0, g, g_stride,
                         out, out_stride, step_out, step, decay, mu, vel)
    else:
        nudge_narrow_f32(a, a_idx, a_stride, d, d_stride, i0, i1, i0 == 0, g, g_stride,
                         out, out_stride, step_out, step, decay, mu, vel)


cdef void nudge_rows(const Net* net, Py_ssize_t l, Py_ssize_t k0, Py_ssize_t i0, Py_ssize_t i1,
                     const floating* X, const Py_ssize_t* idx, const floating* act,
                     const floating* delta, floating* gwt, floating* wt, floating step,
                     floating decay, floating mu, floating* vwt) noexcept nogil:
    """Add the nudges of examples i0 … i1 to rows k0 … k0+rows_of() of Gᵀ for layer l.

    G[j,k] = Σ_i δ_ij·a_ik in the order of i: started at i = 0, continued
    from the stored partial sums otherwise. With ``wt`` (the mini-batch's
    last examples), the finished sums are not stored: they go straight into
    the step of contract 7 (take_step). Needs group_of(n_out) > 0. Outputs go
    LANES at a time, or a unit vector at a time in narrower layers. When the
    group does not divide n_out, a last group ending at n_out overlaps the
    others: it goes first, while all its sums are as the previous sweep left
    them, and keeps only the outputs that no other group has (a continued sum
    must not be advanced twice).
    """
    cdef floating tail[16 * 16]  # rows_of() and lanes() are at most 16 (_blocks.h checks)
    cdef Py_ssize_t n_out = net.sizes[l + 1]
    cdef Py_ssize_t group = group_of(n_out, gwt)
    cdef Py_ssize_t j0, q, r, a_stride, shift = n_out - group
    cdef const floating* a
    cdef const Py_ssize_t* a_idx
    cdef const floating* d = delta + net.a_off[l]
    cdef floating* g = gwt + net.w_off[l] + k0 * n_out
    cdef floating* out = g if wt == NULL else wt + net.w_off[l] + k0 * n_out
    cdef floating* vel = NULL if vwt == NULL else vwt + net.w_off[l] + k0 * n_out
    cdef int step_out = wt != NULL
    if l == 0:  # the inputs are rows idx[i] of X
        a, a_idx, a_stride = X + k0, idx, net.sizes[0]
    else:  # the inputs are the previous layer's activations, rows i of act
        a, a_idx, a_stride = act + net.a_off[l - 1] + k0, NULL, net.width
    if n_out % group:
        nudge_group(group, a, a_idx, a_stride, d + shift, net.width, i0, i1, g + shift, n_out,
                    tail, group, 0, 0, 1, 0, NULL)
        for r in range(rows_of(gwt)):
            for q in range(group - n_out % group, group):
                if step_out:
                    take_step(out + r * n_out + shift + q,
                              NULL if vel == NULL else vel + r * n_out + shift + q,
                              tail[r * group + q], step, decay, mu)
                else:
                    out[r * n_out + shift + q] = tail[r * group + q]
    j0 = 0
    while j0 + group <= n_out:
        nudge_group(group, a, a_idx, a_stride, d + j0, net.width, i0, i1, g + j0, n_out,
                    out + j0, n_out, step_out, step, decay, mu, NULL if vel == NULL else vel + j0)
        j0 += group


cdef void nudge_row(const Net* net, Py_ssize_t l, Py_ssize_t k,
                    Py_ssize_t i0, Py_ssize_t i1, const floating* X, const Py_ssize_t* idx,
                    const floating* act, const floating* delta, floating* gwt, floating* wt,
                    floating step, floating decay, floating mu, floating* vwt) noexcept nogil:
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
                g[j] = g[j] + a_ik * d[j]
    if wt != NULL:
        w = wt + net.w_off[l] + k * n_out
        for j in range(n_out):
            take_step(w + j, NULL if vwt == NULL else vwt + net.w_off[l] + k * n_out + j,
                      g[j], step, decay, mu)


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
                      const floating* delta, floating* gwt, floating* wt, floating step,
                      floating decay, floating mu, floating* vwt) noexcept nogil:
    """Add the nudges of examples i0 … i1 to one part of every layer's weight rows.

    With ``wt``, these are the mini-batch's last examples: finish the sums
    and take the step of contract 7 on those rows at once.
    """
    cdef Py_ssize_t l, k, k_end
    for l in range(net.n_layers):
        row_range(net, l, part, parts, &k, &k_end, gwt)
        if group_of(net.sizes[l + 1], gwt):
            while k + rows_of(gwt) <= k_end:
                nudge_rows(net, l, k, i0, i1, X, idx, act, delta, gwt, wt, step, decay, mu, vwt)
                k += rows_of(gwt)
        while k < k_end:
            nudge_row(net, l, k, i0, i1, X, idx, act, delta, gwt, wt, step, decay, mu, vwt)
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
                        floating step, floating mu) noexcept nogil:
    """gb_u = Σ_i δ_iu in order, for the units u0 … u1−1 at once; then b ← b − step·gb (or with
    velocities v ← (mu·v) − (step·gb), b ← b + v); without ``b``, gb ← gb/m."""
    cdef Py_ssize_t i, j
    for j in range(u0, u1):
        gb[j] = delta[j]
    for i in range(1, m):
        for j in range(u0, u1):
            gb[j] = gb[j] + delta[i * net.width + j]
    if b == NULL:
        for j in range(u0, u1):
            gb[j] = gb[j] / <floating>m
    elif vb != NULL:
        for j in range(u0, u1):
            vb[j] = mu * vb[j] - step * gb[j]
            b[j] = b[j] + vb[j]
    else:
        for j in range(u0, u1):
            b[j] = b[j] - step * gb[j]


cdef floating one_example_step(const Net* net, const floating* x, const floating* y,
                               floating* wt, floating* b, floating* act, floating* delta,
                               floating step, floating decay, floating mu, floating* vwt,
                               floating* vb) noexcept nogil:
    """A mini-batch of one example: the step straight from the nudges, W ← W − step·(a·δ)
    (or with decay and velocities, as take_step).

    With one example each sum G = a_k·δ_j is its single term, so skipping
    the gradient buffer gives the same bits. Returns the example's error.
    """
    cdef floating* row = act
    cdef floating error
    forward_block(net, &x, 1, &row, wt, b)
    error = backward_example(net, y, wt, NULL, act, delta)
    if vwt != NULL or decay != 1:
        one_example_update(net, x, act, delta, wt, b, step, decay, mu, vwt, vb)
    else:
        one_example_plain(net, 0, x, act, delta, wt, b, step)
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
        b[j] = b[j] - step * delta[j]


cdef void one_example_update(const Net* net, const floating* x, const floating* act,
                             const floating* delta, floating* wt, floating* b, floating step,
                             floating decay, floating mu, floating* vwt,
                             floating* vb) noexcept nogil:
    """one_example_step's update with weight decay or momentum (take_step on every weight)."""
    cdef const floating* a
    cdef const floating* d
    cdef Py_ssize_t l, k, j, n_out, at
    for l in range(net.n_layers):
        n_out = net.sizes[l + 1]
        a = x if l == 0 else act + net.a_off[l - 1]
        d = delta + net.a_off[l]
        for k in range(net.sizes[l]):
            at = net.w_off[l] + k * n_out
            for j in range(n_out):
                take_step(wt + at + j, NULL if vwt == NULL else vwt + at + j, a[k] * d[j], step, decay, mu)
    for j in range(net.width):
        if vb != NULL:
            vb[j] = mu * vb[j] - step * delta[j]
            b[j] = b[j] + vb[j]
        else:
            b[j] = b[j] - step * delta[j]


cdef inline Py_ssize_t share_of(Py_ssize_t i0, Py_ssize_t i1, int me, int parts,
                                Py_ssize_t* stop) noexcept nogil:
    """Where member ``me`` of ``parts`` starts its share of the examples i0 … i1 (a chunk);
    sets ``stop`` to where it ends. The shares differ by one example at most."""
    stop[0] = i0 + (i1 - i0) * (me + 1) // parts
    return i0 + (i1 - i0) * me // parts


cdef void batch_member(const Net* net, const floating* X, const floating* Y,
                         const Py_ssize_t* idx, Py_ssize_t m, floating* wt, floating* b,
                         floating* gwt, floating* gb, floating* act, floating* delta,
                         floating* err, floating step, floating decay, floating mu,
                         floating* vwt, floating* vb, bint update,
                         double* error_sum, floating* w_back, Py_ssize_t back_stride,
                         Py_ssize_t n_idx) noexcept nogil:
    """One member's share of a mini-batch, idx[0..m), for every member of a team of threads.

    idx has n_idx ≥ m entries; those after m are the next examples. Each block
    fetches into cache the inputs and targets of the member's examples 2·SAMPLES places
    further on: of this chunk, of the next chunk, or of the next mini-batch's first (see
    backprop_block).

    Computes activations, deltas and errors into rows 0..m of the buffers and
    the nudge sums into gwt and gb; then, with ``update``, takes the step of
    contract 7 (with weight decay and, given velocities vwt and vb, momentum);
    without, divides the sums by m. Row ``me`` of w_back (rows back_stride apart) is
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
                net, X + idx[0] * net.sizes[0], Y + idx[0] * net.sizes[net.n_layers],
                wt, b, act, delta, step, decay, mu, vwt, vb)
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
                    wt if update and i1 == m else NULL, step, decay, mu, vwt)
        i0 = i1
    if not update:
        divide_part(net, me, parts, m, gwt)
    if me == 0:
        finish_biases(net, 0, net.width, m, delta, gb, b if update else NULL, vb, step, mu)
        for i in range(m):
            error_sum[0] = error_sum[0] + <double>err[i]


cdef double one_example_epoch(const Net* net, const floating* X, const floating* Y,
                              const Py_ssize_t* perm, Py_ssize_t n, floating* wt, floating* b,
                              floating* act, floating* delta, floating step,
                              double total) noexcept nogil:
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
            w[k * n_out + j] = w[k * n_out + j] - step * (a[k] * d[j])


cdef void epoch_member(const Net* net, const floating* X, const floating* Y,
                       const Py_ssize_t* perm, Py_ssize_t n, Py_ssize_t batch_size,
                       floating eta, floating decay, floating mu, floating* vwt, floating* vb,
                       floating* wt, floating* b, floating* gwt, floating* gb,
                       floating* act, floating* delta, floating* err, floating* w_back,
                       Py_ssize_t back_stride, bint by_layers, bint enter, bint leave,
                       floating* pw, floating* pv,
                       floating* pack, Py_ssize_t pack_stride, floating* scratch,
                       double* total) noexcept nogil:
    """Mini-batches over the examples in the order of perm, for every member of a team:
    ``by_layers`` a layer at a time (epoch_layered, with the panels pw and pv, entered and
    left as ``enter`` and ``leave`` say, and row ``me`` of pack, rows pack_stride apart),
    otherwise in blocks of examples (batch_member).

    Member 0 adds the examples' costs e_x to total[0] in float64, in the order visited.
    """
    cdef Py_ssize_t start = 0, m
    if by_layers:
        epoch_layered(net, X, Y, perm, n, batch_size, eta, decay, mu, vwt, vb, wt, b, gb, act,
                      delta, err, enter, leave, pw, pv, pack + team_rank() * pack_stride, scratch,
                      total)
        return
    if (batch_size == 1 and vwt == NULL and decay == 1 and team_size() == 1
            and net.sizes[1] % lanes(wt) == 0):
        total[0] = one_example_epoch(net, X, Y, perm, n, wt, b, act, delta, eta, total[0])
        return
    while start < n:
        m = min(batch_size, n - start)
        batch_member(net, X, Y, perm + start, m, wt, b, gwt, gb, act, delta, err,
                     eta / <floating>m, decay, mu, vwt, vb, True, total, w_back, back_stride,
                     n - start)
        if team_size() > 1:
            barrier()
        start += m


include "_layers.pxi"


# ----------------------------------------------------------------------
# (c) Entry points. The Python layer has checked shapes, dtypes and
# contiguity, and allocated every buffer; see fastmlp/trainer.py.

cdef Net make_net(const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] w_off,
                  const Py_ssize_t[::1] a_off, int activation, int output, int cost):
    cdef Net net
    net.n_layers = sizes.shape[0] - 1
    net.sizes = &sizes[0]
    net.w_off = &w_off[0]
    net.a_off = &a_off[0]
    net.width = a_off[net.n_layers]  # a_off carries the total as its last entry
    net.activation = activation
    net.output = output
    net.cost = cost
    return net


def train_epoch(const floating[:, ::1] X, const floating[:, ::1] Y, const Py_ssize_t[::1] perm,
                floating[::1] wt, floating[::1] b, floating[::1] gwt, floating[::1] gb,
                floating[:, ::1] act, floating[:, ::1] delta, floating[::1] err,
                floating[:, ::1] w_back, floating[::1] vwt, floating[::1] vb,
                floating[::1] pw, floating[::1] pv, floating[:, ::1] pack, floating[::1] scratch,
                const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] w_off,
                const Py_ssize_t[::1] a_off, int activation, int output, int cost,
                double learning_rate, double decay, double momentum,
                Py_ssize_t batch_size, int threads, bint by_layers, bint enter, bint leave,
                double cost_sum=0.0):
    """SGD over the examples in the order of ``perm``, in mini-batches; updates wt and b.

    ``act``, ``delta`` and ``err`` hold at least min(batch_size, n) rows. With
    ``momentum`` > 0, ``vwt`` and ``vb`` are the velocities, updated too; without, they
    are not touched. Returns cost_sum + Σ_x e_x, added in float64 in the order visited:
    an epoch may go in several calls, each continuing the sum.

    In blocks of examples, ``gwt`` holds the gradient sums and ``w_back`` a row per
    thread, each of at least the hidden layers' weights (w_off[L] − w_off[1], and 1).
    ``by_layers`` (see plan()), these are not touched; ``pw`` holds the weights in panels
    (and ``pv`` the velocities, with momentum), ``pack`` a row per thread and ``scratch``
    is the team's, all of plan()'s sizes. The weights (and velocities) go into the panels
    if ``enter`` and come back if ``leave``: an epoch in several calls keeps them there
    from its first call to its last, and wt (vwt) is stale in between.
    """
    cdef Net net = make_net(sizes, w_off, a_off, activation, output, cost)
    cdef double total[1]
    cdef Py_ssize_t n = perm.shape[0]
    cdef int team = threads if by_layers or min(batch_size, n) >= MIN_PARALLEL else 1
    cdef floating* vwt_p = &vwt[0] if momentum != 0 else NULL
    cdef floating* vb_p = &vb[0] if momentum != 0 else NULL
    total[0] = cost_sum
    with nogil, parallel(num_threads=team):
        epoch_member(&net, &X[0, 0], &Y[0, 0], &perm[0], n, batch_size,
                     <floating>learning_rate, <floating>decay, <floating>momentum, vwt_p, vb_p,
                     &wt[0], &b[0], &gwt[0], &gb[0], &act[0, 0], &delta[0, 0], &err[0],
                     &w_back[0, 0], w_back.shape[1], by_layers, enter, leave, &pw[0], &pv[0],
                     &pack[0, 0], pack.shape[1], &scratch[0], total)
    return total[0]


def forward(const floating[:, ::1] X, const floating[::1] wt, const floating[::1] b,
            floating[:, ::1] scratch, floating[:, ::1] out, floating[::1] pw, floating[:, ::1] pack,
            const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] w_off,
            const Py_ssize_t[::1] a_off, int activation, int output, int cost, int threads,
            bint by_layers):
    """Output activations of every row of X into ``out``.

    In blocks of examples, ``scratch`` has SAMPLE_BLOCK rows per thread, of the network's
    width. ``by_layers``, the examples go ``scratch.shape[0]`` at a time, a layer at a
    time; ``pw`` takes the weights in panels and ``pack`` has a row per thread, of plan()'s
    sizes for that many examples.
    """
    cdef Net net = make_net(sizes, w_off, a_off, activation, output, cost)
    cdef Py_ssize_t n = X.shape[0]
    cdef Py_ssize_t block, blocks = (n + SAMPLES - 1) // SAMPLES
    if by_layers:
        with nogil, parallel(num_threads=threads):
            forward_layered(&net, &X[0, 0], n, scratch.shape[0], <floating*>&wt[0], &pw[0], &b[0],
                            &scratch[0, 0], &pack[0, 0] + threadid() * pack.shape[1], &out[0, 0])
        return
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
    cdef const floating* next[SAMPLES]
    cdef floating* rows[SAMPLES]
    cdef Py_ssize_t s, j, i0 = block * SAMPLES
    cdef Py_ssize_t ns = min(<Py_ssize_t>SAMPLES, n - i0)
    cdef Py_ssize_t n_out = net.sizes[net.n_layers]
    cdef Py_ssize_t last = net.a_off[net.n_layers - 1]
    for s in range(ns):
        x[s] = X + (i0 + s) * net.sizes[0]
        rows[s] = scratch + s * net.width
    if i0 + 3 * SAMPLES <= n:  # fetch the inputs of the block after next meanwhile
        for s in range(SAMPLES):
            next[s] = X + (i0 + 2 * SAMPLES + s) * net.sizes[0]
        forward_block(net, x, ns, rows, wt, b, False, next)
    else:
        forward_block(net, x, ns, rows, wt, b)
    for s in range(ns):
        for j in range(n_out):
            out[(i0 + s) * n_out + j] = rows[s][last + j]


def gradients(const floating[:, ::1] X, const floating[:, ::1] Y, const Py_ssize_t[::1] order,
              const floating[::1] wt, const floating[::1] b, floating[::1] gwt,
              floating[::1] gb, floating[:, ::1] act, floating[:, ::1] delta, floating[::1] err,
              floating[:, ::1] w_back, floating[::1] pw, floating[:, ::1] pack,
              floating[::1] scratch, const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] w_off,
              const Py_ssize_t[::1] a_off, int activation, int output, int cost, int threads,
              bint by_layers):
    """The mini-batch gradient over the examples ``order`` (G/m, g/m) into gwt and gb.

    The buffers are train_epoch's, for m = len(order) examples (gwt in either way)."""
    cdef Net net = make_net(sizes, w_off, a_off, activation, output, cost)
    cdef Py_ssize_t m = order.shape[0]
    cdef double total[1]
    cdef int team = threads if by_layers or m >= MIN_PARALLEL else 1
    total[0] = 0.0
    if by_layers:
        with nogil, parallel(num_threads=team):
            panel_weights(&net, <floating*>&wt[0], &pw[0], False)
            if team_size() > 1:
                barrier()
            layered_member(&net, &X[0, 0], &Y[0, 0], &order[0], m, &pw[0], <floating*>&b[0],
                           &gwt[0], &gb[0], &act[0, 0], &delta[0, 0], &err[0], 0, 1, 0, NULL, NULL,
                           False, total, &pack[0, 0] + team_rank() * pack.shape[1], &scratch[0])
        return
    with nogil, parallel(num_threads=team):
        batch_member(&net, &X[0, 0], &Y[0, 0], &order[0], m, <floating*>&wt[0], <floating*>&b[0],
                     &gwt[0], &gb[0], &act[0, 0], &delta[0, 0], &err[0], 0, 1, 0, NULL, NULL,
                     False, total, &w_back[0, 0], w_back.shape[1], m)


def exp(const floating[::1] x, floating[::1] out):
    """Element-wise :func:`fastmlp.reference.exp`, for tests."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(x.shape[0]):
            out[i] = exp_(x[i])


def log(const floating[::1] x, floating[::1] out):
    """Element-wise :func:`fastmlp.reference.log`, for tests."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(x.shape[0]):
            out[i] = log_(x[i])


def activate_layer(const floating[:, ::1] z, const floating[::1] bias, floating[:, ::1] out,
                   int kind):
    """out[i] = activation ``kind`` of z[i] + bias for each row, as the forward pass computes
    a block's units: the rows SAMPLE_BLOCK at a time, side by side. For tests."""
    cdef Py_ssize_t i, j, i0
    cdef floating* rows[SAMPLES]
    with nogil:
        for i in range(z.shape[0]):
            for j in range(z.shape[1]):
                out[i, j] = z[i, j]
        i0 = 0
        while i0 < z.shape[0]:
            for i in range(i0, min(i0 + SAMPLES, z.shape[0])):
                rows[i - i0] = &out[i, 0]
            activate_rows(rows, min(<Py_ssize_t>SAMPLES, z.shape[0] - i0), &bias[0],
                          z.shape[1], kind)
            i0 += SAMPLES


def plan(const Py_ssize_t[::1] sizes, Py_ssize_t m, const floating[::1] like):
    """How mini-batches of up to m examples of a network of ``sizes`` go, in the dtype of
    ``like``: (by_layers, panels, pack, scratch), whether a layer at a time, and the sizes,
    in values, of the buffers that going so needs: the weights in panels (and the
    velocities, with momentum), each thread's packing buffer and the team's scratch."""
    cdef Net net
    net.n_layers = sizes.shape[0] - 1
    net.sizes = &sizes[0]  # all that these read
    return (layered(&net, m), panel_offset(&net, net.n_layers, &like[0]), pack_size(&net, m, &like[0]),
            scratch_size(&net, m, &like[0]))


#: Weight rows per gradient block, by dtype: threads split the rows at multiples of these.
GRADIENT_ROWS = {"float64": FASTMLP_ROWS_F64, "float32": FASTMLP_ROWS_F32}


def row_ranges(const Py_ssize_t[::1] sizes, const floating[::1] like, Py_ssize_t[:, :, ::1] out):
    """out[p, l] = the weight rows [first, end) of layer l that thread p of out.shape[0] takes
    in the gradient sums of a network of ``sizes``, in the dtype of ``like``. For tests."""
    cdef Net net
    cdef Py_ssize_t l, k_begin, k_end
    cdef int p, parts = <int>out.shape[0]
    net.n_layers = sizes.shape[0] - 1
    net.sizes = &sizes[0]  # all that row_range reads
    for p in range(parts):
        for l in range(net.n_layers):
            row_range(&net, l, p, parts, &k_begin, &k_end, &like[0])
            out[p, l, 0] = k_begin
            out[p, l, 1] = k_end


def activation(const floating[::1] z, floating[::1] out, int kind):
    """Element-wise activation ``kind`` (SIGMOID, RELU or TANH), for tests."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(z.shape[0]):
            out[i] = activate(z[i], kind)
