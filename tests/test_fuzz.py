"""Whatever the public API is given, it answers with a result or a documented exception, never a crash."""

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastmlp import DivergenceError, ReferenceTrainer, StepDecay, Trainer

#: What the documentation says bad input gets.
DOCUMENTED = (TypeError, ValueError, MemoryError, DivergenceError)

_numeric_dtypes = st.sampled_from(["float64", "float32", "float16", "int64", "int8", "uint8", "bool", "complex128"])
_odd_values = st.sampled_from([None, "text", object(), [[1, 2], [3]], 3.5, [[]], b"bytes"])


@st.composite
def arrays(draw, shape=None):
    """Small arrays of any numeric dtype, NaN and infinities included, of the given shape or any
    (then now and then an odd object instead)."""
    if shape is None and draw(st.integers(0, 9)) == 0:
        return draw(_odd_values)
    dtype = np.dtype(draw(_numeric_dtypes))
    if shape is None:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
    elements = None
    if dtype.kind == "f":
        finite = draw(st.booleans())
        elements = st.floats(allow_nan=not finite, allow_infinity=not finite, width=dtype.itemsize * 8)
    elif dtype.kind in "iu":
        elements = st.integers(-3 if dtype.kind == "i" else 0, 12)
    arr = draw(hnp.arrays(dtype, shape, elements=elements))
    if draw(st.booleans()) and arr.ndim == 2:
        arr = np.asfortranarray(arr)
    if draw(st.booleans()):
        arr.flags.writeable = False
    return arr


@st.composite
def data_for(draw, sizes):
    """(X, y): half the time shaped for the network (any dtype, labels or targets), else anything."""
    if draw(st.integers(0, 2)) == 2:
        return draw(arrays()), draw(arrays())
    n = draw(st.integers(0, 80))  # 32 examples or more take the threaded path
    X = draw(arrays((n, sizes[0])))
    labels = hnp.arrays(np.int64, (n,), elements=st.integers(0, sizes[-1] - 1))
    y = draw(st.one_of(labels, labels, arrays((n,)), arrays((n, sizes[-1])), arrays()))
    return X, y


def usually(valid, invalid):
    """Valid values seven times in eight, so that most examples get past the constructor's dozen options."""
    return st.sampled_from([True] * 7 + [False]).flatmap(lambda ok: valid if ok else invalid)


layer_sizes = usually(
    st.lists(st.integers(1, 6), min_size=2, max_size=4),
    st.one_of(
        st.lists(st.integers(-1, 6), min_size=0, max_size=4),
        st.lists(st.one_of(st.integers(1, 6), st.sampled_from([2.0, "3", None, True])), min_size=1, max_size=3),
        _odd_values,
    ),
)


options = st.fixed_dictionaries(
    {},
    optional={
        "activation": usually(st.sampled_from(["sigmoid", "relu", "tanh"]), st.sampled_from(["softmax", None, 3])),
        "cost": usually(st.sampled_from(["quadratic", "cross_entropy", "log_likelihood"]),
                        st.sampled_from(["mse", None, 0])),
        "l2": usually(st.sampled_from([0.0, 0.1, 5.0]), st.one_of(st.floats(), st.sampled_from([-1, "1", None]))),
        "momentum": usually(st.sampled_from([0.0, 0.5, 0.99]), st.one_of(st.floats(), st.sampled_from([1, "0.9"]))),
        "init": usually(st.sampled_from(["standard", "scaled"]), st.sampled_from(["he", None])),
        "schedule": usually(st.sampled_from([None, "constant", StepDecay(1, 0.5)]), st.sampled_from(["step", 0.5, len])),
        "learning_rate": usually(st.floats(1e-3, 10.0), st.one_of(st.floats(), st.sampled_from([0, -1, True, "1", 1e300]))),
        "batch_size": usually(st.integers(1, 40), st.sampled_from([0, -2, 2.5, "10", None])),
        "dtype": usually(st.sampled_from(["float32", "float64", "f8", np.float32]),
                         st.sampled_from(["int32", None, np.float16, "nonsense"])),
        "threads": usually(st.integers(1, 3), st.sampled_from([0, -1, 300, 1.0, None])),
        "seed": usually(st.integers(0, 5), st.sampled_from([None, -2, "x", 1.5])),
    },
)


@settings(max_examples=10 * settings.default.max_examples, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    cls=st.sampled_from([Trainer, ReferenceTrainer]),
    sizes=layer_sizes,
    kwargs=options,
    epochs=usually(st.integers(0, 2), st.sampled_from([-1, 1.0, "2", None])),
    data=st.data(),
)
def test_only_documented_exceptions(cls, sizes, kwargs, epochs, data):
    try:
        trainer = cls(sizes, **kwargs)
    except DOCUMENTED as exc:
        event(f"constructor: {type(exc).__name__}")
        return
    X, y = data.draw(data_for(trainer.layer_sizes))
    validation = data.draw(st.one_of(st.none(), data_for(trainer.layer_sizes), _odd_values))
    patience = data.draw(usually(st.sampled_from([None, 1, 3]), st.sampled_from([0, 2.5, "3"])))
    for name, call in (
        ("fit", lambda: trainer.fit(X, y, epochs, validation_data=validation, early_stopping=patience)),
        ("forward", lambda: trainer.forward(X)),
        ("predict", lambda: trainer.predict(X)),
        ("score", lambda: trainer.score(X, y)),
        ("gradients", lambda: trainer.gradients(X, y)),
    ):
        try:
            result = call()
        except DOCUMENTED as exc:
            event(f"{name}: {type(exc).__name__}")
            continue
        event(f"{name}: a result")
        # What comes back is what was asked for, never garbage of another shape.
        if name in ("forward", "predict"):
            assert len(result) == len(X)
            if name == "forward":
                assert result.shape == (len(X), trainer.layer_sizes[-1]) and result.dtype == trainer.dtype
