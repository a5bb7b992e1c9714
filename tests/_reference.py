"""The one plain reference LSTM of the tests, written independently of the library.

Nothing here comes from ``sklearn_lstm``: it is the documented equations, one time
step at a time, for the tests to compare the engine and the estimators with.

Notation
--------
B sequences, T time steps, F input features of a layer, H its hidden units, L LSTM
layers. Gates are in the public order ``[i | f | g | o]`` (input, forget, cell
candidate, output), each a block of H columns.

Parameters of one layer: kernel ``W`` (F, 4H), recurrent kernel ``U`` (H, 4H),
bias ``b`` (4H,). With ``h_0 = c_0 = 0``, at every step t:

    z_t = (x_t * m_x) W + (h_{t-1} * m_h) U + b            (B, 4H)
    i = sigmoid(z_t[i]),  f = sigmoid(z_t[f]),  g = tanh(z_t[g]),  o = sigmoid(z_t[o])
    c_t = f * c_{t-1} + i * g                              (B, H)
    h_t = o * tanh(c_t)                                    (B, H)

``m_x`` (B, F) and ``m_h`` (B, H) are variational dropout masks, already scaled:
one per sequence, the same at every step; no mask means a mask of ones. The hidden
states h_1..h_T of a layer are the inputs x_1..x_T of the next. The output reads
the top layer at each sequence's last valid step T_b = lengths[b]:

    output = h_{T_b} W_out + b_out                         (B, n_outputs)

The recurrence only runs forward, so steps after T_b (padding) never reach it.
"""

import numpy as np


def sigmoid(z):
    """The logistic function, 1 / (1 + exp(-z))."""
    return 1.0 / (1.0 + np.exp(-z))


def lstm_layer(X, W, U, b, mask_x=None, mask_h=None):
    """Hidden states (B, T, H) of one LSTM layer over X (B, T, F)."""
    B, T, _ = X.shape
    H = U.shape[0]
    h = np.zeros((B, H))  # h_0 (B, H)
    c = np.zeros((B, H))  # c_0 (B, H)
    hs = []
    for t in range(T):
        x_t = X[:, t] if mask_x is None else X[:, t] * mask_x  # (B, F)
        h_in = h if mask_h is None else h * mask_h  # (B, H)
        z = x_t @ W + h_in @ U + b  # (B, 4H)
        i = sigmoid(z[:, :H])  # (B, H)
        f = sigmoid(z[:, H : 2 * H])  # (B, H)
        g = np.tanh(z[:, 2 * H : 3 * H])  # (B, H)
        o = sigmoid(z[:, 3 * H :])  # (B, H)
        c = f * c + i * g  # (B, H)
        h = o * np.tanh(c)  # (B, H)
        hs.append(h)
    return np.stack(hs, axis=1)  # (B, T, H)


def reference_forward(X, params, lengths=None, masks=None):
    """Output (B, n_outputs) of stacked LSTM layers and the dense output layer.

    X        (B, T, F), or (B, T) for one feature per step (as the estimators read it)
    params   [W_1, U_1, b_1, ..., W_L, U_L, b_L, W_out, b_out]
    lengths  (B,) valid steps of each sequence, or None for all T
    masks    per layer (mask_x (B, F) or None, mask_h (B, H) or None), or None
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2:
        X = X[:, :, None]  # (B, T, 1)
    B, T, _ = X.shape
    n_layers = (len(params) - 2) // 3
    if masks is None:
        masks = [(None, None)] * n_layers
    assert len(params) == 3 * n_layers + 2 and len(masks) == n_layers

    seq = X  # (B, T, F)
    for layer in range(n_layers):
        W, U, b = params[3 * layer : 3 * layer + 3]
        mask_x, mask_h = masks[layer]
        seq = lstm_layer(seq, W, U, b, mask_x, mask_h)  # (B, T, H)

    T_b = np.full(B, T) if lengths is None else np.asarray(lengths)  # (B,)
    assert T_b.shape == (B,) and np.all((T_b >= 1) & (T_b <= T))
    h_last = seq[np.arange(B), T_b - 1]  # (B, H)
    W_out, b_out = params[-2:]
    return h_last @ W_out + b_out  # (B, n_outputs)
