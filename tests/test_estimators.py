"""LSTMRegressor and LSTMClassifier used the way scikit-learn users use estimators.

Models are kept tiny (a handful of hidden units, a few dozen samples, 5-40 epochs)
so that the whole module runs in well under a minute on two cores.
"""

import pickle
import sys
import warnings

import numpy as np
import pytest
from _data import first_step_classification, sum_regression
from _reference import reference_forward, sigmoid
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import loguniform, randint
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    RandomizedSearchCV,
    TimeSeriesSplit,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from sklearn_lstm import LSTMClassifier, LSTMRegressor

# Most tests stop training at max_iter on purpose; the warning has its own test.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ESTIMATORS = [LSTMRegressor, LSTMClassifier]


# --------------------------------------------------------------------- data
def multiclass_strings(n=90, n_timesteps=5, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_timesteps, 2))
    names = np.array(["down", "flat", "up"])
    codes = np.digitize(X[:, 0, 0], [-0.43, 0.43])  # three roughly equal groups
    return X, names[codes]


def tiny(cls, **params):
    params = {"hidden_layer_sizes": 8, "max_iter": 10, "random_state": 0, **params}
    return cls(**params)


def all_weights(est):
    """The fitted arrays in flat order: [W_1, U_1, b_1, ..., W_out, b_out]."""
    arrays = []
    for layer in est.lstm_coefs_:
        arrays += [layer["kernel"], layer["recurrent_kernel"], layer["bias"]]
    return arrays + list(est.coefs_) + list(est.intercepts_)


# ------------------------------------------------------ scikit-learn tooling
def test_pipeline_with_standard_scaler_on_2d_input():
    X, y = sum_regression(n=160, n_timesteps=6)
    X2d = X[:, :, 0] * 10.0 + 3.0  # badly scaled on purpose
    pipe = make_pipeline(
        StandardScaler(),
        tiny(LSTMRegressor, learning_rate_init=0.02, batch_size=32, max_iter=40),
    )
    pipe.fit(X2d[:120], y[:120])
    assert pipe[-1].n_features_in_ == 6
    assert pipe.predict(X2d[120:]).shape == (40,)
    assert pipe.score(X2d[120:], y[120:]) > 0.8


def test_grid_search_parallel_on_3d_input():
    X, y = sum_regression(n=60, n_timesteps=5, n_features=2)
    grid = {"hidden_layer_sizes": [4, (6,)], "learning_rate_init": [0.005, 0.03]}
    search = GridSearchCV(
        tiny(LSTMRegressor, max_iter=8), grid, cv=KFold(3), n_jobs=2
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_params_["learning_rate_init"] in (0.005, 0.03)
    best = search.best_estimator_
    assert best.n_features_in_ == 2
    assert search.predict(X[:7]).shape == (7,)


def test_randomized_search_with_scipy_distributions():
    X, y = first_step_classification(n=60, n_timesteps=4)
    distributions = {
        "learning_rate_init": loguniform(1e-3, 1e-1),
        "alpha": loguniform(1e-6, 1e-2),
        "hidden_layer_sizes": randint(2, 7),
    }
    search = RandomizedSearchCV(
        tiny(LSTMClassifier, max_iter=6),
        distributions,
        n_iter=4,
        cv=2,
        random_state=0,
    ).fit(X, y)
    for params in search.cv_results_["params"]:
        assert 1e-3 <= params["learning_rate_init"] <= 1e-1
        assert 1e-6 <= params["alpha"] <= 1e-2
        assert 2 <= params["hidden_layer_sizes"] < 7
    best = search.best_estimator_
    n_hidden = search.best_params_["hidden_layer_sizes"]
    assert best.lstm_coefs_[0]["recurrent_kernel"].shape == (n_hidden, 4 * n_hidden)
    assert set(search.predict(X)) <= {0, 1}


def test_cross_val_score_with_time_series_split():
    # Windows over one noisy sine wave; predict the next value.
    rng = np.random.RandomState(0)
    series = np.sin(np.arange(130) * 0.3) + 0.05 * rng.normal(size=130)
    window = 8
    starts = range(len(series) - window)
    X = np.stack([series[i : i + window] for i in starts])[:, :, None]
    y = series[window:]
    scores = cross_val_score(
        tiny(LSTMRegressor, learning_rate_init=0.02, max_iter=30, shuffle=False),
        X,
        y,
        cv=TimeSeriesSplit(n_splits=3),
    )
    assert scores.shape == (3,)
    assert np.isfinite(scores).all()
    assert scores.min() > 0.8  # a constant (each fold's mean) scores <= 0


def test_cross_validate_binary_probabilistic_scorers():
    X, y = first_step_classification(n=90, n_timesteps=5)
    results = cross_validate(
        tiny(LSTMClassifier, learning_rate_init=0.03, max_iter=25),
        X,
        y,
        cv=3,
        scoring=["accuracy", "neg_log_loss", "roc_auc"],
    )
    for name in ("test_accuracy", "test_neg_log_loss", "test_roc_auc"):
        assert results[name].shape == (3,)
        assert np.isfinite(results[name]).all()
    assert results["test_accuracy"].mean() > 0.75
    assert results["test_roc_auc"].mean() > 0.8
    assert (results["test_neg_log_loss"] < 0).all()
    assert results["test_neg_log_loss"].mean() > -np.log(2)  # beats a coin flip


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_clone_is_unfitted_with_the_same_params(cls):
    X, y = first_step_classification(n=30, n_timesteps=4)
    est = tiny(cls, alpha=0.01, solver="rmsprop", max_iter=3).fit(X, y)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "coefs_")
    assert not hasattr(copy, "lstm_coefs_")
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    with pytest.raises(NotFittedError):
        copy.predict(X)
    check_is_fitted(est)


# ------------------------------------------------------------- persistence
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_pickle_round_trip_is_bitwise(cls):
    X, y = first_step_classification(n=40, n_timesteps=5)
    est = tiny(cls, max_iter=5).fit(X, y)
    restored = pickle.loads(pickle.dumps(est))
    assert_array_equal(restored.predict(X), est.predict(X))
    if cls is LSTMClassifier:
        assert_array_equal(restored.predict_proba(X), est.predict_proba(X))
        assert_array_equal(restored.classes_, est.classes_)
    # The optimizer state and the random stream travel too: training continues alike.
    est.partial_fit(X, y)
    restored.partial_fit(X, y)
    assert_array_equal(restored.predict(X), est.predict(X))
    assert restored.n_iter_ == est.n_iter_ == 6


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_same_random_state_is_bitwise_reproducible(cls):
    X, y = first_step_classification(n=50, n_timesteps=5)
    params = dict(
        max_iter=5, early_stopping=True, validation_fraction=0.2, shuffle=True
    )
    first = tiny(cls, random_state=3, **params).fit(X, y)
    second = tiny(cls, random_state=3, **params).fit(X, y)
    other = tiny(cls, random_state=4, **params).fit(X, y)
    method = "predict" if cls is LSTMRegressor else "predict_proba"
    assert_array_equal(getattr(first, method)(X), getattr(second, method)(X))
    assert first.loss_curve_ == second.loss_curve_
    assert not np.array_equal(getattr(first, method)(X), getattr(other, method)(X))


# ------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize(
    "in_dtype, out_dtype",
    [(np.float32, np.float32), (np.float64, np.float64), (np.int64, np.float64)],
)
def test_dtype_of_computation_follows_x(cls, in_dtype, out_dtype):
    X, y = first_step_classification(n=30, n_timesteps=4)
    X = (X * 3).astype(in_dtype)
    est = tiny(cls, max_iter=3).fit(X, y)
    for w in all_weights(est):
        assert w.dtype == out_dtype
    if cls is LSTMRegressor:
        assert est.predict(X).dtype == out_dtype
    else:
        assert est.predict_proba(X).dtype == out_dtype
        assert est.predict_log_proba(X).dtype == out_dtype
    assert np.isfinite(est.loss_)


@pytest.mark.parametrize("n_timesteps", [1, 3, 12])
def test_predict_on_sequences_of_another_length(n_timesteps):
    X, y = sum_regression(n=40, n_timesteps=6, n_features=2)
    est = tiny(LSTMRegressor, max_iter=5).fit(X, y)
    X_new, _ = sum_regression(n=7, n_timesteps=n_timesteps, n_features=2, seed=1)
    pred = est.predict(X_new)
    assert pred.shape == (7,)
    assert np.isfinite(pred).all()
    expected = reference_forward(X_new, all_weights(est))[:, 0]
    assert_allclose(pred, expected, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------ real learning
def test_regressor_learns_the_sum_of_a_sequence():
    X, y = sum_regression(n=260, n_timesteps=8)
    est = LSTMRegressor(
        hidden_layer_sizes=16, learning_rate_init=0.02, batch_size=32, max_iter=40,
        random_state=0,
    ).fit(X[:200], y[:200])
    assert est.score(X[200:], y[200:]) > 0.85  # a constant scores <= 0
    assert est.loss_curve_[-1] < 0.05 * est.loss_curve_[0]


def test_classifier_remembers_the_first_step():
    X, y = first_step_classification(n=300, n_timesteps=6)
    est = tiny(
        LSTMClassifier, learning_rate_init=0.02, batch_size=32, max_iter=30
    ).fit(X[:200], y[:200])
    baseline = max(np.mean(y[200:]), 1 - np.mean(y[200:]))
    assert est.score(X[200:], y[200:]) > max(0.9, baseline + 0.3)


def test_multi_output_regression():
    X, _ = sum_regression(n=150, n_timesteps=5, n_features=2)
    Y = np.column_stack([X[:, :, 0].sum(axis=1), X[:, 0, 1] - X[:, -1, 1]])
    est = tiny(
        LSTMRegressor, learning_rate_init=0.02, batch_size=25, max_iter=40
    ).fit(X[:120], Y[:120])
    assert est.n_outputs_ == 2
    assert est.coefs_[0].shape == (8, 2)
    assert est.intercepts_[0].shape == (2,)
    pred = est.predict(X[120:])
    assert pred.shape == (30, 2)
    assert est.score(X[120:], Y[120:]) > 0.5


def test_string_labels_multiclass():
    X, y = multiclass_strings()
    est = tiny(LSTMClassifier, learning_rate_init=0.03, max_iter=30).fit(X, y)
    assert_array_equal(est.classes_, ["down", "flat", "up"])
    assert est.out_activation_ == "softmax"
    assert est.n_outputs_ == 3
    assert est.coefs_[0].shape == (8, 3)
    pred = est.predict(X)
    assert pred.dtype.kind == "U"
    assert set(pred) <= {"down", "flat", "up"}
    proba = est.predict_proba(X)
    assert proba.shape == (90, 3)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_array_equal(pred, est.classes_[proba.argmax(axis=1)])
    assert est.score(X, y) > 0.6  # three balanced classes: a constant scores ~0.33


def test_string_labels_binary():
    X, y = first_step_classification(n=60, n_timesteps=4)
    labels = np.where(y == 1, "yes", "no")
    est = tiny(LSTMClassifier, max_iter=5).fit(X, labels)
    assert_array_equal(est.classes_, ["no", "yes"])
    assert est.coefs_[0].shape == (8, 1)
    assert est.out_activation_ == "logistic"
    assert set(est.predict(X)) <= {"no", "yes"}


def test_multilabel_indicator_targets():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5, 2))
    Y = np.column_stack([X[:, 0, 0] > 0, X[:, -1, 1] > 0, X[:, :, 0].sum(axis=1) > 0])
    Y = Y.astype(int)
    est = tiny(LSTMClassifier, learning_rate_init=0.03, max_iter=30).fit(X, Y)
    assert est.out_activation_ == "logistic"
    assert est.n_outputs_ == 3
    assert est.coefs_[0].shape == (8, 3)
    pred = est.predict(X)
    assert pred.shape == (120, 3)
    assert set(np.unique(pred)) <= {0, 1}
    proba = est.predict_proba(X)
    assert proba.shape == (120, 3)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert_array_equal(pred, (proba > 0.5).astype(int))
    assert (pred == Y).mean() > 0.75  # label-wise accuracy, chance is ~0.5


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_stacked_layers_shapes(cls):
    X, y = first_step_classification(n=30, n_timesteps=4, n_features=3)
    est = tiny(cls, hidden_layer_sizes=(6, 4, 5), max_iter=3).fit(X, y)
    shapes = [
        {k: v.shape for k, v in layer.items()} for layer in est.lstm_coefs_
    ]
    assert shapes == [
        {"kernel": (3, 24), "recurrent_kernel": (6, 24), "bias": (24,)},
        {"kernel": (6, 16), "recurrent_kernel": (4, 16), "bias": (16,)},
        {"kernel": (4, 20), "recurrent_kernel": (5, 20), "bias": (20,)},
    ]
    assert len(est.coefs_) == len(est.intercepts_) == 1
    assert est.coefs_[0].shape == (5, 1)
    assert est.intercepts_[0].shape == (1,)
    assert est.n_features_in_ == 3


# ---------------------------------------------------- attribute semantics
def test_fitted_attributes_regressor():
    X, y = sum_regression(n=50, n_timesteps=4)
    est = tiny(LSTMRegressor, max_iter=7, tol=0.0).fit(X, y)
    assert est.n_iter_ == 7
    assert len(est.loss_curve_) == 7
    assert est.loss_ == est.loss_curve_[-1]
    assert est.t_ == 7 * 50
    assert est.best_loss_ == min(est.loss_curve_)
    assert est.validation_scores_ is None
    assert est.best_validation_score_ is None
    assert est.n_outputs_ == 1
    assert est.out_activation_ == "identity"
    assert est.n_features_in_ == 1
    assert len(est.lstm_coefs_) == 1
    assert est.coefs_[0].shape == (8, 1)
    assert est.intercepts_[0].shape == (1,)
    assert not hasattr(est, "classes_")


def test_fitted_attributes_classifier():
    X, y = first_step_classification(n=40, n_timesteps=4)
    binary = tiny(LSTMClassifier, max_iter=4).fit(X, y)
    assert_array_equal(binary.classes_, [0, 1])
    assert binary.out_activation_ == "logistic"
    assert binary.n_outputs_ == 1
    assert binary.coefs_[0].shape == (8, 1)
    assert binary.t_ == 4 * 40
    proba = binary.predict_proba(X)
    assert proba.shape == (40, 2)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_allclose(binary.predict_log_proba(X), np.log(proba), rtol=1e-10, atol=1e-12)
    assert_array_equal(binary.predict(X), binary.classes_[proba.argmax(axis=1)])

    X3, y3 = multiclass_strings(n=45)
    multi = tiny(LSTMClassifier, max_iter=4).fit(X3, y3)
    proba = multi.predict_proba(X3)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_allclose(multi.predict_log_proba(X3), np.log(proba), rtol=1e-10, atol=1e-12)


def test_initialisation_follows_the_documented_scheme():
    # A negligible learning rate leaves the weights at their initial values.
    X, y = first_step_classification(n=20, n_timesteps=3, n_features=3)
    est = tiny(
        LSTMRegressor, hidden_layer_sizes=(5, 7), learning_rate_init=1e-13, alpha=0.0,
        max_iter=1,
    ).fit(X, y)
    n_inputs = 3
    for layer in est.lstm_coefs_:
        W, U, b = layer["kernel"], layer["recurrent_kernel"], layer["bias"]
        H = U.shape[0]
        limit = np.sqrt(6.0 / (n_inputs + 4 * H))
        assert np.abs(W).max() <= limit + 1e-9
        assert np.abs(W).max() > 0.5 * limit  # spread over the range, not tiny
        assert_allclose(U @ U.T, np.eye(H), atol=1e-8)
        expected_bias = np.zeros(4 * H)
        expected_bias[H : 2 * H] = 1.0
        assert_allclose(b, expected_bias, atol=1e-9)
        n_inputs = H
    limit = np.sqrt(6.0 / (7 + 1))
    assert np.abs(est.coefs_[0]).max() <= limit + 1e-9
    assert_allclose(est.intercepts_[0], 0.0, atol=1e-9)


@pytest.mark.parametrize("hidden", [3, (4, 3)])
def test_predictions_follow_the_documented_equations(hidden):
    X, y = sum_regression(n=30, n_timesteps=5, n_features=2)
    reg = tiny(LSTMRegressor, hidden_layer_sizes=hidden, max_iter=4).fit(X, y)
    expected = reference_forward(X, all_weights(reg))[:, 0]
    assert_allclose(reg.predict(X), expected, rtol=1e-10, atol=1e-12)

    Xc, yc = first_step_classification(n=30, n_timesteps=5)
    clf = tiny(LSTMClassifier, hidden_layer_sizes=hidden, max_iter=4).fit(Xc, yc)
    p1 = sigmoid(reference_forward(Xc, all_weights(clf))[:, 0])
    assert_allclose(clf.predict_proba(Xc)[:, 1], p1, rtol=1e-10, atol=1e-12)

    X2d = X[:, :, 0]
    reg2d = tiny(LSTMRegressor, hidden_layer_sizes=hidden, max_iter=4).fit(X2d, y)
    expected_2d = reference_forward(X2d, all_weights(reg2d))[:, 0]
    assert_allclose(reg2d.predict(X2d), expected_2d, rtol=1e-10)


def test_weights_are_live():
    X, y = sum_regression(n=30, n_timesteps=5, n_features=2)
    est = tiny(LSTMRegressor, max_iter=4).fit(X, y)
    before = est.predict(X)
    est.lstm_coefs_[0]["kernel"][...] = 0.0  # the network no longer sees the input
    after = est.predict(X)
    assert not np.array_equal(before, after)
    assert_allclose(after, after[0], rtol=1e-12)
    est.coefs_[0][...] = 0.0
    est.intercepts_[0][...] = 2.5
    assert_array_equal(est.predict(X), np.full(30, 2.5))


# ------------------------------------------- partial_fit, warm_start, ...
def test_partial_fit_regressor_one_epoch_per_call():
    X, y = sum_regression(n=40, n_timesteps=4)
    est = tiny(LSTMRegressor, learning_rate_init=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        for k in range(1, 16):
            est.partial_fit(X, y)
            assert est.n_iter_ == k
            assert len(est.loss_curve_) == k
            assert est.t_ == 40 * k
    assert est.loss_curve_[-1] < 0.5 * est.loss_curve_[0]


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_partial_fit_after_fit_keeps_the_optimizer_state(cls):
    # fit(3 epochs) + partial_fit == fit(4 epochs): same weights, same optimizer
    # moments, same random stream for the shuffling.
    X, y = first_step_classification(n=40, n_timesteps=4)
    est = tiny(cls, max_iter=3).fit(X, y)
    est.partial_fit(X, y)
    assert est.n_iter_ == 4
    assert len(est.loss_curve_) == 4
    assert est.t_ == 4 * 40
    straight = tiny(cls, max_iter=4).fit(X, y)
    assert_allclose(est.loss_curve_, straight.loss_curve_, rtol=1e-12)
    for a, b in zip(all_weights(est), all_weights(straight)):
        assert_allclose(a, b, rtol=1e-10, atol=1e-13)


def test_partial_fit_classifier_classes():
    X, y = multiclass_strings(n=45)
    est = tiny(LSTMClassifier)
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X, y)
    first = y != "up"  # the first batch does not show every class
    est.partial_fit(X[first], y[first], classes=["down", "flat", "up"])
    assert_array_equal(est.classes_, ["down", "flat", "up"])
    assert est.coefs_[0].shape == (8, 3)
    assert est.predict_proba(X).shape == (45, 3)
    est.partial_fit(X, y)  # classes may be omitted afterwards
    assert est.n_iter_ == 2
    assert len(est.loss_curve_) == 2


def test_partial_fit_refuses_one_class_as_fit_does():
    X, y = multiclass_strings(n=45)
    est = tiny(LSTMClassifier)
    with pytest.raises(ValueError, match=r"at least 2 classes.*holds 1: \['up'\]"):
        est.partial_fit(X[y == "up"], y[y == "up"], classes=["up", "up"])
    assert not hasattr(est, "classes_")  # nothing half-fitted
    est.partial_fit(X, y, classes=["down", "flat", "up"])
    assert_array_equal(est.classes_, ["down", "flat", "up"])


def test_warm_start_continues_training():
    X, y = sum_regression(n=50, n_timesteps=4)
    est = tiny(LSTMRegressor, learning_rate_init=0.02, max_iter=3, warm_start=True)
    est.fit(X, y)
    est.set_params(max_iter=4)
    est.fit(X, y)
    assert est.n_iter_ == 7
    assert len(est.loss_curve_) == 7
    assert est.t_ == 7 * 50
    assert est.loss_curve_[-1] < est.loss_curve_[2]
    straight = tiny(LSTMRegressor, learning_rate_init=0.02, max_iter=7).fit(X, y)
    assert_allclose(est.loss_curve_, straight.loss_curve_, rtol=1e-12)
    assert_allclose(est.predict(X), straight.predict(X), rtol=1e-10)

    # Without warm_start, fit starts over.
    est.set_params(warm_start=False, max_iter=3)
    est.fit(X, y)
    assert est.n_iter_ == 3
    assert len(est.loss_curve_) == 3


def test_early_stopping_on_noise_stops_and_restores_best_weights():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 4, 2))
    y = rng.normal(size=80)  # nothing to learn
    params = dict(
        learning_rate_init=0.03, max_iter=100, early_stopping=True,
        validation_fraction=0.25, n_iter_no_change=3,
    )
    est = tiny(LSTMRegressor, **params).fit(X, y)
    assert est.n_iter_ < 100
    assert len(est.validation_scores_) == est.n_iter_ == len(est.loss_curve_)
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.best_loss_ is None

    # Training stopped at the best epoch leaves the weights the long run restored.
    best_epoch = int(np.argmax(est.validation_scores_)) + 1
    assert best_epoch < est.n_iter_
    truncated = tiny(LSTMRegressor, **{**params, "max_iter": best_epoch}).fit(X, y)
    assert truncated.validation_scores_[-1] == est.best_validation_score_
    assert_array_equal(truncated.predict(X), est.predict(X))
    for a, b in zip(all_weights(truncated), all_weights(est)):
        assert_array_equal(a, b)


def test_early_stopping_classifier_scores_are_accuracies():
    X, y = multiclass_strings(n=60)
    est = tiny(
        LSTMClassifier, max_iter=8, early_stopping=True, validation_fraction=0.2,
    ).fit(X, y)
    scores = np.asarray(est.validation_scores_)
    assert len(scores) == est.n_iter_
    assert ((scores >= 0) & (scores <= 1)).all()
    assert_allclose(scores * 12, np.round(scores * 12))  # 12 validation samples
    assert est.best_validation_score_ == scores.max()


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = sum_regression(n=30, n_timesteps=4)
    tiny(LSTMRegressor, max_iter=4, verbose=True).fit(X, y)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    epochs = [line for line in lines if "loss" in line.lower()]
    assert len(epochs) == 4
    assert "1" in epochs[0] and "4" in epochs[-1]

    tiny(
        LSTMRegressor, max_iter=3, verbose=True, early_stopping=True,
        validation_fraction=0.2,
    ).fit(X, y)
    out = capsys.readouterr().out
    epochs = [line for line in out.splitlines() if "loss" in line.lower()]
    assert len(epochs) == 3
    assert all("validation" in line.lower() for line in epochs)


def test_silent_by_default(capsys):
    X, y = sum_regression(n=30, n_timesteps=4)
    tiny(LSTMRegressor, max_iter=3).fit(X, y)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_convergence_warning_when_max_iter_ends_training(cls):
    X, y = first_step_classification(n=30, n_timesteps=4)
    with pytest.warns(ConvergenceWarning, match="maximum iterations"):
        tiny(cls, max_iter=2).fit(X, y)


def test_warnings_point_at_the_users_line():
    X, y = first_step_classification(n=30, n_timesteps=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny(LSTMClassifier, max_iter=1).fit(X, y)  # the line warned about
        line = sys._getframe().f_lineno - 1
    assert [w.category for w in caught] == [ConvergenceWarning]
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)


def diverging(cls):
    """A huge SGD learning rate on a small problem: the loss explodes at once."""
    X, y = sum_regression(n=60, n_timesteps=6)
    if cls is LSTMClassifier:
        y = (y > np.median(y)).astype(int)
    est = tiny(
        cls, solver="sgd", learning_rate_init=1e6, batch_size=16, max_iter=30,
        max_grad_norm=None,
    )
    return est, X, y


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # checked in the next test
def test_divergence_raises_and_keeps_finite_weights():
    est, X, y = diverging(LSTMRegressor)
    with pytest.raises(ValueError, match="learning_rate_init"):
        est.fit(X, y)
    for w in all_weights(est):
        assert np.isfinite(w).all()


def test_divergence_leaks_no_numpy_runtime_warning():
    # The project turns RuntimeWarnings into errors: a diverging fit should end in
    # the library's ValueError, not in numpy's overflow / invalid-value warnings.
    est, X, y = diverging(LSTMRegressor)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ValueError, match="learning_rate_init"):
            est.fit(X, y)


def test_divergence_with_finite_loss_warns():
    # A classifier's weights grow without overflowing (saturated gates stop the
    # gradient), so its loss stays finite while it explodes: a warning says so.
    est, X, y = diverging(LSTMClassifier)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.warns(ConvergenceWarning, match="learning_rate_init"):
            est.fit(X, y)
    assert est.loss_ > 1e3 * min(est.loss_curve_)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls", [LSTMRegressor, LSTMClassifier])
def test_a_fit_raises_nothing_where_numpy_errors_are_raised(cls, dtype):
    # Under np.seterr(all="raise"), saturated gates and gradients that underflow
    # are no error of the fit: it trains, predicts and scores as with numpy's
    # defaults (a float32 regressor's weight gradients underflowed here).
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 10, 2)).astype(dtype)
    y = 3 * X[:, -1, 0]
    if cls is LSTMClassifier:
        y = y > 0
    est = cls(max_iter=30, learning_rate_init=0.1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = clone(est).fit(X, y).predict(X)
        with np.errstate(all="raise"):
            est.fit(X, y)
            assert_array_equal(est.predict(X), expected)
            est.score(X, y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_targets_too_large_for_the_loss_are_named(dtype):
    # Squared errors of targets near 1e160 (1e20 in float32) overflow: the cause
    # is the scale of y, not the learning rate, and nothing is trained.
    X, y = sum_regression(n=30, n_timesteps=4)
    huge = 1e160 if dtype is np.float64 else 1e20
    est = tiny(LSTMRegressor, max_iter=2)
    with pytest.raises(ValueError, match=r"y holds values up to .*Scale y") as info:
        est.fit(X.astype(dtype), y * huge)
    assert "learning_rate_init" not in str(info.value)
    assert not hasattr(est, "n_iter_")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sample_weights_or_alpha_out_of_range_are_named():
    X, y = sum_regression(n=30, n_timesteps=4)
    # Weights near 1e-300 make the penalty's factor alpha / sum(weights) overflow.
    est = tiny(LSTMRegressor, max_iter=2)
    with pytest.raises(ValueError, match="sample weights of a mini-batch sum to"):
        est.fit(X, y, sample_weight=np.full(len(X), 1e-300))
    # Only their ratios matter to the loss: scaled up, or without the penalty,
    # the same weights train.
    tiny(LSTMRegressor, max_iter=2).fit(X, y, sample_weight=np.full(len(X), 1.0))
    tiny(LSTMRegressor, max_iter=2, alpha=0.0).fit(
        X, y, sample_weight=np.full(len(X), 1e-300)
    )
    with pytest.raises(ValueError, match=r"alpha=1e\+300 is out of range"):
        tiny(LSTMRegressor, max_iter=2, alpha=1e300).fit(X, y)
    with pytest.raises(ValueError, match="sample_weight sums to inf"):
        tiny(LSTMRegressor, max_iter=2).fit(
            X, y, sample_weight=np.full(len(X), 1e308)
        )


@pytest.mark.parametrize(
    "solver, params",
    [
        ("adam", {"learning_rate_init": 0.02}),
        ("rmsprop", {"learning_rate_init": 0.01}),
        ("sgd", {"learning_rate_init": 0.1}),
        ("sgd", {"learning_rate_init": 0.1, "nesterovs_momentum": False}),
        ("sgd", {"learning_rate_init": 0.3, "momentum": 0.0}),
    ],
)
def test_every_solver_lowers_the_loss(solver, params):
    X, y = sum_regression(n=60, n_timesteps=5)
    est = tiny(LSTMRegressor, solver=solver, batch_size=20, max_iter=20, **params)
    est.fit(X, y)
    assert np.isfinite(est.loss_curve_).all()
    assert est.loss_curve_[-1] < 0.5 * est.loss_curve_[0]


@pytest.mark.parametrize("solver", ["adam", "rmsprop", "sgd"])
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
def test_learning_rate_schedules_run(solver, learning_rate):
    X, y = first_step_classification(n=30, n_timesteps=4)
    est = tiny(
        LSTMClassifier, solver=solver, learning_rate=learning_rate, max_iter=5,
        learning_rate_init=0.01,
    ).fit(X, y)
    assert est.n_iter_ == 5
    assert np.isfinite(est.loss_curve_).all()


def test_adaptive_schedule_lowers_the_rate_instead_of_stopping(capsys):
    X, y = sum_regression(n=30, n_timesteps=4)
    # A tol no epoch can meet: constant stops quickly, adaptive keeps dividing.
    common = dict(solver="sgd", learning_rate_init=1e-3, tol=1e3, n_iter_no_change=1,
                  max_iter=100)
    constant = tiny(LSTMRegressor, learning_rate="constant", **common).fit(X, y)
    adaptive = tiny(LSTMRegressor, learning_rate="adaptive", verbose=True, **common)
    adaptive.fit(X, y)
    assert constant.n_iter_ < adaptive.n_iter_ < 100
    assert "learning rate" in capsys.readouterr().out.lower()


def test_invscaling_slows_learning_down():
    X, y = sum_regression(n=40, n_timesteps=4)
    common = dict(solver="sgd", learning_rate_init=0.05, max_iter=10, shuffle=False)
    constant = tiny(LSTMRegressor, learning_rate="constant", **common).fit(X, y)
    inv = tiny(LSTMRegressor, learning_rate="invscaling", **common).fit(X, y)
    # The first epoch is identical; afterwards the rate is much smaller.
    assert inv.loss_curve_[0] == constant.loss_curve_[0]
    one_epoch = tiny(LSTMRegressor, **{**common, "max_iter": 1}).fit(X, y)
    start = all_weights(one_epoch)

    def moved(est):
        return sum(np.abs(a - b).sum() for a, b in zip(all_weights(est), start))

    moved_inv, moved_const = moved(inv), moved(constant)
    assert moved_inv < moved_const


def test_small_predictions_of_models_that_alternate():
    """Small predictions reuse a workspace kept by the thread: two models whose
    work arrays have the same total shape (H + F + 1 = 8 here) must not read each
    other's views, in either order."""
    rng = np.random.RandomState(0)
    X1, X2 = rng.normal(size=(10, 6, 2)), rng.normal(size=(10, 6, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = LSTMRegressor(5, max_iter=2, random_state=0).fit(X1, X1[:, 0, 0])
        b = LSTMRegressor((6, 6), max_iter=2, random_state=0).fit(X2, X2[:, 0, 0])
    expected_a = a.predict(X1[:3])
    expected_b = b.predict(X2[:3])
    for _ in range(2):
        np.testing.assert_array_equal(b.predict(X2[:3]), expected_b)
        np.testing.assert_array_equal(a.predict(X1[:3]), expected_a)
