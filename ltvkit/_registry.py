"""The registry of public ltvkit estimators (``ltvkit.all_estimators``).

A new model adds one line to ``ESTIMATOR_LOCATIONS`` and is then exposed as
``ltvkit.<Name>``, run through ``tests/test_common.py`` and offered by ``ltvkit benchmark``.
"""

from __future__ import annotations

import importlib

#: Public estimator name -> module that defines it. Order = order in benchmarks.
ESTIMATOR_LOCATIONS: dict[str, str] = {
    "TwoStageRegressor": "ltvkit.boosting",
    "ZILNRegressor": "ltvkit.nn",
    "OptDistRegressor": "ltvkit.nn",
    "MDMERegressor": "ltvkit.nn",
    "ODMNRegressor": "ltvkit.nn",
    "MEANRegressor": "ltvkit.nn",
    "CCORNetRegressor": "ltvkit.nn",
    "LTVBucketizer": "ltvkit.preprocessing",
    "QuantileBucketizer": "ltvkit.preprocessing",
}

_TYPES = ("regressor", "transformer")


def all_estimators(type_filter: str | None = None) -> list[tuple[str, type]]:
    """List ltvkit's public estimators and transformers.

    Parameters
    ----------
    type_filter : {"regressor", "transformer"} or None, default=None
        Keep only models (``"regressor"``) or only transformers (``"transformer"``).

    Returns
    -------
    estimators : list of (name, class) tuples

    Examples
    --------
    >>> from ltvkit import all_estimators
    >>> [name for name, _ in all_estimators("transformer")]
    ['LTVBucketizer', 'QuantileBucketizer']
    """
    if type_filter is not None and type_filter not in _TYPES:
        raise ValueError(f"type_filter must be one of {_TYPES} or None, got {type_filter!r}.")
    out = []
    for name, module in ESTIMATOR_LOCATIONS.items():
        cls = getattr(importlib.import_module(module), name)
        is_transformer = hasattr(cls, "transform")
        if type_filter == "transformer" and not is_transformer:
            continue
        if type_filter == "regressor" and is_transformer:
            continue
        out.append((name, cls))
    return out
