"""Transaction log -> (X, y): calibration-window features and holdout-window spend."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["FEATURE_NAMES", "transactions_to_ltv"]

#: Columns of the ``X`` returned by :func:`transactions_to_ltv`, in order.
FEATURE_NAMES: tuple[str, ...] = (
    "frequency",
    "recency",
    "tenure",
    "monetary_total",
    "monetary_mean",
    "monetary_max",
    "first_purchase_value",
    "spend_last_90d",
    "frequency_last_90d",
)

_DAY = pd.Timedelta(days=1)
_RECENT = pd.Timedelta(days=90)

DateLike = str | pd.Timestamp | np.datetime64


def _parse_dates(col: pd.Series, name: str) -> pd.Series:
    if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col.dtype):
        out = col
    elif pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        # pd.to_datetime would read 19970101 as nanoseconds since 1970: refuse, don't guess.
        raise ValueError(
            f"Column {name!r} holds numbers ({col.dtype}), not dates. Parse it first, e.g. "
            f"pd.to_datetime(df[{name!r}].astype(str), format='%Y%m%d')."
        )
    else:
        try:
            out = pd.to_datetime(col)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"Could not parse column {name!r} as dates: {exc}") from exc
    n_nat = int(out.isna().sum())
    if n_nat:
        raise ValueError(f"Column {name!r} has {n_nat} missing or unparseable date(s).")
    return out


def _parse_timestamp(value: object, name: str, tz: object) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}={value!r} is not a date: {exc}") from exc
    if ts is pd.NaT:
        raise ValueError(f"{name} must be a date, got {value!r}.")
    if tz is not None and ts.tzinfo is None:
        ts = ts.tz_localize(tz)
    elif tz is None and ts.tzinfo is not None:
        raise ValueError(f"{name}={value!r} is timezone-aware but the date column is not.")
    return ts


def _warn_past_data(dates: pd.Series, ends: list[pd.Timestamp], name: str) -> None:
    """Warn when a window ends more than a day after the last transaction.

    Spend after the data ends is unknown, not zero: such a window silently gives the same
    ``y`` as one that ends with the data.
    """
    last = dates.max()
    late = [e for e in ends if e > last.normalize() + _DAY]
    if late:
        shown = ", ".join(_label(e) for e in late)
        warnings.warn(
            f"transactions_to_ltv: {name} {shown} is after the last transaction "
            f"({last}); the data cannot show spend after that, so the window is cut short "
            "and y understates it. End the window with the data or use a shorter horizon.",
            UserWarning,
            stacklevel=3,
        )


def _label(ts: pd.Timestamp) -> str:
    return ts.date().isoformat() if ts == ts.normalize() and ts.tzinfo is None else ts.isoformat()


def transactions_to_ltv(
    transactions: pd.DataFrame,
    *,
    customer_col: str,
    date_col: str,
    value_col: str,
    calibration_end: DateLike,
    holdout_end: DateLike | Sequence[DateLike],
    calibration_start: DateLike | None = None,
) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame]:
    """Turn a transaction log into per-customer features and future spend.

    Windows are half-open: calibration is ``calibration_start <= date < calibration_end``
    and the holdout is ``calibration_end <= date < holdout_end``, so a cut date belongs to
    exactly one window and "39 weeks" is exactly 273 days. Rows outside both windows are
    ignored.

    One row per customer with a *purchase* in the calibration window, where a purchase
    occasion is a distinct ``(customer, date)`` value (lines of one order, or several
    orders on one day of daily data, count once) whose net value is ``>= 0``; an occasion
    with negative net value is a refund. Features (calibration window only, days as
    floats, reference time ``calibration_end``):

    - ``frequency``: number of purchase occasions.
    - ``recency``: days from the last purchase to ``calibration_end``.
    - ``tenure``: days from the first purchase to ``calibration_end`` (customer age).
    - ``monetary_total``: net value of all calibration rows, refunds included.
    - ``monetary_mean``: ``monetary_total / frequency``.
    - ``monetary_max``: largest value of a single purchase occasion.
    - ``first_purchase_value``: value of the first purchase occasion.
    - ``spend_last_90d``: net value in the 90 days before ``calibration_end``.
    - ``frequency_last_90d``: purchase occasions in those 90 days.

    ``y`` is the customer's net spend in the holdout window, 0 when none.

    Parameters
    ----------
    transactions : pandas.DataFrame
        One row per transaction line.
    customer_col, date_col, value_col : str
        Customer id, date (datetime or date strings; numbers are refused as ambiguous)
        and monetary value (numeric; negative for refunds) columns.
    calibration_end : date-like
        First instant of the holdout window (exclusive end of calibration).
    holdout_end : date-like or sequence of date-like
        Exclusive end of the holdout window. A sequence of increasing dates gives a
        multi-horizon ``y``: one column per end date of cumulative spend from
        ``calibration_end``.
    calibration_start : date-like or None, default=None
        Start of the calibration window; None = the first transaction date.

    Returns
    -------
    X : pandas.DataFrame of shape (n_customers, 9)
        The features above (``FEATURE_NAMES``), indexed by customer id.
    y : pandas.Series or pandas.DataFrame
        Holdout spend (float64, >= 0), same index; a DataFrame with one column per
        horizon (named by the end date, ISO format) when ``holdout_end`` is a sequence.

    Raises
    ------
    ValueError
        Missing columns (named), dates that do not parse, a non-numeric, NaN or infinite
        value column, missing customer ids, ``holdout_end <= calibration_end`` or
        decreasing horizons, or no customer purchasing in the calibration window.

    Warns
    -----
    UserWarning
        When a ``holdout_end`` is more than a day after the last transaction (the window
        runs past the data, so its spend is understated). When refunds make some
        customer's net holdout spend negative: such ``y`` is set
        to 0 (models need ``y >= 0``). With several horizons, where a later refund makes
        the cumulative net spend fall, the earlier horizons are lowered to it (a
        backward running minimum), so the columns are non-decreasing and the last column
        equals the single-horizon ``y``.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "customer": ["a", "a", "b", "a", "b"],
    ...     "date": ["2020-01-01", "2020-01-05", "2020-01-03", "2020-02-10", "2020-02-29"],
    ...     "value": [10.0, 5.0, 7.0, 20.0, 3.0],
    ... })
    >>> X, y = transactions_to_ltv(tx, customer_col="customer", date_col="date",
    ...     value_col="value", calibration_end="2020-02-01", holdout_end="2020-03-01")
    >>> X.index.tolist(), X["frequency"].tolist(), X["recency"].tolist()
    (['a', 'b'], [2, 1], [27.0, 29.0])
    >>> y.tolist()
    [20.0, 3.0]
    """
    if not isinstance(transactions, pd.DataFrame):
        raise TypeError(
            f"transactions must be a pandas DataFrame, got {type(transactions).__name__}."
        )
    cols = {"customer_col": customer_col, "date_col": date_col, "value_col": value_col}
    missing = [c for c in cols.values() if c not in transactions.columns]
    if missing:
        raise ValueError(
            f"transactions is missing column(s) {missing}; it has {list(transactions.columns)}."
        )
    dates = _parse_dates(transactions[date_col], date_col)
    val = transactions[value_col]
    if not pd.api.types.is_numeric_dtype(val.dtype) or pd.api.types.is_bool_dtype(val.dtype):
        raise ValueError(f"Value column {value_col!r} must be numeric, got dtype {val.dtype}.")
    values = val.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(values).any():
        raise ValueError(f"Value column {value_col!r} has {int(np.isnan(values).sum())} NaN(s).")
    if np.isinf(values).any():
        raise ValueError(f"Value column {value_col!r} has infinite value(s).")
    cust = transactions[customer_col]
    if cust.isna().any():
        raise ValueError(
            f"Customer column {customer_col!r} has {int(cust.isna().sum())} missing id(s) "
            "(guest checkouts?); drop those rows first."
        )

    tz = getattr(dates.dt, "tz", None)
    cal_end = _parse_timestamp(calibration_end, "calibration_end", tz)
    multi = isinstance(holdout_end, Sequence) and not isinstance(holdout_end, str)
    raw_ends = list(holdout_end) if multi else [holdout_end]
    if not raw_ends:
        raise ValueError("holdout_end is an empty sequence.")
    ends = [_parse_timestamp(e, "holdout_end", tz) for e in raw_ends]
    if ends[0] <= cal_end:
        raise ValueError(f"holdout_end ({ends[0]}) must be after calibration_end ({cal_end}).")
    if any(b <= a for a, b in itertools.pairwise(ends)):
        raise ValueError(f"holdout_end dates must be strictly increasing, got {raw_ends}.")
    if calibration_start is None:
        cal_start = dates.min()
    else:
        cal_start = _parse_timestamp(calibration_start, "calibration_start", tz)
    if not cal_start < cal_end:
        raise ValueError(
            f"calibration_start ({cal_start}) must be before calibration_end ({cal_end})."
        )

    _warn_past_data(dates, ends, "holdout_end")

    # .array keeps the extension dtypes (categorical ids, tz-aware dates) intact.
    df = pd.DataFrame({"c": cust.array, "d": dates.array, "v": values})
    d = df["d"]
    cal = df[(d >= cal_start) & (d < cal_end)]
    # Occasions: net value per (customer, timestamp); sorted, so "first" is the earliest.
    occ = cal.groupby(["c", "d"], sort=True, observed=True)["v"].sum().reset_index()
    buy = occ[occ["v"] >= 0]
    if buy.empty:
        raise ValueError(
            f"No customer purchased in the calibration window [{cal_start}, {cal_end})."
        )
    g = buy.groupby("c", sort=True, observed=True)
    customers = g.size().index
    first = g["d"].min()
    last = g["d"].max()
    recent_from = cal_end - _RECENT
    X = pd.DataFrame(index=customers)
    X["frequency"] = g.size().astype(np.int64)
    X["recency"] = (cal_end - last) / _DAY
    X["tenure"] = (cal_end - first) / _DAY
    X["monetary_total"] = occ.groupby("c", observed=True)["v"].sum().reindex(customers)
    X["monetary_mean"] = X["monetary_total"] / X["frequency"]
    X["monetary_max"] = g["v"].max()
    X["first_purchase_value"] = g["v"].first()
    recent = occ[occ["d"] >= recent_from]
    X["spend_last_90d"] = (
        recent.groupby("c", observed=True)["v"].sum().reindex(customers, fill_value=0.0)
    )
    X["frequency_last_90d"] = (
        buy[buy["d"] >= recent_from]
        .groupby("c", observed=True)
        .size()
        .reindex(customers, fill_value=0)
        .astype(np.int64)
    )
    X.index.name = customer_col
    X = X.astype({c: np.float64 for c in FEATURE_NAMES if not c.startswith("frequency")})

    hold = df[(d >= cal_end) & (d < ends[-1])]
    hold = hold[hold["c"].isin(customers)]
    # Cumulative net spend up to each end. One groupby per horizon (few) rather than a
    # cumsum of increments, so the last column sums exactly like the single-horizon y.
    hd = hold["d"]
    net = np.column_stack(
        [
            hold[hd < e].groupby("c", observed=True)["v"].sum().reindex(customers, fill_value=0.0)
            for e in ends
        ]
    ).astype(np.float64)
    spend = np.maximum(net, 0.0)
    # Backward running minimum: a later refund also cancels value in earlier horizons.
    spend = np.minimum.accumulate(spend[:, ::-1], axis=1)[:, ::-1]
    n_neg = int((net[:, -1] < 0).sum())
    n_lowered = int((spend[:, :-1] < np.maximum(net[:, :-1], 0.0)).any(axis=1).sum())
    if n_neg or n_lowered:
        msg = (
            f"{n_neg} customer(s) have negative net holdout spend (refunds exceed "
            "purchases); their y is set to 0."
        )
        if n_lowered:
            msg += (
                f" {n_lowered} customer(s) had earlier horizons lowered so that cumulative "
                "spend does not decrease."
            )
        warnings.warn(f"transactions_to_ltv: {msg}", UserWarning, stacklevel=2)
    if multi:
        y = pd.DataFrame(spend, index=X.index, columns=[_label(e) for e in ends])
    else:
        y = pd.Series(spend[:, 0], index=X.index, name="holdout_spend")
    return X, y
