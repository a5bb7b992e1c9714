"""Variable-length sequences through the estimators: ragged lists, NaN padding."""


import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    RandomizedSearchCV,
    cross_val_score,
)
from sklearn.pipeline import make_pipeline

from sklearn_lstm import LSTMClassifier, LSTMRegressor
from sklearn_lstm.preprocessing import SequenceScaler

ESTIMATORS = [LSTMRegressor, LSTMClassifier]


def ragged_problem(n=60, n_features=2, min_len=2, max_len=9, seed=0):
    """Sequences of random lengths; the target depends on the whole sequence."""
    rng = np.random.RandomState(seed)
    lengths = rng.randint(min_len, max_len + 1, size=n)
    X = [rng.normal(size=(k, n_features)) for k in lengths]
    y = np.array([seq[:, 0].sum() for seq in X])
    return X, y


def nan_padded(X):
    longest = max(len(seq) for seq in X)
    out = np.full((len(X), longest, X[0].shape[1]), np.nan)
    for k, seq in enumerate(X):
        out[k, : len(seq)] = seq
    return out


def tiny(cls, **params):
    defaults = dict(hidden_layer_sizes=6, max_iter=4, batch_size=16, random_state=0)
    return cls(**{**defaults, **params})


def as_labels(cls, y):
    return (y > np.median(y)).astype(int) if cls is LSTMClassifier else y


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_ragged_list_and_nan_padding_give_the_same_model(cls):
    X, y = ragged_problem()
    y = as_labels(cls, y)
    from_list = tiny(cls).fit(X, y)
    from_padded = tiny(cls).fit(nan_padded(X), y)
    for a, b in zip(from_list._params(), from_padded._params()):
        np.testing.assert_array_equal(a, b)
    assert from_list.loss_curve_ == from_padded.loss_curve_


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_padded_predictions_equal_each_sequence_alone(cls):
    X, y = ragged_problem()
    est = tiny(cls, hidden_layer_sizes=(5, 4)).fit(X, as_labels(cls, y))
    method = "predict_proba" if cls is LSTMClassifier else "predict"
    batch = getattr(est, method)(nan_padded(X))
    alone = np.concatenate([getattr(est, method)(seq[np.newaxis]) for seq in X])
    # Different batch sizes change only the summation order of the products.
    np.testing.assert_allclose(batch, alone, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(getattr(est, method)(X), alone, rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_padding_values_do_not_matter():
    X, y = ragged_problem()
    est = tiny(LSTMRegressor).fit(X, y)
    padded = nan_padded(X)
    # Predicting a padded batch twice, with the padding moved around by a
    # different batch composition, gives the same values for each sequence.
    order = np.random.RandomState(1).permutation(len(X))
    np.testing.assert_allclose(
        est.predict(padded)[order], est.predict(padded[order]), rtol=1e-12
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_univariate_ragged_sequences():
    rng = np.random.RandomState(0)
    X = [rng.normal(size=k) for k in rng.randint(2, 8, size=40)]
    y = np.array([seq.sum() for seq in X])
    est = tiny(LSTMRegressor).fit(X, y)
    assert est.n_features_in_ == 1
    assert est.predict(X).shape == (40,)
    np.testing.assert_allclose(
        est.predict(X[:3]), est.predict([seq[:, None] for seq in X[:3]]), rtol=1e-12
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_variable_length_learning_beats_the_mean():
    X, y = ragged_problem(n=300, n_features=1, max_len=12)
    X_test, y_test = ragged_problem(n=200, n_features=1, max_len=12, seed=1)
    est = LSTMRegressor(
        hidden_layer_sizes=16, learning_rate_init=0.01, batch_size=32, max_iter=40,
        random_state=0,
    ).fit(X, y)
    assert est.score(X_test, y_test) > 0.8


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("form", ["ragged", "nan-padded"])
def test_cross_validation_and_searches(cls, form):
    X, y = ragged_problem(n=48)
    y = as_labels(cls, y)
    if form == "nan-padded":
        X = nan_padded(X)
    cv = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(tiny(cls), X, y, cv=cv)
    assert scores.shape == (3,) and np.isfinite(scores).all()

    grid = GridSearchCV(tiny(cls), {"hidden_layer_sizes": [3, 5]}, cv=cv).fit(X, y)
    assert grid.best_estimator_.predict(X).shape == (48,)

    search = RandomizedSearchCV(
        tiny(cls),
        {"learning_rate_init": loguniform(1e-3, 1e-1)},
        n_iter=2,
        cv=cv,
        random_state=0,
    ).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("form", ["ragged", "nan-padded"])
def test_sequence_scaler_in_a_pipeline(form):
    X, y = ragged_problem(n=48)
    X = [seq * [1.0, 1000.0] + [0.0, 500.0] for seq in X]  # badly scaled feature
    if form == "nan-padded":
        X = nan_padded(X)
    pipe = make_pipeline(SequenceScaler(), tiny(LSTMRegressor)).fit(X, y)
    assert pipe.predict(X).shape == (48,)
    scaled = pipe[0].transform(X)
    values = np.concatenate(scaled) if form == "ragged" else scaled.reshape(-1, 2)
    values = values[~np.isnan(values).any(axis=1)]
    np.testing.assert_allclose(values.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(values.std(axis=0), 1.0, atol=1e-12)
    grid = GridSearchCV(
        pipe, {"sequencescaler__with_std": [True, False]}, cv=KFold(2)
    ).fit(X, y)
    assert set(grid.best_params_) == {"sequencescaler__with_std"}


@pytest.mark.parametrize(
    "X, match",
    [
        (np.array([[[1.0], [np.nan], [2.0]], [[1.0], [2.0], [3.0]]]), "sample 0"),
        (np.array([[[1.0, np.nan], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]]), "sample 0"),
        (np.array([[np.nan, np.nan], [1.0, 2.0]]), "sample 0"),
    ],
    ids=["nan-inside", "nan-in-some-features", "all-nan-sequence"],
)
def test_misplaced_nan_is_an_error_naming_the_sample(X, match):
    with pytest.raises(ValueError, match=f"(?i){match}"):
        tiny(LSTMRegressor).fit(X, [0.0, 1.0])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fitted_on_padded_predicts_other_lengths_and_keeps_input():
    X, y = ragged_problem()
    padded = nan_padded(X)
    before = padded.copy()
    est = clone(tiny(LSTMRegressor)).fit(padded, y)
    np.testing.assert_array_equal(padded, before)  # NaN where it was, unchanged
    longer = [np.vstack([seq, seq]) for seq in X[:5]]
    assert np.isfinite(est.predict(longer)).all()
