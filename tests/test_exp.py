"""fastmlp's own exp: the kernel and the reference agree to the bit, and both are accurate."""

import math

import numpy as np
import pytest
from helpers import assert_same_bits
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastmlp import _kernels
from fastmlp.reference import exp, sigmoid

DTYPES = [np.float32, np.float64]


def kernel_exp(x):
    out = np.empty_like(x)
    _kernels.exp(np.ascontiguousarray(x), out)
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
