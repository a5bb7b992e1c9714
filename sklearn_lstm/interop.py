"""Fitted models to and from PyTorch and Keras.

:func:`to_torch` and :func:`to_keras` give a module / model computing the raw
outputs of a fitted :class:`~sklearn_lstm.LSTMRegressor` or
:class:`~sklearn_lstm.LSTMClassifier` (before the output activation);
:func:`from_torch` and :func:`from_keras` read a PyTorch or Keras network into a
fitted estimator, which predicts, scores, pickles, clones (its ``init`` holds the
weights read) and trains on with ``partial_fit`` or ``warm_start``.

The weights map one to one (ours: PyTorch; Keras 3), and in both directions a
round trip gives back the very same bits:

- ``embedding_``: ``nn.Embedding.weight``; ``Embedding``'s embeddings;
- ``lstm_coefs_[l]["kernel"]``: ``weight_ih_l{k}.T``; ``LSTM``'s kernel;
- ``lstm_coefs_[l]["recurrent_kernel"]``: ``weight_hh_l{k}.T``; its
  recurrent_kernel;
- ``lstm_coefs_[l]["bias"]``: ``bias_ih_l{k} + bias_hh_l{k}``; its bias;
- ``coefs_[0]``, ``intercepts_[0]``: ``nn.Linear``'s ``weight.T`` and ``bias``;
  ``Dense``'s kernel and bias;

and ``*_reverse`` for the backward direction: PyTorch's ``*_reverse`` tensors,
the backward layer of Keras' ``Bidirectional``. All three stack the gates
``[input | forget | cell | output]`` and compute the same cell (sigmoid gates,
tanh cell and output). PyTorch has two LSTM biases where we have one: their
sum is read, and ``to_torch`` puts ours in ``bias_ih`` and zeros in
``bias_hh``, so that a round trip is exact.

torch and keras are optional: install ``sklearn-lstm[torch]`` or
``sklearn-lstm[keras]``; nothing here imports them before it is needed.
"""

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.validation import check_is_fitted, check_random_state

from ._base import BaseLSTM
from ._network import Network

__all__ = ["from_keras", "from_torch", "to_keras", "to_torch"]

_DIRECTIONS = ("", "_reverse")


# ------------------------------------------------------------------- imports
def _import_torch(what):
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            f"{what} needs PyTorch, an optional dependency of sklearn-lstm: "
            'pip install "sklearn-lstm[torch]"'
        ) from exc
    return torch


def _import_keras(what):
    try:
        import keras
    except ImportError as exc:
        raise ImportError(
            f"{what} needs Keras 3, an optional dependency of sklearn-lstm: "
            'pip install "sklearn-lstm[keras]"'
        ) from exc
    if int(keras.__version__.split(".")[0]) < 3:
        raise ImportError(
            f"{what} needs Keras 3, found Keras {keras.__version__}: "
            'pip install "sklearn-lstm[keras]"'
        )
    return keras


# --------------------------------------------------------- fitted estimators
def _fitted_weights(estimator):
    """The network and public weights of a fitted estimator."""
    if not isinstance(estimator, BaseLSTM):
        raise TypeError(
            "estimator must be an LSTMRegressor or LSTMClassifier, got "
            f"{type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    params = estimator._check_weights()
    return estimator._network, estimator._network.to_public(params)


def _check_target(estimator):
    if not isinstance(estimator, BaseLSTM):
        raise TypeError(
            "estimator must be an (unfitted) LSTMRegressor or LSTMClassifier "
            f"giving the parameters of the model, got {type(estimator).__name__}."
        )
    estimator = clone(estimator)
    estimator._validate_params()
    return estimator


def _output_weights(estimator, coef, intercept, classes, source):
    """The output layer's weights for the estimator's outputs: for a classifier,
    columns in the order of ``classes_`` (sorted), and one logit for two classes
    (a softmax pair ``(z0, z1)`` becomes ``z1 - z0``, the same probabilities)."""
    if not is_classifier(estimator):
        if classes is not None:
            raise ValueError("classes is for classifiers; a regressor has none.")
        return coef, intercept, None
    if classes is None:
        raise ValueError(
            "classes is required for a classifier: the label of each output of "
            f"the {source} model, in order (for one logit, the labels of "
            "probabilities 1 - sigmoid and sigmoid)."
        )
    classes = np.asarray(classes)
    if classes.ndim != 1 or len(classes) < 2:
        raise ValueError(
            f"classes must be a 1D array of at least 2 labels, got shape "
            f"{classes.shape} (multilabel models cannot be read)."
        )
    if len(np.unique(classes)) != len(classes):
        raise ValueError(f"classes holds a label twice: {classes!r}.")
    n_outputs = coef.shape[1]
    order = np.argsort(classes, kind="stable")  # classes[order] is classes_
    if len(classes) > 2 and n_outputs == len(classes):
        return coef[:, order], intercept[order], classes
    if len(classes) == 2 and n_outputs == 2:
        hi, lo = order[1], order[0]
        return coef[:, [hi]] - coef[:, [lo]], intercept[[hi]] - intercept[[lo]], classes
    if len(classes) == 2 and n_outputs == 1:
        if order[0] == 1:  # the logit is that of classes_[0]
            return -coef, -intercept, classes
        return coef, intercept, classes
    need = "1 (or 2)" if len(classes) == 2 else str(len(classes))
    raise ValueError(
        f"The {source} output layer has {n_outputs} output(s); {len(classes)} "
        f"classes need {need}."
    )


def _fitted_from(estimator, embedding, lstm_coefs, coef, intercept, classes,
                 source, pooling=None):
    """A fitted clone of ``estimator`` whose weights are these arrays (fresh
    NumPy arrays, not shared with the source), checked against its parameters;
    its ``init`` holds copies of them."""
    if pooling is not None and pooling != estimator.pooling:
        raise ValueError(
            f"The {source} model pools its LSTM outputs as pooling={pooling!r}, "
            f"but the estimator has pooling={estimator.pooling!r}."
        )
    hidden = [layer["recurrent_kernel"].shape[0] for layer in lstm_coefs]
    if hidden != estimator._layer_sizes():
        raise ValueError(
            f"The {source} LSTM layers have {tuple(hidden)} hidden units, but the "
            f"estimator has hidden_layer_sizes={estimator.hidden_layer_sizes!r}."
        )
    bidirectional = "kernel_reverse" in lstm_coefs[0]
    if bidirectional != bool(estimator.bidirectional):
        raise ValueError(
            f"The {source} LSTM layers are {'' if bidirectional else 'not '}"
            f"bidirectional, but the estimator has "
            f"bidirectional={estimator.bidirectional!r}."
        )
    n_dims = None if embedding is None else embedding.shape[1]
    if n_dims != estimator.embedding_dim:
        raise ValueError(
            f"The {source} model "
            + ("has no embedding" if n_dims is None else f"embeds ids in {n_dims} "
               "dimensions")
            + f", but the estimator has embedding_dim={estimator.embedding_dim!r}."
        )
    coef, intercept, classes = _output_weights(
        estimator, coef, intercept, classes, source
    )
    arrays = ([] if embedding is None else [embedding]) + [
        a for layer in lstm_coefs for a in layer.values()
    ] + [coef, intercept]
    dtype = np.float32 if all(a.dtype == np.float32 for a in arrays) else np.float64

    def cast(a):
        return np.ascontiguousarray(a, dtype=dtype)

    embedding = None if embedding is None else cast(embedding)
    lstm_coefs = [{name: cast(a) for name, a in layer.items()} for layer in lstm_coefs]
    coef, intercept = cast(coef), cast(intercept)
    n_features = lstm_coefs[0]["kernel"].shape[0]
    network = Network.stack(
        n_features,
        hidden,
        coef.shape[1],
        bidirectional=bidirectional,
        pooling=estimator.pooling,
        embedding=None if embedding is None else embedding.shape,
    )
    try:
        params = network.check(
            network.from_public(lstm_coefs, [coef], [intercept], embedding)
        )
    except ValueError as exc:
        raise ValueError(f"The {source} weights do not fit together: {exc}") from None
    init = network.to_public([param.copy() for param in params])
    estimator.set_params(init=init)
    estimator._random_state = check_random_state(estimator.random_state)
    estimator._set_network(network, params)
    estimator.n_features_in_ = 1 if embedding is not None else n_features
    estimator._input_ndim = None if embedding is not None else 3
    if classes is None:
        estimator.out_activation_ = "identity"
    else:
        estimator._label_binarizer = LabelBinarizer().fit(classes)
        estimator.classes_ = estimator._label_binarizer.classes_
        estimator.out_activation_ = "logistic" if len(classes) == 2 else "softmax"
    return estimator


# ------------------------------------------------------------------- PyTorch
def to_torch(estimator):
    """The fitted network as a PyTorch module computing its raw outputs.

    Parameters
    ----------
    estimator : LSTMRegressor or LSTMClassifier
        A fitted estimator.

    Returns
    -------
    module : torch.nn.Module
        ``embedding`` (an ``nn.Embedding(n_tokens, embedding_dim,
        padding_idx=0)``, or None), ``lstm`` (one ``nn.LSTM(batch_first=True)``
        of ``num_layers`` layers when all have the same size, else an
        ``nn.ModuleList`` of one-layer ones) and ``linear`` (``nn.Linear``),
        with the estimator's weights in its dtype, in eval mode. Its forward
        is ``module(X, lengths=None)``:

        - ``X``: a tensor (N, T, n_features) padded with trailing all-NaN
          steps (the estimator's own padding; a model fitted on 2D X, one
          feature per step, reads ``X[:, :, None]``), or token ids (N, T)
          padded with trailing zeros for a model with ``embedding_dim``;
        - ``lengths``: the valid steps of each sequence (N,), read from the
          padding when None; steps beyond them are never read (packed
          sequences).

        It returns the raw outputs (N, n_outputs), or (N, T, n_outputs) with
        ``pooling="none"`` (padding steps hold garbage: mask them): what
        ``predict`` gives for a regressor; for a classifier, logits:
        ``torch.sigmoid`` of the one output of a binary classifier is the
        probability of ``classes_[1]``, ``torch.softmax(out, dim=-1)`` the
        probabilities of a multiclass one in the order of ``classes_``, and
        ``torch.sigmoid`` of each output those of each label of a multilabel
        one.

    See Also
    --------
    from_torch : The reverse way.
    to_keras : The same for Keras.
    """
    network, public = _fitted_weights(estimator)
    torch = _import_torch("to_torch")
    from ._torch import LSTMNet

    dtype = torch.float32 if public["coefs_"][0].dtype == np.float32 else torch.float64
    module = LSTMNet(
        network.lstm[0].n_inputs,
        network.hidden_sizes,
        network.n_outputs,
        bidirectional=network.bidirectional,
        pooling=network.pooling,
        n_tokens=None if network.embedding is None else network.embedding.n_tokens,
        dtype=dtype,
    )

    def put(param, array):
        param.copy_(torch.from_numpy(np.ascontiguousarray(array)))

    with torch.no_grad():
        if network.embedding is not None:
            put(module.embedding.weight, public["embedding_"])
        for (lstm, k), layer in zip(module.lstm_layers(), public["lstm_coefs_"]):
            for suffix in _DIRECTIONS[: 2 if network.bidirectional else 1]:
                name = f"l{k}{suffix}"
                put(getattr(lstm, "weight_ih_" + name), layer["kernel" + suffix].T)
                put(getattr(lstm, "weight_hh_" + name),
                    layer["recurrent_kernel" + suffix].T)
                put(getattr(lstm, "bias_ih_" + name), layer["bias" + suffix])
                getattr(lstm, "bias_hh_" + name).zero_()
        put(module.linear.weight, public["coefs_"][0].T)
        put(module.linear.bias, public["intercepts_"][0])
    return module.eval()


def _torch_modules(parts, torch):
    """``(embedding or None, [nn.LSTM, ...], linear, pooling or None)`` of what
    ``from_torch`` accepts."""
    from ._torch import LSTMNet

    nn = torch.nn
    pooling = None
    if isinstance(parts, LSTMNet):
        pooling = parts.pooling
        modules = [parts.embedding, parts.lstm, parts.linear]
    elif isinstance(parts, dict):
        unknown = sorted(map(repr, set(parts) - {"embedding", "lstm", "linear"}))
        if unknown or "lstm" not in parts or "linear" not in parts:
            raise ValueError(
                'parts as a dict has the keys "lstm" and "linear", and optionally '
                f'"embedding"; got {sorted(map(repr, parts))}.'
            )
        modules = [parts.get("embedding"), parts["lstm"], parts["linear"]]
    elif isinstance(parts, (list, tuple, nn.ModuleList)):
        modules = list(parts)
        if modules and not isinstance(modules[0], nn.Embedding):
            modules.insert(0, None)
        if len(modules) > 2:
            modules = [modules[0], modules[1:-1], modules[-1]]
    else:
        raise TypeError(
            "parts must be the module to_torch returns, a dict {'embedding': "
            "nn.Embedding (optional), 'lstm': nn.LSTM or a list of them, 'linear': "
            f"nn.Linear}} or a sequence of those modules in order; got "
            f"{type(parts).__name__}."
        )
    if len(modules) != 3:
        raise ValueError(
            "from_torch reads an optional nn.Embedding, one or more nn.LSTM and an "
            f"nn.Linear, in this order; got {len(modules)} module(s)."
        )
    embedding, lstms, linear = modules
    if isinstance(lstms, (list, tuple, nn.ModuleList)):
        lstms = list(lstms)
    else:
        lstms = [lstms]
    for what, found, kind in [("embedding", embedding, nn.Embedding),
                              ("linear", linear, nn.Linear)]:
        if found is not None and not isinstance(found, kind):
            raise TypeError(
                f"The {what} must be an {kind.__module__.split('.')[0]}.nn."
                f"{kind.__name__}, got {type(found).__name__}."
            )
    if linear is None:
        raise TypeError("from_torch needs an nn.Linear output layer.")
    if not lstms or not all(type(m) is nn.LSTM for m in lstms):
        raise TypeError(
            "from_torch reads nn.LSTM layers, got "
            f"{[type(m).__name__ for m in lstms]}."
        )
    return embedding, lstms, linear, pooling


def _torch_array(tensor, torch):
    """A NumPy copy of ``tensor``: float32 stays float32, other floats become
    float64."""
    tensor = tensor.detach().cpu()
    if tensor.dtype != torch.float32:
        tensor = tensor.to(torch.float64)
    return tensor.numpy().copy()


def from_torch(parts, *, estimator, classes=None):
    """A fitted estimator holding the weights of PyTorch modules.

    Parameters
    ----------
    parts : torch.nn.Module, dict or sequence
        The network: the module :func:`to_torch` returns; or a dict with keys
        ``"lstm"`` (an ``nn.LSTM``, or a list of them stacked from the input
        up), ``"linear"`` (the ``nn.Linear`` output layer) and optionally
        ``"embedding"`` (an ``nn.Embedding``, id 0 being padding); or the same
        modules as a sequence, in the order of the network (e.g.
        ``[lstm, linear]``). Only weights are read: how the modules are called
        (pooling, batch_first) is the estimator's business.

    estimator : LSTMRegressor or LSTMClassifier
        Gives every parameter of the result (it is cloned, never changed):
        ``hidden_layer_sizes``, ``bidirectional`` and ``embedding_dim`` must
        describe the modules' shapes, and ``pooling`` says what the linear
        layer reads (``"last"``: PyTorch's ``h_n``).

    classes : array-like of shape (n_classes,), default=None
        For a classifier, required: the label of each output of the linear
        layer, in order (any order: ``classes_`` is sorted and the outputs
        follow). Two classes take one output (the logit of ``classes[1]``) or
        two (softmax logits, read as their difference). Multilabel models
        cannot be read.

    Returns
    -------
    estimator : LSTMRegressor or LSTMClassifier
        Fitted: it predicts what the modules compute, and continues training
        with ``partial_fit`` or ``warm_start=True``. Its ``init`` holds copies
        of the weights read, so its clones (e.g. in a grid search) start from
        them. The weights are float32 if all the tensors are, else float64.

    Raises
    ------
    ValueError
        When the modules' shapes do not match the estimator's parameters (or
        each other), or ``classes`` is missing or does not match the outputs.

    See Also
    --------
    to_torch : The reverse way.
    from_keras : The same from Keras.

    Notes
    -----
    An LSTM layer's bias is read as ``bias_ih + bias_hh`` (zeros without
    bias). ``nn.LSTM`` with ``proj_size`` has no counterpart here.
    """
    torch = _import_torch("from_torch")
    estimator = _check_target(estimator)
    embedding, lstms, linear, pooling = _torch_modules(parts, torch)
    bidirectional = {m.bidirectional for m in lstms}
    if len(bidirectional) > 1:
        raise ValueError(
            "The nn.LSTM modules are bidirectional and not: all LSTM layers of a "
            "model are, or none."
        )
    lstm_coefs = []
    for m in lstms:
        if m.proj_size:
            raise ValueError(
                f"nn.LSTM(proj_size={m.proj_size}) has no counterpart here: an "
                "LSTM layer outputs its hidden state."
            )
        for k in range(m.num_layers):
            layer = {}
            for suffix in _DIRECTIONS[: 2 if m.bidirectional else 1]:
                weight = {
                    kind: _torch_array(getattr(m, f"{kind}_l{k}{suffix}"), torch)
                    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                    if m.bias or kind.startswith("weight")
                }
                layer["kernel" + suffix] = weight["weight_ih"].T
                layer["recurrent_kernel" + suffix] = weight["weight_hh"].T
                if m.bias:
                    layer["bias" + suffix] = weight["bias_ih"] + weight["bias_hh"]
                else:
                    layer["bias" + suffix] = np.zeros(4 * m.hidden_size,
                                                      layer["kernel"].dtype)
            lstm_coefs.append(layer)
    coef = _torch_array(linear.weight, torch).T
    if linear.bias is not None:
        intercept = _torch_array(linear.bias, torch)
    else:
        intercept = np.zeros(linear.out_features, coef.dtype)
    table = None if embedding is None else _torch_array(embedding.weight, torch)
    return _fitted_from(estimator, table, lstm_coefs, coef, intercept, classes,
                        "PyTorch", pooling)


# --------------------------------------------------------------------- Keras
def to_keras(estimator, *, mask_value=0.0):
    """The fitted network as a Keras 3 model computing its raw outputs.

    Parameters
    ----------
    estimator : LSTMRegressor or LSTMClassifier
        A fitted estimator.

    mask_value : float or None, default=0.0
        For features (no ``embedding_dim``): the model starts with
        ``Masking(mask_value)``, so steps whose features all equal it are
        skipped, as our NaN padding (Keras' masks cannot test NaN): pass
        padded X as ``np.nan_to_num(X, nan=mask_value)``. Beware that a valid
        step whose features all equal ``mask_value`` would be skipped too.
        None: no masking, for batches of full sequences only. Token ids use
        ``Embedding(mask_zero=True)`` instead.

    Returns
    -------
    model : keras.Model
        ``Input`` ((None, n_features) floats, or (None,) int ids), ``Masking``
        or ``Embedding(mask_zero=True)``, ``LSTM`` layers (``Bidirectional``
        with ``merge_mode="concat"`` when bidirectional), then for
        ``pooling="mean"`` / ``"max"`` ``GlobalAveragePooling1D`` /
        ``GlobalMaxPooling1D``, and a ``Dense`` without activation, in the
        dtype of the estimator's weights. ``model(X)`` gives the raw outputs
        as :func:`to_torch` describes them: apply ``keras.ops.sigmoid`` or
        ``keras.ops.softmax`` for a classifier's probabilities.

    Raises
    ------
    ValueError
        For ``pooling="max"`` with ``bidirectional=True``: Keras'
        ``GlobalMaxPooling1D`` ignores masks, and a ``Bidirectional`` layer
        outputs zeros at masked steps, which the maximum would read. (A
        forward LSTM repeats its last output there, which leaves the maximum
        unchanged.)

    See Also
    --------
    from_keras : The reverse way.
    to_torch : The same for PyTorch.
    """
    network, public = _fitted_weights(estimator)
    keras = _import_keras("to_keras")
    layers = keras.layers
    if network.pooling == "max" and network.bidirectional:
        raise ValueError(
            "pooling='max' with bidirectional=True cannot be written with Keras "
            "layers: GlobalMaxPooling1D ignores masks, and Bidirectional outputs "
            "zeros at masked (padding) steps, which the maximum would read."
        )
    dtype = "float32" if public["coefs_"][0].dtype == np.float32 else "float64"
    if network.embedding is not None:
        inputs = keras.Input((None,), dtype="int64")
        embedding = layers.Embedding(*public["embedding_"].shape, mask_zero=True,
                                     dtype=dtype)
        x = embedding(inputs)
        embedding.set_weights([public["embedding_"]])
    else:
        inputs = keras.Input((None, network.lstm[0].n_inputs), dtype=dtype)
        x = inputs if mask_value is None else layers.Masking(mask_value,
                                                             dtype=dtype)(inputs)
    n_layers = len(network.lstm)
    for k, (layer, arrays) in enumerate(zip(network.lstm, public["lstm_coefs_"])):
        lstm = layers.LSTM(
            layer.n_hidden,
            return_sequences=k < n_layers - 1 or network.pooling != "last",
            dtype=dtype,
        )
        weights = [arrays[name + suffix]
                   for suffix in _DIRECTIONS[: layer.n_directions]
                   for name in ("kernel", "recurrent_kernel", "bias")]
        if layer.bidirectional:
            lstm = layers.Bidirectional(lstm, merge_mode="concat", dtype=dtype)
        x = lstm(x)
        lstm.set_weights(weights)
    if network.pooling == "mean":
        x = layers.GlobalAveragePooling1D(dtype=dtype)(x)
    elif network.pooling == "max":
        x = layers.GlobalMaxPooling1D(dtype=dtype)(x)
    dense = layers.Dense(network.n_outputs, dtype=dtype)
    outputs = dense(x)
    dense.set_weights([public["coefs_"][0], public["intercepts_"][0]])
    return keras.Model(inputs, outputs)


def _keras_lstm(layer, source, backward=False):
    """The kernel, recurrent kernel and bias of a Keras LSTM layer, after
    checking that it computes our cell."""
    config = layer.get_config()
    for key, value in [("activation", "tanh"), ("recurrent_activation", "sigmoid"),
                       ("go_backwards", backward), ("stateful", False)]:
        if config.get(key, value) != value:
            raise ValueError(
                f"The Keras layer {layer.name!r} has {key}={config[key]!r}; an LSTM "
                f"here has {key}={value!r}."
            )
    weights = [np.array(w, copy=True) for w in layer.get_weights()]
    if not config.get("use_bias", True):
        weights.append(np.zeros(weights[0].shape[1], weights[0].dtype))
    return dict(zip(("kernel", "recurrent_kernel", "bias"), weights))


def from_keras(model, *, estimator, classes=None):
    """A fitted estimator holding the weights of a Keras 3 model.

    Parameters
    ----------
    model : keras.Model
        A Sequential or functional model whose layers form one chain: an
        optional ``InputLayer``, ``Masking`` or ``Embedding`` (id 0 being
        padding, as ``mask_zero=True`` makes it), ``LSTM`` layers (each
        possibly in a ``Bidirectional`` with ``merge_mode="concat"``), an
        optional ``GlobalAveragePooling1D`` or ``GlobalMaxPooling1D``, and a
        ``Dense`` output layer, with ``Dropout`` layers anywhere (they do
        nothing at inference). The last LSTM's ``return_sequences`` and the
        pooling layer give the pooling: False is ``"last"``, True with a
        pooling layer ``"mean"`` / ``"max"``, True without ``"none"``.

    estimator : LSTMRegressor or LSTMClassifier
        Gives every parameter of the result (it is cloned, never changed):
        ``hidden_layer_sizes``, ``bidirectional``, ``pooling`` and
        ``embedding_dim`` must describe the model.

    classes : array-like of shape (n_classes,), default=None
        For a classifier, required: the label of each output of the ``Dense``
        layer, as in :func:`from_torch`. The ``Dense`` activation may be
        linear, ``"sigmoid"`` (one output, two classes) or ``"softmax"``.

    Returns
    -------
    estimator : LSTMRegressor or LSTMClassifier
        Fitted, as :func:`from_torch` returns it.

    Raises
    ------
    ValueError
        When a layer has no counterpart here (its class is named), or the
        model does not match the estimator's parameters.

    See Also
    --------
    to_keras : The reverse way.
    from_torch : The same from PyTorch.

    Notes
    -----
    Keras' ``GlobalMaxPooling1D`` ignores masks: on padded batches, the maximum
    of a Keras ``Bidirectional`` model also reads the zeros it outputs at
    padding steps, where ours reads the valid steps only. On full sequences
    they agree.
    """
    keras = _import_keras("from_keras")
    layers = keras.layers
    estimator = _check_target(estimator)
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}.")
    if not model.built:
        raise ValueError(
            "The Keras model has no weights yet: it was never built. Give it an "
            "input shape (keras.Input(shape=(None, n_features)) as its first "
            "layer) or call it on a batch, then pass it to from_keras."
        )
    embedding, lstm_coefs, pooling, dense = None, [], None, None
    return_sequences = True
    for layer in model.layers:
        kind = type(layer).__name__
        if isinstance(layer, (layers.InputLayer, layers.Masking, layers.Dropout)):
            continue
        if dense is not None or (pooling is not None and kind != "Dense"):
            raise ValueError(
                f"The Keras layer {layer.name!r} ({kind}) comes after the pooling or "
                "the output layer; from_keras reads one chain ending with Dense."
            )
        if isinstance(layer, layers.Embedding):
            if lstm_coefs or embedding is not None:
                raise ValueError("An Embedding layer can only come first.")
            embedding = np.array(layer.get_weights()[0], copy=True)
        elif isinstance(layer, (layers.LSTM, layers.Bidirectional)):
            if not return_sequences:
                raise ValueError(
                    f"The Keras layer {layer.name!r} reads an LSTM without "
                    "return_sequences: only the last LSTM may return one step."
                )
            if isinstance(layer, layers.Bidirectional):
                if layer.merge_mode != "concat" or not isinstance(
                    layer.forward_layer, layers.LSTM
                ):
                    raise ValueError(
                        f"The Keras layer {layer.name!r} is a Bidirectional of "
                        f"{type(layer.forward_layer).__name__} with merge_mode="
                        f"{layer.merge_mode!r}; only LSTMs with 'concat' map."
                    )
                arrays = _keras_lstm(layer.forward_layer, "Keras")
                backward = _keras_lstm(layer.backward_layer, "Keras", backward=True)
                arrays.update((name + "_reverse", a) for name, a in backward.items())
                return_sequences = layer.forward_layer.return_sequences
            else:
                arrays = _keras_lstm(layer, "Keras")
                return_sequences = layer.return_sequences
            lstm_coefs.append(arrays)
        elif isinstance(layer, (layers.GlobalAveragePooling1D,
                                layers.GlobalMaxPooling1D)):
            config = layer.get_config()
            if config.get("data_format") == "channels_first" or config.get("keepdims"):
                raise ValueError(
                    f"The Keras layer {layer.name!r} pools with data_format="
                    f"{config.get('data_format')!r}, keepdims={config.get('keepdims')}"
                    "; only channels_last without keepdims maps."
                )
            pooling = ("mean" if isinstance(layer, layers.GlobalAveragePooling1D)
                       else "max")
        elif isinstance(layer, layers.Dense):
            dense = layer
        else:
            raise ValueError(
                f"The Keras layer {layer.name!r} ({kind}) has no counterpart in "
                "sklearn-lstm's networks."
            )
    if not lstm_coefs or dense is None:
        raise ValueError(
            "from_keras reads one or more LSTM layers and a Dense output layer; "
            f"the model has {[type(layer).__name__ for layer in model.layers]}."
        )
    if pooling is None:
        pooling = "none" if return_sequences else "last"
    elif not return_sequences:
        raise ValueError(
            "The Keras model pools the outputs of an LSTM without return_sequences."
        )
    config = dense.get_config()
    activation = config["activation"]
    allowed = {"linear"}
    if is_classifier(estimator):
        allowed |= {"sigmoid", "softmax"}
    if activation not in allowed:
        raise ValueError(
            f"The Keras Dense layer {dense.name!r} has activation={activation!r}; "
            f"this estimator's output layer maps from {sorted(allowed)}."
        )
    weights = [np.array(w, copy=True) for w in dense.get_weights()]
    coef = weights[0]
    if config["use_bias"]:
        intercept = weights[1]
    else:
        intercept = np.zeros(coef.shape[1], coef.dtype)
    n_outputs = coef.shape[1]
    if activation == "sigmoid" and n_outputs != 1 or (
        activation == "softmax" and n_outputs == 1
    ):
        raise ValueError(
            f"The Keras Dense layer {dense.name!r} has {n_outputs} output(s) and "
            f"activation={activation!r}: a classifier here has one sigmoid output "
            "(two classes) or a softmax over two or more."
        )
    return _fitted_from(estimator, embedding, lstm_coefs, coef, intercept, classes,
                        "Keras", pooling)
