"""The three benchmark pictures for your own models: gain chart, decile chart, Lorenz curves.

``ltvkit.plotting`` draws on matplotlib Axes (needs ``pip install 'ltvkit[plot]'``), so the
pictures fit into notebooks and reports. This script fits two models on CDNOW, adds the
calibration-spend ranking as the peer to beat, and saves the three charts side by side.

    python examples/plotting.py [output.png]
"""

from __future__ import annotations

import os
import sys

from sklearn.model_selection import train_test_split

from ltvkit.boosting import TwoStageRegressor
from ltvkit.datasets import load_cdnow
from ltvkit.nn import ZILNRegressor

try:
    import matplotlib

    matplotlib.use("Agg")  # write a file; no window needed
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit("This example needs matplotlib: pip install 'ltvkit[plot]'.")

from ltvkit.plotting import plot_decile_chart, plot_gain_chart, plot_lorenz

FAST = os.environ.get("LTVKIT_FAST_EXAMPLES") == "1"
out = sys.argv[1] if len(sys.argv) > 1 else "ltv_charts.png"

X, y = load_cdnow()
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
models = {
    "two_stage": TwoStageRegressor(n_estimators=50 if FAST else 300, random_state=0),
    "ziln": ZILNRegressor(max_epochs=3 if FAST else 100, random_state=0),
}
predictions = {name: m.fit(X_train, y_train).predict(X_test) for name, m in models.items()}
predictions["calibration spend"] = X_test["monetary_total"].clip(lower=0).to_numpy()

fig, axes = plt.subplots(1, 3, figsize=(19, 5.8), layout="constrained")
plot_gain_chart(y_test, predictions, ax=axes[0])
plot_decile_chart(y_test, predictions, ax=axes[1])
plot_lorenz(y_test, predictions, ax=axes[2])
fig.savefig(out, dpi=100)
print(f"wrote {out}")
