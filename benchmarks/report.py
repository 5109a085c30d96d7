"""Measure one epoch of the 784-16-16-10 network against its peers, in one run, and print a markdown report.

    python benchmarks/report.py [--repeats 3] [--quick]

Peers: fastmlp's Trainer; idiomatic NumPy (benchmarks/peers.py); PyTorch
on the CPU when installed (pip install '.[bench]'). Every figure is the
median of several epochs of the same run, on MNIST's 60000 training images
(random data of that shape when MNIST is absent). The machine's ceiling is
measured by benchmarks/peak.c, the kernels' inner loop on data in L1.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from helpers import has_mnist, mnist_dir  # noqa: E402
from peers import NumpyPeer, TorchPeer, TorchRecipe, torch_available  # noqa: E402

import fastmlp  # noqa: E402
from fastmlp import StepDecay, Trainer  # noqa: E402
from fastmlp.datasets import load_mnist  # noqa: E402

SIZES = (784, 16, 16, 10)
BATCH_SIZES = (1, 10, 100, 1000)

#: The time-to-97% recipe: `fastmlp train` with these settings reproduces it (see README.md).
RECIPE = dict(
    layer_sizes=(784, 128, 10), activation="relu", cost="log_likelihood", init="scaled",
    learning_rate=0.1, momentum=0.9, schedule=StepDecay(1, 0.3), batch_size=64, dtype="float32", threads=2,
)
TARGET_ACCURACY = 0.97


def macs_per_example(sizes):
    """Multiply-adds of one example: forward and weight gradients, plus the delta propagation."""
    layers = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 2 * layers + sum(a * b for a, b in zip(sizes[1:-1], sizes[2:]))


def machine():
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "unknown"
    try:
        config = np.show_config(mode="dicts")
        info = config["Build Dependencies"]["blas"]
        blas = f"{info.get('name')} {info.get('version')}"
    except Exception:
        pass
    return model, blas


def peak():
    """(float64, float32) multiply-add rates of one core without FMA, in G/s, or None."""
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "peak")
        built = subprocess.run(
            ["cc", "-O2", "-ffp-contract=off", "-march=native", str(HERE / "peak.c"), "-o", binary],
            capture_output=True, text=True,
        )
        if built.returncode:
            return None
        done = subprocess.run([binary], capture_output=True, text=True)
    return tuple(float(x) for x in done.stdout.split())


def load():
    folder = mnist_dir()
    if has_mnist(folder):
        (X, y), _ = load_mnist(folder)
        return X, y, "MNIST"
    rng = np.random.default_rng(0)
    return rng.random((60000, 784)), rng.integers(0, 10, 60000).astype(np.uint8), "random data of MNIST's shape"


def time_to_accuracy(seeds, max_epochs=6):
    """Per seed, for fastmlp and PyTorch (when installed) from the same initial parameters and
    shuffles: (epochs, training seconds, accuracy) when the MNIST test accuracy first reaches the
    target; the evaluations between epochs are not timed. Each library trains on its own, one after the
    other: a library's idle threads (PyTorch's keep spinning a while) would slow the other."""
    (X, y), (X_test, y_test) = load_mnist(mnist_dir(), dtype=RECIPE["dtype"])
    rows = []
    for seed in seeds:
        settings = dict(RECIPE)
        trainer = Trainer(settings.pop("layer_sizes"), seed=seed, **settings)
        start_weights = [w.copy() for w in trainer.weights]
        start_biases = [b.copy() for b in trainer.biases]
        # PyTorch visits the examples in fastmlp's order: a generator in the state of the trainer's.
        shuffles = np.random.default_rng()
        shuffles.bit_generator.state = trainer._rng.bit_generator.state

        def fastmlp_epoch():
            return trainer.fit(X, y, 1).epochs[0].seconds, trainer.score(X_test, y_test)

        ours = _until_target(fastmlp_epoch, max_epochs)
        theirs = "absent"
        if torch_available():
            peer = TorchRecipe(start_weights, start_biases, RECIPE["activation"], RECIPE["learning_rate"],
                               RECIPE["momentum"], RECIPE["schedule"].every, RECIPE["schedule"].factor,
                               RECIPE["batch_size"], RECIPE["dtype"], RECIPE["threads"])

            def torch_epoch():
                perm = shuffles.permutation(len(X))
                start = time.perf_counter()
                peer.epoch(X, y, perm)
                return time.perf_counter() - start, peer.accuracy(X_test, y_test)

            theirs = _until_target(torch_epoch, max_epochs)
        rows.append((seed, ours, theirs))
    return rows


def _until_target(epoch, max_epochs):
    """(epochs, seconds, accuracy) when ``epoch()`` (returning seconds, accuracy) first reaches the target."""
    spent = 0.0
    for count in range(1, max_epochs + 1):
        seconds, accuracy = epoch()
        spent += seconds
        if accuracy >= TARGET_ACCURACY:
            return count, spent, accuracy
    return None


def time_fastmlp(X, y, dtype, threads, batch_size, repeats):
    trainer = Trainer(SIZES, batch_size=batch_size, seed=0, dtype=dtype, threads=threads)
    history = trainer.fit(X, y, repeats)
    return statistics.median(history.seconds)  # each: the shuffle and the epoch's kernel call


def time_peer(cls, X, Y, dtype, threads, batch_size, repeats):
    start = Trainer(SIZES, seed=0, dtype=dtype)
    peer = cls(start.weights, start.biases, "sigmoid", 3.0, batch_size, dtype, threads)
    rng = np.random.default_rng(0)
    times = []
    limit = _blas_threads(threads)
    with limit:
        for _ in range(repeats):
            perm = rng.permutation(len(X))
            t0 = time.perf_counter()
            peer.epoch(X, Y, perm)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def concurrency(X, y, repeats):
    """(one trainer alone, two trainers in two Python threads): wall seconds of `repeats` epochs
    each, float64, batch 100, one kernel thread each; the best of 3 tries."""
    import threading

    def run(count):
        trainers = [Trainer(SIZES, batch_size=100, seed=i) for i in range(count)]
        workers = [threading.Thread(target=t.fit, args=(X, y, repeats)) for t in trainers]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return time.perf_counter() - start

    return min(run(1) for _ in range(3)), min(run(2) for _ in range(3))


def _blas_threads(threads):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def peak_memory(dtype):
    """(inputs MB, extra MB): what one epoch's training adds at its peak to the resident memory of a
    process holding the data. Linux only: it resets the peak (/proc/self/clear_refs) after loading."""
    code = (
        "import sys; sys.path.insert(0, %r); import report; import numpy as np\n"
        "X, y, _ = report.load(); X = np.ascontiguousarray(X, dtype=%r)\n"
        "def status(key):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(key): return int(line.split()[1]) / 1024\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "before = status('VmRSS:')\n"
        "report.Trainer(report.SIZES, dtype=%r, seed=0).fit(X, y, 1)\n"
        "print(X.nbytes / 2**20, status('VmHWM:') - before)\n"
    ) % (str(HERE), dtype, dtype)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return tuple(float(v) for v in done.stdout.split()) if done.returncode == 0 else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="epochs per measurement (median); default 3")
    parser.add_argument("--quick", action="store_true", help="skip batch size 1 for the slow peers")
    parser.add_argument("--time-to-accuracy", action="store_true",
                        help=f"only the time to {TARGET_ACCURACY:.0%} test accuracy, fastmlp and PyTorch")
    args = parser.parse_args(argv)
    if args.time_to_accuracy:
        print_time_to_accuracy()
        return

    X, y, data = load()
    model, blas = machine()
    ceiling = peak()
    has_torch = torch_available()
    macs = macs_per_example(SIZES) * len(X)
    print("# fastmlp benchmark report\n")
    print(f"- machine: {model}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"- NumPy {np.__version__} with {blas}" + (f"; PyTorch {__import__('torch').__version__}" if has_torch else "; PyTorch not installed"))
    print(f"- fastmlp {fastmlp.__version__}, kernels built with `{fastmlp.build_info()['compile_flags']}`")
    print(f"- data: {data}, {len(X)} examples; network 784-16-16-10, sigmoid, quadratic cost, η = 3.0")
    print(f"- work per epoch: {macs / 1e9:.2f} G multiply-adds")
    if ceiling:
        limits = {"float64": macs / ceiling[0] / 1e9, "float32": macs / ceiling[1] / 1e9}
        print(f"- one core without FMA (benchmarks/peak.c): {ceiling[0]:.1f} G/s float64, {ceiling[1]:.1f} G/s float32,"
              f" so an epoch takes at least {limits['float64']:.3f} s / {limits['float32']:.3f} s")
    else:
        limits = None
        print("- the ceiling microbenchmark could not be built (no cc?)")
    print(f"- each figure: median of {args.repeats} epochs (1 for the slow peers at batch size 1)\n")

    results = {}
    print("| dtype | threads | batch | fastmlp | numpy | torch | × numpy | × torch | G MAC/s | × limit |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for dtype in ("float64", "float32"):
        Xd = np.ascontiguousarray(X, dtype=dtype)
        Y = np.eye(10, dtype=dtype)[y]
        for threads in (1, 2):
            for batch in BATCH_SIZES:
                slow = 1 if batch == 1 else args.repeats
                ours = time_fastmlp(Xd, y, dtype, threads, batch, args.repeats)
                skip = args.quick and batch == 1
                numpy_s = None if skip else time_peer(NumpyPeer, Xd, Y, dtype, threads, batch, slow)
                torch_s = time_peer(TorchPeer, Xd, Y, dtype, threads, batch, slow) if has_torch and not skip else None
                results[dtype, threads, batch] = (ours, numpy_s, torch_s)
                cell = lambda v: "–" if v is None else f"{v:.3f} s"  # noqa: E731
                ratio = lambda v: "–" if v is None else f"{v / ours:.1f}×"  # noqa: E731
                rate = macs / ours / 1e9
                vs_limit = f"{ours / limits[dtype]:.2f}" if limits else "–"
                print(f"| {dtype} | {threads} | {batch} | {cell(ours)} | {cell(numpy_s)} | {cell(torch_s)} | "
                      f"{ratio(numpy_s)} | {ratio(torch_s)} | {rate:.1f} | {vs_limit} |", flush=True)

    print("\n## Targets\n")
    checks = []
    if limits:
        for batch in BATCH_SIZES:
            bound = 3.0 if batch == 1 else 2.0
            f = results["float64", 1, batch][0] / limits["float64"]
            checks.append((f"float64, 1 thread, batch {batch}: within {bound:g}× of the no-FMA limit", f <= bound, f"{f:.2f}×"))
    for batch, want in zip(BATCH_SIZES, (25, 3, 2, 2)):
        for dtype in ("float64", "float32"):
            ours, numpy_s, _ = results[dtype, 1, batch]
            if numpy_s:
                checks.append((f"{dtype}, batch {batch}: ≥ {want}× NumPy", numpy_s / ours >= want, f"{numpy_s / ours:.1f}×"))
    if has_torch:
        for batch, want in ((10, 15), (100, 3), (1000, 1.5)):
            ours, _, torch_s = results["float64", 1, batch]
            checks.append((f"float64, batch {batch}: ≥ {want:g}× PyTorch", torch_s / ours >= want, f"{torch_s / ours:.1f}×"))
    for batch in (100, 1000):
        for dtype in ("float64", "float32"):
            gain = results[dtype, 1, batch][0] / results[dtype, 2, batch][0]
            checks.append((f"{dtype}, batch {batch}: 2 threads ≥ 1.7× 1 thread", gain >= 1.7, f"{gain:.2f}×"))
    for batch in BATCH_SIZES:
        gain = results["float64", 1, batch][0] / results["float32", 1, batch][0]
        checks.append((f"batch {batch}: float32 ≥ 1.7× float64", gain >= 1.7, f"{gain:.2f}×"))
    alone, together = concurrency(np.ascontiguousarray(X, dtype="float64"), y, args.repeats)
    checks.append((f"two trainers in two Python threads take ≤ 1.2× one trainer's wall time "
                   f"({args.repeats} epochs each, batch 100)", together <= 1.2 * alone,
                   f"{together:.2f} s against {alone:.2f} s: {together / alone:.2f}×"))
    for dtype in ("float64", "float32"):
        memory = peak_memory(dtype)
        if memory:
            inputs, extra = memory
            checks.append((f"{dtype}: training adds ≤ 64 MB to the inputs ({inputs:.0f} MB)",
                           extra <= 64, f"+{extra:.0f} MB at the peak"))
    print("| target | met | measured |\n|---|---|---|")
    for name, ok, measured in checks:
        print(f"| {name} | {'yes' if ok else 'no'} | {measured} |")
    if has_mnist(mnist_dir()):
        print_time_to_accuracy()


def print_time_to_accuracy(seeds=(0, 1, 2)):
    recipe = ", ".join(f"{k}={v!r}" for k, v in RECIPE.items())
    print(f"\n## Time to {TARGET_ACCURACY:.0%} test accuracy on MNIST\n")
    print(f"Recipe: `Trainer({recipe})`, the same in PyTorch from the same initial parameters. "
          "Training seconds until the test accuracy, measured after each epoch, first reaches the target.\n")
    print("| seed | fastmlp | PyTorch |\n|---|---|---|")
    cell = lambda r: (r if isinstance(r, str) else "not within 6 epochs" if r is None  # noqa: E731
                      else f"{r[1]:.2f} s ({r[0]} epochs, {r[2]:.2%})")
    for seed, ours, theirs in time_to_accuracy(seeds):
        print(f"| {seed} | {cell(ours)} | {cell(theirs)} |", flush=True)


if __name__ == "__main__":
    main()
