"""One epoch of the 784-16-16-10 network on 60000 MNIST-shaped examples: fastmlp against its peers.

Run: pytest benchmarks --benchmark-enable --benchmark-group-by=param:dtype,param:threads,param:batch_size

Peers: ``fastmlp``, its ``reference`` (float64, one thread, batch sizes 10
and 100 only: it takes seconds an epoch), idiomatic ``numpy`` and ``torch``
(when installed: pip install '.[bench]'). Each benchmark checks its result
once: fastmlp has the reference's bits; numpy and torch, which sum in BLAS
order, are close to fastmlp at batch sizes 100 and 1000. Over the thousands
of steps of an epoch at batch sizes 1 and 10, SGD with η = 3 is chaotic
enough for those rounding differences to grow to the size of the weights
(measured), so there the check is that they learned.
"""

import numpy as np
import pytest
from helpers import assert_trainers_agree, first_permutation
from peers import NumpyPeer, TorchPeer, torch_available

from fastmlp import ReferenceTrainer, Trainer

SIZES = (784, 16, 16, 10)
PEERS = {"numpy": NumpyPeer, "torch": TorchPeer}
CLOSE = {"float64": 1e-9, "float32": 1e-3}  # max |Δw| / max |w| after one epoch, batch ≥ 100


@pytest.fixture(scope="module")
def data(mnist_shaped):
    X, y = mnist_shaped
    cache = {}

    def get(dtype):
        if dtype not in cache:
            cache[dtype] = np.ascontiguousarray(X, dtype=dtype), y, np.eye(10, dtype=dtype)[y]
        return cache[dtype]

    return get


@pytest.fixture(scope="module")
def trained():
    """A trainer of `cls` after one epoch from seed 0, per configuration, computed once."""
    cache = {}

    def get(cls, X, y, dtype, batch_size):
        key = (cls, dtype, batch_size)
        if key not in cache:
            t = cls(SIZES, batch_size=batch_size, seed=0, dtype=dtype)
            t.fit(X, y, 1)
            cache[key] = t
        return cache[key]

    return get


@pytest.mark.parametrize("batch_size", [1, 10, 100, 1000])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("implementation", ["fastmlp", "reference", "numpy", "torch"])
def test_epoch(benchmark, data, trained, implementation, dtype, threads, batch_size):
    X, y, Y = data(dtype)
    if implementation == "reference":
        if (dtype, threads) != ("float64", 1) or batch_size not in (10, 100):
            pytest.skip("the reference is timed at float64, one thread, batch sizes 10 and 100")
        reference = ReferenceTrainer(SIZES, batch_size=batch_size, seed=0, dtype=dtype)
        benchmark.pedantic(lambda: reference.fit(X, y, 1), rounds=1)
        assert_trainers_agree(trained(Trainer, X, y, dtype, batch_size), reference)
        return
    if implementation == "fastmlp":
        trainers = []

        def setup():
            trainers.append(Trainer(SIZES, batch_size=batch_size, seed=0, dtype=dtype, threads=threads))
            return (), {}

        benchmark.pedantic(lambda: trainers[-1].fit(X, y, 1), setup=setup, rounds=5)
        if batch_size >= 10 or dtype == "float32":
            assert_trainers_agree(trainers[0], trained(ReferenceTrainer, X, y, dtype, batch_size), "fastmlp")
        else:  # the reference's batch-size-1 epoch takes a minute: check against the other thread count
            assert_trainers_agree(trainers[0], trained(Trainer, X, y, dtype, batch_size), "fastmlp")
        return
    if implementation == "torch" and not torch_available():
        pytest.skip("PyTorch is not installed (pip install '.[bench]')")
    start = Trainer(SIZES, seed=0, dtype=dtype)
    perm = first_permutation(SIZES, len(X))
    peers = []

    def setup():
        peers.append(PEERS[implementation](start.weights, start.biases, "sigmoid", 3.0, batch_size, dtype, threads))
        return (), {}

    from report import _blas_threads

    with _blas_threads(threads), np.errstate(over="ignore"):
        benchmark.pedantic(lambda: peers[-1].epoch(X, Y, perm), setup=setup, rounds=1 if batch_size == 1 else 3)
    ours = trained(Trainer, X, y, dtype, batch_size)
    if batch_size < 100:
        learned = Trainer(SIZES, dtype=dtype)
        for view, value in zip(learned.weights + learned.biases, peers[0].weights + peers[0].biases):
            view[...] = value
        # One epoch of online SGD with η = 3 reaches 70-90%; chance is 10%.
        assert learned.score(X[:10000], y[:10000]) > 0.5, f"{implementation} did not learn"
    else:
        deviation = max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(peers[0].weights, ours.weights))
        assert deviation < CLOSE[dtype], f"{implementation} is {deviation:.1e} away from fastmlp"
