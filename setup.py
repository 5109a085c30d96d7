"""Builds fastmlp's compiled kernels. Metadata lives in pyproject.toml.

The kernels (fastmlp/_kernels.pyx) are compiled once per instruction set
the target architecture has a variant for, each into a module of its own:
on x86-64, fastmlp._kernels_sse2 (the baseline), _kernels_avx2 (x86-64-v3)
and _kernels_avx512 (x86-64-v4); on aarch64, _kernels_neon (its baseline);
elsewhere, _kernels_generic. Each is compiled again for the fused
arithmetic contract (fma=True), with FASTMLP_FUSED=1, into
fastmlp._fused_<variant>. fastmlp._cpu, compiled for the baseline,
reads the CPU's features, and `import fastmlp` loads the best variant the
CPU runs (fastmlp/_dispatch.py). So one build runs on every CPU of its
architecture. The source is one: every variant computes the same bits.

Environment variables read at build time:

FASTMLP_NATIVE=1     also build a variant of the kernels for the building CPU
                     (-march=native), chosen only by FASTMLP_KERNELS=native or
                     fastmlp.use_kernels("native"): for comparing the
                     dispatched variants against it.
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
import platform
import re
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
NATIVE = _env_flag("FASTMLP_NATIVE")
NO_OPENMP = _env_flag("FASTMLP_NO_OPENMP")
if _env_flag("FASTMLP_PORTABLE"):
    print("fastmlp: FASTMLP_PORTABLE is no longer needed: every build runs on every CPU of its architecture")


def _target():
    """'x86_64', 'aarch64' or another machine name: what the extensions are compiled for.
    On macOS, ARCHFLAGS may name another architecture than the building one."""
    machine = platform.machine().lower()
    archflags = os.environ.get("ARCHFLAGS", "")
    if "-arch arm64" in archflags and "-arch x86_64" not in archflags:
        machine = "arm64"
    elif "-arch x86_64" in archflags and "-arch arm64" not in archflags:
        machine = "x86_64"
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


TARGET = _target()

# The variants built for each architecture, baseline first, with the GCC/Clang flags that
# name their instruction set. The x86-64 micro-architecture levels are what each
# variant's CPU check in fastmlp/_dispatch.py reads.
if TARGET == "x86_64":
    VARIANTS = {
        "sse2": ["-march=x86-64", "-mtune=generic"],
        "avx2": ["-march=x86-64-v3", "-mtune=generic"],
        "avx512": ["-march=x86-64-v4", "-mtune=generic"],
    }
    BASELINE = ["-march=x86-64", "-mtune=generic"]
elif TARGET == "aarch64":
    VARIANTS = {"neon": []}  # NEON is the baseline of armv8-a
    BASELINE = []
else:
    VARIANTS = {"generic": []}
    BASELINE = []
if NATIVE:
    VARIANTS["native"] = ["-march=native"]

# What a -march=native build needs of the CPU, by the level its predefined macros show:
# the native variant is refused on a CPU without that level.
_LEVEL_PROBES = {
    "avx512": ["__AVX512F__", "__AVX512BW__", "__AVX512CD__", "__AVX512DQ__", "__AVX512VL__", "__AVX2__"],
    "avx2": ["__AVX2__", "__FMA__", "__BMI2__", "__F16C__"],
}

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


def _builder_cpu():
    """'vendor family model' of the building CPU, as Linux's /proc/cpuinfo gives them, or ""
    where it cannot be read: the native variant runs only on a CPU of that name."""
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n")[0]
    except OSError:
        return ""
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}
    if not all(fields.get(k) for k in ("vendor_id", "cpu family", "model")):
        return ""
    return f"{fields['vendor_id']} {fields['cpu family']} {fields['model']}"


def _stamp(path, text):
    """Writes ``text`` to ``path`` unless it holds it already; returns the path. An extension
    that depends on the stamp of its flags is rebuilt when they change."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path) as f:
            if f.read() == text:
                return path
    except OSError:
        pass
    with open(path, "w") as f:
        f.write(text)
    return path


def _native_level(compiler):
    """The variant level whose instructions -march=native turns on here."""
    for level, macros in _LEVEL_PROBES.items():
        checks = "".join(f"#ifndef {m}\n#error\n#endif\n" for m in macros)
        if TARGET == "x86_64" and _accepts(compiler, ["-march=native"], checks + "int main(void) { return 0; }\n"):
            return level
    return next(iter(VARIANTS))


def _kind_and_variant(name):
    """("kernels" or "fused", the variant) of a kernels module's name; (None, None) for others."""
    match = re.fullmatch(r"fastmlp\._(kernels|fused)_(\w+)", name)
    return match.groups() if match else (None, None)


class BuildExt(build_ext):
    """Chooses the compiler flags this compiler accepts, then builds each variant."""

    def build_extensions(self):
        cc = self.compiler
        if cc.compiler_type == "msvc":
            # MSVC has no vector types: the kernels' scalar loops, in the baseline variant only.
            # /fp:precise does not contract a*b+c into one operation (MSVC 2022 needs /fp:contract for that).
            common = ["/Od" if DEBUG else "/O2", "/fp:precise"]
            openmp, link_openmp = ["/openmp"], []
            variants = {name: [] for name in list(VARIANTS)[:1]}
            baseline = []
            # Its C library's fma is not correctly rounded in software: no fused contract.
            print("fastmlp: MSVC builds no fused kernels: fma=True needs GCC or Clang")
        else:
            common = ["-O0", "-g"] if DEBUG else ["-O3"]
            common.append("-ffp-contract=off")
            openmp = link_openmp = ["-fopenmp"]
            variants = {name: flags for name, flags in VARIANTS.items() if _accepts(cc, flags)}
            baseline = BASELINE
        common = [f for f in common if _accepts(cc, [f])]
        if "-ffp-contract=off" not in common and cc.compiler_type != "msvc":
            sys.exit("fastmlp needs a C compiler that accepts -ffp-contract=off (GCC or Clang)")
        if not _accepts(cc, baseline):
            sys.exit(f"the C compiler does not accept {' '.join(baseline)}, the baseline of {TARGET}")
        skipped = sorted(set(VARIANTS) - set(variants))
        if skipped:
            print(f"fastmlp: this compiler cannot build the {', '.join(skipped)} kernels; they are left out")
        use_openmp = not NO_OPENMP and _accepts(cc, openmp, _OPENMP_PROBE, link=True)
        if use_openmp:
            common += openmp
        kept = []
        for ext in self.extensions:
            kind, variant = _kind_and_variant(ext.name)
            if variant is None:  # fastmlp._cpu: the baseline only, whatever else the build does
                ext.extra_compile_args = [f for f in common if f not in openmp] + baseline
                if "native" in variants:
                    ext.define_macros.append(("FASTMLP_NATIVE_NEEDS", f'"{_native_level(cc)}"'))
                    ext.define_macros.append(("FASTMLP_NATIVE_CPU", f'"{_builder_cpu()}"'))
                stamp = " ".join(ext.extra_compile_args) + repr(ext.define_macros)
                ext.depends.append(_stamp(os.path.join(self.build_temp, "flags", "cpu.txt"), stamp))
                kept.append(ext)
                continue
            if variant not in variants or (kind == "fused" and cc.compiler_type == "msvc"):
                continue
            flags = common + variants[variant]
            description = " ".join(flags)
            ext.extra_compile_args = flags
            ext.extra_link_args = link_openmp if use_openmp else []
            ext.define_macros += [("FASTMLP_CFLAGS", f'"{description}"'), ("FASTMLP_VARIANT", f'"{variant}"')]
            if kind == "fused":
                ext.define_macros.append(("FASTMLP_FUSED", "1"))
            if cc.compiler_type != "msvc":
                # sqrt (Adam) and, in the fused modules, fma and fmaf, where the target has no
                # instruction for them.
                ext.libraries.append("m")
            if VECTOR_BYTES:
                ext.define_macros.append(("FASTMLP_VECTOR_BYTES", VECTOR_BYTES))
            stamp = " ".join(flags + ext.extra_link_args) + repr(ext.define_macros)
            ext.depends.append(_stamp(os.path.join(self.build_temp, "flags", f"{kind}_{variant}.txt"), stamp))
            shapes = f", the vectors of {VECTOR_BYTES} bytes" if VECTOR_BYTES else ""
            contract = ", fused multiply-adds" if kind == "fused" else ""
            print(f"fastmlp: compiling the {variant} kernels{contract} with {description}{shapes}")
            kept.append(ext)
        self.extensions = kept
        self._remove_other_variants(os.path.dirname(self.get_ext_fullpath("fastmlp._cpu")), variants)
        super().build_extensions()
        self._copy_stubs(os.path.dirname(self.get_ext_fullpath("fastmlp._cpu")))

    def copy_extensions_to_source(self):
        super().copy_extensions_to_source()
        self._remove_other_variants("fastmlp", [_kind_and_variant(e.name)[1] for e in self.extensions])
        self._copy_stubs("fastmlp")

    def _remove_other_variants(self, folder, variants):
        """Deletes the modules and stubs of variants an earlier build left in ``folder`` and
        this one does not build, so that neither the package nor a wheel holds them."""
        for path in glob.glob(os.path.join(folder, "_kernels_*")) + glob.glob(os.path.join(folder, "_fused_*")):
            name = os.path.basename(path).split(".")[0].split("_", 2)[2]
            if name not in variants:
                print(f"fastmlp: removing {path}, left by an earlier build")
                os.remove(path)

    def _copy_stubs(self, folder):
        """Gives each variant module in ``folder`` a copy of the kernels' one type stub."""
        for ext in self.extensions:
            if _kind_and_variant(ext.name)[1]:
                stub = os.path.join(folder, ext.name.rpartition(".")[2] + ".pyi")
                self.copy_file(os.path.join("fastmlp", "_kernels.pyi"), stub)


directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

headers = sorted(glob.glob("fastmlp/*.pxi") + glob.glob("fastmlp/kernels/*.h"))
# One source, one module per variant and contract: each is cythonized into a folder of its
# own, so that their C files, which differ only in the module's name, do not overwrite each other.
extensions = cythonize(
    [Extension("fastmlp._cpu", ["fastmlp/_cpu.pyx"], include_dirs=["fastmlp"], depends=["fastmlp/kernels/cpu.h"])],
    compiler_directives=directives,
    build_dir=os.path.join("build", "cython", "cpu"),
)
for variant in VARIANTS:
    for kind in ("kernels", "fused"):
        extensions += cythonize(
            [
                Extension(
                    f"fastmlp._{kind}_{variant}", ["fastmlp/_kernels.pyx"], include_dirs=["fastmlp"], depends=headers
                )
            ],
            compiler_directives=directives,
            build_dir=os.path.join("build", "cython", variant if kind == "kernels" else f"{variant}-fused"),
        )

setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
