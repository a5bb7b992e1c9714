"""Export to ONNX: converters of :class:`~sklearn_lstm.LSTMRegressor`,
:class:`~sklearn_lstm.LSTMClassifier` and
:class:`~sklearn_lstm.preprocessing.SequenceScaler` for skl2onnx.

Importing this module registers the converters with skl2onnx, so that
``skl2onnx.to_onnx`` converts these models and Pipelines of them like any
scikit-learn model; :func:`register` does it again (it is idempotent), should
something have overwritten them. :func:`to_onnx` converts too, and declares the
time axis dynamic::

    from sklearn_lstm.onnx import to_onnx
    onx = to_onnx(model, X[:1])     # or skl2onnx.to_onnx(model, X[:1])

It needs the optional dependencies ``pip install "sklearn-lstm[onnx]"``
(skl2onnx and onnx, and onnxruntime to run the result).

**The graph's input** is what ``predict`` takes as one array: float
``(N, T, F)`` whose trailing all-NaN steps are padding, so that sequences of
several lengths share a batch (a model fitted on 2D input reads ``(N, T)``); for
a model with ``embedding_dim``, int64 token ids ``(N, T)`` whose trailing zeros
are padding. ``N`` is dynamic; so is ``T`` when the graph comes from
:func:`to_onnx` (but for 2D float input, whose columns are fixed as in fit);
``skl2onnx.to_onnx(model, X_sample)`` fixes it to the sample's, unless
``initial_types`` say otherwise. Lengths are computed in the graph;
NaN in a valid step is read as 0 there, where ``predict`` raises: the graph does
not validate its input.

**The graph's outputs** follow skl2onnx's own models. A regressor gives
``variable`` of shape ``(N, n_outputs)`` (``(N, 1)`` for one output, as
skl2onnx's regressors), or ``(N, T, n_outputs)`` with ``pooling="none"``, NaN
at padding steps. A classifier gives ``label`` ``(N,)`` (strings for string
classes, else int64: float and boolean classes too, as in skl2onnx) and
``probabilities`` ``(N, n_classes)`` in the order of ``classes_``; by default
skl2onnx turns them into ``output_label`` and ``output_probability`` (a ZipMap,
a list of dicts), and ``options={"zipmap": False}`` keeps the two tensors. For
a multilabel classifier, ``label`` is the int64 indicator matrix ``(N,
n_labels)``. A ``SequenceScaler`` gives ``variable``, X standardised, NaN where
X has NaN.

The network computes in float32: onnxruntime's ``LSTM`` kernel runs float32
only, so a float64 model's weights are rounded to float32, and a float64 input
(``DoubleTensorType``) to an LSTM model is refused (:func:`to_onnx` declares a
float32 input whatever the sample's dtype; a ``SequenceScaler`` alone keeps
float64).
The recurrence is ONNX's ``LSTM`` operator, one per layer, its gates reordered
from ours ``[i | f | g | o]`` to ONNX's ``[i | o | f | c]``, variable lengths
through its ``sequence_lens``.

**Not exportable**, each raising an error that says why:

* :class:`LSTMClassifier` with ``pooling="none"``: its per-step labels are NaN
  (None for strings) at padding steps, which an int64 or string tensor cannot
  hold, and skl2onnx's classifier outputs have one row per sample;
* a float64 input to an LSTM model (see above);
* :class:`~sklearn_lstm.preprocessing.TextSequenceVectorizer` (tokenising text
  is not part of the converters): export the model that reads its ids.
"""

import numpy as np

try:
    import onnx
    from onnx import TensorProto, numpy_helper
    from skl2onnx import to_onnx as _skl2onnx_to_onnx
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'sklearn_lstm.onnx needs skl2onnx and onnx: pip install "sklearn-lstm[onnx]"'
    ) from exc

from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._estimators import LSTMClassifier, LSTMRegressor
from .preprocessing import SequenceScaler, TextSequenceVectorizer

__all__ = ["to_onnx", "register"]

#: The oldest opset the converters write (ReduceSum's axes as an input, Softmax
#: over one axis).
_MIN_OPSET = 13

# Our gate blocks [i | f | g | o] in ONNX's order [i | o | f | c].
_ONNX_GATES = (0, 3, 1, 2)


# ------------------------------------------------------------------ graph
class _Graph:
    """Adds nodes and constants to skl2onnx's container, each output under a
    fresh name."""

    def __init__(self, scope, container, dtype=np.float32):
        self.scope = scope
        self.container = container
        self.dtype = np.dtype(dtype)
        self.opset = container.target_opset
        if self.opset is not None and self.opset < _MIN_OPSET:
            raise RuntimeError(
                f"sklearn_lstm.onnx writes opset {_MIN_OPSET} or later; "
                f"target_opset={self.opset} was asked for."
            )

    def const(self, value, name="const", dtype=None):
        value = np.asarray(value, dtype=dtype)
        if value.dtype.kind == "f" and dtype is None:
            value = value.astype(self.dtype)
        unique = self.scope.get_unique_variable_name(name)
        if value.dtype.kind in "UO":  # strings
            self.container.add_initializer(
                unique,
                TensorProto.STRING,
                list(value.shape),
                [str(s).encode("utf-8") for s in value.ravel()],
            )
        else:
            self.container.add_initializer(
                unique, None, None, numpy_helper.from_array(value, unique)
            )
        return unique

    def op(self, op_type, *inputs, n_outputs=1, out=None, **attrs):
        """Output name(s) of the node ``op_type(inputs, **attrs)``; ``out`` names
        its only output (an output of the skl2onnx operator)."""
        if out is not None:
            outputs = [out]
        else:
            outputs = [
                self.scope.get_unique_variable_name(op_type.lower())
                for _ in range(n_outputs)
            ]
        self.container.add_node(
            op_type,
            list(inputs),
            outputs,
            name=self.scope.get_unique_operator_name(op_type),
            **attrs,
        )
        return outputs[0] if n_outputs == 1 else outputs

    def reduce(self, op_type, x, axis, keepdims=0):
        """``op_type`` (ReduceSum, ReduceMax, ...) over one axis, for any opset:
        the axes are an input from opset 18 on (13 for ReduceSum)."""
        since = 13 if op_type == "ReduceSum" else 18
        if self.opset is None or self.opset >= since:
            axes = self.const([axis], "axes", dtype=np.int64)
            return self.op(op_type, x, axes, keepdims=keepdims)
        return self.op(op_type, x, axes=[axis], keepdims=keepdims)

    def unsqueeze(self, x, axis):
        return self.op("Unsqueeze", x, self.const([axis], "axes", dtype=np.int64))

    def reshape(self, x, shape):
        return self.op("Reshape", x, self.const(shape, "shape", dtype=np.int64))

    def cast(self, x, dtype):
        to = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return self.op("Cast", x, to=int(to))


# -------------------------------------------------------------- checks
def _check_exportable(est):
    """Raise, saying why, if ``est`` has no ONNX form."""
    check_is_fitted(est)
    if isinstance(est, LSTMClassifier) and est.pooling == "none":
        raise NotImplementedError(
            "An LSTMClassifier with pooling='none' is not exportable to ONNX: "
            "its per-step labels are NaN (None for strings) at padding steps, "
            "which an int64 or string tensor cannot hold, and skl2onnx's "
            "classifier outputs have one row per sample. Export an "
            "LSTMRegressor, or a classifier with another pooling."
        )


def _refuse_text_vectorizer(operator=None):
    raise NotImplementedError(
        "TextSequenceVectorizer is not exportable to ONNX: its tokenisation "
        "(regular expressions or a Python analyzer) and its output, one array of "
        "ids per document, have no ONNX converter. Export the model that reads "
        "its ids, and run the vectorizer in Python."
    )


def _multilabel(est):
    return est._label_binarizer.y_type_.startswith("multilabel")


def _class_labels(est):
    """``classes_`` as skl2onnx's label outputs hold them: int64, or strings.
    scikit-learn fits no other classes: floats are integral (others are a
    continuous target), and types are never mixed."""
    classes = np.asarray(est.classes_)
    if classes.dtype.kind in "iubf" or not any(isinstance(c, str) for c in classes):
        return classes.astype(np.int64)
    return classes.astype(object)


def _check_float_input(operator):
    if isinstance(operator.inputs[0].type, DoubleTensorType):
        raise NotImplementedError(
            f"{type(operator.raw_operator).__name__} is exported in float32 only "
            "(onnxruntime's LSTM kernel runs float32), but the graph's input is "
            "float64: pass a float32 X (sklearn_lstm.onnx.to_onnx casts it) or "
            "initial_types with FloatTensorType."
        )


def _check_input_form(operator):
    """Refuse a graph input that ``predict`` (or ``transform``) would refuse: its
    form (2D or 3D) and its last axis, when known, must be the fit's. A graph
    built on other ones fails on every input, or reads the wrong columns."""
    est = operator.raw_operator
    ndim = getattr(est, "_input_ndim", None)  # None for token ids
    if ndim is None:
        return
    shape = operator.inputs[0].type.shape
    name, expected = type(est).__name__, est.n_features_in_
    if len(shape) != ndim:
        fitted = (
            f"3D input with {expected} feature(s) per time step" if ndim == 3
            else f"2D input with {expected} time steps"
        )
        raise ValueError(
            f"The graph's input is {len(shape)}D but this {name} was fitted on "
            f"{fitted}: pass X_sample (or initial_types) in the same form as in fit."
        )
    if shape[-1] is not None and shape[-1] != expected:
        what = "features per time step" if ndim == 3 else "time steps (columns)"
        raise ValueError(
            f"The graph's input has {shape[-1]} {what}, but this {name} was "
            f"fitted with {expected}: pass X_sample (or initial_types) of that "
            "width."
        )


# ---------------------------------------------------------- shapes
def _lstm_regressor_shape(operator):
    est = operator.raw_operator
    _check_exportable(est)
    _check_float_input(operator)
    _check_input_form(operator)
    N = operator.inputs[0].get_first_dimension()
    shape = [N, None, est.n_outputs_] if est.pooling == "none" else [N, est.n_outputs_]
    operator.outputs[0].type = FloatTensorType(shape)


def _lstm_classifier_shape(operator):
    est = operator.raw_operator
    _check_exportable(est)
    _check_float_input(operator)
    _check_input_form(operator)
    if len(operator.outputs) != 2:
        raise RuntimeError(
            "LSTMClassifier's ONNX operator has two outputs, label and "
            f"probabilities; got {len(operator.outputs)}."
        )
    N = operator.inputs[0].get_first_dimension()
    if _multilabel(est):
        operator.outputs[0].type = Int64TensorType([N, est.n_outputs_])
        operator.outputs[1].type = FloatTensorType([N, est.n_outputs_])
        return
    labels = _class_labels(est)
    label_type = StringTensorType if labels.dtype == object else Int64TensorType
    operator.outputs[0].type = label_type([N])
    operator.outputs[1].type = FloatTensorType([N, len(labels)])


def _scaler_shape(operator):
    check_is_fitted(operator.raw_operator)
    _check_input_form(operator)
    input_type = operator.inputs[0].type
    out_type = (
        DoubleTensorType
        if isinstance(input_type, DoubleTensorType)
        else (FloatTensorType)
    )
    operator.outputs[0].type = out_type(list(input_type.shape))


# ------------------------------------------------------- converters
def _convert_scaler(scope, operator, container):
    scaler = operator.raw_operator
    x = operator.inputs[0].full_name
    dtype = (
        np.float64
        if isinstance(operator.inputs[0].type, DoubleTensorType)
        else np.float32
    )
    g = _Graph(scope, container, dtype)
    if operator.inputs[0].type.__class__ not in (FloatTensorType, DoubleTensorType):
        x = g.cast(x, dtype)
    if scaler.with_mean:
        x = g.op("Sub", x, g.const(scaler.mean_, "mean"))
    if scaler.with_std:
        x = g.op("Div", x, g.const(scaler.scale_, "scale"))
    g.op("Identity", x, out=operator.outputs[0].full_name)


def _lstm_weights(layer, suffix):
    """ONNX's W (4H, n_in), R (4H, H) and B (8H,) of one direction of a layer."""
    H = layer["recurrent_kernel"].shape[0]

    def reorder(a):  # gate blocks along the last axis, to ONNX's order
        blocks = np.split(np.asarray(a, dtype=np.float64), 4, axis=-1)
        return np.concatenate([blocks[k] for k in _ONNX_GATES], axis=-1)

    W = reorder(layer["kernel" + suffix]).T
    R = reorder(layer["recurrent_kernel" + suffix]).T
    # ONNX adds an input bias Wb and a recurrent bias Rb; ours is their sum.
    B = np.concatenate([reorder(layer["bias" + suffix]), np.zeros(4 * H)])
    return W, R, B


def _network_outputs(g, est, x, input_type):
    """The raw network output of the input ``x``: ``(raw, mask, lengths)`` with
    raw (N, n_outputs), or (N, T, n_outputs) per step; mask (N, T) booleans of
    the valid steps; lengths (N,) int64."""
    if est._network.embedding is not None:
        # Token ids (N, T); trailing zeros are padding.
        ids = x if isinstance(input_type, Int64TensorType) else g.cast(x, np.int64)
        valid = g.op("Not", g.op("Equal", ids, g.const(0, "zero", dtype=np.int64)))
        inputs = g.op("Gather", g.const(est.embedding_, "embedding"), ids, axis=0)
    else:
        if len(input_type.shape) == 2:  # univariate sequences (N, T)
            x = g.unsqueeze(x, 2)
        nan = g.op("IsNaN", x)  # (N, T, F)
        # A step is padding when it is NaN in every feature.
        n_values = g.reduce("ReduceSum", g.cast(g.op("Not", nan), np.int64), 2)
        valid = g.op("Greater", n_values, g.const(0, "zero", dtype=np.int64))
        inputs = g.op("Where", nan, g.const(0.0, "zero"), x)  # (N, T, F)
    # Each sequence runs up to its last valid step: lengths = max_t (t+1)*valid.
    n_steps = g.op(
        "Gather", g.op("Shape", valid), g.const(1, "one", dtype=np.int64), axis=0
    )
    steps = g.op(
        "Range",
        g.const(0, "zero", dtype=np.int64),
        n_steps,
        g.const(1, "one", dtype=np.int64),
    )  # (T,)
    one = g.const(1, "one", dtype=np.int64)
    lengths = g.reduce(
        "ReduceMax", g.op("Mul", g.cast(valid, np.int64), g.op("Add", steps, one)), 1
    )  # (N,)
    mask = g.op("Less", steps, g.unsqueeze(lengths, 1))  # (N, T)
    seq_lens = g.cast(lengths, np.int32)

    h = g.op("Transpose", inputs, perm=[1, 0, 2])  # (T, N, F): ONNX's layout 0
    for k, layer in enumerate(est.lstm_coefs_):
        bidirectional = "kernel_reverse" in layer
        suffixes = ["", "_reverse"] if bidirectional else [""]
        W, R, B = (
            np.stack(arrays)
            for arrays in zip(*(_lstm_weights(layer, s) for s in suffixes))
        )
        H = layer["recurrent_kernel"].shape[0]
        Y, Y_h = g.op(
            "LSTM",
            h,
            g.const(W, f"W{k}"),
            g.const(R, f"R{k}"),
            g.const(B, f"B{k}"),
            seq_lens,
            n_outputs=2,
            hidden_size=H,
            direction="bidirectional" if bidirectional else "forward",
        )  # Y (T, n_dirs, N, H), Y_h (n_dirs, N, H)
        h = g.reshape(g.op("Transpose", Y, perm=[0, 2, 1, 3]), [0, 0, -1])  # (T,N,D)

    coef = g.const(est.coefs_[0], "coef")
    intercept = g.const(est.intercepts_[0], "intercept")
    pooling = est.pooling
    if pooling == "none":
        h = g.op("Transpose", h, perm=[1, 0, 2])  # (N, T, D)
        return g.op("Add", g.op("MatMul", h, coef), intercept), mask, lengths
    if pooling == "last":
        # With sequence_lens, Y_h holds the forward state at each sequence's last
        # step and the backward state at its first: PyTorch's h_n.
        pooled = g.reshape(g.op("Transpose", Y_h, perm=[1, 0, 2]), [0, -1])
    else:
        valid_tn = g.unsqueeze(g.op("Transpose", mask, perm=[1, 0]), 2)  # (T, N, 1)
        if pooling == "mean":
            summed = g.reduce(
                "ReduceSum", g.op("Where", valid_tn, h, g.const(0.0, "zero")), 0
            )
            pooled = g.op("Div", summed, g.cast(g.unsqueeze(lengths, 1), g.dtype))
        else:  # max: padding never wins
            pooled = g.reduce(
                "ReduceMax", g.op("Where", valid_tn, h, g.const(-np.inf, "ninf")), 0
            )
    return g.op("Add", g.op("MatMul", pooled, coef), intercept), mask, lengths


def _logistic(g, z):
    """As ``_losses.logistic``: 0.5 * tanh(z / 2) + 0.5, which cannot overflow
    (and rounds as ``predict`` does)."""
    half = g.const(0.5, "half")
    return g.op("Add", g.op("Mul", g.op("Tanh", g.op("Mul", z, half)), half), half)


def _convert_regressor(scope, operator, container):
    est = operator.raw_operator
    g = _Graph(scope, container)
    raw, mask, _ = _network_outputs(
        g, est, operator.inputs[0].full_name, operator.inputs[0].type
    )
    out = operator.outputs[0].full_name
    if est.pooling != "none":
        g.op("Identity", raw, out=out)
        return
    # NaN at padding steps, as predict.
    g.op("Where", g.unsqueeze(mask, 2), raw, g.const(np.nan, "nan"), out=out)


def _convert_classifier(scope, operator, container):
    est = operator.raw_operator
    g = _Graph(scope, container)
    raw, _, _ = _network_outputs(
        g, est, operator.inputs[0].full_name, operator.inputs[0].type
    )
    label_out, proba_out = (v.full_name for v in operator.outputs)
    if _multilabel(est):
        proba = _logistic(g, raw)
        g.op("Identity", proba, out=proba_out)
        # LabelBinarizer's threshold: a label is on when its probability > 0.5.
        on = g.op("Greater", proba, g.const(0.5, "half"))
        g.op("Cast", on, to=TensorProto.INT64, out=label_out)
        return
    classes = g.const(_class_labels(est), "classes")
    if est.out_activation_ == "softmax":
        proba = g.op("Softmax", raw, axis=1)
        g.op("Identity", proba, out=proba_out)
        index = g.op("ArgMax", proba, axis=1, keepdims=0)  # ties: the first
    else:  # binary: one logistic unit, the positive class's probability
        p = _logistic(g, raw)  # (N, 1)
        one = g.const(1.0, "one")
        g.op("Concat", g.op("Sub", one, p), p, axis=1, out=proba_out)
        on = g.op("Greater", p, g.const(0.5, "half"))
        index = g.reshape(g.cast(on, np.int64), [-1])
    g.op("Gather", classes, index, axis=0, out=label_out)


# ------------------------------------------------------- registration
def register():
    """Register the converters with skl2onnx. Importing this module does it;
    calling again is harmless (e.g. after another library overwrote them)."""
    update_registered_converter(
        LSTMRegressor,
        "SklearnLSTMRegressor",
        _lstm_regressor_shape,
        _convert_regressor,
    )
    update_registered_converter(
        LSTMClassifier,
        "SklearnLSTMClassifier",
        _lstm_classifier_shape,
        _convert_classifier,
        # skl2onnx then parses it as its own classifiers: label and
        # probabilities, turned into a ZipMap unless zipmap=False.
        options={
            "zipmap": [True, False, "columns"],
            "output_class_labels": [False, True],
            "nocl": [False],  # asked for by skl2onnx's ZipMap
        },
    )
    update_registered_converter(
        SequenceScaler, "SklearnLSTMSequenceScaler", _scaler_shape, _convert_scaler
    )
    # Registered to refuse with a reason rather than skl2onnx's "unable to find
    # a shape calculator".
    update_registered_converter(
        TextSequenceVectorizer,
        "SklearnLSTMTextSequenceVectorizer",
        _refuse_text_vectorizer,
        lambda scope, operator, container: _refuse_text_vectorizer(),
    )


register()


# -------------------------------------------------------------- to_onnx
def _first_step(model):
    while isinstance(model, Pipeline):
        model = model.steps[0][1]
    return model


def to_onnx(model, X_sample, *, name="X", target_opset=None, options=None, **kwargs):
    """Convert a fitted model, or a Pipeline of them, to an ONNX model.

    As ``skl2onnx.to_onnx(model, X_sample)``, but the input's batch and time
    axes are both dynamic, so the graph runs batches of any size and sequences
    of any length (padded with NaN, or with trailing zeros for token ids).

    Parameters
    ----------
    model : LSTMRegressor, LSTMClassifier, SequenceScaler or Pipeline
        Fitted; a Pipeline may also hold other models skl2onnx converts.
    X_sample : array-like of shape (n_samples, n_timesteps, n_features) or \
            (n_samples, n_timesteps)
        A batch as ``predict`` takes it; its last axis sets the number of
        features. The input is float32 (the network runs in float32), or int64
        token ids for a model with ``embedding_dim``.
    name : str, default="X"
        Name of the graph's input.
    target_opset : int or None, default=None
        ONNX opset, at least 13; None for skl2onnx's latest.
    options : dict or None, default=None
        skl2onnx's converter options, e.g. ``{"zipmap": False}`` for a
        classifier's ``label`` and ``probabilities`` tensors.
    **kwargs
        Passed on to ``skl2onnx.to_onnx``.

    Returns
    -------
    onx : onnx.ModelProto
    """
    first = _first_step(model)
    if isinstance(first, TextSequenceVectorizer):
        _refuse_text_vectorizer()
    X = np.asarray(X_sample)
    if X.dtype == object or X.ndim not in (2, 3):
        raise ValueError(
            "X_sample must be one 2D or 3D array, as predict takes it (NaN-padded "
            f"rather than a list of sequences); got {type(X_sample).__name__} "
            f"of shape {X.shape}."
        )
    network = getattr(first, "_network", None)
    if network is not None and network.embedding is not None:
        tensor_type, shape = Int64TensorType, [None, None]  # token ids
    else:
        tensor_type = FloatTensorType
        # 2D input has fixed columns (time steps), as in fit.
        shape = [None, None, X.shape[2]] if X.ndim == 3 else [None, X.shape[1]]
    return _skl2onnx_to_onnx(
        model,
        initial_types=[(name, tensor_type(shape))],
        target_opset=target_opset,
        options=options,
        **kwargs,
    )
