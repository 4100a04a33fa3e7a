"""Time ``transactions_to_features`` on a large synthetic transaction log.

Run: ``python benchmarks/bench_transactions.py [n_lines] [n_customers]`` (defaults
5_000_000 lines of 1_000_000 customers over two years). Times, in one run, the features
from the date, value and customer columns alone, then with ``item_col``, ``quantity_col``
and ``static_cols`` too, and ``transactions_to_ltv`` (features plus the holdout target).
Prints wall time and peak RSS.
"""

from __future__ import annotations

import resource
import sys
import time
import warnings

import numpy as np
import pandas as pd

from ltvkit.datasets import transactions_to_features, transactions_to_ltv


def make_log(n_lines: int, n_customers: int, seed: int = 0) -> pd.DataFrame:
    """Customers with skewed activity, daily dates over 2020-2021, ~2% refund lines."""
    rng = np.random.default_rng(seed)
    activity = rng.pareto(1.5, n_customers) + 1.0
    customer = rng.choice(n_customers, size=n_lines, p=activity / activity.sum())
    day = rng.integers(0, 730, n_lines)
    value = np.round(rng.lognormal(3.0, 1.0, n_lines), 2)
    value[rng.random(n_lines) < 0.02] *= -1
    countries = np.array(["DE", "FR", "GB", "NL", "US"])
    return pd.DataFrame(
        {
            "customer_id": customer.astype(np.int64),
            "date": pd.Timestamp("2020-01-01") + pd.to_timedelta(day, unit="D"),
            "value": value,
            "item": rng.integers(0, 5_000, n_lines),
            "quantity": rng.integers(1, 6, n_lines),
            "country": pd.Categorical(countries[customer % len(countries)]),
        }
    )


def timed(label: str, fn) -> None:
    start = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - start
    X = out[0] if isinstance(out, tuple) else out
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(
        f"{label}: {elapsed:.2f} s | {X.shape[0]:,} customers x {X.shape[1]} features | "
        f"peak RSS so far {peak:,.0f} MiB",
        flush=True,
    )


if __name__ == "__main__":
    n_lines = int(float(sys.argv[1])) if len(sys.argv) > 1 else 5_000_000
    n_customers = int(float(sys.argv[2])) if len(sys.argv) > 2 else 1_000_000
    warnings.simplefilter("ignore", UserWarning)  # the refunds drawn above: y set to 0
    tx = make_log(n_lines, n_customers)
    print(f"{n_lines:,} lines of {tx['customer_id'].nunique():,} customers")
    cols = {"customer_col": "customer_id", "date_col": "date", "value_col": "value"}
    timed(
        "transactions_to_features (date, value)",
        lambda: transactions_to_features(tx, **cols, as_of="2021-07-01"),
    )
    timed(
        "transactions_to_features (+ item, quantity, static country)",
        lambda: transactions_to_features(
            tx,
            **cols,
            as_of="2021-07-01",
            item_col="item",
            quantity_col="quantity",
            static_cols=["country"],
        ),
    )
    timed(
        "transactions_to_ltv (date, value; 6-month holdout)",
        lambda: transactions_to_ltv(
            tx, **cols, calibration_end="2021-07-01", holdout_end="2021-12-31"
        ),
    )
