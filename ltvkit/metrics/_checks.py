"""Input checks shared by every ltvkit metric."""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike

_PREFIX = "ltvkit.metrics"

# Largest |value| a metric takes. Sums of squares of n such values stay far below the
# float64 maximum (1.8e308), so no metric overflows on its way to a representable
# result; customer values are many orders of magnitude smaller (ltvkit's models stop
# at 1e15), so anything bigger is a diverged model or a units bug upstream.
_MAX_ABS = 1e100


def _as_1d(values: ArrayLike, name: str) -> np.ndarray:
    """Return ``values`` as a non-empty, finite, 1-D float64 array (a column is flattened).

    ``|values|`` must be at most ``_MAX_ABS`` (1e100).
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{_PREFIX}: {name} must be numeric ({exc}).") from exc
    # Column vectors are common (e.g. Keras output); anything wider is a caller error.
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{_PREFIX}: {name} must be 1-D, got shape {arr.shape}. For a multi-horizon "
            f"target score one horizon: pass a column (e.g. {name}[:, -1]), or use "
            "get_scorer(name, horizon=...)."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{_PREFIX}: {name} is empty (0 samples).")
    finite = np.isfinite(arr)
    if not finite.all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int((~finite).sum()) - n_nan
        found = " and ".join(
            f"{count} {kind} value(s)"
            for count, kind in ((n_nan, "NaN"), (n_inf, "infinite"))
            if count
        )
        raise ValueError(f"{_PREFIX}: {name} contains {found}; metrics need finite values.")
    largest = float(np.abs(arr).max())
    if largest > _MAX_ABS:
        raise ValueError(
            f"{_PREFIX}: {name} has a value of magnitude {largest:g}; metrics take "
            f"|values| <= {_MAX_ABS:g} (larger ones overflow float64; a diverged model?)."
        )
    return arr


def _finite(value: float, metric: str) -> float:
    """Return ``value`` as a float; raise instead of returning NaN or inf.

    Inputs are finite and bounded, so a non-finite result can only come from a ratio
    whose denominator is tiny next to its numerator (e.g. ``mean(y_true)`` of 1e-320 in
    ``nmae``, or values of mixed sign that cancel to a total near 0).
    """
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(
            f"{_PREFIX}: {metric} overflows float64 on these inputs ({value}): a "
            "denominator (a mean or total of y_true, or the mape floor) is too close to 0 "
            "for the size of the errors. Rescale the values, e.g. to currency units."
        )
    return value


def _finite_curve(x: np.ndarray, share: np.ndarray, curve: str) -> tuple[np.ndarray, np.ndarray]:
    """``_finite`` for a curve: every point must be finite."""
    if not np.isfinite(share).all():
        _finite(float(share[~np.isfinite(share)][0]), curve)
    return x, share


def _check_pair(
    y_true: ArrayLike, y_pred: ArrayLike, nonzero_proba: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate ``(y_true, y_pred[, nonzero_proba])`` and return them as float64 arrays.

    Raises a ValueError naming the problem: non-numeric, not 1-D, empty, NaN/inf, a
    value beyond +-1e100, lengths that differ, or (``nonzero_proba``) values outside
    [0, 1].
    """
    t = _as_1d(y_true, "y_true")
    p = _as_1d(y_pred, "y_pred")
    if t.shape[0] != p.shape[0]:
        raise ValueError(
            f"{_PREFIX}: y_true has {t.shape[0]} samples but y_pred has {p.shape[0]}."
        )
    proba = None
    if nonzero_proba is not None:
        proba = _as_1d(nonzero_proba, "nonzero_proba")
        if proba.shape[0] != t.shape[0]:
            raise ValueError(
                f"{_PREFIX}: y_true has {t.shape[0]} samples but nonzero_proba has "
                f"{proba.shape[0]}."
            )
        if proba.min() < 0 or proba.max() > 1:
            raise ValueError(
                f"{_PREFIX}: nonzero_proba must be probabilities in [0, 1], got values in "
                f"[{proba.min():g}, {proba.max():g}]."
            )
    return t, p, proba


def _check_fraction(value: float, name: str, *, closed_right: bool = False) -> float:
    """Check ``0 < value < 1`` (``<= 1`` when ``closed_right``) and return it as a float."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = 0.0 < value < 1.0 or (closed_right and value == 1.0)
    if not ok:
        bound = "(0, 1]" if closed_right else "(0, 1)"
        raise ValueError(f"{_PREFIX}: {name} must be a number in {bound}, got {value!r}.")
    return value
