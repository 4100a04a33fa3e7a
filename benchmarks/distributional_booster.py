"""Prototype: a ZILN likelihood inside XGBoost (issue 21's second candidate).

Not an ltvkit model: a measurement of the idea. One XGBoost booster with multi-output
trees (``multi_strategy="multi_output_tree"``) and a custom objective, the ZILN negative
log likelihood of ``(logit p, mu, log sigma)`` per customer, with Fisher-scoring
Hessians (BCE: ``p (1 - p)``; ``mu``: ``1 / sigma^2``; ``log sigma``: 2; spenders only for
the last two). Prediction: ``p * exp(mu + sigma^2 / 2)``, ``sigma`` capped at 2 like
``ZILNRegressor``'s. The number of rounds is chosen on 20% of the training part (best
validation NLL, up to 1000 rounds), then the booster is refitted on the whole training
part with that many rounds. Numeric features only (the loaders' tables are numeric).
Also scored: its equal mixture with a default ``ZILNRegressor`` network (the mean of
the two means, as ``HybridRegressor``'s mixture with this booster in place of
``TwoStageRegressor``). Prints one line per table and seed, then the means.

Run from the repository root (same splits as ``quality_hybrid.py``)::

    OMP_NUM_THREADS=1 python benchmarks/distributional_booster.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import xgboost as xgb
from quality_hybrid import TABLES, load_table
from scipy.special import expit
from sklearn.model_selection import train_test_split

from ltvkit import ZILNRegressor
from ltvkit.metrics import decile_mape, normalized_gini

SIGMA_MAX = 2.0
PARAMS = dict(
    tree_method="hist",
    multi_strategy="multi_output_tree",
    learning_rate=0.05,
    max_depth=3,
    min_child_weight=5.0,
    reg_lambda=1.0,
    nthread=1,
)


def _split(margin: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sigma = np.clip(np.exp(margin[:, 2]), 1e-3, SIGMA_MAX)
    return expit(margin[:, 0]), margin[:, 1], sigma


def ziln_objective(margin: np.ndarray, dtrain: xgb.DMatrix) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Fisher-scoring Hessian of the ZILN NLL per output."""
    y = dtrain.get_label()
    pos = (y > 0).astype(float)
    p, mu, sigma = _split(margin)
    z = np.where(pos > 0, (np.log(np.where(pos > 0, y, 1.0)) - mu) / sigma, 0.0)
    grad = np.column_stack([p - pos, -pos * z / sigma, pos * (1 - z * z)])
    hess = np.column_stack([np.maximum(p * (1 - p), 1e-6), pos / sigma**2 + 1e-6, 2 * pos + 1e-6])
    return grad, hess


def ziln_nll(margin: np.ndarray, y: np.ndarray) -> float:
    p, mu, sigma = _split(margin)
    pos = y > 0
    p = np.clip(p, 1e-9, 1 - 1e-9)
    out = -np.log1p(-p)
    z = (np.log(np.where(pos, y, 1.0)) - mu) / sigma
    out[pos] = -np.log(p[pos]) + np.log(sigma[pos]) + 0.5 * z[pos] ** 2
    return float(out.mean())


def _base_margin(y: np.ndarray, n: int) -> np.ndarray:
    pos = y > 0
    rate = pos.mean()
    logy = np.log(y[pos])
    start = [np.log(rate / (1 - rate)), logy.mean(), np.log(max(logy.std(), 0.05))]
    return np.tile(start, (n, 1))


def fit_predict(X_tr: pd.DataFrame, y_tr: np.ndarray, X_te: pd.DataFrame, seed: int) -> np.ndarray:
    """Choose the rounds on 20% of the training part, refit on all of it, predict."""
    X_a, X_v, y_a, y_v = train_test_split(X_tr, y_tr, test_size=0.2, random_state=seed)
    d_a = xgb.DMatrix(X_a, label=y_a, base_margin=_base_margin(y_a, len(y_a)))
    d_v = xgb.DMatrix(X_v, base_margin=_base_margin(y_a, len(y_v)))
    booster = xgb.Booster({**PARAMS, "num_target": 3, "seed": seed}, [d_a])
    best, best_round = np.inf, 1
    for r in range(1, 1001):
        booster.update(d_a, r - 1, fobj=ziln_objective)
        if r % 10 == 0:
            nll = ziln_nll(booster.predict(d_v, output_margin=True), y_v)
            if nll < best:
                best, best_round = nll, r
            elif r - best_round >= 100:
                break
    d_all = xgb.DMatrix(X_tr, label=y_tr, base_margin=_base_margin(y_tr, len(y_tr)))
    final = xgb.train(
        {**PARAMS, "num_target": 3, "seed": seed}, d_all, best_round, obj=ziln_objective
    )
    margin = final.predict(
        xgb.DMatrix(X_te, base_margin=_base_margin(y_tr, len(X_te))), output_margin=True
    )
    p, mu, sigma = _split(margin)
    return p * np.exp(mu + sigma**2 / 2)


def main() -> None:
    rows = []
    for table in TABLES:
        data = load_table(table)
        if data is None:
            continue
        X, y = data
        X = X.astype(float)
        for seed in (0, 1, 2):
            X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed)
            y_tr, y_te = np.asarray(y_tr, float), np.asarray(y_te, float)
            t0 = time.perf_counter()
            booster = fit_predict(X_tr, y_tr, X_te, seed)
            fit_s = time.perf_counter() - t0
            net = ZILNRegressor(random_state=seed).fit(X_tr, y_tr).predict(X_te)
            for name, pred in (
                ("booster", booster),
                ("booster + ZILN, 1/2", 0.5 * (booster + net)),
            ):
                row = {
                    "table": table,
                    "seed": seed,
                    "model": name,
                    "gini": normalized_gini(y_te, pred),
                    "decile_mape": decile_mape(y_te, pred),
                    "booster_fit_s": fit_s,
                }
                rows.append(row)
                print(row, flush=True)
    df = pd.DataFrame(rows).drop(columns="seed")
    print(df.groupby(["table", "model"], sort=False).mean().round(4).to_markdown())


if __name__ == "__main__":
    main()
