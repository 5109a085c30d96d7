"""The contract holds whichever SIMD path NumPy takes.

NumPy picks its loops at import time from the CPU (AVX-512, AVX2, ...).
These tests run the agreement tests again in a fresh interpreter with every
dispatchable CPU feature disabled (NPY_DISABLE_CPU_FEATURES), and check
that the reference computes the same bits there as here.
"""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO

try:
    from numpy._core._multiarray_umath import __cpu_dispatch__
except ImportError:  # NumPy 1.x
    from numpy.core._multiarray_umath import __cpu_dispatch__

DISPATCH_OFF = dict(os.environ, NPY_DISABLE_CPU_FEATURES=" ".join(__cpu_dispatch__))

FINGERPRINT = """
import hashlib, numpy as np
from fastmlp import ReferenceTrainer
rng = np.random.default_rng(0)
X, y = rng.uniform(-3, 3, (200, 30)), rng.integers(0, 10, 200)
digest = hashlib.sha256()
for dtype in ("float32", "float64"):
    for activation, cost in (("sigmoid", "quadratic"), ("relu", "quadratic"),
                             ("tanh", "cross_entropy"), ("sigmoid", "log_likelihood")):
        r = ReferenceTrainer((30, 17, 10), activation=activation, cost=cost, dtype=dtype, seed=1,
                             learning_rate=0.7, l2=1.0, momentum=0.5)
        h = r.fit(X, y, 2)
        digest.update(np.array(h.train_cost).tobytes())
        for p in r.weights + r.biases + [r.forward(X)]:
            digest.update(np.ascontiguousarray(p).tobytes())
print(digest.hexdigest())
"""


def run(args, env):
    # From tests/, so that the installed fastmlp is imported, not the source tree.
    return subprocess.run([sys.executable, *args], env=env, cwd=REPO / "tests", capture_output=True, text=True, timeout=1200)


def test_reference_bits_do_not_depend_on_numpys_simd_path():
    here = run(["-c", FINGERPRINT], dict(os.environ))
    there = run(["-c", FINGERPRINT], DISPATCH_OFF)
    assert here.returncode == 0 and there.returncode == 0, here.stderr + there.stderr
    assert here.stdout == there.stdout


@pytest.mark.skipif(not __cpu_dispatch__, reason="this NumPy dispatches no CPU features")
def test_agreement_tests_pass_with_dispatch_off():
    done = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_agreement.py", "test_exp.py"], DISPATCH_OFF)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout
