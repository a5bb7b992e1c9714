"""pad_sequences, unpad and is_ragged: every accepted form of X, and every error."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_array_equal

from sklearn_lstm._sequences import is_ragged, pad_sequences, unpad

nan = np.nan


def ragged(seed=0, n=5, n_features=2, max_len=6, dtype=np.float64):
    rng = np.random.RandomState(seed)
    return [
        rng.normal(size=(rng.randint(1, max_len + 1), n_features)).astype(dtype)
        for _ in range(n)
    ]


def padded_by_hand(seqs):
    """The expected padded array, built one sequence at a time."""
    t_max = max(len(s) for s in seqs)
    n_features = np.asarray(seqs[0]).reshape(len(seqs[0]), -1).shape[1]
    out = np.full((len(seqs), t_max, n_features), nan)
    for i, s in enumerate(seqs):
        s = np.asarray(s, dtype=float).reshape(len(s), -1)
        out[i, : len(s)] = s
    return out


# ------------------------------------------------------------------ is_ragged
@pytest.mark.parametrize(
    "X, expected",
    [
        ([[1.0, 2.0, 3.0], [4.0]], True),  # lists of different lengths
        ([np.zeros(3), np.zeros(3)], True),  # a list of arrays, even of one shape
        ((np.zeros((3, 2)), np.zeros((1, 2))), True),  # a tuple
        ([pd.Series([1.0, 2.0])], True),
        ([[[1.0, 2.0]], [[1.0, 2.0], [3.0, 4.0]]], True),
        ([[1.0, 2.0], [3.0]], True),
        ([[1.0, 2.0], [3.0, 4.0]], False),  # nested lists of one shape: an array
        ([[[1.0], [2.0]], [[3.0], [4.0]]], False),
        ([1.0, 2.0, 3.0], False),  # scalars: a 1D array, rejected later
        (np.zeros((2, 3)), False),
        (np.zeros((2, 3, 4)), False),
        (pd.DataFrame(np.zeros((2, 3))), False),
        ([], True),  # no sequences: refused as an empty list of them
    ],
)
def test_is_ragged(X, expected):
    assert is_ragged(X) is expected


def test_is_ragged_object_array():
    X = np.empty(2, dtype=object)
    X[0], X[1] = np.zeros(3), np.zeros(2)
    assert is_ragged(X)
    same = np.empty(2, dtype=object)
    same[0], same[1] = [1.0, 2.0], [3.0, 4.0]
    assert is_ragged(same)  # np.asarray would keep it an object array
    assert not is_ragged(np.array([1.0, 2.0], dtype=object))


# ----------------------------------------------------------- accepted forms
def test_ragged_2d_sequences():
    X = ragged()
    values, lengths = pad_sequences(X)
    assert values.shape == (5, max(len(s) for s in X), 2)
    assert lengths.dtype == np.int64
    assert_array_equal(lengths, [len(s) for s in X])
    assert_array_equal(values, padded_by_hand(X))


def test_ragged_1d_sequences_are_univariate():
    X = [[1, 2, 3], [4], [5, 6]]
    values, lengths = pad_sequences(X)
    assert values.dtype == np.float64
    assert_array_equal(lengths, [3, 1, 2])
    assert_array_equal(
        values[:, :, 0], [[1.0, 2.0, 3.0], [4.0, nan, nan], [5.0, 6.0, nan]]
    )


def test_ragged_mixes_1d_and_single_feature_2d():
    values, lengths = pad_sequences([np.array([1.0, 2.0]), np.array([[3.0]])])
    assert values.shape == (2, 2, 1)
    assert_array_equal(lengths, [2, 1])


def test_ragged_other_containers():
    seqs = ragged(n=3)
    obj = np.empty(3, dtype=object)
    obj[:] = seqs
    expected = padded_by_hand(seqs)
    for X in (tuple(seqs), obj, [pd.DataFrame(s) for s in seqs]):
        assert_array_equal(pad_sequences(X)[0], expected)
    uni = [pd.Series([1.0, 2.0]), pd.Series([3.0])]
    assert_array_equal(pad_sequences(uni)[1], [2, 1])


def test_list_of_equal_length_arrays():
    X = [np.arange(3.0), np.arange(3.0) + 3]
    values, lengths = pad_sequences(X)
    assert values.shape == (2, 3, 1)
    assert_array_equal(lengths, [3, 3])


def test_3d_array_without_padding():
    X = np.random.RandomState(0).normal(size=(4, 3, 2))
    values, lengths = pad_sequences(X)
    assert_array_equal(values, X)
    assert_array_equal(lengths, [3, 3, 3, 3])


def test_3d_array_with_padding():
    X = np.arange(24.0).reshape(4, 3, 2)
    X[1, 2:] = nan
    X[2, 1:] = nan
    values, lengths = pad_sequences(X)
    assert_array_equal(lengths, [3, 2, 1, 3])
    assert_array_equal(values, X)  # padding stays NaN


def test_2d_array_is_univariate():
    X = np.array([[1.0, 2.0, 3.0], [4.0, nan, nan], [5.0, 6.0, nan]])
    values, lengths = pad_sequences(X)
    assert values.shape == (3, 3, 1)
    assert_array_equal(values[:, :, 0], X)
    assert_array_equal(lengths, [3, 1, 2])


def test_nested_lists_and_dataframes():
    assert_array_equal(pad_sequences([[1, 2], [3, 4]])[1], [2, 2])
    df = pd.DataFrame([[1.0, nan], [2.0, 3.0]], columns=["t0", "t1"])
    values, lengths = pad_sequences(df)
    assert_array_equal(lengths, [1, 2])
    assert values.shape == (2, 2, 1)


# ------------------------------------------------------------ the NaN rules
@pytest.mark.parametrize(
    "row, message",
    [
        ([1.0, nan, 2.0], r"sample 1 at time step 1, followed by a non-NaN step"),
        ([nan, 2.0, 3.0], r"sample 1 at time step 0, followed"),
        ([nan, nan, nan], r"Sample 1 of X is all NaN"),
    ],
)
def test_2d_nan_not_padding(row, message):
    X = np.array([[1.0, 2.0, 3.0], row, [4.0, nan, nan]])
    with pytest.raises(ValueError, match=message):
        pad_sequences(X)


def test_3d_nan_in_some_features_only():
    X = np.ones((3, 4, 2))
    X[2, 3, 1] = nan  # the last step, but only one of its features
    with pytest.raises(ValueError, match=r"sample 2 at time step 3 in only some"):
        pad_sequences(X)


def test_3d_nan_step_before_a_real_step():
    X = np.ones((3, 4, 2))
    X[1, 1] = nan
    X[1, 3] = nan
    with pytest.raises(ValueError, match=r"NaN in sample 1 at time step 1"):
        pad_sequences(X)


def test_3d_all_nan_sequence():
    X = np.ones((3, 4, 2))
    X[0, 2:] = nan  # fine
    X[2] = nan
    with pytest.raises(ValueError, match=r"Sample 2 of X is all NaN"):
        pad_sequences(X)


def test_first_offending_sample_is_reported():
    X = np.ones((4, 3, 2))
    X[3, 0, 0] = nan  # partial NaN, later sample
    X[1] = nan  # empty, earlier sample
    with pytest.raises(ValueError, match=r"Sample 1 of X is all NaN"):
        pad_sequences(X)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
@pytest.mark.parametrize("ndim", [2, 3])
def test_infinity_in_array(bad, ndim):
    X = np.ones((3, 4, 2))
    X[1, 2:] = nan
    X[2, 1, 0] = bad
    if ndim == 2:
        X = X[:, :, 0]
    with pytest.raises(ValueError, match=r"infinity in sample 2 at time step 1"):
        pad_sequences(X)


@pytest.mark.parametrize("bad, kind", [(nan, "NaN"), (np.inf, "infinity")])
def test_non_finite_in_ragged_sequence(bad, kind):
    X = ragged(n=4)
    X[2] = X[2].copy()
    X[2][-1, 1] = bad  # even a trailing NaN: a list has no padding
    with pytest.raises(ValueError, match=rf"{kind} in sample 2 at time step"):
        pad_sequences(X)


def test_different_feature_counts():
    X = [np.zeros((3, 2)), np.zeros((2, 2)), np.zeros((4, 3)), np.zeros((1, 1))]
    with pytest.raises(
        ValueError, match=r"Sample 2 of X has 3 feature\(s\).*sample 0 has 2"
    ):
        pad_sequences(X)
    with pytest.raises(ValueError, match=r"Sample 1 of X has 1 .*sample 0 has 2"):
        pad_sequences([np.zeros((3, 2)), np.zeros(3)])


@pytest.mark.parametrize("empty", [[], np.zeros((0, 2))])
def test_empty_sequence(empty):
    with pytest.raises(ValueError, match=r"Sample 1 of X is empty"):
        pad_sequences([[1.0, 2.0], empty, [3.0]])


def test_empty_inputs():
    with pytest.raises(ValueError):
        pad_sequences([])
    with pytest.raises(ValueError, match="0 sample"):
        pad_sequences(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="0 feature"):
        pad_sequences(np.zeros((3, 0)))
    with pytest.raises(ValueError, match=r"0 time step\(s\)"):
        pad_sequences(np.zeros((3, 0, 2)))
    with pytest.raises(ValueError, match=r"0 feature\(s\) per step"):
        pad_sequences(np.zeros((3, 2, 0)))
    with pytest.raises(ValueError, match="Sample 0 of X has 0 features"):
        pad_sequences([np.zeros((2, 0)), np.zeros((1, 0))])


# --------------------------------------------------- wrong shapes and types
def test_wrong_dimensions():
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        pad_sequences(np.arange(3.0))
    with pytest.raises(ValueError, match="must be 2D .* or 3D"):
        pad_sequences(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match=r"Sample 1 of X must be a 1D .* or 2D"):
        pad_sequences([np.zeros(3), np.zeros((2, 2, 2))])
    with pytest.raises(ValueError, match=r"Sample 1 of X must be a 1D"):
        pad_sequences([np.zeros(3), 5.0])


def test_garbage_is_rejected():
    with pytest.raises(ValueError, match="Complex data not supported"):
        pad_sequences(np.ones((2, 3), dtype=complex))
    with pytest.raises(ValueError, match="Sample 1 of X: Complex data not supported"):
        pad_sequences([np.ones(2), np.ones(3, dtype=complex)])
    with pytest.raises(ValueError, match="Sample 0 of X: .*could not convert"):
        pad_sequences([np.array(["a", "b"]), np.ones(1)])
    with pytest.raises(ValueError):
        pad_sequences([["a", "b"], ["c", "d"]])
    obj = np.ones((2, 3), dtype=object)
    obj[0, 0] = {"a": 1}
    with pytest.raises(TypeError, match="argument must be a string.* number"):
        pad_sequences(obj)
    with pytest.raises(TypeError, match="Sample 1 of X: .*argument must be"):
        pad_sequences([np.ones(2), np.array([1.0, {"a": 1}], dtype=object)])
    with pytest.raises(
        ValueError,
        match="Sample 1 of X has time steps with different numbers of features",
    ):
        pad_sequences([np.ones(2), [[1.0, 2.0], [3.0]]])
    with pytest.raises(TypeError, match="[Ss]parse"):
        pad_sequences(sp.csr_matrix(np.ones((2, 3))))


def test_object_array_of_numbers_is_converted():
    X = np.array([[1, 2], [3, nan]], dtype=object)
    values, lengths = pad_sequences(X)
    assert values.dtype == np.float64
    assert_array_equal(lengths, [2, 1])


# ---------------------------------------------------------------- dtypes
@pytest.mark.parametrize(
    "dtype, expected",
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int64, np.float64),
        (np.int32, np.float64),
        (bool, np.float64),
        (np.float16, np.float64),
    ],
)
def test_dtype_rule(dtype, expected):
    X = np.ones((3, 4, 2), dtype=dtype)
    assert pad_sequences(X)[0].dtype == expected
    assert pad_sequences(X[:, :, 0])[0].dtype == expected
    assert pad_sequences(list(X))[0].dtype == expected


def test_ragged_float32_only_if_all_float32():
    X = ragged(dtype=np.float32)
    assert pad_sequences(X)[0].dtype == np.float32
    X[3] = X[3].astype(np.float64)
    assert pad_sequences(X)[0].dtype == np.float64
    X = ragged(dtype=np.float32)
    X[1] = X[1].tolist()  # plain Python floats are float64
    assert pad_sequences(X)[0].dtype == np.float64


def test_explicit_dtype():
    X = ragged()
    assert pad_sequences(X, dtype=np.float32)[0].dtype == np.float32
    assert pad_sequences(np.ones((2, 3)), dtype=np.float32)[0].dtype == np.float32


# ------------------------------------------------------- no side effects
@pytest.mark.parametrize("form", ["3d", "2d", "ragged"])
def test_input_never_modified_nor_aliased(form):
    X = np.arange(24.0).reshape(4, 3, 2)
    X[1, 2:] = nan
    if form == "2d":
        X = X[:, :, 0].copy()
    elif form == "ragged":
        X = ragged()
    before = [np.copy(x) for x in X]
    values, lengths = pad_sequences(X)
    values[:] = 0.0  # what the engine may do with the padding
    for x, b in zip(X, before):
        assert_array_equal(x, b)
    back = unpad(values, lengths, like=X)
    for piece in back:
        piece[...] = -1.0
    assert (values == 0.0).all()


def test_read_only_input():
    X = np.ones((3, 4, 2))
    X[0, 3] = nan
    X.setflags(write=False)
    values, _ = pad_sequences(X)
    values[:] = 0.0
    assert not X.flags.writeable


def test_float32_input_is_copied():
    X = np.ones((2, 3, 1), dtype=np.float32)
    values, _ = pad_sequences(X)
    assert values.dtype == np.float32
    assert not np.shares_memory(values, X)


# ------------------------------------------------------------------ unpad
def test_unpad_ragged_round_trip():
    X = ragged(n=7, n_features=3)
    back = unpad(*pad_sequences(X), like=X)
    assert isinstance(back, list)
    assert len(back) == len(X)
    for a, b in zip(back, X):
        assert a.shape == b.shape
        assert_array_equal(a, b)


def test_unpad_keeps_1d_sequences_1d():
    X = [np.array([1.0, 2.0]), np.array([[3.0]]), [4.0, 5.0, 6.0]]
    back = unpad(*pad_sequences(X), like=X)
    assert [b.shape for b in back] == [(2,), (1, 1), (3,)]
    assert_array_equal(back[2], [4.0, 5.0, 6.0])


@pytest.mark.parametrize("ndim", [2, 3])
def test_unpad_array_round_trip(ndim):
    X = np.arange(24.0).reshape(4, 3, 2)
    X[1, 2:] = nan
    X[3, 1:] = nan
    if ndim == 2:
        X = X[:, :, 0]
    back = unpad(*pad_sequences(X), like=X)
    assert back.shape == X.shape
    assert_array_equal(back, X)


def test_unpad_overwrites_padding_with_nan():
    values = np.zeros((2, 3, 1))
    back = unpad(values, np.array([3, 1]), like=np.zeros((2, 3)))
    assert_array_equal(back, [[0.0, 0.0, 0.0], [0.0, nan, nan]])
    assert (values == 0.0).all()


def test_unpad_errors():
    values = np.zeros((2, 3, 2))
    with pytest.raises(ValueError, match="values must be 3D"):
        unpad(values[:, :, 0], [1, 2], like=values)
    with pytest.raises(ValueError, match="lengths must be integers"):
        unpad(values, [1, 2, 3], like=values)
    with pytest.raises(ValueError, match="between 1 and 3"):
        unpad(values, np.array([0, 2]), like=values)
    with pytest.raises(ValueError, match="between 1 and 3"):
        unpad(values, np.array([4, 2]), like=values)
    with pytest.raises(ValueError, match="2D .* but values has 2 features"):
        unpad(values, np.array([1, 2]), like=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="like holds 3 sequences"):
        unpad(values, np.array([1, 2]), like=[np.zeros(1)] * 3)


# --------------------------------------------------------------- hypothesis
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def ragged_lists(draw):
    n_features = draw(st.integers(1, 3))
    lengths = draw(st.lists(st.integers(1, 6), min_size=1, max_size=8))
    one_d = n_features == 1 and draw(st.booleans())
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    elements = st.floats(
        allow_nan=False, allow_infinity=False, width=32 if dtype == np.float32 else 64
    )
    return [
        draw(arrays(dtype, (t,) if one_d else (t, n_features), elements=elements))
        for t in lengths
    ]


@settings(max_examples=60, deadline=None)
@given(ragged_lists())
def test_ragged_round_trip_property(X):
    values, lengths = pad_sequences(X)
    assert values.dtype == X[0].dtype
    assert_array_equal(lengths, [len(s) for s in X])
    # The padded array is an accepted input in its own right, with the same lengths.
    values_again, lengths_again = pad_sequences(values)
    assert_array_equal(values_again, values)
    assert_array_equal(lengths_again, lengths)
    back = unpad(values, lengths, like=X)
    assert len(back) == len(X)
    for a, b in zip(back, X):
        assert a.shape == b.shape
        assert a.dtype == b.dtype
        assert_array_equal(a, b)
    # And the array form round-trips onto itself.
    assert_array_equal(unpad(values, lengths, like=values), values)
