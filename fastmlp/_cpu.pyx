# cython: language_level=3
"""The running CPU: its vendor, family, model and the instruction-set features
the kernel variants need (read by kernels/cpu.h).

This module is compiled for the architecture's baseline whatever the build,
so importing it is safe on every CPU; fastmlp._dispatch reads it before any
kernel variant is loaded.
"""

cdef extern from "kernels/cpu.h":
    ctypedef struct fastmlp_cpu:
        char vendor[13]
        int family
        int model
        long features

    fastmlp_cpu fastmlp_read_cpu()

    enum:
        FASTMLP_CPU_SSE3
        FASTMLP_CPU_SSSE3
        FASTMLP_CPU_SSE41
        FASTMLP_CPU_SSE42
        FASTMLP_CPU_POPCNT
        FASTMLP_CPU_CX16
        FASTMLP_CPU_LAHF
        FASTMLP_CPU_AVX
        FASTMLP_CPU_AVX2
        FASTMLP_CPU_BMI1
        FASTMLP_CPU_BMI2
        FASTMLP_CPU_F16C
        FASTMLP_CPU_FMA
        FASTMLP_CPU_LZCNT
        FASTMLP_CPU_MOVBE
        FASTMLP_CPU_OS_YMM
        FASTMLP_CPU_AVX512F
        FASTMLP_CPU_AVX512BW
        FASTMLP_CPU_AVX512CD
        FASTMLP_CPU_AVX512DQ
        FASTMLP_CPU_AVX512VL
        FASTMLP_CPU_OS_ZMM

cdef extern from *:
    """
    #ifndef FASTMLP_NATIVE_NEEDS
    #define FASTMLP_NATIVE_NEEDS ""
    #endif
    #ifndef FASTMLP_NATIVE_CPU
    #define FASTMLP_NATIVE_CPU ""
    #endif
    """
    const char* FASTMLP_NATIVE_NEEDS
    const char* FASTMLP_NATIVE_CPU

#: The variant whose features a ``-march=native`` variant of this build needs ("" without one).
NATIVE_NEEDS = FASTMLP_NATIVE_NEEDS.decode()
#: "vendor family model" of the CPU that built the native variant ("" where unknown or none).
NATIVE_CPU = FASTMLP_NATIVE_CPU.decode()

# Feature names as Linux's /proc/cpuinfo spells them; os_ymm and os_zmm say that the
# operating system saves the AVX and AVX-512 registers.
_FEATURES = {
    "pni": FASTMLP_CPU_SSE3,
    "ssse3": FASTMLP_CPU_SSSE3,
    "sse4_1": FASTMLP_CPU_SSE41,
    "sse4_2": FASTMLP_CPU_SSE42,
    "popcnt": FASTMLP_CPU_POPCNT,
    "cx16": FASTMLP_CPU_CX16,
    "lahf_lm": FASTMLP_CPU_LAHF,
    "avx": FASTMLP_CPU_AVX,
    "avx2": FASTMLP_CPU_AVX2,
    "bmi1": FASTMLP_CPU_BMI1,
    "bmi2": FASTMLP_CPU_BMI2,
    "f16c": FASTMLP_CPU_F16C,
    "fma": FASTMLP_CPU_FMA,
    "abm": FASTMLP_CPU_LZCNT,
    "movbe": FASTMLP_CPU_MOVBE,
    "os_ymm": FASTMLP_CPU_OS_YMM,
    "avx512f": FASTMLP_CPU_AVX512F,
    "avx512bw": FASTMLP_CPU_AVX512BW,
    "avx512cd": FASTMLP_CPU_AVX512CD,
    "avx512dq": FASTMLP_CPU_AVX512DQ,
    "avx512vl": FASTMLP_CPU_AVX512VL,
    "os_zmm": FASTMLP_CPU_OS_ZMM,
}


def read():
    """``(vendor, family, model, features)`` of the running CPU: the CPUID vendor string,
    the display family and model, and the frozenset of feature names it has. Off x86-64,
    ``("", 0, 0, frozenset())``."""
    cdef fastmlp_cpu cpu = fastmlp_read_cpu()
    features = frozenset(name for name, bit in _FEATURES.items() if cpu.features & bit)
    return cpu.vendor.decode("ascii", "replace"), cpu.family, cpu.model, features
