"""generate: each new step's input is the model's output after the step before,
which equals a loop of ``predict`` over growing prefixes."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sklearn_lstm import LSTMClassifier, LSTMRegressor


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _series_windows(n_windows=80, T=12):
    t = np.arange(n_windows + T + 1) * 0.3
    series = np.c_[np.sin(t), 0.5 * np.cos(0.7 * t)]  # (n, 2)
    X = np.stack([series[i : i + T] for i in range(n_windows)])
    return X, series


def _predict_loop(predict, prefixes, n_steps):
    """Recursive forecasting by hand: append predict's output for the prefix
    (its last step's, per step) and predict again."""
    out = []
    for prefix in prefixes:
        current, steps = np.asarray(prefix), []
        for _ in range(n_steps):
            pred = predict(current[np.newaxis])[0]
            nxt = pred[-1] if pred.ndim == 2 else pred  # per step: the last one
            steps.append(nxt)
            current = np.vstack([current, nxt])
        out.append(steps)
    return np.array(out)


@pytest.mark.parametrize("pooling", ["last", "mean", "none"])
def test_regressor_generate_equals_predict_loop(pooling):
    X, series = _series_windows()
    if pooling == "none":
        y = np.stack([series[i + 1 : i + 13] for i in range(len(X))])
    else:
        y = series[12 : 12 + len(X)]
    reg = LSTMRegressor((8, 6), pooling=pooling, max_iter=20, random_state=0)
    reg.fit(X, y)
    prefixes = [X[0], X[7][:5], X[30][:9]]  # ragged
    got = reg.generate(prefixes, 6)
    assert got.shape == (3, 6, 2)
    np.testing.assert_allclose(got, _predict_loop(reg.predict, prefixes, 6),
                               rtol=0, atol=1e-10)
    # NaN-padded prefixes are the same sequences.
    padded = np.full((3, 12, 2), np.nan)
    for i, p in enumerate(prefixes):
        padded[i, : len(p)] = p
    np.testing.assert_array_equal(reg.generate(padded, 6), got)


def test_regressor_fitted_on_2d_generates_2d():
    X, series = _series_windows()
    X2 = X[:, :, 0]
    reg = LSTMRegressor(5, max_iter=5, random_state=0).fit(X2, series[12:92, 0])
    out = reg.generate(X2[:4], 3)
    assert out.shape == (4, 3)
    assert np.isfinite(out).all()


def _token_data(n=60, T=10, n_tokens=9, seed=0):
    """Sequences that mostly count up by one, modulo the vocabulary."""
    rng = np.random.RandomState(seed)
    start = rng.randint(1, n_tokens, size=n)
    ids = (start[:, np.newaxis] + np.arange(T) - 1) % (n_tokens - 1) + 1
    noise = rng.rand(n, T) < 0.1
    ids[noise] = rng.randint(1, n_tokens, size=noise.sum())
    return ids


def _sample_loop(clf, prefixes, n_steps, temperature, seed):
    """The documented draw, by hand, on predict_proba of growing prefixes."""
    rng = np.random.RandomState(seed)
    current = [list(p) for p in prefixes]
    out = [[] for _ in prefixes]
    for _ in range(n_steps):
        proba = clf.predict_proba([np.array(c) for c in current])
        if isinstance(proba, list):  # per step, a list for a list: last steps
            proba = np.array([p[-1] for p in proba])
        if temperature == 0:
            chosen = proba.argmax(axis=1)
        else:
            w = proba ** (1 / temperature)
            cdf = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
            u = rng.random_sample(len(prefixes))
            chosen = np.minimum((cdf <= u[:, np.newaxis]).sum(axis=1),
                                len(clf.classes_) - 1)
        for i, k in enumerate(chosen):
            current[i].append(clf.classes_[k])
            out[i].append(clf.classes_[k])
    return np.array(out)


@pytest.mark.parametrize("pooling", ["none", "last"])
@pytest.mark.parametrize("temperature", [0, 0.5, 1.0, 2.0])
def test_classifier_generate_equals_sampling_loop(pooling, temperature):
    ids = _token_data()
    if pooling == "none":
        y = np.roll(ids, -1, axis=1)
        X = ids
    else:
        X, y = ids[:, :-1], ids[:, -1]
    clf = LSTMClassifier(12, embedding_dim=5, pooling=pooling, max_iter=30,
                         random_state=0).fit(X, y)
    prefixes = [X[0][:3], X[1], X[2][:6]]
    got = clf.generate(prefixes, 7, temperature=temperature, random_state=4)
    assert got.shape == (3, 7)
    expected = _sample_loop(clf, prefixes, 7, temperature, 4)
    np.testing.assert_array_equal(got, expected)


def test_generation_is_reproducible_and_temperature_matters():
    ids = _token_data(n=120, seed=1)
    clf = LSTMClassifier(16, embedding_dim=6, pooling="none", max_iter=60,
                         learning_rate_init=0.03, random_state=0)
    clf.fit(ids, np.roll(ids, -1, axis=1))
    prefixes = ids[:20, :4]
    a = clf.generate(prefixes, 15, temperature=1.0, random_state=7)
    np.testing.assert_array_equal(a, clf.generate(prefixes, 15, random_state=7))
    assert not np.array_equal(a, clf.generate(prefixes, 15, random_state=8))
    greedy = clf.generate(prefixes, 15, temperature=0)
    cold = clf.generate(prefixes, 15, temperature=0.01, random_state=7)
    hot = clf.generate(prefixes, 15, temperature=5.0, random_state=7)
    assert (cold == greedy).mean() > (hot == greedy).mean()
    assert (cold == greedy).mean() > 0.9  # near-ties may still differ


def test_zero_padded_token_prefixes():
    ids = _token_data()
    clf = LSTMClassifier(8, embedding_dim=4, pooling="none", max_iter=5,
                         random_state=0).fit(ids, np.roll(ids, -1, axis=1))
    ragged = [ids[0][:3], ids[1][:7]]
    padded = np.zeros((2, 7), dtype=int)
    padded[0, :3], padded[1] = ragged[0], ragged[1]
    np.testing.assert_array_equal(
        clf.generate(padded, 5, random_state=0), clf.generate(ragged, 5, random_state=0)
    )


def test_generate_does_not_modify_prefixes():
    X, series = _series_windows()
    reg = LSTMRegressor(5, max_iter=3, random_state=0).fit(X, series[12:92])
    prefix = X[:3].copy()
    reg.generate(prefix, 4)
    np.testing.assert_array_equal(prefix, X[:3])


def test_outputs_that_cannot_be_inputs():
    X, series = _series_windows()
    reg = LSTMRegressor(4, max_iter=2, random_state=0).fit(X, series[12:92, 0])
    with pytest.raises(ValueError, match="predicts 1 value.*reads 2 feature"):
        reg.generate(X[:2], 3)
    clf = LSTMClassifier(4, max_iter=2, random_state=0).fit(X, X[:, 0, 0] > 0)
    with pytest.raises(ValueError, match="reads numbers, not token ids"):
        clf.generate(X[:2], 3)
    ids = _token_data()
    words = np.array(["a", "b", "c"])[ids[:, 0] % 3]
    clf = LSTMClassifier(4, embedding_dim=3, max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="not integer ids"):
        clf.fit(ids, words).generate(ids[:2], 3)
    with pytest.raises(ValueError, match=r"class \d+ is not a token .*ids 1 to 8"):
        clf.fit(ids, ids[:, 0] + 3).generate(ids[:2], 3)
    token_reg = LSTMRegressor(4, embedding_dim=3, max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="reads token ids"):
        token_reg.fit(ids, ids[:, 0] * 1.0).generate(ids[:2], 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_steps": 0}, "n_steps"),
    ({"n_steps": 2.0}, "n_steps"),
    ({"n_steps": 2, "temperature": -1}, "temperature"),
    ({"n_steps": 2, "temperature": np.inf}, "temperature"),
])
def test_bad_generate_arguments(kwargs, match):
    ids = _token_data()
    clf = LSTMClassifier(4, embedding_dim=3, max_iter=2, random_state=0)
    clf.fit(ids, np.roll(ids, -1, axis=1)[:, 0])
    with pytest.raises(ValueError, match=match):
        clf.generate(ids[:2], **kwargs)
