"""The columns of the benchmark table: metrics from the registry, then the costs.

A metric column takes its key, label and direction from ``ltvkit.metrics.METRICS``
(a metric's direction is written there only); the cost columns are the benchmark's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from ltvkit.metrics import METRICS, MetricSpec

__all__ = ["COSTS", "RECALL_MIN_CUSTOMERS", "TABLE_METRICS", "Column"]

#: The benchmark's recall is on the top 1% of the scored customers, but at least this
#: many: Recall@1% of 996 customers is the top 10 and takes only 11 values (0, 0.1, ...,
#: 1), so one customer more or less moves it by 0.1. With 50 the steps are 0.02.
RECALL_MIN_CUSTOMERS = 50


@dataclass(frozen=True)
class Column:
    """One column of the benchmark table.

    Parameters
    ----------
    key : str
        Column name in the table (and in ``results.csv``).
    label : str
        Header in the printed tables.
    greater_is_better : bool
        Which value is marked best.
    digits : int, default=3
        Decimals printed.
    metric : MetricSpec or None, default=None
        The metric computing it (None: a cost column).
    """

    key: str
    label: str
    greater_is_better: bool
    digits: int = 3
    metric: MetricSpec | None = None

    @classmethod
    def of(cls, spec: MetricSpec, digits: int = 3) -> Column:
        """The column of a registered metric (or of a variant of one)."""
        return cls(spec.name, spec.label, spec.greater_is_better, digits, spec)


_RECALL = METRICS["recall_at_k"].variant(
    "recall_at_1pct_min50",
    f"Recall@1%≥{RECALL_MIN_CUSTOMERS}",
    k=0.01,
    min_k=RECALL_MIN_CUSTOMERS,
)

#: The scored columns of the table, in order.
TABLE_METRICS: tuple[Column, ...] = tuple(
    Column.of(spec)
    for spec in (
        METRICS["normalized_gini"],
        METRICS["normalized_gini_positive"],
        METRICS["spearman"],
        METRICS["decile_mape"],
        METRICS["nmae"],
        METRICS["ambe"],
        METRICS["mutual_gini"],
        METRICS["sva"],  # with the model's P(y > 0) when it has one
        _RECALL,
    )
)

#: Cost columns: wall-clock fit time, predict time per 1,000 rows, peak memory increase.
COSTS: tuple[Column, ...] = (
    Column("fit_seconds", "fit s", False, 2),
    Column("predict_ms_per_1k", "predict ms/1k", False, 2),
    Column("peak_memory_mb", "peak MB", False, 1),
)
