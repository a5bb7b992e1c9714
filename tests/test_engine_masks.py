"""The engine's sequence lengths, dropout masks and cache-free forward pass.

``forward(X, params, lengths=None, masks=None, keep_cache=True)`` and
``backward(dout, cache, need_dX=False)``:

* ``lengths`` (B,): the output reads each sequence's hidden state at step
  ``lengths[b] - 1``; the padding after it must influence nothing.
* ``masks``: per layer ``(mask_x (B, F_in) or None, mask_h (B, H) or None)``,
  already scaled, shared by every time step:
  ``z_t = (x_t * m_x) W + (h_{t-1} * m_h) U + b``.
* ``keep_cache=False``: the same output, nothing kept for backpropagation.

Gradients are checked by central differences in float64, with the step and the
tolerance of ``tests/test_engine.py`` (whose docstring explains them): with
``eps = 1e-6`` truncation and rounding errors stay near 1e-9, far below the
``1e-7`` allowed on ``|analytic - numerical| / max(1, |numerical|)``, while a wrong
or missing term gives errors of 1e-3 or more.
"""

import numpy as np
import pytest
from _gradcheck import assert_grad_close, make_params, numerical_grad, param_names
from _reference import reference_forward
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_lstm._engine import backward, forward


# --------------------------------------------------------------------- helpers
def make_masks(rng, B, n_features, hidden, rate_x, rate_h):
    """Scaled variational masks per layer (None where the rate is None)."""
    masks = []
    n_in = n_features
    for h in hidden:
        mask_x = mask_h = None
        if rate_x is not None:
            mask_x = (rng.random((B, n_in)) >= rate_x) / (1.0 - rate_x)
        if rate_h is not None:
            mask_h = (rng.random((B, h)) >= rate_h) / (1.0 - rate_h)
        masks.append((mask_x, mask_h))
        n_in = h
    return masks


def check_grads_by_central_differences(X, params, G, **kwargs):
    """Every parameter and X, for the scalar sum(G * forward(X, params, **kwargs))."""

    def f():
        return float(np.sum(G * forward(X, params, **kwargs)[0]))

    out, cache = forward(X, params, **kwargs)
    grads, dX = backward(G, cache, need_dX=True)
    assert len(grads) == len(params)
    for name, p, g in zip(param_names(params), params, grads):
        assert g.shape == p.shape, name
        assert_grad_close(g, numerical_grad(f, p), what=name)
    assert dX.shape == X.shape
    assert_grad_close(dX, numerical_grad(f, X), what="X")
    return grads, dX


def pad_right(rng, sequences, T, pad):
    """Stack sequences of shape (T_b, F) into (B, T, F), padded after the end."""
    F = sequences[0].shape[1]
    X = np.empty((len(sequences), T, F))
    for b, s in enumerate(sequences):
        X[b, : len(s)] = s
        X[b, len(s) :] = pad(rng, (T - len(s), F))
    return X


HIDDEN = [pytest.param((4,), id="1-layer"), pytest.param((4, 3), id="2-layers")]


# ---------------------------------------------------------------- lengths
@pytest.mark.parametrize("hidden", HIDDEN)
def test_lengths_gradients_match_central_differences(hidden):
    rng = np.random.default_rng(10)
    B, T, F, n_out = 4, 5, 2, 2
    X = rng.normal(size=(B, T, F))
    params = make_params(rng, F, hidden, n_out)
    lengths = np.array([5, 1, 3, 2])  # full length, a single step, in between
    G = rng.normal(size=(B, n_out))
    check_grads_by_central_differences(X, params, G, lengths=lengths)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_lengths_forward_matches_naive_equations(hidden):
    rng = np.random.default_rng(11)
    B, T, F, n_out = 4, 6, 3, 2
    X = rng.normal(size=(B, T, F))
    params = make_params(rng, F, hidden, n_out)
    lengths = np.array([2, 6, 1, 4])
    out = forward(X, params, lengths=lengths)[0]
    assert out.shape == (B, n_out)
    assert_allclose(out, reference_forward(X, params, lengths), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_padded_batch_equals_each_sequence_alone(hidden):
    rng = np.random.default_rng(12)
    T, F, n_out = 6, 2, 3
    lengths = np.array([6, 2, 4, 1, 5])
    sequences = [rng.normal(size=(T_b, F)) for T_b in lengths]
    X = pad_right(rng, sequences, T, lambda r, shape: np.zeros(shape))
    params = make_params(rng, F, hidden, n_out)
    G = rng.normal(size=(len(lengths), n_out))

    out, cache = forward(X, params, lengths=lengths)
    grads, dX = backward(G, cache, need_dX=True)

    summed = [np.zeros_like(p) for p in params]
    for b, s in enumerate(sequences):
        out_b, cache_b = forward(s[None], params)  # alone, unpadded
        assert_allclose(out[b], out_b[0], rtol=1e-12, atol=1e-14)
        grads_b, dX_b = backward(G[b : b + 1], cache_b, need_dX=True)
        for acc, g in zip(summed, grads_b):
            acc += g
        assert_allclose(dX[b, : len(s)], dX_b[0], rtol=1e-12, atol=1e-14)
        # The padding gets exactly zero gradient.
        assert_array_equal(dX[b, len(s) :], 0.0)
    for name, g, expected in zip(param_names(params), grads, summed):
        assert_allclose(g, expected, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_padding_values_do_not_matter(hidden):
    rng = np.random.default_rng(13)
    T, F, n_out = 5, 2, 2
    lengths = np.array([3, 5, 1, 2])
    sequences = [rng.normal(size=(T_b, F)) for T_b in lengths]
    params = make_params(rng, F, hidden, n_out)
    G = rng.normal(size=(len(lengths), n_out))
    pads = [
        lambda r, shape: np.zeros(shape),
        lambda r, shape: r.normal(scale=100.0, size=shape),
        lambda r, shape: np.full(shape, -1e6),
        lambda r, shape: r.choice([-1e150, 1e150], size=shape),
    ]
    results = []
    for pad in pads:
        X = pad_right(rng, sequences, T, pad)
        out, cache = forward(X, params, lengths=lengths)
        grads, dX = backward(G, cache, need_dX=True)
        results.append((out, grads, dX, X))
    out0, grads0, dX0, _ = results[0]
    for out, grads, dX, _X in results[1:]:
        assert_array_equal(out, out0)
        for name, g, g0 in zip(param_names(params), grads, grads0):
            assert_array_equal(g, g0, err_msg=name)
        assert_array_equal(dX, dX0)
        for b, T_b in enumerate(lengths):
            assert_array_equal(dX[b, T_b:], 0.0)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_full_lengths_equal_no_lengths(hidden):
    rng = np.random.default_rng(14)
    B, T, F, n_out = 3, 4, 2, 2
    X = rng.normal(size=(B, T, F))
    params = make_params(rng, F, hidden, n_out)
    G = rng.normal(size=(B, n_out))
    out, cache = forward(X, params)
    out_l, cache_l = forward(X, params, lengths=np.full(B, T))
    assert_array_equal(out_l, out)
    grads, dX = backward(G, cache, need_dX=True)
    grads_l, dX_l = backward(G, cache_l, need_dX=True)
    for g, g_l in zip(grads, grads_l):
        assert_array_equal(g_l, g)
    assert_array_equal(dX_l, dX)


# ------------------------------------------------------------------- masks
MASK_KINDS = [
    pytest.param(0.4, None, id="mask_x"),
    pytest.param(None, 0.4, id="mask_h"),
    pytest.param(0.3, 0.5, id="both"),
]


@pytest.mark.parametrize("rate_x, rate_h", MASK_KINDS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_masked_gradients_match_central_differences(hidden, rate_x, rate_h):
    rng = np.random.default_rng(15)
    B, T, F, n_out = 4, 4, 3, 2
    X = rng.normal(size=(B, T, F))
    params = make_params(rng, F, hidden, n_out)
    masks = make_masks(rng, B, F, hidden, rate_x, rate_h)
    # Some entries are dropped and some kept: the check sees both cases.
    for mask_x, mask_h in masks:
        for m in (mask_x, mask_h):
            if m is not None:
                assert (m == 0).any() and (m > 1).any()
    G = rng.normal(size=(B, n_out))
    grads, dX = check_grads_by_central_differences(X, params, G, masks=masks)
    if masks[0][0] is not None:
        # A dropped input feature gets no gradient, at any step.
        dropped = masks[0][0] == 0  # (B, F)
        assert_array_equal(dX.transpose(1, 0, 2)[:, dropped], 0.0)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_masks_and_lengths_together_match_central_differences(hidden):
    rng = np.random.default_rng(16)
    B, T, F, n_out = 3, 4, 2, 1
    X = rng.normal(size=(B, T, F))
    params = make_params(rng, F, hidden, n_out)
    masks = make_masks(rng, B, F, hidden, 0.3, 0.3)
    lengths = np.array([2, 4, 1])
    G = rng.normal(size=(B, n_out))
    check_grads_by_central_differences(X, params, G, lengths=lengths, masks=masks)
    out = forward(X, params, lengths=lengths, masks=masks)[0]
    assert_allclose(out, reference_forward(X, params, lengths, masks), rtol=1e-12,
                    atol=1e-14)


@pytest.mark.parametrize("hidden", HIDDEN)
def test_masks_of_ones_equal_no_masks_bitwise(hidden):
    rng = np.random.default_rng(17)
    B, T, F, n_out = 3, 5, 2, 2
    X = rng.normal(size=(B, T, F))
    params = make_params(rng, F, hidden, n_out)
    G = rng.normal(size=(B, n_out))
    ones, n_in = [], F
    for h in hidden:
        ones.append((np.ones((B, n_in)), np.ones((B, h))))
        n_in = h
    out, cache = forward(X, params)
    grads, dX = backward(G, cache, need_dX=True)
    for masks in (ones, [(None, None)] * len(hidden),
                  [(mx, None) for mx, _ in ones], [(None, mh) for _, mh in ones]):
        out_m, cache_m = forward(X, params, masks=masks)
        assert_array_equal(out_m, out)
        grads_m, dX_m = backward(G, cache_m, need_dX=True)
        for name, g, g_m in zip(param_names(params), grads, grads_m):
            assert_array_equal(g_m, g, err_msg=name)
        assert_array_equal(dX_m, dX)


@pytest.mark.parametrize("rate_x, rate_h", MASK_KINDS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_masked_forward_matches_naive_equations(hidden, rate_x, rate_h):
    rng = np.random.default_rng(18)
    B, T, F, n_out = 5, 6, 3, 2
    X = rng.normal(size=(B, T, F))
    params = make_params(rng, F, hidden, n_out)
    masks = make_masks(rng, B, F, hidden, rate_x, rate_h)
    out = forward(X, params, masks=masks)[0]
    assert_allclose(out, reference_forward(X, params, masks=masks), rtol=1e-12,
                    atol=1e-14)
    # The masks really act: the output differs from the unmasked one.
    assert not np.allclose(out, forward(X, params)[0])


def test_masks_are_not_modified():
    rng = np.random.default_rng(19)
    B, T, F, hidden = 3, 4, 2, (4, 3)
    X = rng.normal(size=(B, T, F))
    params = make_params(rng, F, hidden, 1)
    masks = make_masks(rng, B, F, hidden, 0.5, 0.5)
    copies = [(mx.copy(), mh.copy()) for mx, mh in masks]
    X0 = X.copy()
    out, cache = forward(X, params, masks=masks)
    backward(np.ones((B, 1)), cache, need_dX=True)
    assert_array_equal(X, X0)
    for (mx, mh), (cx, ch) in zip(masks, copies):
        assert_array_equal(mx, cx)
        assert_array_equal(mh, ch)


# -------------------------------------------------------------- keep_cache
@pytest.mark.parametrize("hidden", [(4,), (4, 3), (3, 5, 2)],
                         ids=["1-layer", "2-layers", "3-layers"])
@pytest.mark.parametrize("T", [1, 2, 7])
def test_keep_cache_false_gives_the_same_output_bitwise(hidden, T):
    rng = np.random.default_rng(20)
    B, F, n_out = 5, 3, 2
    X = rng.normal(size=(B, T, F))
    params = make_params(rng, F, hidden, n_out)
    lengths = rng.integers(1, T + 1, size=B)
    masks = make_masks(rng, B, F, hidden, 0.3, 0.3)
    for kwargs in ({}, {"lengths": lengths}, {"masks": masks},
                   {"lengths": lengths, "masks": masks}):
        out, cache = forward(X, params, keep_cache=True, **kwargs)
        out_nc, cache_nc = forward(X, params, keep_cache=False, **kwargs)
        assert cache is not None
        assert cache_nc is None
        assert_array_equal(out_nc, out)
