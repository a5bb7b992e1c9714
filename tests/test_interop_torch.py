"""sklearn_lstm.interop and PyTorch: from_torch, to_torch, round trips.

The reference is PyTorch itself: ``nn.LSTM`` modules with torch's own
initialisation, run on packed sequences, with the pooling head of the gold tests
(``_gradcheck.torch_head``) and ``nn.Linear``. Everything runs in float64:
outputs agree to 1e-10 (rounding leaves ~1e-15; torch adds its two LSTM biases
inside each step, we add them once, a difference of an ulp). Round trips are
compared bit for bit.
"""

import pickle
import sys

import numpy as np
import pytest
from _gradcheck import same_weights, sigmoid, softmax, torch_head
from sklearn.base import clone

from sklearn_lstm import LSTMClassifier, LSTMRegressor
from sklearn_lstm.interop import from_torch, to_torch

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)
F64 = torch.float64
N, T, F = 7, 6, 3
LENGTHS = np.array([6, 2, 4, 1, 3, 6, 5])


def padded(seed=0):
    """A NaN-padded float batch and the same sequences as a list."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(N, T, F))
    for i, n in enumerate(LENGTHS):
        X[i, n:] = np.nan
    return X, [X[i, :n] for i, n in enumerate(LENGTHS)]


def token_ids(n_tokens, seed=0):
    rng = np.random.RandomState(seed)
    ids = rng.randint(1, n_tokens, size=(N, T))
    ids[np.arange(T) >= LENGTHS[:, None]] = 0
    return ids


def torch_modules(hidden, bidirectional, n_outputs, n_tokens=None, dim=3, seed=0):
    """Torch's own modules, initialised by torch: (embedding, [lstm...], linear).
    Equal sizes make one multi-layer nn.LSTM, others one module per layer."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        embedding = None
        n_in = F
        if n_tokens is not None:
            embedding = torch.nn.Embedding(n_tokens, dim, padding_idx=0, dtype=F64)
            n_in = dim
        if len(set(hidden)) == 1:
            lstms = [torch.nn.LSTM(n_in, hidden[0], num_layers=len(hidden),
                                   bidirectional=bidirectional, batch_first=True,
                                   dtype=F64)]
        else:
            lstms = []
            for H in hidden:
                lstms.append(torch.nn.LSTM(n_in, H, bidirectional=bidirectional,
                                           batch_first=True, dtype=F64))
                n_in = H * (2 if bidirectional else 1)
        width = hidden[-1] * (2 if bidirectional else 1)
        linear = torch.nn.Linear(width, n_outputs, dtype=F64)
    return embedding, lstms, linear


def torch_outputs(embedding, lstms, linear, X, pooling, bidirectional):
    """What PyTorch computes on the padded batch X (NaN or 0-id padding)."""
    lengths = torch.as_tensor(LENGTHS)
    with torch.no_grad():
        if embedding is not None:
            x = embedding(torch.as_tensor(X))
        else:
            x = torch.from_numpy(np.nan_to_num(X, nan=0.0))
        h = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        for lstm in lstms:
            h, (h_n, _) = lstm(h)
        out, _ = pad_packed_sequence(h, batch_first=True, total_length=T)
        return torch_head(torch, out, h_n, lengths.to(F64), pooling, linear,
                          bidirectional).numpy()


CASES = [
    # kind, hidden, bidirectional, pooling, n_tokens
    ("regressor", (4,), False, "last", None),
    ("regressor", (3, 5), True, "mean", None),
    ("binary", (4, 4), True, "last", None),
    ("multiclass", (4,), False, "max", None),
    ("multiclass", (3,), True, "max", None),
    ("regressor", (4,), True, "none", None),
    ("binary", (4,), False, "mean", 9),
    ("multiclass", (3, 3), True, "last", 9),
]


@pytest.mark.parametrize("kind, hidden, bidirectional, pooling, n_tokens", CASES)
def test_from_torch_and_to_torch_compute_what_torch_computes(
    kind, hidden, bidirectional, pooling, n_tokens
):
    n_outputs = {"regressor": 2, "binary": 1, "multiclass": 3}[kind]
    embedding, lstms, linear = torch_modules(hidden, bidirectional, n_outputs,
                                             n_tokens)
    if n_tokens is None:
        X, X_list = padded()
    else:
        X = token_ids(n_tokens)
        X_list = [X[i, :n] for i, n in enumerate(LENGTHS)]
    expected = torch_outputs(embedding, lstms, linear, X, pooling, bidirectional)
    params = dict(hidden_layer_sizes=hidden, bidirectional=bidirectional,
                  pooling=pooling, embedding_dim=None if n_tokens is None else 3)
    parts = {"lstm": lstms if len(lstms) > 1 else lstms[0], "linear": linear}
    if embedding is not None:
        parts["embedding"] = embedding
    if kind == "regressor":
        est = from_torch(parts, estimator=LSTMRegressor(**params))
        got = est.predict(X)
        if pooling == "none":
            valid = np.arange(T) < LENGTHS[:, None]
            np.testing.assert_allclose(got[valid], expected[valid], rtol=0, atol=1e-10)
            assert np.isnan(got[~valid]).all()
            for i, seq in enumerate(est.predict(X_list)):
                np.testing.assert_allclose(seq, expected[i, : LENGTHS[i]], atol=1e-10)
        else:
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
            np.testing.assert_allclose(est.predict(X_list), expected, atol=1e-10)
    else:
        classes = ["a", "b"] if kind == "binary" else ["a", "b", "c"]
        est = from_torch(parts, estimator=LSTMClassifier(**params), classes=classes)
        proba = est.predict_proba(X)
        if kind == "binary":
            np.testing.assert_allclose(proba[:, 1], sigmoid(expected[:, 0]), atol=1e-10)
        else:
            np.testing.assert_allclose(proba, softmax(expected), rtol=0, atol=1e-10)
        np.testing.assert_allclose(est.predict_proba(X_list), proba, atol=1e-12)

    module = to_torch(est)
    with torch.no_grad():
        raw = module(torch.as_tensor(X)).numpy()
        raw_lengths = module(torch.as_tensor(np.nan_to_num(X) if n_tokens is None
                                             else X), lengths=LENGTHS).numpy()
    valid = np.arange(T) < LENGTHS[:, None] if pooling == "none" else slice(None)
    np.testing.assert_allclose(raw[valid], expected[valid], rtol=0, atol=1e-10)
    np.testing.assert_allclose(raw_lengths[valid], expected[valid], rtol=0, atol=1e-10)
    assert module.linear.weight.dtype == F64

    # ours -> torch -> ours: the same bits, through the module and its parts.
    estimator = clone(est).set_params(init=None)
    again = from_torch(module, estimator=estimator,
                       classes=None if kind == "regressor" else est.classes_)
    assert same_weights(again, est)
    as_list = ([] if module.embedding is None else [module.embedding]) + (
        [module.lstm] if isinstance(module.lstm, torch.nn.LSTM) else list(module.lstm)
    ) + [module.linear]
    again = from_torch(as_list, estimator=estimator,
                       classes=None if kind == "regressor" else est.classes_)
    assert same_weights(again, est)


def test_torch_trained_model_predicts_what_torch_predicts():
    X, _ = padded()
    y = np.nan_to_num(X)[:, :, 0].sum(axis=1, keepdims=True)
    _, (lstm,), linear = torch_modules((5,), False, 1)
    optimizer = torch.optim.Adam([*lstm.parameters(), *linear.parameters()], lr=0.05)
    lengths = torch.as_tensor(LENGTHS)
    x = torch.from_numpy(np.nan_to_num(X))
    for _ in range(20):
        optimizer.zero_grad()
        packed = pack_padded_sequence(x, lengths, batch_first=True,
                                      enforce_sorted=False)
        _, (h_n, _) = lstm(packed)
        loss = ((linear(h_n[-1]) - torch.from_numpy(y)) ** 2).mean()
        loss.backward()
        optimizer.step()
    expected = torch_outputs(None, [lstm], linear, X, "last", False)[:, 0]
    reg = from_torch([lstm, linear], estimator=LSTMRegressor(5))
    np.testing.assert_allclose(reg.predict(X), expected, rtol=0, atol=1e-10)


def test_round_trip_of_a_fitted_model_is_bitwise_float64_and_float32():
    X, _ = padded()
    y = np.nan_to_num(X)[:, :, 0].sum(axis=1)
    for dtype in (np.float64, np.float32):
        reg = LSTMRegressor((4, 3), bidirectional=True, max_iter=3,
                            random_state=0).fit(X.astype(dtype), y)
        module = to_torch(reg)
        assert module.linear.weight.dtype == (F64 if dtype == np.float64
                                              else torch.float32)
        back = from_torch(module, estimator=LSTMRegressor((4, 3), bidirectional=True))
        assert same_weights(back, reg)
        # The module is the estimator's copy: training it leaves reg alone.
        before = [p.copy() for p in reg._params()]
        with torch.no_grad():
            module.linear.weight += 1
        assert all(np.array_equal(a, b) for a, b in zip(before, reg._params()))


def test_classes_in_any_order_and_two_logit_heads():
    X, _ = padded()
    embedding, (lstm,), linear3 = torch_modules((4,), False, 3)
    logits = torch_outputs(None, [lstm], linear3, X, "last", False)
    clf = from_torch([lstm, linear3], estimator=LSTMClassifier(4),
                     classes=["c", "a", "b"])
    np.testing.assert_array_equal(clf.classes_, ["a", "b", "c"])
    np.testing.assert_allclose(clf.predict_proba(X), softmax(logits)[:, [1, 2, 0]],
                               rtol=0, atol=1e-10)
    # Two classes: one logit of classes[1], or a pair of softmax logits.
    _, _, linear1 = torch_modules((4,), False, 1, seed=1)
    p1 = sigmoid(torch_outputs(None, [lstm], linear1, X, "last", False)[:, 0])
    clf = from_torch([lstm, linear1], estimator=LSTMClassifier(4), classes=[1, 0])
    np.testing.assert_allclose(clf.predict_proba(X)[:, 0], p1, rtol=0, atol=1e-10)
    _, _, linear2 = torch_modules((4,), False, 2, seed=1)
    p2 = softmax(torch_outputs(None, [lstm], linear2, X, "last", False))
    clf = from_torch([lstm, linear2], estimator=LSTMClassifier(4), classes=[0, 1])
    np.testing.assert_allclose(clf.predict_proba(X), p2, rtol=0, atol=1e-10)
    assert clf.coefs_[0].shape == (4, 1)


def test_loaded_estimator_trains_pickles_and_clones():
    X, _ = padded()
    y = (np.nan_to_num(X)[:, 0, 0] > 0).astype(int)
    _, (lstm,), linear = torch_modules((4,), True, 1)
    unfitted = LSTMClassifier(4, bidirectional=True, max_iter=2, random_state=0)
    params_before = unfitted.get_params()
    clf = from_torch({"lstm": lstm, "linear": linear}, estimator=unfitted,
                     classes=[0, 1])
    assert unfitted.get_params() == params_before and not hasattr(unfitted, "coefs_")
    loaded = [p.copy() for p in clf._params()]
    assert clf.n_features_in_ == F and clf.n_iter_ == 0 and clf.score(X, y) >= 0

    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))

    # init holds copies of what was read: clones start from it.
    init_flat = clf._network.from_public(
        clf.init["lstm_coefs_"], clf.init["coefs_"], clf.init["intercepts_"]
    )
    assert all(np.array_equal(a, b) and not np.shares_memory(a, b)
               for a, b in zip(init_flat, clf._params()))
    tuned = clone(clf).set_params(frozen="lstm").fit(X, y)
    assert all(np.array_equal(tuned.lstm_coefs_[0][k], v)
               for k, v in clf.lstm_coefs_[0].items())

    clf.partial_fit(X, y)
    assert clf.n_iter_ == 1
    assert not all(np.array_equal(a, b) for a, b in zip(loaded, clf._params()))
    clf.set_params(warm_start=True).fit(X, y)
    assert clf.n_iter_ == 3
    # The weights read are where the loaded model's init still points.
    assert all(np.array_equal(a, b) for a, b in zip(init_flat, loaded))


def test_to_torch_module_pickles_and_finds_lengths_itself():
    ids = token_ids(9)
    y = np.arange(N) % 2
    clf = LSTMClassifier(3, embedding_dim=2, pooling="max", max_iter=2,
                         random_state=0).fit(ids, y)
    module = pickle.loads(pickle.dumps(to_torch(clf)))
    with torch.no_grad():
        z = module(torch.as_tensor(ids))[:, 0].numpy()
        z_lengths = module(torch.as_tensor(ids), torch.as_tensor(LENGTHS))[:, 0]
    np.testing.assert_allclose(sigmoid(z), clf.predict_proba(ids)[:, 1], atol=1e-10)
    np.testing.assert_array_equal(z, z_lengths.numpy())


@pytest.mark.parametrize(
    "params, message",
    [
        ({"hidden_layer_sizes": 5}, r"\(4,\) hidden units.*hidden_layer_sizes=5"),
        ({"hidden_layer_sizes": (4, 4)}, "hidden_layer_sizes"),
        ({"bidirectional": True}, "not bidirectional.*bidirectional=True"),
        ({"embedding_dim": 3}, "has no embedding.*embedding_dim=3"),
    ],
)
def test_from_torch_shape_mismatches_name_the_parameter(params, message):
    _, (lstm,), linear = torch_modules((4,), False, 1)
    estimator = LSTMRegressor(**{"hidden_layer_sizes": 4, **params})
    with pytest.raises(ValueError, match=message):
        from_torch([lstm, linear], estimator=estimator)


def test_from_torch_errors():
    _, (lstm,), linear = torch_modules((4,), False, 3)
    with pytest.raises(ValueError, match="classes is required"):
        from_torch([lstm, linear], estimator=LSTMClassifier(4))
    with pytest.raises(ValueError, match="3 output.*2 classes need 1 \\(or 2\\)"):
        from_torch([lstm, linear], estimator=LSTMClassifier(4), classes=[0, 1])
    with pytest.raises(ValueError, match="twice"):
        from_torch([lstm, linear], estimator=LSTMClassifier(4), classes=[0, 1, 1])
    with pytest.raises(ValueError, match="classes is for classifiers"):
        from_torch([lstm, linear], estimator=LSTMRegressor(4), classes=[0, 1, 2])
    with pytest.raises(TypeError, match="LSTMRegressor or LSTMClassifier"):
        from_torch([lstm, linear], estimator=object())
    with pytest.raises(ValueError, match="optional nn.Embedding"):
        from_torch([linear], estimator=LSTMRegressor(4))
    with pytest.raises(ValueError, match='keys "lstm" and "linear"'):
        from_torch({"lstm": lstm, "head": linear}, estimator=LSTMRegressor(4))
    with pytest.raises(TypeError, match="nn.LSTM layers"):
        from_torch([torch.nn.GRU(F, 4), linear], estimator=LSTMRegressor(4))
    wide = torch.nn.Linear(5, 1, dtype=F64)
    with pytest.raises(ValueError, match=r"coef.*\(5, 1\).*needs \(4, 1\)"):
        from_torch([lstm, wide], estimator=LSTMRegressor(4))
    projected = torch.nn.LSTM(F, 4, proj_size=2, dtype=F64)
    with pytest.raises(ValueError, match="proj_size"):
        from_torch([projected, linear], estimator=LSTMRegressor(4))
    reg = LSTMRegressor(4, pooling="mean", max_iter=1).fit(*_xy())
    with pytest.raises(ValueError, match="pooling='mean'.*pooling='last'"):
        from_torch(to_torch(reg), estimator=LSTMRegressor(4))


def _xy():
    X, _ = padded()
    return X, np.nan_to_num(X)[:, :, 0].sum(axis=1)


def test_missing_torch_is_a_clear_import_error(monkeypatch):
    reg = LSTMRegressor(3, max_iter=1).fit(*_xy())
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r'pip install "sklearn-lstm\[torch\]"'):
        to_torch(reg)
    with pytest.raises(ImportError, match="from_torch needs PyTorch"):
        from_torch({}, estimator=reg)
