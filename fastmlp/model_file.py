"""Saved models: a documented ``.npz`` file, written atomically, read with full checks.

The file is a NumPy ``.npz`` archive (no pickled objects) holding:

==========================  ===========================================================
``format``                  the string ``"fastmlp-model"``
``format_version``          1
``layer_sizes``             int64 array, input first
``activation``              ``"sigmoid"`` or ``"relu"``
``dtype``                   ``"float64"`` or ``"float32"``
``learning_rate``           float64 scalar
``batch_size``              int64 scalar
``epochs``                  int64 scalar: epochs trained
``weights_<l>``             layer l's weights, shape ``(layer_sizes[l+1], layer_sizes[l])``, of ``dtype``
``biases_<l>``              layer l's biases, shape ``(layer_sizes[l+1],)``, of ``dtype``
``history_train_cost``      float64 per epoch trained
``history_validation``      float64 per epoch: validation accuracy, NaN where none
``history_seconds``         float64 per epoch
``dataset``                 optional string: what it was trained on, e.g. ``"mnist"``
==========================  ===========================================================
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from ._files import atomic_write

FORMAT = "fastmlp-model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A model file that is missing, truncated, corrupt or not a fastmlp model."""


def save(trainer, path):
    """Write ``trainer`` to ``path`` atomically: a reader sees the old file or the new one, whole."""
    path = os.fspath(path)
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "layer_sizes": np.array(trainer.layer_sizes, dtype=np.int64),
        "activation": np.array(trainer.activation),
        "dtype": np.array(trainer.dtype.name),
        "learning_rate": np.array(trainer.learning_rate, dtype=np.float64),
        "batch_size": np.array(trainer.batch_size, dtype=np.int64),
        "epochs": np.array(len(trainer.history), dtype=np.int64),
        "history_train_cost": np.array(trainer.history.train_cost, dtype=np.float64),
        "history_validation": np.array(
            [np.nan if a is None else a for a in trainer.history.validation_accuracy], dtype=np.float64
        ),
        "history_seconds": np.array(trainer.history.seconds, dtype=np.float64),
    }
    if trainer.dataset is not None:
        arrays["dataset"] = np.array(str(trainer.dataset))
    for l, (W, b) in enumerate(zip(trainer.weights, trainer.biases)):
        arrays[f"weights_{l}"] = np.ascontiguousarray(W)
        arrays[f"biases_{l}"] = np.ascontiguousarray(b)
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def read(path):
    """Read and check a model file; returns ``(settings, weights, biases, history, dataset)``."""
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
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format version {version}; this fastmlp reads version {FORMAT_VERSION}")
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
    weights, biases = [], []
    for l, (n_in, n_out) in enumerate(zip(settings["layer_sizes"][:-1], settings["layer_sizes"][1:])):
        for key, shape, out in ((f"weights_{l}", (n_out, n_in), weights), (f"biases_{l}", (n_out,), biases)):
            value = field(key, "f", scalar=False)
            if value.shape != shape or value.dtype.name != settings["dtype"]:
                raise ModelFileError(
                    f"{path}: '{key}' is {value.dtype} {value.shape}; expected {settings['dtype']} {shape}"
                )
            if not np.isfinite(value).all():
                raise ModelFileError(f"{path}: '{key}' holds NaN or infinite values")
            out.append(value)
    epochs = int(field("epochs", "iu"))
    history = [field(f"history_{k}", "f", scalar=False) for k in ("train_cost", "validation", "seconds")]
    if any(h.shape != (epochs,) for h in history):
        raise ModelFileError(f"{path}: the history does not hold {epochs} epochs")
    dataset = str(field("dataset", "U")) if "dataset" in content else None
    return settings, weights, biases, history, dataset
