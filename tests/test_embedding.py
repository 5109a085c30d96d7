"""Safe to embed: interrupting, threads, absurd sizes, files that survive a killed process."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fastmlp
from fastmlp import ReferenceTrainer, Trainer
from helpers import assert_same_bits, assert_trainers_agree

TRAINERS = [Trainer, ReferenceTrainer]


def _data(n=300, n_in=20, n_out=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, n_out, n)


# -- Ctrl-C ---------------------------------------------------------------


# Narrow networks go through the kernels in blocks of examples; wide ones a layer at a time,
# their weights in a packed copy from an epoch's first slice to its last.
NETWORKS = [(20, 7, 4), (20, 70, 4)]


@pytest.mark.parametrize("sizes", NETWORKS)
@pytest.mark.parametrize("cls", TRAINERS)
def test_an_interrupted_epoch_leaves_no_trace(cls, sizes, monkeypatch):
    """KeyboardInterrupt in the middle of an epoch, after some slices have changed the
    parameters: the trainer is as after the last whole epoch, generator included."""
    X, y = _data()
    kwargs = dict(batch_size=3, seed=4, momentum=0.5)
    interrupted = cls(sizes, **kwargs)
    interrupted.fit(X, y, 1)
    per_example = 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    monkeypatch.setattr(fastmlp._base, "SLICE_WORK", per_example * 3 * 10)  # 10 mini-batches a slice
    calls = []
    real = interrupted._train_slice

    def slice_then_interrupt(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    interrupted._train_slice = slice_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(X, y, 2)
    del interrupted._train_slice
    assert len(calls) == 3 and len(interrupted.history) == 1

    straight = cls(sizes, **kwargs)
    straight.fit(X, y, 1)
    assert_trainers_agree(interrupted, straight, "after the interrupt")
    # Going on gives what an uninterrupted run gives.
    interrupted.fit(X, y, 2)
    straight.fit(X, y, 2)
    assert_trainers_agree(interrupted, straight, "after resuming")
    assert interrupted.history.train_cost == straight.history.train_cost


@pytest.mark.parametrize("cls", TRAINERS)
def test_an_interrupt_during_validation_leaves_no_trace(cls, monkeypatch):
    """Ctrl-C after the epoch's arithmetic but before it is recorded: back to the last whole epoch."""
    X, y = _data()
    interrupted = cls((20, 7, 4), batch_size=3, seed=4)
    interrupted.fit(X, y, 1, validation_data=(X, y))
    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cls, "_accuracy", interrupt)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(X, y, 1, validation_data=(X, y))
    monkeypatch.undo()
    straight = cls((20, 7, 4), batch_size=3, seed=4)
    straight.fit(X, y, 1, validation_data=(X, y))
    assert len(interrupted.history) == 1
    assert_trainers_agree(interrupted, straight, "after the interrupt")
    interrupted.fit(X, y, 1)
    straight.fit(X, y, 1)
    assert_trainers_agree(interrupted, straight, "after resuming")


@pytest.mark.parametrize("sizes", NETWORKS)
def test_sliced_epochs_give_the_same_bits_as_whole_ones(sizes, monkeypatch):
    X, y = _data(n=203)
    kwargs = dict(batch_size=7, seed=1, momentum=0.5, threads=2)
    whole = Trainer(sizes, **kwargs)
    whole.fit(X, y, 2)
    monkeypatch.setattr(fastmlp._base, "SLICE_WORK", 1)  # one mini-batch a slice
    sliced = Trainer(sizes, **kwargs)
    sliced.fit(X, y, 2)
    assert_trainers_agree(sliced, whole)
    assert_same_bits(np.array(sliced.history.train_cost), np.array(whole.history.train_cost), "costs")


def test_ctrl_c_stops_a_long_epoch_promptly():
    """A real SIGINT 0.3 s into an epoch of several seconds ends fit within about a second."""
    rng = np.random.default_rng(0)
    X = rng.random((6000, 784))
    y = rng.integers(0, 10, len(X))
    # An epoch: 6000 × 1.6 M multiply-adds at batch size 1, several seconds;
    # a slice: 0.1 G, a few hundredths of a second.
    trainer = Trainer((784, 1024, 10), batch_size=1, seed=0)
    start_weights = [w.copy() for w in trainer.weights]
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(X, y, 50)
    elapsed = time.perf_counter() - start
    timer.join()
    assert elapsed < 1.5, f"fit returned {elapsed:.1f} s after it started, the interrupt came at 0.3 s"
    assert len(trainer.history) == 0
    for before, after in zip(start_weights, trainer.weights):
        assert_same_bits(after, before, "weights after an interrupted first epoch")


# -- Threads ----------------------------------------------------------------


def test_trainers_in_two_threads_give_their_own_results():
    X, y = _data(n=2000, n_in=50, n_out=10)
    alone = [Trainer((50, 30, 10), batch_size=b, seed=s, threads=t) for b, s, t in ((10, 1, 1), (100, 2, 2))]
    for trainer in alone:
        trainer.fit(X, y, 3)
    together = [Trainer((50, 30, 10), batch_size=b, seed=s, threads=t) for b, s, t in ((10, 1, 1), (100, 2, 2))]
    workers = [threading.Thread(target=t.fit, args=(X, y, 3)) for t in together]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for a, b in zip(together, alone):
        assert_trainers_agree(a, b, "concurrent")


def test_one_trainer_from_two_threads_is_serialised():
    """predict from another thread while fit runs waits for fit to finish, and sees its result."""
    X, y = _data(n=3000, n_in=50, n_out=10)
    trainer = Trainer((50, 40, 10), batch_size=5, seed=3)
    first_epoch_done = threading.Event()
    answer = {}

    def on_epoch(record):
        if record.epoch == 1:
            first_epoch_done.set()
            time.sleep(0.2)  # give the other thread time to try, while fit still holds the trainer

    def predict_meanwhile():
        if first_epoch_done.wait(timeout=60):
            answer["forward"] = trainer.forward(X)

    other = threading.Thread(target=predict_meanwhile, daemon=True)
    other.start()
    trainer.fit(X, y, 3, callbacks=on_epoch)
    other.join()
    assert_same_bits(answer["forward"], trainer.forward(X), "forward from another thread")


def test_a_callback_may_use_its_trainer():
    X, y = _data()
    trainer = Trainer((20, 5, 4), seed=0)
    seen = []
    trainer.fit(X, y, 2, callbacks=lambda record: seen.append(trainer.score(X, y)))
    assert len(seen) == 2


def test_trainers_pickle():
    import pickle

    X, y = _data()
    trainer = Trainer((20, 5, 4), seed=0)
    trainer.fit(X, y, 1)
    copy = pickle.loads(pickle.dumps(trainer))
    assert_trainers_agree(copy, trainer)
    copy.fit(X, y, 1)
    trainer.fit(X, y, 1)
    assert_trainers_agree(copy, trainer, "after one more epoch each")


# -- Absurd sizes -----------------------------------------------------------


@pytest.mark.parametrize("cls", TRAINERS)
@pytest.mark.parametrize("sizes", [(10**12, 10), (784, 10**7, 10**6), (10**40, 1)])
def test_absurd_sizes_are_refused_before_allocating(cls, sizes):
    with pytest.raises(MemoryError, match=r"layer_sizes .* more than this machine's memory"):
        cls(sizes)


# -- Files --------------------------------------------------------------------

_SAVE_FOREVER = """
import sys
from fastmlp import Trainer
path = sys.argv[1]
trainer = Trainer((1000, 2000, 10), seed=2)
print("saving", flush=True)
while True:
    trainer.save(path)
"""


def test_a_save_killed_midway_leaves_a_whole_file(tmp_path):
    """SIGKILL at several moments of repeated saves: the file is always one whole model,
    the one saved before or the one being saved."""
    path = tmp_path / "model.npz"
    first = Trainer((1000, 2000, 10), seed=1)
    first.save(path)
    second = Trainer((1000, 2000, 10), seed=2)
    for delay in (0.05, 0.13, 0.31):
        # Started outside the source tree, which holds fastmlp without its compiled kernels.
        child = subprocess.Popen([sys.executable, "-c", _SAVE_FOREVER, str(path)], stdout=subprocess.PIPE,
                                 text=True, cwd=tmp_path)
        assert child.stdout.readline().strip() == "saving"
        time.sleep(delay)
        child.kill()
        child.wait()
        child.stdout.close()
        loaded = Trainer.load(path)
        expected = first if np.array_equal(loaded.weights[0], first.weights[0]) else second
        assert_trainers_agree(loaded, expected, f"after a kill at {delay} s")
