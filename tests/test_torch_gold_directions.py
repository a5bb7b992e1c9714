"""PyTorch as the gold standard for bidirectional layers and the poolings.

The same weights in ``torch.nn.LSTM(bidirectional=True, batch_first=True)`` fed a
``pack_padded_sequence(..., enforce_sorted=False)`` (whose reverse direction also
runs over each sequence's own steps only) and ``torch.nn.Linear``:

* pooling "last": the Linear on the top layer's ``h_n``, ``cat(h_n[-2], h_n[-1])``
  (forward direction at the last valid step, backward one at step 0);
* "mean" / "max": on the mean / ``amax`` of the padded outputs over the valid steps
  (padding excluded by a mask, set to -inf for the max);
* "none": the Linear at every step of the padded outputs (valid steps compared).

Weights map as ``kernel = weight_ih.T``, ``recurrent_kernel = weight_hh.T``,
``bias = bias_ih + bias_hh`` (torch's ``*_reverse`` for ours), ``coef =
weight.T``, ``intercept = bias``; both libraries stack the gates as
[input | forget | cell | output]. Everything runs in float64 with explicit dtypes:
outputs must agree to 1e-8 and gradients to 1e-8 relative (rounding leaves
~1e-13 here; a wrong term is off by 1e-3 or more). A one-step SGD update
``W_new - W_old`` loses about three digits to cancellation, so it is compared
with ``-learning_rate * gradient`` to 1e-6, as in ``test_torch_gold.py``.
"""

import numpy as np
import pytest
from _gradcheck import assert_close, torch_head

from sklearn_lstm import LSTMClassifier, LSTMRegressor
from sklearn_lstm._engine import backward, forward
from sklearn_lstm._network import Network

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

F64 = torch.float64
POOLINGS = ["last", "mean", "max", "none"]
LAYER_KEYS = ("kernel", "recurrent_kernel", "bias",
              "kernel_reverse", "recurrent_kernel_reverse", "bias_reverse")
N, T, F = 5, 5, 3
LENGTHS = np.array([5, 2, 4, 1, 3])  # full, one step, and in between


@pytest.fixture(autouse=True)
def _default_dtype_untouched():
    before = torch.get_default_dtype()
    yield
    assert torch.get_default_dtype() == before


# --------------------------------------------------------------------- helpers
class TorchBiNet:
    """Bidirectional ``nn.LSTM`` layers and an ``nn.Linear`` on top, with torch's
    own initialisation (drawn from ``seed``; the global torch RNG is left as it
    was)."""

    def __init__(self, n_features, hidden, n_outputs, single_module=False, seed=0):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if single_module:  # equal widths: torch's names *_l0, *_l1, ...
                assert len(set(hidden)) == 1
                lstm = torch.nn.LSTM(n_features, hidden[0], num_layers=len(hidden),
                                     bidirectional=True, batch_first=True, dtype=F64)
                self.lstms = [lstm]
                named = [(lstm, f"l{k}") for k in range(len(hidden))]
            else:  # one module per layer, named *_l0
                self.lstms, named, n_in = [], [], n_features
                for H in hidden:
                    self.lstms.append(torch.nn.LSTM(n_in, H, bidirectional=True,
                                                    batch_first=True, dtype=F64))
                    named.append((self.lstms[-1], "l0"))
                    n_in = 2 * H
            self.linear = torch.nn.Linear(2 * hidden[-1], n_outputs, dtype=F64)
        # (weight_ih, weight_hh, bias_ih, bias_hh) of each layer and direction, in
        # the order of our flat parameters.
        self.directions = [
            tuple(getattr(lstm, f"{kind}_{layer}{suffix}")
                  for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            for lstm, layer in named for suffix in ("", "_reverse")
        ]

    @classmethod
    def from_params(cls, params, single_module=False):
        """A copy of our flat parameters (``bias_ih = bias``, ``bias_hh = 0``)."""
        n_layers = (len(params) - 2) // 6
        hidden = [params[6 * k + 1].shape[0] for k in range(n_layers)]
        net = cls(params[0].shape[0], hidden, params[-1].shape[0], single_module)
        with torch.no_grad():
            for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(net.directions):
                W, U, b = params[3 * k : 3 * k + 3]
                w_ih.copy_(torch.tensor(W.T, dtype=F64))
                w_hh.copy_(torch.tensor(U.T, dtype=F64))
                b_ih.copy_(torch.tensor(b, dtype=F64))
                b_hh.zero_()
            net.linear.weight.copy_(torch.tensor(params[-2].T, dtype=F64))
            net.linear.bias.copy_(torch.tensor(params[-1], dtype=F64))
        return net

    def params(self):
        """torch's weights in our flat order and layout."""
        out = []
        for w_ih, w_hh, b_ih, b_hh in self.directions:
            out += [w_ih.detach().numpy().T, w_hh.detach().numpy().T,
                    (b_ih + b_hh).detach().numpy()]
        return out + [self.linear.weight.detach().numpy().T,
                      self.linear.bias.detach().numpy()]

    def __call__(self, X, lengths, pooling):
        """Raw outputs, (B, k) or, for pooling "none", (B, T, k)."""
        B, T_, _ = X.shape
        lengths = torch.as_tensor(np.full(B, T_) if lengths is None else lengths,
                                  dtype=torch.int64)
        seq = pack_padded_sequence(torch.tensor(X, dtype=F64), lengths,
                                   batch_first=True, enforce_sorted=False)
        for lstm in self.lstms:
            seq, (h_n, _) = lstm(seq)
        outputs, _ = pad_packed_sequence(seq, batch_first=True, total_length=T_)
        return torch_head(torch, outputs, h_n, lengths, pooling, self.linear, True)

    def grads(self, loss):
        """torch's gradients of ``loss`` in our flat order and layout."""
        for m in self.lstms + [self.linear]:
            m.zero_grad(set_to_none=True)
        loss.backward()
        out = []
        for w_ih, w_hh, b_ih, b_hh in self.directions:
            # Both biases enter z the same way, so get the same gradient (up to
            # torch's order of summation).
            assert_close(b_hh.grad.numpy(), b_ih.grad.numpy(), 1e-12)
            out += [w_ih.grad.numpy().T, w_hh.grad.numpy().T, b_ih.grad.numpy()]
        return out + [self.linear.weight.grad.numpy().T,
                      self.linear.bias.grad.numpy()]


def assert_all_close(ours, theirs, rtol, what=""):
    assert len(ours) == len(theirs), what
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape, f"{what} param {k}"
        assert_close(a, b, rtol, f"{what} param {k}")


def valid_steps(lengths, n=N, T_=T):
    """(n, T) boolean: which steps are inside their sequence."""
    if lengths is None:
        return np.ones((n, T_), dtype=bool)
    return np.arange(T_) < lengths[:, None]


def padded(sequences, T_=T, fill=0.0):
    """(n, T, ...) array of a list of (T_i, ...) arrays, ``fill`` after each end."""
    out = np.full((len(sequences), T_) + np.shape(sequences[0])[1:], fill,
                  dtype=np.asarray(sequences[0]).dtype)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = s
    return out


def squared_error(out, Y, valid):
    """0.5 * ||out - y||^2, mean over samples, or over valid steps when per step."""
    Y = torch.tensor(Y, dtype=F64)
    if out.dim() == 3:
        valid = torch.tensor(valid)
        return 0.5 * ((out - Y) ** 2).sum(dim=-1)[valid].sum() / valid.sum()
    return 0.5 * ((out - Y) ** 2).sum(dim=1).mean()


# ------------------------------------------------------------- engine vs torch
MODULES = [
    pytest.param((3, 2), False, id="3-2-per-layer-modules"),
    pytest.param((3, 3), True, id="3-3-num_layers=2"),
]
BATCHES = [pytest.param(None, id="rectangular"), pytest.param(LENGTHS, id="ragged")]


def engine_problem(hidden, pooling, lengths, n_outputs=2, seed=0):
    rng = np.random.default_rng(seed)
    network = Network.stack(F, hidden, n_outputs, bidirectional=True, pooling=pooling)
    params = [rng.normal(scale=0.5, size=shape) for shape in network.shapes]
    X = rng.normal(size=(N, T, F))
    X[~valid_steps(lengths)] = 0.0
    Y_shape = (N, T, n_outputs) if pooling == "none" else (N, n_outputs)
    return rng, network, params, X, rng.normal(size=Y_shape)


@pytest.mark.parametrize("lengths", BATCHES)
@pytest.mark.parametrize("hidden, single", MODULES)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_engine_forward_matches_torch(pooling, hidden, single, lengths):
    _, network, params, X, _ = engine_problem(hidden, pooling, lengths)
    out, _ = forward(X, params, lengths=lengths, network=network)
    predicted, _ = forward(X, params, lengths=lengths, keep_cache=False,
                           network=network)
    with torch.no_grad():
        expected = TorchBiNet.from_params(params, single)(X, lengths, pooling).numpy()
    assert out.shape == expected.shape
    if pooling == "none":  # unspecified at padding steps
        valid = valid_steps(lengths)
        out, predicted, expected = out[valid], predicted[valid], expected[valid]
    assert_close(out, expected, 1e-8)
    assert_close(predicted, expected, 1e-8)


@pytest.mark.parametrize("lengths", BATCHES)
@pytest.mark.parametrize("hidden, single", MODULES)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_engine_gradients_match_torch(pooling, hidden, single, lengths):
    _, network, params, X, Y = engine_problem(hidden, pooling, lengths, seed=1)
    valid = valid_steps(lengths)
    net = TorchBiNet.from_params(params, single)
    t_grads = net.grads(squared_error(net(X, lengths, pooling), Y, valid))

    out, cache = forward(X, params, lengths=lengths, network=network)
    if pooling == "none":  # d/dout of the mean over valid steps; 0 at padding
        dout = np.where(valid[..., None], out - Y, 0.0) / valid.sum()
    else:
        dout = (out - Y) / N
    assert_all_close(backward(dout, cache), t_grads, 1e-8, "engine")


def test_torch_reverse_direction_reads_only_valid_steps():
    """The premise of the comparison: torch's packed reverse direction starts at
    each sequence's last valid step, so h_n[-1] is its output at step 0, and
    h_n[-2] its forward output at the last valid step."""
    _, _, params, X, _ = engine_problem((3, 2), "none", LENGTHS)
    net = TorchBiNet.from_params(params)
    with torch.no_grad():
        seq = pack_padded_sequence(torch.tensor(X, dtype=F64),
                                   torch.as_tensor(LENGTHS), batch_first=True,
                                   enforce_sorted=False)
        for lstm in net.lstms:
            seq, (h_n, _) = lstm(seq)
        outputs, _ = pad_packed_sequence(seq, batch_first=True, total_length=T)
    H = 2
    np.testing.assert_array_equal(h_n[-1].numpy(), outputs[:, 0, H:].numpy())
    np.testing.assert_array_equal(
        h_n[-2].numpy(), outputs[np.arange(N), LENGTHS - 1, :H].numpy()
    )


# ----------------------------------------------------------- estimators vs torch
HIDDEN = (3, 2)


def sgd(cls, pooling, **kwargs):
    return cls(hidden_layer_sizes=HIDDEN, bidirectional=True, pooling=pooling,
               solver="sgd", momentum=0.0, alpha=0.0, learning_rate_init=0.1,
               batch_size=N, shuffle=False, max_grad_norm=None, random_state=0,
               **kwargs)


def public_params(est):
    """The estimator's public weight arrays, in our flat order."""
    flat = [layer[key] for layer in est.lstm_coefs_ for key in LAYER_KEYS]
    return flat + [est.coefs_[0], est.intercepts_[0]]


def load_torch_weights(est, n_outputs, seed=0):
    """torch's own initial weights, copied into the estimator's live arrays."""
    net = TorchBiNet(F, HIDDEN, n_outputs, seed=seed)
    for ours, theirs in zip(public_params(est), net.params(), strict=True):
        assert ours.shape == theirs.shape
        ours[...] = theirs
    return net


def check_sgd_step(est, X, y, torch_loss_of_net, n_outputs, fit_kwargs=None):
    """After a first partial_fit, torch's weights in; one more partial_fit must
    move every public weight by -learning_rate * torch's gradient."""
    est.partial_fit(X, y, **(fit_kwargs or {}))
    net = load_torch_weights(est, n_outputs)
    old = [p.copy() for p in public_params(est)]
    t_grads = net.grads(torch_loss_of_net(net))
    est.partial_fit(X, y)
    new = public_params(est)
    assert_all_close([n - o for n, o in zip(new, old)],
                     [-est.learning_rate_init * g for g in t_grads], 1e-6, "SGD step")


def ragged_data(seed, n_targets=None, lengths=LENGTHS):
    """A list of sequences of ``lengths`` and one target per step of each."""
    rng = np.random.default_rng(seed)
    X = [rng.normal(size=(T_i, F)) for T_i in lengths]
    target_shape = () if n_targets is None else (n_targets,)
    y = [rng.normal(size=(T_i,) + target_shape) for T_i in lengths]
    return X, y


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_pooled_regressor_sgd_step_matches_torch(pooling):
    X, _ = ragged_data(2)
    y = np.random.default_rng(3).normal(size=N)
    Xp = padded(X)

    def loss(net):
        return squared_error(net(Xp, LENGTHS, pooling), y[:, None], None)

    check_sgd_step(sgd(LSTMRegressor, pooling), X, y, loss, 1)


# X's form: a list of sequences, NaN-padded, or rectangular (all of length T).
FORMS = ["list", "nan-padded", "rectangular"]


@pytest.mark.parametrize("n_targets", [None, 2], ids=["1-target", "2-targets"])
@pytest.mark.parametrize("form", FORMS)
def test_per_step_regressor_sgd_step_matches_torch(form, n_targets):
    lengths = None if form == "rectangular" else LENGTHS
    X, y = ragged_data(4, n_targets, np.full(N, T) if lengths is None else lengths)
    Xp, Y = padded(X), padded(y)  # zeros at padding, for torch
    if Y.ndim == 2:
        Y = Y[..., None]
    valid = valid_steps(lengths)
    if form == "list":
        X_fit, y_fit = X, y
    elif form == "nan-padded":
        X_fit, y_fit = padded(X, fill=np.nan), padded(y, fill=np.nan)
    else:
        X_fit, y_fit = np.stack(X), np.stack(y)

    def loss(net):
        return squared_error(net(Xp, lengths, "none"), Y, valid)

    k = 1 if n_targets is None else n_targets
    check_sgd_step(sgd(LSTMRegressor, "none"), X_fit, y_fit, loss, k)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_regressor_predict_matches_torch(pooling):
    X, y_steps = ragged_data(5)
    y = np.array([s.sum() for s in y_steps])
    est = sgd(LSTMRegressor, pooling)
    est.partial_fit(X, y_steps if pooling == "none" else y)
    net = load_torch_weights(est, 1, seed=1)
    with torch.no_grad():
        expected = net(padded(X), LENGTHS, pooling).numpy()[..., 0]
    pred = est.predict(X)
    if pooling != "none":
        assert pred.shape == (N,)
        assert_close(pred, expected, 1e-8)
        return
    # One prediction per step, in the form of X.
    assert isinstance(pred, list) and len(pred) == N
    for i, T_i in enumerate(LENGTHS):
        assert pred[i].shape == (T_i,)
        assert_close(pred[i], expected[i, :T_i], 1e-8, f"sequence {i}")
    pred_padded = est.predict(padded(X, fill=np.nan))
    assert pred_padded.shape == (N, T)
    valid = valid_steps(LENGTHS)
    assert_close(pred_padded[valid], expected[valid], 1e-8)
    assert np.isnan(pred_padded[~valid]).all()


CLASSES = np.array(["cat", "ant", "bee"])  # classes_ must come out sorted


@pytest.mark.parametrize("pooling", POOLINGS)
def test_multiclass_sgd_step_and_predictions_match_torch(pooling):
    rng = np.random.default_rng(6)
    X = [rng.normal(size=(T_i, F)) for T_i in LENGTHS]
    Xp = padded(X)
    if pooling == "none":
        y = [rng.choice(CLASSES, size=T_i) for T_i in LENGTHS]
        labels = padded(y, fill="ant")
        valid = torch.tensor(valid_steps(LENGTHS))
    else:
        y = rng.choice(CLASSES, size=N)
        labels = y
    sorted_classes = np.sort(CLASSES)
    target = torch.tensor(np.searchsorted(sorted_classes, labels), dtype=torch.int64)

    def loss(net):
        logits = net(Xp, LENGTHS, pooling)
        if pooling == "none":  # mean over the valid steps
            return torch.nn.functional.cross_entropy(logits[valid], target[valid])
        return torch.nn.functional.cross_entropy(logits, target)

    est = sgd(LSTMClassifier, pooling)
    check_sgd_step(est, X, y, loss, len(CLASSES), fit_kwargs={"classes": CLASSES})
    np.testing.assert_array_equal(est.classes_, sorted_classes)

    # The updated weights, back into torch, predict what the estimator predicts.
    net = TorchBiNet.from_params(public_params(est))
    with torch.no_grad():
        logits = net(Xp, LENGTHS, pooling).numpy()
    expected = sorted_classes[logits.argmax(axis=-1)]
    pred = est.predict(X)
    if pooling == "none":
        assert isinstance(pred, list) and len(pred) == N
        for i, T_i in enumerate(LENGTHS):
            np.testing.assert_array_equal(pred[i], expected[i, :T_i])
        return
    np.testing.assert_array_equal(pred, expected)
    proba = torch.softmax(torch.tensor(logits), dim=1).numpy()
    assert_close(est.predict_proba(X), proba, 1e-8)
