"""The two peers every model is compared with: ranking by past spend, and one Tweedie booster.

Neither is an ltvkit model (they are not in ``ltvkit.all_estimators()``): they are the
references a model has to beat, in ``ltvkit benchmark``, in the quality studies
(``benchmarks/run_study.py``) and in the tests that compare a model with past spend.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ltvkit.base import TabularSchema, check_predictions, validate_ltv_target

__all__ = ["PEERS", "CalibrationSpendBaseline", "LGBMTweedieRegressor"]


class CalibrationSpendBaseline(RegressorMixin, BaseEstimator):
    """Peer model: rank customers by their past spend, rescaled to the training mean.

    The usual business rule "last period's best customers are next period's best". The
    prediction is the customer's calibration-window spend (the feature ``column``,
    clipped at 0, missing as 0) times one factor learned at ``fit``::

        scale_ = mean(y_train) / mean(max(X_train[column], 0))

    so that the mean prediction on the training customers equals their mean target. Its
    ranking metrics (Gini, Spearman, recall) are those of the raw spend, the floor a
    model has to beat; the rescaling makes its error metrics (NMAE, AMBE, decile MAPE,
    SVA) those of a forecast in the target's units, comparable with the models'. It is
    the one spend baseline of ltvkit: ``ltvkit benchmark``'s ``calibration_spend`` and
    the quality studies' "calibration spend".

    Parameters
    ----------
    column : str, default="monetary_total"
        Feature column holding past spend (``transactions_to_ltv`` calls it
        ``monetary_total``).

    Attributes
    ----------
    scale_ : float
        The factor above. When no training customer has positive past spend the
        ranking carries no information: ``scale_`` is 0 and every prediction is the
        training mean ``mean_``.
    mean_ : float
        Mean training target.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"monetary_total": [10.0, -2.0, 0.0, 30.0]})
    >>> model = CalibrationSpendBaseline().fit(X, [4.0, 0.0, 0.0, 12.0])
    >>> model.scale_  # mean(y) 4 / mean past spend (10 + 0 + 0 + 30) / 4 = 10
    0.4
    >>> model.predict(X).tolist()
    [4.0, 0.0, 0.0, 12.0]
    """

    def __init__(self, column: str = "monetary_total") -> None:
        self.column = column

    def fit(
        self, X: pd.DataFrame, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> CalibrationSpendBaseline:
        """Learn ``scale_`` (weighted means with ``sample_weight``)."""
        spend = self._spend(X)
        y_arr = validate_ltv_target(y)
        if y_arr.shape[0] != spend.shape[0]:
            raise ValueError(f"X has {spend.shape[0]} rows but y has {y_arr.shape[0]}.")
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        self.mean_ = float(np.average(y_arr, weights=weights))
        past = float(np.average(spend, weights=weights))
        self.scale_ = self.mean_ / past if past > 0 else 0.0
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """``max(X[column], 0) * scale_`` as float64 (the training mean if ``scale_`` is 0)."""
        check_is_fitted(self, "scale_")
        spend = self._spend(X)
        if self.scale_ == 0.0:
            return np.full(spend.shape[0], self.mean_)
        return spend * self.scale_

    def _spend(self, X: object) -> np.ndarray:
        if not isinstance(X, pd.DataFrame) or self.column not in X.columns:
            raise ValueError(
                f"calibration_spend needs a column {self.column!r} holding past spend."
            )
        values = pd.to_numeric(X[self.column], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        return np.maximum(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), 0.0)


class LGBMTweedieRegressor(RegressorMixin, BaseEstimator):
    """Peer model: one LightGBM booster with the Tweedie objective (log link).

    The Tweedie distribution with power in (1, 2) is a compound Poisson-gamma: a point
    mass at zero plus a continuous positive part, so a single booster fits zero-inflated
    spend without a hurdle. Categorical columns are passed to LightGBM natively (pandas
    ``category`` with the training levels fixed by :class:`ltvkit.base.TabularSchema`;
    unseen levels become missing).

    Parameters
    ----------
    n_estimators : int, default=100
    learning_rate : float, default=0.1
    tweedie_variance_power : float, default=1.5
        LightGBM's defaults for all three.
    n_jobs : int or None, default=None
        Threads (None: LightGBM's default).
    random_state : int or None, default=None

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2)); y = np.where(X[:, 0] > 0, np.exp(X[:, 1]), 0.0)
    >>> LGBMTweedieRegressor(n_estimators=10, random_state=0).fit(X, y).predict(X).shape
    (300,)
    """

    def __init__(
        self,
        n_estimators: int = 100,
        learning_rate: float = 0.1,
        tweedie_variance_power: float = 1.5,
        n_jobs: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.tweedie_variance_power = tweedie_variance_power
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _frame(self, X: object) -> pd.DataFrame:
        frame = self.schema_.transform(X)
        # LightGBM refuses JSON special characters in feature names: use positional names.
        frame.columns = [f"f{i}" for i in range(frame.shape[1])]
        return frame

    def fit(self, X: object, y: object) -> LGBMTweedieRegressor:
        """Fit the booster on ``(X, y)``."""
        import lightgbm

        y_arr = validate_ltv_target(y)
        self.schema_ = TabularSchema().fit(X)
        self.booster_ = lightgbm.LGBMRegressor(
            objective="tweedie",
            tweedie_variance_power=self.tweedie_variance_power,
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            verbose=-1,
        ).fit(self._frame(X), y_arr)
        return self

    def predict(self, X: object) -> np.ndarray:
        """Expected value (the Tweedie mean, positive by the log link)."""
        check_is_fitted(self, "booster_")
        return check_predictions(self.booster_.predict(self._frame(X)), "lgbm_tweedie")


#: Peer name -> factory(baseline_column) of the unfitted peer.
PEERS: dict[str, Callable[[str], BaseEstimator]] = {
    "calibration_spend": lambda column: CalibrationSpendBaseline(column=column),
    "lgbm_tweedie": lambda column: LGBMTweedieRegressor(),
}
