"""An exact fused multiply-add for NumPy arrays: ``fma(x, y, z)`` is x·y + z rounded once.

NumPy has no FMA ufunc, so the reference of the fused arithmetic contract
builds one from ordinary IEEE 754 operations, each rounded to nearest, and
bit operations. The result is the exact x·y + z rounded once to nearest,
ties to even, in the operands' dtype, as C99 ``fma`` and ``fmaf`` give it.
The method is the one of S. Boldo and G. Melquiond, "Emulation of FMA and
correctly rounded sums: proved algorithms using rounding to odd", IEEE
Transactions on Computers 57(4), 2008.

Rounding to odd
===============
RO(t) is t when t is a float, else the one of the two floats around t whose
last significand bit is 1. It keeps enough of t to round again: if a format
has at least two more significand bits than the target format, rounding t
to odd in it and then to nearest in the target gives exactly the nearest
target float to t. (Every decision point of the target, its floats and the
midpoints between them, lies on the wider format's even floats, and an
inexact t and RO(t) sit strictly between the same two of those.) NumPy cannot round to
odd, but TwoSum gives the error e of a rounded sum s, so RO is s when e = 0
and otherwise the float next to s towards e, if s's last bit is even. That
step is done on the bits: truncate towards zero (one step down in magnitude
when e points towards zero), then set the last bit.

float32
=======
x·y is exact in float64 (48 significand bits, exponents far inside the
range), so s = RO(x·y + z) is computed in float64 (53 ≥ 2·24 + 2 bits) and
rounded to float32 by the ordinary cast. This holds everywhere: the float32
subnormals and the overflow threshold (the midpoint above the largest
float32) are decision points like any other; with finite operands the
float64 sum is a multiple of 2^-298, so never subnormal, and never
infinite; infinities and NaNs pass through IEEE multiplication and addition
as the FMA's own rules want. No input needs a separate path.

float64
=======
1. Veltkamp splits x and y into halves of at most 26 bits (multiplying by
   2^27 + 1; exact for subnormals too), and Dekker's product gives
   x·y = uh + ul exactly, uh = RN(x·y).
2. TwoSum: z + uh = sh + sl exactly, sh = RN(z + uh).
3. v = RO(ul + sl); the result is RN(sh + v).

Boldo and Melquiond prove that this gives RN(x·y + z) when every operation
is exact or rounded as it would be without exponent bounds. That holds when:

- The product's error is representable. Every value in Dekker's product is a
  multiple of 2^(ex + ey - 104), where 2^ex ≤ |x| < 2^(ex+1) (likewise y),
  so ex + ey ≥ -970 suffices, and |x·y| > 2^-969 ensures it since
  |x·y| < 2^(ex + ey + 2). As 2^-969 is a float, |uh| > 2^-969 exactly when
  |x·y| > 2^-969. The bound is tight: with ex + ey = -971 (products in
  [2^-971, 2^-969)) the error can have a bit at 2^-1075, and a z that
  cancels the product down to near the smallest normal makes the rounding
  depend on it. Sums are exact whenever their result is subnormal, so
  underflow elsewhere does no harm.
- Nothing overflows: not 2^27·x in the splitting, not uh, not TwoSum's
  intermediates. Every operation is +, − or ×, so an infinity once produced
  never turns finite again: a finite result proves that none overflowed.

The fast path therefore runs on every element and its result is kept
where |uh| > 2^-969 and the result is finite. The others are rare and take
separate paths: a zero factor (the product is then an exact signed zero,
so IEEE addition of it and z is the answer), an infinite or NaN operand
(the IEEE rules, in :func:`_special`), and tiny products or overflowing
intermediates or results, which :func:`_exact` computes with integers, one
element at a time.
"""

import math

import numpy as np

__all__ = ["fma", "fma_arrays"]

_SPLITTER = 2.0**27 + 1  # Veltkamp: splits a float64 into two halves of ≤ 26 bits
_TINY = 2.0**-969  # |x·y| up to this may have an error term below the smallest subnormal


def fma(x, y, z):
    """x·y + z rounded once to nearest-even, elementwise, as C99's ``fma``/``fmaf``.

    ``x``, ``y`` and ``z`` are arrays or scalars that broadcast together and
    share one dtype, float32 or float64, after :func:`numpy.asarray` (so
    Python floats count as float64). Returns a new array of that dtype and
    the broadcast shape (0-d for scalars). NaN results are quiet NaNs.
    """
    x, y, z = np.asarray(x), np.asarray(y), np.asarray(z)
    dtype = x.dtype
    if dtype not in (np.float32, np.float64) or y.dtype != dtype or z.dtype != dtype:
        raise TypeError(
            "fma needs three operands of one dtype, float32 or float64; "
            f"got {x.dtype}, {y.dtype} and {z.dtype}"
        )
    shape = np.broadcast_shapes(x.shape, y.shape, z.shape)
    if not shape:  # ufuncs return scalars for 0-d arrays; work in 1-d
        x, y, z = x.reshape(1), y.reshape(1), z.reshape(1)
    return fma_arrays(x, y, z).reshape(shape)


def fma_arrays(x, y, z):
    """:func:`fma` without its checks, for callers that already hold arrays of one dtype,
    float32 or float64, that broadcast to at least one dimension: the reference's many
    calls on small arrays, where the checks would cost as much as the arithmetic."""
    with np.errstate(all="ignore"):
        return _fma32(x, y, z) if x.dtype == np.float32 else _fma64(x, y, z)


def _two_sum(a, b):
    """s = RN(a + b) and the exact error a + b - s (Knuth's TwoSum: any order of |a|, |b|)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _round_to_odd(s, e):
    """RO(s + e), for s = RN(s + e) finite: s itself when e is 0 (or NaN: s is then not finite)."""
    inexact = np.abs(e) > 0
    bits = s.view(np.int64)
    towards_zero = (bits ^ e.view(np.int64)) < 0  # signs differ: |s + e| < |s|
    # Truncate (one float down in magnitude), then the sticky bit.
    return ((bits - (inexact & towards_zero)) | inexact).view(np.float64)


def _fma32(x, y, z):
    p = x.astype(np.float64) * y.astype(np.float64)  # exact
    s, e = _two_sum(p, z.astype(np.float64))
    return _round_to_odd(s, e).astype(np.float32)


def _split(a):
    g = a * _SPLITTER
    hi = g - (g - a)
    return hi, a - hi


def _fma64(x, y, z):
    xh, xl = _split(x)
    yh, yl = _split(y)
    uh = x * y
    ul = (((xh * yh - uh) + xh * yl) + xl * yh) + xl * yl  # Dekker: x·y - uh exactly
    sh, sl = _two_sum(z, uh)
    r = sh + _round_to_odd(*_two_sum(ul, sl))
    fast = np.isfinite(r)
    fast &= np.abs(uh) > _TINY  # False for NaN too
    if np.count_nonzero(fast) < fast.size:
        # A zero factor makes x·y an exact signed zero (NaN times an infinity): IEEE addition is
        # then the answer. Common (ReLU), so kept out of the slower path below.
        zero = (x == 0) | (y == 0)
        np.copyto(r, uh + z, where=zero)
        rare = ~(fast | zero)
        if np.count_nonzero(rare):
            x, y, z = np.broadcast_arrays(x, y, z)
            r[rare] = _rare(x[rare], y[rare], z[rare])
    return r


def _rare(x, y, z):
    """The elements outside the fast path's preconditions."""
    r = x * y + z  # right where x or y is zero, as above
    finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    special = ~finite
    r[special] = _special(x[special], y[special], z[special])
    exact = finite & (x != 0) & (y != 0)
    r[exact] = [_exact(a, b, c) for a, b, c in zip(x[exact].tolist(), y[exact].tolist(), z[exact].tolist())]
    return r


def _special(x, y, z):
    """x, y or z infinite or NaN: with x and y finite the answer is z (an overflowing x·y does not
    count), else x·y is infinite or NaN and IEEE addition decides. z + z quiets a NaN z."""
    return np.where(np.isfinite(x) & np.isfinite(y), z + z, x * y + z)


def _exact(x, y, z):
    """x·y + z rounded once to float64, for finite Python floats, in exact integer arithmetic."""
    (mx, ex), (my, ey), (mz, ez) = _integer_and_exponent(x), _integer_and_exponent(y), _integer_and_exponent(z)
    e = min(ex + ey, ez)
    n = (mx * my << (ex + ey - e)) + (mz << (ez - e))  # x·y + z = n·2^e
    if n == 0:
        # IEEE's sign of an exact zero sum: -0 only for (-0) + (-0), e.g. a zero product of sign -1 and z = -0.
        negative_product = math.copysign(1.0, x) * math.copysign(1.0, y) < 0
        both_negative_zeros = mx * my == 0 and negative_product and math.copysign(1.0, z) < 0
        return -0.0 if both_negative_zeros else 0.0
    r = _round_to_float(abs(n), e)
    return -r if n < 0 else r


def _integer_and_exponent(v):
    """(m, e) with v = m·2^e exactly, m an integer of at most 53 bits."""
    f, e = math.frexp(v)
    return int(f * 2.0**53), e - 53


def _round_to_float(n, e):
    """n·2^e, for an integer n > 0, rounded to nearest-even float64 (subnormals, overflow to inf)."""
    q = max(n.bit_length() + e - 53, -1074)  # exponent of the result's last significand bit
    if q <= e:
        m = n << (e - q)  # exact
    else:
        k = q - e
        m = n >> k
        rest = n - (m << k)
        half = 1 << (k - 1)
        if rest > half or (rest == half and m & 1):
            m += 1  # may reach 2^53: still exact below
    if m.bit_length() + q > 1024:
        return math.inf
    return math.ldexp(float(m), q)
