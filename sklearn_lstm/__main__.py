"""Demo: ``python -m sklearn_lstm``.

The adding problem (see :func:`sklearn_lstm.datasets.make_adding_problem`): each
sequence holds 50 random values and a marker channel flagging two of them; the target
is the sum of the two flagged values. An LSTM tuned by ``GridSearchCV`` learns to
remember what it saw; a multi-layer perceptron on the flattened sequence does not do
better than predicting the mean.

Then long sequences: 250 steps of noise holding one motif, a bump or a wave, whose
shape is the class. Read at its last step, the LSTM has mostly forgotten the motif;
read in both directions and max-pooled over the steps, it finds it.

Then text: paragraphs of the docstrings of four packages of Python's standard
library, each labelled by its package, classified from raw strings by
``TextSequenceVectorizer`` + ``LSTMClassifier(embedding_dim=...)`` beside TF-IDF +
``LogisticRegression``.
"""

import importlib
import inspect
import pkgutil
import re
import time
import types
import warnings

import numpy as np
from sklearn.dummy import DummyRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline

from . import LSTMClassifier, LSTMRegressor
from .datasets import make_adding_problem
from .preprocessing import TextSequenceVectorizer

N_TIMESTEPS = 50
MOTIF_TIMESTEPS = 250


def _timed_fit(model, X, y):
    start = time.perf_counter()
    model.fit(X, y)
    return model, time.perf_counter() - start


def main():
    X, y = make_adding_problem(2000, N_TIMESTEPS, random_state=0)
    X_test, y_test = make_adding_problem(1000, N_TIMESTEPS, random_state=1)
    print(
        f"Adding problem: {X.shape[0]} training and {X_test.shape[0]} test sequences "
        f"of {N_TIMESTEPS} steps x 2 features; y = sum of the 2 marked values.\n"
    )

    lstm = LSTMRegressor(batch_size=32, max_iter=30, random_state=0)
    grid = {"hidden_layer_sizes": [8, 16], "learning_rate_init": [0.003, 0.01]}
    print(f"GridSearchCV over {grid}, 2-fold, n_jobs=2 ...")
    with warnings.catch_warnings():
        # Short searches end at max_iter on purpose.
        warnings.simplefilter("ignore", ConvergenceWarning)
        search, search_time = _timed_fit(
            GridSearchCV(lstm, grid, cv=2, n_jobs=2, refit=False), X, y
        )
    for params, score in zip(
        search.cv_results_["params"], search.cv_results_["mean_test_score"]
    ):
        print(f"  {params}: mean R^2 = {score:.4f}")
    print(f"Best: {search.best_params_} ({search_time:.1f} s)\n")

    print("Refitting the best LSTM on all training data:")
    best = lstm.set_params(**search.best_params_, verbose=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        best, lstm_time = _timed_fit(best, X, y)

    flat, flat_test = X.reshape(len(X), -1), X_test.reshape(len(X_test), -1)
    mlp, mlp_time = _timed_fit(
        MLPRegressor(max_iter=500, early_stopping=True, random_state=0), flat, y
    )
    dummy, dummy_time = _timed_fit(DummyRegressor(), flat, y)

    lstm_name = (
        f"LSTMRegressor ({best.hidden_layer_sizes} units, "
        f"learning_rate_init={best.learning_rate_init})"
    )
    rows = [
        (lstm_name, best.score(X_test, y_test), lstm_time),
        ("MLPRegressor (100,) on flattened X", mlp.score(flat_test, y_test), mlp_time),
        (
            "DummyRegressor (predicts the mean)",
            dummy.score(flat_test, y_test),
            dummy_time,
        ),
    ]
    _print_table(rows, "test R^2")
    _long_sequences()
    _text()


def _print_table(rows, metric):
    width = max(len(name) for name, _, _ in rows)
    print(f"\n| {'model':<{width}} | {metric} | fit time (s) |")
    print(f"|{'-' * (width + 2)}|{'-' * (len(metric) + 2)}|--------------|")
    for name, score, seconds in rows:
        print(f"| {name:<{width}} | {score:{len(metric)}.4f} | {seconds:12.1f} |")


def _motifs(n_samples, random_state):
    """Noise holding one 40-step motif: half a sine wave ("bump") or a whole one
    ("wave"), at a random step."""
    rng = np.random.RandomState(random_state)
    X = rng.normal(scale=0.6, size=(n_samples, MOTIF_TIMESTEPS, 1))
    y = rng.choice(["bump", "wave"], size=n_samples)
    phase = np.linspace(0.0, np.pi, 40)
    for i, start in enumerate(rng.randint(0, MOTIF_TIMESTEPS - 40, size=n_samples)):
        X[i, start : start + 40, 0] += np.sin(phase * (1 if y[i] == "bump" else 2))
    return X, y


def _long_sequences():
    X, y = _motifs(100, random_state=2)
    X_test, y_test = _motifs(500, random_state=3)
    print(
        f"\nLong sequences: {len(X)} training and {len(X_test)} test sequences of "
        f"{MOTIF_TIMESTEPS} steps of noise holding one motif, a bump or a wave."
    )
    rows = []
    for name, shape in [
        ("LSTMClassifier, last step", {}),
        (
            'LSTMClassifier, bidirectional=True, pooling="max"',
            {"bidirectional": True, "pooling": "max"},
        ),
    ]:
        clf = LSTMClassifier(
            16, learning_rate_init=0.01, batch_size=32, max_iter=25, random_state=0,
            **shape,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf, seconds = _timed_fit(clf, X, y)
        rows.append((name, clf.score(X_test, y_test), seconds))
    _print_table(rows, "test accuracy")


#: The demo's text corpus: packages of the standard library, by label.
STDLIB_SOURCES = {
    "email": ["email"], "asyncio": ["asyncio"], "xml": ["xml"],
    "http": ["http", "urllib"],
}


def _modules(package, skip):
    """The names of the package and of its submodules that import, depth
    first, leaving out those whose names hold a word of ``skip``."""
    yield package
    path = getattr(importlib.import_module(package), "__path__", None)
    for info in pkgutil.iter_modules(path or [], package + "."):
        if any(word in info.name for word in skip):
            continue
        try:
            importlib.import_module(info.name)
        except Exception:  # an optional dependency is missing
            continue
        yield from _modules(info.name, skip) if info.ispkg else [info.name]


def docstring_paragraphs(packages, skip=("test", "__main__")):
    """The paragraphs (runs of lines between blank lines, of 8 words or more,
    whitespace collapsed, doctest lines left out) of the docstrings of the
    packages' modules and of the public functions, classes and methods defined
    in them, each once, in the order met."""
    docs = {}
    for package in packages:
        for name in _modules(package, skip):
            module = importlib.import_module(name)
            objects = [module]
            for key, value in vars(module).items():
                if key.startswith("_") or getattr(value, "__module__", None) != name:
                    continue
                objects.append(value)
                if inspect.isclass(value):
                    objects += [v for k, v in vars(value).items()
                                if not k.startswith("_") and callable(v)]
            for obj in objects:
                doc = (obj.__doc__ if isinstance(obj, types.ModuleType)
                       else inspect.getdoc(obj))
                if isinstance(doc, str):
                    docs[doc] = None
    paragraphs = {}
    for doc in docs:
        for paragraph in re.split(r"\n\s*\n", doc):
            words = paragraph.split()
            if len(words) >= 8 and words[0] != ">>>":
                paragraphs[" ".join(words)] = None
    return list(paragraphs)


def _text():
    documents, labels = {}, []  # a paragraph found in two packages: the first
    for label, packages in STDLIB_SOURCES.items():
        paragraphs = [p for p in docstring_paragraphs(packages) if p not in documents]
        documents.update(dict.fromkeys(paragraphs))
        labels += [label] * len(paragraphs)
    documents = list(documents)
    X, X_test, y, y_test = train_test_split(
        documents, labels, test_size=0.25, stratify=labels, random_state=0
    )
    print(
        f"\nText: {len(X)} training and {len(X_test)} test paragraphs of the "
        "docstrings of the standard library's email, asyncio, xml and http + "
        "urllib packages; the class is the package."
    )
    lstm = make_pipeline(
        TextSequenceVectorizer(min_df=2),
        LSTMClassifier(32, embedding_dim=32, bidirectional=True, pooling="max",
                       learning_rate_init=0.01, batch_size=32, max_iter=10,
                       dropout=0.7, random_state=0, n_jobs=1),
    )
    tfidf = make_pipeline(TfidfVectorizer(), LogisticRegression(C=100, max_iter=2000))
    rows = []
    for name, model in [
        ("TextSequenceVectorizer + LSTMClassifier(embedding_dim=32)", lstm),
        ("TF-IDF + LogisticRegression(C=100)", tfidf),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model, seconds = _timed_fit(model, X, y)
        rows.append((name, model.score(X_test, y_test), seconds))
    _print_table(rows, "test accuracy")


if __name__ == "__main__":
    main()
