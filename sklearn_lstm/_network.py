"""The network's description: its layers, their named parameters and shapes.

Everything that depends on the model's structure asks this module: the engine
(which arrays feed which layer), the estimator (initialisation, the public
attributes ``lstm_coefs_``, ``coefs_``, ``intercepts_``, the L2 penalty), and the
helper processes (which run the engine from it). Adding a layer kind means
adding it here and in the engine's layer code, nothing else.

The parameters of a network live in one flat list, in the order of
:attr:`Network.specs`: the ``embedding`` table if the network has one, then each
LSTM layer's ``kernel``, ``recurrent_kernel`` and
``bias`` (and for a bidirectional layer the reverse direction's
``kernel_reverse``, ``recurrent_kernel_reverse`` and ``bias_reverse``), then the
output layer's ``coef`` and ``intercept``. That list holds the
very arrays the estimator exposes, so writing into a public array changes the model.

Nothing here imports scikit-learn: the helper processes load this module.
"""

from typing import NamedTuple

import numpy as np

__all__ = ["DenseLayer", "EmbeddingLayer", "LSTMLayer", "Network", "ParamSpec"]


class ParamSpec(NamedTuple):
    """One parameter array of a layer."""

    name: str  # its key in the layer's public dict
    shape: tuple
    penalised: bool  # whether the L2 penalty ``alpha`` applies to it
    init: str  # a key of _INITIALISERS: "glorot", "orthogonal", "zeros", ...


#: What the output layer reads from the top LSTM layer's outputs (see ``_engine``).
POOLINGS = ("last", "mean", "max", "none")


class EmbeddingLayer(NamedTuple):
    """A learned table of ``n_tokens`` vectors of ``n_dims`` values: the input is
    one integer token id per step, and the first LSTM layer reads row ``id`` of the
    table. Id 0 is padding, as in Keras; the row is an ordinary row, but padding
    steps never move it (their gradient is exactly zero).

    The table is drawn uniform in [-0.05, 0.05], Keras' ``Embedding`` default,
    to match the Keras defaults of the LSTM layers (Glorot, orthogonal, forget
    bias 1); ``torch.nn.Embedding`` draws N(0, 1) instead. It is not penalised by
    ``alpha``: although ``table[ids]`` is a kernel on one-hot inputs, the L2
    gradient reaches every row at every update while a token's data gradient
    reaches its row only in the batches holding it, so a dense penalty shrinks the
    rows of rare tokens toward zero between their appearances (Keras'
    ``Embedding`` has no regulariser by default either).
    """

    n_tokens: int
    n_dims: int

    @property
    def specs(self):
        shape = (self.n_tokens, self.n_dims)
        return (ParamSpec("embedding", shape, False, "embedding_uniform"),)


class LSTMLayer(NamedTuple):
    """An LSTM layer reading ``n_inputs`` values per step into ``n_hidden`` units;
    a bidirectional one also runs backward over each sequence, with its own
    weights, and outputs ``[h_forward | h_backward]`` (``2 * n_hidden``)."""

    n_inputs: int
    n_hidden: int
    bidirectional: bool = False

    @property
    def specs(self):
        F, H = self.n_inputs, self.n_hidden
        forward = (
            ParamSpec("kernel", (F, 4 * H), True, "glorot"),
            ParamSpec("recurrent_kernel", (H, 4 * H), True, "orthogonal"),
            ParamSpec("bias", (4 * H,), False, "lstm_bias"),
        )
        if not self.bidirectional:
            return forward
        return forward + tuple(spec._replace(name=spec.name + "_reverse")
                               for spec in forward)

    @property
    def n_directions(self):
        return 2 if self.bidirectional else 1

    @property
    def n_outputs(self):
        return self.n_directions * self.n_hidden


class DenseLayer(NamedTuple):
    """The output layer: ``out = h W + b`` on what the LSTM stack hands it."""

    n_inputs: int
    n_outputs: int

    @property
    def specs(self):
        return (
            ParamSpec("coef", (self.n_inputs, self.n_outputs), True, "glorot"),
            ParamSpec("intercept", (self.n_outputs,), False, "zeros"),
        )


class Network:
    """An optional embedding, a stack of LSTM layers and a dense output layer.

    Parameters
    ----------
    layers : sequence of an optional EmbeddingLayer, LSTMLayer(s), then one
        DenseLayer
    pooling : {"last", "mean", "max", "none"}, default="last"
        What the dense layer reads: the top layer's output at each sequence's last
        step (for a bidirectional layer, the backward half at its first step), the
        mean or the elementwise maximum of its outputs over the valid steps, or
        each step's output (one output per step).
    """

    def __init__(self, layers, pooling="last"):
        self.layers = tuple(layers)
        embedded = bool(self.layers) and isinstance(self.layers[0], EmbeddingLayer)
        self.embedding = self.layers[0] if embedded else None
        *lstm, head = self.layers[embedded:] or (None,)
        if (
            not lstm
            or not all(isinstance(layer, LSTMLayer) for layer in lstm)
            or not isinstance(head, DenseLayer)
        ):
            raise ValueError(
                "a network is an optional embedding, one or more LSTM layers, "
                "then a dense one"
            )
        if self.embedding is not None and lstm[0].n_inputs != self.embedding.n_dims:
            raise ValueError(
                f"the first LSTM layer reads {lstm[0].n_inputs} inputs per step, "
                f"the embedding gives {self.embedding.n_dims}"
            )
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.lstm = tuple(lstm)
        self.head = head
        # (layer index, spec) of every parameter, in the flat order.
        self.specs = [(k, spec) for k, layer in enumerate(self.layers)
                      for spec in layer.specs]
        self.shapes = [spec.shape for _, spec in self.specs]
        self.penalised = [i for i, (_, spec) in enumerate(self.specs) if spec.penalised]
        starts = np.cumsum([0] + [len(layer.specs) for layer in self.layers]).tolist()
        self._slices = [slice(a, b) for a, b in zip(starts, starts[1:])]

    @classmethod
    def stack(cls, n_features, hidden_sizes, n_outputs, *, bidirectional=False,
              pooling="last", embedding=None):
        """LSTM layers of ``hidden_sizes`` units on ``n_features`` inputs per step
        (all bidirectional or none), and a dense layer of ``n_outputs`` reading the
        last one as ``pooling`` says.

        With ``embedding=(n_tokens, n_dims)``, an :class:`EmbeddingLayer` comes
        first and the first LSTM layer reads its ``n_dims`` values per step
        (``n_features`` is then not read, and may be None: the input is one
        token id per step).
        """
        if embedding is None:
            layers, n_inputs = [], int(n_features)
        else:
            n_tokens, n_dims = embedding
            layers, n_inputs = [EmbeddingLayer(int(n_tokens), int(n_dims))], int(n_dims)
        for n_hidden in hidden_sizes:
            layer = LSTMLayer(n_inputs, int(n_hidden), bool(bidirectional))
            layers.append(layer)
            n_inputs = layer.n_outputs
        return cls(layers + [DenseLayer(n_inputs, int(n_outputs))], pooling)

    @classmethod
    def from_shapes(cls, shapes):
        """The plain LSTM stack whose flat parameters have these shapes."""
        shapes = [tuple(shape) for shape in shapes]
        if len(shapes) < 5 or (len(shapes) - 2) % 3:
            raise ValueError(f"no LSTM stack has parameters of shapes {shapes}")
        hidden = [shapes[k][0] for k in range(1, len(shapes) - 2, 3)]
        head = shapes[-2]
        network = cls.stack(shapes[0][0], hidden, head[1])
        if network.shapes != shapes:
            raise ValueError(f"no LSTM stack has parameters of shapes {shapes}")
        return network

    def __eq__(self, other):
        return (
            isinstance(other, Network)
            and self.layers == other.layers
            and self.pooling == other.pooling
        )

    def __hash__(self):
        return hash((self.layers, self.pooling))

    def __repr__(self):
        return f"Network({list(self.layers)!r}, pooling={self.pooling!r})"

    # ------------------------------------------------------------ structure
    @property
    def hidden_sizes(self):
        return [layer.n_hidden for layer in self.lstm]

    @property
    def n_outputs(self):
        return self.head.n_outputs

    @property
    def bidirectional(self):
        return any(layer.bidirectional for layer in self.lstm)

    @property
    def per_step(self):
        """Whether the network gives one output per time step."""
        return self.pooling == "none"

    def layer_params(self, params):
        """The parameters of each layer, as lists, in the order of ``layers``."""
        return [params[s] for s in self._slices]

    def parts(self):
        """The flat indices of the parameters of each named part: ``"embedding"``
        (if any), ``"lstm_0"``, ``"lstm_1"``, ... and ``"lstm"`` (all of them),
        and ``"output"`` (the dense layer)."""
        indices = [list(range(s.start, s.stop)) for s in self._slices]
        parts = {}
        if self.embedding is not None:
            parts["embedding"], *indices = indices
        *lstm, output = indices
        parts["lstm"] = [i for layer in lstm for i in layer]
        for k, layer in enumerate(lstm):
            parts[f"lstm_{k}"] = layer
        parts["output"] = output
        return parts

    def step_macs(self):
        """Multiply-adds of one sample's step through the LSTM layers (an
        embedding's lookup has none)."""
        return sum(
            4 * layer.n_outputs * (layer.n_hidden + layer.n_inputs + 1)
            for layer in self.lstm
        )

    def mask_shapes(self, n_samples):
        """Shapes of each LSTM layer's dropout masks, ``(inputs, recurrence)``;
        a bidirectional layer's recurrence mask is ``[forward | reverse]``."""
        return [((n_samples, layer.n_inputs), (n_samples, layer.n_outputs))
                for layer in self.lstm]

    # ----------------------------------------------------- initialisation
    def init(self, rng, dtype):
        """Fresh parameters drawn from ``rng`` (a RandomState), in the flat order.

        Kernels are Glorot-uniform, recurrent kernels orthogonal, biases zero but
        for an LSTM's forget gate, which starts at 1, and an embedding table
        uniform in [-0.05, 0.05] (see :class:`EmbeddingLayer`).
        """
        return [_INITIALISERS[spec.init](rng, spec.shape, dtype)
                for _, spec in self.specs]

    # ------------------------------------------------ public attributes
    def public_name(self, index):
        """How users see parameter ``index``, e.g. ``lstm_coefs_[0]["kernel"]``."""
        k, spec = self.specs[index]
        layer = self.layers[k]
        if isinstance(layer, EmbeddingLayer):
            return "embedding_"
        if isinstance(layer, LSTMLayer):
            return f'lstm_coefs_[{k - (self.embedding is not None)}]["{spec.name}"]'
        return f"{'coefs_' if spec.name == 'coef' else 'intercepts_'}[0]"

    def to_public(self, params):
        """The estimator's attributes holding ``params`` (the same arrays);
        ``embedding_`` only for a network with an embedding."""
        *per_layer, (coef, intercept) = self.layer_params(params)
        public = {}
        if self.embedding is not None:
            (public["embedding_"],), *per_layer = per_layer
        public["lstm_coefs_"] = [
            {spec.name: param for spec, param in zip(layer.specs, arrays)}
            for layer, arrays in zip(self.lstm, per_layer)
        ]
        public["coefs_"], public["intercepts_"] = [coef], [intercept]
        return public

    def from_public(self, lstm_coefs, coefs, intercepts, embedding=None):
        """The flat list of the arrays held by the public attributes (and
        ``embedding_``, which a network with an embedding needs and one without
        refuses)."""
        if (embedding is None) != (self.embedding is None):
            raise ValueError(
                "this model has no embedding_ table."
                if embedding is not None
                else "this model needs its embedding_ table."
            )
        if len(lstm_coefs) != len(self.lstm) or len(coefs) != 1 or len(intercepts) != 1:
            raise ValueError(
                f"lstm_coefs_ has {len(lstm_coefs)} layers, coefs_ {len(coefs)} and "
                f"intercepts_ {len(intercepts)} arrays; this model needs "
                f"{len(self.lstm)}, 1 and 1."
            )
        params = [] if embedding is None else [embedding]
        for k, (layer, arrays) in enumerate(zip(self.lstm, lstm_coefs)):
            for spec in layer.specs:
                if spec.name not in arrays:
                    raise ValueError(f'lstm_coefs_[{k}] has no "{spec.name}" array.')
                params.append(arrays[spec.name])
        return params + [coefs[0], intercepts[0]]

    def check(self, params):
        """Raise if a parameter is not a finite float array of its shape."""
        for index, (param, shape) in enumerate(zip(params, self.shapes)):
            if not isinstance(param, np.ndarray) or param.dtype.kind != "f":
                raise TypeError(
                    f"{self.public_name(index)} must be a float ndarray, got "
                    f"{type(param)}."
                )
            if param.shape != shape:
                raise ValueError(
                    f"{self.public_name(index)} has shape {param.shape}; this model "
                    f"needs {shape}."
                )
            if not np.isfinite(param).all():
                raise ValueError(f"{self.public_name(index)} contains NaN or infinity.")
        dtypes = {param.dtype for param in params}
        if len(dtypes) > 1:
            raise TypeError(
                f"The weights must all have one dtype, got {sorted(map(str, dtypes))}."
            )
        return params


def _glorot_uniform(rng, shape, dtype):
    fan_in, fan_out = shape
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def _orthogonal(rng, shape, dtype):
    """A (n_rows, n_cols) matrix with orthonormal rows (n_rows <= n_cols)."""
    n_rows, n_cols = shape
    a = rng.standard_normal((n_cols, n_rows))
    q, r = np.linalg.qr(a)  # q (n_cols, n_rows) with orthonormal columns
    q *= np.sign(np.diag(r))  # makes the decomposition unique, hence uniform
    return np.ascontiguousarray(q.T).astype(dtype)


def _embedding_uniform(rng, shape, dtype):
    """Keras' ``Embedding`` default, uniform in [-0.05, 0.05]."""
    return rng.uniform(-0.05, 0.05, size=shape).astype(dtype)


def _zeros(rng, shape, dtype):
    return np.zeros(shape, dtype=dtype)


def _lstm_bias(rng, shape, dtype):
    bias = np.zeros(shape, dtype=dtype)
    n_hidden = shape[0] // 4
    bias[n_hidden : 2 * n_hidden] = 1.0  # forget gate starts open
    return bias


_INITIALISERS = {
    "glorot": _glorot_uniform,
    "orthogonal": _orthogonal,
    "zeros": _zeros,
    "lstm_bias": _lstm_bias,
    "embedding_uniform": _embedding_uniform,
}
