"""The public surface: arguments, shapes, history, errors, determinism."""

import copy
import pickle

import numpy as np
import pytest
from helpers import assert_same_fits, assert_trainers_agree

import fastmlp
from fastmlp import DivergenceError, ReferenceTrainer, Trainer

BOTH = pytest.mark.parametrize("cls", [Trainer, ReferenceTrainer])


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (30, 4)), rng.integers(0, 3, 30)


@BOTH
def test_shapes_and_dtypes(cls, data):
    X, y = data
    t = cls((4, 5, 3), dtype="float32")
    assert [w.shape for w in t.weights] == [(5, 4), (3, 5)]
    assert [b.shape for b in t.biases] == [(5,), (3,)]
    assert all(p.dtype == np.float32 for p in t.weights + t.biases)
    assert t.forward(X).shape == (30, 3) and t.forward(X).dtype == np.float32
    assert t.predict(X).shape == (30,)
    assert 0.0 <= t.score(X, y) <= 1.0
    grad_w, grad_b = t.gradients(X, y)
    assert [g.shape for g in grad_w] == [(5, 4), (3, 5)] and [g.shape for g in grad_b] == [(5,), (3,)]


@BOTH
def test_history(cls, data):
    X, y = data
    t = cls((4, 5, 3), seed=0, learning_rate=1.0)
    h = t.fit(X, y, 3, validation_data=(X, y))
    assert len(h) == 3 and [r.epoch for r in h.epochs] == [1, 2, 3]
    assert all(c > 0 for c in h.train_cost) and all(s >= 0 for s in h.seconds)
    assert h.validation_accuracy[-1] == t.score(X, y)
    assert h.as_dicts()[0].keys() == {"epoch", "train_cost", "seconds", "validation_accuracy"}
    assert cls((4, 5, 3)).fit(X, y, 2).validation_accuracy == [None, None]
    assert t.fit(X, y, 1).epochs[0].epoch == 4
    assert len(t.fit(X, y, 0)) == 0


@BOTH
def test_training_learns(cls):
    """A linearly separable problem: accuracy climbs well above chance and the cost falls."""
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (400, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    t = cls((2, 8, 2), seed=0, learning_rate=3.0, batch_size=10)
    h = t.fit(X, y, 20)
    assert h.train_cost[-1] < h.train_cost[0]
    assert t.score(X, y) > 0.9


def test_train_cost_is_the_mean_half_squared_error_before_each_step():
    """With one batch, the epoch's cost is the cost of the starting parameters."""
    rng = np.random.default_rng(2)
    X, y = rng.uniform(size=(12, 3)), rng.integers(0, 2, 12)
    t = Trainer((3, 2), seed=1, batch_size=100)
    expected = float(np.mean(0.5 * np.sum((t.forward(X) - np.eye(2)[y]) ** 2, axis=1)))
    assert t.fit(X, y, 1).train_cost[0] == pytest.approx(expected, rel=1e-14)


def test_seed_sequence_and_huge_batch_size(data):
    X, y = data
    a = Trainer((4, 5, 3), seed=np.random.SeedSequence(7), batch_size=2**70)
    b = ReferenceTrainer((4, 5, 3), seed=np.random.SeedSequence(7), batch_size=2**70)
    a.fit(X, y, 2)
    b.fit(X, y, 2)
    assert_trainers_agree(a, b)


def test_seed_fixes_everything(data):
    X, y = data
    a, b, c = Trainer((4, 5, 3), seed=9), Trainer((4, 5, 3), seed=9), Trainer((4, 5, 3), seed=10)
    for t in (a, b, c):
        t.fit(X, y, 2)
    assert_trainers_agree(a, b)
    assert not np.array_equal(a.weights[0], c.weights[0])


def test_float32_starts_from_the_rounded_float64_parameters():
    a, b = Trainer((3, 4, 2), seed=5), Trainer((3, 4, 2), seed=5, dtype="float32")
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        assert np.array_equal(x.astype(np.float32), y)


def test_weights_are_live_views(data):
    X, _ = data
    t = Trainer((4, 5, 3))
    t.weights[0][...] = 0
    t.biases[0][...] = 0
    # All hidden sigmoids are 0.5 now, whatever the input.
    out = t.forward(X)
    assert np.array_equal(out, np.repeat(out[:1], len(X), axis=0))


def test_predict_takes_the_first_of_equal_outputs():
    t = Trainer((2, 3))
    t.weights[0][...] = 0
    t.biases[0][...] = [1.0, 1.0, 0.0]
    assert t.predict(np.ones((4, 2))).tolist() == [0, 0, 0, 0]


def test_score_accepts_one_hot(data):
    X, y = data
    t = Trainer((4, 5, 3), seed=0)
    assert t.score(X, np.eye(3)[y]) == t.score(X, y)


@BOTH
def test_divergence_keeps_the_last_good_parameters(cls, data):
    X, y = data
    t = cls((4, 50, 3), activation="relu", learning_rate=1e300, seed=0)
    before = [w.copy() for w in t.weights] + [b.copy() for b in t.biases]
    with pytest.raises(DivergenceError, match="epoch 1.*smaller learning rate") as info:
        t.fit(X, np.eye(3)[y] * 1e300, 1)
    assert all(np.array_equal(a, b) for a, b in zip(before, t.weights + t.biases))
    assert len(info.value.history) == 0
    assert np.isfinite(t.forward(X)).all()


def test_repr_and_build_info():
    assert repr(Trainer((3, 2), seed=1)).startswith("Trainer((3, 2), activation='sigmoid'")
    info = fastmlp.build_info()
    assert isinstance(info["openmp"], bool) and "-ffp-contract=off" in info["compile_flags"]
    assert "-ffast-math" not in info["compile_flags"]
    assert info["vector_bytes"] in (16, 32, 64)


@BOTH
def test_fma_is_stored_as_a_python_bool(cls):
    assert cls((4, 2)).fma is False
    assert cls((4, 2), fma=True).fma is True
    assert cls((4, 2), fma=np.bool_(True)).fma is True
    assert cls((4, 2), fma=np.bool_(False)).fma is False


def test_repr_shows_fma_only_when_set():
    assert "fma" not in repr(Trainer((3, 2), seed=1))
    t = ReferenceTrainer((3, 2), seed=1, fma=True)
    assert "activation='sigmoid', fma=True, learning_rate=3.0" in repr(t)
    assert eval(repr(t), {"ReferenceTrainer": ReferenceTrainer}).fma is True


@BOTH
def test_pickles_and_copies_keep_fma(cls):
    t = cls((4, 3), seed=0, fma=True)
    for u in (pickle.loads(pickle.dumps(t)), copy.deepcopy(t), copy.copy(t)):
        assert u.fma is True
    assert pickle.loads(pickle.dumps(cls((4, 3)))).fma is False


@BOTH
def test_fma_trains_to_other_bits(cls, data):
    X, y = data
    plain, fused = cls((4, 5, 3), seed=0), cls((4, 5, 3), seed=0, fma=True)
    plain.fit(X, y, 2)
    fused.fit(X, y, 2)
    assert not all(np.array_equal(a, b) for a, b in zip(plain.weights + plain.biases, fused.weights + fused.biases))


@BOTH
def test_a_pickled_fused_trainer_trains_on_alike(cls, data):
    X, y = data
    t = cls((4, 5, 3), seed=0, fma=True, momentum=0.5, l2=0.1)
    t.fit(X, y, 1)
    assert_same_fits(t, pickle.loads(pickle.dumps(t)), X, y, 2)


BAD_CONSTRUCTORS = [
    (dict(layer_sizes=(784,)), ValueError, "at least an input and an output"),
    (dict(layer_sizes=(4, 0, 2)), ValueError, r"layer_sizes\[1\] must be >= 1"),
    (dict(layer_sizes=(4, -3)), ValueError, r"layer_sizes\[1\] must be >= 1"),
    (dict(layer_sizes=(4, 2.5)), TypeError, r"layer_sizes\[1\] must be an integer"),
    (dict(layer_sizes="784,10"), TypeError, "sequence of integers"),
    (dict(layer_sizes=(4, 2), activation="tanhh"), ValueError, "activation must be one of"),
    (dict(layer_sizes=(4, 2), learning_rate=0), ValueError, "learning_rate must be finite and > 0"),
    (dict(layer_sizes=(4, 2), learning_rate=float("nan")), ValueError, "learning_rate"),
    (dict(layer_sizes=(4, 2), learning_rate="3"), TypeError, "learning_rate must be a real number"),
    (dict(layer_sizes=(4, 2), batch_size=0), ValueError, "batch_size must be >= 1"),
    (dict(layer_sizes=(4, 2), batch_size=2.0), TypeError, "batch_size must be an integer"),
    (dict(layer_sizes=(4, 2), dtype="float16"), ValueError, "dtype must be 'float32' or 'float64'"),
    (dict(layer_sizes=(4, 2), dtype="nonsense"), ValueError, "dtype must be"),
    (dict(layer_sizes=(4, 2), dtype=None), ValueError, "dtype must be"),
    (dict(layer_sizes=(4, 2), dtype=int), ValueError, "dtype must be"),
    (dict(layer_sizes=(4, 2), threads=0), ValueError, "threads must be >= 1"),
    (dict(layer_sizes=(4, 2), threads=True), TypeError, "threads must be an integer"),
    (dict(layer_sizes=(4, 2), threads=10**6), ValueError, "threads must be <= 256"),
    (dict(layer_sizes=(4, 2), seed=-1), ValueError, "seed must be >= 0"),
    (dict(layer_sizes=(4, 2), seed=1.5), TypeError, "seed must be None, a non-negative integer"),
    (dict(layer_sizes=(4, 2), seed=np.random.default_rng(0)), TypeError, "seed must be None"),
    (dict(layer_sizes=(4, 2), learning_rate=1e-50, dtype="float32"), ValueError, "is 0.0 in float32"),
    (dict(layer_sizes=(4, 2), learning_rate=1e39, dtype="float32"), ValueError, "is inf in float32"),
    (dict(layer_sizes=(4, 2), fma=1), TypeError, "fma must be True or False, got 1 of type int"),
    (dict(layer_sizes=(4, 2), fma=0.0), TypeError, "fma must be True or False, got 0.0 of type float"),
    (dict(layer_sizes=(4, 2), fma="yes"), TypeError, "fma must be True or False, got 'yes' of type str"),
    (dict(layer_sizes=(4, 2), fma=None), TypeError, "fma must be True or False, got None of type NoneType"),
    (dict(layer_sizes=(4, 2), fma=np.int64(1)), TypeError, "fma must be True or False, got .* of type int64"),
]


@BOTH
@pytest.mark.parametrize("kwargs, error, message", BAD_CONSTRUCTORS)
def test_bad_constructor_arguments(cls, kwargs, error, message):
    kwargs = dict(kwargs)
    with pytest.raises(error, match=message):
        cls(kwargs.pop("layer_sizes"), **kwargs)


def _bad_fit_calls():
    X, y = np.zeros((6, 4)), np.zeros(6, dtype=int)
    return [
        ((X[:, :3], y), {}, ValueError, r"X must have shape \(n_samples, 4\), got shape \(6, 3\)"),
        ((X[0], y), {}, ValueError, "X must have shape"),
        ((X[:0], y[:0]), {}, ValueError, "X holds no samples"),
        ((X.astype(complex), y), {}, TypeError, "X must hold real numbers"),
        ((X.astype(object), y), {}, TypeError, "X must hold real numbers"),
        ((X.astype(str), y), {}, TypeError, "X must hold real numbers"),
        ((np.full((6, 4), np.nan), y), {}, ValueError, "X contains NaN or infinite"),
        ((X, y[:5]), {}, ValueError, r"y must be labels of shape \(6,\)"),
        ((X, y + 3), {}, ValueError, r"labels must lie in \[0, 2\]"),
        ((X, y - 1), {}, ValueError, r"labels must lie in \[0, 2\]"),
        ((X, y.astype(float)), {}, TypeError, "labels must have an integer dtype"),
        ((X, np.zeros((6, 2))), {}, ValueError, r"targets of shape \(6, 3\)"),
        ((X, np.full((6, 3), np.inf)), {}, ValueError, "y contains NaN or infinite"),
        ((X, y), dict(epochs=-1), ValueError, "epochs must be >= 0"),
        ((X, y), dict(validation_data=X), TypeError, r"validation_data must be a pair"),
        ((X, y), dict(validation_data=(X[:, :2], y)), ValueError, r"validation_data\[0\] must have shape"),
        ((X, y), dict(validation_data=(X, y[:2])), ValueError, r"validation_data\[1\] must be labels"),
    ]


@BOTH
@pytest.mark.parametrize("args, kwargs, error, message", _bad_fit_calls())
def test_bad_fit_arguments(cls, args, kwargs, error, message):
    t = cls((4, 5, 3), seed=0)
    before = [w.copy() for w in t.weights]
    with pytest.raises(error, match=message):
        t.fit(*args, **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(before, t.weights))


def test_integer_and_bool_inputs_are_converted(data):
    X, y = data
    t = Trainer((4, 5, 3), seed=0)
    assert np.array_equal(t.forward((X > 0.5).astype(int)), t.forward((X > 0.5).astype(float)))
    assert np.array_equal(t.forward(X > 0.5), t.forward((X > 0.5).astype(float)))


def test_inputs_and_targets_beyond_float32s_range_are_named_as_such():
    t = Trainer((2, 1), dtype="float32")
    with pytest.raises(ValueError, match="X holds values beyond the range of float32"):
        t.forward(np.array([[1e300, 0.0]]))
    with pytest.raises(ValueError, match="X contains NaN or infinite values"):
        t.forward(np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="y holds values beyond the range of float32"):
        t.fit(np.zeros((1, 2)), np.array([[1e300]]))
