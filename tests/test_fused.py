"""fastmlp._fused.fma: bit for bit the C library's fma and fmaf, on every kind of input."""

import ctypes
import ctypes.util
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastmlp._fused import _exact, fma

DTYPES = [np.float32, np.float64]
UINT = {np.float32: np.uint32, np.float64: np.uint64}


def _load_libm():
    name = ctypes.util.find_library("m")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if lib is None:
        return None
    lib.fma.argtypes, lib.fma.restype = [ctypes.c_double] * 3, ctypes.c_double
    lib.fmaf.argtypes, lib.fmaf.restype = [ctypes.c_float] * 3, ctypes.c_float
    return {np.float64: np.frompyfunc(lib.fma, 3, 1), np.float32: np.frompyfunc(lib.fmaf, 3, 1)}


LIBM = _load_libm()
needs_libm = pytest.mark.skipif(LIBM is None, reason="the C math library (fma, fmaf) cannot be loaded with ctypes")


def libm_fma(x, y, z):
    dtype = np.asarray(x).dtype.type
    with np.errstate(all="ignore"):  # the library raises the flags that NumPy checks after a ufunc
        return np.asarray(LIBM[dtype](x, y, z)).astype(dtype)


def assert_matches_libm(x, y, z):
    """fma's bits are libm's (any NaN matching any NaN), elementwise."""
    x, y, z = np.broadcast_arrays(x, y, z)
    got, want = fma(x, y, z), libm_fma(x, y, z)
    assert got.dtype == x.dtype and got.shape == x.shape
    uint = UINT[x.dtype.type]
    same = (got.view(uint) == want.view(uint)) | (np.isnan(got) & np.isnan(want))
    if not same.all():
        bad = np.flatnonzero(~same.ravel())
        i = bad[0]
        args = ", ".join(repr(a.ravel()[i]) for a in (x, y, z))
        raise AssertionError(
            f"{bad.size} of {same.size} differ; first: fma({args}) = {got.ravel()[i]!r}, libm {want.ravel()[i]!r}"
        )


class Format:
    """The parameters of float32 or float64 that the input generators need."""

    def __init__(self, dtype):
        info = np.finfo(dtype)
        self.dtype, self.uint = dtype, UINT[dtype]
        self.p = info.nmant + 1  # significand bits
        self.emin, self.emax = int(info.minexp), int(info.maxexp) - 1  # exponents of the normal floats
        self.qmin = self.emin - self.p + 1  # exponent of the smallest subnormal
        self.max = info.max


# Input generators: each returns x, y, z of one format, n elements each.


def floats(rng, f, exponents, n):
    """Random signs and full random significands, times 2**exponents (rounded into the format)."""
    significand = 1 + rng.integers(0, 2 ** (f.p - 1), n) / 2.0 ** (f.p - 1)
    sign = rng.choice([-1.0, 1.0], n)
    with np.errstate(all="ignore"):
        return np.ldexp(sign * significand, np.asarray(exponents)).astype(f.dtype)


def ulps_away(rng, f, v, k):
    """v moved by up to k floats either way (on the bits; crossing zero or into inf/NaN is fine)."""
    return (v.view(f.uint) + rng.integers(-k, k + 1, v.size).astype(f.uint)).view(f.dtype)


def random_bits(rng, f, n):
    return [rng.integers(0, np.iinfo(f.uint).max, n, dtype=f.uint, endpoint=True).view(f.dtype) for _ in range(3)]


def close_exponents(rng, f, n):
    """Product and addend of similar size: every bit of both matters."""
    ex = rng.integers(-f.emax // 2, f.emax // 2, n)
    ey = rng.integers(-f.emax // 2, f.emax // 2, n)
    ez = np.clip(ex + ey + rng.integers(-f.p - 3, f.p + 4, n), f.qmin, f.emax)
    return floats(rng, f, ex, n), floats(rng, f, ey, n), floats(rng, f, ez, n)


def cancellation(rng, f, n):
    """z ≈ -x·y: most bits cancel, the product's low part is the whole result. Products down to subnormal."""
    x = floats(rng, f, rng.integers(f.qmin // 2, f.emax // 2, n), n)
    y = floats(rng, f, rng.integers(f.qmin // 2, f.emax // 2, n), n)
    with np.errstate(all="ignore"):
        z = ulps_away(rng, f, -(x * y), 4)
    return x, y, z


def around_the_threshold(rng, f, n):
    """Products of x = 2^ex·(1 + …), y = 2^ey·(1 + …) with ex + ey around qmin + 2p - 2 (-970 for float64;
    below it, the product's error has bits under the smallest subnormal), cancelled by z down to results
    near the smallest normal, where those bits decide the rounding."""
    exy = rng.integers(f.qmin + 2 * f.p - 15, f.qmin + 2 * f.p + 10, n)
    ex = rng.integers(exy - f.emax // 2, f.emax // 2)
    x, y = floats(rng, f, ex, n), floats(rng, f, exy - ex, n)
    result = np.ldexp(rng.integers(0, 2 ** (f.p + 1), n).astype(float), f.qmin) * rng.choice([-1, 1], n)
    with np.errstate(all="ignore"):
        return x, y, (result.astype(f.dtype) - x * y).astype(f.dtype)


def far_below(rng, f, n):
    """|x·y| far below |z|: the product only decides the rounding direction. A third of the products
    are within a few ulps of half an ulp of z (rounded first, they would make false ties), and some z
    powers of two, where the ulp below is half the ulp above."""
    ez = rng.integers(f.emin + 3 * f.p, f.emax, n)
    z = floats(rng, f, ez, n)
    z = np.where(rng.random(n) < 0.2, np.ldexp(np.sign(z), ez).astype(f.dtype), z)
    d = np.where(rng.random(n) < 0.8, rng.integers(f.p - 2, 3 * f.p + 10, n), rng.integers(f.p, 4 * f.emax, n))
    ex = rng.integers(-f.emax // 2, f.emax // 2, n)
    x, y = floats(rng, f, ex, n), floats(rng, f, ez - d - ex, n)
    half = ez - f.p - rng.integers(0, 2, n)  # half an ulp of z, above or below z's binade
    x_near = floats(rng, f, half // 2 + rng.integers(-20, 20, n), n)
    with np.errstate(all="ignore"):
        y_near = ulps_away(rng, f, np.ldexp(f.dtype(1), half).astype(f.dtype) / x_near, 2)
    near = rng.random(n) < 1 / 3
    return np.where(near, x_near, x), np.where(near, y_near * rng.choice([-1, 1], n).astype(f.dtype), y), z


def near_overflow(rng, f, n):
    """Results around the largest float and 2^emax+1: some overflow, some just do not."""
    ex = rng.integers(f.emax // 2 - 10, f.emax // 2 + 10, n)
    x = floats(rng, f, ex, n)
    kind = rng.integers(0, 3, n)
    # 0: the product itself near the top; 1: z near ±max plus a product near half its ulp;
    # 2: z near ±max and the product cancelling it.
    ey = np.where(kind == 0, f.emax - ex + rng.integers(-2, 2, n), f.emax - f.p - ex + rng.integers(-3, 2, n))
    y = floats(rng, f, ey, n)
    with np.errstate(all="ignore"):
        top = ulps_away(rng, f, np.full(n, f.max, f.dtype), 3) * rng.choice([-1, 1], n).astype(f.dtype)
        z = np.select(
            [kind == 0, kind == 1],
            [np.where(rng.random(n) < 0.5, floats(rng, f, rng.integers(f.emax - 3 * f.p, f.emax, n), n), top), top],
            ulps_away(rng, f, -(x * y), 2),
        )
    return x, y, z.astype(f.dtype)


def subnormal(rng, f, n):
    """Subnormal products, addends and results; subnormal factors times large ones; and products
    just around 2^-969, float64's threshold for the exact path, cancelled down to a subnormal."""
    exy = rng.integers(f.qmin - f.p - 2, f.emin + 3, n)
    kind = rng.integers(0, 5, n)
    exy = np.where(kind == 4, rng.integers(-972, -962, n), exy)
    ex = rng.integers(exy - f.emax // 2, f.emax // 2)
    x, y = floats(rng, f, ex, n), floats(rng, f, exy - ex, n)
    z = floats(rng, f, rng.integers(f.qmin, f.emin + 3, n), n)
    with np.errstate(all="ignore"):
        z = np.where(kind == 1, ulps_away(rng, f, -(x * y), 3), z)
        z = np.where(kind == 4, -(x * y), z)
    z = np.where(kind == 2, 0, z)
    tiny = rng.integers(1, 2 ** (f.p - 1), n).astype(f.uint).view(f.dtype) * rng.choice([-1, 1], n).astype(f.dtype)
    big = floats(rng, f, rng.integers(-f.emin - 2 * f.p, f.emax, n), n)
    x = np.where(kind == 3, tiny, x)
    y = np.where(kind == 3, big, y)
    return x, y, z.astype(f.dtype)


def ties(rng, f, n):
    """x·y + z exactly halfway between two floats, or a few units of the last place away from halfway.

    With x = a·2^i, y = b·2^j (integers a < 2^p, b < 2^k) and b = t/a modulo 2^k, the product's bits
    below U = 2^(i+j+k) are t·2^(i+j); z = M·U then puts the exact result at (T + t/2^k)·U, T a p-bit
    integer, so U is the result's ulp and t = 2^(k-1) a tie (also for subnormal and overflowing T).
    Returns x, y, z and the exact results.
    """
    p = f.p
    k = rng.integers(1, p + 1, n)
    a = rng.integers(0, 2 ** (p - 1), n) * 2 + 1
    t = np.clip(2 ** (k - 1) + rng.choice([0, 0, 0, 1, -1, 2, -2, 3], n), 0, 2**k - 1)
    region = rng.random(n)
    # 20 % subnormal results, 10 % in the top binade (its last float included), the rest anywhere
    e = np.select([region < 0.2, region < 0.3], [f.qmin, f.emax - p + 1], rng.integers(f.qmin, f.emax - p + 2, n))
    T = np.select(
        [region < 0.2, region < 0.25],
        [rng.integers(0, 2 ** (p - 1), n), 2**p - 1],
        rng.integers(2 ** (p - 1), 2**p, n),
    )
    where_i, negate, swap = rng.random(n), rng.random(n) < 0.5, rng.random(n) < 0.5
    out, exact = np.empty((3, n)), []
    for r, (k, a, t, e, T) in enumerate(zip(*(v.tolist() for v in (k, a, t, e, T)))):
        b = t * pow(a, -1, 2**k) % 2**k
        lo, hi = max(f.qmin, e - f.emax - 1), min(f.emax - p + 1, e - k - f.qmin)  # x and y in range
        i = lo + int(where_i[r] * (hi - lo + 1))
        x, y, z = math.ldexp(a, i), math.ldexp(b, e - k - i), math.ldexp(T - (a * b >> k), e)
        v = Fraction(T * 2**k + t, 2**k) * Fraction(2) ** e
        if negate[r]:
            x, z, v = -x, -z, -v
        if swap[r]:
            x, y = -y, -x
        out[:, r] = x, y, z
        exact.append(v)
    return *out.astype(f.dtype), exact


GENERATORS = [random_bits, close_exponents, cancellation, around_the_threshold, far_below, near_overflow, subnormal]
N = 300_000  # per generator and dtype


@needs_libm
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("generate", GENERATORS, ids=lambda g: g.__name__)
def test_drawn_inputs_match_libm(dtype, generate):
    rng = np.random.default_rng([GENERATORS.index(generate), DTYPES.index(dtype)])
    assert_matches_libm(*generate(rng, Format(dtype), N))


@needs_libm
@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_and_near_ties_match_libm(dtype):
    f = Format(dtype)
    x, y, z, exact = ties(np.random.default_rng(7 + f.p), f, 30_000)
    # The construction holds: x, y, z are exact in the format and x·y + z is the intended value.
    assert [Fraction(a) * Fraction(b) + Fraction(c) for a, b, c in zip(x.tolist(), y.tolist(), z.tolist())] == exact
    assert_matches_libm(x, y, z)


SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1.5, -3.0, 2.0**-60]


@needs_libm
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_combination_of_special_values_matches_libm(dtype):
    """Signed zeros, infinities and NaN in every position, with the extremes of the format."""
    info = np.finfo(dtype)
    values = np.array(SPECIAL + [info.max, info.smallest_normal, info.smallest_subnormal], dtype)
    values = np.concatenate([values, -values[5:]])
    x, y, z = np.meshgrid(values, values, values, indexing="ij")
    assert_matches_libm(x, y, z)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_results_take_ieee_signs(dtype):
    """x·y = -0 exactly plus +0 is +0, plus -0 is -0, plus anything else is that; exact cancellation is +0."""
    one, zero = dtype(1), dtype(0)
    assert not np.signbit(fma(-zero, one, zero))
    assert np.signbit(fma(-zero, one, -zero))
    assert np.signbit(fma(zero, -one, -zero))
    assert fma(-zero, one, dtype(-5)) == -5
    assert not np.signbit(fma(dtype(3), dtype(-2), dtype(6)))
    assert not np.signbit(fma(dtype(-3), dtype(2), dtype(6)))
    tiny = np.finfo(dtype).smallest_subnormal
    assert np.signbit(fma(-tiny, tiny, zero))  # the exact sum is negative: it rounds to -0 whatever z's sign


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_results_are_quiet(dtype):
    """Signalling NaN operands too: every NaN result has the quiet bit (the significand's first) set."""
    f = Format(dtype)
    signalling = np.array(1, f.uint) | np.array(np.inf, dtype).view(f.uint)
    values = np.array(SPECIAL + [signalling.view(dtype)], dtype)
    x, y, z = np.meshgrid(values, values, values, indexing="ij")
    r = fma(x, y, z)
    quiet_bit = f.uint(1) << f.uint(f.p - 2)
    assert np.isnan(r).sum() > 500
    assert np.all(r.view(f.uint)[np.isnan(r)] & quiet_bit)


@needs_libm
@pytest.mark.parametrize("width", [32, 64])
@given(data=st.data())
def test_hypothesis_floats_match_libm(width, data):
    dtype = np.float32 if width == 32 else np.float64
    elements = st.floats(width=width, allow_nan=True, allow_infinity=True)
    x, y, z = (data.draw(arrays(dtype, 20, elements=elements)) for _ in range(3))
    assert_matches_libm(x, y, z)


@needs_libm
@pytest.mark.parametrize("width", [32, 64])
@given(data=st.data())
def test_hypothesis_cancellations_match_libm(width, data):
    """z a few floats from -x·y, for drawn finite x and y."""
    dtype = np.float32 if width == 32 else np.float64
    f = Format(dtype)
    elements = st.floats(width=width, allow_nan=False, allow_infinity=False)
    x, y = (data.draw(arrays(dtype, 20, elements=elements)) for _ in range(2))
    k = data.draw(arrays(np.int64, 20, elements=st.integers(-3, 3)))
    with np.errstate(all="ignore"):
        z = (-(x * y)).view(f.uint) + k.astype(f.uint)
    assert_matches_libm(x, y, z.view(dtype))


@needs_libm
def test_exact_path_matches_libm_everywhere():
    """The integer path, used only for rare float64 inputs, on ordinary and on hard ones too."""
    rng = np.random.default_rng(11)
    f = Format(np.float64)
    for generate in [close_exponents, cancellation, around_the_threshold, far_below, near_overflow, subnormal]:
        x, y, z = generate(rng, f, 3000)
        finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
        x, y, z = x[finite], y[finite], z[finite]
        got = np.array([_exact(a, b, c) for a, b, c in zip(x.tolist(), y.tolist(), z.tolist())])
        np.testing.assert_array_equal(got.view(np.uint64), libm_fma(x, y, z).view(np.uint64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_broadcasting_and_0d(dtype):
    x = np.arange(1, 4, dtype=dtype).reshape(3, 1)
    y = np.linspace(-1, 1, 4).astype(dtype)
    r = fma(x, y, dtype(0.5))
    one_by_one = [[fma(x[i, 0], y[j], dtype(0.5)) for j in range(4)] for i in range(3)]
    assert r.dtype == dtype
    np.testing.assert_array_equal(r.view(UINT[dtype]), np.array(one_by_one, dtype).view(UINT[dtype]))
    s = fma(dtype(2), dtype(3), dtype(4))
    assert isinstance(s, np.ndarray) and s.shape == () and s.dtype == dtype and s == 10
    assert fma(2.0, 3.0, 4.0).dtype == np.float64  # Python floats are float64
    assert fma(x, y, np.full((2, 3, 4), 1, dtype)).shape == (2, 3, 4)


def test_operands_of_other_dtypes_are_refused():
    f32, f64 = np.ones(3, np.float32), np.ones(3, np.float64)
    for args in [
        (f32, f32, f64),
        (f64, f32, f32),
        (f32, 1.0, f32),  # a Python float is float64
        (np.arange(3), f64, f64),
        (np.arange(3),) * 3,
        (1, 2, 3),
        (np.ones(3, np.float16),) * 3,
        (np.ones(3, np.complex128),) * 3,
    ]:
        with pytest.raises(TypeError, match="float32 or float64"):
            fma(*args)


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_floating_point_warnings(dtype):
    info = np.finfo(dtype)
    values = np.array(SPECIAL + [info.max, -info.max, info.smallest_subnormal], dtype)
    x, y, z = np.meshgrid(values, values, values, indexing="ij")
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        fma(x, y, z)
