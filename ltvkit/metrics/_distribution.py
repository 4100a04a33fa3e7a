"""Metrics and scorers for predictive distributions: pinball loss, coverage, interval width.

The metric functions take the true values and the predicted quantiles (or the two ends of
an interval) as 1-D arrays. The scorers (:func:`quantile_scorer`, reached through
``ltvkit.metrics.get_scorer``) call the estimator's ``predict_quantiles`` and work in
``GridSearchCV`` / ``cross_validate`` like any scorer. Definitions:
``docs/uncertainty.md`` ("Scorers for distributions").
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike

from ltvkit.metrics._checks import _PREFIX, _as_1d, _check_pair

__all__ = [
    "QUANTILE_SCORERS",
    "QuantileScorer",
    "interval_coverage",
    "interval_score",
    "interval_width",
    "pinball_loss",
    "quantile_coverage",
    "quantile_scorer",
]


def _level(value: object, name: str) -> float:
    """A probability level strictly inside (0, 1)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = 0.0 < value < 1.0
    if not ok:
        raise ValueError(f"{_PREFIX}: {name} must be a number in (0, 1), got {value!r}.")
    return value


def _interval(
    y_true: ArrayLike, y_lower: ArrayLike, y_upper: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t, lo = _check_pair(y_true, y_lower)[:2]
    _, up = _check_pair(y_true, y_upper)[:2]
    if (lo > up).any():
        raise ValueError(
            f"{_PREFIX}: y_lower is above y_upper in {int((lo > up).sum())} row(s); an "
            "interval needs lower <= upper."
        )
    return t, lo, up


def pinball_loss(y_true: ArrayLike, y_quantile: ArrayLike, *, quantile: float = 0.5) -> float:
    """Mean pinball (quantile) loss of a predicted ``quantile``-quantile.

    ``mean(max(tau (y - q), (tau - 1) (y - q)))`` with ``tau = quantile``: the loss a
    ``tau``-quantile minimises, so it rewards calibration and sharpness together.
    Compare it with the constant prediction ``np.quantile(y_train, tau)``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_quantile : array-like of shape (n_samples,)
        Predicted ``quantile``-quantiles, e.g. ``model.predict_quantiles(X, 0.9)``.
    quantile : float in (0, 1), default=0.5
        The level ``tau``; 0.5 gives half the mean absolute error.

    Returns
    -------
    loss : float
        >= 0, lower is better, in the units of ``y``.

    Examples
    --------
    >>> pinball_loss([0.0, 10.0], [5.0, 5.0], quantile=0.9)  # (0.1 * 5 + 0.9 * 5) / 2
    2.5
    """
    tau = _level(quantile, "quantile")
    t, q, _ = _check_pair(y_true, y_quantile)
    diff = t - q
    return float(np.mean(np.maximum(tau * diff, (tau - 1.0) * diff)))


def quantile_coverage(y_true: ArrayLike, y_quantile: ArrayLike) -> float:
    """Share of customers at or below their predicted quantile, ``P(y <= q_tau)``.

    For a calibrated ``tau``-quantile it is about ``tau`` (at least ``tau`` with a point
    mass at zero: a customer whose ``q_tau`` is 0 is covered when they spend nothing).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_quantile : array-like of shape (n_samples,)

    Returns
    -------
    coverage : float in [0, 1]

    Examples
    --------
    >>> quantile_coverage([0.0, 3.0, 10.0, 4.0], [0.0, 5.0, 5.0, 5.0])
    0.75
    """
    t, q, _ = _check_pair(y_true, y_quantile)
    return float(np.mean(t <= q))


def interval_coverage(y_true: ArrayLike, y_lower: ArrayLike, y_upper: ArrayLike) -> float:
    """Share of customers inside their predicted interval, ``P(lower <= y <= upper)``.

    Parameters
    ----------
    y_true, y_lower, y_upper : array-like of shape (n_samples,)
        ``y_lower <= y_upper`` row by row (both ends count as inside).

    Returns
    -------
    coverage : float in [0, 1]
        About ``1 - alpha`` for a calibrated central ``(1 - alpha)`` interval.

    Examples
    --------
    >>> interval_coverage([0.0, 3.0, 10.0, 4.0], [0.0, 1.0, 1.0, 5.0], [2.0, 5.0, 5.0, 9.0])
    0.5
    """
    t, lo, up = _interval(y_true, y_lower, y_upper)
    return float(np.mean((lo <= t) & (t <= up)))


def interval_width(y_lower: ArrayLike, y_upper: ArrayLike) -> float:
    """Mean width of the predicted intervals, ``mean(upper - lower)``.

    Parameters
    ----------
    y_lower, y_upper : array-like of shape (n_samples,)

    Returns
    -------
    width : float
        >= 0, in the units of ``y``; narrower is sharper (at the same coverage).

    Examples
    --------
    >>> interval_width([0.0, 1.0], [2.0, 5.0])
    3.0
    """
    lo, up = _as_1d(y_lower, "y_lower"), _as_1d(y_upper, "y_upper")
    if lo.shape != up.shape:
        raise ValueError(
            f"{_PREFIX}: y_lower has {lo.shape[0]} samples but y_upper has {up.shape[0]}."
        )
    if (lo > up).any():
        raise ValueError(
            f"{_PREFIX}: y_lower is above y_upper in {int((lo > up).sum())} row(s); an "
            "interval needs lower <= upper."
        )
    return float(np.mean(up - lo))


def interval_score(
    y_true: ArrayLike, y_lower: ArrayLike, y_upper: ArrayLike, *, alpha: float = 0.1
) -> float:
    """Interval score of central ``(1 - alpha)`` intervals (Gneiting & Raftery 2007).

    ``mean((u - l) + (2 / alpha) (l - y)_+ + (2 / alpha) (y - u)_+)``: the width plus a
    penalty for each customer outside. A proper scoring rule: lowest in expectation for
    the true ``alpha / 2`` and ``1 - alpha / 2`` quantiles, so it ranks models by
    calibration and sharpness at once (coverage alone is maximised by infinitely wide
    intervals). It equals ``2 / alpha`` times the sum of the two ends' pinball losses.

    Parameters
    ----------
    y_true, y_lower, y_upper : array-like of shape (n_samples,)
    alpha : float in (0, 1), default=0.1
        Miscoverage of the interval (0.1: a 90% interval).

    Returns
    -------
    score : float
        >= 0, lower is better, in the units of ``y``.

    Examples
    --------
    >>> interval_score([3.0, 12.0], [1.0, 1.0], [5.0, 10.0], alpha=0.5)  # (4 + 9 + 4 * 2) / 2
    10.5
    """
    a = _level(alpha, "alpha")
    t, lo, up = _interval(y_true, y_lower, y_upper)
    penalty = (2.0 / a) * (np.maximum(lo - t, 0.0) + np.maximum(t - up, 0.0))
    return float(np.mean(up - lo + penalty))


class QuantileScorer:
    """A scorer ``scorer(estimator, X, y)`` that scores ``estimator.predict_quantiles``.

    Made by :func:`quantile_scorer` (or ``ltvkit.metrics.get_scorer``); picklable.
    Higher is better, as scikit-learn expects (losses are negated, ``neg_*``). For a
    multi-horizon model the last (longest) horizon is scored, like ltvkit's other
    scorers.

    Parameters
    ----------
    name : str
        A key of :data:`QUANTILE_SCORERS`.
    quantile : float or None, default=None
        The level of ``neg_pinball_loss`` and ``quantile_coverage``.
    alpha : float or None, default=None
        The miscoverage of the interval scorers (central ``1 - alpha`` interval).
    """

    def __init__(self, name: str, *, quantile: float | None = None, alpha: float | None = None):
        self.name = name
        self.quantile = quantile
        self.alpha = alpha

    @property
    def levels(self) -> tuple[float, ...]:
        """The levels passed to ``predict_quantiles``."""
        if self.alpha is None:
            return (float(self.quantile),)
        return (self.alpha / 2.0, 1.0 - self.alpha / 2.0)

    def __call__(self, estimator: object, X: object, y_true: ArrayLike) -> float:
        q = np.asarray(estimator.predict_quantiles(X, list(self.levels)), dtype=np.float64)
        y = np.asarray(y_true, dtype=np.float64)
        if q.ndim == 3:
            q = q[:, -1, :]
        if y.ndim == 2:
            y = y[:, -1]
        if self.name == "neg_pinball_loss":
            return -pinball_loss(y, q[:, 0], quantile=self.quantile)
        if self.name == "quantile_coverage":
            return quantile_coverage(y, q[:, 0])
        if self.name == "interval_coverage":
            return interval_coverage(y, q[:, 0], q[:, 1])
        if self.name == "neg_interval_width":
            return -interval_width(q[:, 0], q[:, 1])
        return -interval_score(y, q[:, 0], q[:, 1], alpha=self.alpha)

    def __repr__(self) -> str:
        key = "alpha" if self.alpha is not None else "quantile"
        return f"get_scorer({self.name!r}, {key}={getattr(self, key)!r})"


#: Quantile scorer name -> its parameter and default (``get_scorer(name, **{param: value})``).
QUANTILE_SCORERS: dict[str, tuple[str, float]] = {
    "neg_pinball_loss": ("quantile", 0.5),
    "quantile_coverage": ("quantile", 0.9),
    "interval_coverage": ("alpha", 0.1),
    "neg_interval_width": ("alpha", 0.1),
    "neg_interval_score": ("alpha", 0.1),
}


def quantile_scorer(name: str, **params: float) -> QuantileScorer:
    """A scorer of predicted quantiles: ``get_scorer(name, **params)`` for these names.

    Parameters
    ----------
    name : str
        ``"neg_pinball_loss"`` (``quantile=0.5``), ``"quantile_coverage"``
        (``quantile=0.9``: the share with ``y <= q_quantile``), ``"interval_coverage"``,
        ``"neg_interval_width"``, ``"neg_interval_score"`` (``alpha=0.1``: the central
        ``1 - alpha`` interval from the ``alpha / 2`` and ``1 - alpha / 2`` quantiles).
    **params : float
        ``quantile`` or ``alpha``, as listed.

    Returns
    -------
    QuantileScorer
        ``scorer(estimator, X, y)``; higher is better. The coverages are reported as
        they are (refit on ``neg_pinball_loss`` or ``neg_interval_score``, not on a
        coverage: it grows with the width).

    Examples
    --------
    >>> scorer = quantile_scorer("neg_pinball_loss", quantile=0.9)
    >>> scorer
    get_scorer('neg_pinball_loss', quantile=0.9)
    """
    if name not in QUANTILE_SCORERS:
        raise ValueError(
            f"{_PREFIX}: {name!r} is not a quantile scorer; choose one of "
            f"{', '.join(sorted(QUANTILE_SCORERS))}."
        )
    key, default = QUANTILE_SCORERS[name]
    unknown = sorted(set(params) - {key})
    if unknown:
        raise ValueError(f"{_PREFIX}: the scorer {name!r} takes {key}=..., not {unknown}.")
    value = _level(params.get(key, default), key)
    return QuantileScorer(name, **{key: value})
