"""Output activations and the losses that go with them.

Each loss takes the raw network output ``z`` (before the output activation) rather
than probabilities, so that log-losses are computed from logits: no probability is
ever clipped, and no logit is large enough to overflow. Each takes ``weights`` of
shape (n_samples,) summing to one (``1 / n`` each for a plain mean) and returns
``(loss, dz)``: the weighted mean over samples of the per-sample loss, and its
gradient with respect to ``z``.
The registries are keyed by the name of the output activation (``out_activation_``),
as in scikit-learn's MLP: the activation decides the loss.
"""

import numpy as np


def identity(z):
    """Identity activation: returns ``z`` itself."""
    return z


def logistic(z):
    """Logistic sigmoid, computed via tanh so it cannot overflow."""
    out = np.multiply(z, 0.5)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def softmax(z):
    """Softmax over the last axis, shifted by the row maximum for stability."""
    out = z - z.max(axis=1, keepdims=True)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


OUT_ACTIVATIONS = {"identity": identity, "logistic": logistic, "softmax": softmax}


def squared_error(y, z, weights):
    """Weighted mean over samples of ``0.5 * ||y - z||^2``."""
    diff = z - y  # (n, n_outputs)
    loss = 0.5 * float(weights @ np.einsum("ij,ij->i", diff, diff))
    diff *= weights[:, np.newaxis]
    return loss, diff


def binary_log_loss(y, z, weights):
    """Weighted mean over samples of the summed logistic log-losses of each output.

    ``-y log p - (1 - y) log(1 - p)`` with ``p = sigmoid(z)`` equals
    ``log(1 + exp(z)) - y z``, which ``np.logaddexp`` computes without overflow.
    """
    loss = float(weights @ (np.logaddexp(0.0, z) - y * z).sum(axis=1))
    dz = logistic(z)
    dz -= y
    dz *= weights[:, np.newaxis]
    return loss, dz


def log_loss(y, z, weights):
    """Weighted mean over samples of the cross-entropy of a softmax output.

    ``-sum_k y_k log softmax(z)_k = logsumexp(z) - sum_k y_k z_k`` for rows of ``y``
    summing to one.
    """
    z_max = z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z - z_max).sum(axis=1)) + z_max[:, 0]  # (n,)
    loss = float(weights @ (log_norm - np.einsum("ij,ij->i", y, z)))
    dz = softmax(z)
    dz -= y
    dz *= weights[:, np.newaxis]
    return loss, dz


LOSS_FUNCTIONS = {
    "identity": squared_error,
    "logistic": binary_log_loss,
    "softmax": log_loss,
}
