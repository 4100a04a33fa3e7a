"""docs/scoring.md's backtest: fit as of T0, score as of T1, compare with what happened.

On UCI Online Retail (a local copy, see docs/datasets.md), through the command line:

    ltvkit fit   ... --calibration-end 2011-06-01 --holdout-end 2011-08-31 --model NAME
    ltvkit score ... --as-of 2011-09-01

for each model, then the normalized Gini (and Spearman, and the share of the realised
spend captured by the top 10% of scores) of the scores on each customer's spend from
2011-09-01 to 2011-12-01 (91 days), next to the rankings by past spend: all of it
(``monetary_total`` as of 2011-09-01) and the last 90 days' (``spend_last_90d``).
Run from the repository root:

    OMP_NUM_THREADS=1 python benchmarks/backtest_online_retail.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ltvkit.cli import main
from ltvkit.datasets import load_online_retail, transactions_to_features
from ltvkit.metrics import normalized_gini

T0, HOLDOUT_END, T1, T2 = "2011-06-01", "2011-08-31", "2011-09-01", "2011-12-01"
FLAGS = [
    "--transactions",
    "--customer",
    "CustomerID",
    "--date",
    "InvoiceDate",
    "--value",
    "value",
    "--static-columns",
    "Country",
    "--item",
    "StockCode",
    "--quantity",
    "Quantity",
]
MODELS = {
    "odmn (the default)": [],
    "two_stage": ["--model", "two_stage"],
    "two_stage, 50 rounds": ["--model", "two_stage", "--set", "n_estimators=50"],
    "ziln": ["--model", "ziln"],
    "mdme": ["--model", "mdme"],
}


def _row(name: str, realised: pd.Series, score: pd.Series, seconds: float | None) -> str:
    s = np.asarray(score, dtype=float)
    top = np.argsort(-s, kind="stable")[: len(s) // 10]
    share = realised.iloc[top].sum() / realised.sum()
    took = "" if seconds is None else f"{seconds:.0f}"
    return (
        f"| {name} | {normalized_gini(realised, s):.3f} | {spearmanr(realised, s).statistic:.3f} "
        f"| {share:.3f} | {took} |"
    )


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    tx = load_online_retail(return_transactions=True)
    with tempfile.TemporaryDirectory() as tmp:
        orders = Path(tmp) / "orders.parquet"
        tx.to_parquet(orders, index=False)
        tx["CustomerID"] = tx["CustomerID"].astype(str)
        rows = []
        realised = past = None
        for name, extra in MODELS.items():
            model, scores_path = Path(tmp) / "model.ltvkit", Path(tmp) / "scores.csv"
            t0 = time.perf_counter()
            fit = ["fit", "--data", str(orders), *FLAGS, "--calibration-end", T0]
            assert main([*fit, "--holdout-end", HOLDOUT_END, *extra, "--out", str(model)]) == 0
            score = ["score", "--model", str(model), "--data", str(orders), "--as-of", T1]
            assert main([*score, "--out", str(scores_path)]) == 0
            seconds = time.perf_counter() - t0
            scores = pd.read_csv(scores_path, dtype={"CustomerID": str}).set_index("CustomerID")
            if realised is None:
                after = tx[(tx["InvoiceDate"] >= T1) & (tx["InvoiceDate"] < T2)]
                realised = (
                    after.groupby("CustomerID")["value"]
                    .sum()
                    .clip(lower=0)
                    .reindex(scores.index, fill_value=0.0)
                )
                past = transactions_to_features(
                    tx,
                    customer_col="CustomerID",
                    date_col="InvoiceDate",
                    value_col="value",
                    as_of=T1,
                ).reindex(scores.index)
            rows.append(_row(name, realised, scores["predicted_value"], seconds))
    print(f"{len(realised):,} customers scored as of {T1}; realised spend {T1} to {T2}")
    print("| ranking | Gini | Spearman | top-10% share | fit + score s |")
    print("|:--|--:|--:|--:|--:|")
    print(_row("all past spend (monetary_total)", realised, past["monetary_total"], None))
    print(_row("spend of the last 90 days", realised, past["spend_last_90d"], None))
    print("\n".join(rows))


if __name__ == "__main__":
    main_()
