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
from dataclasses import asdict, dataclass, field

import numpy as np

from . import model_file

ACTIVATIONS = ("sigmoid", "relu")
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
    train_cost: float  #: mean quadratic cost over the epoch's examples, each taken before its step.
    seconds: float  #: wall time of the epoch's training, without validation.
    validation_accuracy: float | None = None  #: fraction right on ``validation_data``.


@dataclass
class History:
    """The records of one :meth:`BaseTrainer.fit` call, an :class:`EpochRecord` per epoch."""

    epochs: list[EpochRecord] = field(default_factory=list)

    @property
    def train_cost(self) -> list[float]:
        return [r.train_cost for r in self.epochs]

    @property
    def validation_accuracy(self) -> list[float | None]:
        return [r.validation_accuracy for r in self.epochs]

    @property
    def seconds(self) -> list[float]:
        return [r.seconds for r in self.epochs]

    def as_dicts(self) -> list[dict]:
        """The records as plain dictionaries, ready for ``json.dumps``."""
        return [asdict(r) for r in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)


class DivergenceError(FloatingPointError):
    """Training produced a non-finite cost or parameter.

    The trainer is left with the parameters of the last completed epoch
    whose cost and parameters were finite. ``history`` holds the records of
    the epochs of that ``fit`` call that completed before it.
    """

    def __init__(self, message, history=None):
        super().__init__(message)
        self.history = history


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


def _check_parameter_memory(sizes, dtype):
    """Refuse, before allocating anything, a network whose parameters cannot fit in memory."""
    count = sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    needed = count * dtype.itemsize
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        available = 2**63
    # The parameters are drawn in float64, and training holds a gradient of the same size.
    training = count * 8 + 2 * needed
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
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}, got {activation!r}")
    return activation


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


class BaseTrainer:
    """A fully connected network trained by mini-batch SGD on the quadratic cost.

    Parameters
    ----------
    layer_sizes : sequence of int
        Neurons per layer, input first: ``(784, 16, 16, 10)`` is the network
        of the classic MNIST picture.
    activation : {"sigmoid", "relu"}
        The activation of every layer, the output layer included.
    learning_rate : float
        η in the step ``w ← w − (η/m)·Σ ∂C_x/∂w`` over a mini-batch of m examples.
    batch_size : int
        Examples per mini-batch. The last mini-batch of an epoch holds the
        remainder; a batch size above the number of examples makes one batch.
    seed : int or numpy.random.SeedSequence, optional
        Seeds ``np.random.default_rng``, which draws the initial parameters and
        every epoch's shuffle. ``None`` seeds from the operating system.
    dtype : {"float64", "float32"}
        The floating-point type of the parameters and of all arithmetic.
    threads : int
        Threads for the compiled kernels, at most 256. Results do not depend
        on it. Mini-batches under 32 examples run on one thread, whatever it
        says; more threads than cores only slow training down.

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

    def __init__(
        self,
        layer_sizes,
        *,
        activation="sigmoid",
        learning_rate=3.0,
        batch_size=10,
        seed=None,
        dtype="float64",
        threads=1,
    ):
        self.layer_sizes = _check_layer_sizes(layer_sizes)
        self.activation = _check_activation(activation)
        self.dtype = _check_dtype(dtype)
        self.learning_rate = _check_learning_rate(learning_rate, self.dtype)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.threads = _check_int("threads", threads, 1)
        if self.threads > MAX_THREADS:
            raise ValueError(f"threads must be <= {MAX_THREADS}, got {self.threads}")
        self.seed = _check_seed(seed)
        _check_parameter_memory(self.layer_sizes, self.dtype)
        # One caller at a time: fit, forward, gradients and save hold it (see the class docstring).
        self._lock = threading.RLock()
        self._rng = np.random.default_rng(seed)
        self.history = History()  # every epoch this trainer has trained, over all fit calls
        self.dataset = None  # what it is trained on, if the caller says: kept in saved models
        self._set_parameters(*self._initial_parameters())

    # -- the parts each trainer supplies -----------------------------------

    def _set_parameters(self, weights, biases):
        raise NotImplementedError

    def _epoch_buffers(self, n_samples):
        """Whatever _train_slice needs for an epoch over n_samples examples."""
        return None

    def _train_slice(self, X, Y, perm, cost_sum, buffers):
        """SGD over whole mini-batches in the order of ``perm``; returns ``cost_sum`` plus their
        Σ_x Σ_j (a_j − y_j)², added one example at a time in float64."""
        raise NotImplementedError

    def _forward(self, X):
        raise NotImplementedError

    def _gradients(self, X, Y):
        raise NotImplementedError

    # -- shared ------------------------------------------------------------

    def _initial_parameters(self):
        """Standard normal weights and biases, as in the classic network.

        Drawn in float64, layer by layer (weights, then biases), and rounded
        to the trainer's dtype, so a float32 trainer starts from the rounded
        values of the float64 one with the same seed.
        """
        weights, biases = [], []
        for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            weights.append(self._rng.standard_normal((n_out, n_in)).astype(self.dtype))
            biases.append(self._rng.standard_normal(n_out).astype(self.dtype))
        return weights, biases

    def _train_epoch(self, X, Y, perm):
        """One epoch of SGD in the order of ``perm``; returns Σ_x Σ_j (a_j − y_j)².

        The epoch goes in slices of whole mini-batches, each about SLICE_WORK
        multiply-adds, so that a KeyboardInterrupt arrives between two slices.
        """
        sizes = self.layer_sizes
        per_example = 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        batches = max(1, SLICE_WORK // (per_example * self.batch_size))
        length = batches * self.batch_size
        buffers = self._epoch_buffers(len(X))
        cost_sum = 0.0
        for start in range(0, len(perm), length):
            cost_sum = self._train_slice(X, Y, perm[start : start + length], cost_sum, buffers)
        return cost_sum

    def _check_X(self, X, name="X"):
        arr = _as_real_array(name, X)
        n_in = self.layer_sizes[0]
        if arr.ndim != 2 or arr.shape[1] != n_in:
            raise ValueError(f"{name} must have shape (n_samples, {n_in}), got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"{name} holds no samples (shape {arr.shape})")
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        if not _all_finite(arr):
            raise ValueError(f"{name} contains NaN or infinite values")
        return arr

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
        Y = np.ascontiguousarray(arr, dtype=self.dtype)
        if not _all_finite(Y):
            raise ValueError(f"{name} contains NaN or infinite values")
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

    def fit(self, X, y, epochs=1, *, validation_data=None, callbacks=()):
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
            return self._fit(X, y, epochs, validation_data, callbacks)

    def _fit(self, X, y, epochs, validation_data, callbacks):
        X = self._check_X(X)
        Y = self._check_targets(y, len(X))
        epochs = _check_int("epochs", epochs, 0)
        validation = self._check_validation_data(validation_data)
        callbacks = [callbacks] if callable(callbacks) else list(callbacks)
        for i, callback in enumerate(callbacks):
            if not callable(callback):
                raise TypeError(f"callbacks[{i}] must be callable, got {callback!r}")
        history = History()
        for _ in range(epochs):
            saved = self._copy_parameters()
            generator_state = self._rng.bit_generator.state
            start = time.perf_counter()
            try:
                perm = self._rng.permutation(len(X))
                # Divergence is reported once, below, rather than as NumPy warnings.
                with np.errstate(over="ignore", invalid="ignore"):
                    cost_sum = self._train_epoch(X, Y, perm)
                seconds = time.perf_counter() - start
                epoch = len(self.history) + 1
                train_cost = cost_sum / (2 * len(X))
                if not (np.isfinite(train_cost) and self._parameters_finite()):
                    raise DivergenceError(
                        f"training diverged in epoch {epoch}: the cost or a parameter is no longer finite "
                        f"(learning_rate={self.learning_rate}); try a smaller learning rate, or inputs "
                        f"of smaller magnitude. The parameters of the previous epoch were kept.",
                        history,
                    )
                record = EpochRecord(epoch=epoch, train_cost=train_cost, seconds=seconds)
                if validation is not None:
                    record.validation_accuracy = self._accuracy(*validation)
            except BaseException:
                # Divergence, or KeyboardInterrupt above all, before the epoch is recorded:
                # back to the last whole epoch, parameters and generator both.
                self._set_parameters(*saved)
                self._rng.bit_generator.state = generator_state
                raise
            history.epochs.append(record)
            self.history.epochs.append(record)
            answers = [callback(record) for callback in callbacks]  # every callback hears every epoch
            if any(answer is False for answer in answers):
                break
        return history

    def save(self, path):
        """Save the model to ``path``, atomically, in the ``.npz`` format of :mod:`fastmlp.model_file`."""
        with self._lock:
            model_file.save(self, path)

    @classmethod
    def load(cls, path):
        """A trainer with the architecture, parameters and history saved in ``path``.

        Raises :class:`fastmlp.ModelFileError` for a missing, corrupt or
        incompatible file. The loaded trainer predicts exactly as the saved
        one did; further training draws its shuffles from a fresh generator.
        """
        settings, weights, biases, history, dataset = model_file.read(path)
        try:
            trainer = cls(settings.pop("layer_sizes"), **settings)
        except (TypeError, ValueError) as exc:
            raise model_file.ModelFileError(f"{os.fspath(path)}: {exc}") from exc
        trainer._set_parameters(weights, biases)
        train_cost, validation, seconds = history
        for epoch, (cost, accuracy, secs) in enumerate(zip(train_cost, validation, seconds), 1):
            accuracy = None if np.isnan(accuracy) else float(accuracy)
            trainer.history.epochs.append(EpochRecord(epoch, float(cost), float(secs), accuracy))
        trainer.dataset = dataset
        return trainer

    def forward(self, X):
        """Output activations, shape ``(n_samples, layer_sizes[-1])``."""
        X = self._check_X(X)
        with self._lock:
            return self._outputs(X)

    def predict(self, X):
        """The index of the most active output neuron for each sample (first one on ties)."""
        return np.argmax(self.forward(X), axis=1)

    def score(self, X, y):
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

    def gradients(self, X, y):
        """The gradient of the mean cost over ``(X, y)`` taken as one mini-batch.

        This is the average over the examples of how each wants to nudge
        every weight and bias, ``(1/m)·Σ_x ∂C_x/∂w``, computed by backprop
        without changing the parameters. Returns ``(grad_weights,
        grad_biases)``, lists shaped like :attr:`weights` and :attr:`biases`.
        """
        X = self._check_X(X)
        Y = self._check_targets(y, len(X))
        with self._lock, np.errstate(over="ignore", invalid="ignore"):
            return self._gradients(X, Y)

    def __getstate__(self):
        # A snapshot taken while no other thread trains the trainer; the lock
        # itself cannot be pickled, and the copy gets its own.
        with self._lock:
            return {name: copy.deepcopy(value) for name, value in self.__dict__.items() if name != "_lock"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def _copy_parameters(self):
        return [w.copy() for w in self.weights], [b.copy() for b in self.biases]

    def _parameters_finite(self):
        return all(np.isfinite(p).all() for p in (*self.weights, *self.biases))

    def __repr__(self):
        return (
            f"{type(self).__name__}({self.layer_sizes!r}, activation={self.activation!r}, "
            f"learning_rate={self.learning_rate!r}, batch_size={self.batch_size!r}, seed={self.seed!r}, "
            f"dtype={self.dtype.name!r}, threads={self.threads!r})"
        )
