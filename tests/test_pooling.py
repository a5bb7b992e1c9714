"""bidirectional and pooling through the estimators, above all pooling="none".

With ``pooling="none"`` the model predicts one output per time step: y holds one
target per step in the form of X, predictions come back in that form, padding
steps count nowhere, and scores run over the valid steps. The engine's values and
gradients have their own gold tests (test_engine_directions.py,
test_torch_gold_directions.py); here the estimators are checked the way users call
them, against sklearn metrics and NumPy computed by hand.

Models are tiny (3 hidden units, a dozen sequences of at most 6 steps, 1-4
epochs): the module runs in a few seconds on two cores. scikit-learn's own checks
at bidirectional=True, pooling="mean" are in test_common.py.
"""

import copy
from itertools import combinations, product

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import (
    accuracy_score,
    log_loss,
    mean_absolute_error,
    r2_score,
)
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from sklearn_lstm import LSTMClassifier, LSTMRegressor

# Tests stop training at max_iter on purpose.
pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

ESTIMATORS = [LSTMRegressor, LSTMClassifier]
POOLINGS = ["last", "mean", "max", "none"]


# --------------------------------------------------------------------- data
def step_problem(n=12, n_features=2, n_outputs=1, max_len=6, seed=0):
    """Ragged sequences (2 to ``max_len`` steps) with one target per step: the
    running sum of the first ``n_outputs`` features."""
    rng = np.random.RandomState(seed)
    lengths = rng.randint(2, max_len + 1, size=n)
    X = [rng.normal(size=(k, n_features)) for k in lengths]
    y = [seq[:, :n_outputs].cumsum(axis=0) for seq in X]
    if n_outputs == 1:
        y = [targets[:, 0] for targets in y]
    return X, y


def step_labels(y, names=("down", "up")):
    """One label per step: whether the running sum is positive."""
    return [np.where(targets > 0, names[1], names[0]) for targets in y]


def targets_for(cls, y):
    return step_labels(y) if cls is LSTMClassifier else y


def padded(sequences, fill=np.nan, dtype=float):
    """The sequences stacked into one array, right-padded with ``fill``."""
    longest = max(len(seq) for seq in sequences)
    trailing = np.shape(sequences[0])[1:]
    out = np.full((len(sequences), longest, *trailing), fill, dtype=dtype)
    for k, seq in enumerate(sequences):
        out[k, : len(seq)] = seq
    return out


def padded_targets(cls, targets, fill=None):
    """Per-step targets padded like X, holding ``fill`` at the padding steps
    (by default NaN for values, None for labels): what the estimators ignore."""
    if cls is LSTMClassifier:
        return padded(targets, fill, object)
    return padded(targets, np.nan if fill is None else fill)


# Padding that would show if it were read: far off for values, a class for labels.
GARBAGE = {LSTMRegressor: 1e3, LSTMClassifier: "up"}


def valid_mask(sequences):
    """(n, longest) booleans: which steps of the padded array are in a sequence."""
    lengths = np.array([len(seq) for seq in sequences])
    return np.arange(lengths.max()) < lengths[:, np.newaxis]


def tiny(cls, **params):
    defaults = dict(hidden_layer_sizes=3, max_iter=2, pooling="none", random_state=0)
    return cls(**{**defaults, **params})


def all_weights(est):
    """Every parameter array, reverse directions included."""
    arrays = [array for layer in est.lstm_coefs_ for array in layer.values()]
    return arrays + list(est.coefs_) + list(est.intercepts_)


def assert_same_weights(a, b):
    for wa, wb in zip(all_weights(a), all_weights(b), strict=True):
        assert_array_equal(wa, wb)


def metric(cls):
    return accuracy_score if cls is LSTMClassifier else r2_score


# ------------------------------------------------- per-step forms of output
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_regressor_predicts_each_step_in_the_form_of_x(n_outputs):
    X, y = step_problem(n_outputs=n_outputs)
    est = tiny(LSTMRegressor).fit(X, y)
    per_step = () if n_outputs == 1 else (n_outputs,)

    from_list = est.predict(X)
    assert isinstance(from_list, list)
    assert [p.shape for p in from_list] == [(len(seq), *per_step) for seq in X]

    # An array and a list of the same sequences are read into the same padded
    # batch: the same computation, bit for bit.
    rectangular = np.stack([seq[:2] for seq in X])  # every sequence has >= 2 steps
    from_array = est.predict(rectangular)
    assert from_array.shape == (len(X), 2, *per_step)
    assert_array_equal(from_array, np.stack(est.predict(list(rectangular))))

    from_padded = est.predict(padded(X))
    valid = valid_mask(X)
    assert from_padded.shape == (*valid.shape, *per_step)
    assert np.isnan(from_padded[~valid]).all()
    assert_array_equal(from_padded[valid], np.concatenate(from_list))


@pytest.mark.parametrize("names", [("down", "up"), (0, 1)], ids=["str", "int"])
def test_classifier_predicts_labels_and_probabilities_per_step(names):
    X, y = step_problem()
    labels = step_labels(y, names)
    est = tiny(LSTMClassifier).fit(X, labels)
    assert_array_equal(est.classes_, names)

    predicted = est.predict(X)
    proba = est.predict_proba(X)
    log_proba = est.predict_log_proba(X)
    for seq, pred, p, log_p in zip(X, predicted, proba, log_proba, strict=True):
        assert pred.shape == (len(seq),)
        assert set(pred) <= set(names)
        assert p.shape == log_p.shape == (len(seq), 2)
        assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
        assert_allclose(np.exp(log_p), p, rtol=1e-12)
        # The labels are those of the most probable class.
        assert_array_equal(pred, np.asarray(names)[p.argmax(axis=1)])

    valid = valid_mask(X)
    padded_pred = est.predict(padded(X))
    if isinstance(names[0], str):
        # Labels that are not numbers: None at padding.
        assert padded_pred.dtype == object
        assert all(label is None for label in padded_pred[~valid])
    else:
        # Numeric labels: floats, NaN at padding.
        assert padded_pred.dtype == np.float64
        assert np.isnan(padded_pred[~valid]).all()
    assert_array_equal(padded_pred[valid], np.concatenate(predicted))

    padded_proba = est.predict_proba(padded(X))
    assert padded_proba.shape == (*valid.shape, 2)
    assert np.isnan(padded_proba[~valid]).all()
    assert_allclose(padded_proba[valid].sum(axis=1), 1.0, rtol=1e-12)
    assert_array_equal(padded_proba[valid], np.concatenate(proba))
    padded_log_proba = est.predict_log_proba(padded(X))
    assert np.isnan(padded_log_proba[~valid]).all()
    assert_array_equal(padded_log_proba[valid], np.concatenate(log_proba))


def test_univariate_2d_x_with_one_target_per_column():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(10, 5))
    y = X.cumsum(axis=1)
    est = tiny(LSTMRegressor).fit(X, y)
    assert est.n_features_in_ == 5  # 2D X: columns, as everywhere in sklearn
    pred = est.predict(X)
    assert pred.shape == (10, 5)
    expected = r2_score(y.ravel(), pred.ravel())
    assert est.score(X, y) == pytest.approx(expected, rel=1e-12)

    # The same with trailing NaN: a shorter first sequence.
    X[0, 3:] = y[0, 3:] = np.nan
    est = tiny(LSTMRegressor).fit(X, y)
    pred = est.predict(X)
    valid = ~np.isnan(X)
    assert_array_equal(np.isnan(pred), ~valid)
    assert est.score(X, y) == pytest.approx(
        r2_score(y[valid], pred[valid]), rel=1e-12
    )


# ------------------------------------------------------ padding is ignored
def test_regression_targets_at_padding_steps_change_nothing():
    X, y = step_problem()
    X_padded = padded(X)
    reference = tiny(LSTMRegressor, max_iter=3).fit(X_padded, padded(y))
    # 1e300 would overflow the squared error if it were ever read.
    for fill in [0.0, -7.5, 1e300]:
        y_padded = padded(y, fill)
        est = tiny(LSTMRegressor, max_iter=3).fit(X_padded, y_padded)
        assert_same_weights(est, reference)
        assert est.loss_curve_ == reference.loss_curve_
        assert est.score(X_padded, y_padded) == reference.score(X_padded, padded(y))


def test_labels_at_padding_steps_change_nothing():
    X, y = step_problem()
    labels = step_labels(y)
    X_padded = padded(X)
    reference = tiny(LSTMClassifier, max_iter=3)
    reference.fit(X_padded, padded_targets(LSTMClassifier, labels))
    for fill in ["never seen", "up", np.nan]:
        est = tiny(LSTMClassifier, max_iter=3)
        est.fit(X_padded, padded_targets(LSTMClassifier, labels, fill))
        # classes_ are the labels of the valid steps only.
        assert_array_equal(est.classes_, ["down", "up"])
        assert_same_weights(est, reference)


# ----------------------------------------------------------- equivalences
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_nan_padded_arrays_train_the_same_model_as_lists(cls):
    X, y = step_problem(n=20)
    targets = targets_for(cls, y)
    # Several shuffled mini-batches and dropout: the random draws must match too.
    params = dict(batch_size=4, max_iter=3, bidirectional=True, dropout=0.2)
    from_list = tiny(cls, **params).fit(X, targets)
    from_array = tiny(cls, **params).fit(padded(X), padded_targets(cls, targets))
    assert_same_weights(from_array, from_list)
    assert from_array.loss_curve_ == from_list.loss_curve_


@pytest.mark.parametrize("pooling", ["none", "mean"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_sample_weight_two_equals_the_sequence_twice(cls, pooling):
    X, y = step_problem(n=10)
    targets = targets_for(cls, y)
    if pooling != "none":
        targets = [steps[-1] for steps in targets]
    # One full batch per epoch, in a fixed order: the two fits add the same
    # terms in another order only, and three epochs do not grow that apart.
    params = dict(solver="sgd", shuffle=False, batch_size=50, max_iter=3,
                  learning_rate_init=0.1, pooling=pooling, bidirectional=True)
    weights = np.ones(len(X))
    weights[3] = 2.0
    weighted = tiny(cls, **params).fit(X, targets, sample_weight=weights)
    twice = tiny(cls, **params).fit(X + [X[3]], targets + [targets[3]])
    for a, b in zip(all_weights(weighted), all_weights(twice), strict=True):
        assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("form", ["list", "nan-padded"])
@pytest.mark.parametrize("cls, n_outputs", [
    (LSTMRegressor, 1), (LSTMRegressor, 2), (LSTMClassifier, 1)
])
def test_score_is_the_metric_over_all_valid_steps(cls, n_outputs, form):
    X, y = step_problem(n_outputs=n_outputs)
    targets = targets_for(cls, y)
    est = tiny(cls).fit(X, targets)
    sample_weight = np.random.RandomState(1).uniform(0.5, 2.0, size=len(X))

    # sklearn's metric on the concatenated valid steps, each step weighted by
    # its sequence's weight.
    steps_true = np.concatenate(targets)
    steps_pred = np.concatenate(est.predict(X))
    step_weights = np.repeat(sample_weight, [len(seq) for seq in X])
    expected = metric(cls)(steps_true, steps_pred)
    expected_weighted = metric(cls)(steps_true, steps_pred, sample_weight=step_weights)

    if form == "nan-padded":
        X, targets = padded(X), padded_targets(cls, targets, GARBAGE[cls])
    assert est.score(X, targets) == pytest.approx(expected, rel=1e-12)
    assert est.score(X, targets, sample_weight=sample_weight) == pytest.approx(
        expected_weighted, rel=1e-12
    )


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_per_step_targets_with_a_last_axis_of_one_warn_with_the_right_shape(cls):
    X, y = step_problem()
    targets = targets_for(cls, y)
    columns = [steps[:, np.newaxis] for steps in targets]
    # scikit-learn's column-vector advice (ravel y to (n_samples,)) would be wrong.
    with pytest.warns(DataConversionWarning, match=r"y of shape \(n_samples, n_time"):
        est = tiny(cls).fit(X, columns)
    assert_same_weights(est, tiny(cls).fit(X, targets))
    assert [p.shape for p in est.predict(X)] == [(len(seq),) for seq in X]


# --------------------------------------------------------------- bad y
LENGTHS = [3, 4, 5, 2, 3, 4]
RECTANGULAR = np.random.RandomState(0).normal(size=(6, 5, 2))
RAGGED = [np.random.RandomState(k).normal(size=(k, 2)) for k in LENGTHS]
BAD_TARGETS = {
    "1D": (RECTANGULAR, np.arange(6) % 2,
           r"one target per time step.*\(6, 5\).*got y of shape \(6,\)"),
    "one step too many": (RECTANGULAR, np.arange(36).reshape(6, 6) % 2,
                          r"\(6, 5\).*got y of shape \(6, 6\)"),
    "a sequence missing": (RAGGED, [np.arange(k) % 2 for k in LENGTHS[:-1]],
                           "y holds 5 sequences of targets but X holds 6"),
    "a sequence too long": (
        RAGGED, [np.arange(k + (i == 2)) % 2 for i, k in enumerate(LENGTHS)],
        r"y\[2\] has shape \(6,\) but X\[2\] has 5 time step",
    ),
    "mixed trailing shapes": (
        RAGGED,
        [np.arange(k) % 2 for k in LENGTHS[:3]]
        + [np.ones((k, 2), dtype=int) for k in LENGTHS[3:]],
        r"different numbers of outputs per step \(trailing shapes \(\), \(2,\)\)",
    ),
}


@pytest.mark.parametrize("problem", BAD_TARGETS, ids=list(BAD_TARGETS))
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_per_step_targets_in_another_form_than_x_are_named(cls, problem):
    X, y, message = BAD_TARGETS[problem]
    with pytest.raises(ValueError, match=message):
        tiny(cls).fit(X, y)


@pytest.mark.parametrize("same_y", [True, False], ids=["same y", "y of the change"])
@pytest.mark.parametrize("method", ["warm_start", "partial_fit"])
@pytest.mark.parametrize("fitted, change, message", [
    ({"pooling": "none"}, {"pooling": "mean"},
     "pooling is 'mean' but the fitted model has 'none'"),
    ({"pooling": "last"}, {"pooling": "none"},
     "pooling is 'none' but the fitted model has 'last'"),
    ({}, {"bidirectional": True},
     "bidirectional is True but the fitted model has False"),
    ({"bidirectional": True}, {"bidirectional": False},
     "bidirectional is False but the fitted model has True"),
], ids=["none to mean", "last to none", "to bidirectional", "from bidirectional"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_changing_the_architecture_between_fits_is_named(
    cls, fitted, change, message, method, same_y
):
    X, y = step_problem()
    per_step = targets_for(cls, y)
    per_sequence = np.array([targets[-1] for targets in per_step])
    if method == "warm_start":
        est = tiny(cls, warm_start=True, **fitted)
        train, first_call = est.fit, {}
    else:
        est = tiny(cls, **fitted)
        train = est.partial_fit
        first_call = {"classes": ["down", "up"]} if cls is LSTMClassifier else {}
    y_fitted = per_step if est.pooling == "none" else per_sequence
    train(X, y_fitted, **first_call)
    est.set_params(**change)
    # Whether y is the one of the fitted model (the usual mistake) or in the
    # form the new pooling reads, the message names the change, not y.
    y_changed = per_step if est.pooling == "none" else per_sequence
    with pytest.raises(ValueError, match=message):
        train(X, y_fitted if same_y else y_changed)


# ------------------------------------------------------------ combinations
def combination_data(cls, pooling, form):
    """Sequences in ``form`` and targets for ``pooling``: per step or per sequence."""
    X, y = step_problem(n=8, max_len=5)
    if form == "rectangular":
        X = [seq[:2] for seq in X]
        y = [targets[:2] for targets in y]
    targets = targets_for(cls, y)
    if pooling != "none":
        targets = np.array([steps[-1] for steps in targets])
        if cls is LSTMClassifier:
            targets[:2] = ["down", "up"]  # both classes, whatever the data
        return (padded(X) if form != "ragged list" else X), targets, X
    if cls is LSTMClassifier:  # both classes at the first step
        targets[0][0], targets[1][0] = "down", "up"
    if form == "ragged list":
        return X, targets, X
    return padded(X), padded_targets(cls, targets), X


@pytest.mark.parametrize(
    "cls, pooling, bidirectional, form, dtype",
    list(product(ESTIMATORS, POOLINGS, [False, True],
                 ["rectangular", "ragged list", "nan-padded"],
                 [np.float32, np.float64])),
)
def test_every_combination_fits_predicts_and_scores(
    cls, pooling, bidirectional, form, dtype
):
    X, y, sequences = combination_data(cls, pooling, form)
    X = [seq.astype(dtype) for seq in X] if isinstance(X, list) else X.astype(dtype)
    est = tiny(
        cls, hidden_layer_sizes=(3, 2), pooling=pooling, bidirectional=bidirectional,
        dropout=0.2, recurrent_dropout=0.2, batch_size=4,
    ).fit(X, y)
    assert all(w.dtype == dtype for w in all_weights(est))
    assert np.isfinite(est.score(X, y))

    pred = est.predict(X)
    if pooling != "none":
        assert pred.shape == (len(sequences),)
    elif form == "ragged list":
        assert [p.shape for p in pred] == [(len(seq),) for seq in sequences]
    else:
        assert pred.shape == valid_mask(sequences).shape
    if cls is LSTMRegressor:
        values = np.concatenate(pred) if isinstance(pred, list) else pred
        assert values.dtype == dtype
        if form == "nan-padded" and pooling == "none":
            assert_array_equal(np.isnan(values), ~valid_mask(sequences))
        else:
            assert np.isfinite(values).all()
    else:
        proba = est.predict_proba(X)
        rows = np.concatenate(proba) if isinstance(proba, list) else proba
        rows = rows.reshape(-1, 2)
        rows = rows[~np.isnan(rows).any(axis=1)]  # padding steps hold NaN
        n_rows = sum(map(len, sequences)) if pooling == "none" else len(sequences)
        assert len(rows) == n_rows
        tolerance = 1e-6 if dtype == np.float32 else 1e-12
        assert_allclose(rows.sum(axis=1), 1.0, rtol=tolerance)


# ----------------------------------------------- per step with other options
def test_regression_loss_is_the_mean_over_valid_steps():
    X, y = step_problem(n_outputs=2)
    sample_weight = np.random.RandomState(1).uniform(0.5, 2.0, size=len(X))
    # alpha=0: no penalty; one batch per epoch, whose loss is measured at the
    # weights the epoch starts from.
    est = tiny(LSTMRegressor, alpha=0.0, max_iter=1, batch_size=len(X))
    est.fit(padded(X), padded(y, 1e3), sample_weight=sample_weight)
    errors = np.concatenate(est.predict(X)) - np.concatenate(y)  # (n_steps, 2)
    step_weights = np.repeat(sample_weight, [len(seq) for seq in X])
    expected = 0.5 * np.average((errors**2).sum(axis=1), weights=step_weights)
    est.set_params(warm_start=True).fit(
        padded(X), padded(y, 1e3), sample_weight=sample_weight
    )
    assert est.loss_curve_[-1] == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("class_weight", [{"up": 3.0}, "balanced"])
def test_class_weight_weighs_each_step_by_its_label(class_weight):
    X, y = step_problem()
    labels = step_labels(y)
    # Padding labelled "up": it must count neither in the loss nor in the class
    # frequencies of "balanced".
    X_padded = padded(X)
    labels_padded = padded_targets(LSTMClassifier, labels, "up")
    sample_weight = np.random.RandomState(1).uniform(0.5, 2.0, size=len(X))
    est = tiny(
        LSTMClassifier, class_weight=class_weight, alpha=0.0, max_iter=1,
        batch_size=len(X),
    ).fit(X_padded, labels_padded, sample_weight=sample_weight)

    steps = np.concatenate(labels)
    if class_weight == "balanced":
        counts = {label: np.sum(steps == label) for label in ("down", "up")}
        factors = np.array([len(steps) / (2 * counts[label]) for label in steps])
    else:
        factors = np.where(steps == "up", 3.0, 1.0)
    step_weights = np.repeat(sample_weight, [len(seq) for seq in X]) * factors
    expected = log_loss(
        steps, np.concatenate(est.predict_proba(X)), sample_weight=step_weights,
        labels=est.classes_,
    )
    # The next epoch's only batch is measured at the weights held now.
    est.set_params(warm_start=True).fit(
        X_padded, labels_padded, sample_weight=sample_weight
    )
    assert est.loss_curve_[-1] == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_early_stopping_scores_the_valid_steps_of_the_validation_sequences(cls):
    X, y = step_problem(n=10)
    targets = targets_for(cls, y)
    # One epoch: the weights kept are the ones that were validated.
    est = tiny(cls, early_stopping=True, validation_fraction=0.2, max_iter=1)
    est.fit(padded(X), padded_targets(cls, targets, GARBAGE[cls]))
    assert len(est.validation_scores_) == 1
    # Which 2 of the 10 sequences were held out is the estimator's draw; its
    # score must be the metric over the steps of one such pair.
    pred = est.predict(X)
    pair_scores = [
        metric(cls)(
            np.concatenate([targets[i], targets[j]]),
            np.concatenate([pred[i], pred[j]]),
        )
        for i, j in combinations(range(len(X)), 2)
    ]
    matches = np.isclose(pair_scores, est.validation_scores_[0], rtol=1e-12, atol=0)
    assert matches.any()


def test_partial_fit_per_step_multiclass_with_classes_on_the_first_call():
    X, y = step_problem()
    names = np.array(["down", "flat", "up"])
    labels = [names[np.digitize(targets, [-0.5, 0.5])] for targets in y]
    # The first call shows two of the three classes.
    first = [np.where(steps == "up", "flat", steps) for steps in labels[:6]]
    est = tiny(LSTMClassifier).partial_fit(X[:6], first, classes=names)
    assert_array_equal(est.classes_, names)
    proba = est.predict_proba(X)
    assert [p.shape for p in proba] == [(len(seq), 3) for seq in X]
    assert_allclose(np.concatenate(proba).sum(axis=1), 1.0, rtol=1e-12)
    est.partial_fit(X[6:], labels[6:])
    assert est.n_iter_ == 2
    unseen = [np.where(steps == "up", "sideways", steps) for steps in labels]
    with pytest.raises(ValueError, match="classes not in"):
        est.partial_fit(X, unseen)


@pytest.mark.parametrize("kind", ["binary", "multilabel"])
@pytest.mark.parametrize("form", ["rectangular", "list"])
def test_partial_fit_first_call_trains_as_one_epoch_of_fit(kind, form):
    # Binary labels per step, (n, T), look like a multilabel indicator matrix,
    # and per-step indicator rows (n, T, k) like nothing sklearn knows: the kind
    # of targets is that of the steps.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(10, 5, 2))
    if kind == "binary":
        y, classes, per_step = (X[:, :, 0] > 0).astype(int), [0, 1], ()
    else:
        y = np.stack([X[:, :, 0] > 0, X[:, :, 1] > 0, X.sum(axis=2) > 0], axis=2)
        y, classes, per_step = y.astype(int), [0, 1, 2], (3,)
    if form == "list":
        X, y = list(X), list(y)
    incremental = tiny(LSTMClassifier).partial_fit(X, y, classes=classes)
    once = tiny(LSTMClassifier, max_iter=1).fit(X, y)
    assert_same_weights(incremental, once)
    pred = incremental.predict(X)
    if form == "list":
        assert [p.shape for p in pred] == [(5, *per_step)] * 10
    else:
        assert pred.shape == (10, 5, *per_step)
    assert_array_equal(np.asarray(pred), np.asarray(once.predict(X)))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_warm_start_per_step_continues_where_fit_stopped(cls):
    X, y = step_problem()
    targets = targets_for(cls, y)
    params = dict(bidirectional=True, batch_size=4)
    est = tiny(cls, warm_start=True, **params).fit(X, targets)
    est.fit(X, targets)
    straight = tiny(cls, max_iter=4, **params).fit(X, targets)
    assert est.n_iter_ == 4
    # The optimizer's state and the shuffling stream carry over: the same steps.
    assert est.loss_curve_ == straight.loss_curve_
    assert_same_weights(est, straight)


def test_grid_search_over_pooling_and_bidirectional():
    X, y = step_problem(n=16)
    # pooling="none" reads one target per step; the others one per sequence.
    per_sequence = np.array([targets[-1] for targets in y])
    grid = {"pooling": ["last", "mean", "max"], "bidirectional": [False, True]}
    search = GridSearchCV(tiny(LSTMRegressor), grid, cv=KFold(2)).fit(X, per_sequence)
    assert len(search.cv_results_["params"]) == 6
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()

    search = GridSearchCV(
        tiny(LSTMRegressor), {"bidirectional": [False, True]}, cv=KFold(2)
    ).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    pred = search.predict(X)
    assert [p.shape for p in pred] == [(len(seq),) for seq in X]


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_cross_val_score_of_a_per_step_model_scores_the_valid_steps(cls):
    X, y = step_problem(n=15)
    targets = targets_for(cls, y)
    cv = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(tiny(cls), X, targets, cv=cv)
    expected = []
    for train, test in cv.split(X):
        est = tiny(cls).fit([X[i] for i in train], [targets[i] for i in train])
        pred = est.predict([X[i] for i in test])
        steps = np.concatenate([targets[i] for i in test])
        expected.append(metric(cls)(steps, np.concatenate(pred)))
    assert_allclose(scores, expected, rtol=1e-12)


def per_step_mean_absolute_error(estimator, X, y):
    """A scorer for per-step predictions: minus the mean absolute error over all
    valid steps, for X and y as lists of sequences or as NaN-padded arrays.

    Pass it as ``scoring=`` to cross_val_score or GridSearchCV. Scorers made by
    ``make_scorer`` hand ``y`` and ``predict(X)`` to the metric as they are,
    a list of sequences or an array with NaN at padding, which sklearn's
    metrics reject.
    """
    pred = estimator.predict(X)
    if isinstance(pred, list):
        return -mean_absolute_error(np.concatenate(y), np.concatenate(pred))
    valid = ~np.isnan(pred)  # the padding holds NaN
    return -mean_absolute_error(np.asarray(y)[valid], pred[valid])


def test_another_scorer_on_per_step_output_flattens_the_valid_steps():
    X, y = step_problem(n=15)
    cv = KFold(3)
    scores = cross_val_score(
        tiny(LSTMRegressor), X, y, cv=cv, scoring=per_step_mean_absolute_error
    )
    expected = []
    for train, test in cv.split(X):
        est = tiny(LSTMRegressor).fit([X[i] for i in train], [y[i] for i in train])
        errors = [est.predict([X[i]])[0] - y[i] for i in test]
        expected.append(-np.mean(np.abs(np.concatenate(errors))))
    assert_allclose(scores, expected, rtol=1e-12)

    # NaN-padded X and y (whatever y holds at the padding) train the same models.
    padded_scores = cross_val_score(
        tiny(LSTMRegressor), padded(X), padded(y, 1e3), cv=cv,
        scoring=per_step_mean_absolute_error,
    )
    assert_allclose(padded_scores, expected, rtol=1e-12)


# ------------------------------------------------------- inputs untouched
@pytest.mark.parametrize("form", ["list", "rectangular", "nan-padded"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_nothing_the_user_passed_is_modified(cls, form):
    X, y = step_problem()
    targets = targets_for(cls, y)
    if form == "rectangular":
        X, targets = np.stack([seq[:2] for seq in X]), np.stack(
            [steps[:2] for steps in targets])
    elif form == "nan-padded":
        X, targets = padded(X), padded_targets(cls, targets, GARBAGE[cls])
    sample_weight = np.linspace(0.5, 2.0, len(X))
    passed = (X, targets, sample_weight)
    copies = copy.deepcopy(passed)

    est = tiny(cls).fit(X, targets, sample_weight=sample_weight)
    est.predict(X)
    est.score(X, targets, sample_weight=sample_weight)
    if cls is LSTMClassifier:
        est.predict_proba(X)
        est.predict_log_proba(X)
    est.partial_fit(X, targets, sample_weight=sample_weight)

    for now, before in zip(passed, copies, strict=True):
        assert type(now) is type(before)
        assert len(now) == len(before)
        for a, b in zip(now, before, strict=True):
            assert_array_equal(a, b)


def test_alpha_penalises_the_reverse_kernels_as_the_forward_ones():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(8, 5, 2))
    y = rng.normal(size=8)
    est = LSTMRegressor((3, 2), bidirectional=True, max_iter=1, random_state=0)
    est.fit(X, y)
    params = est._params()
    weights = np.ones(len(X))
    _, plain = est.set_params(alpha=0.0)._loss_grad(X, y[:, None], weights, params)
    _, penalised = est.set_params(alpha=0.5)._loss_grad(X, y[:, None], weights, params)
    # alpha / (2 n) * ||W||^2 over every kernel, recurrent kernel and output
    # weight, in both directions; no bias.
    kernels = ("kernel", "recurrent_kernel",
               "kernel_reverse", "recurrent_kernel_reverse")
    expected = [
        0.5 / len(X) * layer[name] if name in kernels else np.zeros_like(layer[name])
        for layer in est.lstm_coefs_
        for name in ("kernel", "recurrent_kernel", "bias", "kernel_reverse",
                     "recurrent_kernel_reverse", "bias_reverse")
    ] + [0.5 / len(X) * est.coefs_[0], np.zeros_like(est.intercepts_[0])]
    for got, base, want in zip(penalised, plain, expected, strict=True):
        assert_allclose(got - base, want, rtol=1e-12, atol=1e-15)
