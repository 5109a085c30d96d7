"""The running CPU, read by the baseline module fastmlp._cpu (see fastmlp/_cpu.pyx)."""

from typing import Final

__test__: dict[str, str]

NATIVE_NEEDS: Final[str]
"""The variant whose CPU features a ``-march=native`` variant of this build needs ("" without one)."""

NATIVE_CPU: Final[str]
"""``vendor family model`` of the CPU that built the native variant ("" where unknown or none)."""

def read() -> tuple[str, int, int, frozenset[str]]:
    """``(vendor, family, model, features)`` of the running CPU."""
