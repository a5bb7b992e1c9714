"""SequenceScaler and make_windows."""

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_lstm import preprocessing
from sklearn_lstm._sequences import pad_sequences
from sklearn_lstm.preprocessing import SequenceScaler, make_windows

nan = np.nan


def ragged(seed=0, n=30, n_features=3, max_len=8, dtype=np.float64):
    """Sequences of different lengths, with features on very different scales."""
    rng = np.random.RandomState(seed)
    loc = np.array([5.0, -100.0, 0.0])[:n_features]
    scale = np.array([2.0, 50.0, 0.01])[:n_features]
    return [
        (loc + scale * rng.normal(size=(rng.randint(1, max_len + 1), n_features)))
        .astype(dtype)
        for _ in range(n)
    ]


def nan_padded(seqs):
    t_max = max(len(s) for s in seqs)
    out = np.full((len(seqs), t_max, seqs[0].shape[1]), nan, dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def valid_steps(X):
    """All the real time steps, stacked, computed without the package."""
    if isinstance(X, list):
        return np.concatenate([np.asarray(s).reshape(len(s), -1) for s in X])
    X = np.asarray(X)
    flat = X.reshape(-1, X.shape[2]) if X.ndim == 3 else X.reshape(-1, 1)
    return flat[~np.isnan(flat).all(axis=1)]


# ----------------------------------------------------- scikit-learn's checks
# All of them pass, with no expected failure. With allow_nan=True some checks
# (check_estimators_pickle) put NaN at random places of a 2D X: missing values,
# which the scaler ignores in fit and keeps in transform, as StandardScaler does.
@parametrize_with_checks([SequenceScaler()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_all():
    assert preprocessing.__all__ == [
        "SequenceScaler", "TextSequenceVectorizer", "make_windows"
    ]


# ------------------------------------------------------------ SequenceScaler
@pytest.mark.parametrize("form", ["ragged", "3d"])
def test_standardizes_over_valid_steps(form):
    seqs = ragged()
    X = seqs if form == "ragged" else nan_padded(seqs)
    scaler = SequenceScaler().fit(X)
    steps = np.concatenate(seqs)
    assert scaler.n_features_in_ == 3
    assert scaler.n_samples_seen_ == len(steps)
    assert_allclose(scaler.mean_, steps.mean(axis=0))
    assert_allclose(scaler.var_, steps.var(axis=0))
    assert_allclose(scaler.scale_, steps.std(axis=0))
    out = valid_steps(scaler.transform(X))
    assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    assert_allclose(out.std(axis=0), 1.0)
    # The same as StandardScaler on the stacked steps.
    assert_allclose(out, StandardScaler().fit_transform(steps))


def test_padding_stays_nan():
    X = nan_padded(ragged())
    Xt = SequenceScaler().fit_transform(X)
    assert Xt.shape == X.shape
    assert_array_equal(np.isnan(Xt), np.isnan(X))


def test_ragged_in_ragged_out():
    X = ragged()
    Xt = SequenceScaler().fit_transform(X)
    assert isinstance(Xt, list)
    assert [x.shape for x in Xt] == [x.shape for x in X]
    assert not np.isnan(np.concatenate(Xt)).any()
    assert_allclose(
        nan_padded(Xt), SequenceScaler().fit_transform(nan_padded(X)), atol=1e-12
    )


def test_univariate_ragged_stays_1d():
    X = [np.array([1.0, 2.0, 3.0]), np.array([5.0])]
    scaler = SequenceScaler().fit(X)
    assert scaler.n_features_in_ == 1
    assert_allclose(scaler.mean_, [2.75])
    Xt = scaler.transform(X)
    assert [x.shape for x in Xt] == [(3,), (1,)]


def test_3d_and_ragged_are_interchangeable():
    seqs = ragged()
    scaler = SequenceScaler().fit(seqs)
    assert_allclose(
        scaler.transform(nan_padded(seqs)), nan_padded(scaler.transform(seqs))
    )
    # Other lengths are fine at transform time.
    longer = np.random.RandomState(1).normal(size=(2, 20, 3))
    assert scaler.transform(longer).shape == (2, 20, 3)


@pytest.mark.parametrize("form", ["ragged", "3d", "2d"])
@pytest.mark.parametrize("with_mean", [True, False])
@pytest.mark.parametrize("with_std", [True, False])
def test_inverse_transform_round_trip(form, with_mean, with_std):
    seqs = ragged(n_features=1 if form == "2d" else 3)
    X = {"ragged": seqs, "3d": nan_padded(seqs), "2d": nan_padded(seqs)[:, :, 0]}[
        form
    ]
    scaler = SequenceScaler(with_mean=with_mean, with_std=with_std).fit(X)
    back = scaler.inverse_transform(scaler.transform(X))
    if form == "ragged":
        for a, b in zip(back, X):
            assert_allclose(a, b)
    else:
        assert_allclose(back, X)  # NaN where X has NaN


def test_with_mean_with_std():
    X = ragged()
    steps = np.concatenate(X)
    only_scaled = valid_steps(SequenceScaler(with_mean=False).fit_transform(X))
    assert_allclose(only_scaled, steps / steps.std(axis=0))
    only_centred = SequenceScaler(with_std=False).fit(X)
    assert only_centred.scale_ is None
    assert_allclose(valid_steps(only_centred.transform(X)), steps - steps.mean(axis=0))
    identity = SequenceScaler(with_mean=False, with_std=False).fit(X)
    assert_allclose(valid_steps(identity.transform(X)), steps)


def test_constant_feature_has_scale_one():
    X = [np.column_stack([np.full(5, 0.1), np.arange(5.0)]), np.array([[0.1, 7.0]])]
    scaler = SequenceScaler().fit(X)
    assert scaler.scale_[0] == 1.0
    assert_allclose(scaler.var_[0], 0.0, atol=1e-30)
    assert_allclose(np.concatenate(scaler.transform(X))[:, 0], 0.0, atol=1e-15)


@pytest.mark.parametrize("magnitude", [1e160, 1e300])
def test_values_whose_variance_overflows_are_still_scaled(magnitude):
    """Standardizing does not depend on the unit: values whose squares leave
    float64 (beyond about 1e154) come out as the same values in a small unit do,
    without a warning, and the constant feature is still found."""
    seqs = ragged(seed=3)
    big = [np.column_stack([s[:, :2] * magnitude, np.full(len(s), magnitude)])
           for s in seqs]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaler = SequenceScaler().fit(big)
        out = np.concatenate(scaler.transform(big))
    assert np.isinf(scaler.var_[:2]).all()  # the variance itself is beyond float64
    steps = np.concatenate(seqs)[:, :2]
    assert_allclose(out[:, :2], StandardScaler().fit_transform(steps), atol=1e-12)
    assert scaler.scale_[2] == 1.0  # centred only, to the mean's rounding
    assert np.abs(out[:, 2]).max() <= 1e-12 * magnitude


@pytest.mark.parametrize("form", ["ragged", "3d", "2d"])
def test_float32_stays_float32(form):
    seqs = ragged(n_features=1, dtype=np.float32)
    X = {"ragged": seqs, "3d": nan_padded(seqs), "2d": nan_padded(seqs)[:, :, 0]}[
        form
    ]
    scaler = SequenceScaler().fit(X)
    assert scaler.mean_.dtype == np.float64  # accumulated in float64
    for out in (scaler.transform(X), scaler.inverse_transform(X)):
        pieces = out if form == "ragged" else [out]
        assert all(p.dtype == np.float32 for p in pieces)


@pytest.mark.parametrize("form", ["ragged", "3d", "2d"])
def test_input_never_modified(form):
    seqs = ragged(n_features=1)
    X = {"ragged": seqs, "3d": nan_padded(seqs), "2d": nan_padded(seqs)[:, :, 0]}[
        form
    ]
    before = [np.copy(x) for x in X]
    scaler = SequenceScaler().fit(X)
    out = scaler.transform(X)
    scaler.inverse_transform(X)
    for x, b in zip(X, before):
        assert_array_equal(x, b)
    if form != "ragged":
        assert not np.shares_memory(out, X)


# ------------------------------------------------- NaN as a missing value
def with_missing(seqs, seed=0, rate=0.2):
    """Copies of the sequences with NaN at random places, inside the sequences.

    Also one whole step NaN in the middle of sequence 0, a NaN first step in
    sequence 1, and sequence 2 NaN in every value of its first feature.
    """
    rng = np.random.RandomState(seed)
    out = []
    for s in seqs:
        s = s.copy()
        s[rng.uniform(size=s.shape) < rate] = nan
        out.append(s)
    out[0][len(out[0]) // 2] = nan
    out[1][0] = nan
    out[2][:, 0] = nan
    return out


def long_seqs(n_features=3, dtype=np.float64):
    # At least 3 steps each, so that the NaN above fall inside the sequences.
    return [
        s
        for s in ragged(seed=3, n=40, n_features=n_features, max_len=9, dtype=dtype)
        if len(s) >= 3
    ]


def in_form(seqs, form):
    if form == "ragged":
        return seqs
    padded = nan_padded(seqs)
    return padded if form == "3d" else padded[:, :, 0]


def nan_mask(X):
    if isinstance(X, list):
        return [np.isnan(x) for x in X]
    return np.isnan(X)


def assert_same_nan(a, b):
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            assert x.shape == y.shape
            assert_array_equal(np.isnan(x), np.isnan(y))
    else:
        assert a.shape == b.shape
        assert_array_equal(np.isnan(a), np.isnan(b))


@pytest.mark.parametrize("form", ["ragged", "3d", "2d"])
def test_statistics_ignore_nan(form):
    seqs = with_missing(long_seqs(n_features=1 if form == "2d" else 3))
    X = in_form(seqs, form)
    scaler = SequenceScaler().fit(X)
    # Computed independently: per feature over the non-NaN values of the real
    # steps (the padding is only in X, not in ``seqs``).
    steps = np.concatenate(seqs)
    assert np.isnan(steps).any(axis=1).any()
    assert_allclose(scaler.mean_, np.nanmean(steps, axis=0))
    assert_allclose(scaler.var_, np.nanvar(steps, axis=0))
    assert_allclose(scaler.scale_, np.nanstd(steps, axis=0))
    # The same as StandardScaler on the stacked steps, NaN included.
    reference = StandardScaler().fit(steps)
    assert_allclose(scaler.mean_, reference.mean_)
    assert_allclose(scaler.var_, reference.var_)
    out = scaler.transform(X)
    out_steps = np.concatenate(
        [np.reshape(x, (len(x), -1)) for x in out]
        if form == "ragged"
        else [np.reshape(o[: len(s)], (len(s), -1)) for o, s in zip(out, seqs)]
    )
    assert_allclose(out_steps, reference.transform(steps))  # NaN where NaN
    assert_allclose(np.nanmean(out_steps, axis=0), 0.0, atol=1e-12)
    assert_allclose(np.nanstd(out_steps, axis=0), 1.0)


@pytest.mark.parametrize("form", ["ragged", "ragged_1d", "3d", "2d"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_positions_preserved(form, dtype):
    univariate = form in ("ragged_1d", "2d")
    seqs = with_missing(long_seqs(n_features=1 if univariate else 3, dtype=dtype))
    if form == "ragged_1d":
        # Univariate sequences, some 1D: they stay 1D, with their NaN.
        seqs = [s[:, 0] if i % 2 else s for i, s in enumerate(seqs)]
        assert np.isnan(seqs[1][0])
        form = "ragged"
    X = in_form(seqs, form)
    before = [np.copy(x) for x in X]
    scaler = SequenceScaler().fit(X)
    Xt = scaler.transform(X)
    assert_same_nan(Xt, X)
    back = scaler.inverse_transform(Xt)
    assert_same_nan(back, X)
    pieces = back if form == "ragged" else [back]
    assert all(p.dtype == dtype for p in pieces)
    for x, b in zip(X, before):
        assert_array_equal(x, b)  # the input is never modified


@pytest.mark.parametrize("form", ["ragged", "3d", "2d"])
@pytest.mark.parametrize("with_mean", [True, False])
@pytest.mark.parametrize("with_std", [True, False])
def test_inverse_round_trip_with_nan(form, with_mean, with_std):
    X = in_form(with_missing(long_seqs(n_features=1 if form == "2d" else 3)), form)
    scaler = SequenceScaler(with_mean=with_mean, with_std=with_std).fit(X)
    back = scaler.inverse_transform(scaler.transform(X))
    if form == "ragged":
        for a, b in zip(back, X):
            assert_allclose(a, b)  # equal_nan: NaN where X has NaN
    else:
        assert_allclose(back, X)


def test_nan_inside_a_padded_sequence_is_kept():
    X = np.array(
        [
            [[1.0, 10.0], [nan, nan], [3.0, 30.0]],  # a whole step NaN inside
            [[nan, 20.0], [5.0, nan], [nan, nan]],  # partial steps, then padding
        ]
    )
    scaler = SequenceScaler().fit(X)
    assert_allclose(scaler.mean_, [3.0, 20.0])
    assert_array_equal(scaler.n_samples_seen_, [3, 3])
    Xt = scaler.transform(X)
    assert_array_equal(np.isnan(Xt), np.isnan(X))
    assert_allclose(Xt[0, 0], [-2.0, -10.0] / np.sqrt([8.0 / 3, 200.0 / 3]))


def test_n_samples_seen_per_feature():
    seqs = with_missing(long_seqs())
    steps = np.concatenate(seqs)
    counts = (~np.isnan(steps)).sum(axis=0)
    assert len(set(counts)) > 1
    for X in (seqs, nan_padded(seqs)):
        seen = SequenceScaler().fit(X).n_samples_seen_
        assert isinstance(seen, np.ndarray)
        assert seen.dtype == np.int64
        assert_array_equal(seen, counts)
    # With NaN as padding only, every feature has the same count: an int, the
    # number of real time steps, as in StandardScaler.
    seqs = long_seqs()
    n_steps = sum(len(s) for s in seqs)
    for X in (seqs, nan_padded(seqs)):
        seen = SequenceScaler().fit(X).n_samples_seen_
        assert type(seen) is int and seen == n_steps
    X = np.array([[1.0, nan, 2.0], [nan, 3.0, nan]])  # 2D: one feature
    seen = SequenceScaler().fit(X).n_samples_seen_
    assert type(seen) is int and seen == 3


def test_feature_without_any_value_is_nan_like_standard_scaler():
    seqs = long_seqs()
    for s in seqs:
        s[:, 1] = nan
    X = nan_padded(seqs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from 0 / 0
        scaler = SequenceScaler().fit(X)
        Xt = scaler.transform(X)
        out = scaler.transform(np.ones((2, 4, 3)))
    n_steps = sum(len(s) for s in seqs)
    assert_array_equal(scaler.n_samples_seen_, [n_steps, 0, n_steps])
    for attr in ("mean_", "var_", "scale_"):
        assert np.isnan(getattr(scaler, attr)[1])
        assert not np.isnan(getattr(scaler, attr)[[0, 2]]).any()
    steps = np.concatenate(seqs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # StandardScaler's 0 / 0
        reference = StandardScaler().fit(steps)
    assert_allclose(scaler.mean_, reference.mean_)
    assert_allclose(scaler.var_, reference.var_)
    assert_allclose(scaler.scale_, reference.scale_)
    assert np.isnan(Xt[:, :, 1]).all()
    assert np.isnan(out[:, :, 1]).all() and not np.isnan(out[:, :, [0, 2]]).any()


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinity_is_an_error(value):
    scaler = SequenceScaler().fit(ragged())
    bad = ragged()
    bad[3][2, 1] = value
    msg = "Input X contains infinity in sample 3 at time step 2"
    for method in (SequenceScaler().fit, scaler.transform, scaler.inverse_transform):
        with pytest.raises(ValueError, match=msg):
            method(bad)
    bad_1d = [np.array([1.0, nan, value])]
    with pytest.raises(ValueError, match="infinity in sample 0 at time step 2"):
        SequenceScaler().fit(bad_1d)
    for X in (nan_padded(ragged()), nan_padded(ragged(n_features=1))[:, :, 0]):
        X[1, 0] = value
        fitted = SequenceScaler().fit(np.where(np.isinf(X), 0.0, X))
        for method in (SequenceScaler().fit, fitted.transform):
            with pytest.raises(ValueError, match="Input X contains infinity"):
                method(X)
        with pytest.raises(ValueError, match="Input X contains infinity"):
            fitted.inverse_transform(X)


def test_structural_errors_remain():
    with pytest.raises(ValueError, match="X is an empty list; at least one sequence"):
        SequenceScaler().fit([])
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        SequenceScaler().fit(np.ones(3))
    with pytest.raises(ValueError, match="Sample 1 of X is empty"):
        SequenceScaler().fit([np.ones(3), np.ones(0)])
    with pytest.raises(ValueError, match="Sample 1 of X has 2 feature"):
        SequenceScaler().fit([np.ones((3, 3)), np.ones((2, 2))])
    with pytest.raises(ValueError, match="0 sample"):
        SequenceScaler().fit(np.ones((0, 3, 2)))
    with pytest.raises(ValueError, match="minimum of 1 of each"):
        SequenceScaler().fit(np.ones((2, 3, 0)))
    with pytest.raises(ValueError, match="2D .* or 3D"):
        SequenceScaler().fit(np.ones((2, 3, 2, 1)))


def test_different_feature_counts_at_transform():
    scaler = SequenceScaler().fit(ragged(n_features=3))
    msg = "X has 2 features per time step, but SequenceScaler is expecting 3"
    with pytest.raises(ValueError, match=msg):
        scaler.transform(ragged(n_features=2))
    with pytest.raises(ValueError, match=msg):
        scaler.inverse_transform(np.zeros((2, 4, 2)))


def test_not_fitted():
    with pytest.raises(NotFittedError):
        SequenceScaler().transform(ragged())


# ---------------------------------------------------------------- 2D input
def test_2d_is_univariate_with_one_mean():
    X = np.array([[1.0, 2.0, 3.0], [4.0, nan, nan], [5.0, 6.0, nan]])
    scaler = SequenceScaler().fit(X)
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert scaler.n_features_in_ == 3  # columns, as always for 2D X in sklearn
    assert scaler.n_samples_seen_ == 6
    assert_allclose(scaler.mean_, [values.mean()])
    assert_allclose(scaler.scale_, [values.std()])
    Xt = scaler.transform(X)
    assert_array_equal(np.isnan(Xt), np.isnan(X))
    assert_allclose(Xt[~np.isnan(X)], (values - values.mean()) / values.std())


def test_2d_width_must_match():
    scaler = SequenceScaler().fit(np.ones((4, 5)))
    msg = "X has 3 features, but SequenceScaler is expecting 5 features as input"
    with pytest.raises(ValueError, match=msg):
        scaler.transform(np.ones((4, 3)))
    with pytest.raises(ValueError, match=msg):
        scaler.inverse_transform(np.ones((4, 3)))


def test_form_must_match_fit():
    scaler_2d = SequenceScaler().fit(np.ones((4, 5)))
    with pytest.raises(
        ValueError, match=r"X is 3D \(or a list of sequences\) but this SequenceScaler"
    ):
        scaler_2d.transform(np.ones((4, 5, 1)))
    with pytest.raises(ValueError, match="fitted on 2D input with 5 time steps"):
        scaler_2d.transform([np.ones(5), np.ones(3)])
    scaler_3d = SequenceScaler().fit([np.ones(5), np.ones(3)])
    with pytest.raises(ValueError, match="X is 2D but .* 3D input with 1"):
        scaler_3d.transform(np.ones((4, 5)))


def test_2d_dataframe_feature_names():
    df = pd.DataFrame(
        [[1.0, 2.0, 3.0], [4.0, nan, nan]], columns=["t0", "t1", "t2"]
    )
    scaler = SequenceScaler().fit(df)
    assert_array_equal(scaler.feature_names_in_, ["t0", "t1", "t2"])
    assert_array_equal(scaler.get_feature_names_out(), ["t0", "t1", "t2"])
    with pytest.raises(ValueError, match="Feature names unseen at fit time"):
        scaler.transform(df.rename(columns={"t2": "other"}))
    Xt = scaler.transform(df)
    with warnings.catch_warnings():
        # An array from transform may come back without any feature-name warning.
        warnings.simplefilter("error")
        assert_allclose(scaler.inverse_transform(Xt), df.to_numpy())
    pandas_out = clone(scaler).set_output(transform="pandas").fit_transform(df)
    assert list(pandas_out.columns) == ["t0", "t1", "t2"]
    # A refit on sequences forgets the names.
    scaler.fit(ragged())
    assert not hasattr(scaler, "feature_names_in_")


def test_parameter_validation():
    with pytest.raises(InvalidParameterError, match="with_std"):
        SequenceScaler(with_std="yes").fit(ragged())


# ------------------------------------------------------ meta-estimators
def flatten_padded(X):
    """Padded 3D sequences as rows of a 2D array, padding as 0."""
    return np.nan_to_num(np.asarray(X), nan=0.0).reshape(len(X), -1)


def test_pipeline_before_another_transformer():
    X = nan_padded(ragged())
    pipe = make_pipeline(SequenceScaler(), FunctionTransformer(flatten_padded))
    out = pipe.fit_transform(X)
    assert out.shape == (X.shape[0], X.shape[1] * X.shape[2])
    assert_allclose(out, flatten_padded(SequenceScaler().fit_transform(X)))


def last_steps(X):
    """The last real step of each sequence, whatever the form: a fixed width."""
    values, lengths = pad_sequences(X)
    return values[np.arange(len(values)), lengths - 1]


def test_grid_search_over_with_std():
    rng = np.random.RandomState(0)
    seqs = ragged(n=40)
    X = nan_padded(seqs)
    y = np.array([s[-1, 1] for s in seqs]) + 0.1 * rng.normal(size=len(X))
    pipe = Pipeline(
        [
            ("scale", SequenceScaler()),
            ("last", FunctionTransformer(last_steps)),
            ("ridge", Ridge(alpha=1.0)),
        ]
    )
    search = GridSearchCV(pipe, {"scale__with_std": [True, False]}, cv=3).fit(X, y)
    assert set(search.cv_results_["param_scale__with_std"]) == {True, False}
    assert search.best_estimator_.named_steps["scale"].n_features_in_ == 3
    # Ragged input goes through cross-validation too (lists are indexable).
    ragged_best = search.fit(seqs, y).best_score_
    assert ragged_best == pytest.approx(search.fit(X, y).best_score_)
    assert ragged_best > 0.9


# ------------------------------------------------------------- make_windows
def test_windows_1d_series():
    X, y = make_windows(np.arange(7.0), window=3)
    assert X.shape == (4, 3, 1)
    assert_array_equal(X[:, :, 0], [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]])
    assert y.shape == (4,)
    assert_array_equal(y, [3, 4, 5, 6])


def test_windows_1d_series_horizon():
    X, y = make_windows(np.arange(7.0), window=3, horizon=2)
    assert X.shape == (3, 3, 1)
    assert y.shape == (3, 2)
    assert_array_equal(y, [[3, 4], [4, 5], [5, 6]])


def series_2d(n_steps=8):
    # Column f at step t holds 10 * t + f: every value says where it came from.
    return 10.0 * np.arange(n_steps)[:, None] + np.arange(3)


def test_windows_all_columns():
    series = series_2d()
    X, y = make_windows(series, window=2)
    assert X.shape == (6, 2, 3)
    assert_array_equal(X[1], [[10, 11, 12], [20, 21, 22]])
    assert y.shape == (6, 3)
    assert_array_equal(y[1], [30, 31, 32])


def test_windows_all_columns_horizon_step_major():
    X, y = make_windows(series_2d(), window=2, horizon=3)
    assert X.shape == (4, 2, 3)
    assert y.shape == (4, 9)
    # y[:, h * F + f] is column f at step h after the window.
    assert_array_equal(y[0], [20, 21, 22, 30, 31, 32, 40, 41, 42])
    assert_array_equal(y[3], [50, 51, 52, 60, 61, 62, 70, 71, 72])


def test_windows_int_target():
    X, y = make_windows(series_2d(), window=2, target=1)
    assert X.shape == (6, 2, 3)  # X keeps every column
    assert_array_equal(y, [21, 31, 41, 51, 61, 71])
    _, y = make_windows(series_2d(), window=2, horizon=2, target=2)
    assert y.shape == (5, 2)
    assert_array_equal(y[0], [22, 32])


def test_windows_list_target():
    _, y = make_windows(series_2d(), window=2, target=[2, 0])
    assert y.shape == (6, 2)
    assert_array_equal(y[0], [22, 20])
    _, y = make_windows(series_2d(), window=2, horizon=2, target=[2, 0])
    assert y.shape == (5, 4)
    assert_array_equal(y[0], [22, 20, 32, 30])
    _, y = make_windows(series_2d(), window=2, target=[1])  # a list keeps the axis
    assert y.shape == (6, 1)
    _, y = make_windows(np.arange(5.0), window=2, target=np.array([0]))
    assert y.shape == (3, 1)


def test_windows_2d_single_column_keeps_axis():
    _, y = make_windows(np.arange(5.0)[:, None], window=2)
    assert y.shape == (3, 1)
    _, y = make_windows(np.arange(5.0)[:, None], window=2, target=0)
    assert y.shape == (3,)


def test_windows_step():
    X, y = make_windows(np.arange(10.0), window=3, step=3)
    # (10 - 3 - 1) // 3 + 1 = 3 windows, starting at 0, 3, 6.
    assert_array_equal(X[:, :, 0], [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    assert_array_equal(y, [3, 6, 9])
    X, y = make_windows(np.arange(10.0), window=2, horizon=2, step=4)
    assert_array_equal(X[:, :, 0], [[0, 1], [4, 5]])
    assert_array_equal(y, [[2, 3], [6, 7]])


@pytest.mark.parametrize(
    "n_steps, window, horizon, step",
    [(10, 3, 1, 1), (10, 3, 2, 3), (4, 3, 1, 1), (50, 7, 4, 5), (9, 1, 8, 2)],
)
def test_windows_count(n_steps, window, horizon, step):
    X, y = make_windows(np.arange(float(n_steps)), window, horizon, step=step)
    n_windows = (n_steps - window - horizon) // step + 1
    assert len(X) == len(y) == n_windows
    last = (n_windows - 1) * step
    assert X[-1, -1, 0] == last + window - 1
    assert y.reshape(n_windows, -1)[-1, -1] == last + window + horizon - 1


def test_windows_dtype_and_copies():
    series = np.arange(8.0, dtype=np.float32)
    X, y = make_windows(series, window=3)
    assert X.dtype == y.dtype == np.float32
    X64, y64 = make_windows(np.arange(8), window=3)
    assert X64.dtype == y64.dtype == np.float64
    series = series_2d()
    for target in (None, 0, [1, 2]):
        X, y = make_windows(series, window=2, target=target)
        assert not np.shares_memory(X, series)
        assert not np.shares_memory(y, series)
    X[:] = -1
    y[:] = -1
    assert_array_equal(series, series_2d())


def test_windows_pandas():
    df = pd.DataFrame(series_2d(), columns=["a", "b", "c"])
    X, y = make_windows(df, window=2, target=1)
    assert_array_equal(y, [21, 31, 41, 51, 61, 71])
    X, y = make_windows(df["a"], window=2)
    assert X.shape == (6, 2, 1)


def test_windows_errors():
    with pytest.raises(ValueError, match=r"series \(length 4\) is too short .*3 \+ 2"):
        make_windows(np.arange(4.0), window=3, horizon=2)
    make_windows(np.arange(5.0), window=3, horizon=2)  # just long enough
    for bad in [0, -1, 1.5, "3"]:
        with pytest.raises(InvalidParameterError, match="window"):
            make_windows(np.arange(10.0), window=bad)
        with pytest.raises(InvalidParameterError, match="horizon"):
            make_windows(np.arange(10.0), window=2, horizon=bad)
        with pytest.raises(InvalidParameterError, match="step"):
            make_windows(np.arange(10.0), window=2, step=bad)
    with pytest.raises(ValueError, match=r"target column 3 is out of range .* 3 col"):
        make_windows(series_2d(), window=2, target=3)
    with pytest.raises(ValueError, match=r"target column -1 is out of range"):
        make_windows(series_2d(), window=2, target=[0, -1])
    with pytest.raises(ValueError, match=r"target column 1 is out of range .* 1 col"):
        make_windows(np.arange(9.0), window=2, target=1)
    for bad in [[], True, [0.5], [[0, 1]], ["a"]]:
        with pytest.raises(ValueError, match="target"):
            make_windows(series_2d(), window=2, target=bad)
    series = np.arange(10.0)
    series[4] = nan
    with pytest.raises(ValueError, match="Input series contains NaN"):
        make_windows(series, window=2)
    series[4] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        make_windows(series, window=2)
    with pytest.raises(ValueError, match="dim 3"):
        make_windows(np.zeros((10, 2, 2)), window=2)
    with pytest.raises(ValueError, match="0 sample"):
        make_windows(np.zeros(0), window=2)
