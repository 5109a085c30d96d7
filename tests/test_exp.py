"""fastmlp's own exp, log and tanh: the kernel and the reference agree to the bit, and all are accurate."""

import math

import numpy as np
import pytest
from helpers import assert_same_bits
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastmlp import _dispatch
from fastmlp.reference import LOG_FLOOR, exp, log, relu, sigmoid, tanh

# Every test here runs with each kernel variant the CPU can run (conftest.py).
pytestmark = pytest.mark.usefixtures("each_kernel_variant")

DTYPES = [np.float32, np.float64]


def kernel_exp(x):
    out = np.empty_like(x)
    _dispatch.kernels.exp(np.ascontiguousarray(x), out)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_kernel_exp_has_the_reference_bits(dtype, data):
    x = data.draw(arrays(dtype, st.integers(1, 200), elements=st.floats(width=np.dtype(dtype).itemsize * 8)))
    assert_same_bits(kernel_exp(x), exp(x), "exp")


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_bits_on_a_dense_sweep(dtype):
    """Every region: underflow, subnormal results, the working range, overflow, and the specials."""
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.uniform(-800, 800, 200_000),
        rng.uniform(-40, 40, 200_000),
        rng.uniform(-1e-3, 1e-3, 10_000),
        [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, 88.72, 88.73, 709.78, 709.79, -745.1, -745.2],
    ]).astype(dtype)
    assert_same_bits(kernel_exp(x), exp(x), "exp")


def test_exp_float64_is_within_one_ulp_of_correctly_rounded():
    """Against libm's exp (itself within 1 ulp), on normal results: at most 1 ulp apart, mostly 0."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-700, 700, 100_000), rng.uniform(-20, 20, 100_000)])
    ours = exp(x)
    theirs = np.array([math.exp(v) for v in x])
    ulps = np.abs(ours - theirs) / np.spacing(theirs)
    assert ulps.max() <= 1.0
    assert np.mean(ulps == 0) > 0.85


def test_exp_float32_is_within_1_5_ulp_of_the_exact_value():
    """Against float64 exp rounded to float32: measured worst 1.21 ulp over the range; 1.5 leaves margin."""
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(-87, 88, 100_000), rng.uniform(-10, 10, 100_000)]).astype(np.float32)
    ours = exp(x).astype(np.float64)
    exact = np.array([math.exp(float(v)) for v in x])
    ulps = np.abs(ours - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert ulps.max() <= 1.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_limits(dtype):
    x = np.array([np.inf, -np.inf, 0.0, 1000.0, -1000.0, np.nan], dtype=dtype)
    e = exp(x)
    assert e[0] == np.inf and e[1] == 0.0 and e[2] == 1.0 and e[3] == np.inf and e[4] == 0.0
    assert np.isnan(e[5])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_saturates_without_warnings(dtype):
    z = np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=dtype)
    with np.errstate(all="raise"):
        s = sigmoid(z)
    assert s[0] == 0.0 and s[2] == 0.5 and s[4] == 1.0
    assert 0.0 < s[1] < 1e-20


def kernel_log(x):
    out = np.empty_like(x)
    _dispatch.kernels.log(np.ascontiguousarray(x), out)
    return out


def kernel_tanh(z):
    out = np.empty_like(z)
    _dispatch.kernels.activation(np.ascontiguousarray(z), out, _dispatch.kernels.TANH)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_kernel_log_and_tanh_have_the_reference_bits(dtype, data):
    x = data.draw(arrays(dtype, st.integers(1, 200), elements=st.floats(width=np.dtype(dtype).itemsize * 8)))
    with np.errstate(invalid="ignore"):
        assert_same_bits(kernel_log(x), log(x), "log")
    assert_same_bits(kernel_tanh(x), tanh(x), "tanh")


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_and_tanh_bits_on_a_dense_sweep(dtype):
    """Subnormals, the floor at −100, probabilities, large values, the specials."""
    rng = np.random.default_rng(3)
    info = np.finfo(dtype)
    x = np.concatenate([
        rng.uniform(0, 1, 200_000),
        np.exp(rng.uniform(-120, 80, 100_000)),
        np.exp(rng.uniform(np.log(float(info.smallest_subnormal)), np.log(float(info.tiny)) + 1, 10_000)),
        [0.0, -0.0, float(info.smallest_subnormal), float(info.tiny), 1.0, float(info.max), np.inf, np.nan, -1.0],
    ]).astype(dtype)
    with np.errstate(invalid="ignore"):
        assert_same_bits(kernel_log(x), log(x), "log")
    z = np.concatenate([x, -x, rng.uniform(-1e-3, 1e-3, 10_000).astype(dtype)])
    assert_same_bits(kernel_tanh(z), tanh(z), "tanh")


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_is_accurate(dtype):
    """Against libm's log in float64: within 2 ulp of the dtype above the floor (measured: 2.0 in
    float64, 1.77 in float32, about 90% exact), and the floor exactly where ln x < −100."""
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(0, 1, 100_000), np.exp(rng.uniform(-99, 80, 100_000))]).astype(dtype)
    x = x[x > 0]
    ours = log(x).astype(np.float64)
    exact = np.array([math.log(float(v)) for v in x])  # libm: NumPy's own log depends on its SIMD path
    ulps = np.abs(ours - exact) / np.spacing(np.abs(exact).astype(dtype)).astype(np.float64)
    assert ulps.max() <= 2.0
    assert np.mean(ours == exact.astype(dtype)) > 0.85
    tiny = np.array([0.0, -0.0, 1e-44, 3.7e-44], dtype=dtype)
    assert (log(tiny) == LOG_FLOOR).all() and (kernel_log(tiny) == LOG_FLOOR).all()
    with np.errstate(invalid="ignore"):
        special = log(np.array([np.inf, np.nan, -1.0], dtype=dtype))
    assert special[0] == np.inf and np.isnan(special[1]) and np.isnan(special[2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_is_accurate_and_odd(dtype):
    """Against libm's tanh: an absolute error of at most 1.5 machine epsilons everywhere (measured:
    1.5 in float64, 0.74 in float32), and within 4 ulp for |z| ≥ 0.2 (measured 4.0 / 2.1). Nearer 0,
    1 − e^−2|z| cancels, so the relative error grows as ε/|z|: harmless for an activation."""
    rng = np.random.default_rng(5)
    z = np.concatenate([rng.uniform(0, 0.2, 50_000), rng.uniform(0.2, 20, 100_000)]).astype(dtype)
    ours = tanh(z).astype(np.float64)
    exact = np.array([math.tanh(float(v)) for v in z])
    assert np.abs(ours - exact).max() <= 1.5 * np.finfo(dtype).eps
    far = z >= 0.2
    ulps = np.abs(ours - exact)[far] / np.spacing(exact[far].astype(dtype)).astype(np.float64)
    assert ulps.max() <= 4.0
    assert_same_bits(tanh(-z), -tanh(z), "odd")
    with np.errstate(all="raise"):
        t = tanh(np.array([-1e4, -0.0, 0.0, 1e4], dtype=dtype))
    assert t.tolist() == [-1.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["sigmoid", "relu", "tanh"])
def test_a_layers_activations_have_the_reference_bits_at_every_width(dtype, kind):
    """The forward pass activates a layer's units a vector at a time when there are enough of
    them, the last vector overlapping the one before, and a block's examples side by side;
    fewer units go one by one. Every width up to 40 against the reference, on ordinary values,
    extremes and the specials, in rows that make groups of every size a block is cut into."""
    rng = np.random.default_rng(1)
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-310, -1e-310, 1e-40, 800.0, -800.0, 90.0, -105.0]
    function = {"sigmoid": sigmoid, "relu": relu, "tanh": tanh}[kind]
    rows = 2 * _dispatch.kernels.SAMPLE_BLOCK + 7  # whole blocks, then groups of 4 (with blocks of 8), 2 and 1
    for width in range(1, 41):
        z = rng.normal(0, 6, (rows, width))
        z.flat[rng.choice(z.size, 3 * width, replace=False)] = rng.choice(specials, 3 * width)
        z, bias = z.astype(dtype), rng.normal(0, 1, width).astype(dtype)
        out = np.empty_like(z)
        _dispatch.kernels.activate_layer(z, bias, out, getattr(_dispatch.kernels, kind.upper()))
        with np.errstate(all="ignore"):
            expected = function(z + bias)
        assert_same_bits(out, expected, f"{kind} over {width} units")


def test_exp_and_log_refuse_other_dtypes():
    with pytest.raises(TypeError, match="log takes a float32 or float64 array, got int64"):
        log(np.arange(3))
    with pytest.raises(TypeError, match="exp takes a float32 or float64 array, got float16"):
        exp(np.ones(3, dtype=np.float16))
