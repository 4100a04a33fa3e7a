"""scikit-learn scorers for the ltvkit metrics (``SCORERS``, ``get_scorer``).

Scores are "higher is better" as sklearn expects: error metrics are exposed negated
under a ``neg_*`` name, like sklearn's ``neg_mean_absolute_error``.

Multi-horizon models (``ODMNRegressor``) are fitted and cross-validated on a 2-D target
of shape ``(n_samples, n_horizons)`` and predict the same shape. The metrics score one
value vector, so every ltvkit scorer picks one horizon first: the last one by default,
or the one given by ``get_scorer(name, horizon=h)``.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import get_scorer as _sklearn_get_scorer
from sklearn.metrics import make_scorer

from ltvkit.metrics._checks import _PREFIX
from ltvkit.metrics._classification import bucket_accuracy, sva, zero_f1
from ltvkit.metrics._distribution import QUANTILE_SCORERS, quantile_scorer
from ltvkit.metrics._ranking import (
    high_value_auc,
    mutual_gini,
    normalized_gini,
    normalized_gini_positive,
    recall_at_k,
    spearman,
    spearman_positive,
)
from ltvkit.metrics._regression import ambe, decile_mape, mape, nmae, nrmse, percentile_mape

__all__ = ["SCORERS", "get_scorer"]

#: Scorer name -> (metric, greater_is_better). Error metrics get the ``neg_`` prefix.
_SPECS: dict[str, tuple[Callable[..., float], bool]] = {
    "normalized_gini": (normalized_gini, True),
    "normalized_gini_positive": (normalized_gini_positive, True),
    "spearman": (spearman, True),
    "spearman_positive": (spearman_positive, True),
    "recall_at_k": (recall_at_k, True),
    "high_value_auc": (high_value_auc, True),
    "sva": (sva, True),
    "zero_f1": (zero_f1, True),
    "bucket_accuracy": (bucket_accuracy, True),
    "neg_mutual_gini": (mutual_gini, False),
    "neg_decile_mape": (decile_mape, False),
    "neg_percentile_mape": (percentile_mape, False),
    "neg_nmae": (nmae, False),
    "neg_nrmse": (nrmse, False),
    "neg_ambe": (ambe, False),
    "neg_mape": (mape, False),
}
# The scorers of predicted quantiles (they call predict_quantiles and take a level:
# get_scorer("neg_pinball_loss", quantile=0.9)) are in ltvkit.metrics._distribution's
# QUANTILE_SCORERS; get_scorer serves both tables.


def _as_array(values: ArrayLike, name: str) -> np.ndarray:
    try:
        return np.asarray(values)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{_PREFIX}: {name} must be array-like ({exc}).") from exc


def _select_horizon(
    y_true: ArrayLike, y_pred: ArrayLike, horizon: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``horizon`` column of a 2-D ``(y_true, y_pred)`` pair (1-D input as is).

    A 1-D vector and a ``(n, 1)`` column are one horizon. ``y_true`` and ``y_pred`` must
    have the same number of horizons; the message names both shapes otherwise.
    """
    t, p = _as_array(y_true, "y_true"), _as_array(y_pred, "y_pred")
    shapes = f"y_true has shape {t.shape} but y_pred has shape {p.shape}"
    for arr, name in ((t, "y_true"), (p, "y_pred")):
        if arr.ndim not in (1, 2):
            raise ValueError(
                f"{_PREFIX}: {name} must be 1-D or 2-D (n_samples, n_horizons), "
                f"got shape {arr.shape}."
            )
    n_t = t.shape[1] if t.ndim == 2 else 1
    n_p = p.shape[1] if p.ndim == 2 else 1
    if n_t != n_p:
        raise ValueError(
            f"{_PREFIX}: {shapes}; a multi-horizon target (n_samples, n_horizons) needs "
            "predictions of the same shape (is the model multi-horizon?)."
        )
    if not -n_t <= horizon < n_t:
        raise ValueError(
            f"{_PREFIX}: horizon={horizon} is out of range for a target with {n_t} "
            f"horizon(s) ({shapes}); use an index in [{-n_t}, {n_t - 1}]."
        )
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"{_PREFIX}: {shapes}; the numbers of samples differ.")
    # 1-D input is one horizon and goes to the metric untouched.
    return (t[:, horizon] if t.ndim == 2 else t), (p[:, horizon] if p.ndim == 2 else p)


class _OneHorizon:
    """A metric that scores one horizon of a 2-D target: ``metric(y[:, h], pred[:, h])``.

    A class rather than a closure so that scorers pickle (``GridSearchCV(n_jobs=...)``);
    ``__name__`` keeps sklearn's scorer repr readable: ``make_scorer(normalized_gini, ...)``.
    """

    def __init__(self, metric: Callable[..., float]) -> None:
        self.metric = metric
        self.__name__ = metric.__name__

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike, *, horizon: int = -1) -> float:
        t, p = _select_horizon(y_true, y_pred, horizon)
        return self.metric(t, p)


def _check_horizon(horizon: object) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral):
        raise ValueError(
            f"{_PREFIX}: horizon must be an int (a column index of the multi-horizon "
            f"target, negative counts from the last), got {horizon!r}."
        )
    return int(horizon)


def _make(name: str, horizon: int) -> Callable[..., float]:
    metric, greater_is_better = _SPECS[name]
    # response_method="predict": LTV models are scored on their expected value E[y | x].
    return make_scorer(
        _OneHorizon(metric),
        response_method="predict",
        greater_is_better=greater_is_better,
        horizon=horizon,
    )


#: Scorer name -> sklearn scorer (``scorer(estimator, X, y)``; higher is better). A 2-D
#: (multi-horizon) target is scored on its last horizon.
SCORERS: dict[str, Callable[..., float]] = {name: _make(name, -1) for name in _SPECS}


def get_scorer(
    scoring: str | Callable[..., float] | None,
    *,
    horizon: int | None = None,
    **params: float,
) -> Callable[..., float] | None:
    """Return an ltvkit scorer by name, or defer to :func:`sklearn.metrics.get_scorer`.

    Parameters
    ----------
    scoring : str, callable or None
        An ltvkit name (a key of :data:`SCORERS`, e.g. ``"normalized_gini"`` or
        ``"neg_decile_mape"``) or anything ``sklearn.metrics.get_scorer`` accepts
        (``"r2"``, a callable, None).
    horizon : int or None, default=None
        For a multi-horizon target ``y`` of shape ``(n_samples, n_horizons)`` (and
        predictions of the same shape): the column to score, as a Python index
        (``0`` is the first horizon, ``-1`` the last). None scores the last horizon,
        like ``-1``. A 1-D target is one horizon (``0`` or ``-1``). ltvkit scorers only.
    **params : float
        The level of a scorer of predicted quantiles (they call ``predict_quantiles``):
        ``get_scorer("neg_pinball_loss", quantile=0.9)``,
        ``get_scorer("quantile_coverage", quantile=0.9)``, and ``alpha=0.1`` (the central
        90% interval) for ``"interval_coverage"``, ``"neg_interval_width"`` and
        ``"neg_interval_score"``. Other scorers take none.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``, higher is better. ltvkit scorers call
        ``estimator.predict``; a fresh copy is returned each time.

    Raises
    ------
    ValueError
        If the name is neither an ltvkit nor a scikit-learn scorer (the message lists
        ltvkit's names), or ``horizon`` is not an int or is given for a scikit-learn
        scorer. At scoring time, a ``ValueError`` names the shapes of ``y`` and of the
        predictions when their numbers of horizons differ (e.g. a 1-D prediction for a
        2-D target), or when ``horizon`` is out of range.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> search = GridSearchCV(
    ...     DecisionTreeRegressor(random_state=0),
    ...     {"max_depth": [2, 4]},
    ...     scoring={"gini": get_scorer("normalized_gini"), "r2": get_scorer("r2")},
    ...     refit="gini",
    ... )
    >>> import numpy as np
    >>> from sklearn.neighbors import KNeighborsRegressor
    >>> Y = np.array([[0.0, 1.0], [2.0, 2.0], [1.0, 5.0], [0.0, 0.0]])  # 2 horizons
    >>> model = KNeighborsRegressor(n_neighbors=1).fit(Y, Y)  # predicts Y exactly
    >>> get_scorer("normalized_gini", horizon=0)(model, Y, Y)  # scores Y[:, 0]
    1.0
    """
    if isinstance(scoring, str) and scoring in QUANTILE_SCORERS:
        return quantile_scorer(scoring, **params)
    if params:
        raise ValueError(
            f"ltvkit.metrics: the scorer {scoring!r} takes no parameters, got {params}."
        )
    if isinstance(scoring, str) and scoring in SCORERS:
        if horizon is None:
            return copy.deepcopy(SCORERS[scoring])
        return _make(scoring, _check_horizon(horizon))
    if horizon is not None:
        raise ValueError(
            f"{_PREFIX}: horizon= applies to ltvkit scorers ({', '.join(sorted(SCORERS))}), "
            f"not to {scoring!r}."
        )
    try:
        return _sklearn_get_scorer(scoring)
    except ValueError as exc:
        raise ValueError(
            f"{scoring!r} is not a valid scoring value. ltvkit scorers: "
            f"{', '.join(sorted([*SCORERS, *QUANTILE_SCORERS]))}; scikit-learn scorers: see "
            "sklearn.metrics.get_scorer_names()."
        ) from exc
