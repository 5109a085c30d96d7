"""The fastmlp command: training output, saved models, pictures, and one-line errors."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import has_mnist, mnist_dir

from fastmlp import Trainer, cli


@pytest.fixture
def small_data(monkeypatch):
    """MNIST-shaped random data in place of the real sets, so each command takes milliseconds."""
    rng = np.random.default_rng(0)
    data = (
        (rng.uniform(0, 1, (300, 784)), rng.integers(0, 10, 300).astype(np.uint8)),
        (rng.uniform(0, 1, (50, 784)), rng.integers(0, 10, 50).astype(np.uint8)),
    )
    calls = []

    def load(dataset, data_dir, dtype):
        calls.append((dataset, data_dir, dtype))
        return tuple((X.astype(dtype), y) for X, y in data)

    monkeypatch.setattr(cli, "_load", load)
    return data, calls


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_prints_each_epoch_and_saves(small_data, capsys, tmp_path):
    data, calls = small_data
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--epochs", "3", "--seed", "4", "--layers", "784,12,10",
                         "--lr", "0.5", "--batch-size", "20", "--save", str(model))
    assert code == 0, err
    assert calls == [("mnist", None, "float64")]
    lines = out.splitlines()
    assert "seed 4" in lines[0] and "784-12-10 sigmoid network, quadratic cost, η = 0.5, batch 20" in lines[1]
    assert [line.split()[:2] for line in lines[2:5]] == [["epoch", "1"], ["epoch", "2"], ["epoch", "3"]]
    assert "test accuracy" in lines[2] and "3 epochs in" in lines[5]
    # The saved model is the one trained: same seed and settings give the same bits.
    expected = Trainer((784, 12, 10), seed=4, learning_rate=0.5, batch_size=20)
    expected.fit(*data[0], 3)
    saved = Trainer.load(model)
    assert all(np.array_equal(a, b) for a, b in zip(saved.weights, expected.weights))
    assert saved.dataset == "mnist" and len(saved.history) == 3


def test_json_lines(small_data, capsys):
    code, out, _ = run(capsys, "train", "--epochs", "2", "--json", "--quiet", "--layers", "784,10")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert all({"epoch", "train_cost", "test_accuracy", "seconds"} <= r.keys() for r in records)


def test_quiet_prints_only_the_summary(small_data, capsys):
    code, out, err = run(capsys, "train", "--epochs", "2", "--quiet", "--layers", "784,10", "--dtype", "float32")
    assert code == 0 and err == ""
    assert len(out.splitlines()) == 1 and out.startswith("2 epochs in")


def test_evaluate_and_plot(small_data, capsys, tmp_path):
    model, picture = tmp_path / "m.npz", tmp_path / "m.png"
    assert run(capsys, "train", "--epochs", "2", "--layers", "784,9,10", "--save", str(model), "--quiet")[0] == 0
    code, out, _ = run(capsys, "evaluate", str(model), "--json")
    assert code == 0
    result = json.loads(out)
    confusion = np.array(result["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == 50
    assert result["test_accuracy"] == np.trace(confusion) / 50
    code, out, _ = run(capsys, "evaluate", str(model))
    assert "confusion matrix" in out and len(out.splitlines()) == 14
    pytest.importorskip("matplotlib")
    code, out, _ = run(capsys, "plot", str(model), str(picture))
    assert code == 0 and picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "m.png"]


def test_train_plot(small_data, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    picture = tmp_path / "curves.png"
    code, _, _ = run(capsys, "train", "--epochs", "2", "--layers", "784,10", "--plot", str(picture), "--quiet")
    assert code == 0 and picture.stat().st_size > 1000


def test_plot_without_matplotlib_says_how_to_get_it(small_data, capsys, tmp_path, monkeypatch):
    model = tmp_path / "m.npz"
    run(capsys, "train", "--epochs", "1", "--layers", "784,10", "--save", str(model), "--quiet")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code, _, err = run(capsys, "plot", str(model), str(tmp_path / "x.png"))
    assert code == 1 and "pip install matplotlib" in err and len(err.splitlines()) == 1


MISTAKES = [
    (["train", "--layers", "784,x"], 2, "expected comma-separated integers"),
    (["train", "--layers", "784"], 2, "at least two sizes"),
    (["train", "--lr", "-1"], 2, "expected a finite number > 0"),
    (["train", "--lr", "nan"], 2, "expected a finite number > 0"),
    (["train", "--epochs", "-2"], 2, "expected an integer >= 0"),
    (["train", "--batch-size", "0"], 2, "expected a finite number > 0"),
    (["train", "--dataset", "cifar"], 2, "invalid choice"),
    (["train", "--activation", "tanhh"], 2, "invalid choice"),
    (["train", "--layers", "700,10"], 1, "--layers must start with 784 inputs and end with 10 outputs"),
    (["train", "--threads", "1000"], 1, "threads must be <= 256"),
    (["frobnicate"], 2, "invalid choice"),
    ([], 2, "required"),
    (["evaluate", "no-such-model.npz"], 1, "no-such-model.npz: no such model file"),
    (["train", "--save", "no/such/folder/m.npz"], 1, "--save no/such/folder/m.npz: no folder"),
    (["train", "--save", "."], 1, "--save .: is a folder"),
    (["train", "--plot", "curves.jpg"], 1, "--plot curves.jpg: the file name should end in .png"),
    (["plot", "m.npz", "m.npz"], 1, "OUT.png m.npz: the file name should end in .png"),
    (["train", "--layers", "784,100000000000,10"], 1, "not enough memory"),
    (["train", "--cost", "mse"], 2, "invalid choice: 'mse'"),
    (["train", "--l2", "-1"], 2, "expected a finite number >= 0"),
    (["train", "--momentum", "1"], 2, "expected a number < 1 and >= 0"),
    (["train", "--init", "he"], 2, "invalid choice"),
    (["train", "--optimizer", "rmsprop"], 2, "invalid choice: 'rmsprop'"),
    (["train", "--betas", "0.9"], 2, "expected B1,B2 such as 0.9,0.999"),
    (["train", "--betas", "0.9,1"], 2, "expected a number < 1 and >= 0"),
    (["train", "--nesterov"], 1, "--nesterov needs --momentum > 0"),
    (["train", "--optimizer", "adam", "--momentum", "0.9"], 1, "--momentum goes with --optimizer sgd"),
    (["train", "--cost", "log_likelihood", "--output-activation", "sigmoid"], 1,
     "cost='log_likelihood' needs output_activation='softmax'"),
    (["train", "--dropout", "1"], 2, "expected a number < 1 and >= 0"),
    (["train", "--dropout", "0.5", "--layers", "784,10"], 1, "dropout acts on hidden layers"),
    (["train", "--output-activation", "softmax"], 1, "output_activation must be one of"),
    (["train", "--output-activation", "linear"], 2, "invalid choice: 'linear'"),
    (["train", "--cost", "cross_entropy", "--output-activation", "identity"], 1,
     "cost='cross_entropy' needs output_activation='sigmoid'"),
    (["train", "--lr-decay", "10"], 2, "expected EVERY,FACTOR such as 10,0.5"),
    (["train", "--lr-decay", "0,0.5"], 2, "every must be >= 1"),
]


@pytest.mark.parametrize("argv, code, message", MISTAKES)
def test_mistakes_get_one_line(small_data, capsys, argv, code, message):
    _, calls = small_data
    with pytest.raises(SystemExit) if code == 2 else _no_raise() as exit_info:
        result = cli.main(argv)
    _, err = capsys.readouterr()
    assert (exit_info.value.code if code == 2 else result) == code
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert calls == []  # found out before loading any data


def test_an_l2_too_strong_for_the_data_gets_one_line(small_data, capsys, tmp_path):
    """The decay factor 1 − ηλ/n needs n, so this one is found after loading, before training."""
    code, out, err = run(capsys, "train", "--l2", "1000", "--epochs", "1", "--save", str(tmp_path / "m.npz"))
    assert code == 1 and "l2=1000.0 is too strong for learning_rate=3.0 and 300 examples" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "m.npz").exists()


def test_json_without_quiet_is_pure_json(small_data, capsys):
    code, out, err = run(capsys, "train", "--epochs", "2", "--json", "--layers", "784,10", "--seed", "9")
    assert code == 0 and err == ""
    assert [json.loads(line)["seed"] for line in out.splitlines()] == [9, 9]


def test_a_model_trained_on_other_data(small_data, capsys, tmp_path):
    t = Trainer((784, 10))
    t.dataset = "my-digits"
    t.save(tmp_path / "m.npz")
    code, _, err = run(capsys, "evaluate", str(tmp_path / "m.npz"))
    assert code == 1 and "was trained on 'my-digits'; name a data set with --dataset" in err


def test_a_corrupt_model_file(capsys, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    code, _, err = run(capsys, "evaluate", str(bad))
    assert code == 1 and "bad.npz: not a readable .npz model file" in err


class _no_raise:
    value = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.slow
def test_the_console_script_on_real_mnist(tmp_path):
    """The installed `fastmlp` command, end to end: one epoch of the classic network."""
    if not has_mnist(mnist_dir()):
        pytest.skip(f"no MNIST IDX files in {mnist_dir()}")
    command = shutil.which("fastmlp") or pytest.skip("the fastmlp console script is not on PATH")
    model = tmp_path / "classic.npz"
    done = subprocess.run(
        [command, "train", "--epochs", "1", "--seed", "0", "--json", "--data-dir", str(mnist_dir()), "--save", str(model)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.splitlines()[0])
    assert record["epoch"] == 1 and record["test_accuracy"] > 0.85
    done = subprocess.run([sys.executable, "-m", "fastmlp", "evaluate", str(model), "--data-dir", str(mnist_dir()), "--json"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["test_accuracy"] == record["test_accuracy"]


@pytest.mark.parametrize("interrupt_in_epoch", [1, 3])
def test_ctrl_c_keeps_the_completed_epochs(small_data, capsys, tmp_path, monkeypatch, interrupt_in_epoch):
    """Ctrl-C in epoch 3 keeps and saves epochs 1 and 2; in epoch 1, nothing is written."""
    data, _ = small_data
    model = tmp_path / "m.npz"
    real = Trainer._train_slice

    def interrupt(self, *args):
        if len(self.history) + 1 == interrupt_in_epoch:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(Trainer, "_train_slice", interrupt)
    code, out, err = run(capsys, "train", "--epochs", "5", "--seed", "2", "--layers", "784,12,10",
                         "--save", str(model), "--quiet")
    assert code == 130
    kept = interrupt_in_epoch - 1
    if kept:
        assert f"keeps its {kept} completed epochs, saved to {model}" in err
        monkeypatch.undo()
        expected = Trainer((784, 12, 10), seed=2)
        expected.fit(*data[0], kept)
        saved = Trainer.load(model)
        assert all(np.array_equal(a, b) for a, b in zip(saved.weights, expected.weights))
        assert len(saved.history) == kept
    else:
        assert "keeps its 0 completed epochs; nothing was written" in err
        assert not model.exists()
    assert not [p for p in os.listdir(tmp_path) if p != "m.npz"]


def test_train_with_the_improved_options(small_data, capsys, tmp_path):
    """--cost, --l2, --momentum, --init and --lr-decay reach the trainer and the saved model."""
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--epochs", "2", "--seed", "1", "--layers", "784,20,10",
                         "--cost", "log_likelihood", "--l2", "2.5", "--momentum", "0.5", "--init", "scaled",
                         "--lr", "0.1", "--lr-decay", "1,0.5", "--activation", "tanh", "--save", str(model))
    assert code == 0, err
    assert ("784-20-10 tanh network, log-likelihood cost, L2 λ = 2.5, momentum 0.5, scaled initial weights, "
            "η ×0.5 every epoch, η = 0.1") in out.splitlines()[1]
    t = Trainer.load(model)
    assert (t.cost, t.l2, t.momentum, t.init, t.activation) == ("log_likelihood", 2.5, 0.5, "scaled", "tanh")
    assert (t.schedule.every, t.schedule.factor) == (1, 0.5)
    # The same settings through the API give the same bits.
    (X, y), _ = small_data[0]
    u = Trainer((784, 20, 10), activation="tanh", cost="log_likelihood", l2=2.5, momentum=0.5, init="scaled",
                learning_rate=0.1, schedule=__import__("fastmlp").StepDecay(1, 0.5), seed=1)
    u.fit(X, y, 2)
    assert all(np.array_equal(a, b) for a, b in zip(t.weights + t.biases, u.weights + u.biases))


def test_output_activation_reaches_the_trainer_the_summary_and_the_saved_model(small_data, capsys, tmp_path):
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--output-activation", "identity", "--activation", "relu", "--lr", "0.01",
                         "--epochs", "1", "--layers", "784,12,10", "--seed", "2", "--save", str(model))
    assert code == 0, err
    assert "784-12-10 relu network, quadratic cost over identity outputs, η = 0.01" in out.splitlines()[1]
    t = Trainer.load(model)
    assert t.output_activation == "identity"
    (X, y), _ = small_data[0]
    u = Trainer((784, 12, 10), activation="relu", output_activation="identity", learning_rate=0.01, seed=2)
    u.fit(X, y, 1)
    assert all(np.array_equal(a, b) for a, b in zip(t.weights + t.biases, u.weights + u.biases))


@pytest.mark.parametrize("options, summary, settings", [
    (["--optimizer", "adam", "--betas", "0.8,0.99", "--eps", "1e-6", "--lr", "0.001"],
     "quadratic cost, Adam β = 0.8, 0.99, ε = 1e-06, η = 0.001", dict(optimizer="adam", betas=(0.8, 0.99), eps=1e-6)),
    (["--momentum", "0.9", "--nesterov", "--lr", "0.5"], "quadratic cost, Nesterov momentum 0.9, η = 0.5",
     dict(momentum=0.9, nesterov=True)),
    (["--dropout", "0.25", "--lr", "0.5"], "quadratic cost, dropout 0.25, η = 0.5", dict(dropout=0.25)),
])
def test_the_optimizers_reach_the_trainer_the_summary_and_the_saved_model(small_data, capsys, tmp_path, options,
                                                                          summary, settings):
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", *options, "--epochs", "1", "--layers", "784,12,10", "--seed", "2",
                         "--save", str(model))
    assert code == 0, err
    assert summary in out.splitlines()[1]
    t = Trainer.load(model)
    assert all(getattr(t, name) == value for name, value in settings.items())
    (X, y), _ = small_data[0]
    u = Trainer((784, 12, 10), learning_rate=float(options[options.index("--lr") + 1]), seed=2, **settings)
    u.fit(X, y, 1)
    assert all(np.array_equal(a, b) for a, b in zip(t.weights + t.biases, u.weights + u.biases))


def test_a_stalled_training_is_reported_in_one_line(small_data, capsys):
    code, out, err = run(capsys, "train", "--layers", "784,12,10", "--activation", "relu", "--cost", "cross_entropy",
                         "--lr", "500", "--epochs", "3", "--seed", "1")
    assert code == 0, err
    lines = [line for line in err.splitlines() if "stalled" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: training has stalled: in epoch ")
    assert "hidden layer 1 (12 relu units) was inactive" in lines[0] and "cli.py" not in err


def test_fma_reaches_the_trainer_the_summary_and_the_saved_model(small_data, capsys, tmp_path):
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--fma", "--epochs", "0", "--layers", "784,10", "--save", str(model))
    assert code == 0, err
    assert "batch 10, float64, fused multiply-adds, 1 thread(s)" in out.splitlines()[1]
    assert Trainer.load(model).fma is True
    code, out, err = run(capsys, "train", "--epochs", "0", "--layers", "784,10", "--save", str(model))
    assert code == 0 and "fused" not in out and Trainer.load(model).fma is False


def test_fma_in_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--help"])
    out, _ = capsys.readouterr()
    assert info.value.code == 0 and "--fma" in out and "fuse the sums' and the step's" in out


def test_train_with_fma(small_data, capsys, tmp_path):
    """--fma trains as Trainer(fma=True) does, and evaluate names the contract of the saved model."""
    data, _ = small_data
    model = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--fma", "--epochs", "2", "--seed", "3", "--layers", "784,12,10",
                         "--lr", "0.5", "--momentum", "0.5", "--save", str(model), "--quiet")
    assert code == 0, err
    expected = Trainer((784, 12, 10), seed=3, learning_rate=0.5, momentum=0.5, fma=True)
    expected.fit(*data[0], 2)
    saved = Trainer.load(model)
    assert saved.fma is True
    assert all(np.array_equal(a, b) for a, b in zip(saved.weights + saved.biases, expected.weights + expected.biases))
    code, out, err = run(capsys, "evaluate", str(model))
    assert code == 0, err
    assert "784-12-10 sigmoid network, quadratic cost, fused multiply-adds, 2 epochs trained" in out.splitlines()[0]
