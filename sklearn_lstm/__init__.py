"""LSTM networks for scikit-learn.

They run on a pure-NumPy backpropagation-through-time engine.
"""

from ._estimators import LSTMClassifier, LSTMRegressor
from .preprocessing import TextSequenceVectorizer

__version__ = "0.1.0"

__all__ = ["LSTMClassifier", "LSTMRegressor", "TextSequenceVectorizer", "__version__"]
