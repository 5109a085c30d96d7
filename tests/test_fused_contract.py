"""The fused contract (fma=True): its own bits, the reference's, in every kernel variant.

test_agreement.py and test_layers.py draw ``fma`` with every other option;
these tests check what is particular to it: that the fusing is real (the
bits differ from the default contract's) and that every variant's fused
module says what it is. The real data goes through both contracts in
test_mnist.py and test_layers.py.
"""

import importlib

import numpy as np
import pytest
from helpers import assert_same_bits, assert_same_fits, assert_trainers_agree, raw_bits

import fastmlp
from fastmlp import ReferenceTrainer, Trainer, _dispatch

# Every test here runs with each kernel variant the CPU can run (conftest.py).
pytestmark = pytest.mark.usefixtures("each_kernel_variant")


def test_each_variant_has_a_module_for_each_contract(each_kernel_variant):
    plain, fused = _dispatch.for_contract(False), _dispatch.for_contract(True)
    assert plain.VARIANT == fused.VARIANT == each_kernel_variant
    assert (plain.FUSED, fused.FUSED) == (False, True)
    assert plain is importlib.import_module(f"fastmlp._kernels_{each_kernel_variant}")
    assert fused is importlib.import_module(f"fastmlp._fused_{each_kernel_variant}")


def test_build_info_says_whether_the_fused_kernels_use_the_instruction(each_kernel_variant):
    """x86-64-v3 and v4 include FMA, AArch64 has it always; the x86-64 baseline does not."""
    in_hardware = fastmlp.build_info()["fma_in_hardware"]
    if each_kernel_variant in ("avx2", "avx512", "neon"):
        assert in_hardware
    elif each_kernel_variant == "sse2":
        assert not in_hardware


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes", [(30, 20, 5), (30, 80, 70, 5)], ids=["narrow", "wide"])
def test_the_fused_contract_gives_other_bits_than_the_default(dtype, sizes):
    """Both contracts agree with their reference, and not with each other: the fusing is real,
    in the blocks of examples (narrow) and a layer at a time (wide), with momentum and L2."""
    rng = np.random.default_rng(1)
    X, y = rng.uniform(-1, 1, (200, sizes[0])), rng.integers(0, sizes[-1], 200)
    kwargs = dict(activation="tanh", cost="log_likelihood", l2=0.5, momentum=0.5, batch_size=32, seed=4,
                  dtype=dtype, threads=2)
    trained = {}
    for fma in (False, True):
        t, r = Trainer(sizes, fma=fma, **kwargs), ReferenceTrainer(sizes, fma=fma, **kwargs)
        assert_same_fits(t, r, X, y, 2)
        trained[fma] = t
    plain, fused = trained[False], trained[True]
    for a, b in zip(plain.weights + plain.biases, fused.weights + fused.biases):
        differ = np.count_nonzero(raw_bits(a) != raw_bits(b))
        assert differ > a.size // 10, f"only {differ} of {a.size} parameters differ between the contracts"
    # They round differently, not wrongly: from the same parameters, their gradients are close.
    plain, fused = Trainer(sizes, **kwargs), Trainer(sizes, fma=True, **kwargs)
    tolerance = 1e-4 if dtype == "float32" else 1e-12
    (gw, gb), (fw, fb) = plain.gradients(X, y), fused.gradients(X, y)
    for a, b in zip(gw + gb, fw + fb):
        assert np.allclose(a, b, rtol=tolerance, atol=tolerance * np.abs(a).max())
        assert not np.array_equal(raw_bits(a), raw_bits(b))


def test_forward_and_gradients_follow_the_contract():
    """Not only training: forward and gradients take the fused kernels too."""
    rng = np.random.default_rng(2)
    X, y = rng.uniform(-1, 1, (40, 12)), rng.integers(0, 3, 40)
    t, r = Trainer((12, 9, 3), fma=True, seed=1), ReferenceTrainer((12, 9, 3), fma=True, seed=1)
    t.fit(X, y, 1)
    r.fit(X, y, 1)
    assert_trainers_agree(t, r)
    assert_same_bits(t.forward(X), r.forward(X), "forward")
    (tw, tb), (rw, rb) = t.gradients(X, y), r.gradients(X, y)
    for a, b in zip(tw + tb, rw + rb):
        assert_same_bits(a, b, "gradients")
