"""MNIST-format data: the IDX file format and the MNIST files in a folder."""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

__all__ = ["IDXError", "read_idx", "load_mnist"]

# IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class IDXError(ValueError):
    """An IDX file that is truncated, corrupt or not what was expected."""


def read_idx(path):
    """Read an IDX file (raw, or gzip-compressed when its name ends in ``.gz``).

    Checks the magic number, the dimensions and that the data has exactly
    the length they announce. Returns an array in native byte order.
    """
    path = os.fspath(path)
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except (OSError, EOFError, zlib.error) as exc:  # gzip raises these for a damaged stream
        raise IDXError(f"{path}: cannot read: {exc}") from exc
    if len(data) < 4:
        raise IDXError(f"{path}: too short to be an IDX file ({len(data)} bytes)")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or type_code not in _IDX_TYPES or ndim == 0:
        raise IDXError(f"{path}: not an IDX file (magic number 0x{data[:4].hex()})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: truncated header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_TYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise IDXError(
            f"{path}: dimensions {shape} announce {expected} bytes of data, the file holds {len(data) - header}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(folder, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{folder}: neither {name} nor {name}.gz is there")


def load_mnist(data_dir, *, dtype="float64"):
    """Load the four MNIST IDX files from ``data_dir`` (raw or ``.gz``).

    Returns ``(X_train, y_train), (X_test, y_test)``: images flattened to
    784 values in [0, 1] (pixel / 255) of ``dtype``, labels as uint8.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating-point type such as 'float64', got {dtype}")
    arrays = {key: read_idx(_find(os.fspath(data_dir), name)) for key, name in MNIST_FILES.items()}
    parts = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise IDXError(f"{split} images: expected uint8 of shape (n, 28, 28), got {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0] or labels.dtype != np.uint8:
            raise IDXError(f"{split} labels: expected {images.shape[0]} uint8 labels, got {labels.dtype} {labels.shape}")
        if labels.max(initial=0) > 9:
            raise IDXError(f"{split} labels: values above 9")
        X = images.reshape(len(images), 784).astype(dtype) / dtype.type(255)
        parts.append((X, labels))
    return tuple(parts)
