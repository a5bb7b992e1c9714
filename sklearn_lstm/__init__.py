"""LSTM networks for scikit-learn.

They run on a pure-NumPy backpropagation-through-time engine.
"""

from ._estimators import LSTMClassifier, LSTMRegressor
from .preprocessing import TextSequenceVectorizer

__version__ = "0.1.0"

#: The types of this package that ``skops.io.load`` must be told to trust to load
#: any of its estimators and transformers: ``skops.io.load(path,
#: trusted=SKOPS_TRUSTED)``. They hold plain data (the network's description as
#: tuples of ints and strings, the optimizer's moments as arrays), and loading
#: them runs no code but their own ``__setstate__``, which only restores views.
SKOPS_TRUSTED = (
    "sklearn_lstm._estimators.LSTMClassifier",
    "sklearn_lstm._estimators.LSTMRegressor",
    "sklearn_lstm._network.DenseLayer",
    "sklearn_lstm._network.EmbeddingLayer",
    "sklearn_lstm._network.LSTMLayer",
    "sklearn_lstm._network.Network",
    "sklearn_lstm._network.ParamSpec",
    "sklearn_lstm._optimizers.AdamOptimizer",
    "sklearn_lstm._optimizers.RMSPropOptimizer",
    "sklearn_lstm._optimizers.SGDOptimizer",
    "sklearn_lstm.preprocessing.SequenceScaler",
    "sklearn_lstm.preprocessing.TextSequenceVectorizer",
)

__all__ = [
    "LSTMClassifier",
    "LSTMRegressor",
    "SKOPS_TRUSTED",
    "TextSequenceVectorizer",
    "__version__",
]
