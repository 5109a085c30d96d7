"""The kernels for the running CPU: what is built, what runs, what is chosen and how to force it.

The agreement tests (test_agreement.py, test_layers.py, test_exp.py and the
MNIST bit checks) run with every variant this CPU runs; these tests check
the choice itself: the CPU's features as read by fastmlp._cpu, the choice
at import, FASTMLP_KERNELS and use_kernels(), and their clear refusals.
"""

import importlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, assert_same_bits, contracts, kernel_variants

import fastmlp
from fastmlp import ReferenceTrainer, Trainer, _cpu, _dispatch

X86 = platform.machine().lower() in ("x86_64", "amd64")
BASELINE = {"x86_64": "sse2", "amd64": "sse2", "aarch64": "neon", "arm64": "neon"}.get(platform.machine().lower(), "generic")


# Tests that start a fresh interpreter: under an emulated CPU that interpreter would run on
# the real one, so CI leaves them out there (-m "not fresh_interpreter").
fresh_interpreter = pytest.mark.fresh_interpreter


def run_python(code, **env):
    """Runs ``code`` in a fresh interpreter from tests/ (the installed fastmlp, not the source tree)."""
    environment = {k: v for k, v in os.environ.items() if k != "FASTMLP_KERNELS"}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], env=environment, cwd=REPO / "tests", capture_output=True, text=True, timeout=300
    )


def cpuinfo():
    """The first processor's fields in Linux's /proc/cpuinfo."""
    with open("/proc/cpuinfo") as f:
        first = f.read().split("\n\n")[0]
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}


def test_the_build_has_the_baseline_and_the_cpu_runs_it():
    info = fastmlp.build_info()
    assert BASELINE in info["kernels_built"] and BASELINE in info["kernels_runnable"]
    assert set(info["kernels_runnable"]) <= set(info["kernels_built"])
    assert info["kernels"] in info["kernels_runnable"] and info["chosen_by"]


@pytest.mark.skipif(not X86 or not os.path.exists("/proc/cpuinfo"), reason="reads Linux's x86-64 CPU flags")
def test_the_cpu_features_are_those_linux_reports():
    vendor, family, model, features = _cpu.read()
    fields = cpuinfo()
    assert (vendor, family, model) == (fields["vendor_id"], int(fields["cpu family"]), int(fields["model"]))
    flags = set(fields["flags"].split())
    for name in _cpu._FEATURES:
        if not name.startswith("os_"):
            assert (name in features) == (name in flags), name
    # Linux shows AVX only where it saves the registers.
    assert ("os_ymm" in features) >= ("avx" in flags)
    assert ("os_zmm" in features) >= ("avx512f" in flags)


# The x86-64 micro-architecture levels in Linux's flag names, written out here apart from
# fastmlp._dispatch's own list.
LEVEL_FLAGS = {
    "avx2": "avx avx2 bmi1 bmi2 f16c fma abm movbe pni ssse3 sse4_1 sse4_2 popcnt cx16 lahf_lm".split(),
    "avx512": "avx512f avx512bw avx512cd avx512dq avx512vl".split(),
}




@fresh_interpreter
def test_import_chooses_the_widest_variant_the_cpu_runs():
    done = run_python("import fastmlp; i = fastmlp.build_info(); print(i['kernels'], i['chosen_by'])")
    assert done.returncode == 0, done.stderr
    name, why = done.stdout.strip().split(" ", 1)
    if not X86 or not os.path.exists("/proc/cpuinfo"):
        assert name == BASELINE
        return
    flags = set(cpuinfo()["flags"].split())
    widest = "sse2"
    if set(LEVEL_FLAGS["avx2"]) <= flags and "avx2" in _dispatch.built():
        widest = "avx2"
        if set(LEVEL_FLAGS["avx512"]) <= flags and "avx512" in _dispatch.built():
            widest = "avx512"
    if why.startswith("measured"):  # AVX-512 against AVX2 where neither is known to be faster
        assert widest == "avx512" and name in ("avx512", "avx2")
    else:
        assert name == widest and why.startswith("the widest vectors")


@fresh_interpreter
@pytest.mark.parametrize("name", kernel_variants())
def test_fastmlp_kernels_forces_a_variant(name):
    done = run_python("import fastmlp; i = fastmlp.build_info(); print(i['kernels'], i['chosen_by'])", FASTMLP_KERNELS=name)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [name, "FASTMLP_KERNELS"]


def unrunnable():
    """A variant this build has and this CPU cannot run, if any."""
    return next((name for name in _dispatch.built() if name not in _dispatch.runnable()), None)


@pytest.mark.parametrize(
    "value, message",
    [
        ("avx1024", "no kernel variant is named 'avx1024'"),
        ("generic" if X86 else "sse2", "this build of fastmlp has no"),
    ],
)
@fresh_interpreter
def test_fastmlp_kernels_refuses_clearly(value, message):
    done = run_python("import fastmlp", FASTMLP_KERNELS=value)
    assert done.returncode == 1, "an exception, not a crash"
    assert "ImportError: FASTMLP_KERNELS=" in done.stderr and message in done.stderr


@fresh_interpreter
@pytest.mark.skipif(unrunnable() is None, reason="this CPU runs every variant of the build")
def test_fastmlp_kernels_refuses_a_variant_the_cpu_cannot_run():
    name = unrunnable()
    done = run_python("import fastmlp", FASTMLP_KERNELS=name)
    assert done.returncode == 1 and f"this CPU cannot run the {name} kernels: it lacks" in done.stderr


@pytest.mark.skipif(unrunnable() is None, reason="this CPU runs every variant of the build")
def test_use_kernels_refuses_a_variant_the_cpu_cannot_run_without_loading_it():
    name = unrunnable()
    with pytest.raises(ValueError, match=f"cannot run the {name} kernels: it lacks"):
        fastmlp.use_kernels(name)
    assert f"fastmlp._kernels_{name}" not in sys.modules and f"fastmlp._fused_{name}" not in sys.modules


def test_a_cpu_without_a_level_runs_the_baseline(monkeypatch):
    monkeypatch.setattr(_dispatch, "FEATURES", frozenset())
    assert [name for name in _dispatch.runnable() if name != "native"] == [BASELINE]
    if X86:
        with pytest.raises(ValueError, match="lacks pni, ssse3"):
            fastmlp.use_kernels("avx2")


@pytest.mark.parametrize(
    "vendor, family, expected",
    [("GenuineIntel", 6, "avx512"), ("AuthenticAMD", 26, "avx512"), ("AuthenticAMD", 25, "measured"), ("HygonGenuine", 24, "measured")],
)
def test_avx512_is_measured_where_it_is_not_known_to_be_faster(monkeypatch, vendor, family, expected):
    # The decision alone: measure() is replaced, so that nothing the CPU lacks runs.
    monkeypatch.setattr(_dispatch, "runnable", lambda: ["avx512", "avx2", "sse2"])
    monkeypatch.setattr(_dispatch, "measure", lambda names: {"avx512": 2e-3, "avx2": 1e-3})
    monkeypatch.setattr(_dispatch, "VENDOR", vendor)
    monkeypatch.setattr(_dispatch, "FAMILY", family)
    monkeypatch.delenv("FASTMLP_KERNELS", raising=False)
    name, why = _dispatch.choose()
    if expected == "measured":
        assert name == "avx2" and why == "measured: avx512 2.00 ms, avx2 1.00 ms"
    else:
        assert (name, why) == ("avx512", "the widest vectors this CPU runs")


def test_the_measurement_times_each_variant_and_leaves_the_choice_alone():
    before = fastmlp.build_info()
    times = _dispatch.measure(_dispatch.runnable(), rounds=1)
    assert set(times) == set(_dispatch.runnable()) and all(0 < t < 10 for t in times.values())
    assert fastmlp.build_info() == before


def test_use_kernels_switches_and_names_the_variant_before():
    first = fastmlp.build_info()["kernels"]
    try:
        for name in _dispatch.runnable():
            fastmlp.use_kernels(name)
            info = fastmlp.build_info()
            assert info["kernels"] == name and info["chosen_by"] == "use_kernels()"
            assert _dispatch.kernels.VARIANT == name == Path(_dispatch.kernels.__file__).name.split(".")[0][9:]
        assert fastmlp.use_kernels(first) == _dispatch.runnable()[-1]
    finally:
        fastmlp.use_kernels(first)
    with pytest.raises(ValueError, match="no kernel variant is named 'avx1024'.*the names are avx512, avx2"):
        fastmlp.use_kernels("AVX1024")


@pytest.mark.skipif(len(_dispatch.runnable()) < 2, reason="this CPU runs one variant")
def test_a_fit_keeps_the_variant_it_started_with(monkeypatch):
    """Switching variants between epochs: the running fit keeps its own (whose panels it
    holds), the next fit takes the new one, all with the same bits."""
    variants = _dispatch.runnable()
    ran = []
    for name in variants:
        module = importlib.import_module(f"fastmlp._kernels_{name}")
        epoch = module.train_epoch
        monkeypatch.setattr(module, "train_epoch", lambda *a, _e=epoch, _n=name: (ran.append(_n), _e(*a))[1])
    rng = np.random.default_rng(3)
    X, y = rng.random((90, 70)), rng.integers(0, 5, 90)
    options = dict(activation="relu", learning_rate=0.3, momentum=0.5, batch_size=16, seed=4)
    reference = ReferenceTrainer((70, 80, 5), **options)
    reference.fit(X, y, 3)
    reference.fit(X, y, 2)
    trainer = Trainer((70, 80, 5), threads=2, **options)
    before = _dispatch.kernels, _dispatch.chosen_by
    turn = iter(range(100))
    try:
        fastmlp.use_kernels(variants[0])
        switch = lambda record: fastmlp.use_kernels(variants[1 + next(turn) % (len(variants) - 1)])  # noqa: E731
        trainer.fit(X, y, 3, callbacks=switch)
        second = _dispatch.kernels.VARIANT
        trainer.fit(X, y, 2, callbacks=switch)
    finally:
        _dispatch._activate(*before)
    assert ran == [variants[0]] * 3 + [second] * 2 and second != variants[0]
    for a, b in zip(trainer.weights + trainer.biases, reference.weights + reference.biases):
        assert_same_bits(a, b)


@fresh_interpreter
def test_the_source_tree_says_what_to_do(tmp_path):
    """Importing fastmlp from a folder that holds its sources but no compiled modules."""
    shutil.copytree(REPO / "fastmlp", tmp_path / "fastmlp", ignore=shutil.ignore_patterns("*.so", "*.pyd"))
    done = subprocess.run(
        [sys.executable, "-c", "import fastmlp"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: fastmlp's compiled kernels are not built in")
    assert "rather than `python -m pytest`" in last and "build_ext --inplace" in last and "pip install ." in last


def test_the_variants_stubs_are_one():
    """Each variant module, in each contract, is typed by a copy of fastmlp/_kernels.pyi made by the build."""
    folder = Path(_dispatch.kernels.__file__).parent
    for name in _dispatch.built():
        for kind in ["kernels", "fused"][: len(contracts())]:
            stub = folder / f"_{kind}_{name}.pyi"
            assert stub.read_text() == (REPO / "fastmlp" / "_kernels.pyi").read_text(), stub
