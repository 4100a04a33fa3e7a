"""Compare LTV models on one customer table: the library behind ``ltvkit benchmark``.

- :func:`run_benchmark` fits every requested model (every registered ltvkit model and
  two peers by default) on a 70/30 split or K folds, for one or several model
  ``seeds``, and returns a :class:`BenchmarkResult`: the table (mean and sd of each
  metric, fit and predict time, peak memory), the scores of every fit and the held-out
  predictions.
- :func:`write_benchmark` writes the table (CSV, Markdown), the gain chart, decile chart
  and Lorenz curves, and ``run.json``, the run record; :func:`format_table` and
  :func:`legend` print them.
- The peers: :class:`CalibrationSpendBaseline` (rank by past spend, rescaled to the
  training mean: ltvkit's one spend baseline) and :class:`LGBMTweedieRegressor`.

The table's metrics come from the metric registry (:data:`ltvkit.metrics.METRICS`),
which says which way each one is better.

Examples
--------
>>> from ltvkit.benchmark import run_benchmark
>>> from ltvkit.datasets import make_ltv
>>> X, y = make_ltv(n_samples=400, n_features=4, random_state=0)
>>> result = run_benchmark(X, y, models=["lgbm_tweedie"], seeds=[0, 1], quick=True)
>>> list(result.table.columns[:2])
['normalized_gini', 'normalized_gini_std']
"""

from __future__ import annotations

from ltvkit.benchmark._columns import COSTS, RECALL_MIN_CUSTOMERS, TABLE_METRICS, Column
from ltvkit.benchmark._peers import PEERS, CalibrationSpendBaseline, LGBMTweedieRegressor
from ltvkit.benchmark._report import QUICK_NOTE, format_table, legend, write_benchmark
from ltvkit.benchmark._result import BenchmarkResult
from ltvkit.benchmark._runner import (
    QUICK_MAX_UNITS,
    QUICK_PARAMS,
    available_models,
    model_short_name,
    run_benchmark,
)

__all__ = [
    "COSTS",
    "PEERS",
    "QUICK_MAX_UNITS",
    "QUICK_NOTE",
    "QUICK_PARAMS",
    "RECALL_MIN_CUSTOMERS",
    "TABLE_METRICS",
    "BenchmarkResult",
    "CalibrationSpendBaseline",
    "Column",
    "LGBMTweedieRegressor",
    "available_models",
    "format_table",
    "legend",
    "model_short_name",
    "run_benchmark",
    "write_benchmark",
]
