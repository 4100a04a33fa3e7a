"""Data on disk: :class:`ParquetDataset`, read in bounded record batches.

Every ltvkit estimator accepts a :class:`ParquetDataset` as ``X`` in ``fit`` (the
dataset names its target column) and in every predict-type method;
:func:`ltvkit.score_dataset` scores one chunk by chunk. See ``docs/streaming.md``.
"""

from ltvkit.io._dataset import DEFAULT_BATCH_ROWS, Fragment, ParquetDataset, batch_to_frame

__all__ = ["DEFAULT_BATCH_ROWS", "Fragment", "ParquetDataset", "batch_to_frame"]
