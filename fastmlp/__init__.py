"""fastmlp: train fully connected networks with backprop and mini-batch SGD, fast, on a CPU.

- :class:`Trainer` runs training in compiled Cython kernels.
- :class:`fastmlp.reference.ReferenceTrainer` is the same algorithm in plain
  NumPy, and defines the arithmetic the kernels follow, so the two agree
  bit for bit.
"""

from ._base import BaseTrainer, DivergenceError, EpochRecord, History
from .model_file import ModelFileError
from .reference import ReferenceTrainer
from .schedules import StepDecay
from .trainer import Trainer, build_info

__version__ = "0.1.0"

__all__ = [
    "BaseTrainer",
    "DivergenceError",
    "EpochRecord",
    "History",
    "ModelFileError",
    "ReferenceTrainer",
    "StepDecay",
    "Trainer",
    "build_info",
    "__version__",
]
