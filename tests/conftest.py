import os

import pytest
from helpers import has_mnist, kernel_variants, mnist_dir
from hypothesis import settings

settings.register_profile(
    "fastmlp",
    deadline=None,  # timings on shared machines say nothing
    max_examples=int(os.environ.get("FASTMLP_HYPOTHESIS_EXAMPLES", "60")),
    print_blob=True,
)
settings.load_profile("fastmlp")


@pytest.fixture(scope="session")
def mnist():
    folder = mnist_dir()
    if not has_mnist(folder):
        pytest.skip(f"no MNIST IDX files in {folder} (set FASTMLP_MNIST_DIR to a folder holding them)")
    from fastmlp.datasets import load_mnist

    return load_mnist(folder)


@pytest.fixture(scope="module", params=kernel_variants())
def each_kernel_variant(request):
    """Runs a module's tests once with every kernel variant this CPU runs (only
    FASTMLP_KERNELS's, where it names one), switching in this process."""
    import fastmlp
    from fastmlp import _dispatch

    before = _dispatch.kernels, _dispatch.chosen_by
    fastmlp.use_kernels(request.param)
    yield request.param
    _dispatch._activate(*before)
