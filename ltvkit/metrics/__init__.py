"""LTV evaluation metrics and scikit-learn scorers.

Every metric takes ``(y_true, y_pred)`` 1-D arrays and returns a float; definitions
(formula, range, direction, degenerate values, references) are fixed in
``docs/metrics.md``. :data:`SCORERS` / :func:`get_scorer` wrap them for
``GridSearchCV``, ``cross_validate`` and ``cross_val_score`` (errors as ``neg_*``); on a
multi-horizon target ``(n_samples, n_horizons)`` a scorer scores the last horizon, or
the one chosen with ``get_scorer(name, horizon=h)``.

Examples
--------
>>> from ltvkit.metrics import normalized_gini, ltv_report
>>> normalized_gini([0, 0, 1, 3], [0.1, 0.2, 0.5, 0.9])
1.0
"""

from __future__ import annotations

from ltvkit.metrics._classification import bucket_accuracy, sva, zero_f1
from ltvkit.metrics._distribution import (
    interval_coverage,
    interval_score,
    interval_width,
    pinball_loss,
    quantile_coverage,
)
from ltvkit.metrics._ranking import (
    gain_curve,
    high_value_auc,
    lorenz_curve,
    mutual_gini,
    normalized_gini,
    normalized_gini_positive,
    recall_at_k,
    spearman,
    spearman_positive,
)
from ltvkit.metrics._regression import ambe, decile_mape, mape, nmae, nrmse, percentile_mape
from ltvkit.metrics._report import ltv_report
from ltvkit.metrics._scorers import SCORERS, get_scorer

__all__ = [
    "SCORERS",
    "ambe",
    "bucket_accuracy",
    "decile_mape",
    "gain_curve",
    "get_scorer",
    "high_value_auc",
    "interval_coverage",
    "interval_score",
    "interval_width",
    "lorenz_curve",
    "ltv_report",
    "mape",
    "mutual_gini",
    "nmae",
    "normalized_gini",
    "normalized_gini_positive",
    "nrmse",
    "percentile_mape",
    "pinball_loss",
    "quantile_coverage",
    "recall_at_k",
    "spearman",
    "spearman_positive",
    "sva",
    "zero_f1",
]
