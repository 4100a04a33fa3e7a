"""Benchmark tables beyond the bundled loaders (shared by the benchmark scripts).

:func:`first_purchase_cdnow` is the one definition of the "CDNOW first purchase" table;
it copies ``benchmarks/quality_ccornet.py``'s (CC-OR-Net branch), which MEAN's branch
builds the same way, so every script scores the same table.
"""

from __future__ import annotations

import pandas as pd

from ltvkit.datasets import FEATURE_NAMES, load_cdnow, transactions_to_ltv


def first_purchase_cdnow() -> tuple[pd.DataFrame, pd.Series]:
    """CDNOW as known on each customer's first purchase day.

    The CDNOW log (``load_cdnow(return_transactions=True)``) restricted to each
    customer's first purchase date (every line of that day), plus every line from
    1997-04-01 on, through ``transactions_to_ltv(calibration_end="1997-04-01",
    holdout_end="1998-07-01")``: ``X`` = the core features as of 1997-04-01 computed from
    the first purchase day only (every CDNOW customer first bought in Q1 1997), ``y`` =
    spend from 1997-04-01 to 1998-06-30. Purchases between the first day and 1997-04-01
    are in neither.

    Returns
    -------
    X : DataFrame of shape (23570, 9)
    y : Series of shape (23570,)
    """
    tx = load_cdnow(return_transactions=True)
    first_day = tx["date"] == tx.groupby("customer_id")["date"].transform("min")
    cut = pd.Timestamp("1997-04-01")
    assert tx.loc[first_day, "date"].max() < cut  # every first purchase is in Q1 1997
    log = pd.concat([tx[first_day], tx[tx["date"] >= cut]], ignore_index=True)
    X, y = transactions_to_ltv(
        log,
        customer_col="customer_id",
        date_col="date",
        value_col="value",
        calibration_end=cut,
        holdout_end="1998-07-01",
    )
    return X[list(FEATURE_NAMES)], y
