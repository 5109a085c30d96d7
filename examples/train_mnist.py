"""Train the network of the classic backprop picture, 784-16-16-10, on MNIST, from Python.

Usage: python examples/train_mnist.py [DATA_DIR] [--epochs 30] [--threads 1] [--seed 0]

What `fastmlp train` does, as a program embedding fastmlp would. DATA_DIR
holds the four MNIST IDX files (raw or .gz); without it, fastmlp.datasets
finds or fetches them. Sigmoid neurons, quadratic cost, mini-batches of 10,
learning rate 3.0: each epoch prints its training cost, the accuracy on the
10000 test images and its time.
"""

import argparse
import sys
import time

from fastmlp import Trainer
from fastmlp.datasets import load_mnist


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", nargs="?", help="folder holding the MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        (X, y), (X_test, y_test) = load_mnist(args.data_dir)
    except (OSError, ValueError) as exc:
        sys.exit(f"error: {exc}")

    trainer = Trainer((784, 16, 16, 10), learning_rate=3.0, batch_size=10, seed=args.seed, threads=args.threads)
    print(f"{len(X)} training and {len(X_test)} test images; {trainer!r}")

    def report(record):
        print(
            f"epoch {record.epoch:3d}  cost {record.train_cost:.4f}  "
            f"test accuracy {record.validation_accuracy:.2%}  {record.seconds:.2f} s",
            flush=True,
        )

    start = time.perf_counter()
    history = trainer.fit(X, y, args.epochs, validation_data=(X_test, y_test), callbacks=report)
    print(f"best test accuracy {max(history.validation_accuracy):.2%}; {time.perf_counter() - start:.1f} s in all")


if __name__ == "__main__":
    main()
