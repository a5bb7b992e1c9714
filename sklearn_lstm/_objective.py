"""What every backend computes on a share: the loss and gradients of part of a
mini-batch, or the raw outputs of part of a prediction.

These functions join the engine (``_engine``), the losses (``_losses``) and the
network's description (``_network``); they run in this process or in a helper
process (``_processes``), which loads this module without scikit-learn.
"""

from typing import NamedTuple

import numpy as np

from ._engine import backward, forward, mask_rows
from ._losses import LOSS_FUNCTIONS

__all__ = ["Sequences", "share_loss_grad", "share_outputs"]


class Sequences(NamedTuple):
    """Validated sequences: zero-padded values and the valid length of each.

    The values are floats, or for a network with an embedding integer token ids,
    one per step (see ``_validation.validate_token_ids``).
    """

    values: np.ndarray  # (n_samples, n_timesteps, n_features) or ids (n, T); pad 0
    lengths: np.ndarray | None  # (n_samples,), None when all are n_timesteps
    # For token ids: the dtype a first fit computes in (float32 when the user
    # passed the ids as float32, as float32 numbers train in float32).
    ids_dtype: np.dtype = np.dtype(np.float64)

    def __len__(self):
        return self.values.shape[0]

    def take(self, indices):
        """The sequences at ``indices`` (or a slice), cut to their longest member."""
        if self.lengths is None:
            return Sequences(self.values[indices], None, self.ids_dtype)
        lengths = self.lengths[indices]
        longest = int(lengths.max())
        values = self.values[indices, :longest]
        lengths = None if (lengths == longest).all() else lengths
        return Sequences(values, lengths, self.ids_dtype)

    @property
    def dtype(self):
        """The dtype of the computation: the values' own, ``ids_dtype`` for token
        ids."""
        if self.values.dtype.kind == "f":
            return self.values.dtype
        return np.dtype(self.ids_dtype)

    def astype(self, dtype):
        """Float values cast to ``dtype``; token ids stay integers, computed in
        ``dtype``."""
        if self.values.dtype.kind != "f":
            return Sequences(self.values, self.lengths, np.dtype(dtype))
        return Sequences(
            self.values.astype(dtype, copy=False), self.lengths, self.ids_dtype
        )


class Batch(NamedTuple):
    """One mini-batch (or a share of it) as the loss needs it.

    ``y`` holds the targets, one row per sample (n, n_outputs), or for a network
    with one output per step one per step (n, n_timesteps, n_outputs), cut like
    ``X``. ``weights`` (n,), or (n, n_timesteps) per step with zeros at padding
    steps, are the weights divided by their sum over the whole mini-batch, so that
    the losses and gradients of its shares add up to its own. ``masks`` are the
    dropout masks of each LSTM layer (see ``_engine``), or None.
    """

    X: Sequences
    y: np.ndarray
    weights: np.ndarray
    masks: list | None

    def __len__(self):
        return len(self.y)

    def take(self, indices):
        X = self.X.take(indices)
        y, weights = self.y[indices], self.weights[indices]
        if y.ndim == 3:  # one target per step: cut to the steps X keeps
            n_steps = X.values.shape[1]
            y, weights = y[:, :n_steps], weights[:, :n_steps]
        return Batch(X, y, weights, mask_rows(self.masks, indices))


def share_loss_grad(network, params, batch, loss, workspace=None):
    """Loss and gradients (no penalty) of :class:`Batch` ``batch``.

    ``loss`` names the output activation whose loss applies (``_losses``).
    Returns the loss and the gradients in the order of ``params``.
    """
    X = batch.X
    out, cache = forward(
        X.values, params, X.lengths, batch.masks, workspace=workspace, network=network
    )
    if out.ndim == 3:  # one output per step: each step is a row of the loss
        rows = (-1, out.shape[2])
        loss_value, dout = LOSS_FUNCTIONS[loss](
            batch.y.reshape(rows), out.reshape(rows), batch.weights.reshape(-1)
        )
        dout = dout.reshape(out.shape)
    else:
        loss_value, dout = LOSS_FUNCTIONS[loss](batch.y, out, batch.weights)
    return float(loss_value), backward(dout, cache)


def share_outputs(network, params, X, workspace=None):
    """Raw network outputs of the :class:`Sequences` ``X``."""
    out, _ = forward(
        X.values, params, X.lengths, keep_cache=False, workspace=workspace,
        network=network,
    )
    return out
