"""The PyTorch module that :func:`sklearn_lstm.interop.to_torch` returns.

Importing this module does not import torch (the doctests of the package collect
every module, and torch is an optional extra): the class ``LSTMNet`` is made on
first access, e.g. by ``to_torch`` or by unpickling a saved module.
"""

from ._network import POOLINGS


def __getattr__(name):
    if name == "LSTMNet":
        cls = globals()["LSTMNet"] = _make_lstm_net()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _make_lstm_net():
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    class LSTMNet(nn.Module):
        """An optional ``nn.Embedding``, ``nn.LSTM`` layers and an ``nn.Linear``:
        the network of an LSTMRegressor / LSTMClassifier, up to its raw outputs.

        Parameters
        ----------
        n_inputs : int
            Features per time step, or the embedding's vector size with ``n_tokens``.
        hidden_sizes : sequence of int
            Hidden units of each LSTM layer. Equal sizes make one ``nn.LSTM`` of
            ``num_layers=len(hidden_sizes)``; different ones an ``nn.ModuleList`` of
            one-layer ``nn.LSTM`` (``nn.LSTM`` has one size for all its layers).
        n_outputs : int
            Outputs of the ``nn.Linear``.
        bidirectional : bool, default=False
        pooling : {"last", "mean", "max", "none"}, default="last"
        n_tokens : int or None, default=None
            Rows of an ``nn.Embedding(n_tokens, n_inputs, padding_idx=0)`` first.
        dtype : torch.dtype, default=torch.float64

        Attributes
        ----------
        embedding : nn.Embedding or None
        lstm : nn.LSTM or nn.ModuleList of nn.LSTM
        linear : nn.Linear
        """

        def __init__(self, n_inputs, hidden_sizes, n_outputs, *, bidirectional=False,
                     pooling="last", n_tokens=None, dtype=torch.float64):
            super().__init__()
            if pooling not in POOLINGS:
                raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
            self.pooling = pooling
            self.bidirectional = bool(bidirectional)
            self.embedding = None
            if n_tokens is not None:
                self.embedding = nn.Embedding(n_tokens, n_inputs, padding_idx=0,
                                              dtype=dtype)
            hidden_sizes = [int(h) for h in hidden_sizes]
            n_directions = 2 if bidirectional else 1
            if len(set(hidden_sizes)) == 1:
                self.lstm = nn.LSTM(n_inputs, hidden_sizes[0],
                                    num_layers=len(hidden_sizes),
                                    bidirectional=self.bidirectional, batch_first=True,
                                    dtype=dtype)
            else:
                layers = []
                for n_hidden in hidden_sizes:
                    layers.append(nn.LSTM(n_inputs, n_hidden,
                                          bidirectional=self.bidirectional,
                                          batch_first=True, dtype=dtype))
                    n_inputs = n_directions * n_hidden
                self.lstm = nn.ModuleList(layers)
            self.linear = nn.Linear(n_directions * hidden_sizes[-1], n_outputs,
                                    dtype=dtype)

        def lstm_layers(self):
            """``(module, k)`` of each LSTM layer, from the input up: its weights are
            ``module.weight_ih_l{k}``, ... (and ``*_reverse``)."""
            if isinstance(self.lstm, nn.LSTM):
                return [(self.lstm, k) for k in range(self.lstm.num_layers)]
            return [(module, 0) for module in self.lstm]

        def forward(self, X, lengths=None):
            """Raw outputs (before the output activation) of a padded batch.

            Parameters
            ----------
            X : Tensor of shape (N, T, n_features), or of int ids (N, T) with an
                embedding
                Sequences padded to T steps: with trailing all-NaN steps (or steps
                beyond ``lengths``) for features, with trailing 0 ids for ids.
                Features are cast to the dtype of the weights.
            lengths : Tensor or sequence of int of shape (N,), default=None
                The valid steps of each sequence (at least 1); None reads them from
                the padding of X.

            Returns
            -------
            out : Tensor of shape (N, n_outputs), or (N, T, n_outputs) with
                ``pooling="none"`` (whose padding steps hold the output of a zero
                state: mask them).
            """
            if self.embedding is not None:
                ids = torch.as_tensor(X)
                if lengths is None:  # up to each row's last nonzero id
                    nonzero = (ids != 0).flip(1).int()
                    lengths = ids.shape[1] - nonzero.argmax(dim=1)
                x = self.embedding(ids)
            else:
                x = torch.as_tensor(X).to(self.linear.weight.dtype)
                padding = torch.isnan(x).all(dim=2)  # (N, T)
                if lengths is None:
                    lengths = x.shape[1] - (~padding).flip(1).int().argmax(dim=1)
                x = x.masked_fill(padding.unsqueeze(2), 0.0)
            lengths = torch.as_tensor(lengths, dtype=torch.int64).cpu()
            n_steps = x.shape[1]
            h = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            for module in self._modules_in_order():
                h, (h_n, _) = module(h)
            if self.pooling == "last":  # h_n: forward at the last step, backward at 0
                top = h_n[-1]
                if self.bidirectional:
                    top = torch.cat([h_n[-2], h_n[-1]], dim=1)
                return self.linear(top)
            out, _ = pad_packed_sequence(h, batch_first=True, total_length=n_steps)
            if self.pooling == "none":
                return self.linear(out)  # (N, T, n_outputs)
            lengths = lengths.to(out.device)
            if self.pooling == "mean":  # padding steps of ``out`` are zeros
                pooled = out.sum(dim=1) / lengths.unsqueeze(1).to(out.dtype)
            else:
                valid = torch.arange(n_steps, device=out.device) < lengths.unsqueeze(1)
                pooled = out.masked_fill(~valid.unsqueeze(2), -torch.inf).amax(dim=1)
            return self.linear(pooled)

        def _modules_in_order(self):
            return [self.lstm] if isinstance(self.lstm, nn.LSTM) else list(self.lstm)

    LSTMNet.__qualname__ = "LSTMNet"  # where pickle finds it: this module's attribute
    return LSTMNet
