"""Gradient-boosting LTV models (XGBoost / LightGBM backends).

Examples
--------
>>> from ltvkit.boosting import TwoStageRegressor
>>> TwoStageRegressor(backend="lightgbm", n_estimators=100)
TwoStageRegressor(backend='lightgbm', n_estimators=100)
"""

from __future__ import annotations

from ltvkit.boosting._two_stage import TwoStageRegressor

__all__ = ["TwoStageRegressor"]
