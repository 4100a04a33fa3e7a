"""Stratification metrics: SVA, zero/non-zero F1 and bucket accuracy.

They turn values into classes (zero / low / high, non-zero, value buckets) and compare
the classes of truth and prediction. Definitions are fixed in ``docs/metrics.md``.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import accuracy_score, f1_score

from ltvkit.metrics._checks import _PREFIX, _check_pair

__all__ = ["bucket_accuracy", "sva", "zero_f1"]


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
) -> float:
    """Share of customers whose predicted value falls in the bucket of their true value.

    Buckets come from :class:`ltvkit.preprocessing.LTVBucketizer` fitted on ``y_true``
    and applied to both vectors: bucket 0 holds ``v <= 1e-6`` and the positive values
    are cut at their 50th and 75th percentiles (4 buckets). Tied cut points are merged
    without a warning (fewer buckets). Negative predictions are bucketed as 0.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    n_buckets : int, default=4
        Passed to ``LTVBucketizer``.
    boundaries : array-like, default=None
        Passed to ``LTVBucketizer`` (fixed bucket edges instead of learned ones).

    Returns
    -------
    accuracy : float
        In [0, 1], higher is better. When no ``y_true`` is positive (everyone is in the
        zero bucket) it is the share of predictions ``<= 1e-6``.

    Raises
    ------
    ValueError
        If ``y_true`` has a negative value (the bucketizer needs non-negative values).

    Examples
    --------
    >>> y = [0, 0, 1, 2, 5, 10, 50, 100]
    >>> bucket_accuracy(y, y)
    1.0
    """
    # Imported here so that ltvkit.metrics does not need ltvkit.preprocessing to load.
    from ltvkit.preprocessing import BucketMergeWarning, LTVBucketizer

    t, p, _ = _check_pair(y_true, y_pred)
    if t.min() < 0:
        # Checked here so that the message names y_true, not the bucketizer's input.
        raise ValueError(
            f"{_PREFIX}: bucket_accuracy needs y_true >= 0 (LTVBucketizer buckets "
            f"non-negative values), got {int((t < 0).sum())} negative value(s) "
            f"(min {t.min():g})."
        )
    p = np.maximum(p, 0.0)
    bucketizer = LTVBucketizer(n_buckets=n_buckets, boundaries=boundaries)
    with warnings.catch_warnings():
        # Merged (tied) cuts are part of the metric's definition; a scorer called on
        # every CV fold should not warn about them each time.
        warnings.simplefilter("ignore", BucketMergeWarning)
        bucketizer.fit(t.reshape(-1, 1))
    true_bucket = np.asarray(bucketizer.transform(t.reshape(-1, 1))).ravel()
    pred_bucket = np.asarray(bucketizer.transform(p.reshape(-1, 1))).ravel()
    return float(accuracy_score(true_bucket, pred_bucket))
