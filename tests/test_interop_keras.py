"""sklearn_lstm.interop and Keras 3: from_keras, to_keras, round trips.

Two references, both Keras computing:

* float64, to 1e-10: Keras' own Embedding / LSTM / Bidirectional layers run on
  each sequence alone (no padding, hence no mask), then its pooling and its
  Dense layer's weights applied in NumPy. Unmasked, Keras' recurrent layers
  compute in float64 (rounding leaves ~1e-16).
* the whole Keras model on padded batches (masks), to 1e-6: Keras 3 computes
  some ops of float64 layers in float32 (its ``result_type`` demotes 64-bit
  dtypes, keras-team/keras#23223: ``Dense``'s matmul, the selection at masked
  steps), which leaves ~1e-7.

Round trips are compared bit for bit.
"""

import os
import pickle
import sys

import numpy as np
import pytest
from _gradcheck import same_weights, sigmoid, softmax

from sklearn_lstm import LSTMClassifier, LSTMRegressor
from sklearn_lstm.interop import from_keras, to_keras

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
layers = keras.layers

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning",
    "ignore::UserWarning",  # Keras' notes on masks and pooling layers
    "ignore:__array__ implementation:DeprecationWarning",  # Keras under NumPy 2
)
N, T, F = 6, 5, 3
LENGTHS = np.array([5, 2, 4, 1, 3, 5])
F64 = "float64"


def padded(seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(N, T, F))
    X[np.arange(T) >= LENGTHS[:, None]] = np.nan
    return X


def token_ids(seed=0):
    ids = np.random.RandomState(seed).randint(1, 9, size=(N, T))
    ids[np.arange(T) >= LENGTHS[:, None]] = 0
    return ids


def numpy_out(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def keras_reference(model, X):
    """Keras' layers on each sequence alone, pooling and Dense (with its
    activation) in NumPy."""
    rows = []
    for i, n in enumerate(LENGTHS):
        h = X[i : i + 1, :n]
        for layer in model.layers:
            if isinstance(layer, (layers.InputLayer, layers.Masking, layers.Dropout)):
                continue
            if isinstance(layer, layers.GlobalAveragePooling1D):
                h = h.mean(axis=1)
            elif isinstance(layer, layers.GlobalMaxPooling1D):
                h = h.max(axis=1)
            elif isinstance(layer, layers.Dense):
                kernel, bias = layer.get_weights()
                h = h @ kernel + bias
                h = {"softmax": softmax, "sigmoid": sigmoid}.get(
                    layer.get_config()["activation"], lambda z: z)(h)
            else:
                h = numpy_out(layer(h))
        rows.append(h[0])
    return rows


def whole_model(model, X):
    """The Keras model on the padded batch (zeros or 0 ids at padding)."""
    return numpy_out(model(np.nan_to_num(X) if X.dtype.kind == "f" else X))


def build(kind):
    """A Keras model with Keras' initialisation, and the estimator and classes
    that describe it."""
    keras.utils.set_random_seed(0)
    if kind == "embedding":
        inputs = keras.Input((None,), dtype="int64")
        x = layers.Embedding(9, 3, mask_zero=True, dtype=F64)(inputs)
    else:
        inputs = keras.Input((None, F), dtype=F64)
        x = layers.Masking(0.0, dtype=F64)(inputs)
    if kind == "last":
        x = layers.LSTM(4, dtype=F64)(x)
        outputs = layers.Dense(2, dtype=F64)(x)
        est, classes = LSTMRegressor(4), None
    elif kind == "bidirectional_mean":
        x = layers.Bidirectional(layers.LSTM(3, return_sequences=True, dtype=F64),
                                 dtype=F64)(x)
        x = layers.Bidirectional(layers.LSTM(4, return_sequences=True, dtype=F64),
                                 dtype=F64)(x)
        x = layers.GlobalAveragePooling1D(dtype=F64)(x)
        outputs = layers.Dense(3, activation="softmax", dtype=F64)(x)
        est = LSTMClassifier((3, 4), bidirectional=True, pooling="mean")
        classes = ["x", "y", "z"]
    elif kind == "max":
        x = layers.LSTM(4, return_sequences=True, dtype=F64)(x)
        x = layers.LSTM(4, return_sequences=True, dtype=F64)(x)
        x = layers.GlobalMaxPooling1D(dtype=F64)(x)
        outputs = layers.Dense(1, activation="sigmoid", dtype=F64)(x)
        est, classes = LSTMClassifier((4, 4), pooling="max"), [0, 1]
    elif kind == "none":
        x = layers.Bidirectional(layers.LSTM(3, return_sequences=True, dtype=F64),
                                 dtype=F64)(x)
        x = layers.Dropout(0.5)(x)
        outputs = layers.Dense(1, dtype=F64)(x)
        est, classes = LSTMRegressor(3, bidirectional=True, pooling="none"), None
    else:  # embedding, bidirectional, last
        x = layers.Bidirectional(layers.LSTM(3, dtype=F64), dtype=F64)(x)
        outputs = layers.Dense(1, dtype=F64)(x)
        est, classes = LSTMRegressor(3, bidirectional=True, embedding_dim=3), None
    return keras.Model(inputs, outputs), est, classes


def test_keras_defaults_are_our_cell():
    config = layers.LSTM(4).get_config()
    assert config["activation"] == "tanh"
    assert config["recurrent_activation"] == "sigmoid"
    assert config["unit_forget_bias"] and config["use_bias"]
    assert layers.Bidirectional(layers.LSTM(4)).merge_mode == "concat"


@pytest.mark.parametrize(
    "kind", ["last", "bidirectional_mean", "max", "none", "embedding"]
)
def test_from_keras_and_to_keras_compute_what_keras_computes(kind):
    model, estimator, classes = build(kind)
    X = token_ids() if kind == "embedding" else padded()
    reference = keras_reference(model, X)
    keras_out = whole_model(model, X)
    est = from_keras(model, estimator=estimator, classes=classes)
    if kind == "none":
        got = est.predict(X)
        valid = np.arange(T) < LENGTHS[:, None]
        for i, n in enumerate(LENGTHS):
            np.testing.assert_allclose(got[i, :n], reference[i][:, 0], rtol=0,
                                       atol=1e-10)
        np.testing.assert_allclose(got[valid], keras_out[..., 0][valid], atol=1e-6)
    else:
        got = est.predict_proba(X) if classes is not None else est.predict(X)
        got = got.reshape(N, -1)
        if kind == "max":  # one sigmoid output: P(classes[1])
            got = got[:, 1:]
        np.testing.assert_allclose(got, np.array(reference), rtol=0, atol=1e-10)
        np.testing.assert_allclose(got, keras_out, rtol=0, atol=1e-6)

    # ours -> Keras: the raw outputs of our predictions, on padded batches.
    back = to_keras(est)
    raw = whole_model(back, X)
    if kind == "bidirectional_mean":
        raw = softmax(raw)
    elif kind == "max":
        raw = sigmoid(raw)
    if kind == "none":
        np.testing.assert_allclose(raw[..., 0][valid], got[valid], atol=1e-6)
    else:
        np.testing.assert_allclose(raw, got, rtol=0, atol=1e-6)
    # ... and back again, bit for bit.
    again = from_keras(back, estimator=estimator, classes=classes)
    assert same_weights(again, est)


def test_round_trip_of_a_fitted_model_is_bitwise():
    X = padded()
    y = (np.nan_to_num(X)[:, 0, 0] > 0).astype(int)
    for dtype in (np.float64, np.float32):
        clf = LSTMClassifier((3, 2), bidirectional=True, max_iter=2,
                             random_state=0).fit(X.astype(dtype), y)
        model = to_keras(clf)
        assert model.layers[-1].get_weights()[0].dtype == dtype
        again = from_keras(model, estimator=clf, classes=clf.classes_)
        assert same_weights(again, clf)
        np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    again.partial_fit(X, y)
    pickle.loads(pickle.dumps(again)).predict(X)


def test_to_keras_without_masking_and_the_maximum_it_cannot_write():
    X = np.nan_to_num(padded())
    reg = LSTMRegressor(3, max_iter=1, random_state=0).fit(X, X[:, 0, 0])
    model = to_keras(reg, mask_value=None)
    assert not any(isinstance(layer, layers.Masking) for layer in model.layers)
    np.testing.assert_allclose(whole_model(model, X)[:, 0], reg.predict(X), atol=1e-6)
    bi_max = LSTMRegressor(3, bidirectional=True, pooling="max", max_iter=1).fit(
        X, X[:, 0, 0]
    )
    with pytest.raises(ValueError, match="GlobalMaxPooling1D ignores masks"):
        to_keras(bi_max)


def test_from_keras_errors():
    model, estimator, _ = build("last")
    with pytest.raises(ValueError, match=r"\(4,\) hidden units.*=5"):
        from_keras(model, estimator=LSTMRegressor(5))
    with pytest.raises(ValueError, match="pooling='last'.*pooling='mean'"):
        from_keras(model, estimator=LSTMRegressor(4, pooling="mean"))
    with pytest.raises(ValueError, match="classes is required"):
        from_keras(model, estimator=LSTMClassifier(4))
    inputs = keras.Input((None, F))
    gru = keras.Model(inputs, layers.Dense(1)(layers.GRU(4)(inputs)))
    with pytest.raises(ValueError, match=r"\(GRU\) has no counterpart"):
        from_keras(gru, estimator=LSTMRegressor(4))
    relu = keras.Model(inputs, layers.Dense(1, activation="relu")(
        layers.LSTM(4)(inputs)))
    with pytest.raises(ValueError, match="activation='relu'"):
        from_keras(relu, estimator=LSTMRegressor(4))
    hard = keras.Model(inputs, layers.Dense(1)(
        layers.LSTM(4, recurrent_activation="hard_sigmoid")(inputs)))
    with pytest.raises(ValueError, match="recurrent_activation='hard_sigmoid'"):
        from_keras(hard, estimator=LSTMRegressor(4))
    with pytest.raises(TypeError, match="keras.Model"):
        from_keras([model], estimator=estimator)
    unbuilt = keras.Sequential([layers.LSTM(4), layers.Dense(1)])  # no input shape
    with pytest.raises(ValueError, match="no weights yet.*keras.Input"):
        from_keras(unbuilt, estimator=LSTMRegressor(4))


def test_missing_keras_is_a_clear_import_error(monkeypatch):
    X = np.nan_to_num(padded())
    reg = LSTMRegressor(3, max_iter=1).fit(X, X[:, 0, 0])
    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(ImportError, match=r'pip install "sklearn-lstm\[keras\]"'):
        to_keras(reg)
    with pytest.raises(ImportError, match="from_keras needs Keras 3"):
        from_keras(None, estimator=reg)
