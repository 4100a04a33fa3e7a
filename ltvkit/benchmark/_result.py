"""``BenchmarkResult``: what one :func:`ltvkit.benchmark.run_benchmark` call measured."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BenchmarkResult"]


@dataclass(repr=False)
class BenchmarkResult:
    """What :func:`~ltvkit.benchmark.run_benchmark` measured.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model (indexed by name): the mean of each metric and cost column
        over the fits, a ``<column>_std`` after each when there are several fits per
        model (``cv`` folds, several ``seeds``), and ``status`` (``"ok"``,
        ``"failed: ..."`` or ``"skipped: ..."``). ``table.attrs`` holds the run's
        settings (rows, split, seeds, quick...).
    y_true : ndarray
        The scored values: the held-out customers' (the last horizon of a 2-D
        target), or every customer's with ``cv``.
    predictions : dict of str to ndarray
        Each model's held-out (with ``cv``: out-of-fold) predictions of ``y_true``,
        from its first seed; models that failed are absent.
    scores : pandas.DataFrame
        One row per fit (``model``, ``fold``, ``seed``, then the metric and cost
        columns), for the models that ran: the numbers behind the means and sds.
    data_name : str
        What the data is called in chart titles and the run record.
    data_sha256 : str
        Digest of the customer table and target that were benchmarked.
    arguments : dict
        ``run_benchmark``'s settings, as written to the run record.
    started : datetime or None
        When the run started (UTC).

    Examples
    --------
    >>> from ltvkit.benchmark import run_benchmark
    >>> from ltvkit.datasets import make_ltv
    >>> X, y = make_ltv(n_samples=400, n_features=4, random_state=0)
    >>> result = run_benchmark(X, y, models=["lgbm_tweedie"], seeds=[0, 1], quick=True)
    >>> result.scores[["model", "seed"]].values.tolist()
    [['lgbm_tweedie', 0], ['lgbm_tweedie', 1]]
    """

    table: pd.DataFrame
    y_true: np.ndarray
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    data_name: str = "data"
    data_sha256: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    started: datetime.datetime | None = None

    def __repr__(self) -> str:
        from ltvkit.benchmark._report import format_table

        attrs = self.table.attrs
        head = (
            f"BenchmarkResult: {self.data_name}, {attrs.get('n_rows', '?')} rows, "
            f"{len(self.y_true)} scored"
        )
        return head + "\n" + format_table(self.table, "text")
