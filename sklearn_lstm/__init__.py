"""LSTM networks for scikit-learn.

They run on a pure-NumPy backpropagation-through-time engine.
"""

from ._estimators import LSTMClassifier, LSTMRegressor
from .preprocessing import TextSequenceVectorizer

__version__ = "0.1.0"

#: The types of this package that ``skops.io.load`` must be told to trust to load
#: any of its estimators and transformers: ``skops.io.load(path,
#: trusted=SKOPS_TRUSTED)``. Besides the public classes, they are the network's
#: description (tuples of ints and strings) and the optimizers (arrays and
#: numbers): loading them only restores their attributes.
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
