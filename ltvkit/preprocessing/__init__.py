"""Preprocessing for zero-inflated, long-tailed LTV data.

- :class:`LTVBucketizer`: ordered value buckets for an LTV label (a zero bucket plus
  quantile or business-boundary buckets), used by the bucket-based models (MDME,
  CC-OR-Net, MEAN) and by ``bucket_accuracy``.
- :class:`QuantileBucketizer`: equal-frequency bins for long-tailed feature columns, with
  a bin of its own for zeros and for NaN.

See ``docs/preprocessing.md`` for the cut rules and the duplicate-merge behaviour.

Examples
--------
>>> import numpy as np
>>> from ltvkit.preprocessing import LTVBucketizer
>>> y = np.array([0.0, 0.0, 5.0, 10.0, 20.0, 400.0])
>>> LTVBucketizer(n_buckets=4).fit_transform(y.reshape(-1, 1)).ravel()
array([0, 0, 1, 1, 2, 3])
"""

from ltvkit.preprocessing._bucketizers import (
    BucketMergeWarning,
    LTVBucketizer,
    QuantileBucketizer,
)

__all__ = ["BucketMergeWarning", "LTVBucketizer", "QuantileBucketizer"]
