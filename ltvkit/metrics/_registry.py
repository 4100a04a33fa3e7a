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
from ltvkit.metrics._distribution import (
    interval_coverage,
    interval_score,
    interval_width,
    pinball_loss,
    quantile_coverage,
)
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

__all__ = ["KINDS", "METRICS", "MetricSpec", "get_metric"]

#: A metric's kind -> the positional arguments it takes. ``"point"`` metrics score
#: ``predict``; the others score predicted quantiles (``predict_quantiles``).
KINDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "point": ("y_true", "y_pred"),
        "quantile": ("y_true", "y_quantile"),
        "interval": ("y_true", "y_lower", "y_upper"),
        "interval_width": ("y_lower", "y_upper"),
    }
)


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
    kind : {"point", "quantile", "interval", "interval_width"}, default="point"
        The arguments the metric takes (:data:`KINDS`): ``(y_true, y_pred)`` for a
        point prediction; ``(y_true, y_quantile)`` for one predicted quantile
        (``pinball_loss``, ``quantile_coverage``); ``(y_true, y_lower, y_upper)`` for a
        predicted interval (``interval_score``, ``interval_coverage``);
        ``(y_lower, y_upper)`` for ``interval_width``. Callers that only have ``predict``
        (``ltv_report``, the benchmark's table) use the ``"point"`` metrics.
    scorer : bool, default=True
        Exposed as a scikit-learn scorer under :attr:`scorer_name`: a point metric in
        ``SCORERS``; a distribution metric through ``get_scorer(name, quantile=...)`` or
        ``alpha=...``, which calls ``predict_quantiles``.
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
    kind: str = "point"
    scorer: bool = True
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"{_PREFIX}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}."
            )

    @property
    def needs_quantiles(self) -> bool:
        """True for the metrics of predicted quantiles (every kind but ``"point"``)."""
        return self.kind != "point"

    @property
    def scorer_name(self) -> str:
        """Name of its scorer: the metric's name, ``neg_`` first for errors."""
        return self.name if self.greater_is_better else f"neg_{self.name}"

    @property
    def arrow(self) -> str:
        """``"↑"`` (higher is better) or ``"↓"`` (lower is better), for table headers."""
        return "↑" if self.greater_is_better else "↓"

    def __call__(
        self, *args: ArrayLike, nonzero_proba: ArrayLike | None = None, **params: Any
    ) -> float:
        """The metric on the arguments of its :attr:`kind`, with its fixed ``params``.

        ``nonzero_proba`` is passed on to a metric that uses one; other keyword
        arguments override ``params`` (``spec(y, q, quantile=0.9)``).
        """
        if len(args) != len(KINDS[self.kind]):
            raise TypeError(
                f"{self.name} takes ({', '.join(KINDS[self.kind])}), got {len(args)} arrays."
            )
        kwargs = {**self.params, **params}
        if self.uses_nonzero_proba and nonzero_proba is not None:
            kwargs["nonzero_proba"] = nonzero_proba
        return float(self.func(*args, **kwargs))

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
            # Predicted distributions (docs/uncertainty.md). A coverage is reported as it
            # is (compare it with the nominal level); "higher" is only its scorer's sign.
            _spec(pinball_loss, False, "pinball loss", kind="quantile"),
            _spec(quantile_coverage, True, "P(y <= q)", kind="quantile"),
            _spec(interval_score, False, "interval score", kind="interval"),
            _spec(interval_coverage, True, "interval coverage", kind="interval"),
            _spec(interval_width, False, "interval width", kind="interval_width"),
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
