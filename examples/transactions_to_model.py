"""From a transaction log to a customer table to a model.

Every LTV project starts from transactions: one row per order line. ``transactions_to_ltv``
turns them into one row per customer with calibration-window features (frequency,
recency, tenure, monetary totals, 90-day activity) and the spend in a later holdout window
as the target. Here the log is CDNOW's; with your own log, replace the ``read`` step.

    python examples/transactions_to_model.py

The same pipeline from the command line, for a CSV or Parquet log::

    ltvkit benchmark --data orders.csv --transactions --customer customer_id \\
        --date date --value value --calibration-end 1997-10-01 --holdout-end 1998-07-01
"""

from __future__ import annotations

import os

import pandas as pd
from sklearn.model_selection import train_test_split

from ltvkit.datasets import load_cdnow, transactions_to_ltv
from ltvkit.metrics import ltv_report
from ltvkit.nn import ZILNRegressor

FAST = os.environ.get("LTVKIT_FAST_EXAMPLES") == "1"

# 1. read: one row per transaction (customer_id, date, quantity, value)
transactions = load_cdnow(return_transactions=True)
print(transactions.head().to_string(index=False))
print(f"{len(transactions):,} transactions of {transactions['customer_id'].nunique():,} customers")

# 2. customer table: features before 1997-10-01, target = spend until 1998-07-01 (exclusive)
X, y = transactions_to_ltv(
    transactions,
    customer_col="customer_id",
    date_col="date",
    value_col="value",
    calibration_end="1997-10-01",
    holdout_end="1998-07-01",
)
print(
    f"\ncustomer table: {X.shape[0]:,} customers x {X.shape[1]} features; "
    f"{(y == 0).mean():.1%} spend nothing in the holdout"
)
print(X.describe().T[["mean", "50%", "max"]].round(1).to_string())

# 3. model: the zero-inflated lognormal network (Wang, Liu & Miao 2019)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
model = ZILNRegressor(max_epochs=3 if FAST else 100, random_state=0)
model.fit(X_train, y_train)
pred = model.predict(X_test)
print(f"\ntrained {model.n_iter_} epochs")
print(
    ltv_report(y_test, pred, nonzero_proba=model.predict_nonzero_proba(X_test))
    .round(3)
    .to_string()
)

# The fitted distribution per customer: P(y > 0) and the lognormal (mu, sigma) of the spend.
params = pd.DataFrame(model.predict_params(X_test.head()), index=X_test.head().index)
print("\n" + params.round(3).to_string())
