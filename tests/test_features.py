"""Costs, L2, momentum, initialisation, schedules, early stopping and resuming: each checked
against its own definition, written out here independently of the trainers."""

import math
import warnings

import numpy as np
import pytest
from helpers import assert_same_bits, assert_trainers_agree

from fastmlp import ReferenceTrainer, StepDecay, Trainer, TrainingStalledWarning
from fastmlp.reference import fma as fastmlp_fma

TRAINERS = [Trainer, ReferenceTrainer]


def toy(n=40, n_in=6, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, n_in)), rng.integers(0, n_out, n)


def one_hot(y, k):
    return np.eye(k)[y]


@pytest.mark.parametrize("cls", TRAINERS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_step_with_l2_is_the_book_formula(cls, dtype):
    """One example in one mini-batch: W ← (1 − ηλ/n)·W − η·∇W, where ∇ is gradients() of that example."""
    X, y = toy(n=1)
    eta, lam, n = 0.5, 0.6, 1
    t = cls((6, 4, 3), cost="cross_entropy", l2=lam, learning_rate=eta, batch_size=1, seed=2, dtype=dtype)
    f = t.dtype.type
    W0, b0 = [w.copy() for w in t.weights], [b.copy() for b in t.biases]
    gw, gb = t.gradients(X, y)
    t.fit(X, y, 1)
    decay = f(1.0 - eta * lam / n)
    for l in range(2):
        assert_same_bits(t.weights[l], decay * W0[l] - f(eta) * gw[l], f"weights[{l}]")
        assert_same_bits(t.biases[l], b0[l] - f(eta) * gb[l], f"biases[{l}] (not decayed)")


@pytest.mark.parametrize("cls", TRAINERS)
def test_momentum_steps_are_the_velocity_recursion(cls):
    """Two one-example epochs with momentum μ: v ← μv − η∇, w ← w + v, step by step."""
    X, y = toy(n=1)
    eta, mu = 0.3, 0.9
    t = cls((6, 5, 3), momentum=mu, learning_rate=eta, batch_size=1, seed=4)
    f = t.dtype.type
    W = [w.copy() for w in t.weights]
    b = [x.copy() for x in t.biases]
    V = [np.zeros_like(w) for w in W]
    v = [np.zeros_like(x) for x in b]
    for _ in range(2):
        gw, gb = t.gradients(X, y)
        t.fit(X, y, 1)
        for l in range(2):
            V[l] = f(mu) * V[l] - f(eta) * gw[l]
            v[l] = f(mu) * v[l] - f(eta) * gb[l]
            W[l] = W[l] + V[l]
            b[l] = b[l] + v[l]
            assert_same_bits(t.weights[l], W[l], f"weights[{l}]")
            assert_same_bits(t.biases[l], b[l], f"biases[{l}]")
    # Momentum changes the path: without it, the same two steps end elsewhere.
    plain = cls((6, 5, 3), learning_rate=eta, batch_size=1, seed=4)
    plain.fit(X, y, 2)
    assert not np.array_equal(plain.weights[0], t.weights[0])


@pytest.mark.parametrize("cls", TRAINERS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_an_identity_output_is_the_linear_layer_and_its_nudges(cls, dtype):
    """With output_activation="identity" the output is z = W·a + b itself, unbounded, and the
    output nudge is a − y with no σ': one example's gradient for the last layer is (a − y)·a_hiddenᵀ."""
    X, _ = toy(n=1)
    y = np.array([[50.0, -20.0, 0.5]])
    t = cls((6, 4, 3), activation="tanh", output_activation="identity", seed=3, dtype=dtype)
    assert t.output_activation == "identity" and "output_activation='identity'" in repr(t)
    f = t.dtype.type
    # The hidden layer as a one-layer tanh network of the same weights computes it.
    hidden = ReferenceTrainer((6, 4), activation="tanh", dtype=dtype, seed=0)
    hidden._set_parameters([t.weights[0]], [t.biases[0]])
    a1 = hidden.forward(X)[0]
    z2 = np.add.accumulate(t.weights[1] * a1[None, :], axis=1)[:, -1] + t.biases[1]  # sums in order
    output = t.forward(X)[0]
    assert_same_bits(output, z2, "the output is z")
    gw, gb = t.gradients(X, y)
    delta = output - y[0].astype(t.dtype)
    assert_same_bits(gb[1], delta / f(1), "output nudges: a − y")
    assert_same_bits(gw[1], (delta[:, None] * a1[None, :]) / f(1), "last layer's gradient")
    # Trained on targets far outside (0, 1), its outputs reach them: a sigmoid's could not.
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (200, 6))
    Y = X[:, :3] * np.array([3.0, -4.0, 2.0]) + 10.0
    t = cls((6, 8, 3), activation="tanh", output_activation="identity", learning_rate=0.01, momentum=0.5,
            init="scaled", batch_size=10, seed=1, dtype=dtype)
    t.fit(X, Y, 60)
    assert np.abs(t.forward(X) - Y).mean() < 0.2


@pytest.mark.parametrize("cls", TRAINERS)
@pytest.mark.parametrize("fma", [False, True])
def test_nesterov_steps_look_ahead_along_the_velocity(cls, fma):
    """Two one-example epochs with Nesterov's momentum, PyTorch's form written with the velocity
    in the parameters' units: v ← μv − η∇, w ← w + (μv − η∇), with the new v."""
    X, y = toy(n=1)
    eta, mu = 0.3, 0.9
    t = cls((6, 5, 3), momentum=mu, nesterov=True, learning_rate=eta, batch_size=1, seed=4, fma=fma)
    f = t.dtype.type
    W = [w.copy() for w in t.weights] + [x.copy() for x in t.biases]
    V = [np.zeros_like(w) for w in W]
    for _ in range(2):
        gw, gb = t.gradients(X, y)
        t.fit(X, y, 1)
        for l, g in enumerate(gw + gb):
            if fma:
                V[l] = fastmlp_fma(-f(eta), g, f(mu) * V[l])
                W[l] = W[l] + fastmlp_fma(-f(eta), g, f(mu) * V[l])  # d = 1: fma(1, w, ahead) = w + ahead
            else:
                V[l] = f(mu) * V[l] - f(eta) * g
                W[l] = W[l] + (f(mu) * V[l] - f(eta) * g)
        for l, p in enumerate(t.weights + t.biases):
            assert_same_bits(p, W[l], f"parameter {l}")
    plain = cls((6, 5, 3), momentum=mu, learning_rate=eta, batch_size=1, seed=4, fma=fma)
    plain.fit(X, y, 2)
    assert not np.array_equal(plain.weights[0], t.weights[0])


@pytest.mark.parametrize("cls", TRAINERS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_steps_are_kingma_and_bas_with_bias_correction(cls, dtype):
    """Three steps of Adam on a mini-batch of 4 examples, from gradients(), each written out:
    m ← β1m + (1−β1)g, v ← β2v + (1−β2)g², w ← d·w − η/(1−β1^t) · m/(√v/√(1−β2^t) + ε),
    with the decoupled L2 decay d and the biases undecayed."""
    X, y = toy(n=1)
    X, y = np.repeat(X, 4, axis=0), np.repeat(y, 4)  # four alike: the order the sums visit them is moot
    eta, lam, beta1, beta2, eps = 0.01, 0.3, 0.8, 0.95, 1e-3
    t = cls((6, 5, 3), optimizer="adam", betas=(beta1, beta2), eps=eps, l2=lam, learning_rate=eta,
            batch_size=4, seed=6, dtype=dtype)
    f = t.dtype.type
    params = [w.copy() for w in t.weights] + [b.copy() for b in t.biases]
    decays = [f(1 - eta * lam / 4)] * 2 + [f(1)] * 2
    M = [np.zeros_like(p) for p in params]
    V = [np.zeros_like(p) for p in params]
    for step in range(1, 4):
        gw, gb = t.gradients(X, y)  # G/m, which Adam's r·G equals to the last bit for m = 4
        t.fit(X, y, 1)
        power1, power2 = math.prod([beta1] * step), math.prod([beta2] * step)  # β^t as products in order
        a, k = f(eta / (1 - power1)), f(1 / np.sqrt(1 - power2))
        for l, g in enumerate(gw + gb):
            M[l] = f(beta1) * M[l] + (f(1) - f(beta1)) * g
            V[l] = f(beta2) * V[l] + (f(1) - f(beta2)) * (g * g)
            params[l] = decays[l] * params[l] - a * (M[l] / (np.sqrt(V[l]) * k + f(eps)))
        for l, p in enumerate(t.weights + t.biases):
            assert_same_bits(p, params[l], f"step {step}, parameter {l}")
    assert t._adam_powers.tolist() == [beta1 * beta1 * beta1, beta2 * beta2 * beta2]
    # Adam's steps are of the order of η whatever the gradient's scale: the first is ±η·(1 − small).
    u = cls((6, 5, 3), optimizer="adam", learning_rate=eta, batch_size=4, seed=6, dtype=dtype)
    before = u.biases[1].copy()
    u.fit(X * 1000, y, 1)
    np.testing.assert_allclose(np.abs(u.biases[1] - before), eta, rtol=1e-3)


def fit_recording_warnings(trainer, X, y, epochs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(X, y, epochs)
    return [str(w.message) for w in caught if issubclass(w.category, TrainingStalledWarning)]


@pytest.mark.parametrize("sizes, batch_size", [((20, 16, 3), 10), ((20, 16, 3), 1), ((20, 100, 3), 32)],
                         ids=["blocks", "one-example", "layers"])
def test_dead_relu_layers_are_warned_of_once_per_fit(sizes, batch_size):
    """A learning rate far too large kills every hidden ReLU unit: training goes on without a
    gradient, at chance accuracy. Both trainers say so, once per fit, naming the layer; the
    kernels' three ways through an epoch (blocks of examples, one example, a layer at a time)
    find it as the reference does."""
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (300, 20)), rng.integers(0, 3, 300)
    messages = []
    for cls in TRAINERS:
        t = cls(sizes, activation="relu", cost="cross_entropy", learning_rate=50.0, batch_size=batch_size, seed=1)
        messages.append(fit_recording_warnings(t, X, y, 4))
        assert t.score(X, y) < 0.4
        assert len(fit_recording_warnings(t, X, y, 2)) == 1  # again in the next fit
    assert messages[0] == messages[1] and len(messages[0]) == 1
    assert f"hidden layer 1 ({sizes[1]} relu units) was inactive for every example" in messages[0][0]
    assert "try a smaller learning rate than 50" in messages[0][0]


@pytest.mark.parametrize("cls", TRAINERS)
def test_a_dead_output_layer_and_saturated_sigmoids_are_warned_of(cls):
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0.5, 1, (100, 20)), rng.integers(0, 3, 100)
    # The quadratic cost over ReLU outputs: once they are all dead, δ^L = (a − y)·0 everywhere.
    t = cls((20, 16, 3), activation="relu", learning_rate=200.0, seed=1)
    (message,) = fit_recording_warnings(t, X, y, 3)
    assert "the output layer (3 relu units) was inactive" in message
    # Sigmoids so saturated that every a is exactly 0 or 1, where a·(1 − a) is 0.
    t = cls((20, 6, 3), cost="cross_entropy", learning_rate=0.1, seed=1)
    t.weights[0][...] = np.where(rng.random((6, 20)) < 0.5, -1e5, 1e5)
    (message,) = fit_recording_warnings(t, X, y, 1)
    assert "in epoch 1, hidden layer 1 (6 sigmoid units) was inactive" in message
    # Where the output's σ' is no factor of δ^L (a linear output layer), it is not looked at.
    t = cls((20, 6, 3), activation="relu", output_activation="identity", learning_rate=0.01, seed=1)
    t.biases[1][...] = -1e6  # outputs far below the targets: no harm to a linear layer
    assert fit_recording_warnings(t, X, y, 1) == []


@pytest.mark.parametrize("cls", TRAINERS)
def test_healthy_training_is_not_warned_of(cls):
    X, y = toy(n=200)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingStalledWarning)
        cls((6, 8, 8, 3), activation="relu", cost="log_likelihood", init="scaled", learning_rate=0.1, seed=0).fit(X, y, 3)
        cls((6, 8, 3), seed=0).fit(X, y, 3)


def splitmix_kept(key, counter, p):
    """Rule 11's draw, in Python's integers: whether the unit of ``counter`` is kept."""
    mask = 2**64 - 1
    z = (key + (counter + 1) * 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    z ^= z >> 31
    return (z >> 11) >= round(p * 2**53)


@pytest.mark.parametrize("cls", TRAINERS)
def test_dropout_drops_the_units_its_stream_names(cls):
    """One example, one step: the epoch's key comes from the generator after the permutation;
    the hidden units its stream drops pass nothing on, so the weights into them and out of them
    keep their values, and every other weight moves. forward() drops nothing."""
    rng = np.random.default_rng(3)
    X, y = rng.uniform(0.1, 1, (1, 6)), rng.integers(0, 3, 1)
    p = 0.5
    t = cls((6, 40, 3), activation="sigmoid", dropout=p, learning_rate=0.5, batch_size=1, seed=9)
    plain = cls((6, 40, 3), activation="sigmoid", learning_rate=0.5, batch_size=1, seed=9)
    before = [w.copy() for w in t.weights]
    assert_same_bits(t.forward(X), plain.forward(X), "forward, no dropout")
    generator = np.random.default_rng(9)  # the trainer's: its parameters, permutation, then the key
    for n_in, n_out in ((6, 40), (40, 3)):
        generator.standard_normal((n_out, n_in))
        generator.standard_normal(n_out)
    generator.permutation(1)
    key = int(generator.integers(0, 2**64, dtype=np.uint64))
    kept = np.array([splitmix_kept(key, 0 * 43 + u, p) for u in range(40)])  # row 0, units 0 … 39 of 43
    assert 5 < kept.sum() < 35
    t.fit(X, y, 1)
    assert np.array_equal(t.weights[0][~kept] == before[0][~kept], np.ones((40 - kept.sum(), 6), bool))
    assert np.array_equal(t.weights[1][:, ~kept], before[1][:, ~kept])
    assert (t.weights[0][kept] != before[0][kept]).all() and (t.weights[1][:, kept] != before[1][:, kept]).all()


@pytest.mark.parametrize("cls", TRAINERS)
def test_scaled_init_divides_standard_normals_by_root_fan_in(cls):
    t = cls((9, 4, 2), init="scaled", seed=7, dtype="float32")
    rng = np.random.default_rng(7)
    for l, (n_in, n_out) in enumerate([(9, 4), (4, 2)]):
        expected_W = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        expected_b = rng.standard_normal(n_out).astype(np.float32)
        assert_same_bits(t.weights[l], expected_W)
        assert_same_bits(t.biases[l], expected_b)


@pytest.mark.parametrize("cls", TRAINERS)
def test_softmax_outputs_are_probabilities(cls):
    X, _ = toy()
    t = cls((6, 8, 5), cost="log_likelihood", seed=1)
    A = t.forward(X * 50)  # large inputs: the softmax must not overflow
    assert np.isfinite(A).all() and (A >= 0).all()
    assert np.abs(A.sum(axis=1) - 1).max() < 1e-14
    # a_j = e^{z_j} / Σ e^{z_k}, with z from the hidden layer computed here.
    h = 1 / (1 + np.exp(-(X * 50 @ t.weights[0].T + t.biases[0])))
    z = h @ t.weights[1].T + t.biases[1]
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(A, expected / expected.sum(axis=1, keepdims=True), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("cost", ["cross_entropy", "log_likelihood"])
def test_train_cost_is_the_mean_of_the_textbook_cost(cost):
    """One mini-batch holding everything: the epoch's cost is that of the parameters before the step."""
    X, y = toy(n=30)
    t = Trainer((6, 7, 3), cost=cost, batch_size=30, seed=5)
    A = t.forward(X)
    Y = one_hot(y, 3)
    if cost == "cross_entropy":
        expected = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / 30
    else:
        expected = -np.sum(np.log(A[np.arange(30), y])) / 30
    h = t.fit(X, y, 1)
    assert abs(h.train_cost[0] - expected) < 1e-13 * expected


def test_a_saturated_cross_entropy_output_costs_100_not_infinity():
    """ln is floored at −100, so a confidently wrong output gives a large, finite cost and trains on."""
    X = np.ones((1, 2))
    t = Trainer((2, 1), cost="cross_entropy", seed=0, learning_rate=0.1)
    t.weights[0][...] = 500.0  # z = 1000: the sigmoid rounds to exactly 1
    t.biases[0][...] = 0.0
    assert t.forward(X)[0, 0] == 1.0
    h = t.fit(X, np.zeros((1, 1)), 1)  # the target is 0: −ln(1 − a) = −ln 0
    assert h.train_cost == [100.0]
    assert t.weights[0][0, 0] < 500.0  # δ = a − y = 1 still moves it


@pytest.mark.parametrize("cls", TRAINERS)
def test_step_decay_equals_setting_the_rate_by_hand(cls):
    X, y = toy(n=50)
    a = cls((6, 5, 3), learning_rate=2.0, schedule=StepDecay(every=2, factor=0.25), seed=3, batch_size=7)
    b = cls((6, 5, 3), learning_rate=2.0, seed=3, batch_size=7)
    a.fit(X, y, 5)
    for epoch in range(1, 6):
        b.learning_rate = 2.0 * 0.25 ** ((epoch - 1) // 2)
        b.fit(X, y, 1)
    assert_trainers_agree(a, b)
    assert StepDecay(10, 0.5)(3.0, 1) == 3.0 and StepDecay(10, 0.5)(3.0, 11) == 1.5


@pytest.mark.parametrize("cls", TRAINERS)
def test_early_stopping_keeps_the_best_epoch(cls):
    """The kept parameters are those of a trainer stopped by hand after the best epoch."""
    rng = np.random.default_rng(8)
    X, y = rng.uniform(-1, 1, (60, 4)), rng.integers(0, 2, 60)  # noise: validation accuracy wanders
    X_val, y_val = rng.uniform(-1, 1, (40, 4)), rng.integers(0, 2, 40)
    kwargs = dict(learning_rate=3.0, batch_size=5, seed=6, momentum=0.5)
    t = cls((4, 12, 2), **kwargs)
    h = t.fit(X, y, 40, validation_data=(X_val, y_val), early_stopping=3)
    accuracies = h.validation_accuracy
    best = h.best_epoch
    assert accuracies[best - 1] == max(accuracies)
    assert accuracies.index(max(accuracies)) == best - 1  # the first epoch reaching it
    assert len(h) == best + 3 or len(h) == 40
    assert all(a <= accuracies[best - 1] for a in accuracies[best:])
    assert len(h) < 40  # the noise makes it stop early; otherwise the check below says little
    by_hand = cls((4, 12, 2), **kwargs)
    by_hand.fit(X, y, best)
    assert_trainers_agree(t, by_hand)
    assert_same_bits(np.concatenate([v.ravel() for v in t._slots()[0][0]]),
                     np.concatenate([v.ravel() for v in by_hand._slots()[0][0]]), "velocities")


def test_early_stopping_needs_validation_data():
    X, y = toy()
    with pytest.raises(ValueError, match="early_stopping needs validation_data"):
        Trainer((6, 3)).fit(X, y, 2, early_stopping=2)
    with pytest.raises(ValueError, match="early_stopping must be >= 1"):
        Trainer((6, 3)).fit(X, y, 2, validation_data=(X, y), early_stopping=0)


@pytest.mark.parametrize("cls", TRAINERS)
def test_callbacks_returning_false_stop_training(cls):
    X, y = toy()
    seen = []
    h = cls((6, 3), seed=0).fit(X, y, 10, callbacks=[seen.append, lambda r: r.epoch < 3])
    assert len(h) == 3 and [r.epoch for r in seen] == [1, 2, 3]


RESUMABLE = {
    "momentum": dict(momentum=0.8, learning_rate=0.2),
    "nesterov": dict(momentum=0.8, nesterov=True, learning_rate=0.2),
    "adam": dict(optimizer="adam", betas=(0.8, 0.99), eps=1e-6, learning_rate=0.01),
    "dropout": dict(momentum=0.5, dropout=0.3, learning_rate=0.2),
}


@pytest.mark.parametrize("optimizer", RESUMABLE)
@pytest.mark.parametrize("load_as", TRAINERS)
@pytest.mark.parametrize("cls", TRAINERS)
def test_train_save_load_train_equals_training_at_once(cls, load_as, tmp_path, optimizer):
    """2 epochs, save, load, 3 more: the bits of 5 epochs, the optimizer's state (velocities,
    Adam's moments and step count) and generator included."""
    X, y = toy(n=70)
    kwargs = dict(activation="tanh", cost="log_likelihood", l2=0.5, init="scaled",
                  schedule=StepDecay(2, 0.5), batch_size=8, dtype="float32", **RESUMABLE[optimizer])
    whole = cls((6, 9, 3), seed=12, **kwargs)
    whole.fit(X, y, 5)
    first = cls((6, 9, 3), seed=12, **kwargs)
    first.fit(X, y, 2)
    first.save(tmp_path / "m.npz")
    resumed = load_as.load(tmp_path / "m.npz")
    assert repr(resumed).replace(load_as.__name__, "") == repr(first).replace(cls.__name__, "")
    resumed.fit(X, y, 3)
    assert_trainers_agree(resumed, whole)
    assert [r.epoch for r in resumed.history.epochs] == [1, 2, 3, 4, 5]


BAD_OPTIONS = [
    (dict(cost="cross-entropy"), ValueError, "cost must be one of 'quadratic', 'cross_entropy', 'log_likelihood'"),
    (dict(cost="log_likelihood", layer_sizes=(4, 1)), ValueError, "needs at least 2 output neurons"),
    (dict(activation="softmax"), ValueError, "activation must be one of 'sigmoid', 'relu', 'tanh'"),
    (dict(l2=-1.0), ValueError, "l2 must be finite, >= 0.0"),
    (dict(l2=float("nan")), ValueError, "l2 must be finite"),
    (dict(l2="5"), TypeError, "l2 must be a real number"),
    (dict(momentum=1.0), ValueError, r"momentum must be finite, >= 0.0 and < 1.0, got 1.0"),
    (dict(momentum=-0.1), ValueError, "momentum must be finite"),
    (dict(init="xavier"), ValueError, "init must be one of 'standard', 'scaled'"),
    (dict(nesterov=True), ValueError, "nesterov=True needs momentum > 0"),
    (dict(nesterov=1, momentum=0.5), TypeError, "nesterov must be True or False"),
    (dict(optimizer="rmsprop"), ValueError, "optimizer must be one of 'sgd', 'adam'"),
    (dict(optimizer="adam", momentum=0.9), ValueError, "momentum belongs to optimizer='sgd'"),
    (dict(betas=(0.9,)), TypeError, "betas must be a pair"),
    (dict(betas=(0.9, 1.0)), ValueError, "betas\\[1\\] must be finite, >= 0.0 and < 1.0"),
    (dict(betas=(0.9, 0.99999999), dtype="float32"), ValueError, "betas\\[1\\] 0.99999999 is 1.0 in float32"),
    (dict(eps=0.0), ValueError, "eps must be > 0"),
    (dict(eps=1e-50, dtype="float32"), ValueError, "eps must be > 0 in float32"),
    (dict(eps=float("inf")), ValueError, "eps must be finite"),
    (dict(dropout=1.0), ValueError, "dropout must be finite, >= 0.0 and < 1.0"),
    (dict(dropout=-0.1), ValueError, "dropout must be finite"),
    (dict(dropout=0.5, layer_sizes=(4, 3)), ValueError, "dropout acts on hidden layers, and this network has none"),
    (dict(output_activation="softmax"), ValueError,
     "output_activation must be one of 'sigmoid', 'relu', 'tanh', 'identity', got 'softmax'"),
    (dict(output_activation="linear"), ValueError, "output_activation must be one of"),
    (dict(cost="cross_entropy", output_activation="identity"), ValueError,
     "cost='cross_entropy' needs output_activation='sigmoid' \\(or None\\)"),
    (dict(cost="log_likelihood", output_activation="sigmoid"), ValueError,
     "cost='log_likelihood' needs output_activation='softmax'"),
    (dict(schedule="step"), TypeError, "schedule must be None, 'constant' or a fastmlp.StepDecay"),
    (dict(schedule=lambda e: 0.1), TypeError, "schedule must be None"),
]


@pytest.mark.parametrize("cls", TRAINERS)
@pytest.mark.parametrize("options, error, message", BAD_OPTIONS)
def test_bad_options_are_refused_clearly(cls, options, error, message):
    options = dict(options)
    sizes = options.pop("layer_sizes", (4, 3))
    with pytest.raises(error, match=message):
        cls(sizes, **options)


def test_bad_step_decays_are_refused():
    with pytest.raises(ValueError, match="every must be >= 1"):
        StepDecay(0)
    with pytest.raises(TypeError, match="every must be an integer"):
        StepDecay(2.5)
    with pytest.raises(ValueError, match=r"factor must lie in \(0, 1\]"):
        StepDecay(3, 1.5)


def test_an_l2_too_strong_for_the_data_is_refused_before_training():
    X, y = toy(n=10)
    t = Trainer((6, 3), l2=5.0, learning_rate=3.0, seed=0)  # 1 − 3·5/10 < 0
    before = t.weights[0].copy()
    with pytest.raises(ValueError, match="l2=5.0 is too strong for learning_rate=3.0 and 10 examples"):
        t.fit(X, y, 1)
    assert_same_bits(t.weights[0], before)
    assert len(t.history) == 0


@pytest.mark.parametrize("cls", TRAINERS)
def test_targets_must_suit_the_cost(cls):
    X, y = toy(n=5)
    with pytest.raises(ValueError, match=r"with cost='cross_entropy', targets must lie in \[0, 1\]"):
        cls((6, 3), cost="cross_entropy").fit(X, np.full((5, 3), 2.0))
    with pytest.raises(ValueError, match="each row of targets must be a probability distribution"):
        cls((6, 3), cost="log_likelihood").fit(X, np.full((5, 3), 0.5))
    soft = np.full((5, 3), 1 / 3)
    cls((6, 3), cost="log_likelihood", dtype="float32").fit(X, soft)  # sums to 1 within float32 rounding
    cls((6, 3)).fit(X, np.full((5, 3), 2.0))  # the quadratic cost takes any targets


@pytest.mark.parametrize("cls", TRAINERS)
def test_numpy_false_from_a_callback_stops_training(cls):
    X, y = toy()
    h = cls((6, 3), seed=0).fit(X, y, 5, callbacks=lambda r: np.float64(r.epoch) < 2)
    assert len(h) == 2


@pytest.mark.parametrize("bad", [None, 1, "print"])
def test_callbacks_must_be_callables(bad):
    X, y = toy()
    with pytest.raises(TypeError, match="callbacks must be a callable or a list or tuple of them"):
        Trainer((6, 3)).fit(X, y, 1, callbacks=bad)


def test_a_momentum_that_rounds_to_one_is_refused():
    with pytest.raises(ValueError, match="momentum 0.99999999 is 1.0 in float32"):
        Trainer((2, 2), momentum=0.99999999, dtype="float32")
    Trainer((2, 2), momentum=0.99999999)  # below 1 in float64


def test_an_array_is_not_a_schedule():
    with pytest.raises(TypeError, match="schedule must be None, 'constant' or a fastmlp.StepDecay"):
        Trainer((2, 2), schedule=np.array([1, 2]))


@pytest.mark.parametrize("cls", TRAINERS)
def test_early_stopping_in_one_fit_call_then_another(cls):
    """Each call watches its own epochs; the generator carries on, as after any fit."""
    rng = np.random.default_rng(8)
    X, y = rng.uniform(-1, 1, (60, 4)), rng.integers(0, 2, 60)
    X_val, y_val = rng.uniform(-1, 1, (40, 4)), rng.integers(0, 2, 40)
    t = cls((4, 12, 2), learning_rate=3.0, batch_size=5, seed=6)
    first = t.fit(X, y, 40, validation_data=(X_val, y_val), early_stopping=3)
    kept = [w.copy() for w in t.weights]
    assert t.score(X_val, y_val) == max(first.validation_accuracy)
    second = t.fit(X, y, 40, validation_data=(X_val, y_val), early_stopping=3)
    assert second.best_epoch > len(first) and second.epochs[0].epoch == len(first) + 1
    assert t.score(X_val, y_val) == max(second.validation_accuracy)
    if second.best_epoch == len(first) + len(second):
        assert not np.array_equal(kept[0], t.weights[0])


def test_reference_views_stay_live_after_a_restore():
    X, y = toy()
    t = ReferenceTrainer((6, 3), seed=0)
    W = t.weights[0]
    t.fit(X, y, 3, validation_data=(X, y), early_stopping=1)
    assert W is t.weights[0]
