"""The width sweep: one epoch of 784-w-w-10 networks, w from 16 to 4096, fastmlp against its peers.

Run: pytest benchmarks/test_widths.py --benchmark-enable --benchmark-group-by=param:dtype,param:threads,param:batch_size,param:width

The networks and their examples are report.py's (ReLU hidden layers, a
softmax output with the log-likelihood cost, a subset of MNIST for the wide
ones). Peers: ``fastmlp``, ``fastmlp-fma`` (the fused contract, fma=True), idiomatic ``numpy`` and ``torch`` (when
installed: pip install '.[bench]'), each from the same parameters in the
same order of examples. Each benchmark checks its result once against
another's: BLAS sums in its own order, so the peers come close to fastmlp's
weights, not to its bits (fastmlp's bits are the reference's, which
tests/test_layers.py checks).
"""

import numpy as np
import pytest
from helpers import first_permutation
from peers import NumpyPeer, TorchPeer, torch_available
from report import SWEEP_BATCHES, SWEEP_EXAMPLES, SWEEP_SETTINGS, WIDTHS, _blas_threads

from fastmlp import Trainer

PEERS = {"numpy": NumpyPeer, "torch": TorchPeer}
#: max |Δw| / max |w| between two implementations after one epoch (measured over the sweep: 3e-15 in
#: float64; 2e-6 in float32, and 1.2e-4 once, where a ReLU's input crossed zero in one of them).
CLOSE = {"float64": 1e-12, "float32": 1e-3}


@pytest.fixture(scope="module")
def data(mnist_shaped):
    X, y = mnist_shaped
    cache = {}

    def get(dtype, n):
        if (dtype, n) not in cache:
            cache[dtype, n] = np.ascontiguousarray(X[:n], dtype=dtype), y[:n], np.eye(10, dtype=dtype)[y[:n]]
        return cache[dtype, n]

    return get


def deviation(ours, theirs):
    return max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(ours, theirs))


@pytest.fixture(scope="module")
def trained():
    """fastmlp's weights after one epoch from seed 0, per configuration, computed once."""
    cache = {}

    def get(sizes, X, y, dtype, batch_size):
        key = (sizes, dtype, batch_size)
        if key not in cache:
            t = Trainer(sizes, batch_size=batch_size, seed=0, dtype=dtype, **SWEEP_SETTINGS)
            t.fit(X, y, 1)
            cache[key] = [w.copy() for w in t.weights]
        return cache[key]

    return get


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("batch_size", SWEEP_BATCHES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("implementation", ["fastmlp", "fastmlp-fma", "numpy", "torch"])
def test_width(benchmark, data, trained, implementation, dtype, threads, batch_size, width):
    sizes = (784, width, width, 10)
    n = SWEEP_EXAMPLES[width]
    X, y, Y = data(dtype, n)
    if implementation.startswith("fastmlp"):
        trainers = []

        def setup():
            trainers.append(Trainer(sizes, batch_size=batch_size, seed=0, dtype=dtype, threads=threads,
                                    fma=implementation == "fastmlp-fma", **SWEEP_SETTINGS))
            return (), {}

        benchmark.pedantic(lambda: trainers[-1].fit(X, y, 1), setup=setup, rounds=3)
        # Against NumPy's epoch from the same start, which sums in BLAS order.
        start = Trainer(sizes, seed=0, dtype=dtype, **SWEEP_SETTINGS)
        peer = NumpyPeer(start.weights, start.biases, "relu", SWEEP_SETTINGS["learning_rate"], batch_size, dtype,
                         threads, SWEEP_SETTINGS["cost"])
        with _blas_threads(threads):
            peer.epoch(X, Y, first_permutation(sizes, n))
        gap = deviation(trainers[0].weights, peer.weights)
        assert gap < CLOSE[dtype], f"fastmlp is {gap:.1e} away from NumPy"
        return
    if implementation == "torch" and not torch_available():
        pytest.skip("PyTorch is not installed (pip install '.[bench]')")
    start = Trainer(sizes, seed=0, dtype=dtype, **SWEEP_SETTINGS)
    perm = first_permutation(sizes, n)
    peers = []

    def setup():
        peers.append(PEERS[implementation](start.weights, start.biases, "relu", SWEEP_SETTINGS["learning_rate"],
                                           batch_size, dtype, threads, SWEEP_SETTINGS["cost"]))
        return (), {}

    with _blas_threads(threads), np.errstate(over="ignore"):
        benchmark.pedantic(lambda: peers[-1].epoch(X, Y, perm), setup=setup, rounds=3)
    gap = deviation(peers[0].weights, trained(sizes, X, y, dtype, batch_size))
    assert gap < CLOSE[dtype], f"{implementation} is {gap:.1e} away from fastmlp"
