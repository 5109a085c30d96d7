"""Saved models: a documented ``.npz`` file, written atomically, read with full checks.

The file is a NumPy ``.npz`` archive (no pickled objects) holding:

==========================  ===========================================================
``format``                  the string ``"fastmlp-model"``
``format_version``          4 with a setting that version 3 lacks (``output_activation``, ``optimizer``, ``nesterov``, ``dropout``), else 3 when ``fma`` is True, else 2 (version 1 files, without the training state below, are read too)
``layer_sizes``             int64 array, input first
``activation``              ``"sigmoid"``, ``"relu"`` or ``"tanh"``
``cost``                    ``"quadratic"``, ``"cross_entropy"`` or ``"log_likelihood"``
``output_activation``       optional string, where it is not the cost's own (version 4)
``dtype``                   ``"float64"`` or ``"float32"``
``learning_rate``           float64 scalar
``batch_size``              int64 scalar
``l2``, ``momentum``        float64 scalars
``nesterov``                optional bool scalar, where True (version 4)
``dropout``                 optional float64 scalar, where not 0 (version 4)
``optimizer``               optional string, where not ``"sgd"`` (version 4), with
``betas``, ``eps``          float64 pair and scalar: Adam's
``init``                    ``"standard"`` or ``"scaled"``
``fma``                     bool scalar: the arithmetic contract; False where absent (files from before it)
``schedule``                optional float64 pair ``(every, factor)`` of a StepDecay
``seed``                    optional int64 scalar: the seed given, when it was an int
``generator``               JSON text: the state of the trainer's random generator
``epochs``                  int64 scalar: epochs trained
``weights_<l>``             layer l's weights, shape ``(layer_sizes[l+1], layer_sizes[l])``, of ``dtype``
``biases_<l>``              layer l's biases, shape ``(layer_sizes[l+1],)``, of ``dtype``
``velocity_weights_<l>``    with momentum: the velocities, shaped and typed like the weights
``velocity_biases_<l>``     and like the biases
``first_moment_weights_<l>`` with Adam: its moments, likewise (and ``first_moment_biases_<l>``,
``second_moment_...``       ``second_moment_weights_<l>``, ``second_moment_biases_<l>``)
``adam_powers``             with Adam: float64 pair β1^t, β2^t after its t steps
``history_train_cost``      float64 per epoch trained
``history_validation``      float64 per epoch: validation accuracy, NaN where none
``history_seconds``         float64 per epoch
``dataset``                 optional string: what it was trained on, e.g. ``"mnist"``
==========================  ===========================================================

The generator state and the optimizer's state are what resuming needs: a model
trained 2 epochs, saved, loaded and trained 3 more holds the same bits as
one trained 5 epochs at once. Each version marks what an older fastmlp
would get wrong: a model of the fused contract is version 3, so that a
fastmlp older than ``fma``, which would predict and train it with the other
contract, refuses it; one with a setting newer still is version 4; the
others stay version 2, which every fastmlp since the training state reads.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from ._files import atomic_write
from .schedules import StepDecay

FORMAT = "fastmlp-model"
FORMAT_VERSION = 4  # the newest; a file takes the oldest version that holds it (see version())
READABLE_VERSIONS = (1, 2, 3, 4)


class ModelFileError(ValueError):
    """A model file that is missing, truncated, corrupt or not a fastmlp model."""


def slot_names(optimizer, momentum):
    """The names of the optimizer's state arrays, one per slot (see BaseTrainer._slot_count)."""
    if optimizer == "adam":
        return ["first_moment_", "second_moment_"]
    return ["velocity_"] if momentum else []


def version(trainer):
    """The oldest format version that describes ``trainer`` fully: 4 with a setting of version 4
    (an output activation other than the cost's own, Adam, Nesterov's momentum, dropout), else 3 with
    ``fma``, else 2."""
    if trainer._output_named() or trainer.optimizer != "sgd" or trainer.nesterov or trainer.dropout:
        return 4
    return 3 if trainer.fma else 2


def save(trainer, path):
    """Write ``trainer`` to ``path`` atomically: a reader sees the old file or the new one, whole."""
    path = os.fspath(path)
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(version(trainer), dtype=np.int64),
        "layer_sizes": np.array(trainer.layer_sizes, dtype=np.int64),
        "activation": np.array(trainer.activation),
        "cost": np.array(trainer.cost),
        "dtype": np.array(trainer.dtype.name),
        "learning_rate": np.array(trainer.learning_rate, dtype=np.float64),
        "batch_size": np.array(trainer.batch_size, dtype=np.int64),
        "l2": np.array(trainer.l2, dtype=np.float64),
        "momentum": np.array(trainer.momentum, dtype=np.float64),
        "init": np.array(trainer.init),
        "fma": np.array(trainer.fma, dtype=np.bool_),
        "generator": np.array(json.dumps(trainer._rng.bit_generator.state)),
        "epochs": np.array(len(trainer.history), dtype=np.int64),
        "history_train_cost": np.array(trainer.history.train_cost, dtype=np.float64),
        "history_validation": np.array(
            [np.nan if a is None else a for a in trainer.history.validation_accuracy], dtype=np.float64
        ),
        "history_seconds": np.array(trainer.history.seconds, dtype=np.float64),
    }
    if trainer._output_named():
        arrays["output_activation"] = np.array(trainer.output_activation)
    if trainer.nesterov:
        arrays["nesterov"] = np.array(True)
    if trainer.dropout:
        arrays["dropout"] = np.array(trainer.dropout, dtype=np.float64)
    if trainer.optimizer != "sgd":
        arrays["optimizer"] = np.array(trainer.optimizer)
        arrays["betas"] = np.array(trainer.betas, dtype=np.float64)
        arrays["eps"] = np.array(trainer.eps, dtype=np.float64)
        arrays["adam_powers"] = np.array(trainer._adam_powers, dtype=np.float64)
    if trainer.dataset is not None:
        arrays["dataset"] = np.array(str(trainer.dataset))
    if trainer.schedule is not None:
        arrays["schedule"] = np.array([trainer.schedule.every, trainer.schedule.factor], dtype=np.float64)
    if isinstance(trainer.seed, int) and trainer.seed < 2**63:
        arrays["seed"] = np.array(trainer.seed, dtype=np.int64)
    for l, (W, b) in enumerate(zip(trainer.weights, trainer.biases)):
        arrays[f"weights_{l}"] = np.ascontiguousarray(W)
        arrays[f"biases_{l}"] = np.ascontiguousarray(b)
    for name, (weights, biases) in zip(slot_names(trainer.optimizer, trainer.momentum), trainer._slots()):
        for l, (V, v) in enumerate(zip(weights, biases)):
            arrays[f"{name}weights_{l}"] = np.ascontiguousarray(V)
            arrays[f"{name}biases_{l}"] = np.ascontiguousarray(v)
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def read(path):
    """Read and check a model file.

    Returns ``(settings, weights, biases, history, dataset, state)``: ``settings``
    the trainer's keyword arguments (and ``layer_sizes``), ``state`` a dict with
    ``slots`` (the optimizer's state, a ``(weights, biases)`` pair per slot, or None in a
    version 1 file), ``adam_powers`` (an array, or None) and ``generator`` (a state
    dict, or None in a version 1 file).
    """
    path = os.fspath(path)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ModelFileError(f"{path}: a single .npy array, not a .npz model file")
        with archive:
            content = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: a folder, not a model file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path}: not a readable .npz model file ({exc})") from exc

    def field(key, kind, scalar=True):
        if key not in content:
            raise ModelFileError(f"{path}: not a complete fastmlp model (no '{key}')")
        value = content[key]
        # A member that is not a .npy array comes back as bytes.
        if not isinstance(value, np.ndarray) or value.dtype.kind not in kind or (scalar and value.ndim != 0):
            raise ModelFileError(f"{path}: '{key}' is not a {'single value' if scalar else 'array'} of the right type")
        return value

    if "format" not in content or str(field("format", "U")) != FORMAT:
        raise ModelFileError(f"{path}: not a fastmlp model file")
    version = int(field("format_version", "iu"))
    if version not in READABLE_VERSIONS:
        raise ModelFileError(
            f"{path}: model format version {version}; this fastmlp reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    sizes = field("layer_sizes", "iu", scalar=False)
    if sizes.ndim != 1 or len(sizes) < 2 or (sizes < 1).any():
        raise ModelFileError(f"{path}: bad layer_sizes {sizes.tolist()}")
    settings = dict(
        layer_sizes=tuple(int(n) for n in sizes),
        activation=str(field("activation", "U")),
        dtype=str(field("dtype", "U")),
        learning_rate=float(field("learning_rate", "f")),
        batch_size=int(field("batch_size", "iu")),
    )
    if settings["dtype"] not in ("float32", "float64"):
        raise ModelFileError(f"{path}: dtype must be float32 or float64, got {settings['dtype']!r}")
    generator = None
    if version >= 2:
        settings.update(
            cost=str(field("cost", "U")),
            l2=float(field("l2", "f")),
            momentum=float(field("momentum", "f")),
            init=str(field("init", "U")),
        )
        if "fma" in content or version >= 3:
            settings["fma"] = bool(field("fma", "b"))
            if settings["fma"] != (version >= 3) and version < 4:
                raise ModelFileError(
                    f"{path}: a model of the {'fused' if settings['fma'] else 'default'} contract in format "
                    f"version {version}: fused models are version 3, the others 2"
                )
        if "output_activation" in content:
            if version < 4:
                raise ModelFileError(f"{path}: 'output_activation' in format version {version}: it needs version 4")
            settings["output_activation"] = str(field("output_activation", "U"))
        for key, kind, convert in (("nesterov", "b", bool), ("optimizer", "U", str), ("dropout", "f", float)):
            if key in content:
                if version < 4:
                    raise ModelFileError(f"{path}: '{key}' in format version {version}: it needs version 4")
                settings[key] = convert(field(key, kind))
        if settings.get("optimizer", "sgd") != "sgd":
            betas = field("betas", "f", scalar=False)
            if betas.shape != (2,):
                raise ModelFileError(f"{path}: 'betas' is not a pair")
            settings["betas"] = (float(betas[0]), float(betas[1]))
            settings["eps"] = float(field("eps", "f"))
        if "schedule" in content:
            pair = field("schedule", "f", scalar=False)
            try:
                if pair.shape != (2,) or pair[0] != int(pair[0]):
                    raise ValueError("not a pair (every, factor)")
                settings["schedule"] = StepDecay(int(pair[0]), float(pair[1]))
            except (TypeError, ValueError, OverflowError) as exc:
                raise ModelFileError(f"{path}: 'schedule' is not a step decay ({exc})") from None
        if "seed" in content:
            settings["seed"] = int(field("seed", "iu"))
        try:
            generator = json.loads(str(field("generator", "U")))
        except ValueError as exc:
            raise ModelFileError(f"{path}: 'generator' is not a generator state ({exc})") from None

    def parameters(prefix):
        weights, biases = [], []
        for l, (n_in, n_out) in enumerate(zip(settings["layer_sizes"][:-1], settings["layer_sizes"][1:])):
            for key, shape, out in ((f"{prefix}weights_{l}", (n_out, n_in), weights),
                                    (f"{prefix}biases_{l}", (n_out,), biases)):
                value = field(key, "f", scalar=False)
                if value.shape != shape or value.dtype.name != settings["dtype"]:
                    raise ModelFileError(
                        f"{path}: '{key}' is {value.dtype} {value.shape}; expected {settings['dtype']} {shape}"
                    )
                if not np.isfinite(value).all():
                    raise ModelFileError(f"{path}: '{key}' holds NaN or infinite values")
                out.append(value)
        return weights, biases

    weights, biases = parameters("")
    slots = None
    if version >= 2:
        slots = [parameters(name) for name in slot_names(settings.get("optimizer", "sgd"), settings.get("momentum"))]
    adam_powers = None
    if settings.get("optimizer") == "adam":
        adam_powers = field("adam_powers", "f", scalar=False).astype(np.float64)
        if adam_powers.shape != (2,) or not ((adam_powers >= 0) & (adam_powers <= 1)).all():
            raise ModelFileError(f"{path}: 'adam_powers' is not a pair of powers in [0, 1]")
    epochs = int(field("epochs", "iu"))
    history = [field(f"history_{k}", "f", scalar=False) for k in ("train_cost", "validation", "seconds")]
    if any(h.shape != (epochs,) for h in history):
        raise ModelFileError(f"{path}: the history does not hold {epochs} epochs")
    dataset = str(field("dataset", "U")) if "dataset" in content else None
    return settings, weights, biases, history, dataset, dict(slots=slots, adam_powers=adam_powers, generator=generator)
