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

Then generation and streams: forecasting 10 steps past the end of a series by
feeding a one-step model's predictions back (``generate``) against one model
forecasting the 10 steps at once; text written character by character by a model
trained on the Zen of Python, at two temperatures; and a series scored one
reading at a time by a stream.
"""

import codecs
import importlib
import importlib.util
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

from . import LSTMClassifier, LSTMRegressor, TextSequenceVectorizer
from .datasets import make_adding_problem, make_forecasting_series
from .preprocessing import make_windows

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

    # The search compares short fits (20 epochs), enough to tell the candidates
    # apart; the best is then refitted for up to 30.
    lstm = LSTMRegressor(batch_size=32, max_iter=20, random_state=0)
    grid = {"hidden_layer_sizes": [8, 16], "learning_rate_init": [0.003, 0.01]}
    print(f"GridSearchCV over {grid}, 20 epochs, 2-fold, n_jobs=2 ...")
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
    best = lstm.set_params(**search.best_params_, max_iter=30, verbose=True)
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
    _forecasting()
    _text_generation()
    _streaming()


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



def _forecasting():
    series = make_forecasting_series(1200, system="mackey_glass", random_state=0)
    horizon, n_train = 10, 900
    X, y = make_windows(series, window=30)
    X_h, y_h = make_windows(series, window=30, horizon=horizon)
    print(
        f"\nForecasting {horizon} steps past the end of a window of 30 (Mackey-Glass, "
        f"{n_train} training windows): a one-step model fed its own predictions "
        f"(generate) against one model of the {horizon} steps (make_windows(horizon="
        f"{horizon})). Test RMSE at each step ahead (series std "
        f"{y_h[n_train:].std():.3f}):"
    )
    settings = dict(learning_rate_init=0.01, batch_size=32, max_iter=40, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one_step = LSTMRegressor(16, **settings).fit(X[:n_train], y[:n_train])
        direct = LSTMRegressor(16, **settings).fit(X_h[:n_train], y_h[:n_train])
    X_test, y_test = X_h[n_train:], y_h[n_train:]
    forecasts = {
        "generate (one-step model)": one_step.generate(X_test, horizon)[:, :, 0],
        f"direct (horizon={horizon})": direct.predict(X_test),
    }
    print(f"| {'model':<26} | " + " | ".join(f"{h + 1:>5}" for h in range(horizon)))
    print(f"|{'-' * 28}|" + "|".join("-" * 7 for _ in range(horizon)))
    for name, forecast in forecasts.items():
        rmse = np.sqrt(((forecast - y_test) ** 2).mean(axis=0))
        print(f"| {name:<26} | " + " | ".join(f"{e:.3f}" for e in rmse))


def zen_of_python():
    """The Zen of Python, read from the standard library's ``this`` module
    (without importing it, which would print it)."""
    source = open(importlib.util.find_spec("this").origin).read()
    encoded = re.search(r's = """(.*?)"""', source, re.S).group(1)
    return codecs.decode(encoded, "rot13")


def _text_generation():
    text = zen_of_python()
    vectorizer = TextSequenceVectorizer(analyzer="char", lowercase=False).fit([text])
    ids = vectorizer.transform([text])[0]
    starts = range(0, len(ids) - 41, 3)
    X = np.stack([ids[i : i + 40] for i in starts])
    y = np.stack([ids[i + 1 : i + 41] for i in starts])  # the next character
    clf = LSTMClassifier(
        48, embedding_dim=8, pooling="none", learning_rate_init=0.02, batch_size=32,
        max_iter=25, random_state=0,
    )
    print(
        f"\nText generation: {len(X)} windows of 40 characters of the Zen of Python, "
        "each step labelled with the next character."
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf, seconds = _timed_fit(clf, X, y)
    vocabulary = vectorizer.get_vocabulary()
    prefix = "Beautiful is better"
    print(f"Fitted in {seconds:.1f} s. Continuing {prefix!r}:")
    for temperature in [0.5, 1.5]:
        new = clf.generate(
            vectorizer.transform([prefix]), 100, temperature=temperature,
            random_state=0,
        )
        sample = "".join(vocabulary[i] for i in new[0])
        print(f"  temperature={temperature}: {sample!r}")


def _streaming():
    rng = np.random.RandomState(0)
    t = np.arange(3000)
    # A sensor: a daily-like cycle, noise, and a slow drift.
    reading = np.sin(2 * np.pi * t / 50) + 0.2 * rng.normal(size=t.size) + t / 3000
    X, y = make_windows(reading[:2000], window=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LSTMRegressor(32, pooling="none", max_iter=10, random_state=0)
        model.fit(X, np.c_[X[:, 1:, 0], y])  # the next reading, at every step
    live = reading[2000:, np.newaxis]  # (1000, 1): one reading at a time
    stream = model.stream()
    start = time.perf_counter()
    forecasts = np.array([stream.predict(live[i : i + 1])[0] for i in range(len(live))])
    per_step = (time.perf_counter() - start) / len(live) * 1e6
    whole = model.predict(live[np.newaxis])[0]  # the same, all at once
    rmse = np.sqrt(((forecasts[:-1] - live[1:, 0]) ** 2).mean())
    print(
        f"\nStreaming: {len(live)} sensor readings, each scored as it arrives "
        f"(32 units, one step of one stream): {per_step:.0f} us per reading; "
        f"next-reading RMSE {rmse:.3f}; largest difference from predict on the whole "
        f"series {np.abs(forecasts - whole).max():.1e}."
    )


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
