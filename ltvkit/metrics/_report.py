"""``ltv_report``: the registered ltvkit metrics in one pandas Series."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from numpy.typing import ArrayLike

from ltvkit.metrics._checks import _PREFIX, _check_pair
from ltvkit.metrics._registry import KINDS, METRICS, MetricSpec, get_metric

__all__ = ["ltv_report"]


def ltv_report(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    nonzero_proba: ArrayLike | None = None,
    *,
    metrics: Sequence[str | MetricSpec] | None = None,
) -> pd.Series:
    """Compute the registered ltvkit metrics (every one by default) in one Series.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    nonzero_proba : array-like of shape (n_samples,), default=None
        The model's P(y > 0); used by the metrics that take it (``sva`` and
        ``zero_f1``, :attr:`MetricSpec.uses_nonzero_proba`) instead of the 0.1
        threshold on ``y_pred``.
    metrics : sequence of str or MetricSpec, default=None
        Which metrics, in which order: names from :data:`ltvkit.metrics.METRICS` or
        specs (e.g. :meth:`MetricSpec.variant`). None: every registered metric that
        needs nothing but ``y_pred`` (and ``nonzero_proba``), with its default
        parameters, in the registry's order.

    Returns
    -------
    report : pandas.Series of float64
        Metric name -> value, named ``"ltv_report"``. Which way is better is in the
        registry: ``METRICS[name].greater_is_better``.

    Examples
    --------
    >>> report = ltv_report([0, 0, 1, 3, 10], [0.0, 0.2, 1.5, 2.0, 8.0])
    >>> float(report["normalized_gini"])
    1.0
    >>> ltv_report([0, 0, 1, 3, 10], [0.0, 0.2, 1.5, 2.0, 8.0], metrics=["nmae", "ambe"])
    nmae    0.264286
    ambe    0.460000
    Name: ltv_report, dtype: float64
    """
    # Check once here so that a bad input is reported before any metric runs.
    t, p, proba = _check_pair(y_true, y_pred, nonzero_proba)
    if metrics is None:
        specs = [spec for spec in METRICS.values() if spec.kind == "point"]
    else:
        specs = [get_metric(m) for m in metrics]
        for spec in specs:
            if spec.kind != "point":
                raise ValueError(
                    f"{_PREFIX}: ltv_report scores point predictions; {spec.name} takes "
                    f"({', '.join(KINDS[spec.kind])}): call it directly."
                )
    values = {spec.name: spec(t, p, nonzero_proba=proba) for spec in specs}
    return pd.Series(values, dtype="float64", name="ltv_report")
