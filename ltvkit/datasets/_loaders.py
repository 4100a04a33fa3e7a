"""Loaders for real LTV data: CDNOW (shipped), Online Retail and Hillstrom (not shipped)."""

from __future__ import annotations

import io
import itertools
import numbers
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ltvkit.datasets._transactions import FEATURE_NAMES, transactions_to_ltv

__all__ = ["load_cdnow", "load_hillstrom", "load_online_retail"]

#: CDNOW runs from 1997-01-01 to 1998-06-30 inclusive: 546 days = 78 weeks.
CDNOW_START = pd.Timestamp("1997-01-01")
CDNOW_END = pd.Timestamp("1998-07-01")  # exclusive
_WEEK = pd.Timedelta(weeks=1)

_ONLINE_RETAIL_FILE = "online_retail/online_retail.parquet"
_HILLSTROM_FILE = "hillstrom/hillstrom.csv"
_HILLSTROM_CATEGORICAL = ("history_segment", "zip_code", "channel")
_HILLSTROM_FEATURES = (
    "recency",
    "history_segment",
    "history",
    "mens",
    "womens",
    "zip_code",
    "newbie",
    "channel",
)


def _read_cdnow() -> pd.DataFrame:
    raw = (resources.files("ltvkit.datasets") / "data" / "CDNOW_master.txt.gz").read_bytes()
    df = pd.read_csv(
        io.BytesIO(raw),
        compression="gzip",
        sep=r"\s+",
        dtype={"customer_id": np.int64, "date": np.int64, "number_of_cds": np.int64},
    )
    d = df["date"].to_numpy()
    dates = pd.to_datetime(
        pd.DataFrame({"year": d // 10000, "month": d // 100 % 100, "day": d % 100})
    )
    return pd.DataFrame(
        {
            "customer_id": df["customer_id"].to_numpy(),
            "date": dates.to_numpy(),
            "quantity": df["number_of_cds"].to_numpy(),
            "value": df["dollar_value"].to_numpy(dtype=np.float64),
        }
    )


def _check_weeks(value: object, name: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer number of weeks, got {value!r}.")
    return int(value)


def load_cdnow(
    *,
    calibration_weeks: int = 39,
    holdout_weeks: int | None = None,
    horizons_weeks: Sequence[int] | None = None,
    return_transactions: bool = False,
) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame] | pd.DataFrame:
    """Load the CDNOW customers as an LTV problem (embedded in ltvkit; Fader & Hardie).

    The 23,570 customers who first bought at CDNOW in Q1 1997, followed to 1998-06-30
    (69,659 purchase rows). Calibration starts on 1997-01-01 and lasts
    ``calibration_weeks``; the holdout follows it. With the default 39 weeks every
    customer is in the calibration window (all first purchases are in Q1) and the
    holdout is the remaining 39 weeks (1997-10-01 to 1998-06-30): about 70% of customers
    spend nothing in it.

    Parameters
    ----------
    calibration_weeks : int, default=39
        Length of the calibration window, from 1997-01-01. Below 13 weeks, customers who
        first bought later in Q1 are left out.
    holdout_weeks : int or None, default=None
        Length of the holdout window; None = until the end of the data (1998-06-30).
    horizons_weeks : sequence of int or None, default=None
        Multi-horizon target instead: cumulative holdout spend after each number of
        weeks, e.g. ``(13, 26, 39)``; ``y`` gets columns ``"13w", "26w", "39w"``. Cannot be
        combined with ``holdout_weeks``.
    return_transactions : bool, default=False
        Return the raw transaction table instead of ``(X, y)``: columns ``customer_id``
        (int64), ``date`` (datetime64), ``quantity`` (number of CDs) and ``value``
        (dollars).

    Returns
    -------
    X : pandas.DataFrame of shape (23570, 9)
        The core ``FEATURE_NAMES`` of ``transactions_to_ltv``, indexed by
        ``customer_id`` (the richer features ranked no better on CDNOW and Online
        Retail: ``docs/datasets.md``; ``return_transactions=True`` and
        ``transactions_to_ltv`` give them all).
    y : pandas.Series or pandas.DataFrame
        Holdout spend in dollars.

    Raises
    ------
    ValueError
        Non-positive or non-integer week counts, or windows that run past 1998-06-30.

    Examples
    --------
    >>> from ltvkit.datasets import load_cdnow
    >>> X, y = load_cdnow()
    >>> X.shape
    (23570, 9)
    >>> round(float((y == 0).mean()), 2)
    0.7
    """
    tx = _read_cdnow()
    if return_transactions:
        return tx
    cal_weeks = _check_weeks(calibration_weeks, "calibration_weeks")
    cal_end = CDNOW_START + cal_weeks * _WEEK
    if horizons_weeks is not None:
        if holdout_weeks is not None:
            raise ValueError("Give either holdout_weeks or horizons_weeks, not both.")
        if isinstance(horizons_weeks, str) or not isinstance(horizons_weeks, Sequence):
            raise ValueError(f"horizons_weeks must be a sequence of ints, got {horizons_weeks!r}.")
        weeks = [_check_weeks(h, "horizons_weeks") for h in horizons_weeks]
        if not weeks or any(b <= a for a, b in itertools.pairwise(weeks)):
            raise ValueError(
                f"horizons_weeks must be non-empty and increasing, got {horizons_weeks!r}."
            )
        holdout_end: object = [cal_end + w * _WEEK for w in weeks]
        last_end = holdout_end[-1]
    else:
        hold = _check_weeks(holdout_weeks, "holdout_weeks", allow_none=True)
        holdout_end = CDNOW_END if hold is None else cal_end + hold * _WEEK
        last_end = holdout_end
    if cal_end >= CDNOW_END or last_end > CDNOW_END:
        n_weeks = (CDNOW_END - CDNOW_START) // _WEEK
        raise ValueError(
            f"CDNOW covers {n_weeks} weeks (1997-01-01 to 1998-06-30); calibration "
            f"({calibration_weeks} weeks) plus holdout must fit inside it."
        )
    X, y = transactions_to_ltv(
        tx,
        customer_col="customer_id",
        date_col="date",
        value_col="value",
        calibration_end=cal_end,
        holdout_end=holdout_end,
        calibration_start=CDNOW_START,
    )
    if horizons_weeks is not None:
        y.columns = [f"{w}w" for w in weeks]
    return X[list(FEATURE_NAMES)], y


def _find_data_file(relpath: str, path: str | os.PathLike | None, what: str) -> Path:
    """Locate a non-shipped data file: ``path``, then ``$LTVKIT_DATA_DIR``, then
    ``<repo>/../shared/data``. An explicit ``path`` is the only place looked at."""
    rel = Path(relpath)
    if path is not None:
        p = Path(path)
        candidates = [p, p / rel, p / rel.name]
    else:
        candidates = []
        env = os.environ.get("LTVKIT_DATA_DIR")
        if env:
            candidates += [Path(env) / rel, Path(env) / rel.name]
        repo = Path(__file__).resolve().parents[2]
        candidates.append(repo.parent / "shared" / "data" / rel)
    for c in candidates:
        if c.is_file():
            return c
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"{what} not found (looked at: {looked}). It is not shipped with ltvkit: download "
        f"it, then pass path=... (the file or a data directory holding {relpath}) or set "
        "the LTVKIT_DATA_DIR environment variable."
    )


def load_online_retail(
    path: str | os.PathLike | None = None,
    *,
    calibration_end: str = "2011-09-01",
    holdout_end: str = "2011-12-10",
    return_transactions: bool = False,
) -> tuple[pd.DataFrame, pd.Series] | pd.DataFrame:
    """Load UCI Online Retail (not shipped; CC BY 4.0) as an LTV problem.

    A UK online gift wholesaler, all invoice lines from 2010-12-01 to 2011-12-09. Guest
    rows (no ``CustomerID``) are dropped; a line's value is ``Quantity * UnitPrice``.
    Cancellations (``InvoiceNo`` starting with "C") have negative quantities and stay in
    as negative lines, so refunds are netted per customer (see
    :func:`transactions_to_ltv`; a negative net holdout spend becomes 0 with a warning).
    Default windows: calibration from the first invoice to 2011-09-01 (9 months, with
    the 2010 Christmas season), holdout 2011-09-01 to the end (about 14 weeks, with the
    autumn peak).

    Parameters
    ----------
    path : str, path-like or None, default=None
        The Parquet (or ``.csv``) file, or a data directory holding
        ``online_retail/online_retail.parquet``. None: look in ``$LTVKIT_DATA_DIR`` and
        ``<repo>/../shared/data``.
    calibration_end, holdout_end : str, default="2011-09-01", "2011-12-10"
        Exclusive window ends (2011-12-10 takes in the last day, 2011-12-09).
    return_transactions : bool, default=False
        Return the cleaned line table (guest rows dropped, ``CustomerID`` as int64, a
        ``value`` column added) instead of ``(X, y)``.

    Returns
    -------
    X : pandas.DataFrame
        The core ``FEATURE_NAMES`` of ``transactions_to_ltv``, indexed by
        ``CustomerID`` (see :func:`load_cdnow`).
    y : pandas.Series
        Holdout spend.

    Raises
    ------
    FileNotFoundError
        The file is not found.

    Examples
    --------
    >>> from ltvkit.datasets import load_online_retail
    >>> X, y = load_online_retail()  # doctest: +SKIP
    """
    file = _find_data_file(_ONLINE_RETAIL_FILE, path, "Online Retail")
    if file.suffix == ".csv":
        df = pd.read_csv(file, dtype={"InvoiceNo": str, "StockCode": str})
        df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"])
    else:
        df = pd.read_parquet(file)
    df = df[df["CustomerID"].notna()].copy()
    df["CustomerID"] = df["CustomerID"].astype(np.int64)
    df["value"] = df["Quantity"].to_numpy(dtype=np.float64) * df["UnitPrice"].to_numpy(
        dtype=np.float64
    )
    df = df.reset_index(drop=True)
    if return_transactions:
        return df
    X, y = transactions_to_ltv(
        df,
        customer_col="CustomerID",
        date_col="InvoiceDate",
        value_col="value",
        calibration_end=calibration_end,
        holdout_end=holdout_end,
    )
    return X[list(FEATURE_NAMES)], y


def load_hillstrom(path: str | os.PathLike | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """Load the Hillstrom (MineThatData 2008) e-mail data (not shipped).

    64,000 customers with a 12-month purchase history; ``y`` is their ``spend`` in the two
    weeks after a randomized e-mail campaign (99% zeros). ``X`` holds the history
    features only: ``recency`` (months since last purchase), ``history_segment``,
    ``history`` (dollars spent in the past year), ``mens``, ``womens`` (0/1: bought
    men's / women's merchandise), ``zip_code`` (the raw data spells "Surburban"),
    ``newbie`` (0/1: new in the past 12 months) and ``channel``; the categorical ones
    (``history_segment``, ``zip_code``, ``channel``) as ``category`` dtype. The campaign
    assignment ``segment`` and the outcomes ``visit`` and ``conversion`` are left out.

    Parameters
    ----------
    path : str, path-like or None, default=None
        The CSV file, or a data directory holding ``hillstrom/hillstrom.csv``. None: look
        in ``$LTVKIT_DATA_DIR`` and ``<repo>/../shared/data``.

    Returns
    -------
    X : pandas.DataFrame of shape (64000, 8)
    y : pandas.Series
        ``spend`` (float64).

    Raises
    ------
    FileNotFoundError
        The file is not found.

    Examples
    --------
    >>> from ltvkit.datasets import load_hillstrom
    >>> X, y = load_hillstrom()  # doctest: +SKIP
    """
    file = _find_data_file(_HILLSTROM_FILE, path, "Hillstrom")
    df = pd.read_csv(file)
    X = df[list(_HILLSTROM_FEATURES)].copy()
    for col in _HILLSTROM_CATEGORICAL:
        X[col] = X[col].astype("category")
    y = df["spend"].astype(np.float64)
    return X, y
