"""fastmlp: train fully connected networks with backprop and mini-batch SGD, fast, on a CPU.

- :class:`Trainer` runs training in compiled Cython kernels.
- :class:`fastmlp.reference.ReferenceTrainer` is the same algorithm in plain
  NumPy, and defines the arithmetic the kernels follow, so the two agree
  bit for bit.
"""

from . import _dispatch
from ._base import BaseTrainer, DivergenceError, EpochRecord, History, TrainingStalledWarning
from .model_file import ModelFileError
from .reference import ReferenceTrainer
from .schedules import StepDecay
from ._dispatch import use_kernels
from .trainer import Trainer, build_info

__version__ = "0.1.0"

# Choose the kernels for this CPU (FASTMLP_KERNELS can force them): see fastmlp._dispatch.
_dispatch.select()

__all__ = [
    "BaseTrainer",
    "DivergenceError",
    "EpochRecord",
    "History",
    "ModelFileError",
    "ReferenceTrainer",
    "StepDecay",
    "TrainingStalledWarning",
    "Trainer",
    "build_info",
    "use_kernels",
    "__version__",
]
