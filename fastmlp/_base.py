"""What Trainer and ReferenceTrainer share: arguments, checks, the fit loop.

Both trainers inherit from :class:`BaseTrainer`. It validates every argument
at the Python boundary, draws the initial parameters, shuffles each epoch
and keeps the history. The subclasses only supply the arithmetic: one epoch
of SGD, the forward pass and the mini-batch gradient.
"""

from __future__ import annotations

import copy
import numbers
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from . import model_file
from ._typing import FloatArray, StrPath
from .schedules import StepDecay

ACTIVATIONS = ("sigmoid", "relu", "tanh")
#: The costs, and the output layer each one pairs with (None: the trainer's activation).
COSTS = {"quadratic": None, "cross_entropy": "sigmoid", "log_likelihood": "softmax"}
#: What the output layer may compute with the quadratic cost (the other costs fix theirs).
OUTPUT_ACTIVATIONS = ("sigmoid", "relu", "tanh", "identity")
INITS = ("standard", "scaled")
OPTIMIZERS = ("sgd", "adam")
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
MAX_THREADS = 256
#: Multiply-adds per call into the epoch's arithmetic: whole mini-batches of
#: about this much work go at a time, so Ctrl-C is honoured within a fraction
#: of a second however long the epoch.
SLICE_WORK = 100_000_000


@dataclass
class EpochRecord:
    """What one epoch of :meth:`BaseTrainer.fit` measured."""

    epoch: int  #: 1-based, counted over every ``fit`` call on this trainer.
    train_cost: float  #: mean cost over the epoch's examples, each taken before its step (without the L2 term).
    seconds: float  #: wall time of the epoch's training, without validation.
    validation_accuracy: float | None = None  #: fraction right on ``validation_data``.


@dataclass
class History:
    """The records of one :meth:`BaseTrainer.fit` call, an :class:`EpochRecord` per epoch."""

    epochs: list[EpochRecord] = field(default_factory=list)
    #: With ``early_stopping``: the epoch of the best validation accuracy, whose parameters the trainer kept.
    best_epoch: int | None = None

    @property
    def train_cost(self) -> list[float]:
        """Each epoch's mean training cost."""
        return [r.train_cost for r in self.epochs]

    @property
    def validation_accuracy(self) -> list[float | None]:
        """Each epoch's accuracy on ``validation_data`` (None where none was given)."""
        return [r.validation_accuracy for r in self.epochs]

    @property
    def seconds(self) -> list[float]:
        """Each epoch's training wall time, validation excluded."""
        return [r.seconds for r in self.epochs]

    def as_dicts(self) -> list[dict[str, Any]]:
        """The records as plain dictionaries, ready for ``json.dumps``."""
        return [asdict(r) for r in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)


class _Rate(NamedTuple):
    """What one epoch's steps use (contract 7): η, the decay factor 1 − η·λ/n, and the key of
    the epoch's dropout masks (contract 11)."""

    learning_rate: float
    decay: float
    dropout_key: int = 0


class DivergenceError(FloatingPointError):
    """Training produced a non-finite cost or parameter.

    The trainer is left with the parameters of the last completed epoch
    whose cost and parameters were finite. ``history`` holds the records of
    the epochs of that ``fit`` call that completed before it.
    """

    def __init__(self, message: str, history: History | None = None) -> None:
        super().__init__(message)
        self.history = history


class TrainingStalledWarning(RuntimeWarning):
    """A layer was inactive over a whole epoch: every unit's derivative was 0 for every
    example, so no gradient reached the layers below it, nor the weights into it, and training
    can no longer change them (dead ReLU units, saturated sigmoid or tanh units). The output
    layer counts where its derivative is a factor of the output nudges: with the quadratic
    cost, unless the output is linear.

    :meth:`BaseTrainer.fit` warns once per call, at the first epoch where it happens.
    """


# ----------------------------------------------------------------------
# Argument checks. Each names the argument, what was expected and what came.


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_layer_sizes(layer_sizes):
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__iter__"):
        raise TypeError(f"layer_sizes must be a sequence of integers such as (784, 16, 16, 10), got {layer_sizes!r}")
    sizes = list(layer_sizes)
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output size, got {sizes!r}")
    for i, n in enumerate(sizes):
        _check_int(f"layer_sizes[{i}]", n, 1)
    return tuple(int(n) for n in sizes)


def _check_parameter_memory(sizes, dtype, slots=0):
    """Refuse, before allocating anything, a network whose parameters cannot fit in memory."""
    count = sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    needed = count * dtype.itemsize
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        available = 2**63
    # The parameters are drawn in float64, and training holds a gradient of
    # the same size (and the optimizer's state: velocities, or Adam's moments).
    training = count * 8 + (2 + slots) * needed
    if training > available:
        raise MemoryError(
            f"layer_sizes {sizes} has {count:,} weights and biases: {needed / 2**30:,.1f} GiB in "
            f"{dtype.name}, and training needs about {training / 2**30:,.1f} GiB, "
            f"more than this machine's memory ({available / 2**30:,.1f} GiB)"
        )


def _check_learning_rate(value, dtype):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"learning_rate must be a real number, got {value!r}")
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"learning_rate must be finite and > 0, got {value}")
    with np.errstate(over="ignore"):
        rounded = dtype.type(value)
    if not (np.isfinite(rounded) and rounded > 0):
        raise ValueError(f"learning_rate {value} is {rounded} in {dtype.name}; it must be finite and > 0 there")
    return value


def _check_real(name, value, low, high=None, *, high_open=False):
    """A finite real number in [low, high] (or [low, high) with high_open)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    above = high is not None and (value >= high if high_open else value > high)
    if not np.isfinite(value) or value < low or above:
        bound = "" if high is None else f" and {'<' if high_open else '<='} {high}"
        raise ValueError(f"{name} must be finite, >= {low}{bound}, got {value}")
    return value


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} of type {type(value).__name__}")
    return bool(value)


def dropout_threshold(p):
    """The threshold of kept units' draws for dropout probability p: p·2^53, rounded (contract 11)."""
    return round(p * 2**53)


def dropout_scale(p, dtype):
    """The factor s of kept units for dropout probability p: 1/(1 − p) in float64, rounded to
    the dtype (contract 11)."""
    return dtype.type(1.0 / (1.0 - p))


def _check_betas(betas, dtype):
    """Adam's (β1, β2): a pair of reals in [0, 1), each < 1 in the dtype too."""
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    pair = tuple(_check_real(f"betas[{i}]", b, 0.0, 1.0, high_open=True) for i, b in enumerate(betas))
    for i, b in enumerate(pair):
        if dtype.type(b) >= 1:
            raise ValueError(f"betas[{i}] {b} is 1.0 in {dtype.name}: its average would never move; it must be "
                             f"< 1 there")
    return pair


def _check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _check_schedule(schedule):
    if schedule is None or (isinstance(schedule, str) and schedule == "constant"):
        return None
    if isinstance(schedule, StepDecay):
        return schedule
    raise TypeError(f"schedule must be None, 'constant' or a fastmlp.StepDecay, got {schedule!r}")


def _check_seed(seed):
    # A Generator would be shared with the caller (and with any other trainer
    # given it), so two trainers "with the same seed" would differ.
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be None, a non-negative integer or a numpy SeedSequence, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(seed)


def _check_dtype(dtype):
    # np.dtype(None) is float64, so None must not reach it.
    try:
        dt = None if dtype is None else np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def _check_activation(activation):
    return _check_choice("activation", activation, ACTIVATIONS)


def _cost_output(cost, activation):
    """The output activation that ``cost`` gives when none is named: its own, or ``activation``."""
    return COSTS[cost] or activation


def _check_output_activation(output_activation, cost, activation):
    """The output layer's activation: the one given, or the cost's (_cost_output)."""
    own = COSTS[cost]
    if output_activation is None:
        return _cost_output(cost, activation)
    if own is None:
        return _check_choice("output_activation", output_activation, OUTPUT_ACTIVATIONS)
    if output_activation != own:
        raise ValueError(f"cost={cost!r} needs output_activation={own!r} (or None): its gradient a - y "
                         f"holds for that output layer only; got {output_activation!r}")
    return own


def _all_finite(arr, rows=4096):
    """Whether every value is finite, checked a block of rows at a time (no data-sized temporary)."""
    if arr.dtype.kind != "f":
        return True
    return all(np.isfinite(arr[i : i + rows]).all() for i in range(0, len(arr), rows))


def _as_real_array(name, value):
    """``np.asarray`` that refuses what cannot be read as real numbers."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {arr.dtype}")
    return arr


_Trainer = TypeVar("_Trainer", bound="BaseTrainer")  # what load returns: an instance of the class it is called on


class BaseTrainer:
    """A fully connected network trained by mini-batch SGD with backprop.

    Parameters
    ----------
    layer_sizes : sequence of int
        Neurons per layer, input first: ``(784, 16, 16, 10)`` is the network
        of the classic MNIST picture.
    activation : {"sigmoid", "relu", "tanh"}
        The activation of the hidden layers, and of the output layer with
        the quadratic cost unless ``output_activation`` says otherwise.
    cost : {"quadratic", "cross_entropy", "log_likelihood"}
        The cost of one example: ``½ Σ_j (a_j − y_j)²``; the cross-entropy
        ``−Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)]`` over a sigmoid output
        layer; or the log-likelihood ``−ln a_y`` over a softmax output layer,
        whose outputs are probabilities summing to 1 (needs two or more outputs).
    output_activation : {None, "identity", "sigmoid", "relu", "tanh", "softmax"}
        The output layer's activation. ``None`` lets the cost decide: the
        hidden layers' ``activation`` with the quadratic cost, a sigmoid with
        the cross-entropy, a softmax with the log-likelihood. The quadratic
        cost also takes ``"identity"``, ``"sigmoid"``, ``"relu"`` or
        ``"tanh"``; ``"identity"`` (a = z) makes a linear output layer, for
        regression on targets of any range. The other two costs take only
        their own (``"softmax"`` goes only with the log-likelihood).
    learning_rate : float
        η in the step ``w ← w − (η/m)·Σ ∂C_x/∂w`` over a mini-batch of m examples.
    batch_size : int
        Examples per mini-batch. The last mini-batch of an epoch holds the
        remainder; a batch size above the number of examples makes one batch.
    l2 : float
        L2 weight decay λ ≥ 0, as in Nielsen's book: each step first scales
        the weights (not the biases) by ``1 − η·λ/n``, n the number of
        training examples given to ``fit``.
    momentum : float
        μ in [0, 1): with μ > 0, each step is ``v ← μ·v − (η/m)·Σ ∂C_x/∂w``,
        ``w ← w + v``, with a velocity v per weight and bias (kept by
        :meth:`save`). Only with ``optimizer="sgd"``.
    nesterov : bool
        Nesterov's momentum (needs ``momentum`` > 0), in PyTorch's form: the
        velocity is as above, and the step looks ahead along it,
        ``w ← w + (μ·v − (η/m)·Σ ∂C_x/∂w)`` with the new v.
    optimizer : {"sgd", "adam"}
        ``"sgd"``: the steps above. ``"adam"``: Kingma and Ba's Adam, as
        PyTorch's ``Adam`` computes it, bias correction included: with g the
        mini-batch's mean gradient and t the step's number (counted over
        every ``fit``), ``m ← β1·m + (1 − β1)·g``, ``v ← β2·v + (1 − β2)·g²``,
        ``w ← w − η/(1 − β1^t) · m / (√v/√(1 − β2^t) + ε)``. It takes a
        much smaller ``learning_rate`` than SGD (0.001 is usual). ``l2`` is
        then decoupled weight decay, as in AdamW: the same factor
        ``1 − η·λ/n`` scales the weights before each step, apart from the
        gradient, so Adam's scaling does not weaken it where gradients are large.
    betas : pair of float
        Adam's (β1, β2), each in [0, 1); PyTorch's default (0.9, 0.999).
    eps : float
        Adam's ε > 0, added to the root in the denominator; 1e-8 as in PyTorch.
    dropout : float
        p in [0, 1): in training, each hidden unit's output is dropped (set to 0)
        with probability p for each example, and the kept ones are scaled by
        1/(1 − p) (inverted dropout), so :meth:`forward` and :meth:`predict`
        use the whole network unscaled. The masks come from a counter-based
        generator keyed once per epoch by the trainer's random generator: a
        seed fixes them, and they do not depend on the threads (see
        :mod:`fastmlp.reference`, rule 11). Needs a hidden layer.
    init : {"standard", "scaled"}
        Initial weights drawn from N(0, 1) (the classic network) or from
        N(0, 1/n_in), n_in the inputs of the neuron, which keeps large layers
        out of saturation. Biases are N(0, 1) either way.
    schedule : None, "constant" or StepDecay
        How the learning rate changes from epoch to epoch: constant, or
        :class:`StepDecay`.
    seed : int or numpy.random.SeedSequence, optional
        Seeds ``np.random.default_rng``, which draws the initial parameters and
        every epoch's shuffle. ``None`` seeds from the operating system.
    dtype : {"float64", "float32"}
        The floating-point type of the parameters and of all arithmetic.
    threads : int
        Threads for the compiled kernels, at most 256. Results do not depend
        on it. Mini-batches under 32 examples run on one thread, whatever it
        says; more threads than cores only slow training down.
    fma : bool
        The fused arithmetic contract: every multiply-add of the weighted
        sums, the delta recursion, the gradient sums and the step is one
        fused multiply-add, rounded once (see :mod:`fastmlp.reference`).
        Faster on CPUs whose additions run on their FMA units (Intel, ARM),
        several times slower where the kernels have no FMA instruction
        (``build_info()["fma_in_hardware"]`` is False);
        a different result from ``fma=False``, but the same bits on every
        CPU and in :class:`~fastmlp.reference.ReferenceTrainer`.

    Notes
    -----
    Thread safety: the compiled kernels run without the GIL, so trainers in
    different Python threads train at the same time. One trainer used from
    several threads at once serialises them: ``fit``, ``forward``,
    ``predict``, ``score``, ``gradients`` and ``save`` each wait until the
    trainer is free. (A callback may call them from inside ``fit``, on the
    same thread; a callback that waits for another thread that uses the
    trainer would wait forever.)

    Attributes
    ----------
    weights : list of ndarray
        ``weights[l]`` has shape ``(layer_sizes[l + 1], layer_sizes[l])``;
        ``weights[l][j, k]`` connects neuron k of one layer to neuron j of the next.
    biases : list of ndarray
        ``biases[l]`` has shape ``(layer_sizes[l + 1],)``.
    """

    layer_sizes: tuple[int, ...]
    activation: str
    cost: str
    output_activation: str
    optimizer: str
    betas: tuple[float, float]
    eps: float
    nesterov: bool
    dropout: float
    dtype: np.dtype[Any]
    learning_rate: float
    batch_size: int
    l2: float
    momentum: float
    init: str
    schedule: StepDecay | None
    threads: int
    fma: bool
    seed: int | np.random.SeedSequence | None
    history: History
    dataset: str | None

    if TYPE_CHECKING:
        # Each trainer keeps its parameters its own way and exposes them as these properties.
        @property
        def weights(self) -> list[FloatArray]: ...
        @property
        def biases(self) -> list[FloatArray]: ...

    def __init__(
        self,
        layer_sizes: Iterable[int],
        *,
        activation: str = "sigmoid",
        cost: str = "quadratic",
        output_activation: str | None = None,
        learning_rate: float = 3.0,
        batch_size: int = 10,
        l2: float = 0.0,
        momentum: float = 0.0,
        nesterov: bool = False,
        optimizer: str = "sgd",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        dropout: float = 0.0,
        init: str = "standard",
        schedule: StepDecay | str | None = None,
        seed: int | np.random.SeedSequence | None = None,
        dtype: DTypeLike = "float64",
        threads: int = 1,
        fma: bool = False,
    ) -> None:
        self.layer_sizes = _check_layer_sizes(layer_sizes)
        self.activation = _check_activation(activation)
        self.cost = _check_choice("cost", cost, tuple(COSTS))
        if self.cost == "log_likelihood" and self.layer_sizes[-1] < 2:
            raise ValueError("cost='log_likelihood' needs at least 2 output neurons: a softmax of one is always 1")
        self.output_activation = _check_output_activation(output_activation, self.cost, self.activation)
        self.dtype = _check_dtype(dtype)
        self.learning_rate = _check_learning_rate(learning_rate, self.dtype)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.l2 = _check_real("l2", l2, 0.0)
        self.momentum = _check_real("momentum", momentum, 0.0, 1.0, high_open=True)
        if self.dtype.type(self.momentum) >= 1:
            raise ValueError(f"momentum {self.momentum} is 1.0 in {self.dtype.name}: the velocities would never "
                             f"decay; it must be < 1 there")
        self.nesterov = _check_bool("nesterov", nesterov)
        if self.nesterov and not self.momentum:
            raise ValueError("nesterov=True needs momentum > 0: it looks ahead along the velocity")
        self.optimizer = _check_choice("optimizer", optimizer, OPTIMIZERS)
        if self.optimizer == "adam" and self.momentum:
            raise ValueError("momentum belongs to optimizer='sgd'; Adam has its own, betas[0]")
        self.betas = _check_betas(betas, self.dtype)
        self.eps = _check_real("eps", eps, 0.0)
        if not self.dtype.type(self.eps) > 0:
            raise ValueError(f"eps must be > 0 in {self.dtype.name}, got {self.eps}")
        self.dropout = _check_real("dropout", dropout, 0.0, 1.0, high_open=True)
        if self.dropout and len(self.layer_sizes) < 3:
            raise ValueError("dropout acts on hidden layers, and this network has none")
        self.init = _check_choice("init", init, INITS)
        self.schedule = _check_schedule(schedule)
        self.threads = _check_int("threads", threads, 1)
        if self.threads > MAX_THREADS:
            raise ValueError(f"threads must be <= {MAX_THREADS}, got {self.threads}")
        self.fma = _check_bool("fma", fma)
        self.seed = _check_seed(seed)
        _check_parameter_memory(self.layer_sizes, self.dtype, self._slot_count())
        # One caller at a time: fit, forward, gradients and save hold it (see the class docstring).
        self._lock = threading.RLock()
        self._rng = np.random.default_rng(seed)
        self.history = History()  # every epoch this trainer has trained, over all fit calls
        self.dataset = None  # what it is trained on, if the caller says: kept in saved models
        self._set_parameters(*self._initial_parameters())
        self._reset_optimizer()

    def _slot_count(self):
        """Arrays shaped like the parameters that the optimizer keeps: Adam's two moments, the
        velocity of momentum, or none."""
        return 2 if self.optimizer == "adam" else 1 if self.momentum else 0

    def _reset_optimizer(self):
        """The optimizer's state as before the first step: zero velocities or moments, and
        Adam's powers β1^t, β2^t at t = 0."""
        zeros = [np.zeros_like(w) for w in self.weights], [np.zeros_like(b) for b in self.biases]
        self._set_slots([zeros] * self._slot_count())
        self._adam_powers = np.ones(2)

    def _output_named(self):
        """Whether the output activation is not the one the cost gives when none is named."""
        return self.output_activation != _cost_output(self.cost, self.activation)

    # -- the parts each trainer supplies -----------------------------------

    def _set_parameters(self, weights, biases):
        raise NotImplementedError

    def _set_slots(self, slots):
        """Set the optimizer's state arrays: a ``(weights, biases)`` pair of lists, shaped like the
        parameters, per slot (see _slot_count)."""
        raise NotImplementedError

    def _slots(self):
        """The optimizer's state arrays, a ``(weights, biases)`` pair of lists per slot, live."""
        raise NotImplementedError

    def _epoch_buffers(self, n_samples):
        """Whatever _train_slice needs for an epoch over n_samples examples."""
        return None

    def _train_slice(self, X, Y, perm, cost_sum, buffers, rate, first, last):
        """SGD over whole mini-batches in the order of ``perm``, with the epoch's :class:`_Rate`;
        returns ``cost_sum`` plus their examples' costs e_x, added one at a time in float64.
        ``first`` and ``last`` say whether the slice begins and ends the epoch: in between, the
        parameters may be held in the buffers rather than in the attributes."""
        raise NotImplementedError

    def _forward(self, X):
        raise NotImplementedError

    def _gradients(self, X, Y):
        raise NotImplementedError

    # -- shared ------------------------------------------------------------

    def _initial_parameters(self):
        """Standard normal weights and biases, as in the classic network (weights / √n_in when scaled).

        Drawn in float64, layer by layer (weights, then biases), and rounded
        to the trainer's dtype, so a float32 trainer starts from the rounded
        values of the float64 one with the same seed.
        """
        weights, biases = [], []
        for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            W = self._rng.standard_normal((n_out, n_in))
            if self.init == "scaled":
                W /= np.sqrt(float(n_in))
            weights.append(W.astype(self.dtype))
            biases.append(self._rng.standard_normal(n_out).astype(self.dtype))
        return weights, biases

    def _rate(self, epoch, n_samples):
        """The learning rate and weight decay of ``epoch`` (1-based) over n_samples examples."""
        eta = self.learning_rate if self.schedule is None else self.schedule(self.learning_rate, epoch)
        with np.errstate(over="ignore", under="ignore"):
            rounded = self.dtype.type(eta)
        if not (np.isfinite(rounded) and rounded > 0):
            raise ValueError(f"the schedule gives epoch {epoch} the learning rate {eta}, which is "
                             f"{rounded} in {self.dtype.name}; it must be finite and > 0 there")
        decay = 1.0 - eta * self.l2 / n_samples
        if not self.dtype.type(decay) > 0:
            raise ValueError(
                f"l2={self.l2} is too strong for learning_rate={eta} and {n_samples} examples: the weight "
                f"decay factor 1 - learning_rate*l2/n = {decay} must be > 0; use a smaller l2"
            )
        return _Rate(eta, decay)

    def _train_epoch(self, X, Y, perm, rate, buffers):
        """One epoch of SGD in the order of ``perm`` with the work buffers of _epoch_buffers;
        returns Σ_x e_x.

        The epoch goes in slices of whole mini-batches, each about SLICE_WORK
        multiply-adds, so that a KeyboardInterrupt arrives between two slices.
        """
        sizes = self.layer_sizes
        per_example = 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        batches = max(1, SLICE_WORK // (per_example * self.batch_size))
        length = batches * self.batch_size
        cost_sum = 0.0
        for start in range(0, len(perm), length):
            cost_sum = self._train_slice(
                X, Y, perm[start : start + length], cost_sum, buffers, rate, start == 0, start + length >= len(perm)
            )
        return cost_sum

    def _check_X(self, X: ArrayLike, name: str = "X") -> FloatArray:
        arr = _as_real_array(name, X)
        n_in = self.layer_sizes[0]
        if arr.ndim != 2 or arr.shape[1] != n_in:
            raise ValueError(f"{name} must have shape (n_samples, {n_in}), got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"{name} holds no samples (shape {arr.shape})")
        return self._converted(arr, name)

    def _converted(self, arr, name):
        """``arr`` as a C-ordered array of the trainer's dtype, refusing NaN, ±inf and values beyond its range."""
        with np.errstate(over="ignore"):  # values beyond float32's range become inf, reported below
            converted = np.ascontiguousarray(arr, dtype=self.dtype)
        if not _all_finite(converted):
            if converted is not arr and _all_finite(arr):
                raise ValueError(f"{name} holds values beyond the range of {self.dtype.name}")
            raise ValueError(f"{name} contains NaN or infinite values")
        return converted

    def _check_targets(self, y, n_samples, name="y"):
        """Labels (1-D integers) become one-hot rows; float targets are checked and converted."""
        arr = _as_real_array(name, y)
        n_out = self.layer_sizes[-1]
        if arr.ndim == 1:
            labels = self._check_labels(arr, n_samples, name)
            Y = np.zeros((n_samples, n_out), dtype=self.dtype)
            Y[np.arange(n_samples), labels] = 1
            return Y
        if arr.ndim != 2 or arr.shape != (n_samples, n_out):
            raise ValueError(
                f"{name} must be labels of shape ({n_samples},) or targets of shape ({n_samples}, {n_out}), "
                f"got shape {arr.shape}"
            )
        Y = self._converted(arr, name)
        # δ^L = a − y is the gradient of these costs only for targets of their kind.
        if self.cost != "quadratic" and (Y.min() < 0 or Y.max() > 1):
            raise ValueError(f"{name}: with cost={self.cost!r}, targets must lie in [0, 1], "
                             f"got values from {Y.min()} to {Y.max()}")
        if self.cost == "log_likelihood":
            worst = float(np.abs(Y.sum(axis=1, dtype=np.float64) - 1).max())
            if worst > np.sqrt(np.finfo(self.dtype).eps):
                raise ValueError(f"{name}: with cost='log_likelihood', each row of targets must be a "
                                 f"probability distribution summing to 1; a row sums to 1 {worst:+.3g} off")
        return Y

    def _check_labels(self, arr, n_samples, name="y"):
        n_out = self.layer_sizes[-1]
        if arr.ndim != 1 or arr.shape[0] != n_samples:
            raise ValueError(f"{name} must be labels of shape ({n_samples},), got shape {arr.shape}")
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name}: labels must have an integer dtype, got {arr.dtype}")
        if arr.min() < 0 or arr.max() >= n_out:
            raise ValueError(f"{name}: labels must lie in [0, {n_out - 1}], got values from {arr.min()} to {arr.max()}")
        return arr.astype(np.intp, copy=False)

    def _check_validation_data(self, validation_data):
        if validation_data is None:
            return None
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        X_val = self._check_X(validation_data[0], "validation_data[0]")
        y_val = _as_real_array("validation_data[1]", validation_data[1])
        return X_val, self._labels_of(y_val, len(X_val), "validation_data[1]")

    def _labels_of(self, y, n_samples, name):
        """Labels from either labels or a target matrix (its argmax per row)."""
        if y.ndim == 2:
            return np.argmax(self._check_targets(y, n_samples, name), axis=1)
        return self._check_labels(y, n_samples, name)

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        epochs: int = 1,
        *,
        validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        callbacks: Callable[[EpochRecord], object] | Iterable[Callable[[EpochRecord], object]] = (),
        early_stopping: int | None = None,
    ) -> History:
        """Train by mini-batch SGD for ``epochs`` passes over ``(X, y)``.

        ``X`` has shape ``(n_samples, layer_sizes[0])``. ``y`` holds either
        integer class labels in ``[0, layer_sizes[-1])``, from which one-hot
        targets are built, or a float target matrix of shape
        ``(n_samples, layer_sizes[-1])``. Each epoch visits the examples in
        the order of a fresh permutation from the trainer's generator.

        Returns a :class:`History` with each epoch's training cost, seconds,
        and accuracy on ``validation_data=(X_val, y_val)`` when given.
        ``callbacks`` is a callable or a sequence of them; each is called with
        every epoch's :class:`EpochRecord`, and one returning ``False`` stops
        training after that epoch.

        ``early_stopping=p`` (an int ≥ 1, with ``validation_data``) stops
        when the validation accuracy has not beaten its best for p epochs,
        and at the end of ``fit`` goes back to the parameters (and momentum
        velocities) of the best epoch of this call, named by the history's
        ``best_epoch``. The generator goes on, so a later ``fit`` shuffles afresh.

        Raises :class:`DivergenceError` if the cost or a parameter stops being
        finite; the parameters of the last good epoch are kept.

        Interrupting (Ctrl-C, KeyboardInterrupt) takes effect within a
        fraction of a second, between two slices of mini-batches. The trainer
        then goes back to where the interrupted epoch began, parameters and
        random generator both, so it is exactly as after the last completed
        epoch (recorded in :attr:`history`), and a later ``fit`` continues as
        if the interrupted epoch had never started.
        """
        with self._lock:
            return self._fit(X, y, epochs, validation_data, callbacks, early_stopping)

    def _fit(self, X, y, epochs, validation_data, callbacks, early_stopping):
        X = self._check_X(X)
        Y = self._check_targets(y, len(X))
        epochs = _check_int("epochs", epochs, 0)
        validation = self._check_validation_data(validation_data)
        if callable(callbacks):
            callbacks = [callbacks]
        elif isinstance(callbacks, (list, tuple)):
            callbacks = list(callbacks)
        else:
            raise TypeError(f"callbacks must be a callable or a list or tuple of them, got {callbacks!r}")
        for i, callback in enumerate(callbacks):
            if not callable(callback):
                raise TypeError(f"callbacks[{i}] must be callable, got {callback!r}")
        if early_stopping is not None:
            early_stopping = _check_int("early_stopping", early_stopping, 1)
            if validation is None:
                raise ValueError("early_stopping needs validation_data=(X_val, y_val) to watch")
        history = History()
        stalled = False  # warned, in this call
        best = None  # early stopping: (accuracy, epoch, state)
        buffers = self._epoch_buffers(len(X)) if epochs else None  # allocated once per fit
        for _ in range(epochs):
            epoch = len(self.history) + 1
            rate = self._rate(epoch, len(X))
            saved = self._training_state()
            # Each layer l's alive[l - 1] becomes 1 once a unit's derivative is not 0; the output
            # layer is not looked at where its derivative does not reach the nudges.
            # A row per thread: the kernels' threads each note their own.
            self._alive = np.zeros((self.threads, len(self.layer_sizes) - 1), dtype=np.intp)
            self._alive[:, -1] = not self._output_slope_counts()
            start = time.perf_counter()
            try:
                perm = self._rng.permutation(len(X))
                if self.dropout:  # the key of the epoch's masks, after the permutation (contract 11)
                    rate = rate._replace(dropout_key=int(self._rng.integers(0, 2**64, dtype=np.uint64)))
                # Divergence is reported once, below, rather than as NumPy warnings.
                with np.errstate(over="ignore", invalid="ignore"):
                    cost_sum = self._train_epoch(X, Y, perm, rate, buffers)
                seconds = time.perf_counter() - start
                train_cost = cost_sum / ((2 if self.cost == "quadratic" else 1) * len(X))
                if not (np.isfinite(train_cost) and self._parameters_finite()):
                    raise DivergenceError(
                        f"training diverged in epoch {epoch}: the cost or a parameter is no longer finite "
                        f"(learning_rate={rate.learning_rate}); try a smaller learning rate, or inputs "
                        f"of smaller magnitude. The parameters of the previous epoch were kept.",
                        history,
                    )
                record = EpochRecord(epoch=epoch, train_cost=train_cost, seconds=seconds)
                if validation is not None:
                    record.validation_accuracy = self._accuracy(*validation)
            except BaseException:
                # Divergence, or KeyboardInterrupt above all, before the epoch is recorded:
                # back to the last whole epoch, parameters, velocities and generator.
                self._restore_training_state(saved)
                raise
            history.epochs.append(record)
            self.history.epochs.append(record)
            answers = [callback(record) for callback in callbacks]  # every callback hears every epoch
            if not stalled:  # after the callbacks, so that a report of the epoch comes first
                stalled = self._warn_if_stalled(epoch, rate)
            # NumPy's False (from a comparison) stops training as Python's does.
            stop = any(isinstance(answer, (bool, np.bool_)) and not answer for answer in answers)
            if early_stopping is not None:
                if best is None or record.validation_accuracy > best[0]:
                    best = (record.validation_accuracy, epoch, self._training_state(generator=False))
                elif epoch - best[1] >= early_stopping:
                    stop = True
            if stop:
                break
        if best is not None:
            history.best_epoch = best[1]
            if best[1] != len(self.history):
                self._restore_training_state(best[2])
        return history

    def _warn_if_stalled(self, epoch, rate):
        """Warn (TrainingStalledWarning) if a layer was inactive over the epoch just trained (the
        output layer only where _output_slope_counts); returns whether it did."""
        last = len(self.layer_sizes) - 1
        dead = [
            f"{'the output layer' if l == last else f'hidden layer {l}'} ({self.layer_sizes[l]} "
            f"{self.output_activation if l == last else self.activation} units)"
            for l in range(1, last + 1) if not self._alive[:, l - 1].any()
        ]
        if not dead:
            return False
        warnings.warn(TrainingStalledWarning(
            f"training has stalled: in epoch {epoch}, {' and '.join(dead)} "
            f"{'were' if len(dead) > 1 else 'was'} inactive for every example (every unit's derivative 0), so no "
            f"gradient reaches the layers below; try a smaller learning rate than {rate.learning_rate:g}"
        ), stacklevel=4)
        return True

    def _output_slope_counts(self):
        """Whether the output layer's derivative is a factor of δ^L: with the quadratic cost, over
        an output layer that is not linear."""
        return self.cost == "quadratic" and self.output_activation != "identity"

    def _training_state(self, generator=True):
        """What training changes: parameters, the optimizer's state and (unless told not to) the generator."""
        slots = [tuple([v.copy() for v in part] for part in slot) for slot in self._slots()]
        optimizer = slots, self._adam_powers.copy()
        return self._copy_parameters(), optimizer, self._rng.bit_generator.state if generator else None

    def _restore_training_state(self, state):
        parameters, (slots, powers), generator_state = state
        self._set_parameters(*parameters)
        self._set_slots(slots)
        self._adam_powers = powers.copy()
        if generator_state is not None:
            self._rng.bit_generator.state = generator_state

    def save(self, path: StrPath) -> None:
        """Save the model to ``path``, atomically, in the ``.npz`` format of :mod:`fastmlp.model_file`."""
        with self._lock:
            model_file.save(self, path)

    @classmethod
    def load(cls: type[_Trainer], path: StrPath) -> _Trainer:
        """A trainer with the architecture, settings, parameters and history saved in ``path``.

        Raises :class:`fastmlp.ModelFileError` for a missing, corrupt or
        incompatible file. The loaded trainer predicts exactly as the saved
        one did, and trains on exactly as it would have: the arithmetic
        contract (``fma``), the optimizer's state (momentum's velocities,
        Adam's moments and step count) and the random generator's state are
        restored too. (A version 1 file holds neither
        velocities nor generator; training then shuffles from a fresh
        generator.)
        """
        settings, weights, biases, history, dataset, state = model_file.read(path)
        try:
            trainer = cls(settings.pop("layer_sizes"), **settings)
            if state["generator"] is not None:
                trainer._rng.bit_generator.state = state["generator"]
        except (TypeError, ValueError, KeyError) as exc:
            raise model_file.ModelFileError(f"{os.fspath(path)}: {exc}") from exc
        trainer._set_parameters(weights, biases)
        if state["slots"] is not None:
            trainer._set_slots(state["slots"])
        if state["adam_powers"] is not None:
            trainer._adam_powers = state["adam_powers"]
        train_cost, validation, seconds = history
        for epoch, (cost, accuracy, secs) in enumerate(zip(train_cost, validation, seconds), 1):
            accuracy = None if np.isnan(accuracy) else float(accuracy)
            trainer.history.epochs.append(EpochRecord(epoch, float(cost), float(secs), accuracy))
        trainer.dataset = dataset
        return trainer

    def forward(self, X: ArrayLike) -> FloatArray:
        """Output activations, shape ``(n_samples, layer_sizes[-1])``."""
        X = self._check_X(X)
        with self._lock:
            return self._outputs(X)

    def predict(self, X: ArrayLike) -> NDArray[np.intp]:
        """The index of the most active output neuron for each sample (first one on ties)."""
        return np.argmax(self.forward(X), axis=1)

    def score(self, X: ArrayLike, y: ArrayLike) -> float:
        """Fraction of samples whose prediction equals ``y`` (labels, or the argmax of a target matrix)."""
        X = self._check_X(X)
        labels = self._labels_of(_as_real_array("y", y), len(X), "y")
        with self._lock:
            return self._accuracy(X, labels)

    def _outputs(self, X):
        """_forward on checked inputs; overflow gives inf as IEEE says, silently, in both trainers."""
        with np.errstate(over="ignore", invalid="ignore"):
            return self._forward(X)

    def _accuracy(self, X, labels):
        return float(np.mean(np.argmax(self._outputs(X), axis=1) == labels))

    def gradients(self, X: ArrayLike, y: ArrayLike) -> tuple[list[FloatArray], list[FloatArray]]:
        """The gradient of the mean cost over ``(X, y)`` taken as one mini-batch.

        This is the average over the examples of how each wants to nudge
        every weight and bias, ``(1/m)·Σ_x ∂C_x/∂w``, computed by backprop
        without changing the parameters. Returns ``(grad_weights,
        grad_biases)``, lists shaped like :attr:`weights` and :attr:`biases`.
        It is the gradient of the cost alone: the L2 decay and the momentum
        act in the step, not here.
        """
        X = self._check_X(X)
        Y = self._check_targets(y, len(X))
        with self._lock, np.errstate(over="ignore", invalid="ignore"):
            return self._gradients(X, Y)

    def __getstate__(self) -> dict[str, Any]:
        # A snapshot taken while no other thread trains the trainer; the lock
        # itself cannot be pickled, and the copy gets its own.
        with self._lock:
            return {name: copy.deepcopy(value) for name, value in self.__dict__.items() if name != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def _copy_parameters(self):
        return [w.copy() for w in self.weights], [b.copy() for b in self.biases]

    def _parameters_finite(self):
        return all(np.isfinite(p).all() for p in (*self.weights, *self.biases))

    def __repr__(self) -> str:
        # The options after activation are shown only when not at their defaults.
        extra = "".join(
            f", {name}={value!r}"
            for name, value, default in (
                ("cost", self.cost, "quadratic"),
                ("output_activation", self.output_activation, _cost_output(self.cost, self.activation)),
                ("l2", self.l2, 0.0), ("momentum", self.momentum, 0.0), ("nesterov", self.nesterov, False),
                ("optimizer", self.optimizer, "sgd"), ("betas", self.betas, (0.9, 0.999)), ("eps", self.eps, 1e-8),
                ("dropout", self.dropout, 0.0),
                ("init", self.init, "standard"), ("schedule", self.schedule, None), ("fma", self.fma, False),
            )
            if value != default
        )
        return (
            f"{type(self).__name__}({self.layer_sizes!r}, activation={self.activation!r}{extra}, "
            f"learning_rate={self.learning_rate!r}, batch_size={self.batch_size!r}, seed={self.seed!r}, "
            f"dtype={self.dtype.name!r}, threads={self.threads!r})"
        )
