"""The promise: Trainer and ReferenceTrainer hold the same bits after any training.

Hypothesis draws the network, the data, the seed, the dtype, the batch size
(dividing the data or not, 1, larger than the data), the thread count, the
memory layout of the inputs, the training options (activation, cost, output
activation, L2, the optimizer: SGD, momentum, Nesterov's, Adam; initialisation,
schedule, dropout) and the arithmetic contract (fma);
every array both trainers produce is then compared bit for bit.
"""

import numpy as np
import pytest
from helpers import (
    assert_same_bits,
    assert_same_fits,
    assert_same_outputs_and_gradients,
    assert_trainers_agree,
    contracts,
    optimizers,
    output_activations,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from fastmlp import ReferenceTrainer, StepDecay, Trainer, _dispatch

# Every test here runs with each kernel variant the CPU can run (conftest.py).
pytestmark = pytest.mark.usefixtures("each_kernel_variant")

LAYOUTS = ["contiguous", "fortran", "strided", "readonly", "float32", "float64"]


def lay_out(X, layout):
    """The same values as X, held in memory the way `layout` names."""
    if layout == "fortran":
        return np.asfortranarray(X)
    if layout == "strided":
        wide = np.zeros((X.shape[0] * 2, X.shape[1] * 3), dtype=X.dtype)
        wide[::2, ::3] = X
        return wide[::2, ::3]
    if layout == "readonly":
        X = X.copy()
        X.flags.writeable = False
        return X
    if layout in ("float32", "float64"):
        return X.astype(layout)
    return X


@st.composite
def configurations(draw):
    n_weight_layers = draw(st.integers(1, 3))
    # Narrow layers, and layers wide enough for the kernels' register blocks
    # (8 float64 or 16 float32 outputs, 4 examples, 4 weight rows).
    width = st.one_of(st.integers(1, 9), st.integers(10, 40))
    sizes = tuple(draw(st.lists(width, min_size=n_weight_layers + 1, max_size=n_weight_layers + 1)))
    # Mini-batches above 64 examples take their gradient sums in several sweeps.
    n = draw(st.one_of(st.integers(1, 40), st.integers(65, 150)))
    batch_size = draw(st.one_of(st.integers(1, 12), st.integers(n, n + 5), st.integers(30, 140)))
    costs = ["quadratic", "cross_entropy"] + (["log_likelihood"] if sizes[-1] > 1 else [])
    cost = draw(st.sampled_from(costs))
    return dict(
        sizes=sizes,
        n=n,
        epochs=draw(st.integers(1, 3)),
        layout=draw(st.sampled_from(LAYOUTS)),
        float_targets=draw(st.booleans()),
        kwargs=dict(
            activation=draw(st.sampled_from(["sigmoid", "relu", "tanh"])),
            cost=cost,
            output_activation=draw(output_activations(cost)),
            # λ·η/n stays below 1 for every n and η drawn here.
            l2=draw(st.sampled_from([0.0, 0.05, 0.3])),
            **draw(optimizers([0.5, 0.9])),
            dropout=draw(st.sampled_from([0.0, 0.0, 0.3, 0.5])) if len(sizes) > 2 else 0.0,
            init=draw(st.sampled_from(["standard", "scaled"])),
            schedule=draw(st.sampled_from([None, StepDecay(1, 0.5), StepDecay(2, 0.1)])),
            batch_size=batch_size,
            seed=draw(st.integers(0, 2**32 - 1)),
            dtype=draw(st.sampled_from(["float32", "float64"])),
            threads=draw(st.sampled_from([1, 2, 3])),
            fma=draw(st.sampled_from(contracts())),
        ),
    )


def make_data(config):
    rng = np.random.default_rng(config["kwargs"]["seed"] ^ 0x5EED)
    n, sizes = config["n"], config["sizes"]
    X = lay_out(rng.uniform(-2, 2, (n, sizes[0])), config["layout"])
    if config["float_targets"]:
        # A linear output layer's targets may lie anywhere.
        high = 3 if config["kwargs"]["output_activation"] == "identity" else 1
        y = rng.uniform(1 - high, high, (n, sizes[-1]))
        if config["kwargs"]["cost"] == "log_likelihood":
            y /= y.sum(axis=1, keepdims=True)  # soft labels: the softmax's targets are distributions
    else:
        y = rng.integers(0, sizes[-1], n)
    return X, y


@settings(max_examples=5 * settings.default.max_examples)
@given(config=configurations())
def test_fit_gives_the_same_bits(config):
    X, y = make_data(config)
    t = Trainer(config["sizes"], **config["kwargs"])
    r = ReferenceTrainer(config["sizes"], **config["kwargs"])
    assert_trainers_agree(t, r, "initial")
    assert_same_fits(t, r, X, y, config["epochs"], validation_data=(X, y))
    assert_same_outputs_and_gradients(t, r, X, y)


ODD_OPTIONS = [
    dict(activation="sigmoid"),
    dict(activation="relu", momentum=0.5, nesterov=True),
    dict(activation="tanh", cost="log_likelihood", momentum=0.9, l2=2.0),
    dict(activation="relu", optimizer="adam", l2=1.0, output_activation="identity", dropout=0.4),
    dict(activation="sigmoid", cost="cross_entropy", l2=5.0, init="scaled"),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dropout_gives_the_same_bits_on_any_number_of_threads(dtype):
    """The masks come from the rows and units alone: one, two and three threads, in blocks of
    examples or a layer at a time, train the reference's bits."""
    rng = np.random.default_rng(5)
    X, y = rng.uniform(0, 1, (200, 50)), rng.integers(0, 10, 200)
    kwargs = dict(activation="relu", cost="log_likelihood", init="scaled", dropout=0.5, learning_rate=0.1,
                  momentum=0.9, batch_size=64, seed=2, dtype=dtype)
    r = ReferenceTrainer((50, 130, 70, 10), **kwargs)
    r.fit(X, y, 2)
    for by_layers in (True, False):
        for threads in (1, 2, 3):
            t = Trainer((50, 130, 70, 10), threads=threads, **kwargs)
            t._by_layers = by_layers
            t.fit(X, y, 2)
            assert_trainers_agree(t, r, f"threads={threads}, by_layers={by_layers}")


@pytest.mark.parametrize("fma", contracts())
@pytest.mark.parametrize("batch_size", [32, 150])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("options", ODD_OPTIONS, ids=lambda o: "-".join(map(str, o.values())))
def test_odd_sizes_with_threads(dtype, options, batch_size, fma):
    """Wider, odd layers than hypothesis draws, so that two or three threads split real work."""
    rng = np.random.default_rng(7)
    X, y = rng.uniform(0, 1, (301, 67)), rng.integers(0, 10, 301)
    kwargs = dict(learning_rate=0.3, batch_size=batch_size, seed=11, dtype=dtype, fma=fma, **options)
    r = ReferenceTrainer((67, 37, 23, 10), **kwargs)
    r.fit(X, y, 2)
    for threads in (1, 2, 3):
        t = Trainer((67, 37, 23, 10), threads=threads, **kwargs)
        t.fit(X, y, 2)
        assert_trainers_agree(t, r, f"threads={threads}")
        assert_same_bits(t.forward(X), r.forward(X), "forward")


@given(
    sizes=st.lists(st.integers(1, 300), min_size=2, max_size=6),
    parts=st.integers(1, 64),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_threads_split_the_weight_rows_exactly(sizes, parts, dtype):
    """Each layer's weight rows go to the threads in contiguous ranges that cover them once,
    cut at whole gradient blocks or at the layer's end: no row summed twice or never."""
    out = np.empty((parts, len(sizes) - 1, 2), dtype=np.intp)
    _dispatch.kernels.row_ranges(np.array(sizes, dtype=np.intp), np.zeros(1, dtype), out)
    rows = _dispatch.kernels.GRADIENT_ROWS[dtype]
    for l, n in enumerate(sizes[:-1]):
        first, end = out[:, l, 0], out[:, l, 1]
        assert first[0] == 0 and end[-1] == n
        assert np.array_equal(first[1:], end[:-1]) and np.all(first <= end)
        assert all(cut % rows == 0 or cut == n for cut in end)


@given(
    sizes=st.lists(st.integers(1, 20), min_size=2, max_size=5),
    parts=st.integers(1, 8),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_threads_get_near_equal_shares_of_the_weights(sizes, parts, dtype):
    """With every layer's outputs whole blocks of 16, each thread's weights differ from an
    equal share by one block of rows at most, and by the rounding of its two cuts to whole
    vector operations (16 weights at most each)."""
    sizes = [sizes[0]] + [16 * s for s in sizes[1:]]
    out = np.empty((parts, len(sizes) - 1, 2), dtype=np.intp)
    _dispatch.kernels.row_ranges(np.array(sizes, dtype=np.intp), np.zeros(1, dtype), out)
    rows = _dispatch.kernels.GRADIENT_ROWS[dtype]
    weights = [sum((e - f) * n_out for (f, e), n_out in zip(part, sizes[1:])) for part in out]
    block = rows * max(sizes[1:])
    total = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    assert sum(weights) == total
    assert all(abs(w - total / parts) <= block + 2 * 16 for w in weights)


def test_labels_and_one_hot_targets_train_alike():
    rng = np.random.default_rng(3)
    X, y = rng.uniform(0, 1, (50, 6)), rng.integers(0, 3, 50)
    a = Trainer((6, 4, 3), seed=1)
    b = Trainer((6, 4, 3), seed=1)
    a.fit(X, y, 2)
    b.fit(X, np.eye(3)[y], 2)
    assert_trainers_agree(a, b)


def test_fit_in_parts_equals_fit_at_once():
    """The generator carries on between fit calls: 2 + 1 epochs are the 3 epochs."""
    rng = np.random.default_rng(4)
    X, y = rng.uniform(0, 1, (40, 5)), rng.integers(0, 2, 40)
    a, b = Trainer((5, 3, 2), seed=2, batch_size=7), ReferenceTrainer((5, 3, 2), seed=2, batch_size=7)
    a.fit(X, y, 2)
    a.fit(X, y, 1)
    b.fit(X, y, 3)
    assert_trainers_agree(a, b)


def test_memory_mapped_inputs_train_alike(tmp_path):
    rng = np.random.default_rng(5)
    X, y = rng.uniform(0, 1, (120, 20)), rng.integers(0, 4, 120)
    mapped = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=X.dtype, shape=X.shape)
    mapped[...] = X
    mapped.flush()
    readonly = np.load(tmp_path / "X.npy", mmap_mode="r")
    a, b = Trainer((20, 17, 4), seed=3, batch_size=16), ReferenceTrainer((20, 17, 4), seed=3, batch_size=16)
    a.fit(readonly, y, 2)
    b.fit(X, y, 2)
    assert_trainers_agree(a, b)
    assert_same_bits(a.forward(readonly), b.forward(X))


@pytest.mark.parametrize("fma", contracts())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes", [(20, 16), (20, 16, 3), (9, 32, 16, 4), (5, 48, 1)])
@pytest.mark.parametrize("n", [1, 2, 37])
def test_one_example_mini_batches_in_a_pipeline(dtype, sizes, n, fma):
    """Batch size 1 with a first layer of whole register groups (16, 32, 48 outputs) takes the
    first layer's step in one pass with the next example's sums: the same bits, from the first
    example of an epoch to its last."""
    rng = np.random.default_rng(n)
    X, y = rng.uniform(-1, 1, (n, sizes[0])), rng.integers(0, sizes[-1], n)
    kwargs = dict(batch_size=1, learning_rate=0.7, seed=n, dtype=dtype, fma=fma)
    t, r = Trainer(sizes, **kwargs), ReferenceTrainer(sizes, **kwargs)
    ht, hr = t.fit(X, y, 2), r.fit(X, y, 2)
    assert_trainers_agree(t, r, "pipelined")
    assert_same_bits(np.array(ht.train_cost), np.array(hr.train_cost), "train_cost")
