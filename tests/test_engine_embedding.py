"""The embedding layer of the engine: a learned table whose rows feed the first
LSTM layer, one integer token id per step (0 at padding steps, as in Keras).

``Network.stack(..., embedding=(n_tokens, n_dims))`` describes the model; its flat
parameters start with the table, and ``forward(ids, params, lengths,
network=network)`` runs it on ids of shape (B, T). The table's gradient is the
first layer's input gradient summed over the steps holding each id.

Central differences use the step and the tolerance of ``_gradcheck.py`` (whose
docstring explains them). The ids repeat within each batch, so that rows sum the
gradient of several steps and samples. The gold test replays the computation in
``torch.nn.Embedding`` + ``torch.nn.LSTM`` (packed, so that the reverse direction
runs over each sequence's own steps) + ``torch.nn.Linear`` in float64: outputs and
gradients agree to 1e-8 relative (rounding leaves ~1e-13; a wrong term is off by
1e-3 or more).
"""

import numpy as np
import pytest
from _gradcheck import (
    assert_close,
    assert_grad_close,
    numerical_grad,
    objective,
    torch_head,
)
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_lstm._engine import backward, forward
from sklearn_lstm._network import DenseLayer, EmbeddingLayer, LSTMLayer, Network

POOLINGS = ["last", "mean", "max", "none"]
N_TOKENS, N_DIMS, N_OUT = 7, 2, 2
HIDDEN = (3, 2)
UNSEEN = 6  # an id no batch here holds
BATCHES = [
    pytest.param(None, id="rectangular"),
    pytest.param(np.array([4, 1, 3]), id="ragged"),  # full, a single step, between
]
DIRECTIONS = [pytest.param(False, id="uni"), pytest.param(True, id="bi")]


# --------------------------------------------------------------------- helpers
def make_network(pooling, bidirectional, hidden=HIDDEN):
    return Network.stack(None, hidden, N_OUT, bidirectional=bidirectional,
                         pooling=pooling, embedding=(N_TOKENS, N_DIMS))


def valid_steps(B, T, lengths):
    """(B, T) boolean: which steps are inside their sequence."""
    if lengths is None:
        return np.ones((B, T), dtype=bool)
    return np.arange(T) < np.asarray(lengths)[:, None]


def make_ids(rng, B, T, lengths, low=0):
    """Ids in [low, UNSEEN) at the valid steps, 0 at padding; some ids repeat."""
    ids = rng.integers(low, UNSEEN, size=(B, T))
    ids[~valid_steps(B, T, lengths)] = 0
    valid_ids = ids[valid_steps(B, T, lengths)]
    assert len(np.unique(valid_ids)) < len(valid_ids)  # the scatter-add sums
    return ids


def random_params(rng, network, scale=0.5):
    """O(1) gate pre-activations, every parameter nonzero."""
    return [rng.normal(scale=scale, size=shape) for shape in network.shapes]


def upstream(rng, network, B, T, lengths):
    """A random dL/dout, zero at padding steps."""
    if not network.per_step:
        return rng.normal(size=(B, N_OUT))
    G = rng.normal(size=(B, T, N_OUT))
    G[~valid_steps(B, T, lengths)] = 0.0
    return G


def random_problem(seed, pooling, bidirectional, B, T, lengths, low=0):
    rng = np.random.default_rng(seed)
    network = make_network(pooling, bidirectional)
    ids = make_ids(rng, B, T, lengths, low)
    params = random_params(rng, network)
    return rng, network, ids, params, upstream(rng, network, B, T, lengths)


def make_masks(rng, B, network, rate=0.4):
    """Scaled dropout masks of every layer, each with dropped and kept entries."""
    masks = []
    for shapes in network.mask_shapes(B):
        pair = tuple((rng.random(shape) >= rate) / (1.0 - rate) for shape in shapes)
        for m in pair:
            assert (m == 0).any() and (m > 1).any()
        masks.append(pair)
    return masks


# ---------------------------------------------------------------- structure
@pytest.mark.parametrize("bidirectional", DIRECTIONS)
def test_embedding_comes_first_and_feeds_the_first_layer(bidirectional):
    network = make_network("last", bidirectional)
    plain = Network.stack(N_DIMS, HIDDEN, N_OUT, bidirectional=bidirectional)
    assert network.embedding == EmbeddingLayer(N_TOKENS, N_DIMS)
    assert network.layers[1:] == plain.layers
    assert network.lstm == plain.lstm and network.head == plain.head
    assert network.shapes == [(N_TOKENS, N_DIMS)] + plain.shapes
    assert network.penalised == [i + 1 for i in plain.penalised]  # not the table
    assert network.public_name(0) == "embedding_"
    assert [network.public_name(i + 1) for i in range(len(plain.shapes))] == [
        plain.public_name(i) for i in range(len(plain.shapes))
    ]
    assert network.mask_shapes(5) == plain.mask_shapes(5)
    assert network.step_macs() == plain.step_macs()
    assert plain.embedding is None

    params = network.init(np.random.RandomState(0), np.float64)
    table = params[0]
    assert table.shape == (N_TOKENS, N_DIMS) and table.dtype == np.float64
    assert np.abs(table).max() <= 0.05 and table.std() > 0.01  # Keras' default
    assert [p.shape for p in network.layer_params(params)[0]] == [table.shape]

    public = network.to_public(params)
    assert public["embedding_"] is table
    assert set(public) == {"embedding_", "lstm_coefs_", "coefs_", "intercepts_"}
    flat = network.from_public(public["lstm_coefs_"], public["coefs_"],
                               public["intercepts_"], public["embedding_"])
    assert all(a is b for a, b in zip(flat, params, strict=True))
    with pytest.raises(ValueError, match="needs its embedding_"):
        network.from_public(public["lstm_coefs_"], public["coefs_"],
                            public["intercepts_"])
    with pytest.raises(ValueError, match="has no embedding_"):
        plain.from_public(public["lstm_coefs_"], public["coefs_"],
                          public["intercepts_"], table)
    assert "embedding_" not in plain.to_public(plain.init(np.random.RandomState(0),
                                                          np.float64))


def test_networks_with_and_without_embedding_differ():
    network = make_network("mean", True)
    same = Network(network.layers, pooling="mean")
    assert network == same and hash(network) == hash(same)
    assert repr(network) == repr(same) and "EmbeddingLayer(n_tokens=7" in repr(same)
    assert network != make_network("mean", False)
    assert network != Network(network.layers[1:], pooling="mean")
    assert network != Network.stack(None, HIDDEN, N_OUT, bidirectional=True,
                                    pooling="mean", embedding=(N_TOKENS + 1, N_DIMS))


@pytest.mark.parametrize("layers", [
    pytest.param([EmbeddingLayer(5, 3), LSTMLayer(2, 4), DenseLayer(4, 1)],
                 id="width-mismatch"),
    pytest.param([LSTMLayer(2, 4), EmbeddingLayer(5, 4), DenseLayer(4, 1)],
                 id="not-first"),
    pytest.param([EmbeddingLayer(5, 2), DenseLayer(2, 1)], id="no-lstm"),
])
def test_embedding_must_come_first_and_match_the_first_layer(layers):
    with pytest.raises(ValueError):
        Network(layers)


# ------------------------------------------------------ central differences
def check_grads_by_central_differences(network, ids, params, G, lengths=None,
                                       masks=None):
    B, T = ids.shape
    valid = valid_steps(B, T, lengths)

    def f():
        out = forward(ids, params, lengths, masks, network=network)[0]
        return objective(G, out, valid)

    out, cache = forward(ids, params, lengths, masks, network=network)
    assert out.shape == ((B, T, N_OUT) if network.per_step else (B, N_OUT))
    grads = backward(G, cache)
    assert len(grads) == len(params)
    for index, (p, g) in enumerate(zip(params, grads)):
        assert g.shape == p.shape and g.dtype == p.dtype
        assert_grad_close(g, numerical_grad(f, p), what=network.public_name(index))
    return grads


@pytest.mark.parametrize("lengths", BATCHES)
@pytest.mark.parametrize("bidirectional", DIRECTIONS)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_gradients_match_central_differences(pooling, bidirectional, lengths):
    _, network, ids, params, G = random_problem(0, pooling, bidirectional, 3, 4,
                                                lengths)
    check_grads_by_central_differences(network, ids, params, G, lengths)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_masked_gradients_match_central_differences(pooling):
    """The first layer's input mask scales the embedded vectors."""
    lengths = np.array([4, 2, 3])
    rng, network, ids, params, G = random_problem(1, pooling, True, 3, 4, lengths)
    masks = make_masks(rng, 3, network)
    check_grads_by_central_differences(network, ids, params, G, lengths, masks)


# ------------------------------------------------- which rows move, and how
@pytest.mark.parametrize("lengths", BATCHES)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_rows_of_unseen_ids_and_padding_get_exactly_zero(pooling, lengths):
    """Valid steps hold ids 1..5: row 6 is never read and row 0 only at padding
    steps, so neither gets any gradient, and row 0 changes no output."""
    _, network, ids, params, G = random_problem(2, pooling, True, 3, 4, lengths,
                                                low=1)
    out, cache = forward(ids, params, lengths, network=network)
    table_grad = backward(G, cache)[0]
    valid = valid_steps(3, 4, lengths)
    seen = np.isin(np.arange(N_TOKENS), ids[valid])
    assert not seen[0] and not seen[UNSEEN]
    assert_array_equal(table_grad[~seen], 0.0)
    assert (table_grad[seen] != 0).all()

    moved = [p.copy() for p in params]
    moved[0][[0, UNSEEN]] += 10.0
    out_moved = forward(ids, moved, lengths, network=network)[0]
    if network.per_step:
        out, out_moved = out[valid], out_moved[valid]
    assert_array_equal(out_moved, out)


def test_table_gradient_is_the_first_layers_input_gradient_summed_per_id():
    """The same network without the table, on the embedded vectors: its input
    gradient, added up per id (np.add.at, one step at a time), is the table's."""
    lengths = np.array([4, 1, 3])
    _, network, ids, params, G = random_problem(3, "mean", True, 3, 4, lengths)
    table = params[0]
    plain = Network(network.layers[1:], pooling="mean")
    X = table[ids]  # (B, T, E)
    out, cache = forward(X, params[1:], lengths, network=plain)
    grads, dX = backward(G, cache, need_dX=True)
    expected = np.zeros_like(table)
    np.add.at(expected, ids, dX)
    out_emb, cache_emb = forward(ids, params, lengths, network=network)
    grads_emb = backward(G, cache_emb)
    assert_array_equal(out_emb, out)
    assert_allclose(grads_emb[0], expected, rtol=1e-13, atol=1e-15)
    for g_emb, g in zip(grads_emb[1:], grads):
        assert_array_equal(g_emb, g)


def test_token_ids_have_no_input_gradient():
    _, network, ids, params, G = random_problem(4, "last", False, 3, 4, None)
    cache = forward(ids, params, network=network)[1]
    with pytest.raises(ValueError, match="need_dX=False"):
        backward(G, cache, need_dX=True)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_prediction_in_blocks_gives_the_same_output(pooling):
    """Without cache a wide batch runs in blocks, in the table's dtype."""
    rng = np.random.default_rng(5)
    B, T = 6000, 3  # over 5461, the block of these widths in float32
    lengths = rng.integers(1, T + 1, size=B)
    network = make_network(pooling, True)
    ids = make_ids(rng, B, T, lengths)
    params = [p.astype(np.float32) for p in random_params(rng, network)]
    out, _ = forward(ids, params, lengths, network=network)
    out_nc, cache = forward(ids, params, lengths, keep_cache=False, network=network)
    assert cache is None and out_nc.dtype == np.float32  # not the ids' dtype
    if network.per_step:
        valid = valid_steps(B, T, lengths)
        out, out_nc = out[valid], out_nc[valid]
    assert_allclose(out_nc, out, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------- torch gold
class TorchEmbeddingNet:
    """``nn.Embedding``, ``nn.LSTM`` layers fed packed sequences, ``nn.Linear``,
    holding a copy of our flat parameters (``bias_ih = bias``, ``bias_hh = 0``)."""

    def __init__(self, torch, network, params):
        F64 = torch.float64
        self.torch = torch
        self.embedding = torch.nn.Embedding(*params[0].shape, dtype=F64)
        self.lstms, self.directions = [], []
        suffixes = ("", "_reverse")
        for layer in network.lstm:
            lstm = torch.nn.LSTM(layer.n_inputs, layer.n_hidden, batch_first=True,
                                 bidirectional=layer.bidirectional, dtype=F64)
            self.lstms.append(lstm)
            for d in range(layer.n_directions):
                self.directions.append(tuple(
                    getattr(lstm, f"{kind}_l0{suffixes[d]}")
                    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                ))
        self.linear = torch.nn.Linear(*params[-2].shape, dtype=F64)
        with torch.no_grad():
            self.embedding.weight.copy_(torch.tensor(params[0]))
            lstm_params = params[1:-2]
            for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.directions):
                W, U, b = lstm_params[3 * k : 3 * k + 3]
                w_ih.copy_(torch.tensor(W.T))
                w_hh.copy_(torch.tensor(U.T))
                b_ih.copy_(torch.tensor(b))
                b_hh.zero_()
            self.linear.weight.copy_(torch.tensor(params[-2].T))
            self.linear.bias.copy_(torch.tensor(params[-1]))
        self.bidirectional = network.bidirectional

    def __call__(self, ids, lengths, pooling):
        torch = self.torch
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        B, T = ids.shape
        lengths = torch.as_tensor(np.full(B, T) if lengths is None else lengths,
                                  dtype=torch.int64)
        seq = pack_padded_sequence(self.embedding(torch.as_tensor(ids)), lengths,
                                   batch_first=True, enforce_sorted=False)
        for lstm in self.lstms:
            seq, (h_n, _) = lstm(seq)
        outputs, _ = pad_packed_sequence(seq, batch_first=True, total_length=T)
        return torch_head(
            torch, outputs, h_n, lengths, pooling, self.linear, self.bidirectional
        )

    def grads(self, loss):
        """torch's gradients of ``loss`` in our flat order and layout."""
        loss.backward()
        out = [self.embedding.weight.grad.numpy()]
        for w_ih, w_hh, b_ih, b_hh in self.directions:
            assert_close(b_hh.grad.numpy(), b_ih.grad.numpy(), 1e-12)
            out += [w_ih.grad.numpy().T, w_hh.grad.numpy().T, b_ih.grad.numpy()]
        return out + [self.linear.weight.grad.numpy().T, self.linear.bias.grad.numpy()]


@pytest.mark.parametrize("lengths", [
    pytest.param(None, id="rectangular"),
    pytest.param(np.array([5, 2, 4, 1, 3]), id="ragged"),
])
@pytest.mark.parametrize("bidirectional", DIRECTIONS)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_matches_torch(pooling, bidirectional, lengths):
    torch = pytest.importorskip("torch")
    B, T = 5, 5
    rng = np.random.default_rng(6)
    network = make_network(pooling, bidirectional)
    ids = make_ids(rng, B, T, lengths, low=1)  # row 0 and row 6 get nothing
    params = random_params(rng, network)
    G = upstream(rng, network, B, T, lengths)

    out, cache = forward(ids, params, lengths, network=network)
    grads = backward(G, cache)

    net = TorchEmbeddingNet(torch, network, params)
    out_torch = net(ids, lengths, pooling)
    valid = valid_steps(B, T, lengths)
    if network.per_step:
        assert_close(out[valid], out_torch.detach().numpy()[valid], 1e-8, "out")
    else:
        assert_close(out, out_torch.detach().numpy(), 1e-8, "out")
    G_torch = torch.tensor(G)  # zero at padding steps
    torch_grads = net.grads((out_torch * G_torch).sum())
    assert len(torch_grads) == len(grads)
    for index, (g, g_torch) in enumerate(zip(grads, torch_grads)):
        assert_close(g, g_torch, 1e-8, network.public_name(index))
    assert_array_equal(grads[0][[0, UNSEEN]], 0.0)
