"""The estimator contract shared by every ltvkit model.

Every ltvkit regressor inherits :class:`LTVRegressorMixin` and routes its input through
:meth:`LTVRegressorMixin._validate_fit_input` / :meth:`~LTVRegressorMixin._validate_predict_input`.
That gives all models the same behaviour, documented in ``docs/contract.md``:

- ``X`` may be a pandas DataFrame (numeric, ``bool``, ``category``, ``object`` or string
  columns) or anything array-like of numbers. NaN in features is allowed; inf is not.
- ``y`` is 1-D, finite, non-negative and has at least one positive value (multi-horizon
  models: 2-D and non-decreasing along the horizons).
- Categorical columns are recorded at ``fit``; at ``predict`` a category never seen in
  ``fit`` is treated as a missing value (documented handling, never an error).
- ``predict`` returns a float64 array of finite, non-negative expected values.
"""

from __future__ import annotations

import functools
import numbers
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import DataConversionWarning
from sklearn.utils import check_array, get_tags
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    validate_data,
)

# the hyperparameter constraints a model declares in ``_parameter_constraints``
from ltvkit._utils import (
    Boolean,
    Instance,
    Int,
    Options,
    PerLevel,
    Real,
    Units,
    check_quantile_levels,
    validate_params,
)

__all__ = [
    "CONFORMAL_LEVELS",
    "Boolean",
    "ConformalQuantileRegressor",
    "DataQualityWarning",
    "Instance",
    "Int",
    "LTVRegressorMixin",
    "Options",
    "PerLevel",
    "Real",
    "SpendResiduals",
    "TabularSchema",
    "Units",
    "check_predictions",
    "validate_ltv_target",
    "zero_inflated_quantiles",
]

# Largest prediction ltvkit ever returns; anything above it means a model diverged.
_PREDICTION_LIMIT = 1e15
# The one level of a categorical column that had no value at all in fit.
_NO_LEVEL = "(no value in fit)"
# Largest magnitude of a numeric feature: the boosters and the networks compute in float32
# (max 3.4e38) and the encoder squares values; no real customer feature comes near it.
_FEATURE_LIMIT = 1e30

# Column checks at fit (see TabularSchema): a text column whose values are mostly
# numbers or dates, or that has a distinct value in (nearly) every row, draws a warning.
_MOSTLY = 0.9  # share of distinct values that parse as numbers / dates
_ID_LIKE_SHARE = 0.95  # distinct values per non-missing row
_ID_LIKE_MIN_ROWS = 50  # below this, unique values per row are ordinary
_PARSE_SAMPLE = 2000  # distinct values parsed per column (evenly spaced)
# Levels at which SpendResiduals stores a residual distribution (memory, pickle size).
_MAX_RESIDUAL_LEVELS = 2001


class DataQualityWarning(UserWarning):
    """Input that is legal but probably a mistake, e.g. numbers stored as text.

    Raised as a warning (never an error) by ``fit`` of every ltvkit model and by the
    command line; the message names the column and what to do about it.

    Examples
    --------
    >>> import warnings
    >>> X = pd.DataFrame({"amount": [str(i) for i in range(30)] + ["12,50"]})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = TabularSchema().fit(X)
    >>> caught[0].category.__name__
    'DataQualityWarning'
    """


def validate_ltv_target(
    y: object, *, multi_horizon: bool = False, allow_no_positive: bool = False
) -> np.ndarray:
    """Check an LTV target and return it as a float64 array.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_horizons)
        Customer value. 1-D unless ``multi_horizon`` is True.
    multi_horizon : bool, default=False
        Accept a 2-D target whose columns are cumulative horizons; each row must be
        non-decreasing along the horizons.
    allow_no_positive : bool, default=False
        Skip the "at least one positive value" check.

    Returns
    -------
    y : ndarray of float64

    Raises
    ------
    ValueError
        If ``y`` is empty, has the wrong shape, contains NaN or inf, contains a negative
        value, has no positive value, or (multi-horizon) decreases along the horizons.

    Examples
    --------
    >>> validate_ltv_target([0.0, 3.5, 0.0])
    array([0. , 3.5, 0. ])
    """
    if sparse.issparse(y):
        raise ValueError("ltvkit: the target y must be dense, got a sparse matrix.")
    _check_numeric_target(y)
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ltvkit: the target y must be numeric ({exc}).") from exc
    if multi_horizon:
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2:
            raise ValueError(
                f"ltvkit: a multi-horizon target must be 2-D (n_samples, n_horizons), "
                f"got shape {arr.shape}."
            )
    else:
        if arr.ndim == 2 and arr.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change "
                "the shape of y to (n_samples,), for example using ravel().",
                DataConversionWarning,
                stacklevel=2,
            )
            arr = arr.ravel()
        if arr.ndim != 1:
            raise ValueError(
                f"ltvkit: the target y must be 1-D, got shape {arr.shape}. "
                "Multi-horizon targets need a multi-horizon model (ODMNRegressor)."
            )
    if arr.shape[0] == 0:
        raise ValueError("ltvkit: the target y is empty (0 samples).")
    n_nan = int(np.isnan(arr).sum())
    if n_nan:
        raise ValueError(f"ltvkit: the target y contains {n_nan} NaN value(s).")
    n_inf = int(np.isinf(arr).sum())
    if n_inf:
        raise ValueError(f"ltvkit: the target y contains {n_inf} infinite value(s).")
    n_neg = int((arr < 0).sum())
    if n_neg:
        raise ValueError(
            f"ltvkit: the target y contains {n_neg} negative value(s) (min {arr.min():g}); "
            "customer value must be >= 0 (net out refunds before modelling)."
        )
    if not allow_no_positive and not (arr > 0).any():
        raise ValueError(
            "ltvkit: the target y has no positive value; an LTV model needs at least one "
            "customer who spends."
        )
    if multi_horizon and arr.shape[1] > 1:
        n_dec = int((np.diff(arr, axis=1) < 0).any(axis=1).sum())
        if n_dec:
            raise ValueError(
                f"ltvkit: the multi-horizon target decreases along the horizons in {n_dec} "
                "row(s); columns must be cumulative spend (non-decreasing)."
            )
    return arr


def _check_numeric_target(y: object) -> None:
    """Refuse text and categorical targets (numpy would parse "12.5" silently)."""
    frame_like = isinstance(y, (pd.Series, pd.DataFrame))
    dtypes = list(y.dtypes) if isinstance(y, pd.DataFrame) else [getattr(y, "dtype", None)]
    for dtype in dtypes:
        if isinstance(dtype, pd.CategoricalDtype) or (
            frame_like and pd.api.types.is_string_dtype(dtype)
        ):
            raise ValueError(
                f"ltvkit: the target y must be numeric, got dtype {dtype}; convert it, e.g. "
                "pd.to_numeric(y)."
            )
    arr = np.asarray(y)
    text = arr.dtype.kind in "USa"
    if not text and arr.dtype.kind == "O":
        text = any(isinstance(v, (str, bytes)) for v in arr.ravel()[:10_000])
    if text:
        example = next((str(v) for v in arr.ravel() if isinstance(v, (str, bytes))), None)
        raise ValueError(
            f"ltvkit: the target y must be numeric, got text (e.g. {example!r}); convert "
            "it, e.g. pd.to_numeric(y), and check the values that do not parse."
        )


def check_predictions(pred: np.ndarray, estimator_name: str) -> np.ndarray:
    """Guard a model's output: float64, finite, non-negative and not astronomically large.

    Models produce non-negative output by construction; this is the last line of
    defence, so a failure here is a bug or a diverged fit, reported loudly instead of
    passed on to a budget allocation.

    Parameters
    ----------
    pred : ndarray
        Raw predictions.
    estimator_name : str
        Used in the error message.

    Returns
    -------
    pred : ndarray of float64

    Examples
    --------
    >>> check_predictions(np.array([0.0, 1.5]), "MyModel")
    array([0. , 1.5])
    """
    pred = np.asarray(pred, dtype=np.float64)
    bad = ~np.isfinite(pred)
    if bad.any():
        raise RuntimeError(
            f"{estimator_name} produced {int(bad.sum())} non-finite prediction(s); the fit "
            "probably diverged (try a lower learning rate or stronger regularization)."
        )
    if (pred < 0).any():
        raise RuntimeError(f"{estimator_name} produced negative predictions (min {pred.min():g}).")
    if (pred > _PREDICTION_LIMIT).any():
        raise RuntimeError(
            f"{estimator_name} produced astronomically large predictions (max {pred.max():g}); "
            "the fit probably diverged."
        )
    return pred


def zero_inflated_quantiles(
    nonzero_proba: np.ndarray,
    levels: np.ndarray,
    positive_quantile: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Quantiles of a zero-inflated distribution, the point mass at zero exact.

    With ``p = P(y > 0 | x)``, ``Q(tau) = 0`` when ``tau <= 1 - p``, else the quantile
    of the spend at the conditional level ``(tau - (1 - p)) / p``.

    Parameters
    ----------
    nonzero_proba : ndarray of shape (n_samples,)
        ``P(y > 0 | x)`` in [0, 1].
    levels : ndarray of shape (n_levels,)
        Probability levels in [0, 1].
    positive_quantile : callable
        Maps conditional levels of shape (n_samples, n_levels), in [0, 1], to the
        positive quantiles of the spend of a customer who spends (same shape, > 0).

    Returns
    -------
    ndarray of shape (n_samples, n_levels)

    Examples
    --------
    >>> zero_inflated_quantiles(np.array([0.5]), np.array([0.25, 0.5, 0.75, 1.0]),
    ...                         lambda v: 10.0 * (1.0 + v))
    array([[ 0.,  0., 15., 20.]])
    """
    p = np.asarray(nonzero_proba, dtype=np.float64)[:, None]
    tau = np.asarray(levels, dtype=np.float64)[None, :]
    p_zero = 1.0 - p
    spends = tau > p_zero  # the test every model's quantiles share
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.clip(np.where(p > 0, (tau - p_zero) / p, 0.0), 0.0, 1.0)
    value = np.asarray(positive_quantile(cond), dtype=np.float64)
    # a positive quantile of a spender is > 0 even if m(x) rounds to 0
    value = np.maximum(value, np.finfo(np.float64).tiny)
    return np.where(spends, value, 0.0)


@dataclass(frozen=True)
class SpendResiduals:
    """The distribution of ``r = log(y / m(x))`` over spenders the model did not train on.

    ``m(x)`` is the model's E[y | y > 0, x]. The empirical quantile function of ``r``
    (order statistic ``i`` of ``n`` at level ``i / (n + 1)``, linear in between, the
    smallest and largest residual below ``1 / (n + 1)`` and above ``n / (n + 1)``) is
    stored on at most 2,001 levels. Scale-free: the spread is a ratio, so it transfers
    from small to large customers. It gives the generic predictive distribution of
    :meth:`LTVRegressorMixin.predict_quantiles` and ``TwoStageRegressor``'s.

    Examples
    --------
    >>> res = SpendResiduals.fit(np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 2.0]))
    >>> res.quantile(np.array([0.0, 0.5, 1.0])).round(4)
    array([-0.6931,  0.    ,  0.6931])
    """

    levels: np.ndarray
    values: np.ndarray
    n_rows: int

    @classmethod
    def fit(
        cls, y: np.ndarray, value: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> SpendResiduals:
        """Residuals ``log(y / value)`` of the rows with ``y > 0`` (and ``value > 0``).

        ``sample_weight`` are frequency weights: a row of integer weight ``k`` is ``k``
        rows (it spans the levels of ``k`` order statistics).
        """
        y = np.asarray(y, dtype=np.float64)
        value = np.asarray(value, dtype=np.float64)
        keep = (y > 0) & (value > 0) & np.isfinite(value)
        w = np.ones(int(keep.sum())) if sample_weight is None else sample_weight[keep]
        keep_w = w > 0
        r = np.log(y[keep])[keep_w] - np.log(value[keep])[keep_w]
        w = np.asarray(w, dtype=np.float64)[keep_w]
        if r.size == 0:
            raise ValueError(
                "ltvkit: no customer with y > 0 (and a positive predicted value) to fit the "
                "residual distribution on."
            )
        order = np.argsort(r, kind="stable")
        r, w = r[order], w[order]
        cum = np.cumsum(w)
        total = cum[-1] + 1.0
        # row i spans the levels (c_{i-1} + 1) / (W + 1) ... c_i / (W + 1): without
        # weights, the order statistic i of n at level i / (n + 1)
        start = (cum - w + np.minimum(w, 1.0)) / total
        two = np.column_stack([start, cum / total])
        spans = np.column_stack([w > 1.0, np.ones(r.size, dtype=bool)])  # one point if w <= 1
        levels, values = two[spans], np.repeat(r, 2).reshape(-1, 2)[spans]
        if levels.size > _MAX_RESIDUAL_LEVELS:
            grid = np.linspace(levels[0], levels[-1], _MAX_RESIDUAL_LEVELS)
            values, levels = np.interp(grid, levels, values), grid
        return cls(levels=levels, values=values, n_rows=int(r.size))

    def quantile(self, level: np.ndarray) -> np.ndarray:
        """Quantiles of ``r`` at ``level`` (any shape, values in [0, 1])."""
        return np.interp(level, self.levels, self.values)


def _is_categorical(series: pd.Series) -> bool:
    return (
        isinstance(series.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(series.dtype)
        or pd.api.types.is_string_dtype(series.dtype)
    )


@dataclass
class TabularSchema:
    """Column kinds and category levels learned from the training ``X``.

    ``fit`` records, for a DataFrame, which columns are numeric and which categorical
    (``category``, ``object`` or string dtype) and the levels of each categorical
    column; array input is all numeric. ``transform`` returns a DataFrame with float64
    numeric columns and ``category`` columns with exactly the training levels, so a
    level never seen in ``fit`` becomes a missing value.

    Examples
    --------
    >>> X = pd.DataFrame({"spend": [1.0, 2.0], "country": ["UK", "FR"]})
    >>> schema = TabularSchema().fit(X)
    >>> schema.categorical_columns
    ['country']
    >>> new = pd.DataFrame({"spend": [3.0], "country": ["DE"]})
    >>> schema.transform(new)["country"].isna().item()
    True
    """

    columns: list[str] = field(default_factory=list)
    numeric_columns: list[str] = field(default_factory=list)
    categorical_columns: list[str] = field(default_factory=list)
    categories: dict[str, pd.Index] = field(default_factory=dict)
    from_frame: bool = False
    _string_levels: set[str] = field(default_factory=set)

    def fit(self, X: object) -> TabularSchema:
        return self._fit_frame(_to_frame(X), from_frame=isinstance(X, pd.DataFrame))

    # A plain state (lists, arrays and dtype names instead of pandas objects), so that
    # pickle and ltvkit.save (skops, which cannot store pandas objects) store the same
    # thing. The levels come back with their values and dtype, exactly.
    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["categories"] = {
            col: _index_state(levels) for col, levels in self.categories.items()
        }
        state["_string_levels"] = sorted(self._string_levels)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        state = dict(state)
        state["categories"] = {
            col: _index_from_state(levels) for col, levels in state["categories"].items()
        }
        state["_string_levels"] = set(state["_string_levels"])
        self.__dict__.update(state)

    def transform(self, X: object) -> pd.DataFrame:
        return self._transform_frame(_to_frame(X), by_name=isinstance(X, pd.DataFrame))

    # the estimators call these with the frame they already checked (one conversion)
    def _fit_frame(self, frame: pd.DataFrame, from_frame: bool) -> TabularSchema:
        self.from_frame = from_frame
        self.columns = [str(c) for c in frame.columns]
        self.categorical_columns = [str(c) for c in frame.columns if _is_categorical(frame[c])]
        self.numeric_columns = [c for c in self.columns if c not in self.categorical_columns]
        self.categories = {}
        self._string_levels = set()
        for col in self.categorical_columns:
            values = frame[col]
            if isinstance(values.dtype, pd.CategoricalDtype):
                levels = values.cat.categories
            else:
                # object/string columns: levels are compared as strings
                self._string_levels.add(col)
                levels = pd.Index(sorted(set(values.dropna().astype("string"))), dtype=object)
                _warn_text_column(col, levels, int(values.notna().sum()))
            if not len(levels):
                warnings.warn(
                    f"ltvkit: column {col!r} has no value at all (every row is missing), so "
                    "it carries no information; drop it.",
                    DataQualityWarning,
                    stacklevel=4,
                )
                # a category type needs a level: the libraries refuse an empty one
                levels = pd.Index([_NO_LEVEL], dtype=object)
            self.categories[col] = pd.Index(levels)
        return self

    def _transform_frame(self, frame: pd.DataFrame, by_name: bool) -> pd.DataFrame:
        frame.columns = [str(c) for c in frame.columns]
        if self.from_frame and by_name:
            missing = [c for c in self.columns if c not in frame.columns]
            if missing:
                raise ValueError(f"ltvkit: X is missing the column(s) {missing} seen in fit.")
            frame = frame[self.columns]
        else:
            frame.columns = self.columns
        out = {}
        for col in self.numeric_columns:
            values = frame[col]
            if _is_categorical(values):
                raise ValueError(
                    f"ltvkit: column {col!r} was numeric in fit but is not numeric now."
                )
            if values.dtype in (np.float32, np.float64):
                # numpy floats pass as they are (a view, no copy): NaN is already the
                # missing value, and every consumer copies before it writes
                out[col] = values.to_numpy()
            else:  # ints, bools, nullable extension types: float64 with NaN for NA
                out[col] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        for col in self.categorical_columns:
            out[col] = self._categorical_column(col, frame[col])
        # copy=False: one block per column instead of a consolidated copy of them all
        return pd.DataFrame(out, index=frame.index, copy=False)[self.columns]

    def _categorical_column(self, col: str, values: pd.Series) -> pd.Categorical:
        """``values`` of the categorical column ``col`` on the levels seen in fit."""
        levels = self.categories[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            if values.cat.categories.equals(levels):
                return values.array  # fast path: same levels as in fit
            values = values.astype(object)
        elif col in self._string_levels:
            values = values.astype("string")  # compare as strings, keep missing
        # get_indexer gives -1 (missing) for NaN and for levels never seen in fit
        codes = levels.get_indexer(pd.Index(values, dtype=object))
        return pd.Categorical.from_codes(codes, categories=levels)


def _index_state(levels: pd.Index) -> dict[str, object]:
    """A pandas Index as plain data: its values (a list or an array) and dtype name."""
    if levels.dtype == object:
        values: object = levels.tolist()  # text levels: a list of str
    else:
        values = levels.to_numpy()  # numbers, dates, nullable types: a numpy array
        if values.dtype == object:
            values = values.tolist()
    return {"values": values, "dtype": str(levels.dtype)}


def _index_from_state(state: object) -> pd.Index:
    if isinstance(state, pd.Index):  # a pickle written before the plain state
        return state
    return pd.Index(state["values"], dtype=state["dtype"])  # type: ignore[index]


def _sample(levels: pd.Index) -> pd.Series:
    step = max(1, len(levels) // _PARSE_SAMPLE)
    return pd.Series(np.asarray(levels[::step], dtype=object), dtype=object)


def _warn_text_column(col: str, levels: pd.Index, n_values: int) -> None:
    """Warn when a text column looks like numbers, dates or an identifier."""
    if not len(levels):
        return
    sample = _sample(levels)
    as_number = pd.to_numeric(sample, errors="coerce")
    share_numeric = float(as_number.notna().mean())
    if share_numeric >= _MOSTLY:
        bad = sample[as_number.isna()]
        example = f" (e.g. {bad.iloc[0]!r} is not a number)" if len(bad) else ""
        warnings.warn(
            f"ltvkit: column {col!r} holds numbers stored as text{example}, so it is used "
            "as a categorical column with one level per distinct value. Convert it, e.g. "
            f"X[{col!r}] = pd.to_numeric(X[{col!r}], errors='coerce'), or drop it.",
            DataQualityWarning,
            stacklevel=5,
        )
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' "could not infer format" chatter
        as_date = pd.to_datetime(sample, errors="coerce", format="mixed")
    if float(as_date.notna().mean()) >= _MOSTLY and share_numeric < 0.5:
        warnings.warn(
            f"ltvkit: column {col!r} holds dates stored as text, so it is used as a "
            "categorical column with one level per distinct date. Convert it to a number, "
            f"e.g. days since the date: (as_of - pd.to_datetime(X[{col!r}])).dt.days, or "
            "drop it.",
            DataQualityWarning,
            stacklevel=5,
        )
        return
    if n_values >= _ID_LIKE_MIN_ROWS and len(levels) >= _ID_LIKE_SHARE * n_values:
        warnings.warn(
            f"ltvkit: column {col!r} has a distinct value in almost every row ({len(levels)} "
            f"distinct values in {n_values} rows): it looks like an identifier, which a "
            "model can only memorise. Drop it from the features (keep ids as the index).",
            DataQualityWarning,
            stacklevel=5,
        )


def _check_magnitude(values: np.ndarray, where: str) -> None:
    """Refuse inf and finite values beyond ``_FEATURE_LIMIT`` in a numeric column."""
    with np.errstate(invalid="ignore"):
        big = np.abs(values) > _FEATURE_LIMIT
    if big.any():
        if np.isinf(values[big]).any():
            raise ValueError(f"ltvkit: {where} contains infinite values.")
        raise ValueError(
            f"ltvkit: {where} contains values beyond ±{_FEATURE_LIMIT:g} (e.g. "
            f"{values[big][0]:g}); ltvkit's models compute in float32. Rescale the column "
            "(e.g. another currency unit, or log1p) or fix the corrupt values."
        )


def _check_text_values(series: pd.Series, name: str) -> None:
    """Refuse the NUL character in text or category values (corrupt text)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        labels = series.cat.categories
        if not (pd.api.types.is_object_dtype(labels) or pd.api.types.is_string_dtype(labels)):
            return
        series = pd.Series(labels, dtype=object)
    try:
        has_nul = series.str.contains("\x00", regex=False, na=False).any()
    except AttributeError:  # no text values at all
        return
    if has_nul:
        raise ValueError(
            f"ltvkit: column {name!r} of X contains the NUL character (\\x00) in its text: "
            "corrupt text that the boosters cannot store; clean the column first."
        )


def _to_frame(X: object) -> pd.DataFrame:
    """Return ``X`` as a DataFrame after the checks every ltvkit model shares."""
    if sparse.issparse(X):
        raise TypeError(
            "ltvkit: sparse input is not supported; pass a dense array or a DataFrame."
        )
    if isinstance(X, pd.DataFrame):
        if X.shape[0] == 0:
            raise ValueError("ltvkit: X is empty (0 samples).")
        if X.shape[1] == 0:
            raise ValueError("ltvkit: X has no columns (0 features).")
        names = [str(c) for c in X.columns]
        if len(set(names)) < len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(
                f"ltvkit: X has duplicate column names {dup}; every column needs its own name."
            )
        for col, name in zip(X.columns, names, strict=True):
            series = X[col]
            if _is_categorical(series):
                _check_text_values(series, name)
                continue
            if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(
                series.dtype
            ):
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
                _check_magnitude(values, f"column {name!r} of X")
                continue
            raise ValueError(
                f"ltvkit: column {name!r} of X has dtype {series.dtype}, which is neither "
                "numeric nor categorical; convert it (e.g. dates to days since an event)."
            )
        frame = X.copy(deep=False)
        frame.columns = names  # non-string names (ints, tuples) are looked up as text
        return frame
    arr = check_array(
        X,
        dtype="numeric",
        ensure_all_finite="allow-nan",
        ensure_min_samples=1,
        ensure_min_features=1,
    )
    for j in range(arr.shape[1]):
        _check_magnitude(arr[:, j], f"column {j} of X")
    columns = [f"x{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr.astype(np.float64, copy=False), columns=columns)


def _is_dataset(X: object) -> bool:
    """Whether ``X`` is an :class:`ltvkit.io.ParquetDataset` (without importing pyarrow)."""
    module = sys.modules.get("ltvkit.io._dataset")
    return module is not None and isinstance(X, module.ParquetDataset)


@dataclass(frozen=True)
class _ArrowRows:
    """Feature rows still in Arrow form (a ``pyarrow.RecordBatch`` of the features).

    What a predict-type method of a model that encodes Arrow columns itself (class
    attribute ``_reads_arrow = True``: the deep models) gets from a ParquetDataset or
    ``score_dataset``; its input validation turns them into the usual DataFrame
    wherever that fast path does not apply.
    """

    batch: object

    def __len__(self) -> int:
        return self.batch.num_rows  # type: ignore[attr-defined]

    def frame(self) -> pd.DataFrame:
        from ltvkit.io._dataset import batch_to_frame

        return batch_to_frame(self.batch)  # type: ignore[arg-type]


def _values_of_dataset(X: object) -> object:
    """A transformer of values (the bucketizers) given a ParquetDataset transforms its
    target column(s): returned as an ``(n, n_targets)`` array; anything else as is."""
    if not _is_dataset(X):
        return X
    y = X.read_target()  # type: ignore[attr-defined]
    return y.reshape(len(y), -1)


def _concat_outputs(parts: list) -> object:
    """Join per-batch outputs of a predict-type method along the rows."""
    first = parts[0]
    if isinstance(first, tuple):
        return tuple(_concat_outputs([p[i] for p in parts]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _concat_outputs([p[k] for p in parts]) for k in first}
    if isinstance(first, (pd.DataFrame, pd.Series)):
        return pd.concat(parts, ignore_index=True)
    return np.concatenate([np.asarray(p) for p in parts])


def _streamed_predictions(method: Callable) -> Callable:
    """Let a predict-type method take a ParquetDataset: the method runs on each record
    batch (its feature columns, as a DataFrame) and the outputs are joined, so the
    answer is the in-memory answer on the same rows."""

    @functools.wraps(method)
    def wrapper(self: object, X: object, *args: object, **kwargs: object) -> object:
        if not _is_dataset(X):
            return method(self, X, *args, **kwargs)
        if getattr(self, "_reads_arrow", False):  # the rows as Arrow, not a DataFrame
            features = X.features  # type: ignore[attr-defined]
            parts = [
                method(self, _ArrowRows(batch), *args, **kwargs)
                for batch in X.iter_batches(features)  # type: ignore[attr-defined]
            ]
            return _concat_outputs(parts)
        parts = [
            method(self, X.feature_frame(batch), *args, **kwargs)  # type: ignore[attr-defined]
            for batch in X.iter_batches()  # type: ignore[attr-defined]
        ]
        return _concat_outputs(parts)

    wrapper._ltvkit_streams = True  # type: ignore[attr-defined]
    return wrapper


def _streamed_fit(method: Callable) -> Callable:
    """Let ``fit`` take a ParquetDataset as ``X`` (``y`` omitted: the dataset's target).

    A model with a ``_fit_dataset(dataset, **fit_params)`` method streams (the deep
    models); any other model reads the dataset into memory and fits as usual.
    """

    @functools.wraps(method)
    def wrapper(self: object, X: object, y: object = None, *args: object, **kwargs: object):
        if not _is_dataset(X):
            return method(self, X, y, *args, **kwargs)
        if y is not None:
            raise ValueError(
                "ltvkit: fit on a ParquetDataset takes the target from the dataset "
                "(ParquetDataset(path, target=<column>)); do not pass y as well."
            )
        if not X.target_columns:  # type: ignore[attr-defined]
            raise ValueError(
                "ltvkit: fitting on a ParquetDataset needs its target column: "
                "ParquetDataset(path, target=<column>)."
            )
        stream = getattr(self, "_fit_dataset", None)
        if stream is not None:
            return stream(X, *args, **kwargs)
        return method(self, X.read_pandas(), X.read_target(), *args, **kwargs)  # type: ignore[attr-defined]

    wrapper._ltvkit_streams = True  # type: ignore[attr-defined]
    return wrapper


class LTVRegressorMixin(RegressorMixin):
    """Mixin that carries ltvkit's estimator contract (see ``docs/contract.md``).

    Subclasses implement ``fit``/``predict``/``predict_nonzero_proba`` and call
    :meth:`_validate_fit_input` and :meth:`_validate_predict_input` so input checks,
    feature-name bookkeeping and category handling are the same for every model.
    The default score is R² (sklearn's); pass an ltvkit scorer such as
    ``scoring=ltvkit.metrics.get_scorer("normalized_gini")`` to rank models the way LTV
    users do (sklearn does not know ltvkit's scorer names as plain strings).
    """

    #: Multi-horizon models (2-D ``y``) set this to True.
    _multi_horizon: bool = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        # every model accepts an ltvkit.io.ParquetDataset wherever it accepts X
        super().__init_subclass__(**kwargs)
        for name, attr in list(cls.__dict__.items()):
            if not callable(attr) or getattr(attr, "_ltvkit_streams", False):
                continue
            if name == "fit":
                setattr(cls, name, _streamed_fit(attr))
            elif name.startswith("predict"):
                setattr(cls, name, _streamed_predictions(attr))

    #: Allowed values of each ``__init__`` parameter, checked at ``fit`` by
    #: :meth:`_validate_params` (see :mod:`ltvkit._utils`).
    _parameter_constraints: ClassVar[dict[str, list]] = {}

    def _validate_params(self) -> None:
        """Check the hyperparameters: each against its constraints, then combinations."""
        validate_params(self)
        self._check_param_combinations()

    def _check_param_combinations(self) -> None:
        """Raise ValueError for settings that are valid alone but not together."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        tags.target_tags.required = True
        tags.input_tags.allow_nan = True
        tags.non_deterministic = False
        if self._multi_horizon:
            tags.target_tags.multi_output = True
            tags.target_tags.single_output = False
        return tags

    def _validate_fit_input(
        self, X: object, y: object, sample_weight: object = None
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
        """Validate ``(X, y, sample_weight)`` at fit; learn the schema.

        Returns the DataFrame view of ``X`` (see :class:`TabularSchema`), ``y`` as float64
        and the sample weights as float64 (or None).
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        frame = _to_frame(X)  # shape and dtype checks first (clear messages)
        is_frame = isinstance(X, pd.DataFrame)
        schema = TabularSchema()._fit_frame(frame, from_frame=is_frame)
        validate_data(self, X, reset=True, skip_check_array=True)
        frame = schema._transform_frame(frame, by_name=is_frame)
        y_arr = validate_ltv_target(y, multi_horizon=self._multi_horizon)
        check_consistent_length(frame, y_arr)
        self.schema_ = schema
        # a multi-horizon model fitted on a 1-D y answers in 1-D
        ndim = y.ndim if isinstance(y, (np.ndarray, pd.Series, pd.DataFrame)) else None
        self.target_ndim_ = 1 if (ndim or np.asarray(y).ndim) == 1 else 2
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight,
                np.empty((len(frame), 0)),
                dtype=np.float64,
                ensure_non_negative=True,
            )
            if not np.isfinite(sample_weight).all():
                raise ValueError("ltvkit: sample_weight contains NaN or infinite values.")
            if sample_weight.sum() <= 0:
                raise ValueError("ltvkit: sample_weight sums to zero.")
            spends = y_arr > 0 if y_arr.ndim == 1 else (y_arr > 0).any(axis=1)
            if not (sample_weight[spends] > 0).any():
                raise ValueError(
                    "ltvkit: every customer with a positive target y has sample_weight 0; "
                    "an LTV model needs at least one customer who spends."
                )
        return frame, y_arr, sample_weight

    def _validate_validation_data(
        self, validation_data: object, y_train: np.ndarray
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None] | None:
        """Check ``fit``'s ``validation_data=(X_val, y_val[, sample_weight_val])``.

        Called after ``_validate_fit_input``: ``X_val`` must have the training columns
        (categories are fixed to the training levels, as at predict) and ``y_val`` the
        training target's shape. Returns ``(frame, y, weights or None)`` or None.
        """
        if validation_data is None:
            return None
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                "ltvkit: validation_data must be a tuple (X_val, y_val) or "
                f"(X_val, y_val, sample_weight_val), got {type(validation_data).__name__}."
            )
        X_val, y_val, *rest = validation_data
        try:
            frame = self._validate_predict_input(X_val)
            y_v = validate_ltv_target(
                y_val, multi_horizon=self._multi_horizon, allow_no_positive=True
            )
        except (TypeError, ValueError) as exc:
            msg = str(exc).removeprefix("ltvkit: ")
            raise ValueError(f"ltvkit: validation_data: {msg}") from exc
        if y_v.shape[1:] != y_train.shape[1:]:
            raise ValueError(
                f"ltvkit: validation_data: y_val has shape {y_v.shape}, the training y "
                f"{y_train.shape}; they must have the same number of horizons."
            )
        if len(frame) != len(y_v):
            raise ValueError(
                f"ltvkit: validation_data: X_val has {len(frame)} rows but y_val has {len(y_v)}."
            )
        w = None
        if rest and rest[0] is not None:
            w = _check_sample_weight(
                rest[0], np.empty((len(frame), 0)), dtype=np.float64, ensure_non_negative=True
            )
            if not np.isfinite(w).all() or w.sum() <= 0:
                raise ValueError(
                    "ltvkit: validation_data: sample_weight_val must be finite, non-negative "
                    "and not all zero."
                )
        return frame, y_v, w

    def _validate_predict_input(self, X: object) -> pd.DataFrame:
        """Check fittedness and ``X`` at predict time; return the DataFrame view."""
        check_is_fitted(self, "schema_")
        if isinstance(X, _ArrowRows):
            X = X.frame()
        if not isinstance(X, pd.DataFrame) and not sparse.issparse(X):
            X = np.asarray(X)
            shape = X.shape
            if len(shape) == 2 and shape[1] != self.n_features_in_:
                raise ValueError(  # sklearn's wording, which its checks look for
                    f"X has {shape[1]} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input."
                )
            if len(shape) == 2 and shape[0] > 0 and self.schema_.categorical_columns:
                # an array holding category labels: give it the training column names
                X = pd.DataFrame(X.astype(object), columns=self.schema_.columns)
                X = X.infer_objects()
        frame = _to_frame(X)  # 1-D / empty / sparse input fails here with a clear message
        validate_data(self, X, reset=False, skip_check_array=True)
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {frame.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return self.schema_._transform_frame(frame, by_name=isinstance(X, pd.DataFrame))

    def predict_nonzero_proba(self, X: object) -> np.ndarray:  # pragma: no cover - abstract
        """Probability that each customer spends anything, P(y > 0 | x)."""
        raise NotImplementedError

    # -- the predictive distribution ------------------------------------------------------
    def predict_quantiles(self, X: object, quantiles: float | Sequence[float]) -> np.ndarray:
        """Quantiles of each customer's value: the generic, out-of-sample distribution.

        A model with its own predictive distribution (ZILN, OptDist, MDME/ODMN,
        CC-OR-Net...) overrides this method. Every other model gets this one for free:
        ``P(y = 0 | x) = 1 - predict_nonzero_proba(X)`` is an exact point mass at zero,
        and a customer who spends spends ``m(x) * exp(r)``, where ``m(x) =
        predict(X) / predict_nonzero_proba(X)`` is the model's E[y | y > 0, x] and ``r``
        follows the empirical distribution of ``log(y / m(x))`` over spenders the
        model did not train on (``spend_residuals_``, fitted at the end of ``fit``; see
        :class:`SpendResiduals` and ``docs/nn.md``)::

            Q(tau | x) = 0                                 if tau <= P(y = 0 | x)
            Q(tau | x) = m(x) * exp(R^-1((tau - P0) / p))  otherwise

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        quantiles : float or sequence of float in [0, 1]
            Probability levels. Level 1 is the top of the support: ``m(x)`` times the
            largest residual ratio seen, a finite value.

        Returns
        -------
        ndarray of shape (n_samples,) for a float, (n_samples, n_quantiles) otherwise
            Finite, non-negative float64, non-decreasing along the levels.
        """
        scalar, levels = check_quantile_levels(quantiles)
        residuals = getattr(self, "spend_residuals_", None)
        if residuals is None:
            check_is_fitted(self)
            raise NotImplementedError(
                f"{type(self).__name__} has no predictive distribution of its own and no "
                "generic one was fitted (it needs a 1-D y and predict_nonzero_proba); "
                "implement predict_quantiles for this model."
            )
        proba, value = self._nonzero_proba_and_positive_value(X)
        result = zero_inflated_quantiles(
            proba, levels, lambda v: value[:, None] * np.exp(residuals.quantile(v))
        )
        return result[:, 0] if scalar else result

    def _nonzero_proba_and_positive_value(self, X: object) -> tuple[np.ndarray, np.ndarray]:
        """``P(y > 0 | x)`` and E[y | y > 0, x] = ``predict / predict_nonzero_proba``."""
        proba = np.clip(np.asarray(self.predict_nonzero_proba(X), dtype=np.float64), 0.0, 1.0)
        mean = np.asarray(self.predict(X), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(proba > 0, mean / proba, 0.0)
        return proba, value

    def _fit_spend_residuals(
        self, X: object, y: np.ndarray, sample_weight: np.ndarray | None
    ) -> None:
        """Fit ``spend_residuals_`` (the generic distribution) on rows ``X, y``.

        The rows must be ones the model did not train on (the early-stopping validation
        rows, ``validation_data``) for the spread to be that of new customers; on the
        training rows it is too narrow. Only the spenders count.
        """
        spends = y > 0
        if not spends.any():
            self.spend_residuals_ = None
            return
        X_pos = X.iloc[spends] if isinstance(X, pd.DataFrame) else np.asarray(X)[spends]
        _, value = self._nonzero_proba_and_positive_value(X_pos)
        w = None if sample_weight is None else sample_weight[spends]
        self.spend_residuals_ = SpendResiduals.fit(y[spends], value, w)


# the mixin's own generic method is not seen by __init_subclass__
LTVRegressorMixin.predict_quantiles = _streamed_predictions(  # type: ignore[method-assign]
    LTVRegressorMixin.predict_quantiles
)


def _as_int(value: object, name: str) -> int:
    if not isinstance(value, numbers.Integral):
        raise ValueError(f"ltvkit: {name} must be an integer, got {value!r}.")
    return int(value)


# -- conformal recalibration ------------------------------------------------------------

#: Levels at which :class:`ConformalQuantileRegressor` calibrates (0.01 steps, then the
#: upper tail); other levels are interpolated between them.
CONFORMAL_LEVELS: np.ndarray = np.round(np.r_[np.arange(1, 100) / 100, 0.995, 0.999], 3)


class ConformalQuantileRegressor(LTVRegressorMixin, BaseEstimator):
    """Split-conformal recalibration of any ltvkit model's quantiles.

    ``fit`` holds out ``calibration_fraction`` of the rows (stratified on ``y > 0``),
    fits a clone of ``estimator`` on the others, and learns, for every level ``g`` of
    :data:`CONFORMAL_LEVELS` (0.01, 0.02, ..., 0.99, 0.995, 0.999), one factor
    ``exp(s_g)`` by which the model's quantile ``q_g(x)`` is multiplied. The factor is
    computed on the held-out customers whose ``q_g(x) > 0`` only: a zero quantile (the
    level lies inside the model's point mass at zero, ``g <= P(y = 0 | x)``) stays zero,
    a positive one stays positive, so the recalibrated quantiles keep the model's exact
    point mass at zero and ``predict_nonzero_proba``. With scores
    ``S_i = log(y_i / q_g(x_i))`` (``-inf`` for ``y_i = 0``) of the ``n_g`` held-out
    customers with ``q_g(x_i) > 0``, ``s_g`` is their ``ceil((n_g + 1) g)``-th smallest
    (split conformal; Vovk et al. 2005, Lei et al. 2018; the one-sided, per-level
    form of conformalized quantile regression, Romano et al. 2019, on the log scale).

    **Guarantee.** If the held-out rows and a new customer are exchangeable (e.g. drawn
    independently from the same population), then for every level ``g`` of the grid
    with ``n_g >= g / (1 - g)``, over the draw of the held-out rows and of the new
    customer ``(x, y)``,

        P(y <= Q'(g | x)  |  q_g(x) > 0)  >=  g,

    in finite samples, whatever the model (marginal over customers in that group, not
    per customer). Customers with ``q_g(x) = 0`` keep quantile 0, whose coverage is
    ``P(y = 0 | q_g(x) = 0)``: the model's own claim ``P(y = 0 | x) >= g``, which no
    rescaling can change (``zero_coverage_`` gives it on the held-out rows). Overall
    coverage is therefore ``>= g`` whenever that claim holds on average. For a model
    that is already calibrated, ``s_g`` is about 0 and the quantiles barely move.
    Between grid levels, ``Q'(tau)`` is the larger of ``q_tau(x)`` times the factor of
    the next grid level and the recalibrated quantiles of the grid levels below ``tau``
    (so it is non-decreasing in ``tau``); its coverage is at least that of the grid
    level below. A level with too few held-out customers (``n_g < g / (1 - g)``) gets
    the largest score seen and no guarantee; one with none (below every held-out
    customer's P(y = 0 | x)) keeps the model's quantiles (``uncalibrated_levels_``).

    Parameters
    ----------
    estimator : ltvkit estimator or None, default=None
        Any model with ``predict_quantiles`` and ``predict_nonzero_proba`` (every ltvkit
        model); cloned at ``fit``. None: ``TwoStageRegressor()``. A model wrapped in
        ``sklearn.frozen.FrozenEstimator`` is used as fitted, and every row given to
        ``fit`` calibrates it (calibrate a model you already have on your own
        held-out customers).
    calibration_fraction : float in (0, 1), default=0.1
        Share of the rows held out to calibrate (the model trains on the rest). More
        rows give steadier factors (the ``g``-quantile of ``n_g`` scores moves by about
        ``sqrt(g (1 - g) / n_g)`` in coverage).
    random_state : int, RandomState instance or None, default=None
        Seeds the held-out split (not the model: set the model's own ``random_state``).

    Attributes
    ----------
    estimator_ : estimator
        The fitted model.
    levels_ : ndarray of shape (n_levels,)
        The calibrated levels (:data:`CONFORMAL_LEVELS`).
    log_factors_ : ndarray of shape (n_levels,) or (n_horizons, n_levels)
        ``s_g``: the recalibrated ``g``-quantile is ``q_g(x) * exp(s_g)`` (before the
        monotone envelope).
    zero_coverage_ : ndarray, same shape as ``log_factors_``
        Share of the held-out customers with ``q_g(x) = 0`` who spent nothing (NaN when
        there are none): the coverage the recalibration cannot change.
    uncalibrated_levels_ : ndarray
        Levels without the finite-sample guarantee: too few held-out customers with
        ``q_g(x) > 0`` (none at all at levels below every customer's P(y = 0 | x); such
        a level keeps the model's quantiles).
    n_calibration_ : int
        Held-out rows used to calibrate.

    See Also
    --------
    ltvkit.metrics.quantile_coverage : Check P(y <= q_tau) on customers of your own.

    Examples
    --------
    >>> from ltvkit.boosting import TwoStageRegressor
    >>> from ltvkit.datasets import make_ltv
    >>> X, y = make_ltv(n_samples=1000, random_state=0)
    >>> model = ConformalQuantileRegressor(
    ...     TwoStageRegressor(n_estimators=50, n_jobs=1, random_state=0), random_state=0
    ... ).fit(X, y)
    >>> model.predict_quantiles(X, [0.5, 0.9]).shape
    (1000, 2)
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {
        "estimator": [Instance(object, text="an ltvkit estimator"), None],
        "calibration_fraction": [Real(0.0, 1.0, closed="neither")],
        "random_state": [Int(), Instance(np.random.RandomState), None],
    }

    def __init__(
        self,
        estimator: object = None,
        *,
        calibration_fraction: float = 0.1,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.estimator = estimator
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state

    @property
    def _multi_horizon(self) -> bool:  # type: ignore[override]
        return bool(getattr(self._base_estimator(), "_multi_horizon", False))

    def _base_estimator(self) -> object:
        if self.estimator is not None:
            return self.estimator
        from ltvkit.boosting import TwoStageRegressor

        return TwoStageRegressor()

    def _check_param_combinations(self) -> None:
        for method in ("predict_quantiles", "predict_nonzero_proba", "fit"):
            if not hasattr(self._base_estimator(), method):
                raise ValueError(
                    f"ltvkit: ConformalQuantileRegressor: estimator must have {method} (any "
                    f"ltvkit model), got {self.estimator!r}."
                )

    def fit(
        self, X: object, y: object, sample_weight: object = None
    ) -> ConformalQuantileRegressor:
        """Fit the model on part of the rows and calibrate its quantiles on the rest.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) (2-D for a multi-horizon model)
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Passed to the model's ``fit``; on the held-out rows, frequency weights of
            the scores (a weight of ``k`` counts as ``k`` customers).

        Returns
        -------
        self
        """
        from sklearn.frozen import FrozenEstimator
        from sklearn.model_selection import train_test_split
        from sklearn.utils import _safe_indexing, check_random_state

        self._validate_params()
        _, y_arr, sw = self._validate_fit_input(X, y, sample_weight)
        base = self._base_estimator()
        n = y_arr.shape[0]
        if isinstance(base, FrozenEstimator):
            estimator, cal = base, np.arange(n)
        else:
            n_cal = max(1, int(np.ceil(self.calibration_fraction * n)))
            if n - n_cal < 2:
                raise ValueError(
                    f"ltvkit: ConformalQuantileRegressor: {n} rows are too few to hold out "
                    f"calibration_fraction={self.calibration_fraction} and fit on the rest."
                )
            spends = (y_arr if y_arr.ndim == 1 else y_arr[:, -1]) > 0
            strata = spends if min(spends.sum(), (~spends).sum()) >= 2 else None
            rng = check_random_state(self.random_state)
            fit_rows, cal = train_test_split(
                np.arange(n), test_size=n_cal, stratify=strata, random_state=rng
            )
            fit_rows, cal = np.sort(fit_rows), np.sort(cal)
            estimator = clone(base)
            kw = {} if sw is None else {"sample_weight": sw[fit_rows]}
            estimator.fit(_safe_indexing(X, fit_rows), _safe_indexing(y, fit_rows), **kw)
        X_cal = _safe_indexing(X, cal)
        q = np.asarray(estimator.predict_quantiles(X_cal, CONFORMAL_LEVELS), dtype=np.float64)
        y_cal = y_arr[cal]
        w_cal = None if sw is None else sw[cal]
        if q.ndim == 2:  # one horizon: (n, levels) -> (n, 1, levels)
            q, y_cal = q[:, None, :], y_cal.reshape(-1, 1)
        factors, zero_cov, bad = _conformal_log_factors(q, y_cal, CONFORMAL_LEVELS, w_cal)
        squeeze = factors.shape[0] == 1 and y_arr.ndim == 1
        self.estimator_ = estimator
        self.levels_ = CONFORMAL_LEVELS.copy()
        self.log_factors_ = factors[0] if squeeze else factors
        self.zero_coverage_ = zero_cov[0] if squeeze else zero_cov
        self.uncalibrated_levels_ = CONFORMAL_LEVELS[bad.any(axis=0)]
        self.n_calibration_ = len(cal)
        return self

    def predict(self, X: object) -> np.ndarray:
        """The model's expected value E[y | x] (unchanged by the recalibration).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) (``(n_samples, n_horizons)`` for a multi-horizon
        model)
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)

    def predict_nonzero_proba(self, X: object) -> np.ndarray:
        """The model's P(y > 0 | x) (unchanged: the point mass at zero is kept).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_nonzero_proba(X)

    def predict_quantiles(self, X: object, quantiles: float | Sequence[float]) -> np.ndarray:
        """The model's quantiles, recalibrated (see the class docstring for the guarantee).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        quantiles : float or sequence of float in [0, 1]
            Level 1 is the model's own top of the support, rescaled (a model with an
            unbounded one refuses it).

        Returns
        -------
        ndarray of shape (n_samples,) for a float, (n_samples, n_quantiles) otherwise
            (a horizon axis before the levels for a multi-horizon model fitted on a
            2-D ``y``)
        """
        check_is_fitted(self, "estimator_")
        scalar, levels = check_quantile_levels(quantiles)
        grid = self.levels_
        below = grid[grid <= levels.max()]  # grid levels the envelope needs
        asked = np.union1d(levels, below)
        q = np.asarray(self.estimator_.predict_quantiles(X, asked), dtype=np.float64)
        one_horizon = q.ndim == 2
        if one_horizon:
            q = q[:, None, :]
        s = np.atleast_2d(self.log_factors_)  # (T, G)
        # first term: q_tau times the factor of the next grid level up (the top one above it)
        up = np.minimum(np.searchsorted(grid, levels, side="left"), grid.size - 1)
        at = np.searchsorted(asked, levels)
        out = q[:, :, at] * np.exp(s[None, :, up])
        if below.size:
            # envelope: the recalibrated grid quantiles at or below tau, running maximum
            grid_q = q[:, :, np.searchsorted(asked, below)] * np.exp(s[None, :, : below.size])
            envelope = np.maximum.accumulate(grid_q, axis=-1)
            last = np.searchsorted(below, levels, side="right") - 1
            has = last >= 0
            out[:, :, has] = np.maximum(out[:, :, has], envelope[:, :, last[has]])
        if one_horizon:
            out = out[:, 0, :]
        return out[..., 0] if scalar else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            inner = get_tags(self._base_estimator())
            tags.input_tags.allow_nan = inner.input_tags.allow_nan
        except Exception:  # pragma: no cover - a third-party estimator without tags
            pass
        return tags


def _conformal_log_factors(
    q: np.ndarray, y: np.ndarray, levels: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-horizon, per-level split-conformal log factors (see ConformalQuantileRegressor).

    ``q``: (n, T, G) quantiles of the held-out rows, ``y``: (n, T). Returns the factors
    ``s`` (T, G), the zero-group coverage (T, G) and which entries lack the guarantee.
    """
    n, T, G = q.shape
    w = np.ones(n) if weights is None else weights
    factors = np.zeros((T, G))
    zero_cov = np.full((T, G), np.nan)
    bad = np.zeros((T, G), dtype=bool)
    for t in range(T):
        yt = y[:, t]
        with np.errstate(divide="ignore"):
            log_y = np.where(yt > 0, np.log(np.where(yt > 0, yt, 1.0)), -np.inf)
        for g, level in enumerate(levels):
            qg = q[:, t, g]
            group = qg > 0
            if (~group).any():
                zero_cov[t, g] = np.average(yt[~group] == 0, weights=w[~group])
            if not group.any():  # no held-out customer to calibrate this level on
                bad[t, g] = True
                continue
            scores = log_y[group] - np.log(qg[group])
            wg = w[group]
            order = np.argsort(scores, kind="stable")
            scores, wg = scores[order], wg[order]
            finite = np.isfinite(scores)
            # the ceil((n_g + 1) g)-th smallest score; weighted: first cumulative weight
            # reaching g (W + 1), the new customer counting 1
            k = np.searchsorted(np.cumsum(wg), level * (wg.sum() + 1.0) - 1e-9)
            if k >= scores.size:  # too few customers for this level: no finite quantile
                bad[t, g] = True
                factors[t, g] = scores[finite].max() if finite.any() else 0.0
                continue
            # -inf (more of the group spent nothing than g): keep quantiles positive with
            # the smallest finite score, which only widens them
            factors[t, g] = (
                scores[k]
                if np.isfinite(scores[k])
                else (scores[finite].min() if finite.any() else 0.0)
            )
    return factors, zero_cov, bad
