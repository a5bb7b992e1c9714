"""scikit-learn's own estimator checks, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_lstm import LSTMClassifier, LSTMRegressor


@parametrize_with_checks([LSTMRegressor(), LSTMClassifier()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
