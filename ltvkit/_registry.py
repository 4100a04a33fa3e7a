"""The registry of public ltvkit estimators (``ltvkit.all_estimators``).

A new model is one file plus one line in ``ESTIMATOR_LOCATIONS`` (its name and the
module that defines it). It is then exposed as ``ltvkit.<Name>`` (and, for a deep model
in ``ltvkit/nn/``, as ``ltvkit.nn.<Name>``), run through ``tests/test_common.py`` and
offered by ``ltvkit benchmark``.
"""

from __future__ import annotations

import importlib

#: Public estimator name -> the module that defines it. Order = order in benchmarks.
ESTIMATOR_LOCATIONS: dict[str, str] = {
    "TwoStageRegressor": "ltvkit.boosting._two_stage",
    "ZILNRegressor": "ltvkit.nn._ziln",
    "OptDistRegressor": "ltvkit.nn._optdist",
    "MDMERegressor": "ltvkit.nn._mdme",
    "ODMNRegressor": "ltvkit.nn._mdme",
    "MEANRegressor": "ltvkit.nn._mean",
    "CCORNetRegressor": "ltvkit.nn._ccornet",
    "HybridRegressor": "ltvkit.nn._hybrid",
    "LTVBucketizer": "ltvkit.preprocessing._bucketizers",
    "QuantileBucketizer": "ltvkit.preprocessing._bucketizers",
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
