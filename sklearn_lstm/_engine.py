"""Pure NumPy LSTM: forward pass and backpropagation through time.

Notation (one layer, one mini-batch; PyTorch and Keras use the same equations)::

    B  batch size          T  time steps          F  inputs per step
    H  hidden units        x_t (B, F)             h_t, c_t (B, H), h_0 = c_0 = 0

    z_t = x_t W + h_{t-1} U + b                  W (F, 4H), U (H, 4H), b (4H,)
    [z_i | z_f | z_g | z_o] = z_t                gates stacked along the last axis
    i_t = sigmoid(z_i)    input gate
    f_t = sigmoid(z_f)    forget gate
    g_t = tanh(z_g)       cell candidate
    o_t = sigmoid(z_o)    output gate
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

Layers are stacked: the hidden states h_1..h_T of one layer are the inputs of the
next. The network's raw output is a dense layer on the last layer's h_T::

    out = h_T W_out + b_out                      W_out (H, n_outputs)

Parameters travel as one flat list, ``[W_1, U_1, b_1, ..., W_L, U_L, b_L, W_out,
b_out]``; :func:`backward` returns the gradients in the same order. Internally the
sequences are time-major, ``(T, B, ...)``, so that every per-step slice is contiguous.
The sigmoid is computed as ``0.5 * tanh(0.5 * z) + 0.5``, which cannot overflow for any
finite ``z``; every gate derivative is computed from the forward outputs.

Nothing here knows about losses, optimizers or scikit-learn.
"""

import numpy as np

__all__ = ["forward", "backward", "n_lstm_layers"]


def n_lstm_layers(params):
    """Number of LSTM layers in a flat parameter list."""
    return (len(params) - 2) // 3


def _sigmoid(x, out):
    """Stable logistic function via tanh: no overflow for any finite input."""
    np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _layer_forward(X, W, U, b):
    """One LSTM layer over whole sequences.

    Parameters
    ----------
    X : ndarray of shape (T, B, F), time-major inputs.
    W, U, b : kernel (F, 4H), recurrent kernel (H, 4H), bias (4H,).

    Returns
    -------
    Hs : ndarray of shape (T, B, H), hidden states h_1..h_T.
    cache : tuple needed by :func:`_layer_backward`.
    """
    T, B, F = X.shape
    H = U.shape[0]
    dtype = X.dtype
    # Gates of every step, first as pre-activations z_t, then activated in place.
    gates = np.empty((T, B, 4 * H), dtype=dtype)  # (T, B, 4H)
    np.matmul(X.reshape(T * B, F), W, out=gates.reshape(T * B, 4 * H))
    gates += b
    Cs = np.empty((T, B, H), dtype=dtype)  # c_1..c_T
    tanhCs = np.empty((T, B, H), dtype=dtype)  # tanh(c_1)..tanh(c_T)
    Hs = np.empty((T, B, H), dtype=dtype)  # h_1..h_T
    rec = np.empty((B, 4 * H), dtype=dtype)  # h_{t-1} U
    tmp = np.empty((B, H), dtype=dtype)
    for t in range(T):
        z = gates[t]  # (B, 4H)
        if t > 0:
            np.matmul(Hs[t - 1], U, out=rec)
            z += rec
        # Layout [i | f | g | o]: i and f are adjacent, so one call covers both.
        _sigmoid(z[:, : 2 * H], out=z[:, : 2 * H])
        np.tanh(z[:, 2 * H : 3 * H], out=z[:, 2 * H : 3 * H])
        _sigmoid(z[:, 3 * H :], out=z[:, 3 * H :])
        i, f, g, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
        c = Cs[t]
        np.multiply(i, g, out=c)  # c_t = i * g (+ f * c_{t-1} below)
        if t > 0:
            np.multiply(f, Cs[t - 1], out=tmp)
            c += tmp
        np.tanh(c, out=tanhCs[t])
        np.multiply(o, tanhCs[t], out=Hs[t])  # h_t = o * tanh(c_t)
    return Hs, (X, W, U, gates, Cs, tanhCs, Hs)


def _layer_backward(dHs, cache, need_dX=True):
    """Backpropagation through time for one layer.

    Parameters
    ----------
    dHs : ndarray of shape (T, B, H), gradient of the loss with respect to each h_t
        from above (the next layer or the output layer), excluding the recurrence.
        It is overwritten.
    cache : tuple from :func:`_layer_forward`.
    need_dX : bool, whether to compute the gradient with respect to the inputs.

    Returns
    -------
    dX : ndarray of shape (T, B, F) or None.
    dW, dU, db : gradients of the kernel, recurrent kernel and bias.
    """
    X, W, U, gates, Cs, tanhCs, Hs = cache
    T, B, F = X.shape
    H = U.shape[0]
    dtype = X.dtype
    dZ = np.empty((T, B, 4 * H), dtype=dtype)  # dL/dz_t, gate pre-activations
    dc = np.zeros((B, H), dtype=dtype)  # dL/dc_t, carried from step t+1 to t
    tmp = np.empty((B, H), dtype=dtype)
    U_T = U.T
    for t in range(T - 1, -1, -1):
        z = gates[t]
        i, f, g, o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]
        dz = dZ[t]
        di, df, dg, do = (
            dz[:, :H],
            dz[:, H : 2 * H],
            dz[:, 2 * H : 3 * H],
            dz[:, 3 * H :],
        )
        dh = dHs[t]  # (B, H), already includes the recurrence from step t+1
        tc = tanhCs[t]
        # dc_t += dh_t * o_t * (1 - tanh(c_t)^2)
        np.multiply(tc, tc, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc += tmp
        # do = dh * tanh(c_t) * o (1 - o)
        np.multiply(dh, tc, out=do)
        np.subtract(1.0, o, out=tmp)
        tmp *= o
        do *= tmp
        # di = dc * g * i (1 - i)
        np.subtract(1.0, i, out=tmp)
        tmp *= i
        np.multiply(dc, g, out=di)
        di *= tmp
        # dg = dc * i * (1 - g^2)
        np.multiply(g, g, out=tmp)
        np.subtract(1.0, tmp, out=tmp)
        tmp *= i
        np.multiply(dc, tmp, out=dg)
        if t > 0:
            # df = dc * c_{t-1} * f (1 - f)
            np.subtract(1.0, f, out=tmp)
            tmp *= f
            np.multiply(dc, Cs[t - 1], out=df)
            df *= tmp
            dc *= f  # dL/dc_{t-1} from this step
            # dh_{t-1} += dz_t U^T
            dHs[t - 1] += dz @ U_T
        else:
            df.fill(0.0)  # c_0 = 0: the forget gate of step 1 has no effect
    dZ2 = dZ.reshape(T * B, 4 * H)
    dW = X.reshape(T * B, F).T @ dZ2  # (F, 4H)
    dU = Hs[:-1].reshape((T - 1) * B, H).T @ dZ[1:].reshape((T - 1) * B, 4 * H)
    db = dZ2.sum(axis=0)  # (4H,)
    dX = (dZ2 @ W.T).reshape(T, B, F) if need_dX else None
    return dX, dW, dU, db


def forward(X, params):
    """Network output for a batch of sequences.

    Parameters
    ----------
    X : ndarray of shape (B, T, F)
        Batch-major sequences, in the dtype of the computation.
    params : list of ndarray
        ``[W_1, U_1, b_1, ..., W_L, U_L, b_L, W_out, b_out]``.

    Returns
    -------
    out : ndarray of shape (B, n_outputs)
        Raw output (before any output activation).
    cache : tuple
        Everything :func:`backward` needs.
    """
    inp = np.ascontiguousarray(X.transpose(1, 0, 2))  # (T, B, F)
    caches = []
    for layer in range(n_lstm_layers(params)):
        W, U, b = params[3 * layer : 3 * layer + 3]
        inp, cache = _layer_forward(inp, W, U, b)  # (T, B, H)
        caches.append(cache)
    h_last = inp[-1]  # (B, H)
    W_out, b_out = params[-2], params[-1]
    out = h_last @ W_out  # (B, n_outputs)
    out += b_out
    return out, (caches, h_last, W_out)


def predict_raw(X, params):
    """Raw output without keeping the caches of backpropagation."""
    return forward(X, params)[0]


def backward(dout, cache, need_dX=False):
    """Gradients of a loss with respect to every parameter (and the input).

    Parameters
    ----------
    dout : ndarray of shape (B, n_outputs)
        Gradient of the loss with respect to the raw output of :func:`forward`.
    cache : tuple from :func:`forward`.
    need_dX : bool, default=False
        Also return the gradient with respect to ``X``.

    Returns
    -------
    grads : list of ndarray
        Same order and shapes as ``params``.
    dX : ndarray of shape (B, T, F)
        Only when ``need_dX`` is true.
    """
    caches, h_last, W_out = cache
    dW_out = h_last.T @ dout  # (H, n_outputs)
    db_out = dout.sum(axis=0)  # (n_outputs,)
    T, B, H = caches[-1][-1].shape
    dHs = np.zeros((T, B, H), dtype=h_last.dtype)  # dL/dh_t from above
    dHs[-1] = dout @ W_out.T  # only h_T feeds the output layer
    grads = []
    for layer in range(len(caches) - 1, -1, -1):
        last = layer == 0 and not need_dX
        dHs, dW, dU, db = _layer_backward(dHs, caches[layer], need_dX=not last)
        grads[:0] = [dW, dU, db]
    grads += [dW_out, db_out]
    if need_dX:
        return grads, np.ascontiguousarray(dHs.transpose(1, 0, 2))
    return grads
