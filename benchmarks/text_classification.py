"""Text classification from raw strings: our LSTM pipeline against TF-IDF +
LogisticRegression, each tuned by GridSearchCV on the same training split.

The corpora are paragraphs of documentation that ships with the installed
packages, labelled by the package they come from, so that the script needs no
download (the numbers depend on the installed versions: Python 3.11, NumPy 2.4,
SciPy 1.17, scikit-learn 1.9, matplotlib 3.11 for the README's table):

* ``stdlib``: paragraphs of the docstrings of Python's standard library
  packages ``email``, ``asyncio``, ``xml`` and ``http`` + ``urllib`` (4 classes);
* ``scientific``: paragraphs of the docstrings of ``numpy``, ``scipy.stats``,
  ``sklearn`` and ``matplotlib``, 400 drawn from each (4 classes).

A paragraph is a run of lines between blank lines with at least 8 words, its
whitespace collapsed; duplicates are dropped, as are doctest lines (the demo's
``sklearn_lstm.__main__.docstring_paragraphs``). Each corpus is split once, 75%
training and 25% test, stratified, ``random_state=0``.

Run from the repository root::

    python benchmarks/text_classification.py               # both corpora
    python benchmarks/text_classification.py --corpus stdlib
    python benchmarks/text_classification.py --explore     # what matters, ~15 min
"""

import argparse
import contextlib
import io
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline

from sklearn_lstm import LSTMClassifier
from sklearn_lstm.__main__ import STDLIB_SOURCES, docstring_paragraphs
from sklearn_lstm.preprocessing import TextSequenceVectorizer

#: Submodules whose names hold one of these are not read (tests, build tools,
#: modules that print or run on import).
SKIP = ("test", "f2py", "__main__", "conftest", "distutils", "_pyinstaller")

CORPORA = {
    "stdlib": (STDLIB_SOURCES, None),
    "scientific": ({"numpy": ["numpy"], "scipy.stats": ["scipy.stats"],
                    "sklearn": ["sklearn"], "matplotlib": ["matplotlib"]}, 400),
}


def load_corpus(name):
    """``(documents, labels)`` of a corpus of :data:`CORPORA`: a paragraph
    found under two labels is kept under the first."""
    sources, per_class = CORPORA[name]
    rng = np.random.RandomState(0)
    documents, labels, seen = [], [], set()
    # Some modules warn or print when imported.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for label, packages in sources.items():
            paragraphs = [p for p in docstring_paragraphs(packages, SKIP)
                          if p not in seen]
            seen.update(paragraphs)
            if per_class is not None and len(paragraphs) > per_class:
                keep = np.sort(rng.choice(len(paragraphs), per_class, replace=False))
                paragraphs = [paragraphs[i] for i in keep]
            documents += paragraphs
            labels += [label] * len(paragraphs)
    return documents, np.array(labels)


def split(name):
    documents, labels = load_corpus(name)
    return train_test_split(documents, labels, test_size=0.25, stratify=labels,
                            random_state=0)


def tfidf_search():
    """TF-IDF + LogisticRegression, C tuned."""
    pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=2000))
    return GridSearchCV(pipe, {"logisticregression__C": [0.1, 1, 10, 100]}, cv=3)


#: The recommended grid (see the README's "Text" section), on the pipeline of
#: :func:`lstm_search`.
LSTM_GRID = {
    "lstmclassifier__dropout": [0.5, 0.7],
    "lstmclassifier__max_iter": [5, 10],
}


def lstm_search(n_jobs=1, grid=LSTM_GRID):
    """Our pipeline: tokens found in one training document only are left out of
    the vocabulary (``min_df=2``), so that the model meets unknown tokens in fit;
    a bidirectional layer max-pooled over the steps; dropout on the embedded
    vectors."""
    pipe = make_pipeline(
        TextSequenceVectorizer(min_df=2),
        LSTMClassifier(32, embedding_dim=32, bidirectional=True, pooling="max",
                       learning_rate_init=0.01, batch_size=32, max_iter=10,
                       dropout=0.5, random_state=0, n_jobs=n_jobs),
    )
    return GridSearchCV(pipe, grid, cv=3)


def run(name, n_jobs):
    X_train, X_test, y_train, y_test = split(name)
    print(f"{name}: {len(X_train)} training and {len(X_test)} test documents, "
          f"{len(set(y_train))} classes")
    rows = []
    for label, search in [("TF-IDF + LogisticRegression", tfidf_search()),
                          ("TextSequenceVectorizer + LSTMClassifier",
                           lstm_search(n_jobs))]:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        best = {k.split("__")[1]: v for k, v in search.best_params_.items()}
        rows.append((label, search.score(X_test, y_test), search.best_score_,
                     best, seconds))
    print("| model | test accuracy | CV accuracy | best parameters | search (s) |")
    print("|---|---|---|---|---|")
    for label, test, cv, best, seconds in rows:
        print(f"| {label} | {test:.3f} | {cv:.3f} | {best} | {seconds:.0f} |")
    print(f"difference: {rows[1][1] - rows[0][1]:+.3f}\n", flush=True)


#: ``--explore``: single fits of variants of the pipeline of :func:`lstm_search`
#: (changes to its parameters, ``v_`` for the vectorizer's), mean of 3 seeds.
BASE = {"v_min_df": 2, "dropout": 0.5, "max_iter": 10}
EXPLORE = [
    {},
    {"v_min_df": 1},
    {"dropout": 0.0}, {"dropout": 0.3}, {"dropout": 0.7},
    {"max_iter": 20},
    {"pooling": "mean"},
    {"recurrent_dropout": 0.3},
    {"dropout": 0.3, "max_iter": 30, "early_stopping": True, "n_iter_no_change": 3},
    {"dropout": 0.3, "embedding_dim": 64},
    {"dropout": 0.3, "embedding_dim": 64, "hidden_layer_sizes": 64},
    {"dropout": 0.3, "batch_size": 16},
    {"dropout": 0.3, "v_max_df": 0.5},
    {"dropout": 0.0, "max_iter": 20},
    {"dropout": 0.0, "max_iter": 30, "learning_rate_init": 0.003},
    {"dropout": 0.0, "max_iter": 20, "v_min_df": 1, "pooling": "last",
     "bidirectional": False},
    {"dropout": 0.0, "max_iter": 20, "v_min_df": 1, "bidirectional": False},
    {"dropout": 0.0, "max_iter": 20, "v_min_df": 1},
]


def explore(name, n_jobs, seeds=(0, 1, 2)):
    X_train, X_test, y_train, y_test = split(name)
    print(f"{name}: test accuracy of single fits, changes to {BASE}")
    print("| changes | mean | seeds |")
    print("|---|---|---|")
    for changes in EXPLORE:
        params = {**BASE, **changes}
        vectorizer = {k[2:]: v for k, v in params.items() if k.startswith("v_")}
        classifier = {f"lstmclassifier__{k}": v for k, v in params.items()
                      if not k.startswith("v_")}
        scores = []
        for seed in seeds:
            pipe = lstm_search(n_jobs).estimator
            pipe.set_params(**classifier, lstmclassifier__random_state=seed)
            pipe[0].set_params(**vectorizer)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                scores.append(pipe.fit(X_train, y_train).score(X_test, y_test))
        print(f"| {changes or 'none'} | {np.mean(scores):.3f} | "
              f"{' '.join(f'{x:.3f}' for x in scores)} |", flush=True)
    print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=list(CORPORA), action="append",
                        help="a corpus (repeatable); default: all")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="n_jobs of the LSTMClassifier (default 1: the same "
                        "result on any machine with the same NumPy)")
    parser.add_argument("--explore", action="store_true",
                        help="single fits of variants of the pipeline instead")
    args = parser.parse_args(argv)
    for name in args.corpus or CORPORA:
        (explore if args.explore else run)(name, args.n_jobs)


if __name__ == "__main__":
    main()
