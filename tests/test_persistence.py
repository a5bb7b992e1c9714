"""Saving and loading: pickle, joblib (also memory-mapped read-only) and skops.

A loaded model must be the same model: the same predictions bit for bit, and the
same training from there on (the optimizer's state and the random state travel
with it), whatever the format and in a fresh process.
"""

import copy
import io
import os
import pickle
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline

import sklearn_lstm
from sklearn_lstm import SKOPS_TRUSTED, LSTMClassifier, LSTMRegressor
from sklearn_lstm.preprocessing import SequenceScaler, TextSequenceVectorizer

README = Path(__file__).resolve().parents[1] / "README.md"
#: Scripts run in other processes import the package that this one imported.
PACKAGE_PARENT = str(Path(sklearn_lstm.__file__).resolve().parents[1])

SOLVERS = ["adam", "sgd", "rmsprop"]
KINDS = ["regressor", "bidirectional", "per_step", "embedding", "float32"]
DOCS = [
    "the cat sat on the mat",
    "dogs bark at night",
    "a cat and a dog",
    "night falls on the quiet city",
    "the dog sleeps",
    "cats chase the mice at night",
] * 4


def problem(kind):
    """(estimator, X, y) of one model kind, small enough to fit in milliseconds."""
    rng = np.random.RandomState(0)
    params = dict(max_iter=3, batch_size=8, random_state=0)
    if kind == "regressor":
        X = rng.normal(size=(30, 5, 2))
        return LSTMRegressor((4, 3), **params), X, X[:, :, 0].sum(axis=1)
    if kind == "bidirectional":
        X = [rng.normal(size=(k, 2)) for k in rng.randint(3, 9, size=30)]
        y = np.array(["up" if seq[-1, 0] > seq[0, 0] else "down" for seq in X])
        return LSTMClassifier(4, bidirectional=True, pooling="max", **params), X, y
    if kind == "per_step":
        X = [rng.normal(size=(k, 1)) for k in rng.randint(3, 9, size=30)]
        y = [np.cumsum(seq[:, 0]) for seq in X]
        return LSTMRegressor(4, pooling="none", dropout=0.2, **params), X, y
    if kind == "embedding":
        X = rng.randint(1, 12, size=(30, 6))
        y = rng.choice(["a", "b", "c"], size=30)
        return LSTMClassifier(4, embedding_dim=3, **params), X, y
    X = rng.normal(size=(30, 5, 2)).astype(np.float32)  # trained in float32
    return LSTMRegressor(4, **params), X, X[:, :, 1].sum(axis=1)


def fitted(kind, solver):
    est, X, y = problem(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.set_params(solver=solver).fit(X, y), X, y


def outputs(est, X):
    """Everything the model answers: predictions, and probabilities if any."""
    out = [est.predict(X)]
    if hasattr(est, "predict_proba"):
        out.append(est.predict_proba(X))
    return out


def weights(est):
    arrays = [a for layer in est.lstm_coefs_ for a in layer.values()]
    arrays += est.coefs_ + est.intercepts_
    return arrays + ([est.embedding_] if hasattr(est, "embedding_") else [])


def assert_bitwise(a, b):
    """Same structure, same dtypes, same bits (NaN padding included)."""
    if isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_bitwise(x, y)
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.dtype.kind == "f":
        assert a.tobytes() == b.tobytes()
    else:
        np.testing.assert_array_equal(a, b)


def partial_fit_once(est, X, y):
    est.partial_fit(X, y)
    return est


def round_trips(fmt):
    if fmt == "pickle":
        return lambda est: pickle.loads(pickle.dumps(est))

    def joblib_round_trip(est):
        buffer = io.BytesIO()
        joblib.dump(est, buffer)
        buffer.seek(0)
        return joblib.load(buffer)

    return joblib_round_trip


# ------------------------------------------------------------- pickle, joblib
@pytest.mark.parametrize("fmt", ["pickle", "joblib"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_is_the_same_model(kind, solver, fmt):
    est, X, y = fitted(kind, solver)
    loaded = round_trips(fmt)(est)
    assert_bitwise(outputs(loaded, X), outputs(est, X))
    assert_bitwise(weights(loaded), weights(est))
    # Training goes on from the same weights, optimizer state and random state
    # (shuffling, dropout) as without the round trip.
    partial_fit_once(loaded, X, y)
    partial_fit_once(est, X, y)
    assert_bitwise(weights(loaded), weights(est))
    assert loaded.n_iter_ == est.n_iter_ and loaded.loss_curve_ == est.loss_curve_


def test_warm_start_after_round_trip_equals_warm_start_without():
    est, X, y = fitted("regressor", "adam")
    loaded = pickle.loads(pickle.dumps(est))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for model in (est, loaded):
            model.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert_bitwise(weights(loaded), weights(est))


@pytest.mark.parametrize("fmt", ["pickle", "joblib"])
def test_transformers_round_trip(fmt):
    rng = np.random.RandomState(0)
    X = [rng.normal(size=(k, 2)) * [1.0, 100.0] for k in rng.randint(3, 9, size=20)]
    scaler = SequenceScaler().fit(X)
    vectorizer = TextSequenceVectorizer(max_length=5).fit(DOCS)
    round_trip = round_trips(fmt)
    assert_bitwise(round_trip(scaler).transform(X), scaler.transform(X))
    loaded = round_trip(vectorizer)
    assert loaded.vocabulary_ == vectorizer.vocabulary_
    assert_bitwise(loaded.transform(DOCS), vectorizer.transform(DOCS))


# ------------------------------------------------------------ read-only loads
@pytest.fixture(params=["regressor", "bidirectional", "embedding"])
def read_only(tmp_path, request):
    """A fitted model, and the same loaded memory-mapped read-only."""
    est, X, y = fitted(request.param, "adam")
    joblib.dump(est, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib", mmap_mode="r")
    assert not loaded.coefs_[0].flags.writeable  # what this test is about
    return est, loaded, X, y


def test_read_only_model_predicts_and_scores(read_only):
    est, loaded, X, y = read_only
    assert_bitwise(outputs(loaded, X), outputs(est, X))
    assert loaded.score(X, y) == est.score(X, y)


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_read_only_model_refuses_to_continue_training(read_only, how):
    _, loaded, X, y = read_only
    before = [w.copy() for w in weights(loaded)]
    n_iter = loaded.n_iter_
    with pytest.raises(ValueError, match=r"read-only.*mmap_mode.*clone"):
        if how == "partial_fit":
            loaded.partial_fit(X, y)
        else:
            loaded.set_params(warm_start=True).fit(X, y)
    # Refused before anything moved: the model still answers as loaded.
    assert_bitwise(weights(loaded), before)
    assert loaded.n_iter_ == n_iter


def test_a_copy_of_a_read_only_model_continues_training(read_only):
    est, loaded, X, y = read_only
    # What the error suggests: the copy continues as the original would.
    assert_bitwise(
        weights(partial_fit_once(copy.deepcopy(loaded), X, y)),
        weights(partial_fit_once(est, X, y)),
    )


def test_read_only_model_fits_afresh(read_only):
    est, loaded, X, y = read_only
    # A plain fit draws fresh weights: the same as a fit of an unfitted clone.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        loaded.fit(X, y)
        assert_bitwise(weights(loaded), weights(clone(est).fit(X, y)))


# ---------------------------------------------------------------------- skops
@pytest.fixture(scope="module")
def skops_files(tmp_path_factory):
    """A folder holding every model kind and solver, and the transformers, saved
    by skops; ``cases.pkl`` lists ``(name, X, y)``. Returns the folder and what
    each model answers before (and for estimators, after) one more epoch."""
    sio = pytest.importorskip("skops.io")
    models = []
    for kind in KINDS:
        for solver in SOLVERS:
            est, X, y = fitted(kind, solver)
            models.append((f"{kind}-{solver}", est, X, y))
    rng = np.random.RandomState(0)
    X = [rng.normal(size=(k, 2)) for k in rng.randint(3, 9, size=20)]
    models.append(("scaler", SequenceScaler().fit(X), X, None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        text = make_pipeline(
            TextSequenceVectorizer(),
            LSTMClassifier(4, embedding_dim=3, max_iter=2, random_state=0),
        ).fit(DOCS, np.arange(len(DOCS)) % 2)
    models.append(("text-pipeline", text, DOCS, None))

    directory = tmp_path_factory.mktemp("skops")
    expected = {}
    for name, model, X, y in models:
        sio.dump(model, directory / f"{name}.skops")
        if hasattr(model, "transform"):
            expected[name] = [model.transform(X)]
            continue
        expected[name] = outputs(model, X)
        if y is not None:
            expected[name].append(partial_fit_once(model, X, y).predict(X))
    with open(directory / "cases.pkl", "wb") as file:
        pickle.dump([(name, X, y) for name, _, X, y in models], file)
    return directory, expected


SKOPS_CHILD = """
import pickle, sys, warnings
import skops.io
from sklearn_lstm import SKOPS_TRUSTED

directory = sys.argv[1]
with open(f"{directory}/cases.pkl", "rb") as file:
    cases = pickle.load(file)
results = {}
for name, X, y in cases:
    model = skops.io.load(f"{directory}/{name}.skops", trusted=SKOPS_TRUSTED)
    if hasattr(model, "transform"):
        results[name] = [model.transform(X)]
        continue
    out = [model.predict(X)]
    if hasattr(model, "predict_proba"):
        out.append(model.predict_proba(X))
    if y is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.partial_fit(X, y)
        out.append(model.predict(X))
    results[name] = out
with open(f"{directory}/results.pkl", "wb") as file:
    pickle.dump(results, file)
"""


def test_skops_trusted_types_are_exactly_what_our_models_need(skops_files):
    sio = pytest.importorskip("skops.io")
    directory, _ = skops_files
    needed = set()
    for path in directory.glob("*.skops"):
        needed |= set(sio.get_untrusted_types(file=path))
    assert needed == set(SKOPS_TRUSTED)


def test_skops_loads_the_same_model_in_a_fresh_process(skops_files):
    directory, expected = skops_files
    path = os.pathsep.join(filter(None, [PACKAGE_PARENT, os.environ.get("PYTHONPATH")]))
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SKOPS_CHILD), str(directory)],
        env={**os.environ, "PYTHONPATH": path},
        check=True,
        timeout=300,
    )
    with open(directory / "results.pkl", "rb") as file:
        results = pickle.load(file)
    assert results.keys() == expected.keys()
    for name in expected:
        assert_bitwise(results[name], expected[name])


def test_readme_lists_the_skops_trusted_types():
    section = README.read_text().split("## Saving and scaling out", 1)[1]
    section = section.split("\n## ", 1)[0]
    listed = re.findall(r'"(sklearn_lstm\.[\w.]+)"', section)
    assert sorted(listed) == sorted(SKOPS_TRUSTED)
