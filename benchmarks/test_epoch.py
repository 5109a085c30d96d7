"""One epoch of the 784-16-16-10 network on 60000 MNIST-shaped examples: fastmlp against its reference.

Run: pytest benchmarks --benchmark-enable --benchmark-group-by=param:batch_size

Each benchmark checks once that its result has the bits of the reference's.
"""

import pytest
from helpers import assert_trainers_agree

from fastmlp import ReferenceTrainer, Trainer

SIZES = (784, 16, 16, 10)
IMPLEMENTATIONS = {"fastmlp": Trainer, "reference": ReferenceTrainer}


@pytest.fixture(scope="module")
def expected(mnist_shaped):
    """The reference after one epoch, per batch size, computed once."""
    X, y = mnist_shaped
    cache = {}

    def get(batch_size):
        if batch_size not in cache:
            r = ReferenceTrainer(SIZES, batch_size=batch_size, seed=0)
            r.fit(X, y, 1)
            cache[batch_size] = r
        return cache[batch_size]

    return get


@pytest.mark.parametrize("batch_size", [10, 100])
@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
def test_epoch(benchmark, mnist_shaped, expected, implementation, batch_size):
    X, y = mnist_shaped
    cls = IMPLEMENTATIONS[implementation]
    trainers = []

    def setup():
        trainers.append(cls(SIZES, batch_size=batch_size, seed=0))
        return (X, y, 1), {}

    rounds = 5 if implementation == "fastmlp" else 1
    benchmark.pedantic(lambda X, y, epochs: trainers[-1].fit(X, y, epochs), setup=setup, rounds=rounds)
    assert_trainers_agree(trainers[0], expected(batch_size), implementation)
