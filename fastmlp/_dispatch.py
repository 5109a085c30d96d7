"""Which compiled kernels run: the variant for the running CPU, chosen at import.

setup.py compiles the kernels (fastmlp/_kernels.pyx) once per instruction
set into modules ``fastmlp._kernels_<variant>``: on x86-64 ``sse2`` (the
baseline), ``avx2`` (x86-64-v3) and ``avx512`` (x86-64-v4); on aarch64
``neon``; elsewhere ``generic``; and ``native`` (``-march=native``) where the
build asked for it with FASTMLP_NATIVE=1. Every variant computes the same
bits; they differ only in speed. Each has a twin ``fastmlp._fused_<variant>``
for the fused arithmetic contract (fma=True), chosen with it:
:func:`for_contract` gives the running variant's module for either contract.

Nothing compiled beyond the baseline runs before the choice: fastmlp._cpu,
a baseline module, reads the CPU's features, and only a variant whose
instruction set the CPU has (and the operating system saves the registers
of) is ever imported. Among those the widest vectors win, except where
they are not known to be the fastest: AMD's Zen 4 executes each 512-bit
operation as two 256-bit halves, so on CPUs other than Intel's and AMD's
Zen 5 and later, AVX-512 and AVX2 are timed on a small wide layer and the
faster one is chosen.

``FASTMLP_KERNELS=<variant>`` in the environment forces one (``auto``, or
unset, chooses); :func:`use_kernels` switches in a running process.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import time
from types import ModuleType


def _no_kernels_message() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    return (
        f"fastmlp's compiled kernels are not built in {here}. If that is fastmlp's source tree, "
        "Python found it before the installed package: run `pytest` rather than `python -m pytest` "
        "(which puts the current folder first), or run from another folder; to work in the source "
        "tree itself, build the kernels there with `python setup.py build_ext --inplace`. "
        "Otherwise install fastmlp with `pip install .`."
    )


try:
    from . import _cpu
except ImportError as e:
    raise ImportError(_no_kernels_message()) from e

#: Every variant name, in the order of preference among those the CPU runs.
PREFERENCE = ("avx512", "avx2", "sse2", "neon", "generic")
ALL = PREFERENCE + ("native",)

_AVX2 = ("pni", "ssse3", "sse4_1", "sse4_2", "popcnt", "cx16", "lahf_lm") + (
    "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "os_ymm",
)
#: What each variant needs of the CPU beyond its architecture's baseline: every feature of
#: its x86-64 micro-architecture level, as the compiler may use any of them.
NEEDS: dict[str, tuple[str, ...]] = {
    "sse2": (),
    "avx2": _AVX2,
    "avx512": _AVX2 + ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "os_zmm"),
    "neon": (),
    "generic": (),
}
NEEDS["native"] = NEEDS.get(_cpu.NATIVE_NEEDS, ())

VENDOR, FAMILY, MODEL, FEATURES = _cpu.read()


def built() -> list[str]:
    """The variants in this build, in order of preference (``native`` last), found
    without importing any."""
    return [name for name in ALL if importlib.util.find_spec(f"fastmlp._kernels_{name}") is not None]


def missing(name: str) -> list[str]:
    """The CPU features variant ``name`` needs and the running CPU lacks. The native variant
    also needs the very kind of CPU that built it, as it may use any of its instructions."""
    lacks = [feature for feature in NEEDS[name] if feature not in FEATURES]
    here = f"{VENDOR} {FAMILY} {MODEL}"
    if name == "native" and _cpu.NATIVE_CPU != here:
        lacks.append(f"the building CPU's name ({_cpu.NATIVE_CPU or 'unknown'}; this one is {here})")
    return lacks


def runnable() -> list[str]:
    """The built variants the running CPU can execute, in order of preference."""
    return [name for name in built() if not missing(name)]


def _load(name: str, fused: bool = False) -> ModuleType:
    return importlib.import_module(f"fastmlp._{'fused' if fused else 'kernels'}_{name}")


def for_contract(fma: bool) -> ModuleType:
    """The running variant's module for an arithmetic contract: :data:`kernels`, or with
    ``fma`` its fused twin (imported on first use)."""
    if not fma:
        return kernels
    try:
        return _load(kernels.VARIANT, fused=True)
    except ImportError as e:
        raise ImportError(
            f"this build of fastmlp has no fused {kernels.VARIANT} kernels, so it cannot train with fma=True "
            "(MSVC builds have none: build fastmlp with GCC or Clang)"
        ) from e


def _check(name: str) -> None:
    """Raises ValueError, saying why, unless variant ``name`` can run here."""
    if name not in ALL:
        raise ValueError(f"no kernel variant is named {name!r}: the names are {', '.join(ALL)}")
    have = built()
    if name not in have:
        raise ValueError(f"this build of fastmlp has no {name} kernels: it has {', '.join(have)}")
    lacks = missing(name)
    if lacks:
        raise ValueError(
            f"this CPU cannot run the {name} kernels: it lacks {', '.join(lacks)}; "
            f"it can run {', '.join(runnable())}"
        )


def _wide_vectors_known_fast() -> bool:
    """Whether AVX-512 is known to beat AVX2 on this CPU: Intel's cores that have it run
    512-bit operations at full width, as does AMD's Zen 5 (family 26) and later."""
    return VENDOR == "GenuineIntel" or (VENDOR == "AuthenticAMD" and FAMILY >= 26)


def measure(names: list[str], rounds: int = 3) -> dict[str, float]:
    """Seconds per epoch of a small wide network (784-256-10 in float32, on one thread,
    256 examples) for each variant in ``names``, the best of ``rounds`` taken in turns."""
    import numpy as np

    from .trainer import Trainer

    rng = np.random.default_rng(0)
    X = rng.random((256, 784), dtype=np.float32)
    y = rng.integers(0, 10, 256)
    best = {name: float("inf") for name in names}
    previous = kernels, chosen_by
    try:
        for _ in range(rounds):
            for name in names:
                use_kernels(name)
                trainer = Trainer(
                    (784, 256, 10), activation="relu", learning_rate=0.1, batch_size=64, dtype="float32", seed=0
                )
                start = time.perf_counter()
                trainer.fit(X, y)
                best[name] = min(best[name], time.perf_counter() - start)
    finally:
        _activate(*previous)
    return best


def choose() -> tuple[str, str]:
    """The variant to run and why: FASTMLP_KERNELS if set, else the best the CPU runs."""
    forced = os.environ.get("FASTMLP_KERNELS", "").strip().lower()
    if forced and forced != "auto":
        try:
            _check(forced)
        except ValueError as e:
            raise ImportError(f"FASTMLP_KERNELS={forced}: {e}") from None
        return forced, "FASTMLP_KERNELS"
    candidates = [name for name in runnable() if name != "native"]
    if candidates[:2] == ["avx512", "avx2"] and not _wide_vectors_known_fast():
        times = measure(candidates[:2])
        name = min(times, key=times.__getitem__)
        return name, "measured: " + ", ".join(f"{n} {t * 1e3:.2f} ms" for n, t in times.items())
    if len(candidates) == 1:
        return candidates[0], "the only variant of this build the CPU runs"
    return candidates[0], "the widest vectors this CPU runs"


def _activate(module: ModuleType, why: str) -> None:
    global kernels, chosen_by
    kernels, chosen_by = module, why


def use_kernels(name: str) -> str:
    """Run fastmlp's kernels from variant ``name`` from now on, in this process; returns the
    name of the variant that ran before.

    ``name`` is one of :func:`fastmlp.build_info`'s ``kernels_runnable``. A variant the
    build lacks or the CPU cannot run raises ValueError, saying why. Every variant
    computes the same bits, so results do not change, only speed. A fit or a call that
    has started keeps the variant it started with.
    """
    name = name.strip().lower()
    _check(name)
    previous = kernels.VARIANT
    _activate(_load(name), "use_kernels()")
    return previous


def select() -> None:
    """Activates the variant :func:`choose` picks; ``import fastmlp`` calls it once its
    modules are loaded, as the measurement trains a Trainer."""
    name, why = choose()
    _activate(_load(name), why)


_baseline = [name for name in built() if name != "native" and not NEEDS[name]]
if not _baseline:
    raise ImportError(_no_kernels_message())

#: The variant's module that runs, and why it was chosen (see :func:`choose`). Until
#: select() runs, the baseline's, which every CPU of the architecture runs.
kernels: ModuleType = _load(_baseline[0])
chosen_by = "the baseline, until import chooses"
