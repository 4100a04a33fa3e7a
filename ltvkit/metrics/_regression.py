"""Point-wise and group-wise error metrics: NMAE, NRMSE, AMBE, MAPE, decile/percentile MAPE.

All are errors: lower is better, 0 is a perfect prediction. Definitions are fixed in
``docs/metrics.md``.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import mean_absolute_error, root_mean_squared_error

from ltvkit.metrics._checks import _PREFIX, _check_pair, _finite

__all__ = ["ambe", "decile_mape", "mape", "nmae", "nrmse", "percentile_mape"]


def _grouped_mape(y_true: np.ndarray, y_pred: np.ndarray, n_groups: int, name: str) -> float:
    """Mean over prediction-sorted groups of |mean pred - mean true| / |mean true|.

    Groups are exactly those of ``np.array_split(np.argsort(y_pred, kind="stable"),
    n_groups)``, computed with ``reduceat`` instead of a Python loop over groups.
    """
    n = y_true.size
    order = np.argsort(y_pred, kind="stable")
    base, extra = divmod(n, n_groups)
    sizes = np.full(n_groups, base, dtype=np.int64)
    sizes[:extra] += 1  # array_split puts the extra rows in the first groups
    sizes = sizes[sizes > 0]  # fewer rows than groups: empty groups have no mean
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    sum_true = np.add.reduceat(y_true[order], starts)
    sum_pred = np.add.reduceat(y_pred[order], starts)
    keep = sum_true != 0  # a group with true mean 0 has no relative error
    if not keep.any():
        return 0.0
    # The group size cancels in the ratio of means.
    with np.errstate(over="ignore"):  # a true mean near 0 overflows: _finite reports it
        errors = np.abs(sum_pred[keep] - sum_true[keep]) / np.abs(sum_true[keep])
    return _finite(np.mean(errors), name)


def decile_mape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """MAPE of the group means over 10 groups of customers sorted by prediction.

    Rows are sorted ascending by ``y_pred`` (stable sort) and split with
    :func:`numpy.array_split` into 10 groups; the result is the mean over groups of
    ``|mean(y_pred) - mean(y_true)| / mean(y_true)``. It checks calibration along the
    predicted ranking.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)

    Returns
    -------
    error : float
        >= 0, lower is better. Groups whose true mean is 0 (and empty groups when
        ``n_samples < 10``) are skipped; 0.0 when every group is skipped.

    Examples
    --------
    >>> y = [0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40, 50, 60]
    >>> decile_mape(y, y)
    0.0
    """
    t, p, _ = _check_pair(y_true, y_pred)
    return _grouped_mape(t, p, 10, "decile_mape")


def percentile_mape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """:func:`decile_mape` with 100 groups instead of 10.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)

    Returns
    -------
    error : float
        >= 0, lower is better; same skipping rules as :func:`decile_mape`.

    Examples
    --------
    >>> percentile_mape([1, 2, 4], [2, 2, 2])
    0.5
    """
    t, p, _ = _check_pair(y_true, y_pred)
    return _grouped_mape(t, p, 100, "percentile_mape")


def _scale(y_true: np.ndarray) -> float:
    """|mean(y_true)|, or 1.0 when it is 0 so that the error stays finite."""
    m = abs(float(y_true.mean()))
    return m if m > 0 else 1.0


def nmae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Normalized mean absolute error: ``MAE / mean(y_true)``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)

    Returns
    -------
    error : float
        >= 0, lower is better. When ``mean(y_true) == 0`` the plain MAE is returned.

    Examples
    --------
    >>> nmae([0, 2, 4], [1, 2, 1])
    0.6666666666666666
    """
    t, p, _ = _check_pair(y_true, y_pred)
    return _finite(float(mean_absolute_error(t, p)) / _scale(t), "nmae")


def nrmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Normalized root mean squared error: ``RMSE / mean(y_true)``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)

    Returns
    -------
    error : float
        >= 0, lower is better. When ``mean(y_true) == 0`` the plain RMSE is returned.

    Examples
    --------
    >>> nrmse([0, 2, 4], [0, 2, 1])
    0.8660254037844386
    """
    t, p, _ = _check_pair(y_true, y_pred)
    return _finite(float(root_mean_squared_error(t, p)) / _scale(t), "nrmse")


def ambe(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Absolute mean bias error: ``|mean(y_pred) - mean(y_true)|``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)

    Returns
    -------
    error : float
        >= 0 in the units of ``y``, lower is better.

    Examples
    --------
    >>> ambe([0, 2, 4], [1, 1, 1])
    1.0
    """
    t, p, _ = _check_pair(y_true, y_pred)
    return _finite(abs(float(p.mean()) - float(t.mean())), "ambe")


def mape(y_true: ArrayLike, y_pred: ArrayLike, *, floor: float = 1.0) -> float:
    """Mean absolute percentage error with a floored denominator.

    ``mean(|y_pred - y_true| / max(y_true, floor))``: the floor keeps zero spenders
    (most rows) from dividing by 0; their error is counted in units of ``floor``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    floor : float, default=1.0
        Smallest denominator, > 0.

    Returns
    -------
    error : float
        >= 0, lower is better.

    Examples
    --------
    >>> mape([0, 2, 4], [0.5, 3, 4])
    0.3333333333333333
    """
    if isinstance(floor, bool) or not isinstance(floor, numbers.Real) or not floor > 0:
        raise ValueError(f"{_PREFIX}: floor must be a number > 0, got {floor!r}.")
    if not np.isfinite(floor):
        raise ValueError(f"{_PREFIX}: floor must be finite, got {floor!r}.")
    t, p, _ = _check_pair(y_true, y_pred)
    with np.errstate(over="ignore"):  # a tiny floor overflows: _finite reports it
        errors = np.abs(p - t) / np.maximum(t, float(floor))
    return _finite(np.mean(errors), "mape")
