import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import has_mnist, mnist_dir  # noqa: E402


@pytest.fixture(scope="session")
def mnist_shaped():
    """The real MNIST training set when present, else random data of its shape and range."""
    folder = mnist_dir()
    if has_mnist(folder):
        from fastmlp.datasets import load_mnist

        (X, y), _ = load_mnist(folder)
        return X, y
    print(f"no MNIST in {folder}: benchmarking on random data of its shape")
    rng = np.random.default_rng(0)
    return rng.random((60000, 784)), rng.integers(0, 10, 60000).astype(np.uint8)
