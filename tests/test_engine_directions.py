"""Bidirectional layers and the poolings of the engine, by central differences.

``Network.stack(F, hidden, k, bidirectional=..., pooling=...)`` describes the model
and ``forward(X, params, lengths, masks, network=network)`` runs it:

* a bidirectional layer outputs ``[h_forward_t | h_backward_t]`` (2H) at step t;
  the backward direction runs over each sequence's own valid steps, from its last
  valid step down to step 0;
* pooling "last" reads the top layer at each sequence's last valid step
  (``[h_forward at T_b - 1 | h_backward at 0]`` when bidirectional), "mean" and
  "max" pool the top layer's outputs over the valid steps, and the dense layer
  follows: ``out`` is (B, k). Pooling "none" applies the dense layer at every step:
  ``out`` is (B, T, k), unspecified at padding steps, whose upstream gradient is
  ignored.
* ``masks[l] = (mask_x (B, F_in), mask_h (B, 2H))``: ``mask_x`` scales the inputs of
  both directions, the first H columns of ``mask_h`` the forward recurrence and the
  last H the backward one.

Every analytic gradient (every parameter entry and the valid steps of X) is
compared with central differences in float64, with the step and the tolerance of
``_gradcheck.py`` (whose docstring explains them). Padding steps of X hold zeros,
as the engine requires, and are never perturbed; their gradient must be exactly 0.
Max pooling is not differentiable where two steps tie: there the engine splits the
gradient evenly among the tied steps (as ``torch.amax`` does), which is what central
differences measure (the mean of the two one-sided derivatives).
"""

from typing import NamedTuple

import numpy as np
import pytest
from _gradcheck import assert_grad_close, numerical_grad, objective
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_lstm._engine import backward, forward
from sklearn_lstm._network import Network

POOLINGS = ["last", "mean", "max", "none"]
F, N_OUT = 2, 2


# --------------------------------------------------------------------- helpers
def expected_layout(n_features, hidden, n_outputs, bidirectional):
    """Names and shapes of the flat parameters, in the documented order."""
    directions = ["", "_reverse"] if bidirectional else [""]
    names, shapes, n_in = [], [], n_features
    for layer, H in enumerate(hidden):
        for d in directions:
            names += [f"kernel{d}_{layer}", f"recurrent_kernel{d}_{layer}",
                      f"bias{d}_{layer}"]
            shapes += [(n_in, 4 * H), (H, 4 * H), (4 * H,)]
        n_in = len(directions) * H
    return names + ["coef", "intercept"], shapes + [(n_in, n_outputs), (n_outputs,)]


class Model(NamedTuple):
    """A network description and what the tests need to know of it."""

    network: Network
    hidden: tuple
    pooling: str
    bidirectional: bool
    n_outputs: int


def make_model(hidden, pooling, bidirectional=True, n_outputs=N_OUT):
    network = Network.stack(F, hidden, n_outputs, bidirectional=bidirectional,
                            pooling=pooling)
    _, shapes = expected_layout(F, hidden, n_outputs, bidirectional)
    assert [tuple(s) for s in network.shapes] == shapes
    return Model(network, tuple(hidden), pooling, bidirectional, n_outputs)


def random_params(rng, model, scale=0.5):
    """O(1) gate pre-activations, every parameter nonzero."""
    return [rng.normal(scale=scale, size=shape) for shape in model.network.shapes]


def run(model, X, params, **kwargs):
    return forward(X, params, network=model.network, **kwargs)


def valid_steps(B, T, lengths):
    """(B, T) boolean: which steps are inside their sequence."""
    if lengths is None:
        return np.ones((B, T), dtype=bool)
    return np.arange(T) < np.asarray(lengths)[:, None]


def make_batch(rng, B, T, lengths):
    """Random sequences, zero at the padding steps."""
    X = rng.normal(size=(B, T, F))
    X[~valid_steps(B, T, lengths)] = 0.0
    return X


def upstream(rng, model, B, T, lengths):
    """A random dL/dout, zero at padding steps."""
    if model.pooling != "none":
        return rng.normal(size=(B, model.n_outputs))
    G = rng.normal(size=(B, T, model.n_outputs))
    G[~valid_steps(B, T, lengths)] = 0.0
    return G


def check_grads_by_central_differences(model, X, params, G, lengths=None,
                                       masks=None):
    """Every parameter and every valid step of X, for f = objective(G, out)."""
    B, T, _ = X.shape
    valid = valid_steps(B, T, lengths)

    def f():
        out = run(model, X, params, lengths=lengths, masks=masks)[0]
        return objective(G, out, valid)

    out, cache = run(model, X, params, lengths=lengths, masks=masks)
    per_step = model.pooling == "none"
    assert out.shape == ((B, T, model.n_outputs) if per_step else (B, model.n_outputs))
    grads, dX = backward(G, cache, need_dX=True)
    names, _ = expected_layout(F, model.hidden, model.n_outputs, model.bidirectional)
    assert len(grads) == len(params) == len(names)
    for name, p, g in zip(names, params, grads):
        assert g.shape == p.shape, name
        assert_grad_close(g, numerical_grad(f, p), what=name)
    numerical_dX = np.zeros_like(X)
    for b, T_b in enumerate(valid.sum(axis=1)):
        # X[b, :T_b] is a contiguous view: perturbed in place, padding untouched.
        numerical_dX[b, :T_b] = numerical_grad(f, X[b, :T_b])
    assert dX.shape == X.shape
    assert_grad_close(dX, numerical_dX, what="X")
    assert_array_equal(dX[~valid], 0.0)
    return grads, dX


def make_masks(rng, B, model, rate=0.4):
    """Scaled dropout masks of every layer, each with dropped and kept entries."""
    masks, n_in = [], F
    width = 2 if model.bidirectional else 1
    for H in model.hidden:
        pair = tuple((rng.random((B, n)) >= rate) / (1.0 - rate)
                     for n in (n_in, width * H))
        for m in pair:
            assert (m == 0).any() and (m > 1).any()
        masks.append(pair)
        n_in = width * H
    return masks


def random_problem(seed, hidden, pooling, B, T, lengths, bidirectional=True):
    rng = np.random.default_rng(seed)
    model = make_model(hidden, pooling, bidirectional)
    X = make_batch(rng, B, T, lengths)
    params = random_params(rng, model)
    G = upstream(rng, model, B, T, lengths)
    return rng, model, X, params, G


HIDDEN = [pytest.param((3,), id="1-layer"), pytest.param((3, 2), id="2-layers")]
BATCHES = [
    pytest.param(None, id="rectangular"),
    pytest.param(np.array([4, 1, 3]), id="ragged"),  # full, a single step, between
]


# ---------------------------------------------------------------- structure
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_flat_parameters_follow_the_documented_order(bidirectional, pooling):
    model = make_model((3, 2), pooling, bidirectional)  # checks network.shapes
    params = model.network.init(np.random.RandomState(0), np.float64)
    _, shapes = expected_layout(F, (3, 2), N_OUT, bidirectional)
    assert [p.shape for p in params] == shapes
    assert all(p.dtype == np.float64 for p in params)


# ------------------------------------------------------ central differences
@pytest.mark.parametrize("lengths", BATCHES)
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_bidirectional_gradients_match_central_differences(pooling, hidden, lengths):
    _, model, X, params, G = random_problem(0, hidden, pooling, 3, 4, lengths)
    check_grads_by_central_differences(model, X, params, G, lengths)


# (B, T, lengths): one step only; one sequence; one sequence shorter than T.
EDGE_BATCHES = [
    pytest.param(2, 1, None, id="T=1"),
    pytest.param(1, 5, None, id="batch=1"),
    pytest.param(1, 5, np.array([2]), id="batch=1-ragged"),
]


@pytest.mark.parametrize("B, T, lengths", EDGE_BATCHES)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_bidirectional_edge_shapes_match_central_differences(pooling, B, T, lengths):
    _, model, X, params, G = random_problem(1, (3, 2), pooling, B, T, lengths)
    check_grads_by_central_differences(model, X, params, G, lengths)


@pytest.mark.parametrize("pooling", ["mean", "max", "none"])
def test_unidirectional_poolings_match_central_differences(pooling):
    lengths = np.array([2, 4, 1])
    _, model, X, params, G = random_problem(2, (3, 2), pooling, 3, 4, lengths,
                                            bidirectional=False)
    check_grads_by_central_differences(model, X, params, G, lengths)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_bidirectional_masked_gradients_match_central_differences(pooling):
    lengths = np.array([4, 2, 3])
    rng, model, X, params, G = random_problem(3, (3, 2), pooling, 3, 4, lengths)
    masks = make_masks(rng, 3, model)
    check_grads_by_central_differences(model, X, params, G, lengths, masks)


def test_bidirectional_masks_scale_each_directions_weights():
    """For one sample, ``(x * m_x) W = x (diag(m_x) W)``, and likewise for the
    recurrence: a masked sample equals that sample alone, unmasked, with the rows of
    both kernels scaled by its m_x, those of recurrent_kernel by the first H columns
    of its m_h and those of recurrent_kernel_reverse by the last H."""
    lengths = np.array([4, 2, 3])
    hidden = (3, 2)
    rng, model, X, params, _ = random_problem(4, hidden, "none", 3, 4, lengths)
    masks = make_masks(rng, 3, model)
    out = run(model, X, params, lengths=lengths, masks=masks)[0]
    unmasked = run(model, X, params, lengths=lengths)[0]
    valid = valid_steps(3, 4, lengths)
    assert not np.allclose(out[valid], unmasked[valid])
    for b, T_b in enumerate(lengths):
        scaled = [p.copy() for p in params]
        for layer, (H, (mask_x, mask_h)) in enumerate(zip(hidden, masks)):
            W, U, _, W_r, U_r, _ = scaled[6 * layer : 6 * layer + 6]
            W *= mask_x[b][:, None]
            W_r *= mask_x[b][:, None]
            U *= mask_h[b, :H][:, None]
            U_r *= mask_h[b, H:][:, None]
        alone = run(model, X[b : b + 1, :T_b].copy(), scaled)[0]
        assert_allclose(out[b, :T_b], alone[0], rtol=1e-12, atol=1e-14)


# -------------------------------------------------------------- max pooling ties
def test_max_pooling_splits_the_gradient_evenly_between_tied_steps():
    """With no recurrence (recurrent kernels 0) and a closed forget gate
    (sigmoid(-60) * c_{t-1} is below half an ulp of c_t = i * g), each direction's
    h_t is a function of x_t alone, so equal inputs at steps 0 and 2 give exactly
    equal hidden values there: max pooling ties. Perturbing x_0, x_2 or a recurrent
    kernel breaks the tie; central differences then give the mean of the one-sided
    derivatives, that is, the gradient split evenly between the tied steps."""
    B, T, H = 2, 3, 3
    _, model, X, params, G = random_problem(6, (H,), "max", B, T, None)
    for W, U, bias in (params[0:3], params[3:6]):
        U[...] = 0.0
        W[:, H : 2 * H] = 0.0  # forget gate: no input ...
        bias[H : 2 * H] = -60.0  # ... and closed
    X[:, 2] = X[:, 0]

    # The hidden values themselves: pooling "none" and an identity dense layer.
    per_step = make_model((H,), "none", n_outputs=2 * H)
    h = run(per_step, X, params[:6] + [np.eye(2 * H), np.zeros(2 * H)])[0]
    assert_array_equal(h[:, 0], h[:, 2])  # an exact tie ...
    # ... that the max picks for some units of each direction of each sample, while
    # other units take their max at step 1.
    tie_is_max = h[:, 0] > h[:, 1]
    assert tie_is_max[:, :H].any(axis=1).all() and tie_is_max[:, H:].any(axis=1).all()
    assert (~tie_is_max).any(axis=1).all()

    _, dX = check_grads_by_central_differences(model, X, params, G)
    # Both tied steps get the same share, and it is not zero.
    assert_allclose(dX[:, 2], dX[:, 0], rtol=1e-12, atol=1e-15)
    assert np.abs(dX[:, 0]).min() > 1e-6


# ---------------------------------------------------- padding changes nothing
@pytest.mark.parametrize("bidirectional", [True, False], ids=["bi", "uni"])
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_padded_sequence_equals_the_sequence_alone(pooling, hidden, bidirectional):
    lengths = np.array([6, 2, 4, 1, 5])
    _, model, X, params, G = random_problem(6, hidden, pooling, len(lengths), 6,
                                            lengths, bidirectional)
    out, cache = run(model, X, params, lengths=lengths)
    grads, dX = backward(G, cache, need_dX=True)

    summed = [np.zeros_like(p) for p in params]
    for b, T_b in enumerate(lengths):
        out_b, cache_b = run(model, X[b : b + 1, :T_b].copy(), params)  # unpadded
        if pooling == "none":
            assert_allclose(out[b, :T_b], out_b[0], rtol=1e-12, atol=1e-14)
            G_b = G[b : b + 1, :T_b].copy()
        else:
            assert_allclose(out[b], out_b[0], rtol=1e-12, atol=1e-14)
            G_b = G[b : b + 1].copy()
        grads_b, dX_b = backward(G_b, cache_b, need_dX=True)
        for acc, g in zip(summed, grads_b):
            acc += g
        assert_allclose(dX[b, :T_b], dX_b[0], rtol=1e-12, atol=1e-14)
        assert_array_equal(dX[b, T_b:], 0.0)  # the padding gets exactly nothing
    names, _ = expected_layout(F, hidden, N_OUT, bidirectional)
    for name, g, expected in zip(names, grads, summed):
        assert_allclose(g, expected, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("bidirectional", [True, False], ids=["bi", "uni"])
def test_per_step_upstream_gradient_at_padding_is_ignored(bidirectional):
    lengths = np.array([5, 1, 3])
    rng, model, X, params, G = random_problem(7, (3, 2), "none", 3, 5, lengths,
                                              bidirectional)
    noisy = G.copy()  # G is zero at padding, noisy is not
    padding = ~valid_steps(3, 5, lengths)
    noisy[padding] = rng.normal(scale=1e3, size=noisy[padding].shape)

    grads, dX = backward(G, run(model, X, params, lengths=lengths)[1], need_dX=True)
    grads_noisy, dX_noisy = backward(
        noisy, run(model, X, params, lengths=lengths)[1], need_dX=True
    )
    for g, g_noisy in zip(grads, grads_noisy):
        assert_array_equal(g_noisy, g)
    assert_array_equal(dX_noisy, dX)


@pytest.mark.parametrize("lengths", BATCHES)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_prediction_without_cache_gives_the_same_output(pooling, lengths):
    rng, model, X, params, _ = random_problem(8, (3, 2), pooling, 3, 4, lengths)
    masks = make_masks(rng, 3, model)
    valid = valid_steps(3, 4, lengths)
    for kwargs in ({}, {"masks": masks}):
        out, _ = run(model, X, params, lengths=lengths, **kwargs)
        out_nc, cache_nc = run(model, X, params, lengths=lengths, keep_cache=False,
                               **kwargs)
        assert cache_nc is None
        assert out_nc.shape == out.shape
        if pooling == "none":
            out, out_nc = out[valid], out_nc[valid]
        assert_allclose(out_nc, out, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "none"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_float32_stays_float32_on_ragged_batches(pooling, bidirectional):
    # Dividing by the integer lengths once made mean pooling float64.
    network = Network.stack(2, [3], 2, bidirectional=bidirectional, pooling=pooling)
    params = network.init(np.random.RandomState(0), np.float32)
    X = np.random.RandomState(1).normal(size=(4, 5, 2)).astype(np.float32)
    lengths = np.array([5, 2, 3, 1])
    X[np.arange(5) >= lengths[:, None]] = 0.0
    out, cache = forward(X, params, lengths, network=network)
    grads = backward(np.ones_like(out), cache)
    assert out.dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in grads)
