"""scikit-learn's own estimator checks, with no expected failures: at the default
parameters and with both directions and mean pooling."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_lstm import LSTMClassifier, LSTMRegressor


@parametrize_with_checks(
    [
        LSTMRegressor(),
        LSTMClassifier(),
        LSTMRegressor(bidirectional=True, pooling="mean"),
        LSTMClassifier(bidirectional=True, pooling="mean"),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
