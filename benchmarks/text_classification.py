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


#: The recommended pipeline and grid (see the README's "Text" section).
LSTM_GRID = {
    "lstmclassifier__pooling": ["max", "mean"],
    "lstmclassifier__dropout": [0.0, 0.3],
}


def lstm_search(n_jobs=None, grid=LSTM_GRID):
    pipe = make_pipeline(
        TextSequenceVectorizer(min_df=2),
        LSTMClassifier(32, embedding_dim=32, bidirectional=True, pooling="max",
                       learning_rate_init=0.01, batch_size=32, max_iter=10,
                       random_state=0, n_jobs=n_jobs),
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=list(CORPORA), action="append",
                        help="a corpus (repeatable); default: all")
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="n_jobs of the LSTMClassifier")
    args = parser.parse_args(argv)
    for name in args.corpus or CORPORA:
        run(name, args.n_jobs)


if __name__ == "__main__":
    main()
