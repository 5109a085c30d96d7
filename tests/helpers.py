"""Helpers shared by the tests and the benchmarks."""

import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def kernel_variants():
    """The kernel variants the tests run: FASTMLP_KERNELS's, where it names one, else every
    variant this build has and this CPU runs."""
    from fastmlp import _dispatch

    forced = os.environ.get("FASTMLP_KERNELS", "").strip().lower()
    return [forced] if forced not in ("", "auto") else _dispatch.runnable()


def contracts():
    """The arithmetic contracts this build trains in, as values of ``fma``: both, except in a
    build without fused kernels (MSVC's), which trains in the default one only."""
    from fastmlp import _dispatch

    try:
        _dispatch.for_contract(True)
    except ImportError:
        return [False]
    return [False, True]


def output_activations(cost):
    """A hypothesis strategy for ``output_activation`` with ``cost``: the cost's own (None), or
    any the quadratic cost takes."""
    from hypothesis import strategies as st

    if cost != "quadratic":
        return st.just(None)
    return st.sampled_from([None, "identity", "sigmoid", "relu", "tanh"])


def optimizers(momenta):
    """A hypothesis strategy for the optimizer's arguments with their learning rate: plain SGD,
    momentum or Nesterov's (μ from ``momenta``), or Adam (with PyTorch's betas or others)."""
    from hypothesis import strategies as st

    sgd_rates = st.sampled_from([0.01, 0.5, 3.0])
    return st.one_of(
        st.fixed_dictionaries({"learning_rate": sgd_rates}),
        st.fixed_dictionaries({"learning_rate": sgd_rates, "momentum": st.sampled_from(momenta),
                               "nesterov": st.booleans()}),
        st.fixed_dictionaries({"optimizer": st.just("adam"), "learning_rate": st.sampled_from([0.001, 0.01, 0.3]),
                               "betas": st.sampled_from([(0.9, 0.999), (0.5, 0.9)]),
                               "eps": st.sampled_from([1e-8, 1e-3])}),
    )


def mnist_dir():
    """Where the MNIST IDX files are: $FASTMLP_MNIST_DIR, else ../shared/data/mnist beside the repository."""
    return Path(os.environ.get("FASTMLP_MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))


def has_mnist(folder):
    """Whether `folder` holds MNIST's training images (raw or .gz), the sign of the four files."""
    return any((folder / f"train-images-idx3-ubyte{ext}").exists() for ext in ("", ".gz"))


def raw_bits(a):
    """The array's bytes reinterpreted as unsigned integers of the same width."""
    a = np.ascontiguousarray(a)
    return a.view({4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_same_bits(actual, expected, what="arrays", any_nan=False):
    """Raw-bit equality: same dtype, same shape, every bit the same (NaN payloads and signed zeros
    included). With ``any_nan``, a NaN matches any NaN in the same place: which NaN a diverged
    computation makes (its sign and payload) is no part of the trainers' contract."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    a, e = raw_bits(actual), raw_bits(expected)
    differ = a.ravel() != e.ravel()
    if any_nan and actual.dtype.kind == "f":
        differ &= ~(np.isnan(actual.ravel()) & np.isnan(expected.ravel()))
    differ = np.flatnonzero(differ)
    if differ.size:
        i = differ[0]
        raise AssertionError(
            f"{what}: {differ.size} of {a.size} elements differ in their bits; "
            f"first at flat index {i}: {actual.ravel()[i]!r} != {expected.ravel()[i]!r}"
        )


def first_permutation(sizes, n):
    """The permutation a trainer of ``sizes`` with seed 0 uses in its first epoch: after the draws
    of its parameters, layer by layer (contract 9)."""
    rng = np.random.default_rng(0)
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        rng.standard_normal((n_out, n_in))
        rng.standard_normal(n_out)
    return rng.permutation(n)


def assert_same_fits(t, r, X, y, epochs, **kwargs):
    """Fit both trainers alike: both train to the same bits (parameters and costs, and the same
    validation accuracies), or both diverge in the same epoch and keep the same parameters; and
    both warn alike of a stalled training, or neither does."""
    import warnings

    from fastmlp import DivergenceError, TrainingStalledWarning

    histories, stalls = [], []
    for trainer in (t, r):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TrainingStalledWarning)
            try:
                histories.append(trainer.fit(X, y, epochs, **kwargs))
            except DivergenceError as error:
                histories.append(str(error))
        stalls.append([str(w.message) for w in caught if issubclass(w.category, TrainingStalledWarning)])
    assert stalls[0] == stalls[1], stalls
    ht, hr = histories
    assert_trainers_agree(t, r, "fitted")
    assert type(ht) is type(hr)
    if isinstance(ht, str):
        assert ht == hr
    else:
        assert_same_bits(np.array(ht.train_cost), np.array(hr.train_cost), "train_cost")
        assert ht.validation_accuracy == hr.validation_accuracy


def assert_same_outputs_and_gradients(t, r, X, y):
    """forward, predict and the mini-batch gradients of both trainers on (X, y), bit for bit."""
    assert_same_bits(t.forward(X), r.forward(X), "forward")
    assert_same_bits(t.predict(X), r.predict(X), "predict")
    gt, gr = t.gradients(X, y), r.gradients(X, y)
    for l, (a, b) in enumerate(zip(gt[0] + gt[1], gr[0] + gr[1])):
        # After a divergence the parameters kept may overflow the sums: inf·0 and the like.
        assert_same_bits(a, b, f"gradient {l}", any_nan=True)


def assert_trainers_agree(t, r, what=""):
    for l, (a, b) in enumerate(zip(t.weights, r.weights)):
        assert_same_bits(a, b, f"{what} weights[{l}]")
    for l, (a, b) in enumerate(zip(t.biases, r.biases)):
        assert_same_bits(a, b, f"{what} biases[{l}]")
