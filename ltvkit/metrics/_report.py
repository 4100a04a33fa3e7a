"""``ltv_report``: every scalar ltvkit metric in one pandas Series."""

from __future__ import annotations

import pandas as pd
from numpy.typing import ArrayLike

from ltvkit.metrics._checks import _check_pair
from ltvkit.metrics._classification import bucket_accuracy, sva, zero_f1
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

__all__ = ["ltv_report"]

# Order of the report: ranking, distribution, point errors, calibration, classes.
_PLAIN_METRICS = {
    "normalized_gini": normalized_gini,
    "normalized_gini_positive": normalized_gini_positive,
    "spearman": spearman,
    "spearman_positive": spearman_positive,
    "recall_at_k": recall_at_k,
    "high_value_auc": high_value_auc,
    "mutual_gini": mutual_gini,
    "nmae": nmae,
    "nrmse": nrmse,
    "ambe": ambe,
    "mape": mape,
    "decile_mape": decile_mape,
    "percentile_mape": percentile_mape,
}


def ltv_report(
    y_true: ArrayLike, y_pred: ArrayLike, nonzero_proba: ArrayLike | None = None
) -> pd.Series:
    """Compute every scalar ltvkit metric with its default parameters.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    nonzero_proba : array-like of shape (n_samples,), default=None
        The model's P(y > 0); used by ``sva`` and ``zero_f1`` instead of the 0.1
        threshold on ``y_pred``.

    Returns
    -------
    report : pandas.Series of float64
        Metric name -> value, named ``"ltv_report"``. Direction: ``*gini*`` (except
        ``mutual_gini``), ``spearman*``, ``recall_at_k``, ``high_value_auc``, ``sva``,
        ``zero_f1`` and ``bucket_accuracy`` are higher-is-better; ``mutual_gini``,
        ``nmae``, ``nrmse``, ``ambe``, ``mape``, ``decile_mape`` and ``percentile_mape``
        are errors (lower is better).

    Examples
    --------
    >>> report = ltv_report([0, 0, 1, 3, 10], [0.0, 0.2, 1.5, 2.0, 8.0])
    >>> float(report["normalized_gini"])
    1.0
    """
    # Check once here so that a bad input is reported before any metric runs.
    t, p, proba = _check_pair(y_true, y_pred, nonzero_proba)
    values = {name: func(t, p) for name, func in _PLAIN_METRICS.items()}
    values["sva"] = sva(t, p, nonzero_proba=proba)
    values["zero_f1"] = zero_f1(t, p, nonzero_proba=proba)
    values["bucket_accuracy"] = bucket_accuracy(t, p)
    return pd.Series(values, dtype="float64", name="ltv_report")
