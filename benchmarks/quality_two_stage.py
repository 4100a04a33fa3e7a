"""Quality of TwoStageRegressor on CDNOW and UCI Online Retail (docs/models/two_stage.md).

Every number in the model page comes from this script. Split: the ltvkit convention,
``train_test_split(X, y, test_size=0.3, random_state=0)``; all models use their defaults
(``random_state=0``, one thread so the numbers are reproducible to the last digit).

Run from the repository root::

    python benchmarks/quality_two_stage.py            # both data sets, Markdown tables
    python benchmarks/quality_two_stage.py --data cdnow
    python benchmarks/quality_two_stage.py --defaults  # + CV of candidate defaults

Online Retail is read from ``$LTVKIT_DATA_DIR`` or ``../shared/data`` and built with
``transactions_to_ltv`` (calibration to 2011-09-01, holdout to 2011-12-09); it is
skipped with a note if the file is absent.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from _common import fixed_split, online_retail
from lightgbm import LGBMRegressor
from sklearn.model_selection import KFold

from ltvkit.boosting import TwoStageRegressor
from ltvkit.datasets import load_cdnow
from ltvkit.metrics import ambe, decile_mape, nmae, normalized_gini, spearman, sva

SEED = 0


def load(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    # online_retail() silences the UserWarning on the 27 customers whose refunds exceed
    # their holdout purchases (they get y = 0)
    X, y = load_cdnow() if name == "cdnow" else online_retail()
    return X, np.asarray(y, dtype=np.float64)


def metrics(y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None) -> dict[str, float]:
    return {
        "normalized Gini": normalized_gini(y, pred),
        "Spearman": spearman(y, pred),
        "decile MAPE": decile_mape(y, pred),
        "NMAE": nmae(y, pred),
        "AMBE": ambe(y, pred),
        "AMBE / mean(y)": ambe(y, pred) / y.mean(),
        "SVA": sva(y, pred, nonzero_proba=proba),
    }


def two_stage(**params: object) -> Callable[[pd.DataFrame, np.ndarray, pd.DataFrame], tuple]:
    def run(X_tr: pd.DataFrame, y_tr: np.ndarray, X_te: pd.DataFrame) -> tuple:
        model = TwoStageRegressor(n_jobs=1, random_state=SEED, **params).fit(X_tr, y_tr)
        return model.predict(X_te), model.predict_nonzero_proba(X_te)

    return run


def lgbm_tweedie(X_tr: pd.DataFrame, y_tr: np.ndarray, X_te: pd.DataFrame) -> tuple:
    model = LGBMRegressor(objective="tweedie", n_jobs=1, random_state=SEED, verbose=-1)
    return model.fit(X_tr, y_tr).predict(X_te), None


def calibration_spend(X_tr: pd.DataFrame, y_tr: np.ndarray, X_te: pd.DataFrame) -> tuple:
    return X_te["monetary_total"].to_numpy(dtype=np.float64), None


PEERS = {
    "TwoStage (xgboost)": two_stage(backend="xgboost"),
    "TwoStage (lightgbm)": two_stage(backend="lightgbm"),
    "LGBMRegressor(tweedie)": lgbm_tweedie,
    "calibration spend": calibration_spend,
}

# Stage-2 target / retransformation variants (the choice of the defaults).
VARIANTS = {
    "log1p + balance (default)": dict(),
    "log1p + smearing (Duan)": dict(bias_correction="smearing"),
    "log1p + lognormal": dict(bias_correction="lognormal"),
    "log1p, no correction": dict(bias_correction="none"),
    "none + gamma + balance": dict(target_transform="none"),
    "none + gamma, no correction": dict(target_transform="none", bias_correction="none"),
    "none + tweedie + balance": dict(target_transform="none", tweedie=True),
}


def variant(backend: str, params: dict) -> Callable:
    params = dict(params)
    if params.pop("tweedie", False):
        objective = "reg:tweedie" if backend == "xgboost" else "tweedie"
        params["regressor_params"] = {"objective": objective}
    return two_stage(backend=backend, **params)


# Candidate defaults compared by cross-validation on the training part only (--defaults).
CANDIDATES = {
    "depth 3, lr 0.05, 200 trees, mcw 5 (default)": dict(),
    "depth 3, lr 0.03, 300 trees, mcw 5": dict(learning_rate=0.03, n_estimators=300),
    "depth 4, lr 0.03, 200 trees, mcw 10": dict(
        max_depth=4, learning_rate=0.03, min_child_weight=10.0
    ),
    "depth 4, lr 0.05, 300 trees, mcw 5": dict(max_depth=4, n_estimators=300),
    "depth 6, lr 0.1, 300 trees, mcw 1": dict(
        max_depth=6, learning_rate=0.1, n_estimators=300, min_child_weight=1.0
    ),
    "default + subsample 0.8, colsample 0.8": dict(subsample=0.8, colsample_bytree=0.8),
    "early stopping: lr 0.05, <= 2000 trees, 50 rounds": dict(
        n_estimators=2000, early_stopping=True, patience=50
    ),
}


def cross_validated(
    fit_predict: Callable, X: pd.DataFrame, y: np.ndarray, repeats: int = 3
) -> dict[str, float]:
    """Mean over ``repeats`` x 5-fold CV (on the training part only) of the key metrics."""
    scores = []
    for rep in range(repeats):
        for a, b in KFold(5, shuffle=True, random_state=rep).split(X):
            pred, _ = fit_predict(X.iloc[a], y[a], X.iloc[b])
            yb = y[b]
            scores.append(
                [normalized_gini(yb, pred), decile_mape(yb, pred), pred.mean() / yb.mean() - 1.0]
            )
    gini, dmape, bias = np.mean(scores, axis=0)
    return {
        "CV normalized Gini": gini,
        "CV decile MAPE": dmape,
        "CV mean(pred) / mean(y) - 1": bias,
    }


def table(rows: dict[str, dict[str, float]], digits: int = 3) -> str:
    frame = pd.DataFrame(rows).T
    lines = [
        "| model | " + " | ".join(frame.columns) + " |",
        "|---|" + "---:|" * len(frame.columns),
    ]
    for name, row in frame.iterrows():
        cells = [f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:.0f}" for v in row]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def evaluate(name: str, *, defaults: bool = False) -> None:
    try:
        X, y = load(name)
    except FileNotFoundError as exc:
        print(f"## {name}: skipped ({exc})\n")
        return
    X_tr, X_te, y_tr, y_te = fixed_split(X, y)
    print(
        f"## {name}: {len(y_tr)} train / {len(y_te)} test customers, "
        f"{(y_te == 0).mean():.0%} zeros in test, mean(y_test) = {y_te.mean():.2f}\n"
    )
    rows = {}
    for label, fit_predict in PEERS.items():
        start = time.perf_counter()
        pred, proba = fit_predict(X_tr, y_tr, X_te)
        seconds = time.perf_counter() - start
        rows[label] = metrics(y_te, pred, proba) | {"fit+predict s": seconds}
    print(table(rows) + "\n")
    for backend in ("xgboost", "lightgbm"):
        rows = {}
        for label, params in VARIANTS.items():
            pred, _ = variant(backend, params)(X_tr, y_tr, X_te)
            rows[label] = {
                "normalized Gini": normalized_gini(y_te, pred),
                "decile MAPE": decile_mape(y_te, pred),
                "AMBE": ambe(y_te, pred),
                "mean(pred) / mean(y) - 1": pred.mean() / y_te.mean() - 1.0,
            } | cross_validated(variant(backend, params), X_tr, y_tr)
        print(
            f"### {name}, stage-2 variants, backend={backend} "
            "(test split | 3 x 5-fold CV on the training part)\n"
        )
        print(table(rows) + "\n")
    if defaults:
        for backend in ("xgboost", "lightgbm"):
            rows = {
                label: cross_validated(two_stage(backend=backend, **params), X_tr, y_tr)
                for label, params in CANDIDATES.items()
            }
            print(
                f"### {name}, candidate defaults, backend={backend} "
                "(3 x 5-fold CV on the training part)\n"
            )
            print(table(rows) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["cdnow", "online_retail", "all"], default="all")
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="also cross-validate the candidate default hyper-parameters",
    )
    args = parser.parse_args()
    for name in ("cdnow", "online_retail"):
        if args.data in (name, "all"):
            evaluate(name, defaults=args.defaults)


if __name__ == "__main__":
    main()
