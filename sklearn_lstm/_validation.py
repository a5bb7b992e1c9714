"""Turning what users pass as X into a (n_samples, n_timesteps, n_features) array.

Two forms are accepted:

* 3D array-like ``(n_samples, n_timesteps, n_features)``: ``n_features_in_`` is the
  number of features per step, and sequences of another length than the ones seen
  in ``fit`` can be predicted;
* 2D array-like ``(n_samples, n_timesteps)``: a batch of univariate sequences, read
  the way scikit-learn reads any 2D X: ``n_features_in_`` is the number of columns
  (DataFrames set ``feature_names_in_``), and another width at predict time is an
  error.

A model fitted on one form predicts on the same form.
"""

import numpy as np
from sklearn.utils.validation import check_array, validate_data

FLOAT_DTYPES = (np.float64, np.float32)


def _check_not_ragged(X):
    """A clear error for a list of sequences of different lengths."""
    if not isinstance(X, (list, tuple)) or len(X) < 2:
        return
    lengths = {len(s) for s in X if hasattr(s, "__len__") and not isinstance(s, str)}
    if len(lengths) > 1:
        raise ValueError(
            "X holds sequences of different lengths "
            f"({', '.join(map(str, sorted(lengths)[:5]))}); pass sequences of equal "
            "length as an array of shape (n_samples, n_timesteps[, n_features])."
        )


def validate_sequences(estimator, X, *, reset, dtype=FLOAT_DTYPES):
    """Validate X and return it as a 3D float array.

    Parameters
    ----------
    estimator : estimator instance
        Sets ``n_features_in_`` (and ``feature_names_in_`` for 2D DataFrames) when
        ``reset`` is true, and checks X against them otherwise.
    X : array-like of shape (n_samples, n_timesteps, n_features) or \
            (n_samples, n_timesteps)
    reset : bool
        True in ``fit`` and the first ``partial_fit``.
    dtype : dtype or tuple of dtypes
        Passed to :func:`sklearn.utils.check_array`: float32 stays float32, anything
        else becomes float64 by default.

    Returns
    -------
    X : ndarray of shape (n_samples, n_timesteps, n_features)
        May share memory with the user's array; it is never written to.
    """
    name = type(estimator).__name__
    _check_not_ragged(X)
    try:
        X_arr = check_array(
            X,
            dtype=dtype,
            allow_nd=True,
            ensure_min_samples=1,
            ensure_min_features=1,
            input_name="X",
            estimator=estimator,
        )
    except ValueError as exc:
        if "inhomogeneous" in str(exc) or "with a sequence" in str(exc):
            raise ValueError(
                "X holds sequences or time steps of different sizes; pass sequences "
                "of equal length, with the same number of features at every step, "
                "as an array of shape (n_samples, n_timesteps[, n_features])."
            ) from exc
        raise
    if X_arr.ndim > 3:
        raise ValueError(
            f"X must be 2D (n_samples, n_timesteps) or 3D (n_samples, n_timesteps, "
            f"n_features); got an array of shape {X_arr.shape}."
        )
    if not reset:
        fitted_ndim = getattr(estimator, "_input_ndim", X_arr.ndim)
        if X_arr.ndim != fitted_ndim:
            fitted = (
                f"3D input with {estimator.n_features_in_} feature(s) per time step"
                if fitted_ndim == 3
                else f"2D input with {estimator.n_features_in_} time steps"
            )
            raise ValueError(
                f"X is {X_arr.ndim}D but this {name} was fitted on {fitted}; pass X "
                "in the same form as in fit."
            )
    if reset:
        estimator._input_ndim = X_arr.ndim
    if X_arr.ndim == 2:
        # The scikit-learn checks of the number of columns and feature names.
        validate_data(estimator, X, reset=reset, skip_check_array=True)
        return X_arr[:, :, np.newaxis]

    n_samples, n_timesteps, n_features = X_arr.shape
    if n_timesteps < 1 or n_features < 1:
        raise ValueError(
            f"X has {n_timesteps} time step(s) and {n_features} feature(s) per step "
            f"(shape={X_arr.shape}); a minimum of 1 of each is required."
        )
    if reset:
        estimator.n_features_in_ = n_features
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {n_features} features per time step, but {name} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    return X_arr
