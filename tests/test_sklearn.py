"""FastMLPClassifier and FastMLPRegressor: scikit-learn's conventions, its estimator checks, and its tools."""

import json
import math
import pickle
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO, assert_same_bits

pytest.importorskip(
    "sklearn", minversion="1.6", reason="scikit-learn >= 1.6 is not installed (pip install scikit-learn)"
)

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_blobs, make_friedman1  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402
from sklearn.utils.validation import check_is_fitted  # noqa: E402

from fastmlp import DivergenceError, StepDecay, Trainer  # noqa: E402
from fastmlp.sklearn import FastMLPClassifier, FastMLPRegressor  # noqa: E402


def network(model):
    """The trained parameters, for bit comparisons."""
    return [*model.trainer_.weights, *model.trainer_.biases]


def assert_same_model(a, b, X):
    for l, (p, q) in enumerate(zip(network(a), network(b))):
        assert_same_bits(p, q, f"parameter {l}")
    assert_same_bits(a.predict_proba(X), b.predict_proba(X), "predict_proba")
    assert a.loss_curve_ == b.loss_curve_


@pytest.fixture(scope="module")
def blobs():
    """Three well separated classes in 5 dimensions, already of order 1."""
    X, y = make_blobs(n_samples=150, n_features=5, centers=3, cluster_std=1.0, random_state=3)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


# -- scikit-learn's own checks, each its own test --------------------------

#: Every trainer feature at a value other than its default, early stopping and float32 included.
#: (Not threads: other tests check that they change no bit, and OpenMP threads that compete
#: for a busy 2-core machine make the many tiny fits here slow.)
EVERYTHING_ELSE = FastMLPClassifier(
    (20, 10),
    activation="tanh",
    cost="cross_entropy",
    learning_rate=0.2,
    batch_size=32,
    epochs=50,
    l2=1e-3,
    momentum=0.9,
    nesterov=True,
    dropout=0.2,
    init="standard",
    schedule=StepDecay(every=10),
    early_stopping=5,
    validation_fraction=0.2,
    dtype="float32",
    fma=True,
)


#: The regressor's, likewise, with Adam.
REGRESSOR_EVERYTHING_ELSE = FastMLPRegressor(
    (20, 10),
    activation="tanh",
    learning_rate=0.01,
    batch_size=16,
    epochs=40,
    l2=1e-3,
    momentum=0.0,
    optimizer="adam",
    betas=(0.8, 0.99),
    eps=1e-6,
    dropout=0.1,
    init="standard",
    schedule=StepDecay(every=10),
    early_stopping=5,
    validation_fraction=0.2,
    dtype="float32",
    fma=True,
)


@parametrize_with_checks([FastMLPClassifier(), EVERYTHING_ELSE, FastMLPRegressor(), REGRESSOR_EVERYTHING_ELSE])
def test_sklearn_check(estimator, check):
    check(estimator)


# -- scikit-learn's tools ---------------------------------------------------


def test_pipeline_with_scaler_learns_digits(digits):
    X_train, X_test, y_train, y_test = digits
    model = make_pipeline(StandardScaler(), FastMLPClassifier(random_state=0)).fit(X_train, y_train)
    assert model.score(X_test, y_test) > 0.95


def test_grid_search_in_two_processes_matches_one(digits):
    """GridSearchCV(n_jobs=2) pickles the estimator into joblib's worker processes; with an int
    random_state, the scores are the same as in one process, to the bit."""
    X_train, _, y_train, _ = digits
    X_train, y_train = X_train[:600] / 16, y_train[:600]
    grid = {"hidden_layer_sizes": [(16,), (32,)], "learning_rate": [0.05, 0.5]}
    searches = [
        GridSearchCV(FastMLPClassifier(epochs=10, random_state=0), grid, cv=3, n_jobs=n_jobs).fit(X_train, y_train)
        for n_jobs in (2, 1)
    ]
    two, one = (s.cv_results_["mean_test_score"] for s in searches)
    assert np.array_equal(two, one)
    assert searches[0].best_score_ > 0.85
    assert_same_model(searches[0].best_estimator_, searches[1].best_estimator_, X_train)


# -- labels -----------------------------------------------------------------


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["bird", "cat", "dog"]),
        np.array(["b", "a", "c"], dtype=object),
        np.array([-7, -1, 12]),
        np.array([-2.0, 0.0, 3.0]),
    ],
    ids=["str", "object", "negative-int", "float"],
)
def test_labels_round_trip_through_classes(blobs, labels):
    X, y = blobs
    model = FastMLPClassifier(random_state=0).fit(X, labels[y])
    sorted_labels = np.sort(labels)
    assert np.array_equal(model.classes_, sorted_labels) and model.classes_.dtype == labels.dtype
    predicted = model.predict(X)
    assert predicted.dtype == labels.dtype and set(predicted) <= set(labels)
    assert np.mean(predicted == labels[y]) > 0.9
    # Output neuron i stands for classes_[i]: the same network as with labels 0..2 in the same order.
    order = np.argsort(labels)
    relabelled = FastMLPClassifier(random_state=0).fit(X, np.argsort(order)[y])
    assert_same_bits(relabelled.predict_proba(X), model.predict_proba(X), "predict_proba")
    assert np.array_equal(model.classes_[np.argmax(relabelled.predict_proba(X), axis=1)], predicted)


def test_binary_and_boolean_labels(blobs):
    X, y = blobs
    for labels in (y == 1, np.where(y == 1, "yes", "no")):
        model = FastMLPClassifier(random_state=0).fit(X, labels)
        assert model.predict_proba(X).shape == (len(X), 2)
        assert model.trainer_.layer_sizes[-1] == 2
        assert model.score(X, labels) > 0.9


def test_one_class_is_refused(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match=r"y holds only one class \('only'\); a classifier needs .* at least 2"):
        FastMLPClassifier().fit(X, np.full(len(X), "only"))
    with pytest.raises(ValueError, match=r"classes holds only one class \(3\)"):
        FastMLPClassifier().partial_fit(X, np.full(len(X), 3), classes=[3])


# -- predict_proba ------------------------------------------------------------


COSTS = [
    dict(cost="log_likelihood"),
    dict(cost="log_likelihood", activation="relu", dtype="float32"),
    dict(cost="cross_entropy"),
    dict(cost="quadratic", learning_rate=1.0),
    dict(cost="quadratic", activation="tanh"),
    dict(cost="quadratic", output_activation="identity", learning_rate=0.05),
]


@pytest.mark.parametrize("params", COSTS, ids=lambda p: "-".join(map(str, p.values())))
def test_predict_proba_rows_sum_to_one_and_argmax_predicts(blobs, params):
    X, y = blobs
    model = FastMLPClassifier(random_state=0, **params).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3) and proba.dtype == np.dtype(params.get("dtype", "float64"))
    assert (proba >= 0).all() and (proba <= 1).all()
    assert np.allclose(proba.sum(axis=1), 1, rtol=0, atol=10 * np.finfo(proba.dtype).eps)
    assert np.array_equal(model.classes_[np.argmax(proba, axis=1)], model.predict(X))
    assert np.array_equal(np.log(proba), model.predict_log_proba(X))
    assert model.score(X, y) > 0.9


def test_predict_proba_is_the_softmax_output_for_log_likelihood(blobs):
    X, y = blobs
    model = FastMLPClassifier(random_state=0).fit(X, y)
    assert_same_bits(model.predict_proba(X), model.trainer_.forward(X), "softmax outputs")


def test_predict_proba_of_an_all_zero_output_row_is_uniform(blobs):
    X, y = blobs
    model = FastMLPClassifier(cost="quadratic", activation="relu", random_state=0).fit(X, y)
    model.trainer_.biases[-1][...] = -1e6  # every output neuron's weighted input < 0: relu gives 0
    assert (model.trainer_.forward(X) == 0).all()
    assert (model.predict_proba(X) == 1 / 3).all()
    assert (model.predict(X) == model.classes_[0]).all()


# -- partial_fit --------------------------------------------------------------


def test_partial_fit_needs_classes_first(blobs):
    X, y = blobs
    model = FastMLPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call to partial_fit"):
        model.partial_fit(X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    # The chunk need not hold every class; classes does.
    model.partial_fit(X[y != 2], y[y != 2], classes=[2, 0, 1])
    assert list(model.classes_) == [0, 1, 2] and model.trainer_.layer_sizes[-1] == 3
    assert model.n_iter_ == 1 and len(model.loss_curve_) == 1
    model.partial_fit(X, y)
    model.partial_fit(X, y, classes=np.array([0, 1, 2]))
    assert model.n_iter_ == 3 and len(model.loss_curve_) == 3


def test_partial_fit_refuses_labels_and_classes_it_was_not_built_with(blobs):
    X, y = blobs
    model = FastMLPClassifier(random_state=0)
    with pytest.raises(ValueError, match=r"not in classes_"):
        model.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    model.partial_fit(X, y, classes=[0, 1, 2])
    before = [p.copy() for p in network(model)]
    with pytest.raises(ValueError, match=r"not in classes_.*\[5\]"):
        model.partial_fit(X[:3], np.array([0, 5, 1]))
    with pytest.raises(ValueError, match=r"not in classes_.*'x'"):
        model.partial_fit(X[:2], np.array(["x", "x"]))
    with pytest.raises(ValueError, match="differs from the classes the network was built with"):
        model.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="X has 4 features, but FastMLPClassifier is expecting 5"):
        model.partial_fit(X[:, :4], y)
    # A refused call trains nothing.
    assert all(np.array_equal(p, q) for p, q in zip(before, network(model)))
    assert model.n_iter_ == 1


@pytest.mark.parametrize(
    "params", [{}, dict(momentum=0.9, l2=0.1, schedule=StepDecay(every=1))], ids=["plain", "momentum-l2-schedule"]
)
def test_partial_fit_epochs_are_fit_epochs(blobs, params):
    """Three partial_fit calls on the whole data train the very network fit trains in three epochs
    (momentum's velocities and the schedule's epoch count carry over from call to call)."""
    X, y = blobs
    stepwise = FastMLPClassifier(random_state=4, **params)
    for _ in range(3):
        stepwise.partial_fit(X, y, classes=[0, 1, 2])
    assert_same_model(stepwise, FastMLPClassifier(epochs=3, random_state=4, **params).fit(X, y), X)
    # After fit, partial_fit continues from the fitted network.
    model = FastMLPClassifier(epochs=2, random_state=4, **params).fit(X, y).partial_fit(X, y)
    assert_same_model(model, stepwise, X)


# -- determinism, pickling, fitted attributes ---------------------------------


def test_int_random_state_fixes_everything(blobs):
    X, y = blobs
    model = FastMLPClassifier(epochs=5, batch_size=40, threads=2, random_state=0)
    first = clone(model).fit(X, y)
    assert_same_model(first, clone(model).fit(X, y), X)
    assert_same_model(first, model.fit(X, y).fit(X, y), X)  # a refit starts afresh
    assert_same_model(first, clone(model).set_params(threads=1).fit(X, y), X)
    other = clone(model).set_params(random_state=1).fit(X, y)
    assert not np.array_equal(first.predict_proba(X), other.predict_proba(X))


def test_random_state_instance_and_none_follow_sklearn(blobs):
    X, y = blobs
    rng = np.random.RandomState(0)
    model = FastMLPClassifier(epochs=2, random_state=rng)
    a = model.fit(X, y).predict_proba(X)
    b = model.fit(X, y).predict_proba(X)
    assert not np.array_equal(a, b)  # the RandomState moved on
    c = FastMLPClassifier(epochs=2, random_state=np.random.RandomState(0)).fit(X, y).predict_proba(X)
    assert_same_bits(a, c, "same RandomState seed")
    np.random.seed(7)
    d = FastMLPClassifier(epochs=2).fit(X, y).predict_proba(X)
    np.random.seed(7)
    assert_same_bits(d, FastMLPClassifier(epochs=2).fit(X, y).predict_proba(X), "global seed")


def test_pickled_fitted_estimator_predicts_the_same_and_trains_on_the_same(blobs):
    X, y = blobs
    model = FastMLPClassifier(epochs=3, random_state=0).fit(X, y)
    copy = pickle.loads(pickle.dumps(model))
    assert_same_model(copy, model, X)
    assert np.array_equal(copy.predict(X), model.predict(X))
    assert_same_model(copy.partial_fit(X, y), model.partial_fit(X, y), X)


def test_every_parameter_reaches_the_trainer(blobs):
    X, y = blobs
    schedule = StepDecay(every=2, factor=0.5)
    model = FastMLPClassifier(
        (6,), activation="relu", cost="quadratic", output_activation="tanh", learning_rate=0.25, batch_size=7,
        epochs=3, l2=0.5, momentum=0.5, nesterov=True, init="standard", schedule=schedule, dtype="float32",
        threads=2, random_state=0,
    ).fit(X, y)
    t = model.trainer_
    assert (t.layer_sizes, t.activation, t.cost, t.learning_rate) == ((5, 6, 3), "relu", "quadratic", 0.25)
    assert t.output_activation == "tanh" and t.nesterov is True
    assert (t.batch_size, t.l2, t.momentum, t.init, t.schedule) == (7, 0.5, 0.5, "standard", schedule)
    assert (t.dtype, t.threads) == (np.float32, 2)
    assert len(t.history) == 3
    # The trainer's own fit with the same seed and arguments gives the same bits.
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    direct = Trainer(t.layer_sizes, **model._trainer_arguments(seed=seed))
    direct.fit(X, y, 3)
    for p, q in zip([*direct.weights, *direct.biases], network(model)):
        assert_same_bits(p, q)


def test_fma_is_a_parameter_passed_to_the_trainer():
    assert FastMLPClassifier().get_params()["fma"] is False
    model = FastMLPClassifier().set_params(fma=True)
    assert model.get_params()["fma"] is True and clone(model).get_params()["fma"] is True
    assert model._trainer_arguments(seed=0)["fma"] is True
    assert "fma=True" in repr(model)


def test_fma_trains_as_the_fused_trainer(blobs):
    X, y = blobs
    model = FastMLPClassifier((6,), epochs=3, fma=True, random_state=0).fit(X, y)
    assert model.trainer_.fma is True
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    direct = Trainer(model.trainer_.layer_sizes, **model._trainer_arguments(seed=seed))
    direct.fit(X, y, 3)
    for p, q in zip([*direct.weights, *direct.biases], network(model)):
        assert_same_bits(p, q)
    copy = pickle.loads(pickle.dumps(model))
    assert copy.trainer_.fma is True
    assert_same_model(copy.partial_fit(X, y), model.partial_fit(X, y), X)


def test_early_stopping_keeps_the_best_epoch(blobs):
    X, y = blobs
    X = X + np.random.default_rng(0).normal(0, 1.5, X.shape)  # overlapping classes: accuracy stops improving
    model = FastMLPClassifier(early_stopping=3, epochs=500, validation_fraction=0.3, random_state=0).fit(X, y)
    scores = model.validation_scores_
    assert len(scores) == model.n_iter_ == len(model.loss_curve_) < 500
    best = int(np.argmax(scores))  # the first epoch of the best accuracy
    assert model.best_validation_score_ == scores[best] == max(scores)
    assert model.n_iter_ == best + 1 + 3  # three epochs without a better one, then stop
    assert model.trainer_.history.epochs[-1].epoch == model.n_iter_
    # The kept parameters are those of the best epoch: a fresh run of best + 1 epochs on the same split has them.
    again = FastMLPClassifier(early_stopping=3, epochs=best + 1, validation_fraction=0.3, random_state=0).fit(X, y)
    for l, (p, q) in enumerate(zip(network(again), network(model))):
        assert_same_bits(p, q, f"parameter {l}")
    # Reproducible, like everything else.
    assert_same_model(model, clone(model).fit(X, y), X)


def test_partial_fit_after_early_stopping_clears_the_validation_scores(blobs):
    X, y = blobs
    model = FastMLPClassifier(early_stopping=2, epochs=5, random_state=0).fit(X, y)
    assert model.validation_scores_ is not None and model.best_validation_score_ is not None
    model.partial_fit(X, y)
    assert model.validation_scores_ is None and model.best_validation_score_ is None
    assert model.n_iter_ == len(model.loss_curve_)


def test_early_stopping_holds_out_a_stratified_fraction(blobs, monkeypatch):
    X, y = blobs
    seen = []
    fit = Trainer.fit

    def recording_fit(self, X, y, epochs=1, **kwargs):
        seen.append((len(X), np.bincount(y), np.bincount(kwargs["validation_data"][1]), kwargs["early_stopping"]))
        return fit(self, X, y, epochs, **kwargs)

    monkeypatch.setattr(Trainer, "fit", recording_fit)
    FastMLPClassifier(early_stopping=2, epochs=3, validation_fraction=0.2, random_state=0).fit(X, y)
    # 150 samples, 50 per class: 30 held out, 10 of each class; training on the other 120.
    ((n_train, train_counts, val_counts, patience),) = seen
    assert n_train == 120 and train_counts.tolist() == [40, 40, 40] and val_counts.tolist() == [10, 10, 10]
    assert patience == 2


def test_early_stopping_with_too_few_samples_says_so():
    X, y = np.eye(3), np.array([0, 1, 0])
    FastMLPClassifier(early_stopping=2, epochs=2).fit(X, y)  # one held out, two to train on: fine
    with pytest.raises(ValueError, match=r"early_stopping: cannot hold out validation_fraction=0.9 of 3 samples"):
        FastMLPClassifier(early_stopping=2, validation_fraction=0.9).fit(X, y)


def test_schedule_changes_training_and_clones(blobs):
    X, y = blobs
    plain = FastMLPClassifier(epochs=4, learning_rate=0.5, random_state=0).fit(X, y)
    decayed = FastMLPClassifier(epochs=4, learning_rate=0.5, schedule=StepDecay(every=1, factor=0.1), random_state=0)
    decayed.fit(X, y)
    assert plain.loss_curve_[0] == decayed.loss_curve_[0]  # epoch 1 runs at the full rate in both
    assert plain.loss_curve_[1:] != decayed.loss_curve_[1:]
    assert clone(decayed).get_params()["schedule"] == StepDecay(every=1, factor=0.1)


def test_fitted_attributes(blobs):
    X, y = blobs
    model = FastMLPClassifier(hidden_layer_sizes=(7, 6), epochs=4, random_state=0)
    with pytest.raises(NotFittedError):
        model.predict(X)
    model.fit(X, y)
    assert model.n_features_in_ == 5 and model.trainer_.layer_sizes == (5, 7, 6, 3)
    assert len(model.loss_curve_) == 4 == model.n_iter_
    assert model.loss_curve_ == model.trainer_.history.train_cost
    assert model.validation_scores_ is None and model.best_validation_score_ is None
    assert FastMLPClassifier(hidden_layer_sizes=3).fit(X, y).trainer_.layer_sizes == (5, 3, 3)
    assert FastMLPClassifier(hidden_layer_sizes=()).fit(X, y).trainer_.layer_sizes == (5, 3)


def test_feature_names_of_a_dataframe(blobs):
    pd = pytest.importorskip("pandas", reason="pandas is not installed; feature names come from DataFrames")
    X, y = blobs
    frame = pd.DataFrame(X, columns=list("abcde"))
    model = FastMLPClassifier(epochs=2, random_state=0).fit(frame, y)
    assert list(model.feature_names_in_) == list("abcde")
    assert_same_bits(model.predict_proba(frame), FastMLPClassifier(epochs=2, random_state=0).fit(X, y).predict_proba(X))
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(frame.rename(columns={"a": "z"}))


def test_verbose_prints_each_epoch(blobs, capsys):
    X, y = blobs
    FastMLPClassifier(epochs=3, verbose=True, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1: training cost ")
    FastMLPClassifier(epochs=3, random_state=0).fit(X, y)
    assert capsys.readouterr().out == ""


# -- errors -----------------------------------------------------------------


BAD_PARAMETERS = [
    (dict(hidden_layer_sizes=(10, 0)), ValueError, r"hidden_layer_sizes\[1\] must be >= 1"),
    (dict(hidden_layer_sizes=(10.5,)), TypeError, r"hidden_layer_sizes\[0\] must be an integer"),
    (dict(hidden_layer_sizes="100"), TypeError, "hidden_layer_sizes must be an int or a sequence"),
    (dict(hidden_layer_sizes=None), TypeError, "hidden_layer_sizes must be an int or a sequence"),
    (dict(activation="softmax"), ValueError, "activation must be one of"),
    (dict(cost="hinge"), ValueError, "cost must be one of 'quadratic', 'cross_entropy', 'log_likelihood'"),
    (dict(init="xavier"), ValueError, "init must be one of 'standard', 'scaled'"),
    (dict(learning_rate=0), ValueError, "learning_rate must be finite and > 0"),
    (dict(learning_rate="0.1"), TypeError, "learning_rate must be a real number"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    (dict(epochs=0), ValueError, "epochs must be >= 1"),
    (dict(epochs=2.5), TypeError, "epochs must be an integer"),
    (dict(l2=-1.0), ValueError, "l2 must be finite, >= 0"),
    (dict(momentum=1.0), ValueError, r"momentum must be finite, >= 0.0 and < 1.0"),
    (dict(schedule="fast"), TypeError, "schedule must be None, 'constant' or a fastmlp.StepDecay"),
    (dict(early_stopping=0), ValueError, "early_stopping must be >= 1"),
    (dict(early_stopping=True), TypeError, "early_stopping must be an integer"),
    (dict(validation_fraction=1.0), ValueError, "validation_fraction must lie strictly between 0 and 1"),
    (dict(validation_fraction="a"), TypeError, "validation_fraction must be a real number"),
    (dict(dtype="float16"), ValueError, "dtype must be 'float32' or 'float64'"),
    (dict(threads=0), ValueError, "threads must be >= 1"),
    (dict(threads=1000), ValueError, "threads must be <= 256"),
    (dict(random_state=-1), ValueError, "random_state|Seed must be between"),
    (dict(random_state="x"), ValueError, "cannot be used to seed"),
    (dict(verbose="loud"), TypeError, "verbose must be a bool or an int"),
    (dict(fma=1), TypeError, "fma must be True or False, got 1"),
    (dict(fma="yes"), TypeError, "fma must be True or False, got 'yes'"),
    (dict(fma=None), TypeError, "fma must be True or False, got None"),
]


@pytest.mark.parametrize("params, error, message", BAD_PARAMETERS, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_bad_parameters_raise_at_fit_and_leave_it_unfitted(blobs, params, error, message):
    X, y = blobs
    model = FastMLPClassifier(**params)  # the constructor only stores them
    assert model.get_params()[next(iter(params))] is next(iter(params.values()))
    with pytest.raises(error, match=message):
        model.fit(X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    with pytest.raises(error, match=message):
        clone(model).partial_fit(X, y, classes=[0, 1, 2])
    # Parameters are checked before the data is looked at.
    with pytest.raises(error, match=message):
        clone(model).fit(np.full_like(X, np.nan), y)


def test_a_failed_fit_forgets_the_previous_one(blobs):
    X, y = blobs
    model = FastMLPClassifier(epochs=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.full_like(X, np.nan), y)
    with pytest.raises(NotFittedError):
        model.predict(X)
    assert not [name for name in vars(model) if name.endswith("_")]


def test_an_interrupted_fit_keeps_the_whole_epochs(blobs, monkeypatch):
    """Ctrl-C (here raised after the third epoch's report) propagates; the estimator keeps the three epochs."""
    X, y = blobs

    def interrupt_at_3(self, record, score=None):
        if record.epoch == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(FastMLPClassifier, "_report", interrupt_at_3)
    for early_stopping in (None, 50):
        model = FastMLPClassifier(epochs=10, early_stopping=early_stopping, verbose=True, random_state=0)
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, y)
        assert model.n_iter_ == 3 and len(model.loss_curve_) == 3
        three = clone(model).set_params(epochs=3, verbose=False).fit(X, y)
        assert model.loss_curve_ == three.loss_curve_ and model.validation_scores_ == three.validation_scores_
        if early_stopping is None:  # (with it, a finished run goes back to its best epoch; an interrupted one not)
            assert_same_model(model, three, X)
    # partial_fit: interrupted in the report of epoch 3, which the trainer completed and kept.
    model = FastMLPClassifier(verbose=True, random_state=0)
    model.partial_fit(X, y, classes=[0, 1, 2]).partial_fit(X, y)
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(X, y)
    assert model.n_iter_ == 3 == len(model.trainer_.history) and len(model.loss_curve_) == 3
    # Interrupted before any epoch was complete: unfitted.
    def interrupted_fit(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


def test_divergence_is_reported(blobs):
    X, y = blobs
    model = FastMLPClassifier(cost="quadratic", activation="relu", learning_rate=1e300, random_state=0)
    with pytest.raises(DivergenceError, match="learning rate"):
        model.fit(X * 1e6, y)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


# -- scikit-learn stays optional ----------------------------------------------


def test_importing_fastmlp_does_not_import_sklearn():
    code = "import sys, fastmlp; assert 'sklearn' not in sys.modules, 'fastmlp imported sklearn'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO.parent)


def test_without_sklearn_the_import_error_says_what_to_install():
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "try:\n    import fastmlp.sklearn\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO.parent, capture_output=True, text=True)
    assert "pip install scikit-learn" in out.stdout


# -- beyond one machine -------------------------------------------------------


def test_dask_grid_search_example(tmp_path):
    """examples/dask_grid_search.py on a LocalCluster of two worker processes."""
    pytest.importorskip("dask.distributed", reason="dask.distributed is not installed (pip install 'dask[distributed]')")
    example = REPO / "examples" / "dask_grid_search.py"
    run = subprocess.run(
        [sys.executable, str(example), "--workers", "2", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    # 4 settings x 3 folds, sent as joblib batches to the cluster, and run by both workers.
    assert result["fits"] == 12 and result["tasks"] >= 2 and len(result["workers"]) == 2
    assert result["best_cv_accuracy"] > 0.9 and result["test_accuracy"] > 0.9


# -- real data ----------------------------------------------------------------


@pytest.mark.slow
def test_mnist_subset(mnist):
    (X, y), (X_test, y_test) = mnist
    model = FastMLPClassifier(epochs=5, random_state=0).fit(X[:20000], y[:20000])
    assert model.score(X_test, y_test) > 0.93  # 0.942 when written


# -- the regressor ------------------------------------------------------------


@pytest.fixture(scope="module")
def friedman():
    """Friedman's first regression problem, its features standardised, its targets moved far from
    0 and scaled up."""
    X, y = make_friedman1(n_samples=600, noise=0.5, random_state=0)
    return StandardScaler().fit_transform(X), 1000 + 40 * y


def test_regressor_learns_in_the_targets_units(friedman):
    """The targets are standardised for training and the predictions mapped back: targets far
    from 0 and of any scale train as well as standard ones would, and come back in their units."""
    X, y = friedman
    model = FastMLPRegressor(random_state=0).fit(X[:500], y[:500])
    assert model.score(X[500:], y[500:]) > 0.85
    assert model.target_mean_.shape == model.target_scale_.shape == (1,) and model.n_outputs_ == 1
    np.testing.assert_allclose(model.target_mean_, [y[:500].mean()])
    np.testing.assert_allclose(model.target_scale_, [y[:500].std()])
    prediction = model.predict(X[500:])
    assert prediction.shape == (100,) and prediction.dtype == np.float64
    # The network itself has a linear output layer trained on standard targets.
    trainer = model.trainer_
    assert trainer.output_activation == "identity" and trainer.cost == "quadratic"
    outputs = trainer.forward(X[500:])[:, 0]
    assert_same_bits(prediction, outputs * model.target_scale_[0] + model.target_mean_[0])


def test_regressor_takes_several_targets(friedman):
    X, y = friedman
    Y = np.column_stack([y, -3 * y + 7, X[:, 0]])
    model = FastMLPRegressor(random_state=0).fit(X, Y)
    assert model.n_outputs_ == 3 and model.trainer_.layer_sizes[-1] == 3
    assert model.predict(X).shape == (600, 3)
    assert model.score(X, Y) > 0.85
    # A single target given as a column keeps its column.
    assert FastMLPRegressor(epochs=2, random_state=0).fit(X, y[:, None]).predict(X).shape == (600, 1)
    with pytest.raises(ValueError, match="3 targets per sample; the network was built for 1"):
        FastMLPRegressor(epochs=1, random_state=0).partial_fit(X, y).partial_fit(X, Y)


def test_regressor_partial_fit_epochs_are_fit_epochs(friedman):
    X, y = friedman
    stepwise = FastMLPRegressor(random_state=4)
    for _ in range(3):
        stepwise.partial_fit(X, y)
    at_once = FastMLPRegressor(epochs=3, random_state=4).fit(X, y)
    for l, (p, q) in enumerate(zip(network(stepwise), network(at_once))):
        assert_same_bits(p, q, f"parameter {l}")
    assert stepwise.loss_curve_ == at_once.loss_curve_ and stepwise.n_iter_ == 3
    assert_same_bits(stepwise.predict(X), at_once.predict(X))


def test_regressor_early_stopping_keeps_the_best_r2(friedman):
    X, y = friedman
    y = y + np.random.default_rng(0).normal(0, 200, y.shape)  # noisy: R² stops improving
    model = FastMLPRegressor(early_stopping=3, epochs=500, validation_fraction=0.3, random_state=0).fit(X, y)
    scores = model.validation_scores_
    assert len(scores) == model.n_iter_ < 500
    best = int(np.argmax(scores))
    assert model.best_validation_score_ == scores[best] and model.n_iter_ == best + 1 + 3
    # The R² is that of the held-out part: the split train_test_split makes from the same generator.
    rng = np.random.RandomState(0)
    rng.randint(np.iinfo(np.int32).max)  # the trainer's seed is drawn first
    _, X_val, _, y_val = train_test_split(X, y, test_size=0.3, random_state=rng)
    assert model.score(X_val, y_val) == pytest.approx(scores[best], abs=1e-12)
    again = FastMLPRegressor(early_stopping=3, epochs=best + 1, validation_fraction=0.3, random_state=0).fit(X, y)
    for l, (p, q) in enumerate(zip(network(again), network(model))):
        assert_same_bits(p, q, f"parameter {l}")


def test_regressor_verbose_prints_r2(friedman, capsys):
    X, y = friedman
    FastMLPRegressor(epochs=2, early_stopping=5, verbose=True, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(", validation R² " in line for line in lines)


def test_regressor_refuses_what_it_cannot_train(friedman):
    X, y = friedman
    with pytest.raises(ValueError, match="learning_rate must be finite"):
        FastMLPRegressor(learning_rate=-1).fit(X, y)
    with pytest.raises(DivergenceError):
        FastMLPRegressor(learning_rate=1e6, random_state=0).fit(X, y)
    model = FastMLPRegressor(epochs=1)
    with pytest.raises(ValueError):
        model.fit(X, np.array(["a"] * len(X)))
    with pytest.raises(NotFittedError):
        model.predict(X)


def test_adam_reaches_the_trainers(blobs, friedman):
    for model, (X, y) in ((FastMLPClassifier, blobs), (FastMLPRegressor, friedman)):
        fitted = model(optimizer="adam", betas=(0.8, 0.99), eps=1e-6, learning_rate=0.01, momentum=0.0, epochs=3,
                       random_state=0).fit(X, y)
        t = fitted.trainer_
        assert (t.optimizer, t.betas, t.eps) == ("adam", (0.8, 0.99), 1e-6)
        steps = 3 * -(-len(X) // fitted.batch_size)  # mini-batches in three epochs
        assert t._adam_powers.tolist() == [math.prod([0.8] * steps), math.prod([0.99] * steps)]
        with pytest.raises(ValueError, match="momentum belongs to optimizer='sgd'"):
            model(optimizer="adam", momentum=0.9).fit(X, y)


def test_dropout_reaches_the_trainers_and_needs_hidden_layers(blobs, friedman):
    for model, (X, y) in ((FastMLPClassifier, blobs), (FastMLPRegressor, friedman)):
        assert model(dropout=0.3, epochs=2, random_state=0).fit(X, y).trainer_.dropout == 0.3
        with pytest.raises(ValueError, match="dropout acts on hidden layers, and this network has none"):
            model((), dropout=0.3).fit(X, y)


def test_the_regressors_momentum_follows_its_optimizer(friedman):
    """momentum=None is 0.9 with SGD and none with Adam, which takes no momentum; one given is kept."""
    X, y = friedman
    assert FastMLPRegressor(epochs=1, random_state=0).fit(X, y).trainer_.momentum == 0.9
    assert FastMLPRegressor(optimizer="adam", learning_rate=0.001, epochs=1, random_state=0).fit(X, y).trainer_.momentum == 0.0
    assert FastMLPRegressor(momentum=0.5, epochs=1, random_state=0).fit(X, y).trainer_.momentum == 0.5
    with pytest.raises(ValueError, match="momentum belongs to optimizer='sgd'"):
        FastMLPRegressor(optimizer="adam", momentum=0.9).fit(X, y)
