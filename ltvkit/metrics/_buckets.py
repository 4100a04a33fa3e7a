"""Value buckets for the bucket metrics: fitted on the evaluated labels or given fitted.

``bucket_accuracy``, ``top_bucket_f1`` and ``top_bucket_nrmse`` compare value buckets of
truth and prediction. By default the buckets are fitted on the evaluated ``y_true``
(CC-OR-Net's rule); the papers fit them on the *training* labels, which a caller passes
as ``bucketizer=`` (a fitted ``LTVBucketizer``, e.g. a model's ``bucketizer_``) or as
``boundaries=`` (the cut points, e.g. ``LTVBucketizer().fit(y_train).boundaries_``).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from ltvkit.metrics._checks import _PREFIX

if TYPE_CHECKING:  # pragma: no cover
    from ltvkit.preprocessing import LTVBucketizer


def _check_non_negative(t: np.ndarray, metric: str) -> None:
    if t.min() < 0:
        # Checked here so that the message names y_true, not the bucketizer's input.
        raise ValueError(
            f"{_PREFIX}: {metric} needs y_true >= 0 (LTVBucketizer buckets "
            f"non-negative values), got {int((t < 0).sum())} negative value(s) "
            f"(min {t.min():g})."
        )


def _bucketizer_for(
    t: np.ndarray,
    *,
    n_buckets: int,
    boundaries: ArrayLike | None,
    bucketizer: LTVBucketizer | None,
    metric: str,
) -> Any:
    """The fitted bucketizer a bucket metric uses: the one given, or one fitted on ``t``."""
    # Imported here so that ltvkit.metrics does not need ltvkit.preprocessing to load.
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from ltvkit.preprocessing import BucketMergeWarning, LTVBucketizer

    _check_non_negative(t, metric)
    if bucketizer is not None:
        if boundaries is not None:
            raise ValueError(
                f"{_PREFIX}: {metric}: give either bucketizer or boundaries, not both."
            )
        if not isinstance(bucketizer, LTVBucketizer):
            raise ValueError(
                f"{_PREFIX}: {metric}: bucketizer must be a fitted LTVBucketizer, got "
                f"{type(bucketizer).__name__}."
            )
        try:
            check_is_fitted(bucketizer, "boundaries_")
        except NotFittedError:
            raise ValueError(
                f"{_PREFIX}: {metric}: bucketizer is not fitted; fit it on the training "
                "labels first, e.g. LTVBucketizer().fit(y_train.reshape(-1, 1))."
            ) from None
        if bucketizer.n_features_in_ != 1:
            raise ValueError(
                f"{_PREFIX}: {metric}: bucketizer was fitted on {bucketizer.n_features_in_} "
                "columns; pass one fitted on a single label column."
            )
        return bucketizer
    fitted = LTVBucketizer(n_buckets=n_buckets, boundaries=boundaries)
    with warnings.catch_warnings():
        # Merged (tied) cuts are part of the metric's definition; a scorer called on
        # every CV fold should not warn about them each time.
        warnings.simplefilter("ignore", BucketMergeWarning)
        fitted.fit(t.reshape(-1, 1))
    return fitted


def _buckets(bucketizer: Any, values: np.ndarray) -> np.ndarray:
    """Bucket ids of ``values`` (negative values, e.g. predictions, go to bucket 0)."""
    column = np.maximum(values, 0.0).reshape(-1, 1)
    return np.asarray(bucketizer.transform(column)).ravel()


def _top_bucket(bucketizer: Any) -> int:
    """Index of the highest-value bucket (CC-OR-Net's H)."""
    return int(np.asarray(bucketizer.n_buckets_).ravel()[0]) - 1
