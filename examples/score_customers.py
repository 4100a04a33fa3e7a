"""The weekly workflow: fit as of one date, save the model, score customers as of a later one.

A marketing team fits a model on what happened up to T0 (features before T0, spend in
the next 13 weeks as the target), saves it to a model file, and then, every week, scores
the customers as of "today" with that file: one row per customer id with the expected
spend, the probability to spend anything and quantiles. Here on the CDNOW log shipped
with ltvkit, as a backtest: T1 is in the past, so the scores can be compared with what
the customers then spent (docs/scoring.md does the same on Online Retail).

    python examples/score_customers.py

The same from the command line::

    ltvkit fit --data orders.csv --transactions --customer customer_id --date date \\
        --value value --calibration-end 1997-10-01 --holdout-end 1997-12-31 --out model.ltvkit
    ltvkit score --model model.ltvkit --data orders.csv --as-of 1998-01-01 --out scores.csv
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import ltvkit
from ltvkit.datasets import load_cdnow, transactions_to_features, transactions_to_ltv
from ltvkit.metrics import normalized_gini

FAST = os.environ.get("LTVKIT_FAST_EXAMPLES") == "1"
T0, HORIZON_END, T1, T2 = "1997-10-01", "1997-12-31", "1998-01-01", "1998-04-01"
columns = dict(customer_col="customer_id", date_col="date", value_col="value")

# 1. fit as of T0: features before T0, target = spend in [T0, T0 + 91 days)
tx = load_cdnow(return_transactions=True)
tx["customer_id"] = tx["customer_id"].map("{:05d}".format)  # ids are text, not numbers
X, y = transactions_to_ltv(tx, calibration_end=T0, holdout_end=HORIZON_END, **columns)
model = ltvkit.ZILNRegressor(max_epochs=3 if FAST else 100, random_state=0).fit(X, y)

# 2. save it: a model file, no pickle inside; load it where the scoring runs
path = Path(tempfile.mkdtemp()) / "model.ltvkit"
ltvkit.save(model, path)
loaded, manifest = ltvkit.load(path, return_manifest=True)
print(f"model file: {path.stat().st_size / 1e3:.0f} kB, {manifest['estimator']['class']}")
print(f"input columns: {', '.join(manifest['input_schema']['columns'])}")

# 3. score as of T1 (the features of the transactions before T1), one row per customer
X_now = transactions_to_features(tx, as_of=T1, **columns)[loaded.feature_names_in_]
scores = ltvkit.score_customers(loaded, X_now)
print(f"\n{len(scores):,} customers scored as of {T1}; the top 5:")
print(scores.sort_values("predicted_value", ascending=False).head().round(2).to_string())

# 4. the backtest: did the scores rank what the customers spent next better than their
#    past spend does?
after = tx[(tx["date"] >= T1) & (tx["date"] < T2)]
realised = after.groupby("customer_id")["value"].sum().reindex(scores.index, fill_value=0.0)
print(f"\nGini on the spend from {T1} to {T2}:")
print(f"  scores      {normalized_gini(realised, scores['predicted_value']):.3f}")
print(f"  past spend  {normalized_gini(realised, X_now['monetary_total']):.3f}")
