"""ltvkit: customer lifetime value prediction as scikit-learn estimators.

Public estimators are imported lazily, so ``import ltvkit`` is fast and does not load
torch until a deep model is used.

Examples
--------
>>> import ltvkit
>>> X, y = ltvkit.datasets.make_ltv(n_samples=500, random_state=0)  # doctest: +SKIP
>>> model = ltvkit.TwoStageRegressor(random_state=0).fit(X, y)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

from ltvkit._registry import ESTIMATOR_LOCATIONS, all_estimators

__version__ = "0.1.0.dev0"

__all__ = [
    *ESTIMATOR_LOCATIONS,
    "all_estimators",
    "datasets",
    "load",
    "metrics",
    "preprocessing",
    "save",
    "score_customers",
    "score_dataset",
]

_SUBMODULES = {
    "datasets",
    "metrics",
    "preprocessing",
    "base",
    "plotting",
    "nn",
    "boosting",
    "io",
    "distributed",
}

# Public functions, imported on first use like the estimators.
_FUNCTIONS = {
    "save": "ltvkit._persistence",
    "load": "ltvkit._persistence",
    "score_customers": "ltvkit._scoring",
    "score_dataset": "ltvkit._scoring",
}


def __getattr__(name: str) -> object:
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[name]), name)
    if name in ESTIMATOR_LOCATIONS:
        return getattr(importlib.import_module(ESTIMATOR_LOCATIONS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"ltvkit.{name}")
    raise AttributeError(f"module 'ltvkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
