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
next. The network's raw output is a dense layer on the last layer's hidden state at
each sequence's last step, ``T_b = lengths[b]`` (``T`` when all are full length)::

    out_b = h_{T_b} W_out + b_out                W_out (H, n_outputs)

Steps after ``T_b`` (padding) influence nothing: their gradients are exactly zero.

Variational dropout (Gal & Ghahramani, 2016): a layer may get a mask ``m_x`` (B, F)
on its inputs and ``m_h`` (B, H) on the hidden state fed back into its recurrence,
the same for every time step of a sequence::

    z_t = (x_t * m_x) W + (h_{t-1} * m_h) U + b

Masks are given already scaled (0 or 1 / (1 - p)); drawing them is the caller's job.

Parameters travel as one flat list, ``[W_1, U_1, b_1, ..., W_L, U_L, b_L, W_out,
b_out]``; :func:`backward` returns the gradients in the same order.

How it is computed (the equations above are the contract; this is only speed):

* Inside, every per-step array is transposed, ``(H, B)`` rather than ``(B, H)``,
  and the gate blocks are reordered ``[o | f | i | g]``, so that each gate of each
  step is one contiguous block: numpy's fast path, never a strided view.
* One matrix product per step does all the work of ``z_t``: the step's column
  ``[h_{t-1}; x_t; 1]`` is multiplied by ``[U | W | b]^T``, so the input term and
  the bias need no separate pass. The columns of all steps live side by side in
  one buffer; ``h_t`` is written straight into the next step's column.
* ``sigmoid(z) = 0.5 * tanh(z / 2) + 0.5``. The sigmoid rows of ``[U | W | b]^T``
  are halved beforehand (exactly: a power of two), so one ``tanh`` activates all
  four gates of a step, and no finite input can overflow.
* The derivative factors of the gates are filled during the forward pass, while
  the values are in cache, laid out so that the backward step is six array
  operations and one matrix product; the weight gradients are one large product
  after the loop.
* Arrays come from a :class:`Workspace` that keeps them from one mini-batch to the
  next.

Nothing here knows about losses, optimizers or scikit-learn.
"""

import numpy as np

__all__ = ["Workspace", "forward", "backward", "n_lstm_layers"]


class Workspace:
    """Buffers reused from one mini-batch to the next.

    Large arrays freshly allocated for every batch are returned to the system when
    freed and fault their pages in again on the next first touch, which costs as
    much as the arithmetic on them. A workspace keeps one flat buffer per name and
    hands out views of it; a buffer is valid until the next request of its name, so
    the cache of one forward pass lives until the next forward pass.
    """

    def __init__(self):
        self._buffers = {}

    def empty(self, name, shape, dtype):
        """An uninitialised array of ``shape`` backed by the buffer ``name``."""
        size = int(np.prod(shape))
        buffer = self._buffers.get(name)
        if buffer is None or buffer.dtype != dtype or buffer.size < size:
            buffer = self._buffers[name] = np.empty(size, dtype=dtype)
        return buffer[:size].reshape(shape)

    def zeros(self, name, shape, dtype):
        out = self.empty(name, shape, dtype)
        out.fill(0)
        return out


class _NoWorkspace:
    """Fresh allocations, for callers without a workspace."""

    @staticmethod
    def empty(name, shape, dtype):
        return np.empty(shape, dtype=dtype)

    @staticmethod
    def zeros(name, shape, dtype):
        return np.zeros(shape, dtype=dtype)


def n_lstm_layers(params):
    """Number of LSTM layers in a flat parameter list."""
    return (len(params) - 2) // 3


def _to_inner(H):
    """Row indices taking the public [i|f|g|o] gate layout to the inner [o|f|i|g]."""
    return np.r_[3 * H : 4 * H, H : 2 * H, 0:H, 2 * H : 3 * H]


def _to_public(H):
    """Indices taking the inner [o|f|i|g] gate layout back to [i|f|g|o]."""
    return np.r_[2 * H : 3 * H, H : 2 * H, 3 * H : 4 * H, 0:H]


def _layer_forward(
    X_T, W, U, b, mask_x=None, mask_h=None, keep_cache=True, ws=_NoWorkspace, key=""
):
    """One LSTM layer over whole sequences, in the transposed inner layout.

    Parameters
    ----------
    X_T : ndarray of shape (T, F, B), the inputs of each step as columns.
    W, U, b : kernel (F, 4H), recurrent kernel (H, 4H), bias (4H,), public layout.
    mask_x : ndarray of shape (B, F) or None, dropout mask on the inputs.
    mask_h : ndarray of shape (B, H) or None, dropout mask on the recurrence.
    keep_cache : bool, whether to keep what :func:`_layer_backward` needs.
    ws, key : where the arrays come from (a :class:`Workspace`) and their prefix.

    Returns
    -------
    Hs : ndarray of shape (T, H, B), hidden states h_1..h_T as columns.
    cache : tuple, or None without ``keep_cache``.
    """
    T, F, B = X_T.shape
    H = U.shape[0]
    dtype = X_T.dtype
    inner = _to_inner(H)
    half = np.ones((4 * H, 1), dtype=dtype)
    half[: 3 * H] = 0.5  # sigmoid gates get z / 2, for sigmoid(z) = (1 + tanh(z/2)) / 2
    # M = [U | W | b]^T in the inner gate order, sigmoid rows halved: (4H, H+F+1).
    M = np.concatenate([U.T[inner], W.T[inner], b[inner, None]], axis=1) * half

    # HX[t] = [h_{t-1} (masked); x_t (masked); 1], the column each step multiplies.
    HX = ws.empty(key + "HX", (T + 1, H + F + 1, B), dtype)
    HX[0, :H] = 0.0  # h_0
    if mask_x is None:
        HX[:T, H : H + F] = X_T
    else:
        np.multiply(X_T, mask_x.T, out=HX[:T, H : H + F])
    HX[:, H + F] = 1.0
    if mask_h is None:
        Hs = HX[1:, :H]  # h_t is written straight into the next step's column
    else:
        Hs = ws.empty(key + "Hs", (T, H, B), dtype)
        m_h = np.ascontiguousarray(mask_h.T)  # (H, B)
    # Gates of each step (T, 4, H, B), inner order [o | f | i | g]; one step's
    # worth when nothing is kept.
    Z = ws.empty(key + "Z", (T if keep_cache else 1, 4, H, B), dtype)
    # cc[t] = [tanh(c_t) ; c_{t-1}], side by side so that one product gives two of
    # the gate factors below; c_t is written into cc[t + 1], and c_0 = 0.
    cc = ws.empty(key + "cc", (T + 1 if keep_cache else 2, 2, H, B), dtype)
    cc[0, 1] = 0.0
    if keep_cache:
        # Factors of the gate gradients: K[t] = [A | 4 K_o | 4 K_f | 4 K_i | K_g],
        # see _layer_backward. (T, 5, H, B).
        K = ws.empty(key + "K", (T, 5, H, B), dtype)
    fc = ws.empty(key + "fc", (H, B), dtype)  # f * c_{t-1}
    Z2 = Z.reshape(len(Z), 4 * H, B)  # the same memory, as the product's output
    for t in range(T):
        z = Z[t] if keep_cache else Z[0]  # (4, H, B)
        np.matmul(M, HX[t], out=Z2[t] if keep_cache else Z2[0])  # z_t, halved rows
        np.tanh(z, out=z)
        if keep_cache:
            k = K[t]
            # 1 - tanh^2 of every gate: d tanh for g, and 4 x d sigmoid for o, f, i
            # since sigmoid(z)(1 - sigmoid(z)) = (1 - tanh(z/2)^2) / 4.
            np.square(z, out=k[1:])
            np.subtract(1.0, k[1:], out=k[1:])
        sig = z[:3]
        sig *= 0.5
        sig += 0.5  # o, f, i = sigmoid; g = tanh
        o, f, i, g = z
        now, nxt = (cc[t], cc[t + 1]) if keep_cache else (cc[t % 2], cc[(t + 1) % 2])
        c = nxt[1]
        np.multiply(i, g, out=c)
        np.multiply(f, now[1], out=fc)
        c += fc  # c_t = f * c_{t-1} + i * g
        tc = now[0]
        np.tanh(c, out=tc)
        h = Hs[t]
        np.multiply(o, tc, out=h)  # h_t = o * tanh(c_t)
        if mask_h is not None:
            np.multiply(h, m_h, out=HX[t + 1, :H])
        if keep_cache:
            k[1:3] *= now  # o: x tanh(c_t);  f: x c_{t-1}
            k[3:5] *= z[3:1:-1]  # i: x g;  g: x i
            np.multiply(h, tc, out=k[0])
            np.subtract(o, k[0], out=k[0])  # A = o (1 - tanh(c_t)^2)
    if not keep_cache:
        return Hs, None
    return Hs, (HX, W, U, Z, K, mask_x, mask_h)


def _layer_backward(dHs, cache, need_dX=True, ws=_NoWorkspace, key=""):
    """Backpropagation through time for one layer, in the transposed layout.

    With the factors ``K`` of the forward pass, one step is::

        dc_t  = dh_t * A + f_{t+1} * dc_{t+1},     A   = o (1 - tanh(c_t)^2)
        dz_o  = dh_t * K_o,                        K_o = tanh(c_t) o (1 - o)
        dz_f  = dc_t * K_f,                        K_f = c_{t-1} f (1 - f)
        dz_i  = dc_t * K_i,                        K_i = g i (1 - i)
        dz_g  = dc_t * K_g,                        K_g = i (1 - g^2)
        dh_{t-1} += (U dz_t) * m_h,  dx_t = W dz_t

    The sigmoid gates' factors are kept 4 times too large (see _layer_forward);
    the matrices that multiply dz are scaled by 1/4 on those gates instead, which
    costs nothing per step.

    Parameters
    ----------
    dHs : ndarray of shape (T, H, B)
        Gradient of the loss with respect to each h_t from above (the next layer or
        the output layer), excluding the recurrence. It is overwritten.
    cache : tuple from :func:`_layer_forward`.
    need_dX : bool, whether to compute the gradient with respect to the inputs.
    ws, key : where the arrays come from (a :class:`Workspace`) and their prefix.

    Returns
    -------
    dX_T : ndarray of shape (T, F, B) or None.
    dW, dU, db : gradients of the kernel, recurrent kernel and bias (public layout).
    """
    HX, W, U, Z, K, mask_x, mask_h = cache
    T, H, B = dHs.shape
    F = W.shape[0]
    dtype = dHs.dtype
    inner = _to_inner(H)
    quarter = np.ones(4 * H, dtype=dtype)
    quarter[: 3 * H] = 0.25  # undoes the 4x of the sigmoid gates' factors
    # U in the inner order, times 1/4 on the sigmoid gates: (H, 4H).
    U_back = U[:, inner] * quarter
    m_h = None if mask_h is None else np.ascontiguousarray(mask_h.T)  # (H, B)
    f = Z[:, 1]  # (T, H, B)

    # dZ[t] = [dh_t * A | dz_o | dz_f | dz_i | dz_g]: the first slot is scratch, so
    # one product by dh_t fills two slots and one product by dc_t fills three.
    dZ = ws.empty(key + "dZ", (T, 5, H, B), dtype)
    dh_prev = ws.empty(key + "dh_prev", (H, B), dtype)
    dc = ws.zeros(key + "dc", (H, B), dtype)  # dL/dc_t, carried from step t+1 to t
    dZ_gates = dZ[:, 1:].reshape(T, 4 * H, B)  # a view: dz_t of every step, (4H, B)
    for t in range(T - 1, -1, -1):
        dz, k = dZ[t], K[t]
        np.multiply(k[:2], dHs[t], out=dz[:2])
        dc += dz[0]
        np.multiply(k[2:], dc, out=dz[2:])
        if t > 0:
            np.matmul(U_back, dZ_gates[t], out=dh_prev)
            if m_h is not None:
                dh_prev *= m_h
            dHs[t - 1] += dh_prev
            dc *= f[t]  # the part of dc_{t-1} that flows through c_t
    # [dU; dW; db]^T = sum over steps and samples of dz [h_{t-1}; x_t; 1]^T.
    dM = np.tensordot(dZ_gates, HX[:T], axes=([0, 2], [0, 2]))
    dM *= quarter[:, None]
    public = _to_public(H)
    dU = dM[public, :H].T  # (H, 4H)
    dW = dM[public, H : H + F].T  # (F, 4H)
    db = dM[public, H + F]  # (4H,)
    dX_T = None
    if need_dX:
        W_back = W[:, inner] * quarter  # (F, 4H)
        dX_T = ws.empty(key + "dX", (T, F, B), dtype)
        np.matmul(W_back, dZ_gates, out=dX_T)
        if mask_x is not None:
            dX_T *= mask_x.T
    return dX_T, np.ascontiguousarray(dW), np.ascontiguousarray(dU), db


def forward(X, params, lengths=None, masks=None, keep_cache=True, workspace=None):
    """Network output for a batch of sequences.

    Parameters
    ----------
    X : ndarray of shape (B, T, F)
        Batch-major sequences, in the dtype of the computation; padding after a
        sequence's last step must be finite (zeros).
    params : list of ndarray
        ``[W_1, U_1, b_1, ..., W_L, U_L, b_L, W_out, b_out]``.
    lengths : ndarray of shape (B,) or None
        Number of valid steps of each sequence; None when all have T.
    masks : list of (mask_x, mask_h) per layer, or None
        Scaled dropout masks (see the module docstring); None or a None entry for
        no dropout.
    keep_cache : bool, default=True
        False for prediction: nothing is kept for backpropagation.
    workspace : Workspace or None
        Reuse its buffers instead of allocating; the cache then stays valid until
        the next call with the same workspace.

    Returns
    -------
    out : ndarray of shape (B, n_outputs)
        Raw output (before any output activation).
    cache : tuple or None
        Everything :func:`backward` needs.
    """
    ws = _NoWorkspace if workspace is None else workspace
    inp = X.transpose(1, 2, 0)  # (T, F, B), copied into the first layer's columns
    caches = []
    for layer in range(n_lstm_layers(params)):
        W, U, b = params[3 * layer : 3 * layer + 3]
        mask_x, mask_h = masks[layer] if masks is not None else (None, None)
        inp, cache = _layer_forward(
            inp, W, U, b, mask_x, mask_h, keep_cache, ws, key=f"{layer}."
        )
        caches.append(cache)
    B = X.shape[0]
    last = inp[-1].T if lengths is None else inp[lengths - 1, :, np.arange(B)]
    W_out, b_out = params[-2], params[-1]
    out = last @ W_out  # (B, n_outputs)
    out += b_out
    if not keep_cache:
        return out, None
    return out, (caches, last, W_out, lengths, ws)


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
    caches, last, W_out, lengths, ws = cache
    dW_out = last.T @ dout  # (H, n_outputs)
    db_out = dout.sum(axis=0)  # (n_outputs,)
    T = caches[-1][0].shape[0] - 1
    B, H = last.shape
    dHs = ws.zeros("dHs", (T, H, B), last.dtype)  # dL/dh_t from above, as columns
    if lengths is None:
        dHs[-1] = (dout @ W_out.T).T  # only h_T feeds the output layer
    else:
        dHs[lengths - 1, :, np.arange(B)] = dout @ W_out.T
    grads = []
    for layer in range(len(caches) - 1, -1, -1):
        first_and_unneeded = layer == 0 and not need_dX
        dHs, dW, dU, db = _layer_backward(
            dHs, caches[layer], not first_and_unneeded, ws, key=f"{layer}."
        )
        grads[:0] = [dW, dU, db]
    grads += [dW_out, db_out]
    if need_dX:
        return grads, dHs.transpose(2, 0, 1).copy()  # (B, T, F), not a buffer
    return grads
