"""PyTorch as the gold standard: same weights, same outputs, same gradients.

Our weights are loaded into ``torch.nn.LSTM`` (one module per layer, since the layers
may differ in width) and ``torch.nn.Linear``: ``weight_ih = kernel.T``,
``weight_hh = recurrent_kernel.T``, ``bias_ih = bias``, ``bias_hh = 0``. Both
libraries stack the gates as [input | forget | cell | output]. Every torch object is
created with an explicit dtype; the global default dtype is never changed.
"""

import numpy as np
import pytest
from _gradcheck import assert_close, n_lstm_layers

from sklearn_lstm import LSTMClassifier, LSTMRegressor
from sklearn_lstm._engine import backward, forward

torch = pytest.importorskip("torch")
F64 = torch.float64

N, T, F = 10, 6, 3


@pytest.fixture(autouse=True)
def _default_dtype_untouched():
    before = torch.get_default_dtype()
    yield
    assert torch.get_default_dtype() == before


# --------------------------------------------------------------------- helpers
class TorchNet:
    """A torch copy of an engine parameter list: per-layer nn.LSTM + nn.Linear."""

    def __init__(self, params, dtype=F64, single_module=False):
        self.dtype = dtype
        n_layers = n_lstm_layers(params)
        self.lstms = []
        if single_module:
            # Equal widths: one multi-layer nn.LSTM, torch's names *_l0, *_l1, ...
            H = params[1].shape[0]
            lstm = torch.nn.LSTM(params[0].shape[0], H, num_layers=n_layers,
                                 batch_first=True, dtype=dtype)
            self.lstms.append(lstm)
            self.layer_params = [
                (getattr(lstm, f"weight_ih_l{k}"), getattr(lstm, f"weight_hh_l{k}"),
                 getattr(lstm, f"bias_ih_l{k}"), getattr(lstm, f"bias_hh_l{k}"))
                for k in range(n_layers)
            ]
        else:
            self.layer_params = []
            for k in range(n_layers):
                W, U = params[3 * k], params[3 * k + 1]
                lstm = torch.nn.LSTM(W.shape[0], U.shape[0], batch_first=True,
                                     dtype=dtype)
                self.lstms.append(lstm)
                self.layer_params.append((lstm.weight_ih_l0, lstm.weight_hh_l0,
                                          lstm.bias_ih_l0, lstm.bias_hh_l0))
        W_out = params[-2]
        self.linear = torch.nn.Linear(W_out.shape[0], W_out.shape[1], dtype=dtype)
        with torch.no_grad():
            for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.layer_params):
                W, U, b = params[3 * k : 3 * k + 3]
                w_ih.copy_(self._t(W.T))
                w_hh.copy_(self._t(U.T))
                b_ih.copy_(self._t(b))
                b_hh.zero_()
            self.linear.weight.copy_(self._t(W_out.T))
            self.linear.bias.copy_(self._t(params[-1]))

    def _t(self, a):
        return torch.tensor(np.ascontiguousarray(a), dtype=self.dtype)

    def __call__(self, X):
        seq = self._t(X)
        for lstm in self.lstms:
            seq, _ = lstm(seq)
        return self.linear(seq[:, -1])

    def zero_grad(self):
        for m in self.lstms + [self.linear]:
            m.zero_grad(set_to_none=True)

    def grads(self):
        """torch's gradients in the engine's order and shapes."""
        out = []
        for w_ih, w_hh, b_ih, b_hh in self.layer_params:
            # z = x W_ih^T + b_ih + h W_hh^T + b_hh: both biases get the same grad
            # (up to torch's order of summation).
            assert_close(b_hh.grad.numpy(), b_ih.grad.numpy(), 1e-12)
            out += [w_ih.grad.numpy().T, w_hh.grad.numpy().T, b_ih.grad.numpy()]
        return out + [self.linear.weight.grad.numpy().T, self.linear.bias.grad.numpy()]


def write_random_weights(est, rng, scale=0.5):
    """Fresh weights into the estimator's live arrays; checks that they are live."""
    for layer in est.lstm_coefs_:
        for key in ("kernel", "recurrent_kernel", "bias"):
            layer[key][...] = rng.normal(scale=scale, size=layer[key].shape)
    est.coefs_[0][...] = rng.normal(scale=scale, size=est.coefs_[0].shape)
    est.intercepts_[0][...] = rng.normal(scale=scale, size=est.intercepts_[0].shape)
    return [p.copy() for p in est._params()]


def assert_grads_close(ours, theirs, rtol, what=""):
    assert len(ours) == len(theirs)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape, f"{what} param {k}"
        assert_close(a, b, rtol, f"{what} param {k}")


def data(seed=0, n=N, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng, rng.normal(size=(n, T, F)).astype(dtype)


def fitted_regressor(hidden=(7, 5), seed=0, **kwargs):
    rng, X = data(seed)
    y = rng.normal(size=N)
    est = LSTMRegressor(hidden_layer_sizes=hidden, alpha=0.0, random_state=0, **kwargs)
    est.partial_fit(X, y)
    return est, X, y, rng


def fitted_classifier(n_classes, hidden=(6, 4), seed=0, **kwargs):
    rng, X = data(seed)
    y = np.arange(N) % n_classes
    est = LSTMClassifier(hidden_layer_sizes=hidden, alpha=0.0, random_state=0, **kwargs)
    est.partial_fit(X, y, classes=np.arange(n_classes))
    return est, X, y, rng


# --------------------------------------------------------------------- forward
@pytest.mark.parametrize("hidden, single", [((7, 5), False), ((6, 6), True)],
                         ids=["7-5-per-layer-modules", "6-6-num_layers=2"])
def test_regressor_predict_matches_torch(hidden, single):
    est, X, _, rng = fitted_regressor(hidden)
    before = est.predict(X)
    params = write_random_weights(est, rng)
    after = est.predict(X)
    assert not np.allclose(before, after)  # the written weights are the ones used
    with torch.no_grad():
        expected = TorchNet(params, single_module=single)(X).numpy()
    assert after.shape == (N,)
    assert_close(after, expected[:, 0], 1e-8)


def test_multiclass_predict_proba_matches_torch():
    est, X, _, rng = fitted_classifier(3)
    params = write_random_weights(est, rng)
    with torch.no_grad():
        expected = torch.softmax(TorchNet(params)(X), dim=1).numpy()
    proba = est.predict_proba(X)
    assert_close(proba, expected, 1e-8)
    np.testing.assert_array_equal(est.predict(X), expected.argmax(axis=1))


def test_binary_predict_proba_matches_torch():
    est, X, _, rng = fitted_classifier(2)
    params = write_random_weights(est, rng)
    with torch.no_grad():
        logits = TorchNet(params)(X)
        p1 = torch.sigmoid(logits).numpy()[:, 0]
        p0 = torch.sigmoid(-logits).numpy()[:, 0]
    proba = est.predict_proba(X)
    assert proba.shape == (N, 2)
    assert_close(proba[:, 1], p1, 1e-8)
    assert_close(proba[:, 0], p0, 1e-8)


def test_float32_predict_matches_torch():
    rng, X = data(1, dtype=np.float32)
    y = rng.normal(size=N).astype(np.float32)
    est = LSTMRegressor(hidden_layer_sizes=(7, 5), random_state=0).partial_fit(X, y)
    assert all(p.dtype == np.float32 for p in est._params())
    write_random_weights(est, rng)
    params = est._params()
    pred = est.predict(X)
    assert pred.dtype == np.float32
    with torch.no_grad():
        expected32 = TorchNet(params, dtype=torch.float32)(X).numpy()[:, 0]
        expected64 = TorchNet(params, dtype=F64)(X).numpy()[:, 0]
    assert_close(pred, expected32, 1e-5)
    assert_close(pred, expected64, 1e-5)


# ------------------------------------------------------------------- gradients
def torch_grads(params, X, loss_of_logits, single=False):
    net = TorchNet(params, single_module=single)
    net.zero_grad()
    loss = loss_of_logits(net(X))
    loss.backward()
    return float(loss.detach()), net.grads()


def check_estimator_grads(est, X, Y, torch_loss, rtol=1e-8):
    params = est._params()
    t_loss, t_grads = torch_grads(params, X, torch_loss)
    loss, grads = est._loss_grad(X, Y, np.ones(len(X)), params)
    assert loss == pytest.approx(t_loss, rel=1e-12)
    assert_grads_close(grads, t_grads, rtol, "_loss_grad")
    return t_grads


@pytest.mark.parametrize("hidden, single", [((7, 5), False), ((6, 6), True)],
                         ids=["7-5-per-layer-modules", "6-6-num_layers=2"])
def test_regressor_gradients_match_torch(hidden, single):
    est, X, y, rng = fitted_regressor(hidden)
    params = write_random_weights(est, rng)
    Y = y.reshape(-1, 1)
    y_t = torch.tensor(Y, dtype=F64)

    def loss_fn(out):
        return 0.5 * ((y_t - out) ** 2).sum(1).mean()

    t_loss, t_grads = torch_grads(params, X, loss_fn, single=single)
    # The engine alone, with the squared-error gradient written out here.
    out, cache = forward(X, params)
    assert_grads_close(backward((out - Y) / N, cache), t_grads, 1e-8, "engine")
    # The estimator's loss and gradient (alpha=0).
    loss, grads = est._loss_grad(X, Y, np.ones(len(X)), est._params())
    assert loss == pytest.approx(t_loss, rel=1e-12)
    assert_grads_close(grads, t_grads, 1e-8, "_loss_grad")


def test_multiclass_gradients_match_torch():
    est, X, y, rng = fitted_classifier(3)
    write_random_weights(est, rng)
    Y = est._label_binarizer.transform(y).astype(np.float64)
    target = torch.tensor(y, dtype=torch.long)
    check_estimator_grads(
        est, X, Y, lambda out: torch.nn.functional.cross_entropy(out, target)
    )


def test_binary_gradients_match_torch():
    est, X, y, rng = fitted_classifier(2)
    write_random_weights(est, rng)
    Y = est._label_binarizer.transform(y).astype(np.float64)
    assert Y.shape == (N, 1)
    y_t = torch.tensor(Y, dtype=F64)
    check_estimator_grads(
        est, X, Y,
        lambda out: torch.nn.functional.binary_cross_entropy_with_logits(out, y_t),
    )


def test_multilabel_gradients_match_torch():
    rng, X = data(2)
    Y = rng.integers(0, 2, size=(N, 3))
    est = LSTMClassifier(hidden_layer_sizes=(5, 4), alpha=0.0, random_state=0)
    est.partial_fit(X, Y, classes=[0, 1, 2])
    write_random_weights(est, rng)
    Y = Y.astype(np.float64)
    y_t = torch.tensor(Y, dtype=F64)
    # Summed over labels, mean over samples.
    check_estimator_grads(
        est, X, Y,
        lambda out: torch.nn.functional.binary_cross_entropy_with_logits(
            out, y_t, reduction="none").sum(1).mean(),
    )


# ------------------------------------------------------------ one SGD step
SGD = dict(solver="sgd", momentum=0.0, learning_rate_init=0.05, batch_size=1000,
           shuffle=False)


def check_sgd_step(est, X, y, torch_loss, rng, fit_kwargs=None):
    lr = est.learning_rate_init
    old = write_random_weights(est, rng)
    live = est._params()
    _, t_grads = torch_grads(old, X, torch_loss)
    est.partial_fit(X, y, **(fit_kwargs or {}))
    new = est._params()
    for k, (a, b) in enumerate(zip(live, new)):
        assert a is b, f"param {k} is no longer the same live array"
    assert_grads_close([n - o for n, o in zip(new, old)],
                       [-lr * g for g in t_grads], 1e-6, "SGD step")


def test_regressor_sgd_step_matches_torch():
    est, X, y, rng = fitted_regressor((7, 5), **SGD)
    y_t = torch.tensor(y.reshape(-1, 1), dtype=F64)
    check_sgd_step(est, X, y, lambda out: 0.5 * ((y_t - out) ** 2).sum(1).mean(), rng)


def test_multiclass_sgd_step_matches_torch():
    est, X, y, rng = fitted_classifier(3, **SGD)
    target = torch.tensor(y, dtype=torch.long)
    check_sgd_step(
        est, X, y, lambda out: torch.nn.functional.cross_entropy(out, target), rng
    )


# ------------------------------------------- products as wide as real models'
def test_wide_layers_match_torch():
    """Layers of 128 units on 16 samples: the size at which a BLAS with a path
    for small products (OpenBLAS on AVX-512) has the engine cut each step's
    products into blocks of rows (``_engine._row_cuts``). Outputs, gradients and
    one SGD step must match PyTorch's as the small models' do."""
    import sklearn_lstm._engine as engine

    n, hidden, n_features = 16, (128, 128), 16
    if engine._small_product():  # this BLAS has the path: the products are cut
        assert len(engine._row_cuts(512, 128 + n_features + 1, n,
                                    engine._small_product())) > 1
        assert len(engine._row_cuts(128, 512, n, engine._small_product())) > 1
    rng = np.random.default_rng(5)
    X = rng.normal(size=(n, T, n_features))
    y = rng.normal(size=n)
    est = LSTMRegressor(hidden_layer_sizes=hidden, alpha=0.0, random_state=0,
                        max_grad_norm=None, **SGD)
    est.partial_fit(X, y)
    params = write_random_weights(est, rng, scale=0.1)
    net = TorchNet(params)
    with torch.no_grad():
        assert_close(est.predict(X), net(X).numpy().ravel(), 1e-10)
    y_t = torch.tensor(y.reshape(-1, 1), dtype=F64)

    def loss_fn(out):
        return 0.5 * ((y_t - out) ** 2).sum(1).mean()

    _, t_grads = torch_grads(params, X, loss_fn)
    out, cache = forward(X, params)
    assert_grads_close(backward((out - y.reshape(-1, 1)) / n, cache), t_grads, 1e-8,
                       "engine")
    check_sgd_step(est, X, y, loss_fn, rng)
