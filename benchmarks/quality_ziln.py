"""Quality of ZILNRegressor on CDNOW and UCI Online Retail, next to a spend baseline.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/quality_ziln.py            # seeds 0..4
    OMP_NUM_THREADS=1 python benchmarks/quality_ziln.py --seeds 3

Protocol (ltvkit convention): ``train_test_split(X, y, test_size=0.3, random_state=0)``,
default ``ZILNRegressor`` hyperparameters, one fit per ``random_state`` (the split is
fixed; the seed only changes initialisation, shuffling and the validation split).
Reported on the 30% test split: normalized Gini, Spearman, decile MAPE, NMAE and AMBE
(``ltvkit.metrics``), as mean ± standard deviation over seeds.

Baseline "calibration spend": rank customers by ``X["monetary_total"]`` (their spend in
the calibration window). Gini and Spearman only use the ranking. For the error metrics
the baseline predicts ``monetary_total * mean(y_train) / mean(monetary_total_train)``,
the calibration spend rescaled to the training mean, so it is calibrated on average.
Online Retail is skipped when its file is absent. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from _common import load_split, mean_sd, spend_baseline

from ltvkit.metrics import ambe, decile_mape, nmae, normalized_gini, spearman
from ltvkit.nn import ZILNRegressor

METRICS = {
    "normalized Gini ↑": normalized_gini,
    "Spearman ↑": spearman,
    "decile MAPE ↓": decile_mape,
    "NMAE ↓": nmae,
    "AMBE ↓": ambe,
}


def _scores(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {name: float(fn(y_true, pred)) for name, fn in METRICS.items()}


def evaluate(name: str, seeds: int) -> pd.DataFrame | None:
    split = load_split(name)
    if split is None:
        print(f"{name}: data not found, skipped")
        return None
    X_tr, X_te, y_tr, y_te = split
    rows, fits, epochs = [], [], []
    for seed in range(seeds):
        t0 = time.perf_counter()
        model = ZILNRegressor(random_state=seed).fit(X_tr, y_tr)
        fits.append(time.perf_counter() - t0)
        epochs.append(model.n_iter_)
        rows.append(_scores(y_te, model.predict(X_te)))
    zi = pd.DataFrame(rows)
    base = _scores(y_te, spend_baseline(X_tr, X_te, y_tr))
    print(
        f"{name}: {len(X_tr):,} train / {len(X_te):,} test rows, {(y_te == 0).mean():.0%} zeros "
        f"in test; ZILN fit {np.mean(fits):.1f}s, {np.mean(epochs):.0f} epochs on average"
    )
    out = pd.DataFrame(
        {
            "ZILN (mean ± sd)": [mean_sd(zi[m]) for m in METRICS],
            "calibration spend": [f"{base[m]:.4f}" for m in METRICS],
        },
        index=list(METRICS),
    )
    out.index.name = name
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in ("CDNOW", "Online Retail"):
        table = evaluate(name, args.seeds)
        if table is not None:
            print(table.to_markdown())
            print()


if __name__ == "__main__":
    main()
