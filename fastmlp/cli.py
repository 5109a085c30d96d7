"""The ``fastmlp`` command: train on MNIST, evaluate a saved model, draw what it learned.

    fastmlp train [--layers 784,16,16,10] [--epochs 30] [--save model.npz] [--plot out.png] ...
    fastmlp evaluate model.npz
    fastmlp plot model.npz out.png

A mistake on the command line, or in the files it names, gets one line on
stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

from . import datasets
from ._base import ACTIVATIONS, COSTS, INITS, OPTIMIZERS, OUTPUT_ACTIVATIONS, DivergenceError, TrainingStalledWarning
from .schedules import StepDecay
from .trainer import Trainer

# Every data set here has 28×28 images of 10 classes.
INPUTS, CLASSES = 784, 10


class UsageError(Exception):
    """A mistake the user can fix; reported in one line."""


def _layers(text):
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 784,16,16,10, got {text!r}")
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected at least two sizes, each >= 1, got {text!r}")
    return tuple(sizes)


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}")
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
        return value

    return parse


def _number_from(low, below=float("inf")):
    """A parser of numbers in [low, below), for --l2 and --momentum."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
        if not low <= value < below:
            bound = "a finite number" if below == float("inf") else f"a number < {below:g} and"
            raise argparse.ArgumentTypeError(f"expected {bound} >= {low:g}, got {text!r}")
        return value

    return parse


def _step_decay(text):
    """EVERY,FACTOR for --lr-decay."""
    try:
        every, factor = text.split(",")
        return StepDecay(int(every), float(factor))
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"expected EVERY,FACTOR such as 10,0.5, got {text!r} ({exc})")


def _betas(text):
    """B1,B2 for --betas."""
    parse = _number_from(0, below=1)
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected B1,B2 such as 0.9,0.999, got {text!r}")
    return tuple(parse(part) for part in parts)


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """Reports a mistake in one line, pointing to --help, rather than with the whole usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    """The argument parser of the ``fastmlp`` command and its train, evaluate and plot commands."""
    parser = _Parser(prog="fastmlp", description="Train fully connected networks on MNIST, fast.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser(
        "train",
        help="train a network (by default the 784-16-16-10 network of the classic picture, on MNIST)",
        description="Train a network with backprop and mini-batch SGD; print each epoch's cost, test accuracy and time.",
    )
    train.add_argument("--layers", type=_layers, default=(784, 16, 16, 10), help="sizes, input first (default 784,16,16,10)")
    train.add_argument("--activation", choices=ACTIVATIONS, default="sigmoid",
                       help="of the hidden layers, and of the output layer with the quadratic cost (default sigmoid)")
    train.add_argument("--cost", choices=tuple(COSTS), default="quadratic",
                       help="quadratic (default); cross_entropy, over sigmoid outputs; log_likelihood, over a softmax")
    train.add_argument("--output-activation", choices=(*OUTPUT_ACTIVATIONS, "softmax"), default=None,
                       help="of the output layer, with the quadratic cost (default: as --activation); the other "
                            "costs fix theirs")
    train.add_argument("--l2", type=_number_from(0), default=0.0,
                       help="L2 weight decay λ: each step scales the weights by 1 - η·λ/n (default 0)")
    train.add_argument("--momentum", type=_number_from(0, below=1), default=0.0, help="momentum μ in [0, 1) (default 0)")
    train.add_argument("--nesterov", action="store_true", help="Nesterov's momentum (with --momentum)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd",
                       help="sgd (default) or adam, which wants a much smaller --lr, such as 0.001")
    train.add_argument("--betas", type=_betas, metavar="B1,B2", default=(0.9, 0.999),
                       help="Adam's decay rates of its moments (default 0.9,0.999)")
    train.add_argument("--eps", type=_positive(float), default=1e-8, help="Adam's ε (default 1e-8)")
    train.add_argument("--dropout", type=_number_from(0, below=1), default=0.0,
                       help="drop each hidden unit with this probability in training (default 0)")
    train.add_argument("--init", choices=INITS, default="standard",
                       help="initial weights N(0, 1) (standard, the default) or N(0, 1/inputs) (scaled)")
    train.add_argument("--epochs", type=_non_negative_int, default=30, help="default 30")
    train.add_argument("--batch-size", type=_positive(int), default=10, help="default 10")
    train.add_argument("--lr", type=_positive(float), default=3.0, help="learning rate η (default 3.0)")
    train.add_argument("--lr-decay", type=_step_decay, metavar="EVERY,FACTOR", default=None,
                       help="multiply η by FACTOR every EVERY epochs (default: constant η)")
    train.add_argument("--seed", type=_non_negative_int, default=None, help="default: a fresh one, printed")
    train.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="default float64")
    train.add_argument("--threads", type=_positive(int), default=1, help="default 1")
    train.add_argument("--fma", action="store_true",
                       help="fuse the sums' and the step's multiply-adds, each rounded once: faster on Intel and ARM CPUs; results "
                            "differ from the default's, but are the same on every CPU")
    _data_arguments(train)
    train.add_argument("--save", metavar="PATH", help="save the trained model here (.npz)")
    train.add_argument("--plot", metavar="OUT.png", help="draw learning curves and first-layer weights here")
    train.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")
    train.add_argument("--json", action="store_true", help="print one JSON object per epoch on stdout")

    evaluate = commands.add_parser("evaluate", help="test accuracy and confusion matrix of a saved model")
    evaluate.add_argument("model", help="a model saved by 'fastmlp train --save'")
    _data_arguments(evaluate, default=None)
    evaluate.add_argument("--json", action="store_true", help="print the result as one JSON object")

    plot = commands.add_parser("plot", help="draw a saved model's learning curves and first-layer weights")
    plot.add_argument("model", help="a model saved by 'fastmlp train --save'")
    plot.add_argument("out", metavar="OUT.png", help="the picture to write")
    return parser


def _data_arguments(parser, default="mnist"):
    parser.add_argument(
        "--dataset", choices=sorted(datasets.LOADERS), default=default,
        help="default mnist" if default else "default: the one the model was trained on",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="a folder holding the four IDX files")


def _load(dataset, data_dir, dtype):
    return datasets.LOADERS[dataset](data_dir, dtype=dtype)


def _check_output(path, option, suffix=None):
    """Refuse an output path that cannot be written, before any long work."""
    folder = os.path.dirname(os.path.abspath(path))
    if suffix and not path.lower().endswith(suffix):
        raise UsageError(f"{option} {path}: the file name should end in {suffix}")
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a folder")
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: no folder {folder}")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {path}: cannot write in {folder}")


def train(args):
    """``fastmlp train``: train on MNIST or Fashion-MNIST, report each epoch, save and draw on request."""
    out, err = sys.stdout, sys.stderr
    # What can be checked without the data is checked before loading it and training.
    if args.layers[0] != INPUTS or args.layers[-1] != CLASSES:
        raise UsageError(f"--layers must start with {INPUTS} inputs and end with {CLASSES} outputs for {args.dataset}")
    if args.nesterov and not args.momentum:
        raise UsageError("--nesterov needs --momentum > 0")
    if args.optimizer == "adam" and args.momentum:
        raise UsageError("--momentum goes with --optimizer sgd; Adam has its own, the first of --betas")
    if args.save:
        _check_output(args.save, "--save")
    if args.plot:
        _check_output(args.plot, "--plot", ".png")
        from .plotting import require_matplotlib

        require_matplotlib()
    seed = args.seed if args.seed is not None else int(np.random.SeedSequence().entropy % 2**32)
    trainer = Trainer(
        args.layers, activation=args.activation, cost=args.cost, output_activation=args.output_activation,
        learning_rate=args.lr, optimizer=args.optimizer, nesterov=args.nesterov, betas=args.betas, eps=args.eps,
        dropout=args.dropout,
        batch_size=args.batch_size, l2=args.l2, momentum=args.momentum, init=args.init,
        schedule=args.lr_decay, seed=seed, dtype=args.dtype, threads=args.threads, fma=args.fma,
    )
    (X, y), (X_test, y_test) = _load(args.dataset, args.data_dir, args.dtype)
    trainer.dataset = args.dataset
    if not args.quiet and not args.json:
        print(f"{args.dataset}: {len(X)} training and {len(X_test)} test images; seed {seed}", file=out)
        options = "".join([
            f", {args.cost.replace('_', '-')} cost",
            f" over {args.output_activation} outputs" if trainer._output_named() else "",
            f", L2 λ = {args.l2}" if args.l2 else "",
            f", {'Nesterov ' if args.nesterov else ''}momentum {args.momentum}" if args.momentum else "",
            f", Adam β = {args.betas[0]}, {args.betas[1]}, ε = {args.eps}" if args.optimizer == "adam" else "",
            f", dropout {args.dropout}" if args.dropout else "",
            ", scaled initial weights" if args.init == "scaled" else "",
            f", η ×{args.lr_decay.factor} every "
            f"{'epoch' if args.lr_decay.every == 1 else f'{args.lr_decay.every} epochs'}" if args.lr_decay else "",
        ])
        print(f"{'-'.join(map(str, args.layers))} {args.activation} network{options}, η = {args.lr}"
              f", batch {args.batch_size}, {args.dtype}{', fused multiply-adds' if args.fma else ''}"
              f", {args.threads} thread(s)", file=out)

    # JSON lines are for programs: no bar beside them.
    progress = _progress_bar(args.epochs, disable=args.quiet or args.json, err=err)

    def report(record):
        progress.set_postfix(accuracy=f"{record.validation_accuracy:.2%}", refresh=False)
        progress.update(1)
        if args.json:
            print(json.dumps({
                "epoch": record.epoch, "train_cost": record.train_cost,
                "test_accuracy": record.validation_accuracy, "seconds": record.seconds, "seed": seed,
            }), file=out, flush=True)
        elif not args.quiet:
            progress.write(
                f"epoch {record.epoch:3d}  cost {record.train_cost:.4f}  "
                f"test accuracy {record.validation_accuracy:.2%}  {record.seconds:.2f} s",
                file=out,
            )

    def one_line(message, category, filename, lineno, file=None, line=None):
        # A warning (the stall warning above all) as one line, not Python's two with the source.
        progress.write(f"warning: {message}", file=err)

    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", TrainingStalledWarning)  # whatever the filters say (fit warns once)
            warnings.showwarning = one_line
            history = trainer.fit(X, y, args.epochs, validation_data=(X_test, y_test), callbacks=report)
    except KeyboardInterrupt:
        progress.close()
        return _interrupted(trainer, args.save, err)
    finally:
        progress.close()
    wall = time.perf_counter() - start
    if not args.json and len(history):
        accuracies = history.validation_accuracy
        best = int(np.argmax(accuracies))
        print(f"{len(history)} epochs in {wall:.1f} s; test accuracy: best {accuracies[best]:.2%} "
              f"(epoch {best + 1}), final {accuracies[-1]:.2%}; seed {seed}", file=out)
    if args.save:
        trainer.save(args.save)
        if not args.json:
            print(f"saved the model to {args.save}", file=out)
    if args.plot:
        _plot(trainer, args.plot, out, quiet=args.json)
    return 0


def _interrupted(trainer, save, err):
    """Ctrl-C during training: keep the completed epochs (fit went back to the last one), say so."""
    kept = len(trainer.history)
    message = f"fastmlp: interrupted; the model keeps its {kept} completed epoch{'s' if kept != 1 else ''}"
    if save and kept:
        trainer.save(save)
        message += f", saved to {save}"
    elif save:
        message += f"; nothing was written to {save}"
    print(message, file=err)
    return 130


def _progress_bar(total, disable, err):
    from tqdm import tqdm

    # disable=None: no bar where stderr is not a terminal (a log, a pipe).
    return tqdm(total=total, unit="epoch", file=err, disable=True if disable else None, dynamic_ncols=True, leave=False)


def evaluate(args):
    """``fastmlp evaluate``: a saved model's test accuracy and confusion matrix."""
    out = sys.stdout
    trainer = Trainer.load(args.model)
    dataset = args.dataset or trainer.dataset or "mnist"
    if dataset not in datasets.LOADERS:
        raise UsageError(f"{args.model} was trained on {dataset!r}; name a data set with --dataset")
    _, (X_test, y_test) = _load(dataset, args.data_dir, trainer.dtype.name)
    if X_test.shape[1] != trainer.layer_sizes[0] or trainer.layer_sizes[-1] != 10:
        raise UsageError(f"{args.model} is a {'-'.join(map(str, trainer.layer_sizes))} network, not one for {dataset}")
    predicted = trainer.predict(X_test)
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (y_test, predicted), 1)
    accuracy = float(np.trace(confusion) / len(y_test))
    if args.json:
        print(json.dumps({"dataset": dataset, "test_accuracy": accuracy, "confusion_matrix": confusion.tolist()}), file=out)
        return 0
    print(f"{args.model}: {'-'.join(map(str, trainer.layer_sizes))} {trainer.activation} network, "
          f"{trainer.cost.replace('_', '-')} cost{', fused multiply-adds' if trainer.fma else ''}, "
          f"{len(trainer.history)} epochs trained", file=out)
    print(f"{dataset} test accuracy: {accuracy:.2%} ({np.trace(confusion)} of {len(y_test)})", file=out)
    print("confusion matrix (rows: true label, columns: predicted):", file=out)
    print("      " + "".join(f"{j:>6}" for j in range(10)), file=out)
    for i, row in enumerate(confusion):
        print(f"{i:>6}" + "".join(f"{n:>6}" for n in row), file=out)
    return 0


def plot(args):
    """``fastmlp plot``: draw a saved model's learning curves and first-layer weights."""
    _check_output(args.out, "OUT.png", ".png")
    _plot(Trainer.load(args.model), args.out, sys.stdout)
    return 0


def _plot(trainer, path, out, quiet=False):
    from .plotting import plot_model

    plot_model(trainer, path)
    if not quiet:
        print(f"drew {path}", file=out)


def main(argv=None):
    """Run the ``fastmlp`` command with ``argv`` (default: the process's); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = {"train": train, "evaluate": evaluate, "plot": plot}[args.command]
    try:
        return command(args)
    except KeyboardInterrupt:
        print("fastmlp: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (fastmlp ... | head): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except MemoryError:
        print("fastmlp: error: not enough memory for this network and data", file=sys.stderr)
        return 1
    except (UsageError, ValueError, OSError, DivergenceError) as exc:
        # ValueError covers bad data and model files (IDXError, ModelFileError) and
        # a missing optional extra; OSError missing files and failed downloads.
        print(f"fastmlp: error: {exc}", file=sys.stderr)
        return 1
