"""``embedding_dim``: the estimators reading one integer token id per time step.

The gold test replays one plain SGD step in ``torch.nn.Embedding`` +
``torch.nn.LSTM`` + ``torch.nn.Linear`` (``TorchEmbeddingNet`` of the engine's
tests) in float64: each public weight moves by ``-learning_rate_init`` times
torch's gradient to 1e-6 relative, and ``predict`` gives torch's forward to 1e-8
(rounding leaves ~1e-13; a wrong term is off by 1e-3 or more).
"""

import numpy as np
import pytest
from _gradcheck import assert_close
from numpy.testing import assert_array_equal
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from test_engine_embedding import TorchEmbeddingNet
from threadpoolctl import threadpool_limits

from sklearn_lstm import LSTMClassifier, LSTMRegressor
from sklearn_lstm._network import Network
from sklearn_lstm.preprocessing import TextSequenceVectorizer

LENGTHS = [5, 2, 4, 1, 3, 5]
N_TOKENS = 9  # ids 1 .. 8 occur, 0 pads
HIDDEN = (3, 2)


def ragged_ids(seed, lengths=LENGTHS):
    """A list of id sequences of ``lengths``, ids repeating, the largest id in
    the first one (so that a first fit sees every row)."""
    rng = np.random.default_rng(seed)
    X = [rng.integers(1, N_TOKENS, size=T_i) for T_i in lengths]
    X[0][0] = N_TOKENS - 1
    return X


def padded(X):
    """The list ``X`` as a 2D array padded with trailing zeros."""
    out = np.zeros((len(X), max(map(len, X))), dtype=np.int64)
    for i, seq in enumerate(X):
        out[i, : len(seq)] = seq
    return out


def public_params(est):
    """The estimator's public weight arrays, in the flat order of the engine."""
    keys = ["kernel", "recurrent_kernel", "bias"]
    if est.bidirectional:
        keys += [key + "_reverse" for key in keys]
    flat = [layer[key] for layer in est.lstm_coefs_ for key in keys]
    return [est.embedding_, *flat, est.coefs_[0], est.intercepts_[0]]


def sgd(cls, **kwargs):
    params = dict(hidden_layer_sizes=HIDDEN, embedding_dim=2, solver="sgd",
                  momentum=0.0, alpha=0.0, learning_rate_init=0.1,
                  batch_size=len(LENGTHS), shuffle=False, max_grad_norm=None,
                  random_state=0)
    return cls(**{**params, **kwargs})


# ------------------------------------------------------------------ torch gold
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "none"])
def test_sgd_step_and_predict_match_torch(pooling, bidirectional):
    torch = pytest.importorskip("torch")
    X = ragged_ids(0)
    Xp, lengths = padded(X), np.array(LENGTHS)
    rng = np.random.default_rng(1)
    valid = np.arange(Xp.shape[1]) < lengths[:, None]
    if pooling == "none":
        y = [rng.normal(size=T_i) for T_i in LENGTHS]
        Y = np.zeros(Xp.shape + (1,))
        Y[valid, 0] = np.concatenate(y)
    else:
        y = rng.normal(size=len(X))
    est = sgd(LSTMRegressor, pooling=pooling, bidirectional=bidirectional)
    est.partial_fit(X, y)
    assert est.embedding_.shape == (N_TOKENS, 2)

    network = Network.stack(None, HIDDEN, 1, bidirectional=bidirectional,
                            pooling=pooling, embedding=(N_TOKENS, 2))
    for ours, new in zip(public_params(est), network.init(rng, np.float64),
                         strict=True):
        ours[...] = new + 0.3 * rng.normal(size=new.shape)  # no zero bias
    old = [p.copy() for p in public_params(est)]
    net = TorchEmbeddingNet(torch, network, old)
    out = net(Xp, lengths, pooling)

    predicted = est.predict(X)
    if pooling == "none":
        assert_close(np.concatenate(predicted), out.detach().numpy()[valid][:, 0],
                     1e-8, "predict")
        targets = torch.tensor(Y)
        mask = torch.tensor(valid)
        loss = 0.5 * ((out - targets) ** 2).sum(dim=-1)[mask].sum() / mask.sum()
    else:
        assert_close(predicted, out.detach().numpy()[:, 0], 1e-8, "predict")
        loss = 0.5 * ((out[:, 0] - torch.tensor(y)) ** 2).mean()
    torch_grads = net.grads(loss)

    est.partial_fit(X, y)
    for index, (new, before, grad) in enumerate(
        zip(public_params(est), old, torch_grads, strict=True)
    ):
        assert_close(new - before, -0.1 * grad, 1e-6, network.public_name(index))
    assert_array_equal(est.embedding_[0], old[0][0])  # padding's row never moves


# ------------------------------------------------------------------ the input
def test_padded_array_fits_as_the_list():
    X = ragged_ids(2)
    y = np.arange(len(X)) % 2
    from_list = sgd(LSTMClassifier, max_iter=3, dropout=0.2).fit(X, y)
    from_array = sgd(LSTMClassifier, max_iter=3, dropout=0.2).fit(padded(X), y)
    for a, b in zip(public_params(from_list), public_params(from_array), strict=True):
        assert_array_equal(a, b)
    assert from_array.n_features_in_ == 1
    # Any number of columns at predict time, float ids that are integers too.
    wide = np.hstack([padded(X), np.zeros((len(X), 3))])
    assert_array_equal(from_array.predict_proba(wide), from_list.predict_proba(X))


@pytest.mark.parametrize("X, error, message", [
    ([np.array([1, -2, 3])], ValueError, "negative id -2 at sample 0, step 1"),
    (np.array([[1.0, 2.5]]), ValueError, "2.5 at sample 0, step 1"),
    (np.array([[1.0, np.nan]]), ValueError, "nan at sample 0, step 1"),
    ([np.array([1, 2]), np.array([True, False])], TypeError, "booleans"),
    (np.array([[1, 2, 0], [3, 0, 4]]), ValueError, "id 0 at sample 1, step 1"),
    ([np.array([1, 2]), np.array([3, 0])], ValueError, "id 0 at sample 1, step 1"),
    (np.array([[1, 2], [0, 0]]), ValueError, "Sequence 1 of X has no token"),
    ([np.array([1, 2]), np.array([], dtype=int)], ValueError, "Sequence 1 of X"),
    (np.ones((2, 3, 1), dtype=int), ValueError, "one token id per time step"),
])
def test_bad_ids_are_named(X, error, message):
    est = LSTMClassifier(2, embedding_dim=2, max_iter=1)
    with pytest.raises(error, match=message):
        est.fit(X, [0, 1][: len(X)] if len(X) > 1 else [0])


def test_ids_outside_the_table_are_named():
    X = ragged_ids(3)
    y = np.arange(len(X)) % 2
    est = sgd(LSTMClassifier, max_iter=1).fit(X, y)
    X_new = [np.array([1, 2]), np.array([3, 1, 57])]
    message = "id 57 at sample 1, step 2 is outside the embedding's 9 rows"
    with pytest.raises(ValueError, match=message):
        est.predict(X_new)
    with pytest.raises(ValueError, match=message):
        est.score(X_new, [0, 1])
    with pytest.raises(ValueError, match=message):
        est.partial_fit(X_new, [0, 1])


def test_embedding_dim_is_part_of_the_architecture():
    X = ragged_ids(4)
    y = np.arange(len(X)) % 2
    est = sgd(LSTMClassifier, max_iter=1, warm_start=True).fit(X, y)
    table = est.embedding_
    est.fit(X, y)
    assert est.embedding_ is table  # warm start continues the live table
    est.set_params(embedding_dim=3)
    with pytest.raises(ValueError, match="embedding_dim is 3 but the fitted"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="embedding_dim is 3 but the fitted"):
        est.partial_fit(X, y)
    # A fresh fit without embedding forgets the table.
    est.set_params(embedding_dim=None, warm_start=False)
    est.fit(np.random.default_rng(0).normal(size=(len(X), 3, 2)), y)
    assert not hasattr(est, "embedding_")
    assert est.n_features_in_ == 2


def test_n_jobs_2_does_not_depend_on_helper_processes():
    """Token ids travel to helper processes like float sequences: a fit and its
    predictions with n_jobs=2 are the same bit for bit whether helpers computed
    shares or not (under threadpool_limits(1), this process computes them all).
    Other n_jobs values add the shares' gradients in another order."""
    # Large enough for the helpers to take shares of the fit and the predictions.
    X = ragged_ids(5, lengths=np.arange(600) % 12 + 1)
    y = np.arange(len(X)) % 3
    params = dict(hidden_layer_sizes=32, embedding_dim=16, bidirectional=True,
                  pooling="mean", batch_size=200, max_iter=2, dropout=0.1,
                  random_state=0, n_jobs=2)
    with pytest.warns(Warning):
        shared = LSTMClassifier(**params).fit(X, y)
    shared_proba = shared.predict_proba(X)
    with threadpool_limits(limits=1), pytest.warns(Warning):
        alone = LSTMClassifier(**params).fit(X, y)
        alone_proba = alone.predict_proba(X)
    for a, b in zip(public_params(alone), public_params(shared), strict=True):
        assert_array_equal(a, b)
    assert_array_equal(alone_proba, shared_proba)


def test_text_pipeline_in_a_grid_search():
    documents = [f"good {w} fine" for w in "abcdefgh"] + [
        f"bad {w} awful worse" for w in "abcdefgh"
    ]
    y = [1] * 8 + [0] * 8
    pipe = make_pipeline(
        TextSequenceVectorizer(),
        LSTMClassifier(4, embedding_dim=8, max_iter=5, random_state=0),
    )
    search = GridSearchCV(pipe, {"lstmclassifier__pooling": ["last", "mean"]}, cv=2)
    with pytest.warns(Warning):  # max_iter is far too few to converge
        search.fit(documents, y)
    assert search.predict(["good x fine", "bad y awful"]).shape == (2,)


@pytest.mark.parametrize("form", ["list", "array"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "none"])
def test_every_combination_fits_predicts_and_scores(pooling, bidirectional, form):
    X = ragged_ids(6)
    y = (
        [np.arange(len(seq)) % 2 for seq in X]
        if pooling == "none"
        else np.arange(len(X)) % 2
    )
    X_in = X if form == "list" else padded(X)
    if form == "array" and pooling == "none":
        y = padded([labels + 1 for labels in y]) - 1  # -1 at padding, ignored
        y[y < 0] = 0
    est = LSTMClassifier(3, embedding_dim=2, bidirectional=bidirectional,
                         pooling=pooling, max_iter=2, early_stopping=True,
                         validation_fraction=0.34, dropout=0.1,
                         recurrent_dropout=0.1, random_state=0)
    with pytest.warns(Warning):
        est.fit(X_in, y)
    predicted = est.predict(X_in)
    assert 0.0 <= est.score(X_in, y) <= 1.0
    if pooling == "none" and form == "list":
        assert [len(p) for p in predicted] == LENGTHS
    elif pooling == "none":
        assert predicted.shape == padded(X).shape
    else:
        assert predicted.shape == (len(X),)
    est.partial_fit(X_in, y)


# ------------------------------------------------------------ the table's size
def test_huge_ids_are_an_error_before_the_table_is_allocated():
    """Ids are the table's row numbers: ids such as 10**12 (hashes, raw codes)
    would ask for terabytes. The error names the id and the table's size."""
    X = [np.array([3, 10**12, 7]), np.array([2, 3])]
    est = LSTMClassifier(2, embedding_dim=4, max_iter=1)
    message = (r"largest id of X, 1000000000000 at sample 0, step 1, would make "
               r"an embedding table of 1000000000001 rows .* only 4 distinct ids")
    with pytest.raises(ValueError, match=message):
        est.fit(X, [0, 1])
    with pytest.raises(ValueError, match=message):
        est.partial_fit(X, [0, 1], classes=[0, 1])
    assert not hasattr(est, "embedding_")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_large_tables_are_accepted_when_the_ids_fill_them():
    """Up to 2**20 rows whatever the data (a vocabulary of a million tokens,
    fitted on a few documents); beyond, at most 10 rows per distinct id."""
    est = LSTMClassifier(1, embedding_dim=1, max_iter=1, batch_size=2**17)
    est.fit([np.array([5, 2**20 - 1]), np.array([2])], [0, 1])
    assert est.embedding_.shape == (2**20, 1)
    n_distinct = 2**20 // 10 + 2
    X = np.arange(1, n_distinct + 1).reshape(-1, 1) * 10 - 9  # 1, 11, 21, ...
    X = np.hstack([X, X[::-1]])
    est.fit(X, np.arange(len(X)) % 2)
    assert est.embedding_.shape == (n_distinct * 10 - 8, 1)  # 2**20 + 6 rows
    with pytest.raises(ValueError, match="only 104859 distinct ids"):
        est.fit(X * 2, np.arange(len(X)) % 2)


# ------------------------------------------------------------- float32 ids
def test_float32_ids_train_in_float32():
    """Ids given as float32 (a float32 array, or a list of float32 arrays, as
    TextSequenceVectorizer(dtype=np.float32) gives) train in float32, as float32
    numbers do; predictions then follow the float64 fit to float32 precision."""
    rng = np.random.RandomState(0)
    ids = rng.randint(1, 30, size=(80, 12))
    y = (ids[:, :3] > 15).sum(axis=1) % 2
    params = dict(embedding_dim=4, max_iter=5, random_state=0, pooling="mean")
    fitted64 = LSTMClassifier(8, **params).fit(ids, y)
    for X32 in [ids.astype(np.float32), [row.astype(np.float32) for row in ids]]:
        fitted32 = LSTMClassifier(8, **params).fit(X32, y)
        assert fitted32.embedding_.dtype == np.float32
        assert all(a.dtype == np.float32 for a in fitted32.lstm_coefs_[0].values())
        proba = fitted32.predict_proba(ids)  # integer ids at predict: the model's dtype
        assert proba.dtype == np.float32
        np.testing.assert_allclose(proba, fitted64.predict_proba(ids), atol=1e-4)


def test_float32_ids_beyond_exact_integers():
    X = np.array([[1, 2**24 + 2]], dtype=np.float32)
    with pytest.raises(ValueError, match="as float32, which holds integers exactly"):
        LSTMClassifier(4, embedding_dim=2).fit(X, [0])
