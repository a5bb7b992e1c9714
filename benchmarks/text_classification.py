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
whitespace collapsed; duplicates are dropped, as are doctest lines. Each corpus
is split once, 75% training and 25% test, stratified, ``random_state=0``.

Run from the repository root::

    python benchmarks/text_classification.py               # both corpora
    python benchmarks/text_classification.py --corpus stdlib
"""

import argparse
import contextlib
import importlib
import inspect
import io
import pkgutil
import re
import time
import types
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline

from sklearn_lstm import LSTMClassifier
from sklearn_lstm.preprocessing import TextSequenceVectorizer

#: Submodules whose names hold one of these are not read (tests, build tools,
#: modules that print or run on import).
SKIP = ("test", "f2py", "__main__", "conftest", "distutils", "_pyinstaller")

CORPORA = {
    "stdlib": ({"email": ["email"], "asyncio": ["asyncio"], "xml": ["xml"],
                "http": ["http", "urllib"]}, None),
    "scientific": ({"numpy": ["numpy"], "scipy.stats": ["scipy.stats"],
                    "sklearn": ["sklearn"], "matplotlib": ["matplotlib"]}, 400),
}


def _modules(package):
    """The package and its submodules that import, depth first, by name."""
    yield package
    path = getattr(importlib.import_module(package), "__path__", None)
    if path is None:
        return
    for info in pkgutil.iter_modules(path, package + "."):
        if any(word in info.name for word in SKIP):
            continue
        try:
            importlib.import_module(info.name)
        except Exception:  # optional dependencies missing: skip the module
            continue
        if info.ispkg:
            yield from _modules(info.name)
        else:
            yield info.name


def _docstrings(package):
    """The docstrings of the package's modules and of the public functions,
    classes and methods defined in them, each once."""
    seen, docs = set(), []
    for name in _modules(package):
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
            doc = obj.__doc__ if isinstance(obj, types.ModuleType) else (
                inspect.getdoc(obj))
            if isinstance(doc, str) and doc not in seen:
                seen.add(doc)
                docs.append(doc)
    return docs


def _paragraphs(docs, min_words=8):
    paragraphs = []
    for doc in docs:
        for paragraph in re.split(r"\n\s*\n", doc):
            words = paragraph.split()
            if len(words) >= min_words and words[0] != ">>>":
                paragraphs.append(" ".join(words))
    return list(dict.fromkeys(paragraphs))


def load_corpus(name):
    """``(documents, labels)`` of a corpus of :data:`CORPORA`."""
    sources, per_class = CORPORA[name]
    rng = np.random.RandomState(0)
    documents, labels, seen = [], [], set()
    # Some modules warn or print when imported.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for label, packages in sources.items():
            paragraphs = [p for package in packages
                          for p in _paragraphs(_docstrings(package))]
            paragraphs = [p for p in dict.fromkeys(paragraphs) if p not in seen]
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
