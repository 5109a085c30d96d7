"""Compiled kernels of fastmlp: forward pass, backprop and SGD step.

The interface of every kernel variant, ``fastmlp._kernels_<variant>`` and
its fused twin ``fastmlp._fused_<variant>``: the build compiles
fastmlp/_kernels.pyx once per instruction set and arithmetic contract and
gives each module a copy of this stub; fastmlp._dispatch chooses the ones
that run.

They compute exactly what :mod:`fastmlp.reference` defines, operation for
operation. :class:`fastmlp.Trainer` validates everything before calling
them: the kernels trust the shapes, sizes and offsets they are given.

Each function exists for float32 and for float64 (a Cython fused type): all
its floating-point arrays must share one dtype, which picks the version,
hence the one type variable ``_Float`` across them. Every array is
C-contiguous; the index arrays (``perm``, ``order``, ``sizes``, ``w_off``,
``a_off``) are ``np.intp``. Arrays a kernel only reads may be read-only.
"""

from typing import Final, TypeVar

import numpy as np
from numpy.typing import NDArray

_Float = TypeVar("_Float", np.float32, np.float64)

# Cython gives every module a dictionary of docstrings for doctest (the
# autotestdict directive); this one finds no doctests in the kernels.
__test__: dict[str, str]

# Activation codes (a ``cpdef enum`` without a name: plain ints at runtime).
SIGMOID: Final = 0
RELU: Final = 1
TANH: Final = 2
SOFTMAX: Final = 3
"""Output layer only."""
IDENTITY: Final = 4
"""Output layer only: a = z."""

# Optimizer rules (likewise plain ints).
PLAIN: Final = 0
MOMENTUM: Final = 1
NESTEROV: Final = 2
ADAM: Final = 3

# Cost codes (likewise plain ints).
QUADRATIC: Final = 0
CROSS_ENTROPY: Final = 1
LOG_LIKELIHOOD: Final = 2

SAMPLE_BLOCK: Final[int]
"""Examples per block in the forward pass (8 with AVX-512, otherwise 4): forward() needs this
many scratch rows per thread."""

OPENMP: Final[bool]
"""Whether this build runs prange loops on OpenMP threads (otherwise they run serially)."""

COMPILE_FLAGS: Final[str]
"""The C compiler flags the kernels were built with."""

VECTOR_BYTES: Final[int]
"""The width of the kernels' vectors in bytes: 16 (SSE2, NEON), 32 (AVX2) or 64 (AVX-512)."""

VARIANT: Final[str]
"""The instruction set the module was compiled for: sse2, avx2, avx512, neon, generic or native."""

FUSED: Final[bool]
"""Whether the module computes the fused arithmetic contract (fma=True): fastmlp._fused_<variant>."""

FMA_IN_HARDWARE: Final[bool]
"""Whether its fused multiply-adds are instructions of the CPU inline, not calls of the C library's fma
(False in modules of the default contract)."""

def train_epoch(
    X: NDArray[_Float],
    Y: NDArray[_Float],
    perm: NDArray[np.intp],
    wt: NDArray[_Float],
    b: NDArray[_Float],
    gwt: NDArray[_Float],
    gb: NDArray[_Float],
    act: NDArray[_Float],
    delta: NDArray[_Float],
    err: NDArray[_Float],
    w_back: NDArray[_Float],
    vwt: NDArray[_Float],
    vb: NDArray[_Float],
    pw: NDArray[_Float],
    pv: NDArray[_Float],
    pack: NDArray[_Float],
    scratch: NDArray[_Float],
    sizes: NDArray[np.intp],
    w_off: NDArray[np.intp],
    a_off: NDArray[np.intp],
    activation: int,
    output: int,
    cost: int,
    rule: int,
    learning_rate: float,
    decay: float,
    momentum: float,
    beta1: float,
    beta2: float,
    eps: float,
    powers: NDArray[np.float64],
    alive: NDArray[np.intp],
    dropout_scale: float,
    dropout_key: int,
    dropout_threshold: int,
    batch_size: int,
    threads: int,
    by_layers: bool,
    enter: bool,
    leave: bool,
    cost_sum: float = 0.0,
) -> float:
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

def forward(
    X: NDArray[_Float],
    wt: NDArray[_Float],
    b: NDArray[_Float],
    scratch: NDArray[_Float],
    out: NDArray[_Float],
    pw: NDArray[_Float],
    pack: NDArray[_Float],
    sizes: NDArray[np.intp],
    w_off: NDArray[np.intp],
    a_off: NDArray[np.intp],
    activation: int,
    output: int,
    cost: int,
    threads: int,
    by_layers: bool,
) -> None:
    """Output activations of every row of X into ``out``.

    In blocks of examples, ``scratch`` has SAMPLE_BLOCK rows per thread, of the network's
    width. ``by_layers``, the examples go ``scratch.shape[0]`` at a time, a layer at a
    time; ``pw`` takes the weights in panels and ``pack`` has a row per thread, of plan()'s
    sizes for that many examples.
    """

def gradients(
    X: NDArray[_Float],
    Y: NDArray[_Float],
    order: NDArray[np.intp],
    wt: NDArray[_Float],
    b: NDArray[_Float],
    gwt: NDArray[_Float],
    gb: NDArray[_Float],
    act: NDArray[_Float],
    delta: NDArray[_Float],
    err: NDArray[_Float],
    w_back: NDArray[_Float],
    pw: NDArray[_Float],
    pack: NDArray[_Float],
    scratch: NDArray[_Float],
    sizes: NDArray[np.intp],
    w_off: NDArray[np.intp],
    a_off: NDArray[np.intp],
    activation: int,
    output: int,
    cost: int,
    threads: int,
    by_layers: bool,
) -> None:
    """The mini-batch gradient over the examples ``order`` (G/m, g/m) into gwt and gb.

    The buffers are train_epoch's, for m = len(order) examples (gwt in either way)."""

def exp(x: NDArray[_Float], out: NDArray[_Float]) -> None:
    """Element-wise :func:`fastmlp.reference.exp`, for tests."""

def log(x: NDArray[_Float], out: NDArray[_Float]) -> None:
    """Element-wise :func:`fastmlp.reference.log`, for tests."""

def activate_layer(z: NDArray[_Float], bias: NDArray[_Float], out: NDArray[_Float], kind: int) -> None:
    """out[i] = activation ``kind`` of z[i] + bias for each row, as the forward pass computes
    a block's units: the rows SAMPLE_BLOCK at a time, side by side. For tests."""

def plan(sizes: NDArray[np.intp], m: int, like: NDArray[_Float]) -> tuple[bool, int, int, int]:
    """How mini-batches of up to m examples of a network of ``sizes`` go, in the dtype of
    ``like``: (by_layers, panels, pack, scratch), whether a layer at a time, and the sizes,
    in values, of the buffers that going so needs: the weights in panels (and the
    velocities, with momentum), each thread's packing buffer and the team's scratch."""

GRADIENT_ROWS: Final[dict[str, int]]
"""Weight rows per gradient block, by dtype: threads split the rows at multiples of these."""

def row_ranges(sizes: NDArray[np.intp], like: NDArray[_Float], out: NDArray[np.intp]) -> None:
    """out[p, l] = the weight rows [first, end) of layer l that thread p of out.shape[0] takes
    in the gradient sums of a network of ``sizes``, in the dtype of ``like``. For tests."""

def activation(z: NDArray[_Float], out: NDArray[_Float], kind: int) -> None:
    """Element-wise activation ``kind`` (SIGMOID, RELU or TANH), for tests."""
