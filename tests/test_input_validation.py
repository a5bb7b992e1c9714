"""Bad input gets a clear error; good input is never modified."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_lstm import LSTMClassifier, LSTMRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ESTIMATORS = [LSTMRegressor, LSTMClassifier]


def tiny(cls, **params):
    params = {"hidden_layer_sizes": 4, "max_iter": 2, "random_state": 0, **params}
    return cls(**params)


def data(n=20, n_timesteps=4, n_features=2, seed=0, ndim=3):
    """X and integer labels (fine as regression targets too)."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_timesteps, n_features))
    y = (X[:, 0, 0] > 0).astype(int)
    y[:2] = [0, 1]  # both classes, whatever the seed
    if ndim == 2:
        X = X[:, :, 0]
    return X, y


def fitted(cls, ndim=3, **params):
    X, y = data(ndim=ndim)
    return tiny(cls, **params).fit(X, y)


# ---------------------------------------------------------- non-finite data
@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("bad, message", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_non_finite_x(cls, ndim, bad, message):
    X, y = data(ndim=ndim)
    X[3, 1] = bad
    with pytest.raises(ValueError, match=message):
        tiny(cls).fit(X, y)
    est = fitted(cls, ndim=ndim)
    with pytest.raises(ValueError, match=message):
        est.predict(X)
    with pytest.raises(ValueError, match=message):
        est.partial_fit(X, y)


@pytest.mark.parametrize("bad, message", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_non_finite_y_regressor(bad, message):
    X, y = data()
    y = y.astype(float)
    y[5] = bad
    with pytest.raises(ValueError, match=message):
        tiny(LSTMRegressor).fit(X, y)


def test_nan_y_classifier():
    X, y = data()
    y = y.astype(float)
    y[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny(LSTMClassifier).fit(X, y)


# ------------------------------------------------------------------- shapes
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_1d_x(cls):
    X, y = data()
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        tiny(cls).fit(X[:, 0, 0], y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_4d_x(cls):
    X, y = data()
    with pytest.raises(ValueError, match=r"2D .*, 3D .*shape \(20, 4, 2, 1\)"):
        tiny(cls).fit(X[..., np.newaxis], y)
    est = fitted(cls)
    with pytest.raises(ValueError, match="2D .*, 3D"):
        est.predict(X[..., np.newaxis])


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize(
    "shape, message",
    [
        ((0, 4, 2), "0 sample"),
        ((0, 4), "0 sample"),
        ((20, 0, 2), "0 time step"),
        ((20, 0), "0 feature"),
        ((20, 4, 0), "0 feature"),
    ],
)
def test_empty_dimensions(cls, shape, message):
    X = np.zeros(shape)
    y = np.arange(shape[0]) % 2
    with pytest.raises(ValueError, match=message):
        tiny(cls).fit(X, y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_empty_dimensions_at_predict(cls):
    est = fitted(cls)
    with pytest.raises(ValueError, match="0 sample"):
        est.predict(np.zeros((0, 4, 2)))
    with pytest.raises(ValueError, match="0 time step"):
        est.predict(np.zeros((3, 0, 2)))


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("empty", [[], (), np.array([], dtype=object)], ids=repr)
@pytest.mark.parametrize("embedding", [False, True])
def test_no_sequences_at_all(cls, empty, embedding):
    """An empty list is a list of no sequences, not a 1D array to reshape."""
    params = {"embedding_dim": 2} if embedding else {}
    message = "X is an empty list; at least one sequence is required"
    with pytest.raises(ValueError, match=message):
        tiny(cls, **params).fit(empty, [])
    X, y = data()
    if embedding:
        X = (np.abs(X[:, :, 0]) * 3).astype(int) + 1
    est = tiny(cls, **params).fit(X, y)
    with pytest.raises(ValueError, match=message):
        est.predict(empty)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_y_length_mismatch(cls):
    X, y = data()
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        tiny(cls).fit(X, y[:-1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fitted(cls).partial_fit(X[:-3], y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_y_is_none(cls):
    X, _ = data()
    with pytest.raises(ValueError, match="requires y to be passed"):
        tiny(cls).fit(X, None)


def test_regressor_y_with_too_many_dimensions():
    X, y = data()
    with pytest.raises(ValueError, match="dim 3|1D or 2D"):
        tiny(LSTMRegressor).fit(X, np.zeros((20, 2, 2)))


# --------------------------------------------------------- kinds of data
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_string_data_in_x(cls):
    _, y = data(n=4)
    X = np.array([["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"]])
    with pytest.raises(ValueError, match="could not convert string to float"):
        tiny(cls).fit(X, y)
    with pytest.raises(ValueError, match="could not convert string to float"):
        tiny(cls).fit(X[:, :, None].tolist(), y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_complex_data(cls):
    X, y = data()
    with pytest.raises(ValueError, match="Complex data not supported"):
        tiny(cls).fit(X + 1j, y)
    with pytest.raises(ValueError, match="Complex data not supported"):
        fitted(cls).predict(X + 1j)


def test_complex_target():
    X, y = data()
    with pytest.raises(ValueError, match="Complex data not supported"):
        tiny(LSTMRegressor).fit(X, y + 1j)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csr_array, sp.coo_matrix])
def test_sparse_input(cls, container):
    X, y = data(ndim=2)
    with pytest.raises(TypeError, match="Sparse data was passed"):
        tiny(cls).fit(container(X), y)
    with pytest.raises(TypeError, match="Sparse data was passed"):
        fitted(cls, ndim=2).predict(container(X))
    X, y = data()
    sequences = [container(seq) for seq in X]  # a list of sparse sequences
    with pytest.raises(TypeError, match="Sample 0 of X: Sparse data was passed"):
        tiny(cls).fit(sequences, y)
    with pytest.raises(TypeError, match="Sample 0 of X: Sparse data was passed"):
        fitted(cls).predict(sequences)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize(
    "X, match",
    [
        (
            [[[1.0, 2.0], [3.0]], [[1.0, 2.0], [3.0, 4.0]]],
            "Sample 0 .*different numbers",
        ),
        ([np.zeros((3, 2)), np.zeros((2, 3))], "features"),
        ([np.zeros((3, 2)), np.zeros((0, 2))], "Sample 1 .*empty"),
        ([np.zeros(3), np.array([1.0, np.nan, 2.0])], "NaN in sample 1 at time step 1"),
    ],
    ids=["steps-of-different-widths", "sequences-of-different-widths", "empty", "nan"],
)
def test_bad_ragged_sequences_get_a_clear_message(cls, X, match):
    with pytest.raises(ValueError, match=match):
        tiny(cls).fit(X, [0, 1])


def test_classifier_with_one_class():
    X, _ = data()
    with pytest.raises(ValueError, match="only one class"):
        tiny(LSTMClassifier).fit(X, np.full(20, "a"))


def test_classifier_with_continuous_targets():
    X, _ = data()
    with pytest.raises(ValueError, match="Unknown label type"):
        tiny(LSTMClassifier).fit(X, np.linspace(0, 1, 20))


# ----------------------------------------------------------- fitted state
@pytest.mark.parametrize(
    "cls, method",
    [
        (LSTMRegressor, "predict"),
        (LSTMRegressor, "score"),
        (LSTMClassifier, "predict"),
        (LSTMClassifier, "predict_proba"),
        (LSTMClassifier, "predict_log_proba"),
        (LSTMClassifier, "score"),
    ],
)
def test_not_fitted(cls, method):
    X, y = data()
    args = (X, y) if method == "score" else (X,)
    with pytest.raises(NotFittedError):
        getattr(tiny(cls), method)(*args)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_other_number_of_features_3d(cls):
    est = fitted(cls)
    X, y = data(n_features=3)
    with pytest.raises(
        ValueError, match=f"X has 3 features per time step, but {cls.__name__} is "
        "expecting 2 features"
    ):
        est.predict(X)
    with pytest.raises(ValueError, match="expecting 2 features"):
        est.partial_fit(X, y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_other_number_of_columns_2d(cls):
    est = fitted(cls, ndim=2)
    assert est.n_features_in_ == 4
    X, y = data(n_timesteps=3, ndim=2)
    with pytest.raises(
        ValueError, match=f"X has 3 features, but {cls.__name__} is expecting 4 "
        "features as input"
    ):
        est.predict(X)
    with pytest.raises(ValueError, match="expecting 4 features"):
        est.partial_fit(X, y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_predict_in_the_other_form(cls):
    X3, _ = data()
    est3 = fitted(cls)
    with pytest.raises(ValueError, match="X is 2D but .* fitted on 3D input"):
        est3.predict(X3[:, :, 0])
    est2 = fitted(cls, ndim=2)
    with pytest.raises(
        ValueError,
        match=r"X is 3D \(or a list of sequences\) but .* fitted on 2D input",
    ):
        est2.predict(X3)
    with pytest.raises(ValueError, match="same form"):
        est2.predict(X3[:, :, :1])


def test_partial_fit_with_unseen_class():
    X, y = data()
    est = tiny(LSTMClassifier).partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="classes not in"):
        est.partial_fit(X, np.where(y == 1, 2, 0))


def test_warm_start_with_other_architecture_or_classes():
    X, y = data()
    est = tiny(LSTMRegressor, warm_start=True).fit(X, y)
    est.set_params(hidden_layer_sizes=5)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        est.fit(X, y)
    clf = tiny(LSTMClassifier, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X, np.where(y == 1, 2, 0))


def test_early_stopping_with_too_few_samples():
    X, y = data(n=4)
    with pytest.raises(ValueError, match="validation_fraction"):
        tiny(LSTMRegressor, early_stopping=True, validation_fraction=0.1).fit(X, y)


# ------------------------------------------------------------ parameters
@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize(
    "params, name",
    [
        ({"hidden_layer_sizes": 0}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": 2.5}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": "abc"}, "hidden_layer_sizes"),
        ({"solver": "lbfgs"}, "solver"),
        ({"alpha": -1.0}, "alpha"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": "all"}, "batch_size"),
        ({"learning_rate": "optimal"}, "learning_rate"),
        ({"learning_rate_init": 0.0}, "learning_rate_init"),
        ({"power_t": -0.5}, "power_t"),
        ({"max_iter": 0}, "max_iter"),
        ({"shuffle": "yes"}, "shuffle"),
        ({"tol": -1.0}, "tol"),
        ({"momentum": 1.5}, "momentum"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"beta_1": 1.0}, "beta_1"),
        ({"beta_2": -0.1}, "beta_2"),
        ({"rho": 1.0}, "rho"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"n_iter_no_change": 0}, "n_iter_no_change"),
        ({"warm_start": 2}, "warm_start"),
        ({"early_stopping": None}, "early_stopping"),
    ],
)
def test_invalid_parameters(cls, params, name):
    X, y = data()
    message = f"'{name}' parameter of {cls.__name__}"
    with pytest.raises(InvalidParameterError, match=message):
        tiny(cls, **params).fit(X, y)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("sizes", [(4, -1), (4, 0), (), (4, 2.5), [3, "a"]])
def test_invalid_hidden_layer_sizes_sequences(cls, sizes):
    X, y = data()
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        tiny(cls, hidden_layer_sizes=sizes).fit(X, y)


def test_invalid_parameter_error_is_a_value_error():
    assert issubclass(InvalidParameterError, ValueError)
    X, y = data()
    with pytest.raises(ValueError, match="solver"):
        tiny(LSTMRegressor, solver="lbfgs").fit(X, y)
    with pytest.raises(InvalidParameterError, match="solver"):
        tiny(LSTMClassifier, solver="lbfgs").partial_fit(X, y, classes=[0, 1])


# ------------------------------------------------------- pandas, lists
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_dataframe_feature_names(cls):
    X, y = data(ndim=2)
    df = pd.DataFrame(X, columns=["t0", "t1", "t2", "t3"])
    est = tiny(cls).fit(df, y)
    assert_array_equal(est.feature_names_in_, ["t0", "t1", "t2", "t3"])
    assert est.n_features_in_ == 4

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_df = est.predict(df)  # same columns: no warning

    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        from_array = est.predict(X)
    assert_array_equal(from_array, from_df)

    renamed = df.rename(columns={"t0": "first"})
    with pytest.raises(ValueError, match="feature names should match"):
        est.predict(renamed)

    # Refitting on 3D input forgets the column names.
    est.fit(X[:, :, None], y)
    assert not hasattr(est, "feature_names_in_")


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_feature_names_warning_when_fitted_without_names(cls):
    X, y = data(ndim=2)
    est = tiny(cls).fit(X, y)
    assert not hasattr(est, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but"):
        est.predict(pd.DataFrame(X, columns=["a", "b", "c", "d"]))


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("ndim", [2, 3])
def test_nested_lists(cls, ndim):
    X, y = data(ndim=ndim)
    from_lists = tiny(cls).fit(X.tolist(), y.tolist())
    from_arrays = tiny(cls).fit(X, y)
    assert from_lists.n_features_in_ == from_arrays.n_features_in_
    assert_array_equal(from_lists.predict(X.tolist()), from_arrays.predict(X))
    if cls is LSTMClassifier:
        assert_array_equal(
            from_lists.predict_proba(X.tolist()), from_arrays.predict_proba(X)
        )


# ------------------------------------------ the caller's arrays stay intact
CASES = [
    (LSTMRegressor, {}),
    (LSTMRegressor, {"early_stopping": True, "validation_fraction": 0.25}),
    (LSTMClassifier, {}),
    (LSTMClassifier, {"early_stopping": True, "validation_fraction": 0.25}),
]


def call_every_method(est, X, y):
    """fit, partial_fit and every prediction method on (X, y)."""
    if isinstance(est, LSTMClassifier):
        est.fit(X, y)
        est.partial_fit(X, y)
        outputs = [est.predict(X), est.predict_proba(X), est.predict_log_proba(X)]
        tiny(LSTMClassifier).partial_fit(X, y, classes=np.unique(y))
    else:
        est.fit(X, y)
        est.partial_fit(X, y)
        outputs = [est.predict(X)]
        tiny(LSTMRegressor).partial_fit(X, y)
    est.score(X, y)
    return outputs


@pytest.mark.parametrize("cls, params", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ndim", [2, 3])
def test_inputs_are_not_modified(cls, params, dtype, ndim):
    X, y = data(n=24, ndim=ndim)
    X = X.astype(dtype)
    y = y.astype(dtype) if cls is LSTMRegressor else y
    X_copy, y_copy = X.copy(), y.copy()
    outputs = call_every_method(tiny(cls, **params), X, y)
    assert_array_equal(X, X_copy)
    assert_array_equal(y, y_copy)
    # What we got back is not a view on the caller's data.
    for out in outputs:
        assert not np.shares_memory(out, X)


@pytest.mark.parametrize("cls, params", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ndim", [2, 3])
def test_read_only_inputs(cls, params, dtype, ndim):
    X, y = data(n=24, ndim=ndim)
    X = X.astype(dtype)
    y = y.astype(dtype) if cls is LSTMRegressor else y
    X_copy, y_copy = X.copy(), y.copy()
    X.setflags(write=False)
    y.setflags(write=False)
    writable = call_every_method(tiny(cls, **params), X_copy.copy(), y_copy.copy())
    read_only = call_every_method(tiny(cls, **params), X, y)
    for a, b in zip(read_only, writable):
        assert_array_equal(a, b)
    assert_array_equal(X, X_copy)


def test_multioutput_and_multilabel_targets_are_not_modified():
    X, _ = data(n=24)
    Y = np.column_stack([X[:, 0, 0], X[:, -1, 1]])
    Y_copy = Y.copy()
    Y.setflags(write=False)
    tiny(LSTMRegressor).fit(X, Y).partial_fit(X, Y)
    assert_array_equal(Y, Y_copy)

    labels = (np.column_stack([X[:, 0, 0], X[:, -1, 1], X[:, 1, 0]]) > 0).astype(int)
    labels[:2] = [[0, 0, 0], [1, 1, 1]]
    labels_copy = labels.copy()
    labels.setflags(write=False)
    clf = tiny(LSTMClassifier).fit(X, labels)
    clf.partial_fit(X, labels)
    clf.score(X, labels)
    assert_array_equal(labels, labels_copy)


def test_dataframe_input_is_not_modified():
    X, y = data(ndim=2)
    df = pd.DataFrame(X, columns=["t0", "t1", "t2", "t3"])
    df_copy = df.copy()
    est = tiny(LSTMRegressor).fit(df, pd.Series(y.astype(float)))
    est.partial_fit(df, y.astype(float))
    est.predict(df)
    pd.testing.assert_frame_equal(df, df_copy)
