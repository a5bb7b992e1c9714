"""ONNX export: onnxruntime runs the exported graph as ``predict`` /
``predict_proba`` / ``transform`` compute, the reference.

The graph computes in float32 (onnxruntime's LSTM kernel has no float64), so it
is compared with the same model computing in float32: fitted on float32 X, or
its weights rounded to float32 in place (token models, which fit in float64).
Both sides then do the same float32 arithmetic in different orders; outputs of
order 1 agree to a few float32 ulps through the recurrence (measured below 3e-7),
so ``rtol=1e-5`` with ``atol=1e-6`` (for values near 0, where a relative bound
means nothing) is float32's tolerance, not a loosened one. A wrong gate order,
a step of padding read or a missed reverse direction moves outputs by 1e-2 or
more.
"""

import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline

pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

import skl2onnx  # noqa: E402

from sklearn_lstm import LSTMClassifier, LSTMRegressor  # noqa: E402
from sklearn_lstm.onnx import to_onnx  # noqa: E402
from sklearn_lstm.preprocessing import (  # noqa: E402
    SequenceScaler,
    TextSequenceVectorizer,
)

pytestmark = pytest.mark.filterwarnings("ignore", category=ConvergenceWarning)

RTOL, ATOL = 1e-5, 1e-6
LENGTHS = [7, 3, 5, 1, 7, 6, 2, 4] * 4  # several lengths in one batch


def padded_X(seed=0, n_features=3, lengths=LENGTHS, scale=1.0):
    """float32 (n, 7, n_features), trailing steps NaN after each length."""
    rng = np.random.RandomState(seed)
    X = (rng.normal(size=(len(lengths), max(lengths), n_features)) * scale).astype(
        np.float32
    )
    for i, length in enumerate(lengths):
        X[i, length:] = np.nan
    return X


def token_ids(seed=0, lengths=LENGTHS, n_tokens=9):
    rng = np.random.RandomState(seed)
    ids = np.zeros((len(lengths), max(lengths)), dtype=np.int64)
    for i, length in enumerate(lengths):
        ids[i, :length] = rng.randint(1, n_tokens, size=length)
    ids[0, 0] = n_tokens - 1
    return ids


def run(onx, X, name="X"):
    """Every output of the graph on X, by name."""
    session = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {name: X})))


def as_float32(est):
    """Round the model's live weights to float32: predict then runs in float32."""
    for layer in est.lstm_coefs_:
        for key in layer:
            layer[key] = layer[key].astype(np.float32)
    est.coefs_ = [c.astype(np.float32) for c in est.coefs_]
    est.intercepts_ = [b.astype(np.float32) for b in est.intercepts_]
    if hasattr(est, "embedding_"):
        est.embedding_ = est.embedding_.astype(np.float32)
    return est


def small(cls, **params):
    return cls(
        **{
            "hidden_layer_sizes": 4,
            "max_iter": 2,
            "random_state": 0,
            "learning_rate_init": 0.05,
            **params,
        }
    )


# ---------------------------------------------------------------- regressor
@pytest.mark.parametrize("pooling", ["last", "mean", "max", "none"])
@pytest.mark.parametrize(
    "layers, bidirectional", [(4, False), (4, True), ((4, 3), False), ((3, 4), True)]
)
def test_regressor_matches_predict(pooling, layers, bidirectional):
    X = padded_X()
    rng = np.random.RandomState(1)
    y = rng.normal(size=(len(X), 7) if pooling == "none" else len(X))
    reg = small(
        LSTMRegressor,
        hidden_layer_sizes=layers,
        pooling=pooling,
        bidirectional=bidirectional,
    ).fit(X, y)
    assert reg.coefs_[0].dtype == np.float32

    out = run(to_onnx(reg, X[:2]), X)["variable"]
    expected = reg.predict(X)  # (n,) or per step (n, 7) with NaN at padding
    assert out.shape == expected.shape + (1,)
    assert_array_equal(np.isnan(out[..., 0]), np.isnan(expected))
    assert_allclose(out[..., 0], expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("pooling", ["last", "none"])
def test_multioutput_regressor(pooling):
    X = padded_X(seed=2)
    rng = np.random.RandomState(3)
    y = rng.normal(size=(len(X), 7, 2) if pooling == "none" else (len(X), 2))
    reg = small(LSTMRegressor, pooling=pooling, bidirectional=True).fit(X, y)
    out = run(to_onnx(reg, X[:1]), X)["variable"]
    assert_allclose(out, reg.predict(X), rtol=RTOL, atol=ATOL)


def test_time_axis_is_dynamic_and_batch_may_be_full_length():
    X = padded_X(seed=4)
    reg = small(LSTMRegressor).fit(X, np.arange(len(X), dtype=float))
    onx = to_onnx(reg, X[:1, :2])  # a sample of 2 steps
    longer = padded_X(seed=5, lengths=[12, 9, 12])
    full = padded_X(seed=6, lengths=[5, 5])
    for X_new in (longer, full, X[3:4]):
        assert_allclose(
            run(onx, X_new)["variable"][:, 0], reg.predict(X_new), rtol=RTOL, atol=ATOL
        )


def test_univariate_2d_input():
    X = padded_X(seed=7, n_features=1)[:, :, 0]  # (n, 7), NaN padded
    reg = small(LSTMRegressor, pooling="mean").fit(X, np.nansum(X, axis=1))
    out = run(to_onnx(reg, X[:1]), X)["variable"]
    assert_allclose(out[:, 0], reg.predict(X), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_opset_13(pooling):
    """Before opset 18, ReduceMax takes its axes as an attribute."""
    X = padded_X(seed=19)
    reg = small(LSTMRegressor, pooling=pooling).fit(X, np.arange(len(X), dtype=float))
    onx = to_onnx(reg, X[:1], target_opset=13)
    assert max(o.version for o in onx.opset_import if o.domain == "") == 13
    assert_allclose(run(onx, X)["variable"][:, 0], reg.predict(X), rtol=RTOL, atol=ATOL)


def test_float64_model_exports_its_float32_rounding():
    """A model fitted in float64 runs in the graph with its weights rounded to
    float32: exactly what predict computes after the same rounding."""
    X = padded_X(seed=8)
    reg = small(LSTMRegressor, bidirectional=True).fit(
        X.astype(np.float64), np.arange(len(X), dtype=float)
    )
    out = run(to_onnx(reg, X.astype(np.float64)), X)["variable"]
    assert_allclose(out[:, 0], as_float32(reg).predict(X), rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------- classifier
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize(
    "classes", [np.array([0, 1]), np.array(["cat", "dog", "emu"]), np.array([-1, 3, 7])]
)
def test_classifier_labels_and_probabilities(pooling, classes):
    X = padded_X(seed=9)
    y = classes[np.arange(len(X)) % len(classes)]
    clf = small(
        LSTMClassifier,
        hidden_layer_sizes=(4, 3),
        pooling=pooling,
        bidirectional=pooling == "last",
    ).fit(X, y)
    out = run(to_onnx(clf, X[:1], options={"zipmap": False}), X)
    assert_allclose(out["probabilities"], clf.predict_proba(X), rtol=RTOL, atol=ATOL)
    assert_array_equal(out["label"], clf.predict(X))
    assert out["label"].dtype == (object if classes.dtype.kind == "U" else np.int64)


def test_classifier_zipmap_by_default():
    X = padded_X(seed=10)
    y = np.array(["a", "b", "c"])[np.arange(len(X)) % 3]
    clf = small(LSTMClassifier).fit(X, y)
    out = run(skl2onnx.to_onnx(clf, X[:1]), X)  # registered on import
    assert_array_equal(out["output_label"], clf.predict(X))
    proba = clf.predict_proba(X)
    for row, expected in zip(out["output_probability"], proba):
        assert list(row) == list(clf.classes_)
        assert_allclose([row[c] for c in clf.classes_], expected, rtol=RTOL, atol=ATOL)


def test_classifier_integral_float_and_bool_classes_come_out_int64():
    X = padded_X(seed=11)
    for classes in (np.array([1.0, 2.0]), np.array([False, True])):
        y = classes[np.arange(len(X)) % 2]
        clf = small(LSTMClassifier).fit(X, y)
        out = run(to_onnx(clf, X[:1], options={"zipmap": False}), X)
        assert out["label"].dtype == np.int64
        assert_array_equal(out["label"], clf.predict(X).astype(np.int64))


def test_multilabel_classifier():
    X = padded_X(seed=12)
    rng = np.random.RandomState(0)
    Y = rng.randint(0, 2, size=(len(X), 3))
    clf = small(LSTMClassifier, pooling="max").fit(X, Y)
    out = run(to_onnx(clf, X[:1], options={"zipmap": False}), X)
    assert_allclose(out["probabilities"], clf.predict_proba(X), rtol=RTOL, atol=ATOL)
    assert_array_equal(out["label"], clf.predict(X))


# ---------------------------------------------------------------- embedding
@pytest.mark.parametrize("pooling", ["last", "mean", "none"])
def test_embedding_regressor(pooling):
    ids = token_ids()
    rng = np.random.RandomState(0)
    y = rng.normal(size=(len(ids), 7) if pooling == "none" else len(ids))
    reg = as_float32(
        small(LSTMRegressor, embedding_dim=3, pooling=pooling, bidirectional=True).fit(
            ids, y
        )
    )
    out = run(to_onnx(reg, ids[:1]), ids)["variable"][..., 0]
    expected = reg.predict(ids)
    assert_array_equal(np.isnan(out), np.isnan(expected))
    assert_allclose(out, expected, rtol=RTOL, atol=ATOL)


def test_embedding_classifier():
    ids = token_ids(seed=1)
    y = np.array(["x", "y", "z"])[np.arange(len(ids)) % 3]
    clf = as_float32(
        small(LSTMClassifier, embedding_dim=3, hidden_layer_sizes=(4, 3)).fit(ids, y)
    )
    out = run(to_onnx(clf, ids[:1], options={"zipmap": False}), ids)
    assert_allclose(out["probabilities"], clf.predict_proba(ids), rtol=RTOL, atol=ATOL)
    assert_array_equal(out["label"], clf.predict(ids))


# ------------------------------------------------------------------ scaling
def test_sequence_scaler_keeps_nan():
    X = padded_X(seed=13, scale=100.0) + np.float32(50.0)
    X[2, 0, 1] = np.nan  # a missing value inside a sequence stays NaN too
    scaler = SequenceScaler().fit(X)
    out = run(to_onnx(scaler, X[:1]), X)["variable"]
    expected = scaler.transform(X)
    assert out.dtype == np.float32
    assert_array_equal(np.isnan(out), np.isnan(X))
    assert_allclose(out, expected, rtol=RTOL, atol=ATOL)


def test_sequence_scaler_float64_and_2d():
    X = padded_X(seed=14, n_features=1)[:, :, 0].astype(np.float64)
    scaler = SequenceScaler(with_mean=False).fit(X)
    out = run(skl2onnx.to_onnx(scaler, X[:1]), X)["variable"]
    assert out.dtype == np.float64
    assert_allclose(out, scaler.transform(X), rtol=1e-12)


def test_pipeline_with_scaler():
    X = padded_X(seed=15, scale=1000.0)
    y = np.where(np.nanmean(X[:, :, 0], axis=1) > 0, "up", "down")
    pipe = make_pipeline(
        SequenceScaler(), small(LSTMClassifier, pooling="mean", max_iter=5)
    ).fit(X, y)
    out = run(skl2onnx.to_onnx(pipe, X, options={"zipmap": False}), X)
    assert_allclose(out["probabilities"], pipe.predict_proba(X), rtol=RTOL, atol=ATOL)
    assert_array_equal(out["label"], pipe.predict(X))


# ------------------------------------------------------- what is refused
def test_per_step_classifier_is_not_exportable():
    X = padded_X(seed=16)
    y = (np.nan_to_num(X[:, :, 0]) > 0).astype(int)
    clf = small(LSTMClassifier, pooling="none").fit(X, y)
    with pytest.raises(NotImplementedError, match="pooling='none'.*padding"):
        to_onnx(clf, X[:1])


@pytest.mark.parametrize(
    "fit_on, sample, match",
    [
        (lambda X: X, lambda X: X[:1, :, :2], "2 features per time step.*with 3"),
        (lambda X: X, lambda X: X[:1, :, 0], "input is 2D.*3D input with 3 feature"),
        (lambda X: X[:, :, 0], lambda X: X[:1], "input is 3D.*2D input with 7 time"),
        (lambda X: X[:, :, 0], lambda X: X[:1, :5, 0], "5 time steps.*fitted with 7"),
    ],
    ids=["features", "3d-model-2d-sample", "2d-model-3d-sample", "columns"],
)
@pytest.mark.parametrize("kind", ["regressor", "scaler", "pipeline"])
def test_a_sample_predict_would_refuse_is_refused(fit_on, sample, match, kind):
    """A graph built on the wrong form or width fails on every input (or reads
    the wrong columns): refused at export, as predict refuses it."""
    X = padded_X(seed=21)
    X_fit = fit_on(X)
    y = np.arange(len(X), dtype=float)
    model = {
        "regressor": lambda: small(LSTMRegressor),
        "scaler": SequenceScaler,
        "pipeline": lambda: make_pipeline(SequenceScaler(), small(LSTMRegressor)),
    }[kind]().fit(X_fit, y)
    with pytest.raises(ValueError, match=match):
        to_onnx(model, sample(X))
    to_onnx(model, X_fit[:1])  # the fit's form is exported


def test_float64_graph_is_refused():
    X = padded_X(seed=18)
    reg = small(LSTMRegressor).fit(X, np.arange(len(X), dtype=float))
    with pytest.raises(NotImplementedError, match="float32"):
        skl2onnx.to_onnx(reg, X.astype(np.float64))


def test_text_vectorizer_is_not_exportable():
    docs = ["a fine day", "a bad day", "fine fine"]
    vectorizer = TextSequenceVectorizer().fit(docs)
    clf = small(LSTMClassifier, embedding_dim=2).fit(
        vectorizer.transform(docs), [0, 1, 0]
    )
    with pytest.raises(NotImplementedError, match="TextSequenceVectorizer"):
        to_onnx(make_pipeline(vectorizer, clf), docs)
    with pytest.raises(NotImplementedError, match="TextSequenceVectorizer"):
        skl2onnx.to_onnx(
            vectorizer,
            initial_types=[("X", skl2onnx.common.data_types.StringTensorType([None]))],
        )


def test_import_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    monkeypatch.delitem(sys.modules, "sklearn_lstm.onnx")
    with pytest.raises(ImportError, match=r'pip install "sklearn-lstm\[onnx\]"'):
        import sklearn_lstm.onnx  # noqa: F401
