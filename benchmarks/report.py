"""Measure fastmlp's epochs against its peers, in one run, and print a markdown report.

    python benchmarks/report.py [--repeats 3] [--quick] [--widths | --no-widths | --time-to-accuracy | --variants | --fma
                                                         | --regression | --adam]

Peers: fastmlp's Trainer; idiomatic NumPy (benchmarks/peers.py); PyTorch
on the CPU when installed (pip install '.[bench]'). Every figure is the
median of several epochs of the same run, on MNIST's training images
(random data of that shape when MNIST is absent). The report's parts: the
784-16-16-10 network of the classic picture over batch sizes 1 to 1000;
the width sweep, networks 784-w-w-10 from 16 to 4096 units wide; the fused
contract (fma=True) against the default one and PyTorch on wide networks;
the time to a test accuracy of the README's two recipes; FastMLPRegressor
against scikit-learn's MLPRegressor (``--regression``); Adam's epoch against
SGD's (``--adam``); and, in a build
with FASTMLP_NATIVE=1, the kernels chosen for this CPU against a
``-march=native`` build of them. The machine's limit is measured by
benchmarks/peak.c, the kernels' register tile on data in L1, without and
with fused multiply-add.
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
from fastmlp import StepDecay, Trainer, _dispatch  # noqa: E402
from fastmlp.datasets import load_mnist  # noqa: E402

SIZES = (784, 16, 16, 10)
BATCH_SIZES = (1, 10, 100, 1000)

#: The time-to-97% recipe: `fastmlp train` with these settings reproduces it (see README.md).
RECIPE = dict(
    layer_sizes=(784, 128, 10), activation="relu", cost="log_likelihood", init="scaled",
    learning_rate=0.1, momentum=0.9, schedule=StepDecay(1, 0.3), batch_size=64, dtype="float32", threads=2,
)
TARGET_ACCURACY = 0.97
#: The time-to-98% recipe, a wide network (Simard's 800 hidden units): `fastmlp train` with these settings.
WIDE_RECIPE = dict(
    layer_sizes=(784, 800, 10), activation="relu", cost="log_likelihood", init="scaled",
    learning_rate=0.1, momentum=0.9, schedule=StepDecay(2, 0.3), batch_size=64, dtype="float32", threads=2,
)
WIDE_TARGET = 0.98

#: The width sweep: networks 784-w-w-10, ReLU hidden layers, a softmax output with the log-likelihood cost.
WIDTHS = (16, 64, 256, 1024, 4096)
SWEEP_BATCHES = (32, 256)
SWEEP_SETTINGS = dict(activation="relu", cost="log_likelihood", init="scaled", learning_rate=0.05)
#: Examples per epoch of the sweep: all of MNIST up to 64 units, fewer beyond, so that an epoch takes seconds.
SWEEP_EXAMPLES = {16: 60000, 64: 60000, 256: 15000, 1024: 3000, 4096: 600}


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


def peak(fused=False):
    """(float64, float32) multiply-add rates of one core in G/s, without FMA (or with, ``fused``), or None."""
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "peak")
        contract = "-ffp-contract=fast" if fused else "-ffp-contract=off"
        built = subprocess.run(
            ["cc", "-O3", contract, "-march=native", str(HERE / "peak.c"), "-o", binary],
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


def time_to_accuracy(recipe, target, seeds, max_epochs=6):
    """Per seed, for fastmlp and PyTorch (when installed) trained by ``recipe`` from the same initial
    parameters and shuffles: (epochs, training seconds, accuracy) when the MNIST test accuracy first
    reaches ``target``; the evaluations between epochs are not timed. Each library trains on its own,
    one after the other: a library's idle threads (PyTorch's keep spinning a while) would slow the other."""
    (X, y), (X_test, y_test) = load_mnist(mnist_dir(), dtype=recipe["dtype"])
    rows = []
    for seed in seeds:
        settings = dict(recipe)
        trainer = Trainer(settings.pop("layer_sizes"), seed=seed, **settings)
        start_weights = [w.copy() for w in trainer.weights]
        start_biases = [b.copy() for b in trainer.biases]
        # PyTorch visits the examples in fastmlp's order: a generator in the state of the trainer's.
        shuffles = np.random.default_rng()
        shuffles.bit_generator.state = trainer._rng.bit_generator.state

        def fastmlp_epoch():
            return trainer.fit(X, y, 1).epochs[0].seconds, trainer.score(X_test, y_test)

        ours = _until_target(fastmlp_epoch, target, max_epochs)
        theirs = "absent"
        if torch_available():
            peer = TorchRecipe(start_weights, start_biases, recipe["activation"], recipe["learning_rate"],
                               recipe["momentum"], recipe["schedule"].every, recipe["schedule"].factor,
                               recipe["batch_size"], recipe["dtype"], recipe["threads"])

            def torch_epoch():
                perm = shuffles.permutation(len(X))
                start = time.perf_counter()
                peer.epoch(X, y, perm)
                return time.perf_counter() - start, peer.accuracy(X_test, y_test)

            theirs = _until_target(torch_epoch, target, max_epochs)
        rows.append((seed, ours, theirs))
    return rows


def _until_target(epoch, target, max_epochs):
    """(epochs, seconds, accuracy) when ``epoch()`` (returning seconds, accuracy) first reaches ``target``."""
    spent = 0.0
    for count in range(1, max_epochs + 1):
        seconds, accuracy = epoch()
        spent += seconds
        if accuracy >= target:
            return count, spent, accuracy
    return None


#: The classic network's settings: sigmoid layers, the quadratic cost, η = 3.
CLASSIC_SETTINGS = dict(activation="sigmoid", cost="quadratic", learning_rate=3.0)


def time_fastmlp(X, y, dtype, threads, batch_size, repeats, sizes=SIZES, settings=CLASSIC_SETTINGS):
    trainer = Trainer(sizes, batch_size=batch_size, seed=0, dtype=dtype, threads=threads, **settings)
    history = trainer.fit(X, y, repeats)
    return statistics.median(history.seconds)  # each: the shuffle and the epoch's kernel call


def time_peer(cls, X, Y, dtype, threads, batch_size, repeats, sizes=SIZES, settings=CLASSIC_SETTINGS):
    start = Trainer(sizes, seed=0, dtype=dtype, **settings)
    peer = cls(start.weights, start.biases, settings["activation"], settings["learning_rate"], batch_size, dtype,
               threads, settings["cost"])
    rng = np.random.default_rng(0)
    return statistics.median(_peer_epoch(peer, X, Y, threads, rng) for _ in range(repeats))


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


def peak_memory(dtype, sizes=SIZES, batch_size=10, settings=CLASSIC_SETTINGS):
    """(inputs MB, extra MB): what constructing a trainer and one epoch's training add at their peak to the
    resident memory of a process holding the data. Linux only: it resets the peak (/proc/self/clear_refs)
    after loading."""
    code = (
        "import sys; sys.path.insert(0, %r); import report; import numpy as np\n"
        "X, y, _ = report.load(); X = np.ascontiguousarray(X, dtype=%r)\n"
        "def status(key):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(key): return int(line.split()[1]) / 1024\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "before = status('VmRSS:')\n"
        "report.Trainer(%r, dtype=%r, seed=0, batch_size=%d, **%r).fit(X, y, 1)\n"
        "print(X.nbytes / 2**20, status('VmHWM:') - before)\n"
    ) % (str(HERE), dtype, tuple(sizes), dtype, batch_size, settings)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return tuple(float(v) for v in done.stdout.split()) if done.returncode == 0 else None


def wide_memory_bound(dtype, sizes, batch_size, n):
    """What a trainer of ``sizes`` and one epoch of n examples may add, in MB: its parameters four times
    (their own buffers, the snapshot an epoch keeps to go back to if interrupted, the float64 draw they
    are rounded from, the panels the weights train in), the work buffers of a layer at a time (one
    thread's packing, the scratch, the activations and deltas of a mini-batch), the targets made
    one-hot, the permutation, and 16 MB for the interpreter's own."""
    itemsize = np.dtype(dtype).itemsize
    t = Trainer(sizes, dtype=dtype, batch_size=batch_size)
    _, panels, pack, scratch = _dispatch.kernels.plan(t._sizes, batch_size, t._b[:1])
    parameters = (len(t._wt) + len(t._b)) * 8  # the float64 draw is the largest of the four
    buffers = (pack + scratch + 2 * batch_size * t.width + panels) * itemsize
    targets = n * sizes[-1] * itemsize + n * 8
    return (3 * parameters + buffers + targets) / 2**20 + 16


#: What an Adam epoch may cost, at most, in SGD epochs (batch 64, 784-256-10).
ADAM_TARGET = 1.3


def print_adam_cost(X, y, repeats):
    """An epoch of SGD, of momentum and of Adam on the 784-256-10 ReLU network at batch 64,
    one thread, each dtype: the median of ``repeats`` epochs of each, taken in turns."""
    print("\n## Adam's step against SGD's (784-256-10, ReLU, batch 64, one thread)\n")
    print("| dtype | SGD epoch | momentum | Adam | Adam / SGD |\n|---|---|---|---|---|")
    checks = []
    optimizers = {"sgd": dict(learning_rate=0.1), "momentum": dict(learning_rate=0.1, momentum=0.9),
                  "adam": dict(optimizer="adam", learning_rate=0.001)}
    for dtype in ("float32", "float64"):
        Xd = np.ascontiguousarray(X, dtype=dtype)
        trainers = {name: Trainer((784, 256, 10), activation="relu", cost="log_likelihood", init="scaled",
                                  batch_size=64, seed=0, dtype=dtype, **kwargs)
                    for name, kwargs in optimizers.items()}
        seconds = {name: [] for name in trainers}
        for _ in range(repeats):
            for name, trainer in trainers.items():
                start = time.perf_counter()
                trainer.fit(Xd, y, 1)
                seconds[name].append(time.perf_counter() - start)
        median = {name: statistics.median(times) for name, times in seconds.items()}
        ratio = median["adam"] / median["sgd"]
        print(f"| {dtype} | {median['sgd']:.3f} s | {median['momentum']:.3f} s | {median['adam']:.3f} s | {ratio:.2f} |")
        checks.append((f"{dtype}: an Adam epoch ≤ {ADAM_TARGET}× an SGD one", ratio <= ADAM_TARGET, f"{ratio:.2f}×"))
    return checks


def regression_problems():
    """The regression problems of scikit-learn's own examples that need no download: the diabetes
    data, Friedman's first problem and a linear one, each (name, X, y)."""
    from sklearn.datasets import load_diabetes, make_friedman1, make_regression

    return [
        ("diabetes (442 × 10)", *load_diabetes(return_X_y=True)),
        ("Friedman #1 (2000 × 10, noise 1)", *make_friedman1(n_samples=2000, noise=1.0, random_state=0)),
        ("linear (2000 × 20, noise 10)",
         *make_regression(n_samples=2000, n_features=20, n_informative=10, noise=10.0, random_state=0)),
    ]


def print_regression(splits):
    """FastMLPRegressor and scikit-learn's MLPRegressor, each with its defaults behind a
    StandardScaler: mean test R² and median fit time over ``splits`` random 75/25 splits."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fastmlp.sklearn import FastMLPRegressor

    print("\n## Regression: FastMLPRegressor against MLPRegressor, both with their defaults\n")
    print(f"Features scaled by a StandardScaler; test R² (mean) and fit time (median) over {splits} splits.\n")
    print("| problem | MLPRegressor R² | FastMLPRegressor R² | MLPRegressor fit | FastMLPRegressor fit |")
    print("|---|---|---|---|---|")
    checks = []
    for name, X, y in regression_problems():
        results = []
        for make in (MLPRegressor, FastMLPRegressor):
            scores, seconds = [], []
            for split in range(splits):
                X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=split)
                model = make_pipeline(StandardScaler(), make(random_state=split))
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)  # MLPRegressor's, at max_iter
                    model.fit(X_train, y_train)
                seconds.append(time.perf_counter() - start)
                scores.append(model.score(X_test, y_test))
            results.append((float(np.mean(scores)), statistics.median(seconds)))
        (r2_sk, t_sk), (r2_us, t_us) = results
        print(f"| {name} | {r2_sk:.4f} | {r2_us:.4f} | {t_sk:.2f} s | {t_us:.2f} s |")
        checks.append((f"{name}: R² at least MLPRegressor's, in less time", r2_us >= r2_sk and t_us < t_sk,
                       f"R² {r2_us:.4f} vs {r2_sk:.4f}; {t_us / t_sk:.2f} of its time"))
    return checks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="epochs per measurement (median); default 3")
    parser.add_argument("--quick", action="store_true", help="skip batch size 1 for the slow peers")
    part = parser.add_mutually_exclusive_group()
    part.add_argument("--time-to-accuracy", action="store_true",
                      help="only the recipes' times to their test accuracy, fastmlp and PyTorch")
    part.add_argument("--widths", action="store_true", help="only the width sweep (784-w-w-10)")
    part.add_argument("--no-widths", action="store_true", help="everything but the width sweep")
    part.add_argument("--variants", action="store_true",
                      help="only the dispatched kernels against -march=native ones (a FASTMLP_NATIVE=1 build)")
    part.add_argument("--fma", action="store_true",
                      help="only the fused contract (fma=True) against the default one and PyTorch")
    part.add_argument("--regression", action="store_true",
                      help="only FastMLPRegressor against scikit-learn's MLPRegressor")
    part.add_argument("--adam", action="store_true", help="only Adam's epoch against SGD's")
    args = parser.parse_args(argv)
    if args.adam:
        X, y, data = load()
        print(f"- data: {data}; {machine()[0]}")
        print_targets(print_adam_cost(X, y, max(args.repeats, 5)))
        return
    if args.regression:
        print_targets(print_regression(max(args.repeats, 3)))
        return
    if args.time_to_accuracy:
        print_time_to_accuracy()
        return
    if args.variants:
        X, y, data = load()
        print(f"- data: {data}; {machine()[0]}")
        checks = print_variants(X, y, args.repeats)
        print_targets(checks)
        return

    X, y, data = load()
    model, blas = machine()
    no_fma, fma = peak(), peak(fused=True)
    if args.fma:
        print(f"- data: {data}; {model}; the {fastmlp.build_info()['kernels']} kernels")
        print_targets(print_fused(X, y, args.repeats, no_fma, fma, torch_available()))
        return
    has_torch = torch_available()
    info = fastmlp.build_info()
    print("# fastmlp benchmark report\n")
    print(f"- machine: {model}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"- NumPy {np.__version__} with {blas}" + (f"; PyTorch {__import__('torch').__version__}" if has_torch else "; PyTorch not installed"))
    print(f"- fastmlp {fastmlp.__version__}, the {info['kernels']} kernels ({info['chosen_by']}; built: "
          f"{', '.join(info['kernels_built'])}), compiled with `{info['compile_flags']}`, vectors of {info['vector_bytes']} bytes")
    print(f"- data: {data}, {len(X)} examples")
    limits = (None, None)
    if no_fma:
        limits = ({"float64": no_fma[0], "float32": no_fma[1]}, {"float64": fma[0], "float32": fma[1]} if fma else None)
        line = f"- one core's multiply-adds (benchmarks/peak.c): {no_fma[0]:.1f} G/s float64, {no_fma[1]:.1f} G/s float32 without FMA"
        if fma:
            line += f"; {fma[0]:.1f} / {fma[1]:.1f} G/s with FMA"
            gain = fma[0] / no_fma[0]
            line += (": fusing adds no throughput here, the exact contract costs nothing" if gain < 1.1
                     else f": fusing gives {gain:.1f}× the rate, what exact arithmetic leaves on the table")
        print(line)
    else:
        print("- the limit's microbenchmark could not be built (no cc?)")
    print(f"- each figure: median of {args.repeats} epochs (1 for the slow peers at batch size 1)")

    checks = []
    if not args.widths:
        checks += print_classic(X, y, args, limits[0], has_torch)
    if not args.no_widths:
        checks += print_width_sweep(X, y, args.repeats, limits, has_torch)
        checks += print_fused(X, y, args.repeats, no_fma, fma, has_torch)
        checks += print_adam_cost(X, y, max(args.repeats, 5))
        for dtype in ("float64", "float32"):
            sizes, batch = (784, 1024, 1024, 10), 256
            memory = peak_memory(dtype, sizes, batch, SWEEP_SETTINGS)
            if memory:
                bound = wide_memory_bound(dtype, sizes, batch, len(X))
                checks.append((f"{dtype}, 784-1024-1024-10, batch {batch}: a trainer and its epoch add ≤ {bound:.0f} MB "
                               f"to the inputs ({memory[0]:.0f} MB): never a copy of them", memory[1] <= bound,
                               f"+{memory[1]:.0f} MB at the peak"))
    if not args.widths and "native" in info["kernels_built"]:
        checks += print_variants(X, y, args.repeats)
    print_targets(checks)
    if has_mnist(mnist_dir()) and not args.widths:
        rows = print_time_to_accuracy()
        if has_torch:
            print("\n| target | met | measured |\n|---|---|---|")
            for seed, ours, theirs in rows:
                if ours and theirs and not isinstance(theirs, str):
                    print(f"| seed {seed}: {WIDE_TARGET:.0%} in at most half of PyTorch's time | "
                          f"{'yes' if ours[1] <= theirs[1] / 2 else 'no'} | {ours[1] / theirs[1]:.2f} of it |")


def print_targets(checks):
    print("\n## Targets\n")
    print("| target | met | measured |\n|---|---|---|")
    for name, ok, measured in checks:
        print(f"| {name} | {'yes' if ok else 'no'} | {measured} |")


#: The dispatched kernels against native ones: the classic network and a wide one, with the
#: examples of each epoch (of the training images) and the batch sizes.
VARIANT_CASES = [((784, 16, 16, 10), CLASSIC_SETTINGS, 60000, (10, 100)), ((784, 256, 256, 10), SWEEP_SETTINGS, 15000, (32, 256))]


def print_variants(X, y, repeats):
    """The kernels chosen for this CPU against ``-march=native`` ones, epoch by epoch in turns; returns
    the target: the chosen ones within 3% of native's time, in every case."""
    info = fastmlp.build_info()
    chosen = info["kernels"]
    print("\n## The kernels chosen for this CPU against a native build\n")
    if "native" not in info["kernels_runnable"]:
        print("This build has no native kernels: build with `FASTMLP_NATIVE=1 pip install .` to compare.")
        return []
    print(f"One thread; seconds per epoch, median of {repeats}, the two taking their epochs in turns. Chosen ÷ native: "
          "the ratio of the medians; turn by turn: the median of each turn's ratio, which a slow spell of the "
          f"machine affects less, as it falls on both sides of it. The chosen kernels are {chosen} "
          f"({info['chosen_by']}); native ones are compiled with -march=native.\n")
    print("| network | dtype | batch | examples | chosen | native | chosen ÷ native | turn by turn |")
    print("|---|---|---|---|---|---|---|---|")
    worst = 0.0
    for sizes, settings, n, batches in VARIANT_CASES:
        for dtype in ("float64", "float32"):
            Xd = np.ascontiguousarray(X[:n], dtype=dtype)
            for batch in batches:
                times = {chosen: [], "native": []}
                for _ in range(repeats):
                    for name in times:
                        _dispatch.use_kernels(name)
                        times[name].append(time_fastmlp(Xd, y[:n], dtype, 1, batch, 1, sizes, settings))
                _dispatch.use_kernels(chosen)
                ours, native = statistics.median(times[chosen]), statistics.median(times["native"])
                ratio = statistics.median(a / b for a, b in zip(times[chosen], times["native"]))
                worst = max(worst, ratio)
                print(f"| {'-'.join(map(str, sizes))} | {dtype} | {batch} | {n} | {ours:.3f} s | {native:.3f} s | "
                      f"{ours / native:.3f} | {ratio:.3f} |", flush=True)
    return [(f"the {chosen} kernels chosen at import within 3% of native ones, in every case (turn by turn)",
             worst <= 1.03, f"{worst:.3f}× native's time at worst")]


def print_classic(X, y, args, limits, has_torch):
    """The classic network's table over batch sizes 1 to 1000; returns its targets."""
    macs = macs_per_example(SIZES) * len(X)
    epoch_limits = {dtype: macs / rate / 1e9 for dtype, rate in limits.items()} if limits else None
    print("\n## The classic network: 784-16-16-10\n")
    print(f"Sigmoid, quadratic cost, η = 3.0, {macs / 1e9:.2f} G multiply-adds an epoch"
          + (f", so at least {epoch_limits['float64']:.3f} s / {epoch_limits['float32']:.3f} s at the no-FMA limit."
             if epoch_limits else ".") + "\n")
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
                vs_limit = f"{ours / epoch_limits[dtype]:.2f}" if epoch_limits else "–"
                print(f"| {dtype} | {threads} | {batch} | {cell(ours)} | {cell(numpy_s)} | {cell(torch_s)} | "
                      f"{ratio(numpy_s)} | {ratio(torch_s)} | {rate:.1f} | {vs_limit} |", flush=True)

    checks = []
    if epoch_limits:
        for batch in BATCH_SIZES:
            bound = 3.0 if batch == 1 else 2.0
            f = results["float64", 1, batch][0] / epoch_limits["float64"]
            checks.append((f"784-16-16-10, float64, 1 thread, batch {batch}: within {bound:g}× of the no-FMA limit",
                           f <= bound, f"{f:.2f}×"))
    for batch, want in zip(BATCH_SIZES, (25, 3, 2, 2)):
        for dtype in ("float64", "float32"):
            ours, numpy_s, _ = results[dtype, 1, batch]
            if numpy_s:
                checks.append((f"784-16-16-10, {dtype}, batch {batch}: ≥ {want}× NumPy", numpy_s / ours >= want,
                               f"{numpy_s / ours:.1f}×"))
    if has_torch:
        for batch, want in ((10, 15), (100, 3), (1000, 1.5)):
            ours, _, torch_s = results["float64", 1, batch]
            checks.append((f"784-16-16-10, float64, batch {batch}: ≥ {want:g}× PyTorch", torch_s / ours >= want,
                           f"{torch_s / ours:.1f}×"))
    for batch in (100, 1000):
        for dtype in ("float64", "float32"):
            gain = results[dtype, 1, batch][0] / results[dtype, 2, batch][0]
            checks.append((f"784-16-16-10, {dtype}, batch {batch}: 2 threads ≥ 1.7× 1 thread", gain >= 1.7,
                           f"{gain:.2f}×"))
    for batch in BATCH_SIZES:
        gain = results["float64", 1, batch][0] / results["float32", 1, batch][0]
        checks.append((f"784-16-16-10, batch {batch}: float32 ≥ 1.7× float64", gain >= 1.7, f"{gain:.2f}×"))
    alone, together = concurrency(np.ascontiguousarray(X, dtype="float64"), y, args.repeats)
    checks.append((f"two trainers in two Python threads take ≤ 1.2× one trainer's wall time "
                   f"({args.repeats} epochs each, batch 100)", together <= 1.2 * alone,
                   f"{together:.2f} s against {alone:.2f} s: {together / alone:.2f}×"))
    for dtype in ("float64", "float32"):
        memory = peak_memory(dtype)
        if memory:
            inputs, extra = memory
            checks.append((f"784-16-16-10, {dtype}: training adds ≤ 64 MB to the inputs ({inputs:.0f} MB)",
                           extra <= 64, f"+{extra:.0f} MB at the peak"))
    return checks


def print_time_to_accuracy(seeds=(0, 1, 2)):
    """Both recipes' times to their test accuracy; returns the wide recipe's rows."""
    rows = None
    for recipe, target in ((RECIPE, TARGET_ACCURACY), (WIDE_RECIPE, WIDE_TARGET)):
        settings = ", ".join(f"{k}={v!r}" for k, v in recipe.items())
        print(f"\n## Time to {target:.0%} test accuracy on MNIST\n")
        print(f"Recipe: `Trainer({settings})`, the same in PyTorch from the same initial parameters. "
              "Training seconds until the test accuracy, measured after each epoch, first reaches the target.\n")
        print("| seed | fastmlp | PyTorch |\n|---|---|---|")
        cell = lambda r: (r if isinstance(r, str) else "not within 6 epochs" if r is None  # noqa: E731
                          else f"{r[1]:.2f} s ({r[0]} epochs, {r[2]:.2%})")
        rows = time_to_accuracy(recipe, target, seeds)
        for seed, ours, theirs in rows:
            print(f"| {seed} | {cell(ours)} | {cell(theirs)} |", flush=True)
    return rows


def sweep_macs(w):
    """Multiply-adds per example of 784-w-w-10 (see macs_per_example)."""
    return macs_per_example((784, w, w, 10))


def width_sweep(X, y, repeats, has_torch):
    """Yields ((dtype, threads, batch, w, examples), (fastmlp, numpy, torch)): seconds per epoch over
    SWEEP_EXAMPLES[w] examples (torch None when absent), each the median of ``repeats`` epochs.

    For each network, dtype and batch size, the six trainers (three libraries, one and two threads)
    take their epochs in turns, ``repeats`` rounds of one epoch each: on a shared machine, a spell of
    slowness then falls on all of them alike rather than on one, and the ratios of one run hold."""
    for dtype in ("float64", "float32"):
        for batch in SWEEP_BATCHES:
            for w in WIDTHS:
                n, Xd, Y, sizes, start = sweep_case(X, y, dtype, w)
                runs = {}
                for threads in (1, 2):
                    trainer = Trainer(sizes, batch_size=batch, seed=0, dtype=dtype, threads=threads, **SWEEP_SETTINGS)
                    runs["fastmlp", threads] = lambda t=trainer: t.fit(Xd, y[:n], 1).epochs[0].seconds
                    peers = [("numpy", NumpyPeer)] + ([("torch", TorchPeer)] if has_torch else [])
                    for name, cls in peers:
                        peer = cls(start.weights, start.biases, SWEEP_SETTINGS["activation"],
                                   SWEEP_SETTINGS["learning_rate"], batch, dtype, threads, SWEEP_SETTINGS["cost"])
                        runs[name, threads] = lambda p=peer, k=threads: _peer_epoch(p, Xd, Y, k)
                times = in_turns(runs, repeats)
                for threads in (1, 2):
                    median = lambda name: times.get((name, threads))  # noqa: E731
                    yield (dtype, threads, batch, w, n), (median("fastmlp"), median("numpy"), median("torch"))


def sweep_case(X, y, dtype, w):
    """(n, X, Y, sizes, start) for the sweep's width w: its examples in ``dtype``, their one-hot
    targets, the network and a trainer holding its initial parameters (seed 0)."""
    n = SWEEP_EXAMPLES[w]
    sizes = (784, w, w, 10)
    Xd = np.ascontiguousarray(X[:n], dtype=dtype)
    return n, Xd, np.eye(10, dtype=dtype)[y[:n]], sizes, Trainer(sizes, seed=0, dtype=dtype, **SWEEP_SETTINGS)


def in_turns(runs, repeats):
    """The median seconds of each of ``runs`` (name: a function timing one epoch), the runs taking
    their epochs in turns, ``repeats`` rounds."""
    times = {key: [] for key in runs}
    for _ in range(repeats):
        for key, epoch in runs.items():
            times[key].append(epoch())
    return {key: statistics.median(seconds) for key, seconds in times.items()}


def _peer_epoch(peer, X, Y, threads, rng=np.random.default_rng(0)):
    """Seconds of one epoch of a peer on ``threads`` threads (BLAS's and PyTorch's)."""
    perm = rng.permutation(len(X))
    if isinstance(peer, TorchPeer):
        peer.torch.set_num_threads(threads)
    with _blas_threads(threads), np.errstate(over="ignore"):
        start = time.perf_counter()
        peer.epoch(X, Y, perm)
        return time.perf_counter() - start


def print_width_sweep(X, y, repeats, limits, has_torch):
    """The sweep's table; returns its targets: one thread at 75% of the no-FMA limit or more, and
    at PyTorch's speed at least where fusing adds no throughput (else 0.9 of it, scaled by the
    unfused rate's share of the fused one), for w ≥ 64; two threads at 1.8× one for w ≥ 256."""
    no_fma, fma = limits
    print("\n## Width sweep: 784-w-w-10\n")
    print(f"ReLU hidden layers, a softmax output with the log-likelihood cost, η = {SWEEP_SETTINGS['learning_rate']}, "
          "plain SGD; NumPy and PyTorch train the same network from the same parameters. Seconds per epoch of "
          f"the examples given (median of {repeats}, the six trainers of a row pair taking turns); G/s: fastmlp's multiply-adds per second; share: of the "
          "no-FMA limit (one core's, also with two threads); × PyTorch, × NumPy: how many times faster fastmlp is.\n")
    print("| dtype | batch | w | threads | examples | fastmlp | NumPy | PyTorch | G/s | share | × PyTorch | × NumPy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    results = {}
    cell = lambda v: "–" if v is None else f"{v:.3f} s"  # noqa: E731
    ratio = lambda v, ours: "–" if v is None else f"{v / ours:.2f}×"  # noqa: E731
    for (dtype, threads, batch, w, n), (ours, numpy_s, torch_s) in width_sweep(X, y, repeats, has_torch):
        results[dtype, threads, batch, w] = (ours, numpy_s, torch_s)
        rate = sweep_macs(w) * n / ours / 1e9
        share = f"{rate / no_fma[dtype]:.0%}" if no_fma else "–"
        print(f"| {dtype} | {batch} | {w} | {threads} | {n} | {cell(ours)} | {cell(numpy_s)} | {cell(torch_s)} | "
              f"{rate:.1f} | {share} | {ratio(torch_s, ours)} | {ratio(numpy_s, ours)} |", flush=True)
    checks = []
    for dtype in ("float64", "float32"):
        for batch in SWEEP_BATCHES:
            for w in WIDTHS:
                if w < 64:
                    continue
                ours, _, torch_s = results[dtype, 1, batch, w]
                rate = sweep_macs(w) * SWEEP_EXAMPLES[w] / ours / 1e9
                if no_fma:
                    share = rate / no_fma[dtype]
                    checks.append((f"{dtype}, 1 thread, batch {batch}, w = {w}: ≥ 75% of the no-FMA limit",
                                   share >= 0.75, f"{share:.0%}"))
                if torch_s is not None and no_fma and fma:
                    # Where FMA adds no throughput, the exact arithmetic costs nothing: PyTorch's speed
                    # at least; elsewhere 0.9 of it, scaled by what the unfused rate leaves.
                    gain = fma[dtype] / no_fma[dtype]
                    want = 1.0 if gain < 1.1 else 0.9 / gain
                    checks.append((f"{dtype}, 1 thread, batch {batch}, w = {w}: ≥ {want:.2f}× PyTorch's speed",
                                   torch_s / ours >= want, f"{torch_s / ours:.2f}×"))
            for w in WIDTHS:
                if w >= 256:
                    gain = results[dtype, 1, batch, w][0] / results[dtype, 2, batch, w][0]
                    checks.append((f"{dtype}, batch {batch}, w = {w}: 2 threads ≥ 1.8× 1 thread", gain >= 1.8,
                                   f"{gain:.2f}×"))
    return checks


#: The fused contract's comparison: networks 784-w-w-10 at batch 32, the examples as in the sweep.
FUSED_WIDTHS = (64, 256, 1024)


def print_fused(X, y, repeats, no_fma, fma, has_torch):
    """fastmlp with fma=False, fma=True and PyTorch on 784-w-w-10, taking their epochs in turns; returns
    the targets of the case this machine is: where fusing doubles the multiply-add rate, fma=True
    ≥ 1.7× fma=False at w ≥ 256 and ≥ 1.2× PyTorch everywhere; where it adds nothing, fma=True at
    least as fast as fma=False."""
    gain = fma[0] / no_fma[0] if fma and no_fma else None
    print("\n## The fused contract: fma=True against fma=False and PyTorch\n")
    if gain is None:
        print("The limits could not be measured (no cc?): the targets below assume fusing adds no throughput.\n")
    else:
        print(f"One core's float64 multiply-adds: {no_fma[0]:.1f} G/s without FMA, {fma[0]:.1f} G/s with: "
              + ("fusing adds no throughput on this CPU (its adds have units of their own, as on AMD's Zen "
                 "cores), so fma=True should match fma=False. On a CPU whose adds run on the FMA units "
                 "(Intel's, ARM's), the fused kernels do one instruction per multiply-add where the default "
                 "does two, on the same units: expect up to 2× on wide layers, less where the weights stream "
                 "from memory." if gain < 1.5 else
                 f"fusing gives {gain:.1f}× the rate on this CPU, as on Intel's and ARM's cores, where the "
                 "default contract's separate add takes an FMA unit's slot. On a CPU whose adds have units of "
                 "their own (AMD's Zen), expect fma=True to match fma=False.") + "\n")
    print(f"784-w-w-10, batch 32, ReLU, seconds per epoch (median of {repeats}, in turns); the fused speed-up is "
          "fma=False's seconds ÷ fma=True's.\n")
    print("| dtype | w | threads | examples | fma=False | fma=True | PyTorch | fused speed-up | × PyTorch |")
    print("|---|---|---|---|---|---|---|---|---|")
    checks = []
    for dtype in ("float64", "float32"):
        for w in FUSED_WIDTHS:
            n, Xd, Y, sizes, start = sweep_case(X, y, dtype, w)
            runs = {}
            for threads in (1, 2):
                for fused in (False, True):
                    trainer = Trainer(sizes, batch_size=32, seed=0, dtype=dtype, threads=threads, fma=fused,
                                      **SWEEP_SETTINGS)
                    runs[fused, threads] = lambda t=trainer: t.fit(Xd, y[:n], 1).epochs[0].seconds
                if has_torch:
                    peer = TorchPeer(start.weights, start.biases, SWEEP_SETTINGS["activation"],
                                     SWEEP_SETTINGS["learning_rate"], 32, dtype, threads, SWEEP_SETTINGS["cost"])
                    runs["torch", threads] = lambda p=peer, k=threads: _peer_epoch(p, Xd, Y, k)
            times = in_turns(runs, repeats)
            for threads in (1, 2):
                plain, fused, torch_s = times[False, threads], times[True, threads], times.get(("torch", threads))
                print(f"| {dtype} | {w} | {threads} | {n} | {plain:.3f} s | {fused:.3f} s | "
                      f"{'–' if torch_s is None else f'{torch_s:.3f} s'} | {plain / fused:.2f}× | "
                      f"{'–' if torch_s is None else f'{torch_s / fused:.2f}×'} |", flush=True)
                where = f"{dtype}, {threads} thread{'s' if threads > 1 else ''}, w = {w}"
                if gain is not None and gain >= 1.5:
                    if w >= 256:
                        checks.append((f"{where}: fma=True ≥ 1.7× fma=False", plain / fused >= 1.7, f"{plain / fused:.2f}×"))
                    if torch_s is not None:
                        checks.append((f"{where}: fma=True ≥ 1.2× PyTorch's speed", torch_s / fused >= 1.2,
                                       f"{torch_s / fused:.2f}×"))
                else:
                    checks.append((f"{where}: fma=True at least as fast as fma=False", plain / fused >= 1.0,
                                   f"{plain / fused:.2f}×"))
    return checks


if __name__ == "__main__":
    main()
