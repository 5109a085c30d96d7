"""The kernels' type stubs match the compiled modules, and the public API type-checks.

``mypy.stubtest`` compares ``fastmlp/_kernels.pyi`` (which the build copies
beside each kernel variant) with every variant this CPU runs, and
``fastmlp/_cpu.pyi`` with the CPU module, as built: every exported name, each function's parameter names, kinds and
defaults, each constant's type (and value, where the stub gives one). Then
mypy checks a small program written against the public API, in strict
mode, so an unannotated public function or a wrong annotation shows up as
an error. Both run in a fresh interpreter from tests/, as
test_simd_dispatch.py does, so they see the installed fastmlp rather than
the source tree, whose kernels are an uncompiled .pyx.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import REPO

pytest.importorskip("mypy", reason="mypy is not installed (the test extra brings it: pip install '.[test]')")

LOCATE = """
import os, site, sysconfig
import fastmlp._cpu
from fastmlp import _dispatch
extension = fastmlp._cpu.__file__
root = os.path.dirname(os.path.dirname(extension))
dirs = [*site.getsitepackages(), site.getusersitepackages(), *map(sysconfig.get_path, ("purelib", "platlib"))]
print(extension)
print(any(os.path.isdir(d) and os.path.samefile(d, root) for d in dirs))
print(" ".join(_dispatch.runnable()))
"""

# Used the way a program would use fastmlp; never run, only type-checked.
# Each "type: ignore" marks a call the annotations must reject: with
# warn_unused_ignores (part of --strict), one they accept is an error.
PROGRAM = '''
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from typing_extensions import assert_type

import fastmlp
from fastmlp import EpochRecord, History, ReferenceTrainer, StepDecay, Trainer
from fastmlp import _kernels_VARIANT as _kernels
from fastmlp.datasets import cache_dir, load_fashion_mnist, load_mnist, read_idx

rng = np.random.default_rng(0)
X = rng.uniform(-1, 1, (40, 4))
y = rng.integers(0, 3, 40)


def keep_going(record: EpochRecord) -> bool:
    return record.validation_accuracy is None or record.validation_accuracy < 0.99


trainer = Trainer(
    (4, 5, 3), activation="relu", cost="log_likelihood", learning_rate=0.5, batch_size=8, l2=0.1,
    momentum=0.9, init="scaled", schedule=StepDecay(every=2, factor=0.5), seed=1, dtype=np.float32, threads=2,
)
history = trainer.fit(X, y, 3, validation_data=(X, y), callbacks=[keep_going, print], early_stopping=2)
assert_type(history, History)
assert_type(trainer.fit(X, np.eye(3)[y], callbacks=keep_going), History)
assert_type(history.best_epoch, int | None)
assert_type(history.epochs, list[EpochRecord])
assert_type(history.train_cost, list[float])
assert_type(history.validation_accuracy, list[float | None])
assert_type(history.as_dicts(), list[dict[str, Any]])
assert_type(len(history), int)
assert_type(trainer.history, History)
assert_type(trainer.forward(X), NDArray[np.floating[Any]])
assert_type(trainer.predict(X), NDArray[np.intp])
assert_type(trainer.score(X, y), float)
grad_w, grad_b = trainer.gradients(X, y)
assert_type(grad_w, list[NDArray[np.floating[Any]]])
assert_type(trainer.weights, list[NDArray[np.floating[Any]]])
assert_type(trainer.biases, list[NDArray[np.floating[Any]]])
assert_type(trainer.width, int)
assert_type(trainer.layer_sizes, tuple[int, ...])
assert_type(trainer.output_activation, str)
trainer.dataset = "mnist"
trainer.save(Path("model.npz"))
assert_type(Trainer.load("model.npz"), Trainer)
assert_type(ReferenceTrainer.load(Path("model.npz")), ReferenceTrainer)
assert_type(StepDecay(every=10)(3.0, 11), float)
assert_type(fastmlp.build_info()["openmp"], bool)
assert_type(fastmlp.build_info()["compile_flags"], str)
assert_type(fastmlp.build_info()["vector_bytes"], int)
assert_type(fastmlp.build_info()["kernels"], str)
assert_type(fastmlp.build_info()["kernels_runnable"], list[str])
assert_type(fastmlp.use_kernels("sse2"), str)
fastmlp.use_kernels(2)  # type: ignore[arg-type]
assert_type(ReferenceTrainer((4, 3)).weights, list[NDArray[np.floating[Any]]])

trainer.fit(X, y, epoch=3)  # type: ignore[call-arg]
Trainer((4, 3), learning_rate="fast")  # type: ignore[arg-type]


def data() -> None:
    (X_train, y_train), (X_test, y_test) = load_mnist(download=False, dtype="float32")
    assert_type(X_train, NDArray[np.floating[Any]])
    assert_type(y_test, NDArray[np.uint8])
    load_fashion_mnist(cache_dir() / "fashion-mnist")
    assert_type(read_idx("t10k-labels-idx1-ubyte.gz"), NDArray[Any])


x32 = np.zeros(8, dtype=np.float32)
x64 = np.zeros(8)
_kernels.exp(x32, x32)
_kernels.log(x64, out=x64)
_kernels.activation(x64, x64, _kernels.TANH)
_kernels.exp(x32, x64)  # type: ignore[type-var]
block: int = _kernels.SAMPLE_BLOCK
openmp: bool = _kernels.OPENMP
flags: str = _kernels.COMPILE_FLAGS
'''


def run(args, env):
    # From tests/, so that the installed fastmlp is imported, not the source tree.
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=REPO / "tests", capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def mypy_setup(tmp_path_factory):
    """The environment and mypy configuration under which mypy sees the fastmlp that Python imports."""
    where = run(["-c", LOCATE], dict(os.environ))
    assert where.returncode == 0, where.stderr
    extension, in_site_packages, variants = where.stdout.splitlines()
    modules = ["_cpu"] + [f"_{kind}_{name}" for name in variants.split() for kind in ("kernels", "fused")]
    # stubtest passes a private module that has no stub at all, so check each stub is there.
    for module in modules:
        stub = Path(extension).with_name(f"{module}.pyi")
        assert stub.is_file(), f"no {stub.name} beside the installed {extension}: did the build copy the stubs?"
    env = dict(os.environ)
    if in_site_packages != "True":
        # An editable install: mypy cannot follow its import hook, so it is shown the folder.
        env["MYPYPATH"] = os.pathsep.join(filter(None, [str(Path(extension).parent.parent), env.get("MYPYPATH")]))
    folder = tmp_path_factory.mktemp("mypy")
    config = folder / "mypy.ini"
    config.write_text(f"[mypy]\ncache_dir = {folder / 'cache'}\n")
    return env, config, folder, [f"fastmlp.{module}" for module in modules]


def test_stubs_match_the_compiled_kernels(mypy_setup):
    env, config, _, modules = mypy_setup
    done = run(["-m", "mypy.stubtest", *modules, "--mypy-config-file", str(config)], env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_public_api_type_checks(mypy_setup):
    env, config, folder, modules = mypy_setup
    program = folder / "uses_fastmlp.py"
    # The program uses the kernels of the first variant the CPU runs, through its stub.
    program.write_text(textwrap.dedent(PROGRAM).replace("_kernels_VARIANT", modules[1].rpartition(".")[2]))
    # Strict for the program only: fastmlp's own unannotated internals are not its concern.
    strict = folder / "strict.ini"
    strict.write_text(config.read_text() + "strict = True\n\n[mypy-fastmlp.*]\nfollow_imports = silent\n")
    done = run(["-m", "mypy", "--config-file", str(strict), str(program)], env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_package_type_checks_against_its_own_annotations(mypy_setup):
    """`mypy` from the repository root, as pyproject.toml configures it."""
    _, _, folder, _ = mypy_setup
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(folder / "package-cache")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
