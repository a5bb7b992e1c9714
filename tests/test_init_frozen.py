"""The ``init`` (starting weights) and ``frozen`` (parts left unchanged)
parameters: copies never shared with the user, clones and grid searches that
start from ``init``, frozen arrays bit for bit unchanged by every way of
training, clear errors; and a gold test of one SGD step with frozen parts
against PyTorch's ``requires_grad=False``."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from sklearn_lstm import LSTMClassifier, LSTMRegressor

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

N, T, F = 24, 5, 2


def data(seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(N, T, F))
    return X, X[:, :, 0].sum(axis=1)


def weights_of(est):
    init = {"lstm_coefs_": est.lstm_coefs_, "coefs_": est.coefs_,
            "intercepts_": est.intercepts_}
    if hasattr(est, "embedding_"):
        init["embedding_"] = est.embedding_
    return init


def flat(est, public=None):
    public = weights_of(est) if public is None else public
    return est._network.from_public(public["lstm_coefs_"], public["coefs_"],
                                    public["intercepts_"], public.get("embedding_"))


def copied(public):
    return {k: [{n: a.copy() for n, a in v.items()} if isinstance(v, dict)
                else v.copy() for v in vs] if isinstance(vs, list) else vs.copy()
            for k, vs in public.items()}


def pretrained(**params):
    X, y = data(1)
    params = {"hidden_layer_sizes": (4, 3), "max_iter": 3, "random_state": 1,
              **params}
    return LSTMRegressor(**params).fit(X, y)


# ------------------------------------------------------------------------ init
def test_fit_starts_from_init_copies_and_leaves_it_alone():
    X, y = data()
    source = pretrained()
    init = copied(weights_of(source))
    before = copied(init)
    # A learning rate too small to move anything: the fit ends where it started.
    reg = LSTMRegressor((4, 3), init=init, solver="sgd", learning_rate_init=1e-14,
                        max_iter=2, random_state=0).fit(X, y)
    for a, b in zip(flat(reg), flat(reg, init)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        assert not np.shares_memory(a, b)
    reg.set_params(learning_rate_init=0.05).fit(X, y)  # trains, in its own arrays
    assert not np.allclose(reg.coefs_[0], init["coefs_"][0])
    assert all(np.array_equal(a, b) for a, b in zip(flat(reg, init),
                                                    flat(reg, before)))
    # Without init, the fit starts elsewhere.
    other = LSTMRegressor((4, 3), solver="sgd", learning_rate_init=1e-14,
                          max_iter=2, random_state=0).fit(X, y)
    assert not np.allclose(other.coefs_[0], init["coefs_"][0])


def test_init_keeps_random_state_for_shuffling_and_casts_to_float32():
    X, y = data()
    init = weights_of(pretrained())
    fits = [LSTMRegressor((4, 3), init=init, batch_size=8, max_iter=2,
                          random_state=seed)
            .fit(X, y).coefs_[0] for seed in (0, 0, 1)]
    np.testing.assert_array_equal(fits[0], fits[1])
    assert not np.array_equal(fits[0], fits[2])  # other shuffling
    reg = LSTMRegressor((4, 3), init=init, max_iter=1).fit(X.astype(np.float32), y)
    assert reg.coefs_[0].dtype == np.float32
    assert init["coefs_"][0].dtype == np.float64


def test_clone_and_grid_search_fine_tune_from_init_with_frozen_parts():
    X, y = data()
    y_class = (y > 0).astype(int)
    source = LSTMClassifier((4,), max_iter=3, random_state=1).fit(X, y_class)
    init = weights_of(source)
    est = LSTMClassifier((4,), init=init, frozen="lstm", max_iter=3, random_state=0)
    copy = clone(est)
    assert copy.init["coefs_"][0] is not init["coefs_"][0]
    np.testing.assert_array_equal(copy.init["coefs_"][0], init["coefs_"][0])
    search = GridSearchCV(est, {"learning_rate_init": [1e-3, 1e-2]}, cv=2).fit(
        X, y_class
    )
    best = search.best_estimator_
    for name, array in source.lstm_coefs_[0].items():
        assert np.array_equal(best.lstm_coefs_[0][name], array)
    assert not np.array_equal(best.coefs_[0], source.coefs_[0])


def test_partial_init_embedding_table_sets_the_vocabulary():
    rng = np.random.RandomState(0)
    ids = rng.randint(1, 6, size=(N, T))
    y = (ids[:, 0] > 3).astype(int)
    table = rng.normal(size=(10, 3))
    clf = LSTMClassifier(4, embedding_dim=3, init={"embedding_": table},
                         frozen="embedding", max_iter=2, random_state=0)
    clf.fit(ids, y)
    np.testing.assert_array_equal(clf.embedding_, table)
    assert not np.shares_memory(clf.embedding_, table)
    clf.predict(np.full((2, 3), 9))  # ids up to 9: the table's rows
    with pytest.raises(ValueError, match=r"X holds id 10, but init\['embedding_'\]"):
        clone(clf).fit(np.full((N, 2), 10), y)


@pytest.mark.parametrize(
    "init, error, message",
    [
        ({"weights": []}, ValueError, "unknown key.*'weights'"),
        ({"coefs_": np.zeros((4, 1))}, TypeError, r"init\['coefs_'\] must be a list"),
        ({"coefs_": [np.zeros((5, 1))]}, ValueError,
         r'init: coefs_\[0\] has shape \(5, 1\); this model needs \(3, 1\)'),
        ({"embedding_": np.zeros((3, 2))}, ValueError, "embedding_dim is None"),
        ({"lstm_coefs_": [{"kernel_reverse": np.zeros((2, 16))}, {}]}, ValueError,
         r"\['kernel_reverse'\].*bidirectional=False"),
        ({"lstm_coefs_": [{}]}, ValueError, "init: lstm_coefs_ has 1 layers"),
        ({"intercepts_": [np.array([np.nan])]}, ValueError, "NaN or infinity"),
        ({"intercepts_": [np.array(["a"])]}, TypeError, "must hold numbers"),
    ],
)
def test_init_errors(init, error, message):
    with pytest.raises(error, match=message):
        LSTMRegressor((4, 3), init=init, max_iter=1).fit(*data())


def test_init_of_other_shapes_names_the_array():
    init = weights_of(pretrained())
    with pytest.raises(ValueError, match=r'lstm_coefs_\[0\]\["kernel"\].*\(2, 16\)'):
        LSTMRegressor((5, 3), init=init).fit(*data())
    X, y = data()
    with pytest.raises(ValueError, match=r"kernel.*has shape \(2, 16\)"):
        LSTMRegressor((4, 3), init=init).fit(np.concatenate([X, X], axis=2), y)


# ---------------------------------------------------------------------- frozen
@pytest.mark.parametrize("solver", ["adam", "sgd", "rmsprop"])
def test_frozen_parts_stay_bitwise_through_every_kind_of_training(solver):
    X, y = data()
    reg = LSTMRegressor((4, 3), frozen=["lstm_1", "output"], solver=solver,
                        alpha=0.1, max_iter=3, random_state=0).fit(X, y)
    parts = reg._network.parts()
    before = [p.copy() for p in reg._params()]
    reg.set_params(warm_start=True).fit(X, y)
    reg.partial_fit(X, y)
    reg = pickle.loads(pickle.dumps(reg))
    reg.partial_fit(X, y)
    after = reg._params()
    for i in parts["lstm_1"] + parts["output"]:
        assert np.array_equal(after[i], before[i])
    for i in parts["lstm_0"]:
        assert not np.array_equal(after[i], before[i])
    # Thawing continues with a new optimizer over every part.
    reg.set_params(frozen=None).partial_fit(X, y)
    assert not np.array_equal(reg.coefs_[0], before[parts["output"][0]])


def test_frozen_from_a_fresh_fit_keeps_the_starting_weights():
    X, y = data()
    init = weights_of(pretrained())
    reg = LSTMRegressor((4, 3), init=init, frozen="lstm", early_stopping=True,
                        max_iter=4, random_state=0).fit(X, y)
    for layer, start in zip(reg.lstm_coefs_, init["lstm_coefs_"]):
        for name, array in start.items():
            assert np.array_equal(layer[name], array)
    assert not np.array_equal(reg.coefs_[0], init["coefs_"][0])


@pytest.mark.parametrize(
    "frozen, message",
    [
        ("lstm_2", "'lstm_2'.*parts are \\['lstm', 'lstm_0', 'lstm_1', 'output'\\]"),
        ("embedding", "'embedding'.*only with embedding_dim"),
        (["lstm", 3], "frozen names 3"),
        (["lstm", "output"], "covers every part"),
    ],
)
def test_frozen_errors_before_anything_changes(frozen, message):
    reg = LSTMRegressor((4, 3), frozen=frozen, max_iter=1)
    with pytest.raises(ValueError, match=message):
        reg.fit(*data())
    assert not hasattr(reg, "coefs_")


def test_frozen_sgd_step_equals_torch_with_requires_grad_false():
    """One SGD step (momentum 0, L2 penalty, no clipping) from the same
    weights: the frozen tensors keep their values and the others take torch's
    step, to 1e-10 in float64."""
    torch = pytest.importorskip("torch")
    from sklearn_lstm.interop import to_torch

    rng = np.random.RandomState(0)
    ids = rng.randint(1, 7, size=(N, T))
    lengths = rng.randint(1, T + 1, size=N)
    ids[np.arange(T) >= lengths[:, None]] = 0
    y = rng.normal(size=(N, 2))
    alpha, lr = 0.3, 0.5
    reg = LSTMRegressor((3,), embedding_dim=2, bidirectional=True, pooling="mean",
                        solver="sgd", momentum=0.0, alpha=alpha,
                        learning_rate_init=lr, max_grad_norm=None, shuffle=False,
                        batch_size=N, max_iter=1, random_state=0)
    reg.fit(ids, y)  # any weights to start from
    module = to_torch(reg)  # the starting weights, in torch (checked elsewhere)
    reg.set_params(frozen=["embedding", "output"], warm_start=True)
    reg.partial_fit(ids, y)

    module.embedding.weight.requires_grad_(False)
    module.linear.requires_grad_(False)
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=lr)
    out = module(torch.as_tensor(ids))
    penalised = [module.lstm.weight_ih_l0, module.lstm.weight_hh_l0,
                 module.lstm.weight_ih_l0_reverse, module.lstm.weight_hh_l0_reverse,
                 module.linear.weight]
    loss = 0.5 * ((out - torch.from_numpy(y)) ** 2).sum(dim=1).mean()
    loss = loss + alpha / (2 * N) * sum((w**2).sum() for w in penalised)
    loss.backward()
    optimizer.step()

    got = reg.lstm_coefs_[0]
    with torch.no_grad():
        np.testing.assert_array_equal(reg.embedding_, module.embedding.weight.numpy())
        np.testing.assert_array_equal(reg.coefs_[0], module.linear.weight.numpy().T)
        for suffix in ["", "_reverse"]:
            w = {n: getattr(module.lstm, f"{n}_l0{suffix}").numpy()
                 for n in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]}
            np.testing.assert_allclose(got["kernel" + suffix], w["weight_ih"].T,
                                       rtol=0, atol=1e-10)
            np.testing.assert_allclose(got["recurrent_kernel" + suffix],
                                       w["weight_hh"].T, rtol=0, atol=1e-10)
            # to_torch put our bias in bias_ih (bias_hh zero): each of torch's
            # two biases takes the step that our one bias takes.
            np.testing.assert_allclose(got["bias" + suffix], w["bias_ih"],
                                       rtol=0, atol=1e-10)
