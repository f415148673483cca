"""scikit-learn estimators on layerkit nets: ``NetClassifier`` and ``NetRegressor``.

Drop-ins for ``MLPClassifier`` and ``MLPRegressor``: the same parameters,
defaults and fitted attributes (docs/guide/coming_from_mlpclassifier.md).

They work in ``Pipeline``, ``cross_val_score`` and ``GridSearchCV``, pickle
(fitted net and optimizer state included), and so run in joblib worker
processes or on a Dask cluster (``joblib.parallel_backend("dask")``)::

    from sklearn.model_selection import GridSearchCV
    from layerkit.sklearn import NetClassifier

    search = GridSearchCV(NetClassifier(random_state=0),
                          {"hidden_layers": [({"type": "linear", "n_out": 16}, "relu"),
                                             ({"type": "linear", "n_out": 64}, "relu")],
                           "learning_rate_init": [0.01, 0.001]}, n_jobs=2)
"""
from layerkit.sklearn._base import NetEstimator
from layerkit.sklearn._classifier import NetClassifier
from layerkit.sklearn._regressor import NetRegressor
from layerkit.sklearn._stopping import NonFiniteWeightsError

__all__ = ["NetClassifier", "NetRegressor", "NetEstimator", "NonFiniteWeightsError"]
