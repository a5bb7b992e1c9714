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

Embedding: a network may start with a table ``E_tab`` (n_tokens, E). Its input is
then one integer token id per step, ``X`` (B, T), and the first layer reads
``x_t = E_tab[X[:, t]]`` (B, E); id 0 is padding, as in Keras. The table's gradient
is the first layer's ``dx_t`` summed over the (step, sample) pairs of each id::

    dE_tab[n] = sum over (b, t) with X[b, t] = n of dL/dx_t[b]

Rows of ids absent from the batch get exactly zero, and so does row 0 when id 0
occurs only at padding steps (their ``dx_t`` is exactly zero).

Parameters travel as one flat list in the order of a :class:`~._network.Network`
description (``[W_1, U_1, b_1, ..., W_L, U_L, b_L, W_out, b_out]`` for a stack,
``E_tab`` first with an embedding);
:func:`backward` returns the gradients in the same order.

How it is computed (the equations above are the contract; this is only speed):

* Inside, every per-step array is transposed, ``(H, B)`` rather than ``(B, H)``,
  and the gate blocks are reordered (``[g | f | i | o]`` forward, ``[o | g | f |
  i]`` backward), so that each gate of each step is one contiguous block, and the
  blocks that one operation needs are neighbours: numpy's fast path, never a
  strided view, and as few calls per step as the equations allow (nine forward,
  fourteen in float64, and five backward, including the matrix product).
* One matrix product per step does all the work of ``z_t``: the step's column
  ``[h_{t-1}; x_t; 1]`` is multiplied by ``[U | W | b]^T``, so the input term and
  the bias need no separate pass. ``h_t`` is written straight into the next
  step's column.
* The gates are activated in place, the rows of ``[U | W | b]^T`` scaled
  beforehand (exactly: by powers of two) so that no step has to, and ``exp``
  used instead of ``tanh`` where it is the cheaper call: on an AVX2 processor,
  NumPy 2.4's ``tanh`` costs about twice its ``exp`` (float32: 4.2 ns a value
  against 2.4; float64: 20 against 10). An ``exp`` that overflows gives the
  limit (sigmoid 0, tanh -1).

  - float32: ``sigmoid(z) = 1 / (1 + exp(-z))``, the sigmoid rows negated, so
    one ``exp`` activates the f, i and o gates; ``tanh`` activates g and gives
    ``tanh(c_t)``. Against one ``tanh`` for all four gates (``sigmoid(z) = 0.5
    * tanh(z / 2) + 0.5``), this takes 4 to 11% off a half batch on that
    processor (``benchmarks/ab_engine.py --share 2``).
  - float64: also ``tanh(z) = 2 sigmoid(2 z) - 1``, the g rows multiplied by
    -2, so one ``exp`` activates all four gates, and ``tanh(c_t)`` is computed
    the same way: this takes a quarter to a third off a float64 batch
    (``benchmarks/ab_engine.py --dtype float64``). Each value is within a few
    units of 2**-53 of the exact one, a relative error that grows as ``tanh``
    nears zero (float32's own rounding is 2**-24).
* The steps run in chunks of a few steps whose work arrays stay in cache. Whatever
  does not feed the recurrence is done once per chunk on all its steps together:
  the gates' derivative factors after a forward chunk, and after a backward chunk
  the copy of its gate gradients into the operand of the weight gradients, which
  are one large product per span of chunks.
* Where NumPy's BLAS multiplies small products without packing them (OpenBLAS on
  AVX-512 processors, up to 100**3 multiply-adds), a step's larger products are
  cut into the fewest blocks of rows that fit, which take 0.62 to 0.87 of the
  whole product's time at the sizes of a mini-batch or its share
  (``benchmarks/bench_products.py``).
* Arrays come from a :class:`Workspace` that keeps them from one mini-batch to the
  next.
* Prediction (no cache) runs a wide batch in blocks of a few hundred samples, each
  cut to its longest sequence, so that the arrays of a step stay in cache too.

Nothing here knows about losses, optimizers or scikit-learn.
"""

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from ._network import Network

__all__ = ["Workspace", "blas_core", "forward", "backward", "mask_rows"]


class Workspace:
    """Buffers reused from one mini-batch to the next.

    Large arrays freshly allocated for every batch are returned to the system when
    freed and fault their pages in again on the next first touch, which costs as
    much as the arithmetic on them. A workspace keeps one flat buffer per name and
    hands out views of it; a buffer is valid until the next request of its name, so
    the cache of one forward pass lives until the next forward pass.

    A request with the shape of the previous one returns the same view object, so
    that the lists of per-step views built on it can be kept too (:meth:`memo`).
    """

    def __init__(self):
        self._views = {}
        self._memos = {}

    def empty(self, name, shape, dtype):
        """An uninitialised array of ``shape`` backed by the buffer ``name``."""
        shape = tuple(shape)
        view = self._views.get(name)
        if view is not None and view.shape == shape and view.dtype == dtype:
            return view
        size = math.prod(shape)
        buffer = None if view is None else view.base
        if buffer is None or buffer.dtype != dtype or buffer.size < size:
            buffer = np.empty(size, dtype=dtype)
        view = self._views[name] = buffer[:size].reshape(shape)
        return view

    def zeros(self, name, shape, dtype):
        out = self.empty(name, shape, dtype)
        out.fill(0)
        return out

    def at_least(self, name, n, shape, dtype):
        """An array of at least ``n`` rows of ``shape``: the same object as long as
        it has enough, so that views of its rows are kept for batches of any
        length."""
        view = self._views.get(name)
        if view is None or view.shape[1:] != shape or view.dtype != dtype:
            return self.empty(name, (n, *shape), dtype)
        return view if len(view) >= n else self.empty(name, (n, *shape), dtype)

    def memo(self, name, arrays, make):
        """``make()``, or its value from the last call if ``arrays`` are the same
        objects: for lists of views of workspace arrays, which cost tens of
        microseconds a batch to build."""
        kept = self._memos.get(name)
        if kept is None or not all(
            a is b for a, b in zip(kept[0], arrays, strict=True)
        ):
            kept = self._memos[name] = (arrays, make())
        return kept[1]


class _NoWorkspace:
    """Fresh allocations, for callers without a workspace."""

    @staticmethod
    def empty(name, shape, dtype):
        return np.empty(shape, dtype=dtype)

    @staticmethod
    def zeros(name, shape, dtype):
        return np.zeros(shape, dtype=dtype)

    @staticmethod
    def at_least(name, n, shape, dtype):
        return np.empty((n, *shape), dtype=dtype)

    @staticmethod
    def memo(name, arrays, make):
        return make()


def _blocks(a, H):
    """View of ``a`` (..., 4H) as (..., 4, H): one slot per gate, public [i|f|g|o]."""
    return a.reshape(a.shape[:-1] + (4, H))


@lru_cache(maxsize=32)
def _constants(value, shape, dtype):
    """A read-only array of ``value``: as an operand, faster than the scalar."""
    out = np.full(shape, value, dtype=dtype)
    out.flags.writeable = False
    return out


#: The six slots of a step's record in the forward pass, ``[free | c_{t-1} | g |
#: f | i | o]`` (see :func:`_layer_forward`), ...
_C_PREV, _G, _F, _I, _O = range(1, 6)
#: ... and after :func:`_gate_factors`, ``[K_g | K_f | K_i | f | A | K_o]``: the
#: factors of the backward pass (see :func:`_layer_backward`), ``f`` kept in place.
_K_G, _K_F, _K_I, _A, _K_O = 0, 1, 2, 4, 5
#: The six slots of a step's gradients in the backward pass, ``[dh_t A | dz_o |
#: dz_g | dz_f | dz_i | f_t dc_t]``: slots ``_DZ_O`` to ``_F_DC`` hold ``dz_t`` in
#: the backward's gate order.
_DH_A, _DZ_O, _F_DC = 0, 1, 5


#: Bytes of per-step work arrays that one chunk of steps may fill before they are
#: processed together, while still in cache.
_CHUNK_BYTES = 1 << 19

#: Bytes of gate gradients gathered for each product giving the weight gradients.
_SPAN_BYTES = 1 << 18


def _chunk_steps(T, H, B, itemsize):
    """Steps per chunk of the forward and backward loops."""
    return max(1, min(T, _CHUNK_BYTES // (6 * H * B * itemsize)))


def _span_steps(T, H, B, itemsize):
    """Steps per product giving the weight gradients: whole chunks, ``T`` at most
    (the last span of a sequence may be shorter)."""
    C = _chunk_steps(T, H, B, itemsize)
    return min(T, C * max(1, _SPAN_BYTES // (4 * H * B * itemsize * C)))


#: Prediction runs a wide batch in blocks of samples whose gates of one step take
#: about this many bytes in the widest layer, so that a step's arrays stay in
#: cache; but never fewer samples than _BLOCK_MIN, below which each NumPy call
#: costs more than its work.
_BLOCK_BYTES = 1 << 18
_BLOCK_MIN = 256


def _block_samples(network, itemsize):
    """Samples per block of :func:`forward` without cache."""
    widest = max(network.hidden_sizes)
    return max(_BLOCK_MIN, _BLOCK_BYTES // (4 * widest * itemsize))


#: OpenBLAS's kernels for AVX-512 processors multiply a product of at most
#: 100**3 multiply-adds (m * k * n) straight from its operands, without packing
#: them first; above that limit a per-step product of a few dozen samples takes
#: 1.15 to 1.6 times as long per multiply-add (``benchmarks/bench_products.py``).
#: Other kernels have no such path: there, cut products cost up to 40% more
#: (measured with ``OPENBLAS_CORETYPE=Haswell``), so they are not cut.
_SMALL_PRODUCT = 100**3
_SMALL_PRODUCT_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})
#: Products cut into blocks of fewer rows than this gain nothing from that path.
_SMALL_PRODUCT_ROWS = 16


@lru_cache(maxsize=1)
def blas_core():
    """The processor core whose kernels NumPy's own OpenBLAS runs (e.g.
    ``"SkylakeX"``, ``"Haswell"``), or ``""`` for another BLAS.

    It is asked through a symbol of NumPy's multiarray module's libraries, so
    that another BLAS loaded in the process cannot answer. OpenBLAS picks the
    core by processor when it loads, or as ``OPENBLAS_CORETYPE`` says.
    """
    import ctypes

    core = getattr(np, "_core", None) or np.core
    try:
        library = ctypes.CDLL(core._multiarray_umath.__file__)
    except (AttributeError, OSError):
        return ""
    for prefix in ("", "scipy_"):
        for suffix in ("", "64_"):
            corename = getattr(library, f"{prefix}openblas_get_corename{suffix}", None)
            if corename is not None:
                corename.restype = ctypes.c_char_p
                return (corename() or b"").decode("ascii", "replace")
    return ""


def _small_product():
    """The size of the products that NumPy's BLAS multiplies without packing,
    or 0 where it has no such path."""
    return _SMALL_PRODUCT if blas_core().lower() in _SMALL_PRODUCT_CORES else 0


def _row_cuts(m, k, n, limit):
    """Row bounds that cut the product of an (m, k) by a (k, n) matrix into as
    few near-equal products as fit under ``limit`` multiply-adds each: the whole
    product when it fits, or when ``limit`` is 0, or when the blocks would have
    fewer than ``_SMALL_PRODUCT_ROWS`` rows."""
    rows = limit // (k * n)
    if rows < _SMALL_PRODUCT_ROWS or rows >= m:
        return [(0, m)]
    p = -(-m // rows)
    return [(i * m // p, (i + 1) * m // p) for i in range(p)]


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
    # M = [U | W | b]^T in the inner gate order, rows scaled: (4H, H+F+1).
    UWb = ws.empty(key + "UWb", (H + F + 1, 4 * H), dtype)
    UWb[:H], UWb[H : H + F], UWb[H + F] = U, W, b
    M = ws.empty(key + "M", (4 * H, H + F + 1), dtype)
    gates_in, gates_out = _blocks(UWb, H), M.reshape(4, H, H + F + 1)
    # f, i, o get -z, for sigmoid(z) = 1 / (1 + exp(-z)); in float64, g gets -2 z,
    # for tanh(z) = 2 sigmoid(2 z) - 1 (module docstring)
    np.negative(gates_in[:, 1::-1].transpose(1, 2, 0), out=gates_out[1:3])
    np.negative(gates_in[:, 3].T, out=gates_out[3])
    by_exp = dtype == np.float64  # g and tanh(c_t) through exp too
    if by_exp:
        np.multiply(gates_in[:, 2].T, -2.0, out=gates_out[0])
    else:
        np.copyto(gates_out[0], gates_in[:, 2].T)

    # HX[t] = [h_{t-1} (masked); x_t (masked); 1], the column step t multiplies.
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
        masked = ws.memo(key + "masked", (HX,), lambda: list(HX[1:, :H]))

    # The steps run in chunks of C. Each step has a record of six slots (_C_PREV
    # and the others), [free | c_{t-1} | g | f | i | o] while it runs: the
    # product writes the four gates, and c_t goes into the next step's record.
    # Side by side, [f | i] and [c_{t-1} | g] give both terms of c_t, [f c_{t-1} |
    # i g], in one multiplication. After a chunk, while its arrays are in cache,
    # its records are turned into the factors of the backward pass in place
    # (_gate_factors). For prediction, the records are a ring of C + 1 instead,
    # reused by every chunk.
    C = _chunk_steps(T, H, B, dtype.itemsize)
    if keep_cache:
        records = ws.at_least(key + "records", T + 1, (6, H, B), dtype)
    else:
        records = ws.empty(key + "records_ring", (C + 1, 6, H, B), dtype)
    records[0, _C_PREV] = 0.0  # c_0
    tanh_c = ws.empty(key + "tanh_c", (C, H, B), dtype)  # tanh(c_t) of a chunk
    terms = ws.empty(key + "terms", (C, 2, H, B), dtype)  # [f c_{t-1} | i g]
    steps = ws.memo(
        key + "steps",
        (records, terms, tanh_c),
        lambda: _forward_steps(records, terms, tanh_c, by_exp),
    )
    ones = _constants(1.0, (4 if by_exp else 3, H, B), dtype)  # as by_exp rows
    if by_exp:
        one, two = ones[0], _constants(2.0, (H, B), dtype)
        minus_two = _constants(-2.0, (H, B), dtype)
    # Views (H+F+1, B) and (H, B) per step.
    columns = ws.memo(key + "columns", (HX,), lambda: list(HX))
    hidden = ws.memo(
        key + "hidden", (HX, None if mask_h is None else Hs), lambda: list(Hs)
    )
    if keep_cache:
        one_minus = ws.empty(key + "one_minus", (C, 3, H, B), dtype)
    # The product of a step, cut into row blocks small enough for BLAS's fastest
    # path where it has one (_small_product): None when it is not cut.
    cuts = _row_cuts(4 * H, H + F + 1, B, _small_product())
    M_rows = [(a, b, M[a:b]) for a, b in cuts] if len(cuts) > 1 else None
    dot, tanh, multiply, add = np.dot, np.tanh, np.multiply, np.add
    exp, divide, subtract = np.exp, np.divide, np.subtract
    # exp's overflow and underflow give the limits, even where the caller made
    # them errors (np.seterr(all="raise")).
    with np.errstate(over="ignore", under="ignore"):
        for t0 in range(0, T, C):
            n = min(C, T - t0)
            first = t0 if keep_cache else 0  # the record of step t0
            for t, step in zip(range(t0, t0 + n), steps[first : first + n]):
                z, by_exp_rows, f_i, c_g, fc_ig, fc, ig, c, tc, o, g = step
                if M_rows is None:
                    dot(M, columns[t], z)  # z_t, rows scaled as M's
                else:
                    for a, b, M_ab in M_rows:
                        dot(M_ab, columns[t], z[a:b])
                if not by_exp:
                    tanh(g, g)
                # f, i, o = sigmoid; in float64 also sigmoid(2 z_g) in g's rows
                exp(by_exp_rows, by_exp_rows)
                add(by_exp_rows, ones, by_exp_rows)
                divide(ones, by_exp_rows, by_exp_rows)
                if by_exp:
                    multiply(g, two, g)
                    subtract(g, one, g)  # g = tanh
                multiply(f_i, c_g, fc_ig)
                add(fc, ig, c)  # c_t = f * c_{t-1} + i * g
                if by_exp:
                    multiply(c, minus_two, tc)
                    exp(tc, tc)
                    add(tc, one, tc)
                    divide(two, tc, tc)
                    subtract(tc, one, tc)  # tanh(c_t)
                else:
                    tanh(c, tc)
                h = hidden[t]
                multiply(o, tc, h)  # h_t = o * tanh(c_t)
                if mask_h is not None:
                    multiply(h, m_h, masked[t])
            if keep_cache:
                chunk = slice(t0, t0 + n)
                _gate_factors(
                    records[chunk], terms[:n], tanh_c[:n], Hs[chunk], one_minus[:n]
                )
            else:  # the last c_t of this chunk is the next one's c_{t-1}
                records[0, _C_PREV] = records[n, _C_PREV]
    if not keep_cache:
        return Hs, None
    return Hs, (HX, W, U, records, mask_x, mask_h)


class _ForwardStep(NamedTuple):
    """Views of one step's record, and of its slot in the chunk's arrays, in the
    order of the forward loop (all (..., H, B))."""

    z: np.ndarray  # (4H, B): the product writes the gates' pre-activations here
    # The gates activated through exp, in place: (3, H, B) [f | i | o], and in
    # float64 (4, H, B) [g | f | i | o] (see by_exp in _layer_forward).
    by_exp_rows: np.ndarray
    f_i: np.ndarray  # (2, H, B) [f | i]
    c_g: np.ndarray  # (2, H, B) [c_{t-1} | g]
    fc_ig: np.ndarray  # (2, H, B) [f c_{t-1} | i g]
    fc: np.ndarray  # f c_{t-1}
    ig: np.ndarray  # i g
    c: np.ndarray  # c_t, in the next step's record
    tc: np.ndarray  # tanh(c_t)
    o: np.ndarray
    g: np.ndarray


def _forward_steps(records, terms, tanh_c, by_exp):
    """The :class:`_ForwardStep` of each record but the last (which only takes
    the last step's c_t), as a plain tuple (unpacked faster than a named one);
    a record r uses slot r % C of the chunk's arrays. ``by_exp``: whether g goes
    through exp too."""
    C = len(terms)
    z = records[:, _G:].reshape(len(records), -1, records.shape[-1])  # (T+1, 4H, B)
    return [
        tuple(_ForwardStep(
            z=z[r],
            by_exp_rows=records[r, _G if by_exp else _F :],
            f_i=records[r, _F : _I + 1],
            c_g=records[r, _C_PREV : _G + 1],
            fc_ig=terms[r % C],
            fc=terms[r % C, 0],
            ig=terms[r % C, 1],
            c=records[r + 1, _C_PREV],
            tc=tanh_c[r % C],
            o=records[r, _O],
            g=records[r, _G],
        ))
        for r in range(len(records) - 1)
    ]


def _gate_factors(records, terms, tanh_c, h, one_minus):
    """Turn the records of a chunk of steps into the backward's factors.

    In: ``records = [free | c_{t-1} | g | f | i | o]``, with ``terms = [f c_{t-1} |
    i g]``, ``tanh_c = tanh(c_t)`` and ``h = h_t``; ``one_minus`` is scratch (n, 3,
    H, B). Out: ``records = [K_g | K_f | K_i | f | A | K_o]``, each slot written
    once its old value is no longer needed. Products the forward pass already
    made shorten the factors::

        K_g = i (1 - g^2)       = i - (i g) g
        K_f = c_{t-1} f (1 - f) = (f c_{t-1}) (1 - f)
        K_i = g i (1 - i)       = (i g) (1 - i)
        A   = o (1 - tanh(c_t)^2) = o - h_t tanh(c_t)
        K_o = tanh(c_t) o (1 - o) = h_t (1 - o)
    """
    r = records
    np.subtract(1.0, r[:, _F:], out=one_minus)  # 1 - f, 1 - i, 1 - o
    np.multiply(terms[:, 1], r[:, _G], out=r[:, _K_G])
    np.subtract(r[:, _I], r[:, _K_G], out=r[:, _K_G])  # K_g
    np.multiply(terms, one_minus[:, :2], out=r[:, _K_F : _K_I + 1])  # K_f, K_i
    np.multiply(h, tanh_c, out=r[:, _A])
    np.subtract(r[:, _O], r[:, _A], out=r[:, _A])  # A
    np.multiply(h, one_minus[:, 2], out=r[:, _K_O])  # K_o


def _layer_backward(dHs, cache, need_dX=True, from_above=None, ws=_NoWorkspace, key=""):
    """Backpropagation through time for one layer, in the transposed layout.

    With the factors the forward pass left in its records, one step is::

        dc_t  = dh_t * A + f_{t+1} * dc_{t+1},     A   = o (1 - tanh(c_t)^2)
        dz_o  = dh_t * K_o,                        K_o = tanh(c_t) o (1 - o)
        dz_g  = dc_t * K_g,                        K_g = i (1 - g^2)
        dz_f  = dc_t * K_f,                        K_f = c_{t-1} f (1 - f)
        dz_i  = dc_t * K_i,                        K_i = g i (1 - i)
        dh_{t-1} = dh_{t-1 from above} + (U dz_t) * m_h,    dx_t = W dz_t

    that is the products ``A * dh_t`` and ``K_o * dh_t``, one sum for ``dc_t``, one
    product by broadcasting ``[K_g | K_f | K_i | f_t] * dc_t`` (its last term is
    the next step's ``f_{t+1} * dc_{t+1}``) and one matrix product.

    Parameters
    ----------
    dHs : ndarray of shape (T, H, B)
        Gradient of the loss with respect to each h_t from above (the next layer or
        the output layer), excluding the recurrence. It is overwritten.
    cache : tuple from :func:`_layer_forward`.
    need_dX : bool, whether to compute the gradient with respect to the inputs.
    from_above : sequence of bool of length T, or None
        Which steps of ``dHs`` hold a gradient from above; None for all. The
        recurrence writes straight into the others, whatever they held (only
        the last step must be valid).
    ws, key : where the arrays come from (a :class:`Workspace`) and their prefix.

    Returns
    -------
    dX_T : ndarray of shape (T, F, B) or None.
    dW, dU, db : gradients of the kernel, recurrent kernel and bias (public layout).
    """
    HX, W, U, records, mask_x, mask_h = cache
    T, H, B = dHs.shape
    F = W.shape[0]
    dtype = dHs.dtype
    # [o | g | f | i] is the public order reversed.
    U_back = ws.empty(key + "U_back", U.shape, dtype)
    np.copyto(_blocks(U_back, H), _blocks(U, H)[:, ::-1])
    m_h = None if mask_h is None else np.ascontiguousarray(mask_h.T)  # (H, B)

    # The steps run backwards in chunks of C. The chunk's step j = t - t0 writes
    # its gradients, [dh_t A | dz_o | dz_g | dz_f | dz_i | f_t dc_t] (the _DH_A,
    # _DZ_O and _F_DC slots), into grads[j]. After a chunk, while in cache, its dz
    # are copied feature-major into dz_span, which gathers a span of several
    # chunks; once a span is complete, one product over its (step, sample) pairs
    # adds its share to the weight gradients.
    C = _chunk_steps(T, H, B, dtype.itemsize)
    grads = ws.empty(key + "grads", (C, 6, H, B), dtype)
    dz_chunk = grads[:, _DZ_O:_F_DC].reshape(C, 4 * H, B)  # dz_t per step, ogfi
    steps = ws.memo(
        key + "steps_back",
        (grads,),
        lambda: [
            (grads[j, _DH_A], grads[j, _DZ_O], grads[j, _DZ_O + 1 :], dz_chunk[j],
             grads[j, _F_DC])
            for j in range(C)
        ],
    )
    span = _span_steps(T, H, B, dtype.itemsize)
    dz_span = ws.empty(key + "dz_span", (4 * H, span, B), dtype)  # feature-major
    # The span's columns [h_{t-1}; x_t; 1], sample-major.
    HX_span = ws.empty(key + "HX_span", (span, B, H + F + 1), dtype)
    s1 = T  # the span being gathered ends at step s1
    dh = list(dHs)
    # The factors of each step: [K_g | K_f | K_i | f], A and K_o (_gate_factors).
    K_dc, A, K_o = ws.memo(
        key + "K",
        (records,),
        lambda: (
            list(records[:, : _F + 1]), list(records[:, _A]), list(records[:, _K_O])
        ),
    )
    dh_prev = ws.empty(key + "dh_prev", (H, B), dtype)
    dc = ws.empty(key + "dc", (H, B), dtype)  # dL/dc_t
    fdc = ws.zeros(key + "fdc", (H, B), dtype)  # f_{t+1} dc_{t+1}, none after T
    # [dU; dW; db]^T, rows ogfi: the last span's product, then the sum of all.
    dM = ws.empty(key + "dM", (4 * H, H + F + 1), dtype)
    dM_span = ws.empty(key + "dM_span", dM.shape, dtype)
    if need_dX:
        W_back = np.ascontiguousarray(_blocks(W, H)[:, ::-1]).reshape(F, 4 * H)
        dX_T = ws.empty(key + "dX", (T, F, B), dtype)
    # U dz_t and W dz_t cut into row blocks as in the forward pass (None: not cut).
    limit = _small_product()
    cuts = _row_cuts(H, 4 * H, B, limit)
    U_rows = [(a, b, U_back[a:b]) for a, b in cuts] if len(cuts) > 1 else None
    if need_dX:
        W_rows = [(a, b, W_back[a:b]) for a, b in _row_cuts(F, 4 * H, B, limit)]
    dot, multiply, add = np.dot, np.multiply, np.add
    for t1 in range(T, 0, -C):
        t0 = max(0, t1 - C)
        for t in range(t1 - 1, t0 - 1, -1):
            dhA, dz_o, by_dc, dz, f_dc = steps[t - t0]
            dh_t = dh[t]
            multiply(A[t], dh_t, dhA)  # two products: broadcasting costs more
            multiply(K_o[t], dh_t, dz_o)
            add(dhA, fdc, dc)
            multiply(K_dc[t], dc, by_dc)  # its last slot is f_t * dc_t
            fdc = f_dc
            if t > 0:
                into = from_above is None or from_above[t - 1]
                out = dh_prev if into else dh[t - 1]
                if U_rows is None:
                    dot(U_back, dz, out)
                else:
                    for a, b, U_ab in U_rows:
                        dot(U_ab, dz, out[a:b])
                if m_h is not None:
                    out *= m_h
                if into:
                    dh[t - 1] += dh_prev
        n = t1 - t0
        if need_dX:
            for a, b, W_ab in W_rows:  # dx_t = W dz_t
                np.matmul(W_ab, dz_chunk[:n], dX_T[t0:t1, a:b])
        s0 = max(0, s1 - span)
        np.copyto(dz_span[:, t0 - s0 : t1 - s0], dz_chunk[:n].transpose(1, 0, 2))
        if t0 == s0:
            # The span's share of [dU; dW; db]^T = sum over steps and samples of
            # dz [h_{t-1}; x_t; 1]^T.
            dz_s, HX_s = dz_span[:, : s1 - s0], HX_span[: s1 - s0]
            np.copyto(HX_s, HX[s0:s1].transpose(0, 2, 1))
            out = dM if s1 == T else dM_span
            np.matmul(dz_s.reshape(4 * H, -1), HX_s.reshape(-1, H + F + 1), out)
            if out is dM_span:
                dM += dM_span
            s1 = s0
    # [dU; dW; db] in the public gate order: rows o, g, f, i reversed, transposed.
    dUWb = np.empty((H + F + 1, 4 * H), dtype=dtype)
    np.copyto(_blocks(dUWb, H), dM.reshape(4, H, H + F + 1)[::-1].transpose(2, 0, 1))
    if not need_dX:
        dX_T = None
    elif mask_x is not None:
        dX_T *= mask_x.T
    return dX_T, dUWb[H : H + F], dUWb[:H], dUWb[H + F]


def _reversal(lengths, n_steps):
    """The step order of the reverse direction, or None when all sequences are
    ``n_steps`` long (plain reversal).

    ``order[t, b]`` is the step that the reverse direction of sequence ``b`` reads
    at its ``t``-th step: ``lengths[b] - 1 - t`` over the valid steps, then the
    padding steps in place, so that padding comes last in both directions. The
    order is its own inverse.
    """
    if lengths is None:
        return None
    t = np.arange(n_steps)[:, np.newaxis]  # (T, 1)
    return np.where(t < lengths, lengths - 1 - t, t)  # (T, B)


def _reverse(A, order, out):
    """``out[t, :, b] = A[order[t, b], :, b]`` for ``A`` of shape (T, D, B)."""
    if order is None:
        np.copyto(out, A[::-1])
        return out
    T, D, B = A.shape
    steps = order[:, np.newaxis, :]  # (T, 1, B)
    np.copyto(out, A[steps, np.arange(D)[:, np.newaxis], np.arange(B)])
    return out


def _lstm_layer_forward(layer, X_T, arrays, mask_x, mask_h, order, keep_cache, ws, key):
    """One layer of the stack: :func:`_layer_forward` once, or twice for a
    bidirectional layer, whose reverse direction runs on each sequence reversed
    (``order``) and whose output is ``[h_forward | h_backward]`` step by step."""
    if not layer.bidirectional:
        return _layer_forward(X_T, *arrays, mask_x, mask_h, keep_cache, ws, key)
    T, F, B = X_T.shape
    H = layer.n_hidden
    mask_f = mask_r = None
    if mask_h is not None:
        mask_f, mask_r = mask_h[:, :H], mask_h[:, H:]
    H_f, cache_f = _layer_forward(
        X_T, *arrays[:3], mask_x, mask_f, keep_cache, ws, key + "f."
    )
    X_rev = _reverse(X_T, order, ws.empty(key + "X_rev", (T, F, B), X_T.dtype))
    H_r, cache_r = _layer_forward(
        X_rev, *arrays[3:], mask_x, mask_r, keep_cache, ws, key + "r."
    )
    out = ws.empty(key + "out", (T, 2 * H, B), X_T.dtype)
    out[:, :H] = H_f
    _reverse(H_r, order, out[:, H:])
    return out, (cache_f, cache_r)


def forward(
    X, params, lengths=None, masks=None, keep_cache=True, workspace=None, network=None
):
    """Network output for a batch of sequences.

    The output layer reads the top LSTM layer's outputs ``y_t`` (``h_t``, or
    ``[h_forward_t | h_backward_t]`` for a bidirectional layer) as the network's
    ``pooling`` says, over each sequence's valid steps ``t < T_b`` only:

    * ``"last"``: ``y_{T_b}`` (bidirectional: ``[h_forward_{T_b} | h_backward_1]``);
    * ``"mean"`` / ``"max"``: the mean / elementwise maximum of ``y_1..y_{T_b}``;
    * ``"none"``: every ``y_t``, one output per step.

    Parameters
    ----------
    X : ndarray of shape (B, T, F), or of shape (B, T) for an embedding network
        Batch-major sequences, in the dtype of the computation; padding after a
        sequence's last step must be finite (zeros). With an embedding, integer
        token ids in ``[0, n_tokens)`` (not checked here), 0 at padding steps;
        the computation then runs in the table's dtype.
    params : list of ndarray
        The parameters in the flat order of ``network``.
    lengths : ndarray of shape (B,) or None
        Number of valid steps of each sequence; None when all have T.
    masks : list of (mask_x, mask_h) per layer, or None
        Scaled dropout masks (see the module docstring); None or a None entry for
        no dropout. A bidirectional layer's ``mask_h`` is (B, 2H), ``[forward |
        reverse]``; its ``mask_x`` applies to both directions.
    keep_cache : bool, default=True
        False for prediction: nothing is kept for backpropagation.
    workspace : Workspace or None
        Reuse its buffers instead of allocating; the cache then stays valid until
        the next call with the same workspace.
    network : Network or None
        The network's description; None for the plain LSTM stack that ``params``
        make.

    Returns
    -------
    out : ndarray of shape (B, n_outputs), or (B, T, n_outputs) for pooling
        ``"none"`` (finite but meaningless at padding steps)
        Raw output (before any output activation).
    cache : tuple or None
        Everything :func:`backward` needs.
    """
    ws = _NoWorkspace if workspace is None else workspace
    if network is None:
        network = Network.from_shapes([param.shape for param in params])
    embedded = network.embedding is not None
    dtype = params[0].dtype if embedded else X.dtype
    if not keep_cache:
        block = _block_samples(network, dtype.itemsize)
        if X.shape[0] > block:
            out = _forward_blocks(
                X, params, lengths, masks, block, workspace, network, dtype
            )
            return out, None
    B, T = X.shape[:2]
    order = _reversal(lengths, T) if network.bidirectional else None
    *lstm_params, (W_out, b_out) = network.layer_params(params)
    if embedded:
        (table,), *lstm_params = lstm_params
        # Whole rows gathered, then read transposed: faster than gathering columns.
        inp = table[X.T].transpose(0, 2, 1)  # (T, E, B)
    else:
        inp = X.transpose(1, 2, 0)  # (T, F, B)
    # inp is copied into the first layer's columns.
    caches = []
    for k, (layer, arrays) in enumerate(zip(network.lstm, lstm_params)):
        mask_x, mask_h = masks[k] if masks is not None else (None, None)
        inp, cache = _lstm_layer_forward(
            layer, inp, arrays, mask_x, mask_h, order, keep_cache, ws, f"{k}."
        )
        caches.append(cache)
    Y = inp  # (T, D, B), the top layer's outputs
    pooled, pool_cache = _pool(Y, network, lengths)
    if pooled is None:  # one output per step, one product per step
        out_steps = np.matmul(W_out.T, Y)  # (T, n_outputs, B)
        out = np.ascontiguousarray(out_steps.transpose(2, 0, 1))  # (B, T, n_outputs)
    else:
        out = pooled @ W_out  # (B, n_outputs)
    out += b_out
    if not keep_cache:
        return out, None
    ids = X if embedded else None
    return out, (
        caches, Y, pooled, pool_cache, W_out, lengths, order, ws, network, ids
    )


def _valid_steps(lengths, T):
    """(T, B) booleans: whether step t is within sequence b."""
    return np.arange(T)[:, np.newaxis] < lengths


def _pool(Y, network, lengths):
    """What the output layer reads from the top layer's outputs ``Y`` (T, D, B):
    ``(pooled (B, D), what the backward pass needs)``, or ``(None, None)`` for
    one output per step."""
    pooling = network.pooling
    T, D, B = Y.shape
    if pooling == "none":
        return None, None
    if pooling == "last":
        if lengths is None:
            pooled = Y[-1].T.copy()
        else:
            pooled = Y[lengths - 1, :, np.arange(B)]  # (B, D), a new array
        top = network.lstm[-1]
        if top.bidirectional:  # the reverse direction ends at the first step
            H = top.n_hidden
            pooled[:, H:] = Y[0, H:].T
        return pooled, None
    if pooling == "mean":
        if lengths is None:
            return Y.sum(axis=0).T / T, None
        valid = _valid_steps(lengths, T)[:, np.newaxis, :]  # (T, 1, B)
        summed = np.where(valid, Y, 0).sum(axis=0)  # (D, B)
        return (summed / lengths.astype(Y.dtype)).T, None  # in Y's dtype
    # max: padding never wins; ties share the gradient evenly, as torch.amax
    masked = Y if lengths is None else np.where(
        _valid_steps(lengths, T)[:, np.newaxis, :], Y, -np.inf
    )
    top = masked.max(axis=0)  # (D, B)
    return top.T.copy(), masked == top  # (B, D), argmax indicator (T, D, B)


def _forward_blocks(X, params, lengths, masks, block, workspace, network, dtype):
    """:func:`forward` without cache, ``block`` samples at a time, each block cut
    to its longest sequence."""
    B, T = X.shape[:2]
    per_step = (T,) if network.per_step else ()
    out = np.zeros((B, *per_step, network.n_outputs), dtype=dtype)
    for start in range(0, B, block):
        rows = slice(start, start + block)
        steps, part = T, None
        if lengths is not None:
            part = lengths[rows]
            steps = int(part.max())
            if (part == steps).all():
                part = None
        part_masks = mask_rows(masks, rows)
        block_out, _ = forward(
            X[rows, :steps], params, part, part_masks, False, workspace, network
        )
        if per_step:
            out[rows, :steps] = block_out
        else:
            out[rows] = block_out
    return out


def mask_rows(masks, rows):
    """The dropout masks (see :func:`forward`) of the samples ``rows`` of a batch."""
    if masks is None:
        return None
    return [tuple(None if m is None else m[rows] for m in pair) for pair in masks]


def _last_step_grad(d_last, lengths, T, ws, key):
    """The gradient from above ``dHs`` (T, H, B) of a direction whose output is
    read at each sequence's last step only, and which steps hold one (see
    :func:`_layer_backward`); ``d_last`` (B, H)."""
    B, H = d_last.shape
    from_above = np.zeros(T, dtype=bool)
    from_above[-1 if lengths is None else lengths - 1] = True
    # The recurrence writes every other step but the last before reading it.
    dHs = ws.empty(key + "dHs", (T, H, B), d_last.dtype)
    if lengths is None:
        dHs[-1] = d_last.T
    else:
        zeroed = from_above.copy()
        zeroed[-1] = True
        dHs[zeroed] = 0.0
        dHs[lengths - 1, :, np.arange(B)] = d_last
    return dHs, from_above.tolist()


def _embedding_grad(dX_T, ids, n_tokens):
    """The table's gradient (n_tokens, E): the first layer's input gradient
    ``dX_T`` (T, E, B) summed over the steps holding each id of ``ids`` (B, T).

    One ``bincount`` per column (accumulating in float64) is about four times
    as fast as ``np.add.at`` on the rows, for the same sums."""
    T, E, B = dX_T.shape
    flat_ids = ids.T.ravel()  # (T * B,), the order of dX_T's (step, sample) pairs
    by_dim = dX_T.transpose(1, 0, 2).reshape(E, T * B)  # a copy
    grad = np.empty((n_tokens, E), dtype=dX_T.dtype)
    for e in range(E):
        grad[:, e] = np.bincount(flat_ids, by_dim[e], minlength=n_tokens)
    return grad


def backward(dout, cache, need_dX=False):
    """Gradients of a loss with respect to every parameter (and the input).

    Parameters
    ----------
    dout : ndarray of shape (B, n_outputs), or (B, T, n_outputs) for pooling
        ``"none"``
        Gradient of the loss with respect to the raw output of :func:`forward`;
        entries at padding steps are ignored.
    cache : tuple from :func:`forward`.
    need_dX : bool, default=False
        Also return the gradient with respect to ``X``. Token ids have none: for
        an embedding network, true raises ValueError (the table's gradient is in
        ``grads``).

    Returns
    -------
    grads : list of ndarray
        Same order and shapes as ``params``.
    dX : ndarray of shape (B, T, F)
        Only when ``need_dX`` is true.
    """
    caches, Y, pooled, pool_cache, W_out, lengths, order, ws, network, ids = cache
    embedded = ids is not None
    if need_dX and embedded:
        raise ValueError(
            "The input of an embedding network is token ids, which have no "
            "gradient; call backward with need_dX=False."
        )
    T, D, B = Y.shape
    pooling = network.pooling
    top = network.lstm[-1]
    dY = from_above = None  # the top layer's gradient from above, aligned
    if pooling == "none":
        d_steps = dout.transpose(1, 2, 0).copy()  # (T, n_outputs, B)
        if lengths is not None:  # padding steps feed nothing
            d_steps *= _valid_steps(lengths, T)[:, np.newaxis, :]
        dW_out = np.matmul(Y, d_steps.transpose(0, 2, 1)).sum(axis=0)  # (D, n_outputs)
        db_out = d_steps.sum(axis=(0, 2))
        dY = ws.empty("dY", (T, D, B), Y.dtype)
        if d_steps.shape[1] == 1:  # numpy's matmul is slow on rank-1 products
            np.multiply(W_out, d_steps, out=dY)  # (D, 1) * (T, 1, B): (T, D, B)
        else:
            np.matmul(W_out, d_steps, out=dY)  # (T, D, B)
    else:
        dW_out = pooled.T @ dout  # (D, n_outputs)
        db_out = dout.sum(axis=0)  # (n_outputs,)
        d_pooled = (dout @ W_out.T).T  # (D, B)
        if pooling == "mean":
            dY = ws.empty("dY", (T, D, B), Y.dtype)
            if lengths is None:
                dY[...] = d_pooled / T
            else:
                valid = _valid_steps(lengths, T)[:, np.newaxis, :]
                np.multiply(valid, d_pooled / lengths.astype(dY.dtype), out=dY)
        elif pooling == "max":
            is_max = pool_cache
            dY = ws.empty("dY", (T, D, B), Y.dtype)
            np.multiply(is_max, d_pooled / is_max.sum(axis=0), out=dY)
        else:  # last: only the steps read get a gradient from above
            H = top.n_hidden
            dH_f, from_above = _last_step_grad(d_pooled[:H].T, lengths, T, ws, "f.")
            d_top = [dH_f]
            if top.bidirectional:  # its first step is the reverse run's last
                d_top.append(_last_step_grad(d_pooled[H:].T, lengths, T, ws, "r.")[0])

    grads = []
    for k in range(len(caches) - 1, -1, -1):
        layer, cache_k, key = network.lstm[k], caches[k], f"{k}."
        need = k > 0 or need_dX or embedded
        if dY is not None:  # split into the directions, in their own step order
            H = layer.n_hidden
            if not layer.bidirectional:
                d_top = [dY]
            else:
                dH_f = ws.empty(key + "dH_f", (T, H, B), Y.dtype)
                np.copyto(dH_f, dY[:, :H])
                dH_r = ws.empty(key + "dH_r", (T, H, B), Y.dtype)
                _reverse(dY[:, H:], order, dH_r)
                d_top = [dH_f, dH_r]
        if not layer.bidirectional:
            dX, *layer_grads = _layer_backward(
                d_top[0], cache_k, need, from_above, ws, key
            )
        else:
            dX, *layer_grads = _layer_backward(
                d_top[0], cache_k[0], need, from_above, ws, key + "f."
            )
            dX_r, *reverse_grads = _layer_backward(
                d_top[1], cache_k[1], need, from_above, ws, key + "r."
            )
            layer_grads += reverse_grads
            if need:
                dX += _reverse(dX_r, order, ws.empty(key + "dX_r", dX.shape, dX.dtype))
        grads[:0] = layer_grads
        dY, from_above = dX, None
    grads += [dW_out, db_out]
    if embedded:
        grads[:0] = [_embedding_grad(dY, ids, network.embedding.n_tokens)]
    if need_dX:
        return grads, dY.transpose(2, 0, 1).copy()  # (B, T, F), not a buffer
    return grads
