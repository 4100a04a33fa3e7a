"""Scores with customer ids: :func:`score_customers`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["score_customers"]


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
