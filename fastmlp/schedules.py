"""Learning-rate schedules: how η changes from epoch to epoch."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

__all__ = ["StepDecay"]


@dataclass(frozen=True)
class StepDecay:
    """A learning-rate schedule: η times ``factor`` every ``every`` epochs.

    Epoch e (1-based, counted over every ``fit`` call of the trainer) trains
    with ``learning_rate · factor ** ((e − 1) // every)``, in float64. For
    example ``StepDecay(every=10, factor=0.5)`` halves η after epochs 10,
    20, ….
    """

    every: int
    factor: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.every, bool) or not isinstance(self.every, numbers.Integral):
            raise TypeError(f"StepDecay.every must be an integer, got {self.every!r}")
        if self.every < 1:
            raise ValueError(f"StepDecay.every must be >= 1, got {self.every}")
        if isinstance(self.factor, bool) or not isinstance(self.factor, numbers.Real):
            raise TypeError(f"StepDecay.factor must be a real number, got {self.factor!r}")
        if not (math.isfinite(self.factor) and 0 < self.factor <= 1):
            raise ValueError(f"StepDecay.factor must lie in (0, 1], got {self.factor}")
        object.__setattr__(self, "every", int(self.every))
        object.__setattr__(self, "factor", float(self.factor))

    def __call__(self, learning_rate: float, epoch: int) -> float:
        """The learning rate of ``epoch`` (1-based)."""
        return learning_rate * self.factor ** ((epoch - 1) // self.every)
