"""Streams: a sequence fed a few steps at a time gets the predictions of its
prefixes (or, with one output per step, the per-step predictions)."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_lstm import LSTMClassifier, LSTMRegressor
from sklearn_lstm._stream import SequenceStream

T = 9


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(n=24, F=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, T, F))
    return X, rng


def _prefix_predictions(predict, X):
    """What ``predict`` gives for each prefix X[:, :t + 1], stacked (n, T, ...)."""
    return np.stack([predict(X[:, : t + 1]) for t in range(X.shape[1])], axis=1)


def _fed_in_chunks(method, X, cuts):
    """The stream's predictions for X (n, T, ...) fed in the chunks ``cuts``."""
    bounds = [0, *cuts, X.shape[1]]
    return np.concatenate(
        [method(X[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:])], axis=1
    )


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("hidden", [5, (6, 4)])
def test_regressor_stream_equals_prefix_predictions(pooling, hidden):
    X, _ = _data()
    y = np.c_[X[:, :, 0].sum(axis=1), X[:, :, 1].max(axis=1)]
    reg = LSTMRegressor(hidden, pooling=pooling, max_iter=15, random_state=0)
    reg.fit(X, y)
    stream = reg.stream(n_streams=4)
    got = _fed_in_chunks(stream.predict, X[:4], [1, 2, 6])
    expected = _prefix_predictions(reg.predict, X[:4])
    assert got.shape == (4, T, 2)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_per_step_stream_equals_per_step_predict():
    X, _ = _data()
    y = np.cumsum(X[:, :, 0], axis=1)
    reg = LSTMRegressor((6, 5), pooling="none", max_iter=15, random_state=0)
    reg.fit(X, y)
    stream = reg.stream(3)
    got = _fed_in_chunks(stream.predict, X[:3], [4, 5])
    np.testing.assert_allclose(got, reg.predict(X[:3]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "none"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_stream_labels_and_probabilities(pooling, n_classes):
    X, rng = _data()
    if pooling == "none":
        y = (X[:, :, 0] > 0).astype(int) + (n_classes == 3) * (X[:, :, 1] > 1)
    else:
        y = rng.randint(n_classes, size=len(X))
    clf = LSTMClassifier(6, pooling=pooling, max_iter=10, random_state=0).fit(X, y)
    per_step = pooling == "none"

    def expected(method):
        if per_step:
            return method(X[:5])
        return _prefix_predictions(method, X[:5])

    proba = _fed_in_chunks(clf.stream(5).predict_proba, X[:5], [3])
    np.testing.assert_allclose(proba, expected(clf.predict_proba), atol=1e-12)
    labels = _fed_in_chunks(clf.stream(5).predict, X[:5], [1, 7])
    np.testing.assert_array_equal(labels, expected(clf.predict))


@pytest.mark.parametrize("pooling", ["last", "mean", "none"])
def test_token_stream(pooling):
    rng = np.random.RandomState(1)
    ids = rng.randint(1, 12, size=(30, T))
    y = np.roll(ids, -1, axis=1) if pooling == "none" else ids[:, 0] % 3
    clf = LSTMClassifier(
        7, embedding_dim=4, pooling=pooling, max_iter=10, random_state=0
    ).fit(ids, y)
    stream = clf.stream(2)
    got = _fed_in_chunks(stream.predict_proba, ids[:2], [2, 3])
    if pooling == "none":
        expected = clf.predict_proba(ids[:2])
    else:
        expected = _prefix_predictions(clf.predict_proba, ids[:2])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # One stream: a 1D array of ids.
    single = clf.stream()
    got = np.concatenate([single.predict(ids[3, :4]), single.predict(ids[3, 4:])])
    if pooling == "none":
        np.testing.assert_array_equal(got, clf.predict(ids[3:4])[0])
    else:
        np.testing.assert_array_equal(
            got, _prefix_predictions(clf.predict, ids[3:4])[0]
        )


def test_float32_model_streams_in_float32():
    X, _ = _data()
    X = X.astype(np.float32)
    reg = LSTMRegressor(5, max_iter=5, random_state=0).fit(X, X[:, :, 0].sum(1))
    stream = reg.stream()
    out = stream.predict(X[0])
    assert out.dtype == np.float32
    np.testing.assert_allclose(
        out, _prefix_predictions(reg.predict, X[:1])[0], rtol=1e-5, atol=1e-5
    )


def test_one_stream_forms_and_reset():
    X, _ = _data()
    reg = LSTMRegressor(5, max_iter=5, random_state=0).fit(X, X[:, :, 0].sum(1))
    stream = reg.stream()
    one = stream.predict(X[0])  # (k, F): one stream, no streams' axis
    assert one.shape == (T,)
    stream.reset()
    again = stream.predict(X[0:1])  # (1, k, F)
    assert again.shape == (1, T)
    np.testing.assert_array_equal(again[0], one)
    assert stream.predict(X[0, :1]).shape == (1,)


def test_pickled_stream_continues_where_it_was():
    X, _ = _data()
    reg = LSTMRegressor(5, pooling="mean", max_iter=5, random_state=0)
    reg.fit(X, X[:, :, 0].sum(1))
    stream = reg.stream(2)
    stream.predict(X[:2, :4])
    copy = pickle.loads(pickle.dumps(stream))
    np.testing.assert_array_equal(copy.predict(X[:2, 4:]), stream.predict(X[:2, 4:]))


def test_stream_keeps_the_weights_it_was_made_with():
    X, _ = _data()
    y = X[:, :, 0].sum(1)
    reg = LSTMRegressor(5, max_iter=5, random_state=0).fit(X, y)
    before = reg.predict(X[:1])
    stream = reg.stream()
    reg.partial_fit(X, y)
    assert not np.array_equal(reg.predict(X[:1]), before)
    np.testing.assert_allclose(stream.predict(X[0])[-1], before[0], atol=1e-12)


def test_stream_does_not_modify_input():
    X, _ = _data()
    reg = LSTMRegressor(5, max_iter=5, random_state=0).fit(X, X[:, :, 0].sum(1))
    chunk = X[:2, :3].copy()
    reg.stream(2).predict(chunk)
    np.testing.assert_array_equal(chunk, X[:2, :3])


def test_regressor_stream_has_no_predict_proba():
    X, _ = _data()
    reg = LSTMRegressor(5, max_iter=2, random_state=0).fit(X, X[:, 0, 0])
    assert not hasattr(reg.stream(), "predict_proba")
    assert isinstance(reg.stream(), SequenceStream)


def test_bidirectional_model_cannot_stream():
    X, _ = _data()
    reg = LSTMRegressor(4, bidirectional=True, max_iter=2, random_state=0)
    reg.fit(X, X[:, 0, 0])
    with pytest.raises(ValueError, match="bidirectional model cannot be streamed"):
        reg.stream()


def test_unfitted_model_cannot_stream():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        LSTMRegressor().stream()


@pytest.mark.parametrize(
    "n_streams, error, match",
    [(0, ValueError, "at least 1"), (1.5, TypeError, "int"), (True, TypeError, "int")],
)
def test_bad_n_streams(n_streams, error, match):
    X, _ = _data()
    reg = LSTMRegressor(4, max_iter=2, random_state=0).fit(X, X[:, 0, 0])
    with pytest.raises(error, match=match):
        reg.stream(n_streams)


def test_bad_steps_are_named():
    X, _ = _data()
    reg = LSTMRegressor(4, max_iter=2, random_state=0).fit(X, X[:, 0, 0])
    two = reg.stream(2)
    with pytest.raises(ValueError, match="reads 2 sequences"):
        two.predict(X[0])
    with pytest.raises(ValueError, match="holds 3 sequences"):
        two.predict(X[:3])
    with pytest.raises(ValueError, match="4 features per step, but the model reads 3"):
        two.predict(np.zeros((2, 1, 4)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        two.predict(np.full((2, 1, 3), np.nan))
    with pytest.raises(ValueError, match="no step"):
        two.predict(np.zeros((2, 0, 3)))
    with pytest.raises(ValueError, match="same number of new steps in a call"):
        two.predict([np.zeros((2, 3)), np.zeros((3, 3))])
    with pytest.raises(ValueError, match="shape"):
        reg.stream().predict(np.zeros(3))
    with pytest.raises(TypeError, match="numbers"):
        reg.stream().predict(np.array([["a", "b", "c"]]))


def test_bad_token_ids_are_named():
    ids = np.random.RandomState(0).randint(1, 6, size=(20, 5))
    clf = LSTMClassifier(4, embedding_dim=3, max_iter=2, random_state=0)
    clf.fit(ids, ids[:, 0] % 2)
    stream = clf.stream()
    for bad in [[1, 0], [1, 6], [-1]]:
        with pytest.raises(ValueError, match="not a token of the embedding"):
            stream.predict(np.array(bad))
    with pytest.raises(ValueError, match="not integers"):
        stream.predict(np.array([1.5]))
    with pytest.raises(TypeError, match="integer token ids"):
        stream.predict(np.array(["a"]))
    # Integral floats are ids, as in predict.
    np.testing.assert_array_equal(
        clf.stream().predict(np.array([2.0, 3.0])), clf.stream().predict([2, 3])
    )
