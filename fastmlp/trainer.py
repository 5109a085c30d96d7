"""`Trainer`: the compiled trainer, a thin layer over the kernels (:mod:`fastmlp._kernels`, in the
variant :mod:`fastmlp._dispatch` chose for the CPU)."""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

import numpy as np

from . import _dispatch
from ._base import BaseTrainer, dropout_scale, dropout_threshold
from ._typing import BuildInfo, FloatArray

# The codes are the same in every variant.
_k = _dispatch.kernels
_ACTIVATION_CODES = {"sigmoid": _k.SIGMOID, "relu": _k.RELU, "tanh": _k.TANH, "softmax": _k.SOFTMAX,
                     "identity": _k.IDENTITY}
_COST_CODES = {"quadratic": _k.QUADRATIC, "cross_entropy": _k.CROSS_ENTROPY, "log_likelihood": _k.LOG_LIKELIHOOD}


#: Examples per pass of forward() a layer at a time: their activations are a buffer of this many rows.
FORWARD_ROWS = 256


class _Buffers(NamedTuple):
    """The kernels' work buffers for mini-batches of up to a number of examples (_work_buffers)."""

    kernels: ModuleType  # the variant whose plan the buffers follow, which runs on them
    by_layers: bool  # a layer at a time, or in blocks of examples
    gwt: FloatArray  # the gradient sums (in blocks of examples, or for gradients())
    gb: FloatArray  # the biases' gradient sums
    act: FloatArray  # per example: activations,
    delta: FloatArray  # deltas,
    err: FloatArray  # and cost
    w_back: FloatArray  # in blocks of examples, each thread's copy of the hidden layers' weights
    pw: FloatArray  # a layer at a time: the weights in panels,
    pv: FloatArray  # the optimizer's state in panels (velocities, or Adam's two moments),
    pack: FloatArray  # each thread's packing buffer,
    scratch: FloatArray  # and the team's scratch


class Trainer(BaseTrainer):
    """Mini-batch SGD with backprop in compiled kernels, bit-identical to :class:`~fastmlp.reference.ReferenceTrainer`.

    A whole epoch runs in one call without the GIL: forward pass, backprop
    and the in-place SGD step of every mini-batch, visiting the examples in
    the order of the epoch's permutation without copying the training set.
    See :class:`fastmlp.BaseTrainer` for the arguments, methods and attributes.

    ``weights`` and ``biases`` are views of the trainer's own parameter
    buffers: writing into them changes the network. Each weight matrix is
    stored transposed, so ``weights[l]`` is Fortran-ordered.
    """

    #: How mini-batches go through the kernels: None lets them choose (``_kernels.plan``:
    #: wide networks a layer at a time, others in blocks of examples); True or False forces
    #: one way, whose results are the same bits, for tests.
    _by_layers: bool | None = None

    def _set_parameters(self, weights, biases):
        if not hasattr(self, "_wt"):
            self._allocate_parameters()
        for W, b, W_view, b_view in zip(weights, biases, self.weights, self.biases):
            W_view[...] = W
            b_view[...] = b

    def _set_slots(self, slots):
        # The optimizer's state in two flat buffers, a slot after another, each laid out as
        # the parameters are (Adam's second moments follow its first ones, as the kernels expect).
        if getattr(self, "_vwt", None) is None or len(self._vwt) != len(slots) * len(self._wt):
            self._vwt = np.zeros(len(slots) * len(self._wt), dtype=self.dtype) if slots else None
            self._vb = np.zeros(len(slots) * len(self._b), dtype=self.dtype) if slots else None
        for (weights, biases), (W_views, b_views) in zip(slots, self._slots()):
            for W, b, W_view, b_view in zip(weights, biases, W_views, b_views):
                W_view[...] = W
                b_view[...] = b

    def _slots(self):
        if self._vwt is None:
            return []
        w, b = len(self._wt), len(self._b)
        return [
            (self._weight_views(self._vwt[i * w : (i + 1) * w]), self._bias_views(self._vb[i * b : (i + 1) * b]))
            for i in range(len(self._vwt) // w)
        ]

    def _dropout(self, rate):
        """The kernels' dropout arguments (contract 11): the kept units' scale c (0: no dropout),
        the epoch's key and the threshold of the kept units' draws."""
        if not self.dropout:
            return 0.0, 0, 0
        return float(dropout_scale(self.dropout, self.dtype)), rate.dropout_key, dropout_threshold(self.dropout)

    def _rule(self, kernels):
        """The kernels' code for the optimizer's rule."""
        if self.optimizer == "adam":
            return kernels.ADAM
        if self.momentum:
            return kernels.NESTEROV if self.nesterov else kernels.MOMENTUM
        return kernels.PLAIN

    def _allocate_parameters(self):
        sizes = self.layer_sizes
        self._sizes = np.array(sizes, dtype=np.intp)
        # w_off[l]: where layer l's Wᵀ starts in _wt; a_off[l]: where layer
        # l+1's units start in _b and in an example's activation row. Each
        # carries the total as its last entry.
        self._w_off = np.cumsum([0] + [a * b for a, b in zip(sizes[:-1], sizes[1:])]).astype(np.intp)
        self._a_off = np.cumsum([0] + list(sizes[1:])).astype(np.intp)
        self._wt = np.empty(self._w_off[-1], dtype=self.dtype)
        self._b = np.empty(self._a_off[-1], dtype=self.dtype)

    @property
    def width(self) -> int:
        """Units per example over all layers after the input."""
        return int(self._a_off[-1])

    def _weight_views(self, flat):
        sizes = self.layer_sizes
        return [
            flat[self._w_off[l] : self._w_off[l + 1]].reshape(sizes[l], sizes[l + 1]).T
            for l in range(len(sizes) - 1)
        ]

    @property
    def weights(self) -> list[FloatArray]:
        """``weights[l]``, shape ``(layer_sizes[l + 1], layer_sizes[l])``: views of the parameters."""
        return self._weight_views(self._wt)

    def _bias_views(self, flat):
        return [flat[self._a_off[l] : self._a_off[l + 1]] for l in range(len(self.layer_sizes) - 1)]

    @property
    def biases(self) -> list[FloatArray]:
        """``biases[l]``, shape ``(layer_sizes[l + 1],)``: views of the parameters."""
        return self._bias_views(self._b)

    def _layout(self):
        return (
            self._sizes, self._w_off, self._a_off, _ACTIVATION_CODES[self.activation],
            _ACTIVATION_CODES[self.output_activation], _COST_CODES[self.cost],
        )

    def _plan(self, kernels, rows):
        """(by_layers, panels, pack, scratch) of variant ``kernels`` for mini-batches of up to
        ``rows`` examples: see _kernels.plan; the sizes are 1 in blocks of examples."""
        by_layers, panels, pack, scratch = kernels.plan(self._sizes, rows, self._b[:1])
        if self._by_layers is not None:
            by_layers = self._by_layers
        return (True, panels, pack, scratch) if by_layers else (False, 1, 1, 1)

    def _work_buffers(self, rows, gradients=False):
        """The buffers of the kernels' training, for mini-batches of up to ``rows`` examples:
        per-example activations, deltas and errors; in blocks of examples, the gradient sums
        and each thread's copy of the hidden layers' weights for the backward pass; a layer
        at a time, the weights in panels (and the velocities, with momentum), each thread's
        packing buffer and the team's scratch (see _kernels.plan), and the gradient sums only
        for ``gradients``."""
        kernels = _dispatch.for_contract(self.fma)
        by_layers, panels, pack, scratch = self._plan(kernels, rows)
        hidden_weights = 1 if by_layers else max(int(self._w_off[-1] - self._w_off[1]), 1)
        return _Buffers(
            kernels,
            by_layers,
            np.empty(1 if by_layers and not gradients else len(self._wt), dtype=self.dtype),
            np.empty_like(self._b),
            np.empty((rows, self.width), dtype=self.dtype),
            np.empty((rows, self.width), dtype=self.dtype),
            np.empty(rows, dtype=self.dtype),
            np.empty((self.threads, hidden_weights), dtype=self.dtype),
            np.empty(panels, dtype=self.dtype),
            np.empty(panels * self._slot_count() if self._slot_count() and not gradients else 1, dtype=self.dtype),
            np.empty((self.threads, pack), dtype=self.dtype),
            np.empty(scratch, dtype=self.dtype),
        )

    def _epoch_buffers(self, n_samples):
        return self._work_buffers(min(self.batch_size, n_samples))

    def _train_slice(self, X, Y, perm, cost_sum, buffers, rate, first, last):
        b = buffers
        # The plain rule never touches the state's arguments.
        vwt, vb = (self._wt, self._b) if self._vwt is None else (self._vwt, self._vb)
        return b.kernels.train_epoch(
            X, Y, perm.astype(np.intp, copy=False), self._wt, self._b, b.gwt, b.gb, b.act, b.delta, b.err, b.w_back,
            vwt, vb, b.pw, b.pv, b.pack, b.scratch, *self._layout(), self._rule(b.kernels), rate.learning_rate,
            rate.decay, self.momentum, *self.betas, self.eps, self._adam_powers, self._alive, *self._dropout(rate),
            min(self.batch_size, len(perm)), self.threads, b.by_layers, first, last, cost_sum,
        )

    def _forward(self, X):
        out = np.empty((len(X), self.layer_sizes[-1]), dtype=self.dtype)
        rows = min(len(X), FORWARD_ROWS)
        kernels = _dispatch.for_contract(self.fma)
        by_layers, panels, pack, _ = self._plan(kernels, rows)
        if not by_layers:
            rows = self.threads * kernels.SAMPLE_BLOCK
        scratch = np.empty((rows, self.width), dtype=self.dtype)
        pw = np.empty(panels, dtype=self.dtype)
        pack = np.empty((self.threads, pack), dtype=self.dtype)
        kernels.forward(X, self._wt, self._b, scratch, out, pw, pack, *self._layout(), self.threads, by_layers)
        return out

    def _gradients(self, X, Y):
        b = self._work_buffers(len(X), gradients=True)
        order = np.arange(len(X), dtype=np.intp)
        b.kernels.gradients(
            X, Y, order, self._wt, self._b, b.gwt, b.gb, b.act, b.delta, b.err, b.w_back, b.pw, b.pack, b.scratch,
            *self._layout(), self.threads, b.by_layers,
        )
        grad_w = [np.ascontiguousarray(g) for g in self._weight_views(b.gwt)]
        grad_b = [g.copy() for g in self._bias_views(b.gb)]
        return grad_w, grad_b


def build_info() -> BuildInfo:
    """How the kernels were built and which of them run here.

    ``kernels`` is the variant in use (see :func:`fastmlp.use_kernels`), ``kernels_built``
    the variants in this build, ``kernels_runnable`` those this CPU runs, ``chosen_by`` why
    the one in use was chosen, and ``cpu`` the CPU's vendor, family and model. ``openmp``,
    ``compile_flags`` and ``vector_bytes`` describe the variant in use; ``fma_in_hardware``
    says whether its fused contract (fma=True) does each multiply-add in one instruction of
    the CPU, inline (False: it calls the C library's fma, several times slower, or this build
    has no fused kernels).
    """
    k = _dispatch.kernels
    return {
        "kernels": k.VARIANT,
        "kernels_built": _dispatch.built(),
        "kernels_runnable": _dispatch.runnable(),
        "chosen_by": _dispatch.chosen_by,
        "cpu": f"{_dispatch.VENDOR} family {_dispatch.FAMILY} model {_dispatch.MODEL}" if _dispatch.VENDOR else "",
        "openmp": k.OPENMP,
        "compile_flags": k.COMPILE_FLAGS,
        "vector_bytes": k.VECTOR_BYTES,
        "fma_in_hardware": _fused_inline(),
    }


def _fused_inline() -> bool:
    try:
        return bool(_dispatch.for_contract(True).FMA_IN_HARDWARE)
    except ImportError:  # a build without fused kernels (MSVC)
        return False
