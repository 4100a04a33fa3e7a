"""Ranking and concentration metrics: Gini, Spearman, recall@k, high-value AUC, Lorenz curves.

Definitions (formula, range, direction, degenerate values, references) are fixed in
``docs/metrics.md``; the docstrings repeat the essentials.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from ltvkit.metrics._checks import (
    _PREFIX,
    _as_1d,
    _check_fraction,
    _check_pair,
    _finite,
    _finite_curve,
)

__all__ = [
    "gain_curve",
    "high_value_auc",
    "lorenz_curve",
    "mutual_gini",
    "normalized_gini",
    "normalized_gini_positive",
    "recall_at_k",
    "spearman",
    "spearman_positive",
]


def _gain_knots(key: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the gain curve of ``values`` taken by ``key`` descending.

    Returns the population shares and cumulative value shares at the edges of each run
    of tied keys, starting at (0, 0). Between knots the curve is a straight line: tied
    customers share their mean value, which is the expected curve over every order of
    the tie, so the result does not depend on the input row order. Inside a tie the
    rows are summed in a fixed order (largest value first) so that even the floating-
    point rounding is the same for every permutation of the input.
    """
    n = key.size
    order = np.lexsort((-values, -key))  # key descending, then value descending
    k = key[order]
    cs = np.cumsum(values[order])
    ends = np.flatnonzero(np.append(k[1:] != k[:-1], True))  # last row of each tie run
    x = np.concatenate(([0.0], (ends + 1) / n))
    total = cs[-1]
    if total == 0:
        # No value to share out: the curve of "equal shares", which has Gini 0.
        return x, x.copy()
    with np.errstate(over="ignore"):  # a total near 0 overflows: _finite reports it
        return x, np.concatenate(([0.0], cs[ends] / total))


def _gini_by(key: np.ndarray, values: np.ndarray) -> float:
    """``2 * mean(gain) - 1`` over the curve's ``n`` points (the issue's definition)."""
    x, g = _gain_knots(key, values)
    # Inside a tie run the curve is linear, so the mean of its n points equals the
    # trapezoid area plus 1/(2n) (each run adds half its rise); hence no per-row work.
    area = np.sum(np.diff(x) * (g[1:] + g[:-1])) / 2.0
    return float(2.0 * (area + 0.5 / key.size) - 1.0)


def _cumulative_share(ordered: np.ndarray) -> np.ndarray:
    """Points ``(0, c_1/C, ..., c_n/C)`` of the cumulative share curve (diagonal if C is 0)."""
    n = ordered.size
    cs = np.cumsum(ordered)
    total = cs[-1]
    if total == 0:
        return np.arange(n + 1, dtype=np.float64) / n
    with np.errstate(over="ignore"):  # a total near 0 overflows: _finite reports it
        return np.concatenate(([0.0], cs / total))


def _normalized_gini(y_true: np.ndarray, y_pred: np.ndarray, name: str) -> float:
    if y_true.size == 0 or y_true.sum() == 0 or y_true.min() == y_true.max():
        # Nothing to rank (no value, or every customer worth the same): perfect Gini is 0.
        return 0.0
    # The perfect order goes through the same code as the model so that y_pred == y_true
    # gives exactly 1.0.
    perfect = _gini_by(y_true, y_true)
    if perfect == 0:
        return 0.0
    model = _gini_by(y_pred, y_true)
    ratio = model / perfect
    if y_true.min() >= 0:
        # Mathematically in [-1, 1] for non-negative values; trim floating-point overshoot.
        ratio = min(max(ratio, -1.0), 1.0)
    return _finite(ratio, name)


def normalized_gini(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Normalized Gini of the gain curve of ``y_true`` ordered by ``y_pred``.

    Customers are sorted by ``y_pred`` descending and the gain curve is the cumulative
    share of total ``y_true`` against the population share, starting at (0, 0).
    ``Gini = 2 * mean(gain) - 1`` over its ``n`` points (as in ``google/lifetime_value``);
    it is divided by the Gini of the perfect order (sort by ``y_true``). Customers with
    tied ``y_pred`` each contribute the mean
    ``y_true`` of their tie group, so the value does not depend on the row order.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True customer value (expected non-negative).
    y_pred : array-like of shape (n_samples,)
        Predicted value; only its order matters.

    Returns
    -------
    gini : float
        At most 1 for non-negative ``y_true``; higher is better, 1 is the perfect order.
        A constant prediction scores ``1 / (n * Gini_perfect)`` (not exactly 0: the
        mean-of-points definition carries a ``1/n`` offset that vanishes for large n).
        0.0 when ``sum(y_true) == 0`` or all
        ``y_true`` are equal (the perfect Gini is 0).

    Examples
    --------
    >>> normalized_gini([0, 0, 1, 3], [0.1, 0.2, 0.5, 0.9])
    1.0
    >>> round(normalized_gini([0, 0, 1, 3], [1, 1, 1, 1]), 4)  # 1 / (n * Gini_perfect)
    0.2857
    """
    t, p, _ = _check_pair(y_true, y_pred)
    return _normalized_gini(t, p, "normalized_gini")


def normalized_gini_positive(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """:func:`normalized_gini` on the rows with ``y_true > 0`` only.

    Measures how well the model ranks the paying customers among themselves.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)

    Returns
    -------
    gini : float
        In [-1, 1], higher is better. 0.0 when fewer than two positive rows have
        different values.

    Examples
    --------
    >>> normalized_gini_positive([0, 0, 1, 3], [5.0, 0.0, 0.5, 0.9])
    1.0
    """
    t, p, _ = _check_pair(y_true, y_pred)
    pos = t > 0
    return _normalized_gini(t[pos], p[pos], "normalized_gini_positive")


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or a.min() == a.max() or b.min() == b.max():
        # Rank correlation is undefined for a constant input; report "no association".
        return 0.0
    rho = float(spearmanr(a, b).statistic)
    return min(max(rho, -1.0), 1.0)


def spearman(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Spearman rank correlation between ``y_true`` and ``y_pred`` (ties get average ranks).

    Computed with :func:`scipy.stats.spearmanr`.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)

    Returns
    -------
    rho : float
        In [-1, 1], higher is better. 0.0 (instead of NaN) when either input is constant
        or has a single row.

    Examples
    --------
    >>> spearman([0, 1, 5, 2], [0.1, 0.2, 0.9, 0.3])
    1.0
    >>> spearman([0, 1, 5, 2], [1, 1, 1, 1])
    0.0
    """
    t, p, _ = _check_pair(y_true, y_pred)
    return _spearman(t, p)


def spearman_positive(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """:func:`spearman` on the rows with ``y_true > 0`` only.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)

    Returns
    -------
    rho : float
        In [-1, 1], higher is better. 0.0 when fewer than two positive rows, or when
        ``y_true`` or ``y_pred`` is constant on them.

    Examples
    --------
    >>> spearman_positive([0, 1, 5, 2], [9.0, 0.2, 0.9, 0.3])
    1.0
    """
    t, p, _ = _check_pair(y_true, y_pred)
    pos = t > 0
    return _spearman(t[pos], p[pos])


def _resolve_k(k: float, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Real):
        raise ValueError(f"{_PREFIX}: k must be an int >= 1 or a fraction in (0, 1], got {k!r}.")
    if isinstance(k, numbers.Integral):
        if k < 1:
            raise ValueError(f"{_PREFIX}: k must be >= 1, got {k}.")
        return min(int(k), n)
    frac = _check_fraction(k, "k (as a fraction of the rows)", closed_right=True)
    # Round half up (Python's round() would send 2.5 to 2).
    return min(max(int(np.floor(frac * n + 0.5)), 1), n)


def _top_k(values: np.ndarray, k: int) -> np.ndarray:
    # Stable sort of the negated values: descending, earlier rows win ties.
    return np.argsort(-values, kind="stable")[:k]


def recall_at_k(y_true: ArrayLike, y_pred: ArrayLike, *, k: float = 0.1) -> float:
    """Share of the true top-``k`` customers that are also in the predicted top-``k``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    k : int or float, default=0.1
        Number of customers (int >= 1, capped at ``n_samples``) or a fraction of
        ``n_samples`` in (0, 1], rounded half up to an integer and at least 1.

    Returns
    -------
    recall : float
        In [0, 1], higher is better. Ties in ``y_true`` or ``y_pred`` are broken by row
        order (earlier row first).

    Examples
    --------
    >>> recall_at_k([0, 10, 3, 7], [0.0, 9.0, 8.0, 1.0], k=2)
    0.5
    """
    t, p, _ = _check_pair(y_true, y_pred)
    kk = _resolve_k(k, t.size)
    in_true_top = np.zeros(t.size, dtype=bool)
    in_true_top[_top_k(t, kk)] = True
    return float(in_true_top[_top_k(p, kk)].sum() / kk)


def high_value_auc(y_true: ArrayLike, y_pred: ArrayLike, *, q: float = 0.1) -> float:
    """ROC AUC of ``y_pred`` for telling the true top-``q`` customers from the rest.

    A customer is high-value when ``y_true > np.quantile(y_true, 1 - q)`` (linear
    interpolation), so tied customers get the same label. Computed with
    :func:`sklearn.metrics.roc_auc_score` (tied predictions count one half).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    q : float, default=0.1
        Share of customers that are high-value, in (0, 1).

    Returns
    -------
    auc : float
        In [0, 1], higher is better; 0.5 is a random ranking. 0.5 when only one class
        exists, i.e. no customer (or every customer) is above the quantile, e.g. when
        all ``y_true`` tie.

    Examples
    --------
    >>> high_value_auc([0, 0, 0, 0, 0, 0, 0, 0, 1, 50], [0, 1, 0, 0, 0, 0, 0, 0, 2, 3])
    1.0
    """
    t, p, _ = _check_pair(y_true, y_pred)
    q = _check_fraction(q, "q")
    labels = t > np.quantile(t, 1.0 - q)
    n_high = int(labels.sum())
    if n_high == 0 or n_high == t.size:
        return 0.5
    return float(roc_auc_score(labels, p))


def gain_curve(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Gain curve: cumulative share of ``y_true`` when customers are taken by ``y_pred``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)

    Returns
    -------
    population_share : ndarray of shape (n_samples + 1,)
        ``0, 1/n, ..., 1``: share of customers taken, highest ``y_pred`` first.
    value_share : ndarray of shape (n_samples + 1,)
        Share of total ``y_true`` those customers hold, from 0 to 1. Tied predictions
        share their mean value (a straight segment). The diagonal when
        ``sum(y_true) == 0``. ``2 * np.trapezoid(value_share, population_share) - 1`` is
        the un-normalized Gini used by :func:`normalized_gini`.

    Examples
    --------
    >>> x, g = gain_curve([0, 3, 1], [0.2, 0.9, 0.1])
    >>> x.round(3).tolist(), g.tolist()
    ([0.0, 0.333, 0.667, 1.0], [0.0, 0.75, 0.75, 1.0])
    """
    t, p, _ = _check_pair(y_true, y_pred)
    knots_x, knots_g = _gain_knots(p, t)
    x = np.arange(t.size + 1, dtype=np.float64) / t.size
    # Linear between tie-run edges: each tied customer adds the mean value of the run.
    return _finite_curve(x, np.interp(x, knots_x, knots_g), "gain_curve")


def lorenz_curve(y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Lorenz curve of one value vector, sorted by its own values descending.

    This is the convention of the ODMN/MDME paper (Li et al., CIKM 2022, Figure 4):
    the richest customers come first, so the curve lies above the diagonal.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Values (true or predicted), expected non-negative.

    Returns
    -------
    population_share : ndarray of shape (n_samples + 1,)
        ``0, 1/n, ..., 1``.
    value_share : ndarray of shape (n_samples + 1,)
        Share of the total held by the top ``population_share`` customers, 0 to 1. The
        diagonal (equal shares) when ``sum(y) == 0``.

    Examples
    --------
    >>> x, share = lorenz_curve([1, 0, 3])
    >>> share.tolist()
    [0.0, 0.75, 1.0, 1.0]
    """
    v = _as_1d(y, "y")
    share = _cumulative_share(np.sort(v)[::-1])
    return _finite_curve(np.arange(v.size + 1, dtype=np.float64) / v.size, share, "lorenz_curve")


def mutual_gini(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mutual Gini: area between the Lorenz curves of ``y_true`` and ``y_pred``.

    Each vector is sorted by its own values descending (:func:`lorenz_curve`), and
    the area ``integral |Phi(x) - Psi(x)| dx`` (ODMN paper, Eq. 16) is taken as the
    mean absolute difference of the two curves over the ``n`` points ``x = i/n``. It
    compares the *distributions* of truth and prediction (how concentrated value
    is), not which customer gets which prediction.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Expected non-negative.

    Returns
    -------
    mutual_gini : float
        In [0, 1); lower is better, 0 when both vectors have the same Lorenz curve.
        A vector summing to 0 has the diagonal as Lorenz curve (no concentration).

    Examples
    --------
    >>> mutual_gini([0, 0, 0, 4], [1, 1, 1, 1])
    0.375
    """
    t, p, _ = _check_pair(y_true, y_pred)
    phi = _cumulative_share(np.sort(t)[::-1])
    psi = _cumulative_share(np.sort(p)[::-1])
    return _finite(np.abs(phi[1:] - psi[1:]).mean(), "mutual_gini")
