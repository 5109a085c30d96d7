"""Saved models: exact round trips, atomic writes, and clear refusals of bad files."""

import os
import zipfile

import numpy as np
import pytest
from helpers import assert_same_bits, assert_trainers_agree

from fastmlp import ModelFileError, ReferenceTrainer, StepDecay, Trainer
from fastmlp import model_file


@pytest.fixture
def trained(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (60, 7)), rng.integers(0, 3, 60)
    t = Trainer((7, 5, 3), seed=1, dtype="float32", activation="relu", learning_rate=0.2)
    t.fit(X, y, 3, validation_data=(X, y))
    t.dataset = "toy"
    path = tmp_path / "model.npz"
    t.save(path)
    return t, X, path


@pytest.mark.parametrize("cls", [Trainer, ReferenceTrainer])
def test_round_trip_is_exact(trained, cls):
    t, X, path = trained
    u = cls.load(path)
    assert (u.layer_sizes, u.activation, u.dtype, u.learning_rate, u.batch_size) == (
        t.layer_sizes, t.activation, t.dtype, t.learning_rate, t.batch_size)
    assert_trainers_agree(u, t)
    assert_same_bits(u.forward(X), t.forward(X))
    assert u.history.as_dicts() == t.history.as_dicts() and u.dataset == "toy"


def test_untrained_and_unvalidated_histories_round_trip(tmp_path):
    t = ReferenceTrainer((3, 2), seed=0)
    t.save(tmp_path / "a.npz")
    assert len(Trainer.load(tmp_path / "a.npz").history) == 0
    X, y = np.eye(3), np.array([0, 1, 1])
    t.fit(X, y, 2)
    t.save(tmp_path / "b.npz")
    assert Trainer.load(tmp_path / "b.npz").history.validation_accuracy == [None, None]


def test_the_file_is_plain_npz_without_pickles(trained):
    _, _, path = trained
    with np.load(path, allow_pickle=False) as archive:
        assert str(archive["format"]) == "fastmlp-model" and int(archive["format_version"]) == 2
        assert archive["weights_0"].shape == (5, 7) and archive["weights_0"].dtype == np.float32
        assert all(archive[k].dtype != object for k in archive.files)


def test_a_failed_save_leaves_the_old_file_whole(trained, monkeypatch):
    t, _, path = trained
    before = path.read_bytes()

    def broken(file, **arrays):
        file.write(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(model_file.np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        t.save(path)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["model.npz"]


def rewrite(path, **changes):
    with np.load(path) as archive:
        content = {k: archive[k] for k in archive.files}
    for key, value in changes.items():
        if value is None:
            del content[key]
        else:
            content[key] = value
    np.savez(path, **content)


BAD = [
    (dict(format=np.array("something-else")), "not a fastmlp model file"),
    (dict(format_version=np.array(5)), "format version 5"),
    (dict(weights_1=None), "no 'weights_1'"),
    (dict(weights_0=np.zeros((5, 6), np.float32)), r"'weights_0' is float32 \(5, 6\); expected float32 \(5, 7\)"),
    (dict(biases_1=np.zeros(3, np.float64)), r"'biases_1' is float64 \(3,\); expected float32"),
    (dict(biases_0=np.full(5, np.nan, np.float32)), "NaN or infinite"),
    (dict(layer_sizes=np.array([7])), "bad layer_sizes"),
    (dict(activation=np.array("tanhh")), "activation must be one of"),
    (dict(dtype=np.array("float16")), "dtype must be"),
    (dict(history_seconds=np.zeros(2)), "history does not hold 3 epochs"),
    (dict(activation=np.array([1, 2], dtype=object)), "not a readable .npz model file"),
    (dict(learning_rate=np.array([0.1, 0.2])), "'learning_rate' is not a single value"),
    (dict(activation=np.array(["relu", "relu"])), "'activation' is not a single value"),
    (dict(dataset=np.array(3.0)), "'dataset' is not a single value of the right type"),
    (dict(weights_0=np.float32(1)), r"'weights_0' is float32 \(\); expected"),
]


@pytest.mark.parametrize("changes, message", BAD)
def test_bad_contents_are_refused(trained, changes, message):
    _, _, path = trained
    rewrite(path, **changes)
    with pytest.raises(ModelFileError, match=message):
        Trainer.load(path)


def test_damaged_files_are_refused(trained, tmp_path):
    _, _, path = trained
    data = path.read_bytes()
    cases = {
        "missing.npz": None,
        "truncated.npz": data[: len(data) // 2],
        "noise.npz": bytes(range(256)) * 10,
        "empty.npz": b"",
    }
    for name, content in cases.items():
        target = tmp_path / name
        if content is not None:
            target.write_bytes(content)
        with pytest.raises(ModelFileError, match=name):
            Trainer.load(target)
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(ModelFileError, match="array.npy: a single .npy array"):
        Trainer.load(tmp_path / "array.npy")
    with pytest.raises(ModelFileError, match="a folder, not a model file"):
        Trainer.load(tmp_path)
    with zipfile.ZipFile(tmp_path / "odd.npz", "w") as archive:  # a member that is no .npy
        archive.writestr("format.txt", "fastmlp-model")
    with pytest.raises(ModelFileError, match="odd.npz: not a fastmlp model file"):
        Trainer.load(tmp_path / "odd.npz")
    # A zip member with a flipped byte fails its CRC.
    damaged = bytearray(data)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("weights_0.npy")
    damaged[info.header_offset + 100] ^= 0xFF
    (tmp_path / "crc.npz").write_bytes(bytes(damaged))
    with pytest.raises(ModelFileError, match="crc.npz"):
        Trainer.load(tmp_path / "crc.npz")


def test_version_1_files_still_load(trained, tmp_path):
    """Files from before the training state was saved: same model, fresh generator, default options."""
    t, X, path = trained
    rewrite(path, format_version=np.array(1), cost=None, l2=None, momentum=None, init=None, fma=None, generator=None,
            seed=None)
    u = Trainer.load(path)
    assert (u.cost, u.l2, u.momentum, u.init, u.schedule, u.fma) == ("quadratic", 0.0, 0.0, "standard", None, False)
    assert_same_bits(u.forward(X), t.forward(X))


@pytest.mark.parametrize("changes, message", [
    (dict(generator=np.array("{not json")), "'generator' is not a generator state"),
    (dict(generator=np.array('{"bit_generator": "MT19937"}')), "m.npz: "),
    (dict(schedule=np.array([1.5, 0.5])), "'schedule' is not a step decay"),
    (dict(schedule=np.array([2.0, 7.0])), "factor must lie in"),
    (dict(cost=np.array("hinge")), "cost must be one of"),
    (dict(momentum=np.array(1.5)), "momentum must be finite"),
    (dict(fma=np.array(1)), "'fma' is not a single value of the right type"),
    (dict(fma=np.array("True")), "'fma' is not a single value of the right type"),
    (dict(fma=np.array([True, True])), "'fma' is not a single value of the right type"),
    (dict(format_version=np.array(3), fma=None), "not a complete fastmlp model \\(no 'fma'\\)"),
    # Versions say the contract: an older fastmlp must refuse a fused model, not run it unfused.
    (dict(fma=np.array(True)), "a model of the fused contract in format version 2"),
    (dict(format_version=np.array(3), fma=np.array(False)), "a model of the default contract in format version 3"),
])
def test_bad_training_state_is_refused(tmp_path, changes, message):
    t = Trainer((3, 2), momentum=0.5, schedule=StepDecay(2, 0.5), seed=0)
    path = tmp_path / "m.npz"
    t.save(path)
    rewrite(path, **changes)
    with pytest.raises(ModelFileError, match=message):
        Trainer.load(path)


def test_velocities_must_be_there_with_momentum(tmp_path):
    t = Trainer((3, 2), momentum=0.5, seed=0)
    path = tmp_path / "m.npz"
    t.save(path)
    rewrite(path, velocity_weights_0=None)
    with pytest.raises(ModelFileError, match="no 'velocity_weights_0'"):
        Trainer.load(path)


@pytest.mark.parametrize("cls", [Trainer, ReferenceTrainer])
def test_the_contract_round_trips(tmp_path, cls):
    """fma is saved as a bool; a fused model is format version 3, so that an older fastmlp refuses it."""
    for fma, version in ((False, 2), (True, 3)):
        path = tmp_path / f"{fma}.npz"
        cls((3, 2), seed=0, fma=fma).save(path)
        with np.load(path, allow_pickle=False) as archive:
            assert archive["fma"].dtype == np.bool_ and archive["fma"].shape == () and bool(archive["fma"]) is fma
            assert int(archive["format_version"]) == version
        assert cls.load(path).fma is fma


@pytest.mark.parametrize("cls", [Trainer, ReferenceTrainer])
@pytest.mark.parametrize("fma", [False, True])
def test_a_named_output_activation_round_trips_in_version_4(tmp_path, cls, fma):
    """An output layer other than the cost's own is saved, in format version 4 (which an older
    fastmlp refuses rather than predict with the wrong output layer); the cost's own is not."""
    X = np.random.default_rng(0).uniform(-1, 1, (20, 3))
    for output, version in ((None, 3 if fma else 2), ("identity", 4), ("tanh", 4)):
        path = tmp_path / f"{output}.npz"
        t = cls((3, 4, 2), activation="relu", output_activation=output, seed=0, fma=fma)
        t.fit(X, X[:, :2] * 5, 2)
        t.save(path)
        with np.load(path, allow_pickle=False) as archive:
            assert int(archive["format_version"]) == version
            assert ("output_activation" in archive.files) == (output is not None)
        u = cls.load(path)
        assert u.output_activation == t.output_activation and u.fma is fma
        assert_same_bits(u.forward(X), t.forward(X))


@pytest.mark.parametrize("cls", [Trainer, ReferenceTrainer])
def test_adam_and_nesterov_models_are_version_4_with_their_state(tmp_path, cls):
    X = np.random.default_rng(0).uniform(-1, 1, (20, 3))
    for kwargs, names in ((dict(momentum=0.5, nesterov=True), ["velocity_weights_0"]),
                          (dict(optimizer="adam", betas=(0.8, 0.9), eps=1e-4), ["first_moment_weights_0",
                           "second_moment_biases_1", "adam_powers", "betas", "eps"])):
        path = tmp_path / "m.npz"
        t = cls((3, 4, 2), seed=0, learning_rate=0.01, **kwargs)
        t.fit(X, X[:, :2], 2)
        t.save(path)
        with np.load(path, allow_pickle=False) as archive:
            assert int(archive["format_version"]) == 4 and all(name in archive.files for name in names)
        u = cls.load(path)
        assert repr(u) == repr(t)
        assert np.array_equal(u._adam_powers, t._adam_powers)
        for (a, b), (c, d) in zip(u._slots(), t._slots()):
            for p, q in zip(a + b, c + d):
                assert_same_bits(p, q)


@pytest.mark.parametrize("changes, message", [
    (dict(format_version=np.array(2)), "'optimizer' in format version 2: it needs version 4"),
    (dict(adam_powers=np.array([0.5, 1.5])), "'adam_powers' is not a pair of powers in \\[0, 1\\]"),
    (dict(adam_powers=None), "no 'adam_powers'"),
    (dict(second_moment_weights_0=None), "no 'second_moment_weights_0'"),
    (dict(betas=np.array([0.9, 1.0])), "betas\\[1\\] must be finite"),
])
def test_bad_adam_state_is_refused(tmp_path, changes, message):
    path = tmp_path / "m.npz"
    Trainer((3, 2), optimizer="adam", seed=0).save(path)
    rewrite(path, **changes)
    with pytest.raises(ModelFileError, match=message):
        Trainer.load(path)


def test_an_output_activation_needs_version_4(tmp_path):
    path = tmp_path / "m.npz"
    Trainer((3, 2), output_activation="identity", seed=0).save(path)
    rewrite(path, format_version=np.array(2))
    with pytest.raises(ModelFileError, match="'output_activation' in format version 2"):
        Trainer.load(path)
    rewrite(path, format_version=np.array(4), output_activation=np.array("softmax"))
    with pytest.raises(ModelFileError, match="output_activation must be one of"):
        Trainer.load(path)


def test_a_file_from_before_fma_loads_with_the_default_contract(trained):
    t, X, path = trained
    rewrite(path, fma=None)
    u = Trainer.load(path)
    assert u.fma is False
    assert_trainers_agree(u, t)
    assert_same_bits(u.forward(X), t.forward(X))


@pytest.mark.parametrize("cls", [Trainer, ReferenceTrainer])
def test_a_fused_model_trains_on_with_its_contract(tmp_path, cls):
    """2 epochs, saved, loaded and 3 more: the bits of 5 fused epochs in one go (and not of the default contract)."""
    rng = np.random.default_rng(3)
    X, y = rng.uniform(0, 1, (40, 6)), rng.integers(0, 3, 40)
    settings = dict(seed=2, fma=True, momentum=0.5, learning_rate=0.5)
    t = cls((6, 5, 3), **settings)
    t.fit(X, y, 2)
    t.save(tmp_path / "m.npz")
    u = cls.load(tmp_path / "m.npz")
    assert u.fma is True
    assert_same_bits(u.forward(X), t.forward(X))
    u.fit(X, y, 3)
    whole = cls((6, 5, 3), **settings)
    whole.fit(X, y, 5)
    assert_trainers_agree(u, whole)
    plain = cls((6, 5, 3), **{**settings, "fma": False})
    plain.fit(X, y, 5)
    assert not all(np.array_equal(a, b) for a, b in zip(plain.weights, whole.weights))
