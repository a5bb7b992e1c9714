"""Small learnable sequence problems shared by the estimator tests."""

import numpy as np


def sum_regression(n=80, n_timesteps=6, n_features=1, seed=0):
    """y = sum over the time steps of the first feature: needs the whole sequence."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(size=(n, n_timesteps, n_features))
    return X, X[:, :, 0].sum(axis=1)


def first_step_classification(n=80, n_timesteps=6, n_features=2, seed=0):
    """Class = sign of the first step's first feature: needs memory of the start."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, n_timesteps, n_features))
    return X, (X[:, 0, 0] > 0).astype(int)
