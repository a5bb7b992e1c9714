"""Variable-length sequences: from what users pass to one padded array and back.

Three forms of X describe a batch of sequences:

* **ragged**: a list or tuple (or a 1D object array) of sequences, each a 2D
  array-like ``(n_timesteps_i, n_features)`` or a 1D array-like ``(n_timesteps_i,)``
  (univariate). Lengths may differ; there is no padding, so NaN is never allowed;
* **3D**: an array ``(n_samples, n_timesteps, n_features)`` in which shorter
  sequences are right-padded with time steps that are NaN in every feature;
* **2D**: an array ``(n_samples, n_timesteps)`` of univariate sequences, padded the
  same way with trailing NaN.

:func:`pad_sequences` turns any of them into one right-padded float array plus
the length of every sequence, which is what the engine and the scalers work on;
:func:`unpad` turns such a pair back into the form of the input.
"""

import numpy as np
from scipy.sparse import issparse
from sklearn.utils.validation import check_array

FLOAT_DTYPES = (np.float64, np.float32)


# ------------------------------------------------------------------- detection
def _is_array_object(obj):
    """True for ndarrays, pandas objects and the like, with at least one axis,
    and for sparse matrices (refused with scikit-learn's message later)."""
    if isinstance(obj, np.ndarray):
        return obj.ndim >= 1
    if issparse(obj):
        return True
    # np.ndim reads ``.ndim`` when there is one, so this does not convert pandas
    # objects; plain lists are excluded since nested lists are read as an array.
    return hasattr(obj, "__array__") and np.ndim(obj) >= 1


def _shape_or_none(obj):
    """The shape NumPy would give ``obj``, or None when it has none (ragged)."""
    if hasattr(obj, "shape"):
        return tuple(obj.shape)
    try:
        return np.shape(obj)
    except ValueError:  # inhomogeneous nested lists
        return None


def is_ragged(X):
    """Whether X is a collection of separate sequences rather than one array.

    A caller must not pass such an X to :func:`numpy.asarray`: it may fail (lengths
    or feature counts differ) or silently build an object array.

    Parameters
    ----------
    X : object
        What the user passed as X.

    Returns
    -------
    ragged : bool
        True if X is a list, tuple or 1D object array and either is empty, holds
        at least one array object (ndarray, pandas Series or DataFrame, ...) or
        holds nested sequences of different shapes. Nested lists of one common shape
        are an ordinary array and give False, as does anything else.

    Notes
    -----
    A list of arrays counts as ragged even when all the arrays have the same
    shape: it is then still a list of separate sequences. Reading it as an array
    instead would change the meaning of X with the data (a list of 1D arrays of
    one length would become a 2D batch whose width is the length), so that a
    model fitted on variable-length sequences could not be applied to a list
    that happens to hold sequences of one length, or to a single sequence.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lstm._sequences import is_ragged
    >>> is_ragged([[1.0, 2.0, 3.0], [4.0, 5.0]])
    True
    >>> is_ragged([np.zeros((4, 2)), np.zeros((4, 2))])
    True
    >>> is_ragged([[1.0, 2.0], [3.0, 4.0]])
    False
    >>> is_ragged(np.zeros((2, 4, 3)))
    False
    """
    if isinstance(X, np.ndarray):
        if X.dtype != object or X.ndim != 1:
            return False
    elif not isinstance(X, (list, tuple)):
        return False
    if len(X) == 0:
        return True  # no sequences: the list's own message, not "got 1D array"
    first_shape = None
    non_scalar = False
    for k, seq in enumerate(X):
        if _is_array_object(seq):
            return True
        shape = _shape_or_none(seq)
        if shape is None:
            return True
        non_scalar = non_scalar or shape != ()
        if k == 0:
            first_shape = shape
        elif shape != first_shape:
            return non_scalar
    # An object array of nested lists cannot go through np.asarray unchanged either.
    return isinstance(X, np.ndarray) and non_scalar


# ------------------------------------------------------------------ validation
def _resolve_dtype(current, dtype):
    """The dtype ``check_array`` would give: kept if listed, else the first one."""
    if isinstance(dtype, (list, tuple)):
        listed = [np.dtype(d) for d in dtype]
        return current if current in listed else listed[0]
    return np.dtype(dtype)


def _check_sequence(seq, index, dtype, estimator):
    """One sequence of a ragged X as a 2D array (n_timesteps, n_features).

    Returns the array (possibly the user's own, which is only ever read), the
    dtype it must be cast to and whether it was 1D.
    """
    try:
        arr = np.asarray(seq)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.dtype.kind not in "biuf":
        # Anything but plain numbers (strings, objects, complex, sparse, ragged
        # nested lists) goes through scikit-learn's validation for its messages.
        try:
            arr = check_array(
                seq,
                dtype=dtype,
                ensure_2d=False,
                allow_nd=True,
                ensure_all_finite=False,
                ensure_min_samples=0,
                ensure_min_features=0,
                input_name="X",
                estimator=estimator,
            )
        except (TypeError, ValueError) as exc:
            if "inhomogeneous" in str(exc):
                raise ValueError(
                    f"Sample {index} of X has time steps with different numbers of "
                    "features."
                ) from exc
            raise type(exc)(f"Sample {index} of X: {exc}") from exc
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"Sample {index} of X must be a 1D (n_timesteps,) or 2D (n_timesteps, "
            f"n_features) array-like; got an array of shape {arr.shape}."
        )
    if arr.shape[0] == 0:
        raise ValueError(
            f"Sample {index} of X is empty (0 time steps); every sequence needs at "
            "least one time step."
        )
    one_d = arr.ndim == 1
    if one_d:
        arr = arr.reshape(-1, 1)
    elif arr.shape[1] == 0:
        raise ValueError(
            f"Sample {index} of X has 0 features per time step (shape={arr.shape}); "
            "a minimum of 1 is required."
        )
    return arr, _resolve_dtype(arr.dtype, dtype), one_d


def check_some_sequences(X):
    """Refuse a ragged X (see :func:`is_ragged`) that holds no sequence."""
    if len(X) == 0:
        raise ValueError("X is an empty list; at least one sequence is required.")


def stack_ragged(X, dtype, estimator):
    """Check every sequence of a ragged X and stack their steps into one array.

    Each sequence must be 1D or 2D and non-empty, and all must have the same number
    of features. Values are not checked here.

    Returns
    -------
    flat : ndarray of shape (total steps, n_features)
        A new array: the user's sequences are only read. float32 only when every
        sequence is float32; any float64 (or int, which resolves to float64) makes
        the whole batch float64.
    lengths : ndarray of shape (n_samples,), int64
    one_d : list of bool, whether each sequence was given as 1D.
    """
    check_some_sequences(X)
    arrays, dtypes, one_d = [], set(), []
    n_features = None
    for i, seq in enumerate(X):
        arr, arr_dtype, is_1d = _check_sequence(seq, i, dtype, estimator)
        if n_features is None:
            n_features = arr.shape[1]
        elif arr.shape[1] != n_features:
            raise ValueError(
                f"Sample {i} of X has {arr.shape[1]} feature(s) per time step, but "
                f"sample 0 has {n_features}; all sequences must have the same number "
                "of features."
            )
        arrays.append(arr)
        dtypes.add(arr_dtype)
        one_d.append(is_1d)
    lengths = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(X))
    flat = np.concatenate(
        arrays, axis=0, dtype=np.result_type(*dtypes), casting="unsafe"
    )
    return flat, lengths, one_d


def _pad_ragged(X, dtype, estimator):
    """Validate a ragged X and right-pad it with NaN."""
    flat, lengths, _ = stack_ragged(X, dtype, estimator)
    # The checks below run on all steps at once, not per sequence.
    finite = np.isfinite(flat).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        offsets = np.cumsum(lengths) - lengths
        i = int(np.searchsorted(offsets, row, side="right")) - 1
        kind = "NaN" if np.isnan(flat[row]).any() else "infinity"
        raise ValueError(
            f"Input X contains {kind} in sample {i} at time step {row - offsets[i]}. "
            "Sequences passed as a list have no padding, so every value must be "
            "finite."
        )
    values = np.full((len(X), lengths.max(), flat.shape[1]), np.nan, dtype=flat.dtype)
    # Boolean indexing walks the (sample, step) grid in C order, which is the order
    # of the concatenated steps.
    values[_valid_mask(lengths, values.shape[1])] = flat
    return values, lengths


def _valid_mask(lengths, n_timesteps):
    """(n_samples, n_timesteps) mask of the real (non-padding) steps."""
    return np.arange(n_timesteps) < np.asarray(lengths)[:, np.newaxis]


def _padded_lengths(values):
    """Lengths of the NaN-right-padded sequences in a 3D array, checking the padding.

    A padding step is a step that is NaN in every feature and is followed by
    padding steps only; any other NaN, and any infinity, is an error.
    """
    n_samples, n_timesteps, _ = values.shape
    finite = np.isfinite(values)
    if finite.all():  # the common case: no padding at all
        return np.full(n_samples, n_timesteps, dtype=np.int64)
    inf = np.isinf(values)
    if inf.any():
        i, t, _ = np.argwhere(inf)[0]
        raise ValueError(
            f"Input X contains infinity in sample {i} at time step {t}; only NaN "
            "is allowed, as padding."
        )
    # Everything not finite is NaN from here on.
    pad_step = ~finite.any(axis=2)  # NaN in every feature
    partial = ~finite.all(axis=2) & ~pad_step  # NaN in some features only
    real = ~pad_step
    # The length is one past the last real step (0 when there is none). A
    # sequence is well padded when all the steps before that are real.
    lengths = n_timesteps - np.argmax(real[:, ::-1], axis=1)
    lengths[~real.any(axis=1)] = 0
    bad_partial = partial.any(axis=1)
    bad_empty = lengths == 0
    bad_gap = real.sum(axis=1) != lengths
    bad = bad_partial | bad_empty | bad_gap
    if bad.any():
        # Report the first offending sample, whatever is wrong with it.
        i = int(np.argmax(bad))
        if bad_partial[i]:
            t = int(np.argmax(partial[i]))
            raise ValueError(
                f"Input X contains NaN in sample {i} at time step {t} in only some "
                "of the features. NaN is only allowed as padding: whole time steps "
                "at the end of a sequence, NaN in every feature."
            )
        if bad_empty[i]:
            raise ValueError(
                f"Sample {i} of X is all NaN: a sequence of length 0. Every sequence "
                "needs at least one time step."
            )
        t = int(np.argmax(pad_step[i]))
        raise ValueError(
            f"Input X contains NaN in sample {i} at time step {t}, followed by a "
            f"non-NaN step at time step {lengths[i] - 1}. NaN is only allowed as "
            "padding: whole time steps at the end of a sequence."
        )
    return lengths.astype(np.int64, copy=False)


def _pad_array(X, dtype, estimator):
    """Validate a 2D or 3D NaN-padded X; return it as 3D, its lengths and ndim."""
    # copy=True copies only when the result would share memory with X, so the
    # caller may then write into ``values`` (e.g. zero the padding) safely.
    values = check_array(
        X,
        dtype=dtype,
        allow_nd=True,
        ensure_all_finite=False,
        ensure_min_samples=1,
        ensure_min_features=1,
        copy=True,
        input_name="X",
        estimator=estimator,
    )
    ndim = values.ndim
    if ndim > 3:
        raise ValueError(
            "X must be 2D (n_samples, n_timesteps) or 3D (n_samples, n_timesteps, "
            f"n_features); got an array of shape {values.shape}."
        )
    if ndim == 2:
        values = values[:, :, np.newaxis]
    elif values.shape[1] < 1 or values.shape[2] < 1:
        raise ValueError(
            f"X has {values.shape[1]} time step(s) and {values.shape[2]} feature(s) "
            f"per step (shape={values.shape}); a minimum of 1 of each is required."
        )
    return values, _padded_lengths(values), ndim


def _pad_with_form(X, *, dtype=FLOAT_DTYPES, estimator=None):
    """:func:`pad_sequences`, also returning the form: "ragged", "2d" or "3d"."""
    if is_ragged(X):
        values, lengths = _pad_ragged(X, dtype, estimator)
        return values, lengths, "ragged"
    values, lengths, ndim = _pad_array(X, dtype, estimator)
    return values, lengths, f"{ndim}d"


def pad_sequences(X, *, dtype=FLOAT_DTYPES, estimator=None):
    """Validate a batch of sequences and right-pad it into one float array.

    Parameters
    ----------
    X : list of array-like, or array-like of shape (n_samples, n_timesteps, \
            n_features) or (n_samples, n_timesteps)
        Either a list (or tuple, or 1D object array) of sequences of any lengths,
        each of shape ``(n_timesteps_i, n_features)`` or ``(n_timesteps_i,)``, with
        finite values only; or an array right-padded with NaN: trailing time steps
        that are NaN in every feature are padding. A 2D array holds univariate
        sequences. Every sequence needs at least one time step.

    dtype : dtype or tuple of dtypes, default=(np.float64, np.float32)
        As in :func:`sklearn.utils.check_array`: a listed dtype is kept, anything
        else is converted to the first one. A list of sequences keeps float32
        only when every sequence is float32.

    estimator : estimator instance or None, default=None
        Named in scikit-learn's error messages.

    Returns
    -------
    values : ndarray of shape (n_samples, max_length, n_features)
        The sequences, right-padded with NaN. A new array, never a view of X:
        the caller may write into it.

    lengths : ndarray of shape (n_samples,), dtype int64
        The number of real time steps of each sequence, each at least 1.

    Raises
    ------
    ValueError
        If a NaN is anywhere but in a padding step, if X contains infinity, if a
        sequence is empty, or if the sequences have different numbers of features.
        The message names the sample (and the time step) at fault.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lstm._sequences import pad_sequences
    >>> values, lengths = pad_sequences([[1.0, 2.0, 3.0], [4.0]])
    >>> values[:, :, 0]
    array([[ 1.,  2.,  3.],
           [ 4., nan, nan]])
    >>> lengths
    array([3, 1])
    >>> pad_sequences(np.array([[1.0, np.nan], [2.0, 3.0]]))[1]
    array([1, 2])
    """
    values, lengths, _ = _pad_with_form(X, dtype=dtype, estimator=estimator)
    return values, lengths


# --------------------------------------------------------------------- unpad
def _form_of(like):
    if is_ragged(like):
        return "ragged"
    ndim = getattr(like, "ndim", None)
    return f"{np.ndim(like) if ndim is None else ndim}d"


def _restore_form(values, lengths, form, like, *, copy):
    """``values`` in the given form; ``copy=False`` may return views of it."""
    mask = _valid_mask(lengths, values.shape[1])
    if form == "ragged":
        if len(like) != len(values):
            raise ValueError(
                f"like holds {len(like)} sequences but values {len(values)}."
            )
        # Boolean indexing copies the valid steps into one new buffer; the pieces
        # are disjoint views of it, so no list element aliases ``values``.
        flat = values[mask]
        pieces = np.split(flat, np.cumsum(lengths)[:-1])
        return [p[:, 0] if np.ndim(s) == 1 else p for p, s in zip(pieces, like)]
    out = values.copy() if copy else values
    out[~mask] = np.nan
    if form == "2d":
        if out.shape[2] != 1:
            raise ValueError(
                f"like is 2D (univariate sequences) but values has {out.shape[2]} "
                "features per time step."
            )
        return out[:, :, 0]
    return out


def unpad(values, lengths, *, like):
    """Turn padded sequences back into the form of another input.

    The inverse of :func:`pad_sequences`: ``unpad(*pad_sequences(X), like=X)``
    equals X (with float values).

    Parameters
    ----------
    values : ndarray of shape (n_samples, max_length, n_features)
        Right-padded sequences; whatever is in the padding is ignored.

    lengths : array-like of shape (n_samples,)
        The number of real time steps of each sequence, between 1 and max_length.

    like : list of array-like, or array-like
        An input in the form to return, such as the X that ``values`` came from.

    Returns
    -------
    sequences : list of ndarray, or ndarray
        If ``like`` is a list of sequences (see :func:`is_ragged`), a list of
        arrays of shape ``(lengths[i], n_features)``, or ``(lengths[i],)`` where
        ``like[i]`` is 1D. Otherwise an array of the shape of ``values`` (of shape
        ``(n_samples, max_length)`` if ``like`` is 2D) with NaN in the padding.
        Always new arrays: nothing aliases ``values``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_lstm._sequences import pad_sequences, unpad
    >>> X = [np.array([1.0, 2.0, 3.0]), np.array([4.0])]
    >>> values, lengths = pad_sequences(X)
    >>> unpad(2 * values, lengths, like=X)
    [array([2., 4., 6.]), array([8.])]
    >>> unpad(2 * values, lengths, like=np.zeros((2, 3)))
    array([[ 2.,  4.,  6.],
           [ 8., nan, nan]])
    """
    values = np.asarray(values)
    lengths = np.asarray(lengths)
    if values.ndim != 3:
        raise ValueError(f"values must be 3D; got an array of shape {values.shape}.")
    if lengths.shape != (values.shape[0],) or lengths.dtype.kind not in "iu":
        raise ValueError(
            f"lengths must be integers of shape ({values.shape[0]},); got "
            f"{lengths.dtype} of shape {lengths.shape}."
        )
    if lengths.size and (lengths.min() < 1 or lengths.max() > values.shape[1]):
        raise ValueError(f"lengths must be between 1 and {values.shape[1]}.")
    form = _form_of(like)
    if form not in ("ragged", "2d", "3d"):
        raise ValueError(
            "like must be a list of sequences or a 2D or 3D array-like; got "
            f"{form.upper()} input."
        )
    return _restore_form(values, lengths, form, like, copy=True)
