"""The engine's chunks of steps give the same numbers as one chunk.

For speed the engine runs the time steps in chunks sized to stay in cache
(``_CHUNK_BYTES``) and gathers several chunks for each product that gives the
weight gradients (``_SPAN_BYTES``). The small problems of the gradient checks fit
in one chunk, so here both sizes are shrunk until chunks hold one to a few steps,
and spans one to a few chunks, with sequence lengths that are not multiples of
either. The outputs and every gradient must equal those of a single chunk (up to
the order of summation, 1e-12), itself checked by central differences in
``tests/test_engine.py``; one case is checked by central differences as well.
"""

import numpy as np
import pytest
from _gradcheck import make_params
from numpy.testing import assert_allclose
from test_engine_masks import check_grads_by_central_differences, make_masks

import sklearn_lstm._engine as engine
from sklearn_lstm._engine import Workspace, backward, forward
from sklearn_lstm._network import Network

B, T, F, HIDDEN, N_OUT = 3, 11, 2, (4, 3), 2


def run(X, params, **kwargs):
    out, cache = forward(X, params, **kwargs)
    grads, dX = backward(np.ones_like(out), cache, need_dX=True)
    predicted, _ = forward(X, params, keep_cache=False, **kwargs)
    return [out, predicted, dX, *grads]


def shrink(monkeypatch, chunk_steps, span_chunks, itemsize=8):
    """Chunks of ``chunk_steps`` steps in the widest layer, spans of so many."""
    per_step = 6 * max(HIDDEN) * B * itemsize
    monkeypatch.setattr(engine, "_CHUNK_BYTES", chunk_steps * per_step)
    span = 4 * max(HIDDEN) * B * itemsize * chunk_steps * span_chunks
    monkeypatch.setattr(engine, "_SPAN_BYTES", span)


def problem(seed, ragged, dropout):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(B, T, F))
    params = make_params(rng, F, HIDDEN, N_OUT)
    kwargs = {}
    if ragged:
        kwargs["lengths"] = np.array([T, 4, 7])
        X[1, 4:] = 0.0
        X[2, 7:] = 0.0
    if dropout:
        kwargs["masks"] = make_masks(rng, B, F, HIDDEN, 0.3, 0.4)
    return X, params, kwargs


@pytest.mark.parametrize("chunk_steps, span_chunks", [(1, 1), (2, 1), (3, 2), (4, 5)])
@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
def test_chunks_and_spans_change_nothing(
    monkeypatch, chunk_steps, span_chunks, ragged, dropout
):
    X, params, kwargs = problem(0, ragged, dropout)
    one_chunk = run(X, params, **kwargs)
    shrink(monkeypatch, chunk_steps, span_chunks)
    assert engine._chunk_steps(T, max(HIDDEN), B, 8) == chunk_steps  # really split
    chunked = run(X, params, **kwargs)
    for a, b in zip(one_chunk, chunked):
        assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_reused_workspace_with_other_shapes(monkeypatch):
    """Buffers of one batch shape serve the next, larger or smaller, with or
    without dropout and ragged lengths; the views kept from one batch to the next
    (Workspace.memo) must follow every change."""
    shrink(monkeypatch, 2, 2)
    workspace = Workspace()
    batches = [
        (3, 11, False, False),
        (3, 11, True, False),  # the same shape, now with dropout
        (3, 11, False, False),  # and without again
        (5, 4, False, False),
        (2, 13, True, True),
        (2, 13, False, True),
        (2, 13, False, "short"),  # no sequence reaches the last step
        (3, 11, True, False),  # back to the first shape
        (3, 11, True, False),  # the same batch shape twice
    ]
    for seed, (b, t, dropout, ragged) in enumerate(batches):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(b, t, F))
        params = make_params(rng, F, HIDDEN, N_OUT)
        kwargs = {}
        if dropout:
            kwargs["masks"] = make_masks(rng, b, F, HIDDEN, 0.3, 0.4)
        if ragged:
            lengths = rng.integers(1, t, size=b)
            if ragged != "short":
                lengths[0] = t
            for k, n in enumerate(lengths):
                X[k, n:] = 0.0
            kwargs["lengths"] = lengths
        fresh = run(X, params, **kwargs)
        # Whatever the last batch left must not be read before it is written.
        for view in workspace._views.values():
            view.base.fill(np.nan)
        reused = run(X, params, workspace=workspace, **kwargs)
        for a, c in zip(fresh, reused):
            assert_allclose(c, a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block", [1, 2, 5])
@pytest.mark.parametrize("ragged", [False, "sorted", "unsorted"])
@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
def test_prediction_blocks_change_nothing(monkeypatch, block, ragged, dropout):
    """Prediction (no cache) runs a wide batch in blocks of samples, each cut to
    its longest sequence; the outputs must be those of the whole batch at once,
    which the forward pass of training computes."""
    b = 13
    rng = np.random.default_rng(block)
    X = rng.normal(size=(b, T, F))
    params = make_params(rng, F, HIDDEN, N_OUT)
    kwargs = {}
    if ragged:
        lengths = rng.integers(1, T + 1, size=b)
        lengths[b // 2] = T
        if ragged == "sorted":  # as prediction passes them: blocks get shorter
            lengths = np.sort(lengths)
        for k, n in enumerate(lengths):
            X[k, n:] = 0.0
        kwargs["lengths"] = lengths
    if dropout:
        kwargs["masks"] = make_masks(rng, b, F, HIDDEN, 0.3, 0.4)
    whole, _ = forward(X, params, **kwargs)
    monkeypatch.setattr(engine, "_BLOCK_MIN", 1)
    monkeypatch.setattr(engine, "_BLOCK_BYTES", 4 * max(HIDDEN) * 8 * block)
    network = Network.from_shapes([p.shape for p in params])
    assert engine._block_samples(network, 8) == block  # really split
    X_before = X.copy()
    workspace = Workspace()
    for _ in range(2):  # the second time with the workspace the first one left
        blocks, cache = forward(
            X, params, keep_cache=False, workspace=workspace, **kwargs
        )
        assert cache is None
        assert_allclose(blocks, whole, rtol=1e-12, atol=1e-12)
    assert_allclose(X, X_before, rtol=0, atol=0)


def test_workspace_keeps_views_only_while_unchanged():
    workspace = Workspace()
    a = workspace.empty("a", (2, 3), np.float64)
    assert workspace.empty("a", (2, 3), np.float64) is a
    smaller = workspace.empty("a", (3, 1), np.float64)
    assert smaller.shape == (3, 1) and np.shares_memory(smaller, a)
    assert workspace.empty("a", (2, 3), np.float32).dtype == np.float32
    larger = workspace.empty("a", (4, 5), np.float32)
    assert larger.shape == (4, 5)

    calls = []

    def make():
        calls.append(1)
        return len(calls)

    b = workspace.empty("b", (4,), np.float64)
    assert workspace.memo("m", (larger, b), make) == 1
    assert workspace.memo("m", (larger, b), make) == 1  # kept
    other = workspace.empty("b", (5,), np.float64)
    assert workspace.memo("m", (larger, other), make) == 2  # one array changed
    assert workspace.memo("m", (larger, None), make) == 3
    assert workspace.memo("m", (larger, None), make) == 3


def cut_products(monkeypatch, limit):
    """Every per-step product cut into blocks of at most ``limit`` multiply-adds,
    as on a BLAS with a path for small products (``engine._small_product``)."""
    monkeypatch.setattr(engine, "_small_product", lambda: limit)
    monkeypatch.setattr(engine, "_SMALL_PRODUCT_ROWS", 1)


@pytest.mark.parametrize("limit", [40, 50, 100, 130])
@pytest.mark.parametrize("ragged", [False, True], ids=["full", "ragged"])
@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
def test_cut_products_change_nothing(monkeypatch, limit, ragged, dropout):
    """Where BLAS multiplies small products faster, the engine cuts each step's
    products (the gates' in the forward pass, the recurrence's and the inputs'
    gradients in the backward pass) into blocks of rows: the outputs and every
    gradient must be those of whole products."""
    X, params, kwargs = problem(2, ragged, dropout)
    whole = run(X, params, **kwargs)
    cut_products(monkeypatch, limit)
    H1, H2 = HIDDEN
    # Really cut: the first layer's gates (4 H1 rows of H1 + F + 1), and one of
    # the recurrences' gradients (H rows of 4 H) or the second layer's inputs'
    # gradient (H1 rows of 4 H2).
    assert len(engine._row_cuts(4 * H1, H1 + F + 1, B, limit)) > 2
    backward_cuts = [engine._row_cuts(H, 4 * H, B, limit) for H in HIDDEN]
    backward_cuts.append(engine._row_cuts(H1, 4 * H2, B, limit))
    assert any(len(cuts) > 1 for cuts in backward_cuts)
    for a, b in zip(whole, run(X, params, **kwargs)):
        assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_cut_gradients_match_central_differences(monkeypatch):
    X, params, kwargs = problem(3, ragged=True, dropout=True)
    cut_products(monkeypatch, 50)
    check_grads_by_central_differences(X, params, np.ones((B, N_OUT)), **kwargs)


@pytest.mark.parametrize("m, k, n", [(512, 145, 16), (128, 512, 16), (400, 117, 128),
                                     (7, 5, 3), (1024, 258, 8)])
@pytest.mark.parametrize("limit", [1, 100, 10_000, 10**6])
def test_row_cuts_are_the_fewest_blocks_under_the_limit(monkeypatch, m, k, n, limit):
    monkeypatch.setattr(engine, "_SMALL_PRODUCT_ROWS", 1)
    cuts = engine._row_cuts(m, k, n, limit)
    assert cuts[0][0] == 0 and cuts[-1][1] == m
    assert all(b0 == a1 for (_, b0), (a1, _) in zip(cuts, cuts[1:]))
    sizes = [b - a for a, b in cuts]
    if len(cuts) == 1:  # whole: it fits, or not even one row does
        assert m * k * n <= limit or k * n > limit
    else:
        assert max(sizes) * k * n <= limit
        assert max(sizes) - min(sizes) <= 1
        assert -(-m // (len(cuts) - 1)) * k * n > limit  # one block fewer won't do
    assert engine._row_cuts(m, k, n, 0) == [(0, m)]


def test_products_are_not_cut_into_blocks_of_few_rows():
    limit = 10**6
    rows = limit // (145 * 16)  # rows of 145 x 16 that fit
    assert engine._row_cuts(4 * rows, 145, 16, limit) == [
        (i * rows, (i + 1) * rows) for i in range(4)
    ]
    assert engine._row_cuts(512, 145, 16 * rows, limit) == [(0, 512)]  # 1 row


def test_chunked_gradients_match_central_differences(monkeypatch):
    X, params, kwargs = problem(1, ragged=True, dropout=True)
    shrink(monkeypatch, 2, 2)
    check_grads_by_central_differences(X, params, np.ones((B, N_OUT)), **kwargs)
