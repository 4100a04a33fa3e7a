"""Multi-horizon LTV with ODMN: predict cumulative spend at 13, 26 and 39 weeks at once.

ODMN (Li et al., CIKM 2022) models several horizons jointly, so the long-horizon
prediction can borrow from the short ones. The target is a 2-D array of *cumulative*
spend, one column per horizon (non-decreasing along each row); ``load_cdnow`` builds it
with ``horizons_weeks``.

    python examples/multi_horizon_odmn.py
"""

from __future__ import annotations

import os
import sys

import numpy as np
from sklearn.model_selection import train_test_split

import ltvkit
from ltvkit.datasets import load_cdnow
from ltvkit.metrics import decile_mape, normalized_gini

FAST = os.environ.get("LTVKIT_FAST_EXAMPLES") == "1"

try:
    ODMNRegressor = ltvkit.ODMNRegressor
except AttributeError:
    sys.exit("This ltvkit has no ODMNRegressor yet; this example needs it.")

X, Y = load_cdnow(horizons_weeks=(13, 26, 39))
print(f"{X.shape[0]:,} customers; cumulative holdout spend at {list(Y.columns)}")
print("share spending anything by each horizon:", (Y > 0).mean().round(3).to_dict())

X_train, X_test, Y_train, Y_test = train_test_split(X, Y, test_size=0.3, random_state=0)
model = ODMNRegressor(random_state=0)
if FAST:  # a quarter of the training customers, a couple of epochs (shared parameter)
    X_train, Y_train = X_train.iloc[::4], Y_train.iloc[::4]
    model.set_params(max_epochs=2)
model.fit(X_train, Y_train)
pred = model.predict(X_test)  # shape (n_customers, n_horizons)

print(f"\n{'horizon':>8} {'Gini':>7} {'decile MAPE':>12} {'mean true':>10} {'mean pred':>10}")
for j, horizon in enumerate(Y.columns):
    t, p = Y_test.iloc[:, j].to_numpy(), pred[:, j]
    print(
        f"{horizon:>8} {normalized_gini(t, p):7.3f} {decile_mape(t, p):12.3f} "
        f"{t.mean():10.2f} {p.mean():10.2f}"
    )
monotone = (np.diff(pred, axis=1) >= -1e-9).all(axis=1).mean()
print(f"\npredictions non-decreasing along the horizons for {monotone:.1%} of customers")
