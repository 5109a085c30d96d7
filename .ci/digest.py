"""Prints the kernel variant in use and a SHA-256 digest of fixed training runs in each contract.

A digest covers every parameter and output of a few trainings on MNIST
training images: the 784-16-16-10 network (blocks of examples) and a
784-300-10 one (a layer at a time), in float32 and float64, on two threads,
with momentum, L2 and a schedule; two epochs on the first 1000 images in
the default contract, on the first 200 in the fused one (fma=True, whose
software FMA is slow on an emulated CPU without the instruction). The
arithmetic contracts make them the same on every CPU, every kernel variant
and every architecture, so two machines compare their results by this one
line.

    python .ci/digest.py [MNIST_FOLDER]

The folder defaults to FASTMLP_MNIST_DIR, then ../shared/data/mnist beside
the repository. Run it from outside the source tree's root, or from the root
with `python .ci/digest.py` (which puts .ci/, not the root, on the path).
"""

import hashlib
import os
import sys
from pathlib import Path

import numpy as np

import fastmlp
from fastmlp.datasets import load_mnist


def digest(folder, fma=False):
    (X, y), _ = load_mnist(folder)
    n = 200 if fma else 1000
    X, y = X[:n], y[:n]
    sha = hashlib.sha256()
    runs = [
        ((784, 16, 16, 10), dict(activation="sigmoid", cost="quadratic", learning_rate=3.0, batch_size=10)),
        (
            (784, 300, 10),
            dict(activation="relu", cost="log_likelihood", learning_rate=0.1, batch_size=64, momentum=0.9, l2=1.0,
                 schedule=fastmlp.StepDecay(1, 0.5), init="scaled"),
        ),
    ]
    for sizes, options in runs:
        for dtype in ("float32", "float64"):
            trainer = fastmlp.Trainer(sizes, dtype=dtype, threads=2, seed=7, fma=fma, **options)
            history = trainer.fit(X, y, 2)
            sha.update(np.array(history.train_cost, dtype=np.float64).tobytes())
            for array in trainer.weights + trainer.biases + [trainer.forward(X[:200])]:
                sha.update(np.ascontiguousarray(array).tobytes())
    return sha.hexdigest()


if __name__ == "__main__":
    default = os.environ.get("FASTMLP_MNIST_DIR") or Path(__file__).resolve().parent.parent.parent / "shared/data/mnist"
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else default)
    print(f"kernels {fastmlp.build_info()['kernels']}, digest {digest(folder)}, fused digest {digest(folder, True)}")
