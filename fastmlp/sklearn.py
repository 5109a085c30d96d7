"""scikit-learn estimators on top of :class:`fastmlp.Trainer`: a classifier and a regressor.

:class:`FastMLPClassifier` and :class:`FastMLPRegressor` follow
scikit-learn's estimator conventions, so they work in ``Pipeline``,
``GridSearchCV``, ``cross_val_score`` and the rest of scikit-learn's tools,
and with any joblib backend (they pickle, fitted or not). scikit-learn is an optional dependency (``pip install '.[sklearn]'``
in fastmlp's folder, or ``pip install scikit-learn``): ``import fastmlp``
never imports it; ``import fastmlp.sklearn`` does.
"""

from __future__ import annotations

import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.metrics import r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, unique_labels
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fastmlp.sklearn needs scikit-learn >= 1.6; install it with pip install scikit-learn"
    ) from exc

from ._base import _check_int
from .trainer import Trainer

__all__ = ["FastMLPClassifier", "FastMLPRegressor"]


class _TrainerEstimator(BaseEstimator):
    """What the classifier and the regressor share: training the trainer, reporting, forgetting."""

    #: What verbose output and the validation scores measure on the held-out data.
    _score_name = "accuracy"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # the kernels read dense rows
        tags.input_tags.allow_nan = False  # training on NaN has no meaning here
        return tags

    def _train(self, X, y, epochs, validation_data=None):
        """``epochs`` epochs of the trainer's fit (with early stopping, given ``validation_data``).

        The fitted attributes follow the trainer's history, whatever happens:
        an interrupted or diverging epoch is not in it, every completed one is.
        """
        scores = []  # each epoch's validation score, with validation_data
        try:
            self._fit_trainer(X, y, epochs, validation_data, scores)
        finally:
            records = self.trainer_.history.epochs
            self.loss_curve_ = [r.train_cost for r in records]
            self.n_iter_ = len(records)
            if validation_data is not None and scores:
                self.validation_scores_ = scores
                self.best_validation_score_ = max(scores)
            elif validation_data is None:  # partial_fit: the scores no longer describe the network
                self.validation_scores_ = self.best_validation_score_ = None

    def _report(self, record, score=None):
        line = f"epoch {record.epoch}: training cost {record.train_cost:.6f}"
        if score is not None:
            line += f", validation {self._score_name} {score:.4f}"
        print(f"{line}, {record.seconds:.3f} s", flush=True)

    def _common_trainer_arguments(self, seed):
        return dict(
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            l2=self.l2,
            momentum=self.momentum,
            nesterov=self.nesterov,
            optimizer=self.optimizer,
            betas=self.betas,
            eps=self.eps,
            dropout=self.dropout,
            init=self.init,
            schedule=self.schedule,
            seed=seed,
            dtype=self.dtype,
            threads=self.threads,
            fma=self.fma,
        )

    def _check_parameters(self):
        """Every parameter, before the data is looked at; returns the dtype.

        Trainer is the authority on its own arguments: a throwaway network of
        one input, two outputs and a hidden unit where the network has hidden
        layers checks them, with its messages.
        """
        hidden = _hidden_layer_sizes(self.hidden_layer_sizes)
        _check_int("epochs", self.epochs, 1)
        if self.early_stopping is not None:
            _check_int("early_stopping", self.early_stopping, 1)
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
            raise TypeError(f"validation_fraction must be a real number, got {fraction!r}")
        if not 0 < fraction < 1:
            raise ValueError(f"validation_fraction must lie strictly between 0 and 1, got {fraction!r}")
        if not isinstance(self.verbose, (bool, numbers.Integral)):
            raise TypeError(f"verbose must be a bool or an int, got {self.verbose!r}")
        check_random_state(self.random_state)
        return Trainer((1, 1, 2) if hidden else (1, 2), **self._trainer_arguments(seed=0)).dtype

    def _start(self, n_features, n_outputs, rng):
        """A new network for ``n_features`` inputs and ``n_outputs`` outputs, seeded from ``rng``;
        no epoch yet."""
        layer_sizes = (n_features, *_hidden_layer_sizes(self.hidden_layer_sizes), n_outputs)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        self.trainer_ = Trainer(layer_sizes, **self._trainer_arguments(seed))
        self.loss_curve_ = []
        self.n_iter_ = 0
        self.validation_scores_ = None
        self.best_validation_score_ = None

    def _held_out(self, X, y, rng, stratify=None):
        """``train_test_split`` of X and y, ``validation_fraction`` held out, or a clear error."""
        try:
            return train_test_split(X, y, test_size=self.validation_fraction, random_state=rng, stratify=stratify)
        except ValueError as exc:
            raise ValueError(
                f"early_stopping: cannot hold out validation_fraction={self.validation_fraction} "
                f"of {len(y)} samples: {exc}"
            ) from exc

    def _unfitted_on_failure(self, method, *args):
        """``method(*args)``, which starts a new network; if it raises, no half-made model stays behind.

        Only Ctrl-C after a whole epoch keeps the network, as it was after
        that epoch: the trainer has then gone back to it.
        """
        try:
            return method(*args)
        except BaseException as exc:
            if not (isinstance(exc, KeyboardInterrupt) and getattr(self, "n_iter_", 0)):
                self._forget_fit()
            raise

    def _forget_fit(self):
        for name in list(vars(self)):
            if name.endswith("_") and not name.startswith("__"):
                delattr(self, name)


class FastMLPClassifier(ClassifierMixin, _TrainerEstimator):
    """A multi-layer perceptron classifier trained by fastmlp's compiled mini-batch SGD.

    The network has ``n_features_in_`` inputs, the hidden layers of
    ``hidden_layer_sizes`` and one output neuron per class (two for a binary
    problem); output neuron ``i`` stands for ``classes_[i]``. It is trained by
    :class:`fastmlp.Trainer`, whose kernels run a whole epoch without the GIL.

    Inputs are used as given: the estimator does not scale them. Sigmoid and
    tanh neurons learn best from features of order 1, so put a scaler in
    front, ``make_pipeline(StandardScaler(), FastMLPClassifier())``, unless
    the features are already in such a range (pixels divided by 255, say).

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Neurons in each hidden layer, first to last. An int is one hidden
        layer; an empty tuple gives no hidden layer (multinomial logistic
        regression when ``cost="log_likelihood"``).
    activation : {"sigmoid", "tanh", "relu"}, default="sigmoid"
        The activation of the hidden layers (and of the output layer when
        ``cost="quadratic"``).
    cost : {"log_likelihood", "cross_entropy", "quadratic"}, default="log_likelihood"
        What training minimises. ``"log_likelihood"``: a softmax output layer
        and the negative log-likelihood of the true class; the outputs are
        class probabilities. ``"cross_entropy"``: sigmoid output neurons and
        the cross-entropy cost, each output in (0, 1) on its own.
        ``"quadratic"``: outputs with the hidden layers' activation (or
        ``output_activation``) and the cost ``½ Σ_j (a_j − y_j)²``, as in the
        classic network.
    output_activation : {None, "identity", "sigmoid", "tanh", "relu"}, default=None
        With ``cost="quadratic"``, the output layer's activation; ``None``
        takes the hidden layers'. ``"identity"`` gives linear outputs fitted
        to the one-hot targets by least squares. The other costs fix their
        own (None, or its name).
    learning_rate : float, default=0.1
        η in the step ``w ← w − (η/m)·Σ ∂C_x/∂w`` over a mini-batch of m examples.
    batch_size : int, default=10
        Examples per mini-batch; the last mini-batch of an epoch holds the
        rest. A batch size above the number of examples makes one batch.
    epochs : int, default=30
        Passes over the training data in :meth:`fit` (at most, with
        ``early_stopping``).
    l2 : float, default=0.0
        λ of L2 weight decay, as in Nielsen's *Neural Networks and Deep
        Learning*: each step also shrinks the weights (not the biases) by the
        factor ``1 − η·λ/n``, n being the number of training examples (of the
        call, in :meth:`partial_fit`: one call decays as much as one epoch).
    momentum : float, default=0.0
        The momentum coefficient μ of SGD with momentum, in [0, 1); 0 is plain SGD.
    nesterov, optimizer, betas, eps : default False, "sgd", (0.9, 0.999), 1e-8
        Nesterov's momentum (with ``momentum`` > 0), and Adam
        (``optimizer="adam"``, which wants a much smaller ``learning_rate``,
        0.001 say) with its β1, β2 and ε, passed on as
        :class:`fastmlp.Trainer`'s arguments (see it for their steps).
    dropout : float, default=0.0
        The probability that training drops each hidden unit for an example
        (inverted dropout: predictions use the whole network), in [0, 1).
    init : {"scaled", "standard"}, default="scaled"
        Initial weights: ``"scaled"`` draws them from N(0, 1/n_in), n_in being
        the neuron's number of inputs; ``"standard"`` from N(0, 1), as in the
        classic network. Biases are N(0, 1) in both.
    schedule : None, "constant" or fastmlp.StepDecay, default=None
        How the learning rate changes from epoch to epoch: ``None`` and
        ``"constant"`` keep ``learning_rate``; ``StepDecay(every=10,
        factor=0.5)`` halves it after every 10 epochs. Epochs count from the
        network's first, across :meth:`partial_fit` calls.
    early_stopping : int or None, default=None
        When an int, the patience: :meth:`fit` holds out
        ``validation_fraction`` of the training data (stratified by class
        where every class has at least two examples), trains on the rest,
        stops after ``early_stopping`` epochs without a better accuracy on
        the held-out part, and keeps the parameters of the best epoch.
    validation_fraction : float, default=0.1
        The fraction of the training data held out for ``early_stopping``,
        in (0, 1). Unused without it.
    dtype : {"float64", "float32"}, default="float64"
        The floating-point type of the parameters and of all arithmetic;
        inputs are converted to it.
    threads : int, default=1
        Threads for the compiled kernels; the results do not depend on it.
        Mini-batches under 32 examples run on one thread.
    fma : bool, default=False
        The arithmetic contract, passed on as :class:`fastmlp.Trainer`'s
        ``fma`` (see it for what each promises and costs): ``True`` fuses the
        training's multiply-adds, each rounded once.
    random_state : int, numpy.random.RandomState or None, default=None
        Where the randomness comes from (the initial parameters, each epoch's
        shuffle and the early-stopping split). An int makes :meth:`fit`
        reproducible to the bit; a ``RandomState`` is drawn from, so
        successive fits differ; ``None`` draws from NumPy's global
        ``RandomState``.
    verbose : bool or int, default=False
        Print one line per epoch: its training cost, validation accuracy (with
        ``early_stopping``) and time.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted; output neuron ``i`` stands for ``classes_[i]``.
        Labels may be of any kind scikit-learn takes for classification:
        strings, integers (negative ones too), integral floats, booleans.
    n_features_in_ : int
        The number of features seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        The feature names seen during :meth:`fit`, when ``X`` had string
        column names (a pandas DataFrame).
    trainer_ : fastmlp.Trainer
        The trained network: its ``weights``, ``biases``, ``history``, and
        ``save(path)`` to keep it in fastmlp's model format.
    loss_curve_ : list of float
        The training cost of each epoch trained (the mean over the epoch's
        examples of each one's cost just before its mini-batch's step). Each
        :meth:`partial_fit` call adds one.
    n_iter_ : int
        The number of epochs trained.
    validation_scores_ : list of float or None
        With ``early_stopping``, the accuracy on the held-out data after each
        epoch of :meth:`fit`; otherwise, and after a :meth:`partial_fit`, ``None``.
    best_validation_score_ : float or None
        The best of ``validation_scores_``, the one whose parameters a
        :meth:`fit` that ran to its end kept; ``None`` when
        ``validation_scores_`` is.

    See Also
    --------
    fastmlp.Trainer : the trainer underneath, for full control.
    sklearn.neural_network.MLPClassifier : scikit-learn's own perceptron.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from fastmlp.sklearn import FastMLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), FastMLPClassifier(random_state=0))
    >>> model.fit(X[:1500], y[:1500]).score(X[1500:], y[1500:]) > 0.9
    True
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        *,
        activation="sigmoid",
        cost="log_likelihood",
        output_activation=None,
        learning_rate=0.1,
        batch_size=10,
        epochs=30,
        l2=0.0,
        momentum=0.0,
        nesterov=False,
        optimizer="sgd",
        betas=(0.9, 0.999),
        eps=1e-8,
        dropout=0.0,
        init="scaled",
        schedule=None,
        early_stopping=None,
        validation_fraction=0.1,
        dtype="float64",
        threads=1,
        fma=False,
        random_state=None,
        verbose=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.cost = cost
        self.output_activation = output_activation
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.l2 = l2
        self.momentum = momentum
        self.nesterov = nesterov
        self.optimizer = optimizer
        self.betas = betas
        self.eps = eps
        self.dropout = dropout
        self.init = init
        self.schedule = schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.dtype = dtype
        self.threads = threads
        self.fma = fma
        self.random_state = random_state
        self.verbose = verbose

    # -- scikit-learn's protocol -------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False  # one label per sample, from one softmax or argmax
        return tags

    def fit(self, X, y):
        """Train a new network on ``(X, y)`` for ``epochs`` epochs.

        Any network of an earlier ``fit`` or :meth:`partial_fit` is discarded.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The training inputs, dense; converted to ``dtype``.
        y : array-like of shape (n_samples,)
            The class labels.

        Returns
        -------
        self : FastMLPClassifier
            The fitted estimator.

        Raises
        ------
        ValueError, TypeError
            For a bad parameter or bad data, naming it, before any training.
        fastmlp.DivergenceError
            When training diverges (a cost or parameter stops being finite):
            try a smaller ``learning_rate``. The estimator is then left unfitted.
        KeyboardInterrupt
            Ctrl-C stops training within a fraction of a second. The
            estimator keeps the network as it was after the last whole epoch
            (``n_iter_`` says how many; without early stopping's return to the
            best one), or is left unfitted if no epoch was complete.
        """
        return self._unfitted_on_failure(self._fit, X, y)

    def partial_fit(self, X, y, classes=None):
        """Train one epoch on ``(X, y)``, continuing the network trained so far.

        The first call (on an estimator not yet fitted) builds the network,
        which needs every class up front: pass them as ``classes``. Later
        calls continue training it with the parameters it was built with, so
        changing them in between has no effect until the next :meth:`fit`.
        ``partial_fit`` never holds out data or stops early.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs of this chunk of training data.
        y : array-like of shape (n_samples,)
            Their labels, each one of ``classes_``.
        classes : array-like of shape (n_classes,), optional
            Every class label that training will ever see. Required on the
            first call; later, when given, it must be the same set.

        Returns
        -------
        self : FastMLPClassifier
            The estimator, trained one more epoch.
        """
        if not hasattr(self, "trainer_"):
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit: the network needs "
                    "one output neuron per class from the start"
                )
            return self._unfitted_on_failure(self._partial_fit_first, X, y, classes)
        X, y = validate_data(self, X, y, reset=False, dtype=self.trainer_.dtype, order="C")
        check_classification_targets(y)
        if classes is not None:
            classes = self._check_classes(classes)
            if not _same_labels(classes, self.classes_):
                raise ValueError(
                    f"classes={classes!r} differs from the classes the network was built with, "
                    f"classes_={self.classes_!r}; call fit to start again with other classes"
                )
        self._train(X, self._encode(y), 1)
        return self

    def predict_proba(self, X):
        """Class probabilities.

        With ``cost="log_likelihood"`` these are the network's softmax
        outputs themselves, probabilities fitted by maximum likelihood. With
        another cost the outputs are scores, each in its own range, and are
        only made to look like probabilities: tanh outputs are mapped from
        [-1, 1] to [0, 1] by ``(a + 1) / 2`` (sigmoid and relu outputs are
        already ≥ 0), and each row is divided by its sum; a row of zeros
        becomes uniform. Identity outputs, of any sign, go through a
        softmax. Either way the largest is the predicted class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            ``proba[i, j]``: the probability that sample i is of class
            ``classes_[j]``, in the network's ``dtype``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self.trainer_.dtype, order="C")
        outputs = self.trainer_.forward(X)
        activation = self.trainer_.output_activation
        if activation == "softmax":
            return outputs
        if activation == "identity":
            outputs -= outputs.max(axis=1, keepdims=True)
            np.exp(outputs, out=outputs)
        if activation == "tanh":
            outputs += 1
            outputs /= 2
        sums = outputs.sum(axis=1, keepdims=True)
        zero = sums[:, 0] == 0
        outputs[zero] = 1
        sums[zero] = outputs.shape[1]
        return np.divide(outputs, sums, out=outputs)

    def predict_log_proba(self, X):
        """The logarithm of :meth:`predict_proba` (``-inf`` where it is 0).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            ``np.log(predict_proba(X))``.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each sample (the first of equals).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    # -- the work ------------------------------------------------------------

    def _fit(self, X, y):
        dtype = self._check_parameters()
        X, y = validate_data(self, X, y, dtype=dtype, order="C")
        check_classification_targets(y)
        self.classes_ = _classes_of(y, "y")
        y = self._encode(y)
        rng = check_random_state(self.random_state)
        self._start(X.shape[1], len(self.classes_), rng)
        validation_data = None
        if self.early_stopping is not None:
            X, X_val, y, y_val = self._split(X, y, rng)
            validation_data = (X_val, y_val)
        self._train(X, y, self.epochs, validation_data)
        return self

    def _partial_fit_first(self, X, y, classes):
        dtype = self._check_parameters()
        classes = self._check_classes(classes)
        X, y = validate_data(self, X, y, dtype=dtype, order="C")
        check_classification_targets(y)
        self.classes_ = classes
        y = self._encode(y)
        self._start(X.shape[1], len(self.classes_), check_random_state(self.random_state))
        self._train(X, y, 1)
        return self

    def _fit_trainer(self, X, y, epochs, validation_data, scores):
        def record(epoch):
            scores.append(epoch.validation_accuracy)
            if self.verbose:
                self._report(epoch, epoch.validation_accuracy)

        kwargs = {}
        if validation_data is not None:
            kwargs["early_stopping"] = self.early_stopping
        self.trainer_.fit(X, y, epochs, validation_data=validation_data, callbacks=record, **kwargs)

    def _trainer_arguments(self, seed):
        return dict(activation=self.activation, cost=self.cost, output_activation=self.output_activation,
                    **self._common_trainer_arguments(seed))

    def _split(self, X, y, rng):
        """The training and validation parts for early stopping, stratified by class where it can."""
        counts = np.bincount(y, minlength=len(self.classes_))
        n_val = int(np.ceil(self.validation_fraction * len(y)))
        stratify = counts.min() >= 2 and len(self.classes_) <= min(n_val, len(y) - n_val)
        return self._held_out(X, y, rng, y if stratify else None)

    def _check_classes(self, classes):
        classes = np.asarray(classes)
        if classes.ndim != 1 or len(classes) == 0:
            raise ValueError(f"classes must be a non-empty 1-D array of labels, got {classes!r}")
        check_classification_targets(classes)
        return _classes_of(classes, "classes")

    def _encode(self, y):
        """Each label's index in ``classes_``; labels not in it raise ValueError."""
        classes = self.classes_
        try:
            index = np.minimum(np.searchsorted(classes, y), len(classes) - 1)
            known = np.asarray(classes[index] == y, dtype=bool)
        except TypeError:  # labels of a kind that does not compare with the classes
            known = np.zeros(len(y), dtype=bool)
        if not known.all():
            unseen = list(dict.fromkeys(y[~known].tolist()))
            raise ValueError(
                f"y contains labels that are not in classes_={classes!r}: {unseen[:10]!r}; "
                f"partial_fit needs every class in its first call's classes"
            )
        return index.astype(np.intp, copy=False)


class FastMLPRegressor(RegressorMixin, _TrainerEstimator):
    """A multi-layer perceptron regressor trained by fastmlp's compiled mini-batch SGD.

    The network has ``n_features_in_`` inputs, the hidden layers of
    ``hidden_layer_sizes`` and a linear output layer (``output_activation=
    "identity"``) with one neuron per target, trained on the quadratic cost
    ``½ Σ_j (a_j − y_j)²`` by :class:`fastmlp.Trainer`.

    Targets are standardised for training: each target has its mean taken
    away and is divided by its standard deviation (both from the data of
    :meth:`fit`, or of the first :meth:`partial_fit`; kept as
    ``target_mean_`` and ``target_scale_``), and :meth:`predict` maps the
    outputs back. So ``learning_rate`` means the same whatever the targets'
    units, and ``loss_curve_`` is in standard units. Inputs are used as
    given: put a scaler in front, ``make_pipeline(StandardScaler(),
    FastMLPRegressor())``, unless the features are already of order 1.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Neurons in each hidden layer, first to last. An int is one hidden
        layer; an empty tuple gives none (linear least squares by SGD).
    activation : {"relu", "tanh", "sigmoid"}, default="relu"
        The activation of the hidden layers.
    learning_rate : float, default=0.01
        η in the step ``w ← w − (η/m)·Σ ∂C_x/∂w`` over a mini-batch of m examples.
    batch_size : int, default=32
        Examples per mini-batch; the last mini-batch of an epoch holds the rest.
    epochs : int, default=50
        Passes over the training data in :meth:`fit` (at most, with
        ``early_stopping``).
    l2 : float, default=0.0
        λ of L2 weight decay: each step also shrinks the weights (not the
        biases) by ``1 − η·λ/n``, n the number of training examples (of the call).
    momentum : float or None, default=None
        The momentum coefficient μ of SGD with momentum, in [0, 1); 0 is plain
        SGD. None: 0.9 with ``optimizer="sgd"``, none with Adam (which takes
        no momentum).
    nesterov, optimizer, betas, eps : default False, "sgd", (0.9, 0.999), 1e-8
        Nesterov's momentum, and Adam with its β1, β2 and ε, as in
        :class:`FastMLPClassifier`.
    dropout : float, default=0.0
        The probability that training drops each hidden unit for an example.
    init : {"scaled", "standard"}, default="scaled"
        Initial weights from N(0, 1/n_in) (``"scaled"``) or N(0, 1); biases N(0, 1).
    schedule : None, "constant" or fastmlp.StepDecay, default=None
        How the learning rate changes from epoch to epoch (see :class:`FastMLPClassifier`).
    early_stopping : int or None, default=None
        When an int, the patience: :meth:`fit` holds out
        ``validation_fraction`` of the training data, trains on the rest,
        stops after ``early_stopping`` epochs without a better R² on the
        held-out part, and keeps the parameters of the best epoch.
    validation_fraction : float, default=0.1
        The fraction held out for ``early_stopping``, in (0, 1).
    dtype : {"float64", "float32"}, default="float64"
        The floating-point type of the parameters and of all arithmetic.
    threads : int, default=1
        Threads for the compiled kernels; the results do not depend on it.
    fma : bool, default=False
        The arithmetic contract, passed on as :class:`fastmlp.Trainer`'s ``fma``.
    random_state : int, numpy.random.RandomState or None, default=None
        Where the randomness comes from (initial parameters, shuffles, the
        early-stopping split), as in :class:`FastMLPClassifier`.
    verbose : bool or int, default=False
        Print one line per epoch: its training cost, validation R² (with
        ``early_stopping``) and time.

    Attributes
    ----------
    n_features_in_ : int
        The number of features seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        The feature names seen during :meth:`fit`, when ``X`` had string column names.
    n_outputs_ : int
        The number of targets.
    target_mean_, target_scale_ : ndarray of shape (n_outputs_,)
        Each target's mean and standard deviation (1 where it is 0), which
        standardise it for training.
    trainer_ : fastmlp.Trainer
        The trained network, on standardised targets.
    loss_curve_ : list of float
        The training cost of each epoch trained, in standard units.
    n_iter_ : int
        The number of epochs trained.
    validation_scores_ : list of float or None
        With ``early_stopping``, the R² on the held-out data after each epoch
        of :meth:`fit`; otherwise, and after a :meth:`partial_fit`, ``None``.
    best_validation_score_ : float or None
        The best of ``validation_scores_``.

    See Also
    --------
    FastMLPClassifier : the classifier, whose conventions this follows.
    sklearn.neural_network.MLPRegressor : scikit-learn's own perceptron.

    Examples
    --------
    >>> from sklearn.datasets import make_friedman1
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from fastmlp.sklearn import FastMLPRegressor
    >>> X, y = make_friedman1(n_samples=1000, random_state=0)
    >>> model = make_pipeline(StandardScaler(), FastMLPRegressor(random_state=0))
    >>> model.fit(X[:800], y[:800]).score(X[800:], y[800:]) > 0.9
    True
    """

    _score_name = "R²"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # one output neuron per target
        return tags

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        *,
        activation="relu",
        learning_rate=0.01,
        batch_size=32,
        epochs=50,
        l2=0.0,
        momentum=None,
        nesterov=False,
        optimizer="sgd",
        betas=(0.9, 0.999),
        eps=1e-8,
        dropout=0.0,
        init="scaled",
        schedule=None,
        early_stopping=None,
        validation_fraction=0.1,
        dtype="float64",
        threads=1,
        fma=False,
        random_state=None,
        verbose=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.l2 = l2
        self.momentum = momentum
        self.nesterov = nesterov
        self.optimizer = optimizer
        self.betas = betas
        self.eps = eps
        self.dropout = dropout
        self.init = init
        self.schedule = schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.dtype = dtype
        self.threads = threads
        self.fma = fma
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y):
        """Train a new network on ``(X, y)`` for ``epochs`` epochs.

        Any network of an earlier ``fit`` or :meth:`partial_fit` is discarded.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The training inputs, dense; converted to ``dtype``.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets: real numbers, one or several per sample.

        Returns
        -------
        self : FastMLPRegressor
            The fitted estimator.

        Raises
        ------
        ValueError, TypeError
            For a bad parameter or bad data, naming it, before any training.
        fastmlp.DivergenceError
            When training diverges: try a smaller ``learning_rate``. The
            estimator is then left unfitted.
        KeyboardInterrupt
            As in :meth:`FastMLPClassifier.fit`: the whole epochs are kept.
        """
        return self._unfitted_on_failure(self._fit, X, y)

    def partial_fit(self, X, y):
        """Train one epoch on ``(X, y)``, continuing the network trained so far.

        The first call (on an estimator not yet fitted) builds the network and
        takes the targets' means and scales from its data; later calls keep
        them, and the parameters the network was built with.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs of this chunk of training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their targets, as many per sample as the first call's.

        Returns
        -------
        self : FastMLPRegressor
            The estimator, trained one more epoch.
        """
        if not hasattr(self, "trainer_"):
            return self._unfitted_on_failure(self._partial_fit_first, X, y)
        X, y = self._validated(X, y, self.trainer_.dtype, reset=False)
        if y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y.shape[1]} targets per sample; the network was built for {self.n_outputs_}")
        self._train(X, self._standardised(y), 1)
        return self

    def predict(self, X):
        """The predicted targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            One value per target, in the targets' units, in float64 (the
            network's outputs mapped back); 1-D when :meth:`fit` (or the
            first :meth:`partial_fit`) was given 1-D targets.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self.trainer_.dtype, order="C")
        outputs = self.trainer_.forward(X).astype(np.float64)
        outputs *= self.target_scale_
        outputs += self.target_mean_
        return outputs[:, 0] if self._one_target else outputs

    # -- the work ------------------------------------------------------------

    def _fit(self, X, y):
        dtype = self._check_parameters()
        X, y = self._validated(X, y, dtype, reset=True)
        self._set_target_scale(y)
        y = self._standardised(y)
        rng = check_random_state(self.random_state)
        self._start(X.shape[1], self.n_outputs_, rng)
        validation_data = None
        if self.early_stopping is not None:
            X, X_val, y, y_val = self._split(X, y, rng)
            validation_data = (X_val, y_val)
        self._train(X, y, self.epochs, validation_data)
        return self

    def _partial_fit_first(self, X, y):
        dtype = self._check_parameters()
        X, y = self._validated(X, y, dtype, reset=True)
        self._set_target_scale(y)
        self._start(X.shape[1], self.n_outputs_, check_random_state(self.random_state))
        self._train(X, self._standardised(y), 1)
        return self

    def _validated(self, X, y, dtype, reset):
        """X checked and converted to ``dtype``, y to a 2-D float64 array of targets."""
        X, y = validate_data(self, X, y, reset=reset, dtype=dtype, order="C", multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        if reset:
            self._one_target = y.ndim == 1
        return X, y.reshape(len(y), -1)

    def _set_target_scale(self, y):
        self.n_outputs_ = y.shape[1]
        self.target_mean_ = y.mean(axis=0)
        scale = y.std(axis=0)
        self.target_scale_ = np.where(scale > 0, scale, 1.0)

    def _standardised(self, y):
        return (y - self.target_mean_) / self.target_scale_

    def _fit_trainer(self, X, y, epochs, validation_data, scores):
        """The trainer's fit; with ``validation_data``, stopping early on its R²."""
        best = None  # (R², epoch, training state)

        def record(epoch):
            score = None
            if validation_data is not None:
                X_val, y_val = validation_data
                score = float(r2_score(y_val, self.trainer_.forward(X_val)))
                scores.append(score)
                nonlocal best
                if best is None or score > best[0]:
                    best = (score, epoch.epoch, self.trainer_._training_state(generator=False))
                elif epoch.epoch - best[1] >= self.early_stopping:
                    if self.verbose:
                        self._report(epoch, score)
                    return False
            if self.verbose:
                self._report(epoch, score)
            return True

        self.trainer_.fit(X, y, epochs, callbacks=record)
        if best is not None and best[1] != len(self.trainer_.history):
            self.trainer_._restore_training_state(best[2])

    def _trainer_arguments(self, seed):
        arguments = self._common_trainer_arguments(seed)
        if self.momentum is None:
            arguments["momentum"] = 0.0 if self.optimizer == "adam" else 0.9
        return dict(activation=self.activation, cost="quadratic", output_activation="identity", **arguments)

    def _split(self, X, y, rng):
        """The training and validation parts for early stopping."""
        return self._held_out(X, y, rng)


def _classes_of(y, name):
    """The sorted distinct labels, in the labels' own dtype (unique_labels first refuses mixed kinds)."""
    unique_labels(y)
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(
            f"{name} holds only one class ({classes.tolist()[0]!r}); a classifier needs samples of at least 2 classes"
        )
    return classes


def _same_labels(a, b):
    try:
        return len(a) == len(b) and bool(np.all(a == b))
    except TypeError:  # labels of kinds that do not compare
        return False


def _hidden_layer_sizes(value):
    """``hidden_layer_sizes`` as a tuple of ints >= 1, or a clear error."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints such as (100,), got {value!r}")
    sizes = list(value)
    for i, n in enumerate(sizes):
        _check_int(f"hidden_layer_sizes[{i}]", n, 1)
    return tuple(int(n) for n in sizes)
