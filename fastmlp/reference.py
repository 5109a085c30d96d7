"""Backpropagation in plain NumPy: the reference that fastmlp's kernels follow.

:class:`ReferenceTrainer` trains the same networks as :class:`fastmlp.Trainer`
with the same arguments, methods and attributes. It is written to be read,
in the order the algorithm runs: the forward pass, the output layer's
nudges, their propagation backwards, their average over a mini-batch, the
step. It is also the arithmetic contract: every operation below, in this
order, is what the compiled kernels compute, so the two agree bit for bit.

Notation
========
Arrays are batch-major: a mini-batch of m examples is a matrix with one
example per row. Layer 0 is the input; layer L is the output.

- ``W[l]`` has shape ``(n_{l+1}, n_l)``: ``W[l][j, k]`` is the weight from
  neuron k of layer l to neuron j of layer l+1; ``b[l]`` has shape ``(n_{l+1},)``.
- z = W·a + b is a layer's weighted input; a = σ(z) its activation. Hidden
  layers use the trainer's ``activation``; the output layer uses it too
  with the quadratic cost (or the ``output_activation`` given, such as
  ``identity``, a = z), a sigmoid with the cross-entropy cost and a
  softmax with the log-likelihood cost.
- The cost of a mini-batch is the mean of its examples' costs C_x:

  ==================  ==========================================  ===========
  cost                C_x for output a = a^L and target y          output
  ==================  ==========================================  ===========
  ``quadratic``       ``½ Σ_j (a_j − y_j)²``                       any but softmax
  ``cross_entropy``   ``−Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)]``  sigmoid
  ``log_likelihood``  ``−Σ_j y_j ln a_j`` (−ln a_y for a label y)  softmax
  ==================  ==========================================  ===========

  The ½ (as in Nielsen's book) makes ∂C_x/∂a^L = a^L − y; without it (as
  in the 3Blue1Brown video) every gradient doubles, so learning rate η
  here equals η/2 there. With the other two costs, paired with their
  output layers, ∂C_x/∂z^L = a^L − y: the σ' that slows a saturated
  quadratic neuron cancels out.

The arithmetic contract
=======================
All arithmetic is IEEE 754 in the trainer's dtype (float32 or float64),
rounding to nearest, each operation rounded on its own: no fused
multiply-add. Inputs and targets are rounded to that dtype once, first.

1. **Sums** run left to right from their first term,
   ``((t_0 + t_1) + t_2) + …``: never pairwise (as ``np.sum`` does) and
   never blocked (as BLAS does). See :func:`ordered_sum`.
2. **Forward:** ``z_j = (Σ_k W[j, k]·a_k) + b_j``: the sum over k in index
   order, then the bias. ``a_j = σ(z_j)``.
3. **Activations** use fastmlp's own :func:`exp`, made of +, −, × and bit
   operations only, so no libm and no NumPy SIMD path can change a bit:

   - ``sigmoid(z) = 1 / (1 + exp(−z))``, derivative ``a·(1 − a)``;
   - ``relu(z) = 0 if z ≤ 0 else z`` (NaN passes), derivative
     ``1 if a > 0 else 0``;
   - ``tanh(z) = v if z ≥ 0 else −v`` with ``t = exp((−2)·|z|)`` and
     ``v = (1 − t) / (1 + t)``, derivative ``1 − a·a``;
   - ``softmax`` (output layer only): ``m`` the first largest z_j (found
     in index order with ``>``), ``e_j = exp(z_j − m)``, ``s = Σ_j e_j``
     in order, ``a_j = e_j / s``.

   - ``identity(z) = z`` (output layer only), derivative 1.

   Derivatives are computed from the activation a.
4. **Output nudges:** ``δ^L_j = (a^L_j − y_j)·σ'(a^L_j)`` for the quadratic
   cost (with an identity output, ``a^L_j − y_j``: the product by 1 is
   exact), ``δ^L_j = a^L_j − y_j`` for the other two.
5. **Backwards:** ``δ^l_k = (Σ_j W[l][j, k]·δ^{l+1}_j)·σ'(a^l_k)``, the sum
   over j in index order, down to the first hidden layer.
6. **Sums over the mini-batch**, in the order the examples are visited:
   ``G[l][j, k] = Σ_i δ^{l+1}_{ij}·a^l_{ik}`` and ``g[l]_j = Σ_i δ^{l+1}_{ij}``.
7. **The step**, with η the epoch's learning rate (see ``schedule``),
   each quantity rounded to the dtype once: ``s = η / m``, the quotient of
   η and m each rounded to the dtype; the weight
   decay factor ``d = 1 − η·λ/n`` (computed in float64 from the L2
   strength λ and the training-set size n, then rounded); the momentum μ.

   - Without momentum: ``W ← (d·W) − (s·G)``, ``b ← b − (s·g)``.
   - With momentum, velocities V and v (zero at first):
     ``V ← (μ·V) − (s·G)``, ``W ← (d·W) + V``;
     ``v ← (μ·v) − (s·g)``, ``b ← b + v``.
   - With Nesterov's momentum, the same velocities, and a step that looks
     ahead along them: ``W ← (d·W) + ((μ·V) − (s·G))`` with the new V,
     ``b ← b + ((μ·v) − (s·g))``.

   Biases are not decayed. With λ = 0, d = 1 and ``d·W`` is W exactly.
   :meth:`~ReferenceTrainer.gradients` returns ``G / m`` and ``g / m``.
8. **Cost:** per example, in the dtype, the sum in order over j of
   ``(a_j − y_j)·(a_j − y_j)`` (quadratic), or minus the sum in order of
   ``y_j·ln a_j + (1 − y_j)·ln(1 − a_j)`` (cross-entropy) or of
   ``y_j·ln a_j`` (log-likelihood), with fastmlp's own :func:`log`, which
   stops at −100 (so a saturated output costs 100, not ∞). The epoch adds
   these ``e_x`` in float64 in the order visited, from 0.0, and reports
   the total divided by 2n (quadratic) or n. The L2 term is not part of it.
9. **Randomness:** ``np.random.default_rng(seed)`` draws the parameters
   layer by layer, ``W[l]`` then ``b[l]``, with ``standard_normal`` in
   float64; with ``init="scaled"`` each W[l] is then divided by
   ``sqrt(n_l)`` in float64; all are rounded to the dtype. Each epoch then
   draws ``rng.permutation(n)`` and visits the mini-batches ``perm[0:B]``,
   ``perm[B:2B]``, …; the last may be shorter.

10. **Adam** (``optimizer="adam"``) replaces the step of rule 7. Each step
    first advances two powers, in float64 from 1.0 and kept with the
    trainer's state: ``P1 ← P1·β1``, ``P2 ← P2·β2`` (so P = β^t after t
    steps, as products in order: no ``pow``). Then, rounded to the dtype
    once each: ``r = 1/m`` (the division in the dtype); ``a = η/(1 − P1)``
    and ``k = 1/√(1 − P2)``, both computed in float64 (IEEE division and
    square root, correctly rounded) and then rounded; ``β1``, ``β2``, ``ε``;
    ``c1 = 1 − β1`` and ``c2 = 1 − β2`` in the dtype. With moments M and V
    per weight (zero at first), for each weight w with sum G:

    ``g = r·G``, ``M ← (β1·M) + (c1·g)``, ``V ← (β2·V) + (c2·(g·g))``,
    ``u = (√V·k) + ε``, ``w ← (d·w) − (a·(M/u))``,

    and the same for each bias with d = 1. √ is IEEE's square root,
    correctly rounded. This is Kingma and Ba's Adam with bias correction,
    as PyTorch computes it (``√V/√(1 − β2^t)`` here multiplied by k), with
    L2 decoupled: the decay factor d of rule 7 scales the weights.

11. **Dropout** (``dropout=p`` > 0, in training only). Each epoch draws a key
    K from the trainer's generator, after the permutation:
    ``rng.integers(0, 2**64, dtype=uint64)``. Unit u (its place in an
    example's row of units, layers 1 … L after one another) of the example in
    row x of the training set is kept when, with ``w`` the units per row,
    c = x·w + u and γ = 0x9E3779B97F4A7C15, SplitMix64's output for the state
    K + (c + 1)·γ, z >> 11, is at least T = p·2^53 rounded to an integer; all
    of it in 64-bit unsigned integers, wrapping. Only hidden layers drop. A
    hidden layer's mask is m = s where kept, else 0, with s = 1/(1 − p)
    computed in float64 and rounded to the dtype; the forward pass goes on
    with ``a·m`` in place of a, and the backward pass (rule 5) multiplies by
    ``σ'(a)·m``, σ' taken from the undropped a. The masks depend on nothing
    but K, the row and the unit: not on the threads, the blocks or the order
    of the mini-batches. ``forward``, ``predict`` and ``gradients`` never drop.

A product's operand order does not matter (IEEE multiplication is
commutative), and neither does the thread count: threads split the work
between independent outputs, never one sum.

The fused contract (``fma=True``)
=================================
The same rules, except that in rules 2, 5, 6, 7 and 10, where a product is added
to something, the two make one fused multiply-add, ``fma(x, y, c) = x·y + c``
rounded once (IEEE 754's fusedMultiplyAdd; :func:`fma` here, the CPU's FMA
instruction or C99's ``fma``/``fmaf`` in the kernels), as 2', 5', 6', 7' and 10'
write out. Nothing else changes: exp, log, the activations, their
derivatives, the output nudges and the cost keep the rules above, products
and all, and the sums still run left to right from their first term, which
is a plain product, rounded.

2'. **Forward:** ``t = W[j, 0]·a_0``, then ``t = fma(W[j, k], a_k, t)`` for
    k = 1, 2, … in order; ``z_j = t + b_j``.
5'. **Backwards:** ``t = W[0, k]·δ_0``, then ``t = fma(W[j, k], δ_j, t)`` for
    j = 1, 2, … in order; ``δ^l_k = t·σ'(a^l_k)``.
6'. **Sums over the mini-batch:** ``G = δ_0 a_0ᵀ`` (each element a product),
    then ``G = fma(δ_i, a_iᵀ, G)`` element by element for the examples i = 1,
    2, … in the order visited. ``g = Σ_i δ_i`` has no products and stays 6.
7'. **The step**, with s, d and μ as in 7 (−s is exact):

    - Without momentum: ``W ← fma(−s, G, d·W)``, ``b ← fma(−s, g, b)``.
    - With momentum: ``V ← fma(−s, G, μ·V)``, ``W ← fma(d, W, V)``;
      ``v ← fma(−s, g, μ·v)``, ``b ← b + v``.
    - With Nesterov's: V and v as with momentum, then
      ``W ← fma(d, W, fma(−s, G, μ·V))``, ``b ← b + fma(−s, g, μ·v)``.

    With λ = 0, ``d·W`` is W and ``fma(d, W, V)`` is ``W + V`` rounded once.
10'. **Adam**, with g, the factors and the powers as in 10:
    ``M ← fma(c1, g, β1·M)``, ``V ← fma(c2, g·g, β2·V)``,
    ``u = fma(√V, k, ε)``, ``w ← fma(−a, M/u, d·w)``; the same for biases.

The cases at the edges, as training meets them. Zero factors (every
inactive ReLU unit) and subnormal products (tiny nudges times small
activations) are routine: the kernels' FMA instruction, or the C library's
``fma`` where a CPU lacks it, and :func:`fma` here all give the one
correctly rounded result, signed zeros included (products so small that the
emulation's error term would underflow take an exact path in integers).
Overflow, infinities and NaN appear only once training diverges: every side
then follows IEEE 754, the epoch's cost or parameters stop being finite and
``fit`` raises :class:`~fastmlp.DivergenceError`, as in the default
contract. Which NaN (its sign and payload) is no part of either contract.

Which contract to choose: both are exact, reproducible on every CPU and
in every variant of the kernels, and equally accurate in practice. The
default rounds as NumPy does, so it is the one a NumPy program reproduces;
the fused one rounds as BLAS and PyTorch do inside their sums, and is
faster on CPUs whose additions run on their FMA units (Intel's and ARM's),
where the default leaves half of the arithmetic units idle.
"""

from __future__ import annotations

import math

import numpy as np

from ._base import BaseTrainer, dropout_scale, dropout_threshold
from ._fused import fma, fma_arrays
from ._typing import FloatArray

__all__ = ["ReferenceTrainer", "exp", "fma", "log", "sigmoid", "relu", "tanh", "softmax", "identity", "ordered_sum"]


# ----------------------------------------------------------------------
# Sums in a fixed order


def ordered_sum(terms, axis=-1):
    """Sum ``terms`` along ``axis`` strictly left to right, from the first term.

    ``np.add.accumulate`` must produce every partial sum
    ``t_0, t_0 + t_1, (t_0 + t_1) + t_2, …``, so its last one is the
    left-to-right sum, whichever SIMD path NumPy takes.
    """
    return np.add.accumulate(terms, axis=axis).take(-1, axis=axis)


# Bound the (rows × outputs × inputs) products held at once by _weighted_sums.
_TERMS_PER_CHUNK = 1 << 21


def _weighted_sums(A, M, fused=False):
    """``S[i, j] = Σ_k M[j, k]·A[i, k]``, each sum in order over k; with ``fused``, each
    term after the first taken in with one fused multiply-add (contract 2', 5').

    The forward pass uses it with M = W (z = W·a before the bias); the
    backward pass with M = Wᵀ (Σ_j W[j, k]·δ_j).
    """
    if fused:
        out = A[:, None, 0] * M[None, :, 0]
        for k in range(1, M.shape[1]):
            out = fma_arrays(M[None, :, k], A[:, None, k], out)
        return out
    out = np.empty((A.shape[0], M.shape[0]), dtype=A.dtype)
    rows = max(1, _TERMS_PER_CHUNK // M.size)
    for start in range(0, A.shape[0], rows):
        block = A[start : start + rows]
        out[start : start + rows] = ordered_sum(block[:, None, :] * M[None, :, :], axis=2)
    return out


# ----------------------------------------------------------------------
# exp, and the activations with their derivatives side by side

# exp(x) = 2^k · e^r with k = round(x / ln 2) and |r| ≤ ln(2)/2. ln 2 is
# split into a head with trailing zero bits, so that k·head is exact, and
# a tail holding the rest of ln 2 to more than double precision.
_EXP = {
    np.dtype(np.float64): dict(
        lo=-746.0, hi=710.0,  # beyond them exp is 0 or inf in float64
        shifter=6755399441055744.0,  # 1.5·2^52: adding it rounds to an integer
        ln2_hi=0.693147180559663, ln2_lo=2.8235290563031577e-13,
        degree=13, int_type=np.int64, uint_type=np.uint64, bias=1023, mantissa_bits=52,
    ),
    np.dtype(np.float32): dict(
        lo=-104.0, hi=89.0,
        shifter=12582912.0,  # 1.5·2^23
        ln2_hi=0.693145751953125, ln2_lo=1.428606765330187e-06,
        degree=7, int_type=np.int32, uint_type=np.uint32, bias=127, mantissa_bits=23,
    ),
}
_LOG2_E = 1.4426950408889634
# 1/n! for the Taylor polynomial of e^r, as Python floats (the kernel uses the same literals).
_INV_FACTORIAL = (
    1.0, 1.0, 0.5, 0.16666666666666666, 0.041666666666666664, 0.008333333333333333,
    0.001388888888888889, 0.0001984126984126984, 2.48015873015873e-05, 2.7557319223985893e-06,
    2.755731922398589e-07, 2.505210838544172e-08, 2.08767569878681e-09, 1.6059043836821613e-10,
)


def exp(x):
    """e^x for a float32 or float64 array, within about one unit in the last place.

    Built from +, −, × and integer bit operations, each exactly rounded in
    IEEE arithmetic, so the result depends on nothing but ``x``:

    1. clamp x to [lo, hi] (NaN passes), where exp has already reached 0 or ∞;
    2. ``k = round(x·log2 e)`` by adding and subtracting 1.5·2^52 (2^23 for float32);
    3. ``r = (x − k·ln2_hi) − k·ln2_lo``, so ``e^x = 2^k·e^r``, ``|r| ≤ 0.35``;
    4. ``p = e^r`` by Horner's rule on the Taylor polynomial of degree 13 (7);
    5. ``p·2^k1·2^k2`` with ``k1 = k >> 1``, ``k2 = k − k1``: two exact powers of
       two, each built from its bits, so overflow gives ∞ and underflow
       rounds once into the subnormals.
    """
    x = np.asarray(x)
    if x.dtype not in _EXP:
        raise TypeError(f"exp takes a float32 or float64 array, got {x.dtype}")
    c = _EXP[x.dtype]
    f = x.dtype.type
    x = np.where(x < f(c["lo"]), f(c["lo"]), x)
    x = np.where(x > f(c["hi"]), f(c["hi"]), x)
    shifter = f(c["shifter"])
    t = x * f(_LOG2_E) + shifter
    kf = t - shifter
    r = (x - kf * f(c["ln2_hi"])) - kf * f(c["ln2_lo"])
    p = f(_INV_FACTORIAL[c["degree"]])
    for coefficient in reversed(_INV_FACTORIAL[: c["degree"]]):
        p = p * r + f(coefficient)
    # k sits in the low bits of t, since t = 1.5·2^52 + k exactly.
    k = (t.view(c["uint_type"]) - np.array(shifter).view(c["uint_type"])).view(c["int_type"])
    k1 = k >> 1
    k2 = k - k1
    two_k1 = ((k1 + c["bias"]).view(c["uint_type"]) << c["mantissa_bits"]).view(x.dtype)
    two_k2 = ((k2 + c["bias"]).view(c["uint_type"]) << c["mantissa_bits"]).view(x.dtype)
    with np.errstate(over="ignore", under="ignore"):
        return (p * two_k1) * two_k2


# ln(m) for m in [√½, √2] is 2·atanh(s) with s = (m − 1)/(m + 1), |s| ≤ 0.172:
# the odd series 2s·(1 + s²/3 + s⁴/5 + …), cut where its terms drop below
# the dtype's precision.
_LOG = {
    np.dtype(np.float64): dict(
        min_normal=2.2250738585072014e-308, scale=18014398509481984.0, scale_bits=54,  # 2^54
        sqrt2=1.4142135623730951, terms=10, uint_type=np.uint64, bias=1023, mantissa_bits=52,
    ),
    np.dtype(np.float32): dict(
        min_normal=1.1754943508222875e-38, scale=16777216.0, scale_bits=24,  # 2^24
        sqrt2=1.4142135381698608, terms=5, uint_type=np.uint32, bias=127, mantissa_bits=23,
    ),
}
#: The floor of :func:`log`: a probability that rounds to 0 costs 100, not ∞.
LOG_FLOOR = -100.0


def log(x):
    """ln x for a float32 or float64 array of x ≥ 0, never below −100.

    Built, like :func:`exp`, from +, −, ×, / and bit operations only:

    1. NaN and +∞ give themselves; x < 0 gives NaN; ±0 gives −100;
    2. a subnormal x is first scaled by 2^54 (2^24 for float32), exactly;
    3. x = 2^e·m with m in [1, 2), read from the bits; if m > √2, then
       m = m·½ and e = e + 1;
    4. ``s = (m − 1)/(m + 1)``, ``h = s + s``, ``z = s·s``; ``p`` by Horner's
       rule over z from 1/21 down to 1/3 (1/11 … 1/3 in float32);
       ``ln m = h + (h·z)·p``;
    5. ``ln x = (e·ln2_lo + ln m) + e·ln2_hi``, with exp's split of ln 2;
    6. results below −100 (among them ln 0) become −100.
    """
    x = given = np.asarray(x)
    if x.dtype not in _LOG:
        raise TypeError(f"log takes a float32 or float64 array, got {x.dtype}")
    c, e_c = _LOG[x.dtype], _EXP[x.dtype]
    with np.errstate(over="ignore"):
        return _log(x, given, c, e_c)


def _log(x, given, c, e_c):
    f = x.dtype.type
    special = ~(x < f(np.inf))  # NaN and +inf
    negative = x < 0
    zero = x == 0  # both zeros: −0 is not < 0, and its sign bit must not reach the exponent
    x = np.where(special | negative | zero, f(1), x)
    small = x < f(c["min_normal"])
    x = np.where(small, x * f(c["scale"]), x)  # only the small ones are used: others may overflow
    bits = x.view(c["uint_type"])
    mb = c["mantissa_bits"]
    e = (bits >> mb).astype(np.int64) - c["bias"] - np.where(small, c["scale_bits"], 0)
    one_bits = c["uint_type"](c["bias"]) << c["uint_type"](mb)
    m = ((bits & ((c["uint_type"](1) << c["uint_type"](mb)) - c["uint_type"](1))) | one_bits).view(x.dtype)
    high = m > f(c["sqrt2"])
    m = np.where(high, m * f(0.5), m)
    kf = (e + high).astype(x.dtype)
    one = f(1)
    s = (m - one) / (m + one)
    h = s + s
    z = s * s
    p = f(1 / (2 * c["terms"] + 1))
    for i in range(c["terms"] - 1, 0, -1):
        p = p * z + f(1 / (2 * i + 1))
    ln_m = h + (h * z) * p
    result = (kf * f(e_c["ln2_lo"]) + ln_m) + kf * f(e_c["ln2_hi"])
    result = np.where(result < f(LOG_FLOOR), f(LOG_FLOOR), result)
    result = np.where(zero, f(LOG_FLOOR), result)
    return np.where(special, given, np.where(negative, f(np.nan), result))


def sigmoid(z):
    """σ(z) = 1 / (1 + e^−z)."""
    one = z.dtype.type(1)
    return one / (one + exp(-z))


def sigmoid_prime(a):
    """σ'(z) = σ(z)·(1 − σ(z)), from the activation a = σ(z)."""
    return a * (a.dtype.type(1) - a)


def relu(z):
    """max(0, z), written so that NaN passes through and −0 becomes +0."""
    return np.where(z <= 0, z.dtype.type(0), z)


def relu_prime(a):
    """1 where the neuron is active (a > 0), else 0."""
    return np.where(a > 0, a.dtype.type(1), a.dtype.type(0))


def tanh(z):
    """tanh z = (1 − e^−2|z|)/(1 + e^−2|z|) with the sign of z (NaN passes)."""
    one = z.dtype.type(1)
    with np.errstate(over="ignore"):  # −2|z| = −∞ gives t = 0, as it should
        t = exp(z.dtype.type(-2) * np.abs(z))
    v = (one - t) / (one + t)
    return np.where(z >= 0, v, -v)


def tanh_prime(a):
    """tanh'(z) = 1 − tanh(z)², from the activation a = tanh(z)."""
    return a.dtype.type(1) - a * a


def softmax(z):
    """Each row's e^z_j / Σ_k e^z_k, computed as e^(z_j − m) / Σ_k e^(z_k − m) with m the row's largest z."""
    m = z[:, 0]
    for j in range(1, z.shape[1]):
        m = np.where(z[:, j] > m, z[:, j], m)  # the first largest, as a loop with > finds it
    e = exp(z - m[:, None])
    return e / ordered_sum(e, axis=1)[:, None]


def identity(z):
    """z itself: a linear output layer, for regression."""
    return z


def identity_prime(a):
    """1 everywhere: δ^L = (a − y)·1 is a − y exactly."""
    return np.ones_like(a)


_ACTIVATION = {
    "identity": (identity, identity_prime),  # output layer only
    "sigmoid": (sigmoid, sigmoid_prime),
    "relu": (relu, relu_prime),
    "tanh": (tanh, tanh_prime),
    "softmax": (softmax, None),  # output layer only, where δ^L = a − y needs no derivative
}


def dropout_kept(key, counters, threshold):
    """Contract 11: which of the units of ``counters`` (uint64) an epoch of ``key`` keeps:
    SplitMix64's output for the state key + (counter + 1)·γ, its top 53 bits ≥ threshold.
    NumPy's unsigned integers wrap as C's do."""
    u = np.uint64
    z = u(key) + (counters + u(1)) * u(0x9E3779B97F4A7C15)
    z = (z ^ (z >> u(30))) * u(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> u(27))) * u(0x94D049BB133111EB)
    z ^= z >> u(31)
    return (z >> u(11)) >= u(threshold)


# ----------------------------------------------------------------------


def _write_into(arrays, values, dtype):
    """``values`` copied into ``arrays`` (made on first use), so that views of them stay live."""
    if arrays is None:
        arrays = [np.empty(np.shape(v), dtype=dtype) for v in values]
    for array, value in zip(arrays, values):
        array[...] = value
    return arrays


class ReferenceTrainer(BaseTrainer):
    """Mini-batch SGD with backprop in plain NumPy: the exact reference for :class:`fastmlp.Trainer`.

    Takes the same arguments and has the same methods and attributes as
    :class:`fastmlp.Trainer` (see :class:`fastmlp.BaseTrainer` for each).
    Built and fitted with the same arguments and data, the two hold the
    same bits. ``threads`` is accepted for symmetry and changes nothing here.
    """

    def _set_parameters(self, weights, biases):
        self._weights = _write_into(getattr(self, "_weights", None), weights, self.dtype)
        self._biases = _write_into(getattr(self, "_biases", None), biases, self.dtype)

    def _set_slots(self, slots):
        held = getattr(self, "_slot_arrays", [])
        self._slot_arrays = [
            (_write_into(old[0] if old else None, weights, self.dtype),
             _write_into(old[1] if old else None, biases, self.dtype))
            for old, (weights, biases) in zip(held + [None] * len(slots), slots)
        ]

    def _slots(self):
        return [(list(weights), list(biases)) for weights, biases in self._slot_arrays]

    @property
    def weights(self) -> list[FloatArray]:
        """``weights[l]``, shape ``(layer_sizes[l + 1], layer_sizes[l])``: the live parameters."""
        return list(self._weights)

    @property
    def biases(self) -> list[FloatArray]:
        """``biases[l]``, shape ``(layer_sizes[l + 1],)``: the live parameters."""
        return list(self._biases)

    def _feedforward(self, X, dropout=None):
        """Every layer's activation for the rows of X, ``[X, a^1, …, a^L]``, and each hidden
        layer's slopes σ'(a^l), as a list ``[σ'(a^1), …, σ'(a^{L−1})]``.

        ``dropout=(rows, key)``, in training, drops hidden units (contract 11): the rows of the
        examples in the training set, and the epoch's key. The activations are then the
        dropped ones, a·m, and the slopes σ'(a)·m.
        """
        activations, slopes = [X], []
        last = len(self.weights) - 1
        _, sigma_prime = _ACTIVATION[self.activation]
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            sigma, _ = _ACTIVATION[self.output_activation if l == last else self.activation]
            z = _weighted_sums(activations[-1], W, self.fma) + b  # contract 2 (2')
            a = sigma(z)
            if l < last:
                slope = sigma_prime(a)
                if dropout is not None:
                    m = self._masks(*dropout, l + 1)
                    slope, a = slope * m, a * m
                slopes.append(slope)
            activations.append(a)
        return activations, slopes

    def _masks(self, rows, key, l):
        """Contract 11: m for the units of hidden layer l of the examples ``rows``, c where kept, else 0."""
        f = self.dtype.type
        first = sum(self.layer_sizes[1:l])  # where layer l's units start in an example's row
        counters = (rows.astype(np.uint64)[:, None] * np.uint64(sum(self.layer_sizes[1:])) + np.uint64(first)
                    + np.arange(self.layer_sizes[l], dtype=np.uint64)[None, :])
        kept = dropout_kept(key, counters, dropout_threshold(self.dropout))
        return np.where(kept, dropout_scale(self.dropout, self.dtype), f(0))

    def _forward(self, X):
        return self._feedforward(X)[0][-1]

    def _backprop(self, X, Y, dropout=None):
        """The activations and nudges δ^l of every layer, for each row of X (with
        ``dropout``, see _feedforward).

        Returns ``(activations, deltas, errors, slopes)`` where ``deltas[l]`` is δ for
        the layer that ``W[l]`` feeds, ``errors`` each example's e_x (contract 8) and
        ``slopes`` _feedforward's.
        """
        activations, slopes = self._feedforward(X, dropout)
        output = activations[-1]
        diff = output - Y
        one = self.dtype.type(1)
        if self.cost == "quadratic":
            errors = ordered_sum(diff * diff, axis=1)  # contract 8
            # ∂C_x/∂a^L = a − y (with the ½), times the output neurons' σ': contract 4
            deltas = [diff * _ACTIVATION[self.output_activation][1](output)]
        else:
            if self.cost == "cross_entropy":
                terms = Y * log(output) + (one - Y) * log(one - output)
            else:
                terms = Y * log(output)
            errors = -ordered_sum(terms, axis=1)  # contract 8
            deltas = [diff]  # ∂C_x/∂z^L = a − y for these costs and their output layers
        # Propagate backwards: δ^l = (W^{l+1})ᵀ δ^{l+1} ⊙ σ'(a^l), contract 5 (5') and 11.
        for W, slope in zip(reversed(self.weights[1:]), reversed(slopes)):
            deltas.insert(0, _weighted_sums(deltas[0], W.T, self.fma) * slope)
        return activations, deltas, errors, slopes

    def _summed_nudges(self, activations, deltas):
        """Σ over the examples, in order, of each example's ∂C_x/∂W and ∂C_x/∂b (contract 6, 6')."""
        sums_w, sums_b = [], []
        for a, delta in zip(activations[:-1], deltas):
            # One example's nudge to W is the outer product δ aᵀ: how much it
            # wants each weight to change is its neuron's δ times the input a.
            G = delta[0][:, None] * a[0][None, :]
            for i in range(1, len(delta)):
                if self.fma:
                    G = fma_arrays(delta[i][:, None], a[i][None, :], G)
                else:
                    G = G + delta[i][:, None] * a[i][None, :]
            sums_w.append(G)
            sums_b.append(ordered_sum(delta, axis=0))
        return sums_w, sums_b

    def _update_mini_batch(self, X, Y, rate, rows):
        """One step on the mini-batch (X, Y), the training set's ``rows``; returns its examples' e_x."""
        activations, deltas, errors, slopes = self._backprop(
            X, Y, (rows, rate.dropout_key) if self.dropout else None)
        # Is some unit's σ' (times its mask) not 0? (The stall warning.)
        for l, slope in enumerate(slopes, 1):
            self._alive[0, l - 1] |= bool((slope != 0).any())
        if not self._alive[0, -1]:
            self._alive[0, -1] = (_ACTIVATION[self.output_activation][1](activations[-1]) != 0).any()
        sums_w, sums_b = self._summed_nudges(activations, deltas)
        f = self.dtype.type
        if self.optimizer == "adam":
            step = self._adam_step(rate, len(X))
        else:
            # Contract 7 (7'), each factor rounded to the dtype once.
            step = self._sgd_step(f(rate.learning_rate) / f(len(X)), f(self.momentum))
        slots = self._slot_arrays
        for l, (G, g) in enumerate(zip(sums_w, sums_b)):
            step(self._weights[l], [slot[0][l] for slot in slots], G, f(rate.decay))
            step(self._biases[l], [slot[1][l] for slot in slots], g, f(1))  # biases are not decayed
        return errors

    def _sgd_step(self, s, mu):
        """Contract 7 (7'): the step of parameters p (velocities V), sums G and decay d."""
        fused, nesterov = self.fma, self.nesterov

        def step(p, state, G, d):
            if not state:
                p[...] = fma(-s, G, d * p) if fused else d * p - s * G
                return
            (V,) = state
            V[...] = fma(-s, G, mu * V) if fused else mu * V - s * G
            if nesterov:  # the step looks ahead: μ·V − s·G with the new V
                ahead = fma(-s, G, mu * V) if fused else mu * V - s * G
            else:
                ahead = V
            p[...] = fma(d, p, ahead) if fused else d * p + ahead

        return step

    def _adam_step(self, rate, m):
        """Contract 10 (10'): Adam's step of parameters p (moments M, V), sums G and decay d."""
        f = self.dtype.type
        powers = self._adam_powers
        powers *= (self.betas[0], self.betas[1])  # β1^t, β2^t: one product each per step, in float64
        scale = f(1) / f(m)
        beta1, beta2 = f(self.betas[0]), f(self.betas[1])
        rest1, rest2 = f(1) - beta1, f(1) - beta2
        root = f(1.0 / math.sqrt(1.0 - powers[1]))
        rate_t = f(rate.learning_rate / (1.0 - powers[0]))
        eps = f(self.eps)
        fused = self.fma

        def step(p, state, G, d):
            M, V = state
            g = scale * G
            if fused:
                M[...] = fma(rest1, g, beta1 * M)
                V[...] = fma(rest2, g * g, beta2 * V)
                u = fma(np.sqrt(V), root, eps)
                p[...] = fma(-rate_t, M / u, d * p)
            else:
                M[...] = beta1 * M + rest1 * g
                V[...] = beta2 * V + rest2 * (g * g)
                u = np.sqrt(V) * root + eps
                p[...] = d * p - rate_t * (M / u)

        return step

    def _train_slice(self, X, Y, perm, total, buffers, rate, first, last):
        for start in range(0, len(perm), self.batch_size):
            batch = perm[start : start + self.batch_size]
            for e in self._update_mini_batch(X[batch], Y[batch], rate, batch).tolist():
                total += e  # contract 8: float64, in the order visited
        return total

    def _gradients(self, X, Y):
        activations, deltas, _, _ = self._backprop(X, Y)
        sums_w, sums_b = self._summed_nudges(activations, deltas)
        m = self.dtype.type(len(X))
        return [G / m for G in sums_w], [g / m for g in sums_b]
