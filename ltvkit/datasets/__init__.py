"""Datasets for LTV prediction.

- :func:`transactions_to_features`: a transaction log -> customer features as of a date
  (what scoring today's customers needs).
- :func:`transactions_to_ltv`: a transaction log -> ``(X, y)`` with calibration-window
  features and holdout-window spend (training and back-testing).
- :func:`load_cdnow`: the CDNOW customers (Fader & Hardie), shipped inside ltvkit.
- :func:`load_online_retail`, :func:`load_hillstrom`: real data read from a local copy
  (not shipped; ``path``, ``$LTVKIT_DATA_DIR`` or ``<repo>/../shared/data``).
- :func:`make_ltv`: synthetic zero-inflated, long-tailed data with known structure;
  :func:`make_ltv_parquet` writes a large one straight to Parquet, chunk by chunk.

See ``docs/datasets.md`` for the feature definitions, default windows and the generative
model of ``make_ltv``.

Examples
--------
>>> from ltvkit.datasets import make_ltv
>>> X, y = make_ltv(n_samples=200, random_state=0)
>>> X.shape, y.shape
((200, 20), (200,))
"""

from ltvkit.datasets._loaders import load_cdnow, load_hillstrom, load_online_retail
from ltvkit.datasets._synthetic import make_ltv, make_ltv_parquet
from ltvkit.datasets._transactions import (
    FEATURE_NAMES,
    transactions_to_features,
    transactions_to_ltv,
)

__all__ = [
    "FEATURE_NAMES",
    "load_cdnow",
    "load_hillstrom",
    "load_online_retail",
    "make_ltv",
    "make_ltv_parquet",
    "transactions_to_features",
    "transactions_to_ltv",
]
