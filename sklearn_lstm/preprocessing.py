"""Preprocessing for sequences: scaling, cutting a series into windows, and
turning raw text into sequences of token ids."""

import re
from collections import Counter
from numbers import Integral

import numpy as np
from sklearn.base import (
    BaseEstimator,
    OneToOneFeatureMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import (
    Interval,
    RealNotInt,
    StrOptions,
    validate_params,
)
from sklearn.utils.validation import check_array, check_is_fitted

from ._sequences import FLOAT_DTYPES, is_ragged, stack_ragged
from ._validation import check_form

__all__ = ["SequenceScaler", "TextSequenceVectorizer", "make_windows"]


def _is_constant(var, mean, n_samples):
    """Whether a variance is indistinguishable from 0 for a constant feature.

    The variance of a constant feature, computed in floating point, is rarely
    exactly 0; this bound on the rounding error of the two-pass algorithm (Chan,
    Golub and LeVeque) is the one StandardScaler uses, so that both scalers
    agree on which features are constant. Works elementwise on arrays; a NaN
    variance (a feature without any value) is not constant.
    """
    eps = np.finfo(np.float64).eps
    with np.errstate(over="ignore"):  # a bound beyond float64 is rightly inf
        return var <= n_samples * eps * var + (n_samples * mean * eps) ** 2


def _read_ragged(X, estimator):
    """Validate a list of sequences for the scaler and stack their time steps.

    Structurally the same reading as for the estimators (every sequence 1D or
    2D, non-empty, with one common number of features; float32 kept only when
    every sequence is float32), but NaN is allowed anywhere: for the scaler it
    is a missing value. Infinity is an error.

    Returns the steps stacked into one new array of shape (n_steps, n_features),
    the length of every sequence and whether each one was 1D.
    """
    flat, lengths, one_d = stack_ragged(X, FLOAT_DTYPES, estimator)
    inf = np.isinf(flat).any(axis=1)
    if inf.any():
        row = int(np.argmax(inf))
        offsets = np.cumsum(lengths) - lengths
        i = int(np.searchsorted(offsets, row, side="right")) - 1
        raise ValueError(
            f"Input X contains infinity in sample {i} at time step "
            f"{row - offsets[i]}. NaN is read as a missing value, but infinity is "
            "not allowed."
        )
    return flat, lengths, one_d


def _read_array(X, estimator):
    """Validate a 2D or 3D X for the scaler: NaN allowed anywhere, not infinity.

    Returns a float array that never shares memory with X, so that the scaler
    may modify it in place.
    """
    values = check_array(
        X,
        dtype=FLOAT_DTYPES,
        allow_nd=True,
        ensure_all_finite="allow-nan",
        ensure_min_samples=1,
        ensure_min_features=1,
        copy=True,
        input_name="X",
        estimator=estimator,
    )
    if values.ndim > 3:
        raise ValueError(
            "X must be 2D (n_samples, n_timesteps) or 3D (n_samples, n_timesteps, "
            f"n_features); got an array of shape {values.shape}."
        )
    if values.ndim == 3 and (values.shape[1] < 1 or values.shape[2] < 1):
        raise ValueError(
            f"X has {values.shape[1]} time step(s) and {values.shape[2]} feature(s) "
            f"per step (shape={values.shape}); a minimum of 1 of each is required."
        )
    return values


def _nan_mean_var(steps):
    """Mean, variance and count of the non-NaN values of every column, in float64.

    A column without any value gets a NaN mean and variance, as in
    StandardScaler.
    """
    missing = np.isnan(steps)
    counts = steps.shape[0] - np.count_nonzero(missing, axis=0)
    # 0 / 0 for a column without any value is the intended NaN.
    with np.errstate(invalid="ignore", divide="ignore"):
        # Accumulate in float64 whatever the input dtype, as StandardScaler
        # does: float32 sums over many steps lose too much precision.
        mean = np.nansum(steps, axis=0, dtype=np.float64) / counts
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        sq = np.square(steps - mean)  # float64, NaN where steps is NaN
        var = np.nansum(sq, axis=0) / counts  # inf beyond float64's range
    return mean, var, counts.astype(np.int64, copy=False)


def _scale_beyond_range(steps, mean, counts):
    """The scale of columns whose variance overflows float64 (values beyond about
    1e154 from their mean): their standard deviation, or 1 for a constant one,
    both found from the deviations divided by the largest of them, which keeps
    every square in range (:func:`_is_constant` does not depend on the unit)."""
    deviations = steps - mean
    top = np.nanmax(np.abs(deviations), axis=0)
    var = np.nansum(np.square(deviations / top), axis=0) / counts
    constant = _is_constant(var, mean / top, counts)
    return np.where(constant, 1.0, top * np.sqrt(var))


class SequenceScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Standardize the features of sequences, ignoring the padding.

    Every feature is centred and scaled with the mean and standard deviation it
    has over all the real time steps of all the sequences. NaN counts as a
    missing value, as in :class:`~sklearn.preprocessing.StandardScaler`: it
    takes no part in the statistics and stays NaN in the output. The padding of
    shorter sequences, being NaN, is thus ignored and stays padding. This is
    :class:`~sklearn.preprocessing.StandardScaler` applied per feature to the
    time steps rather than to the samples.

    Parameters
    ----------
    with_mean : bool, default=True
        If True, center the data before scaling.

    with_std : bool, default=True
        If True, scale the data to unit variance.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        The mean of each feature over its non-NaN values, in float64. Of shape
        (1,) for 2D input, whose sequences are univariate. NaN for a feature
        that has no non-NaN value at all (see the Notes).

    var_ : ndarray of shape (n_features,)
        The variance of each feature over its non-NaN values, in float64; NaN
        for a feature without any value.

    scale_ : ndarray of shape (n_features,) or None
        The standard deviation of each feature, used to scale; 1.0 for a
        constant feature, which is then only centred, and NaN for a feature
        without any value. None when ``with_std=False``.

    n_samples_seen_ : int or ndarray of shape (n_features,)
        The number of non-NaN values each feature's statistics were computed
        on. As in StandardScaler, an int when every feature has the same count
        (always the case for 2D input, and for sequences whose only NaN are
        padding steps, where it is the number of real time steps), otherwise an
        int64 array of per-feature counts.

    n_features_in_ : int
        For 3D or ragged X, the number of features per time step; sequences of
        any length can then be transformed. For 2D X, the number of columns, as
        for any scikit-learn estimator: X to transform must have as many.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the columns seen during :term:`fit`. Defined only when X is a
        2D DataFrame whose column names are all strings.

    See Also
    --------
    sklearn.preprocessing.StandardScaler : The same for one row per sample.
    make_windows : Cut a series into windows of equal length.

    Notes
    -----
    X can take three forms, and every method returns its result in the form of
    its input:

    * a list of sequences, each of shape ``(n_timesteps_i, n_features)`` or
      ``(n_timesteps_i,)`` (univariate), of any lengths; the output has the
      same lengths;
    * a 3D array ``(n_samples, n_timesteps, n_features)`` in which shorter
      sequences are right-padded with time steps that are NaN in every feature;
    * a 2D array ``(n_samples, n_timesteps)`` of univariate sequences, padded the
      same way. All the values share one mean and one standard deviation.

    A model fitted on 2D input transforms 2D input; one fitted on 3D or ragged
    input transforms either of these.

    **NaN.** Like StandardScaler, and unlike the LSTM estimators, the scaler
    treats every NaN as a missing value: it is left out of the statistics of
    its feature and is NaN again in the output of ``transform`` and
    ``inverse_transform``, wherever it is. For padding (time steps NaN in every
    feature) this gives exactly the padding semantics: the padding takes no
    part in the statistics and stays padding. Any other NaN (inside a
    sequence, or in only some features of a step) is kept where it is rather
    than rejected, so that the scaler composes with scikit-learn tools that
    pass NaN through; deciding whether such data can be used is left to the
    model. The LSTM estimators of this package enforce the padding rule and
    reject any NaN that is not a trailing padding step with an error naming the
    sample and time step. Infinity is always an error.

    A feature with no non-NaN value at all in fit gets, as in StandardScaler, a
    NaN mean, variance and scale, so that ``transform`` makes all its values
    NaN; no error or warning is raised.

    Pandas or polars output (``set_output``) only fits 2D input.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lstm.preprocessing import SequenceScaler
    >>> X = [np.array([[0.0, 10.0], [2.0, 30.0]]), np.array([[4.0, 20.0]])]
    >>> scaler = SequenceScaler().fit(X)
    >>> scaler.mean_
    array([ 2., 20.])
    >>> scaler.n_samples_seen_
    3
    >>> Xt = scaler.transform(X)
    >>> [x.round(3) for x in Xt]
    [array([[-1.225, -1.225],
           [ 0.   ,  1.225]]), array([[1.225, 0.   ]])]

    Padded arrays keep their padding:

    >>> X_padded = np.array([[0.0, 2.0], [4.0, np.nan]])
    >>> SequenceScaler().fit_transform(X_padded).round(3)
    array([[-1.225,  0.   ],
           [ 1.225,    nan]])

    A NaN anywhere else is a missing value, left out and kept:

    >>> X = [np.array([[0.0, np.nan], [2.0, 30.0]]), np.array([[4.0, 10.0]])]
    >>> scaler = SequenceScaler().fit(X)
    >>> scaler.mean_
    array([ 2., 20.])
    >>> scaler.n_samples_seen_
    array([3, 2])
    >>> scaler.transform(X)[0].round(3)
    array([[-1.225,    nan],
           [ 0.   ,  1.   ]])
    """

    _parameter_constraints: dict = {
        "with_mean": ["boolean"],
        "with_std": ["boolean"],
    }

    def __init__(self, *, with_mean=True, with_std=True):
        self.with_mean = with_mean
        self.with_std = with_std

    def _validate(self, X, *, reset, check_names=True):
        """X read into a new float array, checked against the fitted form.

        Returns ``(values, form, restore)``: ``values`` is the stacked steps
        ``(n_steps, n_features)`` of a ragged X, or the 2D or 3D array; ``form``
        is "ragged", "2d" or "3d"; ``restore`` turns an array like ``values``
        back into the form of X.
        """
        if is_ragged(X):
            values, lengths, one_d = _read_ragged(X, self)
            form = "ragged"

            def restore(out):
                # Disjoint views of ``out``, which belongs to the caller.
                pieces = np.split(out, np.cumsum(lengths)[:-1])
                return [p[:, 0] if d else p for p, d in zip(pieces, one_d)]

        else:
            values = _read_array(X, self)
            form = f"{values.ndim}d"

            def restore(out):
                return out

        ndim = 2 if form == "2d" else 3
        n_features = values.shape[1] if ndim == 2 else values.shape[-1]
        check_form(self, X, ndim, n_features, reset, check_names=check_names)
        return values, form, restore

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Compute the mean and standard deviation of every feature.

        Parameters
        ----------
        X : list of array-like, or array-like of shape (n_samples, n_timesteps, \
                n_features) or (n_samples, n_timesteps)
            Sequences, as a list or NaN-padded (see the Notes of the class). NaN
            values are missing values, ignored.

        y : None
            Ignored.

        Returns
        -------
        self : object
            Fitted scaler.
        """
        values, form, _ = self._validate(X, reset=True)
        # A 2D X holds univariate sequences: one feature, every value a step.
        n_features = 1 if form == "2d" else values.shape[-1]
        steps = values.reshape(-1, n_features)  # only read: a view or a copy
        self.mean_, self.var_, counts = _nan_mean_var(steps)
        if (counts == counts[0]).all():
            self.n_samples_seen_ = int(counts[0])
        else:
            self.n_samples_seen_ = counts
        if self.with_std:
            scale = np.sqrt(self.var_)
            scale[_is_constant(self.var_, self.mean_, counts)] = 1.0
            beyond = np.isinf(self.var_) & np.isfinite(self.mean_)
            if beyond.any():
                scale[beyond] = _scale_beyond_range(
                    steps[:, beyond], self.mean_[beyond], counts[beyond]
                )
            self.scale_ = scale
        else:
            self.scale_ = None
        return self

    def transform(self, X):
        """Standardize sequences.

        Parameters
        ----------
        X : list of array-like, or array-like of shape (n_samples, n_timesteps, \
                n_features) or (n_samples, n_timesteps)
            Sequences in the form used in fit (a list and a 3D array are
            interchangeable); their lengths need not be those seen in fit.

        Returns
        -------
        X_tr : list of ndarray, or ndarray
            The standardized sequences, in the form of X: a list of arrays of the
            same shapes for a list, an array of the same shape for an array, with
            NaN exactly where X has NaN. float32 input gives float32 output.
        """
        check_is_fitted(self)
        values, _, restore = self._validate(X, reset=False)
        # ``values`` is a new array owned here, so it is safe to work in place;
        # NaN (padding or missing) stays NaN through the arithmetic.
        if self.with_mean:
            values -= self.mean_
        if self.with_std:
            values /= self.scale_
        return restore(values)

    def inverse_transform(self, X):
        """Undo the standardization.

        Parameters
        ----------
        X : list of array-like, or array-like of shape (n_samples, n_timesteps, \
                n_features) or (n_samples, n_timesteps)
            Standardized sequences, in the form used in fit.

        Returns
        -------
        X_original : list of ndarray, or ndarray
            The sequences in the original units, in the form of X, with NaN
            exactly where X has NaN.
        """
        check_is_fitted(self)
        # The output of transform is a plain array: like StandardScaler, do not
        # ask it for the feature names of a DataFrame seen in fit.
        values, _, restore = self._validate(X, reset=False, check_names=False)
        if self.with_std:
            values *= self.scale_
        if self.with_mean:
            values += self.mean_
        return restore(values)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # NaN is a missing value (the padding of shorter sequences among them):
        # ignored in fit and kept by transform, as in StandardScaler.
        tags.input_tags.allow_nan = True
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _is_index(c):
    # A bool is an Integral, but surely not meant as a column index.
    return isinstance(c, Integral) and not isinstance(c, bool)


def _check_target(target, n_columns):
    """The target columns as a list of ints, and whether y keeps a column axis."""
    if target is None:
        return list(range(n_columns)), True
    if _is_index(target):
        columns, keep_axis = [target], False
    else:
        columns = list(target) if np.ndim(target) == 1 else []
        keep_axis = True
        if not columns or not all(_is_index(c) for c in columns):
            raise ValueError(
                "target must be None, a column index or a non-empty list of column "
                f"indices; got {target!r}."
            )
    for c in columns:
        if not 0 <= c < n_columns:
            raise ValueError(
                f"target column {c} is out of range for a series with {n_columns} "
                f"column(s); use an index from 0 to {n_columns - 1}."
            )
    return [int(c) for c in columns], keep_axis


@validate_params(
    {
        "series": ["array-like"],
        "window": [Interval(Integral, 1, None, closed="left")],
        "horizon": [Interval(Integral, 1, None, closed="left")],
        "target": [None, Integral, "array-like"],
        "step": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def make_windows(series, window, horizon=1, target=None, step=1):
    """Cut a time series into windows of past values and the values that follow.

    Window ``i`` holds ``series[i * step : i * step + window]`` and its target is
    the ``horizon`` steps right after it,
    ``series[i * step + window : i * step + window + horizon]``, so that a model
    fitted on ``(X, y)`` learns to forecast ``horizon`` steps ahead.

    Parameters
    ----------
    series : array-like of shape (n_steps,) or (n_steps, n_columns)
        A univariate or multivariate time series, with finite values.

    window : int
        Number of time steps in each window. At least 1.

    horizon : int, default=1
        Number of steps after each window to forecast. At least 1.

    target : int, list of int or None, default=None
        The columns to forecast: a column index gives a 1D target per step, a
        list of column indices keeps a column axis (even for one index), and
        None forecasts every column (the one column of a 1D series counting as
        a single column).

    step : int, default=1
        Number of time steps between the starts of consecutive windows.

    Returns
    -------
    X : ndarray of shape (n_windows, window, n_columns)
        The windows; ``n_columns`` is 1 for a 1D series. Here
        ``n_windows = (n_steps - window - horizon) // step + 1``.

    y : ndarray of shape (n_windows,), (n_windows, horizon) or \
            (n_windows, horizon * n_targets)
        The values to forecast, where ``n_targets`` is the number of target
        columns:

        * ``(n_windows,)`` with one target column and ``horizon=1``; one target
          column is a 1D series with ``target=None``, or ``target`` an int;
        * ``(n_windows, horizon)`` with one target column and ``horizon > 1``;
        * ``(n_windows, horizon * n_targets)`` otherwise, i.e. for a 2D series
          with ``target=None`` (``n_targets = n_columns``) or a list ``target``
          (``n_targets = len(target)``); ``(n_windows, n_targets)`` when
          ``horizon=1``. The columns are step-major: ``y[:, h * n_targets + k]``
          is target column ``k`` at step ``h`` after the window (``h`` from 0).

        X and y are float64, or float32 if the series is float32. Both are new
        arrays: changing them never changes the series.

    Raises
    ------
    ValueError
        If the series has fewer than ``window + horizon`` steps, contains NaN or
        infinity, is not 1D or 2D, or if ``target`` names a column it lacks.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lstm.preprocessing import make_windows
    >>> X, y = make_windows(np.arange(6.0), window=3)
    >>> X.shape
    (3, 3, 1)
    >>> X[:, :, 0]
    array([[0., 1., 2.],
           [1., 2., 3.],
           [2., 3., 4.]])
    >>> y
    array([3., 4., 5.])

    Two columns, forecasting both two steps ahead, one window every 2 steps:

    >>> series = np.column_stack([np.arange(7.0), 10 * np.arange(7.0)])
    >>> X, y = make_windows(series, window=2, horizon=2, step=2)
    >>> X.shape
    (2, 2, 2)
    >>> y
    array([[ 2., 20.,  3., 30.],
           [ 4., 40.,  5., 50.]])
    """
    series = check_array(
        series,
        dtype=FLOAT_DTYPES,
        ensure_2d=False,
        ensure_all_finite=True,
        input_name="series",
    )
    one_d = series.ndim == 1
    if one_d:
        series = series[:, np.newaxis]
    n_steps, n_columns = series.shape
    columns, keep_axis = _check_target(target, n_columns)
    if one_d and target is None:
        keep_axis = False
    if n_steps < window + horizon:
        raise ValueError(
            f"The series (length {n_steps}) is too short for window + horizon = "
            f"{window} + {horizon} = {window + horizon} steps."
        )
    n_windows = (n_steps - window - horizon) // step + 1
    starts = np.arange(n_windows)[:, np.newaxis] * step
    # Fancy indexing copies, so neither X nor y aliases the user's series.
    X = series[starts + np.arange(window)]
    y = series[starts + window + np.arange(horizon)][:, :, columns]
    if keep_axis:
        # (n_windows, horizon, n_targets) -> step-major columns.
        y = y.reshape(n_windows, horizon * len(columns))
    else:
        y = y[:, :, 0]
        if horizon == 1:
            y = y[:, 0]
    return X, y


# Token ids as in Keras' TextVectorization: 0 pads, 1 stands for every token
# outside the vocabulary, and the vocabulary's tokens start at 2.
_PAD_ID = 0
_OOV_ID = 1
_OOV_TOKEN = "[UNK]"

# What CountVectorizer's char analyzer does to whitespace, so that both agree
# on the characters of a document: runs of two or more become one space.
_WHITE_SPACES = re.compile(r"\s\s+")


def _count_bound(df, n_documents):
    """A min_df or max_df as a number of documents: an int is one already."""
    return df if isinstance(df, Integral) else df * n_documents


class TextSequenceVectorizer(TransformerMixin, BaseEstimator):
    """Turn raw documents into sequences of token ids, one per token, in order.

    Each document becomes a 1D integer array holding the id of each of its
    tokens in turn, for a sequence model to read: the counterpart of
    :class:`~sklearn.feature_extraction.text.CountVectorizer` that keeps the
    order of the tokens. Ids follow Keras' ``TextVectorization``: 0 is padding
    and never a token, 1 stands for any token outside the vocabulary (printed
    ``"[UNK]"`` by :meth:`inverse_transform`), and the tokens of the vocabulary
    get the ids from 2 on, by decreasing number of occurrences in the documents
    seen in fit; tokens that occur equally often are in alphabetical order
    (Python's order of strings, by code point).

    The parameters shared with CountVectorizer have its meaning and defaults.

    Parameters
    ----------
    analyzer : {"word", "char"} or callable, default="word"
        What a token is: a match of ``token_pattern`` ("word"), a character
        ("char"; runs of two or more whitespace characters first become one
        space, as in CountVectorizer), or what a callable returns: it is given
        each document (decoded if bytes, not lowercased) and must return a list
        of str tokens, in order.

    lowercase : bool, default=True
        Whether to lowercase the documents before tokenizing them. Not applied
        with a callable ``analyzer``.

    token_pattern : str, default=r"(?u)\\b\\w\\w+\\b"
        Regular expression of a token, used only with ``analyzer="word"``. The
        default, CountVectorizer's, takes words of two or more alphanumeric
        characters, so single-character words such as "a" or "I" are dropped;
        ``r"(?u)\\b\\w+\\b"`` keeps them, as Keras' ``TextVectorization`` does.
        If the pattern has a capturing group, the group is the token.

    max_df : float in [0.0, 1.0] or int, default=1.0
        Leave out of the vocabulary the tokens found in more documents than
        this: a number of documents (int) or a proportion of them (float).

    min_df : float in [0.0, 1.0] or int, default=1
        Leave out of the vocabulary the tokens found in fewer documents than
        this: a number of documents (int) or a proportion of them (float).

    max_features : int, default=None
        Keep only this many tokens in the vocabulary, the most frequent among
        those ``min_df`` and ``max_df`` keep (ties broken alphabetically). None
        keeps them all. The ids then run from 0 to ``max_features + 1``.

    max_length : int, default=None
        The maximum number of tokens of a sequence: longer documents are
        truncated to their first ``max_length`` tokens (the end is dropped, as
        with Keras' ``output_sequence_length``). Tokens outside the vocabulary
        count, as their id 1 takes a step. None keeps every token. The
        vocabulary is learned from these first tokens only (unlike Keras): a
        token found only further in the documents seen in fit is never read by
        a model fitted on them, and is better read as unknown (see the Notes).

    dtype : integer dtype, np.float32 or np.float64, default=np.int64
        Type of the ids returned by :meth:`transform`. It must hold the largest
        id exactly. An estimator with ``embedding_dim`` computes in float32 when
        its ids come as float32, as it does for float32 numbers (about twice as
        fast as float64); integer ids train in float64.

    encoding : str, default="utf-8"
        Encoding used to decode documents given as bytes.

    decode_error : {"strict", "ignore", "replace"}, default="strict"
        What to do with bytes that are not valid in ``encoding``: "strict"
        raises an error, the other two are as in :meth:`bytes.decode`.

    Attributes
    ----------
    vocabulary_ : dict
        The id of every token of the vocabulary, from 2 to ``len(vocabulary_) +
        1``; ids 0 and 1 are padding and the out-of-vocabulary token.
        :meth:`get_vocabulary` gives the token of every id.

    See Also
    --------
    sklearn.feature_extraction.text.CountVectorizer : Token counts, without
        their order.
    SequenceScaler : Standardize sequences of numbers.

    Notes
    -----
    A document without any token (empty, or holding no match of
    ``token_pattern``) gives ``[1]``: one out-of-vocabulary step, rather than an
    empty sequence, which no sequence model can read (each needs at least one
    time step). Every document thus gives at least one step, and a Pipeline
    never breaks on an empty document; an empty document and one holding a
    single unknown token are then alike.

    ``len(get_vocabulary())`` is the number of distinct ids, the size of the
    input of an embedding or of a one-hot encoding of the ids.

    The vocabulary is chosen as CountVectorizer chooses it, from the first
    ``max_length`` tokens of each document: tokens are first kept by document
    frequency (``min_df``, ``max_df``), then the ``max_features`` most frequent
    of them by number of occurrences. So every id of the vocabulary occurs in
    what :meth:`fit_transform` returns. Unlike CountVectorizer, it is an error
    if no document holds a token at all, or if ``min_df`` and ``max_df`` leave
    none.

    The LSTM estimators of this package read these ids with ``embedding_dim``
    (a learned vector per id), e.g. ``make_pipeline(TextSequenceVectorizer(),
    LSTMClassifier(embedding_dim=32))``. In such a Pipeline the estimator's
    table has a row for each id of the vocabulary; a document predicted later
    gives 1 for the tokens outside the vocabulary, whose row the estimator
    learned only if documents seen in fit gave 1 too: with ``min_df=2``
    (tokens found in a single document left out of the vocabulary) they do,
    and the model learns what an unknown token is (on documentation
    paragraphs, 0.78 test accuracy against 0.68 with ``min_df=1``: see the
    README's "Text" section).

    Examples
    --------
    >>> from sklearn_lstm.preprocessing import TextSequenceVectorizer
    >>> docs = ["The cat sat", "the dog sat on the mat"]
    >>> vectorizer = TextSequenceVectorizer().fit(docs)
    >>> vectorizer.vocabulary_
    {'the': 2, 'sat': 3, 'cat': 4, 'dog': 5, 'mat': 6, 'on': 7}
    >>> vectorizer.get_vocabulary()
    ['', '[UNK]', 'the', 'sat', 'cat', 'dog', 'mat', 'on']
    >>> ids = vectorizer.transform(["The bird sat", ""])
    >>> ids
    [array([2, 1, 3]), array([1])]
    >>> vectorizer.inverse_transform(ids)
    [['the', '[UNK]', 'sat'], ['[UNK]']]

    Keep the first two tokens, and only the three most frequent ones:

    >>> vectorizer = TextSequenceVectorizer(max_length=2, max_features=3)
    >>> vectorizer.fit_transform(docs)
    [array([2, 3]), array([2, 4])]
    >>> vectorizer.get_vocabulary()
    ['', '[UNK]', 'the', 'cat', 'dog']
    """

    _parameter_constraints: dict = {
        "analyzer": [StrOptions({"word", "char"}), callable],
        "lowercase": ["boolean"],
        "token_pattern": [str],
        "max_df": [
            Interval(RealNotInt, 0, 1, closed="both"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "min_df": [
            Interval(RealNotInt, 0, 1, closed="both"),
            Interval(Integral, 1, None, closed="left"),
        ],
        "max_features": [Interval(Integral, 1, None, closed="left"), None],
        "max_length": [Interval(Integral, 1, None, closed="left"), None],
        "dtype": "no_validation",  # checked in fit: any integer dtype numpy knows
        "encoding": [str],
        "decode_error": [StrOptions({"strict", "ignore", "replace"})],
    }

    def __init__(
        self,
        *,
        analyzer="word",
        lowercase=True,
        token_pattern=r"(?u)\b\w\w+\b",
        max_df=1.0,
        min_df=1,
        max_features=None,
        max_length=None,
        dtype=np.int64,
        encoding="utf-8",
        decode_error="strict",
    ):
        self.analyzer = analyzer
        self.lowercase = lowercase
        self.token_pattern = token_pattern
        self.max_df = max_df
        self.min_df = min_df
        self.max_features = max_features
        self.max_length = max_length
        self.dtype = dtype
        self.encoding = encoding
        self.decode_error = decode_error

    def _build_analyzer(self):
        """The function from a decoded document to its list of tokens."""
        if callable(self.analyzer):
            return self.analyzer
        lowercase = self.lowercase
        if self.analyzer == "char":

            def analyze(doc):
                return list(_WHITE_SPACES.sub(" ", doc.lower() if lowercase else doc))

            return analyze
        try:
            pattern = re.compile(self.token_pattern)
        except re.error as e:
            raise ValueError(
                f"token_pattern {self.token_pattern!r} is not a valid regular "
                f"expression: {e}."
            ) from None
        if pattern.groups > 1:
            raise ValueError(
                f"token_pattern {self.token_pattern!r} has {pattern.groups} "
                "capturing groups; it may have at most one, the token."
            )

        def analyze(doc):
            return pattern.findall(doc.lower() if lowercase else doc)

        return analyze

    def _tokenize(self, raw_documents):
        """The list of the first ``max_length`` tokens of every document,
        checking each document.

        Errors name the index of the document at fault, counting from 0.
        """
        if isinstance(raw_documents, (str, bytes)):
            raise ValueError(
                "Iterable over raw text documents expected, "
                f"{type(raw_documents).__name__} object received."
            )
        shape = getattr(raw_documents, "shape", None)
        if shape is not None and len(shape) != 1:
            raise ValueError(
                "raw_documents must be one-dimensional, one document per sample; "
                f"got an array of shape {shape}."
            )
        try:
            documents = iter(raw_documents)
        except TypeError:
            raise TypeError(
                "Iterable over raw text documents expected, "
                f"{type(raw_documents).__name__} object received."
            ) from None
        analyze = self._build_analyzer()
        custom = callable(self.analyzer)
        token_lists = []
        for i, doc in enumerate(documents):
            if isinstance(doc, bytes):
                try:
                    doc = doc.decode(self.encoding, self.decode_error)
                except UnicodeDecodeError as e:
                    raise ValueError(
                        f"Document {i} cannot be decoded with encoding="
                        f"{self.encoding!r} ({e}); set encoding to the documents' "
                        "encoding, or decode_error to 'replace' or 'ignore'."
                    ) from None
            elif not isinstance(doc, str):
                raise TypeError(
                    f"Document {i} is {doc!r:.40} of type {type(doc).__name__}; "
                    "every document must be a str (or bytes, decoded with "
                    "encoding). Replace or drop missing documents first."
                )
            tokens = analyze(doc)
            if custom:
                tokens = self._check_tokens(tokens, i)
            token_lists.append(tokens[: self.max_length])
        return token_lists

    @staticmethod
    def _check_tokens(tokens, i):
        """The tokens a callable analyzer returned for document i, as a list."""
        try:
            if isinstance(tokens, (str, bytes)):
                raise TypeError
            tokens = list(tokens)
        except TypeError:
            raise TypeError(
                f"The analyzer returned a {type(tokens).__name__} for document "
                f"{i}; it must return a list of str tokens."
            ) from None
        for token in tokens:
            if not isinstance(token, str):
                raise TypeError(
                    f"The analyzer returned a token of type {type(token).__name__} "
                    f"({token!r:.40}) for document {i}; tokens must be str."
                )
        return tokens

    def _learn_vocabulary(self, token_lists):
        """Set ``vocabulary_`` from the tokens of the documents seen in fit."""
        dtype = self._check_dtype()
        n_documents = len(token_lists)
        if n_documents == 0:
            raise ValueError(
                "raw_documents holds no document; at least one is needed to learn "
                "a vocabulary."
            )
        max_count = _count_bound(self.max_df, n_documents)
        min_count = _count_bound(self.min_df, n_documents)
        if max_count < min_count:
            raise ValueError(
                f"max_df={self.max_df} corresponds to {max_count:g} of the "
                f"{n_documents} documents, fewer than min_df={self.min_df} "
                f"({min_count:g}); lower min_df or raise max_df."
            )
        counts = Counter()  # occurrences of each token
        document_counts = Counter()  # number of documents holding it
        for tokens in token_lists:
            counts.update(tokens)
            document_counts.update(set(tokens))
        if not counts:
            raise ValueError(
                "Empty vocabulary: no document holds a token. Check the analyzer "
                "and token_pattern (the default one takes words of two or more "
                "characters)."
            )
        kept = [
            token for token, n in document_counts.items() if min_count <= n <= max_count
        ]
        if not kept:
            raise ValueError(
                "After pruning, no terms remain. Try a lower min_df or a higher max_df."
            )
        kept.sort(key=lambda token: (-counts[token], token))
        kept = kept[: self.max_features]
        largest_id = len(kept) + 1
        if dtype.kind in "iu":
            exact = np.iinfo(dtype).max
        else:  # the largest integer up to which every integer is exact
            exact = 2 ** (np.finfo(dtype).nmant + 1)
        if largest_id > exact:
            raise ValueError(
                f"dtype {dtype} cannot hold the largest id, {largest_id}, exactly; "
                "use a wider dtype or a lower max_features."
            )
        self.vocabulary_ = {token: i for i, token in enumerate(kept, start=2)}

    def _check_dtype(self):
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype is None or not (
            dtype.kind in "iu" or dtype in (np.float32, np.float64)
        ):
            raise ValueError(
                "dtype must be an integer dtype, such as np.int64 or np.int32, or "
                f"np.float32 or np.float64; got {self.dtype!r}."
            )
        return dtype

    def _encode(self, token_lists):
        """The id sequence of each list of tokens."""
        vocabulary = self.vocabulary_
        dtype = self._check_dtype()
        # An empty sequence cannot be read by a sequence model: a document
        # without tokens gives one out-of-vocabulary step (see the Notes).
        return [
            np.array(
                [vocabulary.get(t, _OOV_ID) for t in tokens]
                or [_OOV_ID],
                dtype=dtype,
            )
            for tokens in token_lists
        ]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, raw_documents, y=None):
        """Learn the vocabulary of the documents.

        Parameters
        ----------
        raw_documents : iterable of str or bytes
            The documents: a list, a 1D array or a pandas Series of strings, or
            any iterable of them (read once).

        y : None
            Ignored.

        Returns
        -------
        self : object
            Fitted vectorizer.
        """
        self._learn_vocabulary(self._tokenize(raw_documents))
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, raw_documents, y=None):
        """Learn the vocabulary and return the id sequence of each document.

        The same as ``fit(raw_documents).transform(raw_documents)``, with the
        documents read and tokenized only once.

        Parameters
        ----------
        raw_documents : iterable of str or bytes
            The documents: a list, a 1D array or a pandas Series of strings, or
            any iterable of them (read once).

        y : None
            Ignored.

        Returns
        -------
        X : list of ndarray of shape (n_tokens_i,)
            The ids of the tokens of each document, in order (see
            :meth:`transform`).
        """
        token_lists = self._tokenize(raw_documents)
        self._learn_vocabulary(token_lists)
        return self._encode(token_lists)

    def transform(self, raw_documents):
        """Return the id sequence of each document.

        Parameters
        ----------
        raw_documents : iterable of str or bytes
            The documents: a list, a 1D array or a pandas Series of strings, or
            any iterable of them.

        Returns
        -------
        X : list of ndarray of shape (n_tokens_i,)
            One array of ``dtype`` per document, with the id of each of its
            tokens in order: the token's id in ``vocabulary_``, or 1 for a token
            outside it. At most ``max_length`` ids, the first ones. A document
            without any token gives ``[1]``, so every sequence has at least one
            step.
        """
        check_is_fitted(self)
        return self._encode(self._tokenize(raw_documents))

    def inverse_transform(self, X):
        """Return the tokens of id sequences.

        Parameters
        ----------
        X : list of array-like of int, or array-like of int of shape \
                (n_samples, n_timesteps)
            Id sequences: as returned by :meth:`transform`, or padded with
            zeros into a 2D array.

        Returns
        -------
        tokens : list of list of str
            The token of each id of each sequence, in order; ``"[UNK]"`` for
            the out-of-vocabulary id 1, and nothing for the padding id 0.
        """
        check_is_fitted(self)
        token_of = np.array(self.get_vocabulary(), dtype=object)
        shape = getattr(X, "shape", None)
        if isinstance(X, (str, bytes)) or (
            shape is not None
            and (len(shape) not in (1, 2) or (len(shape) == 1 and X.dtype != object))
        ):
            raise ValueError(
                "X must be a list of id sequences or a 2D array of them padded "
                f"with zeros; got {type(X).__name__}"
                + (f" of shape {shape}." if shape is not None else ".")
            )
        tokens = []
        for i, seq in enumerate(X):
            ids = np.asarray(seq)
            if ids.ndim != 1:
                raise ValueError(
                    f"Sequence {i} must be 1D, one id per step; got an array of "
                    f"shape {ids.shape}."
                )
            if ids.size == 0:
                tokens.append([])  # [] is float to NumPy, yet a fine sequence
                continue
            if ids.dtype.kind == "f" and np.array_equal(ids, np.round(ids)):
                ids = ids.astype(np.int64)  # as transform gives with a float dtype
            if ids.dtype.kind not in "iu":
                raise TypeError(
                    f"Sequence {i} has dtype {ids.dtype}; token ids must be integers."
                )
            outside = (ids < 0) | (ids >= len(token_of))
            if outside.any():
                j = int(np.argmax(outside))
                raise ValueError(
                    f"Sequence {i} holds the id {ids[j]} at step {j}, outside the "
                    f"vocabulary's ids 0 to {len(token_of) - 1}."
                )
            tokens.append(token_of[ids[ids != _PAD_ID]].tolist())
        return tokens

    def get_vocabulary(self):
        """Return the token of every id, as Keras' TextVectorization does.

        Returns
        -------
        tokens : list of str
            The token of id ``i`` at position ``i``: ``""`` for the padding id
            0, ``"[UNK]"`` for the out-of-vocabulary id 1, then the tokens of
            ``vocabulary_`` by id.
        """
        check_is_fitted(self)
        by_id = sorted(self.vocabulary_, key=self.vocabulary_.__getitem__)
        return ["", _OOV_TOKEN, *by_id]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # As CountVectorizer: raw documents in, not a 2D array of numbers.
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        # The output is integer ids, whatever the input.
        tags.transformer_tags.preserves_dtype = []
        return tags
