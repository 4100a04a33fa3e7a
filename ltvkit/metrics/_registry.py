"""The metric registry: every scalar ltvkit metric, its direction and label, in one place.

A metric's direction (higher or lower is better) is written here and nowhere else: the
scorers (``SCORERS``, ``get_scorer``), ``ltv_report``, the benchmark's table and its
best-value marks, the command line's legend and the quality studies all read it from
:data:`METRICS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from numpy.typing import ArrayLike

from ltvkit.metrics._checks import _PREFIX
from ltvkit.metrics._classification import bucket_accuracy, sva, top_bucket_f1, zero_f1
from ltvkit.metrics._ranking import (
    high_value_auc,
    mutual_gini,
    normalized_gini,
    normalized_gini_positive,
    raw_gini,
    recall_at_k,
    spearman,
    spearman_positive,
)
from ltvkit.metrics._regression import (
    ambe,
    decile_mape,
    mape,
    nmae,
    nrmse,
    percentile_mape,
    top_bucket_nrmse,
)

__all__ = ["METRICS", "MetricSpec", "get_metric"]


@dataclass(frozen=True)
class MetricSpec:
    """One registered metric: what it computes, which way is better, how it is labelled.

    Parameters
    ----------
    name : str
        The key in :data:`METRICS` (for a registered metric, the function's name).
    func : callable
        ``func(y_true, y_pred, **params) -> float``.
    greater_is_better : bool
        True for scores (Gini, recall...), False for errors (NMAE, Mutual Gini...).
    label : str
        Short column label for tables and plots (``"Gini"``, ``"decile MAPE"``).
    uses_nonzero_proba : bool, default=False
        The metric takes the model's P(y > 0) as ``nonzero_proba=`` (``sva``,
        ``zero_f1``); callers that have it (``ltv_report``, the benchmark) pass it.
    needs_quantiles : bool, default=False
        The metric needs predicted quantiles (``quantiles=``), not only ``y_pred``.
        No registered metric does yet; callers skip such metrics when the model has
        no ``predict_quantiles``.
    scorer : bool, default=True
        Exposed as a scikit-learn scorer (``SCORERS``) under :attr:`scorer_name`.
    params : mapping, default={}
        Fixed keyword arguments, for variants such as ``recall_at_k`` with ``k=0.01``
        (see :meth:`variant`).

    Examples
    --------
    >>> from ltvkit.metrics import METRICS
    >>> spec = METRICS["nmae"]
    >>> spec.greater_is_better, spec.scorer_name, spec.arrow
    (False, 'neg_nmae', '↓')
    >>> spec([0, 2, 4], [1, 2, 1])
    0.6666666666666666
    """

    name: str
    func: Callable[..., float]
    greater_is_better: bool
    label: str
    uses_nonzero_proba: bool = False
    needs_quantiles: bool = False
    scorer: bool = True
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def scorer_name(self) -> str:
        """Name of its scorer: the metric's name, ``neg_`` first for errors."""
        return self.name if self.greater_is_better else f"neg_{self.name}"

    @property
    def arrow(self) -> str:
        """``"↑"`` (higher is better) or ``"↓"`` (lower is better), for table headers."""
        return "↑" if self.greater_is_better else "↓"

    def __call__(
        self, y_true: ArrayLike, y_pred: ArrayLike, *, nonzero_proba: ArrayLike | None = None
    ) -> float:
        """The metric with its fixed ``params``; ``nonzero_proba`` if it uses one."""
        kwargs = dict(self.params)
        if self.uses_nonzero_proba and nonzero_proba is not None:
            kwargs["nonzero_proba"] = nonzero_proba
        return float(self.func(y_true, y_pred, **kwargs))

    def variant(self, name: str, label: str, **params: Any) -> MetricSpec:
        """The same metric and direction with fixed parameters, under another name.

        Variants are not scorers. Used for table columns such as the benchmark's
        ``recall_at_k`` on the top 1% (at least 50 customers).

        Examples
        --------
        >>> from ltvkit.metrics import METRICS
        >>> top1 = METRICS["recall_at_k"].variant("recall_at_1pct", "Recall@1%", k=0.01)
        >>> top1.greater_is_better, dict(top1.params)
        (True, {'k': 0.01})
        """
        return dataclasses.replace(
            self, name=name, label=label, scorer=False, params={**self.params, **params}
        )


def _spec(
    func: Callable[..., float], greater_is_better: bool, label: str, **kw: Any
) -> MetricSpec:
    return MetricSpec(func.__name__, func, greater_is_better, label, **kw)


#: Every scalar ltvkit metric, in the order of ``ltv_report``: ranking, distribution,
#: point errors, calibration, classes. Name -> :class:`MetricSpec`.
METRICS: Mapping[str, MetricSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            _spec(normalized_gini, True, "Gini"),
            _spec(raw_gini, True, "raw Gini"),
            _spec(normalized_gini_positive, True, "Gini y>0"),
            _spec(spearman, True, "Spearman"),
            _spec(spearman_positive, True, "Spearman y>0"),
            _spec(recall_at_k, True, "Recall@10%"),
            _spec(high_value_auc, True, "AUC top 10%"),
            _spec(mutual_gini, False, "Mutual Gini"),
            _spec(nmae, False, "NMAE"),
            _spec(nrmse, False, "NRMSE"),
            _spec(top_bucket_nrmse, False, "NRMSE top bucket"),
            _spec(ambe, False, "AMBE"),
            _spec(mape, False, "MAPE"),
            _spec(decile_mape, False, "decile MAPE"),
            _spec(percentile_mape, False, "percentile MAPE"),
            _spec(sva, True, "SVA", uses_nonzero_proba=True),
            _spec(zero_f1, True, "F1 y>0", uses_nonzero_proba=True),
            _spec(bucket_accuracy, True, "bucket accuracy"),
            _spec(top_bucket_f1, True, "F1 top bucket"),
        )
    }
)


def get_metric(metric: str | MetricSpec) -> MetricSpec:
    """A registered metric by name (a :class:`MetricSpec` is returned as it is).

    Parameters
    ----------
    metric : str or MetricSpec
        A key of :data:`METRICS` (e.g. ``"normalized_gini"``), or a spec such as a
        :meth:`MetricSpec.variant`.

    Returns
    -------
    MetricSpec

    Raises
    ------
    ValueError
        For an unknown name; the message lists the registered ones.

    Examples
    --------
    >>> get_metric("decile_mape").label
    'decile MAPE'
    """
    if isinstance(metric, MetricSpec):
        return metric
    try:
        return METRICS[metric]
    except (KeyError, TypeError):
        raise ValueError(
            f"{_PREFIX}: unknown metric {metric!r}; registered metrics: {', '.join(METRICS)}."
        ) from None
