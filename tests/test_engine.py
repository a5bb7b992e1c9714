"""Gradient checks of the NumPy LSTM engine and the losses, by central differences.

Every analytic gradient (every parameter entry and the input X) is compared with
central differences in float64; ``_gradcheck.py`` explains the step and tolerance.
"""

import warnings

import numpy as np
import pytest
from _gradcheck import assert_grad_close, make_params, numerical_grad, param_names
from _reference import reference_forward
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_lstm import LSTMClassifier, LSTMRegressor
from sklearn_lstm._engine import backward, forward
from sklearn_lstm._losses import LOSS_FUNCTIONS


# --------------------------------------------------------------------- helpers
def mean_weights(y, dtype=np.float64):
    """Sample weights of a plain mean over the rows of y."""
    return np.full(len(y), 1.0 / len(y), dtype=dtype)



def check_all_grads(f, params, grads, X=None, dX=None):
    """Compare grads (and dX) with central differences of the scalar f()."""
    for name, p, g in zip(param_names(params), params, grads):
        assert g.shape == p.shape, name
        assert_grad_close(g, numerical_grad(f, p), what=name)
    if X is not None:
        assert dX.shape == X.shape
        assert_grad_close(dX, numerical_grad(f, X), what="X")


# (n_samples, n_timesteps, n_features, hidden sizes, n_outputs)
SHAPES = [
    pytest.param(3, 1, 2, (4,), 2, id="T=1"),
    pytest.param(1, 4, 3, (5,), 1, id="batch=1"),
    pytest.param(4, 6, 3, (6,), 1, id="typical"),
    pytest.param(4, 5, 2, (5,), 3, id="typical-multi-output"),
    pytest.param(3, 4, 2, (4, 3), 2, id="2-layers"),
    pytest.param(2, 3, 3, (3, 5, 2), 3, id="3-layers"),
    pytest.param(2, 1, 2, (3, 2), 1, id="2-layers-T=1"),
]


# ------------------------------------------------- engine: forward and backward
@pytest.mark.parametrize("B, T, F, hidden, n_out", SHAPES)
def test_backward_matches_central_differences(B, T, F, hidden, n_out):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(B, T, F))
    params = make_params(rng, F, hidden, n_out)
    G = rng.normal(size=(B, n_out))  # an arbitrary upstream gradient

    def f():
        return float(np.sum(G * forward(X, params)[0]))

    out, cache = forward(X, params)
    assert out.shape == (B, n_out)
    grads, dX = backward(G, cache, need_dX=True)
    assert len(grads) == len(params)
    check_all_grads(f, params, grads, X, dX)

    # need_dX=False returns the same parameter gradients.
    grads_only = backward(G, forward(X, params)[1])
    for g, g2 in zip(grads, grads_only):
        np.testing.assert_array_equal(g, g2)


def test_backward_does_not_mutate_inputs_and_is_repeatable():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3, 4, 2))
    params = make_params(rng, 2, (4, 3), 2)
    X0, params0 = X.copy(), [p.copy() for p in params]
    G = rng.normal(size=(3, 2))
    G0 = G.copy()
    out, cache = forward(X, params)
    first = backward(G, cache, need_dX=True)
    second = backward(G, cache, need_dX=True)
    for a, b in zip(first[0] + [first[1]], second[0] + [second[1]]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(G, G0)
    np.testing.assert_array_equal(X, X0)
    for p, p0 in zip(params, params0):
        np.testing.assert_array_equal(p, p0)


def test_forward_matches_naive_equations():
    """The engine against the plain reference LSTM of ``_reference.py``."""
    rng = np.random.default_rng(2)
    B, T, F, hidden, n_out = 3, 5, 2, (4, 3), 2
    X = rng.normal(size=(B, T, F))
    params = make_params(rng, F, hidden, n_out)

    expected = reference_forward(X, params)
    np.testing.assert_allclose(forward(X, params)[0], expected, rtol=1e-12, atol=1e-14)


@settings(max_examples=20, deadline=None)
@given(
    B=st.integers(1, 3),
    T=st.integers(1, 4),
    F=st.integers(1, 3),
    hidden=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    n_out=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_backward_random_shapes(B, T, F, hidden, n_out, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(B, T, F))
    params = make_params(rng, F, hidden, n_out)
    G = rng.normal(size=(B, n_out))

    def f():
        return float(np.sum(G * forward(X, params)[0]))

    grads, dX = backward(G, forward(X, params)[1], need_dX=True)
    check_all_grads(f, params, grads, X, dX)


# ------------------------------------------------------ losses through the engine
def make_targets(rng, kind, B, n_out):
    if kind == "regression":
        return rng.normal(size=(B, n_out))
    if kind in ("binary", "multilabel"):
        return rng.integers(0, 2, size=(B, n_out)).astype(np.float64)
    if kind == "onehot":
        return np.eye(n_out)[rng.integers(0, n_out, size=B)]
    raise ValueError(kind)


LOSS_CASES = [
    pytest.param("identity", "regression", 2, id="squared-error"),
    pytest.param("logistic", "binary", 1, id="binary-logistic"),
    pytest.param("softmax", "onehot", 3, id="softmax"),
    pytest.param("logistic", "multilabel", 3, id="multilabel-logistic"),
]


@pytest.mark.parametrize("loss_name, kind, n_out", LOSS_CASES)
@pytest.mark.parametrize("hidden", [(4,), (4, 3)], ids=["1-layer", "2-layers"])
def test_loss_gradient_end_to_end(loss_name, kind, n_out, hidden):
    rng = np.random.default_rng(3)
    B, T, F = 5, 4, 3
    X = rng.normal(size=(B, T, F))
    params = make_params(rng, F, hidden, n_out, scale=0.8)
    y = make_targets(rng, kind, B, n_out)
    loss_fn = LOSS_FUNCTIONS[loss_name]

    def f():
        return loss_fn(y, forward(X, params)[0], mean_weights(y))[0]

    out, cache = forward(X, params)
    loss, dz = loss_fn(y, out, mean_weights(y))
    assert np.isfinite(loss) and loss > 0
    grads, dX = backward(dz, cache, need_dX=True)
    check_all_grads(f, params, grads, X, dX)


def _fitted(kind, alpha, hidden=(4, 3), seed=0):
    """Tiny estimator after one partial_fit, with O(1) random weights written in,
    and its encoded targets."""
    rng = np.random.default_rng(seed)
    n, T, F = 6, 4, 2
    X = rng.normal(size=(n, T, F))
    if kind == "regression":
        est = LSTMRegressor(hidden_layer_sizes=hidden, alpha=alpha, random_state=0)
        y = rng.normal(size=n)
        est.partial_fit(X, y)
        Y = y.reshape(-1, 1)
    elif kind == "regression-2-outputs":
        est = LSTMRegressor(hidden_layer_sizes=hidden, alpha=alpha, random_state=0)
        Y = rng.normal(size=(n, 2))
        est.partial_fit(X, Y)
    elif kind == "binary":
        est = LSTMClassifier(hidden_layer_sizes=hidden, alpha=alpha, random_state=0)
        y = np.array(["a", "b"] * (n // 2))
        est.partial_fit(X, y, classes=["a", "b"])
        Y = est._label_binarizer.transform(y).astype(np.float64)
        assert Y.shape == (n, 1) and est.out_activation_ == "logistic"
    elif kind == "multiclass":
        est = LSTMClassifier(hidden_layer_sizes=hidden, alpha=alpha, random_state=0)
        y = np.array([0, 1, 2] * (n // 3))
        est.partial_fit(X, y, classes=[0, 1, 2])
        Y = est._label_binarizer.transform(y).astype(np.float64)
        assert Y.shape == (n, 3) and est.out_activation_ == "softmax"
    elif kind == "multilabel":
        est = LSTMClassifier(hidden_layer_sizes=hidden, alpha=alpha, random_state=0)
        Y = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]])
        est.partial_fit(X, Y, classes=[0, 1, 2])
        Y = est._label_binarizer.transform(Y).astype(np.float64)
        assert Y.shape == (n, 3) and est.out_activation_ == "logistic"
    else:
        raise ValueError(kind)
    for p in est._params():
        p[...] = rng.normal(scale=0.5, size=p.shape)
    return est, X, Y


ESTIMATOR_KINDS = ["regression", "regression-2-outputs", "binary", "multiclass",
                   "multilabel"]


@pytest.mark.parametrize("kind", ESTIMATOR_KINDS)
def test_estimator_loss_grad_with_penalty(kind):
    alpha = 0.7
    est, X, Y = _fitted(kind, alpha)
    params = est._params()

    def f():
        return est._loss_grad(X, Y, np.ones(len(X)), params)[0]

    loss, grads = est._loss_grad(X, Y, np.ones(len(X)), params)
    check_all_grads(f, params, grads)

    # The penalty is alpha / (2 n) * sum of squared kernels, recurrent kernels and
    # output weights; biases and intercepts are not penalised.
    est.set_params(alpha=0.0)
    loss0, grads0 = est._loss_grad(X, Y, np.ones(len(X)), params)
    n = X.shape[0]
    penalised = [p for name, p in zip(param_names(params), params)
                 if not name.startswith("b")]
    expected = alpha / (2 * n) * sum(float(np.sum(p**2)) for p in penalised)
    assert loss - loss0 == pytest.approx(expected, rel=1e-12)
    for name, p, g, g0 in zip(param_names(params), params, grads, grads0):
        if name.startswith("b"):
            np.testing.assert_array_equal(g, g0, err_msg=name)
        else:
            np.testing.assert_allclose(g - g0, alpha / n * p, rtol=1e-9, atol=1e-13,
                                       err_msg=name)


# ---------------------------------------------------------- numerical stability
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_engine_saturated_preactivations(dtype):
    rng = np.random.default_rng(4)
    B, T, F, hidden, n_out = 4, 6, 3, (5, 4), 3
    X = rng.normal(size=(B, T, F)).astype(dtype)
    params = make_params(rng, F, hidden, n_out, scale=600.0, dtype=dtype)
    z1 = X[:, 0] @ params[0] + params[2]
    assert np.abs(z1).max() > 1000  # really saturated
    G = rng.normal(size=(B, n_out)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, cache = forward(X, params)
        grads, dX = backward(G, cache, need_dX=True)
    assert out.dtype == dtype and np.all(np.isfinite(out))
    assert np.all(np.isfinite(dX))
    for g in grads:
        assert g.dtype == dtype and np.all(np.isfinite(g))


@pytest.mark.parametrize("keep_cache", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_saturated_gates_raise_nothing_where_numpy_errors_are_raised(dtype, keep_cache):
    # exp gives sigmoids of saturated gates: its overflow and underflow are the
    # limits, not errors, even under np.seterr(all="raise").
    rng = np.random.default_rng(4)
    X = rng.normal(size=(4, 6, 3)).astype(dtype)
    params = make_params(rng, 3, (5, 4), 3, scale=600.0, dtype=dtype)
    with np.errstate(all="raise"):
        out = forward(X, params, keep_cache=keep_cache)[0]
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("scale", [1e-6, 1e-3, 0.5])
@pytest.mark.parametrize("dtype, B", [(np.float64, 8), (np.float32, 64)])
def test_hidden_states_within_a_few_units_of_rounding(dtype, B, scale):
    # Gates go through exp (float64: all four, tanh(z) = 2 sigmoid(2 z) - 1, and
    # tanh(c_t); float32: the sigmoid gates): hidden states, also those near
    # zero, stay within a few units of the dtype's rounding (2**-53, 2**-24) of
    # the equations evaluated in float64 on the same inputs and weights
    # (absolute: they are at most 1 in size), at weights that do not amplify
    # rounding through the recurrence.
    rng = np.random.default_rng(5)
    T, F, hidden = 12, 3, (6, 5)
    X = rng.normal(size=(B, T, F)).astype(dtype)
    params = make_params(rng, F, hidden, 5, scale=scale, dtype=dtype)
    # The output is h_T itself.
    params[-2:] = [np.eye(5, dtype=dtype), np.zeros(5, dtype=dtype)]
    expected = reference_forward(
        X.astype(np.float64), [p.astype(np.float64) for p in params]
    )
    out = forward(X, params)[0]
    assert out.dtype == dtype
    unit = np.finfo(dtype).eps / 2  # 2**-53, 2**-24
    np.testing.assert_allclose(out, expected, rtol=0, atol=8 * unit)


@pytest.mark.parametrize("loss_name, kind, n_out", LOSS_CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_losses_on_huge_logits(loss_name, kind, n_out, dtype):
    rng = np.random.default_rng(5)
    B = 8
    z = rng.choice([-1000.0, 1000.0], size=(B, n_out)).astype(dtype)
    y = make_targets(rng, kind, B, n_out).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dz = LOSS_FUNCTIONS[loss_name](y, z, mean_weights(y))
    assert np.isfinite(loss)
    assert dz.dtype == dtype and dz.shape == z.shape and np.all(np.isfinite(dz))


def test_log_losses_exact_on_huge_logits():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # A confidently wrong logistic output costs |z|; a right one costs ~0.
        loss, dz = LOSS_FUNCTIONS["logistic"](
            np.array([[1.0], [0.0]]), np.array([[-1000.0], [-1000.0]]), np.full(2, 0.5)
        )
        assert loss == pytest.approx(1000.0 / 2)
        np.testing.assert_allclose(dz, [[-0.5], [0.0]], atol=1e-300)
        # Softmax: loss = logsumexp(z) - z_y = 1000 - (-1000).
        loss, dz = LOSS_FUNCTIONS["softmax"](
            np.array([[0.0, 1.0, 0.0]]), np.array([[1000.0, -1000.0, 0.0]]), np.ones(1)
        )
        assert loss == pytest.approx(2000.0)
        np.testing.assert_allclose(dz, [[1.0, -1.0, 0.0]], atol=1e-300)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_classifier_predict_proba_on_huge_logits(kind):
    est, X, _ = _fitted(kind, alpha=0.0)
    rng = np.random.default_rng(6)
    for p in est._params()[:-2]:
        p *= 200.0  # saturated gates: every h is near +-1
    est.coefs_[0][...] = rng.choice([-1000.0, 1000.0], size=est.coefs_[0].shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = est._predict_with(X, lambda raw: raw)
        proba = est.predict_proba(X)
        log_proba = est.predict_log_proba(X)
        est.predict(X)
    assert np.abs(raw).max() > 500
    assert np.all(np.isfinite(proba)) and proba.min() >= 0 and proba.max() <= 1
    assert not np.isnan(log_proba).any() and np.all(log_proba <= 0)
    if kind != "multilabel":
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)


# --------------------------------------------------------------------- float32
@pytest.mark.parametrize("hidden, n_out", [((5,), 1), ((4, 3), 3)])
def test_float32_matches_float64(hidden, n_out):
    rng = np.random.default_rng(7)
    B, T, F = 4, 6, 3
    X64 = rng.normal(size=(B, T, F))
    params64 = make_params(rng, F, hidden, n_out)
    G64 = rng.normal(size=(B, n_out))
    # Same values in both precisions: round to float32 first.
    X32 = X64.astype(np.float32)
    params32 = [p.astype(np.float32) for p in params64]
    G32 = G64.astype(np.float32)
    X64, params64, G64 = (X32.astype(np.float64),
                          [p.astype(np.float64) for p in params32],
                          G32.astype(np.float64))

    out32, cache32 = forward(X32, params32)
    grads32, dX32 = backward(G32, cache32, need_dX=True)
    out64, cache64 = forward(X64, params64)
    grads64, dX64 = backward(G64, cache64, need_dX=True)

    assert out32.dtype == np.float32 and dX32.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads32)
    for a32, a64 in zip([out32, dX32] + grads32, [out64, dX64] + grads64):
        scale = max(np.abs(a64).max(), 1e-3)
        assert np.abs(a32 - a64).max() <= 1e-4 * scale


@pytest.mark.parametrize("loss_name, kind, n_out", LOSS_CASES)
def test_losses_float32(loss_name, kind, n_out):
    rng = np.random.default_rng(8)
    z = rng.normal(scale=3.0, size=(6, n_out))
    y = make_targets(rng, kind, 6, n_out)
    loss64, dz64 = LOSS_FUNCTIONS[loss_name](y, z, mean_weights(y))
    loss32, dz32 = LOSS_FUNCTIONS[loss_name](
        y.astype(np.float32), z.astype(np.float32), mean_weights(y, np.float32)
    )
    assert dz32.dtype == np.float32
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    np.testing.assert_allclose(dz32, dz64, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------- the losses alone
def _naive_loss(loss_name, y, z):
    if loss_name == "identity":
        return 0.5 * np.mean(np.sum((y - z) ** 2, axis=1))
    if loss_name == "logistic":
        p = 1.0 / (1.0 + np.exp(-z))
        return -np.mean(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p), axis=1))
    if loss_name == "softmax":
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        return -np.mean(np.sum(y * np.log(p), axis=1))
    raise ValueError(loss_name)


@pytest.mark.parametrize("loss_name, kind, n_out", LOSS_CASES + [
    pytest.param("softmax", "soft", 4, id="softmax-soft-labels"),
    pytest.param("identity", "regression", 1, id="squared-error-1-output"),
])
def test_loss_value_and_gradient(loss_name, kind, n_out):
    rng = np.random.default_rng(9)
    B = 7
    z = rng.normal(scale=3.0, size=(B, n_out))
    if kind == "soft":
        y = rng.dirichlet(np.ones(n_out), size=B)  # rows sum to one
    else:
        y = make_targets(rng, kind, B, n_out)
    y0, z0 = y.copy(), z.copy()
    loss_fn = LOSS_FUNCTIONS[loss_name]
    loss, dz = loss_fn(y, z, mean_weights(y))
    np.testing.assert_array_equal(y, y0)  # inputs are not modified
    np.testing.assert_array_equal(z, z0)
    assert isinstance(loss, float)
    assert loss == pytest.approx(_naive_loss(loss_name, y, z), rel=1e-12)
    assert_grad_close(
        dz, numerical_grad(lambda: loss_fn(y, z, mean_weights(y))[0], z), what="dz"
    )
