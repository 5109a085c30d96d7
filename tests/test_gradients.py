"""gradients() is the derivative of the mean cost, checked by central differences, for every cost and activation."""

import numpy as np
import pytest

from fastmlp import ReferenceTrainer, Trainer


def mean_cost(trainer, X, Y):
    """The mean cost, written from its textbook formula (libm's log, NumPy's sums)."""
    A = trainer.forward(X)
    if trainer.cost == "quadratic":
        per_example = 0.5 * np.sum((A - Y) ** 2, axis=1)
    elif trainer.cost == "cross_entropy":
        per_example = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A), axis=1)
    else:
        per_example = -np.sum(Y * np.log(A), axis=1)
    return float(np.mean(per_example))


@pytest.mark.parametrize("cls", [Trainer, ReferenceTrainer])
@pytest.mark.parametrize(
    "activation, cost",
    [("sigmoid", "quadratic"), ("relu", "quadratic"), ("tanh", "quadratic"),
     ("sigmoid", "cross_entropy"), ("tanh", "cross_entropy"), ("relu", "log_likelihood"), ("tanh", "log_likelihood")],
)
def test_gradients_match_central_differences(cls, activation, cost):
    """Tolerance: with h = 1e-6 the central difference errs by about h²·|C'''|/6 (~1e-13 here)
    plus rounding, ε·|C|/h ≈ 2e-16 / 1e-6 = 2e-10 for a cost of order 1. A bound of 1e-7 is far
    above both and far below the gradients themselves (typically 1e-3 to 1e-1), so a wrong
    sign, index or factor of 2 fails."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (13, 5))
    labels = rng.integers(0, 3, 13)
    Y = np.eye(3)[labels]
    trainer = cls((5, 4, 6, 3), activation=activation, cost=cost, seed=3)
    grad_w, grad_b = trainer.gradients(X, labels)
    h = 1e-6
    checked = 0
    for params, grads in ((trainer.weights, grad_w), (trainer.biases, grad_b)):
        for p, g in zip(params, grads):
            assert g.shape == p.shape
            for index in np.ndindex(p.shape):
                original = p[index]
                p[index] = original + h
                up = mean_cost(trainer, X, Y)
                p[index] = original - h
                down = mean_cost(trainer, X, Y)
                p[index] = original
                numeric = (up - down) / (2 * h)
                assert abs(numeric - g[index]) < 1e-7, (index, numeric, g[index])
                checked += 1
    assert checked == 5 * 4 + 4 * 6 + 6 * 3 + 4 + 6 + 3
    assert max(np.abs(g).max() for g in grad_w) > 1e-3  # the check is not vacuous


def test_gradients_leave_the_parameters_alone():
    rng = np.random.default_rng(1)
    X, y = rng.uniform(size=(20, 4)), rng.integers(0, 2, 20)
    t = Trainer((4, 3, 2), seed=0)
    before = [w.copy() for w in t.weights] + [b.copy() for b in t.biases]
    t.gradients(X, y)
    after = t.weights + t.biases
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_one_sgd_step_moves_against_the_gradient():
    """With one batch holding all the data, an epoch is one step: W - η·G (within the rounding of η/m)."""
    rng = np.random.default_rng(2)
    X, y = rng.uniform(size=(8, 4)), rng.integers(0, 2, 8)
    t = Trainer((4, 3, 2), seed=0, batch_size=8, learning_rate=0.5)
    W0 = [w.copy() for w in t.weights]
    grad_w, _ = t.gradients(X, y)
    t.fit(X, y, 1)
    for w0, w1, g in zip(W0, t.weights, grad_w):
        np.testing.assert_allclose(w1, w0 - 0.5 * g, rtol=0, atol=1e-15)
