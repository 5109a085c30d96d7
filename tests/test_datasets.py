"""The IDX reader: good files read back exactly, bad ones get an error naming the file."""

import gzip
import hashlib
import struct

import numpy as np
import pytest
from helpers import mnist_dir

from fastmlp.datasets import IDXError, load_mnist, read_idx


def idx_bytes(array, type_code=0x08):
    header = struct.pack(">HBB", 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("compress", [False, True])
def test_reads_what_was_written(tmp_path, compress):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    data = idx_bytes(images)
    path = tmp_path / ("x.gz" if compress else "x")
    path.write_bytes(gzip.compress(data) if compress else data)
    assert np.array_equal(read_idx(path), images)


def test_reads_other_types(tmp_path):
    values = np.array([[1.5, -2.0], [3.25, 0.0]], dtype=np.float32)
    (tmp_path / "f").write_bytes(idx_bytes(values, 0x0D))
    out = read_idx(tmp_path / "f")
    assert out.dtype == np.float32 and np.array_equal(out, values)


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda b: b[:-1], "announce 10 bytes of data, the file holds 9"),
        (lambda b: b + b"\0", "the file holds 11"),
        (lambda b: b[:6], "truncated header"),
        (lambda b: b"\x00\x01" + b[2:], "not an IDX file"),
        (lambda b: b[:2] + b"\x42" + b[3:], "not an IDX file"),
        (lambda b: b"", "too short"),
    ],
)
def test_bad_files_name_themselves(tmp_path, mangle, message):
    good = idx_bytes(np.arange(10, dtype=np.uint8))
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(mangle(good))
    with pytest.raises(IDXError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8)))[:-10])
    with pytest.raises(IDXError, match="x.gz: cannot read"):
        read_idx(path)


def test_damaged_gzip_stream(tmp_path):
    data = bytearray(gzip.compress(idx_bytes(np.arange(5000, dtype=np.uint8) % 7)))
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "x.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(IDXError, match="x.gz: cannot read"):
        read_idx(path)


def test_load_mnist_wants_a_float_dtype(tmp_path):
    with pytest.raises(ValueError, match="floating-point"):
        load_mnist(tmp_path, dtype="int32")


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)


def test_real_mnist(mnist):
    """The shared files decompress to the published SHA-256 and load as documented."""
    (X, y), (X_test, y_test) = mnist
    assert X.shape == (60000, 784) and X.dtype == np.float64 and y.dtype == np.uint8
    assert X_test.shape == (10000, 784) and y_test.shape == (10000,)
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    with gzip.open(mnist_dir() / "t10k-labels-idx1-ubyte.gz") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert digest == "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
