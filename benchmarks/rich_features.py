"""Do ``transactions_to_features``' rich features rank customers better than the core nine?

Run: ``python benchmarks/rich_features.py [--seeds 3]`` (Online Retail needs
``LTVKIT_DATA_DIR``). For CDNOW (the ``load_cdnow()`` windows; ``quantity_col``) and
Online Retail (the ``load_online_retail()`` windows; ``item_col``, ``quantity_col`` and
``static_cols=["Country"]``), fits ``TwoStageRegressor()`` and ``ZILNRegressor()`` with
default settings on the same rows twice: the core ``FEATURE_NAMES`` (what the loaders
return) and every column ``transactions_to_ltv`` builds. The fixed split
(``train_test_split(test_size=0.3, random_state=0)``), model seeds 0..n-1; prints the
normalized Gini and decile MAPE on the held-out 30%, mean ± sd.
"""

from __future__ import annotations

import argparse
import warnings

import pandas as pd
import torch
from _common import fixed_split, mean_sd

import ltvkit
from ltvkit.datasets import (
    FEATURE_NAMES,
    load_cdnow,
    load_online_retail,
    transactions_to_ltv,
)
from ltvkit.metrics import decile_mape, normalized_gini


def tables() -> dict[str, tuple[pd.DataFrame, pd.Series]]:
    """Both tables with every feature ``transactions_to_ltv`` computes."""
    out = {}
    tx = load_cdnow(return_transactions=True)
    out["CDNOW"] = transactions_to_ltv(
        tx,
        customer_col="customer_id",
        date_col="date",
        value_col="value",
        quantity_col="quantity",
        calibration_start="1997-01-01",
        calibration_end=pd.Timestamp("1997-01-01") + pd.Timedelta(weeks=39),
        holdout_end="1998-07-01",
    )
    try:
        tx = load_online_retail(return_transactions=True)
    except FileNotFoundError:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # refunds netted to 0
        out["Online Retail"] = transactions_to_ltv(
            tx,
            customer_col="CustomerID",
            date_col="InvoiceDate",
            value_col="value",
            item_col="StockCode",
            quantity_col="Quantity",
            static_cols=["Country"],
            calibration_end="2011-09-01",
            holdout_end="2011-12-10",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, (X, y) in tables().items():
        # the loaders' targets must be the same rows and values (one definition)
        X_core = X[list(FEATURE_NAMES)]
        for features, frame in (("core 9", X_core), (f"rich {X.shape[1]}", X)):
            X_tr, X_te, y_tr, y_te = fixed_split(frame, y)
            for model in ("TwoStageRegressor", "ZILNRegressor"):
                gini, mape = [], []
                for seed in range(args.seeds):
                    est = getattr(ltvkit, model)(random_state=seed)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # data-quality notes on Country
                        pred = est.fit(X_tr, y_tr).predict(X_te)
                    gini.append(normalized_gini(y_te, pred))
                    mape.append(decile_mape(y_te, pred))
                rows.append(
                    {
                        "data": name,
                        "features": features,
                        "model": model,
                        "normalized_gini": mean_sd(gini),
                        "decile_mape": mean_sd(mape),
                    }
                )
                print(rows[-1], flush=True)
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
