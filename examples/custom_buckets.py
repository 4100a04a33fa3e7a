"""Value buckets from business thresholds: how well does a model put customers in tiers?

Marketing often works with tiers ("none", "< $20", "$20-100", "$100-500", "$500+") rather
than dollar predictions. ``LTVBucketizer(boundaries=...)`` turns values into those tiers
(bucket 0 = zero spend), and ``bucket_accuracy`` scores predictions on them. The default
data-driven cut (CC-OR-Net's 50th/75th percentiles of the positive values) is shown next
to it.

    python examples/custom_buckets.py
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ltvkit.boosting import TwoStageRegressor
from ltvkit.datasets import load_cdnow
from ltvkit.metrics import bucket_accuracy
from ltvkit.preprocessing import BucketMergeWarning, LTVBucketizer

FAST = os.environ.get("LTVKIT_FAST_EXAMPLES") == "1"
THRESHOLDS = (20.0, 100.0, 500.0)  # dollars; business tiers, not quantiles

X, y = load_cdnow()
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)

tiers = LTVBucketizer(boundaries=THRESHOLDS).fit(y_train.to_numpy().reshape(-1, 1))
names = ["none", "< $20", "$20-100", "$100-500", "$500+"]
print(
    pd.DataFrame(
        {
            "tier": names,
            "lower": tiers.lower_,
            "upper": tiers.upper_,
            "training customers": tiers.counts_,
        }
    ).to_string(index=False)
)

model = TwoStageRegressor(n_estimators=50 if FAST else 300, random_state=0)
pred = model.fit(X_train, y_train).predict(X_test)

true_tier = tiers.transform(y_test.to_numpy().reshape(-1, 1))[:, 0]
pred_tier = tiers.transform(pred.reshape(-1, 1))[:, 0]
confusion = pd.crosstab(
    pd.Categorical(np.take(names, true_tier), categories=names),
    pd.Categorical(np.take(names, pred_tier), categories=names),
    rownames=["true tier"],
    colnames=["predicted tier"],
    dropna=False,
)
print("\n" + confusion.to_string())
# An expected value is a mean, so it rarely predicts "none" exactly: the zero tier is
# better read from P(y > 0), e.g. model.predict_nonzero_proba(X_test) < 0.5.
print(
    f"\nbucket accuracy on the business tiers: "
    f"{bucket_accuracy(y_test, pred, boundaries=THRESHOLDS):.3f}"
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", BucketMergeWarning)
    # bucket_accuracy(n_buckets=4) learns its cuts from the true values it is given
    quantile_tiers = LTVBucketizer(n_buckets=4).fit(y_test.to_numpy().reshape(-1, 1))
print(
    f"data-driven cuts (50th/75th percentile of positive spend): "
    f"{np.round(quantile_tiers.boundaries_, 2).tolist()}, bucket accuracy "
    f"{bucket_accuracy(y_test, pred, n_buckets=4):.3f}"
)
