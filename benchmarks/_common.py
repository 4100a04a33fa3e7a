"""Helpers shared by the benchmark scripts (not part of ltvkit).

The scripts are run as ``python benchmarks/<script>.py`` from the repository root, so
this directory is on ``sys.path`` and they import these with ``from _common import ...``.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

import ltvkit
from ltvkit.benchmark import CalibrationSpendBaseline
from ltvkit.datasets import FEATURE_NAMES, load_cdnow, load_online_retail, transactions_to_ltv

# Where a model lives until it is registered in ``ltvkit`` (see :func:`estimator`).
_MODULES = {
    "TwoStageRegressor": "ltvkit.boosting",
    "ZILNRegressor": "ltvkit.nn",
    "OptDistRegressor": "ltvkit.nn",
    "MEANRegressor": "ltvkit.nn",
}


def online_retail() -> tuple[pd.DataFrame, pd.Series]:
    """``load_online_retail()`` without its UserWarning; FileNotFoundError if absent."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # refunds netted to 0
        return load_online_retail()


def online_retail_horizons() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Online Retail with cumulative spend 1, 2 and 3.3 months after 2011-09-01.

    ``transactions_to_ltv`` with three holdout ends: the last column is
    ``load_online_retail()``'s target and ``X`` is its ``X``, the core ``FEATURE_NAMES``
    (``transactions_to_ltv`` also builds trailing-window, inter-purchase and refund
    features, which the loaders leave out). Raises FileNotFoundError if the file is absent.
    """
    tx = load_online_retail(return_transactions=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # refunds netted to 0
        X, Y = transactions_to_ltv(
            tx,
            customer_col="CustomerID",
            date_col="InvoiceDate",
            value_col="value",
            calibration_end="2011-09-01",
            holdout_end=["2011-10-01", "2011-11-01", "2011-12-10"],
        )
    return X[list(FEATURE_NAMES)], Y


def load_dataset(name: str) -> tuple[pd.DataFrame, pd.Series] | None:
    """``load_cdnow()`` for ``"CDNOW"``, else Online Retail (None if its file is absent)."""
    if name == "CDNOW":
        return load_cdnow()
    try:
        return online_retail()
    except FileNotFoundError:
        return None


def fixed_split(
    X: pd.DataFrame, y: pd.Series | np.ndarray, *, float_train: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series | np.ndarray, np.ndarray]:
    """ltvkit's split, ``train_test_split(X, y, test_size=0.3, random_state=0)``.

    ``y_test`` is returned as a float array, ``y_train`` too if ``float_train``.
    """
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    if float_train:
        y_tr = np.asarray(y_tr, dtype=float)
    return X_tr, X_te, y_tr, np.asarray(y_te, dtype=float)


def load_split(
    name: str, *, float_train: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series | np.ndarray, np.ndarray] | None:
    """:func:`fixed_split` of :func:`load_dataset`; None if the data is absent."""
    data = load_dataset(name)
    if data is None:
        return None
    return fixed_split(*data, float_train=float_train)


def spend_baseline(
    X_tr: pd.DataFrame, X_te: pd.DataFrame, y_tr: pd.Series | np.ndarray
) -> np.ndarray:
    """The calibration-spend baseline's test predictions (``CalibrationSpendBaseline``).

    Past spend clipped at 0, rescaled so that its training mean equals ``mean(y_train)``:
    the one spend baseline of ltvkit, also ``ltvkit benchmark``'s ``calibration_spend``.
    """
    return CalibrationSpendBaseline().fit(X_tr, np.asarray(y_tr, dtype=float)).predict(X_te)


def mean_sd(values: Iterable[float], digits: int = 4, *, skipna: bool = True) -> str:
    """``"mean ± sd"`` of seed results to ``digits`` decimals (sd: ddof=1, 0 for one value).

    ``skipna=True`` ignores NaN results (pandas' default); ``False`` lets them propagate
    (NumPy's behaviour).
    """
    s = pd.Series(list(values), dtype=float)
    sd = s.std(ddof=1, skipna=skipna) if len(s) > 1 else 0.0
    return f"{s.mean(skipna=skipna):.{digits}f} ± {sd:.{digits}f}"


def estimator(name: str) -> type | None:
    """``ltvkit.<name>`` once registered, else the model's own module; None if absent."""
    try:
        return getattr(ltvkit, name)
    except AttributeError:
        pass
    try:
        return getattr(importlib.import_module(_MODULES[name]), name)
    except (ImportError, AttributeError, KeyError):
        return None
