"""Turning what users pass as X into sequences the engine can run.

Three forms are accepted:

* 3D array-like ``(n_samples, n_timesteps, n_features)``: ``n_features_in_`` is the
  number of features per step, and sequences of another length than the ones seen
  in ``fit`` can be predicted;
* a list of sequences of any lengths, each ``(n_timesteps_i, n_features)`` or
  ``(n_timesteps_i,)``: the same as 3D, without padding;
* 2D array-like ``(n_samples, n_timesteps)``: a batch of univariate sequences, read
  the way scikit-learn reads any 2D X: ``n_features_in_`` is the number of columns
  (DataFrames set ``feature_names_in_``), and another width at predict time is an
  error.

Arrays may be right-padded with NaN: trailing time steps that are NaN in every
feature are padding, and NaN anywhere else is an error. NaN marks padding only, not
missing values, which is why the estimators' ``allow_nan`` tag is False. A model
fitted on 2D input predicts on 2D input; 3D arrays and lists of sequences can be
mixed.

An estimator with ``embedding_dim`` reads token ids instead, one integer per step
(:func:`validate_token_ids`): a 2D array padded with trailing zeros, or a list of
1D arrays.
"""

import numpy as np
from sklearn.utils.validation import check_array, validate_data

from ._objective import Sequences
from ._sequences import _valid_mask, check_some_sequences, is_ragged, pad_sequences

FLOAT_DTYPES = (np.float64, np.float32)

#: A first fit on token ids makes an embedding table of one row per id up to the
#: largest (see :func:`validate_token_ids`). Up to DENSE_ROWS rows are always
#: accepted (a vocabulary of a million tokens); a larger table must have at most
#: ROWS_PER_ID rows per distinct id of X, or the ids are not a numbering of
#: tokens (hashes, raw codes) and the table would be mostly rows never trained.
DENSE_ROWS = 2**20
ROWS_PER_ID = 10


def validate_sequences(estimator, X, *, reset, dtype=FLOAT_DTYPES):
    """Validate X and return it as :class:`Sequences`.

    Parameters
    ----------
    estimator : estimator instance
        Sets ``n_features_in_`` (and ``feature_names_in_`` for 2D DataFrames) when
        ``reset`` is true, and checks X against them otherwise.
    X : array-like of shape (n_samples, n_timesteps, n_features) or \
            (n_samples, n_timesteps), or list of array-like
    reset : bool
        True in ``fit`` and the first ``partial_fit``.
    dtype : dtype or tuple of dtypes
        Passed to :func:`sklearn.utils.check_array`: float32 stays float32, anything
        else becomes float64 by default.

    Returns
    -------
    sequences : Sequences
        ``values`` of shape (n_samples, n_timesteps, n_features) with zeros in the
        padding (it may share memory with the user's array when there is no
        padding, and is never written to then), and ``lengths`` of shape
        (n_samples,), or None when every sequence has n_timesteps.
    """
    if _plain_3d(X, dtype):
        # What check_array would return, at a fraction of its fixed cost: a
        # finite float array of the kept dtypes, with nothing to convert.
        check_form(estimator, X, 3, X.shape[2], reset)
        return Sequences(X, None)
    if is_ragged(X):
        values, lengths = pad_sequences(X, dtype=dtype, estimator=estimator)
        ndim = 3
    else:
        try:
            values = check_array(
                X,
                dtype=dtype,
                allow_nd=True,
                ensure_all_finite="allow-nan",
                ensure_min_samples=1,
                ensure_min_features=1,
                input_name="X",
                estimator=estimator,
            )
        except ValueError as exc:
            if "inhomogeneous" in str(exc) or "with a sequence" in str(exc):
                raise ValueError(
                    "X holds time steps of different sizes; every step needs the "
                    "same number of features."
                ) from exc
            raise
        ndim = values.ndim
        if ndim > 3:
            raise ValueError(
                "X must be 2D (n_samples, n_timesteps), 3D (n_samples, n_timesteps, "
                f"n_features) or a list of sequences; got an array of shape "
                f"{values.shape}."
            )
        if ndim == 3 and (values.shape[1] < 1 or values.shape[2] < 1):
            raise ValueError(
                f"X has {values.shape[1]} time step(s) and {values.shape[2]} "
                f"feature(s) per step (shape={values.shape}); a minimum of 1 of each "
                "is required."
            )
        lengths = None
        if np.isnan(values).any():
            values, lengths = pad_sequences(values, dtype=dtype, estimator=estimator)
        elif ndim == 2:
            values = values[:, :, np.newaxis]

    check_form(estimator, X, ndim, values.shape[2], reset)
    if lengths is not None:
        values[np.isnan(values)] = 0.0  # a new array from pad_sequences
        if (lengths == values.shape[1]).all():
            lengths = None
    return Sequences(values, lengths)


def _plain_3d(X, dtype):
    """Whether X is a 3D ndarray of a dtype in ``dtype``, with at least one value
    and only finite values (no padding)."""
    return (
        type(X) is np.ndarray
        and X.ndim == 3
        and X.dtype in (dtype if isinstance(dtype, tuple) else (dtype,))
        and X.size > 0
        and bool(np.isfinite(X).all())
    )


def check_form(estimator, X, ndim, n_features, reset, check_names=True):
    """Set or check ``n_features_in_``, feature names and the form of X.

    ``ndim`` is 2 for 2D X (``n_features`` then counts its columns) and 3 for 3D
    arrays and lists of sequences (``n_features`` per time step). Without
    ``check_names`` (for output passed back, as ``inverse_transform`` gets), 2D X is
    checked for its number of columns only.
    """
    name = type(estimator).__name__
    if reset:
        estimator._input_ndim = ndim
    elif ndim != estimator._input_ndim:
        fitted = (
            f"3D input with {estimator.n_features_in_} feature(s) per time step"
            if estimator._input_ndim == 3
            else f"2D input with {estimator.n_features_in_} time steps"
        )
        given = "2D" if ndim == 2 else "3D (or a list of sequences)"
        raise ValueError(
            f"X is {given} but this {name} was fitted on {fitted}; pass X in the "
            "same form as in fit."
        )
    if ndim == 2 and check_names:
        # The scikit-learn checks of the number of columns and feature names.
        validate_data(estimator, X, reset=reset, skip_check_array=True)
        return
    if reset:
        estimator.n_features_in_ = n_features
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_  # a refit must not keep old names
    elif n_features != estimator.n_features_in_:
        per_step = " per time step" if ndim == 3 else ""
        raise ValueError(
            f"X has {n_features} features{per_step}, but {name} is expecting "
            f"{estimator.n_features_in_} features as input."
        )


# ------------------------------------------------------------------ token ids
def validate_token_ids(estimator, X, *, reset, n_tokens=None):
    """Validate X as token ids, one per time step, for a network with an
    embedding, and return it as :class:`Sequences` of int64 ids.

    X is a 2D array-like (n_samples, n_timesteps) whose trailing zeros are
    padding (a sequence runs up to its last nonzero id), or a list of 1D
    array-likes whose every element is a step. Id 0 is padding and never a
    token: a sequence without a nonzero id, or a 0 before a sequence's last
    step, is an error. Integral floats are read as ids; booleans, other floats
    and negative ids are errors.

    Parameters
    ----------
    estimator : estimator instance
        Gets ``n_features_in_ = 1`` (one id per step) when ``reset`` is true.
    X : array-like of shape (n_samples, n_timesteps), or list of array-like
    reset : bool
        True in ``fit`` and the first ``partial_fit``.
    n_tokens : int or None
        The rows of the fitted embedding: an id from ``n_tokens`` on is an error.

    Returns
    -------
    sequences : Sequences
        ``values`` of shape (n_samples, n_timesteps), int64, 0 at padding steps,
        and ``lengths`` (n_samples,) or None when every sequence has n_timesteps.
        Its ``ids_dtype``, the dtype a first fit computes in, is float32 when X
        holds float32 ids (every sequence of a list), as float32 numbers train
        in float32; float64 otherwise.
    """
    if is_ragged(X):
        check_some_sequences(X)
        rows = [np.asarray(seq) for seq in X]
        for i, row in enumerate(rows):
            if row.ndim != 1:
                raise ValueError(
                    f"X[{i}] has shape {row.shape}; with embedding_dim, each sequence "
                    "is a 1D array of token ids, one per time step."
                )
        as_float32 = bool(rows) and all(row.dtype == np.float32 for row in rows)
        lengths = np.array([len(row) for row in rows], dtype=np.intp)
        values = np.zeros((len(rows), int(lengths.max(initial=0))), dtype=np.int64)
        for i, row in enumerate(rows):
            values[i, : len(row)] = _as_ids(row[np.newaxis], first_sample=i)
    else:
        values = np.asarray(X)
        if values.ndim != 2:
            raise ValueError(
                "With embedding_dim, X holds one token id per time step: a 2D array "
                "(n_samples, n_timesteps) padded with trailing zeros, or a list of 1D "
                f"arrays; got an array of shape {values.shape}."
            )
        as_float32 = values.dtype == np.float32
        values = _as_ids(values)
        if len(values) == 0:
            raise ValueError("X holds no sequence; at least 1 is required.")
        n_steps = values.shape[1]
        tokens = np.pad(values != 0, ((0, 0), (1, 0)), constant_values=True)
        # Each sequence runs up to its last nonzero id (0 steps if it has none).
        lengths = n_steps - np.argmax(tokens[:, ::-1], axis=1)
    if as_float32 and values.max() > _FLOAT32_EXACT:
        i, t = np.argwhere(values > _FLOAT32_EXACT)[0]
        raise ValueError(
            f"X holds the id {values[i, t]} at sample {i}, step {t} as float32, "
            f"which holds integers exactly only up to {_FLOAT32_EXACT}: pass the "
            "ids as integers."
        )
    empty = np.flatnonzero(lengths == 0)
    if len(empty):
        raise ValueError(
            f"Sequence {empty[0]} of X has no token: every sequence needs at least "
            "one step, a nonzero id (0 is padding)."
        )
    valid = np.arange(values.shape[1]) < lengths[:, np.newaxis]
    inner_zeros = np.argwhere(valid & (values == 0))
    if len(inner_zeros):
        i, t = inner_zeros[0]
        raise ValueError(
            f"X holds id 0 at sample {i}, step {t}, within the sequence: 0 is "
            "padding, never a token, and may only follow a sequence's last step "
            "in a padded array."
        )
    if n_tokens is not None:
        outside = np.argwhere(values >= n_tokens)
        if len(outside):
            i, t = outside[0]
            raise ValueError(
                f"id {values[i, t]} at sample {i}, step {t} is outside the "
                f"embedding's {n_tokens} rows seen in fit (ids 0 to {n_tokens - 1})."
            )
    if reset:
        _check_table_rows(values, valid)
        estimator.n_features_in_ = 1
        estimator._input_ndim = None
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    if (lengths == values.shape[1]).all():
        lengths = None
    ids_dtype = np.dtype(np.float32 if as_float32 else np.float64)
    return Sequences(values, lengths, ids_dtype)


#: Float32 holds every integer up to 2**24 exactly, and not all beyond.
_FLOAT32_EXACT = 2**24


def _check_table_rows(values, valid):
    """Raise before a first fit would allocate an embedding table of one row per
    id up to the largest of ``values`` when that is far more rows than the data
    can use (see :data:`DENSE_ROWS`)."""
    n_rows = int(values.max()) + 1
    if n_rows <= DENSE_ROWS:
        return
    n_distinct = len(np.unique(values[valid]))
    if n_rows <= ROWS_PER_ID * n_distinct:
        return
    i, t = np.unravel_index(np.argmax(values), values.shape)
    raise ValueError(
        f"The largest id of X, {values[i, t]} at sample {i}, step {t}, would "
        f"make an embedding table of {n_rows} rows (one per id from 0), but X "
        f"holds only {n_distinct} distinct ids. Ids are row numbers of the "
        "table: number the tokens from 1 up (0 is padding), e.g. with "
        "sklearn_lstm.preprocessing.TextSequenceVectorizer, or codes of your "
        "own with np.unique(codes, return_inverse=True)."
    )


def _as_ids(values, first_sample=0):
    """The 2D array ``values`` as int64 ids, or an error naming the sample
    (counted from ``first_sample``) and the step of the first bad entry."""
    kind = values.dtype.kind
    if kind == "b":
        raise TypeError(
            "X holds booleans; with embedding_dim, X holds integer token ids."
        )
    if kind not in "iuf":
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"X holds {values.dtype} values; with embedding_dim, X holds integer "
                "token ids."
            ) from exc
        kind = "f"
    if kind == "f":
        bad = np.argwhere(~np.isfinite(values) | (values != np.round(values)))
        if len(bad):
            i, t = bad[0]
            raise ValueError(
                f"X holds {values[i, t]} at sample {i + first_sample}, step {t}: "
                "with embedding_dim, X holds integer token ids."
            )
    negative = np.argwhere(values < 0)
    if len(negative):
        i, t = negative[0]
        raise ValueError(
            f"X holds the negative id {values[i, t]} at sample {i + first_sample}, "
            f"step {t}: token ids are 0 (padding) or more."
        )
    if values.size and values.max() > np.iinfo(np.int64).max:
        raise ValueError("X holds token ids beyond the range of int64.")
    return values.astype(np.int64, copy=False)


# ------------------------------------------------------ one target per time step
def valid_steps(X):
    """(n_samples, n_timesteps) booleans of the :class:`Sequences` ``X``: whether
    each step is within its sequence."""
    return _valid_mask(_sequence_lengths(X), X.values.shape[1])


def _sequence_lengths(X):
    n_samples, n_steps = X.values.shape[:2]
    if X.lengths is None:
        return np.full(n_samples, n_steps)
    return X.lengths


def step_targets(y, X):
    """The targets of each valid step of ``X``, one row per step.

    ``y`` holds one target (or one row of ``k``) per step, in the form of X: an
    array-like (n_samples, n_timesteps) or (n_samples, n_timesteps, k), whose
    entries at padding steps are ignored whatever they hold, or a list of
    array-likes (n_timesteps_i,) or (n_timesteps_i, k) of each sequence's length.

    Returns
    -------
    rows : ndarray of shape (n_valid_steps,) or (n_valid_steps, k)
        Sequence after sequence, step after step: the order of
        ``X.values[valid_steps(X)]``.
    """
    n_samples, n_steps = X.values.shape[:2]
    lengths = _sequence_lengths(X)
    if is_ragged(y):
        return _list_step_targets(y, lengths)
    y = np.asarray(y)
    if y.ndim not in (2, 3) or y.shape[:2] != (n_samples, n_steps):
        raise ValueError(
            "With pooling='none', y holds one target per time step, in the form of "
            f"X: an array of shape ({n_samples}, {n_steps}) or ({n_samples}, "
            f"{n_steps}, n_outputs), or a list of {n_samples} arrays of the "
            f"sequences' lengths; got y of shape {y.shape}."
        )
    return y[valid_steps(X)]


def _list_step_targets(y, lengths):
    if len(y) != len(lengths):
        raise ValueError(
            f"y holds {len(y)} sequences of targets but X holds {len(lengths)} "
            "sequences; with pooling='none', y needs one sequence of targets per "
            "sequence of X."
        )
    pieces = []
    for i, (targets, length) in enumerate(zip(y, lengths)):
        targets = np.asarray(targets)
        if targets.ndim not in (1, 2) or len(targets) != length:
            raise ValueError(
                f"y[{i}] has shape {targets.shape} but X[{i}] has {length} time "
                f"step(s); with pooling='none', y[{i}] needs one target per step: "
                f"shape ({length},) or ({length}, n_outputs)."
            )
        pieces.append(targets)
    if len({piece.shape[1:] for piece in pieces}) > 1:
        shapes = sorted({str(piece.shape[1:]) for piece in pieces})
        raise ValueError(
            "The sequences of y have different numbers of outputs per step "
            f"(trailing shapes {', '.join(shapes)}); each step needs the same."
        )
    return np.concatenate(pieces)


def spread_steps(rows, X, weights, row_factors=None):
    """Per-step targets and weights as the network's loss reads them.

    ``rows`` are the encoded targets of the valid steps (see :func:`step_targets`),
    ``weights`` the weight of each sequence (n_samples,) and ``row_factors``
    optional factors of each valid step (class weights).

    Returns
    -------
    y : ndarray of shape (n_samples, n_timesteps, n_outputs), zero at padding
    step_weights : ndarray of shape (n_samples, n_timesteps): each step has its
        sequence's weight (times its factor), padding steps 0
    """
    valid = valid_steps(X)
    rows = rows.reshape(len(rows), -1)
    y = np.zeros(valid.shape + rows.shape[1:], dtype=rows.dtype)
    y[valid] = rows
    step_weights = np.where(valid, weights[:, np.newaxis], 0).astype(weights.dtype)
    if row_factors is not None:
        step_weights[valid] *= row_factors
    return y, step_weights


def restore_steps(rows, X, like):
    """Per-step outputs in the form of the input ``like``: a list of arrays
    (n_timesteps_i, ...) for a list of sequences, else an array (n_samples,
    n_timesteps, ...) whose padding steps hold NaN (None for labels that are not
    numbers)."""
    lengths = _sequence_lengths(X)
    if is_ragged(like):
        return np.split(rows, np.cumsum(lengths)[:-1])
    valid = valid_steps(X)
    if valid.all():
        return rows.reshape(valid.shape + rows.shape[1:])
    if rows.dtype.kind in "fc":
        fill, dtype = np.nan, rows.dtype
    elif rows.dtype.kind in "iub":
        fill, dtype = np.nan, np.float64
    else:
        fill, dtype = None, object
    out = np.full(valid.shape + rows.shape[1:], fill, dtype=dtype)
    out[valid] = rows
    return out
