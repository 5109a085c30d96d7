"""Builds fastmlp's compiled kernels. Metadata lives in pyproject.toml.

Environment variables read at build time:

FASTMLP_PORTABLE=1   do not optimise for the building CPU (no -march=native),
                     for wheels or a shared install that runs on other CPUs.
FASTMLP_NO_OPENMP=1  build without OpenMP; threads then run serially,
                     with the same results.
FASTMLP_DEBUG=1      turn Cython's bounds, wraparound and initialisation
                     checks back on, and compile with -O0 -g.
FASTMLP_VECTOR_BYTES=16|32|64
                     the kernels' vectors and block shapes of SSE2, AVX or
                     AVX-512, whatever the target: for testing every
                     target's shapes on one machine (slow where the target
                     lacks those vectors, but the same results).

Whatever the flags, floating-point contraction stays off
(-ffp-contract=off) and no -ffast-math: the kernels' results are defined
to the bit by fastmlp.reference.
"""

import glob
import os
import sys
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


DEBUG = _env_flag("FASTMLP_DEBUG")
VECTOR_BYTES = os.environ.get("FASTMLP_VECTOR_BYTES", "").strip()
if VECTOR_BYTES not in ("", "16", "32", "64"):
    sys.exit(f"FASTMLP_VECTOR_BYTES must be 16, 32 or 64, not {VECTOR_BYTES!r}")
PORTABLE = _env_flag("FASTMLP_PORTABLE")
NO_OPENMP = _env_flag("FASTMLP_NO_OPENMP")

_OPENMP_PROBE = """
#include <omp.h>
int main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }
"""


def _accepts(compiler, flags, code="int main(void) { return 0; }\n", link=False):
    """Whether the compiler builds `code` with `flags` without complaint."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write(code)
        strict = [] if compiler.compiler_type == "msvc" else ["-Werror"]
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=flags + strict)
            if link:
                compiler.link_executable(objects, os.path.join(tmp, "probe"), extra_postargs=flags)
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    """Chooses the compiler flags this compiler accepts, then builds."""

    def build_extensions(self):
        cc = self.compiler
        if cc.compiler_type == "msvc":
            compile_flags = ["/Od" if DEBUG else "/O2", "/fp:precise", "/fp:contract-"]
            openmp = ["/openmp"]
            link_openmp = []
        else:
            compile_flags = ["-O0", "-g"] if DEBUG else ["-O3"]
            compile_flags.append("-ffp-contract=off")
            if not PORTABLE and not DEBUG and _accepts(cc, ["-march=native"]):
                compile_flags.append("-march=native")
            openmp = ["-fopenmp"]
            link_openmp = ["-fopenmp"]
        compile_flags = [f for f in compile_flags if _accepts(cc, [f])]
        if "-ffp-contract=off" not in compile_flags and cc.compiler_type != "msvc":
            sys.exit("fastmlp needs a C compiler that accepts -ffp-contract=off (GCC or Clang)")
        use_openmp = not NO_OPENMP and _accepts(cc, openmp, _OPENMP_PROBE, link=True)
        if use_openmp:
            compile_flags += openmp
        description = " ".join(compile_flags)
        for ext in self.extensions:
            ext.extra_compile_args = compile_flags
            ext.extra_link_args = link_openmp if use_openmp else []
            ext.define_macros.append(("FASTMLP_CFLAGS", f'"{description}"'))
            if VECTOR_BYTES:
                ext.define_macros.append(("FASTMLP_VECTOR_BYTES", VECTOR_BYTES))
        shapes = f", the vectors of {VECTOR_BYTES} bytes" if VECTOR_BYTES else ""
        print(f"fastmlp: compiling the kernels with {description}{shapes}")
        super().build_extensions()


directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

extensions = [
    Extension(
        "fastmlp._kernels",
        ["fastmlp/_kernels.pyx"],
        depends=sorted(glob.glob("fastmlp/*.pxi") + glob.glob("fastmlp/kernels/*.h")),
    )
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=directives),
    cmdclass={"build_ext": BuildExt},
)
