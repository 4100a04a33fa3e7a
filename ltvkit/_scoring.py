"""Scores with customer ids: :func:`score_customers`, and :func:`score_dataset` for
data on disk."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ltvkit.base import _ArrowRows

__all__ = ["score_customers", "score_dataset"]


def _final_and_input(estimator: object, X: object) -> tuple[object, object]:
    """The last estimator of a (nested) Pipeline and ``X`` run through the steps before it."""
    from sklearn.pipeline import Pipeline

    while isinstance(estimator, Pipeline):
        for _, step in estimator.steps[:-1]:
            if step is not None and step != "passthrough":
                X = step.transform(X)
        estimator = estimator.steps[-1][1]
    return estimator, X


def quantile_column(level: float) -> str:
    """The column name of a quantile level: ``quantile_0.1``, ``quantile_0.95``...

    Examples
    --------
    >>> quantile_column(0.1), quantile_column(0.95)
    ('quantile_0.1', 'quantile_0.95')
    """
    return f"quantile_{float(level):g}"


def _columns(name: str, values: np.ndarray, horizons: list[str]) -> dict[str, np.ndarray]:
    if values.ndim == 1:
        return {name: values}
    return {f"{name}_{h}": values[:, t] for t, h in enumerate(horizons)}


def score_customers(
    estimator: object,
    X: object,
    quantiles: Sequence[float] | None = (0.1, 0.5, 0.9),
    *,
    horizon_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Score customers: expected value, P(spend), quantiles, indexed by customer.

    Parameters
    ----------
    estimator : estimator
        A fitted ltvkit model, or a fitted scikit-learn ``Pipeline`` ending in one.
    X : DataFrame or array-like of shape (n_customers, n_features)
        The customers' features, e.g. from
        :func:`ltvkit.datasets.transactions_to_features`, indexed by customer id.
    quantiles : sequence of float in [0, 1] or None, default=(0.1, 0.5, 0.9)
        Quantile levels of each customer's value. Used only by models that have
        ``predict_quantiles``; a model without it gets no quantile columns (no error).
        None or ``()``: no quantile columns.
    horizon_names : sequence of str or None, default=None
        Suffixes of a multi-horizon model's columns, one per horizon (e.g.
        ``["91d", "182d"]``); None: ``h1``, ``h2``...

    Returns
    -------
    pandas.DataFrame
        Indexed like ``X`` (its index, unchanged: ids are identifiers; a
        ``RangeIndex`` for array input), with the columns

        - ``predicted_value``: the expected value E[y | x] (``predict``);
        - ``nonzero_proba``: P(y > 0 | x) (``predict_nonzero_proba``);
        - ``quantile_<level>`` for each level, e.g. ``quantile_0.1``, ``quantile_0.5``,
          ``quantile_0.9`` (``predict_quantiles``), when the model has them.

        A multi-horizon model fitted on several horizons (``ODMNRegressor``) gives one
        column per horizon, ``<name>_<horizon>`` (``predicted_value_h1``,
        ``quantile_0.9_h3``...), for every output the model gives per horizon;
        ``nonzero_proba`` is the model's own (ODMN: the last horizon).

    Examples
    --------
    >>> from ltvkit import ZILNRegressor
    >>> from ltvkit.datasets import make_ltv
    >>> X, y = make_ltv(n_samples=300, random_state=0)
    >>> X.index = [f"c{i:05d}" for i in range(300)]
    >>> model = ZILNRegressor(max_epochs=2, random_state=0).fit(X, y)
    >>> scores = score_customers(model, X)
    >>> list(scores.columns)
    ['predicted_value', 'nonzero_proba', 'quantile_0.1', 'quantile_0.5', 'quantile_0.9']
    >>> scores.index[0]
    'c00000'
    """
    index = X.index if isinstance(X, pd.DataFrame) else None
    final, Xt = _final_and_input(estimator, X)
    pred = np.asarray(final.predict(Xt), dtype=np.float64)
    n = pred.shape[0]
    if pred.ndim == 2:
        names = [str(h) for h in horizon_names] if horizon_names is not None else None
        if names is None:
            names = [f"h{t + 1}" for t in range(pred.shape[1])]
        elif len(names) != pred.shape[1]:
            raise ValueError(
                f"horizon_names has {len(names)} name(s) but the model predicts "
                f"{pred.shape[1]} horizons."
            )
    else:
        names = []
    out: dict[str, np.ndarray] = dict(_columns("predicted_value", pred, names))
    if hasattr(final, "predict_nonzero_proba"):
        proba = np.asarray(final.predict_nonzero_proba(Xt), dtype=np.float64)
        out.update(_columns("nonzero_proba", proba, names))
    levels = [] if quantiles is None else [float(q) for q in quantiles]
    if levels and hasattr(final, "predict_quantiles"):
        Q = np.asarray(final.predict_quantiles(Xt, levels), dtype=np.float64)
        for j, level in enumerate(levels):
            out.update(_columns(quantile_column(level), Q[..., j], names))
    frame = pd.DataFrame(out, index=index if index is not None else pd.RangeIndex(n))
    return frame


def score_dataset(
    estimator: object,
    dataset: object,
    out_path: str | os.PathLike,
    quantiles: Sequence[float] | None = (0.1, 0.5, 0.9),
    *,
    horizon_names: Sequence[str] | None = None,
    batch_size: int = 65_536,
    client: object = None,
    **kwargs: object,
) -> Path:
    """Score a :class:`ltvkit.io.ParquetDataset` chunk by chunk into a file.

    The streaming twin of :func:`score_customers`: each record batch is scored and
    appended to ``out_path``, so memory is bounded by a batch whatever the number of
    customers. The rows come out in the dataset's order.

    Parameters
    ----------
    estimator : estimator
        A fitted ltvkit model, or a fitted scikit-learn ``Pipeline`` ending in one.
    dataset : ParquetDataset
        The customers; its ``features`` must be the model's features.
    out_path : str or path-like
        Parquet (``.parquet`` / ``.pq``) or CSV (``.csv``, also ``.csv.gz``...).
    quantiles, horizon_names
        As in :func:`score_customers`.
    batch_size : int, default=65536
        Rows scored at a time.
    client : dask.distributed.Client or None, default=None
        Score in parallel on a Dask cluster (``ltvkit.distributed``); None: here.
    **kwargs
        Passed on to the Dask scorer (with ``client`` only).

    Returns
    -------
    pathlib.Path
        ``out_path``. Its columns: the id column under its input name (when the
        dataset has one), then the columns of :func:`score_customers`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from ltvkit import ZILNRegressor
    >>> from ltvkit.datasets import make_ltv
    >>> from ltvkit.io import ParquetDataset
    >>> X, y = make_ltv(n_samples=300, random_state=0)
    >>> model = ZILNRegressor(max_epochs=2, random_state=0).fit(X, y)
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> X.assign(customer_id=range(300)).to_parquet(folder / "customers.parquet")
    >>> data = ParquetDataset(folder / "customers.parquet", id_column="customer_id")
    >>> out = score_dataset(model, data, folder / "scores.parquet")
    >>> list(pd.read_parquet(out).columns)[:3]
    ['customer_id', 'predicted_value', 'nonzero_proba']
    """
    from ltvkit.io import ParquetDataset

    if not isinstance(dataset, ParquetDataset):
        raise ValueError(
            "ltvkit: score_dataset scores an ltvkit.io.ParquetDataset, got "
            f"{type(dataset).__name__}; use score_customers for a DataFrame."
        )
    if client is not None:
        try:
            from ltvkit.distributed import score_dataset_dask
        except ImportError as exc:
            raise ImportError(
                "ltvkit: score_dataset(client=...) needs ltvkit.distributed "
                "(score_dataset_dask), which this ltvkit does not have."
            ) from exc
        return score_dataset_dask(
            estimator,
            dataset,
            out_path,
            client=client,
            quantiles=quantiles,
            horizon_names=horizon_names,
            batch_size=batch_size,
            **kwargs,
        )
    if kwargs:
        raise TypeError(f"score_dataset got unexpected keyword arguments {sorted(kwargs)}.")
    out_path = Path(out_path)
    suffixes = [s.lower() for s in out_path.suffixes]
    is_csv = ".csv" in suffixes
    if not is_csv and (not suffixes or suffixes[-1] not in (".parquet", ".pq")):
        raise ValueError(
            f"ltvkit: out_path {str(out_path)!r} must end in .parquet, .pq or .csv "
            "(optionally compressed, e.g. .csv.gz)."
        )
    columns = [*dataset.features]
    if dataset.id_column is not None:
        columns.append(dataset.id_column)
    writer = None
    first = True
    # a model that encodes Arrow columns itself (the deep models) gets the rows as
    # read; anything else (a Pipeline too) the usual DataFrame
    reads_arrow = getattr(estimator, "_reads_arrow", False)
    try:
        for batch in dataset.iter_batches(columns, batch_size=batch_size):
            if reads_arrow:
                final, Xt = estimator, _ArrowRows(batch.select(dataset.features))
            else:
                final, Xt = _final_and_input(estimator, dataset.feature_frame(batch))
            share = getattr(final, "_sharing_outputs", None)
            # a deep model computes every column from one forward pass per batch
            with share(Xt) if share is not None else contextlib.nullcontext():
                scores = score_customers(final, Xt, quantiles, horizon_names=horizon_names)
            ids = None
            if dataset.id_column is not None:
                ids = batch.column(batch.schema.get_field_index(dataset.id_column))
            if is_csv:
                scores = scores.reset_index(drop=True)
                if ids is not None:
                    scores.insert(0, dataset.id_column, ids.to_pandas())
                scores.to_csv(out_path, mode="w" if first else "a", header=first, index=False)
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                # the ids as read (arrow, no round trip through pandas), the scores as
                # their numpy arrays
                columns = {} if ids is None else {dataset.id_column: ids}
                columns.update({c: scores[c].to_numpy() for c in scores.columns})
                table = pa.table(columns)
                if writer is None:
                    # every value is distinct: dictionary pages would be built and dropped
                    writer = pq.ParquetWriter(out_path, table.schema, use_dictionary=False)
                writer.write_table(table)
            first = False
    finally:
        if writer is not None:
            writer.close()
    return out_path
