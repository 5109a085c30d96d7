"""Type aliases for fastmlp's annotations; nothing here runs any arithmetic."""

from __future__ import annotations

import os
from typing import Any, TypeAlias, TypedDict

import numpy as np
from numpy.typing import NDArray

#: Parameters, outputs and gradients: float32 or float64 arrays, as the trainer's ``dtype`` says.
FloatArray: TypeAlias = NDArray[np.floating[Any]]

#: A path to a file or folder.
StrPath: TypeAlias = str | os.PathLike[str]

#: One split of a data set: images as rows of 784 floats in [0, 1], and uint8 labels.
Split: TypeAlias = tuple[FloatArray, NDArray[np.uint8]]


class BuildInfo(TypedDict):
    """What :func:`fastmlp.build_info` returns."""

    kernels: str  #: the kernel variant in use: sse2, avx2, avx512, neon, generic or native
    kernels_built: list[str]  #: the variants in this build
    kernels_runnable: list[str]  #: those the running CPU can execute
    chosen_by: str  #: why the variant in use was chosen
    cpu: str  #: the CPU's vendor, family and model (x86-64), or ""
    openmp: bool  #: whether the kernels in use run on OpenMP threads
    compile_flags: str  #: the C compiler flags they were built with
    vector_bytes: int  #: the width of their vectors: 16 (SSE2, NEON), 32 (AVX2) or 64 (AVX-512)
    fma_in_hardware: bool  #: whether their fused contract (fma=True) runs on the CPU's FMA instruction, inline
