"""Stratification metrics: SVA, zero/non-zero F1, bucket accuracy and top-bucket F1.

They turn values into classes (zero / low / high, non-zero, value buckets) and compare
the classes of truth and prediction. Definitions are fixed in ``docs/metrics.md``.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import accuracy_score, f1_score

from ltvkit.metrics._buckets import _bucketizer_for, _buckets, _top_bucket
from ltvkit.metrics._checks import _PREFIX, _check_pair

if TYPE_CHECKING:  # pragma: no cover
    from ltvkit.preprocessing import LTVBucketizer

__all__ = ["bucket_accuracy", "sva", "top_bucket_f1", "zero_f1"]


def _predicted_nonzero(
    y_pred: np.ndarray, nonzero_proba: np.ndarray | None, zero_threshold: float
) -> np.ndarray:
    """The CC-OR-Net rule: the model's P(y > 0) if it has one, else ``y_pred > threshold``."""
    if isinstance(zero_threshold, bool) or not isinstance(zero_threshold, numbers.Real):
        raise ValueError(f"{_PREFIX}: zero_threshold must be a number, got {zero_threshold!r}.")
    if not np.isfinite(zero_threshold):
        raise ValueError(f"{_PREFIX}: zero_threshold must be finite, got {zero_threshold!r}.")
    if nonzero_proba is not None:
        return nonzero_proba >= 0.5
    return y_pred > zero_threshold


def sva(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    nonzero_proba: ArrayLike | None = None,
    zero_threshold: float = 0.1,
) -> float:
    """Stratified Value Accuracy: share of customers put in their true value stratum.

    Strata: zero (``y <= 0``), low (``0 < y <= tau``) and high (``y > tau``), with
    ``tau`` the median of the positive ``y_true``. A prediction is in the zero stratum
    when ``y_pred <= zero_threshold``, or, if ``nonzero_proba`` is given, when
    ``nonzero_proba < 0.5`` (the probability then replaces the threshold rule); a
    non-zero prediction is low or high by comparing ``y_pred`` with ``tau``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    nonzero_proba : array-like of shape (n_samples,), default=None
        The model's P(y > 0), e.g. ``model.predict_nonzero_proba(X)``.
    zero_threshold : float, default=0.1
        Predictions at or below it count as zero when ``nonzero_proba`` is None.

    Returns
    -------
    sva : float
        In [0, 1], higher is better. Without positive ``y_true``, ``tau`` is 0 and
        every true row is in the zero stratum.

    Examples
    --------
    >>> # tau = median(1, 2, 8) = 2; strata true: 0, low, low, high; pred: 0, low, high, high
    >>> sva([0, 1, 2, 8], [0.05, 1.5, 3.0, 9.0])
    0.75
    """
    t, p, proba = _check_pair(y_true, y_pred, nonzero_proba)
    pred_nonzero = _predicted_nonzero(p, proba, zero_threshold)
    positive = t[t > 0]
    tau = float(np.median(positive)) if positive.size else 0.0
    true_stratum = np.where(t <= 0, 0, np.where(t <= tau, 1, 2))
    pred_stratum = np.where(pred_nonzero, np.where(p <= tau, 1, 2), 0)
    return float(np.mean(true_stratum == pred_stratum))


def zero_f1(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    nonzero_proba: ArrayLike | None = None,
    zero_threshold: float = 0.1,
) -> float:
    """F1 score of the non-zero class (customers who spend, ``y_true > 0``).

    The predicted class uses the same rule as :func:`sva`: ``y_pred > zero_threshold``,
    or ``nonzero_proba >= 0.5`` when given. Computed with
    :func:`sklearn.metrics.f1_score`.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    nonzero_proba : array-like of shape (n_samples,), default=None
    zero_threshold : float, default=0.1

    Returns
    -------
    f1 : float
        In [0, 1], higher is better. 1.0 when neither truth nor prediction has a
        non-zero row (nothing to find, nothing wrongly found).

    Examples
    --------
    >>> # non-zero true: rows 1, 2; predicted: rows 1, 3 -> precision 1/2, recall 1/2
    >>> zero_f1([0, 5, 3, 0], [0.0, 4.0, 0.05, 2.0])
    0.5
    """
    t, p, proba = _check_pair(y_true, y_pred, nonzero_proba)
    pred_nonzero = _predicted_nonzero(p, proba, zero_threshold)
    return float(
        f1_score((t > 0).astype(np.int8), pred_nonzero.astype(np.int8), zero_division=1.0)
    )


def bucket_accuracy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    n_buckets: int = 4,
    boundaries: ArrayLike | None = None,
    bucketizer: LTVBucketizer | None = None,
) -> float:
    """Share of customers whose predicted value falls in the bucket of their true value.

    By default the buckets come from :class:`ltvkit.preprocessing.LTVBucketizer` fitted
    on ``y_true`` and applied to both vectors: bucket 0 holds ``v <= 1e-6`` and the
    positive values are cut at their 50th and 75th percentiles (4 buckets). Tied cut
    points are merged without a warning (fewer buckets). The papers fit the buckets on
    the *training* labels: pass them as ``bucketizer`` (a fitted ``LTVBucketizer``) or
    ``boundaries``. Negative predictions are bucketed as 0.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    n_buckets : int, default=4
        Passed to ``LTVBucketizer`` when it is fitted on ``y_true``.
    boundaries : array-like, default=None
        Fixed cut points between the positive buckets (e.g. ``boundaries_`` of a
        bucketizer fitted on the training labels) instead of cuts fitted on ``y_true``.
    bucketizer : fitted LTVBucketizer or None, default=None
        Used as it is (not refitted), e.g. ``LTVBucketizer().fit(y_train.reshape(-1,
        1))`` or a bucket model's ``bucketizer_``; excludes ``boundaries``.

    Returns
    -------
    accuracy : float
        In [0, 1], higher is better. When no ``y_true`` is positive and the buckets are
        fitted on it (everyone is in the zero bucket) it is the share of predictions
        ``<= 1e-6``.

    Raises
    ------
    ValueError
        If ``y_true`` has a negative value (the bucketizer needs non-negative values),
        or ``bucketizer`` is not a fitted one-column ``LTVBucketizer``.

    Examples
    --------
    >>> y = [0, 0, 1, 2, 5, 10, 50, 100]
    >>> bucket_accuracy(y, y)
    1.0
    >>> import numpy as np
    >>> from ltvkit.preprocessing import LTVBucketizer
    >>> train = LTVBucketizer().fit(np.array([[0.0], [1.0], [2.0], [3.0], [4.0]]))
    >>> train.boundaries_.tolist()  # cuts at 2 and 3: buckets 0 | (0, 2] | (2, 3] | > 3
    [2.0, 3.0]
    >>> bucket_accuracy([0, 1, 5, 8], [0, 1, 2.5, 9], bucketizer=train)  # 5 -> 2.5 is wrong
    0.75
    """
    t, p, _ = _check_pair(y_true, y_pred)
    fitted = _bucketizer_for(
        t,
        n_buckets=n_buckets,
        boundaries=boundaries,
        bucketizer=bucketizer,
        metric="bucket_accuracy",
    )
    return float(accuracy_score(_buckets(fitted, t), _buckets(fitted, p)))


def top_bucket_f1(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    n_buckets: int = 4,
    boundaries: ArrayLike | None = None,
    bucketizer: LTVBucketizer | None = None,
) -> float:
    """F1 score of finding the top-bucket customers: CC-OR-Net's "F1 (Top Bucket)".

    A customer is in the top bucket when its value falls in the highest bucket of
    ``LTVBucketizer`` (with the defaults: above the 75th percentile of the positive
    values); the F1 compares ``y_true`` in the top bucket with ``y_pred`` in the top
    bucket. The buckets are chosen as in :func:`bucket_accuracy` (fitted on ``y_true``
    unless ``bucketizer`` or ``boundaries`` carries the training buckets, as in the
    paper, Table 4).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    n_buckets, boundaries, bucketizer
        As in :func:`bucket_accuracy`.

    Returns
    -------
    f1 : float
        In [0, 1], higher is better. 1.0 when neither truth nor prediction has a
        top-bucket customer (nothing to find, nothing wrongly found).

    Examples
    --------
    >>> y = [0, 0, 1, 2, 3, 4, 5, 6, 7, 8]  # positives 1..8: top bucket is > 6
    >>> top_bucket_f1(y, [0, 0, 1, 2, 3, 4, 5, 9, 9, 1])  # found 7, missed 8, wrongly 6
    0.5
    """
    t, p, _ = _check_pair(y_true, y_pred)
    fitted = _bucketizer_for(
        t,
        n_buckets=n_buckets,
        boundaries=boundaries,
        bucketizer=bucketizer,
        metric="top_bucket_f1",
    )
    top = _top_bucket(fitted)
    true_top = (_buckets(fitted, t) == top).astype(np.int8)
    pred_top = (_buckets(fitted, p) == top).astype(np.int8)
    return float(f1_score(true_top, pred_top, zero_division=1.0))
