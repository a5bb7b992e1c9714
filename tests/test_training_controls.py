"""Estimator-level training controls: gradient clipping, variational dropout,
sample and class weights, learning-rate schedules, the optimizer's state across
warm starts, Ctrl-C during fit, and the verbose progress lines.

Behaviour already covered by ``tests/test_estimators.py`` (solvers lowering the loss,
early stopping, warm start and partial_fit basics, divergence) is not repeated.
Models are tiny (4-8 hidden units, a few dozen samples, a few epochs) so that the
module runs in seconds.
"""

import copy
import pickle
import re
import signal
import threading
import warnings
from functools import partial

import _data
import numpy as np
import pytest
from _reference import reference_forward, sigmoid
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import recall_score
from sklearn.neural_network import MLPRegressor
from sklearn.utils._param_validation import InvalidParameterError

import sklearn_lstm._objective as objective_module
from sklearn_lstm import LSTMClassifier, LSTMRegressor
from sklearn_lstm._engine import forward
from sklearn_lstm._optimizers import AdamOptimizer, RMSPropOptimizer, SGDOptimizer

# Most fits stop at max_iter on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ESTIMATORS = [LSTMRegressor, LSTMClassifier]
SOLVERS = ["adam", "rmsprop", "sgd"]


# --------------------------------------------------------------------- data
# Smaller than the shared defaults: these tests fit many tiny models.
sum_regression = partial(_data.sum_regression, n=40, n_timesteps=4)
first_step_classification = partial(
    _data.first_step_classification, n=40, n_timesteps=4
)


def data_for(cls, **kwargs):
    if cls is LSTMRegressor:
        return sum_regression(**kwargs)
    return first_step_classification(**kwargs)


def tiny(cls, **params):
    params = {"hidden_layer_sizes": 6, "max_iter": 5, "random_state": 0, **params}
    return cls(**params)


def weights(est):
    """Copies of the live parameters, in the engine's order."""
    return [p.copy() for p in est._params()]


def assert_weights_equal(a, b):
    assert len(a) == len(b)
    for k, (x, y) in enumerate(zip(a, b)):
        assert_array_equal(x, y, err_msg=f"param {k}")


def assert_weights_close(a, b, rtol, atol=0.0):
    assert len(a) == len(b)
    for k, (x, y) in enumerate(zip(a, b)):
        assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=f"param {k}")


def weights_differ(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(a, b))


def penalised(params):
    """Kernels, recurrent kernels and output weights: not the biases."""
    n = len(params)
    return [p for k, p in enumerate(params) if k == n - 2 or (k < n - 2 and k % 3 != 2)]


# ------------------------------------------------------------ max_grad_norm
# One full-batch SGD step: momentum 0, no penalty, no shuffling, batch >= n.
SGD_STEP = dict(solver="sgd", momentum=0.0, alpha=0.0, shuffle=False, batch_size=1000,
                learning_rate_init=0.05, hidden_layer_sizes=(5, 4), random_state=0)


def clipping_setup(seed=0):
    """Data whose gradient norm at random O(1) weights is far above 0.1."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(12, 5, 3))
    y = 10.0 * rng.normal(size=12)
    start = [rng.normal(scale=0.5, size=p.shape)
             for p in tiny(LSTMRegressor, **SGD_STEP).partial_fit(X, y)._params()]
    return X, y, start


def one_sgd_step(X, y, start, **params):
    """Weights after one partial_fit step from ``start``, and the step's gradient."""
    est = tiny(LSTMRegressor, **{**SGD_STEP, **params}).partial_fit(X, y)
    for p, s in zip(est._params(), start):
        p[...] = s
    _, grads = est._loss_grad(X, y.reshape(-1, 1), np.ones(len(X)), est._params())
    est.partial_fit(X, y)
    return weights(est), grads


def global_norm(grads):
    return float(np.sqrt(sum(np.sum(g**2) for g in grads)))


def test_clipped_step_scales_the_whole_gradient():
    X, y, start = clipping_setup()
    lr, max_norm = SGD_STEP["learning_rate_init"], 0.1
    clipped, grads = one_sgd_step(X, y, start, max_grad_norm=max_norm)
    norm = global_norm(grads)
    assert norm > 10 * max_norm  # clipping really happens
    scale = max_norm / (norm + 1e-6)
    expected = [s - lr * scale * g for s, g in zip(start, grads)]
    assert_weights_close(clipped, expected, rtol=1e-10, atol=1e-13)
    # The step's global norm is the threshold: the direction is kept.
    step_norm = global_norm([c - s for c, s in zip(clipped, start)])
    assert step_norm == pytest.approx(lr * max_norm, rel=1e-5)

    # Against our own unclipped step, computed with max_grad_norm=None.
    unclipped, _ = one_sgd_step(X, y, start, max_grad_norm=None)
    for c, u, s in zip(clipped, unclipped, start):
        assert_allclose(c - s, (u - s) * scale, rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("threshold", [None, 1e6])
def test_no_clipping_below_the_threshold_or_when_disabled(threshold):
    X, y, start = clipping_setup()
    lr = SGD_STEP["learning_rate_init"]
    stepped, grads = one_sgd_step(X, y, start, max_grad_norm=threshold)
    assert global_norm(grads) < 1e6
    expected = [s - lr * g for s, g in zip(start, grads)]
    assert_weights_close(stepped, expected, rtol=1e-12, atol=1e-15)
    # Bitwise the same step as with clipping disabled.
    unclipped, _ = one_sgd_step(X, y, start, max_grad_norm=None)
    assert_weights_equal(stepped, unclipped)


def test_clipped_step_matches_torch_clip_grad_norm():
    torch = pytest.importorskip("torch")
    f64 = torch.float64
    X, y, start = clipping_setup(seed=1)
    lr, max_norm = SGD_STEP["learning_rate_init"], 0.05
    clipped, _ = one_sgd_step(X, y, start, max_grad_norm=max_norm)

    def t(a):
        return torch.tensor(np.ascontiguousarray(a), dtype=f64)

    # Our weights in per-layer nn.LSTM modules and an nn.Linear. torch's second bias
    # (bias_hh, zero) is frozen: ours has a single bias, and counting its gradient
    # twice would change the global norm.
    lstms, trained = [], []
    for k in range(2):
        W, U, b = start[3 * k : 3 * k + 3]
        lstm = torch.nn.LSTM(W.shape[0], U.shape[0], batch_first=True, dtype=f64)
        with torch.no_grad():
            lstm.weight_ih_l0.copy_(t(W.T))
            lstm.weight_hh_l0.copy_(t(U.T))
            lstm.bias_ih_l0.copy_(t(b))
            lstm.bias_hh_l0.zero_()
        lstm.bias_hh_l0.requires_grad_(False)
        lstms.append(lstm)
        trained += [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0]
    linear = torch.nn.Linear(*start[-2].shape, dtype=f64)
    with torch.no_grad():
        linear.weight.copy_(t(start[-2].T))
        linear.bias.copy_(t(start[-1]))
    trained += [linear.weight, linear.bias]

    seq = t(X)
    for lstm in lstms:
        seq, _ = lstm(seq)
    out = linear(seq[:, -1])
    loss = 0.5 * ((t(y.reshape(-1, 1)) - out) ** 2).sum(1).mean()
    loss.backward()
    norm = float(torch.nn.utils.clip_grad_norm_(trained, max_norm))
    assert norm > 10 * max_norm
    with torch.no_grad():
        for p in trained:
            p -= lr * p.grad
    expected = []
    for k in range(2):
        w_ih, w_hh, b_ih = trained[3 * k : 3 * k + 3]
        expected += [w_ih.detach().numpy().T, w_hh.detach().numpy().T,
                     b_ih.detach().numpy()]
    expected += [linear.weight.detach().numpy().T, linear.bias.detach().numpy()]
    for k, (ours, theirs, s) in enumerate(zip(clipped, expected, start)):
        step = theirs - s
        assert_allclose(ours - s, step, rtol=1e-6, atol=1e-10 * np.abs(step).max(),
                        err_msg=f"param {k}")


def test_clipping_changes_a_fit():
    X, y = sum_regression(n=40)
    y = 20.0 * y  # large errors: gradients well above 0.01
    common = dict(learning_rate_init=0.01, batch_size=10, max_iter=3)
    clipped = tiny(LSTMRegressor, max_grad_norm=0.01, **common).fit(X, y)
    free = tiny(LSTMRegressor, max_grad_norm=None, **common).fit(X, y)
    assert weights_differ(weights(clipped), weights(free))
    assert clipped.loss_curve_ != free.loss_curve_


# ------------------------------------------------------------------- dropout
@pytest.fixture
def captured_forward(monkeypatch):
    """Record what the estimators pass to the engine's forward."""
    calls = []

    def recording_forward(
        X, params, lengths=None, masks=None, keep_cache=True, workspace=None,
        network=None,
    ):
        calls.append({"X": X.copy(), "params": [p.copy() for p in params],
                      "masks": masks, "keep_cache": keep_cache})
        out, cache = forward(X, params, lengths, masks, keep_cache, workspace, network)
        calls[-1]["out"] = out.copy()
        return out, cache

    # Training and prediction both reach the engine through _objective.
    monkeypatch.setattr(objective_module, "forward", recording_forward)
    return calls


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("rates", [(0.3, 0.0), (0.0, 0.3), (0.2, 0.4)],
                         ids=["dropout", "recurrent", "both"])
def test_dropout_changes_training_reproducibly(cls, rates):
    X, y = data_for(cls)
    dropout, recurrent = rates
    common = dict(hidden_layer_sizes=(6, 4), learning_rate_init=0.01, batch_size=10,
                  max_iter=3)
    plain = tiny(cls, **common).fit(X, y)
    dropped = tiny(cls, dropout=dropout, recurrent_dropout=recurrent, **common)
    dropped.fit(X, y)
    again = tiny(cls, dropout=dropout, recurrent_dropout=recurrent, **common)
    again.fit(X, y)
    assert weights_differ(weights(plain), weights(dropped))
    assert_weights_equal(weights(dropped), weights(again))
    assert dropped.loss_curve_ == again.loss_curve_
    other = tiny(cls, dropout=dropout, recurrent_dropout=recurrent,
                 **{**common, "random_state": 1}).fit(X, y)
    assert weights_differ(weights(other), weights(dropped))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_predictions_with_dropout_are_deterministic(cls, captured_forward):
    X, y = data_for(cls)
    est = tiny(cls, hidden_layer_sizes=(6, 4), dropout=0.5, recurrent_dropout=0.5)
    est.fit(X, y)
    del captured_forward[:]
    method = "predict" if cls is LSTMRegressor else "predict_proba"
    first = getattr(est, method)(X)
    second = getattr(est, method)(X)
    assert_array_equal(first, second)
    # Never masked at predict time.
    assert captured_forward and all(c["masks"] is None for c in captured_forward)
    raw = forward(X, est._params(), masks=None)[0]
    if cls is LSTMRegressor:
        assert_array_equal(first, raw.ravel())
    else:
        assert_allclose(first[:, 1], sigmoid(raw[:, 0]), rtol=1e-12)
        assert_array_equal(est.predict(X), (raw[:, 0] > 0).astype(int))


def test_dropout_masks_passed_to_the_engine(captured_forward):
    X, y = sum_regression(n=30, n_timesteps=5, n_features=3)
    p, q = 0.25, 0.5
    est = tiny(LSTMRegressor, hidden_layer_sizes=(6, 4), dropout=p,
               recurrent_dropout=q, batch_size=10, max_iter=2)
    est.fit(X, y)
    train_calls = [c for c in captured_forward if c["keep_cache"]]
    assert len(train_calls) == 6  # 3 batches x 2 epochs, each with its masks
    for call in train_calls:
        masks = call["masks"]
        B = call["X"].shape[0]
        assert len(masks) == 2
        for (mask_x, mask_h), n_in, H in zip(masks, [3, 6], [6, 4]):
            # One mask per sequence, shared by every time step: no time axis.
            assert mask_x.shape == (B, n_in)
            assert mask_h.shape == (B, H)
            assert mask_x.dtype == mask_h.dtype == np.float64
            assert set(np.unique(mask_x)) <= {0.0, 1.0 / (1.0 - p)}
            assert set(np.unique(mask_h)) <= {0.0, 1.0 / (1.0 - q)}
        # The engine's training output is the documented masked equations, with
        # the same masks at every step.
        expected = reference_forward(call["X"], call["params"], masks=masks)
        assert_allclose(call["out"], expected, rtol=1e-10, atol=1e-12)
    # Fresh masks for every mini-batch.
    first, second = train_calls[0]["masks"], train_calls[1]["masks"]
    assert not np.array_equal(first[0][0], second[0][0])


def test_dropout_rate_on_a_large_batch(captured_forward):
    n, p, q = 2000, 0.3, 0.6
    X, y = sum_regression(n=n, n_timesteps=2, n_features=5)
    tiny(LSTMRegressor, hidden_layer_sizes=8, dropout=p, recurrent_dropout=q,
         batch_size=n, max_iter=1).fit(X, y)
    (call,) = [c for c in captured_forward if c["keep_cache"]]
    ((mask_x, mask_h),) = call["masks"]
    for mask, rate in ((mask_x, p), (mask_h, q)):
        dropped = np.mean(mask == 0)
        # Binomial standard deviation sqrt(rate (1 - rate) / size) is ~0.005 here.
        assert abs(dropped - rate) < 0.03
        assert_allclose(mask[mask != 0], 1.0 / (1.0 - rate))
        # Inverted scaling: each entry's expectation is 1.
        assert mask.mean() == pytest.approx(1.0, abs=0.06)


@pytest.mark.parametrize("rates, which", [((0.0, 0.0), None), ((0.4, 0.0), "x"),
                                          ((0.0, 0.4), "h")])
def test_masks_absent_where_the_rate_is_zero(captured_forward, rates, which):
    X, y = sum_regression(n=20, n_timesteps=3, n_features=2)
    tiny(LSTMRegressor, hidden_layer_sizes=(4, 3), dropout=rates[0],
         recurrent_dropout=rates[1], max_iter=2).fit(X, y)
    train_calls = [c for c in captured_forward if c["keep_cache"]]
    assert len(train_calls) == 2
    for call in train_calls:
        if which is None:
            assert call["masks"] is None
            continue
        for mask_x, mask_h in call["masks"]:
            assert (mask_x is None) == (which == "h")
            assert (mask_h is None) == (which == "x")


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("name", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("value", [1.0, 1.5, -0.1])
def test_dropout_rates_out_of_range(cls, name, value):
    X, y = data_for(cls, n=10)
    with pytest.raises(InvalidParameterError, match=name):
        tiny(cls, **{name: value}).fit(X, y)


# ------------------------------------------------------------- sample_weight
FULL_BATCH = dict(batch_size=1000, shuffle=False, learning_rate_init=0.02,
                  alpha=1e-3)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_integer_weights_equal_repeated_samples(cls):
    X, y = data_for(cls, n=30)
    w = np.random.RandomState(1).randint(1, 4, size=30)
    weighted = tiny(cls, **FULL_BATCH).fit(X, y, sample_weight=w)
    repeated = tiny(cls, **FULL_BATCH).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-6)
    method = "predict" if cls is LSTMRegressor else "predict_proba"
    assert_allclose(getattr(weighted, method)(X), getattr(repeated, method)(X),
                    rtol=1e-6)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_integer_weights_equal_repeated_samples_in_partial_fit(cls):
    X, y = data_for(cls, n=30)
    w = np.random.RandomState(2).randint(1, 4, size=30)
    weighted, repeated = tiny(cls, **FULL_BATCH), tiny(cls, **FULL_BATCH)
    extra = {"classes": [0, 1]} if cls is LSTMClassifier else {}
    for _ in range(3):
        weighted.partial_fit(X, y, sample_weight=w, **extra)
        repeated.partial_fit(np.repeat(X, w, axis=0), np.repeat(y, w), **extra)
    assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-6)
    assert_weights_close(weights(weighted), weights(repeated), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_zero_weight_equals_removing_the_sample(cls):
    X, y = data_for(cls, n=30)
    keep = np.ones(30, dtype=bool)
    keep[[0, 7, 8, 20]] = False
    zeroed = tiny(cls, **FULL_BATCH).fit(X, y, sample_weight=keep.astype(float))
    removed = tiny(cls, **FULL_BATCH).fit(X[keep], y[keep])
    assert_allclose(zeroed.loss_curve_, removed.loss_curve_, rtol=1e-6)
    assert_weights_close(weights(zeroed), weights(removed), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_scaling_the_weights_changes_nothing_without_penalty(cls):
    X, y = data_for(cls, n=30)
    w = np.random.RandomState(3).uniform(0.2, 2.0, size=30)
    params = {**FULL_BATCH, "alpha": 0.0, "shuffle": True, "batch_size": 10}
    base = tiny(cls, **params).fit(X, y, sample_weight=w)
    scaled = tiny(cls, **params).fit(X, y, sample_weight=7.3 * w)
    assert_allclose(base.loss_curve_, scaled.loss_curve_, rtol=1e-6)
    assert_weights_close(weights(base), weights(scaled), rtol=1e-6, atol=1e-9)


def test_scaled_weights_scale_the_penalty():
    # The penalty is alpha / (2 sum(w)) * sum ||W||^2: weights c * w with alpha
    # train exactly like weights w with alpha / c.
    X, y = sum_regression(n=30)
    w = np.random.RandomState(4).uniform(0.2, 2.0, size=30)
    c = 4.0
    params = {**FULL_BATCH, "batch_size": 10}
    scaled = tiny(LSTMRegressor, **{**params, "alpha": 0.5}).fit(
        X, y, sample_weight=c * w)
    equivalent = tiny(LSTMRegressor, **{**params, "alpha": 0.5 / c}).fit(
        X, y, sample_weight=w)
    assert_allclose(scaled.loss_curve_, equivalent.loss_curve_, rtol=1e-6)
    assert_weights_close(weights(scaled), weights(equivalent), rtol=1e-6, atol=1e-9)
    unscaled = tiny(LSTMRegressor, **{**params, "alpha": 0.5}).fit(
        X, y, sample_weight=w)
    assert unscaled.loss_curve_[0] != pytest.approx(scaled.loss_curve_[0], rel=1e-6)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda n: np.r_[-1.0, np.ones(n - 1)], "(?i)negative"),
        (lambda n: np.zeros(n), "zero"),
        (lambda n: np.ones(n - 1), "sample_weight|shape|samples|length"),
        (lambda n: np.ones(n + 2), "sample_weight|shape|samples|length"),
    ],
    ids=["negative", "all-zero", "too-short", "too-long"],
)
def test_invalid_sample_weight(cls, method, bad, match):
    X, y = data_for(cls, n=12)
    est = tiny(cls)
    extra = {}
    if cls is LSTMClassifier and method == "partial_fit":
        extra["classes"] = [0, 1]
    with pytest.raises(ValueError, match=match):
        getattr(est, method)(X, y, sample_weight=bad(12), **extra)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shuffle", [True, False])
def test_users_sample_weight_is_not_modified(cls, dtype, shuffle):
    X, y = data_for(cls, n=30)
    X = X.astype(dtype)
    w = np.random.RandomState(5).uniform(0.1, 3.0, size=30).astype(dtype)
    w0, X0, y0 = w.copy(), X.copy(), y.copy()
    params = dict(batch_size=10, max_iter=2, alpha=0.1, shuffle=shuffle)
    if cls is LSTMClassifier and shuffle:
        params["class_weight"] = {0: 2.0, 1: 0.5}
    est = tiny(cls, **params).fit(X, y, sample_weight=w)
    est.partial_fit(X, y, sample_weight=w)
    tiny(cls, early_stopping=True, validation_fraction=0.2, **params).fit(
        X, y, sample_weight=w)
    assert w.dtype == dtype
    assert_array_equal(w, w0)
    assert_array_equal(X, X0)
    assert_array_equal(y, y0)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_loss_includes_the_penalty_over_the_sum_of_weights(cls):
    # One full-batch epoch with a negligible step: loss_ is the weighted mean loss at
    # the (unchanged) weights, plus alpha / (2 sum(w)) * sum ||W||^2.
    X, y = data_for(cls, n=20)
    w = np.random.RandomState(6).uniform(0.1, 3.0, size=20)
    alpha = 0.3
    est = tiny(cls, solver="sgd", momentum=0.0, learning_rate_init=1e-12, alpha=alpha,
               batch_size=1000, max_iter=1, max_grad_norm=None)
    est.fit(X, y, sample_weight=w)
    params = est._params()
    z = reference_forward(X, params)[:, 0]
    if cls is LSTMRegressor:
        per_sample = 0.5 * (z - y) ** 2
    else:
        p = sigmoid(z)
        per_sample = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    expected = np.sum(w * per_sample) / np.sum(w)
    expected += alpha / (2 * np.sum(w)) * sum(np.sum(W**2) for W in penalised(params))
    assert est.loss_ == pytest.approx(expected, rel=1e-8)


# -------------------------------------------------------------- class_weight
def imbalanced(n=200, seed=0):
    """About 10% positives, overlapping with the negatives."""
    rng = np.random.RandomState(seed)
    y = (rng.rand(n) < 0.1).astype(int)
    X = rng.normal(size=(n, 3, 1)) + 0.8 * y[:, None, None]
    return X, y


def test_balanced_class_weight_raises_minority_recall():
    X, y = imbalanced()
    assert 0.05 < y.mean() < 0.15
    params = dict(hidden_layer_sizes=4, max_iter=15, learning_rate_init=0.02)
    plain = tiny(LSTMClassifier, **params).fit(X, y)
    balanced = tiny(LSTMClassifier, class_weight="balanced", **params).fit(X, y)
    recall_plain = recall_score(y, plain.predict(X))
    recall_balanced = recall_score(y, balanced.predict(X))
    assert recall_balanced > recall_plain + 0.3


def test_balanced_equals_its_formula_as_sample_weight():
    X, y = imbalanced(n=60)
    counts = np.bincount(y)
    w = len(y) / (2 * counts[y])
    params = dict(hidden_layer_sizes=4, max_iter=3, batch_size=20)
    balanced = tiny(LSTMClassifier, class_weight="balanced", **params).fit(X, y)
    weighted = tiny(LSTMClassifier, **params).fit(X, y, sample_weight=w)
    assert_allclose(balanced.loss_curve_, weighted.loss_curve_, rtol=1e-12)
    assert_weights_close(weights(balanced), weights(weighted), rtol=1e-10, atol=1e-13)


def test_class_weight_dict_equals_sample_weight_and_multiplies_it():
    X, y = first_step_classification(n=40)
    labels = np.where(y == 1, "up", "down")
    class_weight = {"down": 0.5, "up": 3.0}
    per_sample = np.where(y == 1, 3.0, 0.5)
    params = dict(max_iter=3, batch_size=10)
    by_dict = tiny(LSTMClassifier, class_weight=class_weight, **params).fit(X, labels)
    by_weight = tiny(LSTMClassifier, **params).fit(X, labels, sample_weight=per_sample)
    assert_weights_equal(weights(by_dict), weights(by_weight))
    assert_array_equal(by_dict.predict_proba(X), by_weight.predict_proba(X))

    sw = np.random.RandomState(7).uniform(0.2, 2.0, size=40)
    both = tiny(LSTMClassifier, class_weight=class_weight, **params).fit(
        X, labels, sample_weight=sw)
    product = tiny(LSTMClassifier, **params).fit(X, labels,
                                                 sample_weight=sw * per_sample)
    assert_weights_close(weights(both), weights(product), rtol=1e-12, atol=1e-15)
    assert weights_differ(weights(both), weights(by_dict))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0])
@pytest.mark.parametrize("pooling", ["last", "none"])
def test_class_weight_must_be_finite_and_non_negative(bad, pooling):
    X, y = first_step_classification(n=40)
    if pooling == "none":
        y = np.repeat(y[:, np.newaxis], X.shape[1], axis=1)
    clf = tiny(LSTMClassifier, class_weight={0: bad, 1: 1.0}, pooling=pooling)
    with pytest.raises(ValueError, match="class_weight must give every class a finite"):
        clf.fit(X, y)


def test_class_weight_in_partial_fit():
    X, y = first_step_classification(n=40)
    with pytest.raises(ValueError, match="partial_fit"):
        tiny(LSTMClassifier, class_weight="balanced").partial_fit(X, y, classes=[0, 1])

    class_weight = {0: 2.0, 1: 0.25}
    per_sample = np.where(y == 1, 0.25, 2.0)
    by_dict = tiny(LSTMClassifier, class_weight=class_weight, batch_size=10)
    by_weight = tiny(LSTMClassifier, batch_size=10)
    for _ in range(2):
        by_dict.partial_fit(X, y, classes=[0, 1])
        by_weight.partial_fit(X, y, classes=[0, 1], sample_weight=per_sample)
    assert by_dict.n_iter_ == 2
    assert_weights_equal(weights(by_dict), weights(by_weight))
    plain = tiny(LSTMClassifier, batch_size=10)
    plain.partial_fit(X, y, classes=[0, 1])
    plain.partial_fit(X, y)
    assert weights_differ(weights(plain), weights(by_dict))


# ------------------------------------------------------ learning-rate schedules
@pytest.mark.parametrize("solver", SOLVERS)
def test_invscaling_rate_after_each_epoch(solver):
    X, y = sum_regression(n=24)
    lr0, power_t = 0.01, 0.25
    est = tiny(LSTMRegressor, solver=solver, learning_rate="invscaling",
               learning_rate_init=lr0, power_t=power_t, batch_size=10)
    for k in range(1, 4):
        est.partial_fit(X, y)
        assert est.t_ == 24 * k
        assert est._optimizer.learning_rate == pytest.approx(
            lr0 / (est.t_ + 1) ** power_t, rel=1e-12)
    est.set_params(max_iter=3).fit(X, y)
    assert est.t_ == 72
    assert est._optimizer.learning_rate == pytest.approx(lr0 / 73**power_t, rel=1e-12)


def test_invscaling_rate_is_the_one_applied():
    # SGD without momentum: the second epoch's full-batch step is -rate * g with the
    # rate set after the first epoch.
    X, y = sum_regression(n=20)
    lr0, power_t = 0.05, 0.5
    est = tiny(LSTMRegressor, solver="sgd", momentum=0.0, alpha=0.0, shuffle=False,
               batch_size=1000, learning_rate="invscaling", learning_rate_init=lr0,
               power_t=power_t, max_grad_norm=None)
    est.partial_fit(X, y)
    rate = lr0 / 21**power_t
    before = weights(est)
    _, grads = est._loss_grad(X, y.reshape(-1, 1), np.ones(20), est._params())
    est.partial_fit(X, y)
    expected = [b - rate * g for b, g in zip(before, grads)]
    assert_weights_close(weights(est), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("solver", SOLVERS)
def test_adaptive_rate_divided_by_5_without_improvement(solver):
    X, y = sum_regression(n=20)
    lr0, patience = 0.01, 2
    est = tiny(LSTMRegressor, solver=solver, learning_rate="adaptive",
               learning_rate_init=lr0, tol=1e3, n_iter_no_change=patience, max_iter=7)
    rates = []
    end_epoch = est._end_epoch

    def recording_end_epoch(*args, **kwargs):
        rates.append(est._optimizer.learning_rate)  # the rate used in this epoch
        return end_epoch(*args, **kwargs)

    est._end_epoch = recording_end_epoch
    est.fit(X, y)
    # tol is never met: the first epoch sets the best loss, then every epoch counts;
    # as in scikit-learn's MLP, the rate drops once the count exceeds
    # n_iter_no_change (after epoch 4), and again n_iter_no_change + 1 epochs later.
    assert est.n_iter_ == 7
    assert_allclose(rates, [lr0] * 4 + [lr0 / 5] * 3, rtol=1e-15)
    assert est._optimizer.learning_rate == pytest.approx(lr0 / 25, rel=1e-15)

    # The same epochs as scikit-learn's MLPRegressor (SGD, the only solver with an
    # adaptive rate there).
    mlp = MLPRegressor(hidden_layer_sizes=4, solver="sgd", learning_rate="adaptive",
                       learning_rate_init=lr0, tol=1e3, n_iter_no_change=patience,
                       max_iter=7, random_state=0).fit(X[:, :, 0], y)
    assert mlp._optimizer.learning_rate == pytest.approx(lr0 / 25, rel=1e-15)


@pytest.mark.parametrize("solver", SOLVERS)
def test_adaptive_rate_stops_at_its_floor(solver):
    X, y = sum_regression(n=20)
    est = tiny(LSTMRegressor, solver=solver, learning_rate="adaptive",
               learning_rate_init=1e-5, tol=1e3, n_iter_no_change=1, max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    # Triggers after epochs 3, 5 and 7: 1e-5 -> 2e-6 -> 4e-7, then, at or below
    # 1e-6, the third trigger stops training.
    assert est._optimizer.learning_rate == pytest.approx(4e-7, rel=1e-12)
    assert est.n_iter_ == 7


# ----------------------------------------- optimizer state across calls
def test_adam_step_count_across_fit_warm_start_and_partial_fit():
    X, y = sum_regression(n=40)
    est = tiny(LSTMRegressor, solver="adam", batch_size=16, max_iter=3,
               warm_start=True)
    est.fit(X, y)  # 3 mini-batches (16, 16, 8) per epoch
    optimizer = est._optimizer
    assert isinstance(optimizer, AdamOptimizer)
    assert optimizer.t == 9
    est.set_params(max_iter=2).fit(X, y)
    assert est._optimizer is optimizer
    assert optimizer.t == 15
    est.partial_fit(X, y)
    assert est._optimizer is optimizer
    assert optimizer.t == 18
    est.partial_fit(X[:10], y[:10])  # one mini-batch
    assert optimizer.t == 19
    # Without warm_start, fit starts a fresh optimizer.
    est.set_params(warm_start=False, max_iter=1).fit(X, y)
    assert est._optimizer is not optimizer
    assert est._optimizer.t == 3


def warm_adam(**params):
    X, y = sum_regression(n=20)
    est = tiny(LSTMRegressor, solver="adam", learning_rate_init=0.01, alpha=0.0,
               batch_size=1000, shuffle=False, max_grad_norm=None, max_iter=2,
               warm_start=True, **params)
    return est.fit(X, y), X, y


def test_new_learning_rate_init_keeps_the_adam_moments():
    est, X, y = warm_adam()
    opt = est._optimizer
    t, ms, vs = opt.t, [m.copy() for m in opt.ms], [v.copy() for v in opt.vs]
    assert t == 2 and any(np.abs(m).max() > 0 for m in ms)
    before = weights(est)
    _, grads = est._loss_grad(X, y.reshape(-1, 1), np.ones(len(X)), est._params())

    lr = 0.003
    est.set_params(learning_rate_init=lr, max_iter=1).fit(X, y)
    assert est._optimizer is opt
    assert opt.t == 3
    assert opt.learning_rate == lr
    b1, b2, eps = opt.beta_1, opt.beta_2, opt.epsilon
    expected = []
    for w, m, v, g in zip(before, ms, vs, grads):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**3), v / (1 - b2**3)
        expected.append(w - lr * m_hat / (np.sqrt(v_hat) + eps))
    assert_weights_close(weights(est), expected, rtol=1e-9, atol=1e-14)
    for m_new, m_old in zip(opt.ms, ms):
        assert not np.array_equal(m_new, m_old)


def test_new_learning_rate_init_restarts_a_decayed_rate():
    # SGD without momentum: each full-batch step is exactly -rate * g.
    X, y = sum_regression(n=20)
    lr0 = 0.05
    est = tiny(LSTMRegressor, solver="sgd", momentum=0.0, alpha=0.0, shuffle=False,
               batch_size=1000, learning_rate="invscaling", learning_rate_init=lr0,
               max_grad_norm=None, max_iter=2, warm_start=True).fit(X, y)
    decayed = lr0 / 41**0.5
    assert est._optimizer.learning_rate == pytest.approx(decayed, rel=1e-12)

    def check_next_step_uses(rate):
        before = weights(est)
        _, grads = est._loss_grad(X, y.reshape(-1, 1), np.ones(20), est._params())
        est.fit(X, y)
        expected = [b - rate * g for b, g in zip(before, grads)]
        assert_weights_close(weights(est), expected, rtol=1e-12, atol=1e-15)

    est.set_params(max_iter=1)
    # Same learning_rate_init: the decayed rate is kept.
    check_next_step_uses(decayed)
    # A new learning_rate_init: the rate restarts from it.
    est.set_params(learning_rate_init=0.02)
    check_next_step_uses(0.02)
    assert est._optimizer.learning_rate == pytest.approx(0.02 / 81**0.5, rel=1e-12)


def test_changing_solver_makes_a_fresh_optimizer():
    X, y = sum_regression(n=40)
    est = tiny(LSTMRegressor, solver="adam", batch_size=20, max_iter=2,
               warm_start=True).fit(X, y)
    adam = est._optimizer
    assert adam.t == 4
    est.set_params(solver="rmsprop").fit(X, y)
    assert isinstance(est._optimizer, RMSPropOptimizer)
    assert est.n_iter_ == 4  # the weights and records carry on
    est.set_params(solver="sgd").partial_fit(X, y)
    assert isinstance(est._optimizer, SGDOptimizer)
    assert est.n_iter_ == 5
    est.set_params(solver="adam").fit(X, y)
    assert isinstance(est._optimizer, AdamOptimizer)
    assert est._optimizer is not adam
    assert est._optimizer.t == 4  # counted from zero again


@pytest.mark.parametrize("solver", SOLVERS)
def test_numpy_scalar_settings_give_the_same_float32_fit(solver):
    """A NumPy float64 hyperparameter must not change float32 training: NumPy
    would compute float32 updates scaled by it in float64 and round back."""
    X, y = sum_regression()
    X = X.astype(np.float32)
    settings = {"adam": dict(beta_1=0.85, beta_2=0.99, epsilon=1e-6),
                "rmsprop": dict(rho=0.8, epsilon=1e-6),
                "sgd": dict(momentum=0.7)}[solver]
    plain = tiny(LSTMRegressor, solver=solver, learning_rate_init=0.01, **settings)
    numpy = tiny(LSTMRegressor, solver=solver, learning_rate_init=np.float64(0.01),
                 **{k: np.float64(v) for k, v in settings.items()})
    assert_weights_equal(weights(plain.fit(X, y)), weights(numpy.fit(X, y)))


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_copied_optimizer_updates_like_the_original(solver, how):
    rng = np.random.default_rng(0)
    params = [rng.normal(size=(3, 4)), rng.normal(size=4)]
    grads = [rng.normal(size=p.shape) for p in params]
    classes = {"adam": AdamOptimizer, "rmsprop": RMSPropOptimizer, "sgd": SGDOptimizer}
    optimizer = classes[solver]([p.copy() for p in params])
    optimizer.update_params([p.copy() for p in params], grads)  # some state
    if how == "deepcopy":
        copied = copy.deepcopy(optimizer)
    else:
        copied = pickle.loads(pickle.dumps(optimizer))
    a, b = [p.copy() for p in params], [p.copy() for p in params]
    for _ in range(2):
        optimizer.update_params(a, grads)
        copied.update_params(b, grads)
    assert_weights_equal(a, b)


# --------------------------------------------------------------------- Ctrl-C
CTRL_C = dict(hidden_layer_sizes=6, solver="adam", learning_rate_init=0.01,
              batch_size=10, shuffle=False, max_iter=5, random_state=0)


def raise_sigint_in_batch(est, batch_number, times=1):
    """Make ``est`` raise SIGINT ``times`` during its ``batch_number``-th batch."""
    original = est._loss_grad
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == batch_number:
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)
        return original(*args, **kwargs)

    est._loss_grad = interrupted
    return calls


@pytest.fixture
def harmless_sigint_handler():
    """A recording SIGINT handler in place of Python's (which would stop pytest)."""
    received = []

    def handler(signum, frame):
        received.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield handler, received
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_finishes_the_batch_and_returns(harmless_sigint_handler):
    handler, received = harmless_sigint_handler
    X, y = sum_regression(n=40)  # 4 batches per epoch
    k = 3  # interrupted in the 3rd batch of the 2nd epoch
    est = LSTMRegressor(**CTRL_C)
    calls = raise_sigint_in_batch(est, 4 + k)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    messages = [str(w.message) for w in caught if w.category is UserWarning]
    assert any("KeyboardInterrupt" in m for m in messages), messages
    assert not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert len(calls) == 4 + k  # nothing after the interrupted batch
    assert received == []  # the library's handler took the signal
    assert signal.getsignal(signal.SIGINT) is handler  # and restored ours

    assert est.n_iter_ == 2
    assert len(est.loss_curve_) == 2
    assert est.t_ == 40 + 10 * k
    assert est._optimizer.t == 4 + k
    pred = est.predict(X)
    assert pred.shape == (40,) and np.isfinite(pred).all()

    # The same updates stopped by other means: one epoch, then a warm start on the
    # first k batches only.
    ref = LSTMRegressor(**{**CTRL_C, "max_iter": 1, "warm_start": True}).fit(X, y)
    ref.fit(X[: 10 * k], y[: 10 * k])
    assert ref._optimizer.t == 4 + k
    assert_weights_equal(weights(est), weights(ref))
    assert est.loss_curve_ == ref.loss_curve_


def test_ctrl_c_during_partial_fit(harmless_sigint_handler):
    handler, received = harmless_sigint_handler
    X, y = first_step_classification(n=40)
    est = LSTMClassifier(**CTRL_C)
    est.partial_fit(X, y, classes=[0, 1])
    raise_sigint_in_batch(est, 2)
    with pytest.warns(UserWarning, match="KeyboardInterrupt"):
        est.partial_fit(X, y)
    assert est.n_iter_ == 2
    assert est.t_ == 40 + 20
    assert est._optimizer.t == 6
    assert signal.getsignal(signal.SIGINT) is handler
    assert received == []
    assert np.isfinite(est.predict_proba(X)).all()


def test_second_ctrl_c_interrupts_at_once(harmless_sigint_handler):
    handler, received = harmless_sigint_handler
    X, y = sum_regression(n=40)
    est = LSTMRegressor(**CTRL_C)
    raise_sigint_in_batch(est, 6, times=2)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    assert signal.getsignal(signal.SIGINT) is handler
    assert received == []
    for w in est._params():
        assert np.isfinite(w).all()


def test_second_ctrl_c_puts_the_handler_back_before_it_raises(
    harmless_sigint_handler,
):
    # A second signal right after the second Ctrl-C may interrupt the fit's own
    # clean-up before it puts the handler back: the KeyboardInterrupt must not
    # leave the library's handler in place (which would ignore the next Ctrl-C).
    handler, received = harmless_sigint_handler
    X, y = sum_regression(n=40)
    est = LSTMRegressor(**CTRL_C)
    original, seen = est._loss_grad, []

    def interrupted(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)  # the first asks to stop after it
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            seen.append(signal.getsignal(signal.SIGINT))
            raise
        return original(*args, **kwargs)

    est._loss_grad = interrupted
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    assert seen == [handler]
    assert received == []


def test_sigint_handler_restored_after_fit_and_errors(harmless_sigint_handler):
    handler, _ = harmless_sigint_handler
    X, y = sum_regression(n=20)
    tiny(LSTMRegressor, max_iter=2).fit(X, y)
    assert signal.getsignal(signal.SIGINT) is handler
    est = tiny(LSTMRegressor, max_iter=2)

    def failing(*args, **kwargs):
        raise RuntimeError("raised inside the epoch loop")

    est._loss_grad = failing
    with pytest.raises(RuntimeError, match="epoch loop"):
        est.fit(X, y)
    assert signal.getsignal(signal.SIGINT) is handler


def test_fit_in_a_worker_thread_leaves_signals_alone(harmless_sigint_handler):
    handler, _ = harmless_sigint_handler
    X, y = sum_regression(n=20)
    est = tiny(LSTMRegressor, max_iter=2)
    errors = []

    def work():
        try:
            est.fit(X, y)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == []
    assert est.n_iter_ == 2
    assert signal.getsignal(signal.SIGINT) is handler


# -------------------------------------------------------------------- verbose
def test_verbose_with_early_stopping_prints_scores_and_time(capsys):
    X, y = sum_regression(n=40)
    est = tiny(LSTMRegressor, max_iter=4, verbose=True, early_stopping=True,
               validation_fraction=0.25, tol=0.0, n_iter_no_change=100)
    est.fit(X, y)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 4
    number = r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"
    elapsed = []
    for k, line in enumerate(lines):
        assert re.search(rf"\b{k + 1}\b", line), line
        match = re.search(rf"validation score\s*[=:]\s*{number}", line, re.IGNORECASE)
        assert match, line
        assert float(match.group(1)) == pytest.approx(est.validation_scores_[k],
                                                      abs=1e-6)
        loss = re.search(rf"loss\s*[=:]\s*{number}", line, re.IGNORECASE)
        assert loss and float(loss.group(1)) == pytest.approx(est.loss_curve_[k],
                                                              abs=1e-6)
        seconds = re.search(rf"{number}\s*s(?:ec(?:onds)?)?\b\s*$", line)
        assert seconds, f"no elapsed time in {line!r}"
        elapsed.append(float(seconds.group(1)))
    assert elapsed == sorted(elapsed)  # time since the start of training


def test_deepcopy_of_fitted_model_with_all_controls():
    # Every control at once, then the fitted model copied: training continues alike.
    X, y = first_step_classification(n=30)
    est = tiny(LSTMClassifier, hidden_layer_sizes=(4, 3), dropout=0.2,
               recurrent_dropout=0.2, max_grad_norm=0.5, class_weight={0: 1.0, 1: 2.0},
               learning_rate="invscaling", solver="rmsprop", batch_size=10,
               max_iter=2).fit(X, y, sample_weight=np.linspace(0.5, 1.5, 30))
    twin = copy.deepcopy(est)
    est.partial_fit(X, y)
    twin.partial_fit(X, y)
    assert_weights_equal(weights(est), weights(twin))
    assert np.isfinite(est.predict_proba(X)).all()
