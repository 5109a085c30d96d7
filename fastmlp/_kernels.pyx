# cython: language_level=3
"""Compiled kernels of fastmlp: forward pass, backprop and SGD step.

They compute exactly what :mod:`fastmlp.reference` defines (its module
docstring is the arithmetic contract), operation for operation, so results
agree bit for bit. The source is compiled once for each contract: modules
``fastmlp._kernels_<variant>`` round every multiply-add twice, modules
``fastmlp._fused_<variant>`` (fma=True) fuse them (``FUSED``). Validation happens in Python before any call here; the
kernels trust their arguments, hold no GIL and cannot fail.

The kernels have these layers, each in a file of its own:
(a) _element.pxi, one element: exp, log, the activations and their
    derivatives, the softmax, an example's output deltas and cost, the
    contract's multiply-add, and the step of one weight;
(b) the mini-batch and the epoch, run by a team of threads in one parallel
    region with barriers between the phases, in one of two ways:
    _examples.pxi, in blocks of examples, for networks whose weights fit the
    caches (the 784-16-16-10 network's), and _layers.pxi, a layer at a
    time, for wide ones;
(c) here, the entry points the Python layer calls: a whole epoch, the
    forward pass over many examples, the gradient of one mini-batch; and
    exp, log and the activations element by element, for tests.
Below them, in C, the register blocks and tiles, the cache blocks and
packing, and the target's shapes: kernels/kernels.h lists those.

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
from libc.math cimport INFINITY, fabs, sqrt
from libc.string cimport memcpy

# Activation and cost codes; fastmlp/trainer.py maps names to them.
cdef extern from "kernels/kernels.h":
    enum:
        FASTMLP_SIGMOID
        FASTMLP_RELU
        FASTMLP_TANH

cpdef enum:
    SIGMOID = FASTMLP_SIGMOID
    RELU = FASTMLP_RELU
    TANH = FASTMLP_TANH
    SOFTMAX = 3  # output layer only
    IDENTITY = 4  # output layer only: a = z, for regression

cdef extern from "kernels/kernels.h" nogil:
    int FASTMLP_SLOPES  # for the deltas: each unit's σ' (times its mask) is already in its place
    bint kept "fastmlp_kept"(uint64_t key, uint64_t counter, uint64_t threshold)

cdef extern from "kernels/kernels.h":
    # The arithmetic contract this module is compiled for (1: fused multiply-adds), and
    # whether they are instructions inline rather than calls of the C library's fma.
    const int FUSED_CONTRACT "FASTMLP_FUSED"
    const int FMA_INSTRUCTION "FASTMLP_FMA_INSTRUCTION"

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
    #ifndef FASTMLP_VARIANT
    #define FASTMLP_VARIANT ""
    #endif
    """
    int FASTMLP_OPENMP
    const char* FASTMLP_CFLAGS
    const char* FASTMLP_VARIANT

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

#: Examples per block in blocks of examples: forward() then needs this many scratch rows per thread.
SAMPLE_BLOCK = SAMPLES

#: Whether this build runs prange loops on OpenMP threads (otherwise they run serially).
OPENMP = bool(FASTMLP_OPENMP)
#: The C compiler flags the kernels were built with.
COMPILE_FLAGS = FASTMLP_CFLAGS.decode()
#: The instruction set this module was compiled for: sse2, avx2, avx512, neon, generic or native.
VARIANT = FASTMLP_VARIANT.decode()
#: The width of the kernels' vectors in bytes: 16 (SSE2), 32 (AVX) or 64 (AVX-512).
VECTOR_BYTES = FASTMLP_VBYTES
#: Whether this module computes the fused contract (fma=True).
FUSED = bool(FUSED_CONTRACT)
#: Whether its fused multiply-adds are instructions of the CPU inline, rather than calls of
#: the C library's fma (which glibc runs on the instruction where the CPU has it, at a call's
#: cost each, and in software where not). False in modules of the default contract.
FMA_IN_HARDWARE = bool(FMA_INSTRUCTION)


cdef extern from "kernels/kernels.h" nogil:
    # The target's shapes (kernels/shapes.h): FASTMLP_SAMPLES examples or
    # FASTMLP_ROWS_* weight rows (8, or 16 of float32, with AVX-512;
    # otherwise 4) × FASTMLP_OUTPUTS_* outputs (16 float64 or float32 with
    # AVX-512; 8 float64 or 16 float32 with AVX; 4 or 8 with SSE2) per
    # register block of _examples.pxi; units per vector of a layer's units.
    enum:
        FASTMLP_OUTPUTS_F64
        FASTMLP_OUTPUTS_F32
        FASTMLP_SAMPLES
        FASTMLP_ROWS_F64
        FASTMLP_ROWS_F32
        FASTMLP_NV_F64  # vectors per block of outputs
        FASTMLP_NV_F32
        FASTMLP_VBYTES  # bytes per vector
    enum:
        FASTMLP_UNIT_LANES_F64
        FASTMLP_UNIT_LANES_F32

cdef struct Net:
    Py_ssize_t n_layers
    const Py_ssize_t* sizes  # n_layers + 1 widths, input first
    const Py_ssize_t* w_off  # where layer l's Wᵀ starts in the flat weights
    const Py_ssize_t* a_off  # where layer l+1's units start in an example's row
    Py_ssize_t width  # units per example over layers 1..L
    int activation  # of the hidden layers
    int output  # the output layer's activation
    int cost
    # Dropout in training (rule 11): none unless ``dropping``; the epoch's key, the threshold
    # of the kept units' draws, the scale c of kept units (a value of the dtype), and where each
    # member of the team notes the hidden layers found alive (a row of n_layers per member).
    bint dropping
    uint64_t drop_key
    uint64_t drop_threshold
    double drop_scale
    Py_ssize_t* alive


cdef enum:
    SAMPLES = FASTMLP_SAMPLES  # examples per block, 8 or 4 (kernels/shapes.h)


cdef inline Py_ssize_t vector_lanes(const floating* any) noexcept nogil:
    """Units per unit vector, for a layer's activations and deltas and for layers narrower
    than a block (0 in a build without vectors)."""
    return FASTMLP_UNIT_LANES_F64 if floating is double else FASTMLP_UNIT_LANES_F32


include "_element.pxi"
include "_examples.pxi"
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
    net.dropping = False
    return net


def train_epoch(const floating[:, ::1] X, const floating[:, ::1] Y, const Py_ssize_t[::1] perm,
                floating[::1] wt, floating[::1] b, floating[::1] gwt, floating[::1] gb,
                floating[:, ::1] act, floating[:, ::1] delta, floating[::1] err,
                floating[:, ::1] w_back, floating[::1] vwt, floating[::1] vb,
                floating[::1] pw, floating[::1] pv, floating[:, ::1] pack, floating[::1] scratch,
                const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] w_off,
                const Py_ssize_t[::1] a_off, int activation, int output, int cost,
                int rule, double learning_rate, double decay, double momentum, double beta1,
                double beta2, double eps, double[::1] powers, Py_ssize_t[:, ::1] alive,
                double dropout_scale, uint64_t dropout_key, uint64_t dropout_threshold,
                Py_ssize_t batch_size, int threads, bint by_layers, bint enter, bint leave,
                double cost_sum=0.0):
    """Mini-batch steps over the examples in the order of ``perm``; updates wt and b.

    ``rule`` is PLAIN, MOMENTUM, NESTEROV or ADAM, with the epoch's learning rate and decay
    factor, the momentum, and Adam's β1, β2, ε, in float64 as the trainer holds them.
    ``act``, ``delta`` and ``err`` hold at least min(batch_size, n) rows. Unless the rule
    is PLAIN, ``vwt`` and ``vb`` hold the optimizer's state, updated too: the velocities,
    or Adam's first moments followed by its second ones (twice the size); ``powers`` holds
    Adam's β1^t and β2^t, advanced one step per mini-batch. ``alive[p, l − 1]`` becomes 1 once
    member p of the team finds a unit of layer l (1 … L) with a derivative other than 0 for an
    example trained on (a row per thread). With ``dropout_scale`` > 0, dropout (rule 11) on the
    hidden layers with the epoch's key and threshold, kept units scaled by dropout_scale.
    Returns cost_sum + Σ_x e_x, added in
    float64 in the order visited: an epoch may go in several calls, each continuing the sum.

    In blocks of examples, ``gwt`` holds the gradient sums and ``w_back`` a row per
    thread, each of at least the hidden layers' weights (w_off[L] − w_off[1], and 1).
    ``by_layers`` (see plan()), these are not touched; ``pw`` holds the weights in panels
    (and ``pv`` the optimizer's state, as many panels as vwt holds sets of weights),
    ``pack`` a row per thread and ``scratch`` is the team's, all of plan()'s sizes. The
    weights (and state) go into the panels if ``enter`` and come back if ``leave``: an
    epoch in several calls keeps them there from its first call to its last, and wt (vwt)
    is stale in between.
    """
    cdef Net net = make_net(sizes, w_off, a_off, activation, output, cost)
    cdef double total[1]
    cdef Py_ssize_t n = perm.shape[0]
    cdef int team = threads if by_layers or min(batch_size, n) >= MIN_PARALLEL else 1
    net.dropping = dropout_scale > 0 and net.n_layers > 1
    net.drop_key = dropout_key
    net.drop_threshold = dropout_threshold
    net.drop_scale = dropout_scale
    net.alive = &alive[0, 0]
    cdef floating* vwt_p = &vwt[0] if rule != PLAIN else NULL
    cdef floating* vb_p = &vb[0] if rule != PLAIN else NULL
    cdef Optimizer opt
    opt.kind = rule
    opt.eta = learning_rate
    opt.decay = decay
    opt.mu = momentum
    opt.beta1 = beta1
    opt.beta2 = beta2
    opt.eps = eps
    total[0] = cost_sum
    with nogil, parallel(num_threads=team):
        epoch_member(&net, &X[0, 0], &Y[0, 0], &perm[0], n, batch_size, &opt, &powers[0], vwt_p, vb_p,
                     &wt[0], &b[0], &gwt[0], &gb[0], &act[0, 0], &delta[0, 0], &err[0],
                     &w_back[0, 0], w_back.shape[1], by_layers, enter, leave, &pw[0], &pv[0],
                     &pack[0, 0], pack.shape[1], &scratch[0], total, &alive[0, 0])
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
                           &gwt[0], &gb[0], &act[0, 0], &delta[0, 0], &err[0], NULL, NULL, NULL,
                           False, total, &pack[0, 0] + team_rank() * pack.shape[1], &scratch[0])
        return
    with nogil, parallel(num_threads=team):
        batch_member(&net, &X[0, 0], &Y[0, 0], &order[0], m, <floating*>&wt[0], <floating*>&b[0],
                     &gwt[0], &gb[0], &act[0, 0], &delta[0, 0], &err[0], NULL, NULL, NULL,
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
