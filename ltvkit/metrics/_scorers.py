"""scikit-learn scorers for the ltvkit metrics (``SCORERS``, ``get_scorer``).

Scores are "higher is better" as sklearn expects: error metrics are exposed negated
under a ``neg_`` name, like sklearn's ``neg_mean_absolute_error``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from sklearn.metrics import get_scorer as _sklearn_get_scorer
from sklearn.metrics import make_scorer

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


def _scorer(func: Callable[..., float], *, greater_is_better: bool) -> Callable[..., float]:
    # response_method="predict": LTV models are scored on their expected value E[y | x].
    return make_scorer(func, response_method="predict", greater_is_better=greater_is_better)


#: Scorer name -> sklearn scorer (``scorer(estimator, X, y)``; higher is better).
SCORERS: dict[str, Callable[..., float]] = {
    "normalized_gini": _scorer(normalized_gini, greater_is_better=True),
    "normalized_gini_positive": _scorer(normalized_gini_positive, greater_is_better=True),
    "spearman": _scorer(spearman, greater_is_better=True),
    "spearman_positive": _scorer(spearman_positive, greater_is_better=True),
    "recall_at_k": _scorer(recall_at_k, greater_is_better=True),
    "high_value_auc": _scorer(high_value_auc, greater_is_better=True),
    "sva": _scorer(sva, greater_is_better=True),
    "zero_f1": _scorer(zero_f1, greater_is_better=True),
    "bucket_accuracy": _scorer(bucket_accuracy, greater_is_better=True),
    "neg_mutual_gini": _scorer(mutual_gini, greater_is_better=False),
    "neg_decile_mape": _scorer(decile_mape, greater_is_better=False),
    "neg_percentile_mape": _scorer(percentile_mape, greater_is_better=False),
    "neg_nmae": _scorer(nmae, greater_is_better=False),
    "neg_nrmse": _scorer(nrmse, greater_is_better=False),
    "neg_ambe": _scorer(ambe, greater_is_better=False),
    "neg_mape": _scorer(mape, greater_is_better=False),
}
# The scorers of predicted quantiles (they call predict_quantiles and take a level:
# get_scorer("neg_pinball_loss", quantile=0.9)) are in ltvkit.metrics._distribution's
# QUANTILE_SCORERS; get_scorer serves both tables.


def get_scorer(
    scoring: str | Callable[..., float] | None, **params: float
) -> Callable[..., float] | None:
    """Return an ltvkit scorer by name, or defer to :func:`sklearn.metrics.get_scorer`.

    Parameters
    ----------
    scoring : str, callable or None
        An ltvkit name (a key of :data:`SCORERS`, e.g. ``"normalized_gini"`` or
        ``"neg_decile_mape"``) or anything ``sklearn.metrics.get_scorer`` accepts
        (``"r2"``, a callable, None).
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
        If the name is neither an ltvkit nor a scikit-learn scorer; the message lists
        ltvkit's names.

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
    """
    if isinstance(scoring, str) and scoring in QUANTILE_SCORERS:
        return quantile_scorer(scoring, **params)
    if params:
        raise ValueError(
            f"ltvkit.metrics: the scorer {scoring!r} takes no parameters, got {params}."
        )
    if isinstance(scoring, str) and scoring in SCORERS:
        return copy.deepcopy(SCORERS[scoring])
    try:
        return _sklearn_get_scorer(scoring)
    except ValueError as exc:
        raise ValueError(
            f"{scoring!r} is not a valid scoring value. ltvkit scorers: "
            f"{', '.join(sorted([*SCORERS, *QUANTILE_SCORERS]))}; scikit-learn scorers: see "
            "sklearn.metrics.get_scorer_names()."
        ) from exc
