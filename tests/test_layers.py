"""Wide networks go through the kernels a layer at a time: the same bits as the reference.

The layer-at-a-time path cuts every product into blocks: register tiles of
6 or 8 rows and 4 to 32 columns, blocks of 256 inputs in the forward sums
and of 32 to 256 outputs (by the examples) in the backward ones, blocks of
126 or 128 weight rows in the gradient, chunks of 256 examples in the
forward and backward products, and a share per thread. Hypothesis draws widths, batch sizes and thread
counts on both sides of each of those boundaries (odd ones and widths of
several hundred among them), on small networks forced through this path as
well as on the wide ones that take it by themselves.
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
from fastmlp._base import _Rate

# Every test here runs with each kernel variant the CPU can run (conftest.py).
pytestmark = pytest.mark.usefixtures("each_kernel_variant")

#: The most multiply-adds per epoch that the reference is given here: a fraction of a second.
REFERENCE_WORK = 20_000_000


@st.composite
def wide_configurations(draw):
    n_weight_layers = draw(st.integers(1, 3))
    # Narrow layers (tiles' edges), and widths past the blocks of 128 rows and 256 inputs.
    width = st.one_of(st.integers(1, 40), st.integers(60, 100), st.integers(120, 330))
    sizes = tuple(draw(st.lists(width, min_size=n_weight_layers + 1, max_size=n_weight_layers + 1)))
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    # As many examples as the reference's budget allows: past 256, the products go in chunks.
    most = max(1, min(600, REFERENCE_WORK // (3 * weights)))
    n = draw(st.one_of(st.integers(1, min(most, 40)), st.integers(1, most)))
    batch_size = draw(st.one_of(st.integers(1, 14), st.integers(n, n + 5), st.integers(20, 300)))
    costs = ["quadratic", "cross_entropy"] + (["log_likelihood"] if sizes[-1] > 1 else [])
    cost = draw(st.sampled_from(costs))
    return dict(
        sizes=sizes,
        n=n,
        by_layers=draw(st.sampled_from([True, None])),  # forced, or as the kernels choose
        kwargs=dict(
            activation=draw(st.sampled_from(["sigmoid", "relu", "tanh"])),
            cost=cost,
            output_activation=draw(output_activations(cost)),
            l2=draw(st.sampled_from([0.0, 0.3])),
            **draw(optimizers([0.9])),
            dropout=draw(st.sampled_from([0.0, 0.5])) if len(sizes) > 2 else 0.0,
            init=draw(st.sampled_from(["standard", "scaled"])),
            schedule=draw(st.sampled_from([None, StepDecay(1, 0.5)])),
            batch_size=batch_size,
            seed=draw(st.integers(0, 2**32 - 1)),
            dtype=draw(st.sampled_from(["float32", "float64"])),
            threads=draw(st.sampled_from([1, 2, 3])),
            fma=draw(st.sampled_from(contracts())),
        ),
    )


@settings(max_examples=2 * settings.default.max_examples)
@given(config=wide_configurations())
def test_layer_at_a_time_gives_the_reference_bits(config):
    rng = np.random.default_rng(config["kwargs"]["seed"] ^ 0x1A7E)
    sizes, n = config["sizes"], config["n"]
    X = rng.uniform(-2, 2, (n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    t = Trainer(sizes, **config["kwargs"])
    t._by_layers = config["by_layers"]
    r = ReferenceTrainer(sizes, **config["kwargs"])
    assert_same_fits(t, r, X, y, 2)
    assert_same_outputs_and_gradients(t, r, X, y)


@settings(max_examples=settings.default.max_examples // 2)
@given(
    sizes=st.lists(st.integers(1, 700), min_size=2, max_size=4),
    n=st.integers(1, 700),
    batch_size=st.integers(1, 600),
    threads=st.sampled_from([1, 2, 3]),
    dtype=st.sampled_from(["float32", "float64"]),
    momentum=st.sampled_from([0.0, 0.5]),
    fma=st.sampled_from(contracts()),
    seed=st.integers(0, 2**32 - 1),
)
def test_both_ways_through_the_kernels_agree(sizes, n, batch_size, threads, dtype, momentum, fma, seed):
    """A layer at a time or in blocks of examples, the same bits, at sizes too large to ask the
    reference about often: up to 700 units and 700 examples."""
    sizes = tuple(sizes)
    n = max(1, min(n, 2_000_000 // sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))))
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], n)
    kwargs = dict(init="scaled", learning_rate=0.2, momentum=momentum, batch_size=batch_size, seed=seed,
                  dtype=dtype, threads=threads, fma=fma)
    by_layers, by_blocks = Trainer(sizes, **kwargs), Trainer(sizes, **kwargs)
    by_layers._by_layers, by_blocks._by_layers = True, False
    costs = [t.fit(X, y, 1).train_cost for t in (by_layers, by_blocks)]
    assert_trainers_agree(by_layers, by_blocks, "layers against blocks")
    assert costs[0] == costs[1]
    assert_same_bits(by_layers.forward(X), by_blocks.forward(X), "forward")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_wide_networks_go_a_layer_at_a_time_and_narrow_ones_do_not(dtype):
    like = np.zeros(1, dtype)
    plan = lambda sizes, m: _dispatch.kernels.plan(np.array(sizes, dtype=np.intp), m, like)  # noqa: E731
    assert plan((784, 16, 16, 10), 100)[0] is False
    assert plan((784, 63, 63, 10), 100)[0] is False
    assert plan((784, 64, 63, 10), 100)[0] is True
    assert plan((784, 1024, 10), 64)[0] is True
    assert plan((784, 1024, 10), 1)[0] is False  # one example a step: blocks of examples
    assert plan((100, 10, 64), 32)[0] is True  # a wide output layer is enough


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes", [(300, 70, 10), (70, 300, 33, 5)])
@pytest.mark.parametrize("m", [1, 7, 37, 64, 300])
@pytest.mark.parametrize("threads", [1, 3])
def test_the_packing_stays_in_its_buffers(dtype, sizes, m, threads):
    """plan()'s sizes bound what every thread packs, at every size of mini-batch up to m (the
    last one of an epoch is smaller): values past the buffers are never touched. The buffers
    start as NaN, so a value read before it is written would show in the weights, which are
    those of the blocks of examples. Adam's two moments fill two sets of panels."""
    rng = np.random.default_rng(m)
    n = 2 * m + 1  # two full mini-batches and one of a single example
    X = rng.uniform(-1, 1, (n, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]
    t = Trainer(sizes, batch_size=m, dtype=dtype, seed=1, threads=threads, optimizer="adam")
    by_blocks = Trainer(sizes, batch_size=m, dtype=dtype, seed=1, threads=threads, optimizer="adam")
    by_blocks._by_layers = False
    _, panels, pack, scratch = _dispatch.kernels.plan(t._sizes, m, t._b[:1])
    guard = 64  # each thread's row of packing is this much longer than plan() asks
    marked = lambda *shape: np.full(shape, np.nan, dtype=dtype)  # noqa: E731
    pw, pv = marked(panels + guard), marked(2 * panels + guard)
    packs = marked(threads, pack + guard)
    scratch_buffer = marked(scratch + guard)
    act, delta, err = marked(m, t.width), marked(m, t.width), marked(m)
    _dispatch.kernels.train_epoch(
        X, Y, np.arange(n, dtype=np.intp), t._wt, t._b, marked(1), marked(t.width), act, delta, err,
        marked(threads, 1), t._vwt, t._vb, pw[:panels], pv[: 2 * panels], packs, scratch_buffer[:scratch],
        *t._layout(), _dispatch.kernels.ADAM, 0.1, 1.0, 0.0, 0.9, 0.999, 1e-8, t._adam_powers,
        np.zeros((threads, len(sizes) - 1), dtype=np.intp), 0.0, 0, 0, m, threads, True, True, True,
    )
    by_blocks._alive = np.zeros((threads, len(sizes) - 1), dtype=np.intp)  # fit's, per epoch
    by_blocks._train_slice(X, Y, np.arange(n, dtype=np.intp), 0.0, by_blocks._work_buffers(m), _Rate(0.1, 1.0),
                           True, True)
    assert_trainers_agree(t, by_blocks, "layers with NaN-filled buffers against blocks")
    for name, tail in (("panels", pw[panels:]), ("moments", pv[2 * panels :]), ("pack", packs[:, pack:]),
                       ("scratch", scratch_buffer[scratch:])):
        assert np.isnan(tail).all(), f"{name}: values past the buffer were written"


def test_wide_layers_over_chunks_of_examples_give_the_reference_bits():
    """A mini-batch of 280 examples (two chunks) through layers past the blocks of rows and
    inputs, on two threads, against the reference."""
    rng = np.random.default_rng(11)
    X, y = rng.uniform(-1, 1, (300, 270)), rng.integers(0, 7, 300)
    kwargs = dict(activation="tanh", cost="log_likelihood", init="scaled", learning_rate=0.3, momentum=0.9,
                  batch_size=280, seed=5)
    for dtype in ("float32", "float64"):
        t = Trainer((270, 140, 7), threads=2, dtype=dtype, **kwargs)
        assert t._plan(_dispatch.kernels, 280)[0]
        assert_same_fits(t, ReferenceTrainer((270, 140, 7), dtype=dtype, **kwargs), X, y, 2)


@pytest.mark.slow
@pytest.mark.parametrize("fma", contracts(), ids=["default", "fused"][: len(contracts())])
def test_a_wide_mnist_layer_is_bit_identical(mnist, fma):
    """784-1000-10, float32, two threads, a few hundred MNIST images, in each contract."""
    (X, y), _ = mnist
    X, y = X[:300], y[:300]
    kwargs = dict(activation="relu", cost="log_likelihood", init="scaled", learning_rate=0.1, momentum=0.9,
                  batch_size=64, seed=3, dtype="float32", fma=fma)
    reference = ReferenceTrainer((784, 1000, 10), **kwargs)
    expected = reference.fit(X, y, 1)
    trainer = Trainer((784, 1000, 10), threads=2, **kwargs)
    assert trainer._plan(_dispatch.kernels, 64)[0], "784-1000-10 goes a layer at a time"
    history = trainer.fit(X, y, 1)
    assert_trainers_agree(trainer, reference, "784-1000-10")
    assert history.train_cost == expected.train_cost
    assert_same_bits(trainer.forward(X), reference.forward(X), "forward")
