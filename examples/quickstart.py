"""Quickstart: fit one LTV model on the embedded CDNOW data and score it.

Run from the repository root::

    python examples/quickstart.py

CDNOW (Fader & Hardie) ships with ltvkit: 23,570 customers, features from a 39-week
calibration window (``frequency``, ``recency``, ``monetary_total``, ...) and their spend in
the following 39 weeks as the target (70% of them spend nothing). The model is fitted on
70% of the customers and scored on the other 30% (ltvkit's fixed split), next to the
simplest peer: ranking customers by what they spent in the calibration window.
"""

from __future__ import annotations

import os

import pandas as pd
from sklearn.model_selection import train_test_split

from ltvkit.boosting import TwoStageRegressor
from ltvkit.datasets import load_cdnow
from ltvkit.metrics import ltv_report

# Tests run every example with LTVKIT_FAST_EXAMPLES=1: fewer boosting rounds, same code.
FAST = os.environ.get("LTVKIT_FAST_EXAMPLES") == "1"

X, y = load_cdnow()
print(
    f"CDNOW: {X.shape[0]:,} customers, {X.shape[1]} features, "
    f"{(y > 0).mean():.1%} spend in the holdout window"
)

X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)

model = TwoStageRegressor(n_estimators=50 if FAST else 300, random_state=0)
model.fit(X_train, y_train)
pred = model.predict(X_test)  # expected spend per customer, E[y | x]

report = pd.DataFrame(
    {
        "TwoStageRegressor": ltv_report(
            y_test, pred, nonzero_proba=model.predict_nonzero_proba(X_test)
        ),
        "calibration spend": ltv_report(y_test, X_test["monetary_total"].clip(lower=0)),
    }
)
print(report.round(3).to_string())
print(
    "\nHigher is better for *gini*, spearman*, recall_at_k, high_value_auc, sva, zero_f1 and "
    "bucket_accuracy; lower for the errors (nmae, nrmse, ambe, mape, decile/percentile MAPE) "
    "and mutual_gini. Definitions: docs/metrics.md."
)
print("Next: compare every model with `ltvkit benchmark`.")
