"""The real case: one epoch of the 784-16-16-10 network on MNIST, same bits in both trainers."""

import numpy as np
import pytest
from helpers import assert_same_bits, assert_trainers_agree

from fastmlp import ReferenceTrainer, StepDecay, Trainer

pytestmark = pytest.mark.slow


@pytest.mark.usefixtures("each_kernel_variant")
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


_FUSED_REFERENCE = {}


@pytest.mark.usefixtures("each_kernel_variant")
def test_one_fused_mnist_epoch_is_bit_identical(mnist):
    """The same in the fused contract (fma=True), float32, mini-batches of 100: the reference's
    fused multiply-adds are slow, so it trains once for all the kernel variants."""
    (X, y), (X_test, y_test) = mnist
    kwargs = dict(learning_rate=3.0, batch_size=100, seed=2024, dtype="float32", fma=True)
    if not _FUSED_REFERENCE:
        reference = ReferenceTrainer((784, 16, 16, 10), **kwargs)
        history = reference.fit(X, y, 1, validation_data=(X_test, y_test))
        _FUSED_REFERENCE.update(reference=reference, history=history, forward=reference.forward(X_test))
    reference, expected = _FUSED_REFERENCE["reference"], _FUSED_REFERENCE["history"]
    trainer = Trainer((784, 16, 16, 10), threads=2, **kwargs)
    history = trainer.fit(X, y, 1, validation_data=(X_test, y_test))
    assert_trainers_agree(trainer, reference, "fused")
    assert history.train_cost == expected.train_cost
    assert history.validation_accuracy == expected.validation_accuracy
    assert_same_bits(trainer.forward(X_test), _FUSED_REFERENCE["forward"], "forward on the test set")
    assert expected.validation_accuracy[0] > 0.7  # 600 steps, against the 6000 of batch 10


@pytest.mark.usefixtures("each_kernel_variant")
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


@pytest.mark.usefixtures("each_kernel_variant")
def test_an_improved_mnist_epoch_is_bit_identical(mnist):
    """The new costs, tanh, L2, momentum and a schedule on the real data, float32, 2 threads."""
    (X, y), _ = mnist
    X, y = X[:6000], y[:6000]
    kwargs = dict(activation="tanh", cost="log_likelihood", l2=5.0, momentum=0.9, init="scaled",
                  schedule=StepDecay(1, 0.5), learning_rate=0.05, batch_size=64, seed=9, dtype="float32")
    reference = ReferenceTrainer((784, 30, 10), **kwargs)
    expected = reference.fit(X, y, 2)
    trainer = Trainer((784, 30, 10), threads=2, **kwargs)
    history = trainer.fit(X, y, 2)
    assert_trainers_agree(trainer, reference, "improved")
    assert history.train_cost == expected.train_cost


# The accuracy figures README.md gives, each from its command there. The
# arithmetic is the same on every machine, so they are reproduced exactly.
RECIPES = {
    "time to 97%": (
        (784, 128, 10),
        dict(activation="relu", cost="log_likelihood", init="scaled", learning_rate=0.1, momentum=0.9,
             schedule=StepDecay(1, 0.3), batch_size=64, dtype="float32", threads=2, seed=0),
        2, [0.9602, 0.9727],
    ),
    "time to 98%": (
        (784, 800, 10),
        dict(activation="relu", cost="log_likelihood", init="scaled", learning_rate=0.1, momentum=0.9,
             schedule=StepDecay(2, 0.3), batch_size=64, dtype="float32", threads=2, seed=0),
        4, [0.9626, 0.9688, 0.9780, 0.9802],
    ),
    "784-16-16-10 improved": (
        (784, 16, 16, 10),
        dict(cost="log_likelihood", l2=1.0, init="scaled", learning_rate=0.3, schedule=StepDecay(15, 0.3), seed=0),
        60, (0.9588, 0.9581),
    ),
    "the book's 784-100-10": (
        (784, 100, 10),
        dict(cost="cross_entropy", l2=5.0, init="scaled", learning_rate=0.1, seed=0),
        60, (0.9806, 0.9798),
    ),
}


@pytest.mark.parametrize("name", RECIPES)
def test_the_readme_accuracies(mnist, name):
    (X, y), (X_test, y_test) = mnist
    sizes, kwargs, epochs, expected = RECIPES[name]
    history = Trainer(sizes, **kwargs).fit(X.astype(kwargs.get("dtype", "float64")), y, epochs,
                                           validation_data=(X_test, y_test))
    accuracies = [round(a, 4) for a in history.validation_accuracy]
    if isinstance(expected, list):  # every epoch's
        assert accuracies == expected
    else:  # (best, final)
        assert (max(accuracies), accuracies[-1]) == expected
