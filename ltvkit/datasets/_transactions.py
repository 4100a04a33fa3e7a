"""Transaction log -> customer features as of a date, and holdout-window spend.

:func:`transactions_to_features` computes one row of features per customer from the
transactions before a date (``as_of``): what scoring today's customers needs.
:func:`transactions_to_ltv` adds the target, the spend in a holdout window after
``calibration_end``, for training and back-testing; its ``X`` is exactly
``transactions_to_features(..., as_of=calibration_end)`` (one code path).
"""

from __future__ import annotations

import itertools
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["FEATURE_NAMES", "transactions_to_features", "transactions_to_ltv"]

#: The core recency-frequency-monetary features, the first columns of every ``X``.
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

#: Trailing windows (days) of spend and purchase count, besides the core 90 days: each is
#: computed when it fits in the calibration window.
TRAILING_WINDOWS_DAYS: tuple[int, ...] = (30, 180, 365)

_DAY = pd.Timedelta(days=1)
_RECENT = pd.Timedelta(days=90)

# a date written with numbers only, e.g. 01/09/2011 or 1.9.11: day and month order unknown
_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})\b")

DateLike = str | pd.Timestamp | np.datetime64


# ------------------------------------------------------------------------------- dates
def _parse_dates(col: pd.Series, name: str, date_format: str | None = None) -> pd.Series:
    """Parse a date column; refuse numbers and day/month-ambiguous text without a format."""
    if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col.dtype):
        out = col
    elif date_format is not None:
        text = col.astype("string") if pd.api.types.is_numeric_dtype(col.dtype) else col
        try:
            out = pd.to_datetime(text, format=date_format)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"Column {name!r} does not match date_format={date_format!r}: {_first(exc)}"
            ) from exc
    elif pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        # pd.to_datetime would read 19970101 as nanoseconds since 1970: refuse, don't guess.
        raise ValueError(
            f"Column {name!r} holds numbers ({col.dtype}), not dates. Pass date_format "
            f"(e.g. date_format='%Y%m%d' for 19970101) or parse it first."
        )
    else:
        out = _parse_text_dates(col, name)
    n_nat = int(out.isna().sum())
    if n_nat:
        raise ValueError(f"Column {name!r} has {n_nat} missing or unparseable date(s).")
    return out


def _parse_text_dates(col: pd.Series, name: str) -> pd.Series:
    try:  # ISO 8601 (2011-09-01, 2011-09-01 08:26:00...) is unambiguous
        return pd.to_datetime(col, format="ISO8601")
    except (ValueError, TypeError):
        pass
    values = col.dropna().astype(str)
    sample = values.iloc[:: max(1, len(values) // 2000)]
    numeric = sample.str.match(_NUMERIC_DATE)
    if len(sample) and numeric.mean() > 0.5:
        example = sample[numeric].iloc[0]
        parts = [m.groups() for m in sample[numeric].map(_NUMERIC_DATE.match)]
        day_first_only = any(int(a) > 12 for a, _, _ in parts)
        month_first_only = any(int(b) > 12 for _, b, _ in parts)
        hint = ""
        if day_first_only != month_first_only:
            hint = f" (its values only parse {'day' if day_first_only else 'month'} first)"
        sep = re.search(r"[/.\-]", example).group(0)  # type: ignore[union-attr]
        year = "%Y" if len(parts[0][2]) == 4 else "%y"
        raise ValueError(
            f"Column {name!r} holds dates such as {example!r} whose day and month order is "
            f"ambiguous{hint}; pass date_format='%d{sep}%m{sep}{year}' (day first) or "
            f"'%m{sep}%d{sep}{year}' (month first)."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas' "could not infer format" notice
            return pd.to_datetime(col)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"Could not parse column {name!r} as dates: {_first(exc)} Pass date_format."
        ) from exc


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


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


def _label(ts: pd.Timestamp) -> str:
    return ts.date().isoformat() if ts == ts.normalize() and ts.tzinfo is None else ts.isoformat()


def _warn_past_data(last: pd.Timestamp, ends: list[pd.Timestamp], name: str, fn: str) -> None:
    """Warn when a window ends more than a day after the last transaction.

    Spend after the data ends is unknown, not zero: such a window silently gives the same
    ``y`` as one that ends with the data (and features as of such a date count days
    without data as days without purchases).
    """
    late = [e for e in ends if e > last.normalize() + _DAY]
    if late:
        shown = ", ".join(_label(e) for e in late)
        warnings.warn(
            f"{fn}: {name} {shown} is after the last transaction ({last}); the data cannot "
            "show what happened after that, so the window is cut short. End the window with "
            "the data or use a shorter horizon.",
            UserWarning,
            stacklevel=3,
        )


# ------------------------------------------------------------------------ the log
@dataclass
class _Log:
    """The validated transaction log: one row per line, in the original order."""

    frame: pd.DataFrame  # columns c (id), d (date), v (value), optional i, q, static cols
    tz: object
    customer_col: str
    static_cols: list[str]


def _read_log(
    transactions: object,
    *,
    customer_col: str,
    date_col: str,
    value_col: str,
    static_cols: Sequence[str] | None,
    item_col: str | None,
    quantity_col: str | None,
    date_format: str | None,
) -> _Log:
    if not isinstance(transactions, pd.DataFrame):
        raise TypeError(
            f"transactions must be a pandas DataFrame, got {type(transactions).__name__}."
        )
    if isinstance(static_cols, str):
        static_cols = [static_cols]
    static = list(static_cols or [])
    named = [customer_col, date_col, value_col, *static]
    named += [c for c in (item_col, quantity_col) if c is not None]
    missing = [c for c in named if c not in transactions.columns]
    if missing:
        raise ValueError(
            f"transactions is missing column(s) {missing}; it has {list(transactions.columns)}."
        )
    clash = [c for c in static if c in (customer_col, date_col, value_col)]
    if clash:
        raise ValueError(f"static_cols {clash} repeat the customer, date or value column.")
    dates = _parse_dates(transactions[date_col], date_col, date_format)
    values = _numeric(transactions[value_col], value_col, "Value")
    cust = transactions[customer_col]
    if cust.isna().any():
        raise ValueError(
            f"Customer column {customer_col!r} has {int(cust.isna().sum())} missing id(s) "
            "(guest checkouts?); drop those rows first."
        )
    # .array keeps the extension dtypes (categorical ids, tz-aware dates) intact.
    cols = {"c": cust.array, "d": dates.array, "v": values}
    if item_col is not None:
        cols["i"] = transactions[item_col].array
    if quantity_col is not None:
        cols["q"] = _numeric(transactions[quantity_col], quantity_col, "Quantity")
    frame = pd.DataFrame(cols)
    for col in static:
        frame[f"s:{col}"] = transactions[col].array
    return _Log(frame, getattr(dates.dt, "tz", None), customer_col, static)


def _numeric(col: pd.Series, name: str, what: str) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        raise ValueError(f"{what} column {name!r} must be numeric, got dtype {col.dtype}.")
    values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(values).any():
        raise ValueError(f"{what} column {name!r} has {int(np.isnan(values).sum())} NaN(s).")
    if np.isinf(values).any():
        raise ValueError(f"{what} column {name!r} has infinite value(s).")
    return values


def _calibration_start(log: _Log, calibration_start: DateLike | None, end: pd.Timestamp):
    if calibration_start is None:
        start = log.frame["d"].min()
    else:
        start = _parse_timestamp(calibration_start, "calibration_start", log.tz)
    if not start < end:
        raise ValueError(f"calibration_start ({start}) must be before {_label(end)}.")
    return start


# ------------------------------------------------------------------------ features
def _features(log: _Log, start: pd.Timestamp, as_of: pd.Timestamp) -> pd.DataFrame:
    """The feature table of the customers who purchased in ``[start, as_of)``."""
    df = log.frame
    d = df["d"]
    cal = df[(d >= start) & (d < as_of)]
    # Occasions: net value per (customer, timestamp); sorted, so "first" is the earliest.
    occ = cal.groupby(["c", "d"], sort=True, observed=True)["v"].sum().reset_index()
    buy = occ[occ["v"] >= 0]
    if buy.empty:
        raise ValueError(f"No customer purchased in the calibration window [{start}, {as_of}).")
    g = buy.groupby("c", sort=True, observed=True)
    customers = g.size().index
    first = g["d"].min()
    last = g["d"].max()
    X = pd.DataFrame(index=customers)
    X["frequency"] = g.size().astype(np.int64)
    X["recency"] = (as_of - last) / _DAY
    X["tenure"] = (as_of - first) / _DAY
    X["monetary_total"] = occ.groupby("c", observed=True)["v"].sum().reindex(customers)
    X["monetary_mean"] = X["monetary_total"] / X["frequency"]
    X["monetary_max"] = g["v"].max()
    X["first_purchase_value"] = g["v"].first()

    span_days = (as_of - start) / _DAY
    windows = [90] + [w for w in TRAILING_WINDOWS_DAYS if w <= span_days]
    for w in sorted(windows):
        since = as_of - pd.Timedelta(days=w)
        X[f"spend_last_{w}d"] = (
            occ[occ["d"] >= since]
            .groupby("c", observed=True)["v"]
            .sum()
            .reindex(customers, fill_value=0.0)
        )
        X[f"frequency_last_{w}d"] = (
            buy[buy["d"] >= since]
            .groupby("c", observed=True)
            .size()
            .reindex(customers, fill_value=0)
            .astype(np.int64)
        )
    # days between consecutive purchase occasions (buy is sorted by customer, then date)
    gap = buy["d"].diff() / _DAY
    gap[buy["c"].ne(buy["c"].shift())] = np.nan
    gaps = gap.groupby(buy["c"], observed=True)
    X["interpurchase_mean_days"] = gaps.mean().reindex(customers)
    X["interpurchase_std_days"] = gaps.std(ddof=1).reindex(customers)
    # refunds: the share of the purchased value that came back
    line_v = cal["v"]
    gross = line_v.clip(lower=0).groupby(cal["c"], observed=True).sum().reindex(customers)
    # 0 - x, not -x: a customer without refunds gets 0.0, not -0.0
    refunded = (0.0 - line_v.clip(upper=0)).groupby(cal["c"], observed=True).sum().reindex(customers)
    X["refund_share"] = np.where(gross > 0, refunded / gross.where(gross > 0, 1.0), 0.0)
    if "i" in cal:
        X["distinct_items"] = (
            cal.groupby("c", observed=True)["i"].nunique().reindex(customers).astype(np.int64)
        )
    if "q" in cal:
        X["quantity_total"] = cal.groupby("c", observed=True)["q"].sum().reindex(customers)
        X["quantity_mean"] = X["quantity_total"] / X["frequency"]
    # the first 9 columns are FEATURE_NAMES, in that order
    core = [c for c in FEATURE_NAMES if c in X]
    X = X[core + [c for c in X.columns if c not in core]]
    X.index.name = log.customer_col
    floats = [c for c in X.columns if not c.startswith(("frequency", "distinct_items"))]
    X = X.astype({c: np.float64 for c in floats})
    for col in log.static_cols:
        X[col] = _last_known(df[d < as_of], f"s:{col}", customers)
    return X


def _last_known(rows: pd.DataFrame, col: str, customers: pd.Index) -> pd.Series:
    """Each customer's last non-missing value of a static column before ``as_of``."""
    known = rows[rows[col].notna()]
    if known.empty:
        values = pd.Series(np.nan, index=customers)
    else:
        order = known.sort_values("d", kind="stable")
        values = order.groupby("c", observed=True)[col].last().reindex(customers)
    src = rows[col]
    if not (pd.api.types.is_numeric_dtype(src.dtype) or pd.api.types.is_bool_dtype(src.dtype)):
        values = values.astype("category")  # text attributes (country, segment...)
    return values


# ---------------------------------------------------------------------------- public
def transactions_to_features(
    transactions: pd.DataFrame,
    *,
    customer_col: str,
    date_col: str,
    value_col: str,
    as_of: DateLike,
    calibration_start: DateLike | None = None,
    static_cols: Sequence[str] | None = None,
    item_col: str | None = None,
    quantity_col: str | None = None,
    date_format: str | None = None,
) -> pd.DataFrame:
    """Customer features from the transactions before a date: what a model scores.

    One row per customer with a *purchase* in ``[calibration_start, as_of)``, where a
    purchase occasion is a distinct ``(customer, date)`` value (lines of one order, or
    several orders on one day of daily data, count once) whose net value is ``>= 0``; an
    occasion with negative net value is a refund. Days are floats; the reference time is
    ``as_of``. The columns (``docs/datasets.md`` defines each):

    - the core ``FEATURE_NAMES``: ``frequency`` (purchase occasions), ``recency`` (days
      from the last purchase to ``as_of``), ``tenure`` (days from the first purchase),
      ``monetary_total`` (net value, refunds included), ``monetary_mean``
      (``monetary_total / frequency``), ``monetary_max`` (largest occasion),
      ``first_purchase_value``, ``spend_last_90d`` and ``frequency_last_90d``;
    - ``spend_last_{w}d`` and ``frequency_last_{w}d`` for ``w`` = 30, 180 and 365 days,
      each when it fits in the window (``as_of - calibration_start >= w`` days);
    - ``interpurchase_mean_days``, ``interpurchase_std_days``: the mean and standard
      deviation of the days between consecutive purchases (NaN with fewer than 2 and 3
      purchases: models treat NaN as missing);
    - ``refund_share``: refunded value over purchased value (0 without refunds);
    - with ``item_col``: ``distinct_items``; with ``quantity_col``: ``quantity_total`` and
      ``quantity_mean`` (per purchase occasion);
    - with ``static_cols``: each column's last known value before ``as_of`` (text columns
      as ``category``, numbers as they are).

    Parameters
    ----------
    transactions : pandas.DataFrame
        One row per transaction line.
    customer_col, date_col, value_col : str
        Customer id, date and monetary value (numeric; negative for refunds) columns.
        Ids are kept as given (type and text): read id columns from CSV as strings.
    as_of : date-like
        The date the features describe (exclusive: transactions on or after it are not
        used), e.g. today when scoring.
    calibration_start : date-like or None, default=None
        First date used; None = the first transaction.
    static_cols : sequence of str or None, default=None
        Customer attributes (country, age group...) repeated on the lines.
    item_col, quantity_col : str or None, default=None
        Product id and quantity columns.
    date_format : str or None, default=None
        ``strftime`` format of ``date_col`` (e.g. ``"%d/%m/%Y"``). Without it, ISO dates
        and unambiguous text parse; dates like ``01/09/2011`` (day or month first?) and
        numbers (``19970101``) are refused with a message.

    Returns
    -------
    X : pandas.DataFrame
        Indexed by customer id, sorted.

    Raises
    ------
    ValueError
        Missing columns (named), dates that do not parse or are ambiguous, a non-numeric,
        NaN or infinite value or quantity column, missing customer ids, or no purchase
        before ``as_of``.

    Warns
    -----
    UserWarning
        When ``as_of`` is more than a day after the last transaction.

    Examples
    --------
    >>> import pandas as pd
    >>> tx = pd.DataFrame({
    ...     "customer": ["a", "a", "b"],
    ...     "date": ["2020-01-01", "2020-01-05", "2020-01-03"],
    ...     "value": [10.0, 5.0, 7.0],
    ... })
    >>> X = transactions_to_features(tx, customer_col="customer", date_col="date",
    ...     value_col="value", as_of="2020-01-06")
    >>> X.index.tolist(), X["frequency"].tolist(), X["recency"].tolist()
    (['a', 'b'], [2, 1], [1.0, 3.0])
    """
    log = _read_log(
        transactions,
        customer_col=customer_col,
        date_col=date_col,
        value_col=value_col,
        static_cols=static_cols,
        item_col=item_col,
        quantity_col=quantity_col,
        date_format=date_format,
    )
    end = _parse_timestamp(as_of, "as_of", log.tz)
    _warn_past_data(log.frame["d"].max(), [end], "as_of", "transactions_to_features")
    return _features(log, _calibration_start(log, calibration_start, end), end)


def transactions_to_ltv(
    transactions: pd.DataFrame,
    *,
    customer_col: str,
    date_col: str,
    value_col: str,
    calibration_end: DateLike,
    holdout_end: DateLike | Sequence[DateLike],
    calibration_start: DateLike | None = None,
    static_cols: Sequence[str] | None = None,
    item_col: str | None = None,
    quantity_col: str | None = None,
    date_format: str | None = None,
) -> tuple[pd.DataFrame, pd.Series | pd.DataFrame]:
    """Turn a transaction log into per-customer features and future spend.

    Windows are half-open: calibration is ``calibration_start <= date < calibration_end``
    and the holdout is ``calibration_end <= date < holdout_end``, so a cut date belongs to
    exactly one window and "39 weeks" is exactly 273 days. Rows outside both windows are
    ignored.

    ``X`` is ``transactions_to_features(..., as_of=calibration_end)`` with the same
    arguments (see there for the columns): the customers who purchased in the calibration
    window. ``y`` is each one's net spend in the holdout window, 0 when none.

    Parameters
    ----------
    transactions : pandas.DataFrame
        One row per transaction line.
    customer_col, date_col, value_col : str
        Customer id, date and monetary value (numeric; negative for refunds) columns.
    calibration_end : date-like
        First instant of the holdout window (exclusive end of calibration).
    holdout_end : date-like or sequence of date-like
        Exclusive end of the holdout window. A sequence of increasing dates gives a
        multi-horizon ``y``: one column per end date of cumulative spend from
        ``calibration_end``.
    calibration_start : date-like or None, default=None
        Start of the calibration window; None = the first transaction date.
    static_cols, item_col, quantity_col, date_format : optional
        As in :func:`transactions_to_features`.

    Returns
    -------
    X : pandas.DataFrame
        The features, indexed by customer id.
    y : pandas.Series or pandas.DataFrame
        Holdout spend (float64, >= 0), same index; a DataFrame with one column per
        horizon (named by the end date, ISO format) when ``holdout_end`` is a sequence.

    Raises
    ------
    ValueError
        As :func:`transactions_to_features`, and ``holdout_end <= calibration_end`` or
        decreasing horizons.

    Warns
    -----
    UserWarning
        When a ``holdout_end`` is more than a day after the last transaction (the window
        runs past the data, so its spend is understated). When refunds make some
        customer's net holdout spend negative: such ``y`` is set to 0 (models need
        ``y >= 0``). With several horizons, where a later refund makes the cumulative net
        spend fall, the earlier horizons are lowered to it (a backward running minimum),
        so the columns are non-decreasing and the last column equals the single-horizon
        ``y``.

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
    log = _read_log(
        transactions,
        customer_col=customer_col,
        date_col=date_col,
        value_col=value_col,
        static_cols=static_cols,
        item_col=item_col,
        quantity_col=quantity_col,
        date_format=date_format,
    )
    cal_end = _parse_timestamp(calibration_end, "calibration_end", log.tz)
    multi = isinstance(holdout_end, Sequence) and not isinstance(holdout_end, str)
    raw_ends = list(holdout_end) if multi else [holdout_end]
    if not raw_ends:
        raise ValueError("holdout_end is an empty sequence.")
    ends = [_parse_timestamp(e, "holdout_end", log.tz) for e in raw_ends]
    if ends[0] <= cal_end:
        raise ValueError(f"holdout_end ({ends[0]}) must be after calibration_end ({cal_end}).")
    if any(b <= a for a, b in itertools.pairwise(ends)):
        raise ValueError(f"holdout_end dates must be strictly increasing, got {raw_ends}.")
    start = _calibration_start(log, calibration_start, cal_end)
    _warn_past_data(log.frame["d"].max(), ends, "holdout_end", "transactions_to_ltv")

    X = _features(log, start, cal_end)
    customers = X.index
    df = log.frame
    d = df["d"]
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
