"""The reference's sums run left to right, whatever NumPy would do with np.sum."""

import numpy as np
import pytest
from helpers import assert_same_bits
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastmlp.reference import _weighted_sums, ordered_sum


def sequential(values):
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@given(data=st.data())
def test_ordered_sum_is_the_left_to_right_sum(dtype, data):
    shape = data.draw(st.tuples(st.integers(1, 5), st.integers(1, 300)))
    x = data.draw(arrays(dtype, shape, elements=st.floats(-1e6, 1e6, width=np.dtype(dtype).itemsize * 8)))
    expected = np.array([sequential(list(row)) for row in x], dtype=dtype)
    assert_same_bits(ordered_sum(x, axis=1), expected)
    assert_same_bits(ordered_sum(x.T, axis=0), expected)


def test_np_sum_would_not_do():
    """The hazard is real: pairwise np.sum and the left-to-right sum differ on ordinary data."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 784)).astype(np.float32)
    left_to_right = ordered_sum(x, axis=1)
    assert np.any(raw(left_to_right) != raw(x.sum(axis=1)))


def raw(a):
    return np.ascontiguousarray(a).view(np.uint32)


@given(data=st.data())
def test_weighted_sums_in_order_across_chunks(data):
    """Chunking rows (to bound memory) does not change a bit, and each sum runs over k in order."""
    m, n_out, n_in = data.draw(st.tuples(st.integers(1, 30), st.integers(1, 6), st.integers(1, 40)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    A, W = rng.standard_normal((m, n_in)), rng.standard_normal((n_out, n_in))
    expected = np.array([[sequential([W[j, k] * A[i, k] for k in range(n_in)]) for j in range(n_out)] for i in range(m)])
    assert_same_bits(_weighted_sums(A, W), expected)


def test_weighted_sums_chunk_boundary(monkeypatch):
    import fastmlp.reference as reference

    rng = np.random.default_rng(3)
    A, W = rng.standard_normal((37, 50)), rng.standard_normal((7, 50))
    whole = _weighted_sums(A, W)
    monkeypatch.setattr(reference, "_TERMS_PER_CHUNK", 7 * 50 * 4)  # 4 rows per chunk
    assert_same_bits(_weighted_sums(A, W), whole)
