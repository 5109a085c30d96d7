"""The real case: one epoch of the 784-16-16-10 network on MNIST, same bits in both trainers."""

import numpy as np
import pytest
from helpers import assert_same_bits, assert_trainers_agree

from fastmlp import ReferenceTrainer, Trainer

pytestmark = pytest.mark.slow


def test_one_mnist_epoch_is_bit_identical(mnist):
    (X, y), (X_test, y_test) = mnist
    assert X.shape == (60000, 784) and X_test.shape == (10000, 784)
    kwargs = dict(learning_rate=3.0, batch_size=10, seed=2024)
    reference = ReferenceTrainer((784, 16, 16, 10), **kwargs)
    expected = reference.fit(X, y, 1, validation_data=(X_test, y_test))
    for threads in (1, 2):
        trainer = Trainer((784, 16, 16, 10), threads=threads, **kwargs)
        history = trainer.fit(X, y, 1, validation_data=(X_test, y_test))
        assert_trainers_agree(trainer, reference, f"threads={threads}")
        assert history.train_cost == expected.train_cost
        assert history.validation_accuracy == expected.validation_accuracy
    assert_same_bits(trainer.forward(X_test), reference.forward(X_test), "forward on the test set")
    # One epoch of the classic network already recognises most digits.
    assert expected.validation_accuracy[0] > 0.85


def test_float32_mnist_epoch_matches_on_a_slice(mnist):
    """float64 data into a float32 trainer, a few thousand examples, batch 10."""
    (X, y), _ = mnist
    X, y = X[:3000], y[:3000]
    kwargs = dict(learning_rate=3.0, batch_size=10, seed=5, dtype="float32")
    reference = ReferenceTrainer((784, 16, 16, 10), **kwargs)
    reference.fit(X, y, 1)
    trainer = Trainer((784, 16, 16, 10), threads=2, **kwargs)
    trainer.fit(X, y, 1)
    assert_trainers_agree(trainer, reference, "float32")
    assert trainer.weights[0].dtype == np.float32
