"""Pictures of a trained network: learning curves and what the first layer responds to.

Needs matplotlib, an optional extra: ``pip install '.[plot]'`` in fastmlp's folder, or ``pip install matplotlib``.
"""

from __future__ import annotations

import math

import numpy as np

from ._files import atomic_write

MAX_NEURONS = 64  # first-layer neurons drawn at most


def require_matplotlib():
    """The matplotlib classes drawing needs; a ValueError saying how to install it when it is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ValueError("drawing needs matplotlib: pip install matplotlib") from None
    return Figure, FigureCanvasAgg, MaxNLocator


def plot_model(trainer, path):
    """Write a PNG: training cost and test accuracy per epoch, and each first-layer
    neuron's weights as a 28×28 image when the input is 784 pixels.

    Writes atomically: ``path`` is either left as it was or replaced whole.
    """
    Figure, FigureCanvasAgg, MaxNLocator = require_matplotlib()
    history = trainer.history
    W = np.asarray(trainer.weights[0], dtype=np.float64)
    show_weights = trainer.layer_sizes[0] == 784
    n = min(len(W), MAX_NEURONS) if show_weights else 0
    columns = math.ceil(math.sqrt(n)) if n else 0
    rows = math.ceil(n / columns) if n else 0

    figure = Figure(figsize=(11, 5) if n else (6, 5), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(max(rows, 1), 1 + columns, width_ratios=[max(columns, 1)] + [1] * columns)
    curves = figure.add_subplot(grid[:, 0])
    epochs = np.arange(1, len(history) + 1)
    curves.plot(epochs, history.train_cost, color="tab:blue", marker=".")
    curves.set_xlabel("epoch")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))
    curves.set_ylabel("training cost", color="tab:blue")
    accuracy = [np.nan if a is None else a for a in history.validation_accuracy]
    if not np.isnan(accuracy).all():
        twin = curves.twinx()
        twin.plot(epochs, np.multiply(accuracy, 100), color="tab:orange", marker=".")
        twin.set_ylabel("test accuracy (%)", color="tab:orange")
    sizes = "-".join(map(str, trainer.layer_sizes))
    curves.set_title(f"{sizes} {trainer.activation} network, {trainer.cost.replace('_', '-')} cost"
                     + (f" on {trainer.dataset}" if trainer.dataset else ""))
    if not len(history):
        curves.text(0.5, 0.5, "not trained yet", ha="center", va="center", transform=curves.transAxes)

    # Each image shows what one hidden neuron weighs each pixel by: red
    # pixels push it on, blue ones off. One colour scale per neuron.
    for i in range(n):
        ax = figure.add_subplot(grid[i // columns, 1 + i % columns])
        limit = np.abs(W[i]).max() or 1.0
        ax.imshow(W[i].reshape(28, 28), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_xticks([])
        ax.set_yticks([])
    if n:
        figure.suptitle(f"first-layer weights of {n} of {len(W)} neurons (red: excites, blue: inhibits)", x=0.72)

    with atomic_write(path) as f:
        figure.savefig(f, format="png", dpi=100)
