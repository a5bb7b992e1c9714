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
"""

import numpy as np
from sklearn.utils.validation import check_array, validate_data

from ._objective import Sequences
from ._sequences import is_ragged, pad_sequences

FLOAT_DTYPES = (np.float64, np.float32)


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
